//! The instants a backfill writes samples at: every multiple of the step (aligned to the Unix
//! epoch, so two backfills of the same history share their grid), from the first one at or
//! after the earliest event, up to the range's end, and the end itself when it is off the grid.
//!
//! Invariant: an instant is handed out before any event created after it is applied and after
//! every event created at or before it, so a sample at t counts exactly the events with
//! `CreationTime ≤ t`. Pure: no clock, no I/O.

use crate::decode::UnixMillis;

/// Walks the step grid as events are applied in time order. The end is at or after the newest
/// event (the caller's invariant), so no event is applied after the last instant.
#[derive(Debug, Clone)]
pub struct StepGrid {
    step_ms: i64,
    end: UnixMillis,
    /// The next instant to hand out; `None` until the first event fixes the start.
    next: Option<i64>,
    /// Whether `end` was handed out (the last instant).
    ended: bool,
}

impl StepGrid {
    /// A grid of `step_ms` (at least 1) that ends at `end`.
    pub fn new(step_ms: i64, end: UnixMillis) -> Self {
        StepGrid {
            step_ms: step_ms.max(1),
            end,
            next: None,
            ended: false,
        }
    }

    /// The instants due before an event created at `time` is applied: every instant before
    /// `time` (and not after the end). The first event starts the grid.
    pub fn before(&mut self, time: UnixMillis) -> Vec<UnixMillis> {
        let next = *self
            .next
            .get_or_insert_with(|| ceil_to(time.0, self.step_ms));
        let mut due = Vec::new();
        let mut t = next;
        while t < time.0 && t <= self.end.0 {
            due.push(UnixMillis(t));
            t += self.step_ms;
        }
        self.next = Some(t);
        due
    }

    /// The instants left once every event is applied: the rest of the grid up to the end, then
    /// the end itself when it is not on the grid. Nothing when no event started the grid.
    pub fn finish(&mut self) -> Vec<UnixMillis> {
        let Some(next) = self.next else {
            return Vec::new();
        };
        if self.ended {
            return Vec::new();
        }
        self.ended = true;
        let mut due: Vec<UnixMillis> = (0..)
            .map(|k| next + k * self.step_ms)
            .take_while(|t| *t <= self.end.0)
            .map(UnixMillis)
            .collect();
        let last_on_grid = due.last().map_or(next - self.step_ms, |t| t.0);
        if last_on_grid < self.end.0 {
            due.push(self.end);
        }
        due
    }
}

/// The smallest multiple of `step` at or after `t`.
fn ceil_to(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step + if t.rem_euclid(step) == 0 { 0 } else { step }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn ms(v: &[UnixMillis]) -> Vec<i64> {
        v.iter().map(|t| t.0).collect()
    }

    #[test]
    fn instants_come_before_later_events_and_after_events_at_them() {
        let mut grid = StepGrid::new(5 * MIN, UnixMillis(31 * MIN));
        // The first event, at 2 min, starts the grid at 5 min: nothing is due before it.
        assert!(grid.before(UnixMillis(2 * MIN)).is_empty());
        // An event exactly at 5 min counts in the sample at 5 min: not due yet.
        assert!(grid.before(UnixMillis(5 * MIN)).is_empty());
        assert_eq!(ms(&grid.before(UnixMillis(5 * MIN + 1))), [5 * MIN]);
        // A gap of events: every instant of it is due, in order.
        assert_eq!(
            ms(&grid.before(UnixMillis(21 * MIN))),
            [10 * MIN, 15 * MIN, 20 * MIN]
        );
        // The rest of the grid, then the end, which is off the grid.
        assert_eq!(ms(&grid.finish()), [25 * MIN, 30 * MIN, 31 * MIN]);
        assert!(grid.finish().is_empty(), "handed out once");
    }

    #[test]
    fn an_end_on_the_grid_is_written_once_and_no_events_write_nothing() {
        let mut grid = StepGrid::new(MIN, UnixMillis(3 * MIN));
        assert!(grid.before(UnixMillis(MIN)).is_empty());
        assert_eq!(ms(&grid.finish()), [MIN, 2 * MIN, 3 * MIN]);
        assert!(StepGrid::new(MIN, UnixMillis(3 * MIN)).finish().is_empty());
    }

    #[test]
    fn a_lone_event_writes_one_sample_at_the_end() {
        // One event at 90 s, the end at its time: the grid would start at 120 s, after the
        // end, so the end alone is written, and it holds the event.
        let mut grid = StepGrid::new(MIN, UnixMillis(90_000));
        assert!(grid.before(UnixMillis(90_000)).is_empty());
        assert_eq!(ms(&grid.finish()), [90_000]);
    }

    #[test]
    fn the_grid_is_aligned_to_the_epoch_even_before_it() {
        assert_eq!(ceil_to(-90_000, MIN), -MIN);
        assert_eq!(ceil_to(0, MIN), 0);
        assert_eq!(ceil_to(1, MIN), MIN);
    }
}
