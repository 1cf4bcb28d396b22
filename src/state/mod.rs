//! Durable state (`--state.dir`): counters, distinct users, the dedup set and the live source's
//! ledgers, so a restart — graceful or `kill -9` — continues where the last checkpoint was.
//!
//! The file is `{format, version, saved_at, aggregate, source, replay}`: the aggregator's state,
//! and beside it the source's own (the live source's status with its ledgers, a replay's
//! progress), in one file so that counters and ledgers are always from the same checkpoint.
//!
//! Invariants:
//! - a file of an older version is migrated as it is read ([`migrate`]); one of a newer or an
//!   unknown version stops the start and is left as it is (a downgrade must not lose it);
//! - a checkpoint is written atomically (temporary file, fsync, rename, fsync of the directory):
//!   the file on disk is always a whole checkpoint;
//! - a checkpoint is taken only between documents, and a live source's checkpoint only when its
//!   status message arrives, after every page of its poll: counters and ledgers agree;
//! - while the forwarding spool cannot take counted events (a full disk), no checkpoint is
//!   saved: the events wait in memory and the save follows the write that works; each
//!   checkpoint not saved counts in `powerbi_state_save_errors_total{reason}` (kept in memory:
//!   a failed save cannot record itself);
//! - a replay in passes saves the passes done and the one under way with the counters, so a
//!   restart skips the first and reads the second again with its saved ids;
//! - with a state directory, `/metrics` serves the last *saved* snapshot, so no scrape shows a
//!   value a crash could take back: counters never decrease across restarts;
//! - a corrupt or foreign file is moved aside with a log line, never silently reused;
//! - a file that cannot be read (no permission, an I/O error, a directory, FIFO or dangling
//!   symbolic link in its place) stops the start: it is never written over, since what it
//!   holds may be fine once the fault is fixed, and starting from zero would take counters back.

pub mod live;
pub mod migrate;
pub mod settings;
pub mod spool;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::aggregate::outbox::Outbox;
use crate::aggregate::people::PseudonymKey;
use crate::aggregate::{AggregateConfig, Aggregator, AggregatorState, Reference};
use crate::catalogue::{Collector, Snapshot};
use crate::decode::UnixMillis;
use crate::source::replay::ReplayProgress;
use crate::source::{SourceStatus, Timing};

const FILE: &str = "state.json";
const KEY_FILE: &str = "pseudonym.key";

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
const FORMAT: &str = "powerbi-exporter-state";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot use state directory {dir}: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {problem}; it is left as it is and the exporter does not start from zero over it: fix it (or move it away to start from zero) and start again")]
    Unreadable { path: PathBuf, problem: Unreadable },
    #[error("{path} is not a usable file ({problem}) and could not be moved aside to {aside}: {source}; move it away and start again")]
    NotMovedAside {
        path: PathBuf,
        problem: String,
        aside: PathBuf,
        source: std::io::Error,
    },
}

/// Why a state file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("it is a {0}, not a regular file")]
    NotAFile(&'static str),
    #[error("it is a symbolic link to {0}, which does not exist")]
    Dangling(PathBuf),
    #[error("{0}")]
    Version(migrate::MigrationError),
}

/// The kind of a file that is not a regular file, for messages.
fn kind_of(meta: &fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        let t = meta.file_type();
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "device";
        }
    }
    if meta.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

/// The bytes of the regular file at `path` (following symbolic links), `None` when nothing is
/// there. Anything else in its place is an error rather than "no state": opening a FIFO would
/// block, and a link to a volume that is not mounted is not an empty state.
fn read_regular(path: &Path) -> Result<Option<Vec<u8>>, Unreadable> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Unreadable::Io(e)),
        Ok(_) => {}
    }
    let meta = match fs::metadata(path) {
        // The name exists (above) but what it points to does not.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let target = fs::read_link(path).unwrap_or_default();
            return Err(Unreadable::Dangling(target));
        }
        Err(e) => return Err(Unreadable::Io(e)),
        Ok(m) => m,
    };
    if !meta.is_file() {
        return Err(Unreadable::NotAFile(kind_of(&meta)));
    }
    fs::read(path).map(Some).map_err(Unreadable::Io)
}

