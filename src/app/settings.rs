//! The exporter's settings, composed: the config file's sections and the flags of every
//! component, resolved in one pass so that every problem is reported at once.
//!
//! Invariants:
//! - every problem is reported at once, each naming the key or flag and what is expected;
//!   the binary exits 2 on any of them;
//! - unknown keys are errors (a typo must not silently fall back to a default);
//! - after [`Config::load`] succeeds the values are valid: later stages do not re-check them.
//!
//! Each component declares its section, flags, defaults, `resolve` and `describe` in its own
//! `settings` module (`exposition`, `telemetry`, `state`, `aggregate`, `forward`); this module
//! only reads the sections and resolves them in the order they depend on each other. The
//! sources' settings (replay, demo, the live API and its credential) are still resolved here
//! until they move to `source::settings` and `azure::settings`.

use std::ops::RangeBounds;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_yaml_ng::Mapping;

use crate::aggregate::settings::{
    AggregateDraft, AggregateFiles, DedupFile, FiltersFile, LimitsFile, SourceTraits, TenantFile,
    UsersFile,
};
use crate::aggregate::AggregateConfig;
use crate::azure::auth::{Authority, Credential, Secret};
use crate::cli::{LiveArgs, RunArgs};
use crate::config::{Description, Document, Problems, Section};
use crate::duration;
use crate::exposition::otlp::OtlpConfig;
use crate::exposition::settings::{
    describe_otlp, resolve_otlp, OtlpFile, ProbeTarget, WebConfig, WebFile,
};
use crate::forward::settings::{
    check_spool, ForwardConfig, ForwardFile, ForwardFiles, LogsIngestionFile, SinkIdentity,
};
use crate::source::demo::DemoConfig;
use crate::source::powerbi::client::{HostPolicy, RetryPolicy, DEFAULT_MAX_RESPONSE_BYTES};
use crate::source::powerbi::cloud::Cloud;
use crate::source::powerbi::inventory::{InventoryConfig, MAX_PAGE_SIZE};
use crate::source::powerbi::window::PlanConfig;
use crate::source::powerbi::PowerBiConfig;
use crate::source::replay::{ReplayConfig, DEFAULT_MAX_IDS_PER_PASS};
use crate::state::settings::StateFile;
use crate::telemetry::settings::{LogConfig, LogFile};

#[derive(Debug, Clone)]
pub enum SourceConfig {
    Replay(ReplayConfig),
    Demo(DemoConfig),
    PowerBi(Box<PowerBiConfig>),
}

/// The validated configuration of a run of the exporter.
#[derive(Debug, Clone)]
pub struct Config {
    pub web: WebConfig,
    pub log: LogConfig,
    pub source: SourceConfig,
    pub once: bool,
    pub aggregate: AggregateConfig,
    pub state_dir: Option<PathBuf>,
    pub otlp: OtlpConfig,
    pub forward: ForwardConfig,
}

/// Request budget allowed against a plain-http loopback API (a simulated tenant); the real
/// API's is 200.
const SIMULATED_MAX_REQUESTS_PER_HOUR: usize = 100_000;

/// Largest simulated tenant `demo.workspaces` / `demo.users` may ask for.
const DEMO_MAX_WORKSPACES: usize = 10_000;
const DEMO_MAX_USERS: usize = 1_000_000;

impl Config {
    /// The tenant whose activity is read, when known (a resource attribute of OTLP data).
    pub fn tenant_id(&self) -> Option<String> {
        match &self.source {
            SourceConfig::PowerBi(live) => live.credential.tenant_id().map(str::to_string),
            SourceConfig::Demo(_) => Some(crate::simulator::api::ApiConfig::default().tenant_id),
            SourceConfig::Replay(_) => None,
        }
    }

    /// The effective settings as YAML-like lines, for `check-config`; secrets never appear.
    pub fn describe(&self) -> String {
        let mut description = Description::default();
        self.web.describe(&mut description);
        self.log.describe(&mut description);
        crate::state::settings::describe(self.state_dir.as_ref(), &mut description);
        self.aggregate.describe(&mut description);
        describe_otlp(&self.otlp, &mut description);
        self.forward
            .describe(self.otlp.logs.is_some(), &mut description);
        let mut out = String::new();
        let mut line = |key: &str, value: String| {
            use std::fmt::Write as _;
            let _ = writeln!(out, "{key}: {value}");
        };
        match &self.source {
            SourceConfig::Replay(r) => line(
                "source",
                format!(
                    "replay {} (at most {} ids per pass)",
                    r.path.display(),
                    r.max_ids_per_pass
                ),
            ),
            SourceConfig::Demo(d) => line(
                "source",
                format!(
                    "demo (seed {}, {} events/min at peak)",
                    d.tenant.seed, d.peak_events_per_minute
                ),
            ),
            SourceConfig::PowerBi(live) => {
                line("source", "powerbi".into());
                line("powerbi.api_url", live.hosts.api_url.clone());
                line("powerbi.scope", live.scope.clone());
                line(
                    "powerbi.poll_interval",
                    duration::format(live.poll_interval),
                );
                line("powerbi.lookback", format!("{}h", live.plan.lookback_hours));
                line(
                    "powerbi.initial_lookback",
                    duration::format(live.initial_lookback),
                );
                line(
                    "powerbi.max_requests_per_hour",
                    live.max_requests_per_hour.to_string(),
                );
                if let Some(inv) = &live.inventory {
                    line(
                        "inventory",
                        format!(
                            "every {}, timeout {}, {} requests/hour, page size {}",
                            duration::format(inv.refresh),
                            duration::format(inv.timeout),
                            inv.max_requests_per_hour,
                            inv.page_size
                        ),
                    );
                }
                line(
                    "powerbi.request_timeout",
                    duration::format(live.request_timeout),
                );
                line(
                    "powerbi.max_response_bytes",
                    live.max_response_bytes.to_string(),
                );
                line(
                    "powerbi.count_own_exports",
                    (!self.aggregate.exclude_own_exports).to_string(),
                );
                line("azure.credential", live.credential.kind().into());
                match &live.credential {
                    Credential::ClientSecret { authority, .. } => {
                        line("azure.authority_host", authority.host.clone());
                        line("azure.tenant_id", authority.tenant_id.clone());
                        line("azure.client_id", authority.client_id.clone());
                        line("azure.client_secret", "<redacted>".into());
                    }
                    Credential::Certificate { authority, key } => {
                        line("azure.authority_host", authority.host.clone());
                        line("azure.tenant_id", authority.tenant_id.clone());
                        line("azure.client_id", authority.client_id.clone());
                        line("azure.certificate_thumbprint", key.thumbprint.clone());
                    }
                    Credential::WorkloadIdentity {
                        authority,
                        token_file,
                    } => {
                        line("azure.authority_host", authority.host.clone());
                        line("azure.tenant_id", authority.tenant_id.clone());
                        line("azure.client_id", authority.client_id.clone());
                        line(
                            "azure.federated_token_file",
                            token_file.display().to_string(),
                        );
                    }
                    Credential::ManagedIdentity(_) => {}
                }
            }
        }
        if self.once {
            line("once", "true".into());
        }
        description.finish() + &out
    }
}

