//! The viewers group: family `powerbi_report_viewers`, distinct viewers per report over the
//! last 7 and 28 UTC days, in memory bounded by reports and days, whatever the number of
//! users; and the views per report of the last day, for the status page ([`super::recent`]).
//!
//! Each report keeps one sketch per UTC day with views (at most [`DAYS_KEPT`] days). A day
//! sketch holds the viewers' 32-bit hashes exactly up to [`SPARSE_MAX`] viewers, then turns
//! into a HyperLogLog of 2^[`P`] one-byte registers. A window's count is the union of its
//! days: exact while every day in it is exact (hash collisions aside: two of 200,000 users
//! share a 32-bit hash with probability ~5 in the whole tenant), else the HyperLogLog
//! estimate of the merged registers, standard error 1.04/√512 ≈ 4.6 %.
//!
//! Memory: at most `reports × 29 days × 512 B` (~300 MB at 20,000 reports, only if every
//! report had over 128 distinct viewers on every day); in practice most report-days hold a
//! few hashes.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use super::labels::{self, label_set};
use super::memory::{chunk, HeapUsage, Holder};
use super::recent::{RecentViews, RecentViewsState};
use super::series::Sym;
use super::shared::{Counted, Expired, Refs, Sweep, View};
use super::Limits;
use crate::catalogue::{self, Family, Snapshot};
use crate::decode::UserKey;

label_set!(
    /// A report's viewers in one window.
    ReportWindow { report_id, window } for REPORT_VIEWERS
);

/// Reports with their own `powerbi_report_viewers` series (one per window each).
pub fn report_viewers_cap(limits: &Limits) -> usize {
    limits.cap(&catalogue::REPORT_VIEWERS) / WINDOWS.len()
}

/// The group: distinct viewers per report, and the day's views per report.
#[derive(Debug)]
pub struct ReportViewers {
    viewers: Viewers,
    /// ViewReport events per report over the last day, for the status page.
    recent: RecentViews,
}

/// The durable form of [`ReportViewers`] (saved under the keys [`super::state_file`] names).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportViewersState {
    pub(super) viewers: ViewersState,
    pub(super) recent_views: RecentViewsState,
}

impl ReportViewers {
    pub fn new(limits: &Limits) -> Self {
        Self::import(ReportViewersState::default(), limits)
    }

    #[inline]
    pub fn observe(&mut self, ev: &Counted<'_, '_>) {
        if !ev.is_report_view {
            return;
        }
        if let Some(report) = ev.report {
            self.recent.record(report, ev.time());
        }
        if let Some(user) = ev.event.user {
            let (day, newest_day) = (ev.event.time.utc_day(), ev.newest.utc_day());
            self.viewers.record(ev.report, user, day, newest_day);
        }
    }

    /// The day's views per report.
    pub fn recent(&self) -> &RecentViews {
        &self.recent
    }

    pub fn expire(&mut self, sweep: Sweep, expired: &mut Expired) {
        self.recent.prune(sweep.newest);
        let reports = self.viewers.expire(sweep.cutoff);
        expired.add(&catalogue::REPORT_VIEWERS, reports * WINDOWS.len() as u64);
    }

    pub fn refs(&self, refs: &mut Refs) {
        refs.reports.extend(self.viewers.reports());
        refs.reports.extend(self.recent.reports());
    }

    pub fn dropped(&self) -> [(&'static Family, u64); 1] {
        [(&catalogue::REPORT_VIEWERS, self.viewers.dropped())]
    }

    /// The sketches' heap (the entries are report-days), and the status page's views.
    pub fn heap(&self, usage: &mut HeapUsage) {
        let (days, bytes) = self.viewers.heap();
        usage.family(&catalogue::REPORT_VIEWERS, days, bytes);
        let (reports, bytes) = self.recent.heap();
        usage.add(Holder::RecentViews, reports, bytes);
    }

    pub fn render(&self, view: &View<'_>, out: &mut Snapshot) {
        let today = view.reference.utc_day();
        let samples = self.viewers.counts(today).flat_map(|(r, counts)| {
            let report_id = view.ids.report(r);
            WINDOWS.iter().zip(counts).map(move |(w, n)| {
                let labels = ReportWindow {
                    report_id: report_id.clone(),
                    window: w.label.to_string(),
                };
                (labels, n)
            })
        });
        labels::push(out, &catalogue::REPORT_VIEWERS, samples);
    }

    pub fn export(&self) -> ReportViewersState {
        ReportViewersState {
            viewers: self.viewers.export(),
            recent_views: self.recent.export(),
        }
    }

    pub fn import(state: ReportViewersState, limits: &Limits) -> Self {
        ReportViewers {
            viewers: Viewers::import(state.viewers, report_viewers_cap(limits)),
            recent: RecentViews::import(state.recent_views),
        }
    }
}

/// Windows of `powerbi_report_viewers`, in days, with their label.
pub const WINDOWS: [Window; 2] = [
    Window {
        label: "28d",
        days: 28,
    },
    Window {
        label: "7d",
        days: 7,
    },
];

/// A window of `powerbi_report_viewers`: its `window` label and its whole UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub label: &'static str,
    pub days: i64,
}
/// Days kept per report: the longest window plus today.
pub const DAYS_KEPT: i64 = 29;
/// HyperLogLog precision: 2^P registers.
pub const P: u32 = 9;
const M: usize = 1 << P;
/// Viewers kept exactly per report-day (4 bytes each: as much as the registers).
pub const SPARSE_MAX: usize = M / 4;