/// What the pipeline keeps beside the aggregator and saves with it: the source's own state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceState {
    /// The live source's last status, with the checkpoint it resumes from (`None` for replay
    /// and demo).
    pub status: Option<SourceStatus>,
    /// A replay: the passes done, the one under way, and the files it counted.
    pub replay: ReplayProgress,
}

impl SourceState {
    /// How far a replay got, when one was under way or had counted files.
    pub fn replay_progress(&self) -> Option<&ReplayProgress> {
        Some(&self.replay).filter(|p| p.current.is_some() || p.counted.is_some())
    }
}

/// The source's state, shared by the pipeline (which updates it), the checkpoints (which save
/// it), the status page and `/metrics` (which show it).
pub type SharedSourceState = Arc<Mutex<SourceState>>;

/// Everything one checkpoint holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedState {
    pub aggregate: AggregatorState,
    pub source: SourceState,
}

impl SavedState {
    /// The aggregator and the source's state as they were saved, under the current
    /// configuration; the aggregator hears the source's saved report again (its own ids, the
    /// initial lookback loaded).
    pub fn resume(self, config: &AggregateConfig) -> (Aggregator, SourceState) {
        let mut aggregator = Aggregator::import(config, self.aggregate);
        if let Some(status) = &self.source.status {
            aggregator.source_reported(
                &status.own_identities,
                status.initial_lookback_hours_remaining == 0,
            );
        }
        (aggregator, self.source)
    }
}

/// The snapshot `/metrics` serves: the aggregator's families and the source's self metrics,
/// in catalogue order.
pub fn snapshot(aggregator: &Aggregator, source: &SourceState, reference: Reference) -> Snapshot {
    let mut snapshot = aggregator.snapshot(reference);
    if let Some(status) = &source.status {
        status.collect(&mut snapshot);
        snapshot.sort_families();
    }
    snapshot
}

/// Returns the allocator's free pages to the system. glibc's malloc keeps memory freed in the
/// middle of its heaps (and the arenas of other threads) as RSS; a checkpoint frees tens of MB
/// of transient strings and the replaced snapshot, so without this the process's RSS grows to
/// its peak and stays there (issue 15: 55 MiB above the live heap with the bench's tenant).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and only releases free memory; glibc documents it
    // as thread-safe (MT-Safe).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The file as version [`migrate::CURRENT`] lays it out.
#[derive(serde::Serialize, serde::Deserialize)]
struct OnDisk {
    format: String,
    version: u32,
    saved_at: UnixMillis,
    aggregate: AggregatorState,
    source: Option<SourceStatus>,
    #[serde(default)]
    replay: ReplayProgress,
}

/// What every version has: enough to know whether and how to read the rest.
#[derive(serde::Deserialize)]
struct Header {
    format: String,
    version: u32,
}

/// How a state file's bytes were judged.
enum Read {
    Usable(Box<OnDisk>),
    /// Corrupt or foreign: moved aside, counting starts from zero.
    Bad(String),
    /// A version this build does not read: left as it is, the start stops.
    Refused(migrate::MigrationError),
}

/// Reads a state file of any version this build knows, migrating an older one.
fn read_state(bytes: &[u8]) -> Read {
    // Today's version in one pass (a state with a large dedup set takes a while to parse); an
    // older file parses too (its moved fields are ignored), so only the version decides.
    if let Ok(d) = serde_json::from_slice::<OnDisk>(bytes) {
        if d.format == FORMAT && d.version == migrate::CURRENT {
            return Read::Usable(Box::new(d));
        }
    }
    let header = match serde_json::from_slice::<Header>(bytes) {
        Ok(h) => h,
        Err(e) => return Read::Bad(format!("not a valid state file: {e}")),
    };
    if header.format != FORMAT {
        return Read::Bad(format!("format {:?} is not {FORMAT:?}", header.format));
    }
    if let Err(e) = migrate::check(header.version) {
        return Read::Refused(e);
    }
    let parsed = if header.version == migrate::CURRENT {
        serde_json::from_slice::<OnDisk>(bytes).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|e| e.to_string())
            .and_then(|v| migrate::to_current(header.version, v).map_err(|e| e.to_string()))
            .and_then(|v| serde_json::from_value::<OnDisk>(v).map_err(|e| e.to_string()))
    };
    match parsed {
        Ok(d) => Read::Usable(Box::new(d)),
        Err(e) => Read::Bad(format!(
            "not a valid state file of version {}: {e}",
            header.version
        )),
    }
}

