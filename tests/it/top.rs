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

/// `top --item-type semantic_model`: the models ranked by views of reports built on them
/// (ViewReport with the model's DatasetId), the truth counted here from the raw events; and
/// `--item-type lakehouse` (an ArtifactKind spelling) ranks Fabric items by events about them.
#[test]
fn top_ranks_semantic_models_by_the_views_of_their_reports_and_fabric_items_by_events() {
    use serde_json::{json, Value};
    use std::collections::{BTreeMap, BTreeSet};

    let model = |m: usize| format!("5760cb34-a245-4eb7-a4e3-{m:012}");
    let mut events: Vec<Value> = Vec::new();
    for n in 0..40usize {
        let m = [0, 1, 1, 2, 2, 2][n % 6];
        let activity = if n % 5 == 4 {
            "ExportReport"
        } else {
            "ViewReport"
        };
        events.push(
            json!({"Id": format!("view-{n}"), "CreationTime": format!("2026-11-20T10:{n:02}:00"),
            "Activity": activity, "WorkspaceId": "w1", "WorkSpaceName": "Sales",
            "UserId": format!("user{}@contoso.com", n % 4), "ReportId": format!("r{}", n % 3),
            "DatasetId": model(m), "DatasetName": format!("Model {m}")}),
        );
        if n % 4 == 0 {
            events.push(json!({"Id": format!("lake-{n}"), "CreationTime": format!("2026-11-20T11:{n:02}:00"),
                "Activity": "ReadArtifact", "WorkspaceId": "w1", "UserId": "ana@contoso.com",
                "ArtifactId": format!("lake-{}", n % 3), "ArtifactName": format!("Lake {}", n % 3),
                "ArtifactKind": "Lakehouse"}));
        }
    }
    // A duplicate counts once.
    events.push(events[0].clone());
    let dir = tempfile::tempdir().unwrap();
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(dir.path().join("events.jsonl"), lines).unwrap();

    // The truth: views and distinct viewers per model, from the raw JSON, each Id once.
    let mut seen = BTreeSet::new();
    let mut views: BTreeMap<String, (u64, BTreeSet<String>, String)> = BTreeMap::new();
    for e in &events {
        if !seen.insert(e["Id"].as_str().unwrap().to_string()) || e["Activity"] != "ViewReport" {
            continue;
        }
        let entry = views
            .entry(e["DatasetId"].as_str().unwrap().to_string())
            .or_default();
        entry.0 += 1;
        entry.1.insert(e["UserId"].as_str().unwrap().to_string());
        entry.2 = e["DatasetName"].as_str().unwrap().to_string();
    }
    let mut ranked: Vec<_> = views.into_iter().collect();
    ranked.sort_by_key(|(_, (n, users, _))| std::cmp::Reverse((*n, users.len())));
    let mut expected = String::from(
        "rank,workspace_id,workspace_name,semantic_model_id,semantic_model_name,views,distinct_viewers\n",
    );
    for (i, (id, (n, users, name))) in ranked.iter().enumerate() {
        expected.push_str(&format!(
            "{},w1,Sales,{id},{name},{n},{}\n",
            i + 1,
            users.len()
        ));
    }

    let csv = dir.path().join("models.csv");
    let path = dir.path().to_str().unwrap();
    let out = run(&[
        "top",
        "--replay",
        path,
        "--item-type",
        "semantic_model",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), expected);
    assert!(stdout(&out).starts_with("RANK  WORKSPACE  SEMANTIC MODEL  VIEWS  VIEWERS\n"));
    assert!(
        stderr(&out).ends_with("; 3 semantic models shown.\n"),
        "{}",
        stderr(&out)
    );

    let out = run(&["top", "--replay", path, "--item-type", "Lakehouse"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lake_events = |id: &str| events.iter().filter(|e| e["ArtifactId"] == id).count();
    assert_eq!(
        stdout(&out),
        format!(
            "\
RANK  WORKSPACE  LAKEHOUSE  EVENTS  USERS
1     Sales      Lake 0          {}      1
2     Sales      Lake 1          {}      1
3     Sales      Lake 2          {}      1
",
            lake_events("lake-0"),
            lake_events("lake-1"),
            lake_events("lake-2")
        )
    );
}