/// Raw values before validation: strings as written, with where each came from.
#[derive(Debug, Default)]
struct Raw {
    replay: Option<PathBuf>,
    replay_max_ids_per_pass: Option<(usize, String)>,
    demo: bool,
    demo_seed: Option<u64>,
    demo_workspaces: Option<usize>,
    demo_users: Option<usize>,
    demo_peak: Option<(f64, String)>,
    demo_backfill: Option<(String, String)>,
    demo_api_only: bool,
    once: bool,
    live: RawLive,
}

/// Raw settings of the live source.
#[derive(Debug, Default)]
struct RawLive {
    api_url: Option<(String, String)>,
    poll_interval: Option<(String, String)>,
    lookback: Option<(String, String)>,
    initial_lookback: Option<(String, String)>,
    retry_delay: Option<(String, String)>,
    request_timeout: Option<(String, String)>,
    max_response_bytes: Option<(usize, String)>,
    max_requests_per_hour: Option<(usize, String)>,
    authority_host: Option<(String, String)>,
    cloud: Option<(String, String)>,
    count_own_exports: bool,
    inventory_enabled: bool,
    inventory_refresh: Option<(String, String)>,
    inventory_timeout: Option<(String, String)>,
    inventory_max_requests_per_hour: Option<(usize, String)>,
    inventory_page_size: Option<(usize, String)>,
    credential: RawCredential,
}

impl Config {
    /// Loads the file named by `--config.file` (if any) and applies the flags over it.
    pub fn load(args: &RunArgs) -> Result<Config, Problems> {
        let mut problems = Problems::default();
        let doc = Document::load(args.config_file.as_deref(), TOP_KEYS, &mut problems);
        let mut file = FileSections::read(&doc, &mut problems);
        apply_flags(args, &mut file.raw);
        read_credential_env(&mut file.raw.live.credential);
        let config = resolve(file, args, &mut problems);
        problems.into_result(config)
    }

    /// Parses a YAML document alone (no flags), for tests and `check-config`.
    pub fn from_yaml(text: &str) -> Result<Config, Problems> {
        let mut problems = Problems::default();
        let doc = Document::parse(text, TOP_KEYS, &mut problems);
        let file = FileSections::read(&doc, &mut problems);
        let config = resolve(file, &RunArgs::default(), &mut problems);
        problems.into_result(config)
    }
}

/// The config file, read section by section.
struct FileSections {
    web: WebFile,
    log: LogFile,
    otlp: OtlpFile,
    state: StateFile,
    aggregate: AggregateFiles,
    forward: ForwardFiles,
    /// The source's sections (legacy: they move to `source::settings`).
    raw: Raw,
}

/// Every section the file may have.
const TOP_KEYS: &[&str] = &[
    WebFile::KEY,
    LogFile::KEY,
    "replay",
    "demo",
    LimitsFile::KEY,
    DedupFile::KEY,
    "powerbi",
    "azure",
    StateFile::KEY,
    FiltersFile::KEY,
    UsersFile::KEY,
    TenantFile::KEY,
    "inventory",
    OtlpFile::KEY,
    LogsIngestionFile::KEY,
    ForwardFile::KEY,
];

impl FileSections {
    fn read(doc: &Document, problems: &mut Problems) -> FileSections {
        let web = doc.section(problems);
        let log = doc.section(problems);
        let mut raw = Raw::default();
        read_file(doc, &mut raw, &mut problems.0);
        let aggregate = AggregateFiles::read(doc, problems);
        let state = doc.section(problems);
        let otlp = doc.section(problems);
        let forward = ForwardFiles::read(doc, problems);
        FileSections {
            web,
            log,
            otlp,
            state,
            aggregate,
            forward,
            raw,
        }
    }
}

/// Each component's settings: flags over the file, checked, in the order they depend on
/// each other (the aggregation completes once the source is known).
fn resolve(file: FileSections, args: &RunArgs, problems: &mut Problems) -> Option<Config> {
    let web = WebConfig::resolve(file.web, &args.web, problems);
    let log = LogConfig::resolve(file.log, &args.log, problems);
    let state_dir = crate::state::settings::resolve(file.state, &args.state);
    let draft = AggregateDraft::resolve(file.aggregate, &args.aggregate, problems);
    // The Logs Ingestion sink uses the live source's credential chain (another scope).
    let sink = SinkCredential {
        raw: file.raw.live.credential.clone(),
        authority: file.raw.live.authority_host.clone(),
        cloud: file.raw.live.cloud.clone(),
    };
    let client_id = file.raw.live.credential.client_id.clone();
    let count_own_exports = file.raw.live.count_own_exports;
    let source = resolve_source(file.raw, draft.dedup_window(), &mut problems.0);
    let traits = source_traits(source.as_ref(), client_id, count_own_exports);
    let aggregate = draft.finish(&traits, problems);
    let otlp = resolve_otlp(file.otlp, &args.otlp, problems);
    let forward = ForwardConfig::resolve(
        file.forward,
        &args.forward,
        |problems| sink_identity(sink, &mut problems.0),
        problems,
    );
    let forwarding = forward.logs_ingestion.is_some() || otlp.logs.is_some();
    check_spool(forwarding, args.once, state_dir.is_some(), problems);
    // Outbound HTTPS reads the proxy and CA variables: a wrong one would fail every request.
    let live = matches!(source, Some(SourceConfig::PowerBi(_)));
    if live || forwarding || otlp.metrics.is_some() {
        problems.extend(crate::azure::http::environment_problems());
    }
    Some(Config {
        web: web?,
        log,
        source: source?,
        once: args.once,
        aggregate,
        state_dir,
        otlp,
        forward,
    })
}

