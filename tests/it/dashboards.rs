//! The shipped Grafana dashboards: lint, and every panel and alert expression evaluated by a
//! real Prometheus (Debian's) scraping the exporter's demo over 127.0.0.1.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::rules::{alerts, metric_names};
use crate::support::*;

fn dashboards() -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
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
    assert_eq!(out.len(), 3, "usage, security and health dashboards");
    out
}

/// (dashboard uid, panel title, expression) for every query of every panel.
fn expressions() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (_, d) in dashboards() {
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

/// A Prometheus server, killed when dropped.
struct Prometheus(Child, String);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prometheus_scraping(target: &str, dir: &Path) -> Prometheus {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/rules/alerts.yaml");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{rules:?}]\nscrape_configs:\n  - job_name: powerbi-exporter\n    static_configs: [{{targets: [{target:?}]}}]\n"
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={address}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian package, installed by scripts/test.sh)");
    let server = Prometheus(child, format!("http://{address}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while http()
        .get(format!("{}/-/ready", server.1))
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "prometheus not ready within 30s");
        std::thread::sleep(Duration::from_millis(200));
    }
    server
}

fn query(server: &Prometheus, expr: &str) -> Value {
    let resp = http()
        .get(format!("{}/api/v1/query", server.1))
        .query(&[("query", expr)])
        .send()
        .unwrap();
    serde_json::from_str(&resp.text().unwrap()).unwrap()
}

/// Grafana's variables, as an instant query over the last hour would see them.
fn substitute(expr: &str) -> String {
    [
        ("$__rate_interval", "1m"),
        ("$__range", "1h"),
        ("$__interval", "1m"),
        ("$instance", ".*"),
        ("$workspace", ".*"),
        ("$activity", ".*"),
    ]
    .iter()
    .fold(expr.to_string(), |e, (var, value)| e.replace(var, value))
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while query(
        &server,
        "count_over_time(powerbi_events_processed_total[1m])",
    )["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        < 5.0
    {
        assert!(
            Instant::now() < deadline,
            "prometheus did not get 5 scrapes in 30s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
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
