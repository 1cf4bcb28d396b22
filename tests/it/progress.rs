//! `top --since` shows its progress on stderr: plain lines off a terminal (exact hours and
//! events, computed here from the simulated tenant's raw events), an indicatif bar on one
//! (under a pseudo-terminal from util-linux `script`).

use std::process::Command;

use powerbi_exporter::decode::UnixMillis;
use powerbi_exporter::simulator::api::{ApiConfig, SimulatedApi};
use powerbi_exporter::simulator::timeline::Timeline;
use powerbi_exporter::simulator::TenantSpec;

use crate::support::*;

const HOUR: i64 = 3_600_000;

fn history(n: usize, hours: i64) -> Timeline {
    let spec = TenantSpec {
        seed: 9,
        workspaces: 3,
        users: 10,
    };
    visible_history(spec, 99, n, hours)
}

fn top_args(api: &SimulatedApi) -> Vec<String> {
    let mut args: Vec<String> = ["top", "--since", "4h"].map(String::from).to_vec();
    args.extend(simulated_tenant_args(&api.base_url()));
    args
}

#[test]
fn top_since_off_a_terminal_prints_a_line_per_tenth_of_the_hours() {
    let rt = runtime();
    let api = rt
        .block_on(SimulatedApi::start(
            ApiConfig {
                page_size: 30,
                ..ApiConfig::default()
            },
            history(200, 4),
            0,
        ))
        .unwrap();
    let hours: Vec<i64> = api.with_timeline(|t| {
        t.events()
            .iter()
            .map(|e| e.time.0.div_euclid(HOUR))
            .collect()
    });
    let (out, current) = loop {
        let before = UnixMillis::now().0.div_euclid(HOUR);
        let out = Command::new(BIN)
            .args(top_args(&api))
            .env(SECRET.0, SECRET.1)
            .output()
            .unwrap();
        // A run across an hour's end reads other hours; run again.
        if UnixMillis::now().0.div_euclid(HOUR) == before {
            break (out, before);
        }
    };
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .map(|l| {
            // The ETA depends on the pace; the counts do not.
            l.split("; ETA").next().unwrap().trim_end_matches('.')
        })
        .collect();
    // 5 hours (the one 4 h ago to the current one), each a tenth or more: a line each.
    let first = current - 4;
    let expected: Vec<String> = (1..=5)
        .map(|k| {
            let events = hours
                .iter()
                .filter(|h| **h >= first && **h < first + k)
                .count();
            format!(
                "progress: {k} of 5 hours read, {events} events, 0 waits for the request budget"
            )
        })
        .collect();
    assert_eq!(lines, expected, "{}", stderr(&out));
    let last = stderr(&out)
        .lines()
        .rfind(|l| l.starts_with("progress: "))
        .unwrap()
        .to_string();
    assert!(!last.contains("ETA"), "nothing left at the end: {last}");
    assert!(
        stderr(&out)
            .lines()
            .filter(|l| l.starts_with("progress: "))
            .any(|l| l.contains("; ETA ")),
        "an ETA while hours are left"
    );
}

#[test]
fn top_since_on_a_terminal_draws_a_bar() {
    let rt = runtime();
    let api = rt
        .block_on(SimulatedApi::start(ApiConfig::default(), history(50, 4), 0))
        .unwrap();
    let command = std::iter::once(BIN.to_string())
        .chain(top_args(&api))
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    // `script` runs the command on a pseudo-terminal and copies what it drew to stdout.
    let out = loop {
        let before = UnixMillis::now().0.div_euclid(HOUR);
        let out = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env(SECRET.0, SECRET.1)
            .output()
            .expect("script (util-linux) runs the command under a pty");
        // A run across an hour's end reads other hours; run again.
        if UnixMillis::now().0.div_euclid(HOUR) == before {
            break out;
        }
    };
    assert!(out.status.success(), "{}", stdout(&out));
    let screen = stdout(&out);
    assert!(screen.contains("5/5 hours"), "{screen}");
    assert!(screen.contains("50 events"), "{screen}");
    assert!(
        !screen.contains("progress: "),
        "no plain lines on a terminal: {screen}"
    );
}

/// The value of `key=` in a logfmt line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn the_exporters_initial_lookback_logs_hours_done_of_total_events_and_an_eta() {
    let rt = runtime();
    let api = rt
        .block_on(SimulatedApi::start(
            ApiConfig::default(),
            history(120, 6),
            0,
        ))
        .unwrap();
    let mut args = simulated_tenant_args(&api.base_url());
    // A poll a second at 200 requests an hour: one history hour per poll besides the current one.
    args.extend(
        [
            "--powerbi.poll-interval",
            "1s",
            "--powerbi.lookback",
            "1h",
            "--powerbi.initial-lookback",
            "6h",
        ]
        .map(String::from),
    );
    let mut e = Exporter::start_with_secret(&args);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut lines = Vec::new();
    while !lines
        .iter()
        .any(|l: &String| l.contains("Initial lookback loaded"))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match e.log.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => panic!("not loaded in 30s: {lines:#?}"),
        }
    }
    e.terminate();
    let progress: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("initial lookback") || l.contains("Initial lookback loaded"))
        .collect();
    // Hours 6h..1h ago are the history (the current hour is read every poll): 6 hours, one a
    // poll, oldest first.
    let done: Vec<(&str, &str)> = progress
        .iter()
        .map(|l| {
            (
                field(l, "hours_done").unwrap(),
                field(l, "hours_total").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        done,
        [
            ("1", "6"),
            ("2", "6"),
            ("3", "6"),
            ("4", "6"),
            ("5", "6"),
            ("6", "6")
        ],
        "{progress:#?}"
    );
    for l in &progress[..5] {
        assert!(field(l, "eta_seconds").is_some(), "an ETA: {l}");
        assert_eq!(field(l, "budget_waits"), Some("0"), "{l}");
    }
    // Every event was on some page read during the load (the current hour is read each poll too).
    let events: u64 = field(progress[5], "events").unwrap().parse().unwrap();
    assert!(events >= 120, "{}", progress[5]);
}
