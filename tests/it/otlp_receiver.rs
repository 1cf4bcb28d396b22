//! An in-test OpenTelemetry OTLP receiver: a stand-in "collector" on 127.0.0.1 that the exporter
//! pushes to, so tests can check what it really sends without a real Collector on the machine.
//!
//! It decodes with the official protobuf types of `opentelemetry-proto`, so a test sees exactly
//! what a real collector would. It speaks OTLP/HTTP (hyper, `POST /v1/metrics` and `/v1/logs`,
//! protobuf, optionally gzip) or OTLP/gRPC (tonic, the generated `MetricsService` and
//! `LogsService`, gzip accepted). It can refuse exports on demand (`set_down`) and go away
//! entirely (`stop`), then come back on the same port (`start_on`), to test retries and outages.
//!
//! The free functions translate a metrics export into Prometheus series names, the way the
//! Collector's prometheus exporter and Prometheus' OTLP receiver do, so that an OTLP export and a
//! scrape of `/metrics` can be compared key by key.

// Not every test uses every helper; the test binary must still build without warnings.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Read;
use std::net::TcpListener as StdTcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
pub use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
pub use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as PointValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, Sum,
};
use prost::Message;
use tokio::sync::oneshot;
use tonic::codec::CompressionEncoding;
use tonic::codegen::{http, BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;

/// Which OTLP protocol the receiver speaks, matching `OTEL_EXPORTER_OTLP_PROTOCOL`
/// (`http/protobuf` or `grpc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Http,
    Grpc,
}

/// A running receiver. It serves on its own thread and current-thread tokio runtime, so it works
/// the same from plain `#[test]`s and `#[tokio::test]`s. Dropping it is `stop()`.
pub struct Receiver {
    port: u16,
    /// `https` when serving OTLP/HTTP over TLS.
    scheme: &'static str,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the server side shares with the test side.
#[derive(Default)]
struct State {
    down: AtomicBool,
    refused: AtomicUsize,
    recorded: Mutex<Recorded>,
}

/// Everything accepted so far, under one lock so that a test which sees a request also sees
/// its headers.
#[derive(Default)]
struct Recorded {
    metrics: Vec<ExportMetricsServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
    headers: Vec<BTreeMap<String, String>>,
    /// The headers of each entry of `metrics` and of `logs`, in the same order.
    metrics_headers: Vec<BTreeMap<String, String>>,
    logs_headers: Vec<BTreeMap<String, String>>,
}

impl Receiver {
    /// Binds 127.0.0.1:0, so parallel tests never collide.
    pub fn start(transport: Transport) -> Receiver {
        Receiver::start_on(transport, 0)
    }

    /// Binds 127.0.0.1:port, to bring a "collector" back on the same address after `stop()`.
    /// The socket is bound before this returns, so an exporter can connect at once.
    pub fn start_on(transport: Transport, port: u16) -> Receiver {
        Receiver::start_with(transport, port, None)
    }

    /// OTLP/HTTP over TLS with `tls` (its certificates, and a client verifier for mutual TLS).
    pub fn start_https(tls: Arc<rustls::ServerConfig>) -> Receiver {
        Receiver::start_with(Transport::Http, 0, Some(tls))
    }

