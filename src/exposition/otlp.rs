//! OTLP push of the metric families `/metrics` serves, with the OpenTelemetry SDK's periodic
//! reader and the `opentelemetry-otlp` exporter, configured by the standard `OTEL_*` variables.
//!
//! Invariants:
//! - one observable instrument per catalogue family (and per `process_*` family), observed
//!   from the same composition `/metrics` renders ([`super::scrape::compose`] of the served
//!   collector; only the web server's own families are not pushed): the values are the served
//!   values (with a state directory, the saved ones, so a restart never shows a collector a
//!   false reset);
//! - names map so that a Collector's Prometheus exporter, or Prometheus' OTLP receiver,
//!   gives back the `/metrics` names: a counter loses `_total` (a monotonic cumulative sum
//!   gets it back), a `_seconds` / `_bytes` suffix becomes the unit `s` / `By`;
//! - the push runs on the SDK's own thread: it never blocks polling or scraping; a failed push
//!   is retried by the exporter with backoff, then counted in
//!   `powerbi_otlp_export_errors_total` and logged once per outage.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::metrics::{AsyncInstrument, MeterProvider as _};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{
    Instrument, PeriodicReader, SdkMeterProvider, Stream, Temporality,
};
use opentelemetry_sdk::Resource;
use prometheus::proto::{MetricFamily, MetricType};

use super::scrape::{self, SharedCollector};
use super::text;
use crate::catalogue::{self, Collector, Kind, Snapshot};

/// The transport of OTLP, from `OTEL_EXPORTER_OTLP_{METRICS,LOGS}_PROTOCOL` or
/// `OTEL_EXPORTER_OTLP_PROTOCOL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    HttpProtobuf,
    Grpc,
}

impl Protocol {
    /// The spelling of `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::Grpc => "grpc",
        }
    }
}

/// What is pushed over OTLP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpConfig {
    /// Push the metric families (`--otlp.enabled`, or an OTLP endpoint variable set).
    pub metrics: Option<Protocol>,
    /// Forward raw events as log records (`--otlp.logs`).
    pub logs: Option<Protocol>,
    /// Add `user.id` to log records (`--otlp.logs.user-attribute`).
    pub logs_user_attribute: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The protocol of a signal: its own variable, else the general one, else `http/protobuf`
/// (the specification's default).
pub fn protocol_from_env(signal: &str) -> Result<Protocol, String> {
    let var = format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL");
    let (name, value) = match env(&var) {
        Some(v) => (var, v),
        None => match env("OTEL_EXPORTER_OTLP_PROTOCOL") {
            Some(v) => ("OTEL_EXPORTER_OTLP_PROTOCOL".to_string(), v),
            None => return Ok(Protocol::HttpProtobuf),
        },
    };
    match value.trim() {
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "grpc" => Ok(Protocol::Grpc),
        other => Err(format!(
            "{name}={other:?}: expected http/protobuf or grpc (http/json is not supported)"
        )),
    }
}

/// The compression of a signal's pushes: its own variable, else the general one; `gzip` or
/// `none` (the default), the values the OTLP exporter specification lists. Without this check
/// the exporter crate logs an unknown value and sends uncompressed, which an operator who
/// asked for gzip would only find on the bill.
pub fn compression_from_env(
    signal: &str,
) -> Result<Option<opentelemetry_otlp::Compression>, String> {
    let var = format!("OTEL_EXPORTER_OTLP_{signal}_COMPRESSION");
    let (name, value) = match env(&var) {
        Some(v) => (var, v),
        None => match env("OTEL_EXPORTER_OTLP_COMPRESSION") {
            Some(v) => ("OTEL_EXPORTER_OTLP_COMPRESSION".to_string(), v),
            None => return Ok(None),
        },
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "gzip" => Ok(Some(opentelemetry_otlp::Compression::Gzip)),
        "none" => Ok(None),
        _ => Err(format!("{name}={value:?}: expected gzip or none")),
    }
}

