//! The freshness group: when things last (or first) happened. Families
//! `powerbi_report_last_view_timestamp_seconds`,
//! `powerbi_workspace_last_activity_timestamp_seconds`,
//! `powerbi_activity_first_seen_timestamp_seconds` and `powerbi_reports` (the inventory's
//! reports, used or not by their last view).
//!
//! Invariants:
//! - a timestamp is the event's `CreationTime`, never the time it was read, so a late event
//!   moves a "last" time only forward and a "first seen" time only back;
//! - keys past a family's cap share its overflow timestamp, so "the newest anywhere" stays
//!   true;
//! - activities never expire: the API's activity names are a fixed vocabulary, and the
//!   first-seen family must not forget one.

use std::collections::BTreeMap;

use super::labels::{self, label_set};
use super::memory::HeapUsage;
use super::series::{CappedTimes, Keep, Sym, TimesState};
use super::shared::{Counted, Expired, Refs, Sweep, View};
use super::Limits;
use crate::catalogue::{self, Family, Snapshot, OVERFLOW_LABEL};

label_set!(
    /// A report.
    ReportLabel { report_id } for REPORT_LAST_VIEW
);
label_set!(
    /// A workspace.
    WorkspaceLabel { workspace_id } for WORKSPACE_LAST_ACTIVITY
);
label_set!(
    /// An activity.
    ActivityLabel { activity } for ACTIVITY_FIRST_SEEN
);
label_set!(
    /// A workspace's inventory reports in one state.
    ReportsInState { workspace_id, state } for REPORTS
);

/// Whether an inventory report was viewed in the last 28 days: the `state` of `powerbi_reports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReportState {
    Unused,
    Used,
}

impl ReportState {
    pub const ALL: [ReportState; 2] = [ReportState::Unused, ReportState::Used];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportState::Unused => "unused",
            ReportState::Used => "used",
        }
    }
}

/// How far back a view makes an inventory report "used".
const USED_WITHIN_MS: i64 = 28 * 86_400_000;

#[derive(Debug)]
pub struct Freshness {
    report_last_view: CappedTimes<Sym>,
    workspace_last_activity: CappedTimes<Sym>,
    activity_first_seen: CappedTimes<Sym>,
}

/// The durable form of [`Freshness`] (saved under the keys [`super::state_file`] names).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FreshnessState {
    pub(super) report_last_view: TimesState<Sym>,
    pub(super) workspace_last_activity: TimesState<Sym>,
    pub(super) activity_first_seen: TimesState<Sym>,
}

impl Freshness {
    pub fn new(limits: &Limits) -> Self {
        Self::import(FreshnessState::default(), limits)
    }

    #[inline]
    pub fn observe(&mut self, ev: &Counted<'_, '_>) {
        let time = ev.time();
        self.activity_first_seen.record(ev.activity_id, time);
        if ev.event.workspace_id.is_some() {
            self.workspace_last_activity.record(ev.workspace, time);
        }
        if ev.is_report_view {
            self.report_last_view.record(ev.report, time);
        }
    }

    pub fn expire(&mut self, sweep: Sweep, expired: &mut Expired) {
        use catalogue::*;
        let cutoff = sweep.cutoff;
        expired.add(&REPORT_LAST_VIEW, self.report_last_view.expire(cutoff));
        expired.add(
            &WORKSPACE_LAST_ACTIVITY,
            self.workspace_last_activity.expire(cutoff),
        );
    }

    pub fn refs(&self, refs: &mut Refs) {
        refs.workspaces
            .extend(self.workspace_last_activity.iter().map(|(&w, _)| w));
        refs.reports
            .extend(self.report_last_view.iter().map(|(&r, _)| r));
    }

    pub fn heap(&self, usage: &mut HeapUsage) {
        use catalogue::*;
        for (family, times) in [
            (&REPORT_LAST_VIEW, &self.report_last_view),
            (&WORKSPACE_LAST_ACTIVITY, &self.workspace_last_activity),
            (&ACTIVITY_FIRST_SEEN, &self.activity_first_seen),
        ] {
            usage.family(family, times.len(), times.heap_bytes());
        }
    }

