//! The simulated tenant's items beyond reports: semantic models (every report is built on
//! one), dashboards, dataflows, workspace apps and Fabric items (Lakehouse, Notebook,
//! Warehouse, DataPipeline), and how the admin inventory lists them.
//!
//! Invariants: the first workspace has at least one item of every kind, so every activity
//! has something to name in any tenant; items marked unused are listed by the inventory but
//! never named by an event (the "dead weight" an administrator looks for); a few models fail
//! most of their refreshes, the rest rarely. Items are drawn from their own random stream,
//! so adding them left a seed's workspaces, reports and users as they were.

use crate::rng::Rng;

/// A semantic model (the API's "dataset").
#[derive(Debug, Clone)]
pub(super) struct Model {
    pub id: String,
    pub name: String,
    /// Chance that one of its refreshes fails.
    pub refresh_failure: f64,
    /// No report is built on it and nobody refreshes it.
    pub unused: bool,
}

/// A dashboard or a dataflow: an id, a name, and whether events ever name it.
#[derive(Debug, Clone)]
pub(super) struct Named {
    pub id: String,
    pub name: String,
    pub unused: bool,
}

/// The app a workspace publishes.
#[derive(Debug, Clone)]
pub(super) struct App {
    pub id: String,
    pub name: String,
}

/// The Fabric item kinds the tenant holds, as `ArtifactKind` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FabricKind {
    Lakehouse,
    Notebook,
    Warehouse,
    DataPipeline,
}

impl FabricKind {
    const ALL: [FabricKind; 4] = [
        FabricKind::Lakehouse,
        FabricKind::Notebook,
        FabricKind::Warehouse,
        FabricKind::DataPipeline,
    ];

    pub fn artifact_kind(self) -> &'static str {
        match self {
            FabricKind::Lakehouse => "Lakehouse",
            FabricKind::Notebook => "Notebook",
            FabricKind::Warehouse => "Warehouse",
            FabricKind::DataPipeline => "DataPipeline",
        }
    }

    /// Notebooks and pipelines run (`RunArtifact`); lakehouses and warehouses are read.
    pub fn runs(self) -> bool {
        matches!(self, FabricKind::Notebook | FabricKind::DataPipeline)
    }
}

#[derive(Debug, Clone)]
pub(super) struct FabricItem {
    pub id: String,
    pub name: String,
    pub kind: FabricKind,
    pub unused: bool,
}

/// Everything of one workspace beside its reports.
#[derive(Debug, Clone, Default)]
pub(super) struct Furnishing {
    pub dashboards: Vec<Named>,
    pub dataflows: Vec<Named>,
    pub app: Option<App>,
    pub fabric: Vec<FabricItem>,
}

/// Seed mixer of the items' own random stream.
pub(super) const ITEMS_STREAM: u64 = 0x1735_0a7e_2026_0018;

/// The models of a workspace whose reports are built three to a model: model `k` takes the
/// dataset id drawn for report `3k` (the other draws are kept so the stream is unchanged).
pub(super) fn models_for(workspace: &str, dataset_ids: &[String], index: usize) -> Vec<Model> {
    dataset_ids
        .iter()
        .step_by(3)
        .enumerate()
        .map(|(k, id)| Model {
            id: id.clone(),
            name: match k {
                0 => format!("{workspace} Model"),
                k => format!("{workspace} Model {}", k + 1),
            },
            refresh_failure: if (index + k) % 7 == 3 { 0.85 } else { 0.03 },
            unused: false,
        })
        .collect()
}

/// A model nobody builds on: every fourth workspace keeps a stale staging model.
pub(super) fn orphan_model(rng: &mut Rng, workspace: &str, index: usize) -> Option<Model> {
    (index % 4 == 3).then(|| Model {
        id: rng.guid(),
        name: format!("{workspace} Staging Model"),
        refresh_failure: 0.0,
        unused: true,
    })
}

