//! Command-line flags, spelled like the Prometheus exporter-toolkit (`--web.*`, `--log.*`).
//!
//! Each component declares its own flags (`exposition::settings::WebFlags`, …), flattened
//! here; [`crate::app::settings`] layers them over the YAML file and validates the result.
//! Flags left unset are `None`, so the file's values survive.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::aggregate::settings::AggregateFlags;
use crate::backfill::settings::BackfillFlags;
use crate::exposition::settings::{OtlpFlags, ProbeFlags, WebFlags};
use crate::forward::settings::ForwardFlags;
use crate::source::powerbi::settings::LiveFlags;
use crate::source::settings::SourceFlags;
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
    /// Write past activity (the live tenant's last --since, or --replay archives) as OpenMetrics
    /// with a timestamp on every sample, for `promtool tsdb create-blocks-from openmetrics`;
    /// with --state.dir, leave the state the exporter continues from without a seam. Takes
    /// every flag of the exporter, so one configuration serves both.
    Backfill(Box<BackfillArgs>),
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

    #[command(flatten)]
    pub aggregate: AggregateFlags,

    #[command(flatten)]
    pub state: StateFlags,

    #[command(flatten)]
    pub otlp: OtlpFlags,

    #[command(flatten)]
    pub forward: ForwardFlags,
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
pub struct BackfillArgs {
    #[command(flatten)]
    pub backfill: BackfillFlags,

    #[command(flatten)]
    pub run: RunArgs,
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
