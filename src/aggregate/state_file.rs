//! The layout of the aggregator's saved state: every key, in the order the release before the
//! family groups wrote them, mapped to the groups' state structs. (The source's status and the
//! replay progress, which that release kept here too, moved beside it in state file version 2:
//! `state::migrate` moves them.)
//!
//! Invariants:
//! - a state file written by an older release loads with every counter exact, and a save
//!   writes the same keys in the same order (the pinned `testdata/state-before-groups.json`
//!   proves both);
//! - a key added after the first release has `#[serde(default)]`, so older files still load;
//! - reading and writing go straight through one struct each (`state_layout!` declares
//!   both from one list): no buffering, so loading a large state costs no extra memory.

use serde::{Deserialize, Serialize};

use super::dedup::DedupState;
use super::freshness::FreshnessState;
use super::items::ItemsState;
use super::people::PeopleState;
use super::recent::RecentViewsState;
use super::series::{CountersState, InfoState, Sym, TimesState};
use super::throughput::ThroughputState;
use super::usage::{ReportName, UsageState};
use super::users::{ActiveUsersState, UsersState};
use super::viewers::{ReportViewersState, ViewersState};
use super::{AggregatorState, ExpiryState};
use crate::decode::inventory::Inventory;
use crate::decode::UnixMillis;

/// Declares the layout once: `StateIn` (owned, read) and `StateOut` (borrowed, written).
/// An attribute after `@out` applies to the written field only.
macro_rules! state_layout {
    ($($(#[$attr:meta])* $(@out #[$out:meta])? $field:ident: $ty:ty,)*) => {
        #[derive(Deserialize)]
        struct StateIn {
            $($(#[$attr])* $field: $ty,)*
        }

        #[derive(Serialize)]
        struct StateOut<'a> {
            $($(#[$out])? $field: &'a $ty,)*
        }
    };
}

/// Whether the items group has nothing to save (see [`ItemsState::is_empty`]).
fn no_items(items: &&ItemsState) -> bool {
    items.is_empty()
}

state_layout! {
    workspaces: Vec<String>,
    reports: Vec<String>,
    activities: Vec<String>,
    activity_events: CountersState<(Sym, Sym)>,
    activity_failed: CountersState<(Sym, Sym)>,
    report_events: CountersState<(Sym, Sym, Sym)>,
    workspace_info: InfoState<Sym, String>,
    report_info: InfoState<Sym, ReportName>,
    #[serde(default)]
    report_last_view: TimesState<Sym>,
    #[serde(default)]
    viewers: ViewersState,
    #[serde(default)]
    recent_views: RecentViewsState,
    #[serde(default)]
    workspace_last_activity: TimesState<Sym>,
    #[serde(default)]
    activity_first_seen: TimesState<Sym>,
    users: UsersState,
    dedup: DedupState,
    processed: u64,
    duplicates: u64,
    #[serde(default)]
    filtered_own_exports: u64,
    #[serde(default)]
    filtered: Vec<(String, u64)>,
    #[serde(default)]
    inventory: Option<Inventory>,
    #[serde(default)]
    /// The field type mismatches, under the name the first release saved them with.
    odd_fields: Vec<(String, u64)>,
    #[serde(default)]
    user_label: String,
    #[serde(default)]
    user_labels: Vec<String>,
    #[serde(default)]
    user_events: CountersState<(Sym, Sym)>,
    #[serde(default)]
    external_shares: CountersState<(Sym, Sym)>,
    #[serde(default)]
    learned_domains: Vec<String>,
    #[serde(default)]
    truncated: Vec<(String, u64)>,
    rejected: Vec<(String, u64)>,
    pages_processed: u64,
    pages_failed: u64,
    watermark: Option<UnixMillis>,
    #[serde(default)]
    expiry: ExpiryState,
    /// The items group (issue 18): left out while empty, so an older state saves back as it
    /// was.
    #[serde(default)]
    @out #[serde(skip_serializing_if = "no_items")]
    items: ItemsState,
}

impl Serialize for AggregatorState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (usage, freshness, people) = (&self.usage, &self.freshness, &self.people);
        let (throughput, viewers) = (&self.throughput, &self.viewers);
        StateOut {
            workspaces: &self.workspaces,
            reports: &self.reports,
            activities: &self.activities,
            activity_events: &usage.activity_events,
            activity_failed: &usage.activity_failed,
            report_events: &usage.report_events,
            workspace_info: &usage.workspace_info,
            report_info: &usage.report_info,
            report_last_view: &freshness.report_last_view,
            viewers: &viewers.viewers,
            recent_views: &viewers.recent_views,
            workspace_last_activity: &freshness.workspace_last_activity,
            activity_first_seen: &freshness.activity_first_seen,
            users: &self.users.users,
            dedup: &self.dedup,
            processed: &throughput.processed,
            duplicates: &throughput.duplicates,
            filtered_own_exports: &throughput.filtered_own_exports,
            filtered: &throughput.filtered,
            inventory: &self.inventory,
            odd_fields: &throughput.field_type_mismatches,
            user_label: &people.user_label,
            user_labels: &people.user_labels,
            user_events: &people.user_events,
            external_shares: &people.external_shares,
            learned_domains: &people.learned_domains,
            truncated: &self.truncated,
            rejected: &throughput.rejected,
            pages_processed: &throughput.pages_processed,
            pages_failed: &throughput.pages_failed,
            watermark: &throughput.watermark,
            expiry: &self.expiry,
            items: &self.items,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AggregatorState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        StateIn::deserialize(deserializer).map(AggregatorState::from)
    }
}

impl From<StateIn> for AggregatorState {
    fn from(s: StateIn) -> Self {
        AggregatorState {
            workspaces: s.workspaces,
            reports: s.reports,
            activities: s.activities,
            usage: UsageState {
                activity_events: s.activity_events,
                activity_failed: s.activity_failed,
                report_events: s.report_events,
                workspace_info: s.workspace_info,
                report_info: s.report_info,
            },
            freshness: FreshnessState {
                report_last_view: s.report_last_view,
                workspace_last_activity: s.workspace_last_activity,
                activity_first_seen: s.activity_first_seen,
            },
            viewers: ReportViewersState {
                viewers: s.viewers,
                recent_views: s.recent_views,
            },
            users: ActiveUsersState { users: s.users },
            items: s.items,
            dedup: s.dedup,
            throughput: ThroughputState {
                processed: s.processed,
                duplicates: s.duplicates,
                filtered_own_exports: s.filtered_own_exports,
                filtered: s.filtered,
                field_type_mismatches: s.odd_fields,
                rejected: s.rejected,
                pages_processed: s.pages_processed,
                pages_failed: s.pages_failed,
                watermark: s.watermark,
            },
            inventory: s.inventory,
            people: PeopleState {
                user_label: s.user_label,
                user_labels: s.user_labels,
                user_events: s.user_events,
                external_shares: s.external_shares,
                learned_domains: s.learned_domains,
            },
            truncated: s.truncated,
            expiry: s.expiry,
        }
    }
}
