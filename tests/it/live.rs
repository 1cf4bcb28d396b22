//! The live source against the simulated tenant's API on loopback: late arrivals, throttling,
//! server errors, truncated bodies, empty pages and duplicate deliveries; every family must
//! end equal to the simulator's ground truth, within the request budget.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use powerbi_exporter::decode::UnixMillis;
use powerbi_exporter::rng::Rng;
use powerbi_exporter::simulator::api::{
    ApiConfig, ContinuationStyle, Faults, SimulatedApi, ThrottleShape, TrustedCertificate,
};
use powerbi_exporter::simulator::timeline::{Lag, Timeline};
use powerbi_exporter::simulator::{Tenant, TenantSpec};

use crate::support::*;

const HOUR: i64 = 3_600_000;

/// A log of `n` events: a third happened over the last 3 hours and are visible at once, the
/// others happened in the last `spread_ms` and become visible over the next `spread_ms` (late
/// by at most twice that: the current hour, or an hour that just ended and is re-read at
/// `--powerbi.reread-ages 5s,30s,2m`).
pub fn late_log(n: usize, spread_ms: u64) -> Timeline {
    let now = UnixMillis::now();
    let tenant = Tenant::new(TenantSpec {
        seed: 9,
        workspaces: 4,
        users: 30,
    });
    let mut timeline = Timeline::new(tenant.clone(), 9, 0.0, Lag::default(), now);
    let mut rng = Rng::new(99);
    for i in 0..n {
        let (time, visible) = if i % 3 == 0 {
            let time = now.0 - 3 * HOUR + rng.below(3 * HOUR as u64 - 60_000) as i64;
            (UnixMillis(time), now)
        } else {
            let time = now.0 - 1 - rng.below(spread_ms) as i64;
            (
                UnixMillis(time),
                UnixMillis(now.0 + rng.below(spread_ms) as i64),
            )
        };
        let mut json = Vec::new();
        tenant.write_event(&mut rng, time, &mut json);
        timeline.push(time, visible, json);
    }
    timeline
}

/// Like [`late_log`], from a tenant whose events take the shapes of Microsoft's examples.
fn odd_log(n: usize) -> Timeline {
    let now = UnixMillis::now();
    let tenant = Tenant::new(TenantSpec {
        seed: 21,
        workspaces: 4,
        users: 30,
    })
    .with_odd_shapes(0.3);
    let mut timeline = Timeline::new(tenant.clone(), 21, 0.0, Lag::default(), now);
    let mut rng = Rng::new(2121);
    for _ in 0..n {
        let time = UnixMillis(now.0 - 3 * HOUR + rng.below(3 * HOUR as u64 - 60_000) as i64);
        let mut json = Vec::new();
        tenant.write_event(&mut rng, time, &mut json);
        timeline.push(time, now, json);
    }
    timeline
}

/// The counts an exact exporter must reach, computed from the raw JSON without the exporter's code.
fn ground_truth(api: &SimulatedApi) -> (BTreeMap<String, f64>, BTreeMap<String, f64>, usize) {
    let mut all = BTreeMap::new();
    let mut failed = BTreeMap::new();
    let events = api.with_timeline(|t| t.events().to_vec());
    for e in &events {
        let v: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
        let key = format!(
            r#"{{workspace_id="{}",activity="{}"}}"#,
            v["WorkspaceId"].as_str().unwrap_or(""),
            v["Activity"].as_str().unwrap()
        );
        *all.entry(key.clone()).or_default() += 1.0;
        if v["IsSuccess"] == false {
            *failed.entry(key).or_default() += 1.0;
        }
    }
    (all, failed, events.len())
}

