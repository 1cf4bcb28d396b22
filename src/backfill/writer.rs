//! The OpenMetrics file of a backfill, written in bounded memory whatever the number of steps.
//!
//! A backfill produces every series at one instant, then every series at the next; OpenMetrics
//! asks for the transpose: families not interleaved, and each series' points contiguous and in
//! time order ("Metrics MUST NOT be interleaved", OpenMetrics 1.0, text format). So points are
//! buffered in chunks of at most `chunk_points`, each chunk sorted by family and series (a
//! stable sort: time order stays) and written as a run file; at the end the runs are merged,
//! series by series, earlier runs first.
//!
//! Invariants:
//! - memory is the series table (one rendered label set per series) plus one chunk: it does
//!   not grow with the number of steps;
//! - families come in the order given (the catalogue's), series in the order they first
//!   appeared, points in time order; families without samples are left out;
//! - the file is written under a temporary name and renamed once `# EOF` is on disk, so a
//!   file at the output path is always whole.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::catalogue::{Family, Sample, Snapshot};
use crate::decode::UnixMillis;
use crate::exposition::openmetrics::{self, write_labels, write_metadata, write_sample};

/// Points buffered before a run is written (~24 bytes each).
pub const DEFAULT_CHUNK_POINTS: usize = 2_000_000;

/// A label added to every series (`--label`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraLabel {
    pub name: String,
    pub value: String,
}

/// One sample of one series.
#[derive(Debug, Clone, Copy)]
struct Point {
    family: u16,
    series: u32,
    at: i64,
    value: f64,
}

const RECORD_BYTES: usize = 2 + 4 + 8 + 8;

impl Point {
    fn key(&self) -> (u16, u32) {
        (self.family, self.series)
    }

    fn encode(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.family.to_le_bytes())?;
        out.write_all(&self.series.to_le_bytes())?;
        out.write_all(&self.at.to_le_bytes())?;
        out.write_all(&self.value.to_le_bytes())
    }

    fn decode(r: &mut impl Read) -> io::Result<Option<Point>> {
        let mut b = [0u8; RECORD_BYTES];
        match r.read_exact(&mut b) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let field = |range: std::ops::Range<usize>| b[range].to_vec();
        let array = |v: Vec<u8>| -> io::Result<[u8; 8]> { v.try_into().map_err(|_| bad_run()) };
        Ok(Some(Point {
            family: u16::from_le_bytes([b[0], b[1]]),
            series: u32::from_le_bytes([b[2], b[3], b[4], b[5]]),
            at: i64::from_le_bytes(array(field(6..14))?),
            value: f64::from_le_bytes(array(field(14..22))?),
        }))
    }
}

fn bad_run() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "a run file of the backfill is damaged",
    )
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    pub series: usize,
    pub samples: u64,
    pub bytes: u64,
}

/// Collects snapshots at instants and writes them as one OpenMetrics file.
#[derive(Debug)]
pub struct HistoryWriter {
    work: PathBuf,
    families: Vec<&'static Family>,
    extra: Vec<ExtraLabel>,
    /// Per family: rendered label set → series number.
    series: Vec<HashMap<Box<str>, u32>>,
    /// Series number → rendered label set.
    labels: Vec<Box<str>>,
    chunk: Vec<Point>,
    chunk_points: usize,
    runs: Vec<PathBuf>,
    samples: u64,
    scratch: String,
}

