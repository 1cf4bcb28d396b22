//! The channel of OTLP over gRPC, built here rather than by the exporter crate so that gRPC
//! reaches a collector the way every HTTP client does ([`crate::azure::http::client_builder`]):
//! through the environment's proxy, trusting the environment's roots.
//!
//! Invariants:
//! - the proxy is the one reqwest picks for the endpoint's URL, by the same code (hyper-util's
//!   matcher, which reqwest asks): `HTTPS_PROXY` for an `https` endpoint, `HTTP_PROXY` for an
//!   `http` one, `ALL_PROXY` for both, none for a host `NO_PROXY` names (curl's rules). HTTP/2
//!   cannot be forwarded like an HTTP/1 request, so the proxy is always asked for a `CONNECT`
//!   tunnel to the collector's host and port;
//! - TLS (an `https` endpoint) runs inside the tunnel, end to end with the collector, verified
//!   by rustls-platform-verifier as reqwest verifies: the roots of `SSL_CERT_FILE` /
//!   `SSL_CERT_DIR` when set, else the system's, plus `OTEL_EXPORTER_OTLP_CERTIFICATE`'s; the
//!   client certificate of `…CLIENT_CERTIFICATE` / `…CLIENT_KEY` when given;
//! - nothing connects when the channel is built: the first push does, and a tunnel the proxy
//!   refuses (407, 502) or a certificate not trusted is that push's error, counted by the caller
//!   and tried again at the next push.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::transport::{Channel, Endpoint};

use super::otlp::{OtlpError, TlsFiles};

/// The endpoint of gRPC when no variable names one (the OTLP exporter specification's).
const DEFAULT_ENDPOINT: &str = "http://localhost:4317";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The collector's URL for `signal`: `OTEL_EXPORTER_OTLP_{signal}_ENDPOINT`, else
/// `OTEL_EXPORTER_OTLP_ENDPOINT`, else [`DEFAULT_ENDPOINT`]; one without a scheme is `https`
/// unless `…INSECURE` is `true` (the exporter crate's rules, which a channel of our own skips).
fn endpoint_url(signal: &str) -> String {
    let url = env(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))
        .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let url = url.trim().to_string();
    let has_scheme = url
        .split_once("://")
        .is_some_and(|(scheme, _)| !scheme.contains(['/', '?', '#']));
    if has_scheme {
        return url;
    }
    let insecure = std::env::var(format!("OTEL_EXPORTER_OTLP_{signal}_INSECURE"))
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_INSECURE"))
        .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let scheme = if insecure { "http" } else { "https" };
    format!("{scheme}://{url}")
}

/// The exporter crate's timeout of `signal`: `OTEL_EXPORTER_OTLP_{signal}_TIMEOUT`, else
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), else 10 s. tonic's own channel bounded each
/// request with it; ours does too, the tunnel and the handshake included, so a proxy that never
/// answers fails a push instead of holding it.
fn timeout(signal: &str) -> Duration {
    let millis = |name: &str| env(name).and_then(|v| v.trim().parse::<u64>().ok());
    millis(&format!("OTEL_EXPORTER_OTLP_{signal}_TIMEOUT"))
        .or_else(|| millis("OTEL_EXPORTER_OTLP_TIMEOUT"))
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
}

/// The OTLP exporter specification's default timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The host and port a channel connects to (its port made explicit: 443 for `https`, 80 for
/// `http`, as tonic's own connector defaults them).
#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    /// `http://host:port`: the form the tunnel and the proxy matcher take.
    authority_uri: Uri,
}

impl Target {
    fn of(uri: &Uri) -> Option<Target> {
        let host = uri.host()?.to_string();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority_uri = format!("http://{host}:{port}").parse().ok()?;
        Some(Target {
            host,
            port,
            authority_uri,
        })
    }

    /// The host without an IPv6 literal's brackets, for a socket address or a TLS server name.
    fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// The proxy a channel tunnels through.
#[derive(Debug, Clone)]
struct Proxy {
    uri: Uri,
    auth: Option<HeaderValue>,
    /// TLS to the proxy itself, for an `https://` proxy URL.
    tls: Option<Arc<ClientConfig>>,
}

/// Who a connection or a TLS configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The collector: HTTP/2 offered by ALPN, the client certificate presented when given.
    Collector,
    /// An `https://` proxy: plain HTTP/1.1 for the `CONNECT`, no client certificate.
    Proxy,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Peer::Collector => "the collector",
            Peer::Proxy => "the proxy",
        })
    }
}

