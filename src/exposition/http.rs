//! The HTTP face: `/` (landing page), the telemetry path (default `/metrics`), `/-/healthy`
//! and `/-/ready`, on hyper 1.
//!
//! Invariants:
//! - a scrape renders from a snapshot and never waits on the source: it composes the
//!   served collector and the web server's own stats with [`super::scrape::compose`], renders
//!   the families that changed since the last scrape ([`super::rendered`]) in the format the
//!   scraper asked for (OpenMetrics 1.0.0 or text 0.0.4, from `Accept`), then adds the
//!   `process_*` families;
//! - `/-/healthy` answers 200 while the process runs; `/-/ready` answers 503 until the first
//!   source document has been applied, 200 from then on (it never flips back);
//! - on shutdown the listener closes first and in-flight requests finish;
//! - the web config in force is read per request (TLS per connection), so a reload applies to
//!   kept-alive connections too; basic auth runs before routing, on every path;
//! - a scrape holds one `--web.max-requests` slot until its body has been sent or dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::rendered::{Encoding, Format, Parts, RenderCache};
use super::scrape::{self, SharedCollector};
use super::webconfig::{Fingerprint, WebSettings};
use super::{openmetrics, text};
use crate::catalogue::{self, Collector, Snapshot};
use crate::decode::UnixMillis;
use crate::exposition::status::StatusData;

/// A client must send its request headers, and finish a TLS handshake, within this time.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the web config file (and the files it names) is checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(1);
/// Size of the frames a response body is sent in, so a scrape slot is held until the body has
/// mostly reached the client (a slow reader keeps its slot).
const FRAME: usize = 64 * 1024;

/// What the server needs from the rest of the exporter.
pub struct Exposition {
    /// Everything `/metrics` serves apart from the web server's own families (see
    /// [`super::scrape::Served`]).
    pub collector: SharedCollector,
    /// What the status page at `/` shows, read per request.
    pub status: Box<dyn Fn() -> StatusData + Send + Sync>,
    /// Set once the first source document has been applied.
    pub ready: Arc<AtomicBool>,
    pub telemetry_path: String,
    /// Adds the `process_*` families (`--web.disable-exporter-metrics` turns them off).
    pub process_metrics: bool,
    /// Concurrent scrapes allowed (`--web.max-requests`); 0 = no limit.
    pub max_requests: usize,
    /// `--web.config.file`, watched and reloaded when it or a file it names changes.
    pub web_config: Option<PathBuf>,
}

/// Self metrics of the web server.
#[derive(Default)]
struct WebStats {
    tls_handshake: AtomicU64,
    unauthorized: AtomicU64,
    max_requests: AtomicU64,
    /// Whether a `--web.config.file` is used: the reload families exist only then.
    web_config: bool,
    reload_ok: AtomicBool,
    reload_success_secs: AtomicU64,
}

impl Collector for WebStats {
    fn collect(&self, out: &mut Snapshot) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let rejections = [
            ("max_requests", &self.max_requests),
            ("tls_handshake", &self.tls_handshake),
            ("unauthorized", &self.unauthorized),
        ];
        out.push(
            &catalogue::WEB_REJECTIONS,
            rejections.map(|(reason, n)| (vec![reason.to_string()], get(n))),
        );
        if self.web_config {
            let ok = f64::from(u8::from(self.reload_ok.load(Ordering::Relaxed)));
            out.push(&catalogue::WEB_CONFIG_RELOAD_SUCCESS, [(vec![], ok)]);
            out.push(
                &catalogue::WEB_CONFIG_RELOAD_TIMESTAMP,
                [(vec![], get(&self.reload_success_secs))],
            );
        }
    }
}

impl WebStats {
    fn loaded(&self) {
        self.reload_ok.store(true, Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.reload_success_secs.store(now, Ordering::Relaxed);
    }
}

/// The settings in force; replaced whole on a successful reload.
type Current = Arc<RwLock<Arc<WebSettings>>>;

/// Shared by every connection.
struct Server {
    exposition: Exposition,
    process: Option<prometheus::process_collector::ProcessCollector>,
    settings: Current,
    stats: WebStats,
    slots: Option<Arc<Semaphore>>,
    /// The families rendered by the last scrapes, reused while they do not change.
    rendered: RenderCache,
}

impl Server {
    fn new(exposition: Exposition, settings: WebSettings) -> Server {
        let stats = WebStats {
            web_config: exposition.web_config.is_some(),
            ..WebStats::default()
        };
        if stats.web_config {
            stats.loaded();
        }
        Server {
            process: exposition
                .process_metrics
                .then(prometheus::process_collector::ProcessCollector::for_self),
            slots: (exposition.max_requests > 0)
                .then(|| Arc::new(Semaphore::new(exposition.max_requests))),
            settings: Arc::new(RwLock::new(Arc::new(settings))),
            stats,
            rendered: RenderCache::default(),
            exposition,
        }
    }

