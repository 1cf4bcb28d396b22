//! Scoping filters: events generated here in known categories, replayed with filters from
//! flags and from the config file; every filtered event is counted under its reason and the
//! rest are counted exactly.

use serde_json::json;

use crate::support::*;

/// (workspace id, name), user, user type, activity — and the reason expected with the
/// filters of [`FLAGS`] (`None`: counted).
type Case = (
    Option<(&'static str, &'static str)>,
    &'static str,
    Option<i64>,
    &'static str,
    Option<&'static str>,
);

const EVENTS: &[Case] = &[
    (
        Some(("w-sales", "Sales EMEA")),
        "ana@contoso.com",
        Some(0),
        "ViewReport",
        None,
    ),
    (
        Some(("w-sales", "Sales EMEA")),
        "ben@contoso.com",
        Some(0),
        "ExportReport",
        None,
    ),
    (
        Some(("w-fin", "Finance")),
        "ana@contoso.com",
        Some(0),
        "ViewReport",
        Some("workspace"),
    ),
    (
        Some(("w-sbx", "Sales Sandbox")),
        "ana@contoso.com",
        Some(0),
        "ViewReport",
        Some("workspace"),
    ),
    (
        Some(("w-me", "My workspace")),
        "ana@contoso.com",
        Some(0),
        "ViewReport",
        Some("workspace"),
    ),
    (
        Some(("w-sales", "Sales EMEA")),
        "SVC-Refresh@contoso.com",
        Some(0),
        "RefreshDataset",
        Some("user"),
    ),
    (
        Some(("w-sales", "Sales EMEA")),
        "0b9c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d",
        None,
        "RefreshDataset",
        Some("service_principal"),
    ),
    (
        Some(("w-sales", "Sales EMEA")),
        "app@contoso.com",
        Some(6),
        "ViewReport",
        Some("service_principal"),
    ),
    (
        Some(("w-sales", "Sales EMEA")),
        "ana@contoso.com",
        Some(0),
        "ViewTile",
        Some("activity"),
    ),
    (
        None,
        "admin@contoso.com",
        Some(2),
        "UpdatedAdminFeatureSwitch",
        None,
    ),
    (
        None,
        "ana@contoso.com",
        Some(0),
        "GetSnapshots",
        Some("activity"),
    ),
];

const FLAGS: &[&str] = &[
    "--filter.include-workspace",
    "Sales.*",
    "--filter.exclude-workspace",
    "Sales Sandbox",
    "--filter.exclude-user",
    r"svc-.*@contoso\.com",
    "--filter.exclude-service-principals",
    "--filter.exclude-activity",
    "ViewTile|GetSnapshots",
];

fn write_events(dir: &std::path::Path) -> std::path::PathBuf {
    let lines: String = EVENTS
        .iter()
        .enumerate()
        .map(|(i, (ws, user, user_type, activity, _))| {
            let mut e = json!({"Id": format!("f0000000-0000-4000-8000-{i:012}"),
                "CreationTime": format!("2026-11-20T10:{i:02}:00"), "Activity": activity, "UserId": user});
            if let Some((id, name)) = ws {
                e["WorkspaceId"] = json!(id);
                e["WorkSpaceName"] = json!(name);
            }
            if let Some(t) = user_type {
                e["UserType"] = json!(t);
            }
            format!("{e}\n")
        })
        .collect();
    let path = dir.join("events.jsonl");
    // Every event twice: a re-read filtered event is a duplicate, not filtered again.
    std::fs::write(&path, format!("{lines}{lines}")).unwrap();
    path
}

fn expected_filtered(reason: &str) -> f64 {
    EVENTS.iter().filter(|e| e.4 == Some(reason)).count() as f64
}

fn check(s: &std::collections::BTreeMap<String, f64>) {
    let filtered = family(s, "powerbi_events_filtered_total");
    for reason in [
        "workspace",
        "personal_workspace",
        "user",
        "service_principal",
        "activity",
    ] {
        assert_eq!(
            filtered[&format!(r#"{{reason="{reason}"}}"#)],
            expected_filtered(reason),
            "{reason}"
        );
    }
    assert_eq!(filtered[r#"{reason="own_export"}"#], 0.0);
    let counted = family(s, "powerbi_activity_events_total");
    let mut expected = std::collections::BTreeMap::new();
    for (ws, _, _, activity, reason) in EVENTS {
        if reason.is_none() {
            let id = ws.map_or("", |w| w.0);
            *expected
                .entry(format!(r#"{{workspace_id="{id}",activity="{activity}"}}"#))
                .or_insert(0.0) += 1.0;
        }
    }
    assert_eq!(counted, expected);
    let n = EVENTS.len() as f64;
    assert_eq!(s["powerbi_events_processed_total"], 2.0 * n);
    assert_eq!(s["powerbi_events_duplicate_total"], n);
    assert_eq!(
        counted.values().sum::<f64>() + filtered.values().sum::<f64>(),
        n,
        "processed = counted + duplicate + filtered"
    );
}

#[test]
fn filters_from_flags_count_what_they_leave_out() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_events(dir.path());
    let mut args = vec!["--once", "--replay", events.to_str().unwrap()];
    args.extend_from_slice(FLAGS);
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    check(&samples(&stdout(&out)));
}

#[test]
fn filters_from_the_config_file_do_the_same_and_personal_workspaces_have_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_events(dir.path());
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        "filters:\n  include_workspaces: ['Sales.*', 'w-me']\n  exclude_workspaces: ['Sales Sandbox']\n  exclude_personal_workspaces: true\n  exclude_users: ['svc-.*@contoso\\.com']\n  exclude_service_principals: true\n  exclude_activities: ['ViewTile|GetSnapshots']\n",
    )
    .unwrap();
    let out = run(&[
        "--once",
        "--replay",
        events.to_str().unwrap(),
        "--config.file",
        config.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = samples(&stdout(&out));
    let filtered = family(&s, "powerbi_events_filtered_total");
    // "My workspace" is now included by id, then left out as personal.
    assert_eq!(filtered[r#"{reason="personal_workspace"}"#], 1.0);
    assert_eq!(
        filtered[r#"{reason="workspace"}"#],
        expected_filtered("workspace") - 1.0
    );
}

#[test]
fn a_bad_pattern_exits_2_naming_it() {
    let out = run(&[
        "--once",
        "--replay",
        fixtures().to_str().unwrap(),
        "--filter.exclude-user",
        "(unclosed",
        "--filter.include-activity",
        "ok",
    ]);
    assert_exit_2_naming(
        &out,
        &[
            "filters: \"(unclosed\" is not a valid regular expression",
            "1 problem",
        ],
    );
}