pub fn live_args(api: &SimulatedApi, max_per_hour: &str) -> Vec<String> {
    let mut args = simulated_tenant_args(&api.base_url());
    args.extend(
        [
            "--powerbi.poll-interval",
            "1s",
            "--powerbi.lookback",
            "4h",
            "--powerbi.initial-lookback",
            "4h",
            "--powerbi.max-requests-per-hour",
            max_per_hour,
            "--powerbi.retry-delay",
            "20ms",
            // Events appear within seconds here: re-read an ended hour soon after its end.
            "--powerbi.reread-ages",
            "5s,30s,2m",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args
}

#[test]
fn every_event_is_counted_once_across_late_arrivals_and_faults() {
    let rt = runtime();
    let config = ApiConfig {
        page_size: 40,
        retry_after_secs: 1,
        faults: Faults {
            throttle: 0.10,
            server_error: 0.15,
            truncate: 0.03,
            duplicate: 0.05,
            empty_page: 0.10,
        },
        ..ApiConfig::default()
    };
    let api = rt
        .block_on(SimulatedApi::start(config, late_log(300, 5_000), 0))
        .unwrap();
    let args = live_args(&api, "200");
    let e = Exporter::start_with_secret(&args);
    let (expected, expected_failed, n) = ground_truth(&api);

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut s = e.scrape();
    while family(&s, "powerbi_activity_events_total") != expected
        || s.get("powerbi_up") != Some(&1.0)
    {
        assert!(
            Instant::now() < deadline,
            "not converged in 60s: {} of {n} events counted",
            family(&s, "powerbi_activity_events_total")
                .values()
                .sum::<f64>()
        );
        std::thread::sleep(Duration::from_millis(250));
        s = e.scrape();
    }
    // A few more polls: re-reads must not change anything. The request log is read before and
    // after the scrape: a poll may be in flight, so the exporter's own counts lie between.
    std::thread::sleep(Duration::from_secs(3));
    let api_requests = |api: &SimulatedApi| -> Vec<_> {
        api.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("activityevents"))
            .collect()
    };
    let before = api_requests(&api);
    let s = e.scrape();
    let after = api_requests(&api);
    assert_eq!(family(&s, "powerbi_activity_events_total"), expected);
    assert_eq!(
        family(&s, "powerbi_activity_events_failed_total"),
        expected_failed
    );
    assert!(
        s["powerbi_events_duplicate_total"] > 0.0,
        "re-reads and duplicate deliveries were seen and skipped"
    );
    assert_eq!(
        family(&s, "powerbi_events_rejected_total")
            .values()
            .sum::<f64>(),
        0.0
    );
    let served = |log: &[powerbi_exporter::simulator::api::LoggedRequest], code: u16| {
        log.iter().filter(|r| r.status == code).count() as f64
    };
    for code in [429, 503] {
        let seen = api_requests_with_code(&s, &code.to_string());
        assert!(
            served(&after, code) >= 1.0,
            "the simulator never answered {code}: the fault was not exercised"
        );
        assert!(
            seen <= served(&after, code) && seen >= served(&before, code) - 3.0,
            "{code}: exporter saw {seen}, simulator served {}",
            served(&after, code)
        );
    }
    assert_eq!(
        s["powerbi_api_throttled_total"],
        api_requests_with_code(&s, "429")
    );

    // No rolling hour held more requests than the budget (the simulator logged each one).
    for r in &after {
        let in_hour = after
            .iter()
            .filter(|o| o.at.0 <= r.at.0 && o.at.0 > r.at.0 - HOUR)
            .count();
        assert!(
            in_hour <= 200,
            "{in_hour} requests in the hour before {:?}",
            r.at
        );
    }
    // The exporter's budget ledger agrees with the simulator's log, up to the poll in flight.
    let budget_left = s["powerbi_api_budget_remaining"];
    assert!(
        budget_left >= 200.0 - after.len() as f64
            && budget_left <= 200.0 - before.len() as f64 + 10.0,
        "budget left {budget_left}, requests {}..{}",
        before.len(),
        after.len()
    );
    // Empty pages carry a fresh token: they must never look like a paging loop.
    let loops: Vec<String> = e
        .log
        .try_iter()
        .filter(|l| l.contains("continuation was returned twice"))
        .collect();
    assert!(loops.is_empty(), "{loops:#?}");
}

#[test]
fn a_foreign_continuation_is_refused_and_never_gets_the_token() {
    let rt = runtime();
    let foreign = rt
        .block_on(SimulatedApi::start(ApiConfig::default(), late_log(0, 1), 0))
        .unwrap();
    let config = ApiConfig {
        page_size: 1,
        continuation_base: Some(foreign.base_url()),
        ..ApiConfig::default()
    };
    let api = rt
        .block_on(SimulatedApi::start(config, late_log(30, 1), 0))
        .unwrap();
    let args = live_args(&api, "200");
    let e = Exporter::start_with_secret(&args);
    let s = e.scrape_until(
        Duration::from_secs(20),
        |s| sample_value(s, "powerbi_api_foreign_continuations_total") >= 1.0,
        |_| "no refused continuation seen".into(),
    );
    assert_eq!(s["powerbi_up"], 0.0);
    assert!(
        foreign.requests().is_empty(),
        "the foreign host got requests: {:?}",
        foreign.requests()
    );
}

/// A tenant whose pages continue in `style`, one event per page so every hour pages.
fn tenant_continuing(rt: &tokio::runtime::Runtime, style: ContinuationStyle) -> SimulatedApi {
    let config = ApiConfig {
        page_size: 1,
        continuation: style,
        ..ApiConfig::default()
    };
    rt.block_on(SimulatedApi::start(config, late_log(30, 1), 0))
        .unwrap()
}

#[test]
fn relative_and_broken_continuation_uris_still_read_every_page() {
    let rt = runtime();
    // Relative: resolved against the API URL. BrokenUri: the token is used instead.
    for style in [
        ContinuationStyle::Relative,
        ContinuationStyle::Mixed,
        ContinuationStyle::BrokenUri,
    ] {
        let api = tenant_continuing(&rt, style);
        let (expected, _, n) = ground_truth(&api);
        let args = live_args(&api, "200");
        let e = Exporter::start_with_secret(&args);
        let s = e.scrape_until(
            Duration::from_secs(20),
            |s| {
                family(s, "powerbi_activity_events_total") == expected
                    && s.get("powerbi_up") == Some(&1.0)
            },
            |s| {
                format!(
                    "{style:?}: {} of {n} events counted, up {:?}",
                    family(s, "powerbi_activity_events_total")
                        .values()
                        .sum::<f64>(),
                    s.get("powerbi_up")
                )
            },
        );
        assert_eq!(s["powerbi_api_bad_continuations_total"], 0.0, "{style:?}");
    }
}

#[test]
fn an_unusable_continuation_leaves_the_hour_incomplete_and_says_which() {
    let rt = runtime();
    let api = tenant_continuing(&rt, ContinuationStyle::Unusable);
    let args = live_args(&api, "200");
    let mut e = Exporter::start_with_secret(&args);
    // Two polls' worth: the hour is read again, not recorded as read to its end.
    let s = e.scrape_until(
        Duration::from_secs(20),
        |s| sample_value(s, "powerbi_api_bad_continuations_total") >= 2.0,
        |s| {
            format!(
                "no unusable continuation counted twice: {:?}",
                s.get("powerbi_api_bad_continuations_total")
            )
        },
    );
    assert_eq!(s["powerbi_up"], 0.0);
    e.terminate();
    let log: Vec<String> = e.log.try_iter().collect();
    // The warning names the hour (`hour=2026-11-29T21:00Z`-style) and what was wrong.
    let warned = log
        .iter()
        .find(|l| l.contains("level=warn") && l.contains("hour=") && l.contains("continuationUri"));
    assert!(warned.is_some(), "{log:#?}");
}

/// Every `"blocked_until"` value in a JSON document, wherever it is nested.
fn blocked_until_values(v: &serde_json::Value, out: &mut Vec<i64>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k == "blocked_until" {
                    out.extend(v.as_i64());
                }
                blocked_until_values(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| blocked_until_values(v, out)),
        _ => {}
    }
}

