//! The sample model every collector fills and every exposition reads: owned label values in
//! the catalogue's label order, grouped by family.
//!
//! Invariants: a sample has exactly one value per label of its family; [`Snapshot::push`]
//! sorts a family's samples by label values, and [`Snapshot::sort_families`] puts families in
//! catalogue order, so two renders of the same values are byte-identical. A family's samples
//! never change once pushed: they are shared (`Arc`), so a snapshot kept for `/metrics` is
//! copied into each scrape's composition without copying a label, and the exposition can tell
//! a family it has already rendered by its samples' address.

use std::sync::Arc;

use super::Family;

/// One sample: label values in the catalogue's label order, and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<String>,
    pub value: f64,
}

/// The samples of one family, sorted by label values; shared, never changed once pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilySamples {
    pub family: &'static Family,
    pub samples: SharedSamples,
}

/// A family's samples, shared by every copy of the snapshot (read them as a slice).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SharedSamples(pub Arc<Vec<Sample>>);

impl std::ops::Deref for SharedSamples {
    type Target = [Sample];
    fn deref(&self) -> &[Sample] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a SharedSamples {
    type Item = &'a Sample;
    type IntoIter = std::slice::Iter<'a, Sample>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Owned copy of every family's samples at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub families: Vec<FamilySamples>,
}

impl Snapshot {
    /// Puts the families in catalogue order.
    pub fn sort_families(&mut self) {
        self.families
            .sort_by_key(|f| super::ALL.iter().position(|c| c.name == f.family.name));
    }

    pub fn push(
        &mut self,
        family: &'static Family,
        samples: impl IntoIterator<Item = (Vec<String>, f64)>,
    ) {
        let mut samples: Vec<Sample> = samples
            .into_iter()
            .map(|(labels, value)| Sample { labels, value })
            .collect();
        debug_assert!(
            samples
                .iter()
                .all(|s| s.labels.len() == family.labels.len()),
            "{}",
            family.name
        );
        samples.sort_by(|a, b| a.labels.cmp(&b.labels));
        self.families.push(FamilySamples {
            family,
            samples: SharedSamples(Arc::new(samples)),
        });
    }

    /// The value of the sample of `family` with exactly these label values.
    pub fn value(&self, family: &str, labels: &[&str]) -> Option<f64> {
        self.family(family)?
            .samples
            .iter()
            .find(|s| {
                s.labels
                    .iter()
                    .map(String::as_str)
                    .eq(labels.iter().copied())
            })
            .map(|s| s.value)
    }

    pub fn family(&self, name: &str) -> Option<&FamilySamples> {
        self.families.iter().find(|f| f.family.name == name)
    }
}

/// A part of the exporter that contributes metric families when `/metrics` is scraped or
/// metrics are pushed over OTLP: the aggregator, forwarding, the checkpoints, the OTLP push and
/// the web server each implement it for the families they own, and the exposition composes
/// them (reading each family from the route its [`super::Origin`] names).
pub trait Collector {
    /// Appends this collector's families to `out`; the exposition puts them in catalogue order.
    fn collect(&self, out: &mut Snapshot);
}

/// A snapshot taken earlier (e.g. the last saved checkpoint) contributes its families as they
/// were.
impl Collector for Snapshot {
    fn collect(&self, out: &mut Snapshot) {
        out.families.extend(self.families.iter().cloned());
    }
}
