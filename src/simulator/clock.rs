//! Time as the live source and the simulated tenant see it: the wall clock, or a simulated
//! clock that a test runs fast (a week of polling in seconds).
//!
//! Invariants: a [`SharedClock`] never goes backwards; a simulated clock moves only when
//! someone sleeps on it (or the test sets it forward), so every reader of one clock (the
//! source, the simulated tenant, the test) sees the same instant.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::decode::UnixMillis;

/// A sleep, boxed so the trait stays object-safe.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where "now" comes from, and how to wait.
pub trait Clock: Send + Sync {
    fn now(&self) -> UnixMillis;
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// The wall clock and tokio's timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        UnixMillis::now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that only moves when slept on: a sleep sets it forward at once (then yields, so
/// the other tasks run), so polling that would take a week takes as long as its requests.
#[derive(Debug)]
pub struct SimulatedClock {
    millis: AtomicI64,
}

impl SimulatedClock {
    pub fn starting_at(start: UnixMillis) -> Self {
        SimulatedClock {
            millis: AtomicI64::new(start.0),
        }
    }

    /// Sets the clock forward by `duration` (a restart's downtime, say).
    pub fn advance(&self, duration: Duration) {
        self.millis
            .fetch_add(duration_millis(duration), Ordering::SeqCst);
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> UnixMillis {
        UnixMillis(self.millis.load(Ordering::SeqCst))
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        self.advance(duration);
        Box::pin(tokio::task::yield_now())
    }
}

fn duration_millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// One clock shared by whoever needs the time; the wall clock by default.
#[derive(Clone)]
pub struct SharedClock(Arc<dyn Clock>);

impl SharedClock {
    pub fn system() -> Self {
        SharedClock(Arc::new(SystemClock))
    }

    pub fn new(clock: Arc<dyn Clock>) -> Self {
        SharedClock(clock)
    }

    pub fn now(&self) -> UnixMillis {
        self.0.now()
    }

    pub fn sleep(&self, duration: Duration) -> Sleep {
        self.0.sleep(duration)
    }

    /// Sleeps until `until` (at once when it has passed).
    pub fn sleep_until(&self, until: UnixMillis) -> Sleep {
        let wait = (until.0.saturating_sub(self.now().0)).max(0) as u64;
        self.sleep(Duration::from_millis(wait))
    }
}

impl Default for SharedClock {
    fn default() -> Self {
        SharedClock::system()
    }
}

impl std::fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedClock({})", self.now().to_iso_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_simulated_clock_moves_only_when_slept_on() {
        let sim = Arc::new(SimulatedClock::starting_at(UnixMillis(1_000)));
        let clock = SharedClock::new(sim.clone());
        assert_eq!(clock.now(), UnixMillis(1_000));
        clock.sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), UnixMillis(3_601_000));
        clock.sleep_until(UnixMillis(3_000_000)).await;
        assert_eq!(clock.now(), UnixMillis(3_601_000), "never backwards");
        sim.advance(Duration::from_millis(5));
        assert_eq!(clock.now(), UnixMillis(3_601_005));
    }
}
