//! A loopback fake of Azure Monitor's Logs Ingestion API (a DCR stream endpoint) and of the
//! Entra ID token endpoint that serves it (reference §9.1, §10, §13).
//!
//! Ingestion: `POST /dataCollectionRules/{dcrImmutableId}/streams/{streamName}?api-version=…`
//! with `Authorization: Bearer …`, `Content-Type: application/json`, optional
//! `Content-Encoding: gzip`, body a JSON array of row objects. Checked in this order:
//! - while [`FakeLogsIngestion::set_down`] is on: 503 to everything;
//! - missing or invalid bearer token: 401;
//! - `FakeConfig::throttle_next`: 429 with `Retry-After`;
//!   `FakeConfig::fail_next`: 503;
//! - `api-version` missing or unknown: 400;
//! - wrong DCR immutable id or stream: 404;
//! - `Content-Type` not JSON: 415; `Content-Encoding` other than gzip/identity: 400;
//! - body over [`FakeConfig::max_body_bytes`] as sent or once decompressed: 413
//!   (`ContentLengthLimitExceeded`); bad gzip: 400;
//! - body not a JSON array of objects, a row without a `TimeGenerated` string in RFC 3339 UTC
//!   with `Z`, or a row with a reserved column (`Id`/`id`, `Type`, `TenantId`, …): 400. The real
//!   service would drop such data silently (or answer 204 to a non-array); the fake refuses so
//!   tests notice;
//! - otherwise 204 No Content, and the rows are recorded in order.
//!
//! Token: `POST /{tenant}/oauth2/v2.0/token` with a client-credentials form. A wrong secret gets
//! 401 `invalid_client` (AADSTS7000215), a scope other than `https://monitor.azure.com/.default`
//! 400 `invalid_scope` (AADSTS70011). Tokens are derived from the configuration, not stored, so
//! a fake restarted with [`FakeLogsIngestion::start_on`] and the same configuration still
//! accepts the tokens its predecessor issued (as Entra tokens outlive a service restart).
//!
//! Self-contained: depends on no other module of the crate.

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// The only scope the fake token endpoint grants.
pub const MONITOR_SCOPE: &str = "https://monitor.azure.com/.default";
/// `api-version` values the ingestion endpoint accepts (current, and the older preview).
pub const API_VERSIONS: [&str; 2] = ["2023-01-01", "2021-11-01-preview"];
/// Stream of the deployment template (`deploy/azure/logs-ingestion.json`).
pub const DEFAULT_STREAM: &str = "Custom-PowerBIActivity_CL";
/// A well-formed DCR immutable id.
pub const DEFAULT_DCR_ID: &str = "dcr-00000000000000000000000000000000";
/// The real service's per-call limit is 1 MiB; the default stays a little under it.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1_000_000;
/// Column names Log Analytics reserves (compared ignoring case).
pub const RESERVED_COLUMNS: [&str; 7] = [
    "id",
    "_ResourceId",
    "_SubscriptionId",
    "TenantId",
    "Type",
    "UniqueId",
    "Title",
];
/// `expires_in` of issued tokens.
pub const TOKEN_LIFETIME_SECS: u64 = 3599;

const TOKEN_PREFIX: &str = "fake-logs-ingestion";

/// How the fake behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeConfig {
    pub dcr_id: String,
    pub stream: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Uncompressed body limit: larger → 413 (the real service: 1 MB).
    pub max_body_bytes: usize,
    /// Answer 429 with `Retry-After: <secs>` to the next n ingestion requests.
    pub throttle_next: usize,
    pub retry_after_secs: u64,
    /// Answer 503 to the next n ingestion requests.
    pub fail_next: usize,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            dcr_id: DEFAULT_DCR_ID.to_string(),
            stream: DEFAULT_STREAM.to_string(),
            tenant_id: "19b154a1-57cb-482d-ad42-752df1c9d469".to_string(),
            client_id: "2f9237e0-79e9-47be-a68c-baa0af943cf2".to_string(),
            client_secret: "fake-logs-ingestion-secret".to_string(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            throttle_next: 0,
            retry_after_secs: 1,
            fail_next: 0,
        }
    }
}

