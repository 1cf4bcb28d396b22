//! The simulated tenant: workspaces, reports and users with skewed popularity, a realistic
//! activity mix (views, exports, shares, refreshes, admin changes, failures) and a day/night
//! rhythm, producing events shaped exactly like the Activity Events API's. Beside reports it
//! holds semantic models (each report is built on one), dashboards, dataflows, apps and Fabric
//! items (`items.rs`), each named by the activities about it with Microsoft's field names.
//!
//! Pure and deterministic: the same seed gives the same tenant and, with the same random
//! stream, the same events. The demo source, `simulate` and the benchmark use it, and its
//! HTTP face ([`api`]) serves them as the Activity Events API does, on loopback only.

pub mod api;
pub mod clock;

mod items;
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
    /// A semantic model: its `DatasetId`/`DatasetName`, no report.
    Model,
    Dashboard,
    Dataflow,
    /// A workspace's app: `AppId`/`AppName`.
    App,
    /// A Fabric item: `ArtifactId`/`ArtifactName`/`ArtifactKind`.
    Fabric,
    /// A Fabric item that runs: a Notebook or a DataPipeline.
    RunnableFabric,
    Workspace,
    Tenant,
    /// Done by the service principal that reads the activity log.
    ServicePrincipal,
}

/// How often an activity fails.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Failure {
    Rate(f64),
    /// The refreshed model's own health: a few models fail again and again.
    ModelHealth,
}

/// One activity of the simulated mix.
#[derive(Debug, Clone, Copy)]
struct ActivitySpec {
    name: &'static str,
    /// Relative weight in the mix.
    weight: u32,
    scope: Scope,
    failure: Failure,
}

const fn activity(name: &'static str, weight: u32, scope: Scope, fail: f64) -> ActivitySpec {
    ActivitySpec {
        name,
        weight,
        scope,
        failure: Failure::Rate(fail),
    }
}

/// The mix: report views dominate (about two thirds); refreshes, dashboards and Fabric reads
/// follow. Names from Microsoft's operation list (reference §7).
const ACTIVITIES: &[ActivitySpec] = &[
    activity("ViewReport", 6000, Scope::Report, 0.01),
    activity("ViewDashboard", 600, Scope::Dashboard, 0.01),
    activity("GetSnapshots", 500, Scope::Tenant, 0.0),
    ActivitySpec {
        name: "RefreshDataset",
        weight: 300,
        scope: Scope::Model,
        failure: Failure::ModelHealth,
    },
    activity("ExportReport", 250, Scope::Report, 0.06),
    activity("ReadArtifact", 250, Scope::Fabric, 0.01),
    activity("EditReport", 200, Scope::Report, 0.02),
    activity("RunArtifact", 120, Scope::RunnableFabric, 0.05),
    activity("ViewTile", 100, Scope::Dashboard, 0.0),
    activity("ShareReport", 80, Scope::Report, 0.02),
    activity("AnalyzeInExcel", 60, Scope::Model, 0.03),
    activity("RefreshDataflow", 60, Scope::Dataflow, 0.05),
    activity("UpdateArtifact", 60, Scope::Fabric, 0.02),
    activity("DownloadReport", 40, Scope::Report, 0.03),
    activity("PrintReport", 30, Scope::Report, 0.02),
    activity("CreateReport", 30, Scope::Report, 0.02),
    activity("ExportActivityEvents", 20, Scope::ServicePrincipal, 0.0),
    activity("EditDataset", 20, Scope::Model, 0.02),
    activity("ViewDataflow", 20, Scope::Dataflow, 0.0),
    activity("InstallApp", 15, Scope::App, 0.0),
    activity("UpdateWorkspaceAccess", 15, Scope::Workspace, 0.0),
    activity("ShareArtifact", 10, Scope::Fabric, 0.0),
    activity("DeleteReport", 10, Scope::Report, 0.0),
    activity("CreateArtifact", 5, Scope::Fabric, 0.0),
    activity("PublishToWebReport", 3, Scope::Report, 0.0),
    activity("TakeOverDataset", 3, Scope::Model, 0.0),
    activity("UpdateApp", 3, Scope::App, 0.0),
    activity("UpdatedAdminFeatureSwitch", 2, Scope::Tenant, 0.0),
];

/// Share of a report's views that go through its workspace's app, when it has one.
const VIEWS_THROUGH_APP: f64 = 0.3;

