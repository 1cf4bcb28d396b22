//! Which hours of the activity log to read, and how to ask the API for one.
//!
//! Pure: no clock, no I/O. The API pages by hour and needs start and end in one UTC day, so
//! the unit of work is the [`UtcHour`]: one query per hour, never crossing midnight.
//!
//! Invariants:
//! - every poll reads the `recent` hours (events mostly appear within 30–60 minutes);
//! - older hours inside the lookback are re-swept stalest first, as the request budget allows,
//!   so an event that appears late is found while it is still inside the lookback;
//! - an hour is never read before it has begun, nor once the API no longer serves it (it keeps
//!   28 days): an hour at that edge is expired, not retried;
//! - on a first start with an initial lookback, every hour of it is read once (oldest first,
//!   before the re-sweeps, as the budget allows); the pending hours are part of the ledger, so
//!   the load resumes across restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::decode::UnixMillis;

const HOUR_MS: i64 = 3_600_000;
/// How far back the API serves: a request for an hour starting earlier is refused (400).
/// Reference §1 and §16: "within the last 28 days".
pub const API_RETENTION_MS: i64 = 28 * 24 * HOUR_MS;
/// An hour this close to leaving the API's window is not planned: the request could reach the
/// API after it left.
const EDGE_MARGIN_MS: i64 = 10 * 60_000;
/// A refusal (400) of an hour in the oldest day of the API's window is taken as the edge: the
/// API may count its 28 days by date rather than by the hour.
const EDGE_DAY_MS: i64 = 24 * HOUR_MS;

/// The oldest hour worth asking the API for at `now`.
pub fn oldest_servable(now: UnixMillis) -> UtcHour {
    let earliest_start = now.0 - API_RETENTION_MS + EDGE_MARGIN_MS;
    UtcHour((earliest_start + HOUR_MS - 1).div_euclid(HOUR_MS))
}

/// Whether a refusal (400) of `hour` at `now` means it left the API's window.
pub fn at_retention_edge(hour: UtcHour, now: UnixMillis) -> bool {
    hour.start().0 < now.0 - API_RETENTION_MS + EDGE_DAY_MS
}

/// One UTC hour, as hours since the Unix epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct UtcHour(pub i64);

impl UtcHour {
    pub fn containing(t: UnixMillis) -> Self {
        UtcHour(t.0.div_euclid(HOUR_MS))
    }

    pub fn start(self) -> UnixMillis {
        UnixMillis(self.0 * HOUR_MS)
    }

    /// The last millisecond of the hour (the API's end bound is inclusive).
    pub fn last_millisecond(self) -> UnixMillis {
        UnixMillis((self.0 + 1) * HOUR_MS - 1)
    }

    pub fn next(self) -> Self {
        UtcHour(self.0 + 1)
    }

    /// The query string of the Activity Events API for this hour: dates quoted, ISO 8601 UTC,
    /// start and end in the same UTC day by construction.
    pub fn query(self) -> String {
        format!(
            "startDateTime='{}'&endDateTime='{}'",
            self.start().to_iso_millis(),
            self.last_millisecond().to_iso_millis()
        )
    }
}

impl fmt::Display for UtcHour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.start().to_iso_millis()[..13])?;
        f.write_str("h")
    }
}

/// Settings of the read plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanConfig {
    /// Hours read on every poll, ending with the current one.
    pub recent_hours: i64,
    /// How far back hours are re-swept for late events.
    pub lookback_hours: i64,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            recent_hours: 2,
            lookback_hours: 24,
        }
    }
}

/// When each hour inside the lookback was last read to its end. Serialized as a list of
/// pairs (JSON map keys must be strings).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SweepLedger {
    #[serde(with = "pairs")]
    last_read: BTreeMap<UtcHour, UnixMillis>,
    /// Hours before this one are never read (first start: history is not loaded unless asked;
    /// later: hours the API no longer serves).
    pub start: Option<UtcHour>,
    /// Hours of the initial lookback not read yet.
    #[serde(default)]
    pending_history: BTreeSet<UtcHour>,
}

impl SweepLedger {
    /// A ledger that reads nothing before `start`.
    pub fn starting_at(start: UtcHour) -> Self {
        SweepLedger {
            last_read: BTreeMap::new(),
            start: Some(start),
            pending_history: BTreeSet::new(),
        }
    }

    /// A first start at `now` that loads history from `start`: every hour before the recent
    /// ones is pending until read once.
    pub fn loading_history(start: UtcHour, config: &PlanConfig, now: UnixMillis) -> Self {
        let first_recent = UtcHour::containing(now).0 - config.recent_hours.max(1) + 1;
        SweepLedger {
            pending_history: (start.0..first_recent).map(UtcHour).collect(),
            ..SweepLedger::starting_at(start)
        }
    }