    fn start_with(
        transport: Transport,
        port: u16,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Receiver {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = StdTcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("otlp_receiver: cannot bind 127.0.0.1:{port}: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("otlp_receiver: no local address after bind: {e}"))
            .port();
        let state = Arc::new(State::default());
        let (shutdown, stopped) = oneshot::channel();
        let server_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name(format!("otlp-receiver-{port}"))
            .spawn(move || run_server(transport, listener, tls, server_state, stopped))
            .unwrap_or_else(|e| panic!("otlp_receiver: cannot spawn the server thread: {e}"));
        Receiver {
            port,
            scheme,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The bound port, for `start_on` after `stop()`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Base endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://127.0.0.1:4318` (no path:
    /// the exporter appends `/v1/metrics` and `/v1/logs` itself for OTLP/HTTP).
    pub fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// While down, every export is refused (HTTP 503 with no body / gRPC status UNAVAILABLE)
    /// and nothing is recorded; refused calls are counted. Tests retry and backoff paths.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// How many exports were refused while down.
    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// Stops listening and frees the port, closing open connections too (the collector "goes
    /// away"; new connections are refused). Returns once the port is free.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Every accepted metrics export, in arrival order.
    pub fn metrics_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.state.lock().metrics.clone()
    }

    /// Every accepted logs export, in arrival order.
    pub fn logs_requests(&self) -> Vec<ExportLogsServiceRequest> {
        self.state.lock().logs.clone()
    }

    /// Request headers of every accepted request, lower-cased names (gRPC metadata too), to check
    /// `OTEL_EXPORTER_OTLP_HEADERS`. Repeated headers are joined with ",".
    pub fn headers(&self) -> Vec<BTreeMap<String, String>> {
        self.state.lock().headers.clone()
    }

    /// The headers of each accepted metrics export, in arrival order: `content-encoding` (HTTP)
    /// or `grpc-encoding` (gRPC) says how the body travelled; it was decoded all the same.
    pub fn metrics_headers(&self) -> Vec<BTreeMap<String, String>> {
        self.state.lock().metrics_headers.clone()
    }

    /// The headers of each accepted logs export, in arrival order.
    pub fn logs_headers(&self) -> Vec<BTreeMap<String, String>> {
        self.state.lock().logs_headers.clone()
    }

    /// Ends the server thread and waits for it, so the port is free when this returns.
    fn shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // An error means the server already ended; joining below reports why.
            let _ = shutdown.send(());
        }
        let Some(thread) = self.thread.take() else {
            return;
        };
        if thread.join().is_err() && !std::thread::panicking() {
            panic!(
                "otlp_receiver: the server on port {} panicked (message above)",
                self.port
            );
        }
    }
}

impl Drop for Receiver {
    /// Frees the port even when a test forgets `stop()` or fails midway.
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl State {
    /// A poisoned lock only means another test thread panicked; the data is still usable.
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts and returns true when the receiver is down, so the caller refuses the export.
    fn refuse(&self) -> bool {
        let down = self.down.load(Ordering::SeqCst);
        if down {
            self.refused.fetch_add(1, Ordering::SeqCst);
        }
        down
    }

    /// Records one accepted export with its headers.
    fn record<T>(
        &self,
        headers: &HeaderMap,
        request: T,
        store: fn(&mut Recorded, T, BTreeMap<String, String>),
    ) {
        let mut recorded = self.lock();
        let headers = header_strings(headers);
        recorded.headers.push(headers.clone());
        store(&mut recorded, request, headers);
    }
}

fn store_metrics(
    recorded: &mut Recorded,
    request: ExportMetricsServiceRequest,
    headers: BTreeMap<String, String>,
) {
    recorded.metrics.push(request);
    recorded.metrics_headers.push(headers);
}

fn store_logs(
    recorded: &mut Recorded,
    request: ExportLogsServiceRequest,
    headers: BTreeMap<String, String>,
) {
    recorded.logs.push(request);
    recorded.logs_headers.push(headers);
}

/// Header names are already lower case in `http`; values that are not UTF-8 are kept lossily.
fn header_strings(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        out.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    out
}

/// The server thread: serves until `stopped` fires, then drops the runtime, which drops the
/// listener and every open connection, so the "collector" is really gone.
fn run_server(
    transport: Transport,
    listener: StdTcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Arc<State>,
    stopped: oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("otlp_receiver: cannot build a tokio runtime: {e}"));
    runtime.block_on(async move {
        listener.set_nonblocking(true).unwrap_or_else(|e| {
            panic!("otlp_receiver: cannot make the listener non-blocking: {e}")
        });
        let listener = tokio::net::TcpListener::from_std(listener)
            .unwrap_or_else(|e| panic!("otlp_receiver: cannot hand the listener to tokio: {e}"));
        let serve = async {
            match transport {
                Transport::Http => serve_http(listener, tls, state).await,
                Transport::Grpc => serve_grpc(listener, state).await,
            }
        };
        tokio::select! {
            () = serve => {}
            _ = stopped => {}
        }
    });
    drop(runtime);
}

/// OTLP/HTTP: one hyper HTTP/1.1 connection task per accepted socket.
async fn serve_http(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Arc<State>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Transient (e.g. too many open files): report it and keep serving.
                eprintln!("otlp_receiver: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => serve_http_connection(stream, state).await,
                // A client that does not trust us ends the handshake: it sent no export.
                Some(a) => {
                    if let Ok(tls) = a.accept(stream).await {
                        serve_http_connection(tls, state).await;
                    }
                }
            }
        });
    }
}