/// One ingestion request and how it was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRequest {
    /// Status answered (204 when accepted).
    pub status: u16,
    /// The `error.code` of the answer, when it was an error.
    pub error_code: Option<String>,
    /// DCR immutable id and stream as they appeared in the path.
    pub dcr_id: String,
    pub stream: String,
    /// Whether the body was sent with `Content-Encoding: gzip`.
    pub gzip: bool,
    /// Body size as sent (the compressed size when gzip, else the plain size).
    pub compressed_bytes: usize,
    /// Body size after decompression; `None` when it was not decompressed completely (bad
    /// gzip, over the limit, or refused before the body was looked at).
    pub uncompressed_bytes: Option<usize>,
    /// Elements of the JSON array (0 when the body was not read or not an array).
    pub rows: usize,
    /// Whether the request carried a bearer token this fake issued for its configuration.
    pub token_valid: bool,
    /// The `x-ms-client-request-id` header, if any.
    pub client_request_id: Option<String>,
}

struct State {
    rows: Vec<Value>,
    requests: Vec<IngestRequest>,
    throttle_next: usize,
    retry_after_secs: u64,
    fail_next: usize,
    down: bool,
    tokens_issued: u64,
    token_requests: usize,
    trace: u64,
}

struct Shared {
    config: FakeConfig,
    /// Fingerprint of the credentials, embedded in every token.
    fingerprint: u64,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake; dropping it shuts it down (the dropped sender ends the serving task).
pub struct FakeLogsIngestion {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _shutdown: oneshot::Sender<()>,
}

impl FakeLogsIngestion {
    /// Binds 127.0.0.1 on a free port and serves in the background on the current runtime.
    pub async fn start(config: FakeConfig) -> std::io::Result<FakeLogsIngestion> {
        Self::start_on(config, 0).await
    }

    /// Binds 127.0.0.1:`port` (e.g. the port of a stopped fake, to simulate a restart).
    pub async fn start_on(config: FakeConfig, port: u16) -> std::io::Result<FakeLogsIngestion> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = State {
            rows: Vec::new(),
            requests: Vec::new(),
            throttle_next: config.throttle_next,
            retry_after_secs: config.retry_after_secs,
            fail_next: config.fail_next,
            down: false,
            tokens_issued: 0,
            token_requests: 0,
            trace: 0,
        };
        let shared = Arc::new(Shared {
            fingerprint: fingerprint(&config),
            config,
            state: Mutex::new(state),
        });
        let (shutdown, stop) = oneshot::channel();
        tokio::spawn(serve(listener, shared.clone(), stop));
        tracing::debug!(%addr, "fake logs ingestion listening");
        Ok(FakeLogsIngestion {
            addr,
            shared,
            _shutdown: shutdown,
        })
    }

    /// `http://127.0.0.1:PORT`: the ingestion endpoint and the token authority host.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every accepted row, in order of arrival.
    pub fn rows(&self) -> Vec<Value> {
        self.shared.lock().rows.clone()
    }

    /// Every ingestion request, in order of arrival.
    pub fn requests(&self) -> Vec<IngestRequest> {
        self.shared.lock().requests.clone()
    }

    /// Requests made to the token endpoint, whatever their outcome.
    pub fn token_requests(&self) -> usize {
        self.shared.lock().token_requests
    }

