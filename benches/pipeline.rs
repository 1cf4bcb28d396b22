//! Decode + aggregate throughput against a bare JSON parse of the same bytes.
//!
//! `cargo bench --bench pipeline` generates BENCH_EVENTS (default 1,000,000) events of the
//! simulated tenant as API pages of 5,000 events in memory and times, on one thread, the best
//! of 3 passes of:
//! - baseline: `serde_json::from_slice::<IgnoredAny>` of each page (validates every byte);
//! - decode, streamed: the splitter + lenient decoder (the path of files over 32 MiB);
//! - decode, in memory: the single-pass decoder (API pages, demo pages, smaller files);
//! - decode + aggregate: the whole pipeline after the source (dedup, series, users), in memory;
//! - aggregate alone: the same aggregation over events decoded beforehand (untimed), page by
//!   page, so only the accept path is timed (`BENCH_ONLY=alone` profiles it);
//! - decode + aggregate + forwarding spool: the same with every counted event queued and
//!   appended to the spool file (what `--otlp.logs` / `--logs-ingestion.*` add to the pipeline);
//! - decode + aggregate, pipelined: pages decoded ahead on worker threads, one a core, while
//!   the calling thread counts (`Decoding::Pipelined`, what the exporter does on a machine with
//!   more than one core).
//!
//! Then, with the pages written as files (one page a file) to a temporary directory, it times
//! whole runs of the exporter's binary, wall clock, files read from disk, against a bare parse
//! of the same files on one thread (read, then `IgnoredAny`): `powerbi-exporter --once
//! --replay DIR` and `powerbi-exporter top --replay DIR`.
//!
//! Targets (issue 15, target 1): decode + aggregate on one core within 1.5× the bare parse;
//! each whole run within 1.2× the bare parse of the files. With `--bench` it prints every ratio
//! and exits 1 naming each target missed. Under `cargo test` (no `--bench` argument) it runs
//! once on 20,000 events as a smoke test, with no thresholds.

use std::time::{Duration, Instant};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use powerbi_exporter::aggregate::{AggregateConfig, Aggregator, Reference};
use powerbi_exporter::pipeline::Decoding;
use powerbi_exporter::rng::Rng;
use powerbi_exporter::simulator::{write_archive, Layout, Tenant, TenantSpec};
use powerbi_exporter::source::{Body, Document};
use powerbi_exporter::state::spool::SpoolWriter;
// The decoder's own crate: the decode phases measure it alone, as the fuzz targets run it.
use powerbi_exporter_decode::{
    decode_reader, decode_slice, decode_slice_each, ActivityEvent, EventSink, Rejection, UnixMillis,
};

struct Discard(u64);