fn read_file(doc: &Document, raw: &mut Raw, errors: &mut Vec<String>) {
    let file = |key: &str| format!("config key `{key}`");
    if let Some(replay) = sub(doc, "replay", &["path", "max_ids_per_pass"], errors) {
        raw.replay = field::<PathBuf>(replay, "replay.path", "a file or directory path", errors);
        raw.replay_max_ids_per_pass = field::<usize>(
            replay,
            "replay.max_ids_per_pass",
            "a number of ids like 2000000",
            errors,
        )
        .map(|v| (v, file("replay.max_ids_per_pass")));
    }
    if let Some(demo) = sub(
        doc,
        "demo",
        &[
            "enabled",
            "seed",
            "workspaces",
            "users",
            "peak_events_per_minute",
            "backfill",
            "api_only",
        ],
        errors,
    ) {
        raw.demo = field::<bool>(demo, "demo.enabled", "true or false", errors).unwrap_or(false);
        raw.demo_seed = field(demo, "demo.seed", "a whole number", errors);
        raw.demo_workspaces = field(demo, "demo.workspaces", "a whole number", errors);
        raw.demo_users = field(demo, "demo.users", "a whole number", errors);
        raw.demo_peak = field::<f64>(demo, "demo.peak_events_per_minute", "a number", errors)
            .map(|v| (v, file("demo.peak_events_per_minute")));
        raw.demo_backfill = field::<String>(demo, "demo.backfill", "a duration like 6h", errors)
            .map(|v| (v, file("demo.backfill")));
        raw.demo_api_only =
            field::<bool>(demo, "demo.api_only", "true or false", errors).unwrap_or(false);
    }
    if let Some(inv) = sub(
        doc,
        "inventory",
        &[
            "enabled",
            "refresh",
            "timeout",
            "max_requests_per_hour",
            "page_size",
        ],
        errors,
    ) {
        let live = &mut raw.live;
        live.inventory_enabled =
            field(inv, "inventory.enabled", "true or false", errors).unwrap_or(false);
        live.inventory_refresh =
            field::<String>(inv, "inventory.refresh", "a duration like 24h", errors)
                .map(|v| (v, file("inventory.refresh")));
        live.inventory_timeout =
            field::<String>(inv, "inventory.timeout", "a duration like 30s", errors)
                .map(|v| (v, file("inventory.timeout")));
        live.inventory_max_requests_per_hour = field::<usize>(
            inv,
            "inventory.max_requests_per_hour",
            "a whole number",
            errors,
        )
        .map(|v| (v, file("inventory.max_requests_per_hour")));
        live.inventory_page_size =
            field::<usize>(inv, "inventory.page_size", "a whole number", errors)
                .map(|v| (v, file("inventory.page_size")));
    }
    let keys = [
        "api_url",
        "poll_interval",
        "lookback",
        "initial_lookback",
        "max_requests_per_hour",
        "retry_delay",
        "request_timeout",
        "max_response_bytes",
    ];
    if let Some(pb) = sub(doc, "powerbi", &keys, errors) {
        let string = |key: &str, expected: &str, errors: &mut Vec<String>| {
            let path = format!("powerbi.{key}");
            field::<String>(pb, &path, expected, errors).map(|v| (v, file(&path)))
        };
        raw.live.api_url = string("api_url", "a URL", errors);
        raw.live.poll_interval = string("poll_interval", "a duration like 5m", errors);
        raw.live.lookback = string("lookback", "a duration like 24h", errors);
        raw.live.initial_lookback = string("initial_lookback", "a duration like 7d", errors);
        raw.live.retry_delay = string("retry_delay", "a duration like 2s", errors);
        raw.live.request_timeout = string("request_timeout", "a duration like 120s", errors);
        raw.live.max_response_bytes = field::<usize>(
            pb,
            "powerbi.max_response_bytes",
            "a whole number of bytes",
            errors,
        )
        .map(|v| (v, file("powerbi.max_response_bytes")));
        raw.live.max_requests_per_hour = field::<usize>(
            pb,
            "powerbi.max_requests_per_hour",
            "a whole number",
            errors,
        )
        .map(|v| (v, file("powerbi.max_requests_per_hour")));
    }
    if let Some(az) = sub(
        doc,
        "azure",
        &[
            "authority_host",
            "tenant_id",
            "client_id",
            "client_secret_file",
            "client_certificate_path",
            "federated_token_file",
            "managed_identity",
            "cloud",
        ],
        errors,
    ) {
        raw.live.cloud = field::<String>(az, "azure.cloud", Cloud::NAMES, errors)
            .map(|v| (v, file("azure.cloud")));
        raw.live.authority_host = field::<String>(az, "azure.authority_host", "a URL", errors)
            .map(|v| (v, file("azure.authority_host")));
        let credential = &mut raw.live.credential;
        credential.tenant_id = field(az, "azure.tenant_id", "a tenant id", errors);
        credential.client_id = field(az, "azure.client_id", "a client id", errors);
        credential.client_secret_file =
            field(az, "azure.client_secret_file", "a file path", errors);
        credential.certificate_path =
            field(az, "azure.client_certificate_path", "a file path", errors);
        credential.federated_token_file =
            field(az, "azure.federated_token_file", "a file path", errors);
        credential.managed_identity =
            field(az, "azure.managed_identity", "true or false", errors).unwrap_or(false);
    }
}

/// The mapping of a section not yet declared with `section!`, its unknown keys reported.
fn sub<'a>(
    doc: &'a Document,
    key: &str,
    known: &[&str],
    errors: &mut Vec<String>,
) -> Option<&'a Mapping> {
    let mut problems = Problems::default();
    let map = doc.mapping(key, known, &mut problems);
    errors.extend(problems.0);
    map
}

