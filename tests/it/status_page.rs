//! The status page at `/`, rendered by a real headless Chromium (Debian's `chromium`): its
//! sections hold the values computed here from the simulated tenant's raw events and request
//! log, it carries none of the tenant's user ids under any `--users.label` mode, and it stays
//! small.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use powerbi_exporter::decode::UnixMillis;
use powerbi_exporter::simulator::api::{ApiConfig, SimulatedApi};
use powerbi_exporter::simulator::timeline::Timeline;
use powerbi_exporter::simulator::TenantSpec;

use crate::support::*;

/// `n` events over the `hours` before now, all visible already.
fn history(n: usize, hours: i64) -> Timeline {
    let spec = TenantSpec {
        seed: 7,
        workspaces: 4,
        users: 30,
    };
    visible_history(spec, 77, n, hours)
}

/// The DOM after Chromium loaded `url`.
fn chromium_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            url,
        ])
        .output()
        .expect("chromium not found: scripts/test.sh installs Debian's `chromium` package");
    assert!(out.status.success(), "chromium failed: {}", stderr(&out));
    stdout(&out)
}

/// The text of the element with `id` (first match, up to its closing tag).
fn text_of(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let open_end = start + dom[start..].find('>').unwrap() + 1;
    let close = open_end + dom[open_end..].find('<').unwrap();
    dom[open_end..close].to_string()
}

struct Run {
    dom: String,
    events: Vec<serde_json::Value>,
    activity_requests: usize,
    raw_page_bytes: usize,
}

