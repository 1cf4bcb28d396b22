//! Peak memory of the aggregation at tenant scale: 200,000 users, 20,000 reports on 10,000
//! semantic models and 5,000 Fabric items (Lakehouse, Notebook, Warehouse, DataPipeline) in 500
//! workspaces, 28 days of events, every family on (distinct users, distinct viewers per report,
//! last-view times, pseudonymous user signals, external shares, item events, model refreshes
//! by outcome and the report views of each model).
//!
//! `cargo bench --bench tenant_memory` generates the events in time order, as API pages of
//! 5,000 events built in one reused buffer (so the generator holds nothing), decodes and
//! aggregates them with the live source's dedup window (lookback 24h + 2h), then prints:
//! - the process's peak RSS (VmHWM), before and after one snapshot (what a scrape copies out);
//! - per family, the bytes of its state per series (`Aggregator::heap_usage`, estimated from
//!   capacities, beside the heap the allocator counted), against the baseline of the same run:
//!   the snapshot's bytes per sample, the owned strings every exposition reads;
//! - the dedup set's bytes per event id held, against a `HashSet<String>` of as many ids of the
//!   same shape, built and measured in the same run;
//! - the peak RSS of `powerbi-exporter --once --replay DIR` over 1M simulated events in daily
//!   files (`BENCH_ONCE_EVENTS`), against the same command over one page of 5,000 events;
//! - the events per second and the error of `powerbi_report_viewers` against exact counts kept
//!   for 200 sampled reports.
//!
//! It fails above 256 MiB at tenant scale or above 100 MB for `--once`.
//! BENCH_DAILY_VIEWS sets events per day (default 150,000: ~4.2 M events, 87 % of them
//! report views; the name predates the other items).
//!
//! Under `cargo test` it runs a small version (2 days, 2,000 views a day; `--once` over 20,000
//! events) as a smoke test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use powerbi_exporter::aggregate::memory::{HeapUsage, Holder};
use powerbi_exporter::aggregate::people::{PseudonymKey, UserLabelConfig};
use powerbi_exporter::aggregate::{AggregateConfig, Aggregator, Limits, Reference};
use powerbi_exporter::catalogue::Snapshot;
use powerbi_exporter::decode::{decode_slice, UnixMillis};
use powerbi_exporter::rng::Rng;
use powerbi_exporter::simulator::{write_archive, Layout as ArchiveLayout, Tenant, TenantSpec};

/// The system allocator, counting the bytes live and the most ever live (requested sizes).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

const USERS: u64 = 200_000;
const REPORTS: u64 = 20_000;
/// Each model serves two reports: report r is built on model r / 2.
const MODELS: u64 = 10_000;
const FABRIC_ITEMS: u64 = 5_000;
/// Fabric item i is of kind i % 4.
const FABRIC_KINDS: [&str; 4] = ["Lakehouse", "Notebook", "Warehouse", "DataPipeline"];
const WORKSPACES: u64 = 500;
const DAYS: i64 = 28;
const SAMPLED: u64 = 200;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// A Zipf-like pick in `0..n`: popular items first (index ~ n * u^3).
fn skewed(rng: &mut Rng, n: u64) -> u64 {
    let u = rng.below(1 << 20) as f64 / (1 << 20) as f64;
    ((u * u * u) * n as f64) as u64 % n
}

/// Reports, models and Fabric items.
const ITEMS: usize = (REPORTS + MODELS + FABRIC_ITEMS) as usize;