fn field<T: DeserializeOwned>(
    map: &Mapping,
    path: &str,
    expected: &str,
    errors: &mut Vec<String>,
) -> Option<T> {
    let key = path.rsplit('.').next().unwrap_or(path);
    let value = map.get(key)?;
    match serde_yaml_ng::from_value(value.clone()) {
        Ok(v) => Some(v),
        Err(_) => {
            let shown = serde_yaml_ng::to_string(value).unwrap_or_default();
            errors.push(format!(
                "config key `{path}`: expected {expected}, got {}",
                shown.trim()
            ));
            None
        }
    }
}

// === Flags ===

fn apply_flags(args: &RunArgs, raw: &mut Raw) {
    let flag = |name: &str| format!("flag --{name}");
    raw.once = args.once;
    if let Some(n) = args.replay_max_ids_per_pass {
        raw.replay_max_ids_per_pass = Some((n, flag("replay.max-ids-per-pass")));
    }
    if let Some(p) = &args.replay {
        raw.replay = Some(p.clone());
        raw.demo = false;
    }
    if args.demo {
        raw.demo = true;
        if args.replay.is_none() {
            raw.replay = None;
        }
    }
    if let Some(v) = args.demo_seed {
        raw.demo_seed = Some(v);
    }
    if let Some(v) = args.demo_peak_events_per_minute {
        raw.demo_peak = Some((v, flag("demo.peak-events-per-minute")));
    }
    if let Some(v) = &args.demo_backfill {
        raw.demo_backfill = Some((v.clone(), flag("demo.backfill")));
    }
    if args.demo_api_only {
        raw.demo_api_only = true;
    }
    apply_live_flags(&args.live, &mut raw.live);
}

/// The live source's flags over its file settings.
fn apply_live_flags(args: &LiveArgs, live: &mut RawLive) {
    let flag = |name: &str| format!("flag --{name}");
    let set = |slot: &mut Option<(String, String)>, v: &Option<String>, name: &str| {
        if let Some(v) = v {
            *slot = Some((v.clone(), flag(name)));
        }
    };
    set(&mut live.api_url, &args.powerbi_api_url, "powerbi.api-url");
    set(
        &mut live.poll_interval,
        &args.powerbi_poll_interval,
        "powerbi.poll-interval",
    );
    set(
        &mut live.lookback,
        &args.powerbi_lookback,
        "powerbi.lookback",
    );
    set(
        &mut live.initial_lookback,
        &args.powerbi_initial_lookback,
        "powerbi.initial-lookback",
    );
    set(
        &mut live.retry_delay,
        &args.powerbi_retry_delay,
        "powerbi.retry-delay",
    );
    set(
        &mut live.request_timeout,
        &args.powerbi_request_timeout,
        "powerbi.request-timeout",
    );
    if let Some(n) = args.powerbi_max_response_bytes {
        live.max_response_bytes = Some((n, flag("powerbi.max-response-bytes")));
    }
    set(
        &mut live.authority_host,
        &args.azure_authority_host,
        "azure.authority-host",
    );
    set(&mut live.cloud, &args.azure_cloud, "azure.cloud");
    live.count_own_exports |= args.powerbi_count_own_exports;
    live.inventory_enabled |= args.inventory_enabled;
    set(
        &mut live.inventory_refresh,
        &args.inventory_refresh,
        "inventory.refresh",
    );
    set(
        &mut live.inventory_timeout,
        &args.inventory_timeout,
        "inventory.timeout",
    );
    if let Some(n) = args.inventory_max_requests_per_hour {
        live.inventory_max_requests_per_hour = Some((n, flag("inventory.max-requests-per-hour")));
    }
    if let Some(n) = args.inventory_page_size {
        live.inventory_page_size = Some((n, flag("inventory.page-size")));
    }
    if let Some(n) = args.powerbi_max_requests_per_hour {
        live.max_requests_per_hour = Some((n, flag("powerbi.max-requests-per-hour")));
    }
    let credential = &mut live.credential;
    let replace = |slot: &mut Option<PathBuf>, v: &Option<PathBuf>| {
        if v.is_some() {
            slot.clone_from(v);
        }
    };
    if args.azure_tenant_id.is_some() {
        credential.tenant_id.clone_from(&args.azure_tenant_id);
    }
    if args.azure_client_id.is_some() {
        credential.client_id.clone_from(&args.azure_client_id);
    }
    replace(
        &mut credential.client_secret_file,
        &args.azure_client_secret_file,
    );
    replace(
        &mut credential.certificate_path,
        &args.azure_client_certificate_path,
    );
    replace(
        &mut credential.federated_token_file,
        &args.azure_federated_token_file,
    );
    credential.managed_identity |= args.azure_managed_identity;
    if args.azure_imds_endpoint.is_some() {
        credential
            .imds_endpoint
            .clone_from(&args.azure_imds_endpoint);
    }
}

// === Validation ===

/// The source the flags and the file choose (legacy: moves to `source::settings`).
fn resolve_source(
    raw: Raw,
    dedup_window: Option<Duration>,
    errors: &mut Vec<String>,
) -> Option<SourceConfig> {
    let defaults = DemoConfig::default();
    let mut duration_of = |value: Option<(String, String)>, default: Duration| match value {
        None => default,
        Some((v, from)) => duration::parse(&v).unwrap_or_else(|e| {
            errors.push(format!("{from}: {e}"));
            default
        }),
    };
    let backfill = duration_of(raw.demo_backfill, defaults.backfill);
    let peak = match raw.demo_peak {
        Some((v, from)) if !(v.is_finite() && v > 0.0) => {
            errors.push(format!("{from}: expected a positive number, got {v}"));
            defaults.peak_events_per_minute
        }
        Some((v, _)) => v,
        None => defaults.peak_events_per_minute,
    };
    let source = match (raw.replay, raw.demo) {
        (Some(_), true) => {
            errors.push("choose one source: --replay PATH or --demo, not both".into());
            None
        }
        (Some(path), false) => Some(SourceConfig::Replay(ReplayConfig {
            path,
            // At least 1,000: fewer makes passes of single days.
            max_ids_per_pass: count_within(
                raw.replay_max_ids_per_pass,
                1_000..,
                "at least 1000 (ids a replay pass may remember)",
                DEFAULT_MAX_IDS_PER_PASS,
                errors,
            ),
        })),
        (None, true) if raw.once => {
            errors.push("flag --once needs --replay PATH (the demo never ends)".into());
            None
        }
        (None, true) => {
            let mut tenant = defaults.tenant;
            tenant.seed = raw.demo_seed.unwrap_or(tenant.seed);
            tenant.workspaces = raw.demo_workspaces.unwrap_or(tenant.workspaces);
            tenant.users = raw.demo_users.unwrap_or(tenant.users);
            // The simulated tenant is built in memory at start: keep it laptop-sized.
            for (key, n, max) in [
                ("demo.workspaces", tenant.workspaces, DEMO_MAX_WORKSPACES),
                ("demo.users", tenant.users, DEMO_MAX_USERS),
            ] {
                if !(1..=max).contains(&n) {
                    errors.push(format!(
                        "config key `{key}` {n}: expected 1 to {max} (the simulated tenant lives in memory)"
                    ));
                }
            }
            Some(SourceConfig::Demo(DemoConfig {
                tenant,
                peak_events_per_minute: peak,
                backfill,
                tick: defaults.tick,
                api_only: raw.demo_api_only,
            }))
        }
        (None, false) if raw.once => {
            errors.push("flag --once needs --replay PATH (the demo never ends)".into());
            None
        }
        (None, false) if raw.live.credential.requested() => {
            live_source(raw.live, dedup_window, errors).map(|c| SourceConfig::PowerBi(Box::new(c)))
        }
        (None, false) => {
            errors.push("no source configured: pass --demo to run on the simulated tenant, --replay PATH to replay saved events, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET to read a tenant".into());
            None
        }
    };
    source
}

