//! The usage group: what happened where. Families `powerbi_activity_events_total`,
//! `powerbi_activity_events_failed_total`, `powerbi_report_events_total`,
//! `powerbi_workspace_info` and `powerbi_report_info`.
//!
//! Invariants:
//! - ids label the counters, names live only in the `_info` families: the newest event by
//!   `CreationTime` (or the inventory, as of its fetch time) names an id, so a rename never
//!   forks a counter;
//! - every family is capped; past the cap a sample goes to the family's overflow series, so
//!   its sum stays exact.

use super::labels::{self, label_set, WorkspaceActivity};
use super::memory::HeapUsage;
use super::series::{CappedCounters, CappedInfo, CountersState, InfoState, Sym};
use super::shared::{ClippedLabel, Counted, Expired, Refs, Sweep, Truncations, View};
use super::Limits;
use crate::catalogue::{self, Family, Snapshot};

label_set!(
    /// A report's activity in a workspace.
    ReportActivity { workspace_id, report_id, activity } for REPORT_EVENTS
);
label_set!(
    /// A workspace's name and, from the inventory, its type and capacity.
    WorkspaceInfo { workspace_id, workspace_name, r#type, capacity_id } for WORKSPACE_INFO
);
label_set!(
    /// A report's name and workspace.
    ReportInfo { report_id, report_name, workspace_id } for REPORT_INFO
);

use super::shared::name_in_workspace as report_name;
/// A report's name and workspace (the saved state's `report_info` values).
pub use super::shared::NameInWorkspace as ReportName;

#[derive(Debug)]
pub struct Usage {
    activity_events: CappedCounters<(Sym, Sym)>,
    activity_failed: CappedCounters<(Sym, Sym)>,
    report_events: CappedCounters<(Sym, Sym, Sym)>,
    workspace_info: CappedInfo<Sym, String>,
    report_info: CappedInfo<Sym, ReportName>,
}

/// The durable form of [`Usage`] (saved under the keys [`super::state_file`] names).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageState {
    pub(super) activity_events: CountersState<(Sym, Sym)>,
    pub(super) activity_failed: CountersState<(Sym, Sym)>,
    pub(super) report_events: CountersState<(Sym, Sym, Sym)>,
    pub(super) workspace_info: InfoState<Sym, String>,
    pub(super) report_info: InfoState<Sym, ReportName>,
}

impl Usage {
    pub fn new(limits: &Limits) -> Self {
        use catalogue::*;
        Usage {
            activity_events: CappedCounters::new(limits.cap(&ACTIVITY_EVENTS)),
            activity_failed: CappedCounters::new(limits.cap(&ACTIVITY_EVENTS_FAILED)),
            report_events: CappedCounters::new(limits.cap(&REPORT_EVENTS)),
            workspace_info: CappedInfo::new(limits.cap(&WORKSPACE_INFO)),
            report_info: CappedInfo::new(limits.cap(&REPORT_INFO)),
        }
    }

    #[inline]
    pub fn observe(&mut self, ev: &Counted<'_, '_>, clip: &mut Truncations) {
        let (e, time) = (ev.event, ev.time());
        let ws_act = ev.workspace_activity();
        self.activity_events.inc(ws_act, time);
        if !e.success {
            self.activity_failed.inc(ws_act, time);
        }
        if e.report_id.is_some() {
            let key = ws_act.zip(ev.report).map(|((w, a), r)| (w, r, a));
            self.report_events.inc(key, time);
            if let (Some(name), Some(w)) = (&e.report_name, ev.workspace) {
                let name = clip.clip(ClippedLabel::ReportName, name.as_ref());
                self.report_info
                    .update(ev.report, &(name, w), time, report_name);
            }
        }
        if let (Some(_), Some(name)) = (&e.workspace_id, &e.workspace_name) {
            let name = clip.clip(ClippedLabel::WorkspaceName, name.as_ref());
            self.workspace_info
                .update(ev.workspace, name, time, str::to_owned);
        }
    }

    /// Names a workspace as of `time` (the inventory's fetch time).
    pub fn name_workspace(&mut self, ws: Sym, name: &str, time: i64) {
        self.workspace_info
            .update(Some(ws), name, time, str::to_owned);
    }

