//! Wiring of the exporter: source → pipeline → aggregator → HTTP, until SIGTERM/SIGINT;
//! or, with `--once`, source to its end → exposition on stdout.
//!
//! The top of the stage order: it composes the stages' settings and starts them; no other
//! module imports it.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

pub mod settings;

pub use settings::{Config, SourceConfig};

use crate::aggregate::people::UserLabelConfig;
use crate::aggregate::{Aggregator, Reference};

use crate::exposition::otlp::{self, MetricsPush, OtlpError, OtlpStats};
use crate::exposition::scrape::{Counted, Served, SharedCollector};
use crate::exposition::webconfig::{WebConfigError, WebSettings};
use crate::exposition::{http, status as http_status, text};
use crate::forward::logs_ingestion::LogsIngestion;
use crate::forward::otlp_logs::OtlpLogs;
use crate::forward::{self, ForwardStats};
use crate::pipeline::{self, RunReport};
use crate::simulator::api::SimulatedApi;
use crate::source::demo::{simulated_tenant, Demo, DemoConfig};
use crate::source::powerbi::PowerBiSource;
use crate::source::replay::{Replay, ReplayProgress};
use crate::source::{Source, SourceError, SourceStatus};
use crate::state::live::reference_now;
use crate::state::spool::{SpoolReader, SpoolWriter};
use crate::state::{
    Checkpointer, Published, SaveErrors, SharedSourceState, SourceState, StateError, StateFile,
};

