use crate::support::*;

#[test]
fn top_ranks_the_fixture_reports_and_writes_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("top.csv");
    let out = run(&[
        "top",
        "--replay",
        fixtures().to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "\
RANK  WORKSPACE          REPORT                VIEWS  VIEWERS
1     Finance Reporting  Revenue Overview          5        3
2     Sales Analytics    Pipeline Review FY27      3        2
3     HR Insights        Headcount                 2        2
"
    );
    assert_eq!(
        stderr(&out),
        "21 events read: 2 duplicates and 3 rejected skipped; 3 reports shown.\n"
    );
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "\
rank,workspace_id,workspace_name,report_id,report_name,views,distinct_viewers
1,76ff029b-0d74-4d6f-b215-3737138f6b7c,Finance Reporting,45287375-f8fe-40c9-9258-06c1b94eea91,Revenue Overview,5,3
2,f95b8b6f-ac8f-4d3c-baa0-f46d7e254acf,Sales Analytics,7ba2c5de-f72b-49f4-a146-8bc5de3e093d,Pipeline Review FY27,3,2
3,c0ffee00-1111-4222-8333-444455556666,HR Insights,0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d,Headcount,2,2
"
    );
}

#[test]
fn top_counts_another_activity_case_insensitively_with_a_limit() {
    let out = run(&[
        "top",
        "--replay",
        fixtures().to_str().unwrap(),
        "--activity",
        "exportreport",
        "--limit",
        "1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "\
RANK  WORKSPACE          REPORT            EVENTS  USERS
1     Finance Reporting  Revenue Overview       2      2
"
    );
}
