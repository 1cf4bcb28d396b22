//! The counted families read live, when there is no state directory to serve them from:
//! the aggregator as a scrape-time [`Collector`] (a thin adapter over
//! [`Aggregator::snapshot`], at the reference the source's timing calls for), and the source's
//! last reported status.
//!
//! It sits in the state stage because that is the first stage that knows both the aggregator
//! and the source, which do not know each other.

use std::sync::{Arc, Mutex, PoisonError};

use super::SharedSourceState;
use crate::aggregate::{Aggregator, Reference};
use crate::catalogue::{Collector, Snapshot};
use crate::decode::UnixMillis;
use crate::source::Timing;

/// The reference of a snapshot taken now: the newest event for replayed history (results do
/// not depend on when), the wall clock for live and simulated sources.
pub fn reference_now(timing: Timing) -> Reference {
    match timing {
        Timing::Historical => Reference::NewestEvent,
        Timing::Live => Reference::WallClock(UnixMillis::now()),
    }
}

/// The aggregator shared with the pipeline, read as of each scrape.
pub struct LiveAggregator {
    pub aggregator: Arc<Mutex<Aggregator>>,
    pub timing: Timing,
}

impl Collector for LiveAggregator {
    fn collect(&self, out: &mut Snapshot) {
        let snapshot = self
            .aggregator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .snapshot(reference_now(self.timing));
        out.families.extend(snapshot.families);
    }
}

/// The source's self metrics, read from the status it last reported.
pub struct LiveSourceStatus(pub SharedSourceState);

impl Collector for LiveSourceStatus {
    fn collect(&self, out: &mut Snapshot) {
        let source = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(status) = &source.status {
            status.collect(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::AggregateConfig;
    use crate::catalogue::Origin;

    #[test]
    fn every_family_of_the_aggregator_is_saved_with_the_state() {
        let collector = LiveAggregator {
            aggregator: Arc::new(Mutex::new(Aggregator::new(&AggregateConfig::default()))),
            timing: Timing::Historical,
        };
        let mut out = Snapshot::default();
        collector.collect(&mut out);
        assert!(out.families.len() > 20, "{out:?}");
        let live: Vec<_> = out
            .families
            .iter()
            .filter(|f| f.family.origin != Origin::Saved)
            .map(|f| f.family.name)
            .collect();
        assert!(live.is_empty(), "counted families marked live: {live:?}");
    }
}
