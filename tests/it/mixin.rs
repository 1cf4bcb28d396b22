//! The monitoring mixin (mixin/): the checked-in dashboards and rules are exactly what the real
//! `jsonnet` renders from it, and its config's selector reaches every series an alert reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::rules::metric_names;
use crate::support::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file the mixin renders, by its path in the repository.
const RENDERED: [&str; 15] = [
    "dashboards/powerbi-exporter-health.json",
    "dashboards/powerbi-items.json",
    "dashboards/powerbi-security.json",
    "dashboards/powerbi-usage.json",
    "deploy/helm/powerbi-exporter/dashboards/powerbi-exporter-health.json",
    "deploy/helm/powerbi-exporter/dashboards/powerbi-items.json",
    "deploy/helm/powerbi-exporter/dashboards/powerbi-security.json",
    "deploy/helm/powerbi-exporter/dashboards/powerbi-usage.json",
    "deploy/helm/powerbi-exporter/rules/alerts.yaml",
    "deploy/kubernetes/dashboards/powerbi-exporter-health.json",
    "deploy/kubernetes/dashboards/powerbi-items.json",
    "deploy/kubernetes/dashboards/powerbi-security.json",
    "deploy/kubernetes/dashboards/powerbi-usage.json",
    "deploy/kubernetes/prometheusrule.yaml",
    "deploy/prometheus/rules/alerts.yaml",
];

fn jsonnet() -> &'static str {
    let found = Command::new("jsonnet").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "jsonnet not found: the Debian package jsonnet, installed by scripts/test.sh"
    );
    "jsonnet"
}

fn files_under(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, base, out);
        } else {
            let rel = p.strip_prefix(base).unwrap().to_str().unwrap().to_string();
            out.insert(rel);
        }
    }
}

#[test]
fn the_checked_in_dashboards_and_rules_are_what_the_mixin_renders_byte_for_byte() {
    jsonnet();
    let out = tempfile::tempdir().unwrap();
    let render = Command::new("bash")
        .arg(root().join("mixin/render.sh"))
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        render.status.success(),
        "mixin/render.sh: {}",
        stderr(&render)
    );
    let mut rendered = BTreeSet::new();
    files_under(out.path(), out.path(), &mut rendered);
    let expected: BTreeSet<String> = RENDERED.iter().map(|s| s.to_string()).collect();
    assert_eq!(rendered, expected, "the files the mixin renders");
    for path in RENDERED {
        let fresh = std::fs::read(out.path().join(path)).unwrap();
        let checked_in = std::fs::read(root().join(path)).unwrap_or_default();
        assert!(
            fresh == checked_in,
            "{path} differs from what mixin/ renders: edit the mixin and run mixin/render.sh"
        );
    }
    // The rendered folders hold nothing else (a file the mixin no longer renders is stale).
    for dir in [
        "dashboards",
        "deploy/kubernetes/dashboards",
        "deploy/helm/powerbi-exporter/dashboards",
        "deploy/helm/powerbi-exporter/rules",
    ] {
        let mut present = BTreeSet::new();
        files_under(&root().join(dir), &root(), &mut present);
        for f in present {
            assert!(expected.contains(&f), "{f} is not rendered by the mixin");
        }
    }
}

/// The mixin rendered with `overrides` added to its `_config`.
fn render_with(overrides: &str) -> Value {
    let expr = format!(
        "local m = (import 'mixin.libsonnet') + {{ _config+:: {{ {overrides} }} }};\n\
         {{ alerts: m.prometheusAlerts, dashboards: m.grafanaDashboards }}"
    );
    let out = Command::new(jsonnet())
        .args(["-J", root().join("mixin").to_str().unwrap(), "-e", &expr])
        .output()
        .unwrap();
    assert!(out.status.success(), "jsonnet: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The label matchers inside the braces right after each occurrence of `metric` in `expr`
/// (None where the metric has no braces).
fn selectors_of(expr: &str, metric: &str) -> Vec<Option<String>> {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    for (at, _) in expr.match_indices(metric) {
        let end = at + metric.len();
        let whole =
            (at == 0 || !ident(bytes[at - 1])) && (end == bytes.len() || !ident(bytes[end]));
        if !whole || expr[end..].starts_with('(') {
            continue;
        }
        out.push(
            expr[end..]
                .strip_prefix('{')
                .map(|rest| rest[..rest.find('}').unwrap()].to_string()),
        );
    }
    out
}

#[test]
fn every_series_an_alert_reads_is_selected_by_the_configs_selector() {
    // A selector of another shape than the default: two matchers, one of them a regex.
    let selector = r#"job=~"pbi-.*",cluster="c1""#;
    let m = render_with(&format!("powerbiExporterSelector: {selector:?}"));
    let mut checked = 0;
    for group in m["alerts"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let (alert, expr) = (
                rule["alert"].as_str().unwrap(),
                rule["expr"].as_str().unwrap(),
            );
            assert!(
                !expr.contains("powerbi-exporter"),
                "{alert}: the default job remains: {expr}"
            );
            let mut metrics = metric_names(expr);
            metrics.insert("up".into());
            for metric in metrics {
                for matchers in selectors_of(expr, &metric) {
                    let matchers = matchers.unwrap_or_default();
                    assert!(
                        matchers.split(',').any(|m| m == r#"job=~"pbi-.*""#)
                            && matchers.split(',').any(|m| m == r#"cluster="c1""#),
                        "{alert}: {metric}{{{matchers}}} lacks the config's selector"
                    );
                    checked += 1;
                }
            }
        }
    }
    // 24 alerts, some reading two or three series.
    assert!(checked >= 24, "{checked} selectors checked");
    // The dashboards offer the jobs that selector allows.
    for (name, d) in m["dashboards"].as_object().unwrap() {
        let job = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "job")
            .unwrap_or_else(|| panic!("{name}: no job variable"));
        assert_eq!(
            job["definition"],
            format!("label_values(powerbi_exporter_build_info{{{selector}}}, job)"),
            "{name}"
        );
    }
}

#[test]
fn runbook_urls_follow_the_configs_pattern() {
    let m = render_with(r#"runbookURLPattern: "https://wiki.example/powerbi#%s""#);
    for group in m["alerts"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let alert = rule["alert"].as_str().unwrap();
            assert_eq!(
                rule["annotations"]["runbook_url"],
                format!("https://wiki.example/powerbi#{}", alert.to_lowercase()),
            );
        }
    }
}

#[test]
fn the_mixin_source_is_formatted_by_jsonnetfmt() {
    // As the kube-prometheus mixins lint: `jsonnetfmt --test` (Debian's jsonnet package).
    let mut sources = BTreeSet::new();
    files_under(&root().join("mixin"), &root(), &mut sources);
    let sources: Vec<String> = sources
        .into_iter()
        .filter(|f| f.ends_with(".libsonnet") || f.ends_with(".jsonnet"))
        .collect();
    assert!(sources.len() >= 8, "{sources:?}");
    for source in sources {
        let out = Command::new("jsonnetfmt")
            .args(["--test", &source])
            .current_dir(root())
            .output()
            .expect("jsonnetfmt (Debian's jsonnet package)");
        assert!(
            out.status.success(),
            "{source} is not formatted: run jsonnetfmt -i {source}{}",
            stderr(&out)
        );
    }
}
