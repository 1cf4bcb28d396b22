//! Decoding ahead on worker threads (`Decoding::Pipelined`) counts exactly what one thread
//! counts: the same exposition, byte for byte, the same saved state and the same failed
//! documents, over replayed files with duplicates within a file, across pages and across
//! files, rejected elements, a small file and a truncated one; in one pass and in passes of
//! days.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use powerbi_exporter::aggregate::people::{PseudonymKey, UserLabelConfig};
use powerbi_exporter::aggregate::{AggregateConfig, Aggregator, Reference};
use powerbi_exporter::decode::UnixMillis;
use powerbi_exporter::exposition::text::render;
use powerbi_exporter::pipeline::{run_to_end_with, Decoding};
use powerbi_exporter::rng::Rng;
use powerbi_exporter::simulator::{write_archive, Layout, Tenant, TenantSpec};
use powerbi_exporter::source::replay::{Replay, ReplayConfig};
use serde_json::Value;

use crate::support::{family, runtime, samples};

/// Elements no decoder accepts, one per line of the rejection file (with the reasons the
/// aggregator counts them under).
const REJECTED: &[&str] = &[
    r#""a string""#,
    "7",
    r#"{"Activity":"ViewReport","CreationTime":"2026-11-19T10:00:00"}"#,
    r#"{"Id":"no-time","Activity":"ViewReport"}"#,
    r#"{"Id":"bad-time","Activity":"ViewReport","CreationTime":"yesterday"}"#,
];

/// Writes the archive: `a-pages.json` (API pages, one a line, the last page repeating half of
/// the first), `b-copy.json` (a copy of the first page: duplicates across files) and
/// `c-mixed.json` (a JSON array of the second page's events with the rejected elements among
/// them), `d-small.json` (50 events of the second page as JSON Lines, under the size below which
/// a lone document is decoded on the calling thread) and `e-broken.json` (a JSON array of the
/// third page's first 100 events, cut inside the 101st: a document that fails).
fn write_archive_dir(dir: &Path) {
    let tenant = Tenant::new(TenantSpec {
        seed: 3,
        workspaces: 12,
        users: 400,
    });
    let end = UnixMillis::from_secs(1_795_132_800);
    let mut archive = Vec::new();
    let span = (end.saturating_sub_millis(5 * 86_400_000), end);
    write_archive(
        &tenant,
        &mut Rng::new(4),
        12_000,
        span,
        Layout::Pages,
        &mut archive,
    )
    .unwrap();
    let pages: Vec<&[u8]> = (archive.split(|&b| b == b'\n'))
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(pages.len(), 3, "pages of 5,000 events");
    let first: Value = serde_json::from_slice(pages[0]).unwrap();
    let first_events = first["activityEventEntities"].as_array().unwrap();
    let repeat = serde_json::json!({
        "activityEventEntities": first_events[..2_500],
        "continuationToken": null,
        "lastResultSet": true,
    });
    let mut a = archive.clone();
    a.extend_from_slice(serde_json::to_string(&repeat).unwrap().as_bytes());
    a.push(b'\n');
    std::fs::write(dir.join("a-pages.json"), a).unwrap();
    std::fs::write(dir.join("b-copy.json"), pages[0]).unwrap();
    let second: Value = serde_json::from_slice(pages[1]).unwrap();
    let mut mixed: Vec<String> = (second["activityEventEntities"].as_array().unwrap().iter())
        .map(|e| e.to_string())
        .collect();
    for (i, bad) in REJECTED.iter().enumerate() {
        mixed.insert(1_000 * (i + 1), bad.to_string());
    }
    std::fs::write(dir.join("c-mixed.json"), format!("[{}]", mixed.join(",\n"))).unwrap();
    let small: Vec<String> = (second["activityEventEntities"].as_array().unwrap()[..50].iter())
        .map(|e| e.to_string() + "\n")
        .collect();
    std::fs::write(dir.join("d-small.json"), small.concat()).unwrap();
    let third: Value = serde_json::from_slice(pages[2]).unwrap();
    let events: Vec<String> = (third["activityEventEntities"].as_array().unwrap()[..101].iter())
        .map(|e| e.to_string())
        .collect();
    let cut = &events[100][..events[100].len() / 2];
    let broken = format!("[{},{cut}", events[..100].join(","));
    std::fs::write(dir.join("e-broken.json"), broken).unwrap();
}

/// The complete elements of `e-broken.json`: what the file holds before its cut.
fn broken_prefix(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("e-broken.json")).unwrap();
    let last_event = text.rfind(",{").unwrap();
    format!("{}]", &text[..last_event])
}

/// The default configuration with one pseudonym key for every run (without one, each
/// aggregator draws its own).
fn aggregate_config() -> AggregateConfig {
    AggregateConfig {
        users: UserLabelConfig::Pseudonym(PseudonymKey(vec![7; 32])),
        ..AggregateConfig::default()
    }
}

