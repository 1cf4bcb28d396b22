//! Command-line flags, spelled like the Prometheus exporter-toolkit (`--web.*`, `--log.*`).
//!
//! Each component declares its own flags (`exposition::settings::WebFlags`, …), flattened
//! here; [`crate::app::settings`] layers them over the YAML file and validates the result.
//! Flags left unset are `None`, so the file's values survive.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::aggregate::settings::AggregateFlags;
use crate::exposition::settings::{OtlpFlags, ProbeFlags, WebFlags};
use crate::forward::settings::ForwardFlags;
use crate::state::settings::StateFlags;
use crate::telemetry::settings::LogFlags;

#[derive(Debug, Parser)]
#[command(
    name = "powerbi-exporter",
    disable_version_flag = true,
    about = "Prometheus exporter for Power BI / Microsoft Fabric activity events.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Print the version, revision, branch, build user and date, and toolchain (as Prometheus'
    /// `--version` does), and exit.
    #[arg(long, short = 'V')]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rank the most used reports of a source (what the original usage script did).
    Top(Box<TopArgs>),
    /// Write events of the simulated tenant to a file, for replay tests and benchmarks.
    Simulate(SimulateArgs),
    /// Print the effective configuration (file, flags and environment merged) with secrets
    /// redacted; exit 0 when it is valid, 2 with every problem when not.
    CheckConfig(Box<RunArgs>),
    /// Exit 0 when a running exporter answers /-/healthy, or /-/ready with --ready (for container
    /// health checks and Kubernetes probes, where there is no shell or curl).
    Healthcheck(HealthcheckArgs),
}

/// Flags of the exporter itself.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// YAML configuration file; flags override its values.
    #[arg(
        long = "config.file",
        value_name = "FILE",
        env = "POWERBI_EXPORTER_CONFIG_FILE"
    )]
    pub config_file: Option<PathBuf>,

    #[command(flatten)]
    pub web: WebFlags,

    #[command(flatten)]
    pub log: LogFlags,

    /// Replay saved activity events: a file or a directory of API pages, JSON arrays of
    /// events, or JSON Lines.
    #[arg(long, value_name = "PATH")]
    pub replay: Option<PathBuf>,

    /// Event ids a replay pass may remember (≈20–40 bytes each); a larger archive is read in
    /// passes of days [default: 2000000].
    #[arg(long = "replay.max-ids-per-pass", value_name = "N")]
    pub replay_max_ids_per_pass: Option<usize>,

    /// Run on the built-in simulated tenant.
    #[arg(long)]
    pub demo: bool,

    /// Process the source to its end, print the metrics to stdout and exit (replay only).
    #[arg(long)]
    pub once: bool,

    /// Seed of the simulated tenant [default: 1].
    #[arg(long = "demo.seed", value_name = "N")]
    pub demo_seed: Option<u64>,

    /// Events per minute in the simulated tenant's busiest minute [default: 600].
    #[arg(long = "demo.peak-events-per-minute", value_name = "N")]
    pub demo_peak_events_per_minute: Option<f64>,

    /// History the simulated tenant generates at start [default: 6h].
    #[arg(long = "demo.backfill", value_name = "DURATION")]
    pub demo_backfill: Option<String>,

    /// Serve only the simulated tenant (Activity Events API, admin groups, token endpoint) on
    /// 127.0.0.1 at the port of --web.listen-address, without exporting: point an exporter, a
    /// script or a notebook at it.
    #[arg(long = "demo.api-only", requires = "demo")]
    pub demo_api_only: bool,

    #[command(flatten)]
    pub aggregate: AggregateFlags,

    #[command(flatten)]
    pub state: StateFlags,

    #[command(flatten)]
    pub otlp: OtlpFlags,

    #[command(flatten)]
    pub forward: ForwardFlags,

    #[command(flatten)]
    pub live: LiveArgs,
}

/// Flags of the live source (also read by `top`).
#[derive(Debug, Args, Default)]
pub struct LiveArgs {
    /// Base URL of the Power BI REST API [default: <https://api.powerbi.com>].
    #[arg(long = "powerbi.api-url", value_name = "URL")]
    pub powerbi_api_url: Option<String>,

    /// How often the activity log is polled [default: 5m].
    #[arg(long = "powerbi.poll-interval", value_name = "DURATION")]
    pub powerbi_poll_interval: Option<String>,

    /// How far back hours are read again for late events, at most 28d [default: 24h].
    #[arg(long = "powerbi.lookback", value_name = "DURATION")]
    pub powerbi_lookback: Option<String>,