#[derive(Debug, Clone)]
struct Report {
    id: String,
    name: String,
    /// Index of the model it is built on in its workspace's `models`.
    model: usize,
    /// The report's id inside the workspace's app (`AppReportId`), when there is an app.
    app_report_id: Option<String>,
}

#[derive(Debug, Clone)]
struct Workspace {
    id: String,
    name: String,
    capacity: Option<(String, String)>,
    reports: Vec<Report>,
    models: Vec<items::Model>,
    items: items::Furnishing,
}

impl Workspace {
    /// Workspace `index` with its reports and models, from the tenant's main stream.
    fn generate(rng: &mut Rng, index: usize, capacity: &(String, String)) -> Self {
        let name = names::workspace(index);
        let n_reports = 3 + rng.below(6) as usize;
        let (reports, dataset_ids): (Vec<Report>, Vec<String>) = (0..n_reports)
            .map(|j| {
                let report = Report {
                    id: rng.guid(),
                    name: names::report(index * 7 + j),
                    model: j / 3,
                    app_report_id: None,
                };
                (report, rng.guid())
            })
            .unzip();
        let capacity = (index % 3 != 2).then(|| capacity.clone());
        Workspace {
            id: rng.guid(),
            models: items::models_for(&name, &dataset_ids, index),
            name,
            capacity,
            reports,
            items: items::Furnishing::default(),
        }
    }

    /// Adds the items beyond reports, from the items' own stream.
    fn furnish(&mut self, rng: &mut Rng, index: usize) {
        self.models
            .extend(items::orphan_model(rng, &self.name, index));
        self.items = items::furnish(rng, &self.name, index, self.capacity.is_some());
        if self.items.app.is_some() {
            for r in &mut self.reports {
                r.app_report_id = Some(rng.guid());
            }
        }
    }
}

#[derive(Debug, Clone)]
struct User {
    upn: String,
    key: String,
    ip: String,
}

/// Items of one kind an event may name, as (workspace, item) indexes, with cumulative weights.
#[derive(Debug, Clone, Default)]
struct Picker {
    items: Vec<(usize, usize)>,
    weights: Vec<f64>,
}

impl Picker {
    /// The items `list` gives for each workspace and `live` keeps, most popular first
    /// (Zipf with exponent `skew`; 0 picks uniformly).
    fn new<T>(
        workspaces: &[Workspace],
        list: impl Fn(&Workspace) -> &[T],
        live: impl Fn(&T) -> bool,
        skew: f64,
    ) -> Self {
        let items: Vec<(usize, usize)> = workspaces
            .iter()
            .enumerate()
            .flat_map(|(w, ws)| {
                list(ws)
                    .iter()
                    .enumerate()
                    .filter(|(_, item)| live(item))
                    .map(move |(i, _)| (w, i))
                    .collect::<Vec<_>>()
            })
            .collect();
        Picker {
            weights: zipf_cumulative(items.len(), skew),
            items,
        }
    }

    fn pick(&self, rng: &mut Rng) -> Option<(usize, usize)> {
        let at = pick(&self.weights, rng);
        self.items.get(at).copied()
    }
}

/// One picker per item kind beyond reports.
#[derive(Debug, Clone, Default)]
struct Pickers {
    models: Picker,
    dashboards: Picker,
    dataflows: Picker,
    apps: Picker,
    fabric: Picker,
    runnable: Picker,
}

impl Pickers {
    fn new(ws: &[Workspace]) -> Self {
        Pickers {
            // Scheduled refreshes do not follow popularity: models are picked uniformly.
            models: Picker::new(ws, |w| &w.models, |m| !m.unused, 0.0),
            dashboards: Picker::new(ws, |w| &w.items.dashboards, |d| !d.unused, 1.0),
            dataflows: Picker::new(ws, |w| &w.items.dataflows, |d| !d.unused, 0.5),
            apps: Picker::new(ws, |w| w.items.app.as_slice(), |_| true, 1.0),
            fabric: Picker::new(ws, |w| &w.items.fabric, |f| !f.unused, 0.8),
            runnable: Picker::new(ws, |w| &w.items.fabric, |f| !f.unused && f.kind.runs(), 0.8),
        }
    }
}

