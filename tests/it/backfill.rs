//! `backfill` (issue 14) against the real promtool and Prometheus: the OpenMetrics file it
//! writes becomes blocks, Prometheus serves them, and every raw sample of the event counters
//! equals the count of that series' distinct events created up to the sample's timestamp. The
//! truth is computed here from the raw JSON (serde_json, and a calendar of this file's own),
//! never with the exporter's code. Also: the seam with a live exporter on the backfill's state
//! dir, the usage dashboard over the backfilled days, resuming after `kill -9`, and bad flags.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use powerbi_exporter::decode::UnixMillis;
use powerbi_exporter::rng::Rng;
use powerbi_exporter::simulator::api::{ApiConfig, SimulatedApi};
use powerbi_exporter::simulator::timeline::{Lag, Timeline};
use powerbi_exporter::simulator::{Tenant, TenantSpec};
use serde_json::Value;

use crate::support::*;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// The tenant every test here draws its events from: enough workspaces and reports for a few
/// hundred series, few enough for promtool and Prometheus to take seconds.
const SPEC: TenantSpec = TenantSpec {
    seed: 14,
    workspaces: 5,
    users: 40,
};

/// The two counter families whose every raw sample is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Counter {
    ActivityEvents,
    ReportEvents,
}

impl Counter {
    const BOTH: [Counter; 2] = [Counter::ActivityEvents, Counter::ReportEvents];

    /// The sample name, as Prometheus stores it.
    fn metric(self) -> &'static str {
        match self {
            Counter::ActivityEvents => "powerbi_activity_events_total",
            Counter::ReportEvents => "powerbi_report_events_total",
        }
    }

    fn from_metric(name: &str) -> Counter {
        Counter::BOTH
            .into_iter()
            .find(|c| c.metric() == name)
            .unwrap_or_else(|| panic!("not a checked counter: {name}"))
    }
}

/// One series of a checked counter, by the labels the exporter gives it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    counter: Counter,
    /// Empty for events without a workspace (Prometheus drops an empty label; so does this).
    workspace_id: String,
    /// Empty in `powerbi_activity_events_total`.
    report_id: String,
    activity: String,
}

/// One raw event, read with serde_json.
#[derive(Debug, Clone)]
struct Raw {
    /// The `Id` in lower case: the dedup key (GUIDs compare case-insensitively).
    id: String,
    /// `CreationTime` in Unix milliseconds.
    created_ms: i64,
    workspace_id: String,
    report_id: Option<String>,
    activity: String,
    json: Vec<u8>,
}

impl Raw {
    fn read(json: &[u8]) -> Raw {
        let v: Value = serde_json::from_slice(json).unwrap();
        let text = |key: &str| v[key].as_str().map(str::to_string);
        Raw {
            id: text("Id").unwrap().to_ascii_lowercase(),
            created_ms: creation_time_ms(v["CreationTime"].as_str().unwrap()),
            workspace_id: text("WorkspaceId").map(as_labelled).unwrap_or_default(),
            report_id: text("ReportId").map(as_labelled),
            activity: text("Activity").unwrap(),
            json: json.to_vec(),
        }
    }

    /// The checked series this event counts in.
    fn series(&self) -> Vec<Series> {
        let of = |counter, report_id: &str| Series {
            counter,
            workspace_id: self.workspace_id.clone(),
            report_id: report_id.to_string(),
            activity: self.activity.clone(),
        };
        let mut out = vec![of(Counter::ActivityEvents, "")];
        if let Some(report) = &self.report_id {
            out.push(of(Counter::ReportEvents, report));
        }
        out
    }
}