    fn settings(&self) -> Arc<WebSettings> {
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Binds the listener. Separate from [`serve`] so a bind failure is reported before start-up
/// finishes and so the real address of `:0` is known.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` resolves, then drains in-flight connections. `settings` are the web
/// config loaded at start (plain HTTP without a file).
pub async fn serve(
    listener: TcpListener,
    exposition: Exposition,
    settings: WebSettings,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let server = Arc::new(Server::new(exposition, settings));
    let watcher = server
        .exposition
        .web_config
        .clone()
        .map(|path| tokio::spawn(watch(path, server.clone())));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "Accepting a connection failed.");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        tokio::spawn(connection(server.clone(), stream, graceful.watcher()));
    }
    drop(listener);
    if let Some(w) = watcher {
        w.abort();
    }
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(std::time::Duration::from_secs(10)) => tracing::warn!("Connections still open after 10s; closing them."),
    }
}

/// Serves one accepted connection (after its TLS handshake, when TLS is configured) until it
/// closes or the shutdown's `watcher` ends it.
async fn connection(server: Arc<Server>, stream: TcpStream, watcher: Watcher) {
    let service = {
        let server = server.clone();
        // Settings are read per request: a reload applies to kept-alive connections too.
        hyper::service::service_fn(move |req| {
            let server = server.clone();
            async move {
                let settings = server.settings();
                Ok::<_, Infallible>(handle(&server, &settings, req).await)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(CLIENT_TIMEOUT);
    let result = match server.settings().tls.clone() {
        None => {
            watcher
                .watch(builder.serve_connection(TokioIo::new(stream), service))
                .await
        }
        Some(tls) => match handshake(stream, tls).await {
            Ok(tls_stream) => {
                watcher
                    .watch(builder.serve_connection(TokioIo::new(tls_stream), service))
                    .await
            }
            Err(e) => {
                server.stats.tls_handshake.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "TLS handshake failed.");
                return;
            }
        },
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "Connection ended with an error.");
    }
}

async fn handshake(
    stream: TcpStream,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    let accept = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
    match tokio::time::timeout(CLIENT_TIMEOUT, accept).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}

/// Re-reads the web config when it or a file it names changes; a bad file keeps the settings
/// in force and is logged once per change.
async fn watch(path: PathBuf, server: Arc<Server>) {
    let mut seen = {
        let p = path.clone();
        tokio::task::spawn_blocking(move || Fingerprint::of(&p))
            .await
            .ok()
    };
    let mut tick = tokio::time::interval(RELOAD_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let p = path.clone();
        let Ok((now, loaded)) = tokio::task::spawn_blocking(move || {
            let before = Fingerprint::of(&p);
            if Some(before) == seen {
                return (before, None);
            }
            (before, Some(WebSettings::load(&p)))
        })
        .await
        else {
            continue;
        };
        seen = Some(now);
        match loaded {
            None => {}
            Some(Ok(settings)) => {
                tracing::info!(file = %path.display(), settings = ?settings, "Reloaded the web config.");
                *server
                    .settings
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(settings);
                server.stats.loaded();
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "The changed web config is invalid; keeping the previous one.");
                server.stats.reload_ok.store(false, Ordering::Relaxed);
            }
        }
    }
}

/// Authentication, then routing, then the configured headers.
async fn handle(server: &Server, settings: &WebSettings, req: Request<Incoming>) -> Response<Body> {
    if let Some(auth) = &settings.basic_auth {
        if !auth.check(req.headers().get(header::AUTHORIZATION)).await {
            server.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
            let mut resp = plain(StatusCode::UNAUTHORIZED, "Unauthorized.\n");
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"powerbi-exporter\""),
            );
            return with_headers(resp, settings);
        }
    }
    with_headers(route(server, &req), settings)
}

fn with_headers(mut resp: Response<Body>, settings: &WebSettings) -> Response<Body> {
    for (name, value) in &settings.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

fn route(server: &Server, req: &Request<Incoming>) -> Response<Body> {
    let exposition = &server.exposition;
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only GET and HEAD are supported.\n",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let path = req.uri().path();
    let mut resp = if path == exposition.telemetry_path {
        metrics(server, req)
    } else {
        match path {
            "/" => landing(exposition),
            "/-/healthy" => plain(StatusCode::OK, "Healthy.\n"),
            "/-/ready" if exposition.ready.load(Ordering::Acquire) => {
                plain(StatusCode::OK, "Ready.\n")
            }
            "/-/ready" => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not ready: no source document applied yet.\n",
            ),
            _ => plain(StatusCode::NOT_FOUND, "Not found.\n"),
        }
    };
    if req.method() == Method::HEAD {
        *resp.body_mut() = Body::empty();
    }
    resp
}

