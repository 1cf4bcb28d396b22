//! Replay: saved API pages, JSON arrays of events and JSON Lines, from a file or a directory.
//!
//! Files are listed when the source is built (a bad path fails start-up with its reason) and
//! handed on one by one, sorted by path, as [`Body::File`]: the decoder streams each from disk,
//! so memory never grows with the size or number of files.
//!
//! An archive may span years, in any order, split across files that overlap. Every distinct
//! event is counted once whatever its date: the dedup keeps every id of the days being
//! replayed. To bound that memory, an archive that may hold more than `max_ids_per_pass`
//! events is replayed in passes: a census reads each file once for the number of events per
//! UTC day (a byte search for each `CreationTime`, no decoding: see [`DayCensus`]), then each pass
//! sends every file again for a range of days whose events fit the budget. A [`ReplayPass`]
//! message goes ahead of each pass; the pipeline hands on only that pass's events.
//!
//! A replay that stops part-way (a restart, `kill -9`) and runs again on the state it saved
//! ([`ReplayProgress`]) resumes where it was, and one that finished reads only files added
//! after its last:
//! - the saved counters hold the passes done, the saved dedup set only the pass that was under
//!   way, so the passes done are skipped;
//! - the pass under way (the whole replay, when it is one pass) goes on after the last file it
//!   counted: files go in path order, and a save falls between files, so a file is in the saved
//!   counters whole or not at all.
//!
//! What was counted must still be there to skip it. Each pass carries the census of its days,
//! and the progress the number of files it counted; when either is no longer the archive's,
//! the start is refused ([`SourceError::ReplayArchiveChanged`],
//! [`SourceError::ReplayFilesChanged`]): counting them again would count twice, skipping them
//! would leave changes out.

pub mod settings;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    Body, Document, DocumentSender, Source, SourceError, SourceFuture, SourceMessage, Timing,
};
use crate::decode::census::DayCensus;
use crate::decode::UnixMillis;

const EXTENSIONS: &[&str] = &["json", "jsonl", "ndjson"];
const DAY_MS: i64 = 86_400_000;

/// Ids one replay pass may keep in the dedup set (≈20–40 bytes each: 40–80 MB).
pub const DEFAULT_MAX_IDS_PER_PASS: usize = 2_000_000;
/// Fewer bytes than the smallest event a file can hold (`{"Id":"a","CreationTime":"…",
/// "Activity":"a"}` is over 50): an archive smaller than the budget times this is one pass,
/// with no census.
const MIN_EVENT_BYTES: u64 = 40;

/// What to replay and how much memory the dedup may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    pub path: PathBuf,
    pub max_ids_per_pass: usize,
}

/// One pass over the archive: the events of UTC days `first_day..=last_day` (days since the
/// Unix epoch). Events without a usable date (rejected) are counted in the first pass only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplayPass {
    pub number: usize,
    pub of: usize,
    pub first_day: i64,
    pub last_day: i64,
    /// The census of its days when it was planned.
    pub census: DaysCensus,
}

/// What the census found in a range of days: the events (duplicates included) and a digest of
/// the events per day, so that events moved between days are noticed too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DaysCensus {
    pub events: u64,
    pub digest: u64,
    /// How the events were counted (absent from states saved by earlier versions).
    #[serde(default)]
    pub method: CensusMethod,
}

/// How a census counted an archive's events. Counts made another way differ on archives with
/// rejected events or nested keys, so they cannot be compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CensusMethod {
    /// Earlier versions: the events the decoder accepted.
    #[default]
    Decoded,
    /// Each `"CreationTime"` key found by a byte search ([`DayCensus`]).
    ByteSearch,
}

impl DaysCensus {
    /// The census of `first_day..=last_day` in `days` (FNV-1a over each day and its count).
    fn of(days: &BTreeMap<i64, usize>, first_day: i64, last_day: i64) -> Self {
        let mut census = DaysCensus {
            events: 0,
            digest: 0xcbf2_9ce4_8422_2325,
            method: CensusMethod::ByteSearch,
        };
        for (day, &n) in days.range(first_day..=last_day) {
            census.events = census.events.saturating_add(n as u64);
            for byte in day
                .to_le_bytes()
                .into_iter()
                .chain((n as u64).to_le_bytes())
            {
                census.digest = (census.digest ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
            }
        }
        census
    }
}

/// How far a replay got, saved with the state: the passes read to their end, the one under way
/// (whose ids the saved dedup set holds), and the files the pass under way (or the replay, when
/// it is one pass) has counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplayProgress {
    /// The archive replayed, canonical: another archive replayed into the same state starts
    /// afresh. (Absent from states saved before it was kept: taken as the same archive.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<PathBuf>,
    pub done: Vec<ReplayPass>,
    pub current: Option<ReplayPass>,
    /// Absent from states saved before it was kept: the pass under way is read again whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<CountedFiles>,
}

