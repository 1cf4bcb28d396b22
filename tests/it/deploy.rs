//! Deployment files: copies cannot drift from their sources, every YAML parses, the Helm chart
//! only uses values that exist (helm itself is not installable from this project's package
//! registries, so the chart is checked statically), kustomize and compose paths exist, and the
//! container's health check works.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::support::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn copies_of_dashboards_and_rules_are_identical_to_their_sources() {
    for copy_dir in [
        "deploy/kubernetes/dashboards",
        "deploy/helm/powerbi-exporter/dashboards",
    ] {
        let mut names = BTreeSet::new();
        for e in std::fs::read_dir(root().join("dashboards")).unwrap() {
            let source = e.unwrap().path();
            let name = source.file_name().unwrap().to_owned();
            let copy = root().join(copy_dir).join(&name);
            assert_eq!(
                std::fs::read(&copy).ok(),
                Some(std::fs::read(&source).unwrap()),
                "{} differs from {}: copy it again",
                copy.display(),
                source.display()
            );
            names.insert(name);
        }
        assert_eq!(
            std::fs::read_dir(root().join(copy_dir)).unwrap().count(),
            names.len(),
            "{copy_dir} has files dashboards/ does not"
        );
    }
    let rules = std::fs::read(root().join("deploy/prometheus/rules/alerts.yaml")).unwrap();
    assert_eq!(
        std::fs::read(root().join("deploy/helm/powerbi-exporter/rules/alerts.yaml")).unwrap(),
        rules,
        "helm rules copy differs"
    );
    let source: Value = serde_yaml_ng::from_slice(&rules).unwrap();
    let k8s: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("deploy/kubernetes/prometheusrule.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        k8s["spec"], source,
        "deploy/kubernetes/prometheusrule.yaml spec differs from the rules"
    );
}

#[test]
fn every_yaml_file_parses() {
    let mut all = Vec::new();
    files(&root().join("deploy"), &mut all);
    let yaml: Vec<_> = all
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter(|p| !p.to_string_lossy().contains("/templates/"))
        .collect();
    assert!(yaml.len() >= 20, "{} yaml files", yaml.len());
    for p in yaml {
        let text = std::fs::read_to_string(p).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
}

/// The dotted paths under `v` (maps only).
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Some(map) = v.as_mapping() {
        for (k, v) in map {
            let p = format!("{prefix}{}", k.as_str().unwrap());
            out.insert(p.clone());
            paths(v, &format!("{p}."), out);
        }
    }
}

#[test]
fn the_helm_chart_only_uses_values_that_exist() {
    let chart = root().join("deploy/helm/powerbi-exporter");
    let values: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap())
            .unwrap();
    let mut known = BTreeSet::new();
    paths(&values, "", &mut known);
    let mut templates = Vec::new();
    files(&chart.join("templates"), &mut templates);
    for t in templates {
        let text = std::fs::read_to_string(&t).unwrap();
        for (i, _) in text.match_indices(".Values.") {
            let path: String = text[i + 8..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                .collect();
            let path = path.trim_end_matches('.');
            assert!(
                known.contains(path),
                "{}: .Values.{path} is not in values.yaml",
                t.display()
            );
        }
        assert_eq!(
            text.matches("{{").count(),
            text.matches("}}").count(),
            "{}: unbalanced braces",
            t.display()
        );
    }
    let mut ci = Vec::new();
    files(&chart.join("ci"), &mut ci);
    assert!(!ci.is_empty());
    for f in ci {
        let v: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let mut used = BTreeSet::new();
        paths(&v, "", &mut used);
        for p in used {
            let open_map = known.iter().any(|k| {
                p.starts_with(&format!("{k}."))
                    && values_at(&values, k)
                        .as_mapping()
                        .is_some_and(|m| m.is_empty())
            });
            assert!(
                known.contains(&p) || open_map,
                "{}: {p} is not a chart value",
                f.display()
            );
        }
    }
    let chart_yaml: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart.join("Chart.yaml")).unwrap())
            .unwrap();
    assert_eq!(chart_yaml["apiVersion"], "v2");
    assert_eq!(
        chart_yaml["appVersion"].as_str(),
        Some(powerbi_exporter::VERSION),
        "appVersion follows the crate"
    );
    assert_eq!(
        values["replicaCount"].as_u64(),
        Some(1),
        "one replica per tenant"
    );
}

/// The long flags a `--help` output lists.
fn flags_in_help(args: &[&str]) -> BTreeSet<String> {
    let out = run(args);
    assert!(out.status.success(), "{}", stderr(&out));
    long_flags(&stdout(&out))
}

