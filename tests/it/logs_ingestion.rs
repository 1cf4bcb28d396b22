//! Azure Monitor Logs Ingestion against the loopback fake of a data collection endpoint (with
//! its own Entra token endpoint): batch limits, 413, 429, 503, and exact delivery of every
//! event across a `kill -9`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::fake_logs_ingestion::{FakeConfig, FakeLogsIngestion, DEFAULT_DCR_ID};

use crate::otlp::{event_id, wait_until, write_events};
use crate::support::{assert_retry_after_clamp_logged, runtime, sample_value, Exporter};

const N: usize = 10_000;

/// A fake endpoint, N events to replay and a state directory.
struct Run {
    fake: FakeLogsIngestion,
    config: FakeConfig,
    dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

impl Run {
    fn new(config: FakeConfig) -> Run {
        let rt = runtime();
        let fake = rt
            .block_on(FakeLogsIngestion::start(config.clone()))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_events(dir.path(), N);
        Run {
            fake,
            config,
            dir,
            _rt: rt,
        }
    }

    /// Starts the exporter on the events, forwarding to the fake.
    fn start(&self) -> Exporter {
        start_forwarding(
            &self.dir.path().join("events.json"),
            &self.dir.path().join("state"),
            &self.fake.base_url(),
            &self.config,
        )
    }
}

/// The exporter replaying `events` with its state in `state`, forwarding to the fake
/// Logs Ingestion API at `base` (its token endpoint too) with the credentials of `config`.
pub fn start_forwarding(events: &Path, state: &Path, base: &str, config: &FakeConfig) -> Exporter {
    start_forwarding_with(events, state, base, config, &[])
}

/// [`start_forwarding`] with `extra` flags.
pub fn start_forwarding_with(
    events: &Path,
    state: &Path,
    base: &str,
    config: &FakeConfig,
    extra: &[&str],
) -> Exporter {
    let mut args = vec![
        "--replay",
        events.to_str().unwrap(),
        "--state.dir",
        state.to_str().unwrap(),
        "--logs-ingestion.endpoint",
        base,
        "--logs-ingestion.dcr-id",
        DEFAULT_DCR_ID,
    ];
    args.extend_from_slice(extra);
    Exporter::start_with_env(
        &args,
        &[
            ("AZURE_TENANT_ID", config.tenant_id.as_str()),
            ("AZURE_CLIENT_ID", config.client_id.as_str()),
            ("AZURE_CLIENT_SECRET", config.client_secret.as_str()),
            ("AZURE_AUTHORITY_HOST", base),
        ],
    )
}

/// Event ids of the rows received, in order.
pub fn row_ids(fake: &FakeLogsIngestion) -> Vec<String> {
    fake.rows()
        .iter()
        .map(|r| {
            r["EventId"]
                .as_str()
                .expect("EventId in every row")
                .to_string()
        })
        .collect()
}

fn expected_ids() -> BTreeSet<String> {
    (0..N).map(event_id).collect()
}

#[test]
fn a_burst_arrives_as_gzip_arrays_under_1_mb_and_throttling_is_waited_out() {
    let config = FakeConfig {
        throttle_next: 2,
        retry_after_secs: 1,
        ..FakeConfig::default()
    };
    let run = Run::new(config);
    let (fake, e) = (&run.fake, run.start());
    wait_until(Duration::from_secs(60), "every row delivered", || {
        let s = e.scrape();
        sample_value(
            &s,
            r#"powerbi_forwarded_events_total{sink="logs_ingestion"}"#,
        ) == N as f64
            && sample_value(
                &s,
                r#"powerbi_forward_backlog_events{sink="logs_ingestion"}"#,
            ) == 0.0
    });
    let ids = row_ids(fake);
    assert_eq!(ids.len(), N, "each row once");
    assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), expected_ids());

    let requests = fake.requests();
    let accepted: Vec<_> = requests.iter().filter(|r| r.status == 204).collect();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..2], [429, 429], "{statuses:?}");
    assert!(requests.iter().all(|r| r.token_valid && r.gzip));
    assert_eq!(requests.iter().filter(|r| r.status != 204).count(), 2);
    // ~1.1 KB rows: 10,000 of them make at least 11 arrays of at most 1,000,000 bytes.
    assert!(accepted.len() >= 11, "{} arrays", accepted.len());
    for r in &accepted {
        let plain = r.uncompressed_bytes.unwrap();
        assert!(plain <= 1_000_000 && r.compressed_bytes < plain, "{r:?}");
    }
    assert_eq!(accepted.iter().map(|r| r.rows).sum::<usize>(), N);

    let s = e.scrape();
    assert_eq!(
        sample_value(
            &s,
            r#"powerbi_forward_errors_total{sink="logs_ingestion",reason="throttled"}"#
        ),
        2.0
    );
    // A row: Id renamed, TimeGenerated from CreationTime, everything else as sent.
    let rows = fake.rows();
    let row = rows
        .iter()
        .find(|r| r["EventId"] == event_id(61).as_str())
        .unwrap();
    assert_eq!(row["TimeGenerated"], "2026-11-20T00:01:01.000Z");
    assert_eq!(row["CreationTime"], "2026-11-20T00:01:01");
    assert_eq!(row["Activity"], "ExportReport");
    assert_eq!(row["UserId"], "user10@contoso.example");
    assert!(row.get("Id").is_none());
    assert_eq!(fake.token_requests(), 1, "the token is cached");
}

