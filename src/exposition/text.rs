//! Prometheus text format 0.0.4 from a [`Snapshot`], through the `prometheus` crate's encoder.
//!
//! Invariants: HELP and TYPE come from the catalogue; label names come from the catalogue in
//! its order; no timestamps (values change when a poll lands, not when scraped).

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use crate::catalogue::Kind;
use crate::catalogue::Snapshot;

/// `Content-Type` of the text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Converts a snapshot into the `prometheus` crate's model (families without samples omitted).
pub fn to_families(snapshot: &Snapshot) -> Vec<MetricFamily> {
    snapshot
        .families
        .iter()
        .filter(|f| !f.samples.is_empty())
        .map(|f| {
            let mut mf = MetricFamily::default();
            mf.set_name(f.family.name.to_string());
            mf.set_help(f.family.help.to_string());
            mf.set_field_type(match f.family.kind {
                Kind::Counter => MetricType::COUNTER,
                Kind::Gauge => MetricType::GAUGE,
            });
            let metrics = f
                .samples
                .iter()
                .map(|s| {
                    let labels = f
                        .family
                        .labels
                        .iter()
                        .zip(&s.labels)
                        .map(|(name, value)| {
                            let mut lp = LabelPair::default();
                            lp.set_name(name.to_string());
                            lp.set_value(value.clone());
                            lp
                        })
                        .collect();
                    let mut m = Metric::from_label(labels);
                    match f.family.kind {
                        Kind::Counter => {
                            let mut c = Counter::default();
                            c.set_value(s.value);
                            m.set_counter(c);
                        }
                        Kind::Gauge => {
                            let mut g = Gauge::default();
                            g.set_value(s.value);
                            m.set_gauge(g);
                        }
                    }
                    m
                })
                .collect();
            mf.set_metric(metrics);
            mf
        })
        .collect()
}

/// Encodes families as text format 0.0.4.
pub fn encode(families: &[MetricFamily]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * 1024);
    // The encoder only fails on empty families and writer errors; neither can happen here.
    if let Err(e) = TextEncoder::new().encode(families, &mut out) {
        tracing::error!(error = %e, "Encoding the exposition failed.");
    }
    out
}

/// The whole exposition of a snapshot.
pub fn render(snapshot: &Snapshot) -> Vec<u8> {
    encode(&to_families(snapshot))
}