/// The state file in a directory.
#[derive(Debug, Clone)]
pub struct StateFile {
    dir: PathBuf,
}

impl StateFile {
    /// Creates the directory if needed and checks that it is writable.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let err = |source| StateError::Dir {
            dir: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(err)?;
        let probe = dir.join(".write-test");
        File::create(&probe)
            .and_then(|mut f| f.write_all(b"ok"))
            .map_err(err)?;
        let _ = fs::remove_file(probe);
        Ok(StateFile {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The pseudonym key kept beside the state (`pseudonym.key`, hex, mode 0600), created
    /// with random bytes the first time, so pseudonyms stay the same across restarts.
    pub fn pseudonym_key(&self) -> Result<PseudonymKey, StateError> {
        let path = self.dir.join(KEY_FILE);
        let read = read_regular(&path).map_err(|problem| StateError::Unreadable {
            path: path.clone(),
            problem,
        })?;
        if let Some(bytes) = read {
            let text = String::from_utf8_lossy(&bytes);
            if let Some(bytes) = unhex(text.trim()).filter(|b| b.len() >= 16) {
                return Ok(PseudonymKey(bytes));
            }
            let aside = self.move_aside(&path, "not a hex key of 16 bytes or more")?;
            tracing::warn!(path = %path.display(), moved_to = %aside.display(), "The pseudonym key file is not a hex key of 16 bytes or more; it was moved aside and a new key is made (pseudonyms change).");
        }
        let key = PseudonymKey::generate();
        let hex: String = key.0.iter().map(|b| format!("{b:02x}")).collect();
        let err = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        let tmp = self.dir.join(format!("{KEY_FILE}.tmp"));
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).map_err(err)?;
        f.write_all(hex.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(err)?;
        fs::rename(&tmp, &path).map_err(err)?;
        tracing::info!(path = %path.display(), "Made a pseudonym key for user labels.");
        Ok(key)
    }

    /// The saved state, if there is one, migrated when an older release wrote it. A corrupt or
    /// foreign file is renamed to `state.json.bad-<unix seconds>` and `None` is returned; a file
    /// that cannot be read, one of a version this build does not read, or a bad one that cannot
    /// be moved aside, is an error (nothing may be saved over it).
    pub fn load(&self) -> Result<Option<SavedState>, StateError> {
        let path = self.path();
        let bytes = match read_regular(&path) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(None),
            Err(problem) => return Err(StateError::Unreadable { path, problem }),
        };
        let problem = match read_state(&bytes) {
            Read::Usable(d) => {
                tracing::info!(path = %path.display(), saved_at = %d.saved_at.to_api_string(), "Resuming from the saved state.");
                return Ok(Some(SavedState {
                    aggregate: d.aggregate,
                    source: SourceState {
                        status: d.source,
                        replay: d.replay,
                    },
                }));
            }
            Read::Refused(e) => {
                let problem = Unreadable::Version(e);
                return Err(StateError::Unreadable { path, problem });
            }
            Read::Bad(problem) => problem,
        };
        let aside = self.move_aside(&path, &problem)?;
        tracing::warn!(
            path = %path.display(), moved_to = %aside.display(), problem = %problem,
            "State file not reused; it was moved aside and counting starts from zero."
        );
        Ok(None)
    }

    /// Renames a file that was read but is not usable to `<name>.bad-<unix seconds>`, so it is
    /// kept for a look and never written over.
    fn move_aside(&self, path: &Path, problem: &str) -> Result<PathBuf, StateError> {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let aside = self
            .dir
            .join(format!("{name}.bad-{}", UnixMillis::now().0 / 1000));
        fs::rename(path, &aside).map_err(|source| StateError::NotMovedAside {
            path: path.to_path_buf(),
            problem: problem.to_string(),
            aside: aside.clone(),
            source,
        })?;
        Ok(aside)
    }

    /// Writes `state` atomically.
    pub fn save(&self, state: SavedState) -> Result<(), StateError> {
        let path = self.path();
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let err = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        let disk = OnDisk {
            format: FORMAT.into(),
            version: migrate::CURRENT,
            saved_at: UnixMillis::now(),
            aggregate: state.aggregate,
            source: state.source.status,
            replay: state.source.replay,
        };
        let bytes = serde_json::to_vec(&disk).map_err(|e| err(e.into()))?;
        let mut file = File::create(&tmp).map_err(err)?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(err)?;
        fs::rename(&tmp, &path).map_err(err)?;
        // The rename is durable once the directory is synced.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(err)
    }
}

/// The step of a checkpoint that failed, so that it was not saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFailure {
    /// The forwarding spool could not take the counted events (e.g. a full disk).
    SpoolAppend,
    /// The spool took them but could not make them durable.
    SpoolSync,
    /// Writing `state.json` failed.
    StateWrite,
}

