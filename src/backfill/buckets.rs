//! Events of a history in any order → the same events hour by hour, in `CreationTime` order.
//!
//! Archives come in any order, split across files that overlap, and a counter at t must count
//! the events created up to t, so they are put in time order first: each decoded event's raw
//! JSON is spilled to a file per UTC hour of its `CreationTime`, and read back one hour at a
//! time, sorted.
//!
//! Invariants:
//! - memory holds one hour's events at a time, and at most [`MAX_OPEN`] open files;
//! - every event accepted is read back exactly once (duplicates are the aggregator's to find);
//! - events dated more than a day past the wall clock are refused as `invalid_time`, as the
//!   aggregator refuses them: one bad clock must not stretch the history into the future;
//! - a record is `[CreationTime ms: i64 LE][length: u32 LE][the event's JSON]`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::decode::{ActivityEvent, EventSink, Rejection, UnixMillis};

const HOUR_MS: i64 = 3_600_000;
/// Hour files kept open while spilling; an archive sorted by time needs one or two.
pub const MAX_OPEN: usize = 64;
/// How far past the wall clock an event may be dated (the aggregator's own limit).
const MAX_FUTURE_MS: i64 = 86_400_000;

/// Spills events into hour files under a directory of its own.
#[derive(Debug)]
pub struct Spill {
    dir: PathBuf,
    writers: HashMap<i64, BufWriter<File>>,
    hours: BTreeSet<i64>,
    latest_allowed: i64,
    newest: Option<UnixMillis>,
    events: u64,
    rejections: BTreeMap<Rejection, u64>,
    /// The first write that failed: the spill is unusable once one did.
    error: Option<io::Error>,
}

impl Spill {
    /// A spill into `dir` (created, and expected empty), refusing events dated more than a day
    /// after `now`.
    pub fn new(dir: &Path, now: UnixMillis) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Spill {
            dir: dir.to_path_buf(),
            writers: HashMap::new(),
            hours: BTreeSet::new(),
            latest_allowed: now.0.saturating_add(MAX_FUTURE_MS),
            newest: None,
            events: 0,
            rejections: BTreeMap::new(),
            error: None,
        })
    }

    /// The events spilled (duplicates included).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The newest `CreationTime` spilled.
    pub fn newest(&self) -> Option<UnixMillis> {
        self.newest
    }

    /// Elements that did not decode, by reason.
    pub fn rejections(&self) -> &BTreeMap<Rejection, u64> {
        &self.rejections
    }

    /// Flushes every hour file and hands back what reads them, or the first write error.
    pub fn finish(mut self) -> io::Result<Sorted> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        for (_, mut w) in self.writers.drain() {
            w.flush()?;
        }
        Ok(Sorted {
            dir: self.dir,
            hours: self.hours.into_iter().collect(),
        })
    }

    fn append(&mut self, time: UnixMillis, raw: &[u8]) -> io::Result<()> {
        let hour = time.0.div_euclid(HOUR_MS);
        if !self.writers.contains_key(&hour) && self.writers.len() >= MAX_OPEN {
            for (_, mut w) in self.writers.drain() {
                w.flush()?;
            }
        }
        let writer = match self.writers.entry(hour) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(hour_file(&self.dir, hour))?;
                v.insert(BufWriter::new(file))
            }
        };
        let len = u32::try_from(raw.len()).map_err(io::Error::other)?;
        writer.write_all(&time.0.to_le_bytes())?;
        writer.write_all(&len.to_le_bytes())?;
        writer.write_all(raw)?;
        self.hours.insert(hour);
        self.events += 1;
        self.newest = self.newest.max(Some(time));
        Ok(())
    }
}

impl EventSink for Spill {
    /// Not called by the decoders, which hand every event with its bytes
    /// ([`EventSink::accept_raw`]); an event without its bytes cannot be spilled.
    fn accept(&mut self, _event: &ActivityEvent<'_>) {}

    fn reject(&mut self, reason: Rejection) {
        *self.rejections.entry(reason).or_default() += 1;
    }

    fn accept_raw(&mut self, event: &ActivityEvent<'_>, raw: &[u8]) {
        if event.time.0 > self.latest_allowed {
            return self.reject(Rejection::InvalidTime);
        }
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.append(event.time, raw) {
            self.error = Some(e);
        }
    }
}

/// The spilled hours, read back in order.
#[derive(Debug)]
pub struct Sorted {
    dir: PathBuf,
    hours: Vec<i64>,
}

impl Sorted {
    /// The hours that hold events, oldest first (hours since the Unix epoch).
    pub fn hours(&self) -> &[i64] {
        &self.hours
    }