/// What the aggregation needs to know of the chosen source. `client_id` and
/// `count_own_exports` are the live source's: its own reads of the log appear as
/// ExportActivityEvents by its application id or its object id (the client id, and the ids
/// of its token).
fn source_traits(
    source: Option<&SourceConfig>,
    client_id: Option<String>,
    count_own_exports: bool,
) -> SourceTraits {
    match source {
        Some(SourceConfig::Replay(_)) => SourceTraits {
            replay: true,
            ..SourceTraits::default()
        },
        Some(SourceConfig::Demo(demo)) => SourceTraits {
            history: Some(demo.backfill),
            ..SourceTraits::default()
        },
        Some(SourceConfig::PowerBi(live)) => SourceTraits {
            replay: false,
            history: Some(live.initial_lookback),
            // Ids older than the lookback are never re-read, so the live source need not
            // remember them (the state file holds every id in the window).
            dedup_window: Some(Duration::from_secs(
                (live.plan.lookback_hours as u64 + 2) * 3600,
            )),
            own_user: client_id,
            exclude_own_exports: !count_own_exports,
        },
        None => SourceTraits::default(),
    }
}

/// The count `value` when `ok` holds it; else the error `{from} {n}: expected {expected}`, and
/// `default`.
fn count_within(
    value: Option<(usize, String)>,
    ok: impl RangeBounds<usize>,
    expected: &str,
    default: usize,
    errors: &mut Vec<String>,
) -> usize {
    match value {
        Some((n, from)) if !ok.contains(&n) => {
            errors.push(format!("{from} {n}: expected {expected}"));
            default
        }
        Some((n, _)) => n,
        None => default,
    }
}

/// The live source's settings, checked.
fn live_source(
    raw: RawLive,
    dedup_window: Option<Duration>,
    errors: &mut Vec<String>,
) -> Option<PowerBiConfig> {
    let mut duration_of = |value: Option<(String, String)>,
                           default: Duration,
                           min: Duration,
                           max: Duration| match value {
        None => default,
        Some((v, from)) => match duration::parse(&v) {
            Ok(d) if d >= min && d <= max => d,
            Ok(_) => {
                errors.push(format!(
                    "{from} {v:?}: expected between {} and {}",
                    duration::format(min),
                    duration::format(max)
                ));
                default
            }
            Err(e) => {
                errors.push(format!("{from}: {e}"));
                default
            }
        },
    };
    let hour = Duration::from_secs(3600);
    let days28 = Duration::from_secs(28 * 86_400);
    let poll_interval = duration_of(
        raw.poll_interval,
        Duration::from_secs(300),
        Duration::from_secs(1),
        hour,
    );
    let lookback = duration_of(raw.lookback, Duration::from_secs(24 * 3600), hour, days28);
    let initial_lookback =
        duration_of(raw.initial_lookback, Duration::ZERO, Duration::ZERO, days28);
    let retry_delay = duration_of(
        raw.retry_delay,
        Duration::from_secs(2),
        Duration::from_millis(10),
        Duration::from_secs(60),
    );
    let request_timeout = duration_of(
        raw.request_timeout,
        Duration::from_secs(120),
        Duration::from_secs(1),
        Duration::from_secs(600),
    );
    let inventory_refresh = duration_of(
        raw.inventory_refresh,
        Duration::from_secs(24 * 3600),
        Duration::from_secs(60),
        Duration::from_secs(7 * 86_400),
    );
    let inventory_timeout = duration_of(
        raw.inventory_timeout,
        Duration::from_secs(30),
        Duration::from_secs(1),
        Duration::from_secs(120),
    );
    let inventory_budget = count_within(
        raw.inventory_max_requests_per_hour,
        1..=50,
        "1 to 50 (the API allows 50 per hour for the whole tenant)",
        20,
        errors,
    );
    let page_size = count_within(
        raw.inventory_page_size,
        1..=MAX_PAGE_SIZE,
        &format!("1 to {MAX_PAGE_SIZE} (the API's range for $top)"),
        InventoryConfig::default().page_size,
        errors,
    );
    let inventory = raw.inventory_enabled.then_some(InventoryConfig {
        refresh: inventory_refresh,
        timeout: inventory_timeout,
        max_requests_per_hour: inventory_budget,
        page_size,
    });
    let max_response_bytes = count_within(
        raw.max_response_bytes,
        4096..,
        "at least 4096 (an API page with a few events)",
        DEFAULT_MAX_RESPONSE_BYTES,
        errors,
    );
    if let Some(dedup_window) = dedup_window.filter(|w| lookback + hour > *w) {
        errors.push(format!(
            "--dedup.window (dedup.window) {} must exceed --powerbi.lookback ({}) by at least 1h, or re-read events would count twice",
            duration::format(dedup_window),
            duration::format(lookback)
        ));
    }
    let url = |value: Option<(String, String)>,
               default: &str,
               errors: &mut Vec<String>|
     -> String {
        let Some((v, from)) = value else {
            return default.to_string();
        };
        match reqwest::Url::parse(&v) {
            Ok(u)
                if u.scheme() == "https"
                    || (u.scheme() == "http"
                        && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))) =>
            {
                v.trim_end_matches('/').to_string()
            }
            _ => {
                errors.push(format!(
                    "{from} {v:?}: expected an https:// URL (plain http only for loopback)"
                ));
                default.to_string()
            }
        }
    };
    let cloud = match raw.cloud {
        None => Cloud::Public,
        Some((v, from)) => v.parse().unwrap_or_else(|e| {
            errors.push(format!("{from} {v:?}: {e}"));
            Cloud::Public
        }),
    };
    let api_url = url(raw.api_url, cloud.api_url(), errors);
    // Power BI is https only; a plain-http API on loopback is a simulated tenant
    // (`--demo.api-only`), whose budget is not the tenant's shared 200.
    let simulated = api_url.starts_with("http://");
    let max_requests_per_hour = match raw.max_requests_per_hour {
        Some((n, from)) if n == 0 || (n > 200 && !simulated) => {
            errors.push(format!("{from} {n}: expected 1 to 200 (the API allows 200 per hour for all callers together)"));
            120
        }
        Some((n, from)) if n > SIMULATED_MAX_REQUESTS_PER_HOUR => {
            errors.push(format!(
                "{from} {n}: expected 1 to {SIMULATED_MAX_REQUESTS_PER_HOUR} for a simulated tenant"
            ));
            120
        }
        Some((n, _)) => n,
        None => 120,
    };
    let authority_host = url(raw.authority_host, cloud.authority_host(), errors);
    let credential = credential(raw.credential, authority_host, errors)?;
    Some(PowerBiConfig {
        hosts: HostPolicy {
            api_url,
            cluster_suffixes: vec![cloud.cluster_suffix().into()],
        },
        credential,
        scope: cloud.scope().into(),
        poll_interval,
        plan: PlanConfig {
            recent_hours: 2,
            lookback_hours: (lookback.as_secs() / 3600) as i64,
        },
        max_requests_per_hour,
        initial_lookback,
        retry: RetryPolicy {
            first_delay: retry_delay,
            ..RetryPolicy::default()
        },
        request_timeout,
        max_response_bytes,
        inventory,
    })
}