/// Why a connection to the collector could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    #[error("connecting to {what} failed: {why}")]
    Unreachable { what: Peer, why: String },
    #[error("the proxy did not open a tunnel to the collector ({0})")]
    Tunnel(String),
    #[error("TLS with {what} failed: {why}")]
    Tls { what: Peer, why: String },
}

/// Builds the channel of `signal` (`METRICS` or `LOGS`): lazy, through the proxy the
/// environment names for the endpoint, with TLS of our own for an `https` endpoint. Must run
/// inside the tokio runtime (the channel's worker is spawned on it).
pub(super) fn channel(signal: &str, tls: &TlsFiles) -> Result<Channel, OtlpError> {
    let url = endpoint_url(signal);
    let invalid = |why: &str| OtlpError::Build(format!("the gRPC endpoint {url:?} {why}"));
    let uri: Uri = url.parse().map_err(|_| invalid("is not a URL"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(invalid("must start with http:// or https://")),
    };
    let target = Target::of(&uri).ok_or_else(|| invalid("names no host"))?;
    let proxy = proxy_for(&uri)?;
    let collector_tls = https
        .then(|| client_config(tls, Peer::Collector).map(Arc::new))
        .transpose()?;
    // tonic runs its own TLS on an `https` endpoint, and cannot take our verifier: it is given
    // the `http` form to connect to, and the real URL as the origin its requests name.
    let endpoint = Endpoint::from(target.authority_uri.clone())
        .origin(uri)
        .timeout(timeout(signal))
        .connect_timeout(timeout(signal));
    let connector = Connector {
        target,
        proxy,
        tls: collector_tls,
    };
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// The proxy reqwest would use for `uri`, as a tunnel (hyper-util's matcher, reqwest's own).
fn proxy_for(uri: &Uri) -> Result<Option<Proxy>, OtlpError> {
    let Some(intercept) = Matcher::from_system().intercept(uri) else {
        return Ok(None);
    };
    let tls = match intercept.uri().scheme_str() {
        Some("https") => Some(Arc::new(client_config(&TlsFiles::default(), Peer::Proxy)?)),
        _ => None,
    };
    Ok(Some(Proxy {
        uri: intercept.uri().clone(),
        auth: intercept.basic_auth().cloned(),
        tls,
    }))
}

/// A rustls client configuration verifying as reqwest does (rustls-platform-verifier: the
/// `SSL_CERT_*` roots or the system's), plus the CA of `tls`, presenting its client
/// certificate; `h2` offered by ALPN for a collector (gRPC needs HTTP/2), nothing for a proxy.
fn client_config(tls: &TlsFiles, peer: Peer) -> Result<ClientConfig, OtlpError> {
    crate::install_tls_provider();
    let problem = |e: &dyn std::fmt::Display| OtlpError::Tls(e.to_string());
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let extra: Vec<CertificateDer<'static>> = match &tls.ca {
        Some(pem) => CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| problem(&e))?,
        None => Vec::new(),
    };
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
            .map_err(|e| problem(&e))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| problem(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match &tls.identity {
        Some((cert, key)) if peer == Peer::Collector => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| problem(&e))?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| problem(&e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| problem(&e))?
        }
        _ => builder.with_no_client_auth(),
    };
    if peer == Peer::Collector {
        config.alpn_protocols = vec![b"h2".to_vec()];
    }
    Ok(config)
}

/// Any byte stream: a TCP socket, a tunnel, TLS on either.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}
type BoxedStream = Box<dyn Stream>;

type Connecting<T> = Pin<Box<dyn Future<Output = Result<T, ConnectError>> + Send>>;

/// tonic's connector: the collector directly, or through the proxy's tunnel; then TLS.
#[derive(Debug, Clone)]
struct Connector {
    target: Target,
    proxy: Option<Proxy>,
    tls: Option<Arc<ClientConfig>>,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<BoxedStream>;
    type Error = ConnectError;
    type Future = Connecting<Self::Response>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    /// `_uri` is the `http` form [`channel`] gave tonic; the target is ours.
    fn call(&mut self, _uri: Uri) -> Self::Future {
        Box::pin(self.clone().open())
    }
}

