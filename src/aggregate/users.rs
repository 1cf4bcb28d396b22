//! The users group: families `powerbi_active_users` and `powerbi_workspace_active_users`,
//! distinct users over trailing windows (1d, 7d, 28d), exact and without keeping user ids.
//!
//! Invariants:
//! - a user is a 64-bit hash of the lower-cased `UserId` ([`UserKey`]); the id is never stored;
//! - per user (and per user and workspace) only the newest event time is kept: a user was
//!   active in a window ending at the reference time iff that newest time lies inside it, so
//!   the counts are exact (up to 64-bit hash collisions, ~n²/2⁶⁵) whatever the event order;
//! - entries older than the longest window are pruned, so memory is ~24 bytes per user (and
//!   per user and workspace) active in the last 28 days, not per event.

use hashbrown::{HashMap, HashSet};

use super::labels::{self, label_set};
use super::memory::HeapUsage;
use super::series::Sym;
use super::shared::{Counted, Expired, Refs, View};
use super::Limits;
use crate::catalogue::{self, Family, Snapshot, OVERFLOW_LABEL};
use crate::decode::UserKey;

label_set!(
    /// A window.
    WindowLabel { window } for ACTIVE_USERS
);
label_set!(
    /// A workspace's users in one window.
    WorkspaceWindow { workspace_id, window } for WORKSPACE_ACTIVE_USERS
);

/// Workspaces with their own `powerbi_workspace_active_users` series (one per window each).
pub fn workspace_users_cap(limits: &Limits) -> usize {
    limits.cap(&catalogue::WORKSPACE_ACTIVE_USERS) / WINDOWS.len()
}

/// The group: distinct users, in the tenant and per workspace.
#[derive(Debug)]
pub struct ActiveUsers {
    users: DistinctUsers,
}

/// The durable form of [`ActiveUsers`] (saved under the keys [`super::state_file`] names).
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveUsersState {
    pub(super) users: UsersState,
}

impl ActiveUsers {
    pub fn new(limits: &Limits) -> Self {
        ActiveUsers {
            users: DistinctUsers::new(workspace_users_cap(limits)),
        }
    }

    #[inline]
    pub fn observe(&mut self, ev: &Counted<'_, '_>) {
        if let Some(user) = ev.event.user {
            self.users.record(user, ev.named_workspace(), ev.time());
        }
    }

    /// Workspaces without a user in the longest window free their place under the cap.
    pub fn expire(&mut self, expired: &mut Expired) {
        let workspaces = self.users.release_idle_workspaces();
        expired.add(
            &catalogue::WORKSPACE_ACTIVE_USERS,
            workspaces * WINDOWS.len() as u64,
        );
    }

    pub fn refs(&self, refs: &mut Refs) {
        refs.workspaces.extend(self.users.workspaces());
    }

