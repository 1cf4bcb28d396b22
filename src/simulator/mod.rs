//! The simulated tenant: workspaces, reports and users with skewed popularity, a realistic
//! activity mix (views, exports, shares, refreshes, admin changes, failures) and a day/night
//! rhythm, producing events shaped exactly like the Activity Events API's.
//!
//! Pure and deterministic: the same seed gives the same tenant and, with the same random
//! stream, the same events. The demo source, `simulate` and the benchmark use it, and its
//! HTTP face ([`api`]) serves them as the Activity Events API does, on loopback only.

pub mod api;

mod names;

pub mod timeline;

use serde::Serialize;

use crate::decode::UnixMillis;
use crate::rng::Rng;

/// How big the simulated tenant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantSpec {
    pub seed: u64,
    pub workspaces: usize,
    pub users: usize,
}

impl Default for TenantSpec {
    fn default() -> Self {
        TenantSpec {
            seed: 1,
            workspaces: 12,
            users: 400,
        }
    }
}

/// What an activity touches, which decides the fields its events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Report,
    Workspace,
    Tenant,
    /// Done by the service principal that reads the activity log.
    ServicePrincipal,
}

/// Activity, relative weight, scope, failure probability.
const ACTIVITIES: &[(&str, u32, Scope, f64)] = &[
    ("ViewReport", 6000, Scope::Report, 0.01),
    ("ViewDashboard", 600, Scope::Workspace, 0.01),
    ("GetSnapshots", 500, Scope::Tenant, 0.0),
    ("RefreshDataset", 300, Scope::Workspace, 0.08),
    ("ExportReport", 250, Scope::Report, 0.06),
    ("EditReport", 200, Scope::Report, 0.02),
    ("ShareReport", 80, Scope::Report, 0.02),
    ("AnalyzeInExcel", 60, Scope::Workspace, 0.03),
    ("DownloadReport", 40, Scope::Report, 0.03),
    ("PrintReport", 30, Scope::Report, 0.02),
    ("CreateReport", 30, Scope::Report, 0.02),
    ("ExportActivityEvents", 20, Scope::ServicePrincipal, 0.0),
    ("UpdateWorkspaceAccess", 15, Scope::Workspace, 0.0),
    ("DeleteReport", 10, Scope::Report, 0.0),
    ("PublishToWebReport", 3, Scope::Report, 0.0),
    ("UpdatedAdminFeatureSwitch", 2, Scope::Tenant, 0.0),
];

#[derive(Debug, Clone)]
struct Report {
    id: String,
    name: String,
    dataset_id: String,
    dataset_name: String,
}

#[derive(Debug, Clone)]
struct Workspace {
    id: String,
    name: String,
    capacity: Option<(String, String)>,
    reports: Vec<Report>,
}

#[derive(Debug, Clone)]
struct User {
    upn: String,
    key: String,
    ip: String,
}

/// A simulated tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    org_id: String,
    workspaces: Vec<Workspace>,
    /// (workspace index, report index), most popular first.
    reports: Vec<(usize, usize)>,
    report_weights: Vec<f64>,
    users: Vec<User>,
    user_weights: Vec<f64>,
    service_principal: String,
    activity_weights: Vec<f64>,
    /// Share of events given each of the shapes of [`Tenant::with_odd_shapes`]; 0 leaves the
    /// random stream (and so every seeded test) as it was.
    odd_shapes: f64,
}