/// A simulated tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    org_id: String,
    workspaces: Vec<Workspace>,
    /// (workspace index, report index), most popular first.
    reports: Vec<(usize, usize)>,
    report_weights: Vec<f64>,
    pickers: Pickers,
    users: Vec<User>,
    user_weights: Vec<f64>,
    service_principal: String,
    activity_weights: Vec<f64>,
    /// Share of events given each of the shapes of [`Tenant::with_odd_shapes`]; 0 leaves the
    /// random stream (and so every seeded test) as it was.
    odd_shapes: f64,
}

/// What one event names, by the scope of its activity.
#[derive(Debug, Clone, Copy, Default)]
struct Target<'a> {
    workspace: Option<&'a Workspace>,
    report: Option<&'a Report>,
    model: Option<&'a items::Model>,
    dashboard: Option<&'a items::Named>,
    dataflow: Option<&'a items::Named>,
    app: Option<&'a items::App>,
    fabric: Option<&'a items::FabricItem>,
    /// A report viewed through its workspace's app (no capacity fields, as Microsoft's
    /// example shows).
    via_app: bool,
}

/// `ArtifactId`, `ArtifactName` and `ArtifactKind` of one event.
#[derive(Debug, Clone, Copy)]
struct Artifact<'a> {
    id: &'a str,
    name: &'a str,
    kind: &'a str,
}

impl<'a> Target<'a> {
    /// The name of the item the event is about (`ItemName`, and `ObjectId` as the API often
    /// fills it).
    fn item_name(&self) -> Option<&'a str> {
        self.report
            .map(|r| r.name.as_str())
            .or(self.fabric.map(|f| f.name.as_str()))
            .or(self.dashboard.map(|d| d.name.as_str()))
            .or(self.dataflow.map(|d| d.name.as_str()))
            .or(self.app.map(|a| a.name.as_str()))
            .or(self.model.map(|m| m.name.as_str()))
    }

    fn capacity(&self) -> Option<&'a (String, String)> {
        let through_app = self.via_app || (self.app.is_some() && self.report.is_none());
        self.workspace
            .and_then(|w| w.capacity.as_ref())
            .filter(|_| !through_app)
    }

    /// The generic item fields: a report's, or a Fabric item's.
    fn artifact(&self) -> Option<Artifact<'a>> {
        self.report
            .map(|r| Artifact {
                id: &r.id,
                name: &r.name,
                kind: "Report",
            })
            .or(self.fabric.map(|f| Artifact {
                id: &f.id,
                name: &f.name,
                kind: f.kind.artifact_kind(),
            }))
    }
}