/// The viewers of one report on one UTC day.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum DaySketch {
    /// Sorted, distinct 32-bit user hashes.
    Exact(Vec<u32>),
    /// HyperLogLog registers (stored as base64 in the state).
    Registers(#[serde(with = "registers_b64")] Box<[u8; M]>),
}

impl DaySketch {
    fn insert(&mut self, hash: u32) {
        match self {
            DaySketch::Exact(hashes) => {
                if let Err(at) = hashes.binary_search(&hash) {
                    hashes.insert(at, hash);
                    if hashes.len() > SPARSE_MAX {
                        let mut regs = Box::new([0u8; M]);
                        for h in hashes.iter() {
                            add(&mut regs, *h);
                        }
                        *self = DaySketch::Registers(regs);
                    }
                }
            }
            DaySketch::Registers(regs) => add(regs, hash),
        }
    }
}

impl DaySketch {
    fn heap_bytes(&self) -> usize {
        match self {
            DaySketch::Exact(hashes) => chunk(hashes.capacity() * 4),
            DaySketch::Registers(_) => chunk(M),
        }
    }
}

fn add(regs: &mut [u8; M], hash: u32) {
    let index = (hash >> (32 - P)) as usize;
    let rest = hash << P;
    let rank = (rest.leading_zeros() + 1).min(32 - P + 1) as u8;
    regs[index] = regs[index].max(rank);
}

/// HyperLogLog estimate with the small-range (linear counting) correction.
fn estimate(regs: &[u8; M]) -> f64 {
    let m = M as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = regs.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
    let raw = alpha * m * m / sum;
    let zeros = regs.iter().filter(|&&r| r == 0).count();
    if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    }
}

/// The 32-bit hash of a viewer (the user key is already a hash of the lower-cased UserId;
/// the multiply spreads its bits evenly over the 32 kept).
fn viewer_hash(user: UserKey) -> u32 {
    (user.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
}

/// Distinct viewers of every tracked report.
#[derive(Debug, Default)]
pub struct Viewers {
    reports: HashMap<Sym, BTreeMap<i64, DaySketch>>,
    cap: usize,
    dropped: u64,
}

/// The durable form of [`Viewers`].
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ViewersState {
    pub reports: Vec<(Sym, Vec<(i64, DaySketch)>)>,
    pub dropped: u64,
}

impl Viewers {
    /// Tracks at most `cap` reports.
    pub fn new(cap: usize) -> Self {
        Viewers {
            reports: HashMap::new(),
            cap,
            dropped: 0,
        }
    }

    /// Records that `user` viewed `report` on UTC day `day`; `newest_day` is the newest day
    /// seen, so days that left every window are dropped.
    pub fn record(&mut self, report: Option<Sym>, user: UserKey, day: i64, newest_day: i64) {
        if day <= newest_day - DAYS_KEPT {
            return;
        }
        let Some(report) = report else {
            self.dropped += 1;
            return;
        };
        if !self.reports.contains_key(&report) && self.reports.len() >= self.cap {
            self.dropped += 1;
            return;
        }
        let days = self.reports.entry(report).or_default();
        days.entry(day)
            .or_insert_with(|| DaySketch::Exact(Vec::new()))
            .insert(viewer_hash(user));
        while days
            .first_key_value()
            .is_some_and(|(&d, _)| d <= newest_day - DAYS_KEPT)
        {
            days.pop_first();
        }
    }

    /// Removes the reports whose newest day with views ended before `cutoff` (Unix ms);
    /// answers how many.
    pub fn expire(&mut self, cutoff: i64) -> u64 {
        const DAY_MS: i64 = 86_400_000;
        let before = self.reports.len();
        self.reports.retain(|_, days| {
            days.last_key_value()
                .is_some_and(|(&d, _)| (d + 1).saturating_mul(DAY_MS) > cutoff)
        });
        (before - self.reports.len()) as u64
    }

    /// Report-days held, and their heap bytes (the B-tree's nodes estimated: sequential
    /// inserts leave its leaves about half full).
    pub fn heap(&self) -> (usize, usize) {
        const LEAF_SLOTS: usize = 11;
        let slot = std::mem::size_of::<(i64, DaySketch)>();
        let leaf = chunk(16 + LEAF_SLOTS * slot);
        let (mut days, mut bytes) = (0, self.reports.allocation_size());
        for sketches in self.reports.values() {
            days += sketches.len();
            let leaves = if sketches.len() <= LEAF_SLOTS {
                sketches.len().min(1)
            } else {
                sketches.len().div_ceil(LEAF_SLOTS / 2 + 1) + 1
            };
            bytes += leaves * leaf;
            bytes += sketches.values().map(DaySketch::heap_bytes).sum::<usize>();
        }
        (days, bytes)
    }

    /// The reports tracked.
    pub fn reports(&self) -> impl Iterator<Item = Sym> + '_ {
        self.reports.keys().copied()
    }

    /// Views past the report cap.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Distinct viewers of each report in each of [`WINDOWS`] ending on UTC day `today`;
    /// reports without a view in a window count 0 there.
    pub fn counts(&self, today: i64) -> impl Iterator<Item = (Sym, [f64; 2])> + '_ {
        self.reports.iter().map(move |(&report, days)| {
            let mut out = [0.0; 2];
            for (slot, window) in out.iter_mut().zip(WINDOWS) {
                *slot = union(days.range(today - window.days + 1..=today).map(|(_, s)| s));
            }
            (report, out)
        })
    }

    pub fn export(&self) -> ViewersState {
        ViewersState {
            reports: self
                .reports
                .iter()
                .map(|(&r, days)| (r, days.iter().map(|(&d, s)| (d, s.clone())).collect()))
                .collect(),
            dropped: self.dropped,
        }
    }

    pub fn import(state: ViewersState, cap: usize) -> Self {
        Viewers {
            reports: state
                .reports
                .into_iter()
                .map(|(r, days)| (r, days.into_iter().collect()))
                .collect(),
            cap,
            dropped: state.dropped,
        }
    }
}

