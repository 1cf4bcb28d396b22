//! HTTP helpers every outbound client here shares: the one client builder (proxies and trusted
//! roots from the environment, see [`client_builder`]), bounded body reads, `Retry-After`, and
//! error text that never carries a URL (a continuation URL or a query may hold a token) but
//! says when a certificate was not trusted.

use bytes::Bytes;

/// The longest wait a `Retry-After` is obeyed for: Azure's and the Power BI API's own waits
/// are up to about an hour (reference §3, a captured `Retry-After: 3392`). A longer one is cut
/// to this, so a bad header blocks a caller for an hour at most.
pub const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// `Retry-After` in seconds (delta-seconds: these APIs send no HTTP date), at most [`MAX_RETRY_AFTER`]; a longer one (digits
/// too many for a `u64` included) is cut to it and logged at warn.
pub fn retry_after_secs(resp: &reqwest::Response) -> Option<u64> {
    let value = resp.headers().get("retry-after")?.to_str().ok()?.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let asked = value.parse::<u64>().unwrap_or(u64::MAX);
    let max = MAX_RETRY_AFTER.as_secs();
    if asked > max {
        tracing::warn!(
            asked_seconds = value,
            max_seconds = max,
            url = %without_query(resp.url()),
            "A Retry-After longer than the one-hour maximum was cut to an hour."
        );
    }
    Some(asked.min(max))
}

/// A URL without its query (which may carry a continuation token), for log lines.
fn without_query(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

/// Why a response body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the response body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading the response body failed: {0}")]
    Read(String),
}

/// Reads a response body to its end, refusing one larger than `limit` bytes: a declared
/// length over the limit is refused before reading, a streamed one as soon as it passes it.
/// The client's request timeout bounds a server that trickles bytes.
pub async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Bytes, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let expected = resp.content_length().unwrap_or(0) as usize;
    let mut body = bytes::BytesMut::with_capacity(expected.min(limit));
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| BodyError::Read(without_url(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// What went wrong with a request, without its URL (a URL may carry a token).
pub fn without_url(e: &reqwest::Error) -> String {
    if let Some(why) = untrusted_certificate(e) {
        // A TLS-inspecting proxy or a private CA: the fix is the trusted roots, not the network.
        return format!(
            "the server's certificate is not trusted ({why}): behind a TLS-inspecting proxy or \
             with a private CA, name its CA bundle in SSL_CERT_FILE or SSL_CERT_DIR"
        );
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response body could not be read"
    } else {
        "request failed"
    };
    kind.to_string()
}

/// The reason rustls refused the server's certificate, if that is why `e` happened. rustls'
/// error travels inside `io::Error`s, whose `source()` skips what they wrap: an `io::Error`
/// is stepped into, any other error followed to its source. Any error (reqwest's, a TLS
/// handshake's `io::Error`), so OTLP over gRPC says it in the same words.
pub fn untrusted_certificate(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(rustls::Error::InvalidCertificate(why)) = err.downcast_ref::<rustls::Error>() {
            return Some(format!("{why:?}"));
        }
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// The builder of every outbound HTTP client: Entra ID, the Power BI API, Logs Ingestion and
/// OTLP over HTTP. reqwest's defaults are the corporate-network behaviour operators expect,
/// and building every client here keeps them alike:
/// - proxies from `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (upper or lower
///   case), with curl's rules: `NO_PROXY` takes host names (a suffix match), IP addresses and
///   CIDR ranges; loopback is not exempt by itself;
/// - trusted roots from rustls-platform-verifier: the files of `SSL_CERT_FILE` and
///   `SSL_CERT_DIR` when either is set (both when both are), else the system's store.
pub fn client_builder() -> reqwest::ClientBuilder {
    crate::install_tls_provider();
    reqwest::Client::builder()
}

/// Problems with the proxy and CA variables [`client_builder`]'s clients read. Left alone, a
/// proxy URL reqwest cannot parse is ignored silently (requests go direct and time out), and
/// an unreadable CA file fails every request as "not trusted": both are named at start.
pub fn environment_problems() -> Vec<String> {
    let mut problems = Vec::new();
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        let Some(value) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        if let Err(e) = check_proxy_url(value.trim()) {
            // The value may carry a proxy password: only its scheme and shape are named.
            problems.push(format!("environment {name}: {e}"));
        }
    }
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        if let Err(e) = check_cert_file(std::path::Path::new(&file)) {
            problems.push(format!("environment SSL_CERT_FILE {file:?}: {e}"));
        }
    }
    if let Some(dirs) = std::env::var_os("SSL_CERT_DIR") {
        for dir in std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                problems.push(format!(
                    "environment SSL_CERT_DIR: {} is not a readable directory",
                    dir.display()
                ));
            }
        }
    }
    problems
}

/// A proxy URL as reqwest takes it: `http://` or `https://` (or no scheme, meaning http), a
/// host, optionally `user:password@` and a port.
fn check_proxy_url(value: &str) -> Result<(), String> {
    let with_scheme = if value.contains("://") {
        value.to_string()
    } else {
        format!("http://{value}")
    };
    let url = reqwest::Url::parse(&with_scheme)
        .map_err(|_| "expected a proxy URL like http://proxy.example:3128".to_string())?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "scheme {other}: expected http:// or https:// (SOCKS is not built in)"
            ))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("expected a proxy URL like http://proxy.example:3128 (no host)".into());
    }
    Ok(())
}

/// A PEM reading error in words, `expected` naming what the file should hold (e.g. `private
/// key`): rustls-pki-types prints a label as a list of bytes, and "no items found" for a file
/// without the section.
pub fn pem_error(e: &rustls_pki_types::pem::Error, expected: &str) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::NoItemsFound => format!("no PEM {expected} in it"),
        Error::MissingSectionEnd { end_marker } => format!(
            "a PEM section does not end (no -----END {}-----)",
            String::from_utf8_lossy(end_marker)
        ),
        Error::IllegalSectionStart { line } => format!(
            "a PEM section starts badly: {:?}",
            String::from_utf8_lossy(line)
        ),
        other => other.to_string(),
    }
}

/// A PEM file with at least one certificate.
fn check_cert_file(path: &std::path::Path) -> Result<(), String> {
    use rustls_pki_types::{pem::PemObject, CertificateDer};
    let bytes = std::fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .filter(Result::is_ok)
        .count();
    if certificates == 0 {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(())
}