impl SaveFailure {
    pub const ALL: [SaveFailure; 3] = [
        SaveFailure::SpoolAppend,
        SaveFailure::SpoolSync,
        SaveFailure::StateWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SaveFailure::SpoolAppend => "spool_append",
            SaveFailure::SpoolSync => "spool_sync",
            SaveFailure::StateWrite => "state_write",
        }
    }
}

/// Failed checkpoints by [`SaveFailure`], and the bytes of counted events held back in memory
/// meanwhile, shared with the exposition: a failed save cannot count itself in the state it
/// did not save.
#[derive(Debug, Clone, Default)]
pub struct SaveErrors {
    failures: Arc<[AtomicU64; SaveFailure::ALL.len()]>,
    held_back_bytes: Arc<AtomicU64>,
}

impl SaveErrors {
    fn count(&self, failure: SaveFailure) {
        self.failures[failure as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, failure: SaveFailure) -> u64 {
        self.failures[failure as usize].load(Ordering::Relaxed)
    }

    fn set_held_back(&self, bytes: usize) {
        self.held_back_bytes.store(bytes as u64, Ordering::Relaxed);
    }
}

impl Collector for SaveErrors {
    /// `powerbi_state_save_errors_total`, every reason, and `powerbi_forward_held_back_bytes`.
    fn collect(&self, out: &mut Snapshot) {
        out.push(
            &crate::catalogue::STATE_SAVE_ERRORS,
            SaveFailure::ALL
                .iter()
                .map(|&f| (vec![f.as_str().to_string()], self.get(f) as f64)),
        );
        let held_back = self.held_back_bytes.load(Ordering::Relaxed) as f64;
        out.push(&crate::catalogue::FORWARD_HELD_BACK, [(vec![], held_back)]);
    }
}

/// Counted events the spool cannot take may wait in memory up to this much (or the spool's own
/// size, when smaller: past it the spool would drop the oldest anyway); then counting waits
/// for the spool, so memory stays bounded however long the disk stays full.
pub const MAX_HELD_BACK_BYTES: u64 = 64 << 20;

/// The snapshot `/metrics` serves when a state directory is used.
pub type Published = Arc<Mutex<Option<Snapshot>>>;

/// Saves checkpoints and publishes what was saved; without a state directory, only publishes.
///
/// Either way `/metrics` serves the published snapshot, built here on the decoding thread after
/// a poll or a batch of documents, so a scrape never builds one (and never holds the
/// aggregator's lock while it does).
pub struct Checkpointer {
    /// The state file; `None` without `--state.dir`.
    pub file: Option<StateFile>,
    pub published: Published,
    pub timing: Timing,
    /// Sources without status messages (replay, demo) are checkpointed at most this often, and
    /// never more often than ten times the last checkpoint took: a tenant whose snapshot takes
    /// a second to build spends at most a tenth of its time on it.
    pub min_interval: Duration,
    last: Option<Instant>,
    /// How long the last checkpoint took (snapshot and save).
    last_cost: Duration,
    /// The forwarding spool, when events are forwarded: made durable before each save, so the
    /// saved counters never include an event the spool could lose.
    pub spool: Option<spool::SpoolWriter>,
    /// Counted events the spool could not take yet (a full disk): no state is saved while
    /// there are any, since it would count events that are not spooled.
    held_back: Outbox,
    /// Whether the last spool write failed (logged once per outage).
    spool_failing: bool,
    /// Checkpoints that failed, for the self metrics.
    pub errors: SaveErrors,
    /// The source's state, saved with the aggregator's.
    pub source: SharedSourceState,
}

impl Checkpointer {
    pub fn new(file: StateFile, published: Published, timing: Timing) -> Self {
        Checkpointer::with(Some(file), published, timing, Duration::from_secs(10))
    }