impl Tenant {
    pub fn new(spec: TenantSpec) -> Self {
        let mut rng = Rng::new(spec.seed);
        let capacity = (rng.guid(), "Contoso F64".to_string());
        let mut workspaces: Vec<Workspace> = (0..spec.workspaces.max(1))
            .map(|i| Workspace::generate(&mut rng, i, &capacity))
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
        let org_id = rng.guid();
        let service_principal = rng.guid();
        let mut items_rng = Rng::new(spec.seed ^ items::ITEMS_STREAM);
        for (i, ws) in workspaces.iter_mut().enumerate() {
            ws.furnish(&mut items_rng, i);
        }
        Tenant {
            org_id,
            report_weights: zipf_cumulative(reports.len(), 1.1),
            reports,
            pickers: Pickers::new(&workspaces),
            workspaces,
            user_weights: zipf_cumulative(users.len(), 0.9),
            users,
            service_principal,
            activity_weights: cumulative(ACTIVITIES.iter().map(|a| f64::from(a.weight))),
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
                items: inventory_items(w),
            })
            .collect();
        all.push(crate::decode::inventory::InventoryWorkspace {
            id: self.personal_workspace_id(),
            name: "PersonalWorkspace Ana Lopez".into(),
            personal: true,
            capacity_id: String::new(),
            reports: vec![(self.personal_report_id(), "My draft".into())],
            items: Vec::new(),
        });
        all
    }

    fn personal_workspace_id(&self) -> String {
        format!("{}-personal", &self.org_id[..8])
    }

    fn personal_report_id(&self) -> String {
        format!("{}-draft", &self.org_id[..8])
    }

    /// One page of `GET admin/groups?$expand=…` (`$skip` and `$top` applied), shaped like
    /// Microsoft's GetGroupsAsAdmin examples (microsoft/PowerBI-CSharp
    /// `sdk/swaggers/swagger.json`, "Get workspaces with their 'reports' expanded example" and
    /// its 'datasets' and 'dashboards' siblings): GUIDs in upper case, only the expansions
    /// asked for, and the listing holds a `Deleted` and a `Removing` workspace (the examples'
    /// own) among the live ones, which [`Tenant::inventory`] leaves out.
    pub fn inventory_page(&self, skip: usize, top: usize, expand: &Expand) -> String {
        let mut listing: Vec<serde_json::Value> = self
            .workspaces
            .iter()
            .map(|w| self.workspace_json(w, expand))
            .collect();
        listing.push(self.personal_workspace_json(expand));
        // Early in the listing, so a client that filters before comparing a page with $top
        // takes a full page for the last one.
        for (i, g) in gone_workspaces(expand).into_iter().enumerate() {
            listing.insert((1 + 2 * i).min(listing.len()), g);
        }
        let value: Vec<_> = listing.into_iter().skip(skip).take(top).collect();
        serde_json::json!({
            "@odata.context": "https://api.powerbi.com/v1.0/myorg/admin/$metadata#groups",
            "value": value
        })
        .to_string()
    }

    fn workspace_json(&self, w: &Workspace, expand: &Expand) -> serde_json::Value {
        let mut json = serde_json::json!({
            "id": upper_guid(&w.id), "name": w.name, "isReadOnly": false, "type": "Workspace",
            "state": "Active", "isOnDedicatedCapacity": w.capacity.is_some(),
            "capacityId": w.capacity.as_ref().map(|c| c.0.clone()),
        });
        if expand.reports {
            json["reports"] = w
                .reports
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": upper_guid(&r.id), "name": r.name, "reportType": "PowerBIReport",
                        "datasetId": w.models[r.model].id,
                    })
                })
                .collect();
        }
        if expand.datasets {
            json["datasets"] = items::datasets_json(&w.models);
        }
        if expand.dashboards {
            json["dashboards"] = items::dashboards_json(&w.items.dashboards);
        }
        if expand.dataflows {
            json["dataflows"] = items::dataflows_json(&w.items.dataflows);
        }
        json
    }

    fn personal_workspace_json(&self, expand: &Expand) -> serde_json::Value {
        let mut json = serde_json::json!({
            "id": self.personal_workspace_id(), "name": "PersonalWorkspace Ana Lopez",
            "isReadOnly": false, "type": "PersonalGroup", "state": "Active",
            "isOnDedicatedCapacity": false, "capacityId": null,
        });
        let empty = serde_json::json!([]);
        for (asked, key) in [
            (expand.datasets, "datasets"),
            (expand.dashboards, "dashboards"),
            (expand.dataflows, "dataflows"),
        ] {
            if asked {
                json[key] = empty.clone();
            }
        }
        if expand.reports {
            json["reports"] = serde_json::json!([{
                "id": self.personal_report_id(), "name": "My draft", "reportType": "PowerBIReport"
            }]);
        }
        json
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

    /// What an event of `spec` names: the report drawn for every event (so the stream keeps
    /// its shape), or an item of the activity's own kind.
    fn target(&self, rng: &mut Rng, spec: &ActivitySpec, (w, r): (usize, usize)) -> Target<'_> {
        let ws = &self.workspaces[w];
        let in_ws = |picked: Option<(usize, usize)>| picked.map(|(w, i)| (&self.workspaces[w], i));
        let mut t = Target::default();
        match spec.scope {
            Scope::Report => {
                t.workspace = Some(ws);
                t.report = Some(&ws.reports[r]);
                t.model = ws.models.get(ws.reports[r].model);
                if spec.name == "ViewReport" && ws.items.app.is_some() {
                    t.via_app = rng.chance(VIEWS_THROUGH_APP);
                    t.app = ws.items.app.as_ref().filter(|_| t.via_app);
                }
            }
            Scope::Model => {
                if let Some((ws, i)) = in_ws(self.pickers.models.pick(rng)) {
                    (t.workspace, t.model) = (Some(ws), ws.models.get(i));
                }
            }
            Scope::Dashboard => {
                if let Some((ws, i)) = in_ws(self.pickers.dashboards.pick(rng)) {
                    (t.workspace, t.dashboard) = (Some(ws), ws.items.dashboards.get(i));
                }
            }
            Scope::Dataflow => {
                if let Some((ws, i)) = in_ws(self.pickers.dataflows.pick(rng)) {
                    (t.workspace, t.dataflow) = (Some(ws), ws.items.dataflows.get(i));
                }
            }
            Scope::App => {
                if let Some((ws, _)) = in_ws(self.pickers.apps.pick(rng)) {
                    (t.workspace, t.app) = (Some(ws), ws.items.app.as_ref());
                }
            }
            Scope::Fabric | Scope::RunnableFabric => {
                let picker = match spec.scope {
                    Scope::Fabric => &self.pickers.fabric,
                    _ => &self.pickers.runnable,
                };
                if let Some((ws, i)) = in_ws(picker.pick(rng)) {
                    (t.workspace, t.fabric) = (Some(ws), ws.items.fabric.get(i));
                }
            }
            Scope::Workspace => t.workspace = Some(ws),
            Scope::Tenant | Scope::ServicePrincipal => {}
        }
        t
    }

    /// Appends one event happening at `time` as API JSON to `out`.
    pub fn write_event(&self, rng: &mut Rng, time: UnixMillis, out: &mut Vec<u8>) {
        let spec = &ACTIVITIES[pick(&self.activity_weights, rng)];
        let user = &self.users[pick(&self.user_weights, rng)];
        let report = self.reports[pick(&self.report_weights, rng)];
        let id = rng.guid();
        let request_id = rng.guid();
        let activity_id = rng.guid();
        // The raw API omits the `Z`; archives written by other tools often add it.
        let mut creation_time = time.to_api_string();
        if rng.chance(0.1) {
            creation_time.push('Z');
        }
        let sp = spec.scope == Scope::ServicePrincipal;
        let alias = rng.chance(0.03);
        let target = self.target(rng, spec, report);
        let refresh_type = spec.name.starts_with("Refresh").then(|| {
            if rng.chance(0.8) {
                "Scheduled"
            } else {
                "OnDemand"
            }
        });
        let fail = match spec.failure {
            Failure::Rate(p) => p,
            Failure::ModelHealth => target.model.map_or(0.0, |m| m.refresh_failure),
        };
        let who = if sp {
            Actor {
                key: &self.service_principal,
                id: &self.service_principal,
                ip: "192.0.2.10",
                agent: "powerbi-exporter-demo/1.0",
            }
        } else {
            Actor {
                key: &user.key,
                id: &user.upn,
                ip: &user.ip,
                agent: USER_AGENT,
            }
        };
        let ids = EventIds {
            id: &id,
            request_id: &request_id,
            activity_id: &activity_id,
            creation_time: &creation_time,
            organization_id: &self.org_id,
        };
        let mut event = ApiEvent::new(spec.name, ids, who, &target, alias);
        event.user_type = (!sp).then_some(0);
        event.is_success = !rng.chance(fail);
        event.refresh_type = refresh_type;
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

/// A workspace's semantic models, dashboards and dataflows, as its `admin/groups` expansions
/// list them (in that order).
fn inventory_items(w: &Workspace) -> Vec<crate::decode::inventory::InventoryItem> {
    use crate::decode::inventory::{InventoryItem, InventoryKind};
    let item = |kind, id: &String, name: &String| InventoryItem {
        kind,
        id: id.clone(),
        name: name.clone(),
    };
    (w.models.iter())
        .map(|m| item(InventoryKind::SemanticModel, &m.id, &m.name))
        .chain((w.items.dashboards.iter()).map(|d| item(InventoryKind::Dashboard, &d.id, &d.name)))
        .chain((w.items.dataflows.iter()).map(|d| item(InventoryKind::Dataflow, &d.id, &d.name)))
        .collect()
}

/// Which collections an `admin/groups` request expands (`$expand=reports,datasets,…`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expand {
    pub reports: bool,
    pub datasets: bool,
    pub dashboards: bool,
    pub dataflows: bool,
}

