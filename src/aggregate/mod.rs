//! Aggregate stage: decoded events → the state of every metric family.
//!
//! The aggregator is a composition: [`dedup`] and the scoping [`filter`]s decide whether an
//! event counts, [`shared`] interns its ids once, and then each family group observes it, in
//! plain static calls ([`Aggregator`]'s `count`):
//!
//! | group | module | families |
//! |---|---|---|
//! | usage | [`usage`] | activity, failed and report events; workspace and report `_info` |
//! | freshness | [`freshness`] | last view, last activity, first seen; inventory reports |
//! | people | [`people`] | per-user sensitive events, external shares |
//! | throughput | [`throughput`] | processed, duplicate, filtered, rejected, field types, pages, watermark |
//! | viewers | [`viewers`] | distinct report viewers (and the status page's day of views) |
//! | users | [`users`] | distinct active users, in the tenant and per workspace |
//! | items | [`items`] | events, failures, names and last activity per item (reports, semantic models, dashboards, dataflows, apps, Fabric items); model refreshes and report views; inventory items |
//!
//! Each group owns its state, how it observes an event, expiry, its saved form and its
//! rendering, with typed label sets ([`labels`]). Adding a family: its entry in the
//! catalogue, then, in one group module, a label set, the state it needs (and its key in
//! [`state_file`] if it is saved), its lines in `observe`, `render`, `dropped` and `expire`,
//! and a test in that module.
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
//!   released, so months of churn neither fill the caps nor grow the state;
//! - ids label the counters, names live only in the `_info` families (the newest event by
//!   `CreationTime` names an id), so a rename never forks a counter;
//! - memory is bounded by series, users and the dedup window, not by the number of events.
//!
//! [`Aggregator::snapshot`] copies the state out as owned, sorted samples, so exposition never
//! holds the aggregator while encoding.

pub mod dedup;
pub mod filter;
pub mod freshness;
pub mod items;
pub mod labels;
pub mod memory;
pub mod outbox;
pub mod people;
pub mod recent;
pub mod series;
pub mod settings;
pub mod shared;
pub mod state_file;
pub mod throughput;
pub mod usage;
pub mod users;
pub mod viewers;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::catalogue::{self, Family, Snapshot};
use crate::decode::event::lower_guid;
use crate::decode::inventory::Inventory;
use crate::decode::item::ItemType;
use crate::decode::{ActivityEvent, EventSink, Rejection, UnixMillis, UserKey};
use dedup::{Dedup, DedupAnchor, Seen};
use filter::{FilterSpec, Filters};
use freshness::{Freshness, FreshnessState};
use items::{Items, ItemsState};
use labels::FamilyName;
use outbox::Outbox;
use people::{People, PeopleState, UserLabelConfig};
use series::{Interner, Sym};
use shared::{
    ClippedLabel, Counted, Expired, Ids, InventoryIndex, Refs, Shared, Sweep, Truncations, View,
    WorkspaceMeta,
};
use throughput::{LeftOut, Throughput, ThroughputState};
use usage::{Usage, UsageState};
use users::{ActiveUsers, ActiveUsersState};
use viewers::{ReportViewers, ReportViewersState};

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

/// The state of every family: the shared ids, then one group per set of families, composed
/// here with static calls (see `Aggregator::count`).
#[derive(Debug)]
pub struct Aggregator {
    dedup: Dedup,
    dedup_anchor: DedupAnchor,
    shared: Shared,
    /// The last inventory applied, and what it says per interned workspace and report.
    inventory: InventoryIndex,
    usage: Usage,
    freshness: Freshness,
    people: People,
    throughput: Throughput,
    viewers: ReportViewers,
    users: ActiveUsers,
    items: Items,
    latest_allowed: i64,
    /// The `UserId`s of the exporter itself, while its own exports are left out.
    own_users: Vec<UserKey>,
    exclude_own_exports: bool,
    filters: Filters,
    /// New events to forward, when a forwarder is configured.
    outbox: Option<Outbox>,
    /// Series expiry: the retention, the newest event time of the last sweep, and the series
    /// expired so far by family.
    retention_ms: Option<i64>,
    last_expiry: i64,
    expired: Expired,
}