impl OtlpConfig {
    /// Reads the switches and the standard variables; problems go to `errors`.
    pub fn resolve(
        metrics_flag: bool,
        logs_flag: bool,
        logs_user_attribute: bool,
        errors: &mut Vec<String>,
    ) -> OtlpConfig {
        let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let endpoint_set = env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").is_some();
        let metrics_off = env("OTEL_METRICS_EXPORTER").is_some_and(|v| v.trim() == "none");
        let mut protocol = |signal: &str| match protocol_from_env(signal) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let metrics_on = !disabled && !metrics_off && (metrics_flag || endpoint_set);
        let logs_on = !disabled && logs_flag;
        let metrics = metrics_on.then(|| protocol("METRICS")).flatten();
        let logs = logs_on.then(|| protocol("LOGS")).flatten();
        // TLS files and compression are checked now, so a bad one exits 2 like any bad setting.
        for (signal, on) in [("METRICS", metrics_on), ("LOGS", logs_on)] {
            if let (true, Err(e)) = (on, tls_files(signal)) {
                errors.push(e.to_string());
            }
            if let (true, Err(e)) = (on, compression_from_env(signal)) {
                errors.push(e);
            }
        }
        OtlpConfig {
            metrics,
            logs,
            logs_user_attribute,
        }
    }
}

/// Why the OTLP pipeline could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("OTLP exporter: {0} (check the OTEL_EXPORTER_OTLP_* variables)")]
    Build(String),
    #[error("OTLP TLS: {0}")]
    Tls(String),
}

/// The resource: the SDK's (which reads `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`),
/// `service.name` = `powerbi-exporter` when neither names one, `service.version`,
/// `service.instance.id` = `host:port` when the variables name none, and the tenant id when
/// known. The instance id is what the Collector's prometheus exporter and Prometheus' OTLP
/// receiver turn into `instance`; `host:port` is what a scrape of the same process would give,
/// and stays put across restarts (a random id would start new series at every one).
pub fn resource(tenant_id: Option<&str>, listen_port: u16) -> Resource {
    let base = Resource::builder().build();
    let has = |key: &'static str| base.get(&opentelemetry::Key::from_static_str(key));
    let named = has("service.name").is_some_and(|v| !v.as_str().starts_with("unknown_service"));
    let mut builder = Resource::builder();
    if !named {
        builder = builder.with_service_name("powerbi-exporter");
    }
    let mut extra = vec![KeyValue::new("service.version", crate::VERSION)];
    if has("service.instance.id").is_none() {
        extra.push(KeyValue::new(
            "service.instance.id",
            format!("{}:{listen_port}", host_name()),
        ));
    }
    if let Some(t) = tenant_id {
        extra.push(KeyValue::new("powerbi.tenant.id", t.to_string()));
    }
    builder.with_attributes(extra).build()
}