impl EventSink for Discard {
    fn accept(&mut self, e: &ActivityEvent<'_>) {
        self.0 += u64::from(e.success);
    }
    fn reject(&mut self, _: Rejection) {}
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let events: u64 = if benching {
        std::env::var("BENCH_EVENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    } else {
        20_000
    };
    let rounds = if benching { 3 } else { 1 };

    let tenant = Tenant::new(TenantSpec {
        seed: 7,
        workspaces: 40,
        users: 5_000,
    });
    let end = UnixMillis::from_secs(1_795_132_800); // 2026-11-20T00:00:00Z
    let mut archive = Vec::new();
    write_archive(
        &tenant,
        &mut Rng::new(8),
        events,
        (end.saturating_sub_millis(7 * 86_400_000), end),
        Layout::Pages,
        &mut archive,
    )
    .unwrap();
    let pages: Vec<&[u8]> = archive
        .split(|&b| b == b'\n')
        .filter(|p| !p.is_empty())
        .collect();
    let bytes = archive.len() as f64;
    println!(
        "{events} events, {} pages, {:.1} MB, {:.0} bytes/event",
        pages.len(),
        bytes / 1e6,
        bytes / events as f64
    );

    // BENCH_ONLY=baseline|streamed|decode|aggregate|alone runs one phase (for profiling it).
    let only = std::env::var("BENCH_ONLY").ok();
    let runs = |phase: &str| {
        if only.as_deref().is_none_or(|o| o == phase) {
            rounds
        } else {
            0
        }
    };
    let baseline = best_of(runs("baseline"), || {
        for p in &pages {
            serde_json::from_slice::<serde::de::IgnoredAny>(p).unwrap();
        }
    });
    report(
        "baseline: serde_json IgnoredAny",
        baseline,
        events,
        bytes,
        baseline,
    );

    let streamed = best_of(runs("streamed"), || {
        let mut sink = Discard(0);
        for p in &pages {
            decode_reader(*p, &mut sink).unwrap();
        }
        assert!(sink.0 > 0);
    });
    report(
        "decode, streamed (files > 32 MiB)",
        streamed,
        events,
        bytes,
        baseline,
    );

    let decode = best_of(runs("decode"), || {
        let mut sink = Discard(0);
        for p in &pages {
            decode_slice(p, &mut sink).unwrap();
        }
        assert!(sink.0 > 0);
    });
    report("decode, in memory (pages)", decode, events, bytes, baseline);

    let mut last = None;
    let full = best_of(runs("aggregate").max(1), || {
        let mut agg = Aggregator::new(&AggregateConfig::default());
        for p in &pages {
            decode_slice(p, &mut agg).unwrap();
        }
        last = Some(agg);
    });
    report("decode + aggregate", full, events, bytes, baseline);

    // The aggregator alone: each page decoded first (untimed), then only its events handed to
    // the aggregator timed; what the accept path costs beside the bare parse.
    let alone = best_of_timed(runs("alone"), || {
        let mut agg = Aggregator::new(&AggregateConfig::default());
        let mut took = Duration::ZERO;
        let mut decoded = Vec::with_capacity(5_000);
        for p in &pages {
            decoded.clear();
            decode_slice_each(p, |d| decoded.push(d)).unwrap();
            let t = Instant::now();
            decoded.iter().for_each(|d| d.deliver(&mut agg));
            took += t.elapsed();
        }
        assert_eq!(agg.processed(), events);
        took
    });
    report(
        "aggregate alone (pre-decoded)",
        alone,
        events,
        bytes,
        baseline,
    );

    // With forwarding on: every counted event is also queued as a raw line and appended to the
    // spool (a file in a temporary directory, synced once at the end, like a checkpoint).
    let forwarding = best_of(runs("forward"), || {
        let dir = std::env::temp_dir().join(format!("pbi-bench-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut spool = SpoolWriter::open(&dir, u64::MAX).unwrap();
        let mut agg = Aggregator::new(&AggregateConfig::default());
        agg.enable_outbox();
        for p in &pages {
            decode_slice(p, &mut agg).unwrap();
            spool.append(&agg.take_outbox()).unwrap();
        }
        spool.sync().unwrap();
        assert_eq!(spool.next_seq(), events);
        let _ = std::fs::remove_dir_all(&dir);
    });
    report(
        "decode + aggregate + forwarding spool",
        forwarding,
        events,
        bytes,
        baseline,
    );

    let documents: Vec<Document> = (pages.iter())
        .map(|p| Document {
            origin: String::new(),
            body: Body::Bytes(bytes::Bytes::copy_from_slice(p)),
        })
        .collect();
    let pipelined = best_of(runs("pipelined"), || {
        let mut agg = Aggregator::new(&AggregateConfig::default());
        let report = Decoding::Pipelined.apply_documents(&documents, &mut agg);
        assert_eq!((agg.processed(), report.failed_documents), (events, 0));
    });
    report(
        "decode + aggregate, pipelined",
        pipelined,
        events,
        bytes,
        baseline,
    );

    let mut missed = Vec::new();
    let mut target = |name: &str, took: Duration, base: Duration, max: f64| {
        let ratio = took.as_secs_f64() / base.as_secs_f64();
        if ratio > max {
            missed.push(format!("{name}: {ratio:.2}x the bare parse, target {max}x"));
        }
    };
    if only.is_none() {
        target("decode + aggregate, one core", full, baseline, 1.5);
    }
    if only.is_none() || only.as_deref() == Some("runs") {
        for (name, took, base) in whole_runs(&pages, events, bytes, rounds) {
            target(name, took, base, 1.2);
        }
    }

    let agg = last.unwrap();
    assert_eq!(agg.processed(), events);
    let snapshot = agg.snapshot(Reference::NewestEvent);
    let series: usize = snapshot.families.iter().map(|f| f.samples.len()).sum();
    let counted: f64 = snapshot
        .family("powerbi_activity_events_total")
        .unwrap()
        .samples
        .iter()
        .map(|s| s.value)
        .sum();
    assert_eq!(counted as u64, events, "every generated event counted once");
    let t = Instant::now();
    let text = powerbi_exporter::exposition::text::render(&snapshot);
    println!(
        "exposition: {series} series, {} KB, rendered in {:.2} ms",
        text.len() / 1024,
        t.elapsed().as_secs_f64() * 1e3
    );
    if benching && !missed.is_empty() {
        eprintln!("targets missed:\n  {}", missed.join("\n  "));
        std::process::exit(1);
    }
}

/// Writes `pages` to a temporary directory, one file each, and times, best of `rounds`, the bare
/// parse of the files (read from disk, one thread) and the whole `--once` and `top` runs of the
/// exporter's binary over the directory. Returns each run's time beside the bare parse's.
fn whole_runs(
    pages: &[&[u8]],
    events: u64,
    bytes: f64,
    rounds: usize,
) -> Vec<(&'static str, Duration, Duration)> {
    let dir = std::env::temp_dir().join(format!("pbi-bench-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<PathBuf> = (pages.iter().enumerate())
        .map(|(i, page)| {
            let path = dir.join(format!("page-{i:05}.json"));
            std::fs::write(&path, page).unwrap();
            path
        })
        .collect();
    let bare = best_of(rounds, || {
        for path in &files {
            let page = std::fs::read(path).unwrap();
            serde_json::from_slice::<serde::de::IgnoredAny>(&page).unwrap();
        }
    });
    report("files: bare parse, one thread", bare, events, bytes, bare);
    let exporter = Path::new(env!("CARGO_BIN_EXE_powerbi-exporter"));
    let mut runs = Vec::new();
    for (name, args) in [
        (
            "whole run: --once --replay DIR",
            &["--once", "--replay"][..],
        ),
        ("whole run: top --replay DIR", &["top", "--replay"][..]),
    ] {
        let took = best_of(rounds, || {
            let status = Command::new(exporter)
                .args(args)
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "{name} failed: {status}");
        });
        report(name, took, events, bytes, bare);
        runs.push((name, took, bare));
    }
    let _ = std::fs::remove_dir_all(&dir);
    runs
}

/// The least of `rounds` durations that `f` measures itself.
fn best_of_timed(rounds: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..rounds)
        .map(|_| f())
        .min()
        .unwrap_or(Duration::from_nanos(1))
}

fn best_of(rounds: usize, mut f: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or(Duration::from_nanos(1))
}

fn report(name: &str, took: Duration, events: u64, bytes: f64, baseline: Duration) {
    let secs = took.as_secs_f64();
    println!(
        "{name:<34} {:>7.0} ms  {:>5.2} M events/s  {:>6.0} MB/s  {:.2}x baseline time",
        secs * 1e3,
        events as f64 / secs / 1e6,
        bytes / secs / 1e6,
        secs / baseline.as_secs_f64()
    );
}
