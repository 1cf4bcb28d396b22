//! The shipped Grafana dashboards: lint, variables, links and annotations, and every panel,
//! variable, annotation and alert expression evaluated by a real Prometheus (Debian's) scraping
//! the exporter's demo over 127.0.0.1.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::rules::{alerts, metric_names};
use crate::support::*;

/// Where the mixin renders dashboards: for plain Prometheus and compose, where `instance` is a
/// stable host:port, and for the Prometheus Operator, where it is a pod's IP and the exporter is
/// chosen by its Service (`service`) instead.
const FOLDERS: [(&str, &str); 3] = [
    ("dashboards", "instance"),
    ("deploy/kubernetes/dashboards", "service"),
    ("deploy/helm/powerbi-exporter/dashboards", "service"),
];

fn dashboards() -> Vec<(PathBuf, Value)> {
    dashboards_in("dashboards")
}

fn dashboards_in(folder: &str) -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        out.len(),
        4,
        "usage, security, health, and semantic models and items dashboards"
    );
    out
}

/// (dashboard uid, panel title, expression) for every query of every panel.
fn expressions() -> Vec<(String, String, String)> {
    expressions_in("dashboards")
}

fn expressions_in(folder: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (_, d) in dashboards_in(folder) {
        let uid = d["uid"].as_str().unwrap();
        for p in d["panels"].as_array().unwrap() {
            let title = p["title"].as_str().unwrap();
            for t in p["targets"].as_array().unwrap() {
                out.push((
                    uid.to_string(),
                    title.to_string(),
                    t["expr"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

/// (dashboard uid, annotation name, expression) for every annotation.
fn annotations_in(folder: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (_, d) in dashboards_in(folder) {
        for a in d["annotations"]["list"].as_array().unwrap() {
            out.push((
                d["uid"].as_str().unwrap().to_string(),
                a["name"].as_str().unwrap().to_string(),
                a["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// (dashboard uid, variable name, query) for every query variable.
fn variable_queries(folder: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (_, d) in dashboards_in(folder) {
        for v in d["templating"]["list"].as_array().unwrap() {
            if v["type"] == "query" {
                out.push((
                    d["uid"].as_str().unwrap().to_string(),
                    v["name"].as_str().unwrap().to_string(),
                    v["definition"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

#[test]
fn dashboards_use_a_datasource_variable_fixed_uids_units_and_known_metrics() {
    let mut uids = BTreeSet::new();
    for (path, d) in dashboards() {
        let name = path.display();
        let uid = d["uid"].as_str().unwrap_or("");
        assert!(
            (8..=40).contains(&uid.len()) && uids.insert(uid.to_string()),
            "{name}: fixed, unique uid"
        );
        let vars = d["templating"]["list"].as_array().unwrap();
        assert!(
            vars.iter().any(|v| v["type"] == "datasource"
                && v["query"] == "prometheus"
                && v["name"] == "datasource"),
            "{name}: datasource variable"
        );
        for p in d["panels"].as_array().unwrap() {
            let title = p["title"].as_str().unwrap();
            assert_eq!(
                p["datasource"],
                serde_json::json!({"type": "prometheus", "uid": "${datasource}"}),
                "{name} / {title}: datasource is the variable"
            );
            assert!(
                p["description"].as_str().is_some_and(|s| !s.is_empty()),
                "{name} / {title}: description"
            );
            assert!(
                p["fieldConfig"]["defaults"]["unit"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{name} / {title}: unit"
            );
            for t in p["targets"].as_array().unwrap() {
                assert!(
                    t.get("datasource").is_none() || t["datasource"] == p["datasource"],
                    "{name} / {title}: no hard-coded datasource"
                );
            }
        }
        assert!(
            !serde_json::to_string(&d).unwrap().contains("DS_PROMETHEUS"),
            "{name}: no import-only ${{DS_PROMETHEUS}} inputs"
        );
    }
    for (uid, title, expr) in expressions() {
        for metric in metric_names(&expr) {
            assert!(
                powerbi_exporter::catalogue::by_name(&metric).is_some(),
                "{uid} / {title}: unknown metric {metric}"
            );
        }
    }
}

fn variable<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("{}: no {name} variable", d["uid"]))
}

#[test]
fn every_dashboard_selects_job_tenant_and_exporter_links_the_others_and_marks_failed_polls() {
    for (folder, exporter_label) in FOLDERS {
        let all = dashboards_in(folder);
        let uids: BTreeSet<&str> = all
            .iter()
            .map(|(_, d)| d["uid"].as_str().unwrap())
            .collect();
        for (path, d) in &all {
            let name = path.display();
            // job: the jobs of the exporter's build_info; one at a time, as node-mixin does.
            let job = variable(d, "job");
            assert_eq!(job["type"], "query", "{name}");
            assert!(
                job["definition"]
                    .as_str()
                    .unwrap()
                    .starts_with("label_values(powerbi_exporter_build_info{"),
                "{name}: {job}"
            );
            // tenant and exporter: All is the regex .*, which also matches series without the
            // label (so the tenant variable works with no tenant label at all), and All is the
            // default.
            for (var, label) in [("tenant", "tenant"), ("instance", exporter_label)] {
                let v = variable(d, var);
                assert_eq!(
                    v["definition"],
                    format!(
                        "label_values(powerbi_exporter_build_info{{{}}}, {label})",
                        if var == "tenant" {
                            r#"job=~"$job""#
                        } else {
                            r#"job=~"$job",tenant=~"$tenant""#
                        }
                    ),
                    "{name}: {var}"
                );
                assert_eq!(v["includeAll"], true, "{name}: {var}");
                assert_eq!(v["allValue"], ".*", "{name}: {var}");
                assert_eq!(v["current"]["value"], "$__all", "{name}: {var}");
                assert_eq!(v["refresh"], 2, "{name}: {var} refreshed on time change");
            }
            // Every series a panel or annotation reads is narrowed by the three variables.
            let want = [
                r#"job=~"$job""#.to_string(),
                r#"tenant=~"$tenant""#.to_string(),
                format!(r#"{exporter_label}=~"$instance""#),
            ];
            let uid = d["uid"].as_str().unwrap();
            for (u, title, expr) in expressions_in(folder)
                .into_iter()
                .chain(annotations_in(folder))
            {
                if u != uid {
                    continue;
                }
                for metric in metric_names(&expr).into_iter().chain(["up".to_string()]) {
                    for (at, _) in expr.match_indices(&metric) {
                        let rest = &expr[at + metric.len()..];
                        let before = expr[..at].chars().last();
                        if before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                            || rest.starts_with(|c: char| c.is_alphanumeric() || c == '_')
                        {
                            continue;
                        }
                        let matchers = rest
                            .strip_prefix('{')
                            .map(|r| &r[..r.find('}').unwrap()])
                            .unwrap_or("");
                        for w in &want {
                            assert!(
                                matchers.split(',').any(|m| m == w),
                                "{name} / {title}: {metric}{{{matchers}}} lacks {w}"
                            );
                        }
                    }
                }
            }
            // Links: a menu of the dashboards carrying a tag, with time and variables kept;
            // every dashboard of the folder carries it, so each reaches the other two.
            let links = d["links"].as_array().unwrap();
            let link = links
                .iter()
                .find(|l| l["type"] == "dashboards")
                .unwrap_or_else(|| panic!("{name}: no dashboards link"));
            assert_eq!(link["keepTime"], true, "{name}");
            assert_eq!(link["includeVars"], true, "{name}");
            let tags: Vec<&Value> = link["tags"].as_array().unwrap().iter().collect();
            assert!(!tags.is_empty(), "{name}");
            let reached: BTreeSet<&str> = all
                .iter()
                .filter(|(_, o)| {
                    tags.iter()
                        .all(|t| o["tags"].as_array().unwrap().contains(t))
                })
                .map(|(_, o)| o["uid"].as_str().unwrap())
                .collect();
            assert_eq!(reached, uids, "{name}: the link reaches every dashboard");
            // The failed-polls annotation (its meaning is tested with promtool below).
            let annotations = d["annotations"]["list"].as_array().unwrap();
            assert!(
                annotations.iter().any(|a| a["enable"] == true
                    && a["datasource"]["uid"] == "${datasource}"
                    && a["expr"]
                        .as_str()
                        .is_some_and(|e| e.starts_with("powerbi_up{"))),
                "{name}: no failed-polls annotation"
            );
        }
    }
}

fn prometheus_scraping(target: &str, dir: &Path) -> Prometheus {
    prometheus_with(
        &format!(
            "  - job_name: powerbi-exporter\n    static_configs: [{{targets: [{target:?}]}}]\n"
        ),
        dir,
    )
}

/// The shipped job, every tenant and every exporter.
fn substitute(expr: &str) -> String {
    substitute_with(expr, "powerbi-exporter", ".*", ".*")
}

/// The values Grafana offers for a `label_values(SERIES, LABEL)` variable query, from the
/// label values API it uses.
fn label_values(server: &Prometheus, query: &str) -> Vec<String> {
    let (series, label) = query
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .and_then(|q| q.rsplit_once(", "))
        .unwrap_or_else(|| panic!("not label_values(SERIES, LABEL): {query}"));
    let answer: Value = serde_json::from_str(
        &http()
            .get(format!("{}/api/v1/label/{label}/values", server.1))
            .query(&[("match[]", series)])
            .send()
            .unwrap()
            .text()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(answer["status"], "success", "{query}: {answer}");
    answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_real_prometheus_evaluates_every_panel_and_alert_and_usage_panels_have_data() {
    let e = Exporter::start(&[
        "--demo",
        "--demo.backfill",
        "2h",
        "--demo.peak-events-per-minute",
        "3000",
    ]);
    e.wait_ready();
    let dir = tempfile::tempdir().unwrap();
    let server = prometheus_scraping(&e.addr, dir.path());
    // Enough scrapes for increase() and rate() over a few samples, and a few rule evaluations.
    wait_for_scrapes(&server);
    for (uid, title, expr) in expressions() {
        let answer = query(&server, &substitute(&expr));
        assert_eq!(
            answer["status"], "success",
            "{uid} / {title}: {expr}\n{answer}"
        );
        if uid == "powerbi-usage" {
            assert!(
                !answer["data"]["result"].as_array().unwrap().is_empty(),
                "{uid} / {title}: no data\n{expr}"
            );
        }
    }
    for (uid, name, expr) in annotations_in("dashboards") {
        let answer = query(&server, &substitute(&expr));
        assert_eq!(answer["status"], "success", "{uid} / {name}: {answer}");
    }
    // The variables: the job is the shipped one; no series carries a tenant label, so the tenant
    // variable offers nothing and its All (.*) keeps every series (the panels above had data).
    for (uid, var, q) in variable_queries("dashboards") {
        let values = label_values(&server, &substitute(&q));
        match var.as_str() {
            "job" => assert_eq!(values, ["powerbi-exporter"], "{uid}: {q}"),
            "tenant" => assert!(values.is_empty(), "{uid}: {q}: {values:?}"),
            "instance" => assert_eq!(values, [e.addr.as_str()], "{uid}: {q}"),
            _ => assert!(!values.is_empty(), "{uid} / {var}: no values: {q}"),
        }
    }
    for (alert, expr) in alerts() {
        let answer = query(&server, &expr);
        assert_eq!(answer["status"], "success", "{alert}: {answer}");
    }
    let rules: Value = serde_json::from_str(
        &http()
            .get(format!("{}/api/v1/rules", server.1))
            .send()
            .unwrap()
            .text()
            .unwrap(),
    )
    .unwrap();
    let rules: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(rules.len(), alerts().len());
    for r in rules {
        assert_eq!(r["health"], "ok", "{}: {}", r["name"], r["lastError"]);
    }
}

#[test]
fn the_tenant_variable_filters_labelled_series_and_the_kubernetes_exporter_choice_survives_a_restart(
) {
    let e = Exporter::start(&[
        "--demo",
        "--demo.backfill",
        "2h",
        "--demo.peak-events-per-minute",
        "3000",
    ]);
    e.wait_ready();
    let port = e.addr.rsplit_once(':').unwrap().1;
    // The Prometheus Operator's view of one release: a tenant target label, the Service's name
    // in `service`, and `instance` the pod's address. The pod is replaced (Recreate) by one at
    // another address; here the same exporter under a second address stands for it.
    let before = e.addr.clone();
    let after = format!("localhost:{port}");
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets.json");
    let point_at = |address: &str| {
        let file = serde_json::json!([{
            "targets": [address],
            "labels": {"tenant": "contoso", "service": "contoso-powerbi-exporter"},
        }]);
        let part = dir.path().join("targets.json.part");
        std::fs::write(&part, file.to_string()).unwrap();
        std::fs::rename(&part, &targets).unwrap();
    };
    point_at(&before);
    let server = prometheus_with(
        &format!(
            "  - job_name: powerbi-exporter\n    file_sd_configs: [{{files: [{:?}]}}]\n",
            targets.display().to_string()
        ),
        dir.path(),
    );
    wait_for_scrapes(&server);
    // The restart: the old address goes, the new one comes.
    point_at(&after);
    let deadline = Instant::now() + Duration::from_secs(30);
    while query(&server, &format!("up{{instance={after:?}}}"))["data"]["result"]
        .as_array()
        .is_none_or(|r| r.is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "the new target was not scraped in 30s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for_scrapes(&server);
    let k8s = "deploy/kubernetes/dashboards";
    for (uid, var, q) in variable_queries(k8s) {
        let values = label_values(&server, &substitute(&q));
        match var.as_str() {
            "tenant" => assert_eq!(values, ["contoso"], "{uid}: {q}"),
            // One choice for both pods: a dashboard saved or linked with it still shows the
            // exporter after the restart.
            "instance" => assert_eq!(values, ["contoso-powerbi-exporter"], "{uid}: {q}"),
            _ => {}
        }
    }
    // The plain rendering's exporter variable would have offered the two pod addresses.
    let plain = variable_queries("dashboards")
        .into_iter()
        .find(|(_, var, _)| var == "instance")
        .unwrap()
        .2;
    let mut addresses = label_values(&server, &substitute(&plain));
    addresses.sort();
    let mut want = vec![before, after];
    want.sort();
    assert_eq!(addresses, want);
    // Chosen by tenant and Service, the usage panels have data; another tenant's choice has none.
    for (uid, title, expr) in expressions_in(k8s) {
        if uid != "powerbi-usage" {
            continue;
        }
        let chosen = query(
            &server,
            &substitute_with(
                &expr,
                "powerbi-exporter",
                "contoso",
                "contoso-powerbi-exporter",
            ),
        );
        assert!(
            !chosen["data"]["result"].as_array().unwrap().is_empty(),
            "{uid} / {title}: no data for the chosen tenant\n{expr}\n{chosen}"
        );
        let other = query(
            &server,
            &substitute_with(&expr, "powerbi-exporter", "fabrikam", ".*"),
        );
        let rows = other["data"]["result"].as_array().unwrap();
        // `or vector(0)` answers 0 when nothing matches.
        assert!(
            rows.iter()
                .all(|r| r["metric"].as_object().unwrap().is_empty() && r["value"][1] == "0"),
            "{uid} / {title}: another tenant's choice shows data\n{expr}\n{other}"
        );
    }
}

#[test]
fn the_failed_polls_annotation_marks_exactly_the_minutes_a_poll_had_failed() {
    // powerbi_up is 0 after a poll that did not read every planned hour (the catalogue's help
    // text). The annotation's expression as an alert without `for` fires exactly where Grafana
    // draws a mark; promtool evaluates it on series with known failures.
    let mut checked = 0;
    for (folder, exporter_label) in FOLDERS {
        let mut exprs: BTreeSet<String> = BTreeSet::new();
        for (_, _, expr) in annotations_in(folder) {
            exprs.insert(substitute(&expr));
        }
        assert_eq!(
            exprs.len(),
            1,
            "{folder}: one failed-polls annotation: {exprs:?}"
        );
        let expr = exprs.pop_first().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rules.yaml"),
            format!("groups:\n  - name: annotation\n    rules:\n      - alert: FailedPoll\n        expr: {expr:?}\n"),
        )
        .unwrap();
        let label = format!("{exporter_label}: a");
        std::fs::write(
            dir.path().join("test.yaml"),
            format!(
                "rule_files: [rules.yaml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n      - series: 'powerbi_up{{job=\"powerbi-exporter\",{exporter_label}=\"a\"}}'\n        values: 1 1 0 0 1 1\n      - series: 'powerbi_up{{job=\"other\",{exporter_label}=\"b\"}}'\n        values: 0 0 0 0 0 0\n    alert_rule_test:\n{}",
                (0..6)
                    .map(|minute| {
                        let failed = minute == 2 || minute == 3;
                        let alerts = if failed {
                            format!("\n          - exp_labels: {{job: powerbi-exporter, {label}}}\n")
                        } else {
                            " []\n".to_string()
                        };
                        format!("      - eval_time: {minute}m\n        alertname: FailedPoll\n        exp_alerts:{alerts}")
                    })
                    .collect::<String>()
            ),
        )
        .unwrap();
        let out = Command::new(crate::support::promtool())
            .args(["test", "rules", "test.yaml"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{folder}: {expr}\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn a_real_prometheus_scraping_the_demo_shows_data_in_every_panel_of_the_items_dashboard() {
    // The simulated tenant has semantic models with failing refreshes, dashboards, dataflows,
    // apps, Fabric items of four kinds and an inventory with unused items: every panel of
    // "Semantic models and items" has something to show.
    let e = Exporter::start(&[
        "--demo",
        "--demo.backfill",
        "2h",
        "--demo.peak-events-per-minute",
        "3000",
    ]);
    // Two hours of a busy tenant are generated before the exporter is ready: slow on a loaded
    // machine.
    e.wait_ready_within(Duration::from_secs(60));
    // The inventory is read after the first poll, which loads the two hours' backlog: under a
    // loaded CI machine that took over 30 s, and Prometheus' first scrapes had no inventory.
    // Its panels are checked once /metrics has it.
    e.scrape_until(
        Duration::from_secs(180),
        |s| !family(s, "powerbi_items").is_empty(),
        |_| "powerbi_items never reached /metrics: the inventory was not applied".into(),
    );
    let dir = tempfile::tempdir().unwrap();
    let server = prometheus_scraping(&e.addr, dir.path());
    wait_for_scrapes(&server);
    let every_type = |expr: &str| substitute(&expr.replace("$item_type", ".*"));
    let mut empty = Vec::new();
    let mut panels = 0;
    for (uid, title, expr) in expressions() {
        if uid != "powerbi-items" {
            continue;
        }
        let answer = query(&server, &every_type(&expr));
        assert_eq!(answer["status"], "success", "{title}: {expr}\n{answer}");
        if answer["data"]["result"].as_array().unwrap().is_empty() {
            empty.push(format!("{title}: {expr}"));
        }
        panels += 1;
    }
    assert!(panels >= 10, "{panels} queries of powerbi-items");
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );
    for (uid, var, q) in variable_queries("dashboards") {
        if uid == "powerbi-items" && (var == "workspace" || var == "item_type") {
            let values = label_values(&server, &every_type(&q));
            assert!(!values.is_empty(), "{var}: no values: {q}");
        }
    }
}
