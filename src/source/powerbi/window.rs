//! Which hours of the activity log to read, and how to ask the API for one.
//!
//! Pure: no clock, no I/O. The API pages by hour and needs start and end in one UTC day, so
//! the unit of work is the [`UtcHour`]: one query per hour, never crossing midnight.
//!
//! Invariants:
//! - every poll reads the `recent` hours (events mostly appear within 30–60 minutes);
//! - older hours inside the lookback are re-swept stalest first, as the request budget allows,
//!   so an event that appears late is found while it is still inside the lookback;
//! - an hour is never read before it has begun.

use std::collections::BTreeMap;
use std::fmt;

use crate::decode::UnixMillis;

const HOUR_MS: i64 = 3_600_000;

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
    /// Hours before this one are never read (first start: history is not loaded unless asked).
    pub start: Option<UtcHour>,
}

impl SweepLedger {
    /// A ledger that reads nothing before `start`.
    pub fn starting_at(start: UtcHour) -> Self {
        SweepLedger {
            last_read: BTreeMap::new(),
            start: Some(start),
        }
    }

    /// Records that `hour` was read to its end at `at`.
    pub fn record(&mut self, hour: UtcHour, at: UnixMillis) {
        self.last_read.insert(hour, at);
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
/// `sweep_budget` older hours of the lookback, stalest first (never-read hours first, oldest
/// first).
pub fn plan(
    config: &PlanConfig,
    ledger: &SweepLedger,
    now: UnixMillis,
    sweep_budget: usize,
) -> Vec<UtcHour> {
    let current = UtcHour::containing(now);
    let floor = ledger.start.unwrap_or(UtcHour(i64::MIN));
    let mut hours: Vec<UtcHour> = (0..config.recent_hours.max(1))
        .map(|i| UtcHour(current.0 - i))
        .filter(|h| *h >= floor)
        .collect();
    let mut older: Vec<(Option<UnixMillis>, UtcHour)> = sweep_hours(config, ledger.start, now)
        .map(|h| (ledger.last_read(h), h))
        .collect();
    older.sort();
    hours.extend(older.into_iter().take(sweep_budget).map(|(_, h)| h));
    hours
}

/// The lookback's hours that are not recent, oldest first.
fn sweep_hours(
    config: &PlanConfig,
    start: Option<UtcHour>,
    now: UnixMillis,
) -> impl Iterator<Item = UtcHour> {
    let current = UtcHour::containing(now);
    let first_recent = current.0 - config.recent_hours.max(1) + 1;
    let oldest = (current.0 - config.lookback_hours).max(start.map_or(i64::MIN, |s| s.0));
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
}
