//! The forwarding spool: every new event, in the order it was counted, appended as one JSON
//! line to segment files in `<state.dir>/forward/`, and read by each sink from its own cursor.
//!
//! Invariants:
//! - an event has a sequence number; a segment is named by the number of its first event
//!   (`00000000000000001234.jsonl`) and holds consecutive events;
//! - the writer makes lines durable (fsync) before the state file that counts their events is
//!   saved, and only then publishes them to readers: a sink never forwards an event a crash
//!   could take back, and a crash never loses an event the state counted;
//! - an append is all or nothing: a write cut short (a full disk) is cut back to the last whole
//!   line, and the caller keeps the events to append them again;
//! - a cursor (`<sink>.cursor`) moves only over events the sink's destination accepted, so
//!   delivery is at-least-once: after a crash the in-flight batch is sent again;
//! - the newest segment is never deleted (it carries the next sequence number across
//!   restarts); older ones go once every sink is past them, or, over `max_bytes`, oldest
//!   first, and the events lost that way are counted by the sinks that had not read them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::aggregate::outbox::Outbox;

/// Why events were given up; the `reason` label of `powerbi_forward_dropped_events_total`.
/// The spool drops over its size limit; a sink gives up an event its destination refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    BacklogFull,
    Rejected,
    TooLarge,
}

impl DropReason {
    pub const ALL: [DropReason; 3] = [
        DropReason::BacklogFull,
        DropReason::Rejected,
        DropReason::TooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::BacklogFull => "backlog_full",
            DropReason::Rejected => "rejected",
            DropReason::TooLarge => "too_large",
        }
    }
}

/// A segment is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Progress shared between the writer and the readers.
#[derive(Debug, Default)]
pub struct SpoolProgress {
    /// Events durable in the spool (the sequence number of the next event to be written).
    pub durable: AtomicU64,
    /// Each sink's cursor: the next event it has not had accepted.
    cursors: Mutex<Vec<Arc<AtomicU64>>>,
}

impl SpoolProgress {
    /// The lowest cursor (everything below it was accepted by every sink).
    fn low_water(&self) -> Option<u64> {
        let cursors = self.cursors.lock().unwrap_or_else(PoisonError::into_inner);
        cursors.iter().map(|c| c.load(Ordering::Acquire)).min()
    }
}

/// Appends events; owned by the thread that applies documents.
#[derive(Debug)]
pub struct SpoolWriter {
    dir: PathBuf,
    segment: File,
    segment_first: u64,
    segment_bytes: u64,
    /// A failed write may have left part of a line after `segment_bytes`.
    fragment: bool,
    next: u64,
    max_bytes: u64,
    progress: Arc<SpoolProgress>,
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.jsonl")
}

/// The segments in `dir`, oldest first, as (first sequence number, path).
fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let first = name.to_str()?.strip_suffix(".jsonl")?.parse().ok()?;
            Some((first, e.path()))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Complete lines in `bytes` and the length up to the end of the last one.
fn complete_lines(bytes: &[u8]) -> (u64, usize) {
    let lines = memchr::memchr_iter(b'\n', bytes).count() as u64;
    let end = memchr::memrchr(b'\n', bytes).map_or(0, |i| i + 1);
    (lines, end)
}

impl SpoolWriter {
    /// Opens the spool in `dir`, recovering after a crash: a partial last line is cut off.
    /// The disk the spool may use (`--forward.max-backlog-bytes`).
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<SpoolWriter> {
        fs::create_dir_all(dir)?;
        let existing = segments(dir)?;
        let (first, path) = match existing.last() {
            Some((first, path)) => (*first, path.clone()),
            None => (0, dir.join(segment_name(0))),
        };
        let mut segment = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let mut bytes = Vec::new();
        segment.read_to_end(&mut bytes)?;
        let (lines, end) = complete_lines(&bytes);
        if end < bytes.len() {
            segment.set_len(end as u64)?;
            segment.sync_all()?;
        }
        let next = first + lines;
        let progress = Arc::new(SpoolProgress::default());
        progress.durable.store(next, Ordering::Release);
        Ok(SpoolWriter {
            dir: dir.to_path_buf(),
            segment,
            segment_first: first,
            segment_bytes: end as u64,
            fragment: false,
            next,
            max_bytes,
            progress,
        })
    }

