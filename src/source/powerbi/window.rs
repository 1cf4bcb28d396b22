//! Which hours of the activity log to read, and how to ask the API for one.
//!
//! Pure: no clock, no I/O. The API pages by hour and needs start and end in one UTC day, so
//! the unit of work is the [`UtcHour`]: one query per hour, never crossing midnight.
//!
//! Invariants:
//! - every poll reads the current hour; an ended hour is read again at each of the
//!   `--powerbi.reread-ages` after its end, and sooner when a re-read found new events; an hour
//!   whose last age passed is settled and not read again;
//! - a poll plans only what is due, never more than its allowance of the request budget: the
//!   current hour first, then the oldest due first, so a backlog (an outage, an initial
//!   lookback) drains without starving the current hour;
//! - an hour is never read before it has begun, nor once the API no longer serves it (it keeps
//!   28 days): an hour at that edge is expired, not retried;
//! - on a first start with an initial lookback, every hour of it is read once (oldest first,
//!   as the budget allows); the pending hours are part of the ledger, so the load resumes
//!   across restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

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

/// The default of `--powerbi.reread-ages`: the documented latency (reference §1: most events
/// within 30 minutes, nearly all within an hour, older documentation up to 24 hours). 10m
/// catches the hour's last minutes, which its last poll as the current hour could not see;
/// 1h everything the documented hour brings; 3h, 8h, 16h and 24h the tail, spaced two- to
/// threefold, so an event N hours late is counted within about 3N hours, and within the 24h
/// lookback. 16h is there for outages: an hour whose last read (24h, at the lookback's end)
/// is refused has lost only what appeared in its last 8 hours, not in its last 16.
pub const DEFAULT_REREAD_AGES: &str = "10m,1h,3h,8h,16h,24h";

/// The ages after an hour's end at which it is read again: ascending, each above zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RereadAges(Vec<Duration>);

impl RereadAges {
    /// Parses a comma-separated list of durations (`10m,1h,3h`), ascending and above zero.
    pub fn parse(text: &str) -> Result<Self, String> {
        let ages = text
            .split(',')
            .map(|part| crate::duration::parse(part.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if ages.iter().any(Duration::is_zero) {
            return Err(format!("every age must be above zero, got {text:?}"));
        }
        if ages.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("the ages must be ascending, got {text:?}"));
        }
        Ok(RereadAges(ages))
    }

    /// The ages, ascending.
    pub fn ages(&self) -> &[Duration] {
        &self.0
    }

    /// The last age (none: the hour is read only while it is current).
    pub fn last(&self) -> Option<Duration> {
        self.0.last().copied()
    }

    /// When `hour` is next due after a read at `after`: its end plus the first age past `after`.
    fn next_after(&self, hour: UtcHour, after: UnixMillis) -> Option<UnixMillis> {
        let end = hour.next().start().0;
        self.0
            .iter()
            .map(|age| UnixMillis(end + age.as_millis() as i64))
            .find(|due| *due > after)
    }
}

impl Default for RereadAges {
    fn default() -> Self {
        RereadAges::parse(DEFAULT_REREAD_AGES).unwrap_or(RereadAges(Vec::new()))
    }
}

impl fmt::Display for RereadAges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ages: Vec<String> = self.0.iter().map(|a| crate::duration::format(*a)).collect();
        f.write_str(&ages.join(","))
    }
}

/// Settings of the read plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanConfig {
    /// How far back hours are read again for late events: an hour is in the lookback while
    /// it ended less than this long ago.
    pub lookback_hours: i64,
    /// When an ended hour is read again.
    pub reread_ages: RereadAges,
    /// The time between polls: an age that falls after an hour leaves the lookback is read
    /// at the last poll before it leaves.
    pub poll_interval: Duration,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            lookback_hours: 24,
            reread_ages: RereadAges::default(),
            poll_interval: Duration::from_secs(300),
        }
    }
}

impl PlanConfig {
    /// The first instant `hour` is out of the lookback.
    fn leaves_lookback(&self, hour: UtcHour) -> UnixMillis {
        UnixMillis(hour.next().start().0 + self.lookback_hours * HOUR_MS)
    }