/// The files whose events, rejections and document count are in the saved counters: the first
/// `files` in path order, the last of them `through`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CountedFiles {
    pub through: PathBuf,
    pub files: usize,
}

impl ReplayProgress {
    /// Records that `pass` begins: the one under way is done. False when `pass` is the one under
    /// way, begun again after a restart: its ids are still remembered.
    pub fn start(&mut self, pass: ReplayPass) -> bool {
        if self.current == Some(pass) {
            return false;
        }
        if let Some(previous) = self.current.replace(pass) {
            self.done.push(previous);
        }
        self.counted = None;
        true
    }

    /// Records that the pass under way (the replay, when it is one pass) has counted `file`,
    /// the next in path order.
    pub fn counted(&mut self, file: &Path) {
        let files = self.counted.as_ref().map_or(0, |c| c.files) + 1;
        self.counted = Some(CountedFiles {
            through: file.to_path_buf(),
            files,
        });
    }

    /// The progress a replay of `archive` goes on from: `saved` when it is that archive's, a
    /// fresh one otherwise (another archive replayed into the same state is new to it).
    pub fn for_archive(saved: &ReplayProgress, archive: &Path) -> ReplayProgress {
        let archive = canonical(archive);
        if saved.archive.as_ref().is_none_or(|a| *a == archive) {
            return ReplayProgress {
                archive: Some(archive),
                ..saved.clone()
            };
        }
        ReplayProgress {
            archive: Some(archive),
            ..ReplayProgress::default()
        }
    }

    /// Whether a replay had begun: a pass, or a file counted.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty() && self.current.is_none() && self.counted.is_none()
    }

    fn in_passes(&self) -> bool {
        self.current.is_some()
    }

    fn recorded(&self) -> impl Iterator<Item = &ReplayPass> {
        self.done.iter().chain(&self.current)
    }
}

impl ReplayPass {
    pub fn contains(&self, time: UnixMillis) -> bool {
        (self.first_day..=self.last_day).contains(&time.0.div_euclid(DAY_MS))
    }

    /// Whether what has no day (rejections, documents) is counted in this pass.
    pub fn is_first(&self) -> bool {
        self.number == 1
    }
}

#[derive(Debug)]
pub struct Replay {
    files: Vec<PathBuf>,
    max_ids_per_pass: usize,
    /// A replay in passes that stopped part-way: its progress and the archive's census.
    resume: Option<(ReplayProgress, BTreeMap<i64, usize>)>,
}

impl Replay {
    /// A file is replayed whatever its name; a directory contributes its `.json`, `.jsonl` and
    /// `.ndjson` files, recursively, skipping hidden entries.
    pub fn new(path: &Path) -> Result<Self, SourceError> {
        let err = |source| SourceError::ReplayPath {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(err)?;
        // Files are listed from the canonical path, so the progress a restart compares them
        // with does not depend on how the path was spelled.
        let path = &canonical(path);
        if !meta.is_dir() {
            std::fs::File::open(path).map_err(err)?;
            return Ok(Replay {
                files: vec![path.to_path_buf()],
                max_ids_per_pass: DEFAULT_MAX_IDS_PER_PASS,
                resume: None,
            });
        }
        let mut files = Vec::new();
        collect(path, &mut files)?;
        files.sort();
        if files.is_empty() {
            return Err(SourceError::ReplayEmpty(path.to_path_buf()));
        }
        Ok(Replay {
            files,
            max_ids_per_pass: DEFAULT_MAX_IDS_PER_PASS,
            resume: None,
        })
    }

    /// A replay of `config.path` whose passes keep at most `config.max_ids_per_pass` ids; with
    /// the `progress` of a replay in passes that stopped part-way, it skips the passes done
    /// once the archive's census (read now, at start-up) shows their days unchanged.
    pub fn with_config(
        config: &ReplayConfig,
        progress: Option<ReplayProgress>,
    ) -> Result<Self, SourceError> {
        let mut replay = Replay {
            max_ids_per_pass: config.max_ids_per_pass.max(1),
            ..Replay::new(&config.path)?
        };
        if let Some(progress) = progress.filter(|p| !p.is_empty()) {
            counted_files_unchanged(&progress, &replay.files, &config.path)?;
            let mut days = BTreeMap::new();
            if progress.in_passes() {
                days = census(&replay.files);
                unchanged(&progress, &days, &config.path)?;
            }
            tracing::info!(
                passes_done = progress.done.len(),
                files_counted = progress.counted.as_ref().map_or(0, |c| c.files),
                "Resuming the replay: the passes done are skipped, the one under way goes on after the files it counted."
            );
            replay.resume = Some((progress, days));
        }
        Ok(replay)
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

/// `path` with symbolic links and `..` resolved, or as it is when that fails.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let err = |source| SourceError::ReplayPath {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let path = entry.map_err(err)?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            out.push(path);
        }
    }
    Ok(())
}

