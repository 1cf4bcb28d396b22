//! Aggregate stage: decoded events → the state of every metric family.
//!
//! Invariants:
//! - every event `Id` is counted at most once ([`dedup`]); duplicates and rejected events
//!   are counted in self metrics, so
//!   `processed = Σ activity_events + duplicate + Σ filtered + Σ rejected`; scoping
//!   [`filter`]s run after dedup, so a re-read filtered event is a duplicate, not filtered
//!   twice;
//! - counters only grow; every family is capped ([`series`]) and its sum stays exact;
//! - a series idle (no event) for longer than the series retention expires, counted in
//!   `powerbi_series_expired_total{family}`, and ids no series refers to any more are
//!   released, so months of churn neither fill the caps nor grow the state (see
//!   [`Aggregator::expire_series`]);
//! - ids label the counters, names live only in the `_info` families (the newest event by
//!   `CreationTime` names an id), so a rename never forks a counter;
//! - memory is bounded by series, users and the dedup window, not by the number of events.
//!
//! [`Aggregator::snapshot`] copies the state out as owned, sorted samples, so exposition never
//! holds the aggregator while encoding.

pub mod dedup;
pub mod filter;
pub mod outbox;
pub mod people;
pub mod recent;
pub mod series;
pub mod settings;
pub mod users;
pub mod viewers;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::catalogue::{self, Family, Snapshot, OVERFLOW_LABEL};
use crate::decode::event::lower_guid;
use crate::decode::inventory::Inventory;
use crate::decode::{ActivityEvent, EventSink, Rejection, UnixMillis, UserKey, TYPED_FIELDS};
use crate::source::replay::{ReplayPass, ReplayProgress};
use crate::source::SourceStatus;
use dedup::{Dedup, DedupAnchor, Seen};
use filter::{FilterReason, FilterSpec, Filters};
use outbox::Outbox;
use people::{UserLabelConfig, UserLabeller};
use series::{CappedCounters, CappedInfo, CappedTimes, Interner, Keep, Sym};
use users::{DistinctUsers, OVERFLOW_WORKSPACE, WINDOWS};

/// Series caps per family, by metric name; families not listed keep their default cap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub max_series: BTreeMap<String, usize>,
}

impl Limits {
    pub fn cap(&self, family: &Family) -> usize {
        self.max_series
            .get(family.name)
            .copied()
            .or(family.default_cap)
            .unwrap_or(usize::MAX)
    }
}

/// How the aggregation is set up.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateConfig {
    pub limits: Limits,
    /// How far behind the wall clock (live) a duplicate is still recognised.
    pub dedup_window: Duration,
    /// What the dedup window ends at: the wall clock (live, demo) or nothing (replay).
    pub dedup_anchor: DedupAnchor,
    /// First start of a live source with an initial lookback: ids from here on are kept until
    /// the source reports the history loaded.
    pub dedup_hold_from: Option<UnixMillis>,
    /// The exporter's configured client id, one of the `UserId`s its own
    /// `ExportActivityEvents` may carry (see `exclude_own_exports`).
    pub own_user: Option<String>,
    /// Leave the exporter's own `ExportActivityEvents` out of the usage families: those whose
    /// `UserId` is `own_user` or an id the live source reports from its access token (its
    /// application id or its service principal's object id).
    pub exclude_own_exports: bool,
    /// Scoping filters (validated by the configuration: they compile).
    pub filters: FilterSpec,
    /// How `powerbi_user_sensitive_events_total` labels users.
    pub users: UserLabelConfig,
    /// The tenant's e-mail domains (lower case); empty: learned from the users seen.
    pub tenant_domains: Vec<String>,
    /// Series idle for longer than this expire (more than the longest window, 28 days);
    /// `None`: series never expire (a replayed archive, by default: see the configuration).
    pub series_retention: Option<Duration>,
}

/// Default of `--limits.series-retention`: the longest window (28 days) plus a week.
pub const DEFAULT_SERIES_RETENTION: Duration = Duration::from_secs(35 * 86_400);

/// Shortest series retention: the 28-day windows are whole UTC days ending today, so a view
/// up to 29 days old still counts in them.
pub const MIN_SERIES_RETENTION: Duration = Duration::from_secs(29 * 86_400);

/// How often (in event time) idle series are looked for: expiry is at most this late.
const EXPIRE_EVERY_MS: i64 = 3_600_000;

impl Default for AggregateConfig {
    fn default() -> Self {
        AggregateConfig {
            limits: Limits::default(),
            dedup_window: Duration::from_secs(29 * 86_400),
            dedup_anchor: DedupAnchor::default(),
            dedup_hold_from: None,
            own_user: None,
            exclude_own_exports: false,
            filters: FilterSpec::default(),
            users: UserLabelConfig::default(),
            tenant_domains: Vec::new(),
            series_retention: Some(DEFAULT_SERIES_RETENTION),
        }
    }
}

/// The end of the windows of the active-user gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// The newest event's `CreationTime` (replayed history: results do not depend on when).
    NewestEvent,
    /// The wall clock (live and simulated sources), or the newest event if that is later.
    WallClock(UnixMillis),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct ReportName {
    name: String,
    workspace: Sym,
}

impl PartialEq<(&str, Sym)> for ReportName {
    fn eq(&self, other: &(&str, Sym)) -> bool {
        self.name == other.0 && self.workspace == other.1
    }
}

