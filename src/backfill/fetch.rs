//! Reading the live tenant's history for a backfill: every UTC hour of the range, through the
//! live source's client, budget, credential and cloud, each page kept as a file that the
//! render step reads like a replayed archive.
//!
//! Invariants:
//! - the range (first and last hour) is fixed by the first run and kept in the progress file
//!   with the live source's status after every hour read (its ledger and request budget), so
//!   a run killed at any point and started again reads only the hours not recorded, for the
//!   same range, within the same hourly budget;
//! - a page is on disk (synced) before the status that records its hour: an hour recorded as
//!   read has all its pages; an hour cut off by a kill is read again, and its pages that were
//!   kept already are duplicates the aggregation counts once;
//! - an hour that cannot be read is never passed over in silence: the read ends with an error
//!   naming the hours, the progress stays, and the next run reads them again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use super::BackfillError;
use crate::decode::UnixMillis;
use crate::files::write_atomically;
use crate::source::powerbi::progress::ProgressMode;
use crate::source::powerbi::window::{oldest_servable, UtcHour};
use crate::source::powerbi::{PowerBiConfig, PowerBiSource};
use crate::source::{Body, Source, SourceMessage, SourceStatus};

const PROGRESS_FILE: &str = "progress.json";
const PAGES_DIR: &str = "pages";
const FORMAT: &str = "powerbi-exporter-backfill";
const VERSION: u32 = 1;

/// Where a backfill of the live tenant stands, saved after every hour read.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Progress {
    format: String,
    version: u32,
    first_hour: UtcHour,
    last_hour: UtcHour,
    /// Pages kept so far (names the next page file).
    pages: u64,
    /// The live source's status after the last hour read: its ledger and request budget.
    status: Option<SourceStatus>,
    /// When every hour of the range was read.
    finished: Option<UnixMillis>,
}

/// The history read, ready to render.
#[derive(Debug)]
pub struct Fetched {
    /// Every page read, one file each.
    pub pages: PathBuf,
    /// The live source's final status: its ledger of hours read, for the exporter to resume.
    pub status: SourceStatus,
    /// When the read ended: the range's end.
    pub finished: UnixMillis,
}

/// Reads every hour of the last `since` (or of the range a killed run began) into `dir`.
pub async fn fetch(
    config: &PowerBiConfig,
    since: Duration,
    dir: &Path,
    progress_mode: ProgressMode,
) -> Result<Fetched, BackfillError> {
    let io = |e| BackfillError::Io {
        path: dir.to_path_buf(),
        source: e,
    };
    let pages = dir.join(PAGES_DIR);
    std::fs::create_dir_all(&pages).map_err(io)?;
    let mut progress = match load(dir)? {
        Some(p) => p,
        None => Progress::new(since, UnixMillis::now()),
    };
    if progress.finished.is_none() {
        read_hours(config, &mut progress, dir, progress_mode).await?;
    }
    let (Some(status), Some(finished)) = (progress.status, progress.finished) else {
        return Err(BackfillError::NothingRead);
    };
    Ok(Fetched {
        pages,
        status,
        finished,
    })
}

impl Progress {
    fn new(since: Duration, now: UnixMillis) -> Self {
        let first = UtcHour::containing(now.saturating_sub_millis(since.as_millis() as i64));
        Progress {
            format: FORMAT.into(),
            version: VERSION,
            first_hour: first.max(oldest_servable(now)),
            last_hour: UtcHour::containing(now),
            pages: 0,
            status: None,
            finished: None,
        }
    }

    /// The hours of the range the status's ledger does not record as read, of those the API
    /// still serves at `now` (a run resumed days later cannot read what has aged out).
    fn unread(&self, now: UnixMillis) -> Vec<UtcHour> {
        let ledger = self.status.as_ref().and_then(|s| s.checkpoint.as_ref());
        let first = self.first_hour.max(oldest_servable(now));
        (first.0..=self.last_hour.0)
            .map(UtcHour)
            .filter(|h| ledger.is_none_or(|c| c.ledger.last_read(*h).is_none()))
            .collect()
    }
}

/// The progress a killed run left, if any.
fn load(dir: &Path) -> Result<Option<Progress>, BackfillError> {
    let path = dir.join(PROGRESS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(BackfillError::Io { path, source }),
    };
    let progress: Progress =
        serde_json::from_slice(&bytes).map_err(|e| BackfillError::BadProgress {
            path: path.clone(),
            problem: e.to_string(),
        })?;
    if progress.format != FORMAT || progress.version != VERSION {
        return Err(BackfillError::BadProgress {
            path,
            problem: format!(
                "format {:?} version {} is not {FORMAT:?} version {VERSION}",
                progress.format, progress.version
            ),
        });
    }
    tracing::info!(first_hour = %progress.first_hour, last_hour = %progress.last_hour, "Resuming the backfill's read of the tenant.");
    Ok(Some(progress))
}