    /// Records that `hour` was read to its end at `at`.
    pub fn record(&mut self, hour: UtcHour, at: UnixMillis) {
        self.last_read.insert(hour, at);
        self.pending_history.remove(&hour);
    }

    /// Hours of the initial lookback not read yet.
    pub fn history_remaining(&self) -> usize {
        self.pending_history.len()
    }

    /// Never reads an hour before `oldest` again (the API no longer serves them).
    pub fn expire_before(&mut self, oldest: UtcHour) {
        if self.start.is_some_and(|s| s >= oldest) {
            return;
        }
        self.start = Some(oldest);
        self.pending_history = self.pending_history.split_off(&oldest);
        self.forget_before(oldest);
    }

    /// Whether `hour` belongs to the initial lookback and was not read yet.
    pub fn is_pending(&self, hour: UtcHour) -> bool {
        self.pending_history.contains(&hour)
    }

    /// Hours with a recorded read.
    pub fn len(&self) -> usize {
        self.last_read.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last_read.is_empty()
    }

    /// When `hour` was last read to its end.
    pub fn last_read(&self, hour: UtcHour) -> Option<UnixMillis> {
        self.last_read.get(&hour).copied()
    }

    /// Forgets hours that left the lookback.
    pub fn forget_before(&mut self, hour: UtcHour) {
        self.last_read = self.last_read.split_off(&hour);
    }

    /// Age of the stalest read among the hours of the lookback window that are not recent
    /// (never-read hours count from their end), for `powerbi_lookback_sweep_age_seconds`.
    pub fn oldest_sweep_age(&self, plan: &PlanConfig, now: UnixMillis) -> Option<i64> {
        sweep_hours(plan, self.start, now)
            .map(|h| now.0 - self.last_read(h).unwrap_or_else(|| h.next().start()).0)
            .max()
    }
}

/// The hours to read at `now`, in order: the recent hours (newest first), then up to
/// `sweep_budget` older hours: pending hours of the initial lookback (oldest first), then
/// hours of the lookback, stalest first (never-read hours first, oldest first). Nothing older
/// than the API serves.
pub fn plan(
    config: &PlanConfig,
    ledger: &SweepLedger,
    now: UnixMillis,
    sweep_budget: usize,
) -> Vec<UtcHour> {
    let current = UtcHour::containing(now);
    let floor = floor(ledger.start, now);
    let mut hours: Vec<UtcHour> = (0..config.recent_hours.max(1))
        .map(|i| UtcHour(current.0 - i))
        .filter(|h| *h >= floor)
        .collect();
    let history = ledger.pending_history.range(floor..).copied();
    let mut older: Vec<(Option<UnixMillis>, UtcHour)> = sweep_hours(config, ledger.start, now)
        .filter(|h| !ledger.pending_history.contains(h))
        .map(|h| (ledger.last_read(h), h))
        .collect();
    older.sort();
    let older = older.into_iter().map(|(_, h)| h);
    hours.extend(
        history
            .chain(older)
            .filter(|h| *h < UtcHour(current.0 - config.recent_hours.max(1) + 1))
            .take(sweep_budget),
    );
    hours
}

/// The oldest hour that may be read: the ledger's start, or the API's edge.
fn floor(start: Option<UtcHour>, now: UnixMillis) -> UtcHour {
    start
        .map_or(UtcHour(i64::MIN), |s| s)
        .max(oldest_servable(now))
}

/// The lookback's hours that are not recent, oldest first.
fn sweep_hours(
    config: &PlanConfig,
    start: Option<UtcHour>,
    now: UnixMillis,
) -> impl Iterator<Item = UtcHour> {
    let current = UtcHour::containing(now);
    let first_recent = current.0 - config.recent_hours.max(1) + 1;
    let oldest = (current.0 - config.lookback_hours).max(floor(start, now).0);
    (oldest..first_recent).map(UtcHour)
}

