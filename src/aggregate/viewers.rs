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
//! few hashes, kept in one flat vector per report (~40 bytes a report-day at tenant scale).

use hashbrown::hash_map::Entry;
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

/// The viewers of one report on one UTC day, as the state saves them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum DaySketch {
    /// Sorted, distinct 32-bit user hashes.
    Exact(Vec<u32>),
    /// HyperLogLog registers (stored as base64 in the state).
    Registers(#[serde(with = "registers_b64")] Box<[u8; M]>),
}

/// One day's sketch, borrowed from a [`ReportDays`].
#[derive(Debug, Clone, Copy)]
enum SketchRef<'a> {
    Exact(&'a [u32]),
    Registers(&'a [u8; M]),
}

/// What a day of a [`ReportDays`] holds: how many exact hashes, or registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayKind {
    Exact(u32),
    Registers,
}

/// One report's viewers, one sketch per UTC day with views, oldest day first, in three flat
/// vectors rather than a tree of day sketches each with its own allocation (most report-days
/// hold a few hashes: 137 bytes a day before, ~40 now at tenant scale; issue 15, target 5).
#[derive(Debug, Default)]
struct ReportDays {
    days: Vec<(i64, DayKind)>,
    /// The exact days' hashes, day after day in `days` order, each day's sorted and distinct.
    hashes: Vec<u32>,
    /// The registers of the days past [`SPARSE_MAX`], in `days` order.
    registers: Vec<[u8; M]>,
}

impl ReportDays {
    /// Where day `i`'s hashes (or registers) start: the exact hashes and the registers of
    /// the days before it.
    fn starts(&self, i: usize) -> (usize, usize) {
        let (mut hashes, mut registers) = (0, 0);
        for (_, kind) in &self.days[..i] {
            match kind {
                DayKind::Exact(n) => hashes += *n as usize,
                DayKind::Registers => registers += 1,
            }
        }
        (hashes, registers)
    }

    fn insert(&mut self, day: i64, hash: u32) {
        let i = match self.days.binary_search_by_key(&day, |&(d, _)| d) {
            Ok(i) => i,
            Err(i) => {
                self.days.insert(i, (day, DayKind::Exact(0)));
                i
            }
        };
        let (start, register) = self.starts(i);
        let DayKind::Exact(n) = self.days[i].1 else {
            add(&mut self.registers[register], hash);
            return;
        };
        let end = start + n as usize;
        let Err(at) = self.hashes[start..end].binary_search(&hash) else {
            return;
        };
        self.hashes.insert(start + at, hash);
        if (n as usize) < SPARSE_MAX {
            self.days[i].1 = DayKind::Exact(n + 1);
            return;
        }
        let mut regs = [0u8; M];
        for h in self.hashes.drain(start..=end) {
            add(&mut regs, h);
        }
        self.registers.insert(register, regs);
        self.days[i].1 = DayKind::Registers;
    }

    /// Forgets the days up to `last` (they left every window).
    fn forget_until(&mut self, last: i64) {
        let gone = self.days.partition_point(|&(d, _)| d <= last);
        if gone == 0 {
            return;
        }
        let (hashes, registers) = self.starts(gone);
        self.days.drain(..gone);
        self.hashes.drain(..hashes);
        self.registers.drain(..registers);
    }

    fn newest_day(&self) -> Option<i64> {
        self.days.last().map(|&(d, _)| d)
    }

