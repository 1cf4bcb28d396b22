//! What the family groups share: the interned workspace, report and activity ids, the label
//! values cut to length, the inventory's facts, and the event as every group sees it.
//!
//! Invariants:
//! - an event's ids are interned once, here ([`Shared::intern`]), before any group sees it;
//!   groups keep [`Sym`]s, never the strings;
//! - every label value taken from an event passes [`Truncations::clip`], which counts a cut
//!   under the label it was cut for ([`ClippedLabel`], the `label` of
//!   `powerbi_label_values_truncated_total`);
//! - an id is released only when no group, nor the inventory, refers to it ([`Refs`]).

use std::collections::BTreeMap;

use hashbrown::{HashMap, HashSet};

use super::labels::{self, label_set};
use super::memory::{HeapUsage, Holder, Interned};
use super::series::{self, Interner, Sym};
use super::{counts_by_name, Limits};
use crate::catalogue::{self, Family, Snapshot};
use crate::decode::inventory::Inventory;
use crate::decode::{ActivityEvent, UnixMillis};

/// Labels whose values come from events and may be cut to [`series::MAX_LABEL_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClippedLabel {
    Activity,
    ReportId,
    ReportName,
    WorkspaceId,
    WorkspaceName,
    User,
    ItemId,
    ItemName,
}

impl ClippedLabel {
    /// Every label, in the order of the saved counts.
    pub const ALL: [ClippedLabel; 8] = [
        ClippedLabel::Activity,
        ClippedLabel::ReportId,
        ClippedLabel::ReportName,
        ClippedLabel::WorkspaceId,
        ClippedLabel::WorkspaceName,
        ClippedLabel::User,
        ClippedLabel::ItemId,
        ClippedLabel::ItemName,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClippedLabel::Activity => "activity",
            ClippedLabel::ReportId => "report_id",
            ClippedLabel::ReportName => "report_name",
            ClippedLabel::WorkspaceId => "workspace_id",
            ClippedLabel::WorkspaceName => "workspace_name",
            ClippedLabel::User => "user",
            ClippedLabel::ItemId => "item_id",
            ClippedLabel::ItemName => "item_name",
        }
    }
}

label_set!(
    /// A label of the families, by name.
    LabelName { label } for LABEL_VALUES_TRUNCATED
);

/// Label values cut to length, by label.
#[derive(Debug, Default)]
pub struct Truncations {
    /// In [`ClippedLabel::ALL`] order (`ClippedLabel as usize`).
    counts: [u64; ClippedLabel::ALL.len()],
}

impl Truncations {
    /// `value` cut to the label length limit; a cut is counted under `label`.
    pub fn clip<'a>(&mut self, label: ClippedLabel, value: &'a str) -> &'a str {
        let (value, cut) = series::clip(value);
        if cut {
            self.counts[label as usize] += 1;
        }
        value
    }

    /// [`Truncations::clip`] of an owned value, copied only when cut.
    pub fn clip_owned(&mut self, label: ClippedLabel, value: String) -> String {
        let clipped = self.clip(label, &value);
        if clipped.len() == value.len() {
            value
        } else {
            clipped.to_string()
        }
    }

    pub fn export(&self) -> Vec<(String, u64)> {
        ClippedLabel::ALL
            .iter()
            .zip(self.counts)
            .map(|(l, n)| (l.as_str().to_string(), n))
            .collect()
    }

    pub fn import(saved: &[(String, u64)]) -> Self {
        Truncations {
            counts: counts_by_name(ClippedLabel::ALL.iter().map(|l| l.as_str()), saved),
        }
    }

    pub fn render(&self, out: &mut Snapshot) {
        labels::push(
            out,
            &catalogue::LABEL_VALUES_TRUNCATED,
            ClippedLabel::ALL.iter().zip(self.counts).map(|(l, n)| {
                let label = l.as_str().to_string();
                (LabelName { label }, n as f64)
            }),
        );
    }
}

/// The interners of the ids every group refers to.
#[derive(Debug)]
pub struct Ids {
    pub workspaces: Interner,
    pub reports: Interner,
    pub activities: Interner,
}