impl Source for Replay {
    fn timing(&self) -> Timing {
        Timing::Historical
    }

    fn run(self: Box<Self>, out: DocumentSender) -> SourceFuture {
        Box::pin(async move {
            let passes = self.passes().await;
            if passes.len() > 1 {
                tracing::info!(
                    passes = passes.len(),
                    max_ids_per_pass = self.max_ids_per_pass,
                    "Replaying the archive in passes of days, to bound the dedup's memory."
                );
            }
            for (i, pass) in passes.into_iter().enumerate() {
                if let Some(pass) = pass {
                    tracing::debug!(pass = pass.number, of = pass.of, "Replay pass.");
                    if out.send(SourceMessage::ReplayPass(pass)).await.is_err() {
                        return Ok(());
                    }
                }
                // A resume's first pass is the one that was under way.
                let files = if i == 0 {
                    self.files_left()
                } else {
                    &self.files
                };
                if !send_files(files, &out).await {
                    return Ok(());
                }
            }
            Ok(())
        })
    }
}

impl Replay {
    /// The files the first pass has still to read: on a resume, those after the files it
    /// counted (checked unchanged at start-up); every file otherwise.
    fn files_left(&self) -> &[PathBuf] {
        let counted = self.resume.as_ref().and_then(|(p, _)| p.counted.as_ref());
        let Some(counted) = counted else {
            return &self.files;
        };
        &self.files[counted.files.min(self.files.len())..]
    }

    /// The passes to make: one over everything (`None`) when the archive fits the budget. A
    /// replay resumed stays as it was: in its passes, or one pass.
    async fn passes(&self) -> Vec<Option<ReplayPass>> {
        if let Some((progress, days)) = &self.resume {
            if !progress.in_passes() {
                return vec![None];
            }
            return resumed_passes(progress, days, self.max_ids_per_pass);
        }
        let bytes: u64 = self
            .files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        if bytes / MIN_EVENT_BYTES <= self.max_ids_per_pass as u64 {
            return vec![None];
        }
        let files = self.files.clone();
        let census = tokio::task::spawn_blocking(move || census(&files)).await;
        let Ok(days) = census else {
            return vec![None];
        };
        let busiest = days.values().copied().max().unwrap_or(0);
        if busiest > self.max_ids_per_pass {
            tracing::warn!(
                events = busiest,
                max_ids_per_pass = self.max_ids_per_pass,
                "One UTC day of the archive holds more events than a pass may keep: its pass keeps them all."
            );
        }
        plan_passes(&days, self.max_ids_per_pass)
    }
}

/// Sends every file once; false when the receiving side is gone.
async fn send_files(files: &[PathBuf], out: &DocumentSender) -> bool {
    for path in files {
        let doc = Document {
            origin: path.display().to_string(),
            body: Body::File(path.clone()),
        };
        if out.send(SourceMessage::Document(doc)).await.is_err() {
            return false;
        }
    }
    true
}

/// Events per UTC day in `files`, duplicates included (an upper bound of the ids a day keeps).
/// A file that breaks counts the events before the fault; the pipeline reports it.
/// The files are shared out between the machine's cores (a file to whichever is free), each
/// counting its own days, summed at the end: a sum, so the same whatever the order.
fn census(files: &[PathBuf]) -> BTreeMap<i64, usize> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, files.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let counted: Vec<BTreeMap<i64, usize>> = std::thread::scope(|scope| {
        let count_some = || {
            let mut days = Days(BTreeMap::new());
            let mut chunk = vec![0; CHUNK_BYTES];
            while let Some(path) =
                files.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
            {
                count_file(path, &mut days, &mut chunk);
            }
            days.0
        };
        let helpers: Vec<_> = (1..workers).map(|_| scope.spawn(count_some)).collect();
        let mine = count_some();
        let theirs = helpers
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        std::iter::once(mine).chain(theirs).collect()
    });
    let mut days = BTreeMap::new();
    for (day, n) in counted.into_iter().flatten() {
        *days.entry(day).or_default() += n;
    }
    days
}