    /// The spool's directory, for messages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn progress(&self) -> Arc<SpoolProgress> {
        self.progress.clone()
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Appends the queued events (not yet durable nor visible to readers: see [`Self::sync`]).
    /// All or nothing: when the write fails (a full disk), what it wrote of the events is cut
    /// off again, so no partial line is left to merge with the next one, and the caller keeps
    /// the events to append them again.
    pub fn append(&mut self, outbox: &Outbox) -> io::Result<()> {
        if outbox.is_empty() {
            return Ok(());
        }
        self.cut_fragment()?;
        if self.segment_bytes >= SEGMENT_BYTES {
            self.rotate()?;
        }
        if let Err(e) = self.segment.write_all(outbox.lines()) {
            self.fragment = true;
            // Cutting frees space, so it normally works at once; else before the next append.
            let _ = self.cut_fragment();
            return Err(e);
        }
        self.segment_bytes += outbox.lines().len() as u64;
        self.next += outbox.events();
        Ok(())
    }

    /// Cuts the segment back to its last whole line after a failed write.
    fn cut_fragment(&mut self) -> io::Result<()> {
        if self.fragment {
            self.segment.set_len(self.segment_bytes)?;
            self.fragment = false;
        }
        Ok(())
    }

    /// Makes every appended event durable, then visible to the readers.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.progress.durable.load(Ordering::Acquire) == self.next {
            return Ok(());
        }
        self.segment.sync_data()?;
        self.progress.durable.store(self.next, Ordering::Release);
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.segment.sync_data()?;
        self.progress.durable.store(self.next, Ordering::Release);
        let path = self.dir.join(segment_name(self.next));
        self.segment = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        self.segment_first = self.next;
        self.segment_bytes = 0;
        File::open(&self.dir)?.sync_all()?;
        self.prune()
    }

    /// Deletes closed segments every sink is past, then the oldest ones while the spool is over
    /// its size limit.
    fn prune(&mut self) -> io::Result<()> {
        let low = self.progress.low_water().unwrap_or(self.next);
        let existing = segments(&self.dir)?;
        let mut total: u64 = existing
            .iter()
            .map(|(_, p)| fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        for pair in existing.windows(2) {
            let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
            let size = fs::metadata(path).map_or(0, |m| m.len());
            if *next_first <= low || total > self.max_bytes {
                if *next_first > low {
                    tracing::warn!(path = %path.display(), "The forwarding backlog is over --forward.max-backlog-bytes; its oldest events are dropped.");
                }
                fs::remove_file(path)?;
                total = total.saturating_sub(size);
            }
        }
        Ok(())
    }
}

/// What a sink has had accepted, saved in `<sink>.cursor`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CursorFile {
    pub next: u64,
    pub forwarded: u64,
    #[serde(default)]
    pub errors: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub dropped: std::collections::BTreeMap<String, u64>,
}

/// A batch read from the spool, not yet accepted.
#[derive(Debug, Default)]
pub struct Peeked {
    pub lines: Vec<Vec<u8>>,
    /// Events between the cursor and the oldest segment left (dropped over the size limit).
    pub lost: u64,
}

/// One sink's reader.
#[derive(Debug)]
pub struct SpoolReader {
    dir: PathBuf,
    path: PathBuf,
    pub cursor: CursorFile,
    shared_cursor: Arc<AtomicU64>,
    progress: Arc<SpoolProgress>,
    /// The open segment: its first sequence number, the file, and the byte offset of `cursor`.
    open: Option<(u64, BufReader<File>)>,
    /// Byte length (with the newline) of each line of the last peek.
    peeked: Vec<usize>,
}