impl Expand {
    /// Every collection the simulated inventory can list.
    pub const ALL: Expand = Expand {
        reports: true,
        datasets: true,
        dashboards: true,
        dataflows: true,
    };

    /// The value of `$expand`, comma separated (raw or percent-encoded); unknown names
    /// (`users`, `workbooks`) are ignored, as the simulated tenant has none.
    pub fn parse(value: &str) -> Self {
        let mut expand = Expand::default();
        for name in value.replace("%2C", ",").replace("%2c", ",").split(',') {
            match name.trim() {
                "reports" => expand.reports = true,
                "datasets" => expand.datasets = true,
                "dashboards" => expand.dashboards = true,
                "dataflows" => expand.dataflows = true,
                _ => {}
            }
        }
        expand
    }
}

/// GUIDs in upper case, as admin/groups spells them; other ids as they are.
fn upper_guid(id: &str) -> String {
    if crate::decode::event::is_guid(id) {
        id.to_ascii_uppercase()
    } else {
        id.to_string()
    }
}

/// The examples' own `Deleted` and `Removing` workspaces, with the expansions asked for.
fn gone_workspaces(expand: &Expand) -> [serde_json::Value; 2] {
    let mut deleted = serde_json::json!({
        "id": "183dcf10-47b8-48c4-84aa-f0bf9d5f8fcf", "isReadOnly": false,
        "isOnDedicatedCapacity": false, "name": "Sample Group 2",
        "description": "Deleted sample group", "type": "Workspace", "state": "Deleted",
    });
    let mut removing = serde_json::json!({
        "id": "94E57E92-CEE2-486D-8CC8-218C97200579", "isReadOnly": false,
        "isOnDedicatedCapacity": false, "capacityMigrationStatus": "Migrated",
        "description": "shorter description", "type": "Workspace", "state": "Removing",
        "name": "a", "hasWorkspaceLevelSettings": false,
    });
    if expand.reports {
        deleted["reports"] = serde_json::json!([{"id": "3C6E4E2C-2B8B-4D0F-9F6E-1E0B6C1D2A11", "name": "Gone", "reportType": "PowerBIReport"}]);
        removing["reports"] = serde_json::json!([
            {"id": "5DBA60B0-D9A7-42AE-B12C-6D9D51E7739A", "reportType": "PowerBIReport", "name": "SQlAzure-Refresh", "datasetId": "8ce96c50-85a0-4db3-85c6-7ccc3ed46523"},
            {"id": "197E5C3C-D2F3-42D8-A536-875FB6D7D48C", "reportType": "PowerBIReport", "name": "NESGames", "datasetId": "7d6a4f72-1906-4e08-a469-bd6bc1ab7b69"},
        ]);
    }
    if expand.datasets {
        removing["datasets"] = serde_json::json!([
            {"id": "8ce96c50-85a0-4db3-85c6-7ccc3ed46523", "name": "SQlAzure-Refresh", "isRefreshable": true},
            {"id": "7d6a4f72-1906-4e08-a469-bd6bc1ab7b69", "name": "NESGames", "isRefreshable": true},
        ]);
    }
    if expand.dashboards {
        removing["dashboards"] = serde_json::json!([
            {"id": "4668133c-ae3f-42fb-ad7c-214a8623280c", "displayName": "SQlAzure-Refresh.pbix", "isReadOnly": false},
            {"id": "a8f18ca7-63e8-4220-bc1c-f576ec180b98", "displayName": "cdvc", "isReadOnly": false},
        ]);
    }
    [deleted, removing]
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

/// Who did it, as the event names them.
#[derive(Debug, Clone, Copy)]
struct Actor<'a> {
    key: &'a str,
    id: &'a str,
    ip: &'a str,
    agent: &'a str,
}