/// An id as a label value: GUIDs in lower case (the API mixes cases), other ids as sent.
fn as_labelled(id: String) -> String {
    if id.len() == 36 {
        id.to_ascii_lowercase()
    } else {
        id
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff][Z]` (the API's spelling, UTC) in Unix milliseconds.
fn creation_time_ms(text: &str) -> i64 {
    let text = text.trim_end_matches('Z');
    let (date, time) = text.split_once('T').unwrap();
    let ymd: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let hms: Vec<i64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    let millis: i64 = format!("{fraction:0<3}")[..3].parse().unwrap();
    days_from_civil(ymd[0], ymd[1], ymd[2]) * DAY
        + (hms[0] * 3600 + hms[1] * 60 + hms[2]) * 1000
        + millis
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Each checked series' distinct events, as sorted creation times.
#[derive(Debug, Default)]
struct Truth(BTreeMap<Series, Vec<i64>>);

impl Truth {
    fn of<'a>(events: impl IntoIterator<Item = &'a Raw>) -> Truth {
        let mut seen = BTreeSet::new();
        let mut series: BTreeMap<Series, Vec<i64>> = BTreeMap::new();
        for e in events {
            if seen.insert(e.id.clone()) {
                for s in e.series() {
                    series.entry(s).or_default().push(e.created_ms);
                }
            }
        }
        series.values_mut().for_each(|times| times.sort_unstable());
        Truth(series)
    }

    /// Events of `series` created up to `t` (milliseconds).
    fn count_at(&self, series: &Series, t: i64) -> usize {
        self.0
            .get(series)
            .map_or(0, |times| times.partition_point(|c| *c <= t))
    }

    fn total(&self, series: &Series) -> usize {
        self.0.get(series).map_or(0, Vec::len)
    }
}

/// The sample times a backfill promises: every multiple of the step (from the Unix epoch) from
/// the series' first event to the range's end, and the end itself.
#[derive(Debug, Clone, Copy)]
struct Grid {
    step_ms: i64,
    end_ms: i64,
}

impl Grid {
    fn times_from(self, first_event_ms: i64) -> Vec<i64> {
        let first_step = first_event_ms.div_euclid(self.step_ms) * self.step_ms
            + if first_event_ms.rem_euclid(self.step_ms) == 0 {
                0
            } else {
                self.step_ms
            };
        let mut times: Vec<i64> = (first_step..=self.end_ms)
            .step_by(self.step_ms as usize)
            .collect();
        if self.end_ms.rem_euclid(self.step_ms) != 0 && first_event_ms <= self.end_ms {
            times.push(self.end_ms);
        }
        times
    }
}

/// One series of a counter as Prometheus returned it.
#[derive(Debug)]
struct Stored {
    series: Series,
    /// Labels besides the family's own (`--label`s, scrape target labels).
    target_labels: BTreeMap<String, String>,
    /// (timestamp in ms, value), in time order.
    samples: Vec<(i64, f64)>,
}

/// `count` events of the [`SPEC`] tenant at random times in `[from, to)`, as the API sends them.
fn events_between(rng: &mut Rng, count: usize, (from, to): (i64, i64)) -> Vec<Raw> {
    let tenant = Tenant::new(SPEC);
    (0..count)
        .map(|_| {
            let random = from + rng.below((to - from) as u64) as i64;
            // One in ten exactly on a 10-minute mark, so on the grid of every step used here:
            // a sample at t counts the events created at t.
            let on_mark = random.div_euclid(10 * MINUTE) * 10 * MINUTE;
            let at = UnixMillis(if rng.below(10) == 0 && on_mark >= from {
                on_mark
            } else {
                random
            });
            let mut json = Vec::new();
            tenant.write_event(rng, at, &mut json);
            Raw::read(&json)
        })
        .collect()
}

/// The events as a simulated tenant's log, every one visible already.
fn timeline_of(events: &[Raw]) -> Timeline {
    let now = UnixMillis::now();
    let mut timeline = Timeline::new(Tenant::new(SPEC), SPEC.seed, 0.0, Lag::default(), now);
    for e in events {
        timeline.push(UnixMillis(e.created_ms), now, e.json.clone());
    }
    timeline
}

/// The events shuffled into `files` files of `dir` (JSON Lines and JSON arrays in turn), one
/// event in eight also in another file; returns how many copies were added.
fn write_shuffled_archive(dir: &Path, events: &[&Raw], files: usize, seed: u64) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = Rng::new(seed);
    let mut order: Vec<usize> = (0..events.len()).collect();
    rng.shuffle(&mut order);
    let mut bodies: Vec<Vec<&str>> = vec![Vec::new(); files];
    let mut copies = 0;
    for (k, &i) in order.iter().enumerate() {
        let json = std::str::from_utf8(&events[i].json).unwrap();
        bodies[k % files].push(json);
        if files > 1 && rng.below(8) == 0 {
            bodies[(k + 1 + rng.below(files as u64 - 1) as usize) % files].push(json);
            copies += 1;
        }
    }
    for (f, lines) in bodies.iter().enumerate() {
        let (body, ext) = if f % 2 == 0 {
            (lines.join("\n"), "jsonl")
        } else {
            (format!("[{}]", lines.join(",\n")), "json")
        };
        std::fs::write(dir.join(format!("part-{f}.{ext}")), body).unwrap();
    }
    copies
}

/// Runs `powerbi-exporter backfill ARGS` (with the simulated tenant's secret) to its end, at most
/// `limit`: a backfill that hangs is killed and fails the test.
fn backfill(args: &[String], logs: &Path, limit: Duration) -> Output {
    let mut child = spawn_backfill(args, logs);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "backfill still running after {limit:?}: {}",
                std::fs::read_to_string(logs.join("stderr")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(logs.join("stdout")).unwrap(),
        stderr: std::fs::read(logs.join("stderr")).unwrap(),
    }
}

/// Starts `powerbi-exporter backfill ARGS`, its stdout and stderr going to files in `logs`.
fn spawn_backfill(args: &[String], logs: &Path) -> std::process::Child {
    std::fs::create_dir_all(logs).unwrap();
    Command::new(BIN)
        .arg("backfill")
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("POWERBI_EXPORTER_PSEUDONYM_KEY")
        .env(SECRET.0, SECRET.1)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(logs.join("stdout")).unwrap())
        .stderr(std::fs::File::create(logs.join("stderr")).unwrap())
        .spawn()
        .expect("starting powerbi-exporter backfill")
}

#[track_caller]
fn assert_success(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}\nstdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
}

/// The documented path into the TSDB: `promtool tsdb create-blocks-from openmetrics FILE DIR`.
fn create_blocks(file: &Path, data: &Path) {
    let out = Command::new(promtool())
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .args([file, data])
        .output()
        .unwrap();
    assert_success(&out, "promtool tsdb create-blocks-from openmetrics");
}

/// The blocks in `data` (directories with a `meta.json`).
fn blocks_in(data: &Path) -> usize {
    std::fs::read_dir(data)
        .map(|dir| {
            dir.filter(|e| e.as_ref().unwrap().path().join("meta.json").is_file())
                .count()
        })
        .unwrap_or(0)
}

/// A Prometheus without targets on the blocks already in `dir/data` (its default retention).
fn prometheus_on_blocks(dir: &Path) -> Prometheus {
    prometheus_with("", dir)
}

/// An instant query evaluated at `at_ms`, which must succeed.
fn query_at(server: &Prometheus, expr: &str, at_ms: i64) -> Value {
    let answer = http()
        .get(format!("{}/api/v1/query", server.1))
        .query(&[("query", expr), ("time", &seconds(at_ms))])
        .send()
        .unwrap()
        .text()
        .unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["status"], "success", "{expr}: {answer}");
    answer
}

/// A range query, as Grafana sends one for a time-series panel; it must succeed.
fn query_range(
    server: &Prometheus,
    expr: &str,
    (start_ms, end_ms): (i64, i64),
    step: &str,
) -> Value {
    let answer = http()
        .get(format!("{}/api/v1/query_range", server.1))
        .query(&[
            ("query", expr),
            ("start", &seconds(start_ms)),
            ("end", &seconds(end_ms)),
            ("step", step),
        ])
        .send()
        .unwrap()
        .text()
        .unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["status"], "success", "{expr}: {answer}");
    answer
}

fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// A timestamp of Prometheus' JSON (seconds, a number) in milliseconds.
fn millis(v: &Value) -> i64 {
    (v.as_f64().unwrap() * 1000.0).round() as i64
}

/// The series of `counter` in a query's answer (a matrix or a vector; functions such as
/// `resets()` drop the metric name) and their samples.
fn stored(answer: &Value, counter: Counter) -> Vec<Stored> {
    answer["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let mut labels: BTreeMap<String, String> =
                serde_json::from_value(row["metric"].clone()).unwrap();
            let name = labels.remove("__name__");
            assert!(name.is_none_or(|n| n == counter.metric()), "{row}");
            let mut take = |k: &str| labels.remove(k).unwrap_or_default();
            let series = Series {
                counter,
                workspace_id: take("workspace_id"),
                report_id: take("report_id"),
                activity: take("activity"),
            };
            let points: Vec<&Value> = match row.get("values") {
                Some(values) => values.as_array().unwrap().iter().collect(),
                None => vec![&row["value"]],
            };
            let samples = points
                .into_iter()
                .map(|p| (millis(&p[0]), p[1].as_str().unwrap().parse().unwrap()))
                .collect();
            Stored {
                series,
                target_labels: labels,
                samples,
            }
        })
        .collect()
}

/// Every raw sample of both counters in the 4 days before `at_ms`, read back from Prometheus.
fn raw_counter_samples(server: &Prometheus, at_ms: i64) -> Vec<Stored> {
    Counter::BOTH
        .into_iter()
        .flat_map(|c| stored(&query_at(server, &format!("{}[4d]", c.metric()), at_ms), c))
        .collect()
}

/// The series are exactly the truth's; each carries exactly `labels` besides its own; its
/// samples sit on the grid from its first event; each equals the truth at its timestamp.
#[track_caller]
fn assert_counters_equal_truth(
    rows: &[Stored],
    truth: &Truth,
    grid: Grid,
    labels: &BTreeMap<String, String>,
) {
    let found: BTreeSet<&Series> = rows.iter().map(|r| &r.series).collect();
    let expected: BTreeSet<&Series> = truth.0.keys().collect();
    let missing: Vec<_> = expected.difference(&found).collect();
    let extra: Vec<_> = found.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the stored series are not the events' series: {} of {} missing, e.g. {:#?}; {} extra, e.g. {:#?}",
        missing.len(),
        expected.len(),
        &missing[..missing.len().min(3)],
        extra.len(),
        &extra[..extra.len().min(3)]
    );
    assert_eq!(rows.len(), found.len(), "each series once");
    let mut wrong = Vec::new();
    for row in rows {
        assert_eq!(&row.target_labels, labels, "{:?}", row.series);
        let times: Vec<i64> = row.samples.iter().map(|s| s.0).collect();
        assert_eq!(
            times,
            grid.times_from(truth.0[&row.series][0]),
            "{:?}: the samples are not the step grid from its first event",
            row.series
        );
        for &(t, value) in &row.samples {
            let want = truth.count_at(&row.series, t) as f64;
            if value != want {
                wrong.push(format!("{:?} at {t}: {value}, want {want}", row.series));
            }
        }
    }
    let checked: usize = rows.iter().map(|r| r.samples.len()).sum();
    assert!(
        wrong.is_empty(),
        "{} of {checked} samples wrong, e.g. {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

/// `NAME=VALUE` pairs as `--label` flags, and as the map Prometheus shows.
fn labels(pairs: &[(&str, &str)]) -> (Vec<String>, BTreeMap<String, String>) {
    let flags = pairs
        .iter()
        .flat_map(|(k, v)| ["--label".to_string(), format!("{k}={v}")])
        .collect();
    let map = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (flags, map)
}

fn path_arg(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// The simulated tenant's API serving `events`, with room for any number of requests.
fn tenant_serving(rt: &tokio::runtime::Runtime, events: &[Raw], page_size: usize) -> SimulatedApi {
    let config = ApiConfig {
        page_size,
        budget_per_hour: 1_000_000,
        ..ApiConfig::default()
    };
    rt.block_on(SimulatedApi::start(config, timeline_of(events), 0))
        .unwrap()
}

/// The flags reading the tenant at `api` with a budget no test exhausts.
fn tenant_flags(api: &SimulatedApi) -> Vec<String> {
    let mut args = simulated_tenant_args(&api.base_url());
    args.extend(
        [
            "--powerbi.max-requests-per-hour",
            "100000",
            "--powerbi.retry-delay",
            "20ms",
        ]
        .map(String::from),
    );
    args
}

#[test]
fn three_days_from_the_tenants_api_become_blocks_whose_every_sample_is_exact() {
    let now = UnixMillis::now().0;
    // Inside the last 3 days whichever way the hours are cut, all visible already.
    let events = events_between(&mut Rng::new(1), 3000, (now - 71 * HOUR, now - MINUTE));
    assert!(
        events
            .iter()
            .any(|e| e.json.windows(17).any(|w| w == b"\"IsSuccess\":false")),
        "some events failed"
    );
    let truth = Truth::of(&events);
    let rt = runtime();
    let api = tenant_serving(&rt, &events, 500);
    let dir = tempfile::tempdir().unwrap();
    let (file, data) = (dir.path().join("history.om"), dir.path().join("data"));
    let (label_flags, label_map) = labels(&[("tenant", "contoso")]);
    let mut args: Vec<String> = ["--since", "3d", "--step", "10m"]
        .map(String::from)
        .to_vec();
    args.extend([
        "--out".into(),
        path_arg(&file),
        "--tsdb".into(),
        path_arg(&data),
    ]);
    args.extend(label_flags);
    args.extend(tenant_flags(&api));
    // Whole seconds: the range's end may be written without its milliseconds.
    let started = UnixMillis::now().0 / 1000 * 1000;
    let out = backfill(&args, &dir.path().join("logs"), Duration::from_secs(240));
    let finished = UnixMillis::now().0;
    assert_success(&out, "backfill --since 3d --tsdb");
    // --tsdb ran promtool itself.
    assert!(blocks_in(&data) > 0, "no blocks in {}", data.display());
    let server = prometheus_on_blocks(dir.path());
    let rows = raw_counter_samples(&server, finished + 1000);
    // The range ends when the backfill began reading: the newest sample of any series.
    let end_ms = newest_sample(&rows);
    assert!(
        (started..=finished).contains(&end_ms),
        "the range ends at {end_ms}, outside the run {started}..{finished}"
    );
    let grid = Grid {
        step_ms: 10 * MINUTE,
        end_ms,
    };
    assert_counters_equal_truth(&rows, &truth, grid, &label_map);
}

#[test]
fn a_shuffled_archive_with_duplicates_becomes_blocks_whose_every_sample_is_exact_and_the_usage_dashboard_has_its_days(
) {
    let now = UnixMillis::now().0;
    let events = events_between(&mut Rng::new(2), 3000, (now - 72 * HOUR, now - MINUTE));
    let truth = Truth::of(&events);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let copies = write_shuffled_archive(&archive, &events.iter().collect::<Vec<_>>(), 5, 3);
    assert!(copies > 100, "duplicates across files: {copies}");
    let (file, data) = (dir.path().join("history.om"), dir.path().join("data"));
    let (label_flags, label_map) = labels(&[
        ("job", "powerbi-exporter"),
        ("instance", "backfill:10195"),
        ("tenant", "contoso"),
    ]);
    let mut args: Vec<String> = ["--step", "5m"].map(String::from).to_vec();
    args.extend([
        "--replay".into(),
        path_arg(&archive),
        "--out".into(),
        path_arg(&file),
    ]);
    args.extend(label_flags);
    let out = backfill(&args, &dir.path().join("logs"), Duration::from_secs(240));
    assert_success(&out, "backfill --replay");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        text.lines().last(),
        Some("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    assert_each_backfilled_family_once_typed(&text);
    create_blocks(&file, &data);
    let server = prometheus_on_blocks(dir.path());
    // A replay's range ends at its newest event.
    let end_ms = events.iter().map(|e| e.created_ms).max().unwrap();
    let rows = raw_counter_samples(&server, now + HOUR);
    let grid = Grid {
        step_ms: 5 * MINUTE,
        end_ms,
    };
    assert_counters_equal_truth(&rows, &truth, grid, &label_map);
    let first = events.iter().map(|e| e.created_ms).min().unwrap();
    assert_usage_panels_have_every_day(&server, (first, end_ms), "backfill:10195");
    // Zoomed in on the last 20 hours, Grafana's interval is 1m: a panel of increases over
    // `$__rate_interval` keeps its data only with a minimum interval of two steps.
    assert_usage_panels_have_every_day(&server, (end_ms - 20 * HOUR, end_ms), "backfill:10195");
}

/// Each family written has one `# TYPE` line (its samples grouped under it), is one of
/// `catalogue::BACKFILLED`, named and typed the OpenMetrics way: a counter without `_total`,
/// an `_info` gauge as `info` without `_info`.
fn assert_each_backfilled_family_once_typed(text: &str) {
    use powerbi_exporter::catalogue::{Kind, BACKFILLED};
    let mut found: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .collect();
    let expected: Vec<String> = BACKFILLED
        .iter()
        .map(|f| match (f.kind, f.name) {
            (Kind::Counter, name) => format!("{} counter", name.trim_end_matches("_total")),
            (Kind::Gauge, name) if name.ends_with("_info") => {
                format!("{} info", name.trim_end_matches("_info"))
            }
            (Kind::Gauge, name) => format!("{name} gauge"),
        })
        .collect();
    let written = found.len();
    found.sort_unstable();
    found.dedup();
    assert_eq!(
        found.len(),
        written,
        "a family's samples under one # TYPE line"
    );
    for family in &found {
        assert!(
            expected.iter().any(|e| e == family),
            "not backfilled: {family}"
        );
    }
    // The families this archive surely has (a family without a series may be left out).
    for family in [
        "powerbi_activity_events counter",
        "powerbi_report_events counter",
        "powerbi_workspace info",
        "powerbi_report info",
        "powerbi_exporter_build info",
    ] {
        assert!(found.contains(&family), "no # TYPE {family}");
    }
}

/// The minutes of a Grafana interval written in minutes (`10m`).
fn minutes(interval: &str) -> i64 {
    let n = interval
        .strip_suffix('m')
        .expect("a panel interval in minutes");
    n.parse().unwrap()
}

/// Grafana's `$__interval` for a range shown on a panel about 1,000 pixels wide: the range over
/// 1,000 points, rounded as Grafana rounds it (`rangeutil.roundInterval`).
fn grafana_interval((start_ms, end_ms): (i64, i64)) -> (i64, &'static str) {
    let raw = (end_ms - start_ms) / 1000;
    [
        (75_000, (60_000, "1m")),
        (210_000, (120_000, "2m")),
        (450_000, (300_000, "5m")),
        (750_000, (600_000, "10m")),
        (1_050_000, (900_000, "15m")),
        (1_500_000, (1_200_000, "20m")),
        (2_700_000, (1_800_000, "30m")),
    ]
    .into_iter()
    .find(|(below, _)| raw < *below)
    .map_or((HOUR, "1h"), |(_, interval)| interval)
}

/// Every panel of the usage dashboard (dashboards/powerbi-usage.json) but the inventory's,
/// queried over the backfilled range as Grafana would (its `$__interval` for the range, and
/// `$__rate_interval` as that plus the data source's default 15s scrape interval; `$__range`
/// an hour, each point the panel as it stood for the hour before), has points on every UTC day
/// of the range.
fn assert_usage_panels_have_every_day(server: &Prometheus, range: (i64, i64), instance: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/powerbi-usage.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let computed = grafana_interval(range);
    let days: BTreeSet<i64> =
        ((range.0 + HOUR).div_euclid(DAY)..=range.1.div_euclid(DAY)).collect();
    assert_usage_variables_offer_the_backfill(server, &dashboard, range, instance);
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap();
        // A panel's minimum interval ("interval") raises Grafana's `$__interval` to it.
        let (interval_ms, interval) = panel["interval"]
            .as_str()
            .map(|min| (minutes(min) * MINUTE, min))
            .filter(|(ms, _)| *ms > computed.0)
            .unwrap_or(computed);
        let rate_interval = format!("{}s", interval_ms / 1000 + 15);
        // Grafana aligns a range query's start to its step. The first hour is left out: a
        // series shows an increase from its second sample on.
        let aligned = (range.0.div_euclid(interval_ms) * interval_ms, range.1);
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            // The inventory is read live (--inventory.enabled); a backfill has no past of it.
            if expr.contains("powerbi_reports{") {
                continue;
            }
            let expr = substitute_with(
                &expr.replace("$__rate_interval", &rate_interval),
                "powerbi-exporter",
                "contoso",
                instance,
            );
            let answer = query_range(server, &expr, aligned, interval);
            let with_data: BTreeSet<i64> = answer["data"]["result"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r["values"].as_array().unwrap())
                .map(|p| millis(&p[0]))
                .filter(|t| *t >= range.0 + HOUR)
                .map(|t| t.div_euclid(DAY))
                .collect();
            assert_eq!(with_data, days, "{title}: days with data\n{expr}");
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} panel queries");
}

