//! The users group: families `powerbi_active_users` and `powerbi_workspace_active_users`,
//! distinct users over trailing windows (1d, 7d, 28d), exact and without keeping user ids.
//!
//! Invariants:
//! - a user is a 64-bit hash of the lower-cased `UserId` ([`UserKey`]); the id is never stored;
//! - per user (and per user and workspace) only the newest event time is kept: a user was
//!   active in a window ending at the reference time iff that newest time lies inside it, so
//!   the counts are exact (up to 64-bit hash collisions, ~n²/2⁶⁵) whatever the event order;
//! - entries older than the longest window are pruned, so memory is ~54 bytes per user and
//!   ~12 per user and workspace active in the last 28 days (tenant bench), not per event.

use hashbrown::{HashMap, HashSet};

use super::labels::{self, label_set};
use super::memory::{chunk, HeapUsage};
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
        let (tenant, pairs) = u.heap();
        usage.family(&catalogue::ACTIVE_USERS, u.users.len(), tenant);
        let per_workspace =
            pairs + u.admitted_workspaces.allocation_size() + u.pairs.allocation_size();
        let pair_count = u.pairs.values().map(|&n| n as usize).sum();
        usage.family(
            &catalogue::WORKSPACE_ACTIVE_USERS,
            pair_count,
            per_workspace,
        );
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

/// One user's newest event times, in the tenant and per workspace, as offsets in ms from
/// [`DistinctUsers`]' base.
#[derive(Debug, Default)]
struct UserTimes {
    newest: u32,
    /// At or before every workspace's offset: a prune skips the user's pairs while it is
    /// after the cutoff (walking 200,000 vectors every hour was the bench's hot spot).
    oldest: u32,
    /// Sorted by workspace.
    workspaces: Vec<(Sym, u32)>,
}