    /// The events of `hour`, in `CreationTime` order (ties in the order they were spilled).
    pub fn read(&self, hour: i64) -> io::Result<HourEvents> {
        let mut bytes = Vec::new();
        File::open(hour_file(&self.dir, hour))?.read_to_end(&mut bytes)?;
        let mut index = Vec::new();
        let mut at = 0usize;
        while at < bytes.len() {
            let header = bytes.get(at..at + 12).ok_or_else(|| truncated(hour))?;
            let time = i64::from_le_bytes(header[..8].try_into().map_err(io::Error::other)?);
            let len = u32::from_le_bytes(header[8..].try_into().map_err(io::Error::other)?);
            let start = at + 12;
            let end = start + len as usize;
            if end > bytes.len() {
                return Err(truncated(hour));
            }
            index.push(Record { time, start, end });
            at = end;
        }
        index.sort_by_key(|r| r.time);
        Ok(HourEvents { bytes, index })
    }
}

fn truncated(hour: i64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the spill file of hour {hour} is truncated"),
    )
}

fn hour_file(dir: &Path, hour: i64) -> PathBuf {
    dir.join(format!("hour-{hour}.bin"))
}

#[derive(Debug, Clone, Copy)]
struct Record {
    time: i64,
    start: usize,
    end: usize,
}

/// One hour's events in time order.
#[derive(Debug)]
pub struct HourEvents {
    bytes: Vec<u8>,
    index: Vec<Record>,
}

impl HourEvents {
    /// Each event's `CreationTime` and JSON, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (UnixMillis, &[u8])> {
        self.index
            .iter()
            .map(|r| (UnixMillis(r.time), &self.bytes[r.start..r.end]))
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_slice;

    const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS;

    fn event(id: u32, ms: i64) -> String {
        let t = UnixMillis(ms).to_api_string();
        format!(
            r#"{{"Id":"00000000-0000-0000-0000-{id:012}","CreationTime":"{t}","Activity":"ViewReport"}}"#
        )
    }

    #[test]
    fn events_in_any_order_come_back_hour_by_hour_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = Spill::new(dir.path(), UnixMillis(T0)).unwrap();
        // Two hours, shuffled, with a duplicate and one element that is not an event.
        // (The API's CreationTime has whole seconds.)
        let times = [
            T0 + HOUR_MS + 5_000,
            T0 + 7_000,
            T0 + 3_000,
            T0 + HOUR_MS + 1_000,
            T0 + 7_000,
        ];
        let doc = format!(
            "[{},42]",
            (times.iter().enumerate())
                .map(|(i, t)| event(i as u32 % 4, *t))
                .collect::<Vec<_>>()
                .join(",")
        );
        decode_slice(doc.as_bytes(), &mut spill).unwrap();
        assert_eq!(spill.events(), 5);
        assert_eq!(spill.newest(), Some(UnixMillis(T0 + HOUR_MS + 5_000)));
        assert_eq!(spill.rejections().values().sum::<u64>(), 1);
        let sorted = spill.finish().unwrap();
        let hours = sorted.hours().to_vec();
        assert_eq!(hours, [T0 / HOUR_MS, T0 / HOUR_MS + 1]);
        let read: Vec<Vec<i64>> = hours
            .iter()
            .map(|h| sorted.read(*h).unwrap().iter().map(|(t, _)| t.0).collect())
            .collect();
        assert_eq!(
            read,
            [
                vec![T0 + 3_000, T0 + 7_000, T0 + 7_000],
                vec![T0 + HOUR_MS + 1_000, T0 + HOUR_MS + 5_000]
            ]
        );
        // The bytes are the event's own JSON, as the archive had it.
        let first = sorted.read(hours[0]).unwrap();
        assert_eq!(
            first.iter().next().unwrap().1,
            event(2, T0 + 3_000).as_bytes()
        );
    }

    #[test]
    fn more_hours_than_open_files_and_a_future_event_are_handled() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = Spill::new(dir.path(), UnixMillis(T0)).unwrap();
        let n = MAX_OPEN as i64 * 2 + 1;
        // Alternating between far-apart hours closes and reopens files in append mode.
        let mut doc = String::from("[");
        for i in 0..n {
            let hour = if i % 2 == 0 { i } else { n * 2 - i };
            doc.push_str(&event(i as u32, T0 - 400 * HOUR_MS + hour * HOUR_MS));
            doc.push(',');
        }
        doc.push_str(&event(999, T0 + 2 * 86_400_000));
        doc.push(']');
        decode_slice(doc.as_bytes(), &mut spill).unwrap();
        assert_eq!(spill.events(), n as u64);
        assert_eq!(spill.rejections().get(&Rejection::InvalidTime), Some(&1));
        let sorted = spill.finish().unwrap();
        let total: usize = (sorted.hours().iter())
            .map(|h| sorted.read(*h).unwrap().len())
            .sum();
        assert_eq!(total, n as usize);
        assert!(sorted.hours().windows(2).all(|w| w[0] < w[1]));
    }
}