/// The state of every family.
#[derive(Debug)]
pub struct Aggregator {
    dedup: Dedup,
    dedup_anchor: DedupAnchor,
    workspaces: Interner,
    reports: Interner,
    activities: Interner,
    activity_events: CappedCounters<(Sym, Sym)>,
    activity_failed: CappedCounters<(Sym, Sym)>,
    report_events: CappedCounters<(Sym, Sym, Sym)>,
    workspace_info: CappedInfo<Sym, String>,
    report_info: CappedInfo<Sym, ReportName>,
    report_last_view: CappedTimes<Sym>,
    viewers: viewers::Viewers,
    /// ViewReport events per report over the last day, for the status page.
    recent_views: recent::RecentViews,
    workspace_last_activity: CappedTimes<Sym>,
    activity_first_seen: CappedTimes<Sym>,
    users: DistinctUsers,
    processed: u64,
    duplicates: u64,
    rejected: [u64; Rejection::ALL.len()],
    pages_processed: u64,
    pages_failed: u64,
    watermark: Option<UnixMillis>,
    latest_allowed: i64,
    source: Option<SourceStatus>,
    /// A replay in passes: the passes done and the one under way.
    replay: ReplayProgress,
    /// The `UserId`s of the exporter itself, while its own exports are left out.
    own_users: Vec<UserKey>,
    exclude_own_exports: bool,
    filtered_own_exports: u64,
    filters: Filters,
    labeller: UserLabeller,
    /// The last inventory applied, and what it says per interned workspace and report.
    inventory: Option<Inventory>,
    workspace_meta: hashbrown::HashMap<Sym, (bool, String)>,
    inventory_reports: Vec<(Sym, Option<Sym>)>,
    user_labels: Interner,
    user_events: CappedCounters<(Sym, Sym)>,
    external_shares: CappedCounters<(Sym, Sym)>,
    /// Configured tenant domains; when empty, `learned_domains` stands in.
    tenant_domains: hashbrown::HashSet<String>,
    learned_domains: hashbrown::HashSet<String>,
    /// New events with an optional field of an unexpected type, by [`TYPED_FIELDS`] position.
    odd_fields: [u64; TYPED_FIELDS.len()],
    /// Events left out by the scoping filters, by [`FilterReason::ALL`] position.
    filtered: [u64; FilterReason::ALL.len()],
    /// Label values cut to [`series::MAX_LABEL_BYTES`], by label (see [`TRUNCATED_LABELS`]).
    truncated: [u64; TRUNCATED_LABELS.len()],
    /// New events to forward, when a forwarder is configured.
    outbox: Option<Outbox>,
    /// Series expiry: the retention, the newest event time of the last sweep, and the series
    /// expired so far by family name.
    retention_ms: Option<i64>,
    last_expiry: i64,
    expired: BTreeMap<&'static str, u64>,
}

/// Labels whose values come from events, in the order of `Aggregator::truncated`.
const TRUNCATED_LABELS: [&str; 6] = [
    "activity",
    "report_id",
    "report_name",
    "workspace_id",
    "workspace_name",
    "user",
];

/// Domains learned from users' UPNs at most (a tenant has a handful).
const LEARNED_DOMAINS_CAP: usize = 1_000;

/// Events later than this past the wall clock are refused as `invalid_time`: one bad clock
/// must not move the dedup window past every real event.
const MAX_FUTURE_MS: i64 = 86_400_000;

impl Aggregator {
    pub fn new(config: &AggregateConfig) -> Self {
        use catalogue::*;
        let cap = |f: &Family| config.limits.cap(f);
        let ws_users_cap = workspace_users_cap(&config.limits);
        let ws_cap = [
            cap(&ACTIVITY_EVENTS),
            cap(&ACTIVITY_EVENTS_FAILED),
            cap(&REPORT_EVENTS),
            cap(&WORKSPACE_INFO),
            cap(&WORKSPACE_LAST_ACTIVITY),
            ws_users_cap,
        ];
        Aggregator {
            dedup: {
                let mut dedup = Dedup::new(config.dedup_window);
                dedup.hold_from(config.dedup_hold_from);
                dedup
            },
            dedup_anchor: config.dedup_anchor,
            workspaces: Interner::new(ws_cap.into_iter().max().unwrap_or(0)),
            reports: Interner::new(
                cap(&REPORT_EVENTS)
                    .max(cap(&REPORT_INFO))
                    .max(cap(&REPORT_LAST_VIEW))
                    .max(report_viewers_cap(&config.limits)),
            ),
            activities: Interner::new(
                cap(&ACTIVITY_EVENTS)
                    .max(cap(&REPORT_EVENTS))
                    .max(cap(&ACTIVITY_FIRST_SEEN)),
            ),
            activity_events: CappedCounters::new(cap(&ACTIVITY_EVENTS)),
            activity_failed: CappedCounters::new(cap(&ACTIVITY_EVENTS_FAILED)),
            report_events: CappedCounters::new(cap(&REPORT_EVENTS)),
            workspace_info: CappedInfo::new(cap(&WORKSPACE_INFO)),
            report_info: CappedInfo::new(cap(&REPORT_INFO)),
            report_last_view: CappedTimes::new(cap(&REPORT_LAST_VIEW), Keep::Latest),
            viewers: viewers::Viewers::new(report_viewers_cap(&config.limits)),
            recent_views: recent::RecentViews::default(),
            workspace_last_activity: CappedTimes::new(cap(&WORKSPACE_LAST_ACTIVITY), Keep::Latest),
            activity_first_seen: CappedTimes::new(cap(&ACTIVITY_FIRST_SEEN), Keep::Earliest),
            users: DistinctUsers::new(ws_users_cap),
            processed: 0,
            duplicates: 0,
            rejected: [0; Rejection::ALL.len()],
            pages_processed: 0,
            pages_failed: 0,
            watermark: None,
            latest_allowed: i64::MAX,
            source: None,
            replay: ReplayProgress::default(),
            own_users: config
                .own_user
                .iter()
                .map(|u| UserKey::from_user_id(u))
                .collect(),
            exclude_own_exports: config.exclude_own_exports,
            filtered_own_exports: 0,
            // The configuration compiled these already; a failure here leaves events unfiltered.
            filters: Filters::new(&config.filters).unwrap_or_default(),
            labeller: UserLabeller::new(&config.users),
            inventory: None,
            workspace_meta: hashbrown::HashMap::new(),
            inventory_reports: Vec::new(),
            user_labels: Interner::new(cap(&USER_SENSITIVE_EVENTS)),
            user_events: CappedCounters::new(cap(&USER_SENSITIVE_EVENTS)),
            external_shares: CappedCounters::new(cap(&EXTERNAL_SHARES)),
            tenant_domains: config.tenant_domains.iter().cloned().collect(),
            learned_domains: hashbrown::HashSet::new(),
            filtered: [0; FilterReason::ALL.len()],
            odd_fields: [0; TYPED_FIELDS.len()],
            truncated: [0; TRUNCATED_LABELS.len()],
            outbox: None,
            retention_ms: config
                .series_retention
                .map(|r| i64::try_from(r.as_millis()).unwrap_or(i64::MAX)),
            last_expiry: i64::MIN,
            expired: BTreeMap::new(),
        }
    }