/// The `--long.flag` tokens of a text.
fn long_flags(text: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for (i, _) in text.match_indices("--") {
        let flag: String = text[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            .collect();
        let flag = flag.trim_end_matches(['.', '-']);
        if flag.starts_with(|c: char| c.is_ascii_lowercase()) {
            flags.insert(format!("--{flag}"));
        }
    }
    flags
}

#[test]
fn deployment_files_pass_only_flags_the_exporter_has() {
    let mut known = flags_in_help(&["--help"]);
    known.extend(flags_in_help(&["healthcheck", "--help"]));
    let compose: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("deploy/compose/docker-compose.yml")).unwrap(),
    )
    .unwrap();
    for arg in compose["services"]["exporter"]["command"]
        .as_sequence()
        .unwrap()
    {
        for flag in long_flags(arg.as_str().unwrap()) {
            assert!(known.contains(&flag), "compose exporter: {flag}");
        }
    }
    let mut checked = vec![root().join("deploy/docker/Dockerfile")];
    for dir in ["deploy/helm/powerbi-exporter", "deploy/kubernetes"] {
        files(&root().join(dir), &mut checked);
    }
    checked.retain(|p| {
        let name = p.to_string_lossy();
        !name.contains("/dashboards/") && !name.contains("/rules/") && !name.ends_with(".md")
    });
    let mut seen = 0;
    for path in checked {
        // Lines that run other tools (the image's build steps, `kubectl`, `helm`) have their
        // own flags; in the Dockerfile only the exporter's own command counts (HEALTHCHECK's
        // options are Docker's).
        let dockerfile = path.ends_with("Dockerfile");
        let text: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| {
                if dockerfile {
                    l.starts_with("CMD") || l.starts_with("ENTRYPOINT")
                } else {
                    !["kubectl ", "helm "].iter().any(|t| l.contains(t))
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        for flag in long_flags(&text) {
            assert!(
                known.contains(&flag),
                "{}: {flag} is not a flag of powerbi-exporter",
                path.display()
            );
            seen += 1;
        }
    }
    assert!(seen > 20, "the scan found the manifests' flags ({seen})");
}

#[test]
fn every_file_the_chart_points_at_is_mounted() {
    let template = std::fs::read_to_string(
        root().join("deploy/helm/powerbi-exporter/templates/deployment.yaml"),
    )
    .unwrap();
    let mounts: Vec<&str> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mountPath: "))
        .collect();
    let mut pointed = 0;
    for (i, _) in template.match_indices("/etc/powerbi-exporter/") {
        let path: String = template[i..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '{')
            .collect();
        if mounts.contains(&path.as_str()) {
            continue;
        }
        assert!(
            mounts.iter().any(|m| path.starts_with(&format!("{m}/"))),
            "{path} is under no volume mount of the chart ({mounts:?})"
        );
        pointed += 1;
    }
    assert!(
        pointed >= 4,
        "web config, pseudonym key, certificate, probes"
    );
}

fn values_at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

#[test]
fn kustomize_and_compose_reference_files_that_exist() {
    let k8s = root().join("deploy/kubernetes");
    let kustomization: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(k8s.join("kustomization.yaml")).unwrap())
            .unwrap();
    for r in kustomization["resources"].as_sequence().unwrap() {
        assert!(
            k8s.join(r.as_str().unwrap()).is_file(),
            "missing resource {r:?}"
        );
    }
    for gen in kustomization["configMapGenerator"].as_sequence().unwrap() {
        for f in gen["files"].as_sequence().unwrap() {
            assert!(k8s.join(f.as_str().unwrap()).is_file(), "missing {f:?}");
        }
    }
    let deployment: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(k8s.join("deployment.yaml")).unwrap())
            .unwrap();
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(1));
    let compose_dir = root().join("deploy/compose");
    let compose: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(compose_dir.join("docker-compose.yml")).unwrap(),
    )
    .unwrap();
    for service in ["exporter", "prometheus", "alertmanager", "grafana"] {
        let s = &compose["services"][service];
        assert!(s.is_mapping(), "service {service}");
        for v in s["volumes"].as_sequence().into_iter().flatten() {
            let local = v.as_str().unwrap().split(':').next().unwrap();
            assert!(
                compose_dir.join(local).exists(),
                "{service}: {local} does not exist"
            );
        }
    }
    let dockerfile = std::fs::read_to_string(root().join("deploy/docker/Dockerfile")).unwrap();
    for needle in [
        "USER 65532",
        "VOLUME [\"/var/lib/powerbi-exporter\"]",
        &format!("EXPOSE {}", powerbi_exporter::DEFAULT_PORT),
        "\"healthcheck\"]",
    ] {
        assert!(dockerfile.contains(needle), "Dockerfile lacks {needle}");
    }
}

#[test]
fn the_container_health_check_command_works() {
    let e = Exporter::start(&["--demo", "--demo.backfill", "1m"]);
    let out = run(&["healthcheck", "--web.listen-address", &e.addr]);
    assert!(out.status.success(), "{}", stderr(&out));
    drop(e);
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = run(&["healthcheck", "--web.listen-address", &free]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a port without an exporter is unhealthy"
    );
}

#[test]
fn the_collector_sample_wires_every_pipeline_to_defined_components_on_the_otlp_ports() {
    let text = std::fs::read_to_string(root().join("deploy/otel/collector.yaml")).unwrap();
    let c: Value = serde_yaml_ng::from_str(&text).unwrap();
    for (signal, exporter) in [("metrics", "prometheus"), ("logs", "debug")] {
        let p = &c["service"]["pipelines"][signal];
        for kind in ["receivers", "processors", "exporters"] {
            for name in p[kind].as_sequence().unwrap() {
                let name = name.as_str().unwrap();
                assert!(
                    c[kind].get(name).is_some(),
                    "{signal} pipeline uses undefined {kind} {name}"
                );
            }
        }
        assert!(p["exporters"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|e| e == exporter));
    }
    // The OTLP default ports: what OTEL_EXPORTER_OTLP_ENDPOINT points at without a port choice.
    let protocols = &c["receivers"]["otlp"]["protocols"];
    assert_eq!(protocols["grpc"]["endpoint"], "0.0.0.0:4317");
    assert_eq!(protocols["http"]["endpoint"], "0.0.0.0:4318");
    assert_eq!(c["exporters"]["prometheus"]["add_metric_suffixes"], true);
}
