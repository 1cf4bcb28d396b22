//! The tenant's inventory: workspaces and their reports, semantic models, dashboards and
//! dataflows from `GET admin/groups?$expand=reports,datasets,dashboards,dataflows`
//! (GetGroupsAsAdmin), decoded into owned, typed values.
//!
//! Invariants: workspaces in state `Deleted` or `Removing` are left out, but counted as listed
//! (paging compares the listed count with `$top`); GUID-shaped ids are lower-cased as the
//! event decoder does ([`lower_guid`]), so the inventory joins with events; a workspace's type
//! says personal or shared; unknown fields are ignored and missing names are empty strings
//! (the ids are what counts); each expansion keeps the field names of Microsoft's schema:
//! `datasets[].{id,name}`, `dashboards[].{id,displayName}`, `dataflows[].{objectId,name}`.

use serde::{Deserialize, Serialize};

use super::event::lower_guid;
use super::item::ItemType;
use super::UnixMillis;

/// A workspace and its reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryWorkspace {
    pub id: String,
    pub name: String,
    /// `Personal`/`PersonalGroup` workspaces ("My workspace") rather than shared ones.
    pub personal: bool,
    /// Empty when the workspace is not on a capacity.
    pub capacity_id: String,
    /// (report id, report name).
    pub reports: Vec<(String, String)>,
    /// Its semantic models, dashboards and dataflows (absent in inventories cached before
    /// they were read; not written while empty, so such an inventory saves back as it was).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<InventoryItem>,
}

/// The kinds of item admin/groups expands besides reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InventoryKind {
    SemanticModel,
    Dashboard,
    Dataflow,
}

impl InventoryKind {
    pub fn item_type(self) -> ItemType {
        match self {
            InventoryKind::SemanticModel => ItemType::SemanticModel,
            InventoryKind::Dashboard => ItemType::Dashboard,
            InventoryKind::Dataflow => ItemType::Dataflow,
        }
    }
}

/// A semantic model, dashboard or dataflow of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryItem {
    pub kind: InventoryKind,
    pub id: String,
    /// Empty when admin/groups gave none.
    pub name: String,
}

/// A whole inventory as fetched at one time.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Inventory {
    pub fetched_at: UnixMillis,
    pub workspaces: Vec<InventoryWorkspace>,
}

impl Inventory {
    pub fn reports(&self) -> usize {
        self.workspaces.iter().map(|w| w.reports.len()).sum()
    }

    /// Semantic models, dashboards and dataflows.
    pub fn items(&self) -> usize {
        self.workspaces.iter().map(|w| w.items.len()).sum()
    }
}

#[derive(Deserialize)]
struct Page {
    value: Vec<Group>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    capacity_id: Option<String>,
    #[serde(default)]
    reports: Vec<GroupReport>,
    #[serde(default)]
    datasets: Vec<GroupReport>,
    #[serde(default)]
    dashboards: Vec<GroupDashboard>,
    #[serde(default)]
    dataflows: Vec<GroupDataflow>,
}

/// A report or a dataset: `id` and `name`.
#[derive(Deserialize)]
struct GroupReport {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

/// A dashboard: `id` and `displayName`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupDashboard {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
}

/// A dataflow: `objectId` and `name`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupDataflow {
    object_id: String,
    #[serde(default)]
    name: Option<String>,
}

impl Group {
    /// The expanded semantic models, dashboards and dataflows, in that order.
    fn take_items(&mut self) -> Vec<InventoryItem> {
        let item = |kind, id: String, name: Option<String>| InventoryItem {
            kind,
            id: normalised(id),
            name: name.unwrap_or_default(),
        };
        let datasets = std::mem::take(&mut self.datasets).into_iter();
        let dashboards = std::mem::take(&mut self.dashboards).into_iter();
        let dataflows = std::mem::take(&mut self.dataflows).into_iter();
        (datasets.map(|d| item(InventoryKind::SemanticModel, d.id, d.name)))
            .chain(dashboards.map(|d| item(InventoryKind::Dashboard, d.id, d.display_name)))
            .chain(dataflows.map(|d| item(InventoryKind::Dataflow, d.object_id, d.name)))
            .collect()
    }
}

/// One page of `admin/groups`: the workspaces to keep, and how many the page listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupsPage {
    /// Entries of `value`, kept or not: the page is the last one when this is below `$top`.
    pub listed: usize,
    pub workspaces: Vec<InventoryWorkspace>,
}

/// States of workspaces that are gone or going (GetGroupsAsAdmin examples show both).
const LEAVING_STATES: [&str; 2] = ["Deleted", "Removing"];

/// One page of `admin/groups`; the error says what was wrong with it.
pub fn parse_groups_page(body: &[u8]) -> Result<GroupsPage, String> {
    let page: Page = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let listed = page.value.len();
    let workspaces = page
        .value
        .into_iter()
        .filter(|g| {
            !g.state
                .as_deref()
                .is_some_and(|s| LEAVING_STATES.iter().any(|l| s.eq_ignore_ascii_case(l)))
        })
        .map(|mut g| InventoryWorkspace {
            items: g.take_items(),
            personal: g
                .kind
                .as_deref()
                .is_some_and(|k| k.to_ascii_lowercase().starts_with("personal")),
            capacity_id: normalised(g.capacity_id.unwrap_or_default()),
            name: g.name.unwrap_or_default(),
            reports: g
                .reports
                .into_iter()
                .map(|r| (normalised(r.id), r.name.unwrap_or_default()))
                .collect(),
            id: normalised(g.id),
        })
        .collect();
    Ok(GroupsPage { listed, workspaces })
}