    /// Tells the aggregator the wall clock, to refuse events from the far future.
    /// and, for a live source, to end the dedup window (no event can move it).
    pub fn set_clock(&mut self, now: UnixMillis) {
        self.latest_allowed = now.0.saturating_add(MAX_FUTURE_MS);
        if self.dedup_anchor == DedupAnchor::WallClock {
            self.dedup.set_clock(now);
        }
    }

    /// A replay pass begins: the days of earlier ones never come again, so their ids go.
    pub fn start_replay_pass(&mut self, pass: ReplayPass) {
        // Saved together: a restart skips the passes done only with their ids forgotten, and
        // reads the one under way again with its ids.
        if self.replay.start(pass) {
            self.dedup.clear();
        }
    }

    /// Counts one source document as finished, read to its end or not.
    pub fn document_done(&mut self, complete: bool) {
        if complete {
            self.pages_processed += 1;
        } else {
            self.pages_failed += 1;
        }
    }

    /// The whole state, for the durable state file.
    pub fn export(&self) -> AggregatorState {
        AggregatorState {
            workspaces: self.workspaces.export(),
            reports: self.reports.export(),
            activities: self.activities.export(),
            activity_events: self.activity_events.export(),
            activity_failed: self.activity_failed.export(),
            report_events: self.report_events.export(),
            workspace_info: self.workspace_info.export(),
            report_info: self.report_info.export(),
            report_last_view: self.report_last_view.export(),
            viewers: self.viewers.export(),
            recent_views: self.recent_views.export(),
            workspace_last_activity: self.workspace_last_activity.export(),
            activity_first_seen: self.activity_first_seen.export(),
            users: self.users.export(),
            dedup: self.dedup.export(),
            processed: self.processed,
            duplicates: self.duplicates,
            filtered_own_exports: self.filtered_own_exports,
            filtered: FilterReason::ALL
                .iter()
                .zip(self.filtered)
                .map(|(r, n)| (r.as_str().to_string(), n))
                .collect(),
            inventory: self.inventory.clone(),
            odd_fields: TYPED_FIELDS
                .iter()
                .zip(self.odd_fields)
                .map(|(f, n)| (f.to_string(), n))
                .collect(),
            user_label: self.labeller.identity(),
            user_labels: self.user_labels.export(),
            user_events: self.user_events.export(),
            external_shares: self.external_shares.export(),
            learned_domains: self.learned_domains.iter().cloned().collect(),
            truncated: TRUNCATED_LABELS
                .iter()
                .zip(self.truncated)
                .map(|(l, n)| (l.to_string(), n))
                .collect(),
            rejected: Rejection::ALL
                .iter()
                .zip(self.rejected)
                .map(|(r, n)| (r.as_str().to_string(), n))
                .collect(),
            pages_processed: self.pages_processed,
            pages_failed: self.pages_failed,
            watermark: self.watermark,
            source: self.source.clone(),
            replay: self.replay.clone(),
            expiry: ExpiryState {
                expired: self
                    .expired
                    .iter()
                    .map(|(f, n)| (f.to_string(), *n))
                    .collect(),
                released_workspaces: self.workspaces.released(),
                released_reports: self.reports.released(),
                released_user_labels: self.user_labels.released(),
            },
        }
    }

    /// Resumes from [`Aggregator::export`] under the current configuration (caps and the dedup
    /// window are today's; label sets admitted before stay).
    pub fn import(config: &AggregateConfig, state: AggregatorState) -> Self {
        use catalogue::*;
        let fresh = Aggregator::new(config);
        let cap = |f: &Family| config.limits.cap(f);
        // Series saved before they had event times count as touched at the newest event.
        let touched = state.watermark.map_or(i64::MIN, |w| w.0);
        let expiry = state.expiry;
        let rejected = counts_by_name(Rejection::ALL.iter().map(|r| r.as_str()), &state.rejected);
        let truncated = counts_by_name(TRUNCATED_LABELS.iter().copied(), &state.truncated);
        let filtered = counts_by_name(
            FilterReason::ALL.iter().map(|r| r.as_str()),
            &state.filtered,
        );
        let (user_labels, user_events) = if state.user_label == fresh.labeller.identity() {
            (
                Interner::import(
                    state.user_labels,
                    &expiry.released_user_labels,
                    fresh.user_labels.cap(),
                ),
                CappedCounters::import(state.user_events, cap(&USER_SENSITIVE_EVENTS), touched),
            )
        } else {
            if !state.user_labels.is_empty() {
                tracing::warn!(
                    before = %state.user_label.split(':').next().unwrap_or(""),
                    now = %fresh.labeller.identity().split(':').next().unwrap_or(""),
                    "The user label mode or pseudonym key changed: powerbi_user_sensitive_events_total restarts under the new labels (the old ones are dropped, not mixed)."
                );
            }
            (
                Interner::new(fresh.user_labels.cap()),
                CappedCounters::new(cap(&USER_SENSITIVE_EVENTS)),
            )
        };
        let odd_fields = counts_by_name(TYPED_FIELDS.iter().copied(), &state.odd_fields);
        let mut restored = Aggregator {
            odd_fields,
            user_labels,
            user_events,
            external_shares: CappedCounters::import(
                state.external_shares,
                cap(&EXTERNAL_SHARES),
                touched,
            ),
            learned_domains: state.learned_domains.into_iter().collect(),
            workspaces: Interner::import(
                state.workspaces,
                &expiry.released_workspaces,
                fresh.workspaces.cap(),
            ),
            reports: Interner::import(state.reports, &expiry.released_reports, fresh.reports.cap()),
            activities: Interner::import(state.activities, &[], fresh.activities.cap()),
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
            viewers: viewers::Viewers::import(state.viewers, report_viewers_cap(&config.limits)),
            recent_views: recent::RecentViews::import(state.recent_views),
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
            users: DistinctUsers::import(state.users, workspace_users_cap(&config.limits)),
            dedup: Dedup::import(state.dedup, config.dedup_window),
            processed: state.processed,
            duplicates: state.duplicates,
            filtered_own_exports: state.filtered_own_exports,
            filtered,
            truncated,
            rejected,
            pages_processed: state.pages_processed,
            pages_failed: state.pages_failed,
            watermark: state.watermark,
            source: state.source,
            replay: state.replay,
            expired: expiry
                .expired
                .iter()
                .filter_map(|(name, n)| Some((catalogue::by_name(name)?.name, *n)))
                .collect(),
            ..fresh
        };
        if let Some(inventory) = state.inventory {
            restored.apply_inventory(inventory);
        }
        if let Some(status) = restored.source.take() {
            restored.set_source_status(status);
        }
        restored
    }

