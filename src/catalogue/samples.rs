//! The sample model every collector fills and every exposition reads: label values in the
//! catalogue's label order, grouped by family.
//!
//! Invariants:
//! - a sample has exactly one value per label of its family; [`Snapshot::push`] sorts a
//!   family's samples by label values, and [`Snapshot::sort_families`] puts families in
//!   catalogue order, so two renders of the same values are byte-identical;
//! - a family's samples never change once pushed: they are shared (`Arc`), so a snapshot kept
//!   for `/metrics` is copied into each scrape's composition without copying a label, and the
//!   exposition can tell a family it has already rendered by its samples' address;
//! - a family's samples are stored by column, not as a string per label per sample: each
//!   distinct label value once in one text, each sample as its values' indices and its value
//!   (issue 15: the published snapshot of a large tenant held ~170 bytes a sample in owned
//!   strings; this holds 8 + 4 per label, plus the distinct values once).

use std::fmt;
use std::sync::Arc;

use super::Family;

/// The samples of one family, by column: distinct label values once, then per sample the
/// indices of its values and its value. Read them with [`Samples::iter`].
#[derive(Clone, PartialEq, Default)]
pub struct Samples {
    /// Labels per sample (the family's label count).
    width: usize,
    /// Every distinct label value, each once, one after the other.
    text: String,
    /// End in `text` of each distinct value; it starts where the one before ends.
    ends: Vec<u32>,
    /// `width` indices into `ends` per sample, sample after sample.
    labels: Vec<u32>,
    values: Vec<f64>,
}

/// One sample, borrowed from its family's [`Samples`].
#[derive(Clone, Copy)]
pub struct Sample<'a> {
    samples: &'a Samples,
    index: usize,
    pub value: f64,
}

impl<'a> Sample<'a> {
    /// The label values, in the catalogue's label order.
    pub fn labels(&self) -> impl ExactSizeIterator<Item = &'a str> + Clone + 'a {
        let samples = self.samples;
        let at = self.index * samples.width;
        (samples.labels[at..at + samples.width].iter()).map(move |&v| samples.value_text(v))
    }

    /// The value of the `i`-th label, in the catalogue's order (`""` past the last).
    pub fn label(&self, i: usize) -> &'a str {
        self.labels().nth(i).unwrap_or("")
    }
}

impl fmt::Debug for Sample<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sample")
            .field("labels", &self.labels().collect::<Vec<_>>())
            .field("value", &self.value)
            .finish()
    }
}

impl fmt::Debug for Samples {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Samples {
    /// Samples of `width` labels each, sorted by label values (the order of `Vec<String>`).
    fn sorted(width: usize, mut rows: Vec<(Vec<String>, f64)>) -> Samples {
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Samples {
            width,
            labels: Vec::with_capacity(rows.len() * width),
            values: Vec::with_capacity(rows.len()),
            ..Samples::default()
        };
        let mut known: hashbrown::HashMap<&str, u32> = hashbrown::HashMap::new();
        for (labels, value) in &rows {
            for label in labels {
                let next = out.ends.len() as u32;
                let id = *known.entry(label.as_str()).or_insert(next);
                if id == next {
                    out.text.push_str(label);
                    out.ends.push(out.text.len() as u32);
                }
                out.labels.push(id);
            }
            out.values.push(*value);
        }
        out.text.shrink_to_fit();
        out.ends.shrink_to_fit();
        out
    }

    fn value_text(&self, id: u32) -> &str {
        let id = id as usize;
        let start = if id == 0 {
            0
        } else {
            self.ends[id - 1] as usize
        };
        &self.text[start..self.ends[id] as usize]
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The `index`-th sample, in label order.
    pub fn get(&self, index: usize) -> Option<Sample<'_>> {
        (self.values.get(index)).map(|&value| Sample {
            samples: self,
            index,
            value,
        })
    }

    /// The samples in label order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            samples: self,
            next: 0,
        }
    }

    /// Heap bytes held: the text of the distinct values, their ends, the indices and values
    /// (capacities, not the allocator's rounding).
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity()
            + 4 * self.ends.capacity()
            + 4 * self.labels.capacity()
            + 8 * self.values.capacity()
    }
}

/// The samples of a family in label order.
pub struct Iter<'a> {
    samples: &'a Samples,
    next: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Sample<'a>;
    fn next(&mut self) -> Option<Sample<'a>> {
        let sample = self.samples.get(self.next)?;
        self.next += 1;
        Some(sample)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.samples.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The samples of one family, sorted by label values; shared, never changed once pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilySamples {
    pub family: &'static Family,
    pub samples: SharedSamples,
}

/// A family's samples, shared by every copy of the snapshot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SharedSamples(pub Arc<Samples>);

impl std::ops::Deref for SharedSamples {
    type Target = Samples;
    fn deref(&self) -> &Samples {
        &self.0
    }
}

impl<'a> IntoIterator for &'a SharedSamples {
    type Item = Sample<'a>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.0.iter()
    }
}

/// Every family's samples at one instant.
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
        let rows: Vec<(Vec<String>, f64)> = samples.into_iter().collect();
        debug_assert!(
            rows.iter().all(|s| s.0.len() == family.labels.len()),
            "{}",
            family.name
        );
        let samples = Samples::sorted(family.labels.len(), rows);
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
            .find(|s| s.labels().eq(labels.iter().copied()))
            .map(|s| s.value)
    }

    pub fn family(&self, name: &str) -> Option<&FamilySamples> {
        self.families.iter().find(|f| f.family.name == name)
    }

    /// Heap bytes held by the families' samples (each shared family counted once here).
    pub fn heap_bytes(&self) -> usize {
        (self.families.iter())
            .map(|f| f.samples.heap_bytes() + std::mem::size_of::<Samples>())
            .sum()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue;

    #[test]
    fn samples_read_back_sorted_with_their_own_labels_and_values() {
        let rows = [
            (["w2", "ViewReport"], 1.0),
            (["w1", "ExportReport"], 2.0),
            (["w1", ""], 3.0),
            (["w10", "ViewReport"], 4.0),
            (["w1", "ViewReport"], 5.0),
        ];
        let mut s = Snapshot::default();
        let owned = rows.map(|(l, v)| (l.map(str::to_string).to_vec(), v));
        s.push(&catalogue::ACTIVITY_EVENTS, owned.clone());
        let mut want = owned.to_vec();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        let family = s.family("powerbi_activity_events_total").unwrap();
        let got: Vec<(Vec<String>, f64)> = (family.samples.iter())
            .map(|s| (s.labels().map(str::to_string).collect(), s.value))
            .collect();
        assert_eq!(got, want);
        // Each distinct label value is held once.
        let distinct: std::collections::BTreeSet<&str> =
            rows.iter().flat_map(|(l, _)| l.iter().copied()).collect();
        assert_eq!(family.samples.ends.len(), distinct.len());
        let text_len: usize = distinct.iter().map(|v| v.len()).sum();
        assert_eq!(family.samples.text.len(), text_len);
        assert_eq!(family.samples.get(2).unwrap().label(1), "ViewReport");
        assert_eq!(
            s.value("powerbi_activity_events_total", &["w1", ""]),
            Some(3.0)
        );
        assert_eq!(
            s.value("powerbi_activity_events_total", &["w1", "w1"]),
            None
        );
    }
}