/// The event's own ids and time.
#[derive(Debug, Clone, Copy)]
struct EventIds<'a> {
    id: &'a str,
    request_id: &'a str,
    activity_id: &'a str,
    creation_time: &'a str,
    organization_id: &'a str,
}

/// One event as the API writes it (field order and casing included, as in the reference's
/// example page).
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
    dashboard_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataflow_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workspace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dashboard_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataflow_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_name: Option<&'a str>,
    is_success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_type: Option<&'a str>,
    request_id: &'a str,
    activity_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_report_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    distribution_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumption_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_kind: Option<&'a str>,
}

impl<'a> ApiEvent<'a> {
    /// The event of `activity` by `who` about `target`; `alias` spells the workspace name
    /// `WorkspaceName` (reference §6). Success, user type and refresh type are the caller's.
    fn new(
        activity: &'a str,
        ids: EventIds<'a>,
        who: Actor<'a>,
        target: &Target<'a>,
        alias: bool,
    ) -> Self {
        let ws_name = target.workspace.map(|w| w.name.as_str());
        let report = target.report;
        let viewed = report.is_some() || target.dashboard.is_some();
        let artifact = target.artifact();
        ApiEvent {
            id: ids.id,
            record_type: 20,
            creation_time: ids.creation_time,
            operation: activity,
            organization_id: ids.organization_id,
            user_type: None,
            user_key: who.key,
            workload: "PowerBI",
            user_id: who.id,
            client_ip: who.ip,
            user_agent: who.agent,
            activity,
            item_name: target.item_name(),
            workspace_name: ws_name.filter(|_| !alias),
            workspace_name_alias: ws_name.filter(|_| alias),
            dataset_name: target.model.map(|m| m.name.as_str()),
            report_name: report.map(|r| r.name.as_str()),
            dashboard_name: target.dashboard.map(|d| d.name.as_str()),
            dataflow_name: target.dataflow.map(|d| d.name.as_str()),
            capacity_id: target.capacity().map(|c| c.0.as_str()),
            capacity_name: target.capacity().map(|c| c.1.as_str()),
            workspace_id: target.workspace.map(|w| w.id.as_str()),
            app_name: target.app.map(|a| a.name.as_str()),
            object_id: target.item_name(),
            dataset_id: target.model.map(|m| m.id.as_str()),
            report_id: report.map(|r| r.id.as_str()),
            dashboard_id: target.dashboard.map(|d| d.id.as_str()),
            dataflow_id: target.dataflow.map(|d| d.id.as_str()),
            artifact_id: artifact.map(|a| a.id),
            artifact_name: artifact.map(|a| a.name),
            is_success: true,
            report_type: report.map(|_| "PowerBIReport"),
            refresh_type: None,
            request_id: ids.request_id,
            activity_id: ids.activity_id,
            app_report_id: report
                .and_then(|r| r.app_report_id.as_deref())
                .filter(|_| target.via_app),
            app_id: target.app.map(|a| a.id.as_str()),
            distribution_method: viewed.then_some(if target.via_app {
                "Apps"
            } else {
                "Workspace"
            }),
            consumption_method: viewed.then_some("Power BI Web"),
            artifact_kind: artifact.map(|a| a.kind),
        }
    }
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

#[cfg(test)]
mod item_tests {
    //! Truth from the raw JSON (serde_json), never from the simulator's own types.
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn a_day_of_events() -> Vec<serde_json::Value> {
        let tenant = Tenant::new(TenantSpec::default());
        let mut events = Vec::new();
        let start = UnixMillis::from_secs(1_763_596_800); // Thursday 2025-11-20 00:00Z
        tenant.events_between(
            &mut Rng::new(11),
            start,
            UnixMillis(start.0 + 86_400_000),
            60.0,
            &mut events,
        );
        events
            .iter()
            .map(|e| serde_json::from_slice(e).unwrap())
            .collect()
    }