#[test]
fn an_absurd_retry_after_is_clamped_to_an_hour_counted_and_not_persisted() {
    let rt = runtime();
    let config = ApiConfig {
        retry_after_secs: 99_999_999_999, // the year 5195
        throttle_first: 1,
        ..ApiConfig::default()
    };
    let api = rt
        .block_on(SimulatedApi::start(config, late_log(5, 1), 0))
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut args = live_args(&api, "200");
    args.extend(["--state.dir".into(), state.path().to_str().unwrap().into()]);
    let mut e = Exporter::start_with_secret(&args);
    let s = e.scrape_until(
        Duration::from_secs(20),
        |s| sample_value(s, "powerbi_api_retry_after_clamped_total") >= 1.0,
        |s| {
            format!(
                "no clamped Retry-After counted: {s:?} {:?}",
                e.log.try_iter().collect::<Vec<_>>()
            )
        },
    );
    assert_eq!(s["powerbi_up"], 0.0);
    assert_eq!(s["powerbi_api_throttled_total"], 1.0);
    let stopped_at = UnixMillis::now().0;
    e.terminate();
    let log: Vec<String> = e.log.try_iter().collect();
    assert!(
        log.iter()
            .any(|l| l.contains("level=warn") && l.contains("Retry-After")),
        "{log:#?}"
    );
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.path().join("state.json")).unwrap()).unwrap();
    let mut blocked = Vec::new();
    blocked_until_values(&saved, &mut blocked);
    assert!(!blocked.is_empty(), "no blocked_until in the state");
    for until in blocked {
        assert!(
            until <= stopped_at + HOUR,
            "the saved state blocks polling until {until}, more than an hour after {stopped_at}"
        );
    }
}