    /// When `hour`, last read at `last` (never: `None`), is due again: `None` once settled.
    /// A never-read hour is due from its end; an age past the lookback's end is moved to the
    /// last poll before it.
    fn due(
        &self,
        hour: UtcHour,
        last: Option<UnixMillis>,
        sooner: Option<UnixMillis>,
    ) -> Option<UnixMillis> {
        let Some(last) = last else {
            return Some(hour.next().start());
        };
        let last_chance = UnixMillis(
            self.leaves_lookback(hour).0 - (self.poll_interval.as_millis() as i64).max(1),
        );
        let scheduled = self
            .reread_ages
            .next_after(hour, last)
            .map(|due| due.min(last_chance))
            .filter(|due| *due > last);
        match (scheduled, sooner) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Why a request is sent: the `purpose` label of `powerbi_api_requests_total`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// The current hour, read at every poll.
    Current,
    /// An ended hour read again at one of its ages (or sooner, after a re-read found events).
    Reread,
    /// An hour of the lookback never read to its end (an outage, a restart, a failure).
    Backlog,
    /// An hour of the initial lookback, read once at a first start.
    Initial,
    /// The admin inventory (`admin/groups`).
    Inventory,
    /// `top --since`.
    Top,
    /// `backfill`.
    Backfill,
    /// Counted by a release before requests had a purpose (a state file saved then).
    Unknown,
}

impl Purpose {
    pub const ALL: [Purpose; 8] = [
        Purpose::Current,
        Purpose::Reread,
        Purpose::Backlog,
        Purpose::Initial,
        Purpose::Inventory,
        Purpose::Top,
        Purpose::Backfill,
        Purpose::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Current => "current",
            Purpose::Reread => "reread",
            Purpose::Backlog => "backlog",
            Purpose::Initial => "initial",
            Purpose::Inventory => "inventory",
            Purpose::Top => "top",
            Purpose::Backfill => "backfill",
            Purpose::Unknown => "unknown",
        }
    }
}

/// One hour to read, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedRead {
    pub hour: UtcHour,
    pub purpose: Purpose,
}

/// When each hour inside the lookback was last read to its end, and what that read found.
/// Serialized as lists of pairs (JSON map keys must be strings); the keys after
/// `pending_history` are newer than the first state files and default to empty.
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
    /// Events on the hour's pages at its last read: a re-read that finds more found late
    /// events.
    #[serde(default, with = "pairs", skip_serializing_if = "BTreeMap::is_empty")]
    events_seen: BTreeMap<UtcHour, u64>,
    /// An extra read, before the next age, of an ended hour whose re-read found new events.
    #[serde(default, with = "pairs", skip_serializing_if = "BTreeMap::is_empty")]
    sooner: BTreeMap<UtcHour, UnixMillis>,
}

/// Where an hour of the lookback stands, for `powerbi_lookback_hours`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LookbackState {
    /// Read, and no read due now.
    Settled,
    /// Read, and a re-read is due now.
    Due,
    /// Never read to its end.
    NeverRead,
    /// Its last read failed.
    Failed,
}

impl LookbackState {
    pub const ALL: [LookbackState; 4] = [
        LookbackState::Settled,
        LookbackState::Due,
        LookbackState::NeverRead,
        LookbackState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LookbackState::Settled => "settled",
            LookbackState::Due => "due",
            LookbackState::NeverRead => "never_read",
            LookbackState::Failed => "failed",
        }
    }
}

impl SweepLedger {
    /// A ledger that reads nothing before `start`.
    pub fn starting_at(start: UtcHour) -> Self {
        SweepLedger {
            start: Some(start),
            ..SweepLedger::default()
        }
    }

    /// A first start at `now` that loads history from `start`: every hour before the current
    /// one is pending until read once.
    pub fn loading_history(start: UtcHour, now: UnixMillis) -> Self {
        let current = UtcHour::containing(now).0;
        SweepLedger {
            pending_history: (start.0..current).map(UtcHour).collect(),
            ..SweepLedger::starting_at(start)
        }
    }

