//! Command-line flags, spelled like the Prometheus exporter-toolkit (`--web.*`, `--log.*`).
//!
//! Each component declares its own flags (`exposition::settings::WebFlags`, …), flattened
//! here; [`crate::app::settings`] layers them over the YAML file and validates the result.
//! Flags left unset are `None`, so the file's values survive.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exposition::settings::WebFlags;
use crate::source::powerbi::settings::LiveFlags;
use crate::source::settings::SourceFlags;
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

    #[command(flatten)]
    pub source: SourceFlags,

    /// Count only workspaces whose id or name matches this anchored regex (repeatable).
    #[arg(long = "filter.include-workspace", value_name = "REGEX")]
    pub filter_include_workspace: Vec<String>,

    /// Leave out workspaces whose id or name matches this anchored regex (repeatable).
    #[arg(long = "filter.exclude-workspace", value_name = "REGEX")]
    pub filter_exclude_workspace: Vec<String>,

    /// Leave out events in personal workspaces ("My workspace").
    #[arg(long = "filter.exclude-personal-workspaces")]
    pub filter_exclude_personal_workspaces: bool,

    /// Leave out events of users whose UserId matches this anchored, case-insensitive regex
    /// (repeatable).
    #[arg(long = "filter.exclude-user", value_name = "REGEX")]
    pub filter_exclude_user: Vec<String>,

    /// Leave out events of service principals (UserType 5 or 6, or a GUID UserId).
    #[arg(long = "filter.exclude-service-principals")]
    pub filter_exclude_service_principals: bool,

    /// Count only activities matching this anchored regex (repeatable).
    #[arg(long = "filter.include-activity", value_name = "REGEX")]
    pub filter_include_activity: Vec<String>,

    /// Leave out activities matching this anchored regex (repeatable).
    #[arg(long = "filter.exclude-activity", value_name = "REGEX")]
    pub filter_exclude_activity: Vec<String>,

    /// How users are labelled in powerbi_user_sensitive_events_total: pseudonym (a keyed
    /// hash), plain (the UserId, opt-in) or off (no per-user family) [default: pseudonym].
    #[arg(long = "users.label", value_name = "MODE", value_parser = ["pseudonym", "plain", "off"])]
    pub users_label: Option<String>,

    /// File holding the pseudonym key (any bytes, at least 16; env POWERBI_EXPORTER_PSEUDONYM_KEY
    /// holds it inline, and the file wins). Without either, a random key is kept in --state.dir.
    #[arg(long = "users.pseudonym-key-file", value_name = "FILE")]
    pub users_pseudonym_key_file: Option<PathBuf>,

    /// The tenant's e-mail domains, for external shares (repeatable or comma-separated);
    /// without it, the domains of the tenant's own users seen so far.
    #[arg(long = "tenant.domains", value_name = "DOMAIN", value_delimiter = ',')]
    pub tenant_domains: Vec<String>,

    /// Series cap of one family, e.g. powerbi_report_events_total=5000 (repeatable).
    #[arg(long = "limits.max-series", value_name = "FAMILY=N")]
    pub max_series: Vec<String>,

    /// Series with no event for this long expire, freeing their place under the cap (at least
    /// 29d: the 28-day windows) [default: 35d].
    #[arg(long = "limits.series-retention", value_name = "DURATION")]
    pub series_retention: Option<String>,

    /// How far behind the wall clock a re-delivered event is still recognised [default: the
    /// lookback + 2h for a live tenant, 29d for the demo; a replay has no window].
    #[arg(long = "dedup.window", value_name = "DURATION")]
    pub dedup_window: Option<String>,
    /// Directory for the durable state: counters, distinct users, dedup set and request ledgers
    /// continue across restarts. Without it, state lives in memory only.
    #[arg(long = "state.dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Push the metric families over OTLP (also on when OTEL_EXPORTER_OTLP_ENDPOINT or
    /// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is set); endpoint, protocol, headers, TLS, timeout
    /// and interval come from the standard OTEL_* variables.
    #[arg(long = "otlp.enabled")]
    pub otlp_enabled: bool,

    /// Forward every counted event as an OTLP log record (needs --state.dir: delivery is
    /// at-least-once from a durable spool).
    #[arg(long = "otlp.logs")]
    pub otlp_logs: bool,

    /// Add the event's UserId as the `user.id` attribute of OTLP log records.
    #[arg(long = "otlp.logs.user-attribute")]
    pub otlp_logs_user_attribute: bool,

    /// Azure Monitor Logs Ingestion: the data collection endpoint (or the rule's
    /// logsIngestion endpoint) that receives every counted event as a row.
    #[arg(long = "logs-ingestion.endpoint", value_name = "URL")]
    pub logs_ingestion_endpoint: Option<String>,

    /// Immutable id of the data collection rule (dcr-…).
    #[arg(long = "logs-ingestion.dcr-id", value_name = "ID")]
    pub logs_ingestion_dcr_id: Option<String>,

    /// Stream of the data collection rule [default: Custom-PowerBIActivity_CL].
    #[arg(long = "logs-ingestion.stream", value_name = "NAME")]
    pub logs_ingestion_stream: Option<String>,

    /// Time allowed for one Logs Ingestion request [default: 30s].
    #[arg(long = "logs-ingestion.timeout", value_name = "DURATION")]
    pub logs_ingestion_timeout: Option<String>,

    /// Disk the forwarding spool may use for events a destination has not accepted yet;
    /// past it the oldest are dropped and counted [default: 1073741824, 1 GiB].
    #[arg(long = "forward.max-backlog-bytes", value_name = "BYTES")]
    pub forward_max_backlog_bytes: Option<u64>,
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
    pub live: LiveFlags,

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

    /// Address the exporter listens on; an all-interfaces address is checked on loopback
    /// [default: the config file's, else :10195].
    #[arg(long = "web.listen-address", value_name = "HOST:PORT")]
    pub listen_address: Option<String>,

    /// The exporter's web config: when it turns TLS on, the probe speaks TLS (without checking
    /// the certificate: it is the exporter's own address).
    #[arg(
        long = "web.config.file",
        value_name = "FILE",
        env = "POWERBI_EXPORTER_WEB_CONFIG_FILE"
    )]
    pub web_config_file: Option<std::path::PathBuf>,

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
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["powerbi-exporter"], args].concat()).unwrap();
            let web = cli.run.web;
            crate::config::switch(
                web.disable_exporter_metrics,
                web.no_disable_exporter_metrics,
            )
        };
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&["--web.disable-exporter-metrics"]), Some(true));
        assert_eq!(parse(&["--web.disable-exporter-metrics=true"]), Some(true));
        assert_eq!(
            parse(&["--web.disable-exporter-metrics=false"]),
            Some(false)
        );
        assert_eq!(parse(&["--no-web.disable-exporter-metrics"]), Some(false));
        // The last of the pair wins, as in kingpin.
        assert_eq!(
            parse(&[
                "--web.disable-exporter-metrics",
                "--no-web.disable-exporter-metrics"
            ]),
            Some(false)
        );
        assert_eq!(
            parse(&[
                "--no-web.disable-exporter-metrics",
                "--web.disable-exporter-metrics"
            ]),
            Some(true)
        );
    }

    #[test]
    fn the_sources_switches_take_their_no_form_and_the_api_only_demo_needs_the_demo() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["powerbi-exporter"], args].concat());
        let source = |args: &[&str]| parse(args).unwrap().run.source;
        assert_eq!(source(&["--demo"]).demo.enabled(), Some(true));
        assert_eq!(source(&["--no-demo"]).demo.enabled(), Some(false));
        assert_eq!(source(&["--demo=false"]).demo.enabled(), Some(false));
        assert_eq!(source(&[]).demo.enabled(), None);
        let live = source(&[
            "--no-powerbi.count-own-exports",
            "--no-azure.managed-identity",
        ])
        .live;
        assert!(live.powerbi_no_count_own_exports && live.azure.azure_no_managed_identity);
        assert!(parse(&["--demo.api-only"]).is_err());
        assert!(parse(&["--demo", "--demo.api-only"]).is_ok());
    }
}
