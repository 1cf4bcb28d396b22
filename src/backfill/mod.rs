//! `powerbi-exporter backfill`: past activity written as OpenMetrics with a timestamp on every
//! sample, for `promtool tsdb create-blocks-from openmetrics`, and the state an exporter then
//! continues from without a seam.
//!
//! The run: [`fetch`] reads the live tenant hour by hour into page files (or `--replay` names
//! archives); [`buckets`] puts their events in `CreationTime` order; the aggregator counts
//! them in that order, and at every instant of the [`steps`] grid its snapshot of the
//! [`BACKFILLED`] families goes to the [`writer`]; at the end the file is made whole, the
//! state saved, and promtool run when asked.
//!
//! Invariants:
//! - a sample at t holds what a live scrape at t would have shown: counters count the events
//!   created up to t, each `Id` once; window gauges end at t;
//! - with `--state.dir`, the state saved is the aggregator's after every event of the range,
//!   with the live source's ledger and budget when the tenant was read: an exporter started
//!   on it continues every counter from its last backfilled value; it is saved last, once the
//!   file is whole, and never over a state that is there already;
//! - memory is bounded by the series and one hour of events, not by the number of steps or of
//!   events; the work files live beside the output and are removed at the end.

pub mod buckets;
pub mod fetch;
pub mod settings;
pub mod steps;
pub mod writer;

use std::path::{Path, PathBuf};

use crate::aggregate::dedup::DedupAnchor;
use crate::aggregate::people::UserLabelConfig;
use crate::aggregate::{AggregateConfig, Aggregator, Reference};
use crate::catalogue::BACKFILLED;
use crate::decode::{decode_event, decode_reader, EventSink, UnixMillis};
use crate::source::powerbi::progress::ProgressMode;
use crate::source::powerbi::PowerBiConfig;
use crate::source::replay::Replay;
use crate::source::{SourceError, SourceStatus};
use crate::state::{SavedState, SourceState, StateError, StateFile};
use buckets::{Sorted, Spill};
use settings::{BackfillSettings, Tsdb};
use steps::StepGrid;
use writer::{HistoryWriter, Written, DEFAULT_CHUNK_POINTS};

/// Where the history comes from.
#[derive(Debug, Clone)]
pub enum History {
    /// Archives, in any order (`--replay`).
    Archives(PathBuf),
    /// The live tenant, hour by hour.
    Tenant(Box<PowerBiConfig>),
}

/// Everything a backfill needs, checked.
#[derive(Debug, Clone)]
pub struct BackfillConfig {
    pub history: History,
    pub settings: BackfillSettings,
    /// The exporter's aggregation (caps, filters, users): the series it will serve.
    pub aggregate: AggregateConfig,
    pub state_dir: Option<PathBuf>,
    pub progress: ProgressMode,
}

/// Why a backfill stopped.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Source(SourceError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0} already holds the state of an exporter or of a finished backfill; a backfill writes a new state: name an empty --state.dir (or move state.json away)")]
    StateExists(PathBuf),
    #[error("the backfill's progress file {path} cannot be used ({problem}); remove it to start the read again")]
    BadProgress { path: PathBuf, problem: String },
    #[error("{hours} hours of the range could not be read, the first {first}; nothing was written. Run the same command again to read them (the progress is kept in {progress})")]
    HoursUnread {
        hours: usize,
        first: crate::source::powerbi::window::UtcHour,
        progress: PathBuf,
    },
    #[error("the read of the tenant ended without a status")]
    NothingRead,
    #[error("reading the tenant stopped: {0}")]
    Join(String),
    #[error("{failed} of the archive's files could not be read to their end (the first: {first}); nothing was written")]
    Documents { failed: usize, first: String },
    #[error("promtool: {0}")]
    Promtool(String),
}

/// What a backfill did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub written: Written,
    pub events: u64,
    pub steps: u64,
    /// The instant of the last sample (the range's end).
    pub end: Option<UnixMillis>,
    pub state_saved: bool,
}