fn run(label: &str) -> Run {
    let rt = runtime();
    let api = rt
        .block_on(SimulatedApi::start(
            ApiConfig {
                page_size: 40,
                ..ApiConfig::default()
            },
            history(300, 4),
            0,
        ))
        .unwrap();
    let events: Vec<serde_json::Value> = api.with_timeline(|t| {
        t.events()
            .iter()
            .map(|e| serde_json::from_slice(&e.json).unwrap())
            .collect()
    });
    let mut args = simulated_tenant_args(&api.base_url());
    // One poll reads the whole initial lookback (10 minutes between polls: the page is still).
    args.extend(
        [
            "--powerbi.poll-interval",
            "10m",
            "--powerbi.lookback",
            "2h",
            "--powerbi.initial-lookback",
            "5h",
            "--powerbi.max-requests-per-hour",
            "180",
            "--users.label",
            label,
        ]
        .map(String::from),
    );
    let e = Exporter::start_with_secret(&args);
    let deadline = Instant::now() + Duration::from_secs(30);
    while e.scrape().get("powerbi_initial_lookback_hours_remaining") != Some(&0.0) {
        assert!(
            Instant::now() < deadline,
            "initial lookback not loaded in 30s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let raw_page_bytes = http()
        .get(e.url("/"))
        .send()
        .unwrap()
        .bytes()
        .unwrap()
        .len();
    let dom = chromium_dom(&e.url("/"));
    let activity_requests = api
        .requests()
        .iter()
        .filter(|r| r.path.contains("activityevents"))
        .count();
    Run {
        dom,
        events,
        activity_requests,
        raw_page_bytes,
    }
}

#[test]
fn the_status_page_renders_in_chromium_with_the_values_of_the_tenant() {
    let r = run("pseudonym");
    let dom = &r.dom;
    for section in ["links", "lag", "budget", "polls", "hours", "reports"] {
        assert!(
            dom.contains(&format!("id=\"{section}\"")),
            "no #{section}:\n{dom}"
        );
    }
    assert!(!dom.contains("<script"), "a plain page, no script");
    for link in [
        "href=\"/metrics\"",
        "href=\"/-/healthy\"",
        "href=\"/-/ready\"",
    ] {
        assert!(dom.contains(link), "no {link}");
    }
    // Lag: the newest event of the raw timeline (the lag itself moves with the clock).
    let newest = r
        .events
        .iter()
        .map(|v| v["CreationTime"].as_str().unwrap().to_string())
        .max()
        .unwrap();
    assert_eq!(text_of(dom, "watermark"), format!("{newest}Z"));
    assert_eq!(text_of(dom, "events-read"), r.events.len().to_string());
    // Budget: 180 less the Activity Events requests the simulator saw.
    assert_eq!(text_of(dom, "budget-limit"), "180");
    assert_eq!(
        text_of(dom, "budget-remaining"),
        (180 - r.activity_requests).to_string()
    );
    // Hours: the initial lookback's 5 hours before the current one, and the current one, all
    // read; nothing pending, nothing failed.
    assert_eq!(text_of(dom, "hours-read"), "6");
    assert_eq!(text_of(dom, "hours-not-yet-read"), "0");
    assert_eq!(text_of(dom, "hours-failed"), "0");
    assert_eq!(dom.matches("<td class=\"read\"").count(), 6);
    // Polls: the first poll read 6 hours and every event, and completed.
    let polls = &dom[dom.find("id=\"polls\"").unwrap()..];
    let body = &polls[polls.find("<tbody>").unwrap()..];
    let first_row = &body[..body.find("</tr>").unwrap()];
    let cells: Vec<&str> = first_row
        .split("<td")
        .skip(1)
        .map(|c| &c[c.find('>').unwrap() + 1..c.find("</td>").unwrap()])
        .collect();
    assert_eq!(
        &cells[2..],
        &["6", "0", &r.events.len().to_string(), "complete"]
    );
    // Top reports: ViewReport events per report from the raw events (all within the day).
    let mut views: BTreeMap<String, u64> = BTreeMap::new();
    for v in &r.events {
        if v["Activity"] == "ViewReport" {
            if let Some(id) = v["ReportId"].as_str() {
                *views.entry(id.to_lowercase()).or_default() += 1;
            }
        }
    }
    let mut expected: Vec<(String, u64)> = views.into_iter().collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let reports = &dom[dom.find("id=\"reports\"").unwrap()..];
    let shown: Vec<(String, u64)> = reports
        .split("data-report-id=\"")
        .skip(1)
        .map(|row| {
            let id = row[..row.find('"').unwrap()].to_string();
            let v = &row[row.find("views\">").unwrap() + 7..];
            (id, v[..v.find('<').unwrap()].parse().unwrap())
        })
        .collect();
    assert!(!expected.is_empty());
    let n = expected.len().min(10);
    // Ties at the cut may order differently; the counts in order must match exactly.
    assert_eq!(
        shown.iter().map(|s| s.1).collect::<Vec<_>>(),
        expected[..n].iter().map(|s| s.1).collect::<Vec<_>>()
    );
    for (id, count) in &shown {
        assert!(
            expected.contains(&(id.clone(), *count)),
            "{id} shown with {count} views"
        );
    }
    // Each name is the ReportName of the newest event of the report, HTML-escaped.
    for row in reports.split("data-report-id=\"").skip(1) {
        let id = &row[..row.find('"').unwrap()];
        let cell = &row[row.find("<td").unwrap()..];
        let name = &cell[cell.find('>').unwrap() + 1..cell.find("</td>").unwrap()];
        let newest = r
            .events
            .iter()
            .filter(|v| v["ReportId"].as_str().map(str::to_lowercase).as_deref() == Some(id))
            .filter(|v| v["ReportName"].is_string())
            .max_by_key(|v| v["CreationTime"].as_str().unwrap().to_string())
            .unwrap();
        let raw = newest["ReportName"].as_str().unwrap();
        let escaped = raw
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert_eq!(name, escaped, "report {id}");
    }
    assert!(
        r.raw_page_bytes < powerbi_exporter::exposition::status::MAX_BYTES,
        "{} bytes",
        r.raw_page_bytes
    );
}

#[test]
fn the_status_page_carries_no_user_id_under_any_label_mode() {
    for label in ["pseudonym", "off", "plain"] {
        let r = run(label);
        let users: Vec<String> = r
            .events
            .iter()
            .filter_map(|v| v["UserId"].as_str())
            .map(str::to_lowercase)
            .collect();
        assert!(!users.is_empty());
        let dom = r.dom.to_lowercase();
        for u in &users {
            assert!(!dom.contains(u), "{label}: the page shows {u}");
        }
        for ip in r.events.iter().filter_map(|v| v["ClientIP"].as_str()) {
            assert!(!dom.contains(ip), "{label}: the page shows {ip}");
        }
    }
}

#[test]
fn a_page_at_the_caps_renders_in_chromium_and_stays_under_its_bound() {
    use powerbi_exporter::aggregate::recent::TopReport;
    use powerbi_exporter::exposition::status::StatusData;
    use powerbi_exporter::exposition::status::{render, MAX_BYTES, TOP_REPORTS};
    use powerbi_exporter::source::powerbi::window::UtcHour;
    use powerbi_exporter::source::{
        HourGrid, HourState, PollOutcome, PollRecord, SourceStatus, POLLS_KEPT, REASON_CHARS,
    };
    // The largest page: 20 polls failed with the longest reason, 28 days of hours (from 23h: 29
    // rows), 10 reports whose ids and names are long and all characters that escape longest.
    let now = UnixMillis::now();
    let current = UtcHour::containing(now).0;
    let first = UtcHour(current - current.rem_euclid(24) - 28 * 24 + 23);
    let long = "\"<&>'".repeat(1000);
    let data = StatusData {
        source: Some(SourceStatus {
            budget_remaining: 200,
            budget_limit: 200,
            polls: (0..POLLS_KEPT)
                .map(|i| PollRecord {
                    started: UnixMillis(now.0 - i as i64 * 60_000),
                    duration_seconds: 1e6,
                    hours_read: u32::MAX,
                    hours_failed: u32::MAX,
                    events: u64::MAX,
                    outcome: PollOutcome::Failed {
                        reason: "\"".repeat(REASON_CHARS),
                    },
                })
                .collect(),
            hours: Some(HourGrid {
                first,
                states: (0..28 * 24)
                    .map(|i| [HourState::Read, HourState::Failed, HourState::NotYetRead][i % 3])
                    .collect(),
            }),
            ..SourceStatus::default()
        }),
        watermark: Some(now),
        processed: u64::MAX,
        top_reports: vec![
            TopReport {
                report_id: long.clone(),
                report_name: long.clone(),
                workspace_id: long.clone(),
                workspace_name: long.clone(),
                views: u64::MAX,
            };
            TOP_REPORTS
        ],
        day_end: now,
    };
    let page = render(&data, "/metrics", now);
    assert!(page.len() < MAX_BYTES, "{} bytes", page.len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("status.html");
    std::fs::write(&file, &page).unwrap();
    let dom = chromium_dom(&format!("file://{}", file.display()));
    for state in ["read", "failed", "not-yet-read"] {
        assert_eq!(
            dom.matches(&format!("<td class=\"{state}\" title")).count(),
            224,
            "{state}"
        );
    }
    assert_eq!(dom.matches("data-report-id=").count(), TOP_REPORTS);
    assert!(!dom.contains("<script"));
    eprintln!("page at the caps: {} bytes", page.len());
}

#[test]
fn hours_whose_reads_fail_show_as_failed_with_the_polls_reason() {
    use powerbi_exporter::simulator::api::Faults;
    let rt = runtime();
    let api = rt
        .block_on(SimulatedApi::start(
            ApiConfig {
                faults: Faults {
                    server_error: 1.0,
                    ..Faults::default()
                },
                ..ApiConfig::default()
            },
            history(50, 3),
            0,
        ))
        .unwrap();
    let mut args = simulated_tenant_args(&api.base_url());
    args.extend(
        [
            "--powerbi.poll-interval",
            "10m",
            "--powerbi.retry-delay",
            "10ms",
            "--powerbi.lookback",
            "2h",
            "--powerbi.initial-lookback",
            "3h",
            "--powerbi.max-requests-per-hour",
            "180",
        ]
        .map(String::from),
    );
    let e = Exporter::start_with_secret(&args);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http()
        .get(e.url("/"))
        .send()
        .unwrap()
        .text()
        .unwrap()
        .contains("<td class=\"failed-poll\">")
    {
        assert!(Instant::now() < deadline, "no failed poll in 30s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let dom = chromium_dom(&e.url("/"));
    // The first poll plans the 2 recent hours and the 2 hours of the initial lookback before
    // them (3h back, and the lookback's oldest hour): every read answers 503, so all 4 failed.
    assert_eq!(text_of(&dom, "hours-failed"), "4");
    assert_eq!(text_of(&dom, "hours-read"), "0");
    assert_eq!(dom.matches("<td class=\"failed\" title").count(), 4);
    let requests = api
        .requests()
        .iter()
        .filter(|r| r.path.contains("activityevents"))
        .count();
    assert_eq!(
        text_of(&dom, "budget-remaining"),
        (180 - requests).to_string()
    );
    let polls = &dom[dom.find("id=\"polls\"").unwrap()..];
    let body = &polls[polls.find("<tbody>").unwrap()..];
    let row = &body[..body.find("</tr>").unwrap()];
    assert!(
        row.contains("<td class=\"num\">0</td><td class=\"num\">4</td><td class=\"num\">0</td><td class=\"failed-poll\">failed: gave up after"),
        "{row}"
    );
    assert!(row.contains("503"), "the reason names the status: {row}");
}