async fn serve_http_connection(
    stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    state: Arc<State>,
) {
    let service = hyper::service::service_fn(move |req| handle_http(Arc::clone(&state), req));
    // A client that hangs up mid-request is normal for an exporter; nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Which export an OTLP/HTTP path carries.
#[derive(Clone, Copy)]
enum Signal {
    Metrics,
    Logs,
}

/// One OTLP/HTTP request: route, refuse when down, read the body, then `accept_http`.
async fn handle_http(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let signal = match req.uri().path() {
        "/v1/metrics" => Signal::Metrics,
        "/v1/logs" => Signal::Logs,
        _ => {
            return Ok(reply(
                StatusCode::NOT_FOUND,
                "otlp_receiver: no such path\n",
            ))
        }
    };
    if req.method() != Method::POST {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "otlp_receiver: POST only\n",
        ));
    }
    if state.refuse() {
        return Ok(reply(StatusCode::SERVICE_UNAVAILABLE, Bytes::new()));
    }
    let headers = req.headers().clone();
    Ok(match read_body(req).await {
        Ok(body) => accept_http(&state, signal, &headers, &body),
        Err((status, message)) => reply(status, message),
    })
}

/// Decodes and records one export; answers with the empty protobuf response, as a collector
/// that accepted everything does.
fn accept_http(
    state: &State,
    signal: Signal,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let decoded = match signal {
        Signal::Metrics => ExportMetricsServiceRequest::decode(body).map(|request| {
            state.record(headers, request, store_metrics);
            ExportMetricsServiceResponse::default().encode_to_vec()
        }),
        Signal::Logs => ExportLogsServiceRequest::decode(body).map(|request| {
            state.record(headers, request, store_logs);
            ExportLogsServiceResponse::default().encode_to_vec()
        }),
    };
    let answer = match decoded {
        Ok(answer) => answer,
        Err(e) => {
            let (status, message) = bad_request(format!("bad protobuf: {e}"));
            return reply(status, message);
        }
    };
    let mut ok = reply(StatusCode::OK, answer);
    let protobuf = hyper::header::HeaderValue::from_static("application/x-protobuf");
    ok.headers_mut().insert(CONTENT_TYPE, protobuf);
    ok
}

/// The protobuf body, gunzipped when `Content-Encoding: gzip`. JSON or another encoding is
/// refused with a message, so a misconfigured exporter fails loudly instead of silently.
async fn read_body(req: Request<Incoming>) -> Result<Vec<u8>, (StatusCode, String)> {
    let content_type = header_string(req.headers(), CONTENT_TYPE);
    if !content_type.starts_with("application/x-protobuf") {
        let message = format!("otlp_receiver: content-type {content_type:?} is not protobuf\n");
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, message));
    }
    let encoding = header_string(req.headers(), CONTENT_ENCODING);
    let collected = req.into_body().collect().await;
    let raw = collected
        .map_err(|e| bad_request(format!("body: {e}")))?
        .to_bytes();
    decompress(&encoding, &raw)
}

/// One header, lower-cased, "" when absent.
fn header_string(headers: &HeaderMap, name: hyper::header::HeaderName) -> String {
    let value = headers.get(name).map(|v| v.as_bytes()).unwrap_or_default();
    String::from_utf8_lossy(value).to_lowercase()
}

