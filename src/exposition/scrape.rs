//! The one composition of a scrape: every collector of the exporter walked into one
//! [`Snapshot`] in catalogue order, for `/metrics` (text) and the OTLP push alike.
//!
//! Invariants:
//! - a family is read from the route its catalogue [`Origin`] names and from no other: `Saved`
//!   families from [`Counted`] (the snapshot the last checkpoint published), `Live` families
//!   from the process's own collectors;
//! - until a checkpoint has been published there is nothing counted to serve, and the composition
//!   is empty (the web server's and the process's own families are still served);
//! - families come out in catalogue order, so the same values render byte-identically.

use std::sync::{Arc, PoisonError};

use crate::catalogue::{Collector, Origin, Snapshot};
use crate::state::Published;

/// A collector shared between the web server, the OTLP push and the parts that update it.
pub type SharedCollector = Arc<dyn Collector + Send + Sync>;

/// Walks `collectors` in order, then puts their families in catalogue order.
pub fn compose(collectors: &[&dyn Collector]) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for collector in collectors {
        collector.collect(&mut snapshot);
    }
    snapshot.sort_families();
    snapshot
}

/// Where the [`Origin::Saved`] families are read: the snapshot the last checkpoint published
/// (with `--state.dir`, the last saved one, so a restart never takes a served value back;
/// without, the last one built after a poll or a batch of documents), never the aggregator
/// itself, so a scrape never builds a snapshot.
pub struct Counted(pub Published);

impl Collector for Counted {
    fn collect(&self, out: &mut Snapshot) {
        let saved = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(snapshot) = saved.as_ref() {
            snapshot.collect(out);
        }
    }
}

/// Everything the exporter serves about its tenant and itself, apart from the web server's own
/// families: the counted families and the live stats, each family from the route its
/// [`Origin`] names.
pub struct Served {
    pub counted: Counted,
    /// Collectors of [`Origin::Live`] families.
    pub live: Vec<SharedCollector>,
}

impl Collector for Served {
    fn collect(&self, out: &mut Snapshot) {
        let mut counted = Snapshot::default();
        self.counted.collect(&mut counted);
        if counted.families.is_empty() {
            return;
        }
        let mut live = Snapshot::default();
        for collector in &self.live {
            collector.collect(&mut live);
        }
        // A family offered by the other route is left out, never served twice or from the
        // wrong instant: a mis-marked family disappears, which tests/it/origins.rs catches.
        let from_saved = counted
            .families
            .into_iter()
            .filter(|f| f.family.origin == Origin::Saved);
        let from_live = live
            .families
            .into_iter()
            .filter(|f| f.family.origin == Origin::Live);
        out.families.extend(from_saved.chain(from_live));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{self, Family};
    use std::sync::Mutex;

    /// Emits one sample (value `value`) for each of `families`.
    struct Fixed {
        families: Vec<&'static Family>,
        value: f64,
    }

    impl Collector for Fixed {
        fn collect(&self, out: &mut Snapshot) {
            for family in &self.families {
                let labels = vec![String::new(); family.labels.len()];
                out.push(family, [(labels, self.value)]);
            }
        }
    }

    fn fixed(families: Vec<&'static Family>, value: f64) -> SharedCollector {
        Arc::new(Fixed { families, value })
    }

    fn names(snapshot: &Snapshot) -> Vec<&'static str> {
        snapshot.families.iter().map(|f| f.family.name).collect()
    }

    #[test]
    fn compose_walks_every_collector_and_puts_families_in_catalogue_order() {
        let a = Fixed {
            families: vec![&catalogue::WEB_REJECTIONS, &catalogue::ACTIVE_USERS],
            value: 1.0,
        };
        let b = Fixed {
            families: vec![&catalogue::WORKSPACE_INFO, &catalogue::BUILD_INFO],
            value: 2.0,
        };
        let snapshot = compose(&[&a, &b]);
        assert_eq!(
            names(&snapshot),
            [
                "powerbi_active_users",
                "powerbi_exporter_build_info",
                "powerbi_web_rejections_total",
                "powerbi_workspace_info",
            ]
        );
        assert_eq!(
            snapshot.value("powerbi_workspace_info", &["", "", "", ""]),
            Some(2.0)
        );
    }

    #[test]
    fn each_family_is_read_from_the_route_its_origin_names() {
        // Both routes offer a Saved and a Live family; each is taken from its own route only.
        let both = vec![&catalogue::EVENTS_PROCESSED, &catalogue::FORWARD_BACKLOG];
        let published: Published = Arc::new(Mutex::new(None));
        let served = Served {
            counted: Counted(published.clone()),
            live: vec![fixed(both.clone(), 7.0)],
        };
        assert!(
            compose(&[&served]).families.is_empty(),
            "nothing saved yet, nothing served"
        );
        let mut saved = Snapshot::default();
        Fixed {
            families: both,
            value: 3.0,
        }
        .collect(&mut saved);
        *published.lock().unwrap() = Some(saved);
        let snapshot = compose(&[&served]);
        assert_eq!(
            names(&snapshot),
            [
                "powerbi_events_processed_total",
                "powerbi_forward_backlog_events"
            ]
        );
        assert_eq!(
            snapshot.value("powerbi_events_processed_total", &[]),
            Some(3.0)
        );
        assert_eq!(
            snapshot.value("powerbi_forward_backlog_events", &[""]),
            Some(7.0)
        );
    }
}