    pub fn dropped(&self) -> [(&'static Family, u64); 1] {
        [(&catalogue::WORKSPACE_ACTIVE_USERS, self.users.dropped())]
    }

    /// The users' heap: per user under `powerbi_active_users`, per user and workspace under
    /// `powerbi_workspace_active_users`; the entries are users (and user-workspace pairs).
    pub fn heap(&self, usage: &mut HeapUsage) {
        let u = &self.users;
        let tenant = u.last_seen.allocation_size();
        usage.family(&catalogue::ACTIVE_USERS, u.last_seen.len(), tenant);
        let per_workspace =
            u.last_seen_in_workspace.allocation_size() + u.admitted_workspaces.allocation_size();
        let pairs = u.last_seen_in_workspace.len();
        usage.family(&catalogue::WORKSPACE_ACTIVE_USERS, pairs, per_workspace);
    }

    pub fn render(&self, view: &View<'_>, out: &mut Snapshot) {
        let reference = view.reference.0;
        let totals = self.users.totals(reference);
        let samples = WINDOWS.iter().zip(totals).map(|(w, n)| {
            let window = w.label.to_string();
            (WindowLabel { window }, n as f64)
        });
        labels::push(out, &catalogue::ACTIVE_USERS, samples);
        let per_workspace = self.users.per_workspace(reference);
        let samples = per_workspace.iter().flat_map(|(&ws, counts)| {
            let workspace_id = if ws == OVERFLOW_WORKSPACE {
                OVERFLOW_LABEL.to_string()
            } else {
                view.ids.workspace(ws)
            };
            WINDOWS.iter().zip(*counts).map(move |(w, n)| {
                let labels = WorkspaceWindow {
                    workspace_id: workspace_id.clone(),
                    window: w.label.to_string(),
                };
                (labels, n as f64)
            })
        });
        labels::push(out, &catalogue::WORKSPACE_ACTIVE_USERS, samples);
    }

    pub fn export(&self) -> ActiveUsersState {
        ActiveUsersState {
            users: self.users.export(),
        }
    }

    pub fn import(state: ActiveUsersState, limits: &Limits) -> Self {
        ActiveUsers {
            users: DistinctUsers::import(state.users, workspace_users_cap(limits)),
        }
    }
}

/// Window label and length in milliseconds, shortest first.
pub const WINDOWS: [Window; 3] = [
    Window {
        label: "1d",
        millis: 86_400_000,
    },
    Window {
        label: "7d",
        millis: 7 * 86_400_000,
    },
    Window {
        label: "28d",
        millis: 28 * 86_400_000,
    },
];

/// A trailing window of the active-user gauges: its `window` label and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub label: &'static str,
    pub millis: i64,
}
const LONGEST: i64 = WINDOWS[2].millis;
const PRUNE_EVERY_MS: i64 = 3_600_000;

/// The workspace key of workspaces past the family's cap.
pub const OVERFLOW_WORKSPACE: Sym = Sym::MAX;

/// Distinct-user counts per window, in [`WINDOWS`] order.
pub type WindowCounts = [u64; 3];

#[derive(Debug)]
pub struct DistinctUsers {
    last_seen: HashMap<u64, i64>,
    last_seen_in_workspace: HashMap<(Sym, u64), i64>,
    admitted_workspaces: HashSet<Sym>,
    workspace_cap: usize,
    dropped: u64,
    newest: i64,
    last_prune: i64,
}

impl DistinctUsers {
    /// `workspace_cap` is the number of workspaces with their own series.
    pub fn new(workspace_cap: usize) -> Self {
        DistinctUsers {
            last_seen: HashMap::new(),
            last_seen_in_workspace: HashMap::new(),
            admitted_workspaces: HashSet::new(),
            workspace_cap,
            dropped: 0,
            newest: i64::MIN,
            last_prune: i64::MIN,
        }
    }

    /// Records activity of `user` at `time` (ms), in `workspace` when the event has one
    /// (`Some(None)`: a workspace past the interner's cap).
    pub fn record(&mut self, user: UserKey, workspace: Option<Option<Sym>>, time: i64) {
        bump(self.last_seen.entry(user.0).or_insert(i64::MIN), time);
        if let Some(ws) = workspace {
            let ws = self.admit(ws);
            bump(
                self.last_seen_in_workspace
                    .entry((ws, user.0))
                    .or_insert(i64::MIN),
                time,
            );
        }
        if time > self.newest {
            self.newest = time;
            if time.saturating_sub(self.last_prune) >= PRUNE_EVERY_MS {
                self.prune();
            }
        }
    }

    fn admit(&mut self, ws: Option<Sym>) -> Sym {
        match ws {
            Some(ws) if self.admitted_workspaces.contains(&ws) => ws,
            Some(ws) if self.admitted_workspaces.len() < self.workspace_cap => {
                self.admitted_workspaces.insert(ws);
                ws
            }
            _ => {
                self.dropped += 1;
                OVERFLOW_WORKSPACE
            }
        }
    }

    fn prune(&mut self) {
        let cutoff = self.newest.saturating_sub(LONGEST);
        self.last_seen.retain(|_, t| *t > cutoff);
        self.last_seen_in_workspace.retain(|_, t| *t > cutoff);
        self.last_prune = self.newest;
    }