/// An id as the event decoder spells it (GUIDs in lower case).
pub fn normalised(id: String) -> String {
    lower_guid(id.as_str().into()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_of_groups_becomes_workspaces_with_reports() {
        let body = br#"{"@odata.context":"x","value":[
            {"id":"w1","name":"Sales","type":"Workspace","state":"Active","isOnDedicatedCapacity":true,"capacityId":"C1","reports":[{"id":"r1","name":"Pipeline","datasetId":"d"}]},
            {"id":"w2","name":"PersonalWorkspace Ana","type":"PersonalGroup","state":"Active","reports":[]},
            {"id":"w3","name":"Old","type":"Workspace","state":"Deleted","reports":[{"id":"r9"}]},
            {"id":"w4"}
        ]}"#;
        let page = parse_groups_page(body).unwrap();
        assert_eq!(page.listed, 4, "the deleted workspace is listed, not kept");
        let ws = page.workspaces;
        assert_eq!(ws.len(), 3);
        assert_eq!(
            ws[0],
            InventoryWorkspace {
                id: "w1".into(),
                name: "Sales".into(),
                personal: false,
                capacity_id: "C1".into(),
                reports: vec![("r1".into(), "Pipeline".into())],
                items: Vec::new(),
            }
        );
        assert!(ws[1].personal);
        assert_eq!((ws[2].id.as_str(), ws[2].name.as_str()), ("w4", ""));
        assert!(parse_groups_page(b"{\"value\": 7}").is_err());
    }
}

#[cfg(test)]
mod expansion_tests {
    use super::*;

    /// The body of one example of Microsoft's GetGroupsAsAdmin (`tests/fixtures/microsoft/
    /// get-groups-as-admin.examples.json`, from microsoft/PowerBI-CSharp
    /// `sdk/swaggers/swagger.json`), with its workspace's state made `Active` (the examples'
    /// workspace is `Removing`, which the inventory leaves out).
    fn example_body(name: &str) -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/microsoft/get-groups-as-admin.examples.json"
        );
        let all: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let mut body = all[name]["responses"]["200"]["body"].clone();
        body["value"][0]["state"] = "Active".into();
        serde_json::to_vec(&body).unwrap()
    }

    /// `(kind, id in lower case, name)` of every element of `field` in the raw example, read
    /// with serde_json alone.
    fn raw_items(body: &[u8], field: &str, id: &str, name: &str) -> Vec<(String, String)> {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        (v["value"][0][field].as_array().unwrap().iter())
            .map(|d| {
                let id = d[id].as_str().unwrap().to_ascii_lowercase();
                (id, d[name].as_str().unwrap().to_string())
            })
            .collect()
    }

    #[test]
    fn microsofts_dataset_and_dashboard_expansions_become_items() {
        for (example, field, name, kind) in [
            (
                "Get workspaces with their 'datasets' expanded example",
                "datasets",
                "name",
                InventoryKind::SemanticModel,
            ),
            (
                "Get workspaces with their 'dashboards' expanded example",
                "dashboards",
                "displayName",
                InventoryKind::Dashboard,
            ),
        ] {
            let body = example_body(example);
            let page = parse_groups_page(&body).unwrap();
            let got: Vec<(String, String)> = (page.workspaces[0].items.iter())
                .map(|i| {
                    assert_eq!(i.kind, kind);
                    (i.id.clone(), i.name.clone())
                })
                .collect();
            assert_eq!(got, raw_items(&body, field, "id", name), "{example}");
            assert!(!got.is_empty());
        }
    }

    /// Dataflows as the `Dataflow` definition of the same specification names their fields
    /// (`objectId`, `name`): Microsoft publishes no GetGroupsAsAdmin example with them.
    #[test]
    fn dataflows_are_read_by_object_id() {
        let body = br#"{"value":[{"id":"W1","name":"Sales","type":"Workspace","state":"Active",
            "dataflows":[{"objectId":"BDB7C6E1-3A2C-4B6E-9D2C-6B0E7E1D0A11","name":"Orders flow","description":"","configuredBy":"a@contoso.com"}],
            "datasets":[{"id":"d1"}]}]}"#;
        let page = parse_groups_page(body).unwrap();
        let items = &page.workspaces[0].items;
        assert_eq!(
            items,
            &[
                InventoryItem {
                    kind: InventoryKind::SemanticModel,
                    id: "d1".into(),
                    name: String::new()
                },
                InventoryItem {
                    kind: InventoryKind::Dataflow,
                    id: "bdb7c6e1-3a2c-4b6e-9d2c-6b0e7e1d0a11".into(),
                    name: "Orders flow".into()
                },
            ]
        );
        // An inventory cached before the expansions loads without items.
        let old: InventoryWorkspace = serde_json::from_str(
            r#"{"id":"w","name":"n","personal":false,"capacity_id":"","reports":[]}"#,
        )
        .unwrap();
        assert!(old.items.is_empty());
    }
}
