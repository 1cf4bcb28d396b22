//! The `powerbi-exporter` binary: parses flags, loads the configuration, runs a command.
//! Exit codes: 0 success, 1 runtime failure, 2 bad flags or configuration.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

use powerbi_exporter::cli::{Cli, Command, SimulateArgs, TopArgs};
use std::time::Duration;

use powerbi_exporter::app::settings::{self, Config};
use powerbi_exporter::config::Problems;
use powerbi_exporter::decode::UnixMillis;
use powerbi_exporter::exposition::healthcheck;
use powerbi_exporter::rng::Rng;
use powerbi_exporter::simulator::{self, Layout, Tenant, TenantSpec};
use powerbi_exporter::source::powerbi::progress::ProgressMode;
use powerbi_exporter::source::powerbi::{self, PowerBiSource};
use powerbi_exporter::source::replay::Replay;
use powerbi_exporter::source::Source;
use powerbi_exporter::telemetry::{LogConfig, LogFormat};
use powerbi_exporter::{aggregate, app, backfill, duration, pipeline, telemetry, top};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        print!("{}", powerbi_exporter::build::version_text());
        return ExitCode::SUCCESS;
    }
    powerbi_exporter::install_tls_provider();
    let result = match cli.command {
        Some(Command::Top(args)) => {
            let source = match top_source(&args) {
                Ok(source) => source,
                Err(problems) => {
                    eprint!("powerbi-exporter top: {problems}");
                    return ExitCode::from(2);
                }
            };
            with_default_logging(|| runtime()?.block_on(run_top(*args, source)))
        }
        Some(Command::Backfill(args)) => {
            let config = match settings::backfill(&args) {
                Ok(config) => config,
                Err(problems) => {
                    eprint!("powerbi-exporter backfill: {problems}");
                    return ExitCode::from(2);
                }
            };
            with_default_logging(|| runtime()?.block_on(run_backfill(config)))
        }
        Some(Command::Simulate(args)) => with_default_logging(|| simulate(&args)),
        Some(Command::Healthcheck(args)) => match settings::probe_target(&args) {
            Ok(target) => healthcheck(&target, args.ready),
            Err(errors) => {
                eprint!("powerbi-exporter healthcheck: {errors}");
                return ExitCode::from(2);
            }
        },
        Some(Command::CheckConfig(args)) => match Config::load(&args) {
            Ok(config) => {
                print!("{}", config.describe());
                Ok(())
            }
            Err(errors) => {
                eprint!("powerbi-exporter: {errors}");
                return ExitCode::from(2);
            }
        },
        None => {
            let config = match Config::load(&cli.run) {
                Ok(c) => c,
                Err(errors) => {
                    eprint!("powerbi-exporter: {errors}");
                    return ExitCode::from(2);
                }
            };
            telemetry::init(&config.log);
            runtime().and_then(|rt| rt.block_on(app::run(config)).map_err(anyhow::Error::from))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("powerbi-exporter: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn with_default_logging(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    telemetry::init(&LogConfig {
        level: tracing::Level::WARN,
        format: LogFormat::Logfmt,
    });
    f()
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The saved events of `--replay`, or the tenant's last `--since`.
fn top_source(args: &TopArgs) -> Result<Box<dyn Source>, Problems> {
    let problem = |p: String| Problems(vec![p]);
    if let Some(path) = &args.replay {
        return Ok(Box::new(
            Replay::new(path).map_err(|e| problem(e.to_string()))?,
        ));
    }
    let since = duration::parse(&args.since).map_err(|e| problem(format!("flag --since: {e}")))?;
    if since > Duration::from_secs(28 * 86_400) {
        return Err(problem(
            "flag --since: the API keeps 28 days of activity; at most 28d".into(),
        ));
    }
    let live = powerbi::settings::for_top(&args.live)?;
    Ok(Box::new(
        PowerBiSource::history(live, since, ProgressMode::for_stderr())
            .map_err(|e| problem(e.to_string()))?,
    ))
}

async fn run_top(args: TopArgs, source: Box<dyn Source>) -> anyhow::Result<()> {
    let ranking = top::Ranking::new(
        &args.activity,
        aggregate::AggregateConfig::default().dedup_window,
    );
    let (ranking, report) = pipeline::run_to_end(source, ranking).await?;
    let rows = ranking.rows(args.limit as usize);
    print!("{}", top::table(&rows, &args.activity));
    eprintln!(
        "{} events read: {} duplicates and {} rejected skipped; {} reports shown.",
        ranking.events_read,
        ranking.duplicates,
        ranking.rejected,
        rows.len()
    );
    if let Some(path) = &args.csv {
        std::fs::write(path, top::csv(&rows, &args.activity))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if report.failed_documents > 0 {
        return Err(app::AppError::Documents(report).into());
    }
    if !ranking.complete {
        anyhow::bail!("some hours of the activity log could not be read (see the log above); the ranking misses their events");
    }
    Ok(())
}

async fn run_backfill(config: backfill::BackfillConfig) -> anyhow::Result<()> {
    let out = config.settings.out.clone();
    let state_dir = config.state_dir.clone();
    let summary = backfill::run(config).await?;
    let w = summary.written;
    eprintln!(
        "Wrote {} samples of {} series at {} instants ({} events read) to {} ({} bytes).",
        w.samples,
        w.series,
        summary.steps,
        summary.events,
        out.display(),
        w.bytes
    );
    if let (true, Some(dir)) = (summary.state_saved, state_dir) {
        eprintln!(
            "The state at the end of the range is in {}: start the exporter with --state.dir {} to continue every counter from there.",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// GET /-/healthy (or /-/ready) on the exporter's address; any 2xx is a yes.
fn healthcheck(
    target: &powerbi_exporter::exposition::settings::ProbeTarget,
    ready: bool,
) -> anyhow::Result<()> {
    let mut addr = target.listen_address;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let tls = match &target.web_config_file {
        Some(path) => powerbi_exporter::exposition::webconfig::WebSettings::load(path)?
            .tls
            .is_some(),
        None => false,
    };
    let probe = if ready {
        healthcheck::Probe::Ready
    } else {
        healthcheck::Probe::Alive
    };
    Ok(healthcheck::check(addr, tls, probe)?)
}

fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let end = args.end.map_or_else(UnixMillis::now, UnixMillis::from_secs);
    let from = end.saturating_sub_millis(i64::from(args.days) * 86_400_000);
    let layout = match args.format.as_str() {
        "array" => Layout::Array,
        "jsonl" => Layout::Jsonl,
        _ => Layout::Pages,
    };
    let tenant = Tenant::new(TenantSpec {
        seed: args.seed,
        ..TenantSpec::default()
    });
    let mut rng = Rng::new(args.seed.wrapping_add(1));
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    simulator::write_archive(
        &tenant,
        &mut rng,
        args.events,
        (from, end),
        layout,
        std::io::BufWriter::new(file),
    )
    .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(())
}
