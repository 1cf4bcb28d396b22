//! Views per report over the last 24 hours of event time, for the status page's "top reports
//! of the last day".
//!
//! Why not the counters: `powerbi_report_events_total` only grows, and the increase over a day
//! would need a history of snapshots that a restart loses. Here each report keeps one count per
//! UTC hour of `CreationTime` (24 slots, overwritten as hours pass), so a late event lands in
//! its own hour and a restart keeps the day (the rings are part of the durable state).
//!
//! Memory: `reports × 24 × 12 B` (~5.8 MB at 20,000 reports); a report whose slots are all
//! older than a day is dropped at the next [`RecentViews::prune`].

use hashbrown::HashMap;

use super::series::Sym;

/// Hours in a day: the ring's slots.
pub const HOURS: usize = 24;
const HOUR_MS: i64 = 3_600_000;

/// One report's views per UTC hour, for the last [`HOURS`] hours it saw.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Ring {
    /// The hour (hours since the epoch) each slot counts, and its count.
    slots: Vec<(i64, u32)>,
}

impl Ring {
    fn add(&mut self, hour: i64) {
        if self.slots.is_empty() {
            self.slots = vec![(i64::MIN, 0); HOURS];
        }
        let slot = &mut self.slots[hour.rem_euclid(HOURS as i64) as usize];
        if slot.0 == hour {
            slot.1 = slot.1.saturating_add(1);
        } else if slot.0 < hour {
            *slot = (hour, 1);
        }
        // An event older than what its slot counts is more than a day older than that: not
        // in any day the page shows.
    }

    fn since(&self, first_hour: i64) -> u64 {
        self.slots
            .iter()
            .filter(|(h, _)| *h >= first_hour)
            .map(|(_, n)| u64::from(*n))
            .sum()
    }
}

/// Views per report over the last day of event time.
#[derive(Debug, Clone, Default)]
pub struct RecentViews {
    reports: HashMap<Sym, Ring>,
}

/// The durable form: `(report, [(hour, views)])`.
pub type RecentViewsState = Vec<(Sym, Vec<(i64, u32)>)>;

impl RecentViews {
    /// Reports held, and their heap bytes.
    pub fn heap(&self) -> (usize, usize) {
        let slot = std::mem::size_of::<(i64, u32)>();
        let rings: usize = (self.reports.values())
            .map(|r| super::memory::chunk(r.slots.capacity() * slot))
            .sum();
        (self.reports.len(), self.reports.allocation_size() + rings)
    }

    /// Counts one view of `report` at `time` (Unix milliseconds).
    pub fn record(&mut self, report: Sym, time: i64) {
        self.reports
            .entry(report)
            .or_default()
            .add(time.div_euclid(HOUR_MS));
    }

    /// Views per report in the 24 UTC hours ending with the one holding `now`, most first
    /// (ties by report id order), at most `limit`.
    pub fn top(&self, now: i64, limit: usize) -> Vec<(Sym, u64)> {
        let first = now.div_euclid(HOUR_MS) - HOURS as i64 + 1;
        let mut all: Vec<(Sym, u64)> = self
            .reports
            .iter()
            .map(|(&r, ring)| (r, ring.since(first)))
            .filter(|(_, n)| *n > 0)
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(limit);
        all
    }

    /// Drops the reports with no view in the day ending at `now`.
    pub fn prune(&mut self, now: i64) {
        let first = now.div_euclid(HOUR_MS) - HOURS as i64 + 1;
        self.reports.retain(|_, ring| ring.since(first) > 0);
    }

    pub fn reports(&self) -> impl Iterator<Item = Sym> + '_ {
        self.reports.keys().copied()
    }

    pub fn export(&self) -> RecentViewsState {
        let mut out: RecentViewsState = self
            .reports
            .iter()
            .map(|(&r, ring)| (r, ring.slots.clone()))
            .collect();
        out.sort_by_key(|(r, _)| *r);
        out
    }

    /// From [`RecentViews::export`]; a ring of the wrong length (a hand-edited state) is left
    /// out rather than trusted.
    pub fn import(state: RecentViewsState) -> Self {
        RecentViews {
            reports: state
                .into_iter()
                .filter(|(_, slots)| slots.len() == HOURS)
                .map(|(r, slots)| (r, Ring { slots }))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR_MS;

    #[test]
    fn counts_the_24_hours_ending_now_and_a_late_event_lands_in_its_hour() {
        let mut v = RecentViews::default();
        let now = 1000 * H + 30 * 60_000;
        // Report 1: 3 views this hour, 2 at hour 977 (the first of the day), 4 at hour 976
        // (a day and an hour ago: outside).
        for t in [1000 * H, 1000 * H + 5, 1000 * H + 9] {
            v.record(1, t);
        }
        for _ in 0..2 {
            v.record(1, 977 * H + 1);
        }
        for _ in 0..4 {
            v.record(2, 976 * H);
        }
        v.record(2, 990 * H); // late, but inside the day
        assert_eq!(v.top(now, 10), vec![(1, 5), (2, 1)]);
        assert_eq!(v.top(now, 1), vec![(1, 5)]);
        // An hour later, hour 977 has left the day.
        assert_eq!(v.top(now + H, 10), vec![(1, 3), (2, 1)]);
        let restored = RecentViews::import(v.export());
        assert_eq!(restored.top(now, 10), vec![(1, 5), (2, 1)]);
        v.prune(now + 14 * H); // the day from hour 991
        assert_eq!(
            v.reports().collect::<Vec<_>>(),
            vec![1],
            "report 2's last view was hour 990"
        );
    }
}

/// A report of the top list, named as the newest event named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopReport {
    pub report_id: String,
    pub report_name: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub views: u64,
}

/// What the status page shows of the counting, copied out of the aggregator (the source's
/// own status comes from the pipeline, beside it).
#[derive(Debug, Clone, Default)]
pub struct UsageStatus {
    /// Newest `CreationTime` counted.
    pub watermark: Option<crate::decode::UnixMillis>,
    /// Events read (accepted, duplicate and rejected).
    pub processed: u64,
    /// Most viewed reports in the day ending at `day_end`.
    pub top_reports: Vec<TopReport>,
    pub day_end: crate::decode::UnixMillis,
}