/// The host's name: `HOSTNAME` (set by Docker and Kubernetes to the container's / pod's name),
/// else the kernel's, else `localhost`.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The HTTP client of the OTLP exporters: our reqwest (rustls) on the exporter's runtime, with
/// the TLS variables the exporter crate does not read itself.
#[derive(Debug, Clone)]
struct TokioHttp {
    client: reqwest::Client,
    handle: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for TokioHttp {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<
        opentelemetry_http::Response<opentelemetry_http::Bytes>,
        opentelemetry_http::HttpError,
    > {
        let client = self.client.clone();
        let request = reqwest::Request::try_from(request)?;
        // Spawned on the runtime, because the SDK's metric thread polls this future without one.
        let response = self
            .handle
            .spawn(async move {
                let response = client.execute(request).await?;
                let mut out = opentelemetry_http::Response::builder().status(response.status());
                for (k, v) in response.headers() {
                    out = out.header(k, v);
                }
                let body = response.bytes().await?;
                Ok::<_, opentelemetry_http::HttpError>(out.body(body)?)
            })
            .await??;
        Ok(response)
    }
}

/// TLS material named by `OTEL_EXPORTER_OTLP_[SIGNAL_]CERTIFICATE`, `…CLIENT_CERTIFICATE` and
/// `…CLIENT_KEY` (PEM files), each checked to hold what its variable names, so a wrong file
/// is reported at startup naming the variable and the file, not at the first push.
#[derive(Default)]
pub(super) struct TlsFiles {
    /// `…CERTIFICATE`: CAs trusted beside the roots every client trusts.
    pub(super) ca: Option<Vec<u8>>,
    /// `…CLIENT_CERTIFICATE` and `…CLIENT_KEY`: the chain and its key.
    pub(super) identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// What a TLS variable's PEM file must hold.
#[derive(Clone, Copy)]
enum PemContent {
    Certificates,
    PrivateKey,
}

impl PemContent {
    /// `None` when `pem` holds it, else what is wrong, for the message.
    fn missing_from(self, pem: &[u8]) -> Option<String> {
        use crate::azure::http::pem_error;
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        match self {
            PemContent::Certificates => CertificateDer::from_pem_slice(pem)
                .err()
                .map(|e| pem_error(&e, "certificate")),
            PemContent::PrivateKey => PrivateKeyDer::from_pem_slice(pem)
                .err()
                .map(|e| pem_error(&e, "private key")),
        }
    }
}

fn tls_files(signal: &str) -> Result<TlsFiles, OtlpError> {
    let var = |suffix: &str| {
        env(&format!("OTEL_EXPORTER_OTLP_{signal}_{suffix}"))
            .or_else(|| env(&format!("OTEL_EXPORTER_OTLP_{suffix}")))
    };
    let read = |suffix: &str, content: PemContent| -> Result<Option<Vec<u8>>, OtlpError> {
        let Some(path) = var(suffix) else {
            return Ok(None);
        };
        let problem = |e: &dyn std::fmt::Display| {
            OtlpError::Tls(format!("OTEL_EXPORTER_OTLP_{suffix} {path}: {e}"))
        };
        let pem = crate::files::read_small(Path::new(&path)).map_err(|e| problem(&e))?;
        match content.missing_from(&pem) {
            Some(missing) => Err(problem(&missing)),
            None => Ok(Some(pem)),
        }
    };
    // The pair is checked before either file is read: a lone variable is the mistake to name.
    if var("CLIENT_CERTIFICATE").is_some() != var("CLIENT_KEY").is_some() {
        return Err(OtlpError::Tls(
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY go together"
                .into(),
        ));
    }
    let ca = read("CERTIFICATE", PemContent::Certificates)?;
    let identity = read("CLIENT_CERTIFICATE", PemContent::Certificates)?
        .zip(read("CLIENT_KEY", PemContent::PrivateKey)?);
    Ok(TlsFiles { ca, identity })
}

fn http_client(signal: &str) -> Result<TokioHttp, OtlpError> {
    let tls = tls_files(signal)?;
    // The proxy and CA variables apply as to every outbound client; OTEL_EXPORTER_OTLP_CERTIFICATE
    // adds its CA to those roots.
    let mut builder = crate::azure::http::client_builder();
    if let Some(ca) = &tls.ca {
        let cert = reqwest::Certificate::from_pem(ca).map_err(|e| OtlpError::Tls(e.to_string()))?;
        builder = builder.tls_certs_merge([cert]);
    }
    if let Some((cert, key)) = &tls.identity {
        let mut pem = key.clone();
        pem.extend_from_slice(cert);
        let identity =
            reqwest::Identity::from_pem(&pem).map_err(|e| OtlpError::Tls(e.to_string()))?;
        builder = builder.identity(identity);
    }
    let client = builder
        .build()
        .map_err(|e| OtlpError::Build(e.to_string()))?;
    Ok(TokioHttp {
        client,
        handle: tokio::runtime::Handle::current(),
    })
}

/// The gRPC channel of `signal`: through the proxy and trusting the roots HTTP uses
/// ([`super::otlp_grpc`]), which tonic's own channel ignores.
fn grpc_channel(signal: &str) -> Result<tonic::transport::Channel, OtlpError> {
    super::otlp_grpc::channel(signal, &tls_files(signal)?)
}

/// The compression of `signal`, already validated by [`OtlpConfig::resolve`].
fn compression(signal: &str) -> Result<Option<opentelemetry_otlp::Compression>, OtlpError> {
    compression_from_env(signal).map_err(OtlpError::Build)
}

/// Builds the OTLP log exporter for `--otlp.logs` (must run inside the tokio runtime).
pub fn log_exporter(protocol: Protocol) -> Result<opentelemetry_otlp::LogExporter, OtlpError> {
    let gzip = compression("LOGS")?;
    let built = match protocol {
        Protocol::HttpProtobuf => {
            let mut b = opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_http_client(http_client("LOGS")?);
            if let Some(c) = gzip {
                b = b.with_compression(c);
            }
            b.build()
        }
        Protocol::Grpc => {
            let mut b = opentelemetry_otlp::LogExporter::builder()
                .with_tonic()
                .with_channel(grpc_channel("LOGS")?);
            if let Some(c) = gzip {
                b = b.with_compression(c);
            }
            b.build()
        }
    };
    built.map_err(|e| OtlpError::Build(e.to_string()))
}

fn metric_exporter(protocol: Protocol) -> Result<opentelemetry_otlp::MetricExporter, OtlpError> {
    let gzip = compression("METRICS")?;
    let built = match protocol {
        Protocol::HttpProtobuf => {
            let mut b = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_http_client(http_client("METRICS")?)
                .with_temporality(Temporality::Cumulative);
            if let Some(c) = gzip {
                b = b.with_compression(c);
            }
            b.build()
        }
        Protocol::Grpc => {
            let mut b = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_channel(grpc_channel("METRICS")?)
                .with_temporality(Temporality::Cumulative);
            if let Some(c) = gzip {
                b = b.with_compression(c);
            }
            b.build()
        }
    };
    built.map_err(|e| OtlpError::Build(e.to_string()))
}

/// Counts failed pushes (in a file of the state directory too, so the counter continues
/// across restarts like every other) and logs an outage once.
struct Counted<E> {
    inner: E,
    errors: OtlpStats,
    down: AtomicBool,
}

/// `powerbi_otlp_export_errors_total`: pushes that failed after the exporter's retries,
/// continued from the count saved in the state directory.
#[derive(Debug, Clone, Default)]
pub struct OtlpStats {
    errors: Arc<AtomicU64>,
    saved_in: Option<PathBuf>,
}

impl OtlpStats {
    /// The count saved in `state_dir` (0 when there is none, or no state directory), saved
    /// there again at every failure.
    pub fn restore(state_dir: Option<&Path>) -> OtlpStats {
        let saved = state_dir.and_then(|dir| {
            let text = std::fs::read_to_string(dir.join(ERRORS_FILE)).ok()?;
            text.trim().parse().ok()
        });
        OtlpStats {
            errors: Arc::new(AtomicU64::new(saved.unwrap_or(0))),
            saved_in: state_dir.map(Path::to_path_buf),
        }
    }

