//! The items group: what each event is about, beyond reports (issue 18). Families
//! `powerbi_item_events_total`, `powerbi_item_events_failed_total`, `powerbi_item_info`,
//! `powerbi_item_last_activity_timestamp_seconds`, `powerbi_semantic_model_report_views_total`,
//! `powerbi_semantic_model_last_refresh_timestamp_seconds` and `powerbi_items` (the
//! inventory's items, used or not).
//!
//! Invariants:
//! - an event is about at most one item, by the rule of [`crate::decode::item`] (the one
//!   place it is written); a report view also counts as a use of the model its `DatasetId`
//!   names, in `powerbi_semantic_model_report_views_total`, whatever item it is about;
//! - item ids and item types are interned here, an item as its `(type, id)` pair, so the same
//!   id under two types stays two items; ids no series (nor the inventory) refers to are
//!   released after expiry; the types, a small vocabulary, never are;
//! - ids label the counters, names live only in `powerbi_item_info` (the newest event by
//!   `CreationTime`, or the inventory as of its fetch time, names an item);
//! - every family is capped; past the cap a sample goes to its overflow series, so its sum
//!   stays exact; a timestamp past the cap goes to the overflow timestamp.

use std::collections::BTreeMap;

use hashbrown::HashSet;

use super::labels::{self, label_set};
use super::memory::{HeapUsage, Holder, Interned};
use super::series::{
    CappedCounters, CappedInfo, CappedTimes, CountersState, InfoState, Interner, Keep, Sym,
    TimesState,
};
use super::shared::{ClippedLabel, Counted, Expired, Refs, Sweep, Truncations, View};
use super::Limits;
use crate::catalogue::{self, Family, Snapshot, OVERFLOW_LABEL};
use crate::decode::item::{self, Item, ItemType};

label_set!(
    /// An item's activity in a workspace.
    ItemActivity { workspace_id, item_type, item_id, activity } for ITEM_EVENTS,
        ITEM_EVENTS_FAILED
);
label_set!(
    /// An item's name and workspace.
    ItemInfo { item_id, item_type, item_name, workspace_id } for ITEM_INFO
);
label_set!(
    /// An item.
    ItemLabel { item_type, item_id } for ITEM_LAST_ACTIVITY
);
label_set!(
    /// A semantic model, seen from the workspace of the report viewed.
    ModelInWorkspace { workspace_id, item_id } for SEMANTIC_MODEL_REPORT_VIEWS
);
label_set!(
    /// A semantic model's refreshes of one outcome.
    ModelRefresh { item_id, outcome } for SEMANTIC_MODEL_LAST_REFRESH
);
label_set!(
    /// A workspace's inventory items of one type in one state.
    ItemsInState { workspace_id, item_type, state } for ITEMS
);

/// Most item types interned: the API's kinds are a small vocabulary; a flood of invented
/// `ArtifactKind`s goes to the overflow series past it.
const MAX_ITEM_TYPES: usize = 1_000;

/// How far back an event makes an inventory item "used" (as for `powerbi_reports`).
const USED_WITHIN_MS: i64 = 28 * 86_400_000;

/// An item: its interned type and id.
type ItemKey = (Sym, Sym);

/// `(workspace, item type, item id, activity)`.
type ItemActivityKey = (Sym, Sym, Sym, Sym);

/// The outcome of a `RefreshDataset` event: the `outcome` label.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RefreshOutcome {
    Success,
    Failure,
}

impl RefreshOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshOutcome::Success => "success",
            RefreshOutcome::Failure => "failure",
        }
    }
}

/// Whether an inventory item had an event in the last 28 days: the `state` of `powerbi_items`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UseState {
    Unused,
    Used,
}

impl UseState {
    pub const ALL: [UseState; 2] = [UseState::Unused, UseState::Used];

    pub fn as_str(self) -> &'static str {
        match self {
            UseState::Unused => "unused",
            UseState::Used => "used",
        }
    }
}

use super::shared::name_in_workspace as item_name;
/// An item's name and workspace (the saved state's `items.info` values).
pub use super::shared::NameInWorkspace as ItemName;

/// An item of the inventory: its workspace and its interned key (`None` past a cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InventoryItem {
    pub workspace: Option<Sym>,
    pub key: Option<ItemKey>,
}

