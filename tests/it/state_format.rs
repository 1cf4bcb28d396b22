//! The state format is pinned: a state file written by an earlier release
//! (`tests/fixtures/state/v1/`, see its README) loads in today's build with every counter
//! exact — checked against truth counted here from the raw archive it was made from — and with
//! the live source's status it saved.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::history::archive_families;
use crate::support::*;

const DAY_MS: i64 = 86_400_000;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/state")
}

/// The archive's events, each once (a file may repeat an event of another: same `Id`).
fn archive_events() -> Vec<serde_json::Value> {
    let dir = fixture().join("archive");
    let a = std::fs::read_to_string(dir.join("a.jsonl")).unwrap();
    let b = std::fs::read_to_string(dir.join("b.json")).unwrap();
    let mut events: Vec<serde_json::Value> = a
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    events.extend(serde_json::from_str::<Vec<serde_json::Value>>(&b).unwrap());
    let mut ids = BTreeSet::new();
    events.retain(|e| ids.insert(e["Id"].as_str().unwrap().to_string()));
    assert_eq!(events.len(), 120, "the archive holds 120 distinct events");
    events
}

/// `2026-10-04T19:36:41` (UTC) in Unix milliseconds.
fn unix_ms(time: &str) -> i64 {
    let date: Vec<i64> = time[..10].split('-').map(|p| p.parse().unwrap()).collect();
    let clock: Vec<i64> = time[11..19]
        .split(':')
        .map(|p| p.parse().unwrap())
        .collect();
    let days =
        powerbi_exporter::decode::time::days_from_civil(date[0], date[1] as u32, date[2] as u32);
    ((days * 24 + clock[0]) * 60 + clock[1]) * 60_000 + clock[2] * 1000
}