    /// Records that `hour` was read to its end at `at` (a read of history: nothing is
    /// scheduled from it).
    pub fn record(&mut self, hour: UtcHour, at: UnixMillis) {
        self.last_read.insert(hour, at);
        self.pending_history.remove(&hour);
    }

    /// Records a read of the live schedule that found `events` on the hour's pages. A re-read
    /// of an ended hour that found more events than the last one (late events still arrive)
    /// schedules an extra read half way to the next age.
    pub fn record_read(&mut self, hour: UtcHour, at: UnixMillis, events: u64, ages: &RereadAges) {
        let end = hour.next().start();
        let previous = self.last_read.insert(hour, at);
        let seen_before = self.events_seen.insert(hour, events);
        self.pending_history.remove(&hour);
        self.sooner.remove(&hour);
        let re_read_of_ended_hour = previous.is_some_and(|p| p >= end);
        let found_new = seen_before.is_some_and(|before| events > before);
        if re_read_of_ended_hour && found_new {
            if let Some(next) = ages.next_after(hour, at) {
                self.sooner
                    .insert(hour, UnixMillis(at.0 + (next.0 - at.0) / 2));
            }
        }
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
        self.events_seen = self.events_seen.split_off(&hour);
        self.sooner = self.sooner.split_off(&hour);
    }

    /// When an ended hour of the lookback is next due (`None`: settled).
    fn due(&self, config: &PlanConfig, hour: UtcHour) -> Option<UnixMillis> {
        let sooner = self.sooner.get(&hour).copied();
        config.due(hour, self.last_read(hour), sooner)
    }

    /// How long the most overdue read of the lookback has waited (0 when none is due), for
    /// `powerbi_lookback_sweep_age_seconds`.
    pub fn oldest_sweep_age(&self, plan: &PlanConfig, now: UnixMillis) -> Option<i64> {
        let overdue = ended_hours(plan, self.start, now)
            .filter(|h| !self.is_pending(*h))
            .filter_map(|h| self.due(plan, h))
            .filter(|due| *due <= now)
            .map(|due| now.0 - due.0)
            .max();
        Some(overdue.unwrap_or(0))
    }

    /// Where `hour` (ended or current) stands at `now`; `failed` is the poller's.
    pub fn state(&self, plan: &PlanConfig, hour: UtcHour, now: UnixMillis) -> LookbackState {
        if self.is_pending(hour) || self.last_read(hour).is_none() {
            return LookbackState::NeverRead;
        }
        let due_now =
            hour < UtcHour::containing(now) && self.due(plan, hour).is_some_and(|due| due <= now);
        if due_now {
            LookbackState::Due
        } else {
            LookbackState::Settled
        }
    }
}

/// The hours to read at `now`, in order: the current hour, then up to `allowance` others,
/// the oldest due first: hours of the initial lookback, hours of the lookback never read
/// (due from their end), and scheduled re-reads (due at their age). Nothing older than the
/// API serves.
pub fn plan(
    config: &PlanConfig,
    ledger: &SweepLedger,
    now: UnixMillis,
    allowance: usize,
) -> Vec<PlannedRead> {
    let current = UtcHour::containing(now);
    let floor = floor(ledger.start, now);
    let mut reads = Vec::new();
    if current >= floor {
        reads.push(PlannedRead {
            hour: current,
            purpose: Purpose::Current,
        });
    }
    let history = ledger.pending_history.range(floor..current).map(|h| {
        (
            h.next().start(),
            PlannedRead {
                hour: *h,
                purpose: Purpose::Initial,
            },
        )
    });
    let lookback = ended_hours(config, ledger.start, now)
        .filter(|h| !ledger.is_pending(*h))
        .filter_map(|hour| {
            let due = ledger.due(config, hour).filter(|due| *due <= now)?;
            let purpose = match ledger.last_read(hour) {
                None => Purpose::Backlog,
                Some(_) => Purpose::Reread,
            };
            Some((due, PlannedRead { hour, purpose }))
        });
    let mut due: Vec<(UnixMillis, PlannedRead)> = history.chain(lookback).collect();
    due.sort_by_key(|(at, read)| (*at, read.hour));
    reads.extend(due.into_iter().take(allowance).map(|(_, read)| read));
    reads
}

