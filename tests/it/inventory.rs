//! The inventory (`--inventory.enabled`) against the simulated tenant's `admin/groups`: names,
//! workspace types and capacities for items without events, used and unused reports; and its
//! failures (429, a server slower than the timeout) counted while activity polling goes on.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use powerbi_exporter::azure::auth::{Authority, Credential, Secret, TokenCache, POWERBI_SCOPE};
use powerbi_exporter::decode::inventory::InventoryWorkspace;
use powerbi_exporter::decode::UnixMillis;
use powerbi_exporter::simulator::api::{ApiConfig, SimulatedApi};
use powerbi_exporter::simulator::timeline::{Lag, Timeline};
use powerbi_exporter::simulator::{Tenant, TenantSpec};
use powerbi_exporter::source::powerbi::client::{ApiClient, HostPolicy, RetryPolicy};
use powerbi_exporter::source::powerbi::inventory::{InventoryConfig, InventoryReader};

use crate::support::*;

/// A tenant whose first report of each workspace was viewed an hour ago, and nothing else.
fn tenant_with_views() -> (Timeline, Vec<InventoryWorkspace>) {
    let tenant = Tenant::new(TenantSpec {
        seed: 5,
        workspaces: 4,
        users: 30,
    });
    let inventory = tenant.inventory();
    let now = UnixMillis::now();
    let mut timeline = Timeline::new(tenant, 5, 0.0, Lag::default(), now);
    let at = UnixMillis(now.0 - 3_600_000);
    for (i, w) in inventory.iter().filter(|w| !w.personal).enumerate() {
        let (report, name) = &w.reports[0];
        let event = serde_json::json!({
            "Id": format!("d0000000-0000-4000-8000-{i:012}"), "CreationTime": at.to_api_string(),
            "Activity": "ViewReport", "UserId": "ana@contoso.com", "WorkspaceId": w.id,
            "WorkSpaceName": w.name, "ReportId": report, "ReportName": name,
        });
        timeline.push(at, at, event.to_string().into_bytes());
    }
    (timeline, inventory)
}

/// The tenant of [`tenant_with_views`] served by a simulated API with `config`, and its
/// inventory.
fn serve_views(
    rt: &tokio::runtime::Runtime,
    config: ApiConfig,
) -> (SimulatedApi, Vec<InventoryWorkspace>) {
    let (timeline, inventory) = tenant_with_views();
    let api = rt
        .block_on(SimulatedApi::start(config, timeline, 0))
        .unwrap();
    (api, inventory)
}

fn start(api: &SimulatedApi, extra: &[&str]) -> Exporter {
    let connect = simulated_tenant_args(&api.base_url());
    let mut args: Vec<&str> = connect.iter().map(String::as_str).collect();
    args.extend_from_slice(&[
        "--powerbi.poll-interval",
        "1s",
        "--powerbi.lookback",
        "2h",
        "--powerbi.initial-lookback",
        "2h",
        "--inventory.enabled",
    ]);
    args.extend_from_slice(extra);
    Exporter::start_with_env(&args, &[("AZURE_CLIENT_SECRET", "simulated-secret")])
}