    /// Without a state directory: publishes a snapshot at the same moments, at most every
    /// second between documents.
    pub fn publishing_only(published: Published, timing: Timing) -> Self {
        Checkpointer::with(None, published, timing, Duration::from_secs(1))
    }

    fn with(
        file: Option<StateFile>,
        published: Published,
        timing: Timing,
        min_interval: Duration,
    ) -> Self {
        Checkpointer {
            file,
            published,
            timing,
            min_interval,
            last: None,
            last_cost: Duration::ZERO,
            spool: None,
            held_back: Outbox::default(),
            spool_failing: false,
            errors: SaveErrors::default(),
            source: SharedSourceState::default(),
        }
    }

    /// Whether counted events wait for the spool, so the state is not saved.
    pub fn held_back(&self) -> bool {
        !self.held_back.is_empty()
    }

    /// Whether the events held back have reached their bound ([`MAX_HELD_BACK_BYTES`], or the
    /// spool's size when smaller): counting must wait until the spool takes them.
    pub fn must_wait_for_spool(&self) -> bool {
        let Some(spool) = &self.spool else {
            return false;
        };
        let bound = MAX_HELD_BACK_BYTES.min(spool.max_bytes());
        self.held_back.lines().len() as u64 >= bound
    }

    /// Saves and publishes now, unless the spool cannot take the new events: then nothing is
    /// saved and they are kept for the next attempt.
    pub fn checkpoint(&mut self, aggregator: &Mutex<Aggregator>) {
        let started = Instant::now();
        self.last = Some(started);
        let (state, snapshot, outbox) = {
            let mut agg = aggregator.lock().unwrap_or_else(PoisonError::into_inner);
            let source = self
                .source
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let snapshot = snapshot(&agg, &source, self.reference());
            // Exported only to be saved: without a state file, the snapshot is all.
            let state = self.file.is_some().then(|| SavedState {
                aggregate: agg.export(),
                source,
            });
            (state, snapshot, agg.take_outbox())
        };
        if !self.spool_events(outbox, true) {
            self.last_cost = started.elapsed();
            return;
        }
        let saved = match (&self.file, state) {
            (Some(file), Some(state)) => file.save(state),
            _ => Ok(()),
        };
        match saved {
            Ok(()) => self.publish(snapshot),
            // Not published: /metrics keeps serving the last saved values.
            Err(e) => {
                self.errors.count(SaveFailure::StateWrite);
                tracing::error!(error = %e, "Saving the state failed; /metrics keeps the last saved values.")
            }
        }
        self.last_cost = started.elapsed();
    }

    /// Replaces the published snapshot; the one replaced is freed at once (a scrape still
    /// composing holds only its families' `Arc`s), then the memory freed by building this one
    /// (each sample's label strings, the saved state's copy) is handed back to the system.
    fn publish(&self, snapshot: Snapshot) {
        let replaced = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(snapshot);
        drop(replaced);
        release_free_memory();
    }

    /// After the first document: without a state file, publishes at once, so that once the
    /// exporter is ready `/metrics` shows that document; with one, as after any document, so
    /// the saves keep their cadence (a save costs a file write).
    pub fn first_document(&mut self, aggregator: &Mutex<Aggregator>) {
        if self.file.is_none() {
            self.checkpoint(aggregator);
        } else {
            self.maybe_checkpoint(aggregator);
        }
    }