fn save(dir: &Path, progress: &Progress) -> Result<(), BackfillError> {
    let path = dir.join(PROGRESS_FILE);
    let bytes = serde_json::to_vec(progress).map_err(|e| BackfillError::Io {
        path: path.clone(),
        source: e.into(),
    })?;
    write_atomically(&path, &bytes).map_err(|source| BackfillError::Io { path, source })
}

/// Runs the live source over the range, keeping each page and the status after each hour.
async fn read_hours(
    config: &PowerBiConfig,
    progress: &mut Progress,
    dir: &Path,
    mode: ProgressMode,
) -> Result<(), BackfillError> {
    let range = (progress.first_hour, progress.last_hour);
    let source = PowerBiSource::hours(config.clone(), range, progress.status.clone(), mode)
        .map_err(BackfillError::Source)?;
    let (tx, mut rx) = mpsc::channel(16);
    let reading = tokio::spawn(Box::new(source).run(tx));
    while let Some(message) = rx.recv().await {
        match message {
            SourceMessage::Document(doc) => {
                let Body::Bytes(page) = doc.body else {
                    continue;
                };
                let path = dir
                    .join(PAGES_DIR)
                    .join(format!("page-{:07}.json", progress.pages));
                write_atomically(&path, &page).map_err(|source| BackfillError::Io {
                    path: path.clone(),
                    source,
                })?;
                progress.pages += 1;
            }
            SourceMessage::Status(status) => {
                progress.status = Some(*status);
                save(dir, progress)?;
            }
            SourceMessage::Inventory(_) | SourceMessage::ReplayPass(_) => {}
        }
    }
    match reading.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(BackfillError::Source(e)),
        Err(e) => return Err(BackfillError::Join(e.to_string())),
    }
    let unread = progress.unread(UnixMillis::now());
    if !unread.is_empty() {
        return Err(BackfillError::HoursUnread {
            hours: unread.len(),
            first: unread[0],
            progress: dir.join(PROGRESS_FILE),
        });
    }
    progress.finished = Some(UnixMillis::now());
    save(dir, progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::powerbi::window::SweepLedger;
    use crate::source::SourceCheckpoint;

    #[test]
    fn a_range_starts_at_most_28_days_back_and_its_unread_hours_follow_the_ledger() {
        let now = UnixMillis(1_700_000_000_000);
        let mut p = Progress::new(Duration::from_secs(3 * 3600), now);
        assert_eq!(p.last_hour, UtcHour::containing(now));
        assert_eq!(p.first_hour.0, p.last_hour.0 - 3);
        assert_eq!(p.unread(now).len(), 4);
        let mut ledger = SweepLedger::starting_at(p.first_hour);
        ledger.record(UtcHour(p.first_hour.0 + 1), now);
        p.status = Some(SourceStatus {
            checkpoint: Some(SourceCheckpoint {
                ledger,
                ..SourceCheckpoint::default()
            }),
            ..SourceStatus::default()
        });
        let unread: Vec<i64> = (p.unread(now).iter())
            .map(|h| h.0 - p.first_hour.0)
            .collect();
        assert_eq!(unread, [0, 2, 3]);
        // Resumed 28 days later, the first two hours have aged out of the API.
        let later = UnixMillis(p.first_hour.start().0 + 28 * 86_400_000 + 3_600_000);
        let unread: Vec<i64> = (p.unread(later).iter())
            .map(|h| h.0 - p.first_hour.0)
            .collect();
        assert_eq!(unread, [2, 3]);
        let long = Progress::new(Duration::from_secs(40 * 86_400), now);
        assert_eq!(long.first_hour, oldest_servable(now));
    }

    #[test]
    fn progress_is_saved_whole_and_a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = Progress::new(Duration::from_secs(3600), UnixMillis(1_700_000_000_000));
        save(dir.path(), &p).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(p));
        std::fs::write(dir.path().join(PROGRESS_FILE), br#"{"format":"x"}"#).unwrap();
        assert!(matches!(
            load(dir.path()),
            Err(BackfillError::BadProgress { .. })
        ));
    }
}
