//! Durable state (`--state.dir`): counters, distinct users, the dedup set and the live source's
//! ledgers, so a restart — graceful or `kill -9` — continues where the last checkpoint was.
//!
//! Invariants:
//! - a checkpoint is written atomically (temporary file, fsync, rename, fsync of the directory):
//!   the file on disk is always a whole checkpoint;
//! - a checkpoint is taken only between documents, and a live source's checkpoint only when its
//!   status message arrives, after every page of its poll: counters and ledgers agree;
//! - with a state directory, `/metrics` serves the last *saved* snapshot, so no scrape shows a
//!   value a crash could take back: counters never decrease across restarts;
//! - a corrupt or foreign file is moved aside with a log line, never silently reused.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::aggregate::people::PseudonymKey;
use crate::aggregate::{Aggregator, AggregatorState, Reference, Snapshot};
use crate::decode::UnixMillis;
use crate::source::Timing;

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
const VERSION: u32 = 1;

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
}

#[derive(serde::Serialize, serde::Deserialize)]
struct OnDisk {
    format: String,
    version: u32,
    saved_at: UnixMillis,
    aggregate: AggregatorState,
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
        if let Ok(text) = fs::read_to_string(&path) {
            if let Some(bytes) = unhex(text.trim()).filter(|b| b.len() >= 16) {
                return Ok(PseudonymKey(bytes));
            }
            tracing::warn!(path = %path.display(), "The pseudonym key file is not a hex key of 16 bytes or more; a new key is made (pseudonyms change).");
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

    /// The saved state, if there is a usable one. A corrupt or foreign file is renamed to
    /// `state.json.bad-<unix seconds>` and `None` is returned.
    pub fn load(&self) -> Option<AggregatorState> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "State file unreadable; starting from zero.");
                return None;
            }
        };
        let problem = match serde_json::from_slice::<OnDisk>(&bytes) {
            Ok(d) if d.format == FORMAT && d.version == VERSION => {
                tracing::info!(path = %path.display(), saved_at = %d.saved_at.to_api_string(), "Resuming from the saved state.");
                return Some(d.aggregate);
            }
            Ok(d) => format!(
                "format {:?} version {} is not {FORMAT:?} version {VERSION}",
                d.format, d.version
            ),
            Err(e) => format!("not a valid state file: {e}"),
        };
        let aside = self
            .dir
            .join(format!("{FILE}.bad-{}", UnixMillis::now().0 / 1000));
        let moved = fs::rename(&path, &aside);
        tracing::warn!(
            path = %path.display(), moved_to = %aside.display(), moved = moved.is_ok(), problem = %problem,
            "State file not reused; it was moved aside and counting starts from zero."
        );
        None
    }

    /// Writes `state` atomically.
    pub fn save(&self, state: AggregatorState) -> Result<(), StateError> {
        let path = self.path();
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let err = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        let disk = OnDisk {
            format: FORMAT.into(),
            version: VERSION,
            saved_at: UnixMillis::now(),
            aggregate: state,
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

/// The snapshot `/metrics` serves when a state directory is used.
pub type Published = Arc<Mutex<Option<Snapshot>>>;

/// Saves checkpoints and publishes what was saved.
pub struct Checkpointer {
    pub file: StateFile,
    pub published: Published,
    pub timing: Timing,
    /// Sources without status messages (replay, demo) are checkpointed at most this often.
    pub min_interval: Duration,
    last: Option<Instant>,
    /// The forwarding spool, when events are forwarded: made durable before each save, so the
    /// saved counters never include an event the spool could lose.
    pub spool: Option<crate::exposition::forward::spool::SpoolWriter>,
}

impl Checkpointer {
    pub fn new(file: StateFile, published: Published, timing: Timing) -> Self {
        Checkpointer {
            file,
            published,
            timing,
            min_interval: Duration::from_secs(10),
            last: None,
            spool: None,
        }
    }

    /// Saves and publishes now.
    pub fn checkpoint(&mut self, aggregator: &Mutex<Aggregator>) {
        let (state, snapshot, outbox) = {
            let mut agg = aggregator.lock().unwrap_or_else(PoisonError::into_inner);
            (
                agg.export(),
                agg.snapshot(self.reference()),
                agg.take_outbox(),
            )
        };
        self.last = Some(Instant::now());
        if let Some(spool) = &mut self.spool {
            if let Err(e) = spool.append(&outbox).and_then(|()| spool.sync()) {
                // Not saved either: after a restart the events are read again and spooled.
                tracing::error!(error = %e, "Writing the forwarding spool failed; the state is not saved.");
                return;
            }
        }
        match self.file.save(state) {
            Ok(()) => {
                *self
                    .published
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(snapshot)
            }
            // Not published: /metrics keeps serving the last saved values.
            Err(e) => {
                tracing::error!(error = %e, "Saving the state failed; /metrics keeps the last saved values.")
            }
        }
    }

    /// Saves unless the last checkpoint is younger than `min_interval`; either way, moves the
    /// events queued for forwarding to the spool (not yet durable), so they do not pile up in
    /// memory between saves.
    pub fn maybe_checkpoint(&mut self, aggregator: &Mutex<Aggregator>) {
        if self.last.is_none_or(|t| t.elapsed() >= self.min_interval) {
            return self.checkpoint(aggregator);
        }
        if let Some(spool) = &mut self.spool {
            let outbox = aggregator
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take_outbox();
            if let Err(e) = spool.append(&outbox) {
                tracing::error!(error = %e, "Writing the forwarding spool failed; these events are not forwarded.");
            }
        }
    }

    fn reference(&self) -> Reference {
        match self.timing {
            Timing::Historical => Reference::NewestEvent,
            Timing::Live => Reference::WallClock(UnixMillis::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::AggregateConfig;
    use crate::decode::decode_slice;

    const PAGE: &str = r#"[
        {"Id":"a1","CreationTime":"2026-11-20T10:00:00","Activity":"ViewReport","WorkspaceId":"w1","WorkSpaceName":"One","ReportId":"r1","ReportName":"R","UserId":"u1@x"},
        {"Id":"a2","CreationTime":"2026-11-20T10:05:00","Activity":"ExportReport","WorkspaceId":"w1","ReportId":"r1","UserId":"u2@x","IsSuccess":false},
        {"Id":"a1","CreationTime":"2026-11-20T10:00:00","Activity":"ViewReport","WorkspaceId":"w1"},
        {"Id":"a3","Activity":"ViewReport"}
    ]"#;

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
            }],
        });
        file.save(agg.export()).unwrap();
        let mut resumed = Aggregator::import(&config, file.load().expect("state loads"));
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

    #[test]
    fn corrupt_and_foreign_files_are_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path()).unwrap();
        for bad in [
            &b"{\"format\": \"powerbi-exporter-state\", \"vers"[..],
            br#"{"format":"something-else","version":1,"saved_at":0,"aggregate":{}}"#,
        ] {
            std::fs::write(file.path(), bad).unwrap();
            assert!(file.load().is_none());
            assert!(!file.path().exists(), "moved away");
            let aside: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("state.json.bad-")
                })
                .collect();
            assert_eq!(aside.len(), 1);
            std::fs::remove_file(aside[0].path()).unwrap();
        }
        assert!(StateFile::open(Path::new("/proc/no-such-dir/state")).is_err());
    }
}
