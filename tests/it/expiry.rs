//! Series expiry: a year of report churn at small caps. Reports come and go; while the reports
//! still in use stay below the cap, no new report may land in `__other__`, and the series of
//! reports idle longer than the retention (default 35 days) go, counted by family. A replay
//! keeps every series unless `--limits.series-retention` is given (the live and demo sources
//! expire by default), so the replays here ask for the default retention explicitly.

use std::collections::BTreeMap;

use crate::support::*;

const DAY_MS: i64 = 86_400_000;
/// 2025-01-01T00:00:00Z: the whole year lies in the past (events more than a day in the
/// future are refused).
const YEAR_START_MS: i64 = 1_735_689_600_000;
const RETENTION_DAYS: i64 = 35;
/// Report `i` is viewed once a day, at noon, on days `i .. i + LIFE_DAYS`.
const LIFE_DAYS: i64 = 10;
const REPORTS: i64 = 365;
/// Caps of the report families: a report holds a slot while in use and for the retention
/// after, so at most LIFE_DAYS + RETENTION_DAYS + 1 = 46 reports hold one at any time.
const CAP: usize = 60;
const WORKSPACE: &str = "5f0c3a2e-8d1b-4c6a-9e7f-0a1b2c3d4e5f";

fn report_id(i: i64) -> String {
    format!("0000{i:04x}-1111-4222-8333-444455556666")
}

fn iso(ms: i64) -> String {
    powerbi_exporter::decode::UnixMillis(ms).to_api_string()
}

/// The year of views as JSON Lines, oldest first; returns each report's (last view, views).
fn write_year(path: &std::path::Path) -> BTreeMap<i64, (i64, u64)> {
    let mut lines = String::new();
    let mut truth = BTreeMap::new();
    let mut n = 0u64;
    for day in 0..REPORTS + LIFE_DAYS {
        let noon = YEAR_START_MS + day * DAY_MS + DAY_MS / 2;
        for i in (day - LIFE_DAYS + 1).max(0)..=day.min(REPORTS - 1) {
            let event = serde_json::json!({
                "Id": format!("e0000000-0000-4000-8000-{n:012x}"), "CreationTime": iso(noon),
                "Activity": "ViewReport", "UserId": format!("u{}@contoso.com", n % 7),
                "WorkspaceId": WORKSPACE, "WorkSpaceName": "Churn",
                "ReportId": report_id(i), "ReportName": format!("Report {i}"),
            });
            lines.push_str(&event.to_string());
            lines.push('\n');
            n += 1;
            let entry = truth.entry(i).or_insert((noon, 0));
            *entry = (noon, entry.1 + 1);
        }
    }
    std::fs::write(path, lines).unwrap();
    truth
}

