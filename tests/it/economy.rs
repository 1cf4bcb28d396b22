//! API economy: the live source against the simulated tenant on a simulated clock, a week of
//! polling in seconds, with the documented latency (a tail up to 24 h), a 2-hour API outage
//! and a restart. Every event must be read and counted once by the exporter's aggregator, and
//! the requests per day stay within a quarter of what the stalest-first planner sent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use powerbi_exporter::aggregate::{AggregateConfig, Aggregator, Reference};
use powerbi_exporter::decode::decode_slice;
use powerbi_exporter::decode::UnixMillis;
use powerbi_exporter::simulator::api::{ApiConfig, LoggedRequest, Outage, SimulatedApi};
use powerbi_exporter::simulator::clock::{SharedClock, SimulatedClock};
use powerbi_exporter::simulator::timeline::{Lag, Timeline};
use powerbi_exporter::simulator::{Tenant, TenantSpec};
use powerbi_exporter::source::powerbi::client::RetryPolicy;
use powerbi_exporter::source::powerbi::window::PlanConfig;
use powerbi_exporter::source::powerbi::{PowerBiConfig, PowerBiSource};
use powerbi_exporter::source::{Body, Source, SourceMessage, SourceStatus};

use crate::support::runtime;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Sunday 2026-11-08T00:00Z: the simulated week starts here.
const WEEK_START: UnixMillis = UnixMillis(1_794_096_000_000);
const DAYS: i64 = 7;

/// What happens during the simulated week.
struct Scenario {
    /// The API answers 503 for two hours, on day 2 from 10:00.
    outage: Outage,
    /// The exporter stops on day 4 at 08:00 and starts again 10 minutes later from its saved
    /// status.
    restart_at: UnixMillis,
    downtime: Duration,
    end: UnixMillis,
}

impl Scenario {
    fn week() -> Self {
        Scenario {
            outage: Outage {
                from: UnixMillis(WEEK_START.0 + 2 * DAY + 10 * HOUR),
                until: UnixMillis(WEEK_START.0 + 2 * DAY + 12 * HOUR),
            },
            restart_at: UnixMillis(WEEK_START.0 + 4 * DAY + 8 * HOUR),
            downtime: Duration::from_secs(600),
            end: UnixMillis(WEEK_START.0 + DAYS * DAY),
        }
    }
}

/// One event of the simulated tenant's log.
struct TrueEvent {
    id: String,
    time: UnixMillis,
    visible_at: UnixMillis,
}

/// What the week left: the simulator's request log and raw events, and every event Id the
/// source handed on, with how many times.
struct Week {
    requests: Vec<LoggedRequest>,
    /// Every event the simulated tenant logged, its Id from its raw JSON.
    truth: Vec<TrueEvent>,
    ids_read: BTreeMap<String, u32>,
    last_status: SourceStatus,
    /// The exporter's aggregator fed every page: events read, and those it skipped as
    /// already counted.
    processed: u64,
    duplicates: u64,
}

fn live_config(
    api: &SimulatedApi,
    sim: &ApiConfig,
    clock: SharedClock,
    plan: PlanConfig,
) -> PowerBiConfig {
    // At the flags' defaults (a 300 s poll, 120 requests an hour, no initial lookback) but for
    // the schedule under test and quick retries.
    PowerBiConfig {
        plan,
        retry: RetryPolicy {
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(10),
            ..RetryPolicy::default()
        },
        request_timeout: Duration::from_secs(30),
        ..PowerBiConfig::for_simulated_tenant(api.base_url(), sim, clock)
    }
}

/// The Ids on one API page, parsed with serde_json.
fn page_ids(body: &[u8]) -> Vec<String> {
    let page: serde_json::Value = serde_json::from_slice(body).unwrap();
    page["activityEventEntities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Id"].as_str().unwrap().to_string())
        .collect()
}