    fn of<'a>(
        events: &'a [serde_json::Value],
        activity: &'a str,
    ) -> impl Iterator<Item = &'a serde_json::Value> {
        events.iter().filter(move |e| e["Activity"] == activity)
    }

    fn has(e: &serde_json::Value, fields: &[&str]) -> bool {
        fields.iter().all(|f| e[*f].is_string())
    }

    #[test]
    fn every_item_kind_has_events_shaped_like_microsofts() {
        let events = a_day_of_events();
        let share = |a: &str| of(&events, a).count() as f64 / events.len() as f64;
        assert!(
            (0.02..0.06).contains(&share("RefreshDataset")),
            "refreshes {}",
            share("RefreshDataset")
        );
        assert!(share("ViewDashboard") > 0.03 && share("ReadArtifact") > 0.01);
        assert!(
            of(&events, "ViewReport").all(|e| has(e, &["ReportId", "DatasetId", "DatasetName"]))
        );
        assert!(of(&events, "RefreshDataset")
            .all(|e| has(e, &["DatasetId", "DatasetName", "WorkspaceId"])
                && e.get("ReportId").is_none()));
        assert!(of(&events, "ViewDashboard").all(|e| has(e, &["DashboardId", "DashboardName"])));
        assert!(of(&events, "RefreshDataflow").all(|e| has(e, &["DataflowId", "DataflowName"])));
        assert!(of(&events, "InstallApp").all(|e| has(e, &["AppId", "AppName"])));
        assert!(
            of(&events, "InstallApp").count() > 0 && of(&events, "RefreshDataflow").count() > 0
        );
        // Microsoft's example of a view through an app: AppId, AppReportId, no capacity.
        let via_app: Vec<_> = of(&events, "ViewReport")
            .filter(|e| e["DistributionMethod"] == "Apps")
            .collect();
        assert!(!via_app.is_empty());
        assert!(
            via_app
                .iter()
                .all(|e| has(e, &["AppId", "AppName", "AppReportId"])
                    && e.get("CapacityId").is_none())
        );
        let kinds = |a: &str| -> BTreeSet<String> {
            of(&events, a)
                .map(|e| e["ArtifactKind"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            kinds("ReadArtifact"),
            BTreeSet::from(
                ["DataPipeline", "Lakehouse", "Notebook", "Warehouse"].map(String::from)
            )
        );
        assert_eq!(
            kinds("RunArtifact"),
            BTreeSet::from(["DataPipeline", "Notebook"].map(String::from))
        );
        assert!(of(&events, "ReadArtifact")
            .all(|e| has(e, &["ArtifactId", "ArtifactName", "WorkspaceId"])));
    }

    #[test]
    fn reports_share_models_and_a_few_models_fail_most_refreshes() {
        let events = a_day_of_events();
        let mut reports_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for e in of(&events, "ViewReport") {
            reports_of
                .entry(e["DatasetId"].as_str().unwrap())
                .or_default()
                .insert(e["ReportId"].as_str().unwrap());
        }
        assert!(
            reports_of.values().any(|r| r.len() >= 2),
            "a model serves several reports"
        );
        let mut refreshes: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
        for e in of(&events, "RefreshDataset") {
            let entry = refreshes
                .entry(e["DatasetId"].as_str().unwrap())
                .or_default();
            entry.0 += 1;
            entry.1 += u32::from(e["IsSuccess"] == false);
        }
        let failing = refreshes
            .values()
            .filter(|(n, failed)| *n >= 5 && 2 * failed > *n)
            .count();
        let healthy = refreshes
            .values()
            .filter(|(n, failed)| 5 * failed < *n)
            .count();
        assert!(
            (1..=refreshes.len() / 4).contains(&failing),
            "{failing} of {} models fail",
            refreshes.len()
        );
        assert!(
            healthy >= refreshes.len() / 2,
            "{healthy} of {} models healthy",
            refreshes.len()
        );
    }

    #[test]
    fn the_inventory_lists_the_expansions_asked_for_and_items_without_events() {
        let tenant = Tenant::new(TenantSpec::default());
        let page = |expand: Expand| -> serde_json::Value {
            serde_json::from_str(&tenant.inventory_page(0, 5000, &expand)).unwrap()
        };
        let only_reports = page(Expand::parse("reports"));
        let live = |p: &serde_json::Value| -> Vec<serde_json::Value> {
            p["value"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|w| w["state"] == "Active")
                .cloned()
                .collect()
        };
        assert!(live(&only_reports)
            .iter()
            .all(|w| w["reports"].is_array() && w.get("datasets").is_none()));
        let all = page(Expand::parse("reports%2Cdatasets,dashboards,dataflows"));
        assert!(live(&all)
            .iter()
            .all(|w| ["reports", "datasets", "dashboards", "dataflows"]
                .iter()
                .all(|k| w[*k].is_array())));
        // Every report names a listed dataset of its workspace.
        for w in live(&all) {
            let datasets: BTreeSet<&str> = w["datasets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap())
                .collect();
            for r in w["reports"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r.get("datasetId").is_some())
            {
                assert!(datasets.contains(r["datasetId"].as_str().unwrap()));
            }
        }
        let listed = |key: &str, id: &str| -> BTreeSet<String> {
            live(&all)
                .iter()
                .flat_map(|w| {
                    w[key]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| i[id].as_str().unwrap().to_ascii_lowercase())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let events = a_day_of_events();
        let named = |field: &str| -> BTreeSet<String> {
            events
                .iter()
                .filter_map(|e| e[field].as_str())
                .map(str::to_string)
                .collect()
        };
        let (dashboards, models) = (listed("dashboards", "id"), listed("datasets", "id"));
        assert!(
            named("DashboardId").is_subset(&dashboards)
                && named("DashboardId").len() < dashboards.len(),
            "unused dashboards listed"
        );
        assert!(
            named("DatasetId").is_subset(&models) && named("DatasetId").len() < models.len(),
            "unused models listed"
        );
        assert_eq!(named("DataflowId"), listed("dataflows", "objectId"));
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