impl Tenant {
    pub fn new(spec: TenantSpec) -> Self {
        let mut rng = Rng::new(spec.seed);
        let capacity = (rng.guid(), "Contoso F64".to_string());
        let workspaces: Vec<Workspace> = (0..spec.workspaces.max(1))
            .map(|i| {
                let name = names::workspace(i);
                let n_reports = 3 + rng.below(6) as usize;
                let reports = (0..n_reports)
                    .map(|j| Report {
                        id: rng.guid(),
                        name: names::report(i * 7 + j),
                        dataset_id: rng.guid(),
                        dataset_name: format!("{name} Model"),
                    })
                    .collect();
                let capacity = (i % 3 != 2).then(|| capacity.clone());
                Workspace {
                    id: rng.guid(),
                    name,
                    capacity,
                    reports,
                }
            })
            .collect();
        let mut reports: Vec<(usize, usize)> = workspaces
            .iter()
            .enumerate()
            .flat_map(|(w, ws)| (0..ws.reports.len()).map(move |r| (w, r)))
            .collect();
        rng.shuffle(&mut reports);
        let users: Vec<User> = (0..spec.users.max(1))
            .map(|i| User {
                upn: names::user(i),
                key: format!("10032000{:08X}", rng.next_u64() as u32),
                ip: format!("198.51.100.{}", 1 + i % 254),
            })
            .collect();
        Tenant {
            org_id: rng.guid(),
            report_weights: zipf_cumulative(reports.len(), 1.1),
            reports,
            workspaces,
            user_weights: zipf_cumulative(users.len(), 0.9),
            users,
            service_principal: rng.guid(),
            activity_weights: cumulative(ACTIVITIES.iter().map(|a| f64::from(a.1))),
            odd_shapes: 0.0,
        }
    }

    /// Gives each of `share` of the events, independently, each of the shapes Microsoft's
    /// published examples and real captures show (reference §16): an `Id` that is not a GUID
    /// (`g632bb64-…`, the REST reference's "next set" example), `WorkspaceId: "My Workspace"`
    /// (old personal-workspace events), no `UserId` (the reference's filtered example), and
    /// `UserType`/`RecordType` as strings (`"Regular"`, `"PowerBIAudit"`, unified audit log).
    pub fn with_odd_shapes(mut self, share: f64) -> Self {
        self.odd_shapes = share;
        self
    }

    /// Every workspace with its reports, as the admin inventory lists them: the generated
    /// workspaces, plus one personal workspace with a report that never has an event.
    pub fn inventory(&self) -> Vec<crate::decode::inventory::InventoryWorkspace> {
        let mut all: Vec<_> = self
            .workspaces
            .iter()
            .map(|w| crate::decode::inventory::InventoryWorkspace {
                id: w.id.clone(),
                name: w.name.clone(),
                personal: false,
                capacity_id: w.capacity.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
                reports: w
                    .reports
                    .iter()
                    .map(|r| (r.id.clone(), r.name.clone()))
                    .collect(),
                items: Vec::new(),
            })
            .collect();
        all.push(crate::decode::inventory::InventoryWorkspace {
            id: format!("{}-personal", &self.org_id[..8]),
            name: "PersonalWorkspace Ana Lopez".into(),
            personal: true,
            capacity_id: String::new(),
            reports: vec![(format!("{}-draft", &self.org_id[..8]), "My draft".into())],
            items: Vec::new(),
        });
        all
    }

