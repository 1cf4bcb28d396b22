//! Events generated here with known counts, written as an API page, a JSON array and JSON
//! Lines, then replayed with `--once`: every family must equal the counts kept while
//! generating (which do not use the exporter's code).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::support::*;

const REPORT_ACTIVITIES: [&str; 3] = ["ViewReport", "ExportReport", "ShareReport"];
const USERS: [&str; 5] = [
    "ana@contoso.com",
    "ben@contoso.com",
    "cy@contoso.com",
    "dee@fabrikam.com",
    "eve@contoso.com",
];

#[derive(Default)]
struct Truth {
    activity: BTreeMap<(String, String), u64>,
    failed: BTreeMap<(String, String), u64>,
    report: BTreeMap<(String, String, String), u64>,
    users: BTreeSet<String>,
    ws_users: BTreeMap<String, BTreeSet<String>>,
    /// Unix seconds of the newest ViewReport per report, newest event per workspace, and
    /// earliest event per activity.
    last_view: BTreeMap<String, u64>,
    viewers: BTreeMap<String, BTreeSet<String>>,
    ws_last: BTreeMap<String, u64>,
    first_seen: BTreeMap<String, u64>,
    /// Unix seconds of the newest RefreshDataset per model and outcome (`{item_id,outcome}`).
    last_refresh: BTreeMap<String, u64>,
    events: Vec<Value>,
}

/// 2026-11-20T00:00:00Z.
const DAY_START: u64 = 1_795_132_800;

fn ws_id(w: usize) -> String {
    format!("0000000{w}-aaaa-4aaa-8aaa-00000000000{w}")
}

fn report_id(w: usize, r: usize) -> String {
    format!("0000000{w}-bbbb-4bbb-8bbb-00000000000{r}")
}

