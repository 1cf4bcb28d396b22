//! OTLP: the metric push equals the `/metrics` scrape of the same state (over HTTP and gRPC,
//! with the standard `OTEL_*` variables), and raw events as OTLP log records survive a
//! collector outage and a restart: nothing lost, nothing sent twice, counters never go down.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::otlp_receiver::{
    as_prometheus, canonical, kinds, resource_attributes_of_logs, resource_attributes_of_metrics,
    Receiver, Transport,
};
use crate::support::{fixtures, sample_value, Exporter};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// Polls `check` every 100 ms until it holds, at most `limit`.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for a log line containing `text`; returns the lines read meanwhile.
fn wait_for_log(e: &Exporter, text: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let line = e
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no log line with {text:?}: {seen:#?}"));
        let done = line.contains(text);
        seen.push(line);
        if done {
            return seen;
        }
    }
}

/// The scrape without what only the web server has (its own self metrics) and without the
/// process families, whose values move between a scrape and a push.
fn comparable(samples: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    samples
        .iter()
        .filter(|(k, _)| !k.starts_with("process_") && !k.starts_with("powerbi_web_"))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// How a push body travels: the header that names its encoding, and the encoding the
/// receiver must see there ("" for none: the header is absent).
struct Encoding<'a> {
    /// `(variable, value)` set for the exporter, e.g. `OTEL_EXPORTER_OTLP_COMPRESSION=gzip`.
    env: Option<(&'a str, &'a str)>,
    seen: &'a str,
}

const UNCOMPRESSED: Encoding = Encoding {
    env: None,
    seen: "",
};

/// The header carrying a body's encoding: HTTP's `Content-Encoding`, gRPC's `grpc-encoding`.
fn encoding_header(transport: Transport) -> &'static str {
    match transport {
        Transport::Http => "content-encoding",
        Transport::Grpc => "grpc-encoding",
    }
}