#[test]
fn the_exporter_continues_the_backfilled_counters_without_a_reset_or_a_double_count() {
    let now = UnixMillis::now().0;
    let mut rng = Rng::new(4);
    let a = events_between(&mut rng, 1500, (now - 72 * HOUR, now - 2 * HOUR));
    let mut b = events_between(&mut rng, 300, (now - 2 * HOUR + MINUTE, now - MINUTE));
    // Some of A again, old and recent: the state's dedup set must know them.
    let again: Vec<Raw> = a.iter().step_by(75).cloned().collect();
    assert!(again.iter().any(|e| e.created_ms < now - 48 * HOUR));
    b.extend(again);
    let truth = Truth::of(a.iter().chain(&b));
    let dir = tempfile::tempdir().unwrap();
    let (archive_a, archive_b) = (dir.path().join("a"), dir.path().join("b"));
    write_shuffled_archive(&archive_a, &a.iter().collect::<Vec<_>>(), 3, 5);
    write_shuffled_archive(&archive_b, &b.iter().collect::<Vec<_>>(), 1, 6);
    let (state, file) = (dir.path().join("state"), dir.path().join("a.om"));
    let instance = "seam:10195";
    let (label_flags, _) = labels(&[("job", "powerbi-exporter"), ("instance", instance)]);
    let mut args: Vec<String> = ["--step", "5m"].map(String::from).to_vec();
    args.extend([
        "--replay".into(),
        path_arg(&archive_a),
        "--out".into(),
        path_arg(&file),
    ]);
    args.extend(["--state.dir".into(), path_arg(&state)]);
    args.extend(label_flags);
    let out = backfill(&args, &dir.path().join("logs"), Duration::from_secs(240));
    assert_success(&out, "backfill --replay A --state.dir S");
    assert!(
        state.join("state.json").is_file(),
        "the state is left in {}",
        state.display()
    );
    create_blocks(&file, &dir.path().join("data"));
    let exporter = Exporter::start(&[
        "--state.dir",
        state.to_str().unwrap(),
        "--replay",
        archive_b.to_str().unwrap(),
    ]);
    // Ready once it has read every event of B (counted or not); Prometheus judges the rest.
    exporter.scrape_until(
        Duration::from_secs(30),
        |s| sample_value(s, "powerbi_events_processed_total") >= b.len() as f64,
        |s| {
            format!(
                "the exporter read {} of B's {} events",
                sample_value(s, "powerbi_events_processed_total"),
                b.len()
            )
        },
    );
    assert_scraped_after_the_backfill_without_a_seam(
        &exporter,
        dir.path(),
        instance,
        &truth,
        now - 2 * HOUR,
    );
}