    /// Distinct users per window ending at `reference` (ms).
    pub fn totals(&self, reference: i64) -> WindowCounts {
        let mut counts = [0; 3];
        for &t in self.last_seen.values() {
            add_to_windows(&mut counts, reference, t);
        }
        counts
    }

    /// Distinct users per workspace and window ending at `reference` (ms).
    pub fn per_workspace(&self, reference: i64) -> HashMap<Sym, WindowCounts> {
        let mut out: HashMap<Sym, WindowCounts> = HashMap::new();
        for (&(ws, _), &t) in &self.last_seen_in_workspace {
            add_to_windows(out.entry(ws).or_default(), reference, t);
        }
        out
    }

    /// Stops tracking workspaces without a user active in the longest window (their series
    /// are gone from [`DistinctUsers::per_workspace`] already), so they free their slot
    /// under the cap; answers how many.
    pub fn release_idle_workspaces(&mut self) -> u64 {
        let active: HashSet<Sym> = self
            .last_seen_in_workspace
            .keys()
            .map(|(ws, _)| *ws)
            .collect();
        let before = self.admitted_workspaces.len();
        self.admitted_workspaces.retain(|ws| active.contains(ws));
        (before - self.admitted_workspaces.len()) as u64
    }

    /// Every workspace referred to (the overflow one included).
    pub fn workspaces(&self) -> impl Iterator<Item = Sym> + '_ {
        self.admitted_workspaces
            .iter()
            .copied()
            .chain(self.last_seen_in_workspace.keys().map(|(ws, _)| *ws))
    }

    /// Samples that went to the overflow workspace.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn export(&self) -> UsersState {
        UsersState {
            last_seen: self.last_seen.iter().map(|(u, t)| (*u, *t)).collect(),
            last_seen_in_workspace: self
                .last_seen_in_workspace
                .iter()
                .map(|(k, t)| (*k, *t))
                .collect(),
            admitted_workspaces: self.admitted_workspaces.iter().copied().collect(),
            dropped: self.dropped,
            newest: self.newest,
            last_prune: self.last_prune,
        }
    }

    pub fn import(state: UsersState, workspace_cap: usize) -> Self {
        DistinctUsers {
            last_seen: state.last_seen.into_iter().collect(),
            last_seen_in_workspace: state.last_seen_in_workspace.into_iter().collect(),
            admitted_workspaces: state.admitted_workspaces.into_iter().collect(),
            workspace_cap,
            dropped: state.dropped,
            newest: state.newest,
            last_prune: state.last_prune,
        }
    }
}

/// The durable form of [`DistinctUsers`] (user hashes only, never user ids).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UsersState {
    last_seen: Vec<(u64, i64)>,
    last_seen_in_workspace: Vec<((Sym, u64), i64)>,
    admitted_workspaces: Vec<Sym>,
    dropped: u64,
    newest: i64,
    last_prune: i64,
}

fn bump(slot: &mut i64, time: i64) {
    if time > *slot {
        *slot = time;
    }
}

fn add_to_windows(counts: &mut WindowCounts, reference: i64, t: i64) {
    for (count, window) in counts.iter_mut().zip(WINDOWS) {
        if t > reference - window.millis {
            *count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn counts_each_user_once_per_window_in_any_order() {
        let mut u = DistinctUsers::new(1);
        let now = 100 * DAY;
        u.record(UserKey(1), Some(Some(7)), now - 2 * DAY);
        u.record(UserKey(1), Some(Some(7)), now - DAY / 2); // same user, newer
        u.record(UserKey(2), Some(Some(8)), now - 10 * DAY); // workspace 8 past the cap
        u.record(UserKey(3), None, now - 30 * DAY); // outside every window
        u.record(UserKey(1), Some(Some(7)), now - 5 * DAY); // older, late: changes nothing
        assert_eq!(u.totals(now), [1, 1, 2]);
        let per = u.per_workspace(now);
        assert_eq!(per[&7], [1, 1, 1]);
        assert_eq!(per[&OVERFLOW_WORKSPACE], [0, 0, 1]);
        assert_eq!(u.dropped(), 1);
    }
}
