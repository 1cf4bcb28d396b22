//! The throughput group: what became of every event read. Families
//! `powerbi_events_processed_total`, `powerbi_events_duplicate_total`,
//! `powerbi_events_filtered_total`, `powerbi_events_rejected_total`,
//! `powerbi_event_field_type_mismatches_total`, `powerbi_pages_processed_total`,
//! `powerbi_pages_failed_total` and `powerbi_events_watermark_timestamp_seconds`.
//!
//! Invariants:
//! - every event read is processed once and then counted, a duplicate, left out
//!   ([`LeftOut`]) or rejected ([`Rejection`]):
//!   `processed = Σ activity_events + duplicate + Σ filtered + Σ rejected`;
//! - every reason is exposed, zeros included, so a rate over any reason always has a series;
//! - the watermark only moves forward.

use super::counts_by_name;
use super::filter::FilterReason;
use super::labels::{self, label_set, Reason};
use crate::catalogue::{self, Snapshot};
use crate::decode::{Rejection, TypedField, UnixMillis};

label_set!(
    /// An event field the API sends with a fixed JSON type.
    FieldLabel { field } for FIELD_TYPE_MISMATCHES
);

/// Why a new event was left out of the usage families: the `reason` of
/// `powerbi_events_filtered_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOut {
    /// The exporter's own read of the activity log (`--powerbi.count-own-exports`).
    OwnExport,
    /// A scoping filter (`--filter.*`).
    Filter(FilterReason),
}