/// Requests the schedule plans for the hour after a poll at `now`, a poll every `config.poll_interval`
/// with `allowance` reads besides the current hour each: one per read (a busy hour takes a
/// page more per 5,000–10,000 events), as if no re-read found new events.
pub fn planned_next_hour(
    config: &PlanConfig,
    ledger: &SweepLedger,
    now: UnixMillis,
    allowance: usize,
) -> usize {
    let interval = (config.poll_interval.as_millis() as i64).max(1);
    let mut ledger = ledger.clone();
    let mut planned = 0;
    let mut t = UnixMillis(now.0 + interval);
    while t.0 <= now.0 + HOUR_MS {
        for read in plan(config, &ledger, t, allowance) {
            ledger.record(read.hour, t);
            planned += 1;
        }
        t = UnixMillis(t.0 + interval);
    }
    planned
}

/// The oldest hour that may be read: the ledger's start, or the API's edge.
fn floor(start: Option<UtcHour>, now: UnixMillis) -> UtcHour {
    start
        .map_or(UtcHour(i64::MIN), |s| s)
        .max(oldest_servable(now))
}

/// The first hour of the lookback at `now`: hours before it are forgotten.
pub fn lookback_start(config: &PlanConfig, now: UnixMillis) -> UtcHour {
    UtcHour(UtcHour::containing(now).0 - config.lookback_hours)
}

/// The lookback's ended hours, oldest first.
fn ended_hours(
    config: &PlanConfig,
    start: Option<UtcHour>,
    now: UnixMillis,
) -> impl Iterator<Item = UtcHour> {
    let current = UtcHour::containing(now);
    let oldest = lookback_start(config, now).0.max(floor(start, now).0);
    (oldest..current.0).map(UtcHour)
}

/// A map as a list of `[key, value]` pairs.
pub(crate) mod pairs {
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

    fn config(ages: &str, lookback_hours: i64) -> PlanConfig {
        PlanConfig {
            lookback_hours,
            reread_ages: RereadAges::parse(ages).unwrap(),
            poll_interval: Duration::from_secs(300),
        }
    }

    fn read(hour: i64, purpose: Purpose) -> PlannedRead {
        PlannedRead {
            hour: UtcHour(hour),
            purpose,
        }
    }

    use Purpose::*;

    #[test]
    fn the_current_hour_every_poll_and_an_ended_one_at_each_age() {
        let config = config("10m,1h,3h", 24);
        let ages = &config.reread_ages;
        let mut ledger = SweepLedger::starting_at(UtcHour(100));
        assert_eq!(plan(&config, &ledger, at(100, 5), 9), [read(100, Current)]);
        ledger.record_read(UtcHour(100), at(100, 55), 5, ages);
        assert_eq!(plan(&config, &ledger, at(101, 5), 9), [read(101, Current)]);
        assert_eq!(
            plan(&config, &ledger, at(101, 10), 9),
            [read(101, Current), read(100, Reread)]
        );
        // More events than at 100:55, but that read was while the hour was current.
        ledger.record_read(UtcHour(100), at(101, 10), 6, ages);
        ledger.record_read(UtcHour(101), at(101, 55), 1, ages);
        assert_eq!(plan(&config, &ledger, at(101, 59), 9), [read(101, Current)]);
        assert_eq!(
            plan(&config, &ledger, at(102, 0), 9),
            [read(102, Current), read(100, Reread)],
            "100 at its 1h age; 101 waits for 102:10"
        );
        assert_eq!(
            ledger.state(&config, UtcHour(100), at(102, 0)),
            LookbackState::Due
        );
        // The 1h re-read found 2 late events: read again half way to the 3h age (104:00).
        ledger.record_read(UtcHour(100), at(102, 0), 8, ages);
        assert_eq!(
            ledger.state(&config, UtcHour(100), at(102, 0)),
            LookbackState::Settled
        );
        let due_100 =
            |ledger: &SweepLedger, t| plan(&config, ledger, t, 9).contains(&read(100, Reread));
        assert!(!due_100(&ledger, at(102, 55)));
        assert!(due_100(&ledger, at(103, 0)));
        // The sooner read found nothing new: the 3h age, then nothing more.
        ledger.record_read(UtcHour(100), at(103, 0), 8, ages);
        assert!(!due_100(&ledger, at(103, 59)));
        assert!(due_100(&ledger, at(104, 0)));
        ledger.record_read(UtcHour(100), at(104, 0), 8, ages);
        assert!(!due_100(&ledger, at(110, 0)), "settled after its last age");
        // 101, last read at 101:55 (before its end), has been due since 102:10.
        assert_eq!(
            ledger.oldest_sweep_age(&config, at(104, 0)),
            Some(110 * 60_000)
        );
    }