/// Runs a backfill to its end.
pub async fn run(config: BackfillConfig) -> Result<Summary, BackfillError> {
    let state = prepare_state(config.state_dir.as_deref())?;
    let work = beside(&config.settings.out, "work");
    // Without a state directory the read is kept beside the output, for this run only.
    let read_dir =
        (state.as_ref()).map_or_else(|| beside(&config.settings.out, "read"), |s| s.dir.clone());
    let (archive, status, read_end) = match &config.history {
        History::Archives(path) => (path.clone(), None, None),
        History::Tenant(live) => {
            let dir = &read_dir;
            let fetched = fetch::fetch(live, config.settings.since, dir, config.progress).await?;
            (fetched.pages, Some(fetched.status), Some(fetched.began))
        }
    };
    let aggregate = keyed(for_history(config.aggregate.clone()), state.as_ref())?;
    let settings = config.settings.clone();
    let work_for_render = work.clone();
    let progress = config.progress;
    let rendered = tokio::task::spawn_blocking(move || {
        let read = (status.as_ref(), read_end);
        render(
            &archive,
            &work_for_render,
            &settings,
            &aggregate,
            read,
            progress,
        )
    })
    .await
    .map_err(|e| BackfillError::Join(e.to_string()))??;
    let Rendered {
        summary,
        aggregator,
        status,
    } = rendered;
    let _ = std::fs::remove_dir_all(&work);
    if state.is_none() {
        let _ = std::fs::remove_dir_all(&read_dir);
    }
    let mut summary = summary;
    if let Some(state) = state {
        state.file.save(SavedState {
            aggregate: aggregator.export(),
            source: SourceState {
                status,
                ..SourceState::default()
            },
        })?;
        state.read_done();
        summary.state_saved = true;
    }
    if let Some(tsdb) = &config.settings.tsdb {
        promtool(&config.settings.out, tsdb)?;
    }
    Ok(summary)
}

/// The state directory a backfill writes: its state file, and where a live read keeps its
/// progress and pages until the state is saved.
struct BackfillState {
    file: StateFile,
    /// `<state.dir>/backfill`.
    dir: PathBuf,
}

impl BackfillState {
    /// The read's progress and pages are in the state now: they go.
    fn read_done(&self) {
        if !self.dir.exists() {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "The backfill's read of the tenant could not be removed from the state directory.");
        }
    }
}

/// Opens the state directory; one that holds a state already is refused, never written over.
fn prepare_state(dir: Option<&Path>) -> Result<Option<BackfillState>, BackfillError> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    let file = StateFile::open(dir)?;
    if std::fs::symlink_metadata(file.path()).is_ok() {
        return Err(BackfillError::StateExists(file.path()));
    }
    Ok(Some(BackfillState {
        file,
        dir: dir.join("backfill"),
    }))
}

/// The aggregation of a history: every id of the range is remembered, whatever the window
/// the configuration gives a live exporter (its lookback and two hours: older hours are
/// never read again live, but a backfill reads up to 28 days back). The exporter that resumes
/// the state applies its own window at its first clock tick.
fn for_history(mut aggregate: AggregateConfig) -> AggregateConfig {
    aggregate.dedup_anchor = DedupAnchor::Unanchored;
    aggregate.dedup_hold_from = None;
    aggregate
}

/// The users' pseudonym key, as the exporter on the same state directory will have it.
fn keyed(
    mut aggregate: AggregateConfig,
    state: Option<&BackfillState>,
) -> Result<AggregateConfig, BackfillError> {
    if let (UserLabelConfig::PseudonymUnkeyed, Some(state)) = (&aggregate.users, state) {
        aggregate.users = UserLabelConfig::Pseudonym(state.file.pseudonym_key()?);
    }
    Ok(aggregate)
}

/// A directory beside the output for this run's own files: `<out>.<what>/`.
fn beside(out: &Path, what: &str) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(what);
    out.with_file_name(name)
}

/// What the render step hands back.
struct Rendered {
    summary: Summary,
    aggregator: Aggregator,
    status: Option<SourceStatus>,
}