impl HistoryWriter {
    /// A writer of `families` (in that order) that keeps its runs in `work` (created).
    pub fn new(
        work: &Path,
        families: &[&'static Family],
        extra: Vec<ExtraLabel>,
        chunk_points: usize,
    ) -> io::Result<Self> {
        std::fs::create_dir_all(work)?;
        Ok(HistoryWriter {
            work: work.to_path_buf(),
            families: families.to_vec(),
            extra,
            series: vec![HashMap::new(); families.len()],
            labels: Vec::new(),
            chunk: Vec::new(),
            chunk_points: chunk_points.max(1),
            runs: Vec::new(),
            samples: 0,
            scratch: String::new(),
        })
    }

    /// Records every sample of the written families in `snapshot` as of `at`.
    pub fn record(&mut self, at: UnixMillis, snapshot: &Snapshot) -> io::Result<()> {
        for index in 0..self.families.len() {
            let family = self.families[index];
            let Some(samples) = snapshot.family(family.name) else {
                continue;
            };
            for sample in &samples.samples {
                let series = self.series_of(index, sample);
                self.chunk.push(Point {
                    family: index as u16,
                    series,
                    at: at.0,
                    value: sample.value,
                });
                if self.chunk.len() >= self.chunk_points {
                    self.write_run()?;
                }
            }
        }
        Ok(())
    }

    /// The number of the series of family `index` with the label values of `sample`.
    fn series_of(&mut self, index: usize, sample: Sample<'_>) -> u32 {
        self.scratch.clear();
        let names = (self.families[index].labels.iter().copied())
            .chain(self.extra.iter().map(|l| l.name.as_str()));
        let values = sample
            .labels()
            .chain(self.extra.iter().map(|l| l.value.as_str()));
        write_labels(names, values, &mut self.scratch);
        if let Some(&n) = self.series[index].get(self.scratch.as_str()) {
            return n;
        }
        let n = self.labels.len() as u32;
        let text: Box<str> = self.scratch.as_str().into();
        self.labels.push(text.clone());
        self.series[index].insert(text, n);
        n
    }

    /// Sorts the chunk by family and series (stable: each series stays in time order) and
    /// writes it as the next run.
    fn write_run(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        self.chunk.sort_by_key(Point::key);
        let path = self.work.join(format!("run-{:06}.bin", self.runs.len()));
        let mut out = BufWriter::new(File::create(&path)?);
        for p in &self.chunk {
            p.encode(&mut out)?;
        }
        out.flush()?;
        self.samples += self.chunk.len() as u64;
        self.chunk.clear();
        self.runs.push(path);
        Ok(())
    }

    /// Merges the runs into `out` (through a temporary file renamed at the end) and removes
    /// them.
    pub fn finish(mut self, out: &Path) -> io::Result<Written> {
        self.write_run()?;
        let partial = partial_path(out);
        let file = File::create(&partial)?;
        let mut sink = BufWriter::with_capacity(1 << 20, file);
        self.merge(&mut sink)?;
        sink.write_all(openmetrics::EOF.as_bytes())?;
        let file = sink.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        std::fs::rename(&partial, out)?;
        for run in &self.runs {
            let _ = std::fs::remove_file(run);
        }
        Ok(Written {
            series: self.labels.len(),
            samples: self.samples,
            bytes,
        })
    }

    /// Writes every series of every family, taking each series' points run after run.
    fn merge(&self, out: &mut impl Write) -> io::Result<()> {
        let mut readers = Vec::with_capacity(self.runs.len());
        let mut heads = BinaryHeap::new();
        for (run, path) in self.runs.iter().enumerate() {
            let mut reader = BufReader::with_capacity(64 * 1024, File::open(path)?);
            if let Some(first) = Point::decode(&mut reader)? {
                heads.push(Reverse((first.key(), run)));
                readers.push((reader, Some(first)));
            } else {
                readers.push((reader, None));
            }
        }
        let mut line = String::new();
        let mut current_family = None;
        while let Some(Reverse((key, run))) = heads.pop() {
            let family = self.families[usize::from(key.0)];
            if current_family != Some(key.0) {
                current_family = Some(key.0);
                line.clear();
                write_metadata(family, &mut line);
                out.write_all(line.as_bytes())?;
            }
            let (reader, head) = &mut readers[run];
            while let Some(point) = head.filter(|p| p.key() == key) {
                line.clear();
                let labels = &self.labels[point.series as usize];
                write_sample(family, labels, point.value, UnixMillis(point.at), &mut line);
                out.write_all(line.as_bytes())?;
                *head = Point::decode(reader)?;
            }
            if let Some(next) = head {
                heads.push(Reverse((next.key(), run)));
            }
        }
        Ok(())
    }
}

/// Where the output is written until it is whole.
pub fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{ACTIVITY_EVENTS, WORKSPACE_INFO};

    fn snapshot(events: &[(&str, f64)], workspaces: &[&str]) -> Snapshot {
        let mut s = Snapshot::default();
        s.push(
            &ACTIVITY_EVENTS,
            events
                .iter()
                .map(|(w, v)| (vec![w.to_string(), "ViewReport".to_string()], *v)),
        );
        s.push(
            &WORKSPACE_INFO,
            (workspaces.iter()).map(|w| {
                (
                    vec![
                        w.to_string(),
                        format!("n{w}"),
                        "Workspace".into(),
                        String::new(),
                    ],
                    1.0,
                )
            }),
        );
        s
    }

    fn write(chunk_points: usize) -> (String, Written) {
        let dir = tempfile::tempdir().unwrap();
        let extra = vec![ExtraLabel {
            name: "job".into(),
            value: "pbi".into(),
        }];
        let families = [&ACTIVITY_EVENTS, &WORKSPACE_INFO];
        let mut w =
            HistoryWriter::new(&dir.path().join("work"), &families, extra, chunk_points).unwrap();
        w.record(UnixMillis(60_000), &snapshot(&[("b", 1.0)], &["b"]))
            .unwrap();
        w.record(
            UnixMillis(120_000),
            &snapshot(&[("a", 1.0), ("b", 2.0)], &["a", "b"]),
        )
        .unwrap();
        w.record(
            UnixMillis(150_500),
            &snapshot(&[("a", 3.0), ("b", 2.0)], &["a", "b"]),
        )
        .unwrap();
        let out = dir.path().join("history.om");
        let written = w.finish(&out).unwrap();
        assert!(!partial_path(&out).exists());
        (std::fs::read_to_string(&out).unwrap(), written)
    }

    #[test]
    fn points_come_out_family_by_family_and_series_by_series_in_time_order() {
        let expected = r#"# TYPE powerbi_activity_events counter
# HELP powerbi_activity_events Activity events by workspace (WorkspaceId, empty when the event has none) and Activity, each event Id counted once.
powerbi_activity_events_total{workspace_id="b",activity="ViewReport",job="pbi"} 1 60
powerbi_activity_events_total{workspace_id="b",activity="ViewReport",job="pbi"} 2 120
powerbi_activity_events_total{workspace_id="b",activity="ViewReport",job="pbi"} 2 150.500
powerbi_activity_events_total{workspace_id="a",activity="ViewReport",job="pbi"} 1 120
powerbi_activity_events_total{workspace_id="a",activity="ViewReport",job="pbi"} 3 150.500
# TYPE powerbi_workspace info
"#;
        let (text, written) = write(1_000);
        assert!(text.starts_with(expected), "{text}");
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(
            written,
            Written {
                series: 4,
                samples: 10,
                bytes: text.len() as u64
            }
        );
    }

    #[test]
    fn many_small_runs_merge_to_the_same_file() {
        // A chunk of 3 points: the 10 points go through 4 runs.
        assert_eq!(write(3), write(1_000));
        assert_eq!(write(1), write(1_000));
    }
}