    /// History loaded at first start; by default only events from the start on [default: 0s].
    #[arg(long = "powerbi.initial-lookback", value_name = "DURATION")]
    pub powerbi_initial_lookback: Option<String>,

    /// Requests to the Activity Events API in any rolling hour, retries included; the API
    /// allows 200 for all callers together [default: 120].
    #[arg(long = "powerbi.max-requests-per-hour", value_name = "N")]
    pub powerbi_max_requests_per_hour: Option<usize>,

    /// First delay before retrying a failed request; doubles up to 60s [default: 2s].
    #[arg(long = "powerbi.retry-delay", value_name = "DURATION")]
    pub powerbi_retry_delay: Option<String>,

    /// Time allowed for one API request, from connecting to the last byte of the body
    /// (a server that trickles bytes is cut off) [default: 120s].
    #[arg(long = "powerbi.request-timeout", value_name = "DURATION")]
    pub powerbi_request_timeout: Option<String>,

    /// Largest API response body accepted, in bytes; a larger page fails its hour (retried at
    /// the next poll) instead of filling memory [default: 67108864 = 64 MiB].
    #[arg(long = "powerbi.max-response-bytes", value_name = "BYTES")]
    pub powerbi_max_response_bytes: Option<usize>,

    /// Sovereign cloud: public, usgov, usgovhigh, usdod or china; sets the API URL, the token
    /// audience, the authority and the cluster hosts together [default: public].
    #[arg(
        long = "azure.cloud",
        value_name = "CLOUD",
        env = "POWERBI_EXPORTER_AZURE_CLOUD"
    )]
    pub azure_cloud: Option<String>,

    /// Also count the exporter's own reads of the activity log (ExportActivityEvents by its
    /// client id), which are left out of the usage families by default.
    #[arg(long = "powerbi.count-own-exports")]
    pub powerbi_count_own_exports: bool,

    /// Read the tenant's workspaces and reports (admin/groups) for names, workspace types,
    /// capacities and unused reports; within its own request budget.
    #[arg(long = "inventory.enabled")]
    pub inventory_enabled: bool,

    /// How often the inventory is read again [default: 24h].
    #[arg(long = "inventory.refresh", value_name = "DURATION")]
    pub inventory_refresh: Option<String>,

    /// Time allowed for one inventory page [default: 30s, the API's own limit].
    #[arg(long = "inventory.timeout", value_name = "DURATION")]
    pub inventory_timeout: Option<String>,

    /// Inventory requests in any rolling hour; the API allows 50 for the whole tenant
    /// [default: 20].
    #[arg(long = "inventory.max-requests-per-hour", value_name = "N")]
    pub inventory_max_requests_per_hour: Option<usize>,

    /// Workspaces asked for per inventory page (`$top`, 1 to 5000) [default: 2000: a page of
    /// 5000 with its reports risks the API's 30 s limit].
    #[arg(long = "inventory.page-size", value_name = "N")]
    pub inventory_page_size: Option<usize>,

    /// Entra ID authority [default: the cloud's, <https://login.microsoftonline.com>].
    #[arg(
        long = "azure.authority-host",
        value_name = "URL",
        env = "AZURE_AUTHORITY_HOST"
    )]
    pub azure_authority_host: Option<String>,

    /// Entra ID tenant of the service principal.
    #[arg(long = "azure.tenant-id", value_name = "ID", env = "AZURE_TENANT_ID")]
    pub azure_tenant_id: Option<String>,

    /// Application (client) id of the service principal.
    #[arg(long = "azure.client-id", value_name = "ID", env = "AZURE_CLIENT_ID")]
    pub azure_client_id: Option<String>,

    /// File holding the client secret (e.g. a mounted Kubernetes Secret); otherwise the secret
    /// is read from AZURE_CLIENT_SECRET. There is no flag for the secret itself.
    #[arg(
        long = "azure.client-secret-file",
        value_name = "FILE",
        env = "AZURE_CLIENT_SECRET_FILE"
    )]
    pub azure_client_secret_file: Option<PathBuf>,

    /// PEM file with the client certificate and its private key, or a PFX/PKCS#12 file
    /// (AZURE_CLIENT_CERTIFICATE_PASSWORD opens an encrypted key or the PFX).
    #[arg(
        long = "azure.client-certificate-path",
        value_name = "FILE",
        env = "AZURE_CLIENT_CERTIFICATE_PATH"
    )]
    pub azure_client_certificate_path: Option<PathBuf>,

    /// Federated token file of a workload identity (AKS sets it); re-read for every token.
    #[arg(
        long = "azure.federated-token-file",
        value_name = "FILE",
        env = "AZURE_FEDERATED_TOKEN_FILE"
    )]
    pub azure_federated_token_file: Option<PathBuf>,

    /// Use the managed identity of the host (App Service / Container Apps through
    /// IDENTITY_ENDPOINT, MSI_ENDPOINT hosts, else the instance metadata service);
    /// AZURE_CLIENT_ID picks a user-assigned identity. Tried by itself when a tenant or client
    /// id is set without a secret, certificate or federated token.
    #[arg(long = "azure.managed-identity")]
    pub azure_managed_identity: bool,

    /// Token endpoint of the instance metadata service [default: http://169.254.169.254/metadata/identity/oauth2/token].
    #[arg(long = "azure.imds-endpoint", value_name = "URL")]
    pub azure_imds_endpoint: Option<String>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Saved activity events to rank (file or directory, as for the exporter's --replay);
    /// without it, the tenant configured by AZURE_* / --azure.* is read.
    #[arg(long, value_name = "PATH")]
    pub replay: Option<PathBuf>,

    /// How far back to read the tenant (at most 28d; live tenant only).
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    pub since: String,

    #[command(flatten)]
    pub live: LiveArgs,

    /// Activity to count (case-insensitive).
    #[arg(long, default_value = "ViewReport")]
    pub activity: String,

    /// Number of reports to show.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,

    /// Also write the ranking as CSV to this file.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The exporter's YAML configuration: its `web:` section gives the address and the web
    /// config, as it gives them to the exporter; the flags below override it.
    #[arg(
        long = "config.file",
        value_name = "FILE",
        env = "POWERBI_EXPORTER_CONFIG_FILE"
    )]
    pub config_file: Option<PathBuf>,

    #[command(flatten)]
    pub web: ProbeFlags,

    /// Ask /-/ready instead of /-/healthy (a readiness probe): fails with 503 until the first
    /// source document is applied. Behind basic auth or client certificates the probe cannot
    /// see the answer, and a running server counts as ready.
    #[arg(long)]
    pub ready: bool,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Number of events to write.
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,

    /// The events are spread over this many days before --end.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=28))]
    pub days: u32,

    /// End of the simulated period, as a Unix timestamp in seconds [default: now].
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub end: Option<i64>,

    /// Seed of the simulated tenant and its events.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Layout of the file: API pages (5000 events each), one JSON array, or JSON Lines.
    #[arg(long, default_value = "pages", value_parser = ["pages", "array", "jsonl"])]
    pub format: String,

    /// File to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_flags_of_every_component_fit_together() {
        // Flattened components must not reuse an argument id; clap checks it here, not only
        // at the first run.
        Cli::command().debug_assert();
    }

    #[test]
    fn a_switch_is_on_with_its_name_or_true_and_off_with_false_or_its_no_form() {
        use crate::config::{switch, Origin, Sourced};
        // The file switched it on; the flags decide last.
        let file = || {
            Some(Sourced::new(
                true,
                Origin::File("web.disable_exporter_metrics".into()),
            ))
        };
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["powerbi-exporter"], args].concat()).unwrap();
            let web = cli.run.web;
            let flags = (
                web.disable_exporter_metrics,
                web.no_disable_exporter_metrics,
            );
            (
                switch(None, flags.0, flags.1),
                switch(file(), flags.0, flags.1),
            )
        };
        assert_eq!(parse(&[]), (false, true));
        assert_eq!(parse(&["--web.disable-exporter-metrics"]), (true, true));
        assert_eq!(
            parse(&["--web.disable-exporter-metrics=true"]),
            (true, true)
        );
        assert_eq!(
            parse(&["--web.disable-exporter-metrics=false"]),
            (false, false)
        );
        assert_eq!(
            parse(&["--no-web.disable-exporter-metrics"]),
            (false, false)
        );
        // The last of the pair wins, as in kingpin.
        assert_eq!(
            parse(&[
                "--web.disable-exporter-metrics",
                "--no-web.disable-exporter-metrics"
            ]),
            (false, false)
        );
        assert_eq!(
            parse(&[
                "--no-web.disable-exporter-metrics",
                "--web.disable-exporter-metrics"
            ]),
            (true, true)
        );
    }
}
