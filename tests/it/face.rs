//! The exporter's face to the ecosystem: `build_info` and `--version` as the Prometheus
//! toolkit has them, `healthcheck` following `--config.file`, and the OTLP resource's
//! `service.instance.id`. (Logfmt as Go writes it is tested in `src/telemetry.rs`.)

use std::collections::BTreeMap;
use std::time::Duration;

use crate::otlp::wait_until;
use crate::otlp_receiver::{resource_attributes_of_metrics, Receiver, Transport};
use crate::support::Exporter;

/// The host name as the kernel has it, read here independently of the exporter.
fn kernel_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("/proc/sys/kernel/hostname")
        .trim()
        .to_string()
}

/// The resource attributes of the first push of a demo exporter started with `extra` in its
/// environment (beside an OTLP endpoint and a 200 ms interval), and the port it listened on.
fn first_pushed_resource(extra: (&str, &str)) -> (BTreeMap<String, String>, String) {
    let receiver = Receiver::start(Transport::Http);
    let endpoint = format!("{}/v1/metrics", receiver.endpoint());
    let e = Exporter::start_with_env(
        &["--demo", "--demo.backfill", "1h"],
        &[
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", endpoint.as_str()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
            extra,
        ],
    );
    wait_until(Duration::from_secs(20), "a push", || {
        !receiver.metrics_requests().is_empty()
    });
    let port = e.addr.rsplit_once(':').unwrap().1.to_string();
    let resource = resource_attributes_of_metrics(&receiver.metrics_requests()[0]);
    (resource, port)
}

/// Pushed series get an `instance` from `service.instance.id` (the Collector's prometheus
/// exporter and Prometheus' OTLP receiver both map it so): `host:port` like a scrape's instance.
#[test]
fn the_otlp_resource_carries_service_instance_id_as_host_and_port() {
    let (resource, port) = first_pushed_resource(("HOSTNAME", "pod-abc-123"));
    assert_eq!(
        resource["service.instance.id"],
        format!("pod-abc-123:{port}")
    );

    // Without HOSTNAME, the kernel's host name; OTEL_RESOURCE_ATTRIBUTES still wins over both.
    let (resource, port) = first_pushed_resource(("HOSTNAME", ""));
    assert_eq!(
        resource["service.instance.id"],
        format!("{}:{port}", kernel_hostname())
    );

    let (resource, _) =
        first_pushed_resource(("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=chosen-1"));
    assert_eq!(resource["service.instance.id"], "chosen-1");
}

/// What git says about the work tree the binary was built from.
pub fn git(args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `rustc --version`'s number, e.g. `1.91.1`.
pub fn rust_version() -> String {
    let out = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
        .arg("--version")
        .output()
        .expect("rustc");
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_string()
}

/// The toolkit's `<name>_build_info{version, revision, branch, goversion}`, with the Rust
/// toolchain in `rustversion`, and `--version` printed as Prometheus' `version.Print` does.
#[test]
fn build_info_and_version_name_the_revision_branch_and_toolchain() {
    let (revision, branch, rust) = (
        git(&["rev-parse", "HEAD"]),
        git(&["rev-parse", "--abbrev-ref", "HEAD"]),
        rust_version(),
    );
    let version = env!("CARGO_PKG_VERSION");
    let e = Exporter::start(&["--demo", "--demo.backfill", "1h"]);
    e.wait_ready();
    let info = crate::support::family(&e.scrape(), "powerbi_exporter_build_info");
    let want = format!(
        "{{version=\"{version}\",revision=\"{revision}\",branch=\"{branch}\",rustversion=\"{rust}\"}}"
    );
    assert_eq!(info.into_iter().collect::<Vec<_>>(), vec![(want, 1.0)]);

    let out = crate::support::run(&["--version"]);
    assert!(out.status.success());
    let text = crate::support::stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("powerbi-exporter, version {version} (branch: {branch}, revision: {revision})")
    );
    assert!(lines[1].starts_with("  build user:"), "{text}");
    assert!(lines[2].starts_with("  build date:"), "{text}");
    assert_eq!(lines[3], format!("  rust version:     {rust}"));
    assert_eq!(
        lines[4],
        format!(
            "  platform:         {}/{}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )
    );
}

/// `healthcheck --config.file` (or `POWERBI_EXPORTER_CONFIG_FILE`, as the container sets it)
/// probes the address and speaks the TLS that the file's `web:` section gives the exporter;
/// a flag still wins over the file.
#[test]
fn healthcheck_follows_the_config_file() {
    let pki = crate::web::pki();
    let web_yml = pki.dir.path().join("web.yml");
    std::fs::write(
        &web_yml,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    )
    .unwrap();
    let mut e = Exporter::start(&["--demo", "--web.config.file", web_yml.to_str().unwrap()]);
    let config = pki.dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "web:\n  listen_address: \"{}\"\n  telemetry_path: /stats\n  config_file: {}\n",
            e.addr,
            web_yml.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let probe = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["healthcheck"];
        all.extend_from_slice(args);
        let out = crate::support::run_with_env(&all, env);
        (out.status.code(), crate::support::stderr(&out))
    };
    assert_eq!(probe(&["--config.file", config], &[]).0, Some(0));
    // Ready once the demo's first document is applied: as long as `Exporter::wait_ready`
    // allows a debug demo on a loaded machine (20 s ran out once in a clean-clone CI run).
    wait_until(
        Duration::from_secs(120),
        "ready, through the container's variable",
        || probe(&["--ready"], &[("POWERBI_EXPORTER_CONFIG_FILE", config)]).0 == Some(0),
    );
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free = free.local_addr().unwrap().to_string();
    let (code, err) = probe(
        &["--config.file", config, "--web.listen-address", &free],
        &[],
    );
    assert_eq!(code, Some(1), "the flag's address wins: {err}");
    assert!(err.contains(&free), "{err}");
    e.terminate();
    assert_eq!(probe(&["--config.file", config], &[]).0, Some(1), "stopped");
    let (code, err) = probe(&["--config.file", "/nonexistent/config.yml"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent/config.yml"), "{err}");
}
