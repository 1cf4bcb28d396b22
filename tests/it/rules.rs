//! The shipped alert rules: valid, unit-tested with promtool, every alert covered (a firing and a
//! quiet case), with a runbook entry, using only metrics the exporter exports.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_yaml_ng::Value;

use crate::support::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus");

fn promtool_ok(args: &[&str]) {
    let out = Command::new(promtool())
        .args(args)
        .current_dir(DIR)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
}

fn yaml(path: &str) -> Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(Path::new(DIR).join(path)).unwrap()).unwrap()
}

/// Every alert rule: name and expression.
pub fn alerts() -> Vec<(String, String)> {
    let rules = yaml("rules/alerts.yaml");
    rules["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().iter())
        .map(|r| {
            (
                r["alert"].as_str().unwrap().to_string(),
                r["expr"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    promtool_ok(&["check", "rules", "rules/alerts.yaml"]);
    promtool_ok(&["test", "rules", "rules/alerts.test.yaml"]);
    promtool_ok(&["check", "config", "prometheus.yml"]);
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_case_and_a_runbook_entry() {
    let tests = yaml("rules/alerts.test.yaml");
    let (mut firing, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    for t in tests["tests"].as_sequence().unwrap() {
        for case in t["alert_rule_test"].as_sequence().unwrap() {
            let name = case["alertname"].as_str().unwrap().to_string();
            match case["exp_alerts"].as_sequence().map(Vec::len) {
                Some(0) | None => quiet.insert(name),
                Some(_) => firing.insert(name),
            };
        }
    }
    let runbook = std::fs::read_to_string(Path::new(DIR).join("README.md")).unwrap();
    for (alert, _) in alerts() {
        assert!(
            firing.contains(&alert),
            "{alert}: no test case where it fires"
        );
        assert!(
            quiet.contains(&alert),
            "{alert}: no test case where it stays quiet"
        );
        assert!(
            runbook.contains(&format!("### {alert}\n")),
            "{alert}: no runbook entry in deploy/prometheus/README.md"
        );
    }
}

#[test]
fn rules_use_only_metrics_the_exporter_exports() {
    for (alert, expr) in alerts() {
        for name in metric_names(&expr) {
            assert!(
                powerbi_exporter::catalogue::by_name(&name).is_some(),
                "{alert} uses {name}, which is not in the catalogue"
            );
        }
    }
}

/// The `powerbi_*` metric names in a PromQL expression.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("powerbi_") {
        let start = i + at;
        let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        if start > 0 && ident(bytes[start - 1]) {
            i = start + 1;
            continue;
        }
        let end = start + bytes[start..].iter().take_while(|b| ident(**b)).count();
        names.insert(expr[start..end].to_string());
        i = end;
    }
    names
}

#[test]
fn a_target_that_disappears_alerts_too() {
    // `up == 0` needs a target: one that service discovery lost (a deleted Service, a
    // ServiceMonitor that no longer matches) has no `up` at all, so PowerBIExporterDown stays
    // quiet. absent() on the same selector covers it.
    let alerts = alerts();
    let down = &alerts
        .iter()
        .find(|(name, _)| name == "PowerBIExporterDown")
        .unwrap()
        .1;
    let selector = down.strip_suffix(" == 0").expect("up{...} == 0");
    assert!(selector.starts_with("up{job="), "{down}");
    let absent = format!("absent({selector})");
    assert!(
        alerts.iter().any(|(_, expr)| *expr == absent),
        "no alert is {absent}"
    );
}

/// The anchor GitHub (and most Markdown renderers) give a heading: lower case, spaces to
/// hyphens, other punctuation dropped.
fn heading_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_alert_has_a_runbook_url_pointing_at_its_runbook_entry() {
    let runbook = std::fs::read_to_string(Path::new(DIR).join("README.md")).unwrap();
    let anchors: BTreeSet<(String, String)> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| (h.to_string(), heading_anchor(h)))
        .collect();
    let rules = yaml("rules/alerts.yaml");
    let mut seen = 0;
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let alert = rule["alert"].as_str().unwrap();
            let url = rule["annotations"]["runbook_url"]
                .as_str()
                .unwrap_or_else(|| panic!("{alert}: no runbook_url"));
            let (page, anchor) = url
                .split_once('#')
                .unwrap_or_else(|| panic!("{alert}: {url} has no anchor"));
            // The runbook as the repository named in Cargo.toml serves it.
            assert_eq!(
                page,
                format!("{}/blob/main/deploy/prometheus/README.md", repository()),
                "{alert}"
            );
            assert!(
                anchors.contains(&(alert.to_string(), anchor.to_string())),
                "{alert}: {url} is not the anchor of its entry `### {alert}`"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, alerts().len());
}

/// `repository` of Cargo.toml's `[package]`: where the runbook links point.
fn repository() -> String {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("repository = "))
        .expect("Cargo.toml names the repository")
        .trim_matches('"')
        .to_string()
}
