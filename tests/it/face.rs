//! The exporter's face to the ecosystem: the OTLP resource's `service.instance.id`.

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

