//! User signals and external shares: per-user counts of security-relevant activities under
//! each `--users.label` mode, pseudonyms recomputed here with HMAC-SHA256 as ground truth,
//! stable across a restart with the key kept in the state directory, restarted on a key
//! change; external shares against configured and learned tenant domains; and no user
//! identifier in any output (exposition, pages, OTLP push, logs, state) unless asked for.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::json;

use crate::otlp::wait_until;
use crate::otlp_receiver::{Receiver, Transport};
use crate::support::*;

/// (user, activity, recipients): ExportReport and ShareReport are sensitive, ViewReport not.
const EVENTS: &[(&str, &str, &[&str])] = &[
    ("Ana@Contoso.com", "ExportReport", &[]),
    ("ana@contoso.com", "ExportReport", &[]),
    ("ana@contoso.com", "ViewReport", &[]),
    ("ben@contoso.com", "ShareReport", &["carl@contoso.com"]),
    (
        "ben@contoso.com",
        "ShareReport",
        &["x@fabrikam.com", "dee@contoso.com"],
    ),
    (
        "ben@contoso.com",
        "ShareDashboard",
        &["y@Northwind.example"],
    ),
    ("eve@contoso.com", "PublishToWebReport", &[]),
    (
        "guest_fab.com#EXT#@contoso.onmicrosoft.com",
        "DownloadReport",
        &[],
    ),
];

fn lines(events: &[(&str, &str, &[&str])], first_id: usize) -> String {
    events
        .iter()
        .enumerate()
        .map(|(i, (user, activity, recipients))| {
            let n = first_id + i;
            let mut e = json!({"Id": format!("c0000000-0000-4000-8000-{n:012}"),
                "CreationTime": format!("2026-11-20T11:{:02}:00", n % 60), "Activity": activity,
                "UserId": user, "WorkspaceId": "w1", "WorkSpaceName": "One"});
            if !recipients.is_empty() {
                e["SharingInformation"] = json!(recipients
                    .iter()
                    .map(|r| json!({"RecipientEmail": r, "ResharePermission": "Read"}))
                    .collect::<Vec<_>>());
            }
            format!("{e}\n")
        })
        .collect()
}

/// The pseudonym of a user under `key`, computed here independently of the exporter.
fn pseudonym(key: &[u8], user: &str) -> String {
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        user.to_lowercase().as_bytes(),
    );
    let hex: String = tag.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("u-{hex}")
}

/// Expected `powerbi_user_sensitive_events_total` with users labelled by `label`.
fn expected(
    events: &[(&str, &str, &[&str])],
    label: impl Fn(&str) -> String,
) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for (user, activity, _) in events {
        if *activity != "ViewReport" {
            *m.entry(format!(
                r#"{{user="{}",activity="{activity}"}}"#,
                label(user)
            ))
            .or_insert(0.0) += 1.0;
        }
    }
    m
}

fn once(file: &Path, extra: &[&str], env: &[(&str, &str)]) -> BTreeMap<String, f64> {
    let mut args = vec!["--once", "--replay", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = run_with_env(&args, env);
    assert!(out.status.success(), "{}", stderr(&out));
    samples(&stdout(&out))
}

const KEY: &str = "a-test-pseudonym-key-of-32-bytes";

#[test]
fn each_user_label_mode_labels_exactly_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    std::fs::write(&file, lines(EVENTS, 0)).unwrap();
    let family_of = |s: &BTreeMap<String, f64>| family(s, "powerbi_user_sensitive_events_total");

    let s = once(&file, &["--users.label", "plain"], &[]);
    assert_eq!(family_of(&s), expected(EVENTS, str::to_lowercase));

    let s = once(&file, &[], &[("POWERBI_EXPORTER_PSEUDONYM_KEY", KEY)]);
    assert_eq!(
        family_of(&s),
        expected(EVENTS, |u| pseudonym(KEY.as_bytes(), u))
    );

    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let s = once(
        &file,
        &["--users.pseudonym-key-file", key_file.to_str().unwrap()],
        &[],
    );
    assert_eq!(
        family_of(&s),
        expected(EVENTS, |u| pseudonym(KEY.as_bytes(), u)),
        "a key file and the environment give the same pseudonyms"
    );

    let s = once(&file, &["--users.label", "off"], &[]);
    assert!(family_of(&s).is_empty());
    assert!(!s.keys().any(|k| k.contains("contoso")), "no UPN anywhere");

    let out = run_with_env(
        &["--once", "--replay", file.to_str().unwrap()],
        &[("POWERBI_EXPORTER_PSEUDONYM_KEY", "short")],
    );
    assert_exit_2_naming(&out, &["at least 16 bytes"]);
}