impl Truth {
    fn event(
        &mut self,
        activity: &str,
        ws: Option<usize>,
        report: Option<usize>,
        user: usize,
        ok: bool,
    ) {
        let n = self.events.len();
        // 2026-11-20T00:00:00 plus n minutes; every other one with the Z the raw API omits.
        let time = format!(
            "2026-11-20T{:02}:{:02}:00{}",
            n / 60,
            n % 60,
            if n % 2 == 0 { "Z" } else { "" }
        );
        // The same user in upper and lower case is one user.
        let user_id = if n % 3 == 0 {
            USERS[user].to_uppercase()
        } else {
            USERS[user].to_string()
        };
        let secs = DAY_START + 60 * n as u64;
        let first = self.first_seen.entry(activity.to_string()).or_insert(secs);
        *first = (*first).min(secs);
        let mut e = json!({"Id": format!("e0e0e0e0-0000-4000-8000-{n:012}"), "CreationTime": time,
            "Activity": activity, "Operation": activity, "UserId": user_id, "IsSuccess": ok, "RecordType": 20});
        let wid = ws.map(ws_id).unwrap_or_default();
        if let Some(w) = ws {
            e["WorkspaceId"] = json!(wid);
            e[if n % 2 == 0 {
                "WorkSpaceName"
            } else {
                "WorkspaceName"
            }] = json!(format!("Workspace {w}"));
            self.ws_users
                .entry(wid.clone())
                .or_default()
                .insert(USERS[user].to_string());
            self.ws_last.insert(wid.clone(), secs);
        }
        if let (Some(w), "RefreshDataset") = (ws, activity) {
            let model = format!("0000000{w}-dddd-4ddd-8ddd-000000000000");
            e["DatasetId"] = json!(model);
            let outcome = if ok { "success" } else { "failure" };
            let key = format!(r#"{{item_id="{model}",outcome="{outcome}"}}"#);
            let last = self.last_refresh.entry(key).or_default();
            *last = (*last).max(secs);
        }
        if let (Some(w), Some(r)) = (ws, report) {
            e["ReportId"] = json!(report_id(w, r));
            e["ReportName"] = json!(format!("Report {w}.{r}"));
            if activity == "ViewReport" {
                self.last_view.insert(report_id(w, r), secs);
                self.viewers
                    .entry(report_id(w, r))
                    .or_default()
                    .insert(USERS[user].to_string());
            }
            *self
                .report
                .entry((wid.clone(), report_id(w, r), activity.to_string()))
                .or_default() += 1;
        }
        *self
            .activity
            .entry((wid.clone(), activity.to_string()))
            .or_default() += 1;
        if !ok {
            *self.failed.entry((wid, activity.to_string())).or_default() += 1;
        }
        self.users.insert(USERS[user].to_string());
        self.events.push(e);
    }
}

fn labels2(k: &(String, String)) -> String {
    format!(r#"{{workspace_id="{}",activity="{}"}}"#, k.0, k.1)
}

#[test]
fn every_family_equals_the_generated_ground_truth() {
    let mut t = Truth::default();
    for w in 0..3 {
        for r in 0..2 {
            for (a, activity) in REPORT_ACTIVITIES.iter().enumerate() {
                for i in 0..(1 + (w * 7 + r * 3 + a) % 5) {
                    t.event(
                        activity,
                        Some(w),
                        Some(r),
                        (w + r + i) % 5,
                        !(a == 1 && i % 2 == 1),
                    );
                }
            }
        }
        for i in 0..=w {
            t.event("RefreshDataset", Some(w), None, (i + 3) % 5, i != 1);
        }
    }
    for i in 0..3 {
        t.event("GetSnapshots", None, None, i, true);
    }
    let unique = t.events.len();
    let duplicates: Vec<Value> = t.events.iter().step_by(5).cloned().collect();
    let malformed = [
        json!({"CreationTime": "2026-11-20T01:00:00", "Activity": "ViewReport"}),
        json!({"Id": "", "CreationTime": "2026-11-20T01:00:00", "Activity": "ViewReport"}),
        json!("not an event"),
        json!({"Id": "bad-time", "CreationTime": "2026-11-31T01:00:00", "Activity": "ViewReport"}),
        json!({"Id": "no-activity", "CreationTime": "2026-11-20T01:00:00"}),
    ];

    let dir = tempfile::tempdir().unwrap();
    let third = unique / 3;
    let mut page_events: Vec<Value> = t.events[..third].to_vec();
    page_events.extend(malformed.iter().cloned());
    page_events.reverse(); // pages are unordered
    let page = json!({"activityEventEntities": page_events, "continuationUri": null, "continuationToken": null, "lastResultSet": false});
    std::fs::write(dir.path().join("a-page.json"), page.to_string()).unwrap();
    let mut array = serde_json::to_string_pretty(&t.events[third..2 * third]).unwrap();
    // One element that is not valid JSON: rejected alone, the rest of the array still counts.
    array = array.replacen('[', "[{\"Id\": tru},", 1);
    std::fs::write(dir.path().join("b-array.json"), array).unwrap();
    let lines: String = t.events[2 * third..]
        .iter()
        .chain(&duplicates)
        .map(|e| format!("{e}\n"))
        .collect();
    std::fs::write(dir.path().join("c-lines.jsonl"), lines).unwrap();

    let out = run(&["--once", "--replay", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = samples(&stdout(&out));

    let expected: BTreeMap<String, f64> = t
        .activity
        .iter()
        .map(|(k, v)| (labels2(k), *v as f64))
        .collect();
    assert_eq!(family(&s, "powerbi_activity_events_total"), expected);
    let expected: BTreeMap<String, f64> = t
        .failed
        .iter()
        .map(|(k, v)| (labels2(k), *v as f64))
        .collect();
    assert_eq!(family(&s, "powerbi_activity_events_failed_total"), expected);
    let expected: BTreeMap<String, f64> = t
        .report
        .iter()
        .map(|((w, r, a), v)| {
            (
                format!(r#"{{workspace_id="{w}",report_id="{r}",activity="{a}"}}"#),
                *v as f64,
            )
        })
        .collect();
    assert_eq!(family(&s, "powerbi_report_events_total"), expected);
    let expected: BTreeMap<String, f64> = (0..3)
        .map(|w| {
            (
                format!(
                    r#"{{workspace_id="{}",workspace_name="Workspace {w}",type="",capacity_id=""}}"#,
                    ws_id(w)
                ),
                1.0,
            )
        })
        .collect();
    assert_eq!(family(&s, "powerbi_workspace_info"), expected);
    let expected: BTreeMap<String, f64> = (0..3)
        .flat_map(|w| {
            (0..2).map(move |r| {
                (
                    format!(
                        r#"{{report_id="{}",report_name="Report {w}.{r}",workspace_id="{}"}}"#,
                        report_id(w, r),
                        ws_id(w)
                    ),
                    1.0,
                )
            })
        })
        .collect();
    assert_eq!(family(&s, "powerbi_report_info"), expected);
    let users = t.users.len() as f64;
    let expected: BTreeMap<String, f64> = ["1d", "28d", "7d"]
        .iter()
        .map(|w| (format!(r#"{{window="{w}"}}"#), users))
        .collect();
    assert_eq!(family(&s, "powerbi_active_users"), expected);
    let expected: BTreeMap<String, f64> = t
        .ws_users
        .iter()
        .flat_map(|(w, u)| {
            ["1d", "28d", "7d"].map(|win| {
                (
                    format!(r#"{{workspace_id="{w}",window="{win}"}}"#),
                    u.len() as f64,
                )
            })
        })
        .collect();
    assert_eq!(family(&s, "powerbi_workspace_active_users"), expected);

    let stamps = |m: &BTreeMap<String, u64>, label: &str| -> BTreeMap<String, f64> {
        m.iter()
            .map(|(k, v)| (format!(r#"{{{label}="{k}"}}"#), *v as f64))
            .collect()
    };
    assert_eq!(
        family(&s, "powerbi_report_last_view_timestamp_seconds"),
        stamps(&t.last_view, "report_id")
    );
    assert_eq!(
        family(&s, "powerbi_workspace_last_activity_timestamp_seconds"),
        stamps(&t.ws_last, "workspace_id")
    );
    assert_eq!(
        family(&s, "powerbi_activity_first_seen_timestamp_seconds"),
        stamps(&t.first_seen, "activity")
    );
    let last_refresh: BTreeMap<String, f64> = (t.last_refresh.iter())
        .map(|(k, v)| (k.clone(), *v as f64))
        .collect();
    assert_eq!(
        family(&s, "powerbi_semantic_model_last_refresh_timestamp_seconds"),
        last_refresh
    );

    // Every event falls on one UTC day: both windows hold every viewer.
    let expected: BTreeMap<String, f64> = t
        .viewers
        .iter()
        .flat_map(|(r, users)| {
            ["28d", "7d"].map(|w| {
                (
                    format!(r#"{{report_id="{r}",window="{w}"}}"#),
                    users.len() as f64,
                )
            })
        })
        .collect();
    assert_eq!(family(&s, "powerbi_report_viewers"), expected);

    let read = unique + duplicates.len() + malformed.len() + 1;
    assert_eq!(s["powerbi_events_processed_total"], read as f64);
    assert_eq!(s["powerbi_events_duplicate_total"], duplicates.len() as f64);
    let rejected = family(&s, "powerbi_events_rejected_total");
    for (reason, n) in [
        ("missing_id", 2.0),
        ("not_an_object", 1.0),
        ("invalid_time", 1.0),
        ("missing_activity", 1.0),
        ("invalid_json", 1.0),
        ("missing_time", 0.0),
        ("outside_dedup_window", 0.0),
    ] {
        assert_eq!(
            rejected[&format!(r#"{{reason="{reason}"}}"#)],
            n,
            "{reason}"
        );
    }
    assert_eq!(s["powerbi_pages_processed_total"], 3.0);
    assert_eq!(s["powerbi_pages_failed_total"], 0.0);
    assert!(family(&s, "powerbi_series_dropped_total")
        .values()
        .all(|v| *v == 0.0));
}