impl Connector {
    async fn open(self) -> Result<TokioIo<BoxedStream>, ConnectError> {
        let target = &self.target;
        let stream = match &self.proxy {
            None => tcp(target.bare_host(), target.port, Peer::Collector).await?,
            Some(proxy) => tunnel(proxy, target).await?,
        };
        let stream = match &self.tls {
            None => stream,
            Some(config) => handshake(config, target.bare_host(), stream, Peer::Collector).await?,
        };
        Ok(TokioIo::new(stream))
    }
}

async fn tcp(host: &str, port: u16, what: Peer) -> Result<BoxedStream, ConnectError> {
    let socket = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| ConnectError::Unreachable {
            what,
            why: e.to_string(),
        })?;
    // gRPC's frames are small and latency-bound, as tonic's own connector assumes.
    let _ = socket.set_nodelay(true);
    Ok(Box::new(socket))
}

async fn handshake(
    config: &Arc<ClientConfig>,
    host: &str,
    stream: BoxedStream,
    what: Peer,
) -> Result<BoxedStream, ConnectError> {
    let tls_error = |why: String| ConnectError::Tls { what, why };
    let name = ServerName::try_from(host.to_string()).map_err(|e| tls_error(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    match connector.connect(name, stream).await {
        Ok(tls) => Ok(Box::new(tls)),
        Err(e) => Err(tls_error(tls_failure(&e))),
    }
}

/// A handshake's failure in words; a certificate not trusted names the variables that fix it.
fn tls_failure(e: &std::io::Error) -> String {
    match crate::azure::http::untrusted_certificate(e) {
        Some(why) => format!(
            "the server's certificate is not trusted ({why}): behind a TLS-inspecting proxy or \
             with a private CA, name its CA bundle in SSL_CERT_FILE or SSL_CERT_DIR (or \
             OTEL_EXPORTER_OTLP_CERTIFICATE)"
        ),
        None => e.to_string(),
    }
}

/// A `CONNECT` tunnel to `target` through `proxy` (hyper-util's, which reqwest uses).
async fn tunnel(proxy: &Proxy, target: &Target) -> Result<BoxedStream, ConnectError> {
    let mut tunnel = Tunnel::new(
        proxy.uri.clone(),
        ProxyHop {
            tls: proxy.tls.clone(),
        },
    );
    if let Some(auth) = &proxy.auth {
        tunnel = tunnel.with_auth(auth.clone());
    }
    let io = tower_service::Service::call(&mut tunnel, target.authority_uri.clone())
        .await
        .map_err(|e| {
            match std::error::Error::source(&e).and_then(|s| s.downcast_ref::<ConnectError>()) {
                // The proxy itself could not be reached: said as such, not as a refusal.
                Some(hop) => hop.clone(),
                None => ConnectError::Tunnel(e.to_string()),
            }
        })?;
    Ok(io.into_inner())
}

/// The connection to the proxy itself: TCP, and TLS for an `https://` proxy.
#[derive(Debug, Clone)]
struct ProxyHop {
    tls: Option<Arc<ClientConfig>>,
}

impl tower_service::Service<Uri> for ProxyHop {
    type Response = TokioIo<BoxedStream>;
    type Error = ConnectError;
    type Future = Connecting<Self::Response>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, proxy: Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move {
            let unusable = || ConnectError::Tunnel("the proxy URL names no host".into());
            let at = Target::of(&proxy).ok_or_else(unusable)?;
            let stream = tcp(at.bare_host(), at.port, Peer::Proxy).await?;
            let stream = match &tls {
                None => stream,
                Some(config) => handshake(config, at.bare_host(), stream, Peer::Proxy).await?,
            };
            Ok(TokioIo::new(stream))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_has_its_port_made_explicit() {
        let https = Target::of(&"https://collector.example".parse().unwrap()).unwrap();
        assert_eq!(
            (https.host.as_str(), https.port),
            ("collector.example", 443)
        );
        assert_eq!(
            https.authority_uri.to_string(),
            "http://collector.example:443/"
        );
        let v6 = Target::of(&"http://[::1]:4317".parse().unwrap()).unwrap();
        assert_eq!((v6.bare_host(), v6.port), ("::1", 4317));
        assert_eq!(v6.authority_uri.to_string(), "http://[::1]:4317/");
    }
}