    /// One page of `GET admin/groups?$expand=reports` (`$skip` and `$top` applied), shaped like
    /// Microsoft's GetGroupsAsAdmin examples (microsoft/PowerBI-CSharp
    /// `sdk/swaggers/swagger.json`, "Get workspaces with their 'reports' expanded example"):
    /// GUIDs in upper case, and the listing holds a `Deleted` and a `Removing` workspace (the
    /// examples' own) among the live ones, which [`Tenant::inventory`] leaves out.
    pub fn inventory_page(&self, skip: usize, top: usize) -> String {
        let upper = |id: &str| {
            if crate::decode::event::is_guid(id) {
                id.to_ascii_uppercase()
            } else {
                id.to_string()
            }
        };
        let mut listing: Vec<serde_json::Value> = self
            .inventory()
            .into_iter()
            .map(|w| {
                serde_json::json!({
                    "id": upper(&w.id), "name": w.name, "isReadOnly": false,
                    "type": if w.personal { "PersonalGroup" } else { "Workspace" },
                    "state": "Active",
                    "isOnDedicatedCapacity": !w.capacity_id.is_empty(),
                    "capacityId": if w.capacity_id.is_empty() { serde_json::Value::Null } else { w.capacity_id.clone().into() },
                    "reports": w.reports.iter().map(|(id, name)| serde_json::json!({
                        "id": upper(id), "name": name, "reportType": "PowerBIReport"
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let gone = [
            serde_json::json!({
                "id": "183dcf10-47b8-48c4-84aa-f0bf9d5f8fcf", "isReadOnly": false,
                "isOnDedicatedCapacity": false, "name": "Sample Group 2",
                "description": "Deleted sample group", "type": "Workspace", "state": "Deleted",
                "reports": [{"id": "3C6E4E2C-2B8B-4D0F-9F6E-1E0B6C1D2A11", "name": "Gone", "reportType": "PowerBIReport"}],
            }),
            serde_json::json!({
                "id": "94E57E92-CEE2-486D-8CC8-218C97200579", "isReadOnly": false,
                "isOnDedicatedCapacity": false, "capacityMigrationStatus": "Migrated",
                "description": "shorter description", "type": "Workspace", "state": "Removing",
                "name": "a", "hasWorkspaceLevelSettings": false,
                "reports": [
                    {"id": "5DBA60B0-D9A7-42AE-B12C-6D9D51E7739A", "reportType": "PowerBIReport", "name": "SQlAzure-Refresh", "datasetId": "8ce96c50-85a0-4db3-85c6-7ccc3ed46523"},
                    {"id": "197E5C3C-D2F3-42D8-A536-875FB6D7D48C", "reportType": "PowerBIReport", "name": "NESGames", "datasetId": "7d6a4f72-1906-4e08-a469-bd6bc1ab7b69"},
                ],
            }),
        ];
        // Early in the listing, so a client that filters before comparing a page with $top
        // takes a full page for the last one.
        for (i, g) in gone.into_iter().enumerate() {
            listing.insert((1 + 2 * i).min(listing.len()), g);
        }
        let value: Vec<_> = listing.into_iter().skip(skip).take(top).collect();
        serde_json::json!({
            "@odata.context": "https://api.powerbi.com/v1.0/myorg/admin/$metadata#groups",
            "value": value
        })
        .to_string()
    }

    /// Expected events per minute at `time`, for a tenant whose busiest minute has `peak`:
    /// office hours in Europe and the Americas, quiet nights, quieter weekends.
    pub fn rate_per_minute(time: UnixMillis, peak: f64) -> f64 {
        let secs = time.0.div_euclid(1000);
        let hour = (secs.rem_euclid(86_400)) as f64 / 3600.0;
        let weekday = (secs.div_euclid(86_400) + 3).rem_euclid(7); // 0 = Monday
        let daylight = ((hour - 6.0) / 14.0 * std::f64::consts::PI).sin().max(0.0);
        let week = if weekday >= 5 { 0.25 } else { 1.0 };
        peak * week * (0.08 + 0.92 * daylight)
    }

    /// Appends one event happening at `time` as API JSON to `out`.
    pub fn write_event(&self, rng: &mut Rng, time: UnixMillis, out: &mut Vec<u8>) {
        let (activity, _, scope, fail) = ACTIVITIES[pick(&self.activity_weights, rng)];
        let user = &self.users[pick(&self.user_weights, rng)];
        let (w, r) = self.reports[pick(&self.report_weights, rng)];
        let ws = &self.workspaces[w];
        let report = &ws.reports[r];
        let id = rng.guid();
        let request_id = rng.guid();
        let activity_id = rng.guid();
        // The raw API omits the `Z`; archives written by other tools often add it.
        let mut creation_time = time.to_api_string();
        if rng.chance(0.1) {
            creation_time.push('Z');
        }
        let sp = scope == Scope::ServicePrincipal;
        let in_workspace = matches!(scope, Scope::Report | Scope::Workspace);
        let on_report = scope == Scope::Report;
        let alias = rng.chance(0.03);
        let ws_name = in_workspace.then_some(ws.name.as_str());
        let event = ApiEvent {
            id: &id,
            record_type: 20,
            creation_time: &creation_time,
            operation: activity,
            organization_id: &self.org_id,
            user_type: (!sp).then_some(0),
            user_key: if sp {
                &self.service_principal
            } else {
                &user.key
            },
            workload: "PowerBI",
            user_id: if sp {
                &self.service_principal
            } else {
                &user.upn
            },
            client_ip: if sp { "192.0.2.10" } else { &user.ip },
            user_agent: if sp {
                "powerbi-exporter-demo/1.0"
            } else {
                USER_AGENT
            },
            activity,
            item_name: on_report.then_some(report.name.as_str()),
            workspace_name: ws_name.filter(|_| !alias),
            workspace_name_alias: ws_name.filter(|_| alias),
            dataset_name: in_workspace.then_some(report.dataset_name.as_str()),
            report_name: on_report.then_some(report.name.as_str()),
            capacity_id: ws
                .capacity
                .as_ref()
                .filter(|_| in_workspace)
                .map(|c| c.0.as_str()),
            capacity_name: ws
                .capacity
                .as_ref()
                .filter(|_| in_workspace)
                .map(|c| c.1.as_str()),
            workspace_id: in_workspace.then_some(ws.id.as_str()),
            object_id: on_report.then_some(report.name.as_str()),
            dataset_id: in_workspace.then_some(report.dataset_id.as_str()),
            report_id: on_report.then_some(report.id.as_str()),
            artifact_id: on_report.then_some(report.id.as_str()),
            artifact_name: on_report.then_some(report.name.as_str()),
            is_success: !rng.chance(fail),
            report_type: on_report.then_some("PowerBIReport"),
            request_id: &request_id,
            activity_id: &activity_id,
            distribution_method: on_report.then_some("Workspace"),
            consumption_method: on_report.then_some("Power BI Web"),
            artifact_kind: on_report.then_some("Report"),
        };
        let start = out.len();
        // Serialising borrowed strings into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &event);
        if self.odd_shapes > 0.0 {
            reshape(rng, self.odd_shapes, out, start);
        }
    }

    /// Appends events for `[from, to)` at the tenant's rhythm to `out`, one per element.
    pub fn events_between(
        &self,
        rng: &mut Rng,
        from: UnixMillis,
        to: UnixMillis,
        peak_per_minute: f64,
        out: &mut Vec<Vec<u8>>,
    ) {
        let mut minute_start = from.0;
        while minute_start < to.0 {
            let minute_end = (minute_start + 60_000).min(to.0);
            let span = (minute_end - minute_start) as f64 / 60_000.0;
            let expected = Self::rate_per_minute(UnixMillis(minute_start), peak_per_minute) * span;
            for _ in 0..rng.poisson(expected) {
                let t =
                    UnixMillis(minute_start + rng.below((minute_end - minute_start) as u64) as i64);
                let mut buf = Vec::with_capacity(1024);
                self.write_event(rng, t, &mut buf);
                out.push(buf);
            }
            minute_start = minute_end;
        }
    }
}

/// Wraps event JSON values into one API page (the last of its window).
pub fn write_page<'a>(events: impl IntoIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"activityEventEntities\":[");
    for (i, e) in events.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(e);
    }
    out.extend_from_slice(
        b"],\"continuationUri\":null,\"continuationToken\":null,\"lastResultSet\":true}",
    );
}

const USER_AGENT: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";

/// One event as the API writes it (field order and casing included).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ApiEvent<'a> {
    id: &'a str,
    record_type: u32,
    creation_time: &'a str,
    operation: &'a str,
    organization_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_type: Option<u32>,
    user_key: &'a str,
    workload: &'a str,
    user_id: &'a str,
    #[serde(rename = "ClientIP")]
    client_ip: &'a str,
    user_agent: &'a str,
    activity: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_name: Option<&'a str>,
    #[serde(rename = "WorkSpaceName", skip_serializing_if = "Option::is_none")]
    workspace_name: Option<&'a str>,
    #[serde(rename = "WorkspaceName", skip_serializing_if = "Option::is_none")]
    workspace_name_alias: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workspace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_name: Option<&'a str>,
    is_success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_type: Option<&'a str>,
    request_id: &'a str,
    activity_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    distribution_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumption_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_kind: Option<&'a str>,
}

/// Rewrites the event written at `out[start..]` with the shapes of [`Tenant::with_odd_shapes`].
fn reshape(rng: &mut Rng, share: f64, out: &mut Vec<u8>, start: usize) {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&out[start..]) else {
        return;
    };
    if rng.chance(share) {
        if let Some(id) = v["Id"].as_str() {
            v["Id"] = format!("g{}", &id[1..]).into();
        }
    }
    if rng.chance(share) && v.get("WorkspaceId").is_some() {
        v["WorkspaceId"] = "My Workspace".into();
    }
    if rng.chance(share) {
        if let Some(event) = v.as_object_mut() {
            event.remove("UserId");
        }
    }
    if rng.chance(share) {
        if v.get("UserType").is_some() {
            v["UserType"] = "Regular".into();
        }
        v["RecordType"] = "PowerBIAudit".into();
    }
    out.truncate(start);
    let _ = serde_json::to_writer(&mut *out, &v);
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut total = 0.0;
    weights
        .map(|w| {
            total += w;
            total
        })
        .collect()
}

/// Cumulative Zipf weights: item k (from 0) has weight 1/(k+1)^s.
fn zipf_cumulative(n: usize, s: f64) -> Vec<f64> {
    cumulative((0..n).map(|k| 1.0 / ((k + 1) as f64).powf(s)))
}

/// Index drawn with the cumulative weights.
fn pick(cumulative: &[f64], rng: &mut Rng) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let x = rng.f64() * total;
    cumulative
        .partition_point(|&c| c <= x)
        .min(cumulative.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_slice, ActivityEvent, EventSink, Rejection};

    #[derive(Default)]
    struct Tally(std::collections::BTreeMap<String, u64>, u64);
    impl EventSink for Tally {
        fn accept(&mut self, e: &ActivityEvent<'_>) {
            *self.0.entry(e.activity.as_str().to_string()).or_default() += 1;
        }
        fn reject(&mut self, _: Rejection) {
            self.1 += 1;
        }
    }

    #[test]
    fn archives_hold_exactly_the_events_asked_for_in_minute_order() {
        let tenant = Tenant::new(TenantSpec::default());
        let end = UnixMillis::from_secs(1_795_132_800);
        for (layout, count) in [
            (Layout::Jsonl, 1234),
            (Layout::Pages, PAGE_EVENTS as u64 + 3),
            (Layout::Array, 1),
        ] {
            let mut out = Vec::new();
            write_archive(
                &tenant,
                &mut Rng::new(3),
                count,
                (UnixMillis(end.0 - 86_400_000), end),
                layout,
                &mut out,
            )
            .unwrap();
            let mut tally = Tally::default();
            let mut minutes = Vec::new();
            struct Times<'a>(&'a mut Tally, &'a mut Vec<i64>);
            impl EventSink for Times<'_> {
                fn accept(&mut self, e: &ActivityEvent<'_>) {
                    self.1.push(e.time.0 / 60_000);
                    self.0.accept(e);
                }
                fn reject(&mut self, r: Rejection) {
                    self.0.reject(r);
                }
            }
            decode_slice(&out, &mut Times(&mut tally, &mut minutes)).unwrap();
            assert_eq!(tally.0.values().sum::<u64>(), count, "{layout:?}");
            assert!(
                minutes.windows(2).all(|w| w[0] <= w[1]),
                "{layout:?}: minutes in order"
            );
            assert!(minutes
                .iter()
                .all(|m| (end.0 - 86_400_000) / 60_000 <= *m && *m < end.0 / 60_000));
        }
    }

    #[test]
    fn events_decode_and_follow_the_mix_and_rhythm() {
        let tenant = Tenant::new(TenantSpec::default());
        let mut rng = Rng::new(7);
        let monday_noon = UnixMillis::from_secs(1_763_640_000); // 2025-11-20 is a Thursday; 12:00Z
        let mut events = Vec::new();
        tenant.events_between(
            &mut rng,
            monday_noon,
            UnixMillis(monday_noon.0 + 3_600_000),
            100.0,
            &mut events,
        );
        let mut page = Vec::new();
        write_page(events.iter().map(Vec::as_slice), &mut page);
        let mut tally = Tally::default();
        decode_slice(&page, &mut tally).unwrap();
        assert_eq!(tally.1, 0);
        let views = tally.0["ViewReport"] as f64 / events.len() as f64;
        assert!((0.6..0.8).contains(&views), "view share {views}");
        assert!(
            Tenant::rate_per_minute(monday_noon, 100.0)
                > 5.0 * Tenant::rate_per_minute(UnixMillis(monday_noon.0 - 12 * 3_600_000), 100.0)
        );
        let avg = events.iter().map(Vec::len).sum::<usize>() / events.len();
        assert!((600..1100).contains(&avg), "average event size {avg}");
    }
}

/// How [`write_archive`] lays the events out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// API pages of [`PAGE_EVENTS`] events, one page per line.
    Pages,
    /// One JSON array, as `Get-PowerBIActivityEvent` archivers save.
    Array,
    /// One event per line.
    Jsonl,
}