    /// Takes in the tenant's inventory: names for workspaces and reports that had no event
    /// yet, workspace type and capacity, and the report list behind `powerbi_reports`. The
    /// inventory's names count as of its fetch time, so a later event's name still wins.
    pub fn apply_inventory(&mut self, inventory: Inventory) {
        let at = inventory.fetched_at.0;
        self.workspace_meta.clear();
        self.inventory_reports.clear();
        for w in &inventory.workspaces {
            // An inventory cached by an older version may hold upper-case GUIDs.
            let ws_id = lower_guid(w.id.as_str().into());
            let ws_id = self.clip(3, &ws_id);
            let ws = self.workspaces.intern(ws_id);
            if let Some(ws) = ws {
                self.workspace_meta
                    .insert(ws, (w.personal, w.capacity_id.clone()));
                if !w.name.is_empty() {
                    let name = self.clip(4, &w.name);
                    self.workspace_info
                        .update(Some(ws), name, at, str::to_owned);
                }
            }
            for (id, name) in &w.reports {
                let id = lower_guid(id.as_str().into());
                let id = self.clip(1, &id);
                let rep = self.reports.intern(id);
                if let Some(rep) = rep {
                    self.inventory_reports.push((rep, ws));
                    if let (false, Some(ws)) = (name.is_empty(), ws) {
                        let name = self.clip(2, name);
                        self.report_info
                            .update(Some(rep), &(name, ws), at, |(n, w)| ReportName {
                                name: n.to_string(),
                                workspace: *w,
                            });
                    }
                }
            }
        }
        self.inventory = Some(inventory);
    }

    /// Replaces the live source's health shown in the self metrics.
    /// Once the initial lookback is loaded, the dedup window trails the clock again.
    pub fn set_source_status(&mut self, status: SourceStatus) {
        for id in &status.own_identities {
            let user = UserKey::from_user_id(id);
            if !self.own_users.contains(&user) {
                self.own_users.push(user);
            }
        }
        if status.initial_lookback_hours_remaining == 0 && self.dedup.held_from().is_some() {
            self.dedup.hold_from(None);
        }
        self.source = Some(status);
    }

    /// What the status page shows: the source's status, the watermark, and the `top` most
    /// viewed reports of the day ending at `reference` (ids, and names from the `_info` state).
    pub fn status_data(&self, reference: Reference, top: usize) -> recent::StatusData {
        let day_end = match reference {
            Reference::NewestEvent => self.watermark.unwrap_or(UnixMillis(0)),
            Reference::WallClock(now) => now,
        };
        let top_reports = self
            .recent_views
            .top(day_end.0, top)
            .into_iter()
            .map(|(rep, views)| {
                let info = self.report_info.get(&rep);
                let workspace = info.map(|i| i.workspace);
                let workspace_name = workspace
                    .and_then(|w| self.workspace_info.get(&w))
                    .cloned()
                    .unwrap_or_default();
                recent::TopReport {
                    report_id: self.reports.name(rep).to_string(),
                    report_name: info.map(|i| i.name.clone()).unwrap_or_default(),
                    workspace_id: workspace
                        .map(|w| self.workspaces.name(w).to_string())
                        .unwrap_or_default(),
                    workspace_name,
                    views,
                }
            })
            .collect();
        recent::StatusData {
            source: self.source.clone(),
            watermark: self.watermark,
            processed: self.processed,
            top_reports,
            day_end,
        }
    }

    /// Newest `CreationTime` counted.
    pub fn watermark(&self) -> Option<UnixMillis> {
        self.watermark
    }

    /// Events read so far (accepted, duplicate and rejected).
    pub fn processed(&self) -> u64 {
        self.processed
    }

    fn count(&mut self, ev: &ActivityEvent<'_>) {
        let ws_id = ev.workspace_id.as_ref().map_or("", |w| w.as_str());
        let ws_id = self.clip(3, ws_id);
        let ws = self.workspaces.intern(ws_id);
        let activity = self.clip(0, ev.activity.as_str());
        let act = self.activities.intern(activity);
        let ws_act = ws.zip(act);
        self.activity_events.inc(ws_act, ev.time.0);
        self.activity_first_seen.record(act, ev.time.0);
        self.people(ev, activity, act, ws_act);
        if ev.workspace_id.is_some() {
            self.workspace_last_activity.record(ws, ev.time.0);
        }
        if !ev.success {
            self.activity_failed.inc(ws_act, ev.time.0);
        }
        if let Some(report_id) = &ev.report_id {
            let report_id = self.clip(1, report_id.as_str());
            let rep = self.reports.intern(report_id);
            self.report_events
                .inc(ws_act.zip(rep).map(|((w, a), r)| (w, r, a)), ev.time.0);
            if activity == "ViewReport" {
                self.report_last_view.record(rep, ev.time.0);
                if let Some(r) = rep {
                    self.recent_views.record(r, ev.time.0);
                }
                if let Some(user) = ev.user {
                    let newest = self.watermark.map_or(ev.time, |w| w.max(ev.time));
                    self.viewers
                        .record(rep, user, ev.time.utc_day(), newest.utc_day());
                }
            }
            if let (Some(name), Some(w)) = (&ev.report_name, ws) {
                let name = self.clip(2, name.as_ref());
                self.report_info
                    .update(rep, &(name, w), ev.time.0, |(n, w)| ReportName {
                        name: n.to_string(),
                        workspace: *w,
                    });
            }
        }
        if ev.workspace_id.is_some() {
            if let Some(name) = &ev.workspace_name {
                let name = self.clip(4, name.as_ref());
                self.workspace_info
                    .update(ws, name, ev.time.0, str::to_owned);
            }
        }
        if let Some(user) = ev.user {
            self.users
                .record(user, ev.workspace_id.is_some().then_some(ws), ev.time.0);
        }
        if self.watermark.is_none_or(|w| ev.time > w) {
            self.watermark = Some(ev.time);
            if let Some(retention) = self.retention_ms {
                if ev.time.0.saturating_sub(self.last_expiry) >= EXPIRE_EVERY_MS {
                    self.expire_series(ev.time.0, retention);
                }
            }
        }
    }