#[derive(Debug)]
pub struct Items {
    ids: Interner,
    types: Interner,
    events: CappedCounters<ItemActivityKey>,
    failed: CappedCounters<ItemActivityKey>,
    info: CappedInfo<ItemKey, ItemName>,
    last_activity: CappedTimes<ItemKey>,
    model_report_views: CappedCounters<(Sym, Sym)>,
    last_refresh: CappedTimes<(Sym, RefreshOutcome)>,
    /// The last inventory's items (not saved: the inventory is, and is applied again).
    inventory: Vec<InventoryItem>,
    /// The interned id of each type of [`ItemType::KNOWN`], in that order, once looked up:
    /// types are never released, so an event's type costs no string hash.
    known_types: [Option<Sym>; ItemType::KNOWN.len()],
    /// Whether ids were interned, or the inventory replaced, since ids were last released: if
    /// not, and no series expired, every id is still referred to and the release has nothing
    /// to do.
    ids_changed: bool,
}

/// The durable form of [`Items`], saved under one key (`items`, see [`super::state_file`]);
/// every field defaults, so a state file from before the items group loads.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ItemsState {
    pub ids: Vec<String>,
    pub released_ids: Vec<Sym>,
    pub types: Vec<String>,
    pub events: CountersState<ItemActivityKey>,
    pub failed: CountersState<ItemActivityKey>,
    pub info: InfoState<ItemKey, ItemName>,
    pub last_activity: TimesState<ItemKey>,
    pub model_report_views: CountersState<(Sym, Sym)>,
    pub last_refresh: TimesState<(Sym, RefreshOutcome)>,
}

impl Default for ItemsState {
    fn default() -> Self {
        ItemsState {
            ids: Vec::new(),
            released_ids: Vec::new(),
            types: Vec::new(),
            events: CountersState::default(),
            failed: CountersState::default(),
            info: InfoState {
                values: Vec::new(),
                dropped: 0,
            },
            last_activity: TimesState::default(),
            model_report_views: CountersState::default(),
            last_refresh: TimesState {
                values: Vec::new(),
                overflow: None,
                dropped: 0,
            },
        }
    }
}

impl ItemsState {
    /// Nothing counted yet: the state file leaves the key out, so a state saved before the
    /// items group saves back as it was.
    pub fn is_empty(&self) -> bool {
        *self == ItemsState::default()
    }
}

/// The largest item family's cap: how many item ids may be interned.
fn item_ids_cap(limits: &Limits) -> usize {
    use catalogue::*;
    [
        &ITEM_EVENTS,
        &ITEM_EVENTS_FAILED,
        &ITEM_INFO,
        &ITEM_LAST_ACTIVITY,
        &SEMANTIC_MODEL_REPORT_VIEWS,
        &SEMANTIC_MODEL_LAST_REFRESH,
    ]
    .iter()
    .map(|f| limits.cap(f))
    .max()
    .unwrap_or(0)
}

impl Items {
    pub fn new(limits: &Limits) -> Self {
        Self::import(ItemsState::default(), limits, i64::MIN)
    }

    #[inline]
    pub fn observe(&mut self, ev: &Counted<'_, '_>, clip: &mut Truncations) {
        let (e, time) = (ev.event, ev.time());
        if let Some(model) = item::viewed_model(e) {
            let model = self.intern_id(model, clip);
            self.model_report_views.inc(ev.workspace.zip(model), time);
        }
        let Some(item) = item::item_of(e) else {
            return;
        };
        let key = self.intern(&item, clip);
        let activity = ev.workspace.zip(key).zip(ev.activity_id);
        let activity = activity.map(|((w, (t, i)), a)| (w, t, i, a));
        self.events.inc(activity, time);
        if !e.success {
            self.failed.inc(activity, time);
        }
        self.last_activity.record(key, time);
        if item::is_model_refresh(e, &item) {
            let outcome = if e.success {
                RefreshOutcome::Success
            } else {
                RefreshOutcome::Failure
            };
            self.last_refresh
                .record(key.map(|(_, id)| (id, outcome)), time);
        }
        if let (Some(name), Some(w)) = (item.name, ev.workspace) {
            let name = clip.clip(ClippedLabel::ItemName, name);
            self.info.update(key, &(name, w), time, item_name);
        }
    }