fn push_equals_scrape(transport: Transport, protocol: &str, encoding: Encoding) {
    let receiver = Receiver::start(transport);
    let replay = fixtures();
    let endpoint = receiver.endpoint();
    let e = Exporter::start_with_env(
        &["--replay", replay.to_str().unwrap()],
        &[
            encoding
                .env
                .unwrap_or(("OTEL_EXPORTER_OTLP_COMPRESSION", "none")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-scope=tenant-a,x-note=two%20words",
            ),
            ("OTEL_SERVICE_NAME", "pbi-under-test"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"),
        ],
    );
    wait_for_log(&e, "Source finished");
    let scraped = comparable(&canonical(&e.scrape()));
    // A push that started after the scrape.
    let before = receiver.metrics_requests().len();
    wait_until(Duration::from_secs(10), "two more pushes", || {
        receiver.metrics_requests().len() >= before + 2
    });
    let requests = receiver.metrics_requests();
    let latest = requests.last().unwrap();
    let pushed = as_prometheus(latest);
    assert_eq!(comparable(&pushed), scraped, "push vs scrape ({protocol})");
    assert!(
        scraped.len() > 40 && scraped.keys().any(|k| k.contains("ViewReport")),
        "the replay was counted: {scraped:#?}"
    );
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    ] {
        assert!(pushed.contains_key(name), "{name} pushed");
    }
    let types = kinds(latest);
    for f in powerbi_exporter::catalogue::ALL {
        let Some((kind, monotonic, temporality)) = types.get(f.name) else {
            continue;
        };
        let want = match f.kind {
            powerbi_exporter::catalogue::Kind::Counter => ("counter", true, "cumulative"),
            powerbi_exporter::catalogue::Kind::Gauge => ("gauge", false, "unspecified"),
        };
        assert_eq!(
            (kind.as_str(), *monotonic, temporality.as_str()),
            want,
            "{}",
            f.name
        );
    }
    assert!(types.contains_key("powerbi_activity_events_total"));
    let resource = resource_attributes_of_metrics(latest);
    assert_eq!(resource["service.name"], "pbi-under-test");
    assert_eq!(resource["service.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(resource["deployment.environment"], "test");
    let headers = receiver.headers();
    let last = headers.last().unwrap();
    assert_eq!(last["x-scope"], "tenant-a");
    assert_eq!(last["x-note"], "two words");
    // Every push travelled as asked, and the receiver decoded the latest one above.
    let header = encoding_header(transport);
    for h in receiver.metrics_headers() {
        let seen = h.get(header).map_or("", String::as_str);
        assert_eq!(seen, encoding.seen, "{header} ({protocol}): {h:?}");
    }
}

#[test]
fn the_http_protobuf_push_equals_the_scrape() {
    push_equals_scrape(Transport::Http, "http/protobuf", UNCOMPRESSED);
}

#[test]
fn the_grpc_push_equals_the_scrape() {
    push_equals_scrape(Transport::Grpc, "grpc", UNCOMPRESSED);
}

// OTEL_EXPORTER_OTLP_COMPRESSION and its per-signal variants take `gzip` or `none` (the OTLP
// exporter specification, opentelemetry.io/docs/specs/otel/protocol/exporter/, "Compression").
#[test]
fn the_http_protobuf_push_is_gzip_compressed_when_asked_and_still_equals_the_scrape() {
    let gzip = Encoding {
        env: Some(("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")),
        seen: "gzip",
    };
    push_equals_scrape(Transport::Http, "http/protobuf", gzip);
}

#[test]
fn the_grpc_push_is_gzip_compressed_when_asked_and_still_equals_the_scrape() {
    let gzip = Encoding {
        env: Some(("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip")),
        seen: "gzip",
    };
    push_equals_scrape(Transport::Grpc, "grpc", gzip);
}

#[test]
fn events_as_otlp_logs_are_gzip_compressed_by_their_own_variable() {
    const N: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let events = write_events(dir.path(), N);
    let state = dir.path().join("state");
    let receiver = Receiver::start(Transport::Http);
    let endpoint = receiver.endpoint();
    let _e = Exporter::start_with_env(
        &[
            "--replay",
            events.to_str().unwrap(),
            "--state.dir",
            state.to_str().unwrap(),
            "--otlp.logs",
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "gzip"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ],
    );
    let records = || -> usize {
        receiver
            .logs_requests()
            .iter()
            .flat_map(|r| r.resource_logs.iter())
            .flat_map(|r| r.scope_logs.iter())
            .map(|s| s.log_records.len())
            .sum()
    };
    wait_until(
        Duration::from_secs(20),
        "every event as a log record",
        || records() == N && !receiver.metrics_requests().is_empty(),
    );
    let logs = receiver.logs_headers();
    assert!(
        logs.iter()
            .all(|h| h.get("content-encoding").map(String::as_str) == Some("gzip")),
        "{logs:?}"
    );
    // The logs variable is the logs' alone: metrics go uncompressed.
    let metrics = receiver.metrics_headers();
    assert!(
        metrics.iter().all(|h| !h.contains_key("content-encoding")),
        "{metrics:?}"
    );
}

#[test]
fn an_unknown_otlp_compression_exits_2_naming_the_variable() {
    let out = crate::support::run_with_env(
        &["check-config", "--demo", "--otlp.enabled"],
        &[("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli")],
    );
    crate::support::assert_exit_2_naming(
        &out,
        &["OTEL_EXPORTER_OTLP_COMPRESSION=\"brotli\": expected gzip or none"],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::run_with_env(
        &[
            "check-config",
            "--demo",
            "--state.dir",
            dir.path().to_str().unwrap(),
            "--otlp.logs",
        ],
        &[
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "zstd"),
        ],
    );
    crate::support::assert_exit_2_naming(
        &out,
        &["OTEL_EXPORTER_OTLP_LOGS_COMPRESSION=\"zstd\": expected gzip or none"],
    );
    // Nothing pushed, nothing checked: the plain demo ignores the variables.
    let out = crate::support::run_with_env(
        &["check-config", "--demo"],
        &[("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli")],
    );
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
}

#[test]
fn the_resource_names_the_tenant_and_the_default_service() {
    let receiver = Receiver::start(Transport::Http);
    let endpoint = receiver.endpoint();
    let _e = Exporter::start_with_env(
        &["--demo", "--demo.backfill", "1h"],
        &[
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                &format!("{endpoint}/v1/metrics"),
            ),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ],
    );
    wait_until(Duration::from_secs(20), "a push", || {
        !receiver.metrics_requests().is_empty()
    });
    let resource = resource_attributes_of_metrics(&receiver.metrics_requests()[0]);
    assert_eq!(resource["service.name"], "powerbi-exporter");
    assert_eq!(
        resource["powerbi.tenant.id"],
        powerbi_exporter::simulator::api::ApiConfig::default().tenant_id
    );
    assert_eq!(resource["telemetry.sdk.language"], "rust");
}

/// `n` distinct events of ~1 KB, one minute apart from 2026-11-20T00:00Z, as an API page.
pub fn write_events(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let activities = ["ViewReport", "ExportReport", "ShareReport", "ViewDashboard"];
    let events: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "Id": format!("f0f0f0f0-0000-4000-8000-{i:012}"),
                "RecordType": 20,
                "CreationTime": format!("2026-11-20T{:02}:{:02}:{:02}", i / 3600 % 24, i / 60 % 60, i % 60),
                "Operation": activities[i % 4],
                "Activity": activities[i % 4],
                "UserId": format!("user{}@contoso.example", i % 17),
                "UserType": 0,
                "WorkspaceId": format!("0000000{}-aaaa-4aaa-8aaa-000000000000", i % 3),
                "ReportId": format!("0000000{}-bbbb-4bbb-8bbb-000000000000", i % 5),
                "ClientIP": "203.0.113.7",
                "UserAgent": "x".repeat(700),
                "IsSuccess": true,
            })
        })
        .collect();
    let path = dir.join("events.json");
    let page = serde_json::json!({"activityEventEntities": events, "continuationToken": null});
    std::fs::write(&path, serde_json::to_vec(&page).unwrap()).unwrap();
    path
}