    /// Removes the series idle since before `newest` minus the retention, counts them by
    /// family, and releases the ids no series (nor the inventory) refers to any more. Event
    /// time, not the wall clock, so a replay expires exactly as the live source would have.
    /// Activities are not expired: the API's activity names are a fixed vocabulary of ~740,
    /// and `powerbi_activity_first_seen_timestamp_seconds` must not forget one.
    fn expire_series(&mut self, newest: i64, retention_ms: i64) {
        use catalogue::*;
        self.last_expiry = newest;
        self.recent_views.prune(newest);
        let cutoff = newest.saturating_sub(retention_ms);
        let removed = [
            (&ACTIVITY_EVENTS, self.activity_events.expire(cutoff)),
            (&ACTIVITY_EVENTS_FAILED, self.activity_failed.expire(cutoff)),
            (&REPORT_EVENTS, self.report_events.expire(cutoff)),
            (&EXTERNAL_SHARES, self.external_shares.expire(cutoff)),
            (&USER_SENSITIVE_EVENTS, self.user_events.expire(cutoff)),
            (&WORKSPACE_INFO, self.workspace_info.expire(cutoff)),
            (&REPORT_INFO, self.report_info.expire(cutoff)),
            (&REPORT_LAST_VIEW, self.report_last_view.expire(cutoff)),
            (
                &WORKSPACE_LAST_ACTIVITY,
                self.workspace_last_activity.expire(cutoff),
            ),
            (
                &REPORT_VIEWERS,
                self.viewers.expire(cutoff) * viewers::WINDOWS.len() as u64,
            ),
            (
                &WORKSPACE_ACTIVE_USERS,
                self.users.release_idle_workspaces() * WINDOWS.len() as u64,
            ),
        ];
        for (family, n) in removed {
            if n > 0 {
                *self.expired.entry(family.name).or_default() += n;
            }
        }
        self.release_ids();
    }

    /// Releases the workspace, report and user-label ids no series refers to.
    fn release_ids(&mut self) {
        let mut ws = hashbrown::HashSet::new();
        let mut rep = hashbrown::HashSet::new();
        let mut users = hashbrown::HashSet::new();
        for counters in [
            &self.activity_events,
            &self.activity_failed,
            &self.external_shares,
        ] {
            ws.extend(counters.iter().map(|(&(w, _), _)| w));
        }
        for (&(w, r, _), _) in self.report_events.iter() {
            ws.insert(w);
            rep.insert(r);
        }
        users.extend(self.user_events.iter().map(|(&(u, _), _)| u));
        for (&w, _) in self.workspace_info.iter() {
            ws.insert(w);
        }
        for (&r, info) in self.report_info.iter() {
            rep.insert(r);
            ws.insert(info.workspace);
        }
        ws.extend(self.workspace_last_activity.iter().map(|(&w, _)| w));
        ws.extend(self.users.workspaces());
        ws.extend(self.workspace_meta.keys().copied());
        rep.extend(self.report_last_view.iter().map(|(&r, _)| r));
        rep.extend(self.viewers.reports());
        rep.extend(self.recent_views.reports());
        for (r, w) in &self.inventory_reports {
            rep.insert(*r);
            ws.extend(*w);
        }
        self.workspaces.release_unused(&ws);
        self.reports.release_unused(&rep);
        self.user_labels.release_unused(&users);
    }

    /// The per-user and external-share families, and the domains the tenant's people use.
    fn people(
        &mut self,
        ev: &ActivityEvent<'_>,
        activity: &str,
        act: Option<Sym>,
        ws_act: Option<(Sym, Sym)>,
    ) {
        let Some(user_id) = ev.user_id.as_deref() else {
            return;
        };
        if self.tenant_domains.is_empty() && people::is_member_upn(user_id, ev.user_type) {
            self.learn_domain(user_id);
        }
        if people::is_share(activity) && ev.recipients.iter().any(|r| self.is_external(r)) {
            self.external_shares.inc(ws_act, ev.time.0);
        }
        if people::is_sensitive(activity) {
            if let Some(label) = self.labeller.label(user_id) {
                let label = self.clip_owned(label);
                let user = self.user_labels.intern(&label);
                self.user_events.inc(user.zip(act), ev.time.0);
            }
        }
    }

    /// Remembers the domain of a member's UPN (at most [`LEARNED_DOMAINS_CAP`]).
    fn learn_domain(&mut self, user_id: &str) {
        let Some((_, domain)) = user_id.rsplit_once('@') else {
            return;
        };
        let known = if domain.bytes().any(|b| b.is_ascii_uppercase()) {
            self.learned_domains.contains(&domain.to_ascii_lowercase())
        } else {
            self.learned_domains.contains(domain)
        };
        if !known && self.learned_domains.len() < LEARNED_DOMAINS_CAP && !domain.is_empty() {
            self.learned_domains.insert(domain.to_ascii_lowercase());
        }
    }

    fn is_external(&self, recipient: &str) -> bool {
        let Some(domain) = people::domain(recipient) else {
            return false; // groups and objects without an e-mail
        };
        let own = if self.tenant_domains.is_empty() {
            &self.learned_domains
        } else {
            &self.tenant_domains
        };
        !own.contains(&domain)
    }

    fn clip_owned(&mut self, value: String) -> String {
        let clipped = self.clip(5, &value);
        if clipped.len() == value.len() {
            value
        } else {
            clipped.to_string()
        }
    }