    /// Saves unless the last checkpoint is younger than `min_interval`; either way, moves the
    /// events queued for forwarding to the spool (not yet durable), so they do not pile up in
    /// memory between saves.
    pub fn maybe_checkpoint(&mut self, aggregator: &Mutex<Aggregator>) {
        let interval = self.min_interval.max(self.last_cost * 10);
        if self.last.is_none_or(|t| t.elapsed() >= interval) {
            return self.checkpoint(aggregator);
        }
        if self.spool.is_some() {
            let outbox = aggregator
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take_outbox();
            self.spool_events(outbox, false);
        }
    }

    /// Appends the held-back events and `outbox` to the spool (and makes them durable when
    /// `sync`); whether that worked, so the state that counts them may be saved. Without a
    /// spool there is nothing to do.
    fn spool_events(&mut self, outbox: Outbox, sync: bool) -> bool {
        let Some(spool) = &mut self.spool else {
            return true;
        };
        self.held_back.extend(outbox);
        let written = spool
            .append(&self.held_back)
            .map(|()| {
                self.held_back = Outbox::default();
            })
            .map_err(|e| (SaveFailure::SpoolAppend, e));
        self.errors.set_held_back(self.held_back.lines().len());
        let result = written.and_then(|()| {
            if sync {
                spool.sync().map_err(|e| (SaveFailure::SpoolSync, e))
            } else {
                Ok(())
            }
        });
        match result {
            Ok(()) if self.spool_failing => {
                self.spool_failing = false;
                tracing::info!("Writing the forwarding spool works again; the held-back events are spooled and the state is saved again.");
                true
            }
            Ok(()) => true,
            Err((failure, e)) => {
                self.errors.count(failure);
                if !self.spool_failing {
                    // After a restart meanwhile, the events are read again from the last save.
                    tracing::error!(error = %e, path = %spool.dir().display(), "Writing the forwarding spool failed; the state is not saved (so /metrics stays at the last save) and the events are kept in memory until it works again (logged once until then).");
                }
                self.spool_failing = true;
                false
            }
        }
    }

    fn reference(&self) -> Reference {
        live::reference_now(self.timing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_slice;
    use crate::source::replay::ReplayProgress;

    /// The files of `dir` that `name` was set aside as (`<name>.bad-<unix seconds>`).
    fn set_aside(dir: &Path, name: &str) -> Vec<std::fs::DirEntry> {
        let prefix = format!("{name}.bad-");
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .collect()
    }

    const PAGE: &str = r#"[
        {"Id":"a1","CreationTime":"2026-11-20T10:00:00","Activity":"ViewReport","WorkspaceId":"w1","WorkSpaceName":"One","ReportId":"r1","ReportName":"R","UserId":"u1@x"},
        {"Id":"a2","CreationTime":"2026-11-20T10:05:00","Activity":"ExportReport","WorkspaceId":"w1","ReportId":"r1","UserId":"u2@x","IsSuccess":false},
        {"Id":"a1","CreationTime":"2026-11-20T10:00:00","Activity":"ViewReport","WorkspaceId":"w1"},
        {"Id":"a3","Activity":"ViewReport"}
    ]"#;

    #[test]
    fn a_failed_state_write_is_counted_once_per_attempt_and_not_published() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        // The temporary file's name taken by a directory: creating it fails.
        std::fs::create_dir(dir.path().join("state.json.tmp")).unwrap();
        let published: Published = Arc::default();
        let mut c = Checkpointer::new(file, published.clone(), Timing::Historical);
        let agg = Mutex::new(Aggregator::new(&AggregateConfig::default()));
        c.checkpoint(&agg);
        c.checkpoint(&agg);
        assert_eq!(c.errors.get(SaveFailure::StateWrite), 2);
        assert_eq!(c.errors.get(SaveFailure::SpoolAppend), 0);
        assert!(
            published.lock().unwrap().is_none(),
            "nothing saved, nothing published"
        );
        let mut collected = Snapshot::default();
        c.errors.collect(&mut collected);
        let [family, held_back] = &collected.families[..] else {
            panic!("two families: {collected:?}")
        };
        assert_eq!(family.family.name, "powerbi_state_save_errors_total");
        // No spool: nothing is held back.
        assert_eq!(held_back.family.name, "powerbi_forward_held_back_bytes");
        assert_eq!(held_back.samples.iter().map(|s| s.value).sum::<f64>(), 0.0);
        let samples: Vec<(String, f64)> = family
            .samples
            .iter()
            .map(|s| (s.labels().collect::<Vec<_>>().join(","), s.value))
            .collect();
        assert_eq!(
            samples,
            [
                ("spool_append".to_string(), 0.0),
                ("spool_sync".to_string(), 0.0),
                ("state_write".to_string(), 2.0)
            ]
        );
    }

