//! The exporter's face to the ecosystem: `build_info` and `--version` as the Prometheus
//! toolkit has them, and the OTLP resource's `service.instance.id`.

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

/// Pushed series get an `instance` from `service.instance.id` (the Collector's prometheus
/// exporter and Prometheus' OTLP receiver both map it so): `host:port` like a scrape's instance.
#[test]
fn the_otlp_resource_carries_service_instance_id_as_host_and_port() {
    let receiver = Receiver::start(Transport::Http);
    let endpoint = format!("{}/v1/metrics", receiver.endpoint());
    let env = [
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", endpoint.as_str()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ("HOSTNAME", "pod-abc-123"),
    ];
    let e = Exporter::start_with_env(&["--demo", "--demo.backfill", "1h"], &env);
    wait_until(Duration::from_secs(20), "a push", || {
        !receiver.metrics_requests().is_empty()
    });
    let port = e.addr.rsplit_once(':').unwrap().1;
    let resource = resource_attributes_of_metrics(&receiver.metrics_requests()[0]);
    assert_eq!(resource["service.instance.id"], format!("pod-abc-123:{port}"));
    drop(e);

    // Without HOSTNAME, the kernel's host name; OTEL_RESOURCE_ATTRIBUTES still wins over both.
    let receiver = Receiver::start(Transport::Http);
    let endpoint = format!("{}/v1/metrics", receiver.endpoint());
    let e = Exporter::start_with_env(
        &["--demo", "--demo.backfill", "1h"],
        &[
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", endpoint.as_str()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
            ("HOSTNAME", ""),
        ],
    );
    wait_until(Duration::from_secs(20), "a push", || {
        !receiver.metrics_requests().is_empty()
    });
    let port = e.addr.rsplit_once(':').unwrap().1;
    let resource = resource_attributes_of_metrics(&receiver.metrics_requests()[0]);
    assert_eq!(
        resource["service.instance.id"],
        format!("{}:{port}", kernel_hostname())
    );
    drop(e);

    let receiver = Receiver::start(Transport::Http);
    let endpoint = format!("{}/v1/metrics", receiver.endpoint());
    let _e = Exporter::start_with_env(
        &["--demo", "--demo.backfill", "1h"],
        &[
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", endpoint.as_str()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=chosen-1"),
        ],
    );
    wait_until(Duration::from_secs(20), "a push", || {
        !receiver.metrics_requests().is_empty()
    });
    let resource = resource_attributes_of_metrics(&receiver.metrics_requests()[0]);
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
    assert_eq!(lines[4], format!("  platform:         {}/{}", std::env::consts::OS, std::env::consts::ARCH));
}

