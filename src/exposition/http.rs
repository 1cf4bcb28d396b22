//! The HTTP face: `/` (landing page), the telemetry path (default `/metrics`), `/-/healthy`
//! and `/-/ready`, on hyper 1.
//!
//! Invariants:
//! - a scrape renders fresh from a snapshot and never waits on the source;
//! - `/-/healthy` answers 200 while the process runs; `/-/ready` answers 503 until the first
//!   source document has been applied, 200 from then on (it never flips back);
//! - on shutdown the listener closes first and in-flight requests finish.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus::core::Collector;
use tokio::net::TcpListener;

use super::text;

/// What the server needs from the rest of the exporter.
pub struct Exposition {
    /// Renders the current metric families.
    pub render: Box<dyn Fn() -> Vec<prometheus::proto::MetricFamily> + Send + Sync>,
    /// Set once the first source document has been applied.
    pub ready: Arc<AtomicBool>,
    pub telemetry_path: String,
    /// Adds the `process_*` families (`--web.disable-exporter-metrics` turns them off).
    pub process_metrics: bool,
}

/// Binds the listener. Separate from [`serve`] so a bind failure is reported before start-up
/// finishes and so the real address of `:0` is known.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` resolves, then drains in-flight connections.
pub async fn serve(
    listener: TcpListener,
    exposition: Exposition,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let exposition = Arc::new(exposition);
    let process = exposition
        .process_metrics
        .then(prometheus::process_collector::ProcessCollector::for_self)
        .map(Arc::new);
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
        let exposition = exposition.clone();
        let process = process.clone();
        let service = hyper::service::service_fn(move |req| {
            let exposition = exposition.clone();
            let process = process.clone();
            async move { Ok::<_, Infallible>(route(&exposition, process.as_deref(), &req)) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "Connection ended with an error.");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(std::time::Duration::from_secs(10)) => tracing::warn!("Connections still open after 10s; closing them."),
    }
}

fn route(
    exposition: &Exposition,
    process: Option<&prometheus::process_collector::ProcessCollector>,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
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
        metrics(exposition, process, req)
    } else {
        match path {
            "/" => landing(&exposition.telemetry_path),
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
        *resp.body_mut() = Full::new(Bytes::new());
    }
    resp
}

fn metrics(
    exposition: &Exposition,
    process: Option<&prometheus::process_collector::ProcessCollector>,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let mut families = (exposition.render)();
    if let Some(p) = process {
        families.extend(p.collect());
    }
    let body = text::encode(&families);
    let mut builder = Response::builder().header(header::CONTENT_TYPE, text::CONTENT_TYPE);
    let body = if accepts_gzip(req.headers().get(header::ACCEPT_ENCODING)) {
        let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
        match gz.write_all(&body).and_then(|()| gz.finish()) {
            Ok(compressed) => {
                builder = builder.header(header::CONTENT_ENCODING, "gzip");
                compressed
            }
            Err(_) => body,
        }
    } else {
        body
    };
    builder
        .header(header::VARY, "Accept-Encoding")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "Encoding failed.\n"))
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

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn landing(telemetry_path: &str) -> Response<Full<Bytes>> {
    let path = html_escape(telemetry_path);
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Power BI exporter</title></head>\n<body>\n\
         <h1>Power BI exporter</h1>\n<p>Power BI / Microsoft Fabric activity events as Prometheus metrics. Version {}.</p>\n\
         <ul>\n<li><a href=\"{path}\">Metrics</a></li>\n<li><a href=\"/-/healthy\">Health</a></li>\n<li><a href=\"/-/ready\">Readiness</a></li>\n</ul>\n</body></html>\n",
        crate::VERSION
    );
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn landing_page_escapes_the_path() {
        assert_eq!(html_escape("/m\"<x>"), "/m&quot;&lt;x&gt;");
    }
}
