//! The tenant's inventory: workspaces and their reports from `GET admin/groups?$expand=reports`
//! (GetGroupsAsAdmin), decoded into owned, typed values.
//!
//! Invariants: workspaces in state `Deleted` or `Removing` are left out, but counted as listed
//! (paging compares the listed count with `$top`); GUID-shaped ids are lower-cased as the
//! event decoder does ([`lower_guid`]), so the inventory joins with events; a workspace's type
//! says personal or shared; unknown fields are ignored and missing names are empty strings
//! (the ids are what counts).

use serde::{Deserialize, Serialize};

use super::event::lower_guid;
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
}

#[derive(Deserialize)]
struct GroupReport {
    id: String,
    #[serde(default)]
    name: Option<String>,
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
        .map(|g| InventoryWorkspace {
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
            }
        );
        assert!(ws[1].personal);
        assert_eq!((ws[2].id.as_str(), ws[2].name.as_str()), ("w4", ""));
        assert!(parse_groups_page(b"{\"value\": 7}").is_err());
    }
}
