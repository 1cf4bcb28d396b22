//! History outside the lookback: the initial lookback loaded at first start, the API's 28-day
//! edge, and replayed archives of any span and order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use powerbi_exporter::decode::time::days_from_civil;
use powerbi_exporter::decode::UnixMillis;
use powerbi_exporter::rng::Rng;
use powerbi_exporter::simulator::api::{ApiConfig, SimulatedApi};
use powerbi_exporter::simulator::timeline::Timeline;
use powerbi_exporter::simulator::TenantSpec;

use crate::support::*;

const HOUR: i64 = 3_600_000;

/// `n` events spread over the `hours` before now, all visible already.
fn history(n: usize, hours: i64) -> Timeline {
    let spec = TenantSpec {
        seed: 5,
        workspaces: 3,
        users: 20,
    };
    visible_history(spec, 55, n, hours)
}

/// Events per `{workspace_id=…,activity=…}`, from the raw JSON.
fn truth(events: impl IntoIterator<Item = serde_json::Value>) -> BTreeMap<String, f64> {
    let mut all = BTreeMap::new();
    for v in events {
        let key = format!(
            r#"{{workspace_id="{}",activity="{}"}}"#,
            v["WorkspaceId"].as_str().unwrap_or(""),
            v["Activity"].as_str().unwrap()
        );
        *all.entry(key).or_default() += 1.0;
    }
    all
}

fn tenant_args(api: &SimulatedApi, extra: &[&str]) -> Vec<String> {
    let mut args = simulated_tenant_args(&api.base_url());
    args.extend(
        [
            "--powerbi.poll-interval",
            "1s",
            "--powerbi.retry-delay",
            "20ms",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string()),
    );
    args
}

#[test]
fn an_initial_lookback_longer_than_the_lookback_loads_every_hour_once() {
    let rt = runtime();
    let config = ApiConfig {
        page_size: 50,
        ..ApiConfig::default()
    };
    let api = rt
        .block_on(SimulatedApi::start(config, history(400, 4), 0))
        .unwrap();
    let expected = truth(api.with_timeline(|t| {
        t.events()
            .iter()
            .map(|e| serde_json::from_slice(&e.json).unwrap())
            .collect::<Vec<_>>()
    }));
    let args = tenant_args(
        &api,
        &[
            "--powerbi.lookback",
            "1h",
            "--powerbi.initial-lookback",
            "5h",
            "--powerbi.max-requests-per-hour",
            "200",
        ],
    );
    let e = Exporter::start_with_secret(&args);
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut s = e.scrape();
    while family(&s, "powerbi_activity_events_total") != expected
        || s.get("powerbi_initial_lookback_hours_remaining") != Some(&0.0)
    {
        assert!(
            Instant::now() < deadline,
            "not converged in 40s: {} of 400 events counted, {:?} hours remaining, rejected {:?}",
            family(&s, "powerbi_activity_events_total")
                .values()
                .sum::<f64>(),
            s.get("powerbi_initial_lookback_hours_remaining"),
            family(&s, "powerbi_events_rejected_total"),
        );
        std::thread::sleep(Duration::from_millis(250));
        s = e.scrape();
    }
    assert_eq!(
        family(&s, "powerbi_events_rejected_total")
            .values()
            .sum::<f64>(),
        0.0
    );
    let log: Vec<String> = e.log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("Initial lookback loaded")),
        "progress is logged: {log:#?}"
    );
}

#[test]
fn a_28_day_lookback_never_asks_for_an_hour_the_api_no_longer_serves() {
    let rt = runtime();
    let api = rt
        .block_on(SimulatedApi::start(ApiConfig::default(), history(20, 2), 0))
        .unwrap();
    let args = tenant_args(
        &api,
        &[
            "--powerbi.lookback",
            "28d",
            "--powerbi.initial-lookback",
            "28d",
            "--powerbi.max-requests-per-hour",
            "3000",
        ],
    );
    let e = Exporter::start_with_secret(&args);
    // Polls that read the oldest hours first (never-read hours go oldest first).
    let deadline = Instant::now() + Duration::from_secs(30);
    while api
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("activityevents") && r.status == 200)
        .count()
        < 5
    {
        assert!(Instant::now() < deadline, "no reads within 30s");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let refused: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.status == 400)
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
    let s = e.scrape();
    assert_eq!(api_requests_with_code(&s, "400"), 0.0);
}