    /// Names a report and its workspace as of `time` (the inventory's fetch time).
    pub fn name_report(&mut self, report: Sym, name: &str, ws: Sym, time: i64) {
        self.report_info
            .update(Some(report), &(name, ws), time, report_name);
    }

    pub fn workspace_name(&self, ws: Sym) -> Option<&String> {
        self.workspace_info.get(&ws)
    }

    pub fn report_name(&self, report: Sym) -> Option<&ReportName> {
        self.report_info.get(&report)
    }

    pub fn expire(&mut self, sweep: Sweep, expired: &mut Expired) {
        use catalogue::*;
        let cutoff = sweep.cutoff;
        expired.add(&ACTIVITY_EVENTS, self.activity_events.expire(cutoff));
        expired.add(&ACTIVITY_EVENTS_FAILED, self.activity_failed.expire(cutoff));
        expired.add(&REPORT_EVENTS, self.report_events.expire(cutoff));
        expired.add(&WORKSPACE_INFO, self.workspace_info.expire(cutoff));
        expired.add(&REPORT_INFO, self.report_info.expire(cutoff));
    }

    pub fn refs(&self, refs: &mut Refs) {
        for counters in [&self.activity_events, &self.activity_failed] {
            refs.workspaces
                .extend(counters.iter().map(|(&(w, _), _)| w));
        }
        for (&(w, r, _), _) in self.report_events.iter() {
            refs.workspaces.insert(w);
            refs.reports.insert(r);
        }
        refs.workspaces
            .extend(self.workspace_info.iter().map(|(&w, _)| w));
        for (&r, info) in self.report_info.iter() {
            refs.reports.insert(r);
            refs.workspaces.insert(info.workspace);
        }
    }

    pub fn heap(&self, usage: &mut HeapUsage) {
        use catalogue::*;
        for (family, counters) in [
            (&ACTIVITY_EVENTS, &self.activity_events),
            (&ACTIVITY_EVENTS_FAILED, &self.activity_failed),
        ] {
            usage.family(family, counters.len(), counters.heap_bytes());
        }
        let reports = &self.report_events;
        usage.family(&REPORT_EVENTS, reports.len(), reports.heap_bytes());
        let info = &self.workspace_info;
        usage.family(&WORKSPACE_INFO, info.len(), info.heap_bytes());
        let info = &self.report_info;
        usage.family(&REPORT_INFO, info.len(), info.heap_bytes());
    }

