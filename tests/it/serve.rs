use std::io::Read;
use std::time::Duration;

use crate::support::*;

fn demo() -> Exporter {
    Exporter::start(&[
        "--demo",
        "--demo.backfill",
        "1h",
        "--demo.peak-events-per-minute",
        "6000",
        "--web.telemetry-path",
        "/custom",
    ])
}

#[test]
fn the_demo_serves_living_metrics_over_http() {
    let mut e = demo();
    e.wait_ready();
    let client = http();
    let resp = client.get(e.url("/custom")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let first = samples(&resp.text().unwrap());
    assert!(first["powerbi_events_processed_total"] > 0.0);
    assert!(
        family(&first, "powerbi_activity_events_total")
            .values()
            .sum::<f64>()
            > 0.0
    );
    assert!(family(&first, "powerbi_report_events_total")
        .keys()
        .any(|k| k.contains(r#"activity="ViewReport""#)));
    assert!(first[r#"powerbi_active_users{window="1d"}"#] > 0.0);
    assert!(first
        .keys()
        .any(|k| k.starts_with("process_resident_memory_bytes")));

    // Counters never go down between scrapes; events keep arriving.
    std::thread::sleep(Duration::from_millis(2500));
    let second = samples(&client.get(e.url("/custom")).send().unwrap().text().unwrap());
    for (series, value) in &first {
        if series.contains("_total") {
            assert!(second[series] >= *value, "{series} went down");
        }
    }
    assert!(
        second["powerbi_events_processed_total"] > first["powerbi_events_processed_total"],
        "no new events in 2.5s"
    );

    let resp = client
        .get(e.url("/custom"))
        .header("Accept-Encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&resp.bytes().unwrap()[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(samples(&text)["powerbi_events_processed_total"] > 0.0);

    let landing = client.get(e.url("/")).send().unwrap().text().unwrap();
    assert!(
        landing.contains(r#"<a href="/custom">Metrics</a>"#),
        "{landing}"
    );
    assert_eq!(e.status("/-/healthy"), 200);
    assert_eq!(e.status("/metrics"), 404);
    assert_eq!(
        client
            .post(e.url("/custom"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        405
    );
    let head = client.head(e.url("/custom")).send().unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert!(head.bytes().unwrap().is_empty());

    assert!(e.terminate().success(), "SIGTERM ends the exporter cleanly");
    let log: Vec<String> = e.log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("msg=\"Shutting down.\"")),
        "{log:?}"
    );
}

#[test]
fn exporter_metrics_can_be_disabled() {
    let e = Exporter::start(&[
        "--demo",
        "--demo.backfill",
        "10m",
        "--web.disable-exporter-metrics",
        "--log.level",
        "debug",
    ]);
    e.wait_ready();
    let text = http()
        .get(e.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!text.contains("process_"), "process metrics present");
    assert!(text.contains("powerbi_events_processed_total"));
}

#[test]
fn readiness_waits_for_the_first_document() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use powerbi_exporter::exposition::http::{bind, serve, Exposition};
    use powerbi_exporter::exposition::webconfig::WebSettings;

    let ready = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(bind("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let exposition = Exposition {
        collector: Arc::new(powerbi_exporter::catalogue::Snapshot::default()),
        status: Box::new(Default::default),
        ready: ready.clone(),
        telemetry_path: "/metrics".into(),
        process_metrics: false,
        max_requests: 0,
        web_config: None,
    };
    let server = runtime.spawn(serve(listener, exposition, WebSettings::plain(), async {
        let _ = stopped.await;
    }));
    let client = http();
    let status = |path: &str| {
        client
            .get(format!("http://{addr}{path}"))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // The container probes: `healthcheck` for liveness, `healthcheck --ready` for readiness.
    let probe = |extra: &[&str]| {
        let addr = addr.to_string();
        let mut args = vec!["healthcheck", "--web.listen-address", addr.as_str()];
        args.extend_from_slice(extra);
        run(&args)
    };
    assert_eq!(status("/-/ready"), 503);
    assert_eq!(status("/-/healthy"), 200, "healthy while not ready");
    assert!(probe(&[]).status.success(), "alive while not ready");
    let not_ready = probe(&["--ready"]);
    assert_eq!(not_ready.status.code(), Some(1));
    assert!(stderr(&not_ready).contains("503"), "{}", stderr(&not_ready));
    ready.store(true, Ordering::Release);
    assert_eq!(status("/-/ready"), 200);
    assert!(probe(&["--ready"]).status.success(), "ready once applied");
    stop.send(()).unwrap();
    runtime.block_on(server).unwrap();
}

#[test]
fn json_logs_are_one_object_per_line() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut child = Command::new(BIN)
        .args([
            "--demo",
            "--demo.backfill",
            "1m",
            "--log.format",
            "json",
            "--web.listen-address",
            "127.0.0.1:0",
        ])
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Every line up to "Listening." (warnings may come first) is one JSON object.
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut log = serde_json::Value::Null;
    for _ in 0..10 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        log = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if log["message"] == "Listening." {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(log["level"], "INFO");
    assert_eq!(log["message"], "Listening.");
    let line = log.to_string();
    assert!(
        log["address"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{line}"
    );
}