#[test]
fn an_exporter_on_a_since_backfills_state_continues_the_live_tenant_without_a_seam() {
    let now = UnixMillis::now().0;
    let mut rng = Rng::new(8);
    let past = events_between(&mut rng, 1200, (now - 71 * HOUR, now - 2 * MINUTE));
    let rt = runtime();
    let api = tenant_serving(&rt, &past, 500);
    let dir = tempfile::tempdir().unwrap();
    let (state, file) = (dir.path().join("state"), dir.path().join("history.om"));
    let instance = "live-seam:10195";
    let (label_flags, _) = labels(&[("job", "powerbi-exporter"), ("instance", instance)]);
    let mut args: Vec<String> = ["--since", "3d", "--step", "5m"].map(String::from).to_vec();
    args.extend([
        "--out".into(),
        path_arg(&file),
        "--state.dir".into(),
        path_arg(&state),
    ]);
    args.extend(label_flags);
    args.extend(tenant_flags(&api));
    let out = backfill(&args, &dir.path().join("logs"), Duration::from_secs(240));
    assert_success(&out, "backfill --since 3d --state.dir S");
    let end_ms = newest_sample(&counters_in_file(&std::fs::read_to_string(&file).unwrap()));
    create_blocks(&file, &dir.path().join("data"));
    // After the backfill: new events, and late ones created inside its range that only now
    // became visible (the exporter's lookback re-reads find them).
    let mut later = events_between(&mut rng, 60, (end_ms + 1, UnixMillis::now().0));
    later.extend(events_between(&mut rng, 20, (end_ms - 90 * MINUTE, end_ms)));
    let visible = UnixMillis::now();
    api.with_timeline(|t| {
        for e in &later {
            t.push(UnixMillis(e.created_ms), visible, e.json.clone());
        }
    });
    let truth = Truth::of(past.iter().chain(&later));
    let mut exporter_args = vec!["--state.dir".to_string(), path_arg(&state)];
    exporter_args.extend(tenant_flags(&api));
    exporter_args
        .extend(["--powerbi.poll-interval", "1s", "--powerbi.lookback", "4h"].map(String::from));
    // An ended hour is re-read at ages after its end: one age per hour of the late events, so
    // that each is re-read 20 s from now (the current hour is read every poll anyway).
    let re_read_at = UnixMillis::now().0 + 20_000;
    let ages: std::collections::BTreeSet<i64> = later
        .iter()
        .map(|e| (e.created_ms.div_euclid(HOUR) + 1) * HOUR)
        .filter(|end| *end < re_read_at)
        .map(|end| (re_read_at - end) / 1000)
        .collect();
    let ages: Vec<String> = ages.iter().map(|s| format!("{s}s")).collect();
    if !ages.is_empty() {
        exporter_args.extend(["--powerbi.reread-ages".to_string(), ages.join(",")]);
    }
    let exporter = Exporter::start_with_secret(&exporter_args);
    // Ready once a complete poll has counted as many events as there are (the late ones come
    // with a re-read of their hour); a double count passes this too, for Prometheus to judge.
    let all = past.len() + later.len();
    let counted = |s: &BTreeMap<String, f64>| {
        family(s, "powerbi_activity_events_total")
            .values()
            .sum::<f64>()
    };
    exporter.scrape_until(
        Duration::from_secs(60),
        |s| sample_value(s, "powerbi_up") == 1.0 && counted(s) >= all as f64,
        |s| {
            format!(
                "{} of {all} events counted, up {:?}",
                counted(s),
                s.get("powerbi_up")
            )
        },
    );
    assert_scraped_after_the_backfill_without_a_seam(
        &exporter,
        dir.path(),
        instance,
        &truth,
        end_ms - 2 * HOUR,
    );
}

