//! Exactly-once: remembers the `Id` of every counted event inside a time window.
//!
//! Invariants:
//! - an `Id` always comes with the same `CreationTime`, so ids are kept in partitions by
//!   UTC hour of `CreationTime` and a duplicate is found in one partition;
//! - the window trails the newest counted event: partitions older than `window` before it
//!   are dropped, and an event older than that is refused (it can no longer be checked), so
//!   memory is ~20 bytes per event inside the window, whatever the run length.

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

#[derive(Debug)]
pub struct Dedup {
    window_hours: i64,
    newest_hour: i64,
    partitions: BTreeMap<i64, HashSet<u128>>,
}

impl Dedup {
    pub fn new(window: std::time::Duration) -> Self {
        let window_hours = (window.as_millis() as i64 + HOUR_MS - 1) / HOUR_MS;
        Dedup {
            window_hours: window_hours.max(1),
            newest_hour: i64::MIN,
            partitions: BTreeMap::new(),
        }
    }

    pub fn check(&mut self, key: EventKey, time: UnixMillis) -> Seen {
        let hour = time.0.div_euclid(HOUR_MS);
        if self.newest_hour != i64::MIN && hour < self.newest_hour - self.window_hours {
            return Seen::OutsideWindow;
        }
        // A new hour is sized like the newest one so far: growing a set by doubling rehashes
        // every id many times over.
        let typical = self
            .partitions
            .last_key_value()
            .map_or(0, |(_, ids)| ids.len());
        let ids = self
            .partitions
            .entry(hour)
            .or_insert_with(|| HashSet::with_capacity(typical));
        if !ids.insert(key.0) {
            return Seen::Duplicate;
        }
        if hour > self.newest_hour {
            self.newest_hour = hour;
            let oldest_kept = hour - self.window_hours;
            while let Some(entry) = self.partitions.first_entry() {
                if *entry.key() >= oldest_kept {
                    break;
                }
                entry.remove();
            }
        }
        Seen::New
    }

    /// Ids currently remembered.
    pub fn len(&self) -> usize {
        self.partitions.values().map(HashSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids as pairs of 64-bit halves (JSON numbers stop at 64 bits).
    pub fn export(&self) -> DedupState {
        let split = |id: &u128| ((id >> 64) as u64, *id as u64);
        DedupState {
            newest_hour: self.newest_hour,
            partitions: self
                .partitions
                .iter()
                .map(|(h, ids)| (*h, ids.iter().map(split).collect()))
                .collect(),
        }
    }

    pub fn import(state: DedupState, window: std::time::Duration) -> Self {
        let mut dedup = Dedup::new(window);
        dedup.newest_hour = state.newest_hour;
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
    newest_hour: i64,
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
    fn counts_each_id_once_and_refuses_what_it_can_no_longer_check() {
        let mut d = Dedup::new(Duration::from_secs(2 * 3600));
        assert_eq!(d.check(EventKey(1), at(10)), Seen::New);
        assert_eq!(d.check(EventKey(1), at(10)), Seen::Duplicate);
        assert_eq!(d.check(EventKey(2), at(9)), Seen::New);
        assert_eq!(d.check(EventKey(3), at(12)), Seen::New); // window now covers hours 10..=12
        assert_eq!(d.len(), 2, "hour 9 was dropped");
        assert_eq!(d.check(EventKey(2), at(9)), Seen::OutsideWindow);
        assert_eq!(d.check(EventKey(1), at(10)), Seen::Duplicate);
        assert_eq!(d.check(EventKey(4), at(11)), Seen::New);
    }
}