    fn failed(&self) {
        let n = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(dir) = &self.saved_in {
            if let Err(e) = save_export_errors(dir, n) {
                tracing::debug!(error = %e, "Saving the OTLP error count failed.");
            }
        }
    }
}

impl Collector for OtlpStats {
    fn collect(&self, out: &mut Snapshot) {
        let n = self.errors.load(Ordering::Relaxed);
        out.push(&catalogue::OTLP_EXPORT_ERRORS, [(vec![], n as f64)]);
    }
}

const ERRORS_FILE: &str = "otlp-export-errors";

fn save_export_errors(dir: &Path, n: u64) -> std::io::Result<()> {
    let tmp = dir.join(format!("{ERRORS_FILE}.tmp"));
    std::fs::write(&tmp, n.to_string())?;
    std::fs::rename(tmp, dir.join(ERRORS_FILE))
}

impl<E: PushMetricExporter> PushMetricExporter for Counted<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        match &result {
            Err(e) => {
                self.errors.failed();
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "Pushing metrics over OTLP failed; retrying every interval (logged once per outage).");
                }
            }
            Ok(()) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("Pushing metrics over OTLP works again.");
                }
            }
        }
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// The families to push, rendered on demand.
type Gather = Box<dyn Fn() -> Vec<MetricFamily> + Send + Sync>;

/// What `/metrics` serves apart from the web server's own families: `collector` composed in
/// catalogue order, then the `process_*` families when `process` is set.
fn gather(collector: SharedCollector, process: bool) -> Gather {
    let process = process.then(prometheus::process_collector::ProcessCollector::for_self);
    Box::new(move || {
        let mut families = text::to_families(&scrape::compose(&[&*collector]));
        if let Some(p) = &process {
            families.extend(prometheus::core::Collector::collect(p));
        }
        families
    })
}