#[test]
fn too_large_arrays_are_split_and_a_kill_9_loses_nothing() {
    // The fake takes at most 300,000 bytes: our 1 MB arrays are refused with 413 and halved.
    let run = Run::new(FakeConfig {
        max_body_bytes: 300_000,
        fail_next: 1,
        ..FakeConfig::default()
    });
    let fake = &run.fake;
    let mut e = run.start();
    wait_until(Duration::from_secs(60), "a third delivered", || {
        fake.rows().len() >= N / 3
    });
    // The destination stalls (503), so the kill lands with a batch in flight or waiting.
    fake.set_down(true);
    e.child.kill().unwrap();
    e.child.wait().unwrap();
    fake.set_down(false);
    let before_restart = fake.rows().len();
    assert!(before_restart < N, "killed mid-delivery");

    let e = run.start();
    wait_until(Duration::from_secs(60), "every event delivered", || {
        row_ids(fake).into_iter().collect::<BTreeSet<_>>().len() == N
            && sample_value(
                &e.scrape(),
                r#"powerbi_forward_backlog_events{sink="logs_ingestion"}"#,
            ) == 0.0
    });
    let ids = row_ids(fake);
    assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), expected_ids());
    // At-least-once: only the batch in flight at the kill (at most 4 MB of ~1.1 KB events) may
    // arrive twice.
    let twice = ids.len() - N;
    assert!(twice <= 4_000, "{twice} rows delivered twice");
    let s = e.scrape();
    let forwarded = sample_value(
        &s,
        r#"powerbi_forwarded_events_total{sink="logs_ingestion"}"#,
    );
    assert!(
        forwarded <= ids.len() as f64 && forwarded >= N as f64,
        "forwarded {forwarded}, rows {}",
        ids.len()
    );
    let requests = fake.requests();
    assert!(requests.iter().any(|r| r.status == 413));
    assert!(requests.iter().any(|r| r.status == 503));
    for r in requests.iter().filter(|r| r.status == 204) {
        assert!(r.uncompressed_bytes.unwrap() <= 300_000);
    }
    assert!(
        sample_value(
            &s,
            r#"powerbi_forward_errors_total{sink="logs_ingestion",reason="too_large"}"#
        ) >= 1.0
    );
    // The replay had been counted and saved before the kill: the restart reads none of it again
    // (what was delivered came from the spool), and every event was processed once.
    assert_eq!(sample_value(&s, "powerbi_events_duplicate_total"), 0.0);
    assert_eq!(sample_value(&s, "powerbi_events_processed_total"), N as f64);
}

#[test]
fn a_retry_after_of_centuries_is_cut_to_an_hour_without_overflow() {
    let asked = u64::MAX;
    let config = FakeConfig {
        throttle_next: 1,
        retry_after_secs: asked,
        ..FakeConfig::default()
    };
    let run = Run::new(config);
    let e = run.start();
    wait_until(Duration::from_secs(30), "the 429 counted", || {
        sample_value(
            &e.scrape(),
            r#"powerbi_forward_errors_total{sink="logs_ingestion",reason="throttled"}"#,
        ) == 1.0
    });
    assert_retry_after_clamp_logged(&e, asked);
}