    /// Each day and its sketch, oldest first.
    fn sketches(&self) -> impl Iterator<Item = (i64, SketchRef<'_>)> + '_ {
        let (mut hashes, mut registers) = (0, 0);
        self.days.iter().map(move |&(day, kind)| match kind {
            DayKind::Exact(n) => {
                let slice = &self.hashes[hashes..hashes + n as usize];
                hashes += n as usize;
                (day, SketchRef::Exact(slice))
            }
            DayKind::Registers => {
                registers += 1;
                (day, SketchRef::Registers(&self.registers[registers - 1]))
            }
        })
    }

    fn heap_bytes(&self) -> usize {
        chunk(self.days.capacity() * std::mem::size_of::<(i64, DayKind)>())
            + chunk(self.hashes.capacity() * 4)
            + chunk(self.registers.capacity() * M)
    }

    fn export(&self) -> Vec<(i64, DaySketch)> {
        (self.sketches())
            .map(|(day, sketch)| match sketch {
                SketchRef::Exact(h) => (day, DaySketch::Exact(h.to_vec())),
                SketchRef::Registers(r) => (day, DaySketch::Registers(Box::new(*r))),
            })
            .collect()
    }

    /// From the saved days (in day order, as saved; an exact day over the limit, never saved
    /// so, stays exact).
    fn import(mut saved: Vec<(i64, DaySketch)>) -> Self {
        saved.sort_by_key(|(d, _)| *d);
        saved.dedup_by_key(|(d, _)| *d);
        let mut days = ReportDays::default();
        for (day, sketch) in saved {
            match sketch {
                DaySketch::Exact(mut h) => {
                    h.sort_unstable();
                    h.dedup();
                    days.days.push((day, DayKind::Exact(h.len() as u32)));
                    days.hashes.extend(h);
                }
                DaySketch::Registers(r) => {
                    days.days.push((day, DayKind::Registers));
                    days.registers.push(*r);
                }
            }
        }
        days
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
    reports: HashMap<Sym, ReportDays>,
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
        // A report already tracked costs one lookup.
        let tracked = self.reports.len();
        let days = match self.reports.entry(report) {
            Entry::Occupied(days) => days.into_mut(),
            Entry::Vacant(_) if tracked >= self.cap => {
                self.dropped += 1;
                return;
            }
            Entry::Vacant(days) => days.insert(ReportDays::default()),
        };
        days.insert(day, viewer_hash(user));
        days.forget_until(newest_day - DAYS_KEPT);
    }

    /// Removes the reports whose newest day with views ended before `cutoff` (Unix ms);
    /// answers how many.
    pub fn expire(&mut self, cutoff: i64) -> u64 {
        const DAY_MS: i64 = 86_400_000;
        let before = self.reports.len();
        self.reports.retain(|_, days| {
            days.newest_day()
                .is_some_and(|d| (d + 1).saturating_mul(DAY_MS) > cutoff)
        });
        (before - self.reports.len()) as u64
    }

    /// Report-days held, and their heap bytes.
    pub fn heap(&self) -> (usize, usize) {
        let days = self.reports.values().map(|r| r.days.len()).sum();
        let owned: usize = self.reports.values().map(ReportDays::heap_bytes).sum();
        (days, self.reports.allocation_size() + owned)
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
                let first = today - window.days + 1;
                let inside = (days.sketches()).filter(|&(d, _)| (first..=today).contains(&d));
                *slot = union(inside.map(|(_, sketch)| sketch));
            }
            (report, out)
        })
    }

    pub fn export(&self) -> ViewersState {
        ViewersState {
            reports: self
                .reports
                .iter()
                .map(|(&r, days)| (r, days.export()))
                .collect(),
            dropped: self.dropped,
        }
    }

    pub fn import(state: ViewersState, cap: usize) -> Self {
        Viewers {
            reports: state
                .reports
                .into_iter()
                .map(|(r, days)| (r, ReportDays::import(days)))
                .collect(),
            cap,
            dropped: state.dropped,
        }
    }
}

/// Distinct viewers of the union of some day sketches.
fn union<'a>(days: impl Iterator<Item = SketchRef<'a>>) -> f64 {
    let mut exact: Vec<u32> = Vec::new();
    let mut regs: Option<Box<[u8; M]>> = None;
    for day in days {
        match day {
            SketchRef::Exact(h) => exact.extend_from_slice(h),
            SketchRef::Registers(r) => {
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

    /// Days filled in any order, some past the exact limit, the oldest forgotten as days go
    /// by, then saved and restored: each day holds exactly its distinct hashes while at most
    /// [`SPARSE_MAX`], else the HyperLogLog registers of them (the rule written out here).
    #[test]
    fn flat_days_hold_what_each_day_saw() {
        use std::collections::{BTreeMap, BTreeSet};
        let mut rng = crate::rng::Rng::new(3);
        let mut days = ReportDays::default();
        let mut truth: BTreeMap<i64, BTreeSet<u32>> = BTreeMap::new();
        for step in 0..12_000u64 {
            let newest = 100 + (step / 600) as i64;
            let day = newest - rng.below(6) as i64;
            // Every third day gets many viewers (registers); the others a few.
            let hash =
                (rng.below(if day % 3 == 0 { 400 } else { 40 }) as u32).wrapping_mul(0x9E37_79B9);
            days.insert(day, hash);
            truth.entry(day).or_default().insert(hash);
            days.forget_until(newest - 4);
            truth.retain(|&d, _| d > newest - 4);
        }
        let restored = ReportDays::import(days.export());
        for days in [&days, &restored] {
            let got = days.export();
            assert_eq!(
                got.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
                truth.keys().copied().collect::<Vec<_>>()
            );
            for ((day, sketch), hashes) in got.iter().zip(truth.values()) {
                match sketch {
                    DaySketch::Exact(h) => {
                        assert!(hashes.len() <= SPARSE_MAX, "day {day}");
                        assert_eq!(h, &hashes.iter().copied().collect::<Vec<_>>());
                    }
                    DaySketch::Registers(r) => {
                        assert!(hashes.len() > SPARSE_MAX, "day {day}");
                        let mut want = [0u8; 512];
                        for h in hashes {
                            let rank = ((h << 9).leading_zeros() + 1).min(24) as u8;
                            let slot = &mut want[(h >> 23) as usize];
                            *slot = (*slot).max(rank);
                        }
                        assert_eq!(**r, want, "day {day}");
                    }
                }
            }
        }
        assert!(
            truth.values().any(|h| h.len() > SPARSE_MAX),
            "a day went past the limit"
        );
        // At the limit a day stays exact; one viewer more and it turns into registers.
        let mut edge = ReportDays::default();
        for h in 0..=SPARSE_MAX as u32 {
            assert!(matches!(
                edge.export().first(),
                None | Some((_, DaySketch::Exact(_)))
            ));
            edge.insert(5, h);
        }
        assert!(matches!(edge.export()[..], [(5, DaySketch::Registers(_))]));
    }
}