/// Events later than this past the wall clock are refused as `invalid_time`: one bad clock
/// must not move the dedup window past every real event.
const MAX_FUTURE_MS: i64 = 86_400_000;

impl Aggregator {
    pub fn new(config: &AggregateConfig) -> Self {
        let limits = &config.limits;
        Aggregator {
            dedup: {
                let mut dedup = Dedup::new(config.dedup_window);
                dedup.hold_from(config.dedup_hold_from);
                dedup
            },
            dedup_anchor: config.dedup_anchor,
            shared: Shared {
                ids: Ids::new(limits),
                truncations: Truncations::default(),
            },
            inventory: InventoryIndex::default(),
            usage: Usage::new(limits),
            freshness: Freshness::new(limits),
            people: People::new(config),
            throughput: Throughput::default(),
            viewers: ReportViewers::new(limits),
            users: ActiveUsers::new(limits),
            items: Items::new(limits),
            latest_allowed: i64::MAX,
            own_users: config
                .own_user
                .iter()
                .map(|u| UserKey::from_user_id(u))
                .collect(),
            exclude_own_exports: config.exclude_own_exports,
            // The configuration compiled these already; a failure here leaves events unfiltered.
            filters: Filters::new(&config.filters).unwrap_or_default(),
            outbox: None,
            retention_ms: config
                .series_retention
                .map(|r| i64::try_from(r.as_millis()).unwrap_or(i64::MAX)),
            last_expiry: i64::MIN,
            expired: Expired::default(),
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

    /// Forgets the event ids seen so far: a new replay pass begins, and the days of earlier
    /// ones never come again. (The pipeline saves the replay's progress with this state, so a
    /// restart skips the passes done only with their ids forgotten.)
    pub fn forget_seen_ids(&mut self) {
        self.dedup.clear();
    }

    /// Forgets the event ids of UTC days `first_day..=last_day`: a replay pass over them is
    /// done, and its days never come again in that replay. Ids of other days stay: a replay
    /// started on a state (of a backfill, say) still recognises the events the state counted.
    pub fn forget_seen_days(&mut self, first_day: i64, last_day: i64) {
        self.dedup.forget_days(first_day, last_day);
    }

    /// Counts one source document as finished, read to its end or not.
    pub fn document_done(&mut self, complete: bool) {
        self.throughput.document_done(complete);
    }

    /// Where the state's heap goes, part by part (estimated from capacities: see [`memory`]).
    pub fn heap_usage(&self) -> memory::HeapUsage {
        let mut usage = memory::HeapUsage::default();
        self.shared.ids.heap(&mut usage);
        self.usage.heap(&mut usage);
        self.freshness.heap(&mut usage);
        self.people.heap(&mut usage);
        self.viewers.heap(&mut usage);
        self.users.heap(&mut usage);
        self.items.heap(&mut usage);
        let dedup = memory::Holder::Dedup;
        usage.add(dedup, self.dedup.len(), self.dedup.heap_bytes());
        usage
    }

    /// The whole state, for the durable state file.
    pub fn export(&self) -> AggregatorState {
        let ids = &self.shared.ids;
        AggregatorState {
            workspaces: ids.workspaces.export(),
            reports: ids.reports.export(),
            activities: ids.activities.export(),
            usage: self.usage.export(),
            freshness: self.freshness.export(),
            viewers: self.viewers.export(),
            users: self.users.export(),
            items: self.items.export(),
            dedup: self.dedup.export(),
            throughput: self.throughput.export(),
            inventory: self.inventory.inventory.clone(),
            people: self.people.export(),
            truncated: self.shared.truncations.export(),
            expiry: ExpiryState {
                expired: (self.expired.0.iter())
                    .map(|(f, n)| (f.to_string(), *n))
                    .collect(),
                released_workspaces: ids.workspaces.released(),
                released_reports: ids.reports.released(),
                released_user_labels: self.people.released_labels(),
            },
        }
    }

    /// Resumes from [`Aggregator::export`] under the current configuration (caps and the dedup
    /// window are today's; label sets admitted before stay).
    pub fn import(config: &AggregateConfig, state: AggregatorState) -> Self {
        let fresh = Aggregator::new(config);
        let limits = &config.limits;
        // Series saved before they had event times count as touched at the newest event.
        let touched = state.throughput.watermark().map_or(i64::MIN, |w| w.0);
        let expiry = state.expiry;
        let ids = &fresh.shared.ids;
        let ids = Ids {
            workspaces: Interner::import(
                state.workspaces,
                &expiry.released_workspaces,
                ids.workspaces.cap(),
            ),
            reports: Interner::import(state.reports, &expiry.released_reports, ids.reports.cap()),
            activities: Interner::import(state.activities, &[], ids.activities.cap()),
        };
        let mut restored = Aggregator {
            shared: Shared {
                ids,
                truncations: Truncations::import(&state.truncated),
            },
            usage: Usage::import(state.usage, limits, touched),
            freshness: Freshness::import(state.freshness, limits),
            people: People::import(config, state.people, &expiry.released_user_labels, touched),
            throughput: Throughput::import(state.throughput),
            viewers: ReportViewers::import(state.viewers, limits),
            users: ActiveUsers::import(state.users, limits),
            items: Items::import(state.items, limits, touched),
            dedup: Dedup::import(state.dedup, config.dedup_window),
            expired: Expired(
                (expiry.expired.iter())
                    .filter_map(|(name, n)| Some((catalogue::by_name(name)?.name, *n)))
                    .collect(),
            ),
            ..fresh
        };
        if let Some(inventory) = state.inventory {
            restored.apply_inventory(inventory);
        }
        restored
    }

    /// Takes in the tenant's inventory: names for workspaces and reports that had no event
    /// yet, workspace type and capacity, the report list behind `powerbi_reports`, and every
    /// item (reports too) behind `powerbi_items`. The inventory's names count as of its fetch
    /// time, so a later event's name still wins.
    pub fn apply_inventory(&mut self, inventory: Inventory) {
        let at = inventory.fetched_at.0;
        self.inventory.workspaces.clear();
        self.inventory.reports.clear();
        let mut items = Vec::with_capacity(inventory.reports() + inventory.items());
        let Shared { ids, truncations } = &mut self.shared;
        for w in &inventory.workspaces {
            // An inventory cached by an older version may hold upper-case GUIDs.
            let ws_id = lower_guid(w.id.as_str().into());
            let ws = ids
                .workspaces
                .intern(truncations.clip(ClippedLabel::WorkspaceId, &ws_id));
            if let Some(ws) = ws {
                let meta = WorkspaceMeta {
                    personal: w.personal,
                    capacity_id: w.capacity_id.clone(),
                };
                self.inventory.workspaces.insert(ws, meta);
                if !w.name.is_empty() {
                    let name = truncations.clip(ClippedLabel::WorkspaceName, &w.name);
                    self.usage.name_workspace(ws, name, at);
                }
            }
            let reports = (w.reports.iter()).map(|(id, name)| (ItemType::Report, id, name));
            let others = (w.items.iter()).map(|i| (i.kind.item_type(), &i.id, &i.name));
            items.extend(reports.chain(others).map(|(t, id, name)| (ws, t, id, name)));
            for (id, name) in &w.reports {
                let id = lower_guid(id.as_str().into());
                let id = truncations.clip(ClippedLabel::ReportId, &id);
                let Some(report) = ids.reports.intern(id) else {
                    continue;
                };
                self.inventory.reports.push((report, ws));
                if let (false, Some(ws)) = (name.is_empty(), ws) {
                    let name = truncations.clip(ClippedLabel::ReportName, name);
                    self.usage.name_report(report, name, ws, at);
                }
            }
        }
        // An inventory cached by an older version may hold upper-case GUIDs.
        let items = (items.into_iter())
            .map(|(ws, t, id, name)| (ws, t, lower_guid(id.as_str().into()), name.as_str()));
        let items: Vec<_> = items.collect();
        let items = (items.iter()).map(|(ws, t, id, name)| (*ws, t.clone(), id.as_ref(), *name));
        self.items
            .apply_inventory(items, at, &mut self.shared.truncations);
        self.inventory.inventory = Some(inventory);
    }

    /// What a live source reported about itself that counting depends on: the ids its access
    /// token names the exporter by (its own exports are left out), and whether the initial
    /// lookback is loaded (then the dedup window trails the clock again).
    pub fn source_reported(&mut self, own_identities: &[String], initial_lookback_loaded: bool) {
        for id in own_identities {
            let user = UserKey::from_user_id(id);
            if !self.own_users.contains(&user) {
                self.own_users.push(user);
            }
        }
        if initial_lookback_loaded && self.dedup.held_from().is_some() {
            self.dedup.hold_from(None);
        }
    }

    /// What the status page shows of the counting: the watermark, and the `top` most viewed
    /// reports of the day ending at `reference` (ids, and names from the `_info` state).
    pub fn status_data(&self, reference: Reference, top: usize) -> recent::UsageStatus {
        let day_end = match reference {
            Reference::NewestEvent => self.watermark().unwrap_or(UnixMillis(0)),
            Reference::WallClock(now) => now,
        };
        let top_reports = self
            .viewers
            .recent()
            .top(day_end.0, top)
            .into_iter()
            .map(|(rep, views)| {
                let info = self.usage.report_name(rep);
                let workspace = info.map(|i| i.workspace);
                let workspace_name = workspace
                    .and_then(|w| self.usage.workspace_name(w))
                    .cloned()
                    .unwrap_or_default();
                recent::TopReport {
                    report_id: self.shared.ids.report(rep),
                    report_name: info.map(|i| i.name.clone()).unwrap_or_default(),
                    workspace_id: workspace
                        .map(|w| self.shared.ids.workspace(w))
                        .unwrap_or_default(),
                    workspace_name,
                    views,
                }
            })
            .collect();
        recent::UsageStatus {
            watermark: self.watermark(),
            processed: self.processed(),
            top_reports,
            day_end,
        }
    }

    /// Newest `CreationTime` counted.
    pub fn watermark(&self) -> Option<UnixMillis> {
        self.throughput.watermark()
    }

    /// Events read so far (accepted, duplicate and rejected).
    pub fn processed(&self) -> u64 {
        self.throughput.processed_count()
    }

    /// A new event that passed the filters: its ids interned once, then every group observes
    /// it. This is the hot path: plain static calls, one hash lookup per id, and no allocation
    /// but the groups' own (a new series, a user label).
    fn count(&mut self, event: &ActivityEvent<'_>) {
        let watermark = self.throughput.watermark();
        let counted: Counted<'_, '_> = self.shared.intern(event, watermark);
        let truncations = &mut self.shared.truncations;
        self.usage.observe(&counted, truncations);
        self.freshness.observe(&counted);
        self.people.observe(&counted, truncations);
        self.viewers.observe(&counted);
        self.users.observe(&counted);
        self.items.observe(&counted, truncations);
        if self.throughput.advance(event.time) {
            if let Some(retention) = self.retention_ms {
                if event.time.0.saturating_sub(self.last_expiry) >= EXPIRE_EVERY_MS {
                    self.expire_series(event.time.0, retention);
                }
            }
        }
    }

    /// Removes the series idle since before `newest` minus the retention, counts them by
    /// family, and releases the ids no series (nor the inventory) refers to any more. Event
    /// time, not the wall clock, so a replay expires exactly as the live source would have.
    fn expire_series(&mut self, newest: i64, retention_ms: i64) {
        self.last_expiry = newest;
        let sweep = Sweep {
            newest,
            cutoff: newest.saturating_sub(retention_ms),
        };
        let expired = &mut self.expired;
        self.usage.expire(sweep, expired);
        self.freshness.expire(sweep, expired);
        self.people.expire(sweep, expired);
        self.viewers.expire(sweep, expired);
        self.users.expire(expired);
        self.items.expire(sweep, expired);
        self.release_ids();
    }

    /// Releases the workspace and report ids no group nor the inventory refers to.
    fn release_ids(&mut self) {
        let mut refs = Refs::default();
        self.usage.refs(&mut refs);
        self.freshness.refs(&mut refs);
        self.people.refs(&mut refs);
        self.viewers.refs(&mut refs);
        self.users.refs(&mut refs);
        self.items.refs(&mut refs);
        refs.workspaces
            .extend(self.inventory.workspaces.keys().copied());
        for (r, w) in &self.inventory.reports {
            refs.reports.insert(*r);
            refs.workspaces.extend(*w);
        }
        self.shared.ids.workspaces.release_unused(&refs.workspaces);
        self.shared.ids.reports.release_unused(&refs.reports);
    }

    /// Copies the state out as sorted samples of every family, in catalogue order.
    pub fn snapshot(&self, reference: Reference) -> Snapshot {
        let reference = match (reference, self.watermark()) {
            (Reference::WallClock(now), Some(w)) => now.max(w),
            (Reference::WallClock(now), None) => now,
            (Reference::NewestEvent, w) => w.unwrap_or_default(),
        };
        let view = View {
            ids: &self.shared.ids,
            inventory: &self.inventory,
            reference,
        };
        let mut s = Snapshot::default();
        self.usage.render(&view, &mut s);
        self.freshness.render(&view, &mut s);
        self.people.render(&view, &mut s);
        self.throughput.render(&mut s);
        self.viewers.render(&view, &mut s);
        self.users.render(&view, &mut s);
        self.items.render(&view, &mut s);
        self.shared.truncations.render(&mut s);
        self.render_series_health(&mut s);
        s.push(&catalogue::BUILD_INFO, [(crate::build::info_labels(), 1.0)]);
        s.sort_families();
        s
    }

    /// `powerbi_series_dropped_total` and `powerbi_series_expired_total` of every capped
    /// family the groups keep.
    fn render_series_health(&self, out: &mut Snapshot) {
        let dropped: Vec<(&'static Family, u64)> = (self.usage.dropped().into_iter())
            .chain(self.freshness.dropped())
            .chain(self.people.dropped())
            .chain(self.viewers.dropped())
            .chain(self.users.dropped())
            .chain(self.items.dropped())
            .collect();
        let family_name = |f: &Family| FamilyName {
            family: f.name.to_string(),
        };
        let samples = dropped.iter().map(|(f, n)| (family_name(f), *n as f64));
        labels::push(out, &catalogue::SERIES_DROPPED, samples);
        let samples = (dropped.iter()).map(|(f, _)| (family_name(f), self.expired.get(f) as f64));
        labels::push(out, &catalogue::SERIES_EXPIRED, samples);
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
        self.throughput.processed();
        self.throughput.rejected(reason);
    }
}

impl Aggregator {
    fn accept_event(&mut self, event: &ActivityEvent<'_>, raw: Option<&[u8]>) {
        self.throughput.processed();
        if event.time.0 > self.latest_allowed {
            return self.throughput.rejected(Rejection::InvalidTime);
        }
        match self.dedup.check(event.key, event.time) {
            Seen::New if self.is_own_export(event) => self.throughput.left_out(LeftOut::OwnExport),
            Seen::New => {
                if event.field_type_mismatches != 0 {
                    self.throughput
                        .count_field_type_mismatches(event.field_type_mismatches);
                }
                self.after_dedup(event, raw);
            }
            Seen::Duplicate => self.throughput.duplicate(),
            Seen::OutsideWindow => self.throughput.rejected(Rejection::OutsideDedupWindow),
        }
    }

    /// A new event: filtered (and counted as such) or counted, and queued for the forwarders.
    fn after_dedup(&mut self, event: &ActivityEvent<'_>, raw: Option<&[u8]>) {
        match self.filters.check(event) {
            Some(reason) => self.throughput.left_out(LeftOut::Filter(reason)),
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

/// The durable form of an [`Aggregator`]: user hashes, never user ids. One state per group;
/// the keys they are saved under are those of the release before the groups
/// ([`state_file`]), so a state saved by an older release loads as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatorState {
    workspaces: Vec<String>,
    reports: Vec<String>,
    activities: Vec<String>,
    usage: UsageState,
    freshness: FreshnessState,
    viewers: ReportViewersState,
    users: ActiveUsersState,
    items: ItemsState,
    dedup: dedup::DedupState,
    throughput: ThroughputState,
    inventory: Option<Inventory>,
    people: PeopleState,
    truncated: Vec<(String, u64)>,
    expiry: ExpiryState,
}

/// What series expiry keeps in the state: counts, and the ids released for reuse.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
struct ExpiryState {
    expired: Vec<(String, u64)>,
    released_workspaces: Vec<Sym>,
    released_reports: Vec<Sym>,
    released_user_labels: Vec<Sym>,
}

#[cfg(test)]
mod tests;