/// Events per page in [`Layout::Pages`] (the API sends 5,000–10,000 on busy hours).
pub const PAGE_EVENTS: usize = 5000;

/// Writes exactly `count` events with `CreationTime` in `[from, to)`, in time order minute by
/// minute as the API's hour-chunked pages deliver them, following the tenant's rhythm;
/// streaming (memory does not grow with `count`).
pub fn write_archive(
    tenant: &Tenant,
    rng: &mut Rng,
    count: u64,
    (from, to): (UnixMillis, UnixMillis),
    layout: Layout,
    mut out: impl std::io::Write,
) -> std::io::Result<()> {
    const MINUTE: i64 = 60_000;
    let minutes = ((to.0 - from.0) / MINUTE).max(1);
    let relative: f64 = (0..minutes)
        .map(|m| Tenant::rate_per_minute(UnixMillis(from.0 + m * MINUTE), 1.0))
        .sum();
    let peak = count as f64 / relative.max(f64::MIN_POSITIVE);
    let mut event = Vec::with_capacity(1024);
    let mut page = Vec::new();
    let mut in_page = 0;
    let mut i = 0u64;
    if layout == Layout::Array {
        out.write_all(b"[\n")?;
    }
    for m in 0..minutes {
        let start = from.0 + m * MINUTE;
        let expected = Tenant::rate_per_minute(UnixMillis(start), peak);
        let n = if m + 1 == minutes {
            count - i
        } else {
            rng.poisson(expected).min(count - i)
        };
        for _ in 0..n {
            let time = UnixMillis(start + rng.below(MINUTE as u64) as i64);
            event.clear();
            tenant.write_event(rng, time, &mut event);
            match layout {
                Layout::Jsonl => {
                    out.write_all(&event)?;
                    out.write_all(b"\n")?;
                }
                Layout::Array => {
                    if i > 0 {
                        out.write_all(b",\n")?;
                    }
                    out.write_all(&event)?;
                }
                Layout::Pages => {
                    page.push(event.clone());
                    in_page += 1;
                    if in_page == PAGE_EVENTS || i + 1 == count {
                        let mut bytes = Vec::new();
                        write_page(page.iter().map(Vec::as_slice), &mut bytes);
                        out.write_all(&bytes)?;
                        out.write_all(b"\n")?;
                        page.clear();
                        in_page = 0;
                    }
                }
            }
            i += 1;
        }
    }
    if layout == Layout::Array {
        out.write_all(b"\n]\n")?;
    }
    out.flush()
}