#[test]
fn external_shares_against_configured_and_learned_domains() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    std::fs::write(&file, lines(EVENTS, 0)).unwrap();
    let shares = |s: &BTreeMap<String, f64>| family(s, "powerbi_external_shares_total");
    // Learned: contoso.com (members); the guest's onmicrosoft domain is not learned.
    let s = once(&file, &[], &[]);
    assert_eq!(
        shares(&s),
        BTreeMap::from([
            (
                r#"{workspace_id="w1",activity="ShareDashboard"}"#.to_string(),
                1.0
            ),
            (
                r#"{workspace_id="w1",activity="ShareReport"}"#.to_string(),
                1.0
            ),
        ])
    );
    // Configured: fabrikam.com is the tenant's too, so only the Northwind share is external.
    let s = once(
        &file,
        &["--tenant.domains", "contoso.com,Fabrikam.com"],
        &[],
    );
    assert_eq!(
        shares(&s),
        BTreeMap::from([(
            r#"{workspace_id="w1",activity="ShareDashboard"}"#.to_string(),
            1.0
        )])
    );
}

/// Serves `file` with a state directory until every event of it is applied; returns the
/// user family and the log.
fn serve_once(
    file: &Path,
    state: &Path,
    env: &[(&str, &str)],
    total: f64,
) -> (BTreeMap<String, f64>, Vec<String>) {
    let mut e = Exporter::start_with_env(
        &[
            "--replay",
            file.to_str().unwrap(),
            "--state.dir",
            state.to_str().unwrap(),
        ],
        env,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let s = e.scrape();
        if s.get("powerbi_events_processed_total") == Some(&total) {
            break s;
        }
        assert!(Instant::now() < deadline, "events not applied: {s:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    e.terminate();
    let log = e.startup_log.drain(..).chain(e.log.try_iter()).collect();
    (family(&s, "powerbi_user_sensitive_events_total"), log)
}

#[test]
fn pseudonyms_survive_a_restart_and_restart_on_a_key_change() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let first = dir.path().join("first.jsonl");
    let second = dir.path().join("second.jsonl");
    std::fs::write(&first, lines(&EVENTS[..4], 0)).unwrap();
    std::fs::write(&second, lines(&EVENTS[4..], 4)).unwrap();

    let (before, _) = serve_once(&first, &state, &[], 4.0);
    let key_path = state.join("pseudonym.key");
    let key_hex = std::fs::read_to_string(&key_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key is readable by its owner only");
    }
    let key: Vec<u8> = (0..key_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&key_hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(before, expected(&EVENTS[..4], |u| pseudonym(&key, u)));

    // Restart on the same state: same pseudonyms, counts continue (the state's 4 events were
    // counted once; the processed counter continues from 4).
    let (after, _) = serve_once(&second, &state, &[], 8.0);
    assert_eq!(after, expected(EVENTS, |u| pseudonym(&key, u)));

    // A new key: the family restarts under the new pseudonyms instead of mixing both.
    let third = dir.path().join("third.jsonl");
    std::fs::write(&third, lines(&EVENTS[..2], 100)).unwrap();
    let (rekeyed, log) = serve_once(
        &third,
        &state,
        &[("POWERBI_EXPORTER_PSEUDONYM_KEY", KEY)],
        10.0,
    );
    assert_eq!(
        rekeyed,
        expected(&EVENTS[..2], |u| pseudonym(KEY.as_bytes(), u))
    );
    assert!(
        log.iter().any(|l| l.contains("pseudonym key changed")),
        "{log:#?}"
    );
    assert!(log
        .iter()
        .all(|l| !l.contains(KEY) && !l.contains(key_hex.trim())));
}

/// Every e-mail address the fixture holds, users and share recipients, lower-cased.
fn fixture_addresses() -> Vec<String> {
    let mut all: Vec<String> = EVENTS
        .iter()
        .flat_map(|(user, _, recipients)| std::iter::once(*user).chain(recipients.iter().copied()))
        .map(str::to_lowercase)
        .collect();
    all.sort();
    all.dedup();
    all
}

/// Everything the exporter printed, logged, served, pushed over OTLP and kept in its state
/// directory under one `--users.label` mode, lower-cased: the text to scan; and the OTLP
/// payloads alone.
fn every_output(file: &Path, mode: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Transport::Http);
    let endpoint = receiver.endpoint();
    let env = [
        ("POWERBI_EXPORTER_PSEUDONYM_KEY", KEY),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
    ];
    let file = file.to_str().unwrap();
    let state = dir.path().join("state");
    let run = [
        "--replay",
        file,
        "--users.label",
        mode,
        "--log.level",
        "debug",
    ];
    let serve = [&run[..], &["--state.dir", state.to_str().unwrap()]].concat();
    let mut e = Exporter::start_with_env(&serve, &env);
    let total = EVENTS.len() as f64;
    wait_until(Duration::from_secs(20), "events applied", || {
        e.scrape().get("powerbi_events_processed_total") == Some(&total)
    });
    // A push that started after every event was applied.
    let before = receiver.metrics_requests().len();
    wait_until(Duration::from_secs(10), "a push after the events", || {
        receiver.metrics_requests().len() > before
    });
    let mut out = String::new();
    for path in ["/metrics", "/", "/-/healthy", "/-/ready", "/nope"] {
        out += &http().get(e.url(path)).send().unwrap().text().unwrap();
    }
    let mut pushed = String::new();
    for request in receiver.metrics_requests() {
        pushed += &String::from_utf8_lossy(&request.encode_to_vec());
    }
    out += &pushed;
    e.terminate();
    out += &e.startup_log.join("\n");
    out += &e.log.try_iter().collect::<Vec<_>>().join("\n");
    for entry in walk(&state) {
        out += &String::from_utf8_lossy(&std::fs::read(entry).unwrap());
    }
    let once = run_with_env(&[&["--once"], &run[..]].concat(), &env);
    assert!(once.status.success(), "{}", stderr(&once));
    out += &stdout(&once);
    out += &stderr(&once);
    (out.to_lowercase(), pushed.to_lowercase())
}

/// The files under `dir`, recursively.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn no_user_identifier_reaches_any_output_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    std::fs::write(&file, lines(EVENTS, 0)).unwrap();
    let addresses = fixture_addresses();
    let users: Vec<String> = EVENTS.iter().map(|(u, _, _)| u.to_lowercase()).collect();
    let pseudonyms: Vec<String> = users.iter().map(|u| pseudonym(KEY.as_bytes(), u)).collect();
    let found = |text: &str, needles: &[String]| -> Vec<String> {
        needles
            .iter()
            .filter(|n| text.contains(n.as_str()))
            .cloned()
            .collect()
    };

    let (plain, plain_pushed) = every_output(&file, "plain");
    // The control: the scan finds what `plain` is documented to expose.
    let exposed: Vec<String> = EVENTS
        .iter()
        .filter(|(_, activity, _)| *activity != "ViewReport")
        .map(|(u, _, _)| u.to_lowercase())
        .collect();
    for user in &exposed {
        assert!(plain.contains(user.as_str()), "plain exposes {user}");
        assert!(plain_pushed.contains(user.as_str()), "plain pushes {user}");
    }

    let (off, _) = every_output(&file, "off");
    assert_eq!(
        found(&off, &addresses),
        Vec::<String>::new(),
        "off: no address"
    );
    assert_eq!(
        found(&off, &pseudonyms),
        Vec::<String>::new(),
        "off: no pseudonym"
    );

    let (pseudonymous, pushed) = every_output(&file, "pseudonym");
    assert_eq!(
        found(&pseudonymous, &addresses),
        Vec::<String>::new(),
        "pseudonym: no address"
    );
    for user in &exposed {
        let p = pseudonym(KEY.as_bytes(), user);
        assert!(pushed.contains(&p), "pseudonym: {p} for {user} pushed");
    }
}