    #[test]
    fn a_saved_state_resumes_identically_and_keeps_deduplicating() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        let config = AggregateConfig {
            users: crate::aggregate::people::UserLabelConfig::Pseudonym(
                file.pseudonym_key().unwrap(),
            ),
            ..AggregateConfig::default()
        };
        let mut agg = Aggregator::new(&config);
        decode_slice(PAGE.as_bytes(), &mut agg).unwrap();
        // The inventory is cached in the state too: a restart need not read it again.
        agg.apply_inventory(crate::decode::inventory::Inventory {
            fetched_at: UnixMillis(1_795_100_000_000),
            workspaces: vec![crate::decode::inventory::InventoryWorkspace {
                id: "w2".into(),
                name: "Two".into(),
                personal: true,
                capacity_id: String::new(),
                reports: vec![("r2".into(), "Unused".into())],
                items: Vec::new(),
            }],
        });
        file.save(SavedState {
            aggregate: agg.export(),
            source: SourceState::default(),
        })
        .unwrap();
        let (mut resumed, _) = file.load().unwrap().expect("state loads").resume(&config);
        assert_eq!(
            resumed.snapshot(Reference::NewestEvent),
            agg.snapshot(Reference::NewestEvent)
        );
        // The dedup set came back too: the same page again adds only duplicates and rejections.
        decode_slice(PAGE.as_bytes(), &mut resumed).unwrap();
        let s = resumed.snapshot(Reference::NewestEvent);
        assert_eq!(
            s.value("powerbi_activity_events_total", &["w1", "ViewReport"]),
            Some(1.0)
        );
        assert_eq!(s.value("powerbi_events_duplicate_total", &[]), Some(4.0));
        // Last-activity times came back: 2026-11-20T10:00:00Z and 10:05.
        assert_eq!(
            s.value("powerbi_report_last_view_timestamp_seconds", &["r1"]),
            Some(1_795_168_800.0)
        );
        assert_eq!(
            s.value("powerbi_workspace_last_activity_timestamp_seconds", &["w1"]),
            Some(1_795_169_100.0)
        );
        assert_eq!(s.value("powerbi_reports", &["w2", "unused"]), Some(1.0));
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    fn a_pass(number: usize) -> crate::source::replay::ReplayPass {
        crate::source::replay::ReplayPass {
            number,
            of: 3,
            first_day: 20_000 + number as i64,
            last_day: 20_000 + number as i64,
            census: crate::source::replay::DaysCensus {
                method: crate::source::replay::CensusMethod::ByteSearch,
                events: 10,
                digest: 42,
            },
        }
    }

    #[test]
    fn the_source_status_and_replay_progress_are_saved_beside_the_aggregate() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        let config = AggregateConfig::default();
        let mut agg = Aggregator::new(&config);
        decode_slice(PAGE.as_bytes(), &mut agg).unwrap();
        let source = SourceState {
            status: Some(SourceStatus {
                up: true,
                budget_remaining: 9,
                own_identities: vec!["u2@x".into()],
                ..SourceStatus::default()
            }),
            replay: ReplayProgress {
                archive: Some("/archive".into()),
                done: vec![a_pass(1)],
                current: Some(a_pass(2)),
                counted: Some(crate::source::replay::CountedFiles {
                    through: "archive/b.json".into(),
                    files: 2,
                }),
            },
        };
        file.save(SavedState {
            aggregate: agg.export(),
            source: source.clone(),
        })
        .unwrap();
        let on_disk: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
        assert_eq!(on_disk["version"], migrate::CURRENT);
        assert_eq!(on_disk["source"]["budget_remaining"], 9);
        assert_eq!(on_disk["replay"]["current"]["number"], 2);
        assert!(on_disk["aggregate"].get("source").is_none());
        let saved = file.load().unwrap().expect("state loads");
        assert_eq!(saved.source, source);
        assert_eq!(saved.source.replay_progress(), Some(&source.replay));
        let (resumed, _) = saved.resume(&config);
        let reference = Reference::NewestEvent;
        // The source's self metrics come from the source's state, beside the aggregator's.
        let shown = snapshot(&resumed, &source, reference);
        assert_eq!(shown.value("powerbi_api_budget_remaining", &[]), Some(9.0));
        assert_eq!(resumed.snapshot(reference).value("powerbi_up", &[]), None);
        assert_eq!(
            snapshot(&resumed, &SourceState::default(), reference),
            resumed.snapshot(reference)
        );
    }

