//! The item rule: which one item (report, semantic model, dashboard, dataflow, app or Fabric
//! item) an activity event is about. The one place the rule is written; the aggregation's
//! item families and `top --item-type` both call [`item_of`].
//!
//! The rule, first match wins (the activity's words are its CamelCase parts, `RefreshDataset`
//! → `Refresh`, `Dataset`):
//!
//! | # | the event | is about |
//! |---|---|---|
//! | 1 | has `ArtifactId` and `ArtifactKind` | that item, of the kind's type |
//! | 2 | a dataset operation (a word `Dataset(s)`, `Datasource(s)`, `Gateway(s)`) with `DatasetId` | its semantic model, even with a `ReportId` |
//! | 3 | a dashboard or tile activity (`Dashboard(s)`, `Tile(s)`) with `DashboardId` | its dashboard |
//! | 4 | a dataflow operation (`Dataflow(s)`) with `DataflowId` | its dataflow |
//! | 5 | an app operation (`App(s)`) with `AppId` | its app |
//! | 6 | a refresh (`Refresh`, e.g. `SetScheduledRefresh`) with `DatasetId` | its semantic model |
//! | 7 | any other event with `ReportId` | its report |
//! | 8 | else the first id it has of `DashboardId`, `DataflowId`, `DatasetId`, `AppId` | that item |
//!
//! Invariants:
//! - pure: an event in, at most one [`Item`] out, borrowing the event's strings;
//! - `item_type` is lower snake case ([`ItemType::as_str`]); an `ArtifactKind` not known here
//!   is mapped the same way (CamelCase → snake, spaces and dashes → `_`, other characters
//!   dropped, at most [`MAX_KIND_BYTES`] bytes) and kept, never dropped; `Dataset` and
//!   `SemanticModel` are the same type, `semantic_model`.

use crate::event::{ActivityEvent, ItemRef};

/// Longest `item_type` made from an unknown `ArtifactKind`, in bytes.
pub const MAX_KIND_BYTES: usize = 64;

/// The type of an item, the `item_type` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ItemType {
    Report,
    Dashboard,
    SemanticModel,
    Dataflow,
    App,
    Lakehouse,
    Notebook,
    Warehouse,
    DataPipeline,
    /// Any other `ArtifactKind`, in lower snake case (`kql_database`, `eventstream`, …).
    Other(String),
}

impl ItemType {
    /// The types with a name of their own, in label order.
    pub const KNOWN: [ItemType; 9] = [
        ItemType::Report,
        ItemType::Dashboard,
        ItemType::SemanticModel,
        ItemType::Dataflow,
        ItemType::App,
        ItemType::Lakehouse,
        ItemType::Notebook,
        ItemType::Warehouse,
        ItemType::DataPipeline,
    ];

    /// The label value, lower snake case.
    pub fn as_str(&self) -> &str {
        match self {
            ItemType::Report => "report",
            ItemType::Dashboard => "dashboard",
            ItemType::SemanticModel => "semantic_model",
            ItemType::Dataflow => "dataflow",
            ItemType::App => "app",
            ItemType::Lakehouse => "lakehouse",
            ItemType::Notebook => "notebook",
            ItemType::Warehouse => "warehouse",
            ItemType::DataPipeline => "data_pipeline",
            ItemType::Other(kind) => kind,
        }
    }

    /// The type named by a label value (`semantic_model`), or by an `ArtifactKind` as the API
    /// spells it (`SemanticModel`, `Dataset`, `KQLDatabase`): see [`snake_case`].
    pub fn from_kind(kind: &str) -> ItemType {
        let snake = snake_case(kind);
        if snake == "dataset" {
            return ItemType::SemanticModel;
        }
        (ItemType::KNOWN.into_iter())
            .find(|t| t.as_str() == snake)
            .unwrap_or(ItemType::Other(snake))
    }
}

/// `kind` in lower snake case: a `_` between a lower-case letter or digit and an upper-case
/// one, and before the last capital of an acronym followed by a lower-case letter
/// (`KQLDatabase` → `kql_database`); spaces, dashes and underscores become one `_`; other
/// characters are dropped; at most [`MAX_KIND_BYTES`] bytes. An empty result is `unknown`.
pub fn snake_case(kind: &str) -> String {
    let chars: Vec<char> = kind.chars().collect();
    let mut out = String::with_capacity(kind.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        if c.is_ascii_uppercase() {
            let after_word = prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
            let acronym_end = prev.is_some_and(|p| p.is_ascii_uppercase())
                && next.is_some_and(|n| n.is_ascii_lowercase());
            if (after_word || acronym_end) && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if matches!(c, ' ' | '-' | '_') && !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
        if out.len() >= MAX_KIND_BYTES {
            break;
        }
    }
    out.truncate(MAX_KIND_BYTES);
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("unknown");
    }
    out
}