/// Attribute sets and values by Prometheus family name.
type Rendered = HashMap<String, Vec<(Vec<KeyValue>, f64)>>;

/// Samples by Prometheus family name, refreshed at most once a second: one collection calls
/// every instrument's callback, and they should all see one rendering.
struct Samples {
    gather: Gather,
    current: Mutex<Option<(Instant, Arc<Rendered>)>>,
}

impl Samples {
    fn of(&self, family: &str) -> Arc<Rendered> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, samples)) = current.as_ref() {
            if at.elapsed() < Duration::from_secs(1) && samples.contains_key(family) {
                return samples.clone();
            }
        }
        let fresh = Arc::new(by_family((self.gather)()));
        *current = Some((Instant::now(), fresh.clone()));
        fresh
    }
}

fn by_family(families: Vec<MetricFamily>) -> Rendered {
    families
        .into_iter()
        .map(|f| {
            let samples = f
                .get_metric()
                .iter()
                .map(|m| {
                    let attrs = m
                        .get_label()
                        .iter()
                        .map(|l| KeyValue::new(l.name().to_string(), l.value().to_string()))
                        .collect();
                    let value = match f.get_field_type() {
                        MetricType::COUNTER => m.get_counter().get_value(),
                        _ => m.get_gauge().get_value(),
                    };
                    (attrs, value)
                })
                .collect();
            (f.name().to_string(), samples)
        })
        .collect()
}

/// The OTLP name and unit of a Prometheus family.
pub fn otel_name(prometheus: &str, kind: Kind) -> (String, &'static str) {
    let base = match kind {
        Kind::Counter => prometheus.strip_suffix("_total").unwrap_or(prometheus),
        Kind::Gauge => prometheus,
    };
    if let Some(b) = base.strip_suffix("_seconds") {
        (b.to_string(), "s")
    } else if let Some(b) = base.strip_suffix("_bytes") {
        (b.to_string(), "By")
    } else {
        (base.to_string(), "")
    }
}

/// `process_*` families of the `prometheus` crate's process collector.
const PROCESS_FAMILIES: [(&str, Kind, &str); 7] = [
    (
        "process_cpu_seconds_total",
        Kind::Counter,
        "Total user and system CPU time spent in seconds.",
    ),
    (
        "process_max_fds",
        Kind::Gauge,
        "Maximum number of open file descriptors.",
    ),
    (
        "process_open_fds",
        Kind::Gauge,
        "Number of open file descriptors.",
    ),
    (
        "process_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory size in bytes.",
    ),
    (
        "process_start_time_seconds",
        Kind::Gauge,
        "Start time of the process since unix epoch in seconds.",
    ),
    (
        "process_threads",
        Kind::Gauge,
        "Number of OS threads in the process.",
    ),
    (
        "process_virtual_memory_bytes",
        Kind::Gauge,
        "Virtual memory size in bytes.",
    ),
];

/// A running push; dropping it stops the SDK's thread after a last push.
pub struct MetricsPush {
    provider: SdkMeterProvider,
}