    #[test]
    fn a_version_1_file_is_migrated_with_its_source_status_and_replay_progress() {
        let mut v1: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/state/v1/state.json")).unwrap();
        assert_eq!(v1["version"], 1);
        let progress = ReplayProgress {
            archive: None,
            done: vec![a_pass(1)],
            current: Some(a_pass(2)),
            counted: None,
        };
        v1["aggregate"]["replay"] = serde_json::to_value(&progress).unwrap();
        let status = v1["aggregate"]["source"].clone();
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        std::fs::write(file.path(), serde_json::to_vec(&v1).unwrap()).unwrap();
        let saved = file.load().unwrap().expect("a v1 state loads");
        assert_eq!(saved.source.replay, progress);
        let status_back = serde_json::to_value(saved.source.status.as_ref().unwrap()).unwrap();
        assert_eq!(status_back, status);
        let (agg, _) = saved.resume(&AggregateConfig::default());
        let s = agg.snapshot(Reference::NewestEvent);
        assert_eq!(
            s.value("powerbi_activity_events_total", &["w1", "ViewDashboard"]),
            Some(16.0)
        );
    }

    #[test]
    fn a_newer_or_unknown_version_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        for version in [migrate::CURRENT + 1, 0] {
            let text = format!(
                r#"{{"format":"powerbi-exporter-state","version":{version},"saved_at":0,"aggregate":{{}}}}"#
            );
            std::fs::write(file.path(), &text).unwrap();
            assert!(matches!(
                file.load(),
                Err(StateError::Unreadable {
                    problem: Unreadable::Version(_),
                    ..
                })
            ));
            assert_eq!(std::fs::read_to_string(file.path()).unwrap(), text);
            assert!(set_aside(dir.path(), "state.json").is_empty());
        }
    }

    #[test]
    fn an_unreadable_pseudonym_key_is_an_error_and_a_bad_one_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        let key = dir.path().join(KEY_FILE);
        // A directory in its place: an error, and it is still there (not replaced by a key).
        std::fs::create_dir(&key).unwrap();
        assert!(matches!(
            file.pseudonym_key(),
            Err(StateError::Unreadable {
                problem: Unreadable::NotAFile("directory"),
                ..
            })
        ));
        assert!(key.is_dir());
        std::fs::remove_dir(&key).unwrap();
        // Too short a key: kept aside under its .bad- name, and a new 32-byte key is made.
        std::fs::write(&key, "00112233").unwrap();
        let made = file.pseudonym_key().unwrap();
        assert_eq!(made.0.len(), 32);
        let aside = set_aside(dir.path(), "pseudonym.key");
        assert_eq!(aside.len(), 1);
        assert_eq!(std::fs::read(aside[0].path()).unwrap(), b"00112233");
    }

    #[test]
    fn corrupt_and_foreign_files_are_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        for bad in [
            &b"{\"format\": \"powerbi-exporter-state\", \"vers"[..],
            br#"{"format":"something-else","version":1,"saved_at":0,"aggregate":{}}"#,
        ] {
            std::fs::write(file.path(), bad).unwrap();
            assert!(file.load().unwrap().is_none());
            assert!(!file.path().exists(), "moved away");
            let aside = set_aside(dir.path(), "state.json");
            assert_eq!(aside.len(), 1);
            std::fs::remove_file(aside[0].path()).unwrap();
        }
        assert!(StateFile::open(Path::new("/proc/no-such-dir/state")).is_err());
    }
}