#[test]
fn a_429_without_retry_after_waits_as_long_as_its_body_says() {
    let rt = runtime();
    for shape in [ThrottleShape::RetryInText, ThrottleShape::UntilText] {
        let config = ApiConfig {
            retry_after_secs: 2,
            throttle_shape: shape,
            throttle_first: 1,
            ..ApiConfig::default()
        };
        let api = rt
            .block_on(SimulatedApi::start(config, late_log(10, 1), 0))
            .unwrap();
        let (expected, _, n) = ground_truth(&api);
        let args = live_args(&api, "200");
        let e = Exporter::start_with_secret(&args);
        // Without reading the body the client waits 60 s: far past this deadline.
        e.scrape_until(
            Duration::from_secs(25),
            |s| family(s, "powerbi_activity_events_total") == expected,
            |s| {
                format!(
                    "{shape:?}: {} of {n} events counted",
                    family(s, "powerbi_activity_events_total")
                        .values()
                        .sum::<f64>()
                )
            },
        );
        let events: Vec<_> = api
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("activityevents"))
            .collect();
        assert_eq!(events[0].status, 429, "{shape:?}");
        let waited = events[1].at.0 - events[0].at.0;
        assert!(
            (2_000..60_000).contains(&waited),
            "{shape:?}: the next request came {waited} ms after the 429 that asked for 2 s"
        );
    }
}

#[test]
fn an_absurd_token_lifetime_is_capped_at_a_day_without_overflow() {
    let rt = runtime();
    let config = ApiConfig {
        token_lifetime_secs: 100_000_000_000_000_000, // × 1000 overflows i64 milliseconds
        ..ApiConfig::default()
    };
    let api = rt
        .block_on(SimulatedApi::start(config, late_log(6, 1), 0))
        .unwrap();
    let (expected, _, n) = ground_truth(&api);
    let args = live_args(&api, "200");
    let e = Exporter::start_with_secret(&args);
    let s = e.scrape_until(
        Duration::from_secs(20),
        |s| family(s, "powerbi_activity_events_total") == expected,
        |s| format!("{n} events not counted: {s:?}"),
    );
    let expiry = s[r#"powerbi_credential_expiry_timestamp_seconds{kind="token"}"#];
    let now = UnixMillis::now().0 as f64 / 1000.0;
    assert!(
        expiry > now && expiry <= now + 86_400.0,
        "token expiry {expiry} is not within a day of {now}"
    );
}

#[test]
fn events_shaped_like_microsofts_examples_are_counted_exactly() {
    let rt = runtime();
    let config = ApiConfig {
        page_size: 25,
        continuation: ContinuationStyle::Mixed,
        ..ApiConfig::default()
    };
    let api = rt
        .block_on(SimulatedApi::start(config, odd_log(200), 0))
        .unwrap();
    let (expected, expected_failed, n) = ground_truth(&api);
    // The shapes are there: counted from the raw JSON, not assumed.
    let events = api.with_timeline(|t| t.events().to_vec());
    let raw: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_slice(&e.json).unwrap())
        .collect();
    let shaped = |f: &dyn Fn(&serde_json::Value) -> bool| raw.iter().filter(|v| f(v)).count();
    assert!(shaped(&|v| v["Id"].as_str().unwrap().starts_with('g')) > 0);
    assert!(shaped(&|v| v["WorkspaceId"] == "My Workspace") > 0);
    assert!(shaped(&|v| v.get("UserId").is_none()) > 0);
    assert!(shaped(&|v| v["UserType"].is_string()) > 0);
    let args = live_args(&api, "200");
    let e = Exporter::start_with_secret(&args);
    let s = e.scrape_until(
        Duration::from_secs(20),
        |s| {
            family(s, "powerbi_activity_events_total") == expected
                && s.get("powerbi_up") == Some(&1.0)
        },
        |s| {
            format!(
                "{} of {n} events counted",
                family(s, "powerbi_activity_events_total")
                    .values()
                    .sum::<f64>()
            )
        },
    );
    assert_eq!(
        family(&s, "powerbi_activity_events_failed_total"),
        expected_failed
    );
    assert_eq!(
        family(&s, "powerbi_events_rejected_total")
            .values()
            .sum::<f64>(),
        0.0
    );
}