fn decompress(encoding: &str, raw: &[u8]) -> Result<Vec<u8>, (StatusCode, String)> {
    match encoding {
        "" | "identity" => Ok(raw.to_vec()),
        "gzip" => {
            let mut body = Vec::new();
            let gunzip = flate2::read::GzDecoder::new(raw).read_to_end(&mut body);
            gunzip.map_err(|e| bad_request(format!("gzip: {e}")))?;
            Ok(body)
        }
        other => {
            let message = format!("otlp_receiver: content-encoding {other:?} not supported\n");
            Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, message))
        }
    }
}

fn bad_request(what: String) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, format!("otlp_receiver: {what}\n"))
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

/// OTLP/gRPC: tonic's server over both generated services (routed by `GrpcRouter`, which saves
/// tonic's `router` feature and its axum dependency).
async fn serve_grpc(listener: tokio::net::TcpListener, state: Arc<State>) {
    let sink = Arc::new(GrpcSink(state));
    let router = GrpcRouter {
        metrics: MetricsServiceServer::from_arc(Arc::clone(&sink))
            .accept_compressed(CompressionEncoding::Gzip),
        logs: LogsServiceServer::from_arc(sink).accept_compressed(CompressionEncoding::Gzip),
    };
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    if let Err(e) = tonic::transport::Server::builder()
        .serve_with_incoming(router, incoming)
        .await
    {
        panic!("otlp_receiver: the gRPC server stopped: {e}");
    }
}

/// The gRPC service implementations: both just record into the shared state.
struct GrpcSink(Arc<State>);

/// The gRPC answer while down: UNAVAILABLE is what OTLP exporters treat as retryable.
fn unavailable() -> tonic::Status {
    tonic::Status::unavailable("otlp_receiver: the collector is down")
}

#[tonic::async_trait]
impl MetricsService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        if self.0.refuse() {
            return Err(unavailable());
        }
        let headers = request.metadata().clone().into_headers();
        self.0.record(&headers, request.into_inner(), store_metrics);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        if self.0.refuse() {
            return Err(unavailable());
        }
        let headers = request.metadata().clone().into_headers();
        self.0.record(&headers, request.into_inner(), store_logs);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// Routes `/opentelemetry.proto.collector.logs.v1.LogsService/...` to the logs service and
/// everything else to the metrics service (which answers UNIMPLEMENTED for unknown methods).
#[derive(Clone)]
struct GrpcRouter {
    metrics: MetricsServiceServer<GrpcSink>,
    logs: LogsServiceServer<GrpcSink>,
}

impl Service<http::Request<tonic::body::Body>> for GrpcRouter {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let logs = LogsServiceServer::<GrpcSink>::NAME;
        let path = req.uri().path();
        if path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(logs))
            .is_some_and(|p| p.starts_with('/'))
        {
            self.logs.call(req)
        } else {
            self.metrics.call(req)
        }
    }
}

/// The samples of one metrics export as Prometheus would name them after the standard
/// OTLP→Prometheus translation used by the Collector's prometheus exporter and Prometheus' OTLP
/// receiver (with suffixes), so an export can be compared with a scrape of `/metrics`:
/// - the name is split on characters outside `[a-zA-Z0-9:]` and re-joined with `_`;
/// - unit "s" appends "_seconds", "By" appends "_bytes", unless that word is already in the name;
///   "", "1" and `{annotations}` add nothing (the real translator appends "_ratio" to gauges with
///   unit "1": our exporter's scrape does not, so neither does this); other units panic;
/// - a monotonic Sum (counter) gets "_total" last, whatever its temporality; a Gauge or a
///   non-monotonic Sum keeps its name;
/// - keys are `name` or `name{a="x",b="y"}`, labels sorted by name, values escaped like the
///   Prometheus text format; attribute names have invalid characters replaced by `_`;
///   empty-string values are kept as `a=""`.
///
/// Histograms and summaries panic: the exporter does not send them.
pub fn as_prometheus(req: &ExportMetricsServiceRequest) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for metric in metrics_of(req) {
        let name = prometheus_name(metric);
        for point in number_data(metric).0 {
            let key = series_key(&name, &labels(&point.attributes));
            let value = point_value(&key, point);
            if out.insert(key.clone(), value).is_some() {
                panic!("as_prometheus: series {key} appears twice in one export");
            }
        }
    }
    out
}