impl Ids {
    /// Each interner holds as many ids as the largest family keyed by them.
    pub fn new(limits: &Limits) -> Self {
        use catalogue::*;
        let cap = |families: &[&Family]| families.iter().map(|f| limits.cap(f)).max();
        let workspaces = cap(&[
            &ACTIVITY_EVENTS,
            &ACTIVITY_EVENTS_FAILED,
            &REPORT_EVENTS,
            &WORKSPACE_INFO,
            &WORKSPACE_LAST_ACTIVITY,
        ])
        .unwrap_or(0)
        .max(super::users::workspace_users_cap(limits));
        let reports = cap(&[&REPORT_EVENTS, &REPORT_INFO, &REPORT_LAST_VIEW])
            .unwrap_or(0)
            .max(super::viewers::report_viewers_cap(limits));
        let activities = cap(&[&ACTIVITY_EVENTS, &REPORT_EVENTS, &ACTIVITY_FIRST_SEEN]);
        Ids {
            workspaces: Interner::new(workspaces),
            reports: Interner::new(reports),
            activities: Interner::new(activities.unwrap_or(0)),
        }
    }

    pub fn workspace(&self, ws: Sym) -> String {
        self.workspaces.name(ws).to_string()
    }

    pub fn report(&self, report: Sym) -> String {
        self.reports.name(report).to_string()
    }

    pub fn activity(&self, activity: Sym) -> String {
        self.activities.name(activity).to_string()
    }

    pub fn heap(&self, usage: &mut HeapUsage) {
        for (kind, ids) in [
            (Interned::Workspaces, &self.workspaces),
            (Interned::Reports, &self.reports),
            (Interned::Activities, &self.activities),
        ] {
            usage.add(Holder::Interner(kind), ids.len(), ids.heap_bytes());
        }
    }
}

/// The shared part of the aggregator's state.
#[derive(Debug)]
pub struct Shared {
    pub ids: Ids,
    pub truncations: Truncations,
}

impl Shared {
    /// Interns the ids of a new, counted event (once, for every group). `newest` is the newest
    /// event time counted before it.
    #[inline]
    pub fn intern<'e, 'a>(
        &mut self,
        event: &'e ActivityEvent<'a>,
        newest: Option<UnixMillis>,
    ) -> Counted<'e, 'a> {
        let ws_id = event.workspace_id.as_ref().map_or("", |w| w.as_str());
        let ws_id = self.truncations.clip(ClippedLabel::WorkspaceId, ws_id);
        let workspace = self.ids.workspaces.intern(ws_id);
        let activity = self
            .truncations
            .clip(ClippedLabel::Activity, event.activity.as_str());
        let activity_id = self.ids.activities.intern(activity);
        let report = event.report_id.as_ref().and_then(|r| {
            let r = self.truncations.clip(ClippedLabel::ReportId, r.as_str());
            self.ids.reports.intern(r)
        });
        Counted {
            event,
            activity,
            workspace,
            activity_id,
            report,
            is_report_view: event.report_id.is_some() && activity == "ViewReport",
            newest: newest.map_or(event.time, |w| w.max(event.time)),
        }
    }
}

/// A new event that passed the filters, with its ids interned.
pub struct Counted<'e, 'a> {
    pub event: &'e ActivityEvent<'a>,
    /// The `Activity`, cut to length.
    pub activity: &'e str,
    /// The `WorkspaceId` (the empty one when the event has none); `None` past the cap.
    pub workspace: Option<Sym>,
    pub activity_id: Option<Sym>,
    /// The `ReportId`, when the event has one and it is under the cap.
    pub report: Option<Sym>,
    /// A `ViewReport` of a report.
    pub is_report_view: bool,
    /// The newest event time counted, this one included.
    pub newest: UnixMillis,
}

impl Counted<'_, '_> {
    pub fn time(&self) -> i64 {
        self.event.time.0
    }