impl LeftOut {
    pub const ALL: [LeftOut; 1 + FilterReason::ALL.len()] = [
        LeftOut::Filter(FilterReason::ALL[0]),
        LeftOut::Filter(FilterReason::ALL[1]),
        LeftOut::Filter(FilterReason::ALL[2]),
        LeftOut::Filter(FilterReason::ALL[3]),
        LeftOut::Filter(FilterReason::ALL[4]),
        LeftOut::OwnExport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LeftOut::OwnExport => "own_export",
            LeftOut::Filter(reason) => reason.as_str(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Throughput {
    processed: u64,
    duplicates: u64,
    rejected: [u64; Rejection::ALL.len()],
    own_exports: u64,
    /// By [`FilterReason::index`].
    filtered: [u64; FilterReason::ALL.len()],
    /// New events with an optional field of an unexpected type, by [`TypedField`].
    field_type_mismatches: [u64; TypedField::ALL.len()],
    pages_processed: u64,
    pages_failed: u64,
    watermark: Option<UnixMillis>,
}

/// The durable form of [`Throughput`] (saved under the keys [`super::state_file`] names);
/// reasons are saved by name, so a reason added later loads as 0.
#[derive(Debug, Clone, PartialEq)]
pub struct ThroughputState {
    pub(super) processed: u64,
    pub(super) duplicates: u64,
    pub(super) filtered_own_exports: u64,
    pub(super) filtered: Vec<(String, u64)>,
    pub(super) field_type_mismatches: Vec<(String, u64)>,
    pub(super) rejected: Vec<(String, u64)>,
    pub(super) pages_processed: u64,
    pub(super) pages_failed: u64,
    pub(super) watermark: Option<UnixMillis>,
}

impl ThroughputState {
    /// Newest `CreationTime` counted before the save.
    pub fn watermark(&self) -> Option<UnixMillis> {
        self.watermark
    }
}

impl Throughput {
    /// One more event read.
    pub fn processed(&mut self) {
        self.processed += 1;
    }

    pub fn duplicate(&mut self) {
        self.duplicates += 1;
    }

    pub fn rejected(&mut self, reason: Rejection) {
        let i = Rejection::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.rejected[i] += 1;
    }

    pub fn left_out(&mut self, reason: LeftOut) {
        match reason {
            LeftOut::OwnExport => self.own_exports += 1,
            LeftOut::Filter(reason) => self.filtered[reason.index()] += 1,
        }
    }

    /// A new event with fields of an unexpected type ([`TypedField::bit`]s).
    pub fn count_field_type_mismatches(&mut self, bits: u8) {
        for (n, field) in self.field_type_mismatches.iter_mut().zip(TypedField::ALL) {
            *n += u64::from(bits & field.bit() != 0);
        }
    }

    /// Counts one source document as finished, read to its end or not.
    pub fn document_done(&mut self, complete: bool) {
        if complete {
            self.pages_processed += 1;
        } else {
            self.pages_failed += 1;
        }
    }

    /// A counted event's time; answers whether it moved the watermark.
    pub fn advance(&mut self, time: UnixMillis) -> bool {
        let newer = self.watermark.is_none_or(|w| time > w);
        if newer {
            self.watermark = Some(time);
        }
        newer
    }

    /// Newest `CreationTime` counted.
    pub fn watermark(&self) -> Option<UnixMillis> {
        self.watermark
    }

    /// Events read so far (accepted, duplicate and rejected).
    pub fn processed_count(&self) -> u64 {
        self.processed
    }

    pub fn render(&self, out: &mut Snapshot) {
        use catalogue::*;
        labels::push_value(out, &EVENTS_PROCESSED, self.processed as f64);
        labels::push_value(out, &EVENTS_DUPLICATE, self.duplicates as f64);
        let left_out = LeftOut::ALL.iter().map(|r| {
            let n = match r {
                LeftOut::OwnExport => self.own_exports,
                LeftOut::Filter(f) => self.filtered[f.index()],
            };
            (reason(r.as_str()), n as f64)
        });
        labels::push(out, &EVENTS_FILTERED, left_out);
        let rejected = Rejection::ALL.iter().zip(self.rejected);
        let rejected = rejected.map(|(r, n)| (reason(r.as_str()), n as f64));
        labels::push(out, &EVENTS_REJECTED, rejected);
        let fields = TypedField::ALL
            .iter()
            .zip(self.field_type_mismatches)
            .map(|(f, n)| {
                let field = f.as_str().to_string();
                (FieldLabel { field }, n as f64)
            });
        labels::push(out, &FIELD_TYPE_MISMATCHES, fields);
        labels::push_value(out, &PAGES_FAILED, self.pages_failed as f64);
        labels::push_value(out, &PAGES_PROCESSED, self.pages_processed as f64);
        if let Some(w) = self.watermark {
            labels::push_value(out, &EVENTS_WATERMARK, w.as_secs_f64());
        }
    }

    pub fn export(&self) -> ThroughputState {
        let named = |names: &[&str], counts: &[u64]| -> Vec<(String, u64)> {
            names
                .iter()
                .zip(counts)
                .map(|(name, n)| (name.to_string(), *n))
                .collect()
        };
        let filter_names = FilterReason::ALL.map(FilterReason::as_str);
        let field_names = TypedField::ALL.map(TypedField::as_str);
        let rejection_names = Rejection::ALL.map(Rejection::as_str);
        ThroughputState {
            processed: self.processed,
            duplicates: self.duplicates,
            filtered_own_exports: self.own_exports,
            filtered: named(&filter_names, &self.filtered),
            field_type_mismatches: named(&field_names, &self.field_type_mismatches),
            rejected: named(&rejection_names, &self.rejected),
            pages_processed: self.pages_processed,
            pages_failed: self.pages_failed,
            watermark: self.watermark,
        }
    }

    pub fn import(state: ThroughputState) -> Self {
        let filter_names = FilterReason::ALL.iter().map(|r| r.as_str());
        let rejection_names = Rejection::ALL.iter().map(|r| r.as_str());
        Throughput {
            processed: state.processed,
            duplicates: state.duplicates,
            rejected: counts_by_name(rejection_names, &state.rejected),
            own_exports: state.filtered_own_exports,
            filtered: counts_by_name(filter_names, &state.filtered),
            field_type_mismatches: counts_by_name(
                TypedField::ALL.iter().map(|f| f.as_str()),
                &state.field_type_mismatches,
            ),
            pages_processed: state.pages_processed,
            pages_failed: state.pages_failed,
            watermark: state.watermark,
        }
    }
}

fn reason(reason: &str) -> Reason {
    Reason {
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_left_out_reason_is_listed_once() {
        for r in FilterReason::ALL {
            let n = LeftOut::ALL.iter().filter(|l| **l == LeftOut::Filter(r));
            assert_eq!(n.count(), 1, "{}", r.as_str());
        }
        assert!(LeftOut::ALL.contains(&LeftOut::OwnExport));
    }
}
