//! The catalogue's `origin` against behaviour: with a state directory, every `Saved` family is
//! served after a restart with exactly the value it had before (and that `--once` gives for
//! the same events), and every `Live` family is served, before and after.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use powerbi_exporter::catalogue::{self, Origin};

use crate::support::{fixtures, run, samples, stdout, Exporter};

/// The families only the process itself knows, all of which this test's configuration turns
/// on: the web server's (with a web config file), forwarding's (with a sink), the failed
/// checkpoints (with a state directory) and the failed OTLP pushes (with a push).
const LIVE: [&str; 10] = [
    "powerbi_forward_backlog_events",
    "powerbi_forward_dropped_events_total",
    "powerbi_forward_errors_total",
    "powerbi_forward_held_back_bytes",
    "powerbi_forwarded_events_total",
    "powerbi_otlp_export_errors_total",
    "powerbi_state_save_errors_total",
    "powerbi_web_config_last_reload_success_timestamp_seconds",
    "powerbi_web_config_last_reload_successful",
    "powerbi_web_rejections_total",
];

fn family_name(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}

fn origin(series: &str) -> Origin {
    catalogue::by_name(family_name(series))
        .unwrap_or_else(|| panic!("{series} is not in the catalogue"))
        .origin
}

/// The served samples of the exporter's own families (no `process_*`).
fn served(scrape: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    scrape
        .iter()
        .filter(|(k, _)| k.starts_with("powerbi_"))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn of_origin(scrape: &BTreeMap<String, f64>, wanted: Origin) -> BTreeMap<String, f64> {
    served(scrape)
        .into_iter()
        .filter(|(k, _)| origin(k) == wanted)
        .collect()
}

fn family_names(scrape: &BTreeMap<String, f64>) -> BTreeSet<String> {
    served(scrape)
        .keys()
        .map(|k| family_name(k).to_string())
        .collect()
}

/// What differs between the served and the expected saved samples and family names.
fn difference(
    saved: &BTreeMap<String, f64>,
    once: &BTreeMap<String, f64>,
    families: &BTreeSet<String>,
    expected: &BTreeSet<String>,
) -> String {
    let differing: Vec<_> = saved
        .iter()
        .filter(|(k, v)| once.get(*k) != Some(*v))
        .chain(once.iter().filter(|(k, _)| !saved.contains_key(*k)))
        .collect();
    format!(
        "saved samples not as --once gives them: {differing:#?}\nfamilies missing: {:?}\nfamilies not expected: {:?}",
        expected.difference(families).collect::<Vec<_>>(),
        families.difference(expected).collect::<Vec<_>>()
    )
}

/// A loopback address nothing listens on: pushes and forwarding there fail at once.
fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn copy_fixtures(to: &Path) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

#[test]
fn saved_families_keep_their_values_across_a_restart_and_every_live_family_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let replay = dir.path().join("replay");
    copy_fixtures(&replay);
    // Plain user labels: pseudonyms are keyed per state directory, and --once has none.
    let once = samples(&stdout(&run(&[
        "--replay",
        replay.to_str().unwrap(),
        "--users.label=plain",
        "--once",
    ])));
    assert!(
        once.keys().all(|k| origin(k) == Origin::Saved),
        "--once prints the counted families only: {once:#?}"
    );
    let web_config = dir.path().join("web.yml");
    std::fs::write(&web_config, "").unwrap();
    let state = dir.path().join("state");
    let args = [
        "--replay",
        replay.to_str().unwrap(),
        "--users.label=plain",
        "--state.dir",
        state.to_str().unwrap(),
        "--otlp.logs",
        "--web.config.file",
        web_config.to_str().unwrap(),
    ];
    let endpoint = dead_endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
    ];
    let expected_families: BTreeSet<String> = family_names(&once)
        .into_iter()
        .chain(LIVE.map(String::from))
        .collect();

    let mut first = Exporter::start_with_env(&args, &env);
    // Served once the last checkpoint after the replay's end is saved.
    let before = first.scrape_until(
        Duration::from_secs(30),
        |s| of_origin(s, Origin::Saved) == once && family_names(s) == expected_families,
        |s| {
            difference(
                &of_origin(s, Origin::Saved),
                &once,
                &family_names(s),
                &expected_families,
            )
        },
    );
    assert_eq!(
        of_origin(&before, Origin::Live).len(),
        served(&before).len() - once.len(),
        "every other family is live"
    );
    assert!(first.terminate().success());

    // The replay had counted every file: the restart reads none again, so what is served is
    // the restored state alone.
    let second = Exporter::start_with_env(&args, &env);
    let after = second.scrape_until(
        Duration::from_secs(10),
        |s| family_names(s) == expected_families,
        |s| format!("not every family served after the restart: {s:#?}"),
    );
    assert_eq!(
        of_origin(&after, Origin::Saved),
        of_origin(&before, Origin::Saved),
        "a saved family changed across the restart"
    );
    let live_in_catalogue: BTreeSet<&str> = catalogue::ALL
        .iter()
        .filter(|f| f.origin == Origin::Live)
        .map(|f| f.name)
        .collect();
    assert_eq!(live_in_catalogue, BTreeSet::from(LIVE));
}