/// Puts the archive's events in time order and writes the file.
fn render(
    archive: &Path,
    work: &Path,
    settings: &BackfillSettings,
    aggregate: &AggregateConfig,
    (status, read_end): (Option<&SourceStatus>, Option<UnixMillis>),
    progress: ProgressMode,
) -> Result<Rendered, BackfillError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackfillError::Io { path, source }
    };
    let _ = std::fs::remove_dir_all(work);
    let now = UnixMillis::now();
    let mut spill = Spill::new(&work.join("events"), now).map_err(io(work))?;
    let documents = spill_archive(archive, &mut spill)?;
    let events = spill.events();
    let end = spill.newest().max(read_end);
    let rejections = spill.rejections().clone();
    let sorted = spill.finish().map_err(io(work))?;
    if progress != ProgressMode::Off {
        eprintln!(
            "Counting {events} events of {} hours in time order, a sample of every series every {}.",
            sorted.hours().len(),
            crate::duration::format(settings.step)
        );
    }

    let mut aggregator = Aggregator::new(aggregate);
    aggregator.set_clock(now);
    if let Some(status) = status {
        aggregator.source_reported(&status.own_identities, true);
    }
    let mut writer = HistoryWriter::new(
        &work.join("runs"),
        BACKFILLED,
        settings.labels.clone(),
        DEFAULT_CHUNK_POINTS,
    )
    .map_err(io(work))?;
    let step_ms = i64::try_from(settings.step.as_millis()).unwrap_or(i64::MAX);
    let mut grid = StepGrid::new(step_ms, end.unwrap_or(now));
    let steps =
        count_in_order(&sorted, &mut aggregator, &mut grid, &mut writer).map_err(io(work))?;
    for (reason, n) in rejections {
        (0..n).for_each(|_| aggregator.reject(reason));
    }
    (0..documents).for_each(|_| aggregator.document_done(true));
    let written = writer.finish(&settings.out).map_err(io(&settings.out))?;
    Ok(Rendered {
        summary: Summary {
            written,
            events,
            steps,
            end: end.filter(|_| steps > 0),
            state_saved: false,
        },
        aggregator,
        status: status.cloned(),
    })
}

/// Decodes every file of the archive into the spill; a file that breaks part-way stops the
/// backfill (its events after the fault would be missing from history that looks complete).
fn spill_archive(archive: &Path, spill: &mut Spill) -> Result<usize, BackfillError> {
    let replay = Replay::new(archive).map_err(BackfillError::Source)?;
    let mut failed = Vec::new();
    for path in replay.files() {
        let file = std::fs::File::open(path).map_err(|source| BackfillError::Io {
            path: path.clone(),
            source,
        })?;
        if let Err(e) = decode_reader(std::io::BufReader::new(file), spill) {
            tracing::error!(file = %path.display(), error = %e, "An archive file could not be read to its end.");
            failed.push(format!("{}: {e}", path.display()));
        }
    }
    if let Some(first) = failed.first() {
        return Err(BackfillError::Documents {
            failed: failed.len(),
            first: first.clone(),
        });
    }
    Ok(replay.files().len())
}

/// Applies the events hour by hour in time order, recording a snapshot at every instant of
/// the grid before the events after it; returns the instants written.
fn count_in_order(
    sorted: &Sorted,
    aggregator: &mut Aggregator,
    grid: &mut StepGrid,
    writer: &mut HistoryWriter,
) -> std::io::Result<u64> {
    let mut steps = 0u64;
    let mut record = |at: UnixMillis, aggregator: &Aggregator| {
        steps += 1;
        writer.record(at, &aggregator.snapshot(Reference::WallClock(at)))
    };
    for &hour in sorted.hours() {
        let events = sorted.read(hour)?;
        for (time, raw) in events.iter() {
            for at in grid.before(time) {
                record(at, aggregator)?;
            }
            match decode_event(raw) {
                Ok(event) => aggregator.accept(&event),
                Err(reason) => aggregator.reject(reason),
            }
        }
    }
    for at in grid.finish() {
        record(at, aggregator)?;
    }
    Ok(steps)
}

/// A duration as Go's `time.ParseDuration` reads it (promtool's flags): hours or seconds, no
/// days (`1d` is refused with "unknown unit").
fn go_duration(d: std::time::Duration) -> String {
    let seconds = d.as_secs();
    if seconds % 3600 == 0 {
        format!("{}h", seconds / 3600)
    } else {
        format!("{seconds}s")
    }
}

/// `promtool tsdb create-blocks-from openmetrics --max-block-duration=D FILE DIR`.
fn promtool(file: &Path, tsdb: &Tsdb) -> Result<(), BackfillError> {
    let output = std::process::Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(format!(
            "--max-block-duration={}",
            go_duration(tsdb.max_block_duration)
        ))
        .arg(file)
        .arg(&tsdb.dir)
        .output()
        .map_err(|e| {
            BackfillError::Promtool(format!(
                "cannot run it ({e}); install Prometheus' promtool or leave --tsdb out and run it yourself"
            ))
        })?;
    if !output.status.success() {
        return Err(BackfillError::Promtool(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    eprint!("{}", String::from_utf8_lossy(&output.stdout));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promtools_durations_are_spelled_without_days() {
        use std::time::Duration;
        assert_eq!(go_duration(Duration::from_secs(86_400)), "24h");
        assert_eq!(go_duration(Duration::from_secs(672 * 3600)), "672h");
        assert_eq!(go_duration(Duration::from_secs(5_400)), "5400s");
    }
}