    #[test]
    fn an_age_past_the_lookback_is_read_at_the_last_poll_before_the_hour_leaves() {
        let config = config("10m,24h", 24);
        let mut ledger = SweepLedger::starting_at(UtcHour(100));
        ledger.record_read(UtcHour(100), at(101, 10), 4, &config.reread_ages);
        let planned_100 = |t| {
            plan(&config, &ledger, t, 99)
                .iter()
                .find(|r| r.hour == UtcHour(100))
                .map(|r| r.purpose)
        };
        // 101:00 + 24h = 125:00, when hour 100 leaves a 24h lookback: read at 124:55.
        assert_eq!(planned_100(at(124, 50)), None);
        assert_eq!(planned_100(at(124, 55)), Some(Reread));
        assert_eq!(planned_100(at(125, 0)), None, "out of the lookback");
    }

    #[test]
    fn a_backlog_goes_oldest_due_first_within_the_allowance_after_the_current_hour() {
        let config = config("10m,1h", 24);
        let mut ledger = SweepLedger::starting_at(UtcHour(90));
        ledger.record_read(UtcHour(99), at(99, 30), 1, &config.reread_ages);
        // 90..=98 never read (due from their ends), 99 due at 100:10: the oldest first.
        assert_eq!(
            plan(&config, &ledger, at(100, 30), 3),
            [
                read(100, Current),
                read(90, Backlog),
                read(91, Backlog),
                read(92, Backlog)
            ]
        );
        assert_eq!(plan(&config, &ledger, at(100, 30), 0), [read(100, Current)]);
        let all = plan(&config, &ledger, at(100, 30), 99);
        assert_eq!(all.len(), 11);
        assert_eq!(all[10], read(99, Reread));
        assert_eq!(
            ledger.state(&config, UtcHour(95), at(100, 30)),
            LookbackState::NeverRead
        );
        assert_eq!(
            ledger.oldest_sweep_age(&config, at(100, 30)),
            Some(9 * HOUR_MS + 30 * 60_000),
            "hour 90 has waited since its end"
        );
    }

    #[test]
    fn the_planned_requests_of_the_next_hour_follow_the_schedule() {
        let config = config("10m,1h", 24);
        let mut ledger = SweepLedger::starting_at(UtcHour(100));
        ledger.record_read(UtcHour(100), at(100, 25), 1, &config.reread_ages);
        // Polls 100:35 … 101:30: 12 of the current hour, and hour 100 at 101:10.
        assert_eq!(planned_next_hour(&config, &ledger, at(100, 30), 9), 13);
        // A backlog of 20 hours at 2 reads a poll beside the current hour, by 101:20; then
        // hour 100's 10m age (due 101:10, after the backlog's older due times): 12 + 20 + 1.
        let ledger = SweepLedger::starting_at(UtcHour(80));
        assert_eq!(
            planned_next_hour(&config, &ledger, at(100, 30), 2),
            12 + 20 + 1
        );
    }

