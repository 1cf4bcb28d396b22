//! Exactly-once: remembers the `Id` of every counted event inside a time window.
//!
//! Invariants:
//! - an `Id` always comes with the same `CreationTime`, so ids are kept in partitions by
//!   UTC hour of `CreationTime` and a duplicate is found in one partition;
//! - a live window ([`DedupAnchor::WallClock`]) ends at the wall clock, which no event can move:
//!   partitions older than `window` before it are dropped, and an event older than that is
//!   refused (it can no longer be checked), so memory is ~20 bytes per event inside the window,
//!   whatever the run length. While the initial lookback is loaded, the window is held open
//!   back to its first hour ([`Dedup::hold_from`]);
//! - a replayed archive ([`DedupAnchor::Unanchored`]) has no window: nothing is refused or
//!   dropped; the replay bounds memory by reading the archive in passes of days
//!   ([`Dedup::forget_days`] of each pass done).

use std::collections::BTreeMap;

use hashbrown::HashSet;

use crate::decode::{EventKey, UnixMillis};

const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time: count it.
    New,
    /// Counted before.
    Duplicate,
    /// Older than the window: it cannot be checked, so it is not counted.
    OutsideWindow,
}

/// What the dedup window ends at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DedupAnchor {
    /// The wall clock (live and simulated sources): an event dated in the future cannot move
    /// the window past the hours that are still re-read.
    #[default]
    WallClock,
    /// No window (replayed archives): every id is kept until the replay's pass ends.
    Unanchored,
}

#[derive(Debug)]
pub struct Dedup {
    window_hours: i64,
    /// The wall clock's hour, once told ([`Dedup::set_clock`]); without it nothing is refused.
    anchor_hour: Option<i64>,
    /// Hours from this one on are kept even when older than the window.
    hold_from: Option<i64>,
    partitions: BTreeMap<i64, HashSet<u128>>,
}

impl Dedup {
    pub fn new(window: std::time::Duration) -> Self {
        let window_hours = (window.as_millis() as i64 + HOUR_MS - 1) / HOUR_MS;
        Dedup {
            window_hours: window_hours.max(1),
            anchor_hour: None,
            hold_from: None,
            partitions: BTreeMap::new(),
        }
    }

    /// Ends the window at the wall clock `now` and drops the hours that left it.
    pub fn set_clock(&mut self, now: UnixMillis) {
        // Set, not maxed: a window pushed ahead by an older version's future event heals.
        self.anchor_hour = Some(now.0.div_euclid(HOUR_MS));
        self.drop_old();
    }

    /// Keeps every hour from `from` on (the initial lookback being loaded), or, with `None`,
    /// lets the window trail the clock again.
    pub fn hold_from(&mut self, from: Option<UnixMillis>) {
        self.hold_from = from.map(|t| t.0.div_euclid(HOUR_MS));
        self.drop_old();
    }

    /// The first hour of the window held open, if any.
    pub fn held_from(&self) -> Option<UnixMillis> {
        self.hold_from.map(|h| UnixMillis(h * HOUR_MS))
    }

    /// Forgets every id (a replay pass is done: its days never come again).
    pub fn clear(&mut self) {
        self.partitions.clear();
    }

    /// Forgets the ids of the UTC days `first_day..=last_day` (days since the Unix epoch): a
    /// replay pass over them is done. Ids of other days stay, such as those a backfill's state
    /// brought, which the replay's later passes must still recognise.
    pub fn forget_days(&mut self, first_day: i64, last_day: i64) {
        // The first and last passes reach out to the ends of time (i64::MIN, i64::MAX).
        let first = first_day.saturating_mul(24);
        let after = last_day.saturating_add(1).saturating_mul(24);
        self.partitions
            .retain(|hour, _| *hour < first || *hour >= after);
    }

    /// The oldest hour still checked, when there is a window.
    fn oldest_kept(&self) -> Option<i64> {
        let trailing = self.anchor_hour? - self.window_hours;
        Some(self.hold_from.map_or(trailing, |h| h.min(trailing)))
    }

    fn drop_old(&mut self) {
        let Some(oldest) = self.oldest_kept() else {
            return;
        };
        self.partitions = self.partitions.split_off(&oldest);
    }