    /// `value` cut to the label length limit; a cut is counted under `TRUNCATED_LABELS[label]`.
    fn clip<'a>(&mut self, label: usize, value: &'a str) -> &'a str {
        let (value, cut) = series::clip(value);
        if cut {
            self.truncated[label] += 1;
        }
        value
    }

    /// Copies the state out as sorted samples of every family, in catalogue order.
    pub fn snapshot(&self, reference: Reference) -> Snapshot {
        use catalogue::*;
        let mut s = Snapshot::default();
        let reference = match (reference, self.watermark) {
            (Reference::WallClock(now), Some(w)) => now.max(w),
            (Reference::WallClock(now), None) => now,
            (Reference::NewestEvent, w) => w.unwrap_or_default(),
        };
        let ws_name = |ws: Sym| self.workspaces.name(ws).to_string();
        let act_name = |a: Sym| self.activities.name(a).to_string();

        let users = self.users.totals(reference.0);
        s.push(
            &ACTIVE_USERS,
            WINDOWS
                .iter()
                .zip(users)
                .map(|((w, _), n)| (vec![w.to_string()], n as f64)),
        );
        for (family, counters) in [
            (&ACTIVITY_EVENTS_FAILED, &self.activity_failed),
            (&ACTIVITY_EVENTS, &self.activity_events),
        ] {
            let samples = counters
                .iter()
                .map(|(&(w, a), v)| (vec![ws_name(w), act_name(a)], v as f64));
            s.push(
                family,
                samples.chain(overflow_sample(family, counters.overflow())),
            );
        }
        s.push(&EVENTS_DUPLICATE, [(vec![], self.duplicates as f64)]);
        let own = (
            vec!["own_export".to_string()],
            self.filtered_own_exports as f64,
        );
        s.push(
            &EVENTS_FILTERED,
            FilterReason::ALL
                .iter()
                .zip(self.filtered)
                .map(|(r, n)| (vec![r.as_str().to_string()], n as f64))
                .chain([own]),
        );
        s.push(&EVENTS_PROCESSED, [(vec![], self.processed as f64)]);
        s.push(
            &FIELD_TYPE_MISMATCHES,
            TYPED_FIELDS
                .iter()
                .zip(self.odd_fields)
                .map(|(f, n)| (vec![f.to_string()], n as f64)),
        );
        let pair = |counters: &CappedCounters<(Sym, Sym)>,
                    first: &dyn Fn(Sym) -> String,
                    family: &'static Family| {
            counters
                .iter()
                .map(|(&(a, b), v)| (vec![first(a), act_name(b)], v as f64))
                .chain(overflow_sample(family, counters.overflow()))
                .collect::<Vec<_>>()
        };
        s.push(
            &EXTERNAL_SHARES,
            pair(&self.external_shares, &ws_name, &EXTERNAL_SHARES),
        );
        if !self.labeller.is_off() {
            s.push(
                &USER_SENSITIVE_EVENTS,
                pair(
                    &self.user_events,
                    &|u| self.user_labels.name(u).to_string(),
                    &USER_SENSITIVE_EVENTS,
                ),
            );
        }
        let times = |t: &CappedTimes<Sym>, name: &dyn Fn(Sym) -> String| {
            t.iter()
                .map(|(&k, ms)| (vec![name(k)], ms as f64 / 1000.0))
                .chain(
                    t.overflow()
                        .map(|ms| (vec![OVERFLOW_LABEL.to_string()], ms as f64 / 1000.0)),
                )
                .collect::<Vec<_>>()
        };
        s.push(
            &ACTIVITY_FIRST_SEEN,
            times(&self.activity_first_seen, &act_name),
        );
        let today = reference.utc_day();
        let samples = self.viewers.counts(today).flat_map(|(r, counts)| {
            let id = self.reports.name(r).to_string();
            viewers::WINDOWS
                .iter()
                .zip(counts)
                .map(move |((w, _), n)| (vec![id.clone(), w.to_string()], n))
        });
        s.push(&REPORT_VIEWERS, samples);
        if self.inventory.is_some() {
            s.push(&REPORTS, self.report_states(reference));
        }
        s.push(
            &REPORT_LAST_VIEW,
            times(&self.report_last_view, &|r| {
                self.reports.name(r).to_string()
            }),
        );
        s.push(
            &WORKSPACE_LAST_ACTIVITY,
            times(&self.workspace_last_activity, &ws_name),
        );
        s.push(
            &LABEL_VALUES_TRUNCATED,
            TRUNCATED_LABELS
                .iter()
                .zip(self.truncated)
                .map(|(l, n)| (vec![l.to_string()], n as f64)),
        );
        s.push(
            &EVENTS_REJECTED,
            Rejection::ALL
                .iter()
                .zip(self.rejected)
                .map(|(r, n)| (vec![r.as_str().to_string()], n as f64)),
        );
        if let Some(w) = self.watermark {
            s.push(&EVENTS_WATERMARK, [(vec![], w.as_secs_f64())]);
        }
        s.push(&BUILD_INFO, [(crate::build::info_labels(), 1.0)]);
        s.push(&PAGES_FAILED, [(vec![], self.pages_failed as f64)]);
        s.push(&PAGES_PROCESSED, [(vec![], self.pages_processed as f64)]);
        let samples = self.report_events.iter().map(|(&(w, r, a), v)| {
            (
                vec![ws_name(w), self.reports.name(r).to_string(), act_name(a)],
                v as f64,
            )
        });
        s.push(
            &REPORT_EVENTS,
            samples.chain(overflow_sample(
                &REPORT_EVENTS,
                self.report_events.overflow(),
            )),
        );
        let samples = self.report_info.iter().map(|(&r, info)| {
            (
                vec![
                    self.reports.name(r).to_string(),
                    info.name.clone(),
                    ws_name(info.workspace),
                ],
                1.0,
            )
        });
        s.push(
            &REPORT_INFO,
            samples.chain(overflow_sample(
                &REPORT_INFO,
                self.report_info.overflowed().then_some(1),
            )),
        );
        s.push(
            &SERIES_DROPPED,
            self.dropped_by_family()
                .map(|(f, n)| (vec![f.to_string()], n as f64)),
        );
        s.push(
            &SERIES_EXPIRED,
            self.dropped_by_family().map(|(f, _)| {
                let n = self.expired.get(f).copied().unwrap_or(0);
                (vec![f.to_string()], n as f64)
            }),
        );
        let per_ws = self.users.per_workspace(reference.0);
        let samples = per_ws.iter().flat_map(|(&ws, counts)| {
            let id = if ws == OVERFLOW_WORKSPACE {
                OVERFLOW_LABEL.to_string()
            } else {
                ws_name(ws)
            };
            WINDOWS
                .iter()
                .zip(*counts)
                .map(move |((w, _), n)| (vec![id.clone(), w.to_string()], n as f64))
        });
        s.push(&WORKSPACE_ACTIVE_USERS, samples);
        let samples = self.workspace_info.iter().map(|(&w, name)| {
            let (kind, capacity) = match self.workspace_meta.get(&w) {
                Some((personal, capacity)) => {
                    let kind = if *personal { "personal" } else { "shared" };
                    (kind.to_string(), capacity.clone())
                }
                None => (String::new(), String::new()),
            };
            (vec![ws_name(w), name.clone(), kind, capacity], 1.0)
        });
        s.push(
            &WORKSPACE_INFO,
            samples.chain(overflow_sample(
                &WORKSPACE_INFO,
                self.workspace_info.overflowed().then_some(1),
            )),
        );
        if let Some(status) = &self.source {
            s.push_source_status(status);
        }
        s.sort_families();
        s
    }

    /// `powerbi_reports`: inventory reports per workspace, used (viewed in the last 28 days
    /// before `reference`) or not.
    fn report_states(&self, reference: UnixMillis) -> Vec<(Vec<String>, f64)> {
        let since = reference.0 - 28 * 86_400_000;
        let mut counts: BTreeMap<(String, &str), u64> = BTreeMap::new();
        for (rep, ws) in &self.inventory_reports {
            let ws = ws.map_or(String::new(), |w| self.workspaces.name(w).to_string());
            let used = self.report_last_view.get(rep).is_some_and(|t| t >= since);
            for state in ["unused", "used"] {
                counts.entry((ws.clone(), state)).or_default();
            }
            *counts
                .entry((ws, if used { "used" } else { "unused" }))
                .or_default() += 1;
        }
        let cap = catalogue::REPORTS.default_cap.unwrap_or(usize::MAX);
        counts
            .into_iter()
            .take(cap)
            .map(|((ws, state), n)| (vec![ws, state.to_string()], n as f64))
            .collect()
    }

    fn dropped_by_family(&self) -> impl Iterator<Item = (&'static str, u64)> {
        use catalogue::*;
        [
            (ACTIVITY_EVENTS.name, self.activity_events.dropped()),
            (ACTIVITY_EVENTS_FAILED.name, self.activity_failed.dropped()),
            (REPORT_EVENTS.name, self.report_events.dropped()),
            (REPORT_INFO.name, self.report_info.dropped()),
            (REPORT_LAST_VIEW.name, self.report_last_view.dropped()),
            (REPORT_VIEWERS.name, self.viewers.dropped()),
            (
                WORKSPACE_LAST_ACTIVITY.name,
                self.workspace_last_activity.dropped(),
            ),
            (ACTIVITY_FIRST_SEEN.name, self.activity_first_seen.dropped()),
            (EXTERNAL_SHARES.name, self.external_shares.dropped()),
            (USER_SENSITIVE_EVENTS.name, self.user_events.dropped()),
            (WORKSPACE_ACTIVE_USERS.name, self.users.dropped()),
            (WORKSPACE_INFO.name, self.workspace_info.dropped()),
        ]
        .into_iter()
    }
}

