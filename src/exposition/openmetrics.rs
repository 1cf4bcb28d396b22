//! OpenMetrics 1.0 text: a family's metadata lines and timestamped sample lines, for
//! `backfill` (history placed in time) and any exposition that negotiates OpenMetrics.
//!
//! Invariants, from the OpenMetrics 1.0 specification
//! (<https://prometheus.io/docs/specs/om/open_metrics_spec/>):
//! - a counter family's `# TYPE` names it without `_total`, its samples carry `_total`;
//! - a gauge whose name ends in `_info` is an Info family: `# TYPE` without the suffix;
//! - a family whose name ends in `_seconds` has `# UNIT … seconds`, in `_bytes` `# UNIT … bytes`;
//! - metadata comes in the order TYPE, UNIT, HELP; HELP and label values escape `\`, `"` and
//!   newlines; timestamps are Unix seconds (milliseconds kept as a fraction);
//! - the exposition ends with `# EOF`.
//!
//! Grouping (families not interleaved, a series' points contiguous and in time order) is the
//! caller's: this module renders lines (and, for a scrape, whole families of a snapshot
//! without timestamps: [`write_family`]), it does not hold samples.

use std::fmt::Write as _;

use prometheus::proto::{MetricFamily, MetricType};

use super::text;
use crate::catalogue::{Family, FamilySamples, Kind, Sample};
use crate::decode::UnixMillis;

/// `Content-Type` of the OpenMetrics text exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The last line of every OpenMetrics exposition.
pub const EOF: &str = "# EOF\n";

/// What OpenMetrics calls a family's type (it has more than Prometheus' text format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OmType {
    Counter,
    Gauge,
    Info,
}

impl OmType {
    /// The type of a family of this sample name and Prometheus type.
    fn named(name: &str, kind: Kind) -> Self {
        match kind {
            Kind::Counter => OmType::Counter,
            Kind::Gauge if name.ends_with("_info") => OmType::Info,
            Kind::Gauge => OmType::Gauge,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            OmType::Counter => "counter",
            OmType::Gauge => "gauge",
            OmType::Info => "info",
        }
    }
}

/// The family's name in metadata lines: its sample name without the type's suffix.
pub fn family_name(family: &Family) -> &'static str {
    metadata_name(family.name, family.kind)
}

fn metadata_name(name: &str, kind: Kind) -> &str {
    let suffix = match OmType::named(name, kind) {
        OmType::Counter => "_total",
        OmType::Info => "_info",
        OmType::Gauge => "",
    };
    name.strip_suffix(suffix).unwrap_or(name)
}

/// The base units a family name may end in, as OpenMetrics spells them in `# UNIT`.
const UNITS: [&str; 2] = ["seconds", "bytes"];

/// The unit the family's name ends in (`_seconds`, `_bytes`), if any.
fn unit(name: &str) -> Option<&'static str> {
    UNITS.into_iter().find(|unit| {
        name.strip_suffix(unit)
            .is_some_and(|stem| stem.ends_with('_'))
    })
}

/// Appends the family's `# TYPE`, `# UNIT` (when its name ends in a unit) and `# HELP` lines.
pub fn write_metadata(family: &Family, out: &mut String) {
    write_metadata_of(family.name, family.kind, family.help, out);
}

/// [`write_metadata`] of a family known by its sample name, type and help text.
fn write_metadata_of(sample_name: &str, kind: Kind, help: &str, out: &mut String) {
    let name = metadata_name(sample_name, kind);
    let om_type = OmType::named(sample_name, kind);
    let _ = writeln!(out, "# TYPE {name} {}", om_type.as_str());
    if let Some(unit) = unit(name) {
        let _ = writeln!(out, "# UNIT {name} {unit}");
    }
    let _ = write!(out, "# HELP {name} ");
    escape_into(help, out);
    out.push('\n');
}