    pub fn check(&mut self, key: EventKey, time: UnixMillis) -> Seen {
        let hour = time.0.div_euclid(HOUR_MS);
        if self.oldest_kept().is_some_and(|oldest| hour < oldest) {
            return Seen::OutsideWindow;
        }
        if let Some(ids) = self.partitions.get_mut(&hour) {
            return if ids.insert(key.0) {
                Seen::New
            } else {
                Seen::Duplicate
            };
        }
        // A new hour is sized like the newest one so far: growing a set by doubling rehashes
        // every id many times over.
        let typical = self
            .partitions
            .last_key_value()
            .map_or(0, |(_, ids)| ids.len());
        let mut ids = HashSet::with_capacity(typical);
        ids.insert(key.0);
        self.partitions.insert(hour, ids);
        Seen::New
    }

    /// Ids currently remembered.
    pub fn len(&self) -> usize {
        self.partitions.values().map(HashSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held: the hourly sets and the B-tree of hours (about one leaf per 6 hours).
    pub fn heap_bytes(&self) -> usize {
        let sets: usize = self.partitions.values().map(HashSet::allocation_size).sum();
        let leaf = super::memory::chunk(16 + 11 * std::mem::size_of::<(i64, HashSet<u128>)>());
        sets + self.partitions.len().div_ceil(6) * leaf
    }

    /// Ids as pairs of 64-bit halves (JSON numbers stop at 64 bits).
    pub fn export(&self) -> DedupState {
        let split = |id: &u128| ((id >> 64) as u64, *id as u64);
        DedupState {
            newest_hour: self.anchor_hour.unwrap_or(i64::MIN),
            hold_from: self.hold_from,
            partitions: self
                .partitions
                .iter()
                .map(|(h, ids)| (*h, ids.iter().map(split).collect()))
                .collect(),
        }
    }

    pub fn import(state: DedupState, window: std::time::Duration) -> Self {
        let mut dedup = Dedup::new(window);
        dedup.anchor_hour = (state.newest_hour != i64::MIN).then_some(state.newest_hour);
        dedup.hold_from = state.hold_from;
        for (hour, ids) in state.partitions {
            dedup.partitions.insert(
                hour,
                ids.into_iter()
                    .map(|(hi, lo)| (u128::from(hi) << 64) | u128::from(lo))
                    .collect(),
            );
        }
        dedup
    }
}

/// The durable form of [`Dedup`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DedupState {
    /// The window's end hour (the name predates the wall-clock anchor; `i64::MIN`: none).
    newest_hour: i64,
    #[serde(default)]
    hold_from: Option<i64>,
    partitions: Vec<(i64, Vec<(u64, u64)>)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(h: i64) -> UnixMillis {
        UnixMillis(h * HOUR_MS + 1234)
    }

    #[test]
    fn a_pass_done_forgets_its_days_only() {
        let mut d = Dedup::new(Duration::from_secs(3600));
        // Days 1, 2 and 3 (hours 24…95): one id each.
        for (key, hour) in [(1, 30), (2, 50), (3, 80)] {
            assert_eq!(d.check(EventKey(key), at(hour)), Seen::New);
        }
        d.forget_days(i64::MIN, 0);
        d.forget_days(4, i64::MAX);
        d.forget_days(2, 2);
        assert_eq!(d.check(EventKey(1), at(30)), Seen::Duplicate);
        assert_eq!(d.check(EventKey(2), at(50)), Seen::New, "day 2 forgotten");
        assert_eq!(d.check(EventKey(3), at(80)), Seen::Duplicate);
    }

    #[test]
    fn counts_each_id_once_and_refuses_what_it_can_no_longer_check() {
        let mut d = Dedup::new(Duration::from_secs(2 * 3600));
        d.set_clock(at(10));
        assert_eq!(d.check(EventKey(1), at(10)), Seen::New);
        assert_eq!(d.check(EventKey(1), at(10)), Seen::Duplicate);
        assert_eq!(d.check(EventKey(2), at(9)), Seen::New);
        d.set_clock(at(12)); // window now covers hours 10..=12
        assert_eq!(d.len(), 1, "hour 9 was dropped");
        assert_eq!(d.check(EventKey(2), at(9)), Seen::OutsideWindow);
        assert_eq!(d.check(EventKey(1), at(10)), Seen::Duplicate);
        assert_eq!(d.check(EventKey(4), at(11)), Seen::New);
        // A future event is checked but does not move the window.
        assert_eq!(d.check(EventKey(5), at(30)), Seen::New);
        assert_eq!(d.check(EventKey(6), at(10)), Seen::New);
    }

    #[test]
    fn a_held_window_keeps_the_initial_lookback_until_released() {
        let mut d = Dedup::new(Duration::from_secs(3 * 3600));
        d.set_clock(at(100));
        d.hold_from(Some(at(95)));
        assert_eq!(d.check(EventKey(1), at(95)), Seen::New);
        assert_eq!(d.check(EventKey(1), at(95)), Seen::Duplicate);
        assert_eq!(d.check(EventKey(2), at(94)), Seen::OutsideWindow);
        let restored = Dedup::import(d.export(), Duration::from_secs(3 * 3600));
        assert_eq!(restored.held_from(), Some(UnixMillis(95 * HOUR_MS)));
        d.hold_from(None);
        assert!(d.is_empty());
        assert_eq!(d.check(EventKey(3), at(96)), Seen::OutsideWindow);
    }

    #[test]
    fn without_a_clock_nothing_is_refused_or_dropped() {
        let mut d = Dedup::new(Duration::from_secs(3600));
        for (key, hour) in [(1, 500_000), (2, 10), (3, 250_000), (2, 10)] {
            let expected = if key == 2 && d.len() == 3 {
                Seen::Duplicate
            } else {
                Seen::New
            };
            assert_eq!(d.check(EventKey(key), at(hour)), expected);
        }
        assert_eq!(d.len(), 3);
        d.clear();
        assert!(d.is_empty());
    }
}

#[cfg(test)]
mod anchored {
    use std::time::Duration;