#[test]
fn a_wrong_secret_is_reported_with_its_likely_cause() {
    let rt = runtime();
    let api = rt
        .block_on(SimulatedApi::start(ApiConfig::default(), late_log(5, 1), 0))
        .unwrap();
    let args = live_args(&api, "200");
    let mut e = Exporter::start_with_env(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[("AZURE_CLIENT_SECRET", "wrong")],
    );
    let s = e.scrape_until(
        Duration::from_secs(20),
        |s| sample_value(s, r#"powerbi_auth_errors_total{reason="invalid_client"}"#) >= 1.0,
        |_| "no auth error counted".into(),
    );
    assert_eq!(s["powerbi_up"], 0.0);
    assert!(
        api.requests()
            .iter()
            .all(|r| !r.path.ends_with("activityevents")),
        "no API call without a token"
    );
    e.terminate();
    let log: Vec<String> = e.log.try_iter().collect();
    assert!(
        log.iter()
            .any(|l| l.contains("check AZURE_CLIENT_ID and the client secret")),
        "{log:?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("wrong")),
        "the secret must not be logged: {log:?}"
    );
}

#[test]
fn killed_twice_mid_run_it_resumes_exactly_and_counters_never_go_down() {
    let rt = runtime();
    let config = ApiConfig {
        page_size: 40,
        retry_after_secs: 1,
        faults: Faults {
            throttle: 0.05,
            server_error: 0.05,
            truncate: 0.02,
            duplicate: 0.05,
            empty_page: 0.10,
        },
        ..ApiConfig::default()
    };
    let api = rt
        .block_on(SimulatedApi::start(config, late_log(300, 8_000), 0))
        .unwrap();
    let (expected, expected_failed, n) = ground_truth(&api);
    let state = tempfile::tempdir().unwrap();
    let mut args = live_args(&api, "200");
    args.extend([
        "--state.dir".to_string(),
        state.path().to_str().unwrap().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // The largest value each counter has shown: no later scrape may show less.
    let mut high: BTreeMap<String, f64> = BTreeMap::new();
    let mut check = |s: &BTreeMap<String, f64>| {
        for (series, v) in s.iter().filter(|(k, _)| k.contains("_total")) {
            let seen = high.entry(series.clone()).or_insert(*v);
            assert!(v >= seen, "{series} went down from {seen} to {v}");
            *seen = v.max(*seen);
        }
    };
    let mut started_last = UnixMillis::now();
    for run in 0..3 {
        let mut e = Exporter::start_with_env(&args, &[SECRET]);
        started_last = UnixMillis::now();
        let until = Instant::now() + Duration::from_millis(if run < 2 { 3_000 } else { 60_000 });
        loop {
            let s = e.scrape();
            check(&s);
            if run == 2
                && family(&s, "powerbi_activity_events_total") == expected
                && s.get("powerbi_up") == Some(&1.0)
            {
                assert_eq!(
                    family(&s, "powerbi_activity_events_failed_total"),
                    expected_failed
                );
                break;
            }
            assert!(
                Instant::now() < until || run < 2,
                "not converged after two kills: {} of {n}",
                family(&s, "powerbi_activity_events_total")
                    .values()
                    .sum::<f64>()
            );
            if Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        if run < 2 {
            e.child.kill().unwrap(); // SIGKILL: no shutdown, no last save
            e.child.wait().unwrap();
        }
    }
    // The request ledger survived the restarts: the budget left counts the earlier processes'
    // requests too, not only the last one's.
    let s = Exporter::start_with_env(&args, &[SECRET]).scrape();
    let requests: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("activityevents"))
        .collect();
    let by_last = requests.iter().filter(|r| r.at >= started_last).count();
    assert!(
        s["powerbi_api_budget_remaining"] < (200 - by_last) as f64,
        "budget ledger reset across restarts"
    );
    assert!(requests.iter().all(|r| requests
        .iter()
        .filter(|o| o.at <= r.at && o.at.0 > r.at.0 - HOUR)
        .count()
        <= 200));
}

/// Starts the exporter with `extra` args and `env`, and waits until the 6 events of the log are
/// counted: the credential got a token the API accepted.
pub fn counts_with_credential(
    api: &SimulatedApi,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Exporter {
    let mut args = live_args(api, "200");
    args.extend(extra.iter().map(|s| s.to_string()));
    let e = Exporter::start_with_env(&args.iter().map(String::as_str).collect::<Vec<_>>(), env);
    let s = e.scrape_until(
        Duration::from_secs(20),
        |s| {
            family(s, "powerbi_activity_events_total")
                .values()
                .sum::<f64>()
                == 6.0
                && s.get("powerbi_up") == Some(&1.0)
        },
        |s| {
            format!(
                "no events counted with {extra:?}: {:?}",
                family(s, "powerbi_auth_errors_total")
            )
        },
    );
    assert!(s.contains_key(r#"powerbi_credential_expiry_timestamp_seconds{kind="token"}"#));
    e
}

pub fn openssl(args: &[&str]) -> String {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed RSA certificate and key in one PEM, and what the tenant knows of it: the
/// public key as PKCS#1 DER and the base64url SHA-256 of the certificate's DER (`x5t#S256`),
/// both computed by openssl.
pub fn certificate(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, TrustedCertificate) {
    let (key, cert, public, cert_der, digest) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.der")),
        dir.join(format!("{name}.crt.der")),
        dir.join(format!("{name}.sha256")),
    );
    let p = |p: &std::path::Path| p.to_str().unwrap().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p(&key),
        "-out",
        &p(&cert),
        "-days",
        "30",
        "-subj",
        "/CN=powerbi-exporter-test",
    ]);
    openssl(&[
        "rsa",
        "-in",
        &p(&key),
        "-RSAPublicKey_out",
        "-outform",
        "DER",
        "-out",
        &p(&public),
    ]);
    openssl(&[
        "x509",
        "-in",
        &p(&cert),
        "-outform",
        "DER",
        "-out",
        &p(&cert_der),
    ]);
    openssl(&[
        "dgst",
        "-sha256",
        "-binary",
        "-out",
        &p(&digest),
        &p(&cert_der),
    ]);
    let base64 = openssl(&["base64", "-A", "-in", &p(&digest)]);
    let thumbprint_sha256 = base64
        .trim()
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_");
    let pem = dir.join(format!("{name}.pem"));
    std::fs::write(
        &pem,
        std::fs::read_to_string(&cert).unwrap() + &std::fs::read_to_string(&key).unwrap(),
    )
    .unwrap();
    let trusted = TrustedCertificate {
        public_key: std::fs::read(public).unwrap(),
        thumbprint_sha256,
    };
    (pem, trusted)
}

#[test]
fn a_client_certificate_signs_its_assertion_and_its_expiry_is_exported() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (pem, trusted) = certificate(dir.path(), "good");
    let config = ApiConfig {
        certificate: Some(trusted),
        ..ApiConfig::default()
    };
    let api = rt
        .block_on(SimulatedApi::start(config, late_log(6, 1), 0))
        .unwrap();
    let e = counts_with_credential(
        &api,
        &[],
        &[("AZURE_CLIENT_CERTIFICATE_PATH", pem.to_str().unwrap())],
    );
    // notAfter as openssl prints it, e.g. "notAfter=Dec 22 03:40:00 2026 GMT".
    let end = openssl(&["x509", "-in", pem.to_str().unwrap(), "-noout", "-enddate"]);
    let f: Vec<&str> = end
        .trim()
        .trim_start_matches("notAfter=")
        .split_whitespace()
        .collect();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == f[0])
    .unwrap()
        + 1;
    let iso = format!(
        "{}-{month:02}-{:02}T{}Z",
        f[3],
        f[1].parse::<u32>().unwrap(),
        f[2]
    );
    let expected = powerbi_exporter::decode::time::parse_creation_time(&iso)
        .unwrap()
        .0
        / 1000;
    assert_eq!(
        e.scrape()[r#"powerbi_credential_expiry_timestamp_seconds{kind="certificate"}"#],
        expected as f64
    );

    // A certificate whose key the tenant does not know is refused.
    let (other, _) = certificate(dir.path(), "other");
    let e = Exporter::start_with_env(
        &live_args(&api, "200")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[("AZURE_CLIENT_CERTIFICATE_PATH", other.to_str().unwrap())],
    );
    e.scrape_until(
        Duration::from_secs(20),
        |s| sample_value(s, r#"powerbi_auth_errors_total{reason="invalid_client"}"#) >= 1.0,
        |_| "an unknown certificate was not refused".into(),
    );
}

#[test]
fn a_workload_identity_presents_its_federated_token_file() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("azure-identity-token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.federated.token\n").unwrap();
    let config = ApiConfig {
        federated_token: Some("eyJhbGciOiJSUzI1NiJ9.federated.token".into()),
        ..ApiConfig::default()
    };
    let api = rt
        .block_on(SimulatedApi::start(config, late_log(6, 1), 0))
        .unwrap();
    counts_with_credential(
        &api,
        &[],
        &[("AZURE_FEDERATED_TOKEN_FILE", token_file.to_str().unwrap())],
    );
}

#[test]
fn managed_identities_on_app_service_and_imds() {
    let rt = runtime();
    let config = ApiConfig {
        identity_header: Some("rotated-header-value".into()),
        ..ApiConfig::default()
    };
    let api = rt
        .block_on(SimulatedApi::start(config, late_log(6, 1), 0))
        .unwrap();
    let endpoint = format!("{}/msi/token", api.base_url());
    counts_with_credential(
        &api,
        &["--azure.managed-identity"],
        &[
            ("IDENTITY_ENDPOINT", &endpoint),
            ("IDENTITY_HEADER", "rotated-header-value"),
        ],
    );
    let imds = format!("{}/metadata/identity/oauth2/token", api.base_url());
    counts_with_credential(
        &api,
        &["--azure.managed-identity", "--azure.imds-endpoint", &imds],
        &[],
    );
    let tokens: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("token"))
        .map(|r| (r.path, r.status))
        .collect();
    assert!(
        tokens.contains(&("/msi/token".to_string(), 200))
            && tokens.contains(&("/metadata/identity/oauth2/token".to_string(), 200)),
        "{tokens:?}"
    );
}

#[test]
fn the_exporters_own_reads_of_the_log_are_filtered_unless_asked_for() {
    let rt = runtime();
    let mut timeline = late_log(6, 1);
    let now = UnixMillis::now();
    let own = format!(
        r#"{{"Id":"0e0e0e0e-0000-4000-8000-000000000001","CreationTime":"{}","Activity":"ExportActivityEvents","UserId":"{}","IsSuccess":true}}"#,
        UnixMillis(now.0 - 60_000).to_api_string(),
        ApiConfig::default().client_id.to_uppercase()
    );
    timeline.push(UnixMillis(now.0 - 60_000), now, own.into_bytes());
    let api = rt
        .block_on(SimulatedApi::start(ApiConfig::default(), timeline, 0))
        .unwrap();
    let e = counts_with_credential(&api, &[], &[SECRET]);
    let s = e.scrape();
    assert_eq!(
        s[r#"powerbi_events_filtered_total{reason="own_export"}"#],
        1.0
    );
    assert!(!family(&s, "powerbi_activity_events_total")
        .keys()
        .any(|k| k.contains("ExportActivityEvents")));
    drop(e);
    // With --powerbi.count-own-exports the same event is usage like any other.
    let mut args = live_args(&api, "200");
    args.push("--powerbi.count-own-exports".into());
    let e = Exporter::start_with_secret(&args);
    e.scrape_until(
        Duration::from_secs(20),
        |s| {
            s.contains_key(
                r#"powerbi_activity_events_total{workspace_id="",activity="ExportActivityEvents"}"#,
            )
        },
        |_| "own export not counted with --powerbi.count-own-exports".into(),
    );
}

#[test]
fn top_ranks_a_tenants_last_hours_as_the_original_script_did() {
    let rt = runtime();
    let api = rt
        .block_on(SimulatedApi::start(
            ApiConfig {
                page_size: 50,
                ..ApiConfig::default()
            },
            late_log(200, 1),
            0,
        ))
        .unwrap();
    // Expected ranking from the raw JSON: views and distinct viewers per report.
    let mut views: BTreeMap<
        String,
        (
            u64,
            std::collections::BTreeSet<String>,
            String,
            String,
            String,
        ),
    > = BTreeMap::new();
    for e in api.with_timeline(|t| t.events().to_vec()) {
        let v: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
        if v["Activity"] != "ViewReport" {
            continue;
        }
        let entry = views
            .entry(v["ReportId"].as_str().unwrap().to_string())
            .or_default();
        entry.0 += 1;
        entry.1.insert(v["UserId"].as_str().unwrap().to_lowercase());
        entry.2 = v["WorkspaceId"].as_str().unwrap().to_string();
        entry.3 = v["WorkSpaceName"]
            .as_str()
            .or(v["WorkspaceName"].as_str())
            .unwrap()
            .to_string();
        entry.4 = v["ReportName"].as_str().unwrap().to_string();
    }
    let mut rows: Vec<_> = views.into_iter().collect();
    rows.sort_by(|(ida, a), (idb, b)| {
        (b.0, b.1.len())
            .cmp(&(a.0, a.1.len()))
            .then((&a.4, ida).cmp(&(&b.4, idb)))
    });
    let expected: String = std::iter::once(
        "rank,workspace_id,workspace_name,report_id,report_name,views,distinct_viewers\n"
            .to_string(),
    )
    .chain(rows.iter().take(3).enumerate().map(|(i, (id, r))| {
        format!(
            "{},{},{},{id},{},{},{}\n",
            i + 1,
            r.2,
            r.3,
            r.4,
            r.0,
            r.1.len()
        )
    }))
    .collect();

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("top.csv");
    let base = api.base_url();
    let out = std::process::Command::new(BIN)
        .args([
            "top",
            "--since",
            "4h",
            "--limit",
            "3",
            "--csv",
            csv.to_str().unwrap(),
        ])
        .args(simulated_tenant_args(&base))
        .args(["--powerbi.retry-delay", "20ms"])
        .env(SECRET.0, SECRET.1)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), expected);
    assert_eq!(
        stdout(&out).lines().count(),
        4,
        "header and three rows:\n{}",
        stdout(&out)
    );

    let out = run(&["top"]);
    assert_exit_2_naming(&out, &["top needs --replay PATH, or a tenant"]);
}

#[test]
fn the_secret_and_tokens_never_appear_in_logs_metrics_or_pages() {
    let rt = runtime();
    let secret = "s3cr3t-Zq9-never-print-me";
    let config = ApiConfig {
        client_secret: secret.into(),
        faults: Faults {
            server_error: 0.2,
            throttle: 0.1,
            ..Faults::default()
        },
        retry_after_secs: 1,
        ..ApiConfig::default()
    };
    let api = rt
        .block_on(SimulatedApi::start(config, late_log(20, 1), 0))
        .unwrap();
    let mut args = live_args(&api, "200");
    args.extend(["--log.level".to_string(), "debug".to_string()]);
    let mut e = Exporter::start_with_env(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[("AZURE_CLIENT_SECRET", secret)],
    );
    e.scrape_until(
        Duration::from_secs(20),
        |s| s.get("powerbi_up") == Some(&1.0),
        |_| "no successful poll".into(),
    );
    let client = http();
    let served: String = ["/metrics", "/", "/-/healthy", "/-/ready", "/nope"]
        .iter()
        .map(|p| client.get(e.url(p)).send().unwrap().text().unwrap())
        .collect();
    e.terminate();
    let logged: String = e.log.try_iter().collect::<Vec<_>>().join("\n");
    // The simulator's access tokens all start with "sim-"; none may leak either.
    assert!(
        api.requests().iter().any(|r| r.authorized),
        "the API was called with a token"
    );
    for (what, text) in [("served", &served), ("logged", &logged)] {
        assert!(!text.contains(secret), "the client secret was {what}");
        assert!(!text.contains("sim-"), "an access token was {what}");
        assert!(
            !text.to_lowercase().contains("bearer "),
            "an authorization header was {what}"
        );
    }
    assert!(
        logged.contains("level=debug"),
        "debug logging was on, so the scan covered it"
    );
}