impl MetricsPush {
    /// Starts pushing what `collector` gives (and the `process_*` families when `process` is
    /// set) every `OTEL_METRIC_EXPORT_INTERVAL` (default 60 s), counting failed pushes in
    /// `errors`. `cap` gives a family's series cap, so the SDK's own cardinality limit never
    /// folds series that `/metrics` shows. Must run inside the tokio runtime.
    pub fn start(
        protocol: Protocol,
        resource: Resource,
        collector: SharedCollector,
        process: bool,
        cap: impl Fn(&catalogue::Family) -> Option<usize>,
        errors: OtlpStats,
    ) -> Result<MetricsPush, OtlpError> {
        let exporter = Counted {
            inner: metric_exporter(protocol)?,
            errors,
            down: AtomicBool::new(false),
        };
        let mut families: Vec<(&str, Kind, &str, Option<usize>)> = catalogue::ALL
            .iter()
            .map(|f| (f.name, f.kind, f.help, cap(f)))
            .collect();
        if process {
            families.extend(PROCESS_FAMILIES.iter().map(|(n, k, h)| (*n, *k, *h, None)));
        }
        let limits: HashMap<String, usize> = families
            .iter()
            .filter_map(|(name, kind, _, cap)| Some((otel_name(name, *kind).0, (*cap)? + 2)))
            .collect();
        let provider = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(PeriodicReader::builder(exporter).build())
            .with_view(move |i: &Instrument| {
                let limit = *limits.get(i.name())?;
                Stream::builder().with_cardinality_limit(limit).build().ok()
            })
            .build();
        let meter = provider.meter_with_scope(
            InstrumentationScope::builder("powerbi-exporter")
                .with_version(crate::VERSION)
                .build(),
        );
        let samples = Arc::new(Samples {
            gather: gather(collector, process),
            current: Mutex::new(None),
        });
        for (name, kind, help, _) in families {
            let (otel, unit) = otel_name(name, kind);
            let samples = samples.clone();
            let observe = move |o: &dyn AsyncInstrument<f64>| {
                if let Some(list) = samples.of(name).get(name) {
                    for (attrs, value) in list {
                        o.observe(*value, attrs);
                    }
                }
            };
            match kind {
                Kind::Counter => {
                    meter
                        .f64_observable_counter(otel)
                        .with_description(help)
                        .with_unit(unit)
                        .with_callback(observe)
                        .build();
                }
                Kind::Gauge => {
                    meter
                        .f64_observable_gauge(otel)
                        .with_description(help)
                        .with_unit(unit)
                        .with_callback(observe)
                        .build();
                }
            }
        }
        Ok(MetricsPush { provider })
    }

    /// Pushes once more and stops (blocking: call from a blocking thread).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "OTLP metrics shutdown.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each TLS variable's file is checked for what the variable names, and a file without it
    /// says what was expected.
    #[test]
    fn tls_pem_files_must_hold_what_their_variable_names() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["t".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
        assert_eq!(
            PemContent::Certificates.missing_from(cert_pem.as_bytes()),
            None
        );
        assert_eq!(
            PemContent::PrivateKey.missing_from(key_pem.as_bytes()),
            None
        );
        assert_eq!(
            PemContent::Certificates
                .missing_from(key_pem.as_bytes())
                .as_deref(),
            Some("no PEM certificate in it")
        );
        assert_eq!(
            PemContent::PrivateKey
                .missing_from(cert_pem.as_bytes())
                .as_deref(),
            Some("no PEM private key in it")
        );
        let truncated = &cert_pem[..cert_pem.len() / 2];
        assert!(PemContent::Certificates
            .missing_from(truncated.as_bytes())
            .is_some_and(|e| e == "a PEM section does not end (no -----END CERTIFICATE-----)"));
    }

    #[test]
    fn failed_pushes_continue_from_the_count_saved_in_the_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ERRORS_FILE), "5\n").unwrap();
        let stats = OtlpStats::restore(Some(dir.path()));
        stats.failed();
        let mut out = Snapshot::default();
        stats.collect(&mut out);
        assert_eq!(
            out.value("powerbi_otlp_export_errors_total", &[]),
            Some(6.0)
        );
        let saved = std::fs::read_to_string(dir.path().join(ERRORS_FILE)).unwrap();
        assert_eq!(saved, "6");
        let mut fresh = Snapshot::default();
        OtlpStats::restore(None).collect(&mut fresh);
        assert_eq!(
            fresh.value("powerbi_otlp_export_errors_total", &[]),
            Some(0.0)
        );
    }

    #[test]
    fn names_map_back_to_the_prometheus_ones() {
        for f in catalogue::ALL {
            let (name, unit) = otel_name(f.name, f.kind);
            let mut back = name.clone();
            match unit {
                "s" => back.push_str("_seconds"),
                "By" => back.push_str("_bytes"),
                _ => {}
            }
            if f.kind == Kind::Counter {
                back.push_str("_total");
            }
            assert_eq!(back, f.name, "{name} [{unit}]");
        }
        assert_eq!(
            otel_name("process_cpu_seconds_total", Kind::Counter),
            ("process_cpu".to_string(), "s")
        );
    }
}