    use crate::aggregate::{AggregateConfig, Aggregator, Reference};
    use crate::decode::{decode_slice, UnixMillis};

    /// The snapshot's value of one sample, 0 when absent. The snapshot rather than the
    /// rendered text, so this test stays inside the aggregate stage.
    fn sample(agg: &Aggregator, family: &str, labels: &[&str]) -> f64 {
        agg.snapshot(Reference::NewestEvent)
            .value(family, labels)
            .unwrap_or(0.0)
    }

    #[test]
    fn an_event_dated_in_the_future_does_not_move_the_live_window() {
        // A live source with a 1h lookback: window 3h, wall clock 2026-11-20T11:05Z.
        let config = AggregateConfig {
            dedup_window: Duration::from_secs(3 * 3600),
            ..AggregateConfig::default()
        };
        let mut agg = Aggregator::new(&config);
        agg.set_clock(UnixMillis(1_795_172_700_000));
        // 20 hours ahead (inside the day accepted), then an hour 2.5 hours old, re-read.
        let page = br#"[
            {"Id":"f1","CreationTime":"2026-11-21T07:00:00","Activity":"ViewReport"},
            {"Id":"l1","CreationTime":"2026-11-20T08:40:00","Activity":"ViewReport"},
            {"Id":"l1","CreationTime":"2026-11-20T08:40:00","Activity":"ViewReport"}
        ]"#;
        decode_slice(page, &mut agg).unwrap();
        assert_eq!(
            sample(
                &agg,
                "powerbi_events_rejected_total",
                &["outside_dedup_window"]
            ),
            0.0
        );
        assert_eq!(
            sample(&agg, "powerbi_activity_events_total", &["", "ViewReport"]),
            2.0
        );
        assert_eq!(sample(&agg, "powerbi_events_duplicate_total", &[]), 1.0);
        // Hours older than the window at the wall clock are still refused.
        decode_slice(
            br#"[{"Id":"o1","CreationTime":"2026-11-20T07:59:00","Activity":"ViewReport"}]"#,
            &mut agg,
        )
        .unwrap();
        assert_eq!(
            sample(
                &agg,
                "powerbi_events_rejected_total",
                &["outside_dedup_window"]
            ),
            1.0
        );
    }
}