    pub fn dropped(&self) -> [(&'static Family, u64); 3] {
        use catalogue::*;
        [
            (&REPORT_LAST_VIEW, self.report_last_view.dropped()),
            (
                &WORKSPACE_LAST_ACTIVITY,
                self.workspace_last_activity.dropped(),
            ),
            (&ACTIVITY_FIRST_SEEN, self.activity_first_seen.dropped()),
        ]
    }

    pub fn render(&self, view: &View<'_>, out: &mut Snapshot) {
        use catalogue::*;
        let ids = view.ids;
        let first_seen = times(&self.activity_first_seen, |a| ActivityLabel {
            activity: ids.activity(a),
        });
        labels::push(out, &ACTIVITY_FIRST_SEEN, first_seen);
        if view.inventory.inventory.is_some() {
            labels::push(out, &REPORTS, self.report_states(view));
        }
        let last_view = times(&self.report_last_view, |r| ReportLabel {
            report_id: ids.report(r),
        });
        labels::push(out, &REPORT_LAST_VIEW, last_view);
        let last_activity = times(&self.workspace_last_activity, |w| WorkspaceLabel {
            workspace_id: ids.workspace(w),
        });
        labels::push(out, &WORKSPACE_LAST_ACTIVITY, last_activity);
    }

    /// `powerbi_reports`: inventory reports per workspace, used (viewed in the last 28 days
    /// before the reference) or not; both states of every workspace, zeros included.
    fn report_states(&self, view: &View<'_>) -> Vec<(ReportsInState, f64)> {
        let since = view.reference.0 - USED_WITHIN_MS;
        let workspace = |ws: Option<Sym>| ws.map_or(String::new(), |w| view.ids.workspace(w));
        let mut counts: BTreeMap<(String, ReportState), u64> = BTreeMap::new();
        for (report, ws) in &view.inventory.reports {
            let ws = workspace(*ws);
            let used = self
                .report_last_view
                .get(report)
                .is_some_and(|t| t >= since);
            for state in ReportState::ALL {
                counts.entry((ws.clone(), state)).or_default();
            }
            let state = if used {
                ReportState::Used
            } else {
                ReportState::Unused
            };
            *counts.entry((ws, state)).or_default() += 1;
        }
        let cap = catalogue::REPORTS.default_cap.unwrap_or(usize::MAX);
        counts
            .into_iter()
            .take(cap)
            .map(|((workspace_id, state), n)| {
                let state = state.as_str().to_string();
                (
                    ReportsInState {
                        workspace_id,
                        state,
                    },
                    n as f64,
                )
            })
            .collect()
    }

    pub fn export(&self) -> FreshnessState {
        FreshnessState {
            report_last_view: self.report_last_view.export(),
            workspace_last_activity: self.workspace_last_activity.export(),
            activity_first_seen: self.activity_first_seen.export(),
        }
    }

    pub fn import(state: FreshnessState, limits: &Limits) -> Self {
        use catalogue::*;
        let cap = |f: &Family| limits.cap(f);
        Freshness {
            report_last_view: CappedTimes::import(
                state.report_last_view,
                cap(&REPORT_LAST_VIEW),
                Keep::Latest,
            ),
            workspace_last_activity: CappedTimes::import(
                state.workspace_last_activity,
                cap(&WORKSPACE_LAST_ACTIVITY),
                Keep::Latest,
            ),
            activity_first_seen: CappedTimes::import(
                state.activity_first_seen,
                cap(&ACTIVITY_FIRST_SEEN),
                Keep::Earliest,
            ),
        }
    }
}

/// A timestamp family's samples, in seconds, with its overflow series.
fn times<L: OverflowLabel>(times: &CappedTimes<Sym>, label: impl Fn(Sym) -> L) -> Vec<(L, f64)> {
    let seconds = |ms: i64| ms as f64 / 1000.0;
    times
        .iter()
        .map(|(&k, ms)| (label(k), seconds(ms)))
        .chain(times.overflow().map(|ms| (L::overflow(), seconds(ms))))
        .collect()
}

/// The label set of a timestamp family's overflow series.
trait OverflowLabel {
    fn overflow() -> Self;
}

macro_rules! overflow_label {
    ($($name:ident { $field:ident }),*) => {
        $(impl OverflowLabel for $name {
            fn overflow() -> Self {
                $name { $field: OVERFLOW_LABEL.to_string() }
            }
        })*
    };
}
overflow_label!(
    ReportLabel { report_id },
    WorkspaceLabel { workspace_id },
    ActivityLabel { activity }
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::shared::testing::{observe_all, samples, shared};
    use crate::aggregate::shared::InventoryIndex;
    use crate::decode::inventory::Inventory;
    use crate::decode::UnixMillis;

    #[test]
    fn inventory_reports_are_used_only_with_a_view_in_the_last_28_days() {
        let limits = Limits::default();
        let mut shared = shared(&limits);
        let mut freshness = Freshness::new(&limits);
        observe_all(
            &mut shared,
            &[
                r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","WorkspaceId":"w1","ReportId":"r1"}"#,
                r#"{"Id":"b","Activity":"ViewReport","CreationTime":"2026-10-01T10:00:00","WorkspaceId":"w1","ReportId":"r2"}"#,
                r#"{"Id":"c","Activity":"EditReport","CreationTime":"2026-11-20T11:00:00","WorkspaceId":"w1","ReportId":"r3"}"#,
            ],
            |ev, _| freshness.observe(ev),
        );
        let ws = shared.ids.workspaces.intern("w1");
        let mut report = |id: &str| shared.ids.reports.intern(id).unwrap();
        let inventory = InventoryIndex {
            inventory: Some(Inventory::default()),
            reports: vec![(report("r1"), ws), (report("r2"), ws), (report("r3"), ws)],
            ..InventoryIndex::default()
        };
        let view = View {
            ids: &shared.ids,
            inventory: &inventory,
            reference: UnixMillis(1_795_737_600_000), // 2026-11-27
        };
        let mut out = Snapshot::default();
        freshness.render(&view, &mut out);
        assert_eq!(
            samples(&out, &catalogue::REPORTS),
            [
                "workspace_id=w1,state=unused 2",
                "workspace_id=w1,state=used 1"
            ]
        );
        // An edit is no view; a first-seen time is the earliest event of the activity.
        assert_eq!(
            samples(&out, &catalogue::REPORT_LAST_VIEW),
            ["report_id=r1 1795168800", "report_id=r2 1790848800"]
        );
        assert_eq!(
            samples(&out, &catalogue::ACTIVITY_FIRST_SEEN),
            [
                "activity=EditReport 1795172400",
                "activity=ViewReport 1790848800"
            ]
        );
    }
}