/// Dashboards, dataflows, an app on every other workspace, and Fabric items on capacity.
pub(super) fn furnish(
    rng: &mut Rng,
    workspace: &str,
    index: usize,
    on_capacity: bool,
) -> Furnishing {
    const DASHBOARDS: [&str; 3] = ["Overview", "KPIs", "Archive"];
    const DATAFLOWS: [&str; 2] = ["Ingest", "Cleansing"];
    let first = index == 0;
    let count = |rng: &mut Rng, at_least: u64, below: u64| {
        if first {
            at_least as usize
        } else {
            rng.below(below) as usize
        }
    };
    let n_dashboards = count(rng, 2, 4);
    let dashboards = DASHBOARDS[..n_dashboards]
        .iter()
        .map(|d| Named {
            id: rng.guid(),
            name: format!("{workspace} {d}"),
            unused: *d == "Archive",
        })
        .collect();
    let n_dataflows = count(rng, 1, 3);
    let dataflows = DATAFLOWS[..n_dataflows]
        .iter()
        .map(|d| Named {
            id: rng.guid(),
            name: format!("{workspace} {d}"),
            unused: false,
        })
        .collect();
    let app = (index % 2 == 0).then(|| App {
        id: rng.guid(),
        name: format!("{workspace} App"),
    });
    let n_fabric = if on_capacity { count(rng, 4, 6) } else { 0 };
    let fabric = (0..n_fabric)
        .map(|j| {
            let kind = FabricKind::ALL[(index + j) % FabricKind::ALL.len()];
            FabricItem {
                id: rng.guid(),
                name: match j / FabricKind::ALL.len() {
                    0 => format!("{workspace} {}", kind.artifact_kind()),
                    _ => format!("{workspace} Scratch {}", kind.artifact_kind()),
                },
                kind,
                unused: j >= FabricKind::ALL.len(),
            }
        })
        .collect();
    Furnishing {
        dashboards,
        dataflows,
        app,
        fabric,
    }
}

/// The `datasets` of a workspace in GetGroupsAsAdmin's shape (Microsoft's "Get workspaces
/// with their 'datasets' expanded example", whose dataset ids, unlike its workspace and
/// report ids, are in lower case).
pub(super) fn datasets_json(models: &[Model]) -> serde_json::Value {
    models
        .iter()
        .map(|m| {
            serde_json::json!({
                "id": m.id, "name": m.name, "addRowsAPIEnabled": false,
                "configuredBy": "priya.patel@contoso.com", "isRefreshable": !m.unused,
                "isEffectiveIdentityRequired": false, "isEffectiveIdentityRolesRequired": false,
                "isOnPremGatewayRequired": false, "targetStorageMode": "Abf",
                "createdDate": "2025-04-30T21:35:15.867-07:00",
                "ContentProviderType": "PbixInImportMode", "isInPlaceSharingEnabled": false,
            })
        })
        .collect()
}

/// The `dashboards` of a workspace in GetGroupsAsAdmin's shape (Microsoft's "Get workspaces
/// with their 'dashboards' expanded example": `displayName`, not `name`).
pub(super) fn dashboards_json(dashboards: &[Named]) -> serde_json::Value {
    dashboards
        .iter()
        .map(|d| serde_json::json!({"id": d.id, "displayName": d.name, "isReadOnly": false}))
        .collect()
}

/// The `dataflows` of a workspace in the REST reference's `Dataflow` shape: the id is
/// `objectId` (the spec has no dataflows example for admin/groups).
pub(super) fn dataflows_json(dataflows: &[Named]) -> serde_json::Value {
    dataflows
        .iter()
        .map(|d| {
            serde_json::json!({
                "objectId": d.id, "name": d.name, "description": "",
                "configuredBy": "priya.patel@contoso.com", "modifiedBy": "priya.patel@contoso.com",
                "modifiedDateTime": "2025-11-03T08:12:44.617Z",
            })
        })
        .collect()
}