    /// While down, every request (token endpoint included) gets 503.
    pub fn set_down(&self, down: bool) {
        self.shared.lock().down = down;
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // A send, or the handle being dropped.
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, shared.clone()));
                }
                Err(error) => {
                    tracing::debug!(%error, "fake logs ingestion: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Headers and query of a request, copied before its body is read.
struct Head {
    method: Method,
    path: String,
    query: String,
    authorization: Option<String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    client_request_id: Option<String>,
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let head = Head {
        method: req.method().clone(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        content_encoding: header("content-encoding"),
        client_request_id: header("x-ms-client-request-id"),
    };
    // Read everything up to a generous cap, so that even an oversized body gets its 413 rather
    // than a reset connection.
    let cap = shared.config.max_body_bytes.saturating_mul(4).max(4 << 20);
    let body = match Limited::new(req.into_body(), cap).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => Err(error.to_string()),
    };
    let response = respond(shared, &head, body);
    tracing::debug!(
        method = %head.method,
        path = %head.path,
        status = response.status().as_u16(),
        "fake logs ingestion"
    );
    response
}

fn respond(shared: &Shared, head: &Head, body: Result<Bytes, String>) -> Response<Full<Bytes>> {
    let segments: Vec<&str> = head.path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["dataCollectionRules", dcr_id, "streams", stream] => {
            if head.method != Method::POST {
                return method_not_allowed();
            }
            ingest(shared, head, dcr_id, stream, body)
        }
        [tenant, "oauth2", "v2.0", "token"] => {
            if head.method != Method::POST {
                return method_not_allowed();
            }
            let body = body.unwrap_or_default();
            token(shared, tenant, &body)
        }
        _ => {
            if shared.lock().down {
                return service_unavailable();
            }
            monitor_error(StatusCode::NOT_FOUND, "NotFound", "No such route.")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ingestion

/// Outcome of the checks of one ingestion request, before it is logged.
struct Verdict {
    response: Response<Full<Bytes>>,
    error_code: Option<String>,
    uncompressed_bytes: Option<usize>,
    rows: usize,
    accepted: Vec<Value>,
}

impl Verdict {
    fn error(status: StatusCode, code: &str, message: &str) -> Verdict {
        Verdict {
            response: monitor_error(status, code, message),
            error_code: Some(code.to_string()),
            uncompressed_bytes: None,
            rows: 0,
            accepted: Vec::new(),
        }
    }
}

fn ingest(
    shared: &Shared,
    head: &Head,
    dcr_id: &str,
    stream: &str,
    body: Result<Bytes, String>,
) -> Response<Full<Bytes>> {
    let config = &shared.config;
    let gzip = head
        .content_encoding
        .as_deref()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip"));
    let token_valid = head
        .authorization
        .as_deref()
        .and_then(bearer)
        .is_some_and(|t| token_is_valid(shared.fingerprint, t));
    let compressed_bytes = body.as_ref().map_or(0, Bytes::len);

    let mut state = shared.lock();
    let verdict = if state.down {
        Verdict {
            response: service_unavailable(),
            error_code: Some("ServiceUnavailable".to_string()),
            uncompressed_bytes: None,
            rows: 0,
            accepted: Vec::new(),
        }
    } else if !token_valid {
        let mut verdict = Verdict::error(
            StatusCode::UNAUTHORIZED,
            "InvalidToken",
            if head.authorization.is_none() {
                "The request has no Authorization header with a bearer token."
            } else {
                "The bearer token is invalid or was not issued for https://monitor.azure.com."
            },
        );
        verdict
            .response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        verdict
    } else if state.throttle_next > 0 {
        state.throttle_next -= 1;
        let secs = state.retry_after_secs;
        let mut verdict = Verdict::error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            &format!("Request rate is too high. Retry after {secs} seconds."),
        );
        verdict
            .response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
        verdict
    } else if state.fail_next > 0 {
        state.fail_next -= 1;
        Verdict::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        )
    } else {
        check_ingestion(config, head, dcr_id, stream, gzip, body)
    };

    let status = verdict.response.status().as_u16();
    state.rows.extend(verdict.accepted);
    state.requests.push(IngestRequest {
        status,
        error_code: verdict.error_code,
        dcr_id: dcr_id.to_string(),
        stream: stream.to_string(),
        gzip,
        compressed_bytes,
        uncompressed_bytes: verdict.uncompressed_bytes,
        rows: verdict.rows,
        token_valid,
        client_request_id: head.client_request_id.clone(),
    });
    verdict.response
}

/// The checks that do not depend on the fault knobs, in the service's order.
fn check_ingestion(
    config: &FakeConfig,
    head: &Head,
    dcr_id: &str,
    stream: &str,
    gzip: bool,
    body: Result<Bytes, String>,
) -> Verdict {
    let max = config.max_body_bytes;
    match query_param(&head.query, "api-version") {
        None => {
            return Verdict::error(
                StatusCode::BAD_REQUEST,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        }
        Some(v) if !API_VERSIONS.contains(&v.as_str()) => {
            return Verdict::error(
                StatusCode::BAD_REQUEST,
                "UnsupportedApiVersion",
                &format!(
                    "The api-version '{v}' is not supported. Supported versions: {}.",
                    API_VERSIONS.join(", ")
                ),
            )
        }
        Some(_) => {}
    }
    if dcr_id != config.dcr_id {
        return Verdict::error(
            StatusCode::NOT_FOUND,
            "DataCollectionRuleNotFound",
            &format!("Data collection rule with immutable id '{dcr_id}' not found."),
        );
    }
    if stream != config.stream {
        return Verdict::error(
            StatusCode::NOT_FOUND,
            "InvalidStream",
            &format!("Stream '{stream}' is not declared in data collection rule '{dcr_id}'."),
        );
    }
    let json_type = head.content_type.as_deref().is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if !json_type {
        return Verdict::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "Content-Type must be application/json.",
        );
    }
    if let Some(encoding) = head.content_encoding.as_deref() {
        let encoding = encoding.trim();
        if !encoding.eq_ignore_ascii_case("gzip") && !encoding.eq_ignore_ascii_case("identity") {
            return Verdict::error(
                StatusCode::BAD_REQUEST,
                "UnsupportedContentEncoding",
                &format!("Content-Encoding '{encoding}' is not supported; use gzip."),
            );
        }
    }
    let body = match body {
        Ok(body) if body.len() <= max => body,
        Ok(body) => return too_large(max, Some(body.len())),
        // The only way collecting fails short of a broken connection is the cap.
        Err(_) => return too_large(max, None),
    };
    let plain = if gzip {
        let mut out = Vec::new();
        let read = flate2::read::GzDecoder::new(&body[..])
            .take(max as u64 + 1)
            .read_to_end(&mut out);
        match read {
            Err(error) => {
                return Verdict::error(
                    StatusCode::BAD_REQUEST,
                    "InvalidContentEncoding",
                    &format!("The body could not be decompressed as gzip: {error}."),
                )
            }
            // Decompression stopped one byte past the limit.
            Ok(n) if n > max => return too_large(max, None),
            Ok(_) => out,
        }
    } else {
        body.to_vec()
    };
    let uncompressed = Some(plain.len());
    let with_size = |mut verdict: Verdict, rows: usize| {
        verdict.uncompressed_bytes = uncompressed;
        verdict.rows = rows;
        verdict
    };
    let value: Value = match serde_json::from_slice(&plain) {
        Ok(value) => value,
        Err(error) => {
            return with_size(
                Verdict::error(
                    StatusCode::BAD_REQUEST,
                    "InvalidJson",
                    &format!("The body is not valid JSON: {error}."),
                ),
                0,
            )
        }
    };
    let Value::Array(rows) = value else {
        return with_size(
            Verdict::error(
                StatusCode::BAD_REQUEST,
                "InvalidPayload",
                "The body must be a JSON array of objects.",
            ),
            0,
        );
    };
    let count = rows.len();
    for (i, row) in rows.iter().enumerate() {
        if let Err(message) = check_row(row) {
            return with_size(
                Verdict::error(
                    StatusCode::BAD_REQUEST,
                    "InvalidPayload",
                    &format!("Row {i}: {message}"),
                ),
                count,
            );
        }
    }
    Verdict {
        response: no_content(),
        error_code: None,
        uncompressed_bytes: uncompressed,
        rows: count,
        accepted: rows,
    }
}

fn check_row(row: &Value) -> Result<(), String> {
    let Value::Object(map) = row else {
        return Err("every element must be a JSON object.".to_string());
    };
    match map.get("TimeGenerated") {
        None => return Err("TimeGenerated is missing.".to_string()),
        Some(Value::String(s)) if is_rfc3339_utc(s) => {}
        Some(other) => {
            return Err(format!(
                "TimeGenerated must be an RFC 3339 UTC time ending in Z, not {other}."
            ))
        }
    }
    if let Some(key) = map
        .keys()
        .find(|k| RESERVED_COLUMNS.iter().any(|r| r.eq_ignore_ascii_case(k)))
    {
        return Err(format!(
            "column '{key}' is reserved in Log Analytics (rename it, e.g. Id -> EventId)."
        ));
    }
    Ok(())
}

/// 413 as the service words it; `provided` is `None` when only a lower bound is known.
fn too_large(max: usize, provided: Option<usize>) -> Verdict {
    let mb = if max % 1_048_576 == 0 {
        format!("{} MB", max / 1_048_576)
    } else {
        format!("{:.2} MB", max as f64 / 1_048_576.0)
    };
    let provided = match provided {
        Some(n) => format!("{n} bytes"),
        None => format!("more than {max} bytes"),
    };
    Verdict::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ContentLengthLimitExceeded",
        &format!(
            "Maximum allowed content length: {max} bytes ({mb}). Provided content length: \
             {provided}."
        ),
    )
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = &b[range];
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let shape = b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':';
    let fraction = &b[19..b.len() - 1];
    let fraction_ok = fraction.is_empty()
        || (fraction.len() >= 2
            && fraction[0] == b'.'
            && fraction[1..].iter().all(u8::is_ascii_digit));
    match (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) {
        (Some(_), Some(mo), Some(d), Some(h), Some(mi), Some(s)) => {
            shape
                && fraction_ok
                && (1..=12).contains(&mo)
                && (1..=31).contains(&d)
                && h < 24
                && mi < 60
                && s < 60
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

fn token(shared: &Shared, tenant: &str, body: &[u8]) -> Response<Full<Bytes>> {
    let config = &shared.config;
    let mut state = shared.lock();
    state.token_requests += 1;
    if state.down {
        return service_unavailable();
    }
    state.trace += 1;
    let trace = state.trace;
    let form = String::from_utf8_lossy(body);
    let field = |name: &str| query_param(&form, name);
    let aad = |status, error, code, message: &str| aad_error(status, error, code, message, trace);

    if tenant != config.tenant_id {
        return aad(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID."
            ),
        );
    }
    let Some(grant_type) = field("grant_type") else {
        return missing(trace, "grant_type");
    };
    if grant_type != "client_credentials" {
        return aad(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
        );
    }
    let Some(client_id) = field("client_id") else {
        return missing(trace, "client_id");
    };
    if client_id != config.client_id {
        return aad(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant}'."
            ),
        );
    }
    let Some(secret) = field("client_secret") else {
        return aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the \
             'client_credentials' grant type.",
        );
    };
    if secret != config.client_secret {
        return aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is \
                 the client secret value, not the client secret ID, for a secret added to app \
                 '{client_id}'."
            ),
        );
    }
    let Some(scope) = field("scope") else {
        return missing(trace, "scope");
    };
    if scope != MONITOR_SCOPE {
        return aad(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            &format!(
                "The provided request must include a 'scope' input parameter. The provided \
                 value for the input parameter 'scope' is not valid. The scope {scope} is not \
                 valid (this fake grants only {MONITOR_SCOPE})."
            ),
        );
    }
    state.tokens_issued += 1;
    let access_token = format!(
        "{TOKEN_PREFIX}.{:016x}.{:x}",
        shared.fingerprint, state.tokens_issued
    );
    json_response(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECS,
            "ext_expires_in": TOKEN_LIFETIME_SECS,
            "access_token": access_token,
        }),
    )
}