/// A map as a list of `[key, value]` pairs.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<
        'de,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    >(
        d: D,
    ) -> Result<BTreeMap<K, V>, D::Error> {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64, minute: i64) -> UnixMillis {
        UnixMillis(h * HOUR_MS + minute * 60_000)
    }

    #[test]
    fn an_hour_query_is_quoted_and_stays_in_its_day() {
        let h = UtcHour::containing(UnixMillis(1_795_172_700_000)); // 2026-11-20T11:05Z
        assert_eq!(
            h.query(),
            "startDateTime='2026-11-20T11:00:00.000Z'&endDateTime='2026-11-20T11:59:59.999Z'"
        );
        let last = UtcHour(h.0 + 12); // 23:00, the last hour of the day
        assert!(last
            .query()
            .ends_with("endDateTime='2026-11-20T23:59:59.999Z'"));
        assert_eq!(h.to_string(), "2026-11-20T11h");
    }

    #[test]
    fn recent_hours_every_poll_then_the_stalest_older_ones() {
        let config = PlanConfig {
            recent_hours: 2,
            lookback_hours: 6,
        };
        let mut ledger = SweepLedger::default();
        let now = at(100, 30);
        // Never-read hours come first, oldest first.
        assert_eq!(
            plan(&config, &ledger, now, 2),
            vec![UtcHour(100), UtcHour(99), UtcHour(94), UtcHour(95)]
        );
        for (h, minute) in [(94, 10), (95, 20), (96, 5), (97, 1), (98, 2)] {
            ledger.record(UtcHour(h), at(100, minute));
        }
        assert_eq!(
            plan(&config, &ledger, now, 3),
            vec![
                UtcHour(100),
                UtcHour(99),
                UtcHour(97),
                UtcHour(98),
                UtcHour(96)
            ]
        );
        assert_eq!(
            plan(&config, &ledger, now, 0),
            vec![UtcHour(100), UtcHour(99)]
        );
        assert_eq!(ledger.oldest_sweep_age(&config, now), Some(29 * 60_000)); // hour 97, read at 100:01
    }

    #[test]
    fn a_first_start_reads_nothing_before_it() {
        let config = PlanConfig {
            recent_hours: 2,
            lookback_hours: 24,
        };
        let ledger = SweepLedger::starting_at(UtcHour(100));
        assert_eq!(plan(&config, &ledger, at(100, 5), 5), vec![UtcHour(100)]);
        assert_eq!(
            plan(&config, &ledger, at(103, 5), 5),
            vec![UtcHour(103), UtcHour(102), UtcHour(100), UtcHour(101)]
        );
        let mut ledger = ledger;
        ledger.record(UtcHour(100), at(103, 0));
        ledger.forget_before(UtcHour(101));
        assert_eq!(ledger.last_read(UtcHour(100)), None);
    }

    #[test]
    fn a_first_start_with_history_reads_each_hour_once_oldest_first_before_re_sweeps() {
        let config = PlanConfig {
            recent_hours: 2,
            lookback_hours: 1,
        };
        let now = at(100, 30);
        let mut ledger = SweepLedger::loading_history(UtcHour(95), &config, now);
        assert_eq!(ledger.history_remaining(), 4); // hours 95..=98; 99 and 100 are recent
        assert_eq!(
            plan(&config, &ledger, now, 2),
            vec![UtcHour(100), UtcHour(99), UtcHour(95), UtcHour(96)]
        );
        ledger.record(UtcHour(95), now);
        ledger.record(UtcHour(96), now);
        // The lookback's hour 98 is pending too: planned once, with the history.
        assert_eq!(
            plan(&config, &ledger, now, 5),
            vec![UtcHour(100), UtcHour(99), UtcHour(97), UtcHour(98)]
        );
        let restored: SweepLedger =
            serde_json::from_str(&serde_json::to_string(&ledger).unwrap()).unwrap();
        assert_eq!(restored.history_remaining(), 2);
        ledger.record(UtcHour(97), now);
        ledger.record(UtcHour(98), now);
        assert_eq!(ledger.history_remaining(), 0);
        // Then only the lookback is re-swept (with a 1h lookback, the recent hours are all).
        assert_eq!(
            plan(&config, &ledger, at(101, 5), 5),
            vec![UtcHour(101), UtcHour(100)]
        );
    }

    #[test]
    fn hours_the_api_no_longer_serves_are_not_planned_and_a_refusal_at_the_edge_expires() {
        // Reference §1/§16: the API serves the last 28 days; the simulator refuses a start
        // older than now - 28 days.
        let config = PlanConfig {
            recent_hours: 2,
            lookback_hours: 28 * 24,
        };
        let now = at(1000, 30);
        let ledger = SweepLedger::loading_history(UtcHour(1000 - 28 * 24), &config, now);
        let planned = plan(&config, &ledger, now, 2);
        // Hour 328 began 28 days and 30 minutes before now: out of the API's window.
        assert_eq!(
            planned,
            vec![UtcHour(1000), UtcHour(999), UtcHour(329), UtcHour(330)]
        );
        assert_eq!(oldest_servable(at(1000, 49)), UtcHour(329));
        assert_eq!(
            oldest_servable(at(1000, 51)),
            UtcHour(330),
            "10 minutes of margin"
        );
        assert!(at_retention_edge(UtcHour(329), now));
        // The oldest day of the window (starts before 352:30) is the edge.
        assert!(at_retention_edge(UtcHour(352), now));
        assert!(!at_retention_edge(UtcHour(353), now));
        let mut ledger = ledger;
        ledger.expire_before(UtcHour(330));
        assert_eq!(ledger.start, Some(UtcHour(330)));
        assert_eq!(ledger.history_remaining(), 1000 - 2 - 330 + 1);
        assert_eq!(plan(&config, &ledger, now, 1)[2], UtcHour(330));
    }
}