/// Same canonical key form applied to a parsed Prometheus text scrape: the keys are sample
/// lines' series text as printed by the text encoder (`name{b="y",a="x"}`); label pairs are
/// parsed (values may hold commas, quotes and escapes) and re-sorted by name.
pub fn canonical(scrape: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (series, value) in scrape {
        let (name, labels) = parse_series(series);
        let key = series_key(&name, &labels);
        if out.insert(key.clone(), *value).is_some() {
            panic!("canonical: {series:?} is the same series as another key ({key})");
        }
    }
    out
}

/// Per metric name (translated as in `as_prometheus`): ("counter" | "gauge", is_monotonic,
/// temporality as "cumulative" / "delta" / "unspecified"), to check types and temporality.
/// A Gauge is ("gauge", false, "unspecified"); a non-monotonic Sum is a "gauge" too.
pub fn kinds(req: &ExportMetricsServiceRequest) -> BTreeMap<String, (String, bool, String)> {
    let mut out = BTreeMap::new();
    for metric in metrics_of(req) {
        let name = prometheus_name(metric);
        let kind = kind_of(metric);
        if let Some(previous) = out.insert(name.clone(), kind.clone()) {
            assert_eq!(
                previous, kind,
                "kinds: {name} is exported with two different kinds"
            );
        }
    }
    out
}

/// Resource attributes of the first ResourceMetrics as strings (empty when there is none), to
/// check `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME`.
pub fn resource_attributes_of_metrics(
    req: &ExportMetricsServiceRequest,
) -> BTreeMap<String, String> {
    let resource = req
        .resource_metrics
        .first()
        .and_then(|r| r.resource.as_ref());
    attribute_strings(resource.map_or(&[], |r| &r.attributes))
}

/// Resource attributes of the first ResourceLogs as strings (empty when there is none).
pub fn resource_attributes_of_logs(req: &ExportLogsServiceRequest) -> BTreeMap<String, String> {
    let resource = req.resource_logs.first().and_then(|r| r.resource.as_ref());
    attribute_strings(resource.map_or(&[], |r| &r.attributes))
}

fn metrics_of(req: &ExportMetricsServiceRequest) -> impl Iterator<Item = &Metric> {
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
}

/// The points of a Gauge or Sum, and the Sum itself for its monotonicity and temporality.
fn number_data(metric: &Metric) -> (&[NumberDataPoint], Option<&Sum>) {
    let other = match &metric.data {
        Some(Data::Gauge(gauge)) => return (&gauge.data_points, None),
        Some(Data::Sum(sum)) => return (&sum.data_points, Some(sum)),
        Some(Data::Histogram(_)) => "a Histogram",
        Some(Data::ExponentialHistogram(_)) => "an ExponentialHistogram",
        Some(Data::Summary(_)) => "a Summary",
        None => "empty (no data)",
    };
    panic!(
        "otlp_receiver: metric {:?} is {other}; only Gauge and Sum are supported",
        metric.name
    )
}

fn prometheus_name(metric: &Metric) -> String {
    let counter = number_data(metric).1.is_some_and(|sum| sum.is_monotonic);
    let mut tokens: Vec<&str> = metric
        .name
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|token| !token.is_empty())
        .collect();
    if let Some(unit) = unit_word(metric) {
        if !tokens.contains(&unit) {
            tokens.push(unit);
        }
    }
    if counter {
        tokens.retain(|token| *token != "total");
        tokens.push("total");
    }
    let name = tokens.join("_");
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

/// The Prometheus word for the metric's unit, for the units we use.
fn unit_word(metric: &Metric) -> Option<&'static str> {
    match metric.unit.as_str() {
        "s" => Some("seconds"),
        "By" => Some("bytes"),
        "" | "1" => None,
        unit if unit.starts_with('{') && unit.ends_with('}') => None,
        unit => panic!(
            "otlp_receiver: metric {:?} has unit {unit:?}; add its Prometheus word to unit_word",
            metric.name
        ),
    }
}

