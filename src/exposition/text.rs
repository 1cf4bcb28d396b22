//! Prometheus text format 0.0.4 from a [`Snapshot`], written straight into bytes: no owned
//! label pair, no protobuf message, no `String` per sample. The `prometheus` crate's model
//! ([`to_families`]) is still built for the OTLP push and the `process_*` families.
//!
//! Invariants:
//! - the bytes are those of the `prometheus` crate's `TextEncoder` for the same families
//!   (HELP escapes `\` and newlines, label values also `"`; values as Rust's `f64` Display;
//!   families without samples omitted), so the format did not change when the encoder did;
//! - HELP and TYPE come from the catalogue; label names come from the catalogue in its order;
//!   no timestamps (values change when a poll lands, not when scraped).

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use crate::catalogue::{Family, FamilySamples, Kind, Sample, Snapshot};

/// `Content-Type` of the text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Converts a snapshot into the `prometheus` crate's model (families without samples omitted).
pub fn to_families(snapshot: &Snapshot) -> Vec<MetricFamily> {
    snapshot
        .families
        .iter()
        .filter(|f| !f.samples.is_empty())
        .map(to_family)
        .collect()
}

fn to_family(f: &FamilySamples) -> MetricFamily {
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
                .zip(s.labels())
                .map(|(name, value)| {
                    let mut lp = LabelPair::default();
                    lp.set_name(name.to_string());
                    lp.set_value(value.to_string());
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
}

/// Encodes families of the `prometheus` crate's model (the `process_*` families) as text
/// format 0.0.4.
pub fn encode(families: &[MetricFamily]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 * 1024);
    // The encoder only fails on empty families and writer errors; neither can happen here.
    if let Err(e) = TextEncoder::new().encode(families, &mut out) {
        tracing::error!(error = %e, "Encoding the exposition failed.");
    }
    out
}

/// The whole exposition of a snapshot.
pub fn render(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * 1024);
    for family in &snapshot.families {
        write_family(family, &mut out);
    }
    out
}

/// Appends one family: `# HELP`, `# TYPE` and a line per sample; nothing when it has no sample.
pub fn write_family(f: &FamilySamples, out: &mut Vec<u8>) {
    if f.samples.is_empty() {
        return;
    }
    write_header(f.family, out);
    for sample in f.samples.iter() {
        write_sample_line(f.family, sample, out);
    }
}

/// Appends a family's `# HELP` and `# TYPE`, as [`write_family`] begins.
pub fn write_header(family: &Family, out: &mut Vec<u8>) {
    if !family.help.is_empty() {
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(family.name.as_bytes());
        out.push(b' ');
        escape(family.help, false, out);
        out.push(b'\n');
    }
    out.extend_from_slice(b"# TYPE ");
    out.extend_from_slice(family.name.as_bytes());
    out.extend_from_slice(match family.kind {
        Kind::Counter => b" counter\n",
        Kind::Gauge => b" gauge\n",
    });
}

/// Appends one sample's line.
pub fn write_sample_line(family: &Family, sample: Sample<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(family.name.as_bytes());
    write_labels(family.labels, sample.labels(), out);
    out.push(b' ');
    write_value(sample.value, out);
    out.push(b'\n');
}

/// `{name="value",…}`, or nothing for a family without labels.
pub fn write_labels<'v>(
    names: &[&str],
    values: impl IntoIterator<Item = &'v str>,
    out: &mut Vec<u8>,
) {
    let mut separator = b'{';
    for (name, value) in names.iter().zip(values) {
        out.push(separator);
        separator = b',';
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"=\"");
        escape(value, true, out);
        out.push(b'"');
    }
    if separator == b',' {
        out.push(b'}');
    }
}

/// A value as Rust's `f64` Display spells it (`5`, `0.25`, `NaN`, `inf`), which is what the
/// `prometheus` crate writes; whole numbers, nearly all values here, take a faster path.
pub fn write_value(value: f64, out: &mut Vec<u8>) {
    // Below 2^53 every whole f64 is exact as an integer, and Display prints it without a
    // fraction; -0 keeps its sign in Display, so it takes the slow path.
    if value.fract() == 0.0 && value.abs() < 9.0e15 && !(value == 0.0 && value.is_sign_negative()) {
        if value < 0.0 {
            out.push(b'-');
        }
        write_integer(value.abs() as u64, out);
    } else {
        use std::io::Write as _;
        let _ = write!(out, "{value}");
    }
}

/// Decimal digits of `n`, without the formatting machinery.
fn write_integer(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Escapes `\` and newlines, and `"` when `quote` (label values), as the text format asks.
fn escape(text: &str, quote: bool, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let next = |from: usize| {
        let rest = &bytes[from..];
        if quote {
            memchr::memchr3(b'\\', b'\n', b'"', rest)
        } else {
            memchr::memchr2(b'\\', b'\n', rest)
        }
        .map(|i| from + i)
    };
    while let Some(i) = next(start) {
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(match bytes[i] {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            _ => b"\\\"",
        });
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{self, Family, Origin};

    /// The `prometheus` crate's encoding of the same snapshot: the format this module replaced.
    fn through_the_prometheus_crate(snapshot: &Snapshot) -> String {
        String::from_utf8(encode(&to_families(snapshot))).unwrap()
    }

    const ODD: Family = Family {
        name: "odd_total",
        kind: Kind::Counter,
        help: "Back\\slash, \"quotes\"\nand a newline.",
        labels: &["a", "b"],
        default_cap: None,
        origin: Origin::Saved,
    };

    #[test]
    fn the_bytes_are_those_of_the_prometheus_crate() {
        let mut snapshot = Snapshot::default();
        let odd_values = [
            0.0,
            -0.0,
            5.0,
            -3.0,
            0.25,
            1e15,
            1.5e300,
            9_007_199_254_740_993.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1_700_000_000.123,
        ];
        snapshot.push(
            &ODD,
            odd_values.iter().enumerate().map(|(i, v)| {
                let labels = vec![format!("{i}\\\"\n\u{1}é"), String::new()];
                (labels, *v)
            }),
        );
        snapshot.push(&catalogue::EVENTS_PROCESSED, [(vec![], 12.0)]);
        snapshot.push(&catalogue::REPORT_INFO, []);
        let ours = String::from_utf8(render(&snapshot)).unwrap();
        assert_eq!(ours, through_the_prometheus_crate(&snapshot));
        assert!(
            ours.contains("odd_total{a=\"1\\\\\\\"\\n\u{1}é\",b=\"\"} -0\n"),
            "{ours}"
        );
        assert!(
            !ours.contains("powerbi_report_info"),
            "an empty family is left out"
        );
    }
}