/// Appends `{name="value",…}` for the family's labels then the extra ones, or nothing when
/// there are none.
pub fn write_labels<'a>(
    names: impl IntoIterator<Item = &'a str>,
    values: impl IntoIterator<Item = &'a str>,
    out: &mut String,
) {
    let mut first = true;
    for (name, value) in names.into_iter().zip(values) {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        escape_into(value, out);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
}

/// Appends one sample line: the family's sample name, the rendered label set (from
/// [`write_labels`]), the value and the timestamp.
pub fn write_sample(family: &Family, labels: &str, value: f64, at: UnixMillis, out: &mut String) {
    out.push_str(family.name);
    out.push_str(labels);
    out.push(' ');
    write_value(value, out);
    out.push(' ');
    write_timestamp(at, out);
    out.push('\n');
}

/// A value as OpenMetrics spells it: integers without a fraction, others in Rust's shortest
/// round-tripping form, and the three non-finite values by name.
pub fn write_value(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Appends one family of a scrape: its metadata and a line per sample, without timestamps
/// (the values are as of the scrape); nothing when it has no sample.
pub fn write_family(f: &FamilySamples, out: &mut Vec<u8>) {
    if f.samples.is_empty() {
        return;
    }
    write_header(f.family, out);
    for sample in f.samples.iter() {
        write_sample_line(f.family, sample, out);
    }
}

/// Appends a family's metadata (`# TYPE`, `# UNIT`, `# HELP`), as [`write_family`] begins.
pub fn write_header(family: &Family, out: &mut Vec<u8>) {
    let mut metadata = String::new();
    write_metadata(family, &mut metadata);
    out.extend_from_slice(metadata.as_bytes());
}

/// Appends one sample's line of a scrape, without a timestamp.
pub fn write_sample_line(family: &Family, sample: Sample<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(family.name.as_bytes());
    text::write_labels(family.labels, sample.labels(), out);
    out.push(b' ');
    write_value_bytes(sample.value, out);
    out.push(b'\n');
}

/// Appends families of the `prometheus` crate's model (the `process_*` families, counters and
/// gauges) as [`write_family`] does; other types are left out (the crate's process collector
/// has none).
pub fn write_proto_families(families: &[MetricFamily], out: &mut Vec<u8>) {
    for mf in families {
        let kind = match mf.get_field_type() {
            MetricType::COUNTER => Kind::Counter,
            MetricType::GAUGE => Kind::Gauge,
            _ => continue,
        };
        if mf.get_metric().is_empty() {
            continue;
        }
        let mut metadata = String::new();
        write_metadata_of(mf.name(), kind, mf.help(), &mut metadata);
        out.extend_from_slice(metadata.as_bytes());
        for m in mf.get_metric() {
            let names: Vec<&str> = m.get_label().iter().map(|l| l.name()).collect();
            let values: Vec<String> = m
                .get_label()
                .iter()
                .map(|l| l.value().to_string())
                .collect();
            let value = match kind {
                Kind::Counter => m.get_counter().get_value(),
                Kind::Gauge => m.get_gauge().get_value(),
            };
            out.extend_from_slice(mf.name().as_bytes());
            text::write_labels(&names, values.iter().map(String::as_str), out);
            out.push(b' ');
            write_value_bytes(value, out);
            out.push(b'\n');
        }
    }
}

/// A value of a scrape: finite values as the text format spells them, the others by name.
fn write_value_bytes(value: f64, out: &mut Vec<u8>) {
    match non_finite(value) {
        Some(name) => out.extend_from_slice(name.as_bytes()),
        None => text::write_value(value, out),
    }
}

/// The OpenMetrics spelling of a value that is not a finite number.
fn non_finite(value: f64) -> Option<&'static str> {
    if value.is_nan() {
        Some("NaN")
    } else if value.is_infinite() {
        Some(if value > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        None
    }
}

/// Unix seconds, with the milliseconds as a fraction only when there are some.
pub fn write_timestamp(at: UnixMillis, out: &mut String) {
    let sign = if at.0 < 0 { "-" } else { "" };
    let (seconds, millis) = (at.0.unsigned_abs() / 1000, at.0.unsigned_abs() % 1000);
    if millis == 0 {
        let _ = write!(out, "{sign}{seconds}");
    } else {
        let _ = write!(out, "{sign}{seconds}.{millis:03}");
    }
}

/// Escapes `\`, `"` and line feeds, as OpenMetrics asks of HELP text and label values.
fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{self, Origin};

    fn family(name: &'static str, kind: Kind, help: &'static str) -> Family {
        Family {
            name,
            kind,
            help,
            labels: &["a"],
            default_cap: None,
            origin: Origin::Saved,
        }
    }

    fn metadata(f: &Family) -> String {
        let mut out = String::new();
        write_metadata(f, &mut out);
        out
    }

    #[test]
    fn metadata_follows_the_specifications_examples() {
        // The spec's counter example: `# TYPE foo counter` / `foo_total 17.0 1520879607.789`.
        let foo = family(
            "foo_total",
            Kind::Counter,
            "Some text and \n some \" escaping",
        );
        assert_eq!(
            metadata(&foo),
            "# TYPE foo counter\n# HELP foo Some text and \\n some \\\" escaping\n"
        );
        let mut line = String::new();
        write_sample(&foo, "", 17.0, UnixMillis(1_520_879_607_789), &mut line);
        assert_eq!(line, "foo_total 17 1520879607.789\n");
        // The spec's unit example: `# TYPE foo_seconds counter` / `# UNIT foo_seconds seconds`.
        let seconds = family("foo_seconds", Kind::Gauge, "When.");
        assert_eq!(
            metadata(&seconds),
            "# TYPE foo_seconds gauge\n# UNIT foo_seconds seconds\n# HELP foo_seconds When.\n"
        );
        // The spec's info example: `# TYPE foo info` / `foo_info{name="pretty name"} 1`.
        let info = family("foo_info", Kind::Gauge, "Names.");
        assert_eq!(metadata(&info), "# TYPE foo info\n# HELP foo Names.\n");
    }

    #[test]
    fn every_catalogue_family_gets_a_well_formed_type_line() {
        for f in catalogue::ALL {
            let text = metadata(f);
            let first = text.lines().next().unwrap();
            let name = family_name(f);
            assert!(f.name.starts_with(name), "{}", f.name);
            assert!(first.starts_with(&format!("# TYPE {name} ")), "{first}");
        }
    }

    #[test]
    fn labels_values_and_timestamps_are_spelled_as_openmetrics_asks() {
        let mut out = String::new();
        write_labels(["a", "b"], ["x", "escaping\" example \n \\"], &mut out);
        assert_eq!(out, r#"{a="x",b="escaping\" example \n \\"}"#);
        let mut none = String::new();
        write_labels([], [], &mut none);
        assert_eq!(none, "");
        let value = |v: f64| {
            let mut s = String::new();
            write_value(v, &mut s);
            s
        };
        assert_eq!(
            [
                0.0,
                3.0,
                0.25,
                -2.0,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY
            ]
            .map(value),
            ["0", "3", "0.25", "-2", "NaN", "+Inf", "-Inf"]
        );
        let at = |ms: i64| {
            let mut s = String::new();
            write_timestamp(UnixMillis(ms), &mut s);
            s
        };
        assert_eq!(
            [1_700_000_000_000, 1_700_000_000_007, -1500].map(at),
            ["1700000000", "1700000000.007", "-1.500"]
        );
    }

    #[test]
    fn a_scrapes_families_are_spelled_byte_for_byte_as_the_specification_asks() {
        use crate::catalogue::Snapshot;
        use prometheus::proto::{Counter, Gauge, Metric, MetricFamily, MetricType};
        let mut snapshot = Snapshot::default();
        snapshot.push(
            &catalogue::REPORT_INFO,
            [(vec!["r".into(), "Sales \"Q1\"".into(), "w".into()], 1.0)],
        );
        snapshot.push(&catalogue::EVENTS_PROCESSED, [(vec![], 7.0)]);
        snapshot.push(&catalogue::EVENTS_WATERMARK, [(vec![], f64::INFINITY)]);
        let mut out = Vec::new();
        for f in &snapshot.families {
            write_family(f, &mut out);
        }
        // The `prometheus` crate's process families: a counter and a gauge in bytes.
        let mut cpu = MetricFamily::default();
        cpu.set_name("process_cpu_seconds_total".into());
        cpu.set_help("CPU time.".into());
        cpu.set_field_type(MetricType::COUNTER);
        let mut c = Counter::default();
        c.set_value(1.5);
        let mut m = Metric::default();
        m.set_counter(c);
        cpu.set_metric(vec![m]);
        let mut rss = MetricFamily::default();
        rss.set_name("process_resident_memory_bytes".into());
        rss.set_help("RSS.".into());
        rss.set_field_type(MetricType::GAUGE);
        let mut g = Gauge::default();
        g.set_value(4096.0);
        let mut m = Metric::default();
        m.set_gauge(g);
        rss.set_metric(vec![m]);
        write_proto_families(&[cpu, rss], &mut out);
        let help = |f: &Family| f.help.replace('"', "\\\"");
        let want = format!(
            "# TYPE powerbi_report info\n# HELP powerbi_report {}\n\
             powerbi_report_info{{report_id=\"r\",report_name=\"Sales \\\"Q1\\\"\",workspace_id=\"w\"}} 1\n\
             # TYPE powerbi_events_processed counter\n# HELP powerbi_events_processed {}\n\
             powerbi_events_processed_total 7\n\
             # TYPE powerbi_events_watermark_timestamp_seconds gauge\n\
             # UNIT powerbi_events_watermark_timestamp_seconds seconds\n\
             # HELP powerbi_events_watermark_timestamp_seconds {}\n\
             powerbi_events_watermark_timestamp_seconds +Inf\n\
             # TYPE process_cpu_seconds counter\n# UNIT process_cpu_seconds seconds\n\
             # HELP process_cpu_seconds CPU time.\nprocess_cpu_seconds_total 1.5\n\
             # TYPE process_resident_memory_bytes gauge\n\
             # UNIT process_resident_memory_bytes bytes\n\
             # HELP process_resident_memory_bytes RSS.\nprocess_resident_memory_bytes 4096\n",
            help(&catalogue::REPORT_INFO),
            help(&catalogue::EVENTS_PROCESSED),
            help(&catalogue::EVENTS_WATERMARK),
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }
}