/// The item an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<'e> {
    pub item_type: ItemType,
    pub id: &'e str,
    /// The name the event gives the item (`DatasetName`, `ArtifactName`, …), if any.
    pub name: Option<&'e str>,
}

impl<'e> Item<'e> {
    fn of(item_type: ItemType, r: &'e ItemRef<'_>) -> Self {
        Item {
            item_type,
            id: r.id.as_str(),
            name: r.name.as_deref(),
        }
    }
}

/// What an activity's words say it acts on (rules 2 to 6 of the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operand {
    Dataset,
    Dashboard,
    Dataflow,
    App,
    Refresh,
}

/// The words of each operand, in the rule's order.
const OPERAND_WORDS: [(Operand, &[&str]); 5] = [
    (
        Operand::Dataset,
        &[
            "Dataset",
            "Datasets",
            "Datasource",
            "Datasources",
            "Gateway",
            "Gateways",
        ],
    ),
    (
        Operand::Dashboard,
        &["Dashboard", "Dashboards", "Tile", "Tiles"],
    ),
    (Operand::Dataflow, &["Dataflow", "Dataflows"]),
    (Operand::App, &["App", "Apps"]),
    (Operand::Refresh, &["Refresh"]),
];

/// The item `event` is about, by the rule in the module's documentation; `None` when the
/// event names no item (a workspace or tenant activity).
pub fn item_of<'e>(event: &'e ActivityEvent<'_>) -> Option<Item<'e>> {
    let refs = &event.items;
    if let (Some(artifact), Some(kind)) = (&refs.artifact, &refs.artifact_kind) {
        return Some(Item::of(ItemType::from_kind(kind), artifact));
    }
    let activity = event.activity.as_str();
    for (operand, words) in OPERAND_WORDS {
        let (item_type, id) = match operand {
            Operand::Dataset | Operand::Refresh => (ItemType::SemanticModel, &refs.dataset),
            Operand::Dashboard => (ItemType::Dashboard, &refs.dashboard),
            Operand::Dataflow => (ItemType::Dataflow, &refs.dataflow),
            Operand::App => (ItemType::App, &refs.app),
        };
        // The id first: most events carry none of them, and then the words need no scan.
        let Some(r) = id else { continue };
        if words.iter().any(|w| has_word(activity, w)) {
            return Some(Item::of(item_type, r));
        }
    }
    if let Some(report) = &event.report_id {
        return Some(Item {
            item_type: ItemType::Report,
            id: report.as_str(),
            name: event.report_name.as_deref(),
        });
    }
    let fallback = [
        (ItemType::Dashboard, &refs.dashboard),
        (ItemType::Dataflow, &refs.dataflow),
        (ItemType::SemanticModel, &refs.dataset),
        (ItemType::App, &refs.app),
    ];
    let (item_type, r) = fallback.into_iter().find(|(_, r)| r.is_some())?;
    r.as_ref().map(|r| Item::of(item_type, r))
}

/// Whether `word` (capitalised) is one of the CamelCase words of `activity`: it occurs there
/// followed by the end, or by a character that is not a lower-case letter (`App` is a word
/// of `InstallApp`, not of `AnalyzedByExternalApplication`).
fn has_word(activity: &str, word: &str) -> bool {
    activity.match_indices(word).any(|(at, _)| {
        let after = activity.as_bytes().get(at + word.len());
        !after.is_some_and(|b| b.is_ascii_lowercase())
    })
}

/// The semantic model a `ViewReport` event's report is built on (its `DatasetId`): a use of
/// the model, counted in `powerbi_semantic_model_report_views_total`.
pub fn viewed_model<'e>(event: &'e ActivityEvent<'_>) -> Option<&'e str> {
    let dataset = event.items.dataset.as_ref()?;
    (event.activity.as_str() == "ViewReport").then_some(dataset.id.as_str())
}

