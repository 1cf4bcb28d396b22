//! The one integration-test binary. Each module drives the real `powerbi-exporter` binary:
//! over real HTTP on 127.0.0.1, with real `promtool`, on files written by the test.

/// Shared helpers: run the binary, scrape it, parse expositions, find promtool, run a Prometheus.
mod support;

/// A loopback fake of Azure Monitor's Logs Ingestion API, used by the forwarding tests.
mod fake_logs_ingestion;

/// The shape of src/: imports follow the stage order, functions are short, README's Layout
/// is the tree.
mod architecture;
/// The Azure template (table, rule, role) declares every field the exporter sends.
mod azure_deploy;
/// `backfill`: its file through promtool into a real Prometheus, every sample exact; the seam
/// with the live exporter; the usage dashboard over the backfilled days; resuming; bad flags.
mod backfill;
/// Bad paths, bad files, bad flags and bad configuration.
mod bad_input;
/// Series caps: overflow series, exact sums, dropped counters.
mod caps;
/// Microsoft's published example responses through the real client and the decoders.
mod contract;
/// Credentials as the Azure SDKs take them, each against the loopback token endpoint.
mod credentials;
/// Dashboards: lint, and every expression evaluated by a real Prometheus.
mod dashboards;
/// Deployment files: drift, parsing, Helm values, kustomize and compose paths, health check.
mod deploy;
/// Unreadable state files and a full filesystem under the spool: nothing written over, nothing lost.
mod durability;
/// API economy: a simulated week on a fast clock (late events, an outage, a restart), every
/// event read, requests per day against the old planner's.
mod economy;
/// Series expiry: a year of report churn at small caps, nothing lost to `__other__`.
mod expiry;
/// The exporter's face: build_info and --version, healthcheck with --config.file, the OTLP
/// resource's service.instance.id.
mod face;
/// Scoping filters: what they leave out is counted by reason; the rest is exact.
mod filters;
/// Inputs the fuzzers found or that are worth pinning, through the fuzz targets' entry points.
mod fuzz_regressions;
/// `--once` over the fixtures against the reviewed golden file, and promtool's verdict.
mod golden;
/// History outside the lookback: initial lookback, the 28-day edge, replayed archives.
mod history;
/// Hostile servers and hostile events: trickling, huge bodies, nesting, bad UTF-8, long names.
mod hostile;
/// The inventory: names, types, unused reports; 429 and timeouts while polling goes on.
mod inventory;
/// The item families: a replay of every item kind against the truth from the raw events.
mod items;
/// The live source against the simulated API: late events, faults, budget, host and auth checks.
mod live;
/// Azure Monitor Logs Ingestion against a loopback fake: limits, 413, 429, 503, kill -9.
mod logs_ingestion;
/// The monitoring mixin: the checked-in dashboards and rules are what it renders; its config
/// selects every series the alerts read.
mod mixin;
/// Corporate networks: HTTPS_PROXY and NO_PROXY through a loopback CONNECT proxy; a test CA
/// trusted through SSL_CERT_FILE, SSL_CERT_DIR and the Helm chart's CA mount.
mod network;
/// OpenMetrics 1.0.0 from `Accept`, text 0.0.4 otherwise: same samples, the spec's rules,
/// gzip as one member, promtool, and a real Prometheus scraping it.
mod openmetrics;
/// The catalogue's origins: saved families unchanged across a restart, every live one served.
mod origins;
/// OTLP: the push equals the scrape (HTTP, gRPC, OTEL_* variables); events as log records
/// through a collector outage and a restart.
mod otlp;
/// An OTLP receiver (HTTP and gRPC) decoding with the official protobuf types.
mod otlp_receiver;
/// The exporter's own ExportActivityEvents: matched by application id and by object id.
mod own_exports;
mod parallel;
/// User signals (pseudonym, plain, off; restart and key change), external shares, and a scan of
/// every output for the fixture's addresses under each `--users.label` mode.
mod people;
/// `top --since`: progress as plain lines off a terminal, a bar on one (under a pty).
mod progress;
/// The README's metrics table is the catalogue's.
mod readme;
/// Alert rules: promtool checks and unit tests, coverage, runbook, metric names.
mod rules;
/// The demo served over HTTP: metrics, health, readiness, gzip, shutdown.
mod serve;
/// Minutes on the simulated tenant at a high rate with concurrent scrapes: flat memory.
mod soak;
/// A state file written by an earlier release loads: counters exact, its source status kept.
mod state_format;
/// The status page at `/` in a real headless Chromium: values, no user ids, size.
mod status_page;
/// `top`: the ranking table and the CSV.
mod top;
/// Events generated with known counts: every family's exact values.
mod totals;
/// `--web.config.file` (TLS, mTLS, basic auth, headers, reload) and `--web.max-requests`.
mod web;