/// One raw event of an archive, with what the test needs to know about it.
struct Raw {
    json: String,
    time_ms: i64,
}

/// `n` distinct events spread over `days` days from `first_ms`: four workspaces, three
/// activities, some failed, some with a report.
fn archive(n: usize, first_ms: i64, days: i64, seed: u64) -> Vec<Raw> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let time_ms = first_ms + rng.below((days * 86_400_000) as u64) as i64;
            let activity = ["ViewReport", "ExportReport", "ViewDashboard"][rng.below(3) as usize];
            let ws = rng.below(4);
            let report = if activity == "ViewDashboard" {
                String::new()
            } else {
                format!(r#","ReportId":"r{}","ReportName":"Report {}""#, ws * 10 + rng.below(3), ws)
            };
            let failed = if rng.below(10) == 0 { r#","IsSuccess":false"# } else { "" };
            let json = format!(
                r#"{{"Id":"{seed:08x}-0000-4000-8000-{i:012x}","CreationTime":"{}","Activity":"{activity}","WorkspaceId":"w{ws}","WorkSpaceName":"Workspace {ws}","UserId":"u{}@contoso.com"{report}{failed}}}"#,
                UnixMillis(time_ms).to_api_string(),
                rng.below(30),
            );
            Raw { json, time_ms }
        })
        .collect()
}