pub fn event_id(i: usize) -> String {
    format!("f0f0f0f0-0000-4000-8000-{i:012}")
}

/// Every pushed counter series, request after request, never goes down.
fn assert_counters_never_decrease(pushes: &[BTreeMap<String, f64>]) {
    let mut high: BTreeMap<&str, f64> = BTreeMap::new();
    for push in pushes {
        for (k, v) in push.iter().filter(|(k, _)| k.contains("_total")) {
            let seen = high.entry(k).or_insert(*v);
            assert!(*v >= *seen, "{k} went down from {seen} to {v}");
            *seen = v.max(*seen);
        }
    }
}

#[test]
fn events_as_otlp_logs_survive_a_collector_outage_and_a_restart() {
    const N: usize = 1500;
    let dir = tempfile::tempdir().unwrap();
    let events = write_events(dir.path(), N);
    let state = dir.path().join("state");
    // The collector is gone (connection refused) until it comes back on the same port.
    let receiver = Receiver::start(Transport::Http);
    let (port, endpoint) = (receiver.port(), receiver.endpoint());
    receiver.stop();
    let args = [
        "--replay",
        events.to_str().unwrap(),
        "--state.dir",
        state.to_str().unwrap(),
        "--otlp.logs",
    ];
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
    ];
    let mut e = Exporter::start_with_env(&args, &env);
    let errors = |s: &BTreeMap<String, f64>| {
        s.iter()
            .filter(|(k, _)| k.starts_with(r#"powerbi_forward_errors_total{sink="otlp_logs""#))
            .map(|(_, v)| v)
            .sum::<f64>()
    };
    // Down: everything waits in the spool; failures are counted, logged once.
    wait_until(
        Duration::from_secs(30),
        "a backlog and counted failures",
        || {
            let s = e.scrape();
            sample_value(&s, r#"powerbi_forward_backlog_events{sink="otlp_logs"}"#) == N as f64
                && errors(&s) >= 2.0
                && sample_value(&s, "powerbi_otlp_export_errors_total") >= 2.0
        },
    );
    let receiver = Receiver::start_on(Transport::Http, port);
    wait_until(Duration::from_secs(30), "every event forwarded", || {
        let s = e.scrape();
        sample_value(&s, r#"powerbi_forwarded_events_total{sink="otlp_logs"}"#) == N as f64
            && sample_value(&s, r#"powerbi_forward_backlog_events{sink="otlp_logs"}"#) == 0.0
    });
    let log: Vec<String> = e.log.try_iter().collect();
    let count = |text: &str| log.iter().filter(|l| l.contains(text)).count();
    assert_eq!(
        count("Forwarding failed"),
        1,
        "logged once per outage: {log:#?}"
    );
    assert_eq!(count("Pushing metrics over OTLP failed"), 1, "{log:#?}");
    assert_eq!(count("Forwarding recovered"), 1, "{log:#?}");

    // Exactly the events, each once: nothing was accepted while the collector was down.
    let records: Vec<_> = receiver
        .logs_requests()
        .iter()
        .flat_map(|r| r.resource_logs.iter())
        .flat_map(|r| r.scope_logs.iter())
        .flat_map(|s| s.log_records.iter())
        .cloned()
        .collect();
    let ids: Vec<String> = records
        .iter()
        .map(|r| match r.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(Value::StringValue(s)) => {
                let v: serde_json::Value = serde_json::from_str(s).unwrap();
                v["Id"].as_str().unwrap().to_string()
            }
            other => panic!("body is not the event's JSON: {other:?}"),
        })
        .collect();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), N);
    assert_eq!(ids.len(), N, "no event sent twice");
    assert_eq!(
        distinct,
        (0..N).map(event_id).collect::<Vec<_>>().iter().collect()
    );
    // The record of event 61: 2026-11-20T00:01:01Z, ExportReport, workspace 1, no user.
    let r = &records[ids.iter().position(|i| *i == event_id(61)).unwrap()];
    assert_eq!(r.time_unix_nano, 1_795_132_861_000_000_000);
    assert!(r.observed_time_unix_nano > r.time_unix_nano);
    let attrs: BTreeMap<String, String> = r
        .attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect();
    assert_eq!(
        attrs,
        BTreeMap::from([
            ("powerbi.activity".to_string(), "ExportReport".to_string()),
            (
                "powerbi.report.id".to_string(),
                "00000001-bbbb-4bbb-8bbb-000000000000".to_string()
            ),
            (
                "powerbi.workspace.id".to_string(),
                "00000001-aaaa-4aaa-8aaa-000000000000".to_string()
            ),
        ])
    );
    let resource = resource_attributes_of_logs(&receiver.logs_requests()[0]);
    assert_eq!(resource["service.name"], "powerbi-exporter");

    // A restart: the replay had counted its file, so it reads nothing again; nothing is
    // forwarded twice and the pushed counters continue from the saved state.
    e.terminate();
    let before_restart = receiver.metrics_requests().len();
    let e = Exporter::start_with_env(&args, &env);
    wait_for_log(&e, "Source finished");
    wait_until(Duration::from_secs(10), "pushes after the restart", || {
        receiver.metrics_requests().len() >= before_restart + 3
    });
    let s = e.scrape();
    assert_eq!(sample_value(&s, "powerbi_events_duplicate_total"), 0.0);
    assert_eq!(sample_value(&s, "powerbi_events_processed_total"), N as f64);
    assert_eq!(
        sample_value(&s, r#"powerbi_forwarded_events_total{sink="otlp_logs"}"#),
        N as f64
    );
    let total: usize = receiver
        .logs_requests()
        .iter()
        .flat_map(|r| r.resource_logs.iter())
        .flat_map(|r| r.scope_logs.iter())
        .map(|s| s.log_records.len())
        .sum();
    assert_eq!(total, N, "nothing forwarded again after the restart");
    let pushes: Vec<_> = receiver
        .metrics_requests()
        .iter()
        .map(as_prometheus)
        .collect();
    assert_counters_never_decrease(&pushes);
    assert_eq!(
        pushes.last().unwrap()[r#"powerbi_activity_events_total{activity="ViewReport",workspace_id="00000000-aaaa-4aaa-8aaa-000000000000"}"#],
        (N / 12) as f64
    );
}

/// The rustls server config of a TLS "collector" with the test PKI's server certificate,
/// requiring client certificates from the PKI's CA when `mutual`.
fn collector_tls(pki: &crate::web::Pki, mutual: bool) -> std::sync::Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    powerbi_exporter::install_tls_provider();
    let dir = pki.dir.path();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.crt"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let builder = rustls::ServerConfig::builder();
    let builder = if mutual {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(dir.join("ca.crt")).unwrap() {
            roots.add(ca.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder(std::sync::Arc::new(roots))
            .build()
            .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    std::sync::Arc::new(builder.with_single_cert(certs, key).unwrap())
}

/// Starts the exporter on the fixtures, pushing to `receiver` every 200 ms with `tls` variables
/// (names after `OTEL_EXPORTER_OTLP_`, values file names in the PKI directory).
fn push_over_tls(receiver: &Receiver, pki: &crate::web::Pki, tls: &[(&str, &str)]) -> Exporter {
    let endpoint = receiver.endpoint();
    let mut env: Vec<(String, String)> = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint),
        ("OTEL_METRIC_EXPORT_INTERVAL".into(), "200".into()),
    ];
    for (name, file) in tls {
        let path = pki.dir.path().join(file);
        env.push((
            format!("OTEL_EXPORTER_OTLP_{name}"),
            path.display().to_string(),
        ));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Exporter::start_with_env(&["--replay", fixtures().to_str().unwrap()], &env)
}

#[test]
fn the_push_trusts_the_collector_by_otel_exporter_otlp_certificate_and_presents_a_client_certificate(
) {
    let pki = crate::web::pki();
    // The client's certificate and key as separate files, as the variables name them.
    let split = pki.client_pem.find("-----BEGIN PRIVATE KEY").unwrap();
    std::fs::write(pki.dir.path().join("client.crt"), &pki.client_pem[..split]).unwrap();
    std::fs::write(pki.dir.path().join("client.key"), &pki.client_pem[split..]).unwrap();
    let errors = |e: &Exporter| e.scrape()["powerbi_otlp_export_errors_total"];

    // TLS: trusted through the CA file, pushes arrive and none failed.
    let receiver = Receiver::start_https(collector_tls(&pki, false));
    assert!(receiver.endpoint().starts_with("https://"));
    let e = push_over_tls(&receiver, &pki, &[("CERTIFICATE", "ca.crt")]);
    wait_until(Duration::from_secs(15), "pushes over TLS", || {
        receiver.metrics_requests().len() >= 2
    });
    assert_eq!(errors(&e), 0.0);
    drop(e);

    // Without the CA the collector's certificate is not trusted: nothing is sent.
    let e = push_over_tls(&receiver, &pki, &[]);
    let before = receiver.metrics_requests().len();
    wait_until(Duration::from_secs(15), "failed pushes counted", || {
        errors(&e) >= 1.0
    });
    assert_eq!(receiver.metrics_requests().len(), before);
    drop(e);

    // Mutual TLS: with the client certificate pushes arrive; with the CA alone they fail.
    let receiver = Receiver::start_https(collector_tls(&pki, true));
    let e = push_over_tls(
        &receiver,
        &pki,
        &[
            ("CERTIFICATE", "ca.crt"),
            ("CLIENT_CERTIFICATE", "client.crt"),
            ("CLIENT_KEY", "client.key"),
        ],
    );
    wait_until(Duration::from_secs(15), "pushes over mutual TLS", || {
        receiver.metrics_requests().len() >= 2
    });
    assert_eq!(errors(&e), 0.0);
    drop(e);
    let e = push_over_tls(&receiver, &pki, &[("CERTIFICATE", "ca.crt")]);
    let before = receiver.metrics_requests().len();
    wait_until(
        Duration::from_secs(15),
        "refused without a client certificate",
        || errors(&e) >= 1.0,
    );
    assert_eq!(receiver.metrics_requests().len(), before);
}