/// Distinct viewers of the union of some day sketches.
fn union<'a>(days: impl Iterator<Item = &'a DaySketch>) -> f64 {
    let mut exact: Vec<u32> = Vec::new();
    let mut regs: Option<Box<[u8; M]>> = None;
    for day in days {
        match day {
            DaySketch::Exact(h) => exact.extend_from_slice(h),
            DaySketch::Registers(r) => {
                let merged = regs.get_or_insert_with(|| Box::new([0u8; M]));
                for (m, x) in merged.iter_mut().zip(r.iter()) {
                    *m = (*m).max(*x);
                }
            }
        }
    }
    match regs {
        None => {
            exact.sort_unstable();
            exact.dedup();
            exact.len() as f64
        }
        Some(mut regs) => {
            for h in exact {
                add(&mut regs, h);
            }
            estimate(&regs).round()
        }
    }
}

mod registers_b64 {
    use super::M;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(regs: &[u8; M], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(regs))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Box<[u8; M]>, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = STANDARD
            .decode(&text)
            .map_err(|_| serde::de::Error::custom("registers: not base64"))?;
        let regs: [u8; M] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("registers: wrong length"))?;
        Ok(Box::new(regs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(i: u64) -> UserKey {
        UserKey::from_user_id(&format!("user{i}@contoso.com"))
    }

    #[test]
    fn small_audiences_are_exact_per_window() {
        let mut v = Viewers::new(10);
        // Report 1: users 0..10 on day 100, users 5..20 on day 95, user 99 on day 80.
        for i in 0..10 {
            v.record(Some(1), user(i), 100, 100);
        }
        for i in 5..20 {
            v.record(Some(1), user(i), 95, 100);
        }
        v.record(Some(1), user(99), 80, 100);
        v.record(Some(1), user(98), 60, 100); // left every window: ignored
        let counts: Vec<_> = v.counts(100).collect();
        // 28 days (73–100): users 0–19 and 99; 7 days (94–100): users 0–19.
        assert_eq!(counts, [(1, [21.0, 20.0])]);
        // A week later the 7-day window is empty and the 28-day one still holds days 80–100.
        assert_eq!(v.counts(107).next().unwrap().1, [21.0, 0.0]);
    }

    #[test]
    fn large_audiences_are_estimated_within_the_stated_error() {
        let mut v = Viewers::new(10);
        // 50,000 distinct viewers over 28 days, each on two days (overlap must not count twice).
        for i in 0..50_000u64 {
            let day = 1_000 - (i % 28) as i64;
            v.record(Some(7), user(i), day, 1_000);
            v.record(Some(7), user(i), 1_000 - ((i + 3) % 28) as i64, 1_000);
        }
        let [d28, _] = v.counts(1_000).next().unwrap().1;
        let error = (d28 - 50_000.0).abs() / 50_000.0;
        assert!(error < 3.0 * 0.046, "28d estimate {d28} (error {error:.3})");
    }

    #[test]
    fn the_cap_and_the_state_round_trip() {
        let mut v = Viewers::new(1);
        for i in 0..200 {
            v.record(Some(1), user(i), 10, 10);
        }
        v.record(Some(2), user(1), 10, 10);
        v.record(None, user(1), 10, 10);
        assert_eq!(v.dropped(), 2);
        let state = v.export();
        let json = serde_json::to_string(&state).unwrap();
        let back = Viewers::import(serde_json::from_str(&json).unwrap(), 1);
        assert_eq!(
            back.counts(10).collect::<Vec<_>>(),
            v.counts(10).collect::<Vec<_>>()
        );
        assert!(matches!(state.reports[0].1[0].1, DaySketch::Registers(_)));
    }
}