/// Events per UTC day.
struct Days(BTreeMap<i64, usize>);

impl Days {
    fn add(&mut self, day: i64) {
        *self.0.entry(day).or_default() += 1;
    }
}

/// Bytes read at a time from a file too large to read whole.
const CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// Counts the file's events by day with [`DayCensus`] (a byte search, no decoding): a bound of
/// the ids each day keeps is all a plan needs. A read that fails part-way counts the events
/// before the fault (the pipeline reports the fault).
/// `chunk` is the buffer reads go to.
fn count_file(path: &Path, days: &mut Days, chunk: &mut [u8]) {
    let Ok(mut file) = std::fs::File::open(path) else {
        return;
    };
    let mut census = DayCensus::default();
    loop {
        match std::io::Read::read(&mut file, chunk) {
            Ok(0) => break,
            Ok(n) => census.feed(&chunk[..n], |day| days.add(day)),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    census.finish(|day| days.add(day));
}

/// Consecutive days grouped so that each pass's events fit `budget`; a day alone over it is a
/// pass of its own (one day's ids must be held together).
fn plan_passes(days: &BTreeMap<i64, usize>, budget: usize) -> Vec<Option<ReplayPass>> {
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    let mut held = 0usize;
    for (&day, &n) in days {
        match ranges.last_mut() {
            Some(last) if held + n <= budget => {
                last.1 = day;
                held += n;
            }
            _ => {
                ranges.push((day, day));
                held = n;
            }
        }
    }
    if ranges.len() <= 1 {
        return vec![None];
    }
    let of = ranges.len();
    // The passes tile every day: the first also takes the days before the census's first, the
    // last those after its last, each the days between its predecessor's and its own (none
    // has events in the census; a file that changed under the replay might).
    let mut next_first = i64::MIN;
    ranges
        .into_iter()
        .enumerate()
        .map(|(i, (_, last_day))| {
            let last_day = if i + 1 == of { i64::MAX } else { last_day };
            let pass = ReplayPass {
                number: i + 1,
                of,
                first_day: next_first,
                last_day,
                census: DaysCensus::of(days, next_first, last_day),
            };
            next_first = last_day.saturating_add(1);
            Some(pass)
        })
        .collect()
}

/// Refuses when the files the progress counted are no longer the first ones in path order: some
/// were added or removed among them.
fn counted_files_unchanged(
    progress: &ReplayProgress,
    files: &[PathBuf],
    path: &Path,
) -> Result<(), SourceError> {
    let Some(counted) = &progress.counted else {
        return Ok(());
    };
    let now = files.partition_point(|f| *f <= counted.through);
    if now == counted.files {
        return Ok(());
    }
    Err(SourceError::ReplayFilesChanged {
        path: path.to_path_buf(),
        through: counted.through.clone(),
        was: counted.files,
        now,
    })
}

/// Refuses when the census of a recorded pass's days is not the one it was planned with. A
/// census an earlier version made another way cannot be compared: the pass is trusted.
fn unchanged(
    progress: &ReplayProgress,
    days: &BTreeMap<i64, usize>,
    path: &Path,
) -> Result<(), SourceError> {
    for pass in progress.recorded() {
        if pass.census.method != CensusMethod::ByteSearch {
            tracing::warn!(
                days = day_range(pass.first_day, pass.last_day),
                "This pass was planned by an earlier version, whose census cannot be compared with this one's: the archive's days are not checked against it."
            );
            continue;
        }
        let now = DaysCensus::of(days, pass.first_day, pass.last_day);
        if now != pass.census {
            return Err(SourceError::ReplayArchiveChanged {
                path: path.to_path_buf(),
                days: day_range(pass.first_day, pass.last_day),
                was: pass.census.events,
                now: now.events,
            });
        }
    }
    Ok(())
}

/// `YYYY-MM-DD..YYYY-MM-DD` (UTC) of a pass's days, open ends written as `…`.
fn day_range(first_day: i64, last_day: i64) -> String {
    let day = |d: i64, open: i64| {
        if d == open {
            "…".to_string()
        } else {
            UnixMillis(d.saturating_mul(DAY_MS))
                .to_api_string()
                .chars()
                .take(10)
                .collect()
        }
    };
    format!("{}..{}", day(first_day, i64::MIN), day(last_day, i64::MAX))
}

/// The passes left after `progress`: the one under way again (same days, so that the dedup set
/// saved with it covers them), then the days after it planned as usual; none when the last pass
/// was the one under way.
fn resumed_passes(
    progress: &ReplayProgress,
    days: &BTreeMap<i64, usize>,
    budget: usize,
) -> Vec<Option<ReplayPass>> {
    let done = progress.done.len();
    let mut passes: Vec<ReplayPass> = progress.current.iter().copied().collect();
    let next_day = passes
        .last()
        .or(progress.done.last())
        .map_or(i64::MIN, |p| p.last_day.saturating_add(1));
    let last_recorded = progress.recorded().map(|p| p.last_day).max();
    if last_recorded != Some(i64::MAX) {
        let rest: BTreeMap<i64, usize> = days.range(next_day..).map(|(&d, &n)| (d, n)).collect();
        let mut planned: Vec<ReplayPass> =
            plan_passes(&rest, budget).into_iter().flatten().collect();
        if planned.is_empty() {
            // The rest fits one pass: it runs to the end of time.
            planned.push(ReplayPass {
                number: 1,
                of: 1,
                first_day: next_day,
                last_day: i64::MAX,
                census: DaysCensus::of(days, next_day, i64::MAX),
            });
        }
        if let Some(first) = planned.first_mut() {
            first.first_day = next_day;
            first.census = DaysCensus::of(days, next_day, first.last_day);
        }
        passes.extend(planned);
    }
    let of = done + passes.len();
    passes
        .into_iter()
        .enumerate()
        .map(|(i, mut pass)| {
            pass.number = done + i + 1;
            pass.of = of;
            Some(pass)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_tile_every_day_and_fit_the_budget() {
        let days: BTreeMap<i64, usize> = [(10, 4), (11, 5), (15, 2), (16, 9), (20, 1)].into();
        let passes: Vec<ReplayPass> = plan_passes(&days, 10).into_iter().flatten().collect();
        let ranges: Vec<(i64, i64)> = passes.iter().map(|p| (p.first_day, p.last_day)).collect();
        // 4+5 | 2 (9 would exceed) | 9+1
        assert_eq!(ranges, vec![(i64::MIN, 11), (12, 15), (16, i64::MAX)]);
        assert!(passes.iter().all(|p| p.of == 3));
        assert!(passes[0].is_first() && !passes[1].is_first());
        assert!(passes[1].contains(UnixMillis(13 * DAY_MS)));
        assert!(!passes[1].contains(UnixMillis(16 * DAY_MS)));
        assert_eq!(plan_passes(&days, 21), vec![None]);
    }

    #[test]
    fn a_resumed_replay_skips_the_passes_done_and_reads_the_one_under_way_again() {
        let days: BTreeMap<i64, usize> = [(10, 4), (11, 5), (15, 2), (16, 9), (20, 1)].into();
        let planned: Vec<ReplayPass> = plan_passes(&days, 10).into_iter().flatten().collect();
        let mut progress = ReplayProgress::default();
        assert!(progress.start(planned[0]));
        assert!(progress.start(planned[1]));
        // The pass under way begun again after a restart keeps its ids.
        assert!(!progress.start(planned[1]));
        assert_eq!(progress.done, vec![planned[0]]);
        let resumed: Vec<ReplayPass> = resumed_passes(&progress, &days, 10)
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(resumed, planned[1..].to_vec());
        // A budget changed meanwhile keeps the days of the pass under way.
        let resumed: Vec<(i64, i64)> = resumed_passes(&progress, &days, 1000)
            .into_iter()
            .flatten()
            .map(|p| (p.first_day, p.last_day))
            .collect();
        assert_eq!(resumed, vec![(12, 15), (16, i64::MAX)]);
        // Days after the recorded passes may change; theirs may not.
        let path = Path::new("archive");
        let mut grown = days.clone();
        grown.insert(30, 7);
        assert!(unchanged(&progress, &grown, path).is_ok());
        let mut moved = days.clone();
        moved.remove(&11);
        moved.insert(10, 9); // same events in pass 1's days, on another day
        let Err(SourceError::ReplayArchiveChanged {
            days: d, was, now, ..
        }) = unchanged(&progress, &moved, path)
        else {
            panic!("a changed day is refused");
        };
        assert_eq!((d.as_str(), was, now), ("…..1970-01-12", 9, 9));
        let mut more = days.clone();
        more.insert(13, 1);
        let Err(e) = unchanged(&progress, &more, path) else {
            panic!("an event added to a pass done is refused");
        };
        let message = e.to_string();
        assert!(
            message.contains("1970-01-13..1970-01-16 held 2 events then and hold 3 now"),
            "{message}"
        );
        assert!(message.contains("--state.dir"), "{message}");
    }

    #[test]
    fn a_resumed_replay_goes_on_after_the_files_it_counted_if_they_are_still_the_first() {
        let days: BTreeMap<i64, usize> = [(10, 4), (11, 5), (15, 2)].into();
        let planned: Vec<ReplayPass> = plan_passes(&days, 10).into_iter().flatten().collect();
        let mut progress = ReplayProgress::default();
        progress.start(planned[0]);
        progress.counted(Path::new("d/a.json"));
        progress.counted(Path::new("d/b.json"));
        // Begun again after a restart, the pass keeps the files it had got to.
        progress.start(planned[0]);
        let counted = CountedFiles {
            through: "d/b.json".into(),
            files: 2,
        };
        assert_eq!(progress.counted, Some(counted));
        let files: Vec<PathBuf> = ["d/a.json", "d/b.json", "d/c.json", "d/e/a.json"]
            .map(PathBuf::from)
            .into();
        let archive = Path::new("d");
        assert!(counted_files_unchanged(&progress, &files, archive).is_ok());
        let replay = Replay {
            files: files.clone(),
            max_ids_per_pass: 10,
            resume: Some((progress.clone(), days.clone())),
        };
        let names = |f: &[PathBuf]| {
            f.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(replay.files_left()), ["d/c.json", "d/e/a.json"]);
        // A file added before those counted (or one of them removed) is refused.
        let mut added = files.clone();
        added.insert(1, "d/aa.json".into());
        let Err(e) = counted_files_unchanged(&progress, &added, archive) else {
            panic!("a file added among those counted is refused");
        };
        let message = e.to_string();
        assert!(
            message.contains("its first 2 files, up to d/b.json: 3 files sort up to it now"),
            "{message}"
        );
        // A new pass starts from the first file.
        progress.start(planned[1]);
        assert_eq!(progress.counted, None);
        // A state saved before the files were kept reads as "nothing counted yet".
        let old: ReplayProgress = serde_json::from_str(r#"{"done":[],"current":null}"#).unwrap();
        assert_eq!(old, ReplayProgress::default());
    }

    #[test]
    fn another_archive_starts_afresh_and_the_same_one_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::create_dir(&b).unwrap();
        let mut saved = ReplayProgress::for_archive(&ReplayProgress::default(), &a);
        saved.counted(&a.join("x.json"));
        // The same archive spelled another way goes on.
        let same = ReplayProgress::for_archive(&saved, &a.join("sub/.."));
        assert_eq!(same, saved);
        let other = ReplayProgress::for_archive(&saved, &b);
        assert!(other.is_empty(), "{other:?}");
        assert_eq!(other.archive, Some(std::fs::canonicalize(&b).unwrap()));
        // A state saved before the archive was kept is taken as this archive's.
        let legacy = ReplayProgress {
            archive: None,
            ..saved.clone()
        };
        assert_eq!(
            ReplayProgress::for_archive(&legacy, &b).counted,
            saved.counted
        );
    }

    /// A census saved by an earlier version (no `method`) was counted another way: it is not
    /// compared, so an upgrade mid-replay does not refuse the start.
    #[test]
    fn a_census_from_an_earlier_version_is_not_compared() {
        let days: BTreeMap<i64, usize> = [(10, 4), (11, 5), (15, 2)].into();
        let planned: Vec<ReplayPass> = plan_passes(&days, 10).into_iter().flatten().collect();
        let mut saved = serde_json::to_value(planned[0]).unwrap();
        assert_eq!(saved["census"]["method"], "byte_search");
        saved["census"].as_object_mut().unwrap().remove("method");
        let legacy: ReplayPass = serde_json::from_value(saved).unwrap();
        assert_eq!(legacy.census.method, CensusMethod::Decoded);
        let mut progress = ReplayProgress::default();
        progress.start(legacy);
        let mut recounted = days.clone();
        recounted.insert(10, 5); // the new census counts one event more on day 10
        assert!(unchanged(&progress, &recounted, Path::new("d")).is_ok());
        progress.current = Some(planned[0]);
        assert!(unchanged(&progress, &recounted, Path::new("d")).is_err());
    }
}