fn missing(trace: u64, name: &str) -> Response<Full<Bytes>> {
    aad_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        &format!("The request body must contain the following parameter: '{name}'."),
        trace,
    )
}

fn aad_error(
    status: StatusCode,
    error: &str,
    code: u32,
    message: &str,
    trace: u64,
) -> Response<Full<Bytes>> {
    let trace_id = format!("00000000-0000-4000-8000-{trace:012x}");
    let correlation_id = format!("00000000-0000-4000-9000-{trace:012x}");
    let timestamp = utc_timestamp();
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {message} Trace ID: {trace_id} Correlation ID: {correlation_id} \
                 Timestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn token_is_valid(fingerprint: u64, token: &str) -> bool {
    let mut parts = token.split('.');
    parts.next() == Some(TOKEN_PREFIX)
        && parts.next() == Some(format!("{fingerprint:016x}").as_str())
        && parts
            .next()
            .is_some_and(|n| u64::from_str_radix(n, 16).is_ok_and(|n| n > 0))
        && parts.next().is_none()
}

/// FNV-1a over the credentials: a token stays valid exactly as long as they do.
fn fingerprint(config: &FakeConfig) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [&config.tenant_id, &config.client_id, &config.client_secret] {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The first value of `name` in an `application/x-www-form-urlencoded` string.
fn query_param(query: &str, name: &str) -> Option<String> {
    powerbi_exporter::simulator::api::parse_form(query)
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// `YYYY-MM-DD HH:MM:SSZ`, the format of Entra's error `timestamp`.
fn utc_timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = powerbi_exporter::decode::time::civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn monitor_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        &json!({ "error": { "code": code, "message": message } }),
    )
}

fn service_unavailable() -> Response<Full<Bytes>> {
    monitor_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "The service is temporarily unavailable.",
    )
}

fn method_not_allowed() -> Response<Full<Bytes>> {
    monitor_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "Only POST is supported.",
    )
}

fn no_content() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}