/// Per user, the newest event time in the tenant and in each workspace.
///
/// Times are kept as `u32` offsets from `base`, the cutoff of a past prune: a time at or
/// before it counts in no window (every window ends at or after the newest event), so it is
/// kept as offset 0. A prune moves the base up to its cutoff (rewriting every offset) only
/// when a time before the next prune could pass `u32` (49 days): every ~21 days of events. Per user and workspace that is 8 bytes, in a vector per user, not a
/// 24-byte entry of one table of every pair (issue 15, target 5).
#[derive(Debug)]
pub struct DistinctUsers {
    users: HashMap<u64, UserTimes>,
    base: i64,
    /// User-workspace pairs kept, per workspace: which workspaces still have users, without
    /// walking every pair at each expiry sweep.
    pairs: HashMap<Sym, u32>,
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
            users: HashMap::new(),
            base: i64::MIN,
            pairs: HashMap::new(),
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
        // Pruning first moves the base up before the new time is kept (it is the newest,
        // so the prune keeps it either way).
        if time > self.newest {
            self.newest = time;
            if time.saturating_sub(self.last_prune) >= PRUNE_EVERY_MS {
                self.prune();
            }
        }
        let at = self.offset(time);
        let ws = workspace.map(|ws| self.admit(ws));
        let times = self.users.entry(user.0).or_insert_with(|| UserTimes {
            newest: at,
            oldest: at,
            workspaces: Vec::new(),
        });
        times.newest = times.newest.max(at);
        if let Some(ws) = ws {
            match times.workspaces.binary_search_by_key(&ws, |&(w, _)| w) {
                Ok(i) => times.workspaces[i].1 = times.workspaces[i].1.max(at),
                Err(i) => {
                    times.workspaces.insert(i, (ws, at));
                    times.oldest = times.oldest.min(at);
                    *self.pairs.entry(ws).or_default() += 1;
                }
            }
        }
    }

    /// `time`'s offset from the base: 0 at or before it.
    fn offset(&self, time: i64) -> u32 {
        let offset = time.saturating_sub(self.base).clamp(0, i64::from(u32::MAX));
        offset as u32
    }

    fn time(&self, offset: u32) -> i64 {
        self.base.saturating_add(i64::from(offset))
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

    /// Drops the times no window can count any more; moves the base up to the cutoff when
    /// the times of the coming hour could otherwise pass `u32`.
    fn prune(&mut self) {
        let cutoff = self.newest.saturating_sub(LONGEST);
        // Kept iff after the cutoff, i.e. its offset is over `stale`.
        let stale = cutoff.saturating_sub(self.base).max(0);
        let next = self.newest.saturating_add(PRUNE_EVERY_MS);
        let rebase = next.saturating_sub(self.base) > i64::from(u32::MAX);
        let pairs = &mut self.pairs;
        let mut forget = |ws: Sym| {
            pairs.entry(ws).and_modify(|n| *n = n.saturating_sub(1));
        };
        self.users.retain(|_, user| {
            if i64::from(user.newest) <= stale {
                user.workspaces.iter().for_each(|&(ws, _)| forget(ws));
                return false;
            }
            if i64::from(user.oldest) <= stale {
                user.workspaces.retain(|&(ws, t)| {
                    let kept = i64::from(t) > stale;
                    if !kept {
                        forget(ws);
                    }
                    kept
                });
                let oldest = user.workspaces.iter().map(|&(_, t)| t).min();
                user.oldest = oldest.unwrap_or(user.newest);
            }
            if rebase {
                // Every offset kept is over `stale`, so it stays positive.
                let down = |t: &mut u32| *t = (i64::from(*t) - stale) as u32;
                user.workspaces.iter_mut().for_each(|(_, t)| down(t));
                down(&mut user.newest);
                down(&mut user.oldest);
            }
            true
        });
        self.pairs.retain(|_, n| *n > 0);
        if rebase {
            self.base = cutoff;
        }
        self.last_prune = self.newest;
    }

    /// Distinct users per window ending at `reference` (ms).
    pub fn totals(&self, reference: i64) -> WindowCounts {
        let mut counts = [0; 3];
        for user in self.users.values() {
            add_to_windows(&mut counts, reference, self.time(user.newest));
        }
        counts
    }

    /// Distinct users per workspace and window ending at `reference` (ms).
    pub fn per_workspace(&self, reference: i64) -> HashMap<Sym, WindowCounts> {
        let mut out: HashMap<Sym, WindowCounts> = HashMap::new();
        for &(ws, t) in self.users.values().flat_map(|u| &u.workspaces) {
            add_to_windows(out.entry(ws).or_default(), reference, self.time(t));
        }
        out
    }

    /// Stops tracking workspaces without a user active in the longest window (their series
    /// are gone from [`DistinctUsers::per_workspace`] already), so they free their slot
    /// under the cap; answers how many.
    pub fn release_idle_workspaces(&mut self) -> u64 {
        let before = self.admitted_workspaces.len();
        let pairs = &self.pairs;
        self.admitted_workspaces.retain(|ws| pairs.contains_key(ws));
        (before - self.admitted_workspaces.len()) as u64
    }

    /// Every workspace referred to (the overflow one included).
    pub fn workspaces(&self) -> impl Iterator<Item = Sym> + '_ {
        self.admitted_workspaces
            .iter()
            .copied()
            .chain(self.pairs.keys().copied())
    }

    /// Samples that went to the overflow workspace.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Heap bytes: the table of users, and the pairs of each.
    fn heap(&self) -> (usize, usize) {
        let pair = std::mem::size_of::<(Sym, u32)>();
        let pairs: usize = (self.users.values())
            .map(|u| chunk(u.workspaces.capacity() * pair))
            .sum();
        (self.users.allocation_size(), pairs)
    }

    pub fn export(&self) -> UsersState {
        UsersState {
            last_seen: (self.users.iter())
                .map(|(&u, times)| (u, self.time(times.newest)))
                .collect(),
            last_seen_in_workspace: (self.users.iter())
                .flat_map(|(&u, times)| {
                    (times.workspaces.iter()).map(move |&(ws, t)| ((ws, u), self.time(t)))
                })
                .collect(),
            admitted_workspaces: self.admitted_workspaces.iter().copied().collect(),
            dropped: self.dropped,
            newest: self.newest,
            last_prune: self.last_prune,
        }
    }

    /// Restores the users; the base is the cutoff at the newest event, so every saved time a
    /// window can still count fits its offset.
    pub fn import(state: UsersState, workspace_cap: usize) -> Self {
        let mut users = DistinctUsers {
            base: state.newest.saturating_sub(LONGEST),
            admitted_workspaces: state.admitted_workspaces.into_iter().collect(),
            dropped: state.dropped,
            newest: state.newest,
            last_prune: state.last_prune,
            ..DistinctUsers::new(workspace_cap)
        };
        for (user, t) in state.last_seen {
            let at = users.offset(t);
            users.users.entry(user).or_default().newest = at;
        }
        // `oldest` starts at 0 (default): the first prune walks each user's pairs once.
        for ((ws, user), t) in state.last_seen_in_workspace {
            let at = users.offset(t);
            let times = users.users.entry(user).or_default();
            // A pair without its user (never saved so) still makes the user seen then.
            times.newest = times.newest.max(at);
            times.workspaces.push((ws, at));
        }
        for times in users.users.values_mut() {
            // Newest first within a workspace, so the dedup keeps it.
            (times.workspaces).sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            times.workspaces.dedup_by_key(|(ws, _)| *ws);
        }
        for &(ws, _) in users.users.values().flat_map(|u| &u.workspaces) {
            *users.pairs.entry(ws).or_default() += 1;
        }
        users
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

    /// Two months of events, out of order and with late ones, through many prunes (each moves
    /// the base of the kept offsets) and a save and restore halfway: every count equals the
    /// truth from each user's (and user-workspace pair's) newest time, computed here.
    #[test]
    fn offsets_from_a_moving_base_count_exactly_across_prunes_and_restores() {
        use std::collections::HashMap as Truth;
        let mut rng = crate::rng::Rng::new(7);
        let mut u = DistinctUsers::new(10);
        let (mut newest, mut seen, mut in_ws) = (i64::MIN, Truth::new(), Truth::new());
        let mut admitted = Vec::new();
        for i in 0..20_000i64 {
            // Mostly forward in time, one event in 8 up to 30 days late.
            let late = if rng.below(8) == 0 {
                rng.below(30 * DAY as u64) as i64
            } else {
                0
            };
            let time = i * 300_000 + rng.below(1_000) as i64 - late;
            let (user, ws) = (rng.below(50), rng.below(12) as Sym);
            u.record(UserKey(user), Some(Some(ws)), time);
            newest = newest.max(time);
            let t = seen.entry(user).or_insert(time);
            *t = (*t).max(time);
            // The first ten workspaces seen have their own series.
            if !admitted.contains(&ws) && admitted.len() < 10 {
                admitted.push(ws);
            }
            let ws = if admitted.contains(&ws) {
                ws
            } else {
                OVERFLOW_WORKSPACE
            };
            let t = in_ws.entry((ws, user)).or_insert(time);
            *t = (*t).max(time);
            if i == 10_000 {
                u = DistinctUsers::import(u.export(), 10);
            }
            if i % 997 == 0 {
                for reference in [newest, newest + DAY / 2, newest + 20 * DAY] {
                    let mut totals = [0; 3];
                    seen.values()
                        .for_each(|&t| add_to_windows(&mut totals, reference, t));
                    assert_eq!(u.totals(reference), totals, "event {i}");
                    let mut per: HashMap<Sym, WindowCounts> = HashMap::new();
                    for (&(ws, _), &t) in &in_ws {
                        if t > newest - LONGEST - 2 * PRUNE_EVERY_MS {
                            add_to_windows(per.entry(ws).or_default(), reference, t);
                        }
                    }
                    let got = u.per_workspace(reference);
                    let nonzero = |m: &HashMap<Sym, WindowCounts>| -> Vec<(Sym, WindowCounts)> {
                        let mut v: Vec<_> = m
                            .iter()
                            .filter(|(_, c)| c[2] > 0)
                            .map(|(w, c)| (*w, *c))
                            .collect();
                        v.sort();
                        v
                    };
                    assert_eq!(nonzero(&got), nonzero(&per), "event {i}");
                    // The pairs counted per workspace are those kept, after every prune.
                    let mut kept: HashMap<Sym, u32> = HashMap::new();
                    for &(ws, _) in u.users.values().flat_map(|u| &u.workspaces) {
                        *kept.entry(ws).or_default() += 1;
                    }
                    assert_eq!(u.pairs, kept, "event {i}");
                }
            }
        }
    }
}