/// The samples of both counters in a backfill's OpenMetrics text, checking as it reads that
/// each series' samples are contiguous and timestamped.
/// The newest sample's time of any series: where the backfilled range ends.
fn newest_sample(rows: &[Stored]) -> i64 {
    rows.iter()
        .filter_map(|r| r.samples.last())
        .map(|s| s.0)
        .max()
        .unwrap()
}

fn counters_in_file(text: &str) -> Vec<Stored> {
    let mut rows: Vec<Stored> = Vec::new();
    let mut done: BTreeSet<Series> = BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, rest) = line.split_once('{').unwrap_or(("", ""));
        if !Counter::BOTH.iter().any(|c| c.metric() == name) {
            continue;
        }
        let (labels, sample) = rest.rsplit_once('}').unwrap();
        let mut labels = label_pairs(labels);
        let mut take = |k: &str| labels.remove(k).unwrap_or_default();
        let series = Series {
            counter: Counter::from_metric(name),
            workspace_id: take("workspace_id"),
            report_id: take("report_id"),
            activity: take("activity"),
        };
        let (value, at) = sample
            .trim()
            .split_once(' ')
            .unwrap_or_else(|| panic!("a sample without a timestamp: {line}"));
        let point = (
            (at.parse::<f64>().unwrap() * 1000.0).round() as i64,
            value.parse().unwrap(),
        );
        match rows.last_mut() {
            Some(row) if row.series == series => row.samples.push(point),
            _ => {
                assert!(
                    done.insert(series.clone()),
                    "{series:?}: samples not contiguous"
                );
                rows.push(Stored {
                    series,
                    target_labels: labels,
                    samples: vec![point],
                });
            }
        }
    }
    rows
}

