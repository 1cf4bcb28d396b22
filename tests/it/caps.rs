use crate::support::*;

/// 10 reports of one workspace with 1..=10 views each, in one page, in order.
fn ten_reports(dir: &std::path::Path) -> u64 {
    let mut events = Vec::new();
    let mut n = 0;
    for r in 0..10u64 {
        for _ in 0..=r {
            events.push(serde_json::json!({"Id": format!("ca000000-0000-4000-8000-{n:012}"), "CreationTime": "2026-11-20T10:00:00",
                "Activity": "ViewReport", "WorkspaceId": "ws-1", "WorkSpaceName": "One", "ReportId": format!("report-{r:02}"),
                "ReportName": format!("Report {r}"), "UserId": format!("u{r}@contoso.com")}));
            n += 1;
        }
    }
    std::fs::write(
        dir.join("page.json"),
        serde_json::json!({"activityEventEntities": events}).to_string(),
    )
    .unwrap();
    n
}

#[test]
fn past_the_cap_label_sets_go_to_one_overflow_series_and_totals_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let total = ten_reports(dir.path());
    let out = run(&[
        "--once",
        "--replay",
        dir.path().to_str().unwrap(),
        "--limits.max-series",
        "powerbi_report_events_total=4",
        "--limits.max-series=powerbi_report_info=3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = samples(&stdout(&out));

    let reports = family(&s, "powerbi_report_events_total");
    let mut expected: std::collections::BTreeMap<String, f64> = (0..4)
        .map(|r| {
            (
                format!(
                    r#"{{workspace_id="ws-1",report_id="report-{r:02}",activity="ViewReport"}}"#
                ),
                (r + 1) as f64,
            )
        })
        .collect();
    let overflow = (total - (1 + 2 + 3 + 4)) as f64;
    expected.insert(
        r#"{workspace_id="__other__",report_id="__other__",activity="__other__"}"#.into(),
        overflow,
    );
    assert_eq!(reports, expected);
    assert_eq!(reports.values().sum::<f64>(), total as f64);
    assert_eq!(
        s[r#"powerbi_series_dropped_total{family="powerbi_report_events_total"}"#],
        overflow
    );

    let info = family(&s, "powerbi_report_info");
    assert_eq!(info.len(), 4, "3 reports and the overflow series: {info:?}");
    assert_eq!(
        info[r#"{report_id="__other__",report_name="__other__",workspace_id="__other__"}"#],
        1.0
    );
    // Reports 3..=9 name themselves once per view: 4+5+…+10 = 49 samples over the cap.
    assert_eq!(
        s[r#"powerbi_series_dropped_total{family="powerbi_report_info"}"#],
        49.0
    );
    // Families under their caps are untouched.
    assert_eq!(
        s[r#"powerbi_activity_events_total{workspace_id="ws-1",activity="ViewReport"}"#],
        total as f64
    );
    assert_eq!(
        s[r#"powerbi_series_dropped_total{family="powerbi_activity_events_total"}"#],
        0.0
    );
}