impl EventSink for Aggregator {
    fn accept(&mut self, event: &ActivityEvent<'_>) {
        self.accept_event(event, None);
    }

    fn accept_raw(&mut self, event: &ActivityEvent<'_>, raw: &[u8]) {
        self.accept_event(event, Some(raw));
    }

    fn reject(&mut self, reason: Rejection) {
        self.processed += 1;
        self.reject_counted(reason);
    }
}

impl Aggregator {
    fn accept_event(&mut self, event: &ActivityEvent<'_>, raw: Option<&[u8]>) {
        self.processed += 1;
        if event.time.0 > self.latest_allowed {
            return self.reject_counted(Rejection::InvalidTime);
        }
        match self.dedup.check(event.key, event.time) {
            Seen::New if self.is_own_export(event) => self.filtered_own_exports += 1,
            Seen::New if event.odd_fields != 0 => {
                for (i, n) in self.odd_fields.iter_mut().enumerate() {
                    *n += u64::from(event.odd_fields >> i & 1);
                }
                self.after_dedup(event, raw);
            }
            Seen::New => self.after_dedup(event, raw),
            Seen::Duplicate => self.duplicates += 1,
            Seen::OutsideWindow => self.reject_counted(Rejection::OutsideDedupWindow),
        }
    }

    /// A new event: filtered (and counted as such) or counted, and queued for the forwarders.
    fn after_dedup(&mut self, event: &ActivityEvent<'_>, raw: Option<&[u8]>) {
        match self.filters.check(event) {
            Some(reason) => self.filtered[reason.index()] += 1,
            None => {
                self.count(event);
                if let (Some(outbox), Some(raw)) = (&mut self.outbox, raw) {
                    outbox.push(raw, UnixMillis(self.latest_allowed - MAX_FUTURE_MS));
                }
            }
        }
    }

    /// From now on, new events that pass the filters are queued as raw JSON lines for the
    /// forwarders (taken with [`Aggregator::take_outbox`]).
    pub fn enable_outbox(&mut self) {
        self.outbox.get_or_insert_with(Outbox::default);
    }

    /// The events queued since the last call.
    pub fn take_outbox(&mut self) -> Outbox {
        self.outbox.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The exporter's own read of the activity log (left out of the usage families).
    fn is_own_export(&self, event: &ActivityEvent<'_>) -> bool {
        self.exclude_own_exports
            && event.activity.as_str() == "ExportActivityEvents"
            && event.user.is_some_and(|u| self.own_users.contains(&u))
    }

    fn reject_counted(&mut self, reason: Rejection) {
        let i = Rejection::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.rejected[i] += 1;
    }
}

/// Saved `(name, count)` pairs back into an array in the order of `names` (a name missing
/// from an older state file counts 0; one no longer known is dropped).
fn counts_by_name<'n, const N: usize>(
    names: impl Iterator<Item = &'n str>,
    saved: &[(String, u64)],
) -> [u64; N] {
    let mut counts = [0; N];
    for (slot, name) in counts.iter_mut().zip(names) {
        *slot = saved.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v);
    }
    counts
}