impl SpoolReader {
    /// Opens (or starts) the cursor of `sink`.
    pub fn open(dir: &Path, sink: &str, progress: Arc<SpoolProgress>) -> io::Result<SpoolReader> {
        let path = dir.join(format!("{sink}.cursor"));
        let mut cursor: CursorFile = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => CursorFile {
                // A new sink starts with what is written from now on.
                next: progress.durable.load(Ordering::Acquire),
                ..CursorFile::default()
            },
            Err(e) => return Err(e),
        };
        // A cursor is never past the durable spool; should it be (a spool copied back from
        // an older backup), events are sent again rather than skipped.
        cursor.next = cursor.next.min(progress.durable.load(Ordering::Acquire));
        let shared_cursor = Arc::new(AtomicU64::new(cursor.next));
        progress
            .cursors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(shared_cursor.clone());
        Ok(SpoolReader {
            dir: dir.to_path_buf(),
            path,
            cursor,
            shared_cursor,
            progress,
            open: None,
            peeked: Vec::new(),
        })
    }

    /// Durable events not yet accepted.
    pub fn backlog(&self) -> u64 {
        self.progress
            .durable
            .load(Ordering::Acquire)
            .saturating_sub(self.cursor.next)
    }

    /// Up to `max_events` events from the cursor on (fewer when `max_bytes` is reached; at
    /// least one when any is there); the cursor does not move.
    pub fn peek(&mut self, max_events: usize, max_bytes: usize) -> io::Result<Peeked> {
        let durable = self.progress.durable.load(Ordering::Acquire);
        let mut out = Peeked::default();
        self.peeked.clear();
        let mut bytes = 0;
        while self.cursor.next + (out.lines.len() as u64) < durable
            && out.lines.len() < max_events
            && (out.lines.is_empty() || bytes < max_bytes)
        {
            if self.open.is_none() {
                let lost = self.seek_cursor()?;
                if lost > 0 {
                    *self
                        .cursor
                        .dropped
                        .entry(DropReason::BacklogFull.as_str().into())
                        .or_default() += lost;
                    self.set_next(self.cursor.next + lost);
                    out.lost += lost;
                }
                continue;
            }
            let Some((_, reader)) = &mut self.open else {
                break;
            };
            let mut line = Vec::new();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                // The end of this segment: the next one starts at the following event.
                let back = n as i64;
                reader.seek_relative(-back)?;
                if !self.advance_segment(out.lines.len() as u64)? {
                    break;
                }
                continue;
            }
            bytes += n;
            self.peeked.push(n);
            line.pop();
            out.lines.push(line);
        }
        // The peeked lines are read again from the same place after an error.
        if let Some((_, reader)) = &mut self.open {
            let back: usize = self.peeked.iter().sum();
            reader.seek_relative(-(back as i64))?;
        }
        Ok(out)
    }

    /// Whether the segment after the open one starts at the event after the peeked ones.
    fn advance_segment(&mut self, peeked: u64) -> io::Result<bool> {
        let at = self.cursor.next + peeked;
        let path = self.dir.join(segment_name(at));
        if !path.exists() {
            return Ok(false);
        }
        if peeked == 0 {
            self.open = Some((at, BufReader::new(File::open(path)?)));
            return Ok(true);
        }
        // Lines already peeked live in the current segment; stop the batch here.
        Ok(false)
    }

    /// Opens the segment holding the cursor; returns how many events were lost before it.
    fn seek_cursor(&mut self) -> io::Result<u64> {
        let existing = segments(&self.dir)?;
        let want = self.cursor.next;
        let Some((first, path)) = existing.iter().rev().find(|(f, _)| *f <= want).cloned() else {
            // Older segments were dropped: resume at the oldest one left.
            let Some((first, path)) = existing.first().cloned() else {
                return Err(io::Error::other("the forwarding spool has no segment"));
            };
            self.open = Some((first, BufReader::new(File::open(path)?)));
            return Ok(first - want);
        };
        let mut reader = BufReader::new(File::open(path)?);
        let mut skip = want - first;
        let mut line = Vec::new();
        while skip > 0 {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            skip -= 1;
        }
        self.open = Some((first, reader));
        Ok(0)
    }

    /// Marks the first `n` peeked events accepted and saves the cursor.
    pub fn commit(&mut self, n: usize) -> io::Result<()> {
        let bytes: usize = self.peeked.iter().take(n).sum();
        if let Some((_, reader)) = &mut self.open {
            reader.seek_relative(bytes as i64)?;
        }
        self.peeked.drain(..n.min(self.peeked.len()));
        self.cursor.forwarded += n as u64;
        self.set_next(self.cursor.next + n as u64);
        self.save()
    }

    /// Counts an error of `reason` (saved with the next commit).
    pub fn count_error(&mut self, reason: &str) {
        *self.cursor.errors.entry(reason.into()).or_default() += 1;
    }

    /// Gives up the first peeked event (its destination refuses it for good) and saves.
    pub fn drop_first(&mut self, reason: DropReason) -> io::Result<()> {
        let bytes = self.peeked.first().copied().unwrap_or(0);
        if let Some((_, reader)) = &mut self.open {
            reader.seek_relative(bytes as i64)?;
        }
        if !self.peeked.is_empty() {
            self.peeked.remove(0);
        }
        *self
            .cursor
            .dropped
            .entry(reason.as_str().into())
            .or_default() += 1;
        self.set_next(self.cursor.next + 1);
        self.save()
    }

    fn set_next(&mut self, next: u64) {
        self.cursor.next = next;
        self.shared_cursor.store(next, Ordering::Release);
    }

    fn save(&self) -> io::Result<()> {
        let tmp = self.path.with_extension("cursor.tmp");
        let bytes = serde_json::to_vec(&self.cursor).map_err(io::Error::other)?;
        fs::write(&tmp, bytes)?;
        fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::UnixMillis;

    fn outbox(range: std::ops::Range<u32>) -> Outbox {
        let mut o = Outbox::default();
        for i in range {
            o.push(format!(r#"{{"Id":"e{i}"}}"#).as_bytes(), UnixMillis(1));
        }
        o
    }

    fn ids(p: &Peeked) -> Vec<String> {
        p.lines
            .iter()
            .map(|l| String::from_utf8(l.clone()).unwrap())
            .map(|l| {
                l.trim_start_matches(r#"1 {"Id":""#)
                    .trim_end_matches("\"}")
                    .into()
            })
            .collect()
    }

    #[test]
    fn readers_see_only_synced_events_and_resume_from_their_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::open(dir.path(), u64::MAX).unwrap();
        let mut r = SpoolReader::open(dir.path(), "a", w.progress()).unwrap();
        w.append(&outbox(0..5)).unwrap();
        assert!(
            r.peek(10, 1 << 20).unwrap().lines.is_empty(),
            "not synced yet"
        );
        w.sync().unwrap();
        let p = r.peek(3, 1 << 20).unwrap();
        assert_eq!(ids(&p), ["e0", "e1", "e2"]);
        // Not committed: the same events again.
        assert_eq!(ids(&r.peek(3, 1 << 20).unwrap()), ["e0", "e1", "e2"]);
        r.commit(2).unwrap();
        assert_eq!(ids(&r.peek(10, 1 << 20).unwrap()), ["e2", "e3", "e4"]);
        assert_eq!(r.backlog(), 3);
        drop(r);
        // A restart: the writer finds seq 5, the reader its cursor 2.
        drop(w);
        let w = SpoolWriter::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(w.next_seq(), 5);
        let mut r = SpoolReader::open(dir.path(), "a", w.progress()).unwrap();
        assert_eq!(r.cursor.forwarded, 2);
        assert_eq!(ids(&r.peek(10, 1 << 20).unwrap()), ["e2", "e3", "e4"]);
        // A byte limit stops a batch after the line that reaches it.
        assert_eq!(ids(&r.peek(10, 5).unwrap()), ["e2"]);
        r.drop_first(DropReason::Rejected).unwrap();
        assert_eq!(ids(&r.peek(10, 1 << 20).unwrap()), ["e3", "e4"]);
        assert_eq!(r.cursor.dropped["rejected"], 1);
    }

    #[test]
    fn a_partial_last_line_from_a_crash_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::open(dir.path(), u64::MAX).unwrap();
        w.append(&outbox(0..2)).unwrap();
        w.sync().unwrap();
        drop(w);
        let seg = dir.path().join(segment_name(0));
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(br#"{"Id":"ha"#).unwrap();
        let mut w = SpoolWriter::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(w.next_seq(), 2);
        w.append(&outbox(2..3)).unwrap();
        w.sync().unwrap();
        let mut r = SpoolReader::open(dir.path(), "a", w.progress()).unwrap();
        r.cursor.next = 0;
        r.shared_cursor.store(0, Ordering::Release);
        assert_eq!(ids(&r.peek(10, 1 << 20).unwrap()), ["e0", "e1", "e2"]);
        assert_eq!(BufReader::new(File::open(seg).unwrap()).lines().count(), 3);
    }

    #[test]
    fn segments_rotate_are_read_across_and_pruned_behind_every_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::open(dir.path(), u64::MAX).unwrap();
        let mut a = SpoolReader::open(dir.path(), "a", w.progress()).unwrap();
        let mut b = SpoolReader::open(dir.path(), "b", w.progress()).unwrap();
        w.append(&outbox(0..3)).unwrap();
        w.segment_bytes = SEGMENT_BYTES; // force a rotation at the next append
        w.append(&outbox(3..6)).unwrap();
        w.sync().unwrap();
        assert_eq!(segments(dir.path()).unwrap().len(), 2);
        // A batch ends at a segment's end; the next starts in the next segment.
        assert_eq!(ids(&a.peek(10, 1 << 20).unwrap()), ["e0", "e1", "e2"]);
        a.commit(3).unwrap();
        assert_eq!(ids(&a.peek(10, 1 << 20).unwrap()), ["e3", "e4", "e5"]);
        a.commit(3).unwrap();
        // b has read nothing: the first segment stays.
        w.segment_bytes = SEGMENT_BYTES;
        w.append(&outbox(6..7)).unwrap();
        w.sync().unwrap();
        assert_eq!(segments(dir.path()).unwrap().len(), 3);
        assert_eq!(ids(&b.peek(4, 1 << 20).unwrap()), ["e0", "e1", "e2"]);
        b.commit(3).unwrap();
        w.segment_bytes = SEGMENT_BYTES;
        w.append(&outbox(7..8)).unwrap();
        w.sync().unwrap();
        let left: Vec<u64> = segments(dir.path()).unwrap().iter().map(|s| s.0).collect();
        assert_eq!(left, [3, 6, 7], "the segment both read is gone");
    }

    #[test]
    fn over_the_size_limit_the_oldest_events_go_and_are_counted_lost() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::open(dir.path(), 1).unwrap();
        let mut r = SpoolReader::open(dir.path(), "slow", w.progress()).unwrap();
        w.append(&outbox(0..3)).unwrap();
        w.segment_bytes = SEGMENT_BYTES;
        w.append(&outbox(3..5)).unwrap();
        w.sync().unwrap();
        let p = r.peek(10, 1 << 20).unwrap();
        assert_eq!(p.lost, 3);
        assert_eq!(ids(&p), ["e3", "e4"]);
        assert_eq!(r.cursor.dropped["backlog_full"], 3);
    }
}