/// Runs the replay of `dir` to its end, decoding as `decoding` says; one document (the
/// truncated file) fails.
fn replay(dir: &Path, max_ids_per_pass: usize, decoding: Decoding) -> Aggregator {
    let config = ReplayConfig {
        path: dir.to_path_buf(),
        max_ids_per_pass,
    };
    let source = Box::new(Replay::with_config(&config, None).unwrap());
    let sink = Aggregator::new(&aggregate_config());
    let (aggregator, report) = runtime()
        .block_on(run_to_end_with(source, sink, decoding))
        .unwrap();
    assert_eq!(report.failed_documents, 1, "{:?}", report.errors);
    assert!(report.errors[0].origin.ends_with("e-broken.json"));
    aggregator
}

/// What the files hold, read with serde_json alone: elements, distinct ids of events that
/// decode, and rejected elements.
fn truth(dir: &Path) -> (u64, u64, u64) {
    let (mut elements, mut ids, mut rejected) = (0, HashSet::new(), 0);
    let mut each = |event: &Value| {
        elements += 1;
        match (event.get("Id"), event.get("CreationTime")) {
            (Some(Value::String(id)), Some(Value::String(t))) if t.starts_with("20") => {
                ids.insert(id.clone());
            }
            _ => rejected += 1,
        }
    };
    for name in [
        "a-pages.json",
        "b-copy.json",
        "c-mixed.json",
        "d-small.json",
        "e-broken.json",
    ] {
        let text = match name {
            "e-broken.json" => broken_prefix(dir),
            _ => std::fs::read_to_string(dir.join(name)).unwrap(),
        };
        for doc in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
            match doc.unwrap() {
                Value::Array(events) => events.iter().for_each(&mut each),
                event @ Value::Object(_) if event.get("Id").is_some() => each(&event),
                page => {
                    (page["activityEventEntities"].as_array().unwrap().iter()).for_each(&mut each)
                }
            }
        }
    }
    (elements, ids.len() as u64, rejected)
}

#[test]
fn pipelined_decoding_counts_exactly_what_one_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    write_archive_dir(dir.path());
    let (elements, distinct, rejected) = truth(dir.path());
    assert_eq!(rejected, REJECTED.len() as u64);
    // 2,000,000 ids: one pass; 3,000: passes of days (a census first, then the files once per
    // pass, each pass handing on its own days).
    for max_ids_per_pass in [2_000_000, 3_000] {
        let one = replay(dir.path(), max_ids_per_pass, Decoding::OneThread);
        let two = replay(dir.path(), max_ids_per_pass, Decoding::Pipelined);
        let text = String::from_utf8(render(&one.snapshot(Reference::NewestEvent))).unwrap();
        let other = String::from_utf8(render(&two.snapshot(Reference::NewestEvent))).unwrap();
        let differing: Vec<_> = (text.lines().zip(other.lines()))
            .filter(|(a, b)| a != b)
            .take(5)
            .collect();
        assert_eq!(
            (text.len(), differing),
            (other.len(), vec![]),
            "the same exposition, max_ids_per_pass {max_ids_per_pass}"
        );
        // The saved states hold the same (their order follows each aggregator's own hash
        // seeds, so they are compared by what they restore to).
        let restored = |a: &Aggregator| {
            let back = Aggregator::import(&aggregate_config(), a.export());
            String::from_utf8(render(&back.snapshot(Reference::NewestEvent))).unwrap()
        };
        assert!(
            restored(&one) == restored(&two),
            "the same saved state, max_ids_per_pass {max_ids_per_pass}"
        );
        let exposed = samples(&text);
        let sum = |name| family(&exposed, name).values().sum::<f64>() as u64;
        assert_eq!(sum("powerbi_activity_events_total"), distinct);
        assert_eq!(sum("powerbi_events_rejected_total"), rejected);
        assert_eq!(
            sum("powerbi_events_duplicate_total"),
            elements - distinct - rejected
        );
        assert_eq!(two.processed(), elements);
    }
}

/// The shape of the archive the test above relies on: files large enough to be decoded by a
/// worker thread on their own, and one under the size below which a lone document is decoded
/// on the calling thread (the exporter's threshold is 256 KiB).
#[test]
fn the_archive_of_the_parallel_test_has_large_and_small_files() {
    let dir = tempfile::tempdir().unwrap();
    write_archive_dir(dir.path());
    let sizes: BTreeMap<String, u64> = (std::fs::read_dir(dir.path()).unwrap())
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(sizes.len(), 5);
    let large = sizes.values().filter(|&&len| len > 256 * 1024).count();
    assert_eq!(large, 3, "{sizes:?}");
    assert!(sizes["d-small.json"] < 256 * 1024, "{sizes:?}");
}