#[test]
fn a_year_of_report_churn_never_overflows_while_live_reports_fit_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let truth = write_year(&dir.path().join("year.jsonl"));
    let caps = [
        format!("powerbi_report_events_total={CAP}"),
        format!("powerbi_report_info={CAP}"),
        format!("powerbi_report_last_view_timestamp_seconds={CAP}"),
        format!("powerbi_report_viewers={}", 2 * CAP),
    ];
    let mut args = vec![
        "--once",
        "--replay",
        dir.path().to_str().unwrap(),
        "--limits.series-retention",
        "35d",
    ];
    for cap in &caps {
        args.extend(["--limits.max-series", cap.as_str()]);
    }
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = samples(&stdout(&out));
    let events: u64 = truth.values().map(|(_, n)| n).sum();
    assert_eq!(s["powerbi_events_processed_total"], events as f64);
    let rejected = family(&s, "powerbi_events_rejected_total");
    assert!(rejected.values().all(|v| *v == 0.0), "{rejected:#?}");

    // Nothing ever went to __other__: every sample past a cap is counted here.
    let dropped = family(&s, "powerbi_series_dropped_total");
    assert!(dropped.values().all(|v| *v == 0.0), "{dropped:#?}");

    // Kept: reports whose last view lies within the retention before the newest event.
    let newest = truth.values().map(|(t, _)| *t).max().unwrap();
    let kept = |last: i64| newest - last <= RETENTION_DAYS * DAY_MS;
    let expected: BTreeMap<String, f64> = truth
        .iter()
        .filter(|(_, (last, _))| kept(*last))
        .map(|(i, (_, views))| {
            (
                format!(
                    r#"{{workspace_id="{WORKSPACE}",report_id="{}",activity="ViewReport"}}"#,
                    report_id(*i)
                ),
                *views as f64,
            )
        })
        .collect();
    assert_eq!(family(&s, "powerbi_report_events_total"), expected);
    let live = expected.len();
    assert!(
        live < CAP,
        "the test keeps live reports below the cap ({live})"
    );

    let gone = truth.values().filter(|(last, _)| !kept(*last)).count() as f64;
    let expired = family(&s, "powerbi_series_expired_total");
    let of = |f: &str| expired[&format!(r#"{{family="{f}"}}"#)];
    assert_eq!(of("powerbi_report_events_total"), gone);
    assert_eq!(of("powerbi_report_info"), gone);
    assert_eq!(of("powerbi_report_last_view_timestamp_seconds"), gone);
    assert_eq!(
        of("powerbi_report_viewers"),
        2.0 * gone,
        "two windows a report"
    );
    assert_eq!(
        of("powerbi_activity_events_total"),
        0.0,
        "the workspace is in use"
    );
    assert_eq!(family(&s, "powerbi_report_info").len(), live);
    assert_eq!(
        family(&s, "powerbi_report_last_view_timestamp_seconds").len(),
        live
    );
}

/// The same year through the aggregator itself: the interned report ids are released with
/// their series, so the state holds at most the cap of report ids, not one per report ever
/// seen; and a state saved mid-year and restored goes on exactly like the one that was not.
#[test]
fn expired_report_ids_are_released_so_the_state_stays_bounded() {
    use powerbi_exporter::aggregate::{AggregateConfig, Aggregator, Reference};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("year.jsonl");
    let truth = write_year(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut config = AggregateConfig::default();
    for family in [
        "powerbi_report_events_total",
        "powerbi_report_info",
        "powerbi_report_last_view_timestamp_seconds",
    ] {
        config.limits.max_series.insert(family.into(), CAP);
    }
    config
        .limits
        .max_series
        .insert("powerbi_report_viewers".into(), 2 * CAP);
    let mut whole = Aggregator::new(&config);
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let feed = |agg: &mut Aggregator, part: &[&str]| {
        powerbi_exporter::decode::decode_slice(part.join("\n").as_bytes(), agg).unwrap();
    };
    feed(&mut whole, first);
    let saved = serde_json::to_string(&whole.export()).unwrap();
    feed(&mut whole, second);
    let mut resumed = Aggregator::import(&config, serde_json::from_str(&saved).unwrap());
    feed(&mut resumed, second);

    let state = serde_json::to_value(whole.export()).unwrap();
    let names = state["reports"].as_array().unwrap();
    assert!(
        names.len() <= CAP,
        "{} slots for {} reports",
        names.len(),
        truth.len()
    );
    let released: Vec<usize> =
        serde_json::from_value(state["expiry"]["released_reports"].clone()).unwrap();
    let held: std::collections::BTreeSet<String> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| !released.contains(i))
        .map(|(_, n)| n.as_str().unwrap().to_string())
        .collect();
    let newest = truth.values().map(|(t, _)| *t).max().unwrap();
    let live: std::collections::BTreeSet<String> = truth
        .iter()
        .filter(|(_, (last, _))| newest - last <= RETENTION_DAYS * DAY_MS)
        .map(|(i, _)| report_id(*i))
        .collect();
    assert_eq!(held, live, "the ids held are the reports still in use");
    let at = Reference::NewestEvent;
    assert_eq!(whole.snapshot(at), resumed.snapshot(at));
}

/// `--limits.series-retention` (file key `limits.series_retention`): at least 29 days (the
/// 28-day windows span 29 UTC days) and at least the dedup window; else exit 2 naming it.
#[test]
fn the_retention_is_a_setting_longer_than_the_longest_window() {
    let fixtures = fixtures();
    let replay = fixtures.to_str().unwrap();
    let out = run(&[
        "check-config",
        "--replay",
        replay,
        "--limits.series-retention",
        "28d",
    ]);
    assert_exit_2_naming(
        &out,
        &["flag --limits.series-retention 28d", "at least 29d"],
    );
    let out = run(&[
        "check-config",
        "--replay",
        replay,
        "--dedup.window",
        "60d",
        "--limits.series-retention",
        "40d",
    ]);
    assert_exit_2_naming(
        &out,
        &["flag --limits.series-retention 40d", "at least 60d"],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yaml");
    std::fs::write(&file, "limits:\n  series_retention: 7d\n").unwrap();
    let out = run(&[
        "check-config",
        "--replay",
        replay,
        "--config.file",
        file.to_str().unwrap(),
    ]);
    assert_exit_2_naming(&out, &["config key `limits.series_retention` 7d"]);
    for (extra, shown) in [
        (
            &["--replay", replay][..],
            "limits.series_retention: (none: a replay keeps every series)",
        ),
        (&["--demo"][..], "limits.series_retention: 35d"),
        (
            &["--replay", replay, "--limits.series-retention", "90d"][..],
            "limits.series_retention: 90d",
        ),
    ] {
        let mut args = vec!["check-config"];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stdout(&out).contains(shown), "{shown} in {}", stdout(&out));
    }
}