fn wait_for(
    e: &Exporter,
    what: &str,
    mut done: impl FnMut(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = e.scrape();
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: not within 30s\n{s:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The simulated admin/groups spells GUIDs in upper case, as Microsoft's GetGroupsAsAdmin
/// examples do, while the events carry them in lower case: the reports viewed must still show
/// `used`, under one (lower-case) id, and the `Removing` workspace of the listing not at all.
#[test]
fn the_inventory_names_every_report_and_counts_the_unused_ones() {
    let rt = runtime();
    let (api, inventory) = serve_views(&rt, ApiConfig::default());
    let e = start(&api, &[]);
    // The views are an hour old: in the initial lookback, read once it is loaded.
    let s = wait_for(&e, "inventory read", |s| {
        s.contains_key("powerbi_inventory_last_success_timestamp_seconds")
            && s.get("powerbi_up") == Some(&1.0)
            && s.get("powerbi_initial_lookback_hours_remaining") == Some(&0.0)
    });

    let mut expected = BTreeMap::new();
    for w in &inventory {
        let used = if w.personal { 0 } else { 1 };
        let unused = w.reports.len() - used;
        expected.insert(
            format!(r#"{{workspace_id="{}",state="unused"}}"#, w.id),
            unused as f64,
        );
        expected.insert(
            format!(r#"{{workspace_id="{}",state="used"}}"#, w.id),
            used as f64,
        );
    }
    assert_eq!(family(&s, "powerbi_reports"), expected);

    // The expansions' models, dashboards and dataflows: none has an event (the views name no
    // DatasetId), so every one is unused, and each is named in powerbi_item_info. Reports are
    // items too, used as powerbi_reports counts them.
    let mut expected = BTreeMap::new();
    let item_info = family(&s, "powerbi_item_info");
    for w in &inventory {
        let used = if w.personal { 0 } else { 1 };
        for (state, n) in [("unused", w.reports.len() - used), ("used", used)] {
            let key = format!(
                r#"{{workspace_id="{}",item_type="report",state="{state}"}}"#,
                w.id
            );
            expected.insert(key, n as f64);
        }
        for it in &w.items {
            let item_type = it.kind.item_type().as_str().to_string();
            for state in ["unused", "used"] {
                let key = format!(
                    r#"{{workspace_id="{}",item_type="{item_type}",state="{state}"}}"#,
                    w.id
                );
                *expected.entry(key).or_insert(0.0) += f64::from(state == "unused");
            }
            let key = format!(
                r#"{{item_id="{}",item_type="{item_type}",item_name="{}",workspace_id="{}"}}"#,
                it.id, it.name, w.id
            );
            assert_eq!(item_info.get(&key), Some(&1.0), "{key}");
        }
    }
    assert!(expected.len() >= 6, "the simulated tenant lists items");
    assert_eq!(family(&s, "powerbi_items"), expected);

    // Every report is named, viewed or not; workspaces carry type and capacity.
    let info = family(&s, "powerbi_report_info");
    for w in &inventory {
        for (id, name) in &w.reports {
            let key = format!(
                r#"{{report_id="{id}",report_name="{name}",workspace_id="{}"}}"#,
                w.id
            );
            assert_eq!(info.get(&key), Some(&1.0), "{key}");
        }
        let kind = if w.personal { "personal" } else { "shared" };
        let key = format!(
            r#"{{workspace_id="{}",workspace_name="{}",type="{kind}",capacity_id="{}"}}"#,
            w.id, w.name, w.capacity_id
        );
        assert_eq!(
            family(&s, "powerbi_workspace_info").get(&key),
            Some(&1.0),
            "{key}"
        );
    }
    let errors = family(&s, "powerbi_inventory_errors_total");
    assert!(errors.values().all(|v| *v == 0.0), "{errors:?}");
    let reads = api
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("admin/groups"))
        .count();
    assert_eq!(
        reads, 1,
        "one page (fewer than 5,000 workspaces), read once per refresh"
    );
    // The inventory is read before the first poll's events: behind an initial lookback, names
    // and unused reports would otherwise wait for the whole backlog to load.
    let requests = api.requests();
    let first = |path: &str| requests.iter().position(|r| r.path.ends_with(path));
    let (groups, events) = (first("admin/groups"), first("activityevents"));
    assert!(
        groups.is_some() && events.is_some() && groups < events,
        "admin/groups at {groups:?}, the first activityevents at {events:?}"
    );
}

#[test]
fn a_throttled_inventory_is_retried_after_retry_after_and_polling_goes_on() {
    let rt = runtime();
    let config = ApiConfig {
        inventory_budget_per_hour: 0,
        retry_after_secs: 1,
        ..ApiConfig::default()
    };
    let (api, _) = serve_views(&rt, config);
    let e = start(&api, &[]);
    let s = wait_for(&e, "two throttled inventory reads", |s| {
        s.get(r#"powerbi_inventory_errors_total{reason="throttled"}"#)
            .is_some_and(|n| *n >= 2.0)
    });
    assert!(!s.contains_key("powerbi_inventory_last_success_timestamp_seconds"));
    assert!(family(&s, "powerbi_reports").is_empty());
    let s = wait_for(&e, "activity counted", |s| {
        family(s, "powerbi_activity_events_total")
            .values()
            .sum::<f64>()
            == 4.0
    });
    assert_eq!(s["powerbi_up"], 1.0, "the activity log is read as usual");
}

#[test]
fn an_inventory_slower_than_its_timeout_is_cut_off_and_polling_goes_on() {
    let rt = runtime();
    let config = ApiConfig {
        inventory_delay: Some(Duration::from_secs(3)),
        ..ApiConfig::default()
    };
    let (api, _) = serve_views(&rt, config);
    let e = start(&api, &["--inventory.timeout", "1s"]);
    let s = wait_for(&e, "the timeout counted and activity read", |s| {
        s.get(r#"powerbi_inventory_errors_total{reason="timeout"}"#) == Some(&1.0)
            && family(s, "powerbi_activity_events_total")
                .values()
                .sum::<f64>()
                == 4.0
    });
    assert_eq!(s["powerbi_up"], 1.0);
    assert!(!s.contains_key("powerbi_inventory_last_success_timestamp_seconds"));
}

/// A real client of the simulated API, as the live source builds it.
fn client_of(api: &SimulatedApi) -> ApiClient {
    powerbi_exporter::install_tls_provider();
    let sim = ApiConfig::default();
    let credential = Credential::ClientSecret {
        authority: Authority {
            host: api.base_url(),
            tenant_id: sim.tenant_id,
            client_id: sim.client_id,
        },
        secret: Secret::new(sim.client_secret),
    };
    ApiClient::new(
        reqwest::Client::new(),
        HostPolicy {
            api_url: api.base_url(),
            cluster_suffixes: Vec::new(),
        },
        TokenCache::new(credential, POWERBI_SCOPE.to_string()),
        RetryPolicy::default(),
    )
}

/// The simulated admin/groups lists, like Microsoft's GetGroupsAsAdmin example, a `Deleted`
/// and a `Removing` workspace among the live ones, in upper case. With two workspaces a page,
/// the first page holds one live workspace and the deleted one: a reader that compares the
/// filtered length with `$top` stopped there. Every live workspace must come back (ids in
/// lower case), the two leaving ones not, each page asked for once.
#[test]
fn paging_counts_listed_workspaces_so_deleted_and_removing_ones_end_no_read_early() {
    let rt = runtime();
    let (api, inventory) = serve_views(&rt, ApiConfig::default());
    let mut client = client_of(&api);
    let config = InventoryConfig {
        page_size: 2,
        ..InventoryConfig::default()
    };
    let mut reader = InventoryReader::new(config, None);
    let got = rt
        .block_on(reader.read(&mut client))
        .expect("the inventory is read to its end");
    let by_id = |ws: &[InventoryWorkspace]| -> BTreeMap<String, InventoryWorkspace> {
        ws.iter().map(|w| (w.id.clone(), w.clone())).collect()
    };
    assert_eq!(by_id(&got), by_id(&inventory));
    // Live workspaces plus the deleted and the removing one, two a page, and one more page
    // that comes back short (or empty) to say the listing ended.
    let listed = inventory.len() + 2;
    let pages = api
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("admin/groups"))
        .count();
    assert_eq!(pages, listed / 2 + 1, "{listed} listed");
}

/// `--inventory.page-size` (file key `inventory.page_size`) is `$top`: 1 to 5000, the API's
/// range; anything else exits 2 naming the flag or key; the default is 2000.
#[test]
fn the_page_size_is_a_setting_within_the_apis_range() {
    let check = |extra: &[&str]| {
        let mut args = vec![
            "check-config",
            "--powerbi.api-url",
            "https://api.powerbi.com",
            "--azure.tenant-id",
            "t",
            "--azure.client-id",
            "c",
            "--inventory.enabled",
        ];
        args.extend_from_slice(extra);
        run_with_env(&args, &[("AZURE_CLIENT_SECRET", "s")])
    };
    for bad in ["0", "5001"] {
        let out = check(&["--inventory.page-size", bad]);
        assert_exit_2_naming(
            &out,
            &[&format!("flag --inventory.page-size {bad}"), "1 to 5000"],
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yaml");
    std::fs::write(&file, "inventory:\n  page_size: 9000\n").unwrap();
    let out = check(&["--config.file", file.to_str().unwrap()]);
    assert_exit_2_naming(
        &out,
        &["config key `inventory.page_size` 9000", "1 to 5000"],
    );
    for (extra, shown) in [
        (&[][..], "page size 2000"),
        (&["--inventory.page-size", "500"][..], "page size 500"),
    ] {
        let out = check(extra);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(text.contains(shown), "{shown} in:\n{text}");
    }
}

/// A read that runs out of its hourly budget (or is throttled) part-way goes on from the page
/// it stopped at once it may send again, rather than starting over: with more pages than the
/// hourly budget, starting over would never finish. Here: two requests an hour, two
/// workspaces a page, four pages; after the hour rolls over (a fresh budget stands in for it)
/// the next reads ask only for the pages not read yet.
#[test]
fn a_read_stopped_by_the_budget_goes_on_from_the_page_it_stopped_at() {
    use powerbi_exporter::source::powerbi::budget::RequestBudget;
    let rt = runtime();
    let (api, inventory) = serve_views(&rt, ApiConfig::default());
    let mut client = client_of(&api);
    let config = InventoryConfig {
        page_size: 2,
        max_requests_per_hour: 2,
        ..InventoryConfig::default()
    };
    let mut reader = InventoryReader::new(config, None);
    let mut got = None;
    for _ in 0..3 {
        got = rt.block_on(reader.read(&mut client));
        if got.is_some() {
            break;
        }
        assert_eq!(reader.status.errors.get("budget"), Some(&1));
        reader.status.errors.clear();
        reader.budget = RequestBudget::new(2);
    }
    let by_id = |ws: &[InventoryWorkspace]| -> BTreeMap<String, InventoryWorkspace> {
        ws.iter().map(|w| (w.id.clone(), w.clone())).collect()
    };
    assert_eq!(
        by_id(&got.expect("read within three hours")),
        by_id(&inventory)
    );
    let listed = inventory.len() + 2;
    let pages: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("admin/groups"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        pages.len(),
        listed / 2 + 1,
        "each page asked for once: {pages:?}"
    );
}

#[test]
fn a_retry_after_of_centuries_is_cut_to_an_hour_without_overflow() {
    let rt = runtime();
    // i64::MAX seconds: in milliseconds past any i64.
    let asked = i64::MAX as u64;
    let config = ApiConfig {
        inventory_budget_per_hour: 0,
        retry_after_secs: asked,
        ..ApiConfig::default()
    };
    let (api, _) = serve_views(&rt, config);
    let e = start(&api, &[]);
    wait_for(&e, "a throttled inventory read and activity counted", |s| {
        s.get(r#"powerbi_inventory_errors_total{reason="throttled"}"#) == Some(&1.0)
            && family(s, "powerbi_activity_events_total")
                .values()
                .sum::<f64>()
                == 4.0
    });
    assert_retry_after_clamp_logged(&e, asked);
}

/// A file that switches the inventory on is switched off by `--no-inventory.enabled` or
/// `--inventory.enabled=false` (kingpin's spellings), and left on without either.
#[test]
fn a_flag_switches_off_the_inventory_the_file_switched_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yaml");
    std::fs::write(&file, "inventory:\n  enabled: true\n").unwrap();
    let check = |extra: &[&str]| {
        let mut args = vec![
            "check-config",
            "--config.file",
            file.to_str().unwrap(),
            "--azure.tenant-id",
            "t",
            "--azure.client-id",
            "c",
        ];
        args.extend_from_slice(extra);
        let out = run_with_env(&args, &[("AZURE_CLIENT_SECRET", "s")]);
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().any(|l| l.starts_with("inventory: every "))
    };
    assert!(check(&[]), "the file's inventory.enabled");
    assert!(!check(&["--no-inventory.enabled"]));
    assert!(!check(&["--inventory.enabled=false"]));
    assert!(
        check(&["--no-inventory.enabled", "--inventory.enabled"]),
        "the last one wins"
    );
}