    /// The workspace and activity, when both are under their caps.
    pub fn workspace_activity(&self) -> Option<(Sym, Sym)> {
        self.workspace.zip(self.activity_id)
    }

    /// The workspace, for events that name one.
    pub fn named_workspace(&self) -> Option<Option<Sym>> {
        self.event.workspace_id.is_some().then_some(self.workspace)
    }
}

/// What the inventory says about a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceMeta {
    pub personal: bool,
    pub capacity_id: String,
}

/// The last inventory applied, and what it says per interned workspace and report.
#[derive(Debug, Default)]
pub struct InventoryIndex {
    pub inventory: Option<Inventory>,
    pub workspaces: HashMap<Sym, WorkspaceMeta>,
    /// Each report of the inventory and its workspace.
    pub reports: Vec<(Sym, Option<Sym>)>,
}

/// What a group renders from: the shared ids, the inventory and the reference time.
pub struct View<'a> {
    pub ids: &'a Ids,
    pub inventory: &'a InventoryIndex,
    /// The end of the windows (the newest event, or the wall clock if later).
    pub reference: UnixMillis,
}

/// Series expired so far, by family.
#[derive(Debug, Default)]
pub struct Expired(pub BTreeMap<&'static str, u64>);

impl Expired {
    pub fn add(&mut self, family: &Family, n: u64) {
        if n > 0 {
            *self.0.entry(family.name).or_default() += n;
        }
    }

    pub fn get(&self, family: &Family) -> u64 {
        self.0.get(family.name).copied().unwrap_or(0)
    }
}

/// One expiry sweep: the newest event time, and the cutoff series must be newer than.
#[derive(Debug, Clone, Copy)]
pub struct Sweep {
    pub newest: i64,
    pub cutoff: i64,
}

/// The workspace and report ids still referred to.
#[derive(Debug, Default)]
pub struct Refs {
    pub workspaces: HashSet<Sym>,
    pub reports: HashSet<Sym>,
}

/// A name and the workspace it belongs to, as the newest event (or the inventory) gave them:
/// what a report's or an item's `_info` series says besides its id.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NameInWorkspace {
    pub name: String,
    pub workspace: Sym,
}

impl PartialEq<(&str, Sym)> for NameInWorkspace {
    fn eq(&self, other: &(&str, Sym)) -> bool {
        self.name == other.0 && self.workspace == other.1
    }
}

impl super::memory::HeapSize for NameInWorkspace {
    fn heap_bytes(&self) -> usize {
        self.name.heap_bytes()
    }
}

/// The owned [`NameInWorkspace`] of a name seen in an event.
pub fn name_in_workspace((name, workspace): &(&str, Sym)) -> NameInWorkspace {
    NameInWorkspace {
        name: name.to_string(),
        workspace: *workspace,
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::decode::decode_event;

    /// Fresh shared ids under `limits`.
    pub fn shared(limits: &Limits) -> Shared {
        Shared {
            ids: Ids::new(limits),
            truncations: Truncations::default(),
        }
    }

    /// Decodes each JSON event, interns it in `shared` and hands it to `observe`, as the
    /// aggregator does for a new event that passed the filters.
    pub fn observe_all(
        shared: &mut Shared,
        events: &[&str],
        mut observe: impl FnMut(&Counted<'_, '_>, &mut Truncations),
    ) {
        let mut newest = None;
        for json in events {
            let event = decode_event(json.as_bytes()).unwrap();
            let counted = shared.intern(&event, newest);
            newest = Some(counted.newest);
            observe(&counted, &mut shared.truncations);
        }
    }

    /// `family`'s samples as `label=value,... value` lines, sorted.
    pub fn samples(snapshot: &Snapshot, family: &Family) -> Vec<String> {
        let Some(f) = snapshot.family(family.name) else {
            return Vec::new();
        };
        f.samples
            .iter()
            .map(|s| {
                let labels: Vec<String> = (family.labels.iter().zip(s.labels()))
                    .map(|(l, v)| format!("{l}={v}"))
                    .collect();
                format!("{} {}", labels.join(","), s.value)
            })
            .collect()
    }
}