/// The event families the archive determines, from the raw JSON: events, failed events and
/// report events by their labels, each workspace's newest event and name, each report's name,
/// and distinct users in the windows ending at the newest event.
fn truth(events: &[serde_json::Value]) -> BTreeMap<String, f64> {
    let mut t: BTreeMap<String, f64> = BTreeMap::new();
    let mut newest: BTreeMap<&str, i64> = BTreeMap::new();
    for v in events {
        let ws = v["WorkspaceId"].as_str().unwrap();
        let activity = v["Activity"].as_str().unwrap();
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
        let time = unix_ms(v["CreationTime"].as_str().unwrap());
        let n = newest.entry(ws).or_insert(i64::MIN);
        *n = (*n).max(time);
    }
    for (ws, ms) in &newest {
        t.insert(
            format!(r#"powerbi_workspace_last_activity_timestamp_seconds{{workspace_id="{ws}"}}"#),
            *ms as f64 / 1000.0,
        );
    }
    let reference = newest.values().copied().max().unwrap();
    for (window, days) in [("1d", 1), ("7d", 7), ("28d", 28)] {
        let mut all = BTreeSet::new();
        let mut by_ws: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for v in events {
            if unix_ms(v["CreationTime"].as_str().unwrap()) > reference - days * DAY_MS {
                let user = v["UserId"].as_str().unwrap().to_lowercase();
                all.insert(user.clone());
                by_ws
                    .entry(v["WorkspaceId"].as_str().unwrap())
                    .or_default()
                    .insert(user);
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

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Starts today's binary on a copy of the fixture's state, replaying a file with no events, and
/// returns its exposition once the replay finished.
fn serve_fixture_state(state_dir: &Path, dir: &Path, saved_pages: f64) -> BTreeMap<String, f64> {
    copy_dir(&fixture().join("v1"), state_dir);
    let empty = dir.join("nothing.json");
    std::fs::write(&empty, "[]").unwrap();
    let mut e = Exporter::start(&[
        "--replay",
        empty.to_str().unwrap(),
        "--state.dir",
        state_dir.to_str().unwrap(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = e.startup_log.clone();
    while !log.iter().any(|l| l.contains("Source finished")) {
        assert!(
            Instant::now() < deadline,
            "the replay did not finish: {log:#?}"
        );
        log.extend(e.log.try_iter());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        log.iter()
            .any(|l| l.contains("Resuming from the saved state.")),
        "the fixture's state is read, not moved aside: {log:#?}"
    );
    // The last save follows the end of the source: the one file of no events is counted.
    let mut s = e.scrape();
    let settle = Instant::now() + Duration::from_secs(5);
    while s.get("powerbi_pages_processed_total") == Some(&saved_pages) && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
        s = e.scrape();
    }
    e.terminate();
    s
}

#[test]
fn a_state_written_by_an_earlier_release_loads_with_exact_counters_and_source_status() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    // What the fixture saved, read here from its JSON.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().join("v1/state.json")).unwrap()).unwrap();
    let aggregate = &saved["aggregate"];
    let count = |key: &str| aggregate[key].as_f64().unwrap();
    let s = serve_fixture_state(&state_dir, dir.path(), count("pages_processed"));
    let events = archive_events();
    assert_eq!(archive_families(&s), truth(&events));
    for v in &events {
        let ws = v["WorkspaceId"].as_str().unwrap();
        let name = v["WorkSpaceName"].as_str().unwrap();
        let info = format!(
            r#"powerbi_workspace_info{{workspace_id="{ws}",workspace_name="{name}",type="",capacity_id=""}}"#
        );
        assert_eq!(s.get(&info), Some(&1.0), "{info} in {s:#?}");
        if let (Some(r), Some(name)) = (v["ReportId"].as_str(), v["ReportName"].as_str()) {
            let info = format!(
                r#"powerbi_report_info{{report_id="{r}",report_name="{name}",workspace_id="{ws}"}}"#
            );
            assert_eq!(s.get(&info), Some(&1.0), "{info}");
        }
    }
    // The file of no events counts one more page and nothing else.
    assert_eq!(
        s["powerbi_pages_processed_total"],
        count("pages_processed") + 1.0
    );
    // The live source's status, as the fixture saved it.
    let source = &aggregate["source"];
    assert_eq!(s["powerbi_up"], 1.0);
    assert_eq!(source["up"], true);
    for (code, n) in source["api"]["requests"].as_object().unwrap() {
        // Counted before requests had a purpose.
        let key = format!(r#"powerbi_api_requests_total{{code="{code}",purpose="unknown"}}"#);
        assert_eq!(s.get(&key), Some(&n.as_f64().unwrap()), "{key}");
    }
    assert_eq!(
        s["powerbi_api_budget_remaining"],
        source["budget_remaining"].as_f64().unwrap()
    );
    assert_eq!(
        s["powerbi_last_poll_success_timestamp_seconds"],
        source["last_success"].as_f64().unwrap() / 1000.0
    );
    assert_eq!(
        s[r#"powerbi_credential_expiry_timestamp_seconds{kind="token"}"#],
        source["token_expiry"].as_f64().unwrap() / 1000.0
    );
    assert_eq!(
        s["powerbi_inventory_last_success_timestamp_seconds"],
        source["inventory"]["last_success"].as_f64().unwrap() / 1000.0
    );
    // Counters the live source's pages added (all filtered out, or duplicates of each other).
    assert_eq!(s["powerbi_events_processed_total"], count("processed"));
    assert_eq!(s["powerbi_events_duplicate_total"], count("duplicates"));
    let filtered: BTreeMap<String, f64> = aggregate["filtered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_f64().unwrap()))
        .collect();
    for (reason, n) in &filtered {
        let key = format!(r#"powerbi_events_filtered_total{{reason="{reason}"}}"#);
        assert_eq!(s.get(&key), Some(n), "{key}");
    }
    assert!(
        filtered["activity"] > 0.0,
        "the fixture's live events were filtered"
    );
    // The copy is saved over in today's layout: the source's status beside the aggregate.
    let resaved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state_dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(resaved["version"], 2);
    assert_eq!(resaved["source"]["api"], source["api"]);
    assert_eq!(resaved["source"]["checkpoint"], source["checkpoint"]);
    assert!(resaved["aggregate"].get("source").is_none());
    assert!(resaved["aggregate"].get("replay").is_none());
}

/// Runs the binary on `state_dir` (replaying a file of no events) and waits for it to stop;
/// fails the test when it is still running after 20 s.
fn start_and_wait(state_dir: &Path, dir: &Path) -> std::process::Output {
    let empty = dir.join("nothing.json");
    std::fs::write(&empty, "[]").unwrap();
    let mut child = std::process::Command::new(BIN)
        .args(["--replay", empty.to_str().unwrap()])
        .args(["--state.dir", state_dir.to_str().unwrap()])
        .args(["--web.listen-address", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after 20 s: the state was not refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_state_of_a_newer_or_unknown_version_stops_the_start_and_is_left_as_it_is() {
    for (version, reason) in [
        (3, "newer than the version 2"),
        (0, "which no release wrote"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        copy_dir(&fixture().join("v1"), &state_dir);
        let file = state_dir.join("state.json");
        let text = std::fs::read_to_string(&file).unwrap();
        let other = text.replacen(r#""version":1,"#, &format!(r#""version":{version},"#), 1);
        assert_ne!(text, other);
        std::fs::write(&file, &other).unwrap();
        let out = start_and_wait(&state_dir, dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.contains(&file.display().to_string()) && last.contains(reason),
            "the error names the file and {reason:?}: {err}"
        );
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            other,
            "left as it was"
        );
        let names: Vec<_> = std::fs::read_dir(&state_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains(".bad-")),
            "not moved aside: {names:?}"
        );
    }
}