    fn intern_id(&mut self, id: &str, clip: &mut Truncations) -> Option<Sym> {
        let held = self.ids.len();
        let id = self.ids.intern(clip.clip(ClippedLabel::ItemId, id));
        self.ids_changed |= self.ids.len() > held;
        id
    }

    /// The item's key, `None` when its type or id is past its interner's cap.
    fn intern(&mut self, item: &Item<'_>, clip: &mut Truncations) -> Option<ItemKey> {
        let item_type = self.intern_type(&item.item_type)?;
        Some((item_type, self.intern_id(item.id, clip)?))
    }

    fn intern_type(&mut self, item_type: &ItemType) -> Option<Sym> {
        let Some(known) = ItemType::KNOWN.iter().position(|k| k == item_type) else {
            return self.types.intern(item_type.as_str());
        };
        if let Some(sym) = self.known_types[known] {
            return Some(sym);
        }
        let sym = self.types.intern(item_type.as_str());
        self.known_types[known] = sym;
        sym
    }

    /// Takes in the inventory's items: `(workspace, type, id, name)` each, named as of `at`
    /// (the inventory's fetch time, so a later event's name still wins).
    pub fn apply_inventory<'i>(
        &mut self,
        items: impl IntoIterator<Item = (Option<Sym>, ItemType, &'i str, &'i str)>,
        at: i64,
        clip: &mut Truncations,
    ) {
        self.inventory.clear();
        self.ids_changed = true;
        for (workspace, item_type, id, name) in items {
            let item = Item {
                item_type,
                id,
                name: None,
            };
            let key = self.intern(&item, clip);
            self.inventory.push(InventoryItem { workspace, key });
            if let (false, Some(w)) = (name.is_empty(), workspace) {
                let name = clip.clip(ClippedLabel::ItemName, name);
                self.info.update(key, &(name, w), at, item_name);
            }
        }
    }

    /// Removes idle series, then releases the item ids nothing refers to any more.
    pub fn expire(&mut self, sweep: Sweep, expired: &mut Expired) {
        use catalogue::*;
        let cutoff = sweep.cutoff;
        let gone = [
            (&ITEM_EVENTS, self.events.expire(cutoff)),
            (&ITEM_EVENTS_FAILED, self.failed.expire(cutoff)),
            (&ITEM_INFO, self.info.expire(cutoff)),
            (&ITEM_LAST_ACTIVITY, self.last_activity.expire(cutoff)),
            (
                &SEMANTIC_MODEL_REPORT_VIEWS,
                self.model_report_views.expire(cutoff),
            ),
            (
                &SEMANTIC_MODEL_LAST_REFRESH,
                self.last_refresh.expire(cutoff),
            ),
        ];
        gone.iter().for_each(|(family, n)| expired.add(family, *n));
        // Every id was referred to after the last release, and series only came since.
        if self.ids_changed || gone.iter().any(|(_, n)| *n > 0) {
            self.release_ids();
            self.ids_changed = false;
        }
    }

    fn release_ids(&mut self) {
        let mut used: HashSet<Sym> = HashSet::new();
        for counters in [&self.events, &self.failed] {
            used.extend(counters.iter().map(|(&(_, _, i, _), _)| i));
        }
        used.extend(self.info.iter().map(|(&(_, i), _)| i));
        used.extend(self.last_activity.iter().map(|(&(_, i), _)| i));
        used.extend(self.model_report_views.iter().map(|(&(_, i), _)| i));
        used.extend(self.last_refresh.iter().map(|(&(i, _), _)| i));
        used.extend(self.inventory.iter().filter_map(|it| it.key.map(|k| k.1)));
        self.ids.release_unused(&used);
    }

    /// The workspaces the item families refer to.
    pub fn refs(&self, refs: &mut Refs) {
        for counters in [&self.events, &self.failed] {
            refs.workspaces
                .extend(counters.iter().map(|(&(w, ..), _)| w));
        }
        refs.workspaces
            .extend(self.model_report_views.iter().map(|(&(w, _), _)| w));
        refs.workspaces
            .extend(self.info.iter().map(|(_, info)| info.workspace));
        refs.workspaces
            .extend(self.inventory.iter().filter_map(|it| it.workspace));
    }

    pub fn heap(&self, usage: &mut HeapUsage) {
        use catalogue::*;
        for (family, counters) in [
            (&ITEM_EVENTS, &self.events),
            (&ITEM_EVENTS_FAILED, &self.failed),
        ] {
            usage.family(family, counters.len(), counters.heap_bytes());
        }
        let views = &self.model_report_views;
        usage.family(
            &SEMANTIC_MODEL_REPORT_VIEWS,
            views.len(),
            views.heap_bytes(),
        );
        usage.family(&ITEM_INFO, self.info.len(), self.info.heap_bytes());
        let times = &self.last_activity;
        usage.family(&ITEM_LAST_ACTIVITY, times.len(), times.heap_bytes());
        let times = &self.last_refresh;
        usage.family(
            &SEMANTIC_MODEL_LAST_REFRESH,
            times.len(),
            times.heap_bytes(),
        );
        let (ids, types) = (&self.ids, &self.types);
        usage.add(
            Holder::Interner(Interned::ItemIds),
            ids.len(),
            ids.heap_bytes(),
        );
        usage.add(
            Holder::Interner(Interned::ItemTypes),
            types.len(),
            types.heap_bytes(),
        );
    }

    pub fn dropped(&self) -> [(&'static Family, u64); 6] {
        use catalogue::*;
        [
            (&ITEM_EVENTS, self.events.dropped()),
            (&ITEM_EVENTS_FAILED, self.failed.dropped()),
            (&ITEM_INFO, self.info.dropped()),
            (&ITEM_LAST_ACTIVITY, self.last_activity.dropped()),
            (
                &SEMANTIC_MODEL_REPORT_VIEWS,
                self.model_report_views.dropped(),
            ),
            (&SEMANTIC_MODEL_LAST_REFRESH, self.last_refresh.dropped()),
        ]
    }

    fn item_type(&self, t: Sym) -> String {
        self.types.name(t).to_string()
    }

    fn item_id(&self, i: Sym) -> String {
        self.ids.name(i).to_string()
    }

    pub fn render(&self, view: &View<'_>, out: &mut Snapshot) {
        use catalogue::*;
        let ids = view.ids;
        for (family, counters) in [
            (&ITEM_EVENTS_FAILED, &self.failed),
            (&ITEM_EVENTS, &self.events),
        ] {
            let samples = counters.iter().map(|(&(w, t, i, a), v)| {
                let labels = ItemActivity {
                    workspace_id: ids.workspace(w),
                    item_type: self.item_type(t),
                    item_id: self.item_id(i),
                    activity: ids.activity(a),
                };
                (labels, v as f64)
            });
            let overflow = counters.overflow().map(|v| v as f64);
            labels::push_capped(out, family, samples, overflow);
        }
        let samples = self.model_report_views.iter().map(|(&(w, i), v)| {
            let labels = ModelInWorkspace {
                workspace_id: ids.workspace(w),
                item_id: self.item_id(i),
            };
            (labels, v as f64)
        });
        let overflow = self.model_report_views.overflow().map(|v| v as f64);
        labels::push_capped(out, &SEMANTIC_MODEL_REPORT_VIEWS, samples, overflow);
        self.render_info(view, out);
        self.render_times(out);
        if view.inventory.inventory.is_some() {
            labels::push(out, &ITEMS, self.item_states(view));
        }
    }

    fn render_info(&self, view: &View<'_>, out: &mut Snapshot) {
        let samples = self.info.iter().map(|(&(t, i), info)| {
            let labels = ItemInfo {
                item_id: self.item_id(i),
                item_type: self.item_type(t),
                item_name: info.name.clone(),
                workspace_id: view.ids.workspace(info.workspace),
            };
            (labels, 1.0)
        });
        let overflow = self.info.overflowed().then_some(1.0);
        labels::push_capped(out, &catalogue::ITEM_INFO, samples, overflow);
    }

    fn render_times(&self, out: &mut Snapshot) {
        let seconds = |ms: i64| ms as f64 / 1000.0;
        let samples = self.last_activity.iter().map(|(&(t, i), ms)| {
            let labels = ItemLabel {
                item_type: self.item_type(t),
                item_id: self.item_id(i),
            };
            (labels, seconds(ms))
        });
        let overflow = self.last_activity.overflow().map(seconds);
        labels::push_capped(out, &catalogue::ITEM_LAST_ACTIVITY, samples, overflow);
        let samples = self.last_refresh.iter().map(|(&(i, outcome), ms)| {
            let labels = ModelRefresh {
                item_id: self.item_id(i),
                outcome: outcome.as_str().to_string(),
            };
            (labels, seconds(ms))
        });
        let overflow = self.last_refresh.overflow().map(seconds);
        let family = &catalogue::SEMANTIC_MODEL_LAST_REFRESH;
        labels::push_capped(out, family, samples, overflow);
    }

    /// `powerbi_items`: inventory items per workspace and type, used (an event about the item
    /// in the 28 days before the reference) or not; both states of every workspace and type,
    /// zeros included. Items past a cap count under the overflow labels.
    fn item_states(&self, view: &View<'_>) -> Vec<(ItemsInState, f64)> {
        let since = view.reference.0 - USED_WITHIN_MS;
        let overflow = || OVERFLOW_LABEL.to_string();
        let mut counts: BTreeMap<(String, String, UseState), u64> = BTreeMap::new();
        for it in &self.inventory {
            let ws = it
                .workspace
                .map_or_else(overflow, |w| view.ids.workspace(w));
            let item_type = it.key.map_or_else(overflow, |(t, _)| self.item_type(t));
            let used = it
                .key
                .and_then(|k| self.last_activity.get(&k))
                .is_some_and(|t| t >= since);
            for state in UseState::ALL {
                counts
                    .entry((ws.clone(), item_type.clone(), state))
                    .or_default();
            }
            let state = if used {
                UseState::Used
            } else {
                UseState::Unused
            };
            *counts.entry((ws, item_type, state)).or_default() += 1;
        }
        let cap = catalogue::ITEMS.default_cap.unwrap_or(usize::MAX);
        (counts.into_iter().take(cap))
            .map(|((workspace_id, item_type, state), n)| {
                let state = state.as_str().to_string();
                let labels = ItemsInState {
                    workspace_id,
                    item_type,
                    state,
                };
                (labels, n as f64)
            })
            .collect()
    }

    pub fn export(&self) -> ItemsState {
        ItemsState {
            ids: self.ids.export(),
            released_ids: self.ids.released(),
            types: self.types.export(),
            events: self.events.export(),
            failed: self.failed.export(),
            info: self.info.export(),
            last_activity: self.last_activity.export(),
            model_report_views: self.model_report_views.export(),
            last_refresh: self.last_refresh.export(),
        }
    }

    /// Resumes under today's caps; counters saved without event times count as touched at
    /// `touched`.
    pub fn import(state: ItemsState, limits: &Limits, touched: i64) -> Self {
        use catalogue::*;
        let cap = |f: &Family| limits.cap(f);
        let counters = |s, f| CappedCounters::import(s, cap(f), touched);
        Items {
            ids: Interner::import(state.ids, &state.released_ids, item_ids_cap(limits)),
            types: Interner::import(state.types, &[], MAX_ITEM_TYPES),
            events: counters(state.events, &ITEM_EVENTS),
            failed: counters(state.failed, &ITEM_EVENTS_FAILED),
            info: CappedInfo::import(state.info, cap(&ITEM_INFO)),
            last_activity: CappedTimes::import(
                state.last_activity,
                cap(&ITEM_LAST_ACTIVITY),
                Keep::Latest,
            ),
            model_report_views: CappedCounters::import(
                state.model_report_views,
                cap(&SEMANTIC_MODEL_REPORT_VIEWS),
                touched,
            ),
            last_refresh: CappedTimes::import(
                state.last_refresh,
                cap(&SEMANTIC_MODEL_LAST_REFRESH),
                Keep::Latest,
            ),
            inventory: Vec::new(),
            known_types: [None; ItemType::KNOWN.len()],
            // A restored state may hold ids no series refers to.
            ids_changed: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::shared::testing::{observe_all, samples, shared};
    use crate::aggregate::shared::InventoryIndex;
    use crate::decode::UnixMillis;

    fn render(items: &Items, shared: &super::super::shared::Shared) -> Snapshot {
        let inventory = InventoryIndex::default();
        let view = View {
            ids: &shared.ids,
            inventory: &inventory,
            reference: UnixMillis(0),
        };
        let mut out = Snapshot::default();
        items.render(&view, &mut out);
        out
    }

    #[test]
    fn refreshes_views_and_fabric_items_fill_the_item_families() {
        let limits = Limits {
            max_series: [(catalogue::ITEM_LAST_ACTIVITY.name.to_string(), 3)].into(),
        };
        let mut shared = shared(&limits);
        let mut items = Items::new(&limits);
        observe_all(
            &mut shared,
            &[
                r#"{"Id":"a","Activity":"RefreshDataset","CreationTime":"2026-11-20T10:00:00","WorkspaceId":"w1","DatasetId":"m1","DatasetName":"Sales model","ReportId":"r1"}"#,
                r#"{"Id":"b","Activity":"RefreshDataset","CreationTime":"2026-11-20T11:00:00","WorkspaceId":"w1","DatasetId":"m1","IsSuccess":false}"#,
                r#"{"Id":"c","Activity":"ViewReport","CreationTime":"2026-11-20T12:00:00","WorkspaceId":"w2","DatasetId":"m1","ReportId":"r1","ReportName":"Pipeline"}"#,
                r#"{"Id":"d","Activity":"ReadArtifact","CreationTime":"2026-11-20T13:00:00","WorkspaceId":"w2","ArtifactId":"L1","ArtifactName":"Lake","ArtifactKind":"Lakehouse"}"#,
                r#"{"Id":"e","Activity":"ViewDashboard","CreationTime":"2026-11-20T14:00:00","WorkspaceId":"w2","DashboardId":"B1"}"#,
                r#"{"Id":"f","Activity":"CreateGroup","CreationTime":"2026-11-20T15:00:00","WorkspaceId":"w2"}"#,
            ],
            |ev, clip| items.observe(ev, clip),
        );
        let out = render(&items, &shared);
        assert_eq!(
            samples(&out, &catalogue::ITEM_EVENTS),
            [
                "workspace_id=w1,item_type=semantic_model,item_id=m1,activity=RefreshDataset 2",
                "workspace_id=w2,item_type=dashboard,item_id=B1,activity=ViewDashboard 1",
                "workspace_id=w2,item_type=lakehouse,item_id=L1,activity=ReadArtifact 1",
                "workspace_id=w2,item_type=report,item_id=r1,activity=ViewReport 1",
            ]
        );
        assert_eq!(
            samples(&out, &catalogue::ITEM_EVENTS_FAILED),
            ["workspace_id=w1,item_type=semantic_model,item_id=m1,activity=RefreshDataset 1"]
        );
        assert_eq!(
            samples(&out, &catalogue::SEMANTIC_MODEL_REPORT_VIEWS),
            ["workspace_id=w2,item_id=m1 1"]
        );
        assert_eq!(
            samples(&out, &catalogue::SEMANTIC_MODEL_LAST_REFRESH),
            [
                "item_id=m1,outcome=failure 1795172400",
                "item_id=m1,outcome=success 1795168800"
            ]
        );
        assert_eq!(
            samples(&out, &catalogue::ITEM_INFO),
            [
                "item_id=L1,item_type=lakehouse,item_name=Lake,workspace_id=w2 1",
                "item_id=m1,item_type=semantic_model,item_name=Sales model,workspace_id=w1 1",
                "item_id=r1,item_type=report,item_name=Pipeline,workspace_id=w2 1",
            ]
        );
        // Four items, a cap of three: the newest time of the fourth is the overflow's.
        assert_eq!(
            samples(&out, &catalogue::ITEM_LAST_ACTIVITY),
            [
                "item_type=__other__,item_id=__other__ 1795183200",
                "item_type=lakehouse,item_id=L1 1795179600",
                "item_type=report,item_id=r1 1795176000",
                "item_type=semantic_model,item_id=m1 1795172400",
            ]
        );
        assert_eq!(items.dropped()[3], (&catalogue::ITEM_LAST_ACTIVITY, 1));
    }

    /// `powerbi_items`: the inventory's items by workspace and type, used with an event in
    /// the 28 days before the reference; zeros for the other state; names for items without
    /// events, unless an event named them later.
    #[test]
    fn inventory_items_are_used_or_unused_and_named() {
        let limits = Limits::default();
        let mut shared = shared(&limits);
        let mut items = Items::new(&limits);
        observe_all(
            &mut shared,
            &[
                r#"{"Id":"a","Activity":"RefreshDataset","CreationTime":"2026-11-20T10:00:00","WorkspaceId":"w1","DatasetId":"m1","DatasetName":"Renamed"}"#,
                r#"{"Id":"b","Activity":"ViewDashboard","CreationTime":"2026-10-01T10:00:00","WorkspaceId":"w1","DashboardId":"b1"}"#,
            ],
            |ev, clip| items.observe(ev, clip),
        );
        let w1 = shared.ids.workspaces.intern("w1");
        let at = 1_795_000_000_000; // 2026-11-18, before the refresh: its name stays
        let inventory = [
            (w1, ItemType::SemanticModel, "m1", "Sales model"),
            (w1, ItemType::SemanticModel, "m2", "Unused model"),
            (w1, ItemType::Dashboard, "b1", "Old board"),
            (w1, ItemType::Dataflow, "f1", ""),
        ];
        items.apply_inventory(inventory, at, &mut shared.truncations);
        let index = InventoryIndex {
            inventory: Some(crate::decode::inventory::Inventory::default()),
            ..InventoryIndex::default()
        };
        let view = View {
            ids: &shared.ids,
            inventory: &index,
            reference: UnixMillis(1_795_737_600_000), // 2026-11-27
        };
        let mut out = Snapshot::default();
        items.render(&view, &mut out);
        assert_eq!(
            samples(&out, &catalogue::ITEMS),
            [
                "workspace_id=w1,item_type=dashboard,state=unused 1",
                "workspace_id=w1,item_type=dashboard,state=used 0",
                "workspace_id=w1,item_type=dataflow,state=unused 1",
                "workspace_id=w1,item_type=dataflow,state=used 0",
                "workspace_id=w1,item_type=semantic_model,state=unused 1",
                "workspace_id=w1,item_type=semantic_model,state=used 1",
            ]
        );
        assert_eq!(
            samples(&out, &catalogue::ITEM_INFO),
            [
                "item_id=b1,item_type=dashboard,item_name=Old board,workspace_id=w1 1",
                "item_id=m1,item_type=semantic_model,item_name=Renamed,workspace_id=w1 1",
                "item_id=m2,item_type=semantic_model,item_name=Unused model,workspace_id=w1 1",
            ]
        );
    }

    #[test]
    fn the_state_round_trips_and_idle_items_are_released() {
        let limits = Limits::default();
        let mut shared = shared(&limits);
        let mut items = Items::new(&limits);
        observe_all(
            &mut shared,
            &[
                r#"{"Id":"a","Activity":"RefreshDataset","CreationTime":"2026-10-01T10:00:00","WorkspaceId":"w1","DatasetId":"old"}"#,
                r#"{"Id":"b","Activity":"RunArtifact","CreationTime":"2026-11-20T10:00:00","WorkspaceId":"w1","ArtifactId":"n1","ArtifactKind":"Notebook"}"#,
            ],
            |ev, clip| items.observe(ev, clip),
        );
        let saved = items.export();
        assert!(!saved.is_empty());
        let json = serde_json::to_string(&saved).unwrap();
        let back: ItemsState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, saved);
        assert!(serde_json::from_str::<ItemsState>("{}").unwrap().is_empty());
        let mut restored = Items::import(back, &limits, 0);
        let cutoff = 1_794_000_000_000; // 2026-11-11: the October refresh is idle
        let mut expired = Expired::default();
        restored.expire(
            Sweep {
                newest: cutoff,
                cutoff,
            },
            &mut expired,
        );
        assert_eq!(expired.get(&catalogue::ITEM_EVENTS), 1);
        assert_eq!(expired.get(&catalogue::SEMANTIC_MODEL_LAST_REFRESH), 1);
        assert_eq!(restored.ids.len(), 1, "the idle model's id is released");
        let out = render(&restored, &shared);
        assert_eq!(
            samples(&out, &catalogue::ITEM_EVENTS),
            ["workspace_id=w1,item_type=notebook,item_id=n1,activity=RunArtifact 1"]
        );
    }
}
