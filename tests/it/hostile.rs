//! Hostile input: an API server that trickles bytes, declares or streams a gigantic body; event
//! documents with deep nesting, invalid UTF-8, huge strings and control characters in names.
//! Each must end in a clear error or a counted rejection, never a hang, a crash or a label
//! that breaks the exposition.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use powerbi_exporter::simulator::api::{ApiConfig, SimulatedApi};
use powerbi_exporter::simulator::timeline::{Lag, Timeline};
use powerbi_exporter::simulator::{Tenant, TenantSpec};

use crate::support::{api_requests_with_code, family, promtool, run, runtime, stdout, Exporter};

/// How the hostile API answers every request.
#[derive(Clone, Copy)]
enum Misbehaviour {
    /// Declares 1,000 bytes and sends one every 200 ms.
    Trickle,
    /// Declares a 10 GB body.
    HugeLength,
    /// Streams chunks without end.
    Endless,
}

/// A one-trick HTTP server on 127.0.0.1; stops when dropped.
struct HostileApi {
    url: String,
    stop: Arc<AtomicBool>,
}

impl HostileApi {
    fn start(how: Misbehaviour) -> HostileApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let stopping = stopping.clone();
                        std::thread::spawn(move || answer(conn, how, &stopping));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        HostileApi { url, stop }
    }
}

impl Drop for HostileApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(conn: TcpStream, how: Misbehaviour, stop: &AtomicBool) {
    conn.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
        line.clear();
    }
    let mut out = conn;
    let head = match how {
        Misbehaviour::Trickle => "Content-Length: 1000",
        Misbehaviour::HugeLength => "Content-Length: 10000000000",
        Misbehaviour::Endless => "Transfer-Encoding: chunked",
    };
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{head}\r\n\r\n"
    );
    let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
    while !stop.load(Ordering::Relaxed) {
        let written = match how {
            Misbehaviour::Trickle => {
                std::thread::sleep(Duration::from_millis(200));
                out.write_all(b" ")
            }
            Misbehaviour::HugeLength => out.write_all(&[b' '; 4096]),
            Misbehaviour::Endless => out.write_all(chunk.as_bytes()),
        };
        if written.is_err() {
            return;
        }
    }
}

/// Starts the exporter with tokens from the simulated tenant and pages from `api_url`.
fn exporter_against(tokens: &SimulatedApi, api_url: &str, extra: &[&str]) -> Exporter {
    let authority = tokens.base_url();
    let api = ApiConfig::default();
    let mut args = vec![
        "--powerbi.api-url",
        api_url,
        "--azure.authority-host",
        &authority,
        "--azure.tenant-id",
        &api.tenant_id,
        "--azure.client-id",
        &api.client_id,
        "--powerbi.poll-interval",
        "1s",
        "--powerbi.lookback",
        "1h",
        "--powerbi.retry-delay",
        "10ms",
    ];
    args.extend_from_slice(extra);
    Exporter::start_with_env(&args, &[("AZURE_CLIENT_SECRET", "simulated-secret")])
}

fn token_server(rt: &tokio::runtime::Runtime) -> SimulatedApi {
    let now = powerbi_exporter::decode::UnixMillis::now();
    let tenant = Tenant::new(TenantSpec {
        seed: 1,
        workspaces: 2,
        users: 5,
    });
    let timeline = Timeline::new(tenant, 1, 0.0, Lag::default(), now);
    rt.block_on(SimulatedApi::start(ApiConfig::default(), timeline, 0))
        .unwrap()
}

/// Waits for a log line containing every needle, returning it.
fn log_line(e: &Exporter, needles: &[&str], within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = e
            .log
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no log line with {needles:?} within {within:?}"));
        if needles.iter().all(|n| line.contains(n)) {
            return line;
        }
    }
}

#[test]
fn a_server_that_trickles_bytes_is_cut_off_by_the_request_timeout() {
    let rt = runtime();
    let tokens = token_server(&rt);
    let hostile = HostileApi::start(Misbehaviour::Trickle);
    let e = exporter_against(&tokens, &hostile.url, &["--powerbi.request-timeout", "1s"]);
    let line = log_line(&e, &["gave up after 5 attempts"], Duration::from_secs(30));
    assert!(line.contains("level=warn"), "{line}");
    // While the source struggles, scrapes answer at once.
    let s = e.scrape();
    assert!(api_requests_with_code(&s, "error") >= 5.0);
    assert_eq!(
        api_requests_with_code(&s, "200"),
        0.0,
        "no body arrived whole"
    );
    assert_eq!(s["powerbi_up"], 0.0);
}