    pub fn dropped(&self) -> [(&'static Family, u64); 5] {
        use catalogue::*;
        [
            (&ACTIVITY_EVENTS, self.activity_events.dropped()),
            (&ACTIVITY_EVENTS_FAILED, self.activity_failed.dropped()),
            (&REPORT_EVENTS, self.report_events.dropped()),
            (&REPORT_INFO, self.report_info.dropped()),
            (&WORKSPACE_INFO, self.workspace_info.dropped()),
        ]
    }

    pub fn render(&self, view: &View<'_>, out: &mut Snapshot) {
        use catalogue::*;
        let ids = view.ids;
        for (family, counters) in [
            (&ACTIVITY_EVENTS_FAILED, &self.activity_failed),
            (&ACTIVITY_EVENTS, &self.activity_events),
        ] {
            let samples = counters.iter().map(|(&(w, a), v)| {
                let labels = WorkspaceActivity {
                    workspace_id: ids.workspace(w),
                    activity: ids.activity(a),
                };
                (labels, v as f64)
            });
            let overflow = counters.overflow().map(|v| v as f64);
            labels::push_capped(out, family, samples, overflow);
        }
        let samples = self.report_events.iter().map(|(&(w, r, a), v)| {
            let labels = ReportActivity {
                workspace_id: ids.workspace(w),
                report_id: ids.report(r),
                activity: ids.activity(a),
            };
            (labels, v as f64)
        });
        let overflow = self.report_events.overflow().map(|v| v as f64);
        labels::push_capped(out, &REPORT_EVENTS, samples, overflow);
        self.render_info(view, out);
    }

    fn render_info(&self, view: &View<'_>, out: &mut Snapshot) {
        use catalogue::*;
        let ids = view.ids;
        let samples = self.report_info.iter().map(|(&r, info)| {
            let labels = ReportInfo {
                report_id: ids.report(r),
                report_name: info.name.clone(),
                workspace_id: ids.workspace(info.workspace),
            };
            (labels, 1.0)
        });
        let overflow = self.report_info.overflowed().then_some(1.0);
        labels::push_capped(out, &REPORT_INFO, samples, overflow);
        let samples = self.workspace_info.iter().map(|(&w, name)| {
            let (kind, capacity_id) = match view.inventory.workspaces.get(&w) {
                Some(meta) => {
                    let kind = if meta.personal { "personal" } else { "shared" };
                    (kind.to_string(), meta.capacity_id.clone())
                }
                None => (String::new(), String::new()),
            };
            let labels = WorkspaceInfo {
                workspace_id: ids.workspace(w),
                workspace_name: name.clone(),
                r#type: kind,
                capacity_id,
            };
            (labels, 1.0)
        });
        let overflow = self.workspace_info.overflowed().then_some(1.0);
        labels::push_capped(out, &WORKSPACE_INFO, samples, overflow);
    }

    pub fn export(&self) -> UsageState {
        UsageState {
            activity_events: self.activity_events.export(),
            activity_failed: self.activity_failed.export(),
            report_events: self.report_events.export(),
            workspace_info: self.workspace_info.export(),
            report_info: self.report_info.export(),
        }
    }

    /// Resumes under today's caps; counters saved without event times count as touched at
    /// `touched`.
    pub fn import(state: UsageState, limits: &Limits, touched: i64) -> Self {
        use catalogue::*;
        let cap = |f: &Family| limits.cap(f);
        Usage {
            activity_events: CappedCounters::import(
                state.activity_events,
                cap(&ACTIVITY_EVENTS),
                touched,
            ),
            activity_failed: CappedCounters::import(
                state.activity_failed,
                cap(&ACTIVITY_EVENTS_FAILED),
                touched,
            ),
            report_events: CappedCounters::import(
                state.report_events,
                cap(&REPORT_EVENTS),
                touched,
            ),
            workspace_info: CappedInfo::import(state.workspace_info, cap(&WORKSPACE_INFO)),
            report_info: CappedInfo::import(state.report_info, cap(&REPORT_INFO)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::shared::testing::{observe_all, samples, shared};
    use crate::aggregate::shared::InventoryIndex;
    use crate::decode::UnixMillis;

    #[test]
    fn past_the_cap_samples_go_to_the_overflow_series_and_names_follow_the_newest_event() {
        let limits = Limits {
            max_series: [(catalogue::ACTIVITY_EVENTS.name.to_string(), 1)].into(),
        };
        let mut shared = shared(&limits);
        let mut usage = Usage::new(&limits);
        observe_all(
            &mut shared,
            &[
                r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","WorkspaceId":"w1","WorkSpaceName":"New"}"#,
                r#"{"Id":"b","Activity":"ViewReport","CreationTime":"2026-11-20T09:00:00","WorkspaceId":"w1","WorkSpaceName":"Old"}"#,
                r#"{"Id":"c","Activity":"ExportReport","CreationTime":"2026-11-20T11:00:00","WorkspaceId":"w1","IsSuccess":false}"#,
            ],
            |ev, clip| usage.observe(ev, clip),
        );
        let inventory = InventoryIndex::default();
        let view = View {
            ids: &shared.ids,
            inventory: &inventory,
            reference: UnixMillis(0),
        };
        let mut out = Snapshot::default();
        usage.render(&view, &mut out);
        assert_eq!(
            samples(&out, &catalogue::ACTIVITY_EVENTS),
            [
                "workspace_id=__other__,activity=__other__ 1",
                "workspace_id=w1,activity=ViewReport 2"
            ]
        );
        assert_eq!(
            samples(&out, &catalogue::ACTIVITY_EVENTS_FAILED),
            ["workspace_id=w1,activity=ExportReport 1"]
        );
        assert_eq!(
            samples(&out, &catalogue::WORKSPACE_INFO),
            ["workspace_id=w1,workspace_name=New,type=,capacity_id= 1"]
        );
        assert_eq!(usage.dropped()[0], (&catalogue::ACTIVITY_EVENTS, 1));
    }
}
