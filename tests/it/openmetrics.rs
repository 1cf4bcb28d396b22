//! `/metrics` in OpenMetrics 1.0.0 when the scraper asks for it (`Accept`, as Prometheus
//! sends it), text 0.0.4 otherwise: the same samples in both; OpenMetrics' rules (counters'
//! `# TYPE` on the name without `_total`, `# UNIT` for `_seconds`, `# EOF`) checked line by
//! line from the specification (<https://prometheus.io/docs/specs/om/open_metrics_spec/>);
//! gzip read by a single-member reader; promtool on the text format; a real Prometheus
//! scraping the OpenMetrics body.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use crate::support::*;

/// What Prometheus 2.x sends (scrape/scrape.go, `scrapeAcceptHeader`).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The replay fixtures served to their end, without the `process_*` families (they change
/// between two scrapes).
fn replayed() -> Exporter {
    let e = Exporter::start(&[
        "--replay",
        fixtures().to_str().unwrap(),
        "--web.disable-exporter-metrics",
    ]);
    e.wait_ready();
    // The replay is done when two scrapes a moment apart agree.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = get(&e, None, false).1;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = get(&e, None, false).1;
        if now == last {
            return e;
        }
        assert!(Instant::now() < deadline, "the replay did not settle");
        last = now;
    }
}

/// `Content-Type`, and the body (unpacked with a single-member gzip reader when `gzip`).
fn get(e: &Exporter, accept: Option<&str>, gzip: bool) -> (String, String) {
    let mut request = http().get(e.url("/metrics"));
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    if gzip {
        request = request.header("Accept-Encoding", "gzip");
    }
    let resp = request.send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    let encoding = resp.headers().get("content-encoding").cloned();
    let bytes = resp.bytes().unwrap();
    let body = if gzip {
        assert_eq!(encoding.unwrap(), "gzip");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        text
    } else {
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    (content_type, body)
}

/// Checks the OpenMetrics rules the exposition relies on, line by line; returns the sample
/// lines' count.
fn check_openmetrics(body: &str) -> usize {
    assert!(body.ends_with("\n# EOF\n"), "ends with # EOF");
    assert_eq!(body.matches("# EOF").count(), 1);
    let mut family: Option<(String, String)> = None;
    let mut samples = 0;
    for line in body.lines().filter(|l| *l != "# EOF") {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            family = Some((name.to_string(), kind.to_string()));
            continue;
        }
        let (name, kind) = family.clone().expect("a # TYPE before anything else");
        if let Some(rest) = line.strip_prefix("# UNIT ") {
            let (unit_of, unit) = rest.split_once(' ').unwrap();
            assert_eq!(unit_of, name);
            assert!(name.ends_with(&format!("_{unit}")), "{line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(rest.starts_with(&format!("{name} ")), "{line}");
            continue;
        }
        // A sample: its name is the family's with the type's suffix.
        let sample_name = line.split(['{', ' ']).next().unwrap();
        let want = match kind.as_str() {
            "counter" => format!("{name}_total"),
            "info" => format!("{name}_info"),
            "gauge" => name.clone(),
            other => panic!("unexpected type {other}"),
        };
        assert_eq!(sample_name, want, "{line}");
        if kind == "counter" {
            assert!(
                !name.ends_with("_total"),
                "# TYPE names the family without _total"
            );
        }
        samples += 1;
    }
    // Every family whose name ends in _seconds has its # UNIT line.
    for line in body.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line["# TYPE ".len()..].split(' ').next().unwrap();
        if name.ends_with("_seconds") {
            assert!(
                body.contains(&format!("\n# UNIT {name} seconds\n")),
                "{name} has no # UNIT"
            );
        }
    }
    samples
}

#[test]
fn openmetrics_is_served_when_asked_and_carries_the_samples_of_the_text_format() {
    let e = replayed();
    let (text_type, text) = get(&e, None, false);
    assert_eq!(text_type, TEXT);
    assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
    promtool_check_metrics(&text);
    assert_eq!(get(&e, Some("text/plain;version=0.0.4"), false).1, text);

    let (om_type, om) = get(&e, Some(PROMETHEUS_ACCEPT), false);
    assert_eq!(om_type, OPENMETRICS);
    let om_samples = check_openmetrics(&om);
    // The same samples, names and values in both formats.
    let (in_text, in_om) = (samples(&text), samples(&om));
    assert_eq!(in_om, in_text);
    assert_eq!(om_samples, in_text.len());
    assert!(om.contains("\n# TYPE powerbi_events_processed counter\n"));
    assert!(om.contains("\n# TYPE powerbi_report info\n"));
    assert!(om.contains("\n# UNIT powerbi_events_watermark_timestamp_seconds seconds\n"));

    // gzip: one member, read whole by a reader that stops after the first.
    for (accept, plain) in [(None, &text), (Some(PROMETHEUS_ACCEPT), &om)] {
        assert_eq!(&get(&e, accept, true).1, plain);
    }
}

#[test]
fn a_real_prometheus_scrapes_the_openmetrics_exposition() {
    let e = replayed();
    let (_, om) = get(&e, Some(PROMETHEUS_ACCEPT), false);
    let want: BTreeMap<String, f64> = samples(&om);
    let dir = tempfile::tempdir().unwrap();
    let target = e.addr.clone();
    let server = prometheus_with(
        &format!("  - job_name: om\n    static_configs: [{{targets: [{target:?}]}}]\n"),
        dir.path(),
    );
    let value = |expr: &str| {
        query(&server, expr)["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while value("up{job=\"om\"}") != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "no successful scrape in 30 s: {}",
            query(&server, "up")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // Prometheus parsed every sample of the body (its OpenMetrics parser fails a whole
    // scrape on one bad line) and stored the values the body has.
    assert_eq!(
        value("scrape_samples_scraped{job=\"om\"}"),
        Some(want.len() as f64)
    );
    for name in [
        "powerbi_events_processed_total",
        "powerbi_events_watermark_timestamp_seconds",
    ] {
        assert_eq!(value(name), Some(want[name]), "{name}");
    }
    let views: f64 = family(&want, "powerbi_report_events_total")
        .iter()
        .filter(|(labels, _)| labels.contains("activity=\"ViewReport\""))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        value("sum(powerbi_report_events_total{activity=\"ViewReport\"})"),
        Some(views)
    );
}