#[test]
fn a_declared_huge_body_is_refused_unread() {
    let rt = runtime();
    let tokens = token_server(&rt);
    let hostile = HostileApi::start(Misbehaviour::HugeLength);
    let e = exporter_against(
        &tokens,
        &hostile.url,
        &["--powerbi.max-response-bytes", "100000"],
    );
    log_line(&e, &["larger than 100000 bytes"], Duration::from_secs(20));
    let s = e.scrape();
    assert!(api_requests_with_code(&s, "error") >= 1.0);
    assert_eq!(s["powerbi_up"], 0.0);
}

#[test]
fn an_endless_body_is_cut_at_the_cap() {
    let rt = runtime();
    let tokens = token_server(&rt);
    let hostile = HostileApi::start(Misbehaviour::Endless);
    let e = exporter_against(
        &tokens,
        &hostile.url,
        &["--powerbi.max-response-bytes", "100000"],
    );
    log_line(&e, &["larger than 100000 bytes"], Duration::from_secs(20));
    let kib = crate::support::proc_status_kib(e.child.id(), "VmHWM");
    assert!(kib > 0 && kib < 200 * 1024, "peak RSS {kib} KiB");
}

/// Events as the API would send them, but written by someone hostile.
fn hostile_document() -> Vec<u8> {
    let mut doc = b"[".to_vec();
    let event = |id: &str, extra: &str| {
        format!(
            r#"{{"Id":"{id}","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","WorkspaceId":"w1","ReportId":"r-{id}"{extra}}}"#
        )
    };
    // 1: deeply nested value of a field we do not read.
    let deep = format!(
        r#","Extra":{}1{}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    doc.extend(event("deep", &deep).as_bytes());
    doc.push(b',');
    // 2: invalid UTF-8 inside a string.
    doc.extend(
        event("utf8", r#","ReportName":"bad "#)
            .trim_end_matches('}')
            .as_bytes(),
    );
    doc.extend(b"\xff\xfe\"}");
    doc.push(b',');
    // 3: a report name of 100,000 characters.
    let long = format!(r#","ReportName":"{}""#, "x".repeat(100_000));
    doc.extend(event("long", &long).as_bytes());
    doc.push(b',');
    // 4: quotes, backslashes, newlines and control characters in a name.
    doc.extend(
        event(
            "ctl",
            r#","ReportName":"a \"quoted\" \\ name\nwith\ttab \u0001 and \u007f""#,
        )
        .as_bytes(),
    );
    doc.extend(b"]");
    doc
}

#[test]
fn hostile_events_are_rejected_or_exposed_safely() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.json");
    std::fs::write(&file, hostile_document()).unwrap();
    let out = run(&["--replay", file.to_str().unwrap(), "--once"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::support::stderr(&out)
    );
    let text = stdout(&out);
    let s = crate::support::samples(&text);
    // The nesting sits in a field the decoder skips without recursing: that event counts.
    // Invalid UTF-8 rejects its event alone.
    let rejected = family(&s, "powerbi_events_rejected_total");
    assert_eq!(rejected[r#"{reason="invalid_json"}"#], 1.0, "{rejected:?}");
    assert_eq!(rejected.values().sum::<f64>(), 1.0);
    assert_eq!(s["powerbi_events_processed_total"], 4.0);
    assert_eq!(
        s[r#"powerbi_activity_events_total{workspace_id="w1",activity="ViewReport"}"#],
        3.0
    );
    let info = family(&s, "powerbi_report_info");
    // The long name is cut to 1024 bytes and counted; the control characters are escaped.
    let long = format!(
        r#"{{report_id="r-long",report_name="{}",workspace_id="w1"}}"#,
        "x".repeat(1024)
    );
    assert_eq!(
        info.get(&long),
        Some(&1.0),
        "{:?}",
        info.keys().collect::<Vec<_>>()
    );
    assert!(
        // Quote, backslash and newline escaped as the text format says; tab and other control
        // characters are legal in a label value and pass through as they are.
        text.contains("report_name=\"a \\\"quoted\\\" \\\\ name\\nwith\ttab \u{1} and \u{7f}\""),
        "{text}"
    );
    assert_eq!(
        family(&s, "powerbi_label_values_truncated_total")[r#"{label="report_name"}"#],
        1.0
    );
    let prom = dir.path().join("hostile.prom");
    std::fs::write(&prom, &text).unwrap();
    let check = std::process::Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&prom).unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