/// Why the exporter stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot listen on {addr}: {source} (choose another --web.listen-address)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{} document(s) could not be read to their end; the events before each fault were counted:\n{}", .0.failed_documents, list(&.0.errors))]
    Documents(RunReport),
    #[error(transparent)]
    WebConfig(#[from] WebConfigError),
    #[error("writing to stdout failed: {0}")]
    Stdout(std::io::Error),
    #[error(transparent)]
    Otlp(#[from] OtlpError),
    #[error("cannot open the forwarding spool {dir}: {source}")]
    Spool {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up the Logs Ingestion client: {0}")]
    LogsIngestion(String),
}

fn list(errors: &[pipeline::DocumentError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Builds the configured source; a live source resumes from `resume` when given, a replay in
/// passes from `progress`.
pub fn build_source(
    config: &SourceConfig,
    resume: Option<SourceStatus>,
    progress: Option<ReplayProgress>,
) -> Result<Box<dyn Source>, SourceError> {
    Ok(match config {
        SourceConfig::Replay(replay) => Box::new(Replay::with_config(replay, progress)?),
        SourceConfig::Demo(demo) => Box::new(Demo::new(demo.clone())),
        SourceConfig::PowerBi(live) => Box::new(PowerBiSource::new((**live).clone(), resume)?),
    })
}

/// Runs the exporter as configured.
pub async fn run(config: Config) -> Result<(), AppError> {
    if let SourceConfig::Demo(demo) = &config.source {
        if demo.api_only {
            return serve_simulated_tenant(demo, config.web.listen_address).await;
        }
    }
    if config.once {
        let source = build_source(&config.source, None, None)?;
        return run_once(source, &config).await;
    }
    serve(config).await
}

async fn run_once(source: Box<dyn Source>, config: &Config) -> Result<(), AppError> {
    let (aggregator, report) =
        pipeline::run_to_end(source, Aggregator::new(&config.aggregate)).await?;
    let body = text::render(&aggregator.snapshot(Reference::NewestEvent));
    std::io::stdout()
        .lock()
        .write_all(&body)
        .map_err(AppError::Stdout)?;
    if report.failed_documents > 0 {
        return Err(AppError::Documents(report));
    }
    Ok(())
}

async fn serve(config: Config) -> Result<(), AppError> {
    let state_file = config
        .state_dir
        .as_deref()
        .map(StateFile::open)
        .transpose()?;
    let (config, aggregator, mut source_state) = restore(config, state_file.as_ref())?;
    let resume = source_state.status.clone();
    if let SourceConfig::Replay(replay) = &config.source {
        source_state.replay = ReplayProgress::for_archive(&source_state.replay, &replay.path);
    }
    let progress = source_state.replay_progress().cloned();
    let source = build_source(&config.source, resume, progress)?;
    let timing = source.timing();
    let aggregator = Arc::new(Mutex::new(aggregator));
    let source_state: SharedSourceState = Arc::new(Mutex::new(source_state));

    let addr = config.web.listen_address;
    let listener = http::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(address = %local, telemetry_path = %config.web.telemetry_path, version = crate::VERSION, "Listening.");

    let stats = SelfStats::new(&config);
    let resource = otlp::resource(config.tenant_id().as_deref(), local.port());
    let spool = start_forwarding(&config, &aggregator, &stats.forward, &resource)?;
    let published: Published = Arc::new(Mutex::new(None));
    let durable = state_file.is_some();
    let mut checkpointer = match state_file {
        Some(file) => Checkpointer::new(file, published.clone(), timing),
        None => Checkpointer::publishing_only(published.clone(), timing),
    };
    checkpointer.spool = spool;
    checkpointer.errors = stats.save_errors.clone();
    checkpointer.source = source_state.clone();
    checkpointer.checkpoint(&aggregator);
    if !durable {
        tracing::info!(
            "No --state.dir: counters live in memory only and start from zero after a restart."
        );
    }
    let counted = Counted(published);
    let served = stats.served(counted, &config);
    let pipeline = Running::start(
        source,
        aggregator.clone(),
        source_state.clone(),
        Some(checkpointer),
    );
    let metrics_push = start_metrics_push(&config, resource, served.clone(), stats.otlp)?;
    let status = move || {
        let reference = reference_now(timing);
        let usage = pipeline::lock(&aggregator).status_data(reference, http_status::TOP_REPORTS);
        http_status::StatusData::new(pipeline::lock_source(&source_state).status.clone(), usage)
    };
    let exposition = http::Exposition {
        collector: served,
        status: Box::new(status),
        ready: pipeline.ready.clone(),
        telemetry_path: config.web.telemetry_path.clone(),
        process_metrics: !config.web.disable_exporter_metrics,
        max_requests: config.web.max_requests,
        web_config: config.web.config_file.clone(),
    };
    let settings = match &config.web.config_file {
        Some(path) => WebSettings::load(path)?,
        None => WebSettings::plain(),
    };
    http::serve(listener, exposition, settings, shutdown_signal()).await;
    tracing::info!("Shutting down.");
    pipeline.stop(metrics_push).await;
    Ok(())
}

/// What the run continues from: the saved aggregator and source state, or a fresh start; and
/// the configuration with the pseudonym key kept in the state directory.
fn restore(
    config: Config,
    state_file: Option<&StateFile>,
) -> Result<(Config, Aggregator, SourceState), AppError> {
    // Read before anything is written to the directory: a state that cannot be read stops the
    // start with the directory as it was.
    let restored = match state_file {
        Some(file) => file.load()?,
        None => None,
    };
    let config = with_pseudonym_key(config, state_file)?;
    let (aggregator, source_state) = match restored {
        Some(saved) => saved.resume(&config.aggregate),
        None => (Aggregator::new(&config.aggregate), SourceState::default()),
    };
    Ok((config, aggregator, source_state))
}

/// The source feeding the decode thread, which applies its documents to the aggregator and
/// saves checkpoints.
struct Running {
    producer: tokio::task::JoinHandle<()>,
    consumer: std::thread::JoinHandle<RunReport>,
    /// Set once the first source document has been applied.
    ready: Arc<AtomicBool>,
    /// Tells the consumer not to wait for a held-back checkpoint any longer.
    stop: Arc<AtomicBool>,
}

impl Running {
    fn start(
        source: Box<dyn Source>,
        aggregator: Arc<Mutex<Aggregator>>,
        source_state: SharedSourceState,
        checkpointer: Option<Checkpointer>,
    ) -> Running {
        let ready = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel(4);
        let consumer = pipeline::spawn_shared_consumer(
            rx,
            aggregator,
            source_state,
            ready.clone(),
            checkpointer,
            stop.clone(),
        );
        let producer = tokio::spawn(async move {
            match source.run(tx).await {
                Ok(()) => tracing::info!("Source finished; serving the final values."),
                Err(e) => tracing::error!(error = %e, "Source stopped."),
            }
        });
        Running {
            producer,
            consumer,
            ready,
            stop,
        }
    }

    /// Stops the source after a last OTLP push, and waits for the consumer's last checkpoint.
    async fn stop(self, metrics_push: Option<MetricsPush>) {
        self.stop.store(true, Ordering::Release);
        if let Some(push) = metrics_push {
            last_push(push).await;
        }
        self.producer.abort();
        let _ = self.producer.await;
        // The consumer ends once the producer's channel is dropped, saving a last checkpoint.
        let consumer = self.consumer;
        let _ = tokio::task::spawn_blocking(move || consumer.join()).await;
    }
}

/// The users' pseudonym key: with a state directory and no key of the operator's, the one kept
/// there, so pseudonyms survive restarts.
fn with_pseudonym_key(
    mut config: Config,
    state_file: Option<&StateFile>,
) -> Result<Config, AppError> {
    if let (UserLabelConfig::PseudonymUnkeyed, Some(file)) = (&config.aggregate.users, state_file) {
        config.aggregate.users = UserLabelConfig::Pseudonym(file.pseudonym_key()?);
    } else if config.aggregate.users == UserLabelConfig::PseudonymUnkeyed {
        tracing::warn!("No --state.dir and no --users.pseudonym-key-file: user pseudonyms use a key for this run only and change at restart.");
    }
    Ok(config)
}

/// The exporter's own stats, updated by the parts they describe and read at every scrape.
struct SelfStats {
    forward: ForwardStats,
    save_errors: SaveErrors,
    otlp: OtlpStats,
}

impl SelfStats {
    fn new(config: &Config) -> SelfStats {
        SelfStats {
            forward: ForwardStats::default(),
            save_errors: SaveErrors::default(),
            otlp: OtlpStats::restore(config.state_dir.as_deref()),
        }
    }

    /// Everything `/metrics` and the OTLP push serve apart from the web server's own families:
    /// `counted`, then the collectors of the live families that `config` turns on.
    fn served(&self, counted: Counted, config: &Config) -> SharedCollector {
        let mut live: Vec<SharedCollector> = vec![Arc::new(self.forward.clone())];
        if config.state_dir.is_some() {
            live.push(Arc::new(self.save_errors.clone()));
        }
        if config.otlp.metrics.is_some() {
            live.push(Arc::new(self.otlp.clone()));
        }
        Arc::new(Served { counted, live })
    }
}

/// Starts the OTLP metrics push when configured; it pushes what `served` gives.
fn start_metrics_push(
    config: &Config,
    resource: opentelemetry_sdk::Resource,
    served: SharedCollector,
    errors: OtlpStats,
) -> Result<Option<MetricsPush>, AppError> {
    let Some(protocol) = config.otlp.metrics else {
        return Ok(None);
    };
    let limits = config.aggregate.limits.clone();
    let push = MetricsPush::start(
        protocol,
        resource,
        served,
        !config.web.disable_exporter_metrics,
        move |f| f.default_cap.map(|_| limits.cap(f)),
        errors,
    )?;
    Ok(Some(push))
}

/// A last push, but a collector that is down must not hold up the shutdown.
async fn last_push(push: MetricsPush) {
    let last = tokio::task::spawn_blocking(move || push.shutdown());
    if tokio::time::timeout(SHUTDOWN_PUSH_TIMEOUT, last)
        .await
        .is_err()
    {
        tracing::warn!("The last OTLP push did not finish in time; stopping without it.");
    }
}

/// Opens the spool and starts a task per sink, when events are forwarded; the aggregator then
/// queues every counted event for the spool.
fn start_forwarding(
    config: &Config,
    aggregator: &Mutex<Aggregator>,
    stats: &ForwardStats,
    resource: &opentelemetry_sdk::Resource,
) -> Result<Option<SpoolWriter>, AppError> {
    let (Some(state_dir), true) = (
        &config.state_dir,
        config.forward.logs_ingestion.is_some() || config.otlp.logs.is_some(),
    ) else {
        return Ok(None);
    };
    let dir = state_dir.join("forward");
    let spool_err = |source| AppError::Spool {
        dir: dir.clone(),
        source,
    };
    let writer = SpoolWriter::open(&dir, config.forward.max_backlog_bytes).map_err(spool_err)?;
    let reader = |sink: &str| SpoolReader::open(&dir, sink, writer.progress()).map_err(spool_err);
    if let Some(li) = &config.forward.logs_ingestion {
        let sink =
            LogsIngestion::new(li.clone()).map_err(|e| AppError::LogsIngestion(e.to_string()))?;
        tokio::spawn(forward::run_sink(
            sink,
            reader("logs_ingestion")?,
            stats.clone(),
        ));
        tracing::info!(endpoint = %li.endpoint, stream = %li.stream, "Forwarding events to Azure Monitor Logs Ingestion.");
    }
    if let Some(protocol) = config.otlp.logs {
        let sink = OtlpLogs::new(
            otlp::log_exporter(protocol)?,
            resource,
            config.otlp.logs_user_attribute,
        );
        tokio::spawn(forward::run_sink(sink, reader("otlp_logs")?, stats.clone()));
        tracing::info!("Forwarding events as OTLP log records.");
    }
    pipeline::lock(aggregator).enable_outbox();
    Ok(Some(writer))
}

/// How long the last OTLP push may delay a shutdown.
const SHUTDOWN_PUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `--demo.api-only`: the demo's simulated tenant alone, on loopback at the listen address's
/// port, until SIGTERM/SIGINT. Its client secret is the simulator's documented
/// `simulated-secret`, so it is not logged.
async fn serve_simulated_tenant(demo: &DemoConfig, listen: SocketAddr) -> Result<(), AppError> {
    let (api_config, timeline) = simulated_tenant(demo);
    let (tenant_id, client_id) = (api_config.tenant_id.clone(), api_config.client_id.clone());
    let api = SimulatedApi::start(api_config, timeline, listen.port())
        .await
        .map_err(|source| AppError::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], listen.port())),
            source,
        })?;
    tracing::info!(
        address = %api.addr(),
        api = %api.base_url(),
        tenant_id = %tenant_id,
        client_id = %client_id,
        "Listening."
    );
    shutdown_signal().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
