//! The request budget: never more than N requests in any rolling hour (or minute, for the
//! inventory's per-minute limit), retries included.
//!
//! Pure: the caller passes the time. The API allows 200 requests per hour per tenant for all
//! callers together, so the exporter keeps well under it and leaves room for other tools.
//! The ledger of send times is what the durable state persists, so a restart does not reset it.

use std::collections::VecDeque;

use crate::decode::UnixMillis;

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// The longest a 429 may block requests (the shared `Retry-After` maximum), so a bad header can
/// block polling for an hour at most, and a restart never inherits more.
pub use crate::azure::http::MAX_RETRY_AFTER;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBudget {
    max_per_hour: usize,
    /// Length of the rolling window `max_per_hour` applies to: an hour, or a minute.
    window_ms: i64,
    /// Send times inside the last hour, oldest first.
    sent: VecDeque<UnixMillis>,
    /// No request before this (a 429's `Retry-After`).
    blocked_until: UnixMillis,
}

impl RequestBudget {
    pub fn new(max_per_hour: usize) -> Self {
        RequestBudget {
            max_per_hour,
            window_ms: HOUR_MS,
            sent: VecDeque::new(),
            blocked_until: UnixMillis(i64::MIN),
        }
    }

    /// Never more than `max` requests in any rolling minute.
    pub fn per_minute(max: usize) -> Self {
        RequestBudget {
            window_ms: MINUTE_MS,
            ..RequestBudget::new(max)
        }
    }

    /// Restores a ledger (from the durable state); send times older than an hour are dropped
    /// (when the budget is next used), later than `now` count as `now`, and a block is cut to [`MAX_RETRY_AFTER`] from `now` (a state saved before the clamp
    /// existed may block until the year 5195).
    pub fn restore(
        max_per_hour: usize,
        sent: impl IntoIterator<Item = UnixMillis>,
        blocked_until: UnixMillis,
        now: UnixMillis,
    ) -> Self {
        let longest = UnixMillis(now.0.saturating_add(MAX_RETRY_AFTER.as_millis() as i64));
        let blocked_until = blocked_until.min(longest);
        // A send time after `now` (a clock set back, a hand-edited file) counts as sent now:
        // kept as it is, it would hold its place in the budget for ever.
        let mut sent: Vec<UnixMillis> = sent.into_iter().map(|t| t.min(now)).collect();
        sent.sort();
        RequestBudget {
            max_per_hour,
            window_ms: HOUR_MS,
            sent: sent.into(),
            blocked_until,
        }
    }

    fn expire(&mut self, now: UnixMillis) {
        // Before the start of i64 plus a window, nothing has left the window yet.
        let Some(edge) = now.0.checked_sub(self.window_ms) else {
            return;
        };
        while self.sent.front().is_some_and(|t| t.0 <= edge) {
            self.sent.pop_front();
        }
    }

    /// Takes one request from the budget, or says when the next one may be sent.
    pub fn acquire(&mut self, now: UnixMillis) -> Result<(), UnixMillis> {
        self.expire(now);
        if now < self.blocked_until {
            return Err(self.blocked_until);
        }
        if self.sent.len() >= self.max_per_hour {
            let oldest = self.sent.front().copied().unwrap_or(now);
            return Err(UnixMillis(oldest.0.saturating_add(self.window_ms)));
        }
        self.sent.push_back(now);
        Ok(())
    }

    /// Requests that may still be sent in the rolling hour ending at `now`.
    pub fn remaining(&mut self, now: UnixMillis) -> usize {
        self.expire(now);
        if now < self.blocked_until {
            return 0;
        }
        self.max_per_hour.saturating_sub(self.sent.len())
    }

    /// Honours a `Retry-After`: nothing is sent before `until`.
    pub fn block_until(&mut self, until: UnixMillis) {
        self.blocked_until = self.blocked_until.max(until);
    }

