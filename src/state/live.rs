//! The reference a snapshot of the counted families is taken at, as the source's timing calls
//! for: the checkpoints' snapshots and the status page use it.
//!
//! It sits in the state stage because that is the first stage that knows both the aggregator
//! and the source, which do not know each other.

use crate::aggregate::Reference;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AggregateConfig, Aggregator};
    use crate::catalogue::Origin;

    #[test]
    fn every_family_of_the_aggregator_is_saved_with_the_state() {
        let out = Aggregator::new(&AggregateConfig::default())
            .snapshot(reference_now(Timing::Historical));
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
