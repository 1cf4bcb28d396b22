//! The item families (issue 18): an archive written here, with events of every item kind
//! shaped like Microsoft's examples, duplicates and failures, replayed with `--once`. Every
//! item family must equal the truth computed here from the raw JSON. Which item each event
//! is about is written beside it by hand (the README's item rule), not computed by the
//! exporter's code.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::support::*;

/// 2026-11-20T00:00:00Z.
const DAY_START: u64 = 1_795_132_800;

/// The item an event is about: `(item_type, id field, name field)` as written in the JSON.
type About = Option<(&'static str, &'static str, &'static str)>;

/// One kind of event: its activity, the id fields it carries (by pool), and the item it is
/// about: `(item_type, id field, name field)` as written in the JSON.
struct Shape {
    activity: &'static str,
    /// `(id field, name field, pool)`: the fields the event carries; the pool names the ids.
    fields: &'static [(&'static str, Option<&'static str>, Pool)],
    artifact_kind: Option<&'static str>,
    about: About,
}

/// Where an id comes from: the same pool gives the same ids to different shapes (the model
/// a report is built on is the model that is refreshed).
#[derive(Clone, Copy)]
enum Pool {
    Report,
    Model,
    Dashboard,
    Dataflow,
    App,
    Lakehouse,
    Notebook,
    Warehouse,
    Pipeline,
    Kql,
}

impl Pool {
    fn id(self, v: usize) -> String {
        format!("{:08x}-0000-4000-8000-{v:012}", self as u32 + 1)
    }

    fn name(self, v: usize, renamed: bool) -> String {
        let base = match self {
            Pool::Report => "Report",
            Pool::Model => "Model",
            Pool::Dashboard => "Board",
            Pool::Dataflow => "Flow",
            Pool::App => "App",
            Pool::Lakehouse => "Lake",
            Pool::Notebook => "Notes",
            Pool::Warehouse => "Store",
            Pool::Pipeline => "Pipe",
            Pool::Kql => "Logs",
        };
        if renamed {
            format!("{base} {v} (renamed)")
        } else {
            format!("{base} {v}")
        }
    }
}

use Pool::*;

const SHAPES: &[Shape] = &[
    // A report view names its model: a use of the model too.
    Shape {
        activity: "ViewReport",
        fields: &[
            ("ReportId", Some("ReportName"), Report),
            ("DatasetId", Some("DatasetName"), Model),
        ],
        artifact_kind: None,
        about: Some(("report", "ReportId", "ReportName")),
    },
    // The shape of Microsoft's app view (Admin - Get Activity Events, "…for a specific
    // activity type example"): ReportId, ArtifactId (the same id), ArtifactKind Report,
    // DatasetId and AppName.
    Shape {
        activity: "ViewReport",
        fields: &[
            ("ReportId", Some("ReportName"), Report),
            ("ArtifactId", Some("ArtifactName"), Report),
            ("DatasetId", Some("DatasetName"), Model),
            ("AppId", Some("AppName"), App),
        ],
        artifact_kind: Some("Report"),
        about: Some(("report", "ArtifactId", "ArtifactName")),
    },
    Shape {
        activity: "RefreshDataset",
        fields: &[
            ("DatasetId", Some("DatasetName"), Model),
            ("ReportId", Some("ReportName"), Report),
        ],
        artifact_kind: None,
        about: Some(("semantic_model", "DatasetId", "DatasetName")),
    },
    Shape {
        activity: "EditDataset",
        fields: &[
            ("ReportId", None, Report),
            ("DatasetId", Some("DatasetName"), Model),
        ],
        artifact_kind: None,
        about: Some(("semantic_model", "DatasetId", "DatasetName")),
    },
    Shape {
        activity: "ViewDashboard",
        fields: &[("DashboardId", Some("DashboardName"), Dashboard)],
        artifact_kind: None,
        about: Some(("dashboard", "DashboardId", "DashboardName")),
    },
    Shape {
        activity: "ViewTile",
        fields: &[
            ("DashboardId", Some("DashboardName"), Dashboard),
            ("ReportId", None, Report),
            ("DatasetId", None, Model),
        ],
        artifact_kind: None,
        about: Some(("dashboard", "DashboardId", "DashboardName")),
    },
    Shape {
        activity: "ExportDataflow",
        fields: &[("DataflowId", Some("DataflowName"), Dataflow)],
        artifact_kind: None,
        about: Some(("dataflow", "DataflowId", "DataflowName")),
    },
    Shape {
        activity: "InstallApp",
        fields: &[("AppId", Some("AppName"), App)],
        artifact_kind: None,
        about: Some(("app", "AppId", "AppName")),
    },
    Shape {
        activity: "ReadArtifact",
        fields: &[("ArtifactId", Some("ArtifactName"), Lakehouse)],
        artifact_kind: Some("Lakehouse"),
        about: Some(("lakehouse", "ArtifactId", "ArtifactName")),
    },
    Shape {
        activity: "RunArtifact",
        fields: &[("ArtifactId", Some("ArtifactName"), Notebook)],
        artifact_kind: Some("Notebook"),
        about: Some(("notebook", "ArtifactId", "ArtifactName")),
    },
    Shape {
        activity: "ViewWarehouse",
        fields: &[("ArtifactId", Some("ArtifactName"), Warehouse)],
        artifact_kind: Some("Warehouse"),
        about: Some(("warehouse", "ArtifactId", "ArtifactName")),
    },
    Shape {
        activity: "RunArtifact",
        fields: &[("ArtifactId", Some("ArtifactName"), Pipeline)],
        artifact_kind: Some("DataPipeline"),
        about: Some(("data_pipeline", "ArtifactId", "ArtifactName")),
    },
    // A kind the exporter has no name for: counted under its own, in snake case.
    Shape {
        activity: "CreateArtifact",
        fields: &[("ArtifactId", Some("ArtifactName"), Kql)],
        artifact_kind: Some("KQLDatabase"),
        about: Some(("kql_database", "ArtifactId", "ArtifactName")),
    },
    // A workspace activity: no item.
    Shape {
        activity: "CreateGroup",
        fields: &[],
        artifact_kind: None,
        about: None,
    },
];

fn ws_id(w: usize) -> String {
    format!("0000000{w}-aaaa-4aaa-8aaa-00000000000{w}")
}

/// The archive's events: every shape over two ids of each pool, three workspaces, failures
/// on every third event, names renamed in the second half, times out of order.
fn events() -> Vec<(Value, About)> {
    let total = SHAPES.len() * 8;
    (0..total)
        .map(|n| {
            let shape = &SHAPES[n % SHAPES.len()];
            let v = (n / SHAPES.len()) % 2;
            // Minutes from DAY_START, a permutation of 0..total: later in the file is not newer.
            let minute = (n * 7) % total;
            let renamed = minute >= total / 2;
            let mut e = json!({
                "Id": format!("e1e1e1e1-0000-4000-8000-{n:012}"),
                "CreationTime": format!("2026-11-20T{:02}:{:02}:00", minute / 60, minute % 60),
                "Operation": shape.activity, "Activity": shape.activity, "RecordType": 20,
                "UserId": "ana@contoso.com", "WorkspaceId": ws_id(n % 3),
                "WorkSpaceName": format!("Workspace {}", n % 3), "IsSuccess": n % 3 != 1,
            });
            for (id_field, name_field, pool) in shape.fields {
                e[*id_field] = json!(pool.id(v));
                if let Some(name) = name_field {
                    e[*name] = json!(pool.name(v, renamed));
                }
            }
            if let Some(kind) = shape.artifact_kind {
                e["ArtifactKind"] = json!(kind);
            }
            (e, shape.about)
        })
        .collect()
}

/// The truth of every item family, from the raw events and the item each is about.
#[derive(Default)]
struct Truth {
    events: BTreeMap<String, f64>,
    failed: BTreeMap<String, f64>,
    /// `(type, id)` → (time, name, workspace) of the newest event that names the item.
    info: BTreeMap<(String, String), (u64, String, String)>,
    last_activity: BTreeMap<String, f64>,
    model_views: BTreeMap<String, f64>,
    last_refresh: BTreeMap<String, f64>,
}

/// Seconds since the epoch of a `CreationTime` of this archive (all on 2026-11-20).
fn seconds(e: &Value) -> u64 {
    let t = e["CreationTime"].as_str().unwrap();
    let (h, m) = (&t[11..13], &t[14..16]);
    DAY_START + 3600 * h.parse::<u64>().unwrap() + 60 * m.parse::<u64>().unwrap()
}

fn newest(map: &mut BTreeMap<String, f64>, key: String, t: u64) {
    let v = map.entry(key).or_insert(0.0);
    *v = v.max(t as f64);
}

impl Truth {
    fn count(&mut self, e: &Value, about: About) {
        let (t, activity) = (seconds(e), e["Activity"].as_str().unwrap());
        let ws = e["WorkspaceId"].as_str().unwrap().to_string();
        let ok = e["IsSuccess"].as_bool().unwrap();
        if let (true, Some(model)) = (activity == "ViewReport", e["DatasetId"].as_str()) {
            let key = format!(r#"{{workspace_id="{ws}",item_id="{model}"}}"#);
            *self.model_views.entry(key).or_default() += 1.0;
        }
        let Some((item_type, id_field, name_field)) = about else {
            return;
        };
        let id = e[id_field].as_str().unwrap().to_string();
        let key = format!(
            r#"{{workspace_id="{ws}",item_type="{item_type}",item_id="{id}",activity="{activity}"}}"#
        );
        *self.events.entry(key.clone()).or_default() += 1.0;
        if !ok {
            *self.failed.entry(key).or_default() += 1.0;
        }
        let item = format!(r#"{{item_type="{item_type}",item_id="{id}"}}"#);
        newest(&mut self.last_activity, item, t);
        if activity == "RefreshDataset" {
            let outcome = if ok { "success" } else { "failure" };
            let key = format!(r#"{{item_id="{id}",outcome="{outcome}"}}"#);
            newest(&mut self.last_refresh, key, t);
        }
        if let Some(name) = e[name_field].as_str() {
            let entry = self.info.entry((item_type.to_string(), id)).or_default();
            if t >= entry.0 {
                *entry = (t, name.to_string(), ws);
            }
        }
    }

    fn info(&self) -> BTreeMap<String, f64> {
        (self.info.iter())
            .map(|((item_type, id), (_, name, ws))| {
                let labels = format!(
                    r#"{{item_id="{id}",item_type="{item_type}",item_name="{name}",workspace_id="{ws}"}}"#
                );
                (labels, 1.0)
            })
            .collect()
    }
}

#[test]
fn a_replay_of_every_item_kind_equals_the_truth_from_the_raw_events() {
    let all = events();
    let mut truth = Truth::default();
    for (e, about) in &all {
        truth.count(e, *about);
    }
    // Half the events in an API page, the rest as JSON Lines with every fourth event again.
    let (page, rest) = all.split_at(all.len() / 2);
    let page: Vec<&Value> = page.iter().map(|(e, _)| e).collect();
    let dir = tempfile::tempdir().unwrap();
    let body =
        json!({"activityEventEntities": page, "continuationUri": null, "lastResultSet": true});
    std::fs::write(dir.path().join("a-page.json"), body.to_string()).unwrap();
    let duplicates = all.iter().step_by(4).map(|(e, _)| e);
    let lines: String = (rest.iter().map(|(e, _)| e))
        .chain(duplicates.clone())
        .map(|e| format!("{e}\n"))
        .collect();
    std::fs::write(dir.path().join("b-lines.jsonl"), lines).unwrap();

    let out = run(&["--once", "--replay", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = samples(&stdout(&out));

    assert_eq!(
        s["powerbi_events_duplicate_total"],
        duplicates.count() as f64
    );
    assert_eq!(family(&s, "powerbi_item_events_total"), truth.events);
    assert_eq!(family(&s, "powerbi_item_events_failed_total"), truth.failed);
    assert_eq!(family(&s, "powerbi_item_info"), truth.info());
    assert_eq!(
        family(&s, "powerbi_item_last_activity_timestamp_seconds"),
        truth.last_activity
    );
    assert_eq!(
        family(&s, "powerbi_semantic_model_report_views_total"),
        truth.model_views
    );
    assert_eq!(
        family(&s, "powerbi_semantic_model_last_refresh_timestamp_seconds"),
        truth.last_refresh
    );
    // Every kind is there, the unknown one included, and nothing overflowed.
    let counted = family(&s, "powerbi_item_events_total");
    for item_type in SHAPES.iter().filter_map(|s| s.about).map(|a| a.0) {
        let label = format!(r#"item_type="{item_type}""#);
        assert!(counted.keys().any(|k| k.contains(&label)), "{item_type}");
    }
    assert!(family(&s, "powerbi_series_dropped_total")
        .values()
        .all(|v| *v == 0.0));
    // No inventory, no powerbi_items.
    assert!(family(&s, "powerbi_items").is_empty());
}