/// Whether the event is a semantic model refresh (`RefreshDataset`) whose outcome
/// `powerbi_semantic_model_last_refresh_timestamp_seconds` records.
pub fn is_model_refresh(event: &ActivityEvent<'_>, item: &Item<'_>) -> bool {
    item.item_type == ItemType::SemanticModel && event.activity.as_str() == "RefreshDataset"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode_event;

    /// An expected item: `(item_type, id, name)`.
    type Want<'a> = Option<(&'a str, &'a str, Option<&'a str>)>;

    /// The item of an event's JSON is `want`.
    fn expect(json: &str, want: Want<'_>) {
        let event = decode_event(json.as_bytes()).unwrap();
        let got = item_of(&event);
        let got = got.as_ref().map(|i| (i.item_type.as_str(), i.id, i.name));
        assert_eq!(got, want, "{json}");
    }

    /// The `ViewReport` of Microsoft's example page "Get audit activity events within a time
    /// window and for a specific activity type example" (Admin - Get Activity Events,
    /// tests/fixtures/microsoft/get-activity-events.examples.json): ReportId, DatasetId,
    /// AppName and ArtifactId/ArtifactKind=Report, all at once.
    const MS_APP_VIEW: &str = r#"{"Id":"1db4c464-3e5d-4a89-b412-c2ce6fbae88e","CreationTime":"2023-05-23T08:43:34",
        "Operation":"ViewReport","Activity":"ViewReport","ItemName":"Capacity Metrics Analysis",
        "WorkSpaceName":"Premium Capacity Utilization And Metrics 5/19/2023 11:57:07 AM",
        "DatasetName":"Capacity Metrics Analysis","ReportName":"Capacity Metrics Analysis",
        "WorkspaceId":"bf10ae91-c4f6-494e-b538-e2454229a765","AppName":"Premium Capacity Utilization And Metrics",
        "DatasetId":"5760cb34-a245-4eb7-a4e3-4ecae264a577","ReportId":"ae596344-7fe6-43cb-baa7-c7ddc63271c8",
        "ArtifactId":"ae596344-7fe6-43cb-baa7-c7ddc63271c8","ArtifactName":"Capacity Metrics Analysis",
        "ReportType":"PowerBIReport","AppReportId":"3f87e0bd-a95d-40a4-bab5-5e206d643f8f",
        "DistributionMethod":"Apps","ConsumptionMethod":"Power BI Web","ArtifactKind":"Report"}"#;

    fn event(activity: &str, fields: &str) -> String {
        format!(
            r#"{{"Id":"x","CreationTime":"2026-11-20T10:00:00","Activity":"{activity}"{fields}}}"#
        )
    }

    #[test]
    fn one_item_per_event_by_the_documented_rule() {
        expect(
            MS_APP_VIEW,
            Some((
                "report",
                "ae596344-7fe6-43cb-baa7-c7ddc63271c8",
                Some("Capacity Metrics Analysis"),
            )),
        );
        let report = r#","ReportId":"R1","ReportName":"Sales""#;
        let dataset = r#","DatasetId":"D1","DatasetName":"Model""#;
        let dashboard = r#","DashboardId":"B1","DashboardName":"Board""#;
        let dataflow = r#","DataflowId":"F1","DataflowName":"Flow""#;
        let app = r#","AppId":"A1","AppName":"App""#;
        let cases: &[(&str, String, Want<'_>)] = &[
            // 1: the artifact first, even on a dataset operation with a report.
            (
                "ReadArtifact",
                format!(
                    r#"{report}{dataset},"ArtifactId":"L1","ArtifactName":"Lake","ArtifactKind":"Lakehouse""#
                ),
                Some(("lakehouse", "L1", Some("Lake"))),
            ),
            (
                "RunArtifact",
                r#","ArtifactId":"P1","ArtifactKind":"DataPipeline""#.into(),
                Some(("data_pipeline", "P1", None)),
            ),
            (
                "CreateArtifact",
                r#","ArtifactId":"K1","ArtifactName":"Logs","ArtifactKind":"KQLDatabase""#.into(),
                Some(("kql_database", "K1", Some("Logs"))),
            ),
            // An ArtifactId without its kind is not rule 1.
            (
                "ViewReport",
                format!(r#"{report},"ArtifactId":"R1""#),
                Some(("report", "R1", Some("Sales"))),
            ),
            // 2: dataset operations are about the model, even with a report id.
            (
                "RefreshDataset",
                format!("{report}{dataset}"),
                Some(("semantic_model", "D1", Some("Model"))),
            ),
            (
                "EditDataset",
                format!("{report}{dataset}"),
                Some(("semantic_model", "D1", Some("Model"))),
            ),
            (
                "TakeOverDataset",
                dataset.into(),
                Some(("semantic_model", "D1", Some("Model"))),
            ),
            (
                "BindToGateway",
                format!("{report}{dataset}"),
                Some(("semantic_model", "D1", Some("Model"))),
            ),
            (
                "UpdateDatasourceCredentials",
                dataset.into(),
                Some(("semantic_model", "D1", Some("Model"))),
            ),
            (
                "AnalyzeInExcelDataset",
                format!("{report}{dataset}"),
                Some(("semantic_model", "D1", Some("Model"))),
            ),
            // 3: dashboards and tiles.
            (
                "ViewDashboard",
                format!("{report}{dataset}{dashboard}"),
                Some(("dashboard", "B1", Some("Board"))),
            ),
            (
                "ViewTile",
                format!("{report}{dataset}{dashboard}"),
                Some(("dashboard", "B1", Some("Board"))),
            ),
            // 4: dataflows.
            (
                "ExportDataflow",
                format!("{dataflow}{dataset}"),
                Some(("dataflow", "F1", Some("Flow"))),
            ),
            // 5: apps.
            (
                "InstallApp",
                format!("{app}{report}"),
                Some(("app", "A1", Some("App"))),
            ),
            ("UpdateApp", app.into(), Some(("app", "A1", Some("App")))),
            // An application is no app.
            (
                "AnalyzedByExternalApplication",
                format!("{app}{dataset}"),
                Some(("semantic_model", "D1", Some("Model"))),
            ),
            // 6: a refresh with a model.
            (
                "SetScheduledRefresh",
                format!("{report}{dataset}"),
                Some(("semantic_model", "D1", Some("Model"))),
            ),
            // 7: report activities, a view through an app included.
            (
                "ViewReport",
                format!("{report}{dataset}{app}"),
                Some(("report", "R1", Some("Sales"))),
            ),
            (
                "ExportReport",
                format!("{report}{dataset}"),
                Some(("report", "R1", Some("Sales"))),
            ),
            // A dataset operation without its id falls through to the report.
            (
                "RefreshDataset",
                report.into(),
                Some(("report", "R1", Some("Sales"))),
            ),
            // 8: the remaining ids.
            (
                "GetSnapshots",
                dataset.into(),
                Some(("semantic_model", "D1", Some("Model"))),
            ),
            (
                "ShareApp",
                r#","AppId":"A2""#.into(),
                Some(("app", "A2", None)),
            ),
            ("CreateGroup", String::new(), None),
        ];
        for (activity, fields, want) in cases {
            expect(&event(activity, fields), *want);
        }
    }

    #[test]
    fn artifact_kinds_become_lower_snake_case_and_unknown_kinds_are_kept() {
        let cases = [
            ("Lakehouse", "lakehouse"),
            ("Notebook", "notebook"),
            ("Warehouse", "warehouse"),
            ("DataPipeline", "data_pipeline"),
            ("SemanticModel", "semantic_model"),
            ("Dataset", "semantic_model"),
            ("Report", "report"),
            ("KQLDatabase", "kql_database"),
            ("MLModel", "ml_model"),
            ("SparkJobDefinition", "spark_job_definition"),
            ("Mirrored Database", "mirrored_database"),
            ("copy-job", "copy_job"),
            ("Eventstream2", "eventstream2"),
            ("  Odd (kind) ✓ ", "odd_kind"),
            ("!!!", "unknown"),
            ("", "unknown"),
        ];
        for (kind, want) in cases {
            assert_eq!(ItemType::from_kind(kind).as_str(), want, "{kind:?}");
        }
        let long = "A".repeat(40) + &"b".repeat(100);
        assert_eq!(ItemType::from_kind(&long).as_str().len(), MAX_KIND_BYTES);
    }

    #[test]
    fn a_report_view_counts_as_a_use_of_its_model() {
        let e = decode_event(MS_APP_VIEW.as_bytes()).unwrap();
        assert_eq!(
            viewed_model(&e),
            Some("5760cb34-a245-4eb7-a4e3-4ecae264a577")
        );
        let export = event("ExportReport", r#","DatasetId":"D1""#);
        let e = decode_event(export.as_bytes()).unwrap();
        assert_eq!(viewed_model(&e), None);
    }
}