/// Every event family the archive determines, from the raw JSON: events, failed events and
/// report events by their labels, each workspace's newest event time, and distinct users per
/// window, overall and per workspace.
fn archive_truth(events: &[Raw]) -> BTreeMap<String, f64> {
    let mut t = BTreeMap::new();
    let mut newest: BTreeMap<String, i64> = BTreeMap::new();
    for e in events {
        let v: serde_json::Value = serde_json::from_str(&e.json).unwrap();
        let (ws, activity) = (
            v["WorkspaceId"].as_str().unwrap(),
            v["Activity"].as_str().unwrap(),
        );
        let key = format!(r#"{{workspace_id="{ws}",activity="{activity}"}}"#);
        *t.entry(format!("powerbi_activity_events_total{key}"))
            .or_default() += 1.0;
        if v["IsSuccess"] == false {
            *t.entry(format!("powerbi_activity_events_failed_total{key}"))
                .or_default() += 1.0;
        }
        if let Some(r) = v["ReportId"].as_str() {
            let key = format!(r#"{{workspace_id="{ws}",report_id="{r}",activity="{activity}"}}"#);
            *t.entry(format!("powerbi_report_events_total{key}"))
                .or_default() += 1.0;
        }
        let n = newest.entry(ws.to_string()).or_insert(i64::MIN);
        *n = (*n).max(e.time_ms / 1000 * 1000);
    }
    for (ws, ms) in newest {
        t.insert(
            format!(r#"powerbi_workspace_last_activity_timestamp_seconds{{workspace_id="{ws}"}}"#),
            ms as f64 / 1000.0,
        );
    }
    // Distinct users with an event in the windows ending at the newest event (--once).
    let reference = events
        .iter()
        .map(|e| e.time_ms / 1000 * 1000)
        .max()
        .unwrap();
    for (window, days) in [("1d", 1), ("7d", 7), ("28d", 28)] {
        let mut all = std::collections::BTreeSet::new();
        let mut by_ws: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for e in events {
            if e.time_ms / 1000 * 1000 > reference - days * 86_400_000 {
                let v: serde_json::Value = serde_json::from_str(&e.json).unwrap();
                let user = v["UserId"].as_str().unwrap().to_lowercase();
                all.insert(user.clone());
                let ws = v["WorkspaceId"].as_str().unwrap().to_string();
                by_ws.entry(ws).or_default().insert(user);
            }
        }
        t.insert(
            format!(r#"powerbi_active_users{{window="{window}"}}"#),
            all.len() as f64,
        );
        for (ws, users) in by_ws {
            t.insert(
                format!(
                    r#"powerbi_workspace_active_users{{workspace_id="{ws}",window="{window}"}}"#
                ),
                users.len() as f64,
            );
        }
    }
    t
}

/// The samples of the families [`archive_truth`] covers (the state format test reads the same
/// families of its pinned archive).
pub(crate) fn archive_families(s: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let names = [
        "powerbi_activity_events_total{",
        "powerbi_activity_events_failed_total{",
        "powerbi_report_events_total{",
        "powerbi_workspace_last_activity_timestamp_seconds{",
        "powerbi_active_users{",
        "powerbi_workspace_active_users{",
    ];
    // A workspace with no user in a window may show 0 or be absent: both mean none.
    s.iter()
        .filter(|(k, _)| names.iter().any(|n| k.starts_with(n)))
        .filter(|(k, v)| !(k.starts_with("powerbi_workspace_active_users{") && **v == 0.0))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

#[test]
fn a_replay_of_120_days_shuffled_across_overlapping_files_counts_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    // 2026-07-01T00:00Z, 120 days on.
    let events = archive(3_000, 1_782_864_000_000, 120, 7);
    let mut rng = Rng::new(8);
    let mut order: Vec<usize> = (0..events.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    // Five files in any order; one event in eight is also in another file.
    let mut files: Vec<Vec<&str>> = vec![Vec::new(); 5];
    let mut copies = 0;
    for (k, &i) in order.iter().enumerate() {
        files[k % 5].push(&events[i].json);
        if rng.below(8) == 0 {
            files[(k + 1 + rng.below(4) as usize) % 5].push(&events[i].json);
            copies += 1;
        }
    }
    for (f, lines) in files.iter().enumerate() {
        let body = if f % 2 == 0 {
            lines.join("\n")
        } else {
            format!("[{}]", lines.join(",\n"))
        };
        let ext = if f % 2 == 0 { "jsonl" } else { "json" };
        std::fs::write(dir.path().join(format!("part-{f}.{ext}")), body).unwrap();
    }
    let out = run(&[
        "--once",
        "--replay",
        dir.path().to_str().unwrap(),
        "--replay.max-ids-per-pass",
        "1000",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = samples(&stdout(&out));
    assert_eq!(archive_families(&s), archive_truth(&events));
    assert_eq!(s["powerbi_events_duplicate_total"], copies as f64);
    assert_eq!(
        s["powerbi_events_processed_total"],
        (events.len() + copies) as f64
    );
    assert_eq!(s["powerbi_pages_processed_total"], 5.0);
    assert_eq!(
        family(&s, "powerbi_events_rejected_total")
            .values()
            .sum::<f64>(),
        0.0
    );
    // Memory was bounded: the archive was read in passes of days, each within the budget, so
    // at least as many as the events (copies included) need.
    let log = stderr(&out);
    let passes: usize = log
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("passes=")?.parse().ok())
        .unwrap_or_else(|| panic!("no passes= in the log: {log}"));
    assert!(passes >= (events.len() + copies).div_ceil(1000), "{log}");
}

#[test]
fn a_replay_of_events_from_2017_to_2023_refuses_none_as_outside_the_dedup_window() {
    let dir = tempfile::tempdir().unwrap();
    // 2017-01-01T00:00Z to 2023-12-31: the span of Microsoft's published example events.
    let events = archive(200, 1_483_228_800_000, 7 * 365, 3);
    let mut body: Vec<&str> = events.iter().map(|e| e.json.as_str()).collect();
    body.push(&events[0].json); // one duplicate
    let path = dir.path().join("examples.jsonl");
    std::fs::write(&path, body.join("\n")).unwrap();
    let out = run(&["--once", "--replay", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = samples(&stdout(&out));
    assert_eq!(
        s[r#"powerbi_events_rejected_total{reason="outside_dedup_window"}"#],
        0.0
    );
    assert_eq!(archive_families(&s), archive_truth(&events));
    assert_eq!(s["powerbi_events_duplicate_total"], 1.0);
}

#[test]
fn a_replay_pass_budget_too_small_exits_2_naming_the_flag() {
    let out = run(&[
        "--once",
        "--replay",
        fixtures().to_str().unwrap(),
        "--replay.max-ids-per-pass",
        "10",
    ]);
    assert_exit_2_naming(&out, &["--replay.max-ids-per-pass 10", "at least 1000"]);
    // The same from the configuration file, under its key.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "replay:\n  path: {}\n  max_ids_per_pass: 999\n",
            fixtures().display()
        ),
    )
    .unwrap();
    let out = run(&["--once", "--config.file", config.to_str().unwrap()]);
    assert_exit_2_naming(
        &out,
        &["config key `replay.max_ids_per_pass` 999", "at least 1000"],
    );
}

#[test]
fn a_restart_while_the_initial_lookback_loads_resumes_it_and_counts_each_event_once() {
    let rt = runtime();
    let api = rt
        .block_on(SimulatedApi::start(
            ApiConfig::default(),
            history(300, 4),
            0,
        ))
        .unwrap();
    let expected = truth(api.with_timeline(|t| {
        t.events()
            .iter()
            .map(|e| serde_json::from_slice(&e.json).unwrap())
            .collect::<Vec<_>>()
    }));
    let state = tempfile::tempdir().unwrap();
    let mut args = simulated_tenant_args(&api.base_url());
    args.extend(
        [
            "--powerbi.poll-interval",
            "2s",
            "--powerbi.retry-delay",
            "20ms",
            "--powerbi.lookback",
            "1h",
            "--powerbi.initial-lookback",
            "5h",
            "--state.dir",
            state.path().to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let remaining =
        |s: &BTreeMap<String, f64>| s.get("powerbi_initial_lookback_hours_remaining").copied();
    {
        let mut e = Exporter::start_with_env(&args, &[SECRET]);
        let deadline = Instant::now() + Duration::from_secs(20);
        // Stopped hard once part of the history is read and saved, part not.
        while !remaining(&e.scrape()).is_some_and(|r| r > 0.0 && r < 4.0) {
            assert!(
                Instant::now() < deadline,
                "no progress: {:?}",
                remaining(&e.scrape())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        e.child.kill().unwrap();
        e.child.wait().unwrap();
    }
    let e = Exporter::start_with_env(&args, &[SECRET]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut s = e.scrape();
    while family(&s, "powerbi_activity_events_total") != expected || remaining(&s) != Some(0.0) {
        assert!(
            Instant::now() < deadline,
            "not converged after the restart: {} of 300 events, {:?} hours remaining",
            family(&s, "powerbi_activity_events_total")
                .values()
                .sum::<f64>(),
            remaining(&s)
        );
        std::thread::sleep(Duration::from_millis(250));
        s = e.scrape();
    }
    assert_eq!(
        family(&s, "powerbi_events_rejected_total")
            .values()
            .sum::<f64>(),
        0.0
    );
    let resumed: Vec<String> = e.startup_log.clone();
    assert!(
        resumed
            .iter()
            .any(|l| l.contains("Resuming from the saved state.")),
        "{resumed:#?}"
    );
}

/// Unix milliseconds of `YYYY-MM-DDTHH:MM:SS` (UTC).
fn unix_ms(iso: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| iso.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, s) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let days = days_from_civil(y, u32::try_from(m).ok()?, u32::try_from(d).ok()?);
    Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000)
}

/// The start of every hour a fake API was asked for, with the status it answered.
type AskedHours = std::sync::Arc<std::sync::Mutex<Vec<(i64, u16)>>>;

/// A loopback API that keeps a little less than 28 days: it answers 400 for an hour starting
/// more than 27.5 days ago (inside the oldest day of the 28, where the API's own count may
/// differ from ours), an empty last page otherwise, and tokens to anyone. Returns its base URL
/// and the start of every hour it was asked for, with the status it gave.
fn short_retention_api() -> (String, AskedHours) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = log.clone();
    listener.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        // Ends with the test process; each connection is answered once and closed.
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut buf = vec![0u8; 16 * 1024];
            let n = conn.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let target = req.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, body) = if target.contains("/oauth2/v2.0/token") {
                (
                    200,
                    r#"{"token_type":"Bearer","expires_in":3599,"access_token":"t"}"#,
                )
            } else {
                let start = target
                    .split("startDateTime=")
                    .nth(1)
                    .map(|v| v.replace("%27", "").replace('\'', ""))
                    .and_then(|v| unix_ms(&v));
                let now = UnixMillis::now().0;
                match start {
                    Some(start) if start < now - 27 * 24 * HOUR - 12 * HOUR => {
                        seen.lock().unwrap().push((start, 400));
                        (
                            400,
                            r#"{"error":{"code":"InvalidRequest","message":"startDateTime is too old"}}"#,
                        )
                    }
                    Some(start) => {
                        seen.lock().unwrap().push((start, 200));
                        (
                            200,
                            r#"{"activityEventEntities":[],"continuationUri":null,"continuationToken":null,"lastResultSet":true}"#,
                        )
                    }
                    None => (
                        400,
                        r#"{"error":{"code":"InvalidRequest","message":"no dates"}}"#,
                    ),
                }
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (base, log)
}

#[test]
fn an_hour_refused_at_the_28_day_edge_is_expired_not_asked_for_again() {
    let (base, log) = short_retention_api();
    let mut args = simulated_tenant_args(&base);
    args.extend(
        [
            "--powerbi.poll-interval",
            "1s",
            "--powerbi.retry-delay",
            "20ms",
            "--powerbi.lookback",
            "28d",
            "--powerbi.initial-lookback",
            "28d",
            "--powerbi.max-requests-per-hour",
            "100000",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let e = Exporter::start_with_secret(&args);
    // About 12 hours are refused; the polls read ~25 hours each, oldest first.
    let deadline = Instant::now() + Duration::from_secs(30);
    while log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, s)| *s == 200)
        .count()
        < 60
    {
        assert!(
            Instant::now() < deadline,
            "too few reads: {:?}",
            log.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let log = log.lock().unwrap().clone();
    let mut refused: BTreeMap<i64, usize> = BTreeMap::new();
    for (start, status) in &log {
        if *status == 400 {
            *refused.entry(*start).or_default() += 1;
        }
    }
    assert!(refused.len() >= 10, "the edge was exercised: {refused:?}");
    assert!(
        refused.values().all(|&n| n == 1),
        "a refused hour was asked for again: {refused:?}"
    );
    let s = e.scrape();
    assert_eq!(
        s.get("powerbi_up"),
        Some(&1.0),
        "an expired hour is no failure"
    );
}

/// Feeds a FIFO in a replay's directory: each time the exporter opens it, it reads `[]` (no
/// events). The opens numbered in `hold` (1-based: the census is the first
/// when there is one) wait until `release` is set; dropping the gate ends its thread.
struct Gate {
    path: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Gate {
    fn new(
        path: std::path::PathBuf,
        hold: impl Fn(usize) -> bool + Send + 'static,
        release: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Gate {
        use std::sync::atomic::Ordering;
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (path.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut opened = 0;
            while !s.load(Ordering::Acquire) {
                // Blocks until a reader opens the FIFO.
                let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(&p) else {
                    return;
                };
                opened += 1;
                while hold(opened) && !release.load(Ordering::Acquire) && !s.load(Ordering::Acquire)
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = std::io::Write::write_all(&mut w, b"[]");
                drop(w);
                // The next open must be the reader's next, not this one still draining.
                let until = Instant::now() + Duration::from_secs(5);
                while held_open(&p) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        Gate {
            path,
            stop,
            thread: Some(thread),
        }
    }
}

/// Whether any process has `path` open (the exporter's pid may not be known yet: its census
/// opens the FIFO before it listens).
fn held_open(path: &std::path::Path) -> bool {
    let processes = std::fs::read_dir("/proc").into_iter().flatten();
    processes.filter_map(Result::ok).any(|p| {
        std::fs::read_dir(p.path().join("fd"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == path))
    })
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        // A reader of our own lets a writer waiting in open() go on and see `stop`.
        use std::os::unix::fs::OpenOptionsExt as _;
        let _reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(0o4000) // O_NONBLOCK
            .open(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A save in the first pass, which alone counts documents and rejections: the restart must not
/// count the files it had saved again.
#[test]
fn a_replay_killed_in_its_first_pass_and_restarted_counts_every_event_and_file_once() {
    killed_mid_pass_and_restarted(1);
}

#[test]
fn a_replay_in_passes_killed_mid_pass_and_restarted_counts_every_event_once() {
    killed_mid_pass_and_restarted(2);
}

/// A replay in passes of 1,000 ids killed (SIGKILL) after a save made in pass `pass` (1 or 2),
/// then restarted on its state: every event, duplicate and file is counted once.
fn killed_mid_pass_and_restarted(pass: usize) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let archive_dir = dir.path().join("archive");
    std::fs::create_dir(&archive_dir).unwrap();
    // 3,000 events over 120 days from 2026-07-01T00:00Z, in two files; 1,000 ids per pass.
    let events = archive(3_000, 1_782_864_000_000, 120, 11);
    let lines: Vec<&str> = events.iter().map(|e| e.json.as_str()).collect();
    let (a, z) = lines.split_at(1_500);
    std::fs::write(archive_dir.join("a.jsonl"), a.join("\n")).unwrap();
    std::fs::write(archive_dir.join("z.jsonl"), z.join("\n")).unwrap();
    // Between them (files go in path order) a FIFO, `m.jsonl`: its open number `pass + 1` is
    // in pass `pass` (the census opens it first), after a.jsonl's events of that pass. It is
    // held there until the checkpoint interval (10 s after the start's save) has passed, so
    // the save that follows it is mid-pass; the next open (the next pass) is held until the
    // kill, so nothing later is saved.
    let release = Arc::new(AtomicBool::new(false));
    let started: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let listening = started.clone();
    let gate = Gate::new(
        archive_dir.join("m.jsonl"),
        move |n| {
            let early = listening
                .get()
                .is_none_or(|t| t.elapsed() < Duration::from_secs(11));
            n == pass + 2 || (n == pass + 1 && early)
        },
        release.clone(),
    );
    let state = dir.path().join("state");
    let args = [
        "--replay",
        archive_dir.to_str().unwrap(),
        "--replay.max-ids-per-pass",
        "1000",
        "--state.dir",
        state.to_str().unwrap(),
    ];
    let saved = counted(&killed_after_a_save(&args, &started));
    assert!(saved > 0.0 && saved < 3_000.0, "{saved} of 3000 saved");
    release.store(true, Ordering::Release);
    let mut e = Exporter::start(&args);
    let expected = archive_truth(&events);
    let s = scrape_when_replayed(&mut e, &expected);
    assert_eq!(counted(&s), 3_000.0, "every event once");
    assert_eq!(archive_families(&s), expected);
    // The pass under way went on after the last file it had saved: nothing was read twice, and
    // the three files were counted once each, whichever pass the save fell in.
    assert_eq!(s["powerbi_events_duplicate_total"], 0.0);
    assert_eq!(s["powerbi_events_processed_total"], 3_000.0);
    assert_eq!(s["powerbi_pages_processed_total"], 3.0);
    e.terminate();
    drop(gate);
}

/// A replay of one pass (it fits the dedup budget) killed after a save, restarted on its state,
/// then run again with a file added after the others and with one added before them.
#[test]
fn a_replay_of_one_pass_resumes_after_its_saved_files_and_reads_only_files_added_after() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let archive_dir = dir.path().join("archive");
    std::fs::create_dir(&archive_dir).unwrap();
    let events = archive(1_000, 1_782_864_000_000, 20, 17);
    let lines: Vec<&str> = events.iter().map(|e| e.json.as_str()).collect();
    // An event without an Id, rejected: counted once however often the file is opened.
    let no_id = r#"{"CreationTime":"2026-07-02T00:00:00Z","Activity":"ViewReport"}"#;
    let first: Vec<&str> = lines[..500].iter().copied().chain([no_id]).collect();
    std::fs::write(archive_dir.join("a.jsonl"), first.join("\n")).unwrap();
    std::fs::write(archive_dir.join("z.jsonl"), lines[500..900].join("\n")).unwrap();
    // Two FIFOs between them (files go in path order): `m1` is held until the checkpoint
    // interval (10 s after the start's save) has passed, so the save after it holds a.jsonl and
    // m1; `m2` is held until the kill, so nothing later is saved.
    let release = Arc::new(AtomicBool::new(false));
    let started: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let listening = started.clone();
    let early = move |n: usize| {
        n == 1
            && listening
                .get()
                .is_none_or(|t| t.elapsed() < Duration::from_secs(11))
    };
    let m1 = Gate::new(archive_dir.join("m1.jsonl"), early, release.clone());
    let m2 = Gate::new(archive_dir.join("m2.jsonl"), |n| n == 1, release.clone());
    let state = dir.path().join("state");
    let args = [
        "--replay",
        archive_dir.to_str().unwrap(),
        "--state.dir",
        state.to_str().unwrap(),
    ];
    let saved = killed_after_a_save(&args, &started);
    assert_eq!(counted(&saved), 500.0, "a.jsonl saved, z.jsonl not");
    release.store(true, Ordering::Release);
    let once = |s: &BTreeMap<String, f64>, events: f64, files: f64| {
        assert_eq!(counted(s), events, "every event once");
        assert_eq!(
            s["powerbi_events_duplicate_total"], 0.0,
            "nothing read twice"
        );
        assert_eq!(s["powerbi_events_processed_total"], events + 1.0);
        let rejected = family(s, "powerbi_events_rejected_total");
        assert_eq!(rejected.values().sum::<f64>(), 1.0, "{rejected:?}");
        assert_eq!(s["powerbi_pages_processed_total"], files, "each file once");
    };
    let mut e = Exporter::start(&args);
    let s = scrape_when_replayed(&mut e, &archive_truth(&events[..900]));
    once(&s, 900.0, 4.0);
    e.terminate();
    drop((m1, m2));

    // A finished replay run again reads only what sorts after the files it counted.
    std::fs::write(archive_dir.join("zz.jsonl"), lines[900..].join("\n")).unwrap();
    let mut e = Exporter::start(&args);
    let s = scrape_when_replayed(&mut e, &archive_truth(&events));
    assert_eq!(archive_families(&s), archive_truth(&events));
    once(&s, 1_000.0, 5.0);
    e.terminate();
    // Once more with nothing new: nothing read, and ready all the same.
    let mut e = Exporter::start(&args);
    e.wait_ready();
    let s = scrape_when_replayed(&mut e, &archive_truth(&events));
    once(&s, 1_000.0, 5.0);
    e.terminate();

    // A file that sorts among those counted can be neither counted nor skipped: the start is
    // refused, naming it, and the state is left as it was.
    let saved = std::fs::read(state.join("state.json")).unwrap();
    std::fs::write(archive_dir.join("b.jsonl"), lines[0]).unwrap();
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("counted its first 5 files, up to")
            && message.contains("zz.jsonl: 6 files sort up to it now"),
        "{message}"
    );
    assert_eq!(std::fs::read(state.join("state.json")).unwrap(), saved);
}

/// Events counted on `/metrics`, all series.
fn counted(s: &BTreeMap<String, f64>) -> f64 {
    family(s, "powerbi_activity_events_total")
        .values()
        .sum::<f64>()
}

/// Starts the exporter with `args`, noting in `started` when it listens (its start's save
/// follows that line), and kills it (SIGKILL: no last save) as soon as `/metrics`, which serves
/// the saved state, shows events: what it served then.
fn killed_after_a_save(
    args: &[&str],
    started: &std::sync::OnceLock<Instant>,
) -> BTreeMap<String, f64> {
    let mut e = Exporter::start(args);
    started.set(Instant::now()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut s = e.scrape();
    while counted(&s) == 0.0 {
        assert!(
            Instant::now() < deadline,
            "nothing saved within 30 s: {:#?}",
            e.log.try_iter().collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
        s = e.scrape();
    }
    e.child.kill().unwrap();
    e.child.wait().unwrap();
    s
}

/// A scrape once the replay finished and its last save is served (it follows the end of the
/// source): the first that shows `expected`, or the last of 3 s.
fn scrape_when_replayed(
    e: &mut Exporter,
    expected: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !e.log.try_iter().any(|l| l.contains("Source finished")) {
        assert!(Instant::now() < deadline, "the replay did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut s = e.scrape();
    let settle = Instant::now() + Duration::from_secs(3);
    while archive_families(&s) != *expected && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(100));
        s = e.scrape();
    }
    s
}

/// The last sample of each series of `family` in an OpenMetrics file, by its label text.
fn last_samples(openmetrics: &str, family: &str) -> BTreeMap<String, f64> {
    let prefix = format!("{family}{{");
    openmetrics
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| {
            let mut parts = l.rsplitn(3, ' ');
            let (_time, value, series) = (parts.next(), parts.next(), parts.next());
            let labels = &series.unwrap()[family.len()..];
            (labels.to_string(), value.unwrap().parse().unwrap())
        })
        .collect()
}

#[test]
fn a_replay_in_passes_on_a_backfills_state_counts_only_what_the_state_did_not() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 events over 120 days; the backfill reads the first 2,000, the replay the last
    // 2,000: a thousand events are in both.
    let events = archive(3_000, 1_782_864_000_000, 120, 13);
    let lines: Vec<&str> = events.iter().map(|e| e.json.as_str()).collect();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    std::fs::write(&a, lines[..2_000].join("\n")).unwrap();
    std::fs::write(&b, lines[1_000..].join("\n")).unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("history.om");
    let backfill = run(&[
        "backfill",
        "--replay",
        a.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--step",
        "1h",
        "--state.dir",
        state.to_str().unwrap(),
    ]);
    assert!(backfill.status.success(), "{}", stderr(&backfill));
    // The file's last samples are the backfilled events' totals.
    let backfilled = archive_truth(&events[..2_000]);
    let file = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        last_samples(&file, "powerbi_activity_events_total"),
        family(&backfilled, "powerbi_activity_events_total")
    );
    // The replay in passes of 1,000 ids, on the backfill's state: every pass must still know
    // the ids the backfill counted.
    let mut e = Exporter::start(&[
        "--replay",
        b.to_str().unwrap(),
        "--replay.max-ids-per-pass",
        "1000",
        "--state.dir",
        state.to_str().unwrap(),
    ]);
    let expected = archive_truth(&events);
    let s = scrape_when_replayed(&mut e, &expected);
    assert_eq!(archive_families(&s), expected);
    assert_eq!(s["powerbi_events_duplicate_total"], 1_000.0);
    e.terminate();
}