/// Runs one source until the clock passes `until`, counting the Ids of its pages; returns its
/// last status (what the state file would hold).
async fn run_source(
    config: PowerBiConfig,
    resume: Option<SourceStatus>,
    until: UnixMillis,
    ids_read: &mut BTreeMap<String, u32>,
    aggregator: &mut Aggregator,
) -> SourceStatus {
    let clock = config.clock.clone();
    let source = Box::new(PowerBiSource::new(config, resume).unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let task = tokio::spawn(source.run(tx));
    let mut last = None;
    while let Some(message) = rx.recv().await {
        match message {
            SourceMessage::Document(doc) => {
                let Body::Bytes(bytes) = doc.body else {
                    panic!("a live page is bytes")
                };
                for id in page_ids(&bytes) {
                    *ids_read.entry(id).or_default() += 1;
                }
                // As the pipeline does: the clock first (the dedup window ends there).
                aggregator.set_clock(clock.now());
                decode_slice(&bytes, aggregator).unwrap();
            }
            SourceMessage::Status(status) => {
                let done = clock.now() >= until;
                last = Some(*status);
                if done {
                    break;
                }
            }
            _ => {}
        }
    }
    // Stopped after a status, as a crash after a checkpoint: pages past it are not kept.
    task.abort();
    let _ = task.await;
    last.expect("the source sent a status")
}

fn run_week(plan: PlanConfig) -> Week {
    let scenario = Scenario::week();
    let sim_clock = Arc::new(SimulatedClock::starting_at(WEEK_START));
    let clock = SharedClock::new(sim_clock.clone());
    let tenant = Tenant::new(TenantSpec {
        seed: 17,
        workspaces: 6,
        users: 80,
    });
    let timeline = Timeline::new(tenant, 17, 1.5, Lag::documented(), WEEK_START);
    let sim = ApiConfig {
        outages: vec![scenario.outage],
        ..ApiConfig::default()
    };
    let rt = runtime();
    rt.block_on(async {
        let api = SimulatedApi::start_with_clock(sim.clone(), timeline, 0, clock.clone())
            .await
            .unwrap();
        let mut ids_read = BTreeMap::new();
        // The live default: the lookback + 2h. One aggregator across the restart: the source
        // stops right after a status, as a crash right after a checkpoint.
        let mut aggregator = Aggregator::new(&AggregateConfig {
            dedup_window: Duration::from_secs(26 * 3600),
            ..AggregateConfig::default()
        });
        let agg = &mut aggregator;
        let config = live_config(&api, &sim, clock.clone(), plan.clone());
        let saved = run_source(config, None, scenario.restart_at, &mut ids_read, agg).await;
        sim_clock.advance(scenario.downtime);
        let config = live_config(&api, &sim, clock.clone(), plan);
        let last_status = run_source(config, Some(saved), scenario.end, &mut ids_read, agg).await;
        let counted = aggregator.snapshot(Reference::NewestEvent);
        let count = |name: &str| counted.value(name, &[]).unwrap_or(0.0) as u64;
        let processed = count("powerbi_events_processed_total");
        let duplicates = count("powerbi_events_duplicate_total");
        let truth = api.with_timeline(|t| {
            t.events()
                .iter()
                .map(|e| {
                    let v: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
                    TrueEvent {
                        id: v["Id"].as_str().unwrap().to_string(),
                        time: e.time,
                        visible_at: e.visible_at,
                    }
                })
                .collect()
        });
        Week {
            requests: api.requests(),
            truth,
            ids_read,
            last_status,
            processed,
            duplicates,
        }
    })
}

/// Activity Events requests the simulated tenant answered on each day of the week.
fn requests_per_day(requests: &[LoggedRequest]) -> Vec<usize> {
    let mut days = vec![0; DAYS as usize];
    for r in requests
        .iter()
        .filter(|r| r.path.ends_with("activityevents"))
    {
        let day = (r.at.0 - WEEK_START.0).div_euclid(DAY);
        if let Some(n) = days.get_mut(day as usize) {
            *n += 1;
        }
    }
    days
}

/// Requests per day of the planner before the re-read schedule (stalest first with the whole
/// budget), measured on this same week at commit 2ebe2ea (`requests per simulated day:
/// [2340, 2880, 2880, 2880, 2863, 2880, 2880]`): 120 an hour, the whole default budget.
const STALEST_FIRST_PER_DAY: usize = 2880;

/// The hour an API request asked for (its `startDateTime`), when it names one.
fn asked_hour(r: &LoggedRequest) -> Option<i64> {
    let query = r.query.replace("%27", "'");
    let start = query.split("startDateTime='").nth(1)?.get(..24)?;
    (0..24 * 40)
        .map(|h| WEEK_START.0 / HOUR - 48 + h)
        .find(|h| UnixMillis(h * HOUR).to_iso_millis() == start)
}

#[test]
fn a_simulated_week_reads_every_event_with_a_quarter_of_the_old_requests() {
    let scenario = Scenario::week();
    let week = run_week(PlanConfig::default());
    let per_day = requests_per_day(&week.requests);
    eprintln!("requests per simulated day: {per_day:?}");
    for (day, n) in per_day.iter().enumerate() {
        assert!(
            *n * 4 <= STALEST_FIRST_PER_DAY,
            "day {day}: {n} requests, over a quarter of {STALEST_FIRST_PER_DAY}"
        );
    }
    let quiet_days = [1, 3, 5, 6].map(|d| per_day[d]);
    // 288 current-hour reads, 24 hours × 6 ages, and the few sooner reads of hours whose
    // re-read found late events.
    assert!(
        quiet_days.iter().all(|n| (432..=470).contains(n)),
        "{quiet_days:?}"
    );
    // Every event is read: the late ones (up to 24 h) by the hour's re-reads, those of the
    // outage's hours by the backlog after it. (With the ages 10m,1h,3h,8h,24h this week lost
    // one event: created 2026-11-09T11:41, visible at 22:30, after the hour's 8h read; its 24h
    // read fell in the outage. The 16h age reads it.) Events of the last 25 hours may still
    // appear, so they are left out.
    let settled_before = UnixMillis(scenario.end.0 - 25 * HOUR);
    let truth: BTreeSet<&str> = week.truth.iter().map(|e| e.id.as_str()).collect();
    assert!(
        week.truth.len() > 4_000,
        "a week of events: {}",
        week.truth.len()
    );
    let never_read: Vec<String> = week
        .truth
        .iter()
        .filter(|e| e.time < settled_before && !week.ids_read.contains_key(&e.id))
        .map(|e| {
            format!(
                "{} (created {}, visible {})",
                e.id,
                e.time.to_iso_millis(),
                e.visible_at.to_iso_millis()
            )
        })
        .collect();
    assert!(never_read.is_empty(), "never read: {never_read:?}");
    assert!(
        week.ids_read.keys().all(|id| truth.contains(id.as_str())),
        "an Id the tenant never logged was read"
    );
    assert!(week.last_status.up, "the last poll was complete");
    // Re-read many times, each event is counted once: the aggregator saw every entry of every
    // page and skipped all but the first of each Id.
    let entries: u64 = week.ids_read.values().map(|n| u64::from(*n)).sum();
    assert_eq!(week.processed, entries);
    assert_eq!(week.processed - week.duplicates, week.ids_read.len() as u64);
    assert!(week.duplicates > 0, "re-reads were seen");
}

/// Whether a request asked for the hour it was sent in (the current hour).
fn asked_current_hour(r: &LoggedRequest) -> bool {
    asked_hour(r) == Some(r.at.0.div_euclid(HOUR))
}

#[test]
fn a_poll_at_the_default_interval_sends_what_it_planned_and_counts_each_purpose() {
    let rt = runtime();
    let api = rt
        .block_on(SimulatedApi::start(
            ApiConfig::default(),
            crate::support::visible_history(TenantSpec::default(), 3, 200, 3),
            0,
        ))
        .unwrap();
    // The default poll interval (5m) and budget: the first poll, at the start, reads the
    // current hour and the 3 hours of the initial lookback; the next is 5 minutes away.
    let mut args = crate::support::simulated_tenant_args(&api.base_url());
    args.extend(["--powerbi.initial-lookback", "3h"].map(String::from));
    let e = crate::support::Exporter::start_with_secret(&args);
    let s = e.scrape_until(
        Duration::from_secs(30),
        |s| s.get("powerbi_up") == Some(&1.0),
        |s| format!("the first poll did not complete: {s:?}"),
    );
    std::thread::sleep(Duration::from_secs(3));
    let s_after = e.scrape();
    let log: Vec<LoggedRequest> = api
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("activityevents"))
        .collect();
    let current = log.iter().filter(|r| asked_current_hour(r)).count() as f64;
    let older = log.len() as f64 - current;
    let counted = |purpose: &str| {
        s_after
            .get(&format!(
                r#"powerbi_api_requests_total{{code="200",purpose="{purpose}"}}"#
            ))
            .copied()
            .unwrap_or(0.0)
    };
    // The tenant logged what the exporter counted, purpose by purpose, and nothing more.
    assert!(log.iter().all(|r| r.status == 200), "{log:#?}");
    assert_eq!((current, older), (1.0, 3.0), "{log:#?}");
    assert_eq!(counted("current"), current);
    assert_eq!(counted("initial"), older);
    let all: f64 = crate::support::family(&s_after, "powerbi_api_requests_total")
        .values()
        .sum();
    assert_eq!(all, log.len() as f64, "no other purpose sent anything");
    assert_eq!(
        crate::support::family(&s, "powerbi_api_requests_total"),
        crate::support::family(&s_after, "powerbi_api_requests_total"),
        "no poll between the scrapes: the next is 5 minutes away"
    );
    assert_eq!(s_after[r#"powerbi_lookback_hours{state="settled"}"#], 4.0);
    for state in ["due", "never_read", "failed"] {
        assert_eq!(
            s_after[&format!(r#"powerbi_lookback_hours{{state="{state}"}}"#)],
            0.0
        );
    }
    // 12 polls of the current hour, and the ages of the hours just read that fall in it.
    let planned = s_after["powerbi_api_requests_planned_next_hour"];
    assert!((12.0..=16.0).contains(&planned), "{planned}");
}

#[test]
fn a_bad_reread_schedule_exits_2_naming_it_and_check_config_shows_the_schedule() {
    let env = [
        ("AZURE_TENANT_ID", "tenant-1"),
        ("AZURE_CLIENT_ID", "client-1"),
        ("AZURE_CLIENT_SECRET", "x"),
    ];
    let out = crate::support::run_with_env(
        &["check-config", "--powerbi.reread-ages", "10m,1h,30m"],
        &env,
    );
    crate::support::assert_exit_2_naming(
        &out,
        &["flag --powerbi.reread-ages \"10m,1h,30m\": the ages must be ascending"],
    );
    let out = crate::support::run_with_env(
        &[
            "check-config",
            "--powerbi.lookback",
            "4h",
            "--powerbi.reread-ages",
            "1h,5h",
        ],
        &env,
    );
    crate::support::assert_exit_2_naming(
        &out,
        &["--powerbi.reread-ages \"1h,5h\": the last age must be within the lookback (4h)"],
    );
    let out = crate::support::run_with_env(&["check-config"], &env);
    let text = crate::support::stdout(&out);
    assert!(
        text.lines()
            .any(|l| l == "powerbi.reread_ages: 10m,1h,3h,8h,16h,1d"),
        "{text}"
    );
}

/// The last status of a source that ends by itself (`top`, `backfill`).
async fn final_status(source: PowerBiSource) -> SourceStatus {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let task = tokio::spawn(Box::new(source).run(tx));
    let mut last = None;
    while let Some(message) = rx.recv().await {
        if let SourceMessage::Status(status) = message {
            last = Some(*status);
        }
    }
    task.await.unwrap().unwrap();
    last.expect("a status")
}

#[test]
fn reads_of_history_count_their_requests_as_top_and_backfill() {
    use powerbi_exporter::source::powerbi::progress::ProgressMode;
    use powerbi_exporter::source::powerbi::window::{Purpose, UtcHour};
    let rt = runtime();
    let sim = ApiConfig::default();
    let history = crate::support::visible_history(TenantSpec::default(), 4, 50, 3);
    let api = rt
        .block_on(SimulatedApi::start(sim.clone(), history, 0))
        .unwrap();
    let config = live_config(&api, &sim, SharedClock::system(), PlanConfig::default());
    let activity_requests = |api: &SimulatedApi| {
        api.requests()
            .iter()
            .filter(|r| r.path.ends_with("activityevents"))
            .count() as u64
    };
    let by_purpose = |status: &SourceStatus| -> BTreeMap<(Purpose, String), u64> {
        status
            .api
            .requests
            .iter()
            .map(|(k, n)| ((k.purpose, k.code.clone()), *n))
            .collect()
    };
    let top = PowerBiSource::history(
        config.clone(),
        Duration::from_secs(3 * 3600),
        ProgressMode::Off,
    )
    .unwrap();
    let status = rt.block_on(final_status(top));
    let sent = activity_requests(&api);
    assert_eq!(
        sent, 4,
        "the 3 hours before the current one, and the current one"
    );
    assert_eq!(
        by_purpose(&status),
        [((Purpose::Top, "200".into()), sent)].into()
    );
    let now = UtcHour::containing(UnixMillis::now());
    let backfill = PowerBiSource::hours(
        config,
        (UtcHour(now.0 - 2), UtcHour(now.0 - 1)),
        None,
        ProgressMode::Off,
    )
    .unwrap();
    let status = rt.block_on(final_status(backfill));
    assert_eq!(activity_requests(&api), sent + 2);
    assert_eq!(
        by_purpose(&status),
        [((Purpose::Backfill, "200".into()), 2)].into()
    );
}
