//! History outside the lookback: the initial lookback loaded at first start, the API's 28-day
//! edge, and replayed archives of any span and order.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use powerbi_exporter::decode::UnixMillis;
use powerbi_exporter::simulator::api::{ApiConfig, SimulatedApi};
use powerbi_exporter::simulator::timeline::{Lag, Timeline};
use powerbi_exporter::simulator::{Rng, Tenant, TenantSpec};

use crate::support::*;

const HOUR: i64 = 3_600_000;
const SECRET: (&str, &str) = ("AZURE_CLIENT_SECRET", "simulated-secret");

/// `n` events spread over the `hours` before now, all visible already.
fn history(n: usize, hours: i64) -> Timeline {
    let now = UnixMillis::now();
    let tenant = Tenant::new(TenantSpec {
        seed: 5,
        workspaces: 3,
        users: 20,
    });
    let mut timeline = Timeline::new(tenant.clone(), 5, 0.0, Lag::default(), now);
    let mut rng = Rng::new(55);
    for _ in 0..n {
        let time = UnixMillis(now.0 - hours * HOUR + rng.below((hours * HOUR) as u64 - 60_000) as i64);
        let mut json = Vec::new();
        tenant.write_event(&mut rng, time, &mut json);
        timeline.push(time, now, json);
    }
    timeline
}

/// Events per `{workspace_id=…,activity=…}`, from the raw JSON.
fn truth(events: impl IntoIterator<Item = serde_json::Value>) -> BTreeMap<String, f64> {
    let mut all = BTreeMap::new();
    for v in events {
        let key = format!(
            r#"{{workspace_id="{}",activity="{}"}}"#,
            v["WorkspaceId"].as_str().unwrap_or(""),
            v["Activity"].as_str().unwrap()
        );
        *all.entry(key).or_default() += 1.0;
    }
    all
}

fn tenant_args(api: &SimulatedApi, extra: &[&str]) -> Vec<String> {
    let mut args = simulated_tenant_args(&api.base_url());
    args.extend(
        ["--powerbi.poll-interval", "1s", "--powerbi.retry-delay", "20ms"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string()),
    );
    args
}

#[test]
fn an_initial_lookback_longer_than_the_lookback_loads_every_hour_once() {
    let rt = runtime();
    let config = ApiConfig {
        page_size: 50,
        ..ApiConfig::default()
    };
    let api = rt
        .block_on(SimulatedApi::start(config, history(400, 4), 0))
        .unwrap();
    let expected = truth(api.with_timeline(|t| {
        t.events()
            .iter()
            .map(|e| serde_json::from_slice(&e.json).unwrap())
            .collect::<Vec<_>>()
    }));
    let args = tenant_args(
        &api,
        &[
            "--powerbi.lookback",
            "1h",
            "--powerbi.initial-lookback",
            "5h",
            "--powerbi.max-requests-per-hour",
            "200",
        ],
    );
    let e = Exporter::start_with_env(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[SECRET],
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut s = e.scrape();
    while family(&s, "powerbi_activity_events_total") != expected
        || s.get("powerbi_initial_lookback_hours_remaining") != Some(&0.0)
    {
        assert!(
            Instant::now() < deadline,
            "not converged in 40s: {} of 400 events counted, {:?} hours remaining, rejected {:?}",
            family(&s, "powerbi_activity_events_total")
                .values()
                .sum::<f64>(),
            s.get("powerbi_initial_lookback_hours_remaining"),
            family(&s, "powerbi_events_rejected_total"),
        );
        std::thread::sleep(Duration::from_millis(250));
        s = e.scrape();
    }
    assert_eq!(
        family(&s, "powerbi_events_rejected_total")
            .values()
            .sum::<f64>(),
        0.0
    );
    let log: Vec<String> = e.log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("Initial lookback loaded")),
        "progress is logged: {log:#?}"
    );
}

#[test]
fn a_28_day_lookback_never_asks_for_an_hour_the_api_no_longer_serves() {
    let rt = runtime();
    let api = rt
        .block_on(SimulatedApi::start(ApiConfig::default(), history(20, 2), 0))
        .unwrap();
    let args = tenant_args(
        &api,
        &[
            "--powerbi.lookback",
            "28d",
            "--powerbi.initial-lookback",
            "28d",
            "--powerbi.max-requests-per-hour",
            "3000",
        ],
    );
    let e = Exporter::start_with_env(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[SECRET],
    );
    // Polls that read the oldest hours first (never-read hours go oldest first).
    let deadline = Instant::now() + Duration::from_secs(30);
    while api
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("activityevents") && r.status == 200)
        .count()
        < 5
    {
        assert!(Instant::now() < deadline, "no reads within 30s");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let refused: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.status == 400)
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
    let s = e.scrape();
    assert_eq!(s.get(r#"powerbi_api_requests_total{code="400"}"#), None);
}
