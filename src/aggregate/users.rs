//! Distinct users over trailing windows (1d, 7d, 28d), exact and without keeping user ids.
//!
//! Invariants:
//! - a user is a 64-bit hash of the lower-cased `UserId` ([`UserKey`]); the id is never stored;
//! - per user (and per user and workspace) only the newest event time is kept: a user was
//!   active in a window ending at the reference time iff that newest time lies inside it, so
//!   the counts are exact (up to 64-bit hash collisions, ~n²/2⁶⁵) whatever the event order;
//! - entries older than the longest window are pruned, so memory is ~24 bytes per user (and
//!   per user and workspace) active in the last 28 days, not per event.

use hashbrown::{HashMap, HashSet};

use super::series::Sym;
use crate::decode::UserKey;

/// Window label and length in milliseconds, shortest first.
pub const WINDOWS: [(&str, i64); 3] = [
    ("1d", 86_400_000),
    ("7d", 7 * 86_400_000),
    ("28d", 28 * 86_400_000),
];
const LONGEST: i64 = WINDOWS[2].1;
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
    for (count, (_, len)) in counts.iter_mut().zip(WINDOWS) {
        if t > reference - len {
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