    /// The ledger, for the durable state.
    pub fn ledger(&self) -> (Vec<UnixMillis>, UnixMillis) {
        (self.sent.iter().copied().collect(), self.blocked_until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_block_longer_than_an_hour_is_cut_to_an_hour_on_restore() {
        // Retry-After: 99999999999 s, saved by a version that did not clamp it.
        let year_5195 = UnixMillis(99_999_999_999 * 1000);
        let now = UnixMillis(1_795_000_000_000);
        let mut b = RequestBudget::restore(10, Vec::new(), year_5195, now);
        assert_eq!(b.acquire(now), Err(UnixMillis(now.0 + 3_600_000)));
        assert_eq!(b.acquire(UnixMillis(now.0 + 3_600_000)), Ok(()));
        // The furthest representable block does not overflow either.
        let far = RequestBudget::restore(
            10,
            Vec::new(),
            UnixMillis(i64::MAX),
            UnixMillis(i64::MAX - 5),
        );
        assert_eq!(far.ledger().1, UnixMillis(i64::MAX));
    }

    /// A hand-crafted state file may hold any i64 as a send time or a block: nothing
    /// overflows, and send times after `now` count as sent at `now` (not for ever).
    #[test]
    fn send_times_at_the_ends_of_i64_neither_overflow_nor_hold_the_budget_for_ever() {
        let now = UnixMillis(1_795_000_000_000);
        let hour = 3_600_000;
        let sent = [
            UnixMillis(i64::MAX),
            UnixMillis(i64::MAX - 1),
            UnixMillis(i64::MIN),
        ];
        let mut b = RequestBudget::restore(2, sent, UnixMillis(i64::MIN), now);
        assert_eq!(b.remaining(now), 0);
        assert_eq!(b.acquire(now), Err(UnixMillis(now.0 + hour)));
        assert_eq!(b.acquire(UnixMillis(now.0 + hour)), Ok(()));
        // The clock at either end of i64 too.
        let mut b = RequestBudget::restore(1, [UnixMillis(i64::MAX)], UnixMillis(i64::MAX), now);
        assert_eq!(
            b.acquire(UnixMillis(i64::MIN)),
            Err(UnixMillis(now.0 + hour))
        );
        let mut b = RequestBudget::restore(
            1,
            [UnixMillis(i64::MAX - 5)],
            UnixMillis(i64::MIN),
            UnixMillis(i64::MAX - 5),
        );
        assert_eq!(
            b.acquire(UnixMillis(i64::MAX - 1)),
            Err(UnixMillis(i64::MAX))
        );
        assert_eq!(b.remaining(UnixMillis(i64::MAX)), 0);
        let mut b = RequestBudget::per_minute(1);
        assert_eq!(b.acquire(UnixMillis(i64::MIN)), Ok(()));
        assert_eq!(
            b.acquire(UnixMillis(i64::MIN)),
            Err(UnixMillis(i64::MIN + 60_000))
        );
    }

    const MIN: i64 = 60_000;

    #[test]
    fn never_more_than_the_budget_in_any_rolling_hour() {
        let mut b = RequestBudget::new(3);
        for m in [0, 10, 20] {
            assert_eq!(b.acquire(UnixMillis(m * MIN)), Ok(()));
        }
        assert_eq!(
            b.acquire(UnixMillis(30 * MIN)),
            Err(UnixMillis(60 * MIN)),
            "next when the 0-minute one leaves the hour"
        );
        assert_eq!(b.remaining(UnixMillis(59 * MIN)), 0);
        assert_eq!(b.remaining(UnixMillis(60 * MIN)), 1);
        assert_eq!(b.acquire(UnixMillis(60 * MIN)), Ok(()));
        assert_eq!(b.acquire(UnixMillis(61 * MIN)), Err(UnixMillis(70 * MIN)));
    }

    /// admin/groups allows "50 requests per hour or 15 requests per minute, per tenant"
    /// (GetGroupsAsAdmin, Limitations; microsoft/PowerBI-CSharp `sdk/swaggers/swagger.json`).
    #[test]
    fn a_per_minute_budget_rolls_over_a_minute() {
        const SEC: i64 = 1_000;
        let mut b = RequestBudget::per_minute(15);
        for s in 0..15 {
            assert_eq!(b.acquire(UnixMillis(s * SEC)), Ok(()));
        }
        assert_eq!(
            b.acquire(UnixMillis(20 * SEC)),
            Err(UnixMillis(60 * SEC)),
            "the 16th waits until the first leaves the minute"
        );
        assert_eq!(b.acquire(UnixMillis(60 * SEC)), Ok(()));
        assert_eq!(b.acquire(UnixMillis(60 * SEC)), Err(UnixMillis(61 * SEC)));
    }

    #[test]
    fn retry_after_blocks_and_the_ledger_survives_a_restore() {
        let mut b = RequestBudget::new(10);
        b.acquire(UnixMillis(0)).unwrap();
        b.block_until(UnixMillis(5 * MIN));
        assert_eq!(b.acquire(UnixMillis(MIN)), Err(UnixMillis(5 * MIN)));
        assert_eq!(b.remaining(UnixMillis(MIN)), 0);
        let (sent, blocked) = b.ledger();
        let mut restored = RequestBudget::restore(10, sent, blocked, UnixMillis(MIN));
        assert_eq!(restored, b);
        assert_eq!(restored.acquire(UnixMillis(5 * MIN)), Ok(()));
        assert_eq!(restored.remaining(UnixMillis(5 * MIN)), 8);
    }
}