/// What one generated event is about, beside its user and time.
enum Subject {
    /// A report activity; views name the report's model (`DatasetId`).
    Report { report: u64, activity: &'static str },
    /// `RefreshDataset` of a model; one model in 20 fails every refresh, the others 1 in 50.
    Refresh { model: u64, failed: bool },
    /// A Fabric item read, run or updated.
    Fabric { item: u64, activity: &'static str },
}

/// 1 in 20 events is security-relevant (1 in 200 a share outside the tenant), 1 in 25 a model
/// refresh, 1 in 25 about a Fabric item; the rest are report views.
fn subject(rng: &mut Rng) -> Subject {
    match rng.below(200) {
        0 => Subject::Report {
            report: skewed(rng, REPORTS),
            activity: "ShareReport",
        },
        1..=9 => Subject::Report {
            report: skewed(rng, REPORTS),
            activity: "ExportReport",
        },
        10..=17 => {
            let model = rng.below(MODELS);
            Subject::Refresh {
                model,
                failed: model % 20 == 0 || rng.below(50) == 0,
            }
        }
        18..=25 => {
            let item = skewed(rng, FABRIC_ITEMS);
            let runs = matches!(item % 4, 1 | 3);
            let activity = match (rng.below(4), runs) {
                (0, _) => "UpdateArtifact",
                (_, true) => "RunArtifact",
                (_, false) => "ReadArtifact",
            };
            Subject::Fabric { item, activity }
        }
        _ => Subject::Report {
            report: skewed(rng, REPORTS),
            activity: "ViewReport",
        },
    }
}

/// The fields of the event about `subject`, after its user and time.
fn write_subject(page: &mut Vec<u8>, subject: &Subject) {
    match *subject {
        Subject::Report { report, activity } => {
            // A model and its two reports share a workspace.
            let model = report / 2;
            let ws = model % WORKSPACES;
            write!(
                page,
                r#","Activity":"{activity}","WorkspaceId":"{ws:08x}-aaaa-4aaa-8aaa-aaaaaaaaaaaa","WorkSpaceName":"Workspace {ws}","ReportId":"{report:08x}-bbbb-4bbb-8bbb-bbbbbbbbbbbb","ReportName":"Report {report}","DatasetId":"{model:08x}-dddd-4ddd-8ddd-dddddddddddd","DatasetName":"Model {model}""#
            )
            .unwrap();
            if activity == "ShareReport" {
                page.extend_from_slice(
                    br#","SharingInformation":[{"RecipientEmail":"x@fabrikam.com"}]"#,
                );
            }
        }
        Subject::Refresh { model, failed } => {
            let ws = model % WORKSPACES;
            write!(
                page,
                r#","Activity":"RefreshDataset","WorkspaceId":"{ws:08x}-aaaa-4aaa-8aaa-aaaaaaaaaaaa","WorkSpaceName":"Workspace {ws}","DatasetId":"{model:08x}-dddd-4ddd-8ddd-dddddddddddd","DatasetName":"Model {model}","IsSuccess":{}"#,
                !failed
            )
            .unwrap();
        }
        Subject::Fabric { item, activity } => {
            let (ws, kind) = (item % WORKSPACES, FABRIC_KINDS[(item % 4) as usize]);
            write!(
                page,
                r#","Activity":"{activity}","WorkspaceId":"{ws:08x}-aaaa-4aaa-8aaa-aaaaaaaaaaaa","WorkSpaceName":"Workspace {ws}","ArtifactId":"{item:08x}-ffff-4fff-8fff-ffffffffffff","ArtifactName":"{kind} {item}","ArtifactKind":"{kind}""#
            )
            .unwrap();
        }
    }
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let (days, daily): (i64, u64) = if benching {
        let daily = std::env::var("BENCH_DAILY_VIEWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(150_000);
        (DAYS, daily)
    } else {
        (2, 2_000)
    };
    let limits = Limits {
        max_series: BTreeMap::from([
            ("powerbi_report_events_total".to_string(), 100_000),
            ("powerbi_report_info".to_string(), REPORTS as usize),
            ("powerbi_report_viewers".to_string(), 2 * REPORTS as usize),
            (
                "powerbi_report_last_view_timestamp_seconds".to_string(),
                REPORTS as usize,
            ),
            // Room for every item (issue 18's families; a name the catalogue lacks is ignored).
            ("powerbi_item_events_total".to_string(), 150_000),
            ("powerbi_item_events_failed_total".to_string(), 20_000),
            ("powerbi_item_info".to_string(), ITEMS),
            (
                "powerbi_item_last_activity_timestamp_seconds".to_string(),
                ITEMS,
            ),
            (
                "powerbi_semantic_model_report_views_total".to_string(),
                MODELS as usize,
            ),
            (
                "powerbi_semantic_model_last_refresh_timestamp_seconds".to_string(),
                2 * MODELS as usize,
            ),
        ]),
    };
    let config = AggregateConfig {
        limits,
        dedup_window: Duration::from_secs(26 * 3600),
        users: UserLabelConfig::Pseudonym(PseudonymKey(b"benchmark-pseudonym-key".to_vec())),
        ..AggregateConfig::default()
    };
    // First, while this process is small: a child's peak RSS counts its parent's until exec.
    let once = once_peak(if benching { once_events() } else { 20_000 });
    // Resets this process's peak RSS (Linux 4.0+), so the figure below is the aggregation's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let mut agg = Aggregator::new(&config);
    let base_rss = peak_rss_mib();

    let mut rng = Rng::new(42);
    let mut exact: HashMap<u64, HashSet<u64>> = HashMap::new();
    let start_ms = 1_795_132_800_000 - DAYS * 86_400_000; // 28 days before 2026-11-20
    let mut page = Vec::with_capacity(4 << 20);
    let mut n = 0u64;
    let mut in_pipeline = Duration::ZERO;
    let started = Instant::now();
    for day in 0..days {
        let mut in_page = 0;
        page.clear();
        page.extend_from_slice(b"{\"activityEventEntities\":[");
        for i in 0..daily {
            let user = skewed(&mut rng, USERS);
            let subject = subject(&mut rng);
            let ms = start_ms + day * 86_400_000 + (i * 86_400_000 / daily) as i64;
            let t = UnixMillis(ms).to_iso_millis();
            if in_page > 0 {
                page.push(b',');
            }
            write!(
                page,
                r#"{{"Id":"{n:08x}-0000-4000-8000-000000000000","CreationTime":"{t}","UserId":"user{user}@contoso.com","UserType":0"#
            )
            .unwrap();
            write_subject(&mut page, &subject);
            page.push(b'}');
            if let Subject::Report {
                report,
                activity: "ViewReport",
            } = subject
            {
                if report < SAMPLED {
                    exact.entry(report).or_default().insert(user);
                }
            }
            n += 1;
            in_page += 1;
            if in_page == 5_000 || i + 1 == daily {
                page.extend_from_slice(b"]}");
                let t0 = Instant::now();
                // The live pipeline tells the aggregator the wall clock before each page (the
                // dedup window ends there); here the page is read as its last event happens.
                // Without it the window never moves and every id of the 28 days is kept.
                agg.set_clock(UnixMillis(ms));
                decode_slice(&page, &mut agg).expect("generated pages parse");
                in_pipeline += t0.elapsed();
                page.clear();
                page.extend_from_slice(b"{\"activityEventEntities\":[");
                in_page = 0;
            }
        }
    }
    let took = started.elapsed();
    let peak_aggregating = peak_rss_mib();
    let heap_live = LIVE.load(Ordering::Relaxed);
    let usage = agg.heap_usage();
    let before_snapshot = LIVE.load(Ordering::Relaxed);
    let snap_started = Instant::now();
    let snapshot = agg.snapshot(Reference::NewestEvent);
    let snap_took = snap_started.elapsed();
    let snapshot_bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before_snapshot);
    let peak = peak_rss_mib();

    println!(
        "tenant_memory: {n} events over {days} days, {USERS} users, {REPORTS} reports, {MODELS} semantic models, {FABRIC_ITEMS} Fabric items, {WORKSPACES} workspaces"
    );
    println!(
        "  decode + aggregate: {:.2} s ({:.0} events/s; generating the events took {:.2} s more); snapshot {:.0} ms",
        in_pipeline.as_secs_f64(),
        n as f64 / in_pipeline.as_secs_f64(),
        (took - in_pipeline).as_secs_f64(),
        snap_took.as_secs_f64() * 1000.0
    );
    println!(
        "  peak RSS {peak:.1} MiB (aggregating {peak_aggregating:.1} MiB, then one snapshot; at start {base_rss:.1} MiB)"
    );
    println!(
        "  heap: {:.1} MiB live after aggregating ({:.1} MiB estimated by heap_usage), most ever live {:.1} MiB",
        mib(heap_live),
        mib(usage.total()),
        mib(PEAK.load(Ordering::Relaxed))
    );
    print_families(&usage, &snapshot, snapshot_bytes);
    print_dedup(&usage);
    print_viewer_error(&snapshot, &exact);
    if benching {
        assert!(
            peak <= 256.0,
            "peak RSS {peak:.1} MiB is over the 256 MiB target"
        );
        assert!(
            once <= 100.0,
            "--once peak RSS {once:.1} MB is over the 100 MB target"
        );
    }
}

fn once_events() -> u64 {
    std::env::var("BENCH_ONCE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Bytes per series of each family's state, beside the snapshot's bytes per sample.
fn print_families(usage: &HeapUsage, snapshot: &Snapshot, snapshot_bytes: usize) {
    let samples: usize = snapshot.families.iter().map(|f| f.samples.len()).sum();
    let per_sample = snapshot_bytes as f64 / samples.max(1) as f64;
    println!(
        "  per family: state bytes per series; baseline: the snapshot holds {:.1} MiB for {samples} samples, {per_sample:.0} B a sample",
        mib(snapshot_bytes)
    );
    println!(
        "    {:<54} {:>8} {:>9} {:>8} {:>9}   held as",
        "family", "series", "MiB", "B/series", "vs sample"
    );
    for f in &snapshot.families {
        let Some(part) = usage.get(Holder::Family(f.family)) else {
            continue;
        };
        if f.samples.len() < 1_000 {
            continue;
        }
        let per_series = part.bytes as f64 / f.samples.len() as f64;
        // Families whose series are computed from other entries (users, report-days).
        let held = if part.entries == f.samples.len() {
            String::new()
        } else {
            let per_entry = part.bytes as f64 / part.entries.max(1) as f64;
            format!("{} entries, {per_entry:.1} B each", part.entries)
        };
        println!(
            "    {:<54} {:>8} {:>9.1} {:>8.0} {:>8.2}x   {held}",
            f.family.name,
            f.samples.len(),
            mib(part.bytes),
            per_series,
            per_series / per_sample
        );
    }
    for part in &usage.parts {
        let (Holder::Interner(kind), true) = (part.holder, part.bytes > 1 << 20) else {
            continue;
        };
        println!(
            "    {:<54} {:>8} {:>9.1} {:>8.0}",
            format!("interned {} (shared by families)", kind.as_str()),
            part.entries,
            mib(part.bytes),
            part.bytes as f64 / part.entries.max(1) as f64
        );
    }
    if let Some(part) = usage.get(Holder::RecentViews) {
        println!(
            "    {:<54} {:>8} {:>9.1} {:>8.0}",
            "views per report of the last day (status page)",
            part.entries,
            mib(part.bytes),
            part.bytes as f64 / part.entries.max(1) as f64
        );
    }
}

/// Bytes per event id of the dedup set, beside a `HashSet<String>` of as many ids.
fn print_dedup(usage: &HeapUsage) {
    let Some(dedup) = usage.get(Holder::Dedup) else {
        return;
    };
    let before = LIVE.load(Ordering::Relaxed);
    let strings: std::collections::HashSet<String> = (0..dedup.entries)
        .map(|n| format!("{n:08x}-0000-4000-8000-000000000000"))
        .collect();
    let baseline = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    drop(strings);
    let per_id = dedup.bytes as f64 / dedup.entries.max(1) as f64;
    let per_string = baseline as f64 / dedup.entries.max(1) as f64;
    println!(
        "  dedup set: {} ids in the window, {:.1} MiB, {per_id:.1} B per event (baseline: the same ids as a HashSet<String>, {per_string:.1} B per event; {:.2}x)",
        dedup.entries,
        mib(dedup.bytes),
        per_id / per_string
    );
}

fn print_viewer_error(snapshot: &Snapshot, exact: &HashMap<u64, HashSet<u64>>) {
    let viewers = snapshot
        .families
        .iter()
        .find(|f| f.family.name == "powerbi_report_viewers")
        .expect("viewers family");
    let mut worst: f64 = 0.0;
    let mut sum_sq = 0.0;
    let mut sampled = 0;
    for s in viewers.samples.iter().filter(|s| s.label(1) == "28d") {
        let Ok(report) = u64::from_str_radix(&s.label(0)[..8], 16) else {
            continue;
        };
        if let Some(users) = exact.get(&report) {
            let truth = users.len() as f64;
            let err = (s.value - truth) / truth;
            worst = worst.max(err.abs());
            sum_sq += err * err;
            sampled += 1;
        }
    }
    println!(
        "  powerbi_report_viewers 28d vs exact on {sampled} popular reports: rms error {:.2}%, worst {:.2}%",
        100.0 * (sum_sq / f64::from(sampled.max(1))).sqrt(),
        100.0 * worst
    );
    assert!(sampled > 0);
}

/// Peak RSS (MB) of `powerbi-exporter --once --replay DIR` over `events` simulated events in
/// daily files (7 days), printed beside the same command over one page of events.
fn once_peak(events: u64) -> f64 {
    let tenant = Tenant::new(TenantSpec {
        seed: 7,
        workspaces: 40,
        users: 5_000,
    });
    let end = UnixMillis::from_secs(1_795_132_800); // 2026-11-20T00:00:00Z
    let write = |dir: &std::path::Path, events: u64, days: i64| -> u64 {
        let mut rng = Rng::new(8);
        let mut bytes = 0;
        for day in 0..days {
            let from = end.saturating_sub_millis((days - day) * 86_400_000);
            let to = end.saturating_sub_millis((days - day - 1) * 86_400_000);
            let path = dir.join(format!("day-{day:02}.json"));
            let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            let count = events / days as u64 + u64::from(day == 0) * (events % days as u64);
            write_archive(
                &tenant,
                &mut rng,
                count,
                (from, to),
                ArchiveLayout::Pages,
                &mut file,
            )
            .unwrap();
            file.flush().unwrap();
            drop(file);
            bytes += std::fs::metadata(&path).unwrap().len();
        }
        bytes
    };
    let small = tempfile::tempdir().unwrap();
    write(small.path(), 5_000, 1);
    let floor = run_once(small.path());
    let big = tempfile::tempdir().unwrap();
    let bytes = write(big.path(), events, 7);
    let started = Instant::now();
    let peak = run_once(big.path());
    println!(
        "  --once --replay over {events} events ({:.0} MB of API pages in 7 daily files, {:.1} s): peak RSS {peak:.1} MB (baseline: one page of 5,000 events, {floor:.1} MB)",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    peak
}

/// Runs the exporter's `--once` over a replay directory; answers its peak RSS in MB.
fn run_once(dir: &std::path::Path) -> f64 {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_powerbi-exporter"))
        .args(["--once", "--replay"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("the exporter runs");
    assert!(status.success(), "--once over {dir:?}: {status}");
    // The largest resident set of the children waited for; the small run goes first. (It
    // counts the parent's resident set before exec: this runs while the parent is small.)
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) },
        0
    );
    usage.ru_maxrss as f64 * 1024.0 / 1e6
}