    #[test]
    fn reread_ages_are_ascending_durations_above_zero() {
        let ages = RereadAges::parse("10m, 1h,3h,8h,16h,24h").unwrap();
        assert_eq!(ages.ages().len(), 6);
        assert_eq!(ages.to_string(), "10m,1h,3h,8h,16h,1d");
        assert_eq!(RereadAges::default(), ages);
        assert!(RereadAges::parse("1h,10m")
            .unwrap_err()
            .contains("ascending"));
        assert!(RereadAges::parse("1h,1h")
            .unwrap_err()
            .contains("ascending"));
        assert!(RereadAges::parse("0s,1h")
            .unwrap_err()
            .contains("above zero"));
        assert!(RereadAges::parse("5x").unwrap_err().contains("duration"));
        assert!(RereadAges::parse("").is_err());
    }

    #[test]
    fn a_ledger_saved_before_the_schedule_loads_and_keeps_its_reads() {
        // The checkpoint of tests/fixtures/state/v1/state.json.
        let old = r#"{"last_read":[[498888,1795998070936]],"start":498888,"pending_history":[]}"#;
        let ledger: SweepLedger = serde_json::from_str(old).unwrap();
        assert_eq!(
            ledger.last_read(UtcHour(498888)),
            Some(UnixMillis(1795998070936))
        );
        assert_eq!(ledger.start, Some(UtcHour(498888)));
        let resaved: SweepLedger =
            serde_json::from_str(&serde_json::to_string(&ledger).unwrap()).unwrap();
        assert_eq!(resaved, ledger);
    }

    #[test]
    fn a_first_start_reads_nothing_before_it() {
        let config = config("10m,1h", 24);
        let ledger = SweepLedger::starting_at(UtcHour(100));
        assert_eq!(plan(&config, &ledger, at(100, 5), 5), [read(100, Current)]);
        assert_eq!(
            plan(&config, &ledger, at(103, 5), 5),
            [
                read(103, Current),
                read(100, Backlog),
                read(101, Backlog),
                read(102, Backlog)
            ]
        );
        let mut ledger = ledger;
        ledger.record(UtcHour(100), at(103, 0));
        ledger.forget_before(UtcHour(101));
        assert_eq!(ledger.last_read(UtcHour(100)), None);
    }

    #[test]
    fn a_first_start_with_history_reads_each_hour_once_oldest_first() {
        let config = config("10m,1h", 1);
        let now = at(100, 30);
        let mut ledger = SweepLedger::loading_history(UtcHour(95), now);
        assert_eq!(ledger.history_remaining(), 5); // hours 95..=99; 100 is current
        assert_eq!(
            plan(&config, &ledger, now, 2),
            [read(100, Current), read(95, Initial), read(96, Initial)]
        );
        ledger.record(UtcHour(95), now);
        ledger.record(UtcHour(96), now);
        // The lookback's hour 99 is pending too: planned once, with the history.
        assert_eq!(
            plan(&config, &ledger, now, 5),
            [
                read(100, Current),
                read(97, Initial),
                read(98, Initial),
                read(99, Initial)
            ]
        );
        let restored: SweepLedger =
            serde_json::from_str(&serde_json::to_string(&ledger).unwrap()).unwrap();
        assert_eq!(restored.history_remaining(), 3);
        for h in 97..=99 {
            ledger.record(UtcHour(h), now);
        }
        assert_eq!(ledger.history_remaining(), 0);
        // Then the schedule: 100 (read at 100:30, current then) is due at its 10m age.
        ledger.record(UtcHour(100), now);
        assert_eq!(
            plan(&config, &ledger, at(101, 10), 5),
            [read(101, Current), read(100, Reread)]
        );
    }

    #[test]
    fn hours_the_api_no_longer_serves_are_not_planned_and_a_refusal_at_the_edge_expires() {
        // Reference §1/§16: the API serves the last 28 days; the simulator refuses a start
        // older than now - 28 days.
        let config = config("10m,1h", 28 * 24);
        let now = at(1000, 30);
        let ledger = SweepLedger::loading_history(UtcHour(1000 - 28 * 24), now);
        // Hour 328 began 28 days and 30 minutes before now: out of the API's window.
        assert_eq!(
            plan(&config, &ledger, now, 2),
            [read(1000, Current), read(329, Initial), read(330, Initial)]
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
        assert_eq!(ledger.history_remaining(), 1000 - 330);
        assert_eq!(plan(&config, &ledger, now, 1)[1], read(330, Initial));
    }
}