/// `k="v",…` (values without quotes or escapes, as ids and activity names are) as a map.
fn label_pairs(text: &str) -> BTreeMap<String, String> {
    text.split("\",")
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once("=\"").unwrap();
            (k.to_string(), v.trim_end_matches('"').to_string())
        })
        .collect()
}

#[test]
fn a_since_backfill_killed_mid_way_finishes_on_a_rerun_with_every_event_once() {
    let now = UnixMillis::now().0;
    let events = events_between(&mut Rng::new(7), 1200, (now - 71 * HOUR, now - MINUTE));
    let truth = Truth::of(&events);
    let rt = runtime();
    // One event per page: reading every hour takes over a thousand requests, time to kill it.
    let api = tenant_serving(&rt, &events, 1);
    let pages = || {
        api.requests()
            .iter()
            .filter(|r| r.path.ends_with("activityevents") && r.status == 200)
            .count()
    };
    let dir = tempfile::tempdir().unwrap();
    let (state, file) = (dir.path().join("state"), dir.path().join("history.om"));
    let mut args: Vec<String> = ["--since", "3d", "--step", "10m"]
        .map(String::from)
        .to_vec();
    args.extend([
        "--out".into(),
        path_arg(&file),
        "--state.dir".into(),
        path_arg(&state),
    ]);
    args.extend(tenant_flags(&api));
    // Whole seconds: the range's end may be written without its milliseconds.
    let started = UnixMillis::now().0 / 1000 * 1000;
    let first_logs = dir.path().join("first");
    let mut first = spawn_backfill(&args, &first_logs);
    let deadline = Instant::now() + Duration::from_secs(120);
    while pages() < events.len() / 3 {
        let log = || std::fs::read_to_string(first_logs.join("stderr")).unwrap();
        assert!(
            first.try_wait().unwrap().is_none(),
            "it ended before it could be killed: {}",
            log()
        );
        assert!(
            Instant::now() < deadline,
            "{} pages in 120s: {}",
            pages(),
            log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill().unwrap(); // SIGKILL: nothing is flushed or saved on the way out
    first.wait().unwrap();
    let killed = UnixMillis::now().0;
    let read_before = pages();
    assert!(
        read_before < events.len(),
        "killed mid-way: {read_before} pages"
    );
    let out = backfill(&args, &dir.path().join("second"), Duration::from_secs(240));
    assert_success(&out, "the rerun with the same flags");
    let read_again = pages() - read_before;
    assert!(
        read_again < events.len(),
        "the rerun continued: {read_again} pages, where reading every hour takes {}",
        events.len()
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().last(), Some("# EOF"), "the file is complete");
    let rows = counters_in_file(&text);
    let end_ms = newest_sample(&rows);
    assert!(
        (started..=killed).contains(&end_ms),
        "the range is the first run's: it ends at {end_ms}, the first run ran {started}..{killed}"
    );
    let grid = Grid {
        step_ms: 10 * MINUTE,
        end_ms,
    };
    assert_counters_equal_truth(&rows, &truth, grid, &BTreeMap::new());
    assert!(
        state.join("state.json").is_file(),
        "the state is left in {}",
        state.display()
    );
}

#[test]
fn bad_backfill_flags_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let replay = fixtures();
    let (replay, out) = (replay.to_str().unwrap(), dir.path().join("out.om"));
    let out = out.to_str().unwrap();
    let nowhere = simulated_tenant_args("http://127.0.0.1:9");
    let nowhere: Vec<&str> = nowhere.iter().map(String::as_str).collect();
    let replaying = |extra: &[&'static str]| -> Vec<String> {
        let mut args = vec!["--replay", replay, "--out", out];
        args.extend(extra);
        args.into_iter().map(String::from).collect()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (replaying(&["--step", "5m", "--label", "job"]), "--label"),
        (
            replaying(&["--step", "5m", "--label", "__name__=x"]),
            "--label",
        ),
        (replaying(&["--step", "5m", "--label", "1job=x"]), "--label"),
        (
            replaying(&["--step", "5m", "--label", "job-name=x"]),
            "--label",
        ),
        (replaying(&["--step", "0"]), "--step"),
        // A label the families carry, or one given twice, would make two labels of one name.
        (
            replaying(&["--step", "5m", "--label", "workspace_id=x"]),
            "--label",
        ),
        (
            replaying(&["--step", "5m", "--label", "job=a", "--label", "job=b"]),
            "--label",
        ),
        // An archive is read whole: a range of the live tenant means nothing with it.
        (replaying(&["--step", "5m", "--since", "1d"]), "--since"),
        (
            ["--since", "29d", "--step", "5m", "--out", out]
                .iter()
                .chain(&nowhere)
                .map(|s| s.to_string())
                .collect(),
            "--since",
        ),
        (
            ["--replay", replay, "--step", "5m"]
                .map(String::from)
                .to_vec(),
            "--out",
        ),
    ];
    for (k, (args, flag)) in cases.iter().enumerate() {
        let logs = dir.path().join(format!("case-{k}"));
        let run = backfill(args, &logs, Duration::from_secs(60));
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {flag} not named in:\n{err}");
    }
}

/// The dashboard's variables, asked as Grafana asks them (the label values API over the
/// dashboard's range), offer the backfill's job, tenant and exporter, and some of the rest.
fn assert_usage_variables_offer_the_backfill(
    server: &Prometheus,
    dashboard: &Value,
    range: (i64, i64),
    instance: &str,
) {
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        let Some(query) = variable["query"]["query"].as_str() else {
            continue;
        };
        let query = substitute_with(query, "powerbi-exporter", "contoso", instance);
        let (series, label) = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .and_then(|q| q.rsplit_once(", "))
            .unwrap_or_else(|| panic!("not label_values(SERIES, LABEL): {query}"));
        let answer = http()
            .get(format!("{}/api/v1/label/{label}/values", server.1))
            .query(&[
                ("match[]", series),
                ("start", &seconds(range.0)),
                ("end", &seconds(range.1)),
            ])
            .send()
            .unwrap()
            .text()
            .unwrap();
        let answer: Value = serde_json::from_str(&answer).unwrap();
        let values: Vec<&str> = answer["data"]
            .as_array()
            .unwrap_or_else(|| panic!("{query}: {answer}"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        match label {
            "job" => assert_eq!(values, ["powerbi-exporter"], "{query}"),
            "tenant" => assert_eq!(values, ["contoso"], "{query}"),
            "instance" => assert_eq!(values, [instance], "{query}"),
            _ => assert!(!values.is_empty(), "{query}: no values"),
        }
    }
}

/// Prometheus, on the backfill's blocks in `dir/data`, scrapes `exporter` under the labels the
/// backfill wrote: for every series of both counters `resets()` over the range is 0, the last
/// value is the exact total, and some series reach back before `seam_ms` (into the backfill).
fn assert_scraped_after_the_backfill_without_a_seam(
    exporter: &Exporter,
    dir: &Path,
    instance: &str,
    truth: &Truth,
    seam_ms: i64,
) {
    // The scrape carries the labels the backfill wrote: the same series continue.
    let server = prometheus_with(
        &format!(
            "  - job_name: powerbi-exporter\n    static_configs: [{{targets: [{:?}], labels: {{instance: {instance:?}}}}}]\n",
            exporter.addr
        ),
        dir,
    );
    wait_for_scrapes(&server);
    let at = UnixMillis::now().0;
    for counter in Counter::BOTH {
        let selector = format!(
            "{}{{job=\"powerbi-exporter\",instance={instance:?}}}[4d]",
            counter.metric()
        );
        let resets = stored(
            &query_at(&server, &format!("resets({selector})"), at),
            counter,
        );
        let last_over_time = format!("last_over_time({selector})");
        let last = stored(&query_at(&server, &last_over_time, at), counter);
        let samples = stored(&query_at(&server, &selector, at), counter);
        let want: BTreeSet<&Series> = truth.0.keys().filter(|s| s.counter == counter).collect();
        for rows in [&resets, &last, &samples] {
            let got: BTreeSet<&Series> = rows.iter().map(|r| &r.series).collect();
            assert!(
                got == want,
                "{}: {} series, want one per label set of the events, {}",
                counter.metric(),
                got.len(),
                want.len()
            );
        }
        let reset: Vec<_> = resets
            .iter()
            .filter(|r| r.samples[0].1 != 0.0)
            .map(|r| &r.series)
            .collect();
        assert!(reset.is_empty(), "resets() over the seam: {reset:#?}");
        for row in &last {
            assert_eq!(
                row.samples[0].1,
                truth.total(&row.series) as f64,
                "{:?} ends at the exact total",
                row.series
            );
        }
        // The seam is in the range: backfilled samples before the exporter's first scrape.
        let spans = samples
            .iter()
            .filter(|r| r.samples.first().is_some_and(|s| s.0 < seam_ms))
            .count();
        assert!(
            spans > 0,
            "{}: no series reaches back into the backfill",
            counter.metric()
        );
    }
}