fn kind_of(metric: &Metric) -> (String, bool, String) {
    let Some(sum) = number_data(metric).1 else {
        return ("gauge".to_owned(), false, "unspecified".to_owned());
    };
    let temporality = match AggregationTemporality::try_from(sum.aggregation_temporality) {
        Ok(AggregationTemporality::Cumulative) => "cumulative",
        Ok(AggregationTemporality::Delta) => "delta",
        _ => "unspecified",
    };
    let kind = if sum.is_monotonic { "counter" } else { "gauge" };
    (kind.to_owned(), sum.is_monotonic, temporality.to_owned())
}

fn point_value(series: &str, point: &NumberDataPoint) -> f64 {
    match point.value {
        Some(PointValue::AsDouble(value)) => value,
        Some(PointValue::AsInt(value)) => value as f64,
        None => panic!("otlp_receiver: a point of {series} has no value"),
    }
}

/// Data-point attributes as Prometheus labels (sanitized names, string values).
fn labels(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for attribute in attributes {
        let name = label_name(&attribute.key);
        if out
            .insert(name.clone(), attribute_string(attribute))
            .is_some()
        {
            panic!("otlp_receiver: two attributes map to the label {name:?}");
        }
    }
    out
}

/// Invalid characters become `_`; a leading digit gets "key_" (as the translator does).
fn label_name(key: &str) -> String {
    let name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{name}")
    } else {
        name
    }
}

fn attribute_strings(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .map(|a| (a.key.clone(), attribute_string(a)))
        .collect()
}

/// An attribute value as a string; an unset value is "". Arrays, maps and bytes panic: the
/// exporter does not send them, and their string form differs between translators.
fn attribute_string(attribute: &KeyValue) -> String {
    match attribute.value.as_ref().and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(value)) => value.clone(),
        Some(Value::BoolValue(value)) => value.to_string(),
        Some(Value::IntValue(value)) => value.to_string(),
        Some(Value::DoubleValue(value)) => value.to_string(),
        Some(other) => panic!(
            "otlp_receiver: attribute {:?} has an unsupported value {other:?}",
            attribute.key
        ),
    }
}

/// `name` or `name{a="x",b="y"}` with labels in name order (the map's order).
fn series_key(name: &str, labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(label, value)| format!("{label}=\"{}\"", escape(value)))
        .collect();
    format!("{name}{{{}}}", pairs.join(","))
}

/// Label value escaping of the Prometheus text format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Parses `name{a="x",b="y"}` (spaces and a trailing comma allowed, as the format allows).
fn parse_series(series: &str) -> (String, BTreeMap<String, String>) {
    let Some((name, mut rest)) = series.split_once('{') else {
        return (series.trim().to_owned(), BTreeMap::new());
    };
    let mut labels = BTreeMap::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            assert!(
                after.trim().is_empty(),
                "canonical: text after '}}' in {series:?}"
            );
            return (name.trim().to_owned(), labels);
        }
        let (label, after) = rest
            .split_once('=')
            .unwrap_or_else(|| panic!("canonical: expected label=\"value\" in {series:?}"));
        let (value, after) = parse_quoted(after.trim_start(), series);
        let label = label.trim().to_owned();
        if labels.insert(label.clone(), value).is_some() {
            panic!("canonical: label {label} twice in {series:?}");
        }
        rest = after.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            panic!("canonical: expected ',' or '}}' after label {label} in {series:?}");
        }
    }
}

/// A double-quoted label value with `\\`, `\"` and `\n` escapes, and the text after it.
fn parse_quoted<'a>(text: &'a str, series: &str) -> (String, &'a str) {
    let body = text
        .strip_prefix('"')
        .unwrap_or_else(|| panic!("canonical: expected a quoted value in {series:?}"));
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return (value, &body[at + 1..]),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                other => panic!("canonical: bad escape {other:?} in {series:?}"),
            },
            c => value.push(c),
        }
    }
    panic!("canonical: unterminated value in {series:?}")
}