fn metrics(server: &Server, req: &Request<Incoming>) -> Response<Body> {
    let slot = match &server.slots {
        None => None,
        Some(slots) => match slots.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                server.stats.max_requests.fetch_add(1, Ordering::Relaxed);
                return plain_owned(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "Limit of concurrent scrapes reached ({}); try again later.\n",
                        server.exposition.max_requests
                    ),
                );
            }
        },
    };
    let snapshot = scrape::compose(&[&*server.exposition.collector, &server.stats]);
    let format = Format::negotiate(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let encoding = if accepts_gzip(req.headers().get(header::ACCEPT_ENCODING)) {
        Encoding::Gzip
    } else {
        Encoding::Identity
    };
    let parts = server.rendered.body(
        &snapshot,
        format,
        encoding,
        process_families(server, format),
    );
    let mut builder = Response::builder().header(header::CONTENT_TYPE, format.content_type());
    if encoding == Encoding::Gzip {
        builder = builder.header(header::CONTENT_ENCODING, "gzip");
    }
    builder
        .header(header::VARY, "Accept-Encoding, Accept")
        .body(Body::new(parts, slot))
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "Encoding failed.\n"))
}

/// The `process_*` families in `format`, read now (they change at every scrape), or nothing
/// with `--web.disable-exporter-metrics`.
fn process_families(server: &Server, format: Format) -> Vec<u8> {
    let Some(process) = &server.process else {
        return Vec::new();
    };
    let families = prometheus::core::Collector::collect(process);
    match format {
        Format::Text => text::encode(&families),
        Format::OpenMetrics => {
            let mut out = Vec::with_capacity(2048);
            openmetrics::write_proto_families(&families, &mut out);
            out
        }
    }
}

/// A response body, in parts sent one after the other (the cached chunks of a scrape, not
/// copied into one buffer), in frames of at most `FRAME` bytes, holding a scrape slot (if any)
/// until the last frame has been taken or the body is dropped.
pub struct Body {
    /// The parts not sent yet, the next one last.
    parts: Vec<Bytes>,
    slot: Option<OwnedSemaphorePermit>,
}

impl Body {
    fn new(parts: Parts, slot: Option<OwnedSemaphorePermit>) -> Body {
        let mut parts: Vec<Bytes> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        parts.reverse();
        Body { parts, slot }
    }

    fn of(data: Bytes) -> Body {
        Body::new(vec![data], None)
    }

    fn empty() -> Body {
        Body::new(Vec::new(), None)
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let Some(next) = this.parts.last_mut() else {
            this.slot = None;
            return Poll::Ready(None);
        };
        let frame = if next.len() <= FRAME {
            this.parts.pop().unwrap_or_default()
        } else {
            next.split_to(FRAME)
        };
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.parts.iter().map(|p| p.len() as u64).sum())
    }
}

/// True when `Accept-Encoding` lists gzip (or `*`) with a non-zero weight.
pub fn accepts_gzip(value: Option<&HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let zero_weight = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero_weight
    })
}

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    plain_owned(status, body.to_string())
}

fn plain_owned(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::of(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn landing(exposition: &Exposition) -> Response<Body> {
    let data = (exposition.status)();
    let body = super::status::render(&data, &exposition.telemetry_path, UnixMillis::now());
    let mut resp = Response::new(Body::of(Bytes::from(body)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_web_server_reports_reload_families_only_with_a_web_config_file() {
        let plain = WebStats::default();
        plain.unauthorized.fetch_add(2, Ordering::Relaxed);
        let mut out = Snapshot::default();
        plain.collect(&mut out);
        let names: Vec<_> = out.families.iter().map(|f| f.family.name).collect();
        assert_eq!(names, ["powerbi_web_rejections_total"]);
        assert_eq!(
            out.value("powerbi_web_rejections_total", &["unauthorized"]),
            Some(2.0)
        );
        assert_eq!(
            out.value("powerbi_web_rejections_total", &["max_requests"]),
            Some(0.0)
        );

        let configured = WebStats {
            web_config: true,
            ..WebStats::default()
        };
        configured.loaded();
        let mut out = Snapshot::default();
        configured.collect(&mut out);
        assert_eq!(
            out.value("powerbi_web_config_last_reload_successful", &[]),
            Some(1.0)
        );
        let at = out
            .value(
                "powerbi_web_config_last_reload_success_timestamp_seconds",
                &[],
            )
            .unwrap();
        assert!(at > 1.7e9, "a Unix timestamp: {at}");
    }

    #[test]
    fn gzip_negotiation_honours_weights() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert!(accepts_gzip(Some(&h("gzip"))));
        assert!(accepts_gzip(Some(&h("deflate, GZIP;q=0.5"))));
        assert!(accepts_gzip(Some(&h("*"))));
        assert!(!accepts_gzip(Some(&h("gzip;q=0"))));
        assert!(!accepts_gzip(Some(&h("identity"))));
        assert!(!accepts_gzip(None));
    }
}