/// Reports with their own `powerbi_report_viewers` series (one per window each).
fn report_viewers_cap(limits: &Limits) -> usize {
    limits.cap(&catalogue::REPORT_VIEWERS) / viewers::WINDOWS.len()
}

/// Workspaces with their own `powerbi_workspace_active_users` series (one per window each).
fn workspace_users_cap(limits: &Limits) -> usize {
    limits.cap(&catalogue::WORKSPACE_ACTIVE_USERS) / WINDOWS.len()
}

/// The overflow series of a capped family: every label `__other__`.
fn overflow_sample(family: &Family, value: Option<u64>) -> Option<(Vec<String>, f64)> {
    value.map(|v| {
        (
            vec![OVERFLOW_LABEL.to_string(); family.labels.len()],
            v as f64,
        )
    })
}

/// The durable form of an [`Aggregator`]: user hashes, never user ids.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AggregatorState {
    workspaces: Vec<String>,
    reports: Vec<String>,
    activities: Vec<String>,
    activity_events: series::CountersState<(Sym, Sym)>,
    activity_failed: series::CountersState<(Sym, Sym)>,
    report_events: series::CountersState<(Sym, Sym, Sym)>,
    workspace_info: series::InfoState<Sym, String>,
    report_info: series::InfoState<Sym, ReportName>,
    #[serde(default)]
    report_last_view: series::TimesState<Sym>,
    #[serde(default)]
    viewers: viewers::ViewersState,
    #[serde(default)]
    recent_views: recent::RecentViewsState,
    #[serde(default)]
    workspace_last_activity: series::TimesState<Sym>,
    #[serde(default)]
    activity_first_seen: series::TimesState<Sym>,
    users: users::UsersState,
    dedup: dedup::DedupState,
    processed: u64,
    duplicates: u64,
    #[serde(default)]
    filtered_own_exports: u64,
    #[serde(default)]
    filtered: Vec<(String, u64)>,
    #[serde(default)]
    inventory: Option<Inventory>,
    #[serde(default)]
    odd_fields: Vec<(String, u64)>,
    /// `off`, `plain` or `pseudonym:<key fingerprint>`: the user family restarts on a change.
    #[serde(default)]
    user_label: String,
    #[serde(default)]
    user_labels: Vec<String>,
    #[serde(default)]
    user_events: series::CountersState<(Sym, Sym)>,
    #[serde(default)]
    external_shares: series::CountersState<(Sym, Sym)>,
    #[serde(default)]
    learned_domains: Vec<String>,
    #[serde(default)]
    truncated: Vec<(String, u64)>,
    rejected: Vec<(String, u64)>,
    pages_processed: u64,
    pages_failed: u64,
    watermark: Option<UnixMillis>,
    source: Option<SourceStatus>,
    #[serde(default)]
    expiry: ExpiryState,
    /// A replay in passes: the passes done and the one under way.
    #[serde(default)]
    replay: ReplayProgress,
}

/// What series expiry keeps in the state: counts, and the ids released for reuse.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
struct ExpiryState {
    expired: Vec<(String, u64)>,
    released_workspaces: Vec<Sym>,
    released_reports: Vec<Sym>,
    released_user_labels: Vec<Sym>,
}

impl AggregatorState {
    /// How far a replay in passes got, when it saved this state.
    pub fn replay_progress(&self) -> Option<&ReplayProgress> {
        Some(&self.replay).filter(|p| p.current.is_some())
    }

    /// The live source's last status (with its checkpoint) saved with this state.
    pub fn source_status(&self) -> Option<&SourceStatus> {
        self.source.as_ref()
    }
}

impl Snapshot {
    /// The live source's self metrics.
    fn push_source_status(&mut self, st: &SourceStatus) {
        use catalogue::*;
        let one = |v: f64| [(Vec::new(), v)];
        self.push(&UP, one(if st.up { 1.0 } else { 0.0 }));
        if let Some(inv) = &st.inventory {
            if let Some(t) = inv.last_success {
                self.push(&INVENTORY_LAST_SUCCESS, one(t.as_secs_f64()));
            }
            let reasons = [
                "auth",
                "budget",
                "http_error",
                "invalid_response",
                "throttled",
                "timeout",
            ];
            self.push(
                &INVENTORY_ERRORS,
                reasons.iter().map(|r| {
                    (
                        vec![r.to_string()],
                        inv.errors.get(*r).copied().unwrap_or(0) as f64,
                    )
                }),
            );
        }
        if let Some(t) = st.last_success {
            self.push(&LAST_POLL_SUCCESS, one(t.as_secs_f64()));
        }
        self.push(&POLL_DURATION, one(st.poll_duration_seconds));
        self.push(
            &API_REQUESTS,
            st.api
                .requests
                .iter()
                .map(|(code, n)| (vec![code.clone()], *n as f64)),
        );
        self.push(&API_THROTTLED, one(st.api.throttled as f64));
        self.push(&API_BUDGET_REMAINING, one(st.budget_remaining as f64));
        self.push(
            &API_FOREIGN_CONTINUATIONS,
            one(st.api.foreign_continuations as f64),
        );
        self.push(&API_BAD_CONTINUATIONS, one(st.api.bad_continuations as f64));
        self.push(
            &API_RETRY_AFTER_CLAMPED,
            one(st.api.retry_after_clamped as f64),
        );
        let reasons = [
            "bad_response",
            "invalid_client",
            "rejected",
            "unreachable",
            "untrusted_certificate",
        ];
        self.push(
            &AUTH_ERRORS,
            reasons.iter().map(|r| {
                (
                    vec![r.to_string()],
                    st.api.auth_errors.get(*r).copied().unwrap_or(0) as f64,
                )
            }),
        );
        let expiries = [
            ("certificate", st.certificate_expiry),
            ("token", st.token_expiry),
        ];
        self.push(
            &CREDENTIAL_EXPIRY,
            expiries
                .iter()
                .filter_map(|(kind, t)| Some((vec![kind.to_string()], t.as_ref()?.as_secs_f64()))),
        );
        if let Some(age) = st.sweep_age_seconds {
            self.push(&SWEEP_AGE, one(age));
        }
        self.push(
            &INITIAL_LOOKBACK_REMAINING,
            one(st.initial_lookback_hours_remaining as f64),
        );
    }
}