/// The credential settings the Logs Ingestion sink shares with the live source.
struct SinkCredential {
    raw: RawCredential,
    authority: Option<(String, String)>,
    cloud: Option<(String, String)>,
}

/// How the Logs Ingestion sink signs in: the live source's credential chain, with the Azure
/// Monitor scope of the cloud.
fn sink_identity(sink: SinkCredential, errors: &mut Vec<String>) -> Option<SinkIdentity> {
    let SinkCredential {
        raw: credential_raw,
        authority,
        cloud,
    } = sink;
    let cloud: Cloud = match cloud {
        None => Cloud::Public,
        Some((v, _)) => v.parse().unwrap_or(Cloud::Public),
    };
    let host = authority.map_or_else(|| cloud.authority_host().to_string(), |(v, _)| v);
    if !credential_raw.requested() && !credential_raw.on_managed_host() {
        errors.push("Logs Ingestion needs a credential: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or a certificate, a federated token, a managed identity)".into());
        return None;
    }
    let credential = credential(credential_raw, host, errors)?;
    Some(SinkIdentity {
        credential,
        scope: cloud.monitor_scope().into(),
    })
}

/// Secrets and host-provided endpoints come from the environment only (Azure SDK names).
fn read_credential_env(credential: &mut RawCredential) {
    let env = |name: &str| std::env::var(name).ok().filter(|s| !s.is_empty());
    credential.client_secret = env("AZURE_CLIENT_SECRET").map(Secret::new);
    credential.certificate_password = env("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(Secret::new);
    // azure-identity reads "true" or "1" (case-insensitive) as yes.
    credential.send_certificate_chain = env("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    credential.identity_endpoint =
        env("IDENTITY_ENDPOINT").zip(env("IDENTITY_HEADER").map(Secret::new));
    credential.msi_endpoint = env("MSI_ENDPOINT");
    // IDENTITY_ENDPOINT without IDENTITY_HEADER but with IMDS_ENDPOINT beside it: Azure Arc.
    credential.arc_endpoint = env("IDENTITY_ENDPOINT")
        .filter(|_| env("IDENTITY_HEADER").is_none() && env("IMDS_ENDPOINT").is_some());
    credential.msi_secret = env("MSI_SECRET").map(Secret::new);
}

/// The live source and the aggregation settings for `top` against a tenant: flags and the
/// environment only (no config file), checked like the exporter's.
pub fn live_for_top(args: &LiveArgs) -> Result<(PowerBiConfig, AggregateConfig), Problems> {
    let mut errors = Vec::new();
    let mut raw = RawLive::default();
    apply_live_flags(args, &mut raw);
    read_credential_env(&mut raw.credential);
    if !raw.credential.requested() {
        errors.push("top needs --replay PATH, or a tenant: set AZURE_TENANT_ID, AZURE_CLIENT_ID and a credential (see README, Connecting a real tenant)".into());
        return Err(Problems(errors));
    }
    let own_user = raw.credential.client_id.clone();
    let exclude_own_exports = !raw.count_own_exports;
    let live = live_source(raw, None, &mut errors);
    match live {
        Some(live) if errors.is_empty() => Ok((
            live,
            AggregateConfig {
                own_user,
                exclude_own_exports,
                ..AggregateConfig::default()
            },
        )),
        _ => Err(Problems(errors)),
    }
}

/// What the environment says about the credential (Azure SDK variable names).
#[derive(Debug, Default, Clone)]
struct RawCredential {
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<PathBuf>,
    /// `AZURE_CLIENT_SECRET`.
    client_secret: Option<Secret>,
    certificate_path: Option<PathBuf>,
    federated_token_file: Option<PathBuf>,
    managed_identity: bool,
    /// `AZURE_CLIENT_CERTIFICATE_PASSWORD`.
    certificate_password: Option<Secret>,
    /// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`.
    send_certificate_chain: bool,
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` (App Service, Container Apps).
    identity_endpoint: Option<(String, Secret)>,
    /// `MSI_ENDPOINT` (Cloud Shell, or with `MSI_SECRET` the 2017-09-01 protocol).
    msi_endpoint: Option<String>,
    /// `MSI_SECRET`.
    msi_secret: Option<Secret>,
    /// `IDENTITY_ENDPOINT` of an Azure Arc host (`IMDS_ENDPOINT` set, no `IDENTITY_HEADER`).
    arc_endpoint: Option<String>,
    imds_endpoint: Option<String>,
}

impl RawCredential {
    /// Whether anything asks for the live source.
    fn requested(&self) -> bool {
        self.tenant_id.is_some() || self.client_id.is_some() || self.managed_identity
    }

    /// Whether the host offers a managed identity through its variables (IMDS cannot be told
    /// without asking it).
    fn on_managed_host(&self) -> bool {
        self.identity_endpoint.is_some()
            || self.msi_endpoint.is_some()
            || self.arc_endpoint.is_some()
    }
}

/// Picks the credential the way the Azure SDKs' DefaultAzureCredential does — a client secret,
/// else a client certificate, else a federated token file (the environment and workload
/// identity credentials) — and else a managed identity, whether or not
/// `--azure.managed-identity` asks for it.
fn credential(
    raw: RawCredential,
    authority_host: String,
    errors: &mut Vec<String>,
) -> Option<Credential> {
    use crate::azure::auth::CertificateKey;
    let authority = |errors: &mut Vec<String>| match (&raw.tenant_id, &raw.client_id) {
        (Some(tenant_id), Some(client_id)) => Some(Authority {
            host: authority_host.clone(),
            tenant_id: tenant_id.clone(),
            client_id: client_id.clone(),
        }),
        _ => {
            errors.push("a client secret, certificate or federated token needs both AZURE_TENANT_ID (--azure.tenant-id) and AZURE_CLIENT_ID (--azure.client-id)".into());
            None
        }
    };
    if let Some(path) = &raw.client_secret_file {
        let text = read_named_file("--azure.client-secret-file", path, errors)?;
        if text.trim().is_empty() {
            errors.push(format!(
                "--azure.client-secret-file {}: the file is empty",
                path.display()
            ));
            return None;
        }
        let secret = Secret::new(text.trim_end_matches(['\r', '\n']));
        return Some(Credential::ClientSecret {
            authority: authority(errors)?,
            secret,
        });
    }
    if let Some(secret) = raw.client_secret.clone() {
        return Some(Credential::ClientSecret {
            authority: authority(errors)?,
            secret,
        });
    }
    if let Some(path) = &raw.certificate_path {
        let bytes = crate::files::read_small(path)
            .map_err(|e| {
                errors.push(format!(
                    "AZURE_CLIENT_CERTIFICATE_PATH {}: cannot read it: {e}",
                    path.display()
                ))
            })
            .ok()?;
        let password = raw.certificate_password.as_ref();
        let key = CertificateKey::from_file(&bytes, password, raw.send_certificate_chain)
            .map_err(|e| {
                errors.push(format!(
                    "AZURE_CLIENT_CERTIFICATE_PATH {}: {e}",
                    path.display()
                ))
            })
            .ok()?;
        return Some(Credential::Certificate {
            authority: authority(errors)?,
            key,
        });
    }
    if let Some(token_file) = raw.federated_token_file.clone() {
        return Some(Credential::WorkloadIdentity {
            authority: authority(errors)?,
            token_file,
        });
    }
    Some(Credential::ManagedIdentity(managed_identity(raw)))
}

/// The host's managed identity, found as azure-sdk-for-go's azidentity finds it:
/// `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` (App Service, Container Apps), else
/// `IDENTITY_ENDPOINT` + `IMDS_ENDPOINT` (Azure Arc), else `MSI_ENDPOINT`
/// (with `MSI_SECRET` the 2017-09-01 protocol, as azure-identity for Python reads it; alone,
/// Cloud Shell), else the instance metadata service. `AZURE_CLIENT_ID` picks a user-assigned
/// identity.
fn managed_identity(raw: RawCredential) -> crate::azure::auth::ManagedIdentity {
    use crate::azure::auth::{ManagedIdentity, IMDS_ENDPOINT};
    let client_id = raw.client_id;
    if let (None, Some(endpoint)) = (&raw.identity_endpoint, raw.arc_endpoint) {
        return ManagedIdentity::Arc { endpoint };
    }
    match (raw.identity_endpoint, raw.msi_endpoint, raw.msi_secret) {
        (Some((endpoint, header)), _, _) => ManagedIdentity::AppService {
            endpoint,
            header,
            client_id,
        },
        (None, Some(endpoint), Some(secret)) => ManagedIdentity::MsiSecret {
            endpoint,
            secret,
            client_id,
        },
        (None, Some(endpoint), None) => ManagedIdentity::CloudShell { endpoint },
        (None, None, _) => ManagedIdentity::Imds {
            endpoint: raw.imds_endpoint.unwrap_or_else(|| IMDS_ENDPOINT.into()),
            client_id,
        },
    }
}

/// The contents of `path`, or an error naming the setting (`what`) and the path.
fn read_named_file(what: &str, path: &std::path::Path, errors: &mut Vec<String>) -> Option<String> {
    crate::files::read_small_to_string(path)
        .map_err(|e| errors.push(format!("{what} {}: cannot read it: {e}", path.display())))
        .ok()
}

/// The probe's target, read like the exporter reads its own: `--config.file`'s `web:` section
/// (the whole file is checked, as the exporter would check it), the healthcheck's own flags
/// over it, then the default address.
pub fn probe_target(args: &crate::cli::HealthcheckArgs) -> Result<ProbeTarget, Problems> {
    let mut problems = Problems::default();
    let doc = Document::load(args.config_file.as_deref(), TOP_KEYS, &mut problems);
    let file = FileSections::read(&doc, &mut problems);
    let target = ProbeTarget::resolve(file.web, &args.web, &mut problems);
    problems.into_result(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::settings::LogFormat;

    #[test]
    fn a_full_file_is_read() {
        let c = Config::from_yaml(
            "web: {listen_address: '127.0.0.1:9999', telemetry_path: /m}\nlog: {level: debug, format: json}\n\
             demo: {enabled: true, seed: 3, backfill: 1h}\nlimits: {max_series: {powerbi_report_events_total: 7}}\ndedup: {window: 2d}\n",
        )
        .unwrap();
        assert_eq!(c.web.listen_address, "127.0.0.1:9999".parse().unwrap());
        assert_eq!(c.web.telemetry_path, "/m");
        assert_eq!(
            c.log,
            LogConfig {
                level: tracing::Level::DEBUG,
                format: LogFormat::Json
            }
        );
        assert_eq!(
            c.aggregate.limits.max_series["powerbi_report_events_total"],
            7
        );
        assert_eq!(c.aggregate.dedup_window, Duration::from_secs(2 * 86_400));
        let SourceConfig::Demo(d) = c.source else {
            panic!("demo expected")
        };
        assert_eq!((d.tenant.seed, d.backfill), (3, Duration::from_secs(3600)));
    }

    #[test]
    fn a_flag_switches_off_what_the_file_switched_on() {
        use clap::Parser as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        std::fs::write(
            &path,
            "demo: {enabled: true}\nweb: {disable_exporter_metrics: true}\nfilters: {exclude_service_principals: true}\n",
        )
        .unwrap();
        let load = |flags: &[&str]| {
            let file = ["powerbi-exporter", "--config.file", path.to_str().unwrap()];
            let cli = crate::cli::Cli::try_parse_from([&file[..], flags].concat()).unwrap();
            let c = Config::load(&cli.run).unwrap();
            (
                c.web.disable_exporter_metrics,
                c.aggregate.filters.exclude_service_principals,
            )
        };
        assert_eq!(load(&[]), (true, true));
        assert_eq!(
            load(&[
                "--web.disable-exporter-metrics=false",
                "--no-filter.exclude-service-principals"
            ]),
            (false, false)
        );
    }

    #[test]
    fn forwarding_is_read_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let c = Config::from_yaml(&format!(
            "demo: {{enabled: true}}\nstate: {{dir: {}}}\notlp: {{logs: true, logs_user_attribute: true}}\n\
             logs_ingestion: {{endpoint: 'https://dce.example.com', dcr_id: dcr-abc, timeout: 10s}}\n\
             forward: {{max_backlog_bytes: 1000}}\nazure: {{tenant_id: t1, client_id: c1, client_secret_file: {}, cloud: usgovhigh}}\n",
            dir.path().display(),
            secret.display()
        ))
        .unwrap();
        assert!(c.otlp.logs.is_some() && c.otlp.logs_user_attribute);
        assert_eq!(c.forward.max_backlog_bytes, 1000);
        let li = c.forward.logs_ingestion.unwrap();
        assert_eq!(
            (li.endpoint.as_str(), li.dcr_id.as_str(), li.stream.as_str()),
            (
                "https://dce.example.com",
                "dcr-abc",
                "Custom-PowerBIActivity_CL"
            )
        );
        assert_eq!(li.timeout, Duration::from_secs(10));
        // The sovereign cloud picks the monitor audience and the authority.
        assert_eq!(li.scope, "https://monitor.azure.us/.default");
        let Credential::ClientSecret { authority, secret } = &li.credential else {
            panic!("client secret expected")
        };
        assert_eq!(
            (authority.tenant_id.as_str(), authority.client_id.as_str()),
            ("t1", "c1")
        );
        assert_eq!(authority.host, "https://login.microsoftonline.us");
        assert_eq!(secret.expose(), "s3cret");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::from_yaml(
            "web: {listen_addres: ':1', telemetry_path: metrics}\nlog: {level: loud}\nlimits: {max_series: {powerbi_nope: 1, powerbi_active_users: 2}}\ndedup: {window: 10}\ncolour: red\n",
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "config key `colour` is unknown",
            "config key `web.listen_addres` is unknown (known keys here: listen_address, telemetry_path, disable_exporter_metrics, config_file, max_requests)",
            "config key `web.telemetry_path` \"metrics\": expected a path starting with '/'",
            "config key `log.level` \"loud\": expected one of debug, info, warn, error",
            "unknown family \"powerbi_nope\"",
            "powerbi_active_users has a fixed set of series and takes no cap",
            "config key `dedup.window`: expected a duration like 29d, got 10",
            "no source configured",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert_eq!(err.0.len(), 8, "{text}");
    }

    #[test]
    fn a_sovereign_cloud_sets_api_audience_authority_and_clusters_together() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        let yaml = format!(
            "azure: {{cloud: usgovhigh, tenant_id: t, client_id: c, client_secret_file: {}}}\n",
            empty.display()
        );
        // An empty secret file: the error names it, and the cloud still parsed.
        let err = Config::from_yaml(&yaml).unwrap_err().to_string();
        assert!(err.contains("the file is empty"), "{err}");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s\n").unwrap();
        let yaml = format!(
            "azure: {{cloud: usgovhigh, tenant_id: t, client_id: c, client_secret_file: {}}}\n",
            secret.display()
        );
        let c = Config::from_yaml(&yaml).unwrap();
        let SourceConfig::PowerBi(live) = c.source else {
            panic!("live source expected")
        };
        assert_eq!(live.hosts.api_url, "https://api.high.powerbigov.us");
        assert_eq!(
            live.hosts.cluster_suffixes,
            vec![".analysis.usgovcloudapi.net".to_string()]
        );
        assert_eq!(
            live.scope,
            "https://high.analysis.usgovcloudapi.net/powerbi/api/.default"
        );
        assert!(
            matches!(&live.credential, Credential::ClientSecret { authority, .. } if authority.host == "https://login.microsoftonline.us")
        );
        assert_eq!(
            (
                c.aggregate.own_user.as_deref(),
                c.aggregate.exclude_own_exports
            ),
            (Some("c"), true),
            "own exports filtered by default"
        );
        assert_eq!(
            c.aggregate.dedup_window,
            Duration::from_secs(26 * 3600),
            "lookback 24h + 2h"
        );
        assert!(Config::from_yaml("azure: {cloud: germany, tenant_id: t}\n")
            .unwrap_err()
            .to_string()
            .contains("expected one of public, usgov"));
    }
}
