//! The simulated tenant's HTTP face: the Power BI Activity Events API and the Entra ID token
//! endpoint, on loopback, with the real API's quirks (reference §1–5, §13):
//! - dates must be quoted and in one UTC day; dates and a token together are refused (400);
//! - a window is paged by hour: at least one response per hour, empty pages with a token are
//!   normal, the last page has no token and `lastResultSet` true or false at random;
//! - the continuation token is base64 and already percent-encoded in the JSON; the
//!   `continuationUri` quotes it; a token encoded twice does not decode (400);
//! - a bad or missing bearer token gets the 401 `PowerBINotAuthorizedException` body;
//! - past its own hourly budget it answers 429 with `Retry-After`, or with the wait only in
//!   the body's text ([`ThrottleShape`]);
//! - `continuationUri` absolute as documented, or relative, mixed, broken, or unusable with no
//!   token ([`ContinuationStyle`]);
//! - a certificate's client assertion must be PS256 with `x5t#S256` and a fresh GUID `jti`,
//!   and, for subject name/issuer authentication, carry the chain in `x5c`;
//! - managed identities answer at `/metadata/identity/oauth2/token` (IMDS), `/msi/token`
//!   (`IDENTITY_ENDPOINT`), `/msi2017/token` (`MSI_ENDPOINT` + `MSI_SECRET`),
//!   `/cloudshell/token` (`MSI_ENDPOINT` alone) and `/arc/token` (Azure Arc's key-file
//!   challenge);
//! - events become visible late ([`Timeline`]); fault knobs add 429s, 5xx, truncated bodies and
//!   duplicate deliveries.
//!
//! Every request is logged with its time and status, so tests can check the client's budget.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::clock::SharedClock;
use super::timeline::Timeline;
use super::Expand;
use crate::azure::auth::POWERBI_SCOPE;
use crate::decode::time::parse_creation_time;
use crate::decode::UnixMillis;
use crate::rng::Rng;

const HOUR_MS: i64 = 3_600_000;
const GROUPS_PATH: &str = "/v1.0/myorg/admin/groups";
const EVENTS_PATH: &str = "/v1.0/myorg/admin/activityevents";

/// Random faults, each a share of requests (or of pages, for duplicates).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    pub throttle: f64,
    pub server_error: f64,
    pub truncate: f64,
    pub duplicate: f64,
    pub empty_page: f64,
}

/// How `continuationUri` is written on a page that has a next one. The API documents an
/// absolute URL (reference §2); these are the shapes a client must also survive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ContinuationStyle {
    /// `http://host:port/v1.0/...?continuationToken='…'`, as the reference documents.
    #[default]
    Absolute,
    /// `/v1.0/...?continuationToken='…'`, relative to the API URL.
    Relative,
    /// Absolute and relative by turns, page by page.
    Mixed,
    /// A `continuationUri` no URL parser accepts, next to a usable `continuationToken`.
    BrokenUri,
    /// A broken `continuationUri` and no `continuationToken`: the next page cannot be had.
    Unusable,
}

/// How a 429 says how long to wait.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ThrottleShape {
    /// `Retry-After: N` and the body's "Retry in N seconds." (the capture in reference §3).
    #[default]
    Header,
    /// No header; the body's "Retry in N seconds." only.
    RetryInText,
    /// No header; "Request is blocked by the upstream service until: M/D/YYYY h:mm:ss AM"
    /// (UTC), as Fabric answers (reference §16).
    UntilText,
}

/// A client certificate registered on the simulated app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedCertificate {
    /// Its RSA public key, PKCS#1 DER.
    pub public_key: Vec<u8>,
    /// base64url SHA-256 of its DER encoding: the assertion's `x5t#S256`.
    pub thumbprint_sha256: String,
}

/// How the simulated API behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Object id of the client's service principal: the `oid` claim of the tokens issued
    /// (the client id is their `appid`).
    pub principal_object_id: String,
    /// Events per page at most (the real API sends 5,000–10,000).
    pub page_size: usize,
    /// Requests per rolling hour before 429 (the real limit is 200).
    pub budget_per_hour: usize,
    /// `Retry-After` of its 429s, in seconds.
    pub retry_after_secs: u64,
    /// Where its 429s put the wait.
    pub throttle_shape: ThrottleShape,
    /// The first this many Activity Events requests are answered 429.
    pub throttle_first: usize,
    pub token_lifetime_secs: u64,
    pub faults: Faults,
    pub seed: u64,
    /// Requests to `admin/groups` per rolling hour before 429 (the real limit is 50).
    pub inventory_budget_per_hour: usize,
    /// `admin/groups` answers only after this long (to test the client's timeout).
    pub inventory_delay: Option<std::time::Duration>,
    /// Events older than this are forgotten, and so are requests older than this or an hour
    /// (the rolling budget needs the last hour), and all but the newest tokens: the demo keeps
    /// only what its lookback reads, so a demo left running for weeks stays small. `None` keeps
    /// everything (tests' ground truth and request log).
    pub retention: Option<std::time::Duration>,
    /// Base URL written into `continuationUri` (default: the simulator's own), to test that a
    /// client refuses to follow one to a foreign host.
    pub continuation_base: Option<String>,
    /// How `continuationUri` is written.
    pub continuation: ContinuationStyle,
    /// The federated (workload identity) token the token endpoint accepts as an assertion.
    pub federated_token: Option<String>,
    /// The client certificate whose signed JWT assertions the token endpoint accepts.
    pub certificate: Option<TrustedCertificate>,
    /// The `X-IDENTITY-HEADER` of the App Service managed-identity endpoint (`/msi/token`).
    pub identity_header: Option<String>,
    /// The `secret` header of the 2017-09-01 managed-identity endpoint (`/msi2017/token`), the
    /// one `MSI_ENDPOINT` + `MSI_SECRET` point to.
    pub msi_secret: Option<String>,
    /// The Azure Arc identity endpoint (`/arc/token`): the key file its 401 challenge names
    /// (`WWW-Authenticate: Basic realm=<file>`) and the key the second request must send.
    pub arc_key: Option<(String, String)>,
    /// Subject name/issuer authentication: a certificate's assertion must carry exactly this
    /// `x5c` (standard base64 DER of each certificate, leaf first).
    pub required_x5c: Option<Vec<String>>,
    /// Spans of time when the Activity Events API answers every request 503 (an outage).
    pub outages: Vec<Outage>,
}

/// A span of time, `[from, until)`, when the Activity Events API is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub from: UnixMillis,
    pub until: UnixMillis,
}

impl Outage {
    fn covers(&self, t: UnixMillis) -> bool {
        self.from <= t && t < self.until
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            tenant_id: "19b154a1-57cb-482d-ad42-752df1c9d469".into(),
            client_id: "2f9237e0-79e9-47be-a68c-baa0af943cf2".into(),
            client_secret: "simulated-secret".into(),
            principal_object_id: "b7c5e1d2-3f4a-4b6c-8d9e-0a1b2c3d4e5f".into(),
            page_size: 5000,
            budget_per_hour: 200,
            retry_after_secs: 3392,
            throttle_shape: ThrottleShape::Header,
            throttle_first: 0,
            token_lifetime_secs: 3599,
            faults: Faults::default(),
            seed: 1,
            retention: None,
            inventory_budget_per_hour: 50,
            inventory_delay: None,
            continuation_base: None,
            continuation: ContinuationStyle::Absolute,
            federated_token: None,
            certificate: None,
            identity_header: None,
            msi_secret: None,
            arc_key: None,
            required_x5c: None,
            outages: Vec::new(),
        }
    }
}

/// One request the simulated API answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub at: UnixMillis,
    pub path: String,
    /// The query string as sent (the hour asked for, or a continuation token).
    pub query: String,
    pub status: u16,
    /// Whether the request carried an `Authorization` header.
    pub authorized: bool,
}

struct State {
    config: ApiConfig,
    timeline: Timeline,
    rng: Rng,
    tokens: Vec<String>,
    /// `jti` of every client assertion accepted: a replayed one is refused.
    assertion_ids: std::collections::HashSet<String>,
    log: Vec<LoggedRequest>,
    /// Base of `continuationUri`.
    base_url: String,
    /// This server's own URL (the audience of client assertions).
    own_url: String,
    /// The time it answers by (event visibility, budget, tokens, outages).
    clock: SharedClock,
}

/// A running simulated API; clones share it.
#[derive(Clone)]
pub struct SimulatedApi {
    state: Arc<Mutex<State>>,
    pub addr: SocketAddr,
}

impl SimulatedApi {
    /// Binds 127.0.0.1 (port 0 for any) and serves in the background on the current runtime.
    pub async fn start(
        config: ApiConfig,
        timeline: Timeline,
        port: u16,
    ) -> std::io::Result<SimulatedApi> {
        Self::start_with_clock(config, timeline, port, SharedClock::system()).await
    }

    /// Like [`SimulatedApi::start`], answering by `clock` (a test's simulated time).
    pub async fn start_with_clock(
        config: ApiConfig,
        timeline: Timeline,
        port: u16,
        clock: SharedClock,
    ) -> std::io::Result<SimulatedApi> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let rng = Rng::new(config.seed ^ 0xA11);
        let config_base = config.continuation_base.clone();
        let state = State {
            config,
            timeline,
            rng,
            tokens: Vec::new(),
            assertion_ids: std::collections::HashSet::new(),
            log: Vec::new(),
            base_url: config_base.unwrap_or_else(|| format!("http://{addr}")),
            own_url: format!("http://{addr}"),
            clock,
        };
        let api = SimulatedApi {
            state: Arc::new(Mutex::new(state)),
            addr,
        };
        let served = api.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let api = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let api = api.clone();
                        async move { Ok::<_, Infallible>(api.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(api)
    }

    /// The loopback address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs `f` on the event log (the ground truth).
    pub fn with_timeline<T>(&self, f: impl FnOnce(&mut Timeline) -> T) -> T {
        f(&mut self.lock().timeline)
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let now = self.lock().clock.now();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let authorization = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let method = req.method().clone();
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (metadata, identity_header) = (header("metadata"), header("x-identity-header"));
        let msi_secret = header("secret");
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let (response, delay) = self.respond(
            &method,
            path,
            &query,
            &body,
            authorization,
            metadata,
            [identity_header, msi_secret],
            now,
        );
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        response
    }

    /// The answer to one request, and how long to hold it back; the state is locked only here.
    #[allow(clippy::too_many_arguments)]
    fn respond(
        &self,
        method: &Method,
        path: String,
        query: &str,
        body: &Bytes,
        authorization: Option<String>,
        metadata: Option<String>,
        [identity_header, msi_secret]: [Option<String>; 2],
        now: UnixMillis,
    ) -> (Response<Full<Bytes>>, Option<std::time::Duration>) {
        let query = query.to_string();
        let mut state = self.lock();
        let (status, response) = if *method == Method::POST && path.ends_with("/oauth2/v2.0/token")
        {
            state.token(&path, body, now)
        } else if method == Method::GET && path == "/metadata/identity/oauth2/token" {
            let ok = metadata.as_deref() == Some("true");
            state.managed_identity_token(&query, ok, now)
        } else if method == Method::GET && path == "/msi/token" {
            let ok = identity_header.is_some() && identity_header == state.config.identity_header;
            state.managed_identity_token(&query, ok, now)
        } else if method == Method::GET && path == "/msi2017/token" {
            // MSI_ENDPOINT + MSI_SECRET: api-version 2017-09-01, the secret in a `secret` header.
            let ok = msi_secret.is_some()
                && msi_secret == state.config.msi_secret
                && parse_form(&query).contains(&("api-version".into(), "2017-09-01".into()));
            state.managed_identity_token(&query, ok, now)
        } else if method == Method::GET && path == "/arc/token" && state.config.arc_key.is_some() {
            match state.arc_key_request(authorization.as_deref(), metadata.as_deref()) {
                Some(challenge) => challenge,
                None => state.managed_identity_token(&query, true, now),
            }
        } else if *method == Method::POST && path == "/cloudshell/token" {
            // MSI_ENDPOINT alone (Cloud Shell): the resource in a POSTed form, `Metadata: true`.
            let ok = metadata.as_deref() == Some("true");
            state.managed_identity_token(&String::from_utf8_lossy(body), ok, now)
        } else if method == Method::GET && path == EVENTS_PATH {
            state.activity_events(&query, authorization.as_deref(), now)
        } else if method == Method::GET && path == GROUPS_PATH {
            state.groups(&query, authorization.as_deref(), now)
        } else {
            (
                StatusCode::NOT_FOUND,
                json_response(
                    StatusCode::NOT_FOUND,
                    r#"{"error":{"code":"NotFound"}}"#.into(),
                ),
            )
        };
        let delay = (path == GROUPS_PATH)
            .then_some(state.config.inventory_delay)
            .flatten();
        state.log.push(LoggedRequest {
            at: now,
            path,
            query,
            status: status.as_u16(),
            authorized: authorization.is_some(),
        });
        if let Some(keep) = state.config.retention {
            state.forget_requests(now, keep);
        }
        (response, delay)
    }
}

/// Tokens a server with a retention remembers; older ones expired long ago.
const KEPT_TOKENS: usize = 256;

impl State {
    /// Drops requests older than `keep` (at least the budget's hour) and all but the newest
    /// [`KEPT_TOKENS`] tokens.
    fn forget_requests(&mut self, now: UnixMillis, keep: std::time::Duration) {
        let keep_ms = (keep.as_millis() as i64).max(HOUR_MS);
        let cutoff = now.saturating_sub_millis(keep_ms);
        forget_before(&mut self.log, cutoff);
        if self.tokens.len() > KEPT_TOKENS {
            let extra = self.tokens.len() - KEPT_TOKENS;
            self.tokens.drain(..extra);
        }
    }

    /// Managed-identity endpoints: numbers as strings, `expires_on` as an epoch, resource
    /// without `/.default`.
    fn managed_identity_token(
        &mut self,
        query: &str,
        header_ok: bool,
        now: UnixMillis,
    ) -> (StatusCode, Response<Full<Bytes>>) {
        let params = parse_form(query);
        let resource_ok = params
            .iter()
            .any(|(k, v)| k == "resource" && v == POWERBI_SCOPE.trim_end_matches("/.default"));
        if !header_ok || !resource_ok {
            let body = r#"{"error":"invalid_request","error_description":"Required metadata header not specified or resource missing"}"#;
            return (
                StatusCode::BAD_REQUEST,
                json_response(StatusCode::BAD_REQUEST, body.into()),
            );
        }
        let token = self.issue();
        let expires_on = now.0 / 1000 + self.config.token_lifetime_secs as i64;
        let body = format!(
            r#"{{"access_token":"{token}","expires_in":"{}","expires_on":"{expires_on}","resource":"https://analysis.windows.net/powerbi/api","token_type":"Bearer"}}"#,
            self.config.token_lifetime_secs
        );
        (StatusCode::OK, json_response(StatusCode::OK, body))
    }

    /// Azure Arc: without the key (or `Metadata: true`), the 401 challenge naming the key file;
    /// `None` when the request carries `Basic <key>`.
    fn arc_key_request(
        &self,
        authorization: Option<&str>,
        metadata: Option<&str>,
    ) -> Option<(StatusCode, Response<Full<Bytes>>)> {
        let (file, key) = self.config.arc_key.as_ref()?;
        if metadata == Some("true") && authorization == Some(format!("Basic {key}").as_str()) {
            return None;
        }
        let mut response = json_response(StatusCode::UNAUTHORIZED, "{}".into());
        if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("Basic realm={file}")) {
            response.headers_mut().insert("www-authenticate", v);
        }
        Some((StatusCode::UNAUTHORIZED, response))
    }

    /// A new access token, shaped like Entra's (a JWT whose payload carries `appid`, `oid`
    /// and `tid`; the signature is not a real one).
    fn issue(&mut self) -> String {
        let claims = serde_json::json!({
            "aud": POWERBI_SCOPE.trim_end_matches("/.default"),
            "iss": format!("https://sts.windows.net/{}/", self.config.tenant_id),
            "appid": self.config.client_id, "oid": self.config.principal_object_id,
            "tid": self.config.tenant_id, "idtyp": "app", "ver": "1.0",
            "uti": format!("sim-{:016x}", self.rng.next_u64()),
        });
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(self.rng.next_u64().to_be_bytes())
        );
        self.tokens.push(token.clone());
        token
    }

    /// Checks a client assertion: the federated token as given, or a JWT as Entra's current
    /// guidance has it (learn.microsoft.com/entra/identity-platform/certificate-credentials):
    /// header `alg: PS256`, `typ: JWT`, `x5t#S256` the certificate's SHA-256 thumbprint; RSA-PSS
    /// SHA-256 signature by the certificate's key; `aud` this token endpoint, `iss` and `sub`
    /// the client, not expired, and `jti` a GUID never seen before.
    fn assertion_ok(&mut self, assertion: &str, audience: &str, now: UnixMillis) -> bool {
        if self.config.federated_token.as_deref() == Some(assertion) {
            return true;
        }
        let Some(cert) = &self.config.certificate else {
            return false;
        };
        let mut parts = assertion.splitn(3, '.');
        let (Some(h), Some(c), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let json = |part: &str| -> serde_json::Value {
            URL_SAFE_NO_PAD
                .decode(part)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default()
        };
        let (header, claims) = (json(h), json(c));
        let chain_ok = match &self.config.required_x5c {
            None => true,
            Some(chain) => header["x5c"] == serde_json::json!(chain),
        };
        let header_ok = header["alg"] == "PS256"
            && header["typ"] == "JWT"
            && header["x5t#S256"] == cert.thumbprint_sha256.as_str()
            && chain_ok;
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PSS_2048_8192_SHA256,
            &cert.public_key,
        );
        let signed = URL_SAFE_NO_PAD
            .decode(sig)
            .is_ok_and(|s| key.verify(format!("{h}.{c}").as_bytes(), &s).is_ok());
        let client = self.config.client_id.as_str();
        let jti = claims["jti"].as_str().unwrap_or("");
        let claims_ok = claims["aud"] == audience
            && claims["iss"] == client
            && claims["sub"] == client
            && claims["exp"].as_i64().is_some_and(|e| e > now.0 / 1000)
            && is_guid(jti);
        header_ok && signed && claims_ok && self.assertion_ids.insert(jti.to_string())
    }

    fn token(
        &mut self,
        path: &str,
        body: &[u8],
        now: UnixMillis,
    ) -> (StatusCode, Response<Full<Bytes>>) {
        let form = parse_form(&String::from_utf8_lossy(body));
        let get = |k: &str| {
            form.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let tenant_ok = path == format!("/{}/oauth2/v2.0/token", self.config.tenant_id);
        let client_ok = get("client_id") == Some(self.config.client_id.as_str());
        let audience = format!("{}{path}", self.own_url);
        let secret_ok = get("client_secret") == Some(self.config.client_secret.as_str())
            || (get("client_assertion_type")
                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                && get("client_assertion").is_some_and(|a| self.assertion_ok(a, &audience, now)));
        if get("grant_type") != Some("client_credentials") || get("scope") != Some(POWERBI_SCOPE) {
            let body = r#"{"error":"invalid_scope","error_description":"AADSTS70011: The provided request must include a 'scope' input parameter.","error_codes":[70011]}"#;
            return (
                StatusCode::BAD_REQUEST,
                json_response(StatusCode::BAD_REQUEST, body.into()),
            );
        }
        if !tenant_ok || !client_ok || !secret_ok {
            let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.","error_codes":[7000215]}"#;
            return (
                StatusCode::UNAUTHORIZED,
                json_response(StatusCode::UNAUTHORIZED, body.into()),
            );
        }
        let token = self.issue();
        let body = format!(
            r#"{{"token_type":"Bearer","expires_in":{},"ext_expires_in":{},"access_token":"{token}"}}"#,
            self.config.token_lifetime_secs, self.config.token_lifetime_secs
        );
        (StatusCode::OK, json_response(StatusCode::OK, body))
    }

    /// Requests to `path` in the rolling hour before `now` (each call has its own budget).
    fn requests_in_last_hour(&self, path: &str, now: UnixMillis) -> usize {
        self.log
            .iter()
            .filter(|r| r.path == path && r.at.0 > now.0 - HOUR_MS)
            .count()
    }

    /// The API's 401 when the bearer token is not one this server issued.
    fn refuse_unauthorized(
        &self,
        authorization: Option<&str>,
    ) -> Option<(StatusCode, Response<Full<Bytes>>)> {
        let bearer = authorization.and_then(|a| a.strip_prefix("Bearer "));
        if bearer.is_some_and(|t| self.tokens.iter().any(|k| k == t)) {
            return None;
        }
        let body = r#"{"error":{"code":"PowerBINotAuthorizedException","pbi.error":{"code":"PowerBINotAuthorizedException","parameters":{},"details":[],"exceptionCulprit":1}}}"#;
        Some((
            StatusCode::UNAUTHORIZED,
            json_response(StatusCode::UNAUTHORIZED, body.into()),
        ))
    }

    /// `GET admin/groups`: `$top` required (1–5000), `$skip`, `$expand` (only the collections
    /// asked for are listed, as the API does), its own hourly budget.
    fn groups(
        &mut self,
        query: &str,
        authorization: Option<&str>,
        now: UnixMillis,
    ) -> (StatusCode, Response<Full<Bytes>>) {
        if let Some(refused) = self.refuse_unauthorized(authorization) {
            return refused;
        }
        if self.requests_in_last_hour(GROUPS_PATH, now) >= self.config.inventory_budget_per_hour {
            return (StatusCode::TOO_MANY_REQUESTS, self.throttled_at(now));
        }
        let param = |name: &str| {
            query.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k == name || k == format!("%24{}", &name[1..])).then(|| v.to_string())
            })
        };
        let top = param("$top").and_then(|v| v.parse::<usize>().ok());
        let Some(top) = top.filter(|t| (1..=5000).contains(t)) else {
            let body = r#"{"error":{"code":"InvalidRequest","message":"$top is required and must be between 1 and 5000"}}"#;
            return (
                StatusCode::BAD_REQUEST,
                json_response(StatusCode::BAD_REQUEST, body.into()),
            );
        };
        let skip = param("$skip").and_then(|v| v.parse().ok()).unwrap_or(0);
        let expand = param("$expand").map_or_else(Default::default, |v| Expand::parse(&v));
        let body = self.timeline.tenant().inventory_page(skip, top, &expand);
        (StatusCode::OK, json_response(StatusCode::OK, body))
    }

    fn activity_events(
        &mut self,
        query: &str,
        authorization: Option<&str>,
        now: UnixMillis,
    ) -> (StatusCode, Response<Full<Bytes>>) {
        if let Some(refused) = self.refuse_unauthorized(authorization) {
            return refused;
        }
        if self.config.outages.iter().any(|o| o.covers(now)) {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"error":{"code":"ServiceUnavailable"}}"#.into(),
                ),
            );
        }
        let recent = self.requests_in_last_hour(EVENTS_PATH, now);
        let faults = self.config.faults;
        let so_far = self.log.iter().filter(|r| r.path == EVENTS_PATH).count();
        if recent >= self.config.budget_per_hour
            || so_far < self.config.throttle_first
            || self.rng.chance(faults.throttle)
        {
            return (StatusCode::TOO_MANY_REQUESTS, self.throttled_at(now));
        }
        if self.rng.chance(faults.server_error) {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"error":{"code":"ServiceUnavailable"}}"#.into(),
                ),
            );
        }
        let cursor = match Cursor::from_query(query, now) {
            Ok(c) => c,
            Err(message) => {
                let body = format!(
                    r#"{{"error":{{"code":"InvalidRequest","message":{}}}}}"#,
                    serde_json::Value::from(message)
                );
                return (
                    StatusCode::BAD_REQUEST,
                    json_response(StatusCode::BAD_REQUEST, body),
                );
            }
        };
        self.timeline.advance(now);
        if let Some(keep) = self.config.retention {
            self.timeline
                .forget_before(now.saturating_sub_millis(keep.as_millis() as i64));
        }
        let mut body = self.page(cursor);
        if self.rng.chance(faults.truncate) {
            body.truncate(body.len() / 2);
        }
        (StatusCode::OK, json_response(StatusCode::OK, body))
    }

    fn throttled_at(&self, now: UnixMillis) -> Response<Full<Bytes>> {
        let secs = self.config.retry_after_secs;
        let retry_in = format!(
            r#"{{"message":"You have exceeded the amount of requests allowed in the current time frame and further requests will fail. Retry in {secs} seconds."}}"#
        );
        let body = match self.config.throttle_shape {
            ThrottleShape::Header | ThrottleShape::RetryInText => retry_in,
            ThrottleShape::UntilText => {
                // Rounded up to the second, so the wait is never shorter than asked.
                let until = UnixMillis((now.0 / 1000 + 1).saturating_add(secs as i64) * 1000);
                format!(
                    r#"{{"requestId":"3c79bd34-2c34-4b72-9aca-5e2375aad1da","errorCode":"RequestBlocked","message":"Request is blocked by the upstream service until: {}"}}"#,
                    us_date_time(until)
                )
            }
        };
        let mut resp = json_response(StatusCode::TOO_MANY_REQUESTS, body);
        if self.config.throttle_shape == ThrottleShape::Header {
            resp.headers_mut().insert("retry-after", secs.into());
        }
        resp
    }

    /// The page at `cursor` and the cursor of the next one.
    fn page(&mut self, cursor: Cursor) -> String {
        let chunk_start = UnixMillis(cursor.start.0.max(cursor.hour * HOUR_MS));
        let chunk_end = UnixMillis(cursor.end.0.min((cursor.hour + 1) * HOUR_MS - 1));
        let empty = self.rng.chance(self.config.faults.empty_page);
        let visible: Vec<&[u8]> = self
            .timeline
            .visible(chunk_start, chunk_end, cursor.as_of)
            .map(|e| e.json.as_slice())
            .collect();
        let mut page: Vec<&[u8]> = if empty {
            Vec::new()
        } else {
            visible
                .iter()
                .skip(cursor.offset)
                .take(self.config.page_size)
                .copied()
                .collect()
        };
        if !page.is_empty() && self.rng.chance(self.config.faults.duplicate) {
            page.push(page[0]);
        }
        // Every page's token is new (it counts pages), so an empty page's "same place again"
        // does not look like a paging loop to the client, just as with real tokens.
        let page_after = Cursor {
            page: cursor.page + 1,
            ..cursor
        };
        let next = if empty {
            Some(page_after)
        } else if cursor.offset + self.config.page_size < visible.len() {
            Some(Cursor {
                offset: cursor.offset + self.config.page_size,
                ..page_after
            })
        } else if (cursor.hour + 1) * HOUR_MS <= cursor.end.0 {
            Some(Cursor {
                hour: cursor.hour + 1,
                offset: 0,
                ..page_after
            })
        } else {
            None
        };
        let mut out = String::from("{\"activityEventEntities\":[");
        for (i, e) in page.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&String::from_utf8_lossy(e));
        }
        match next {
            Some(next) => {
                let token = next.token();
                let (uri, token) = self.continuation(next.page, &token);
                out.push_str(&format!(
                    "],\"continuationUri\":{uri},\"continuationToken\":{token},\"lastResultSet\":false}}"
                ));
            }
            None => {
                let last = if self.rng.chance(0.5) {
                    "true"
                } else {
                    "false"
                };
                out.push_str(&format!("],\"continuationUri\":null,\"continuationToken\":null,\"lastResultSet\":{last}}}"));
            }
        }
        out
    }
}

impl State {
    /// The `continuationUri` and `continuationToken` JSON values of page `page`'s successor.
    fn continuation(&self, page: i64, token: &str) -> (String, String) {
        let path = format!("{EVENTS_PATH}?continuationToken='{token}'");
        let absolute = format!("{}{path}", self.base_url);
        let quoted = |s: &str| serde_json::Value::from(s).to_string();
        // Not a URL, not a path: an unclosed IPv6 host.
        let broken = "https://[wabi-north-europe::/v1.0/myorg/admin/activityevents";
        match self.config.continuation {
            ContinuationStyle::Absolute => (quoted(&absolute), quoted(token)),
            ContinuationStyle::Relative => (quoted(&path), quoted(token)),
            ContinuationStyle::Mixed if page % 2 == 0 => (quoted(&path), quoted(token)),
            ContinuationStyle::Mixed => (quoted(&absolute), quoted(token)),
            ContinuationStyle::BrokenUri => (quoted(broken), quoted(token)),
            ContinuationStyle::Unusable => (quoted(broken), "null".into()),
        }
    }
}

/// Where a paged read stands: the window, the hour chunk, the offset in it, and the instant
/// whose visible events the pages show (so paging sees one consistent set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    start: UnixMillis,
    end: UnixMillis,
    hour: i64,
    offset: usize,
    as_of: UnixMillis,
    /// Pages served before this one in the same read.
    page: i64,
}

impl Cursor {
    fn from_query(query: &str, now: UnixMillis) -> Result<Cursor, String> {
        let params = parse_form(query);
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let quoted = |name: &str, v: &str| -> Result<String, String> {
            v.strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .map(str::to_string)
                .ok_or_else(|| format!("{name} must be enclosed in single quotes"))
        };
        match (
            get("continuationToken"),
            get("startDateTime"),
            get("endDateTime"),
        ) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                Err("Specify either continuationToken or startDateTime and endDateTime".into())
            }
            (Some(token), None, None) => Cursor::from_token(&quoted("continuationToken", token)?),
            (None, Some(start), Some(end)) => {
                let parse = |name: &str, v: &str| {
                    parse_creation_time(&quoted(name, v)?)
                        .ok_or_else(|| format!("{name} is not a valid date"))
                };
                let (start, end) = (parse("startDateTime", start)?, parse("endDateTime", end)?);
                if start.utc_day() != end.utc_day() {
                    return Err("startDateTime and endDateTime must be in the same UTC day".into());
                }
                if end < start {
                    return Err("endDateTime must not be before startDateTime".into());
                }
                if start.0 < now.0 - 28 * 24 * HOUR_MS {
                    return Err("startDateTime must be within the last 28 days".into());
                }
                Ok(Cursor {
                    start,
                    end,
                    hour: start.0.div_euclid(HOUR_MS),
                    offset: 0,
                    as_of: now,
                    page: 0,
                })
            }
            _ => Err("startDateTime and endDateTime are required".into()),
        }
    }

    /// Base64 of `,start,end,hour,offset,as_of,page,` with `+`, `/`, `=` percent-encoded, like the
    /// docs' sample token.
    fn token(&self) -> String {
        let raw = format!(
            ",{},{},{},{},{},{},",
            self.start.0, self.end.0, self.hour, self.offset, self.as_of.0, self.page
        );
        STANDARD
            .encode(raw)
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    }

    fn from_token(token: &str) -> Result<Cursor, String> {
        let bad = || "continuationToken is not valid".to_string();
        let raw = STANDARD.decode(token).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let n: Vec<i64> = raw
            .trim_matches(',')
            .split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let [start, end, hour, offset, as_of, page] = n[..] else {
            return Err(bad());
        };
        Ok(Cursor {
            start: UnixMillis(start),
            end: UnixMillis(end),
            hour,
            offset: offset as usize,
            as_of: UnixMillis(as_of),
            page,
        })
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `M/D/YYYY h:mm:ss AM`, the .NET en-US format of Fabric's "blocked until" messages.
fn us_date_time(t: UnixMillis) -> String {
    let iso = t.to_iso_millis(); // YYYY-MM-DDTHH:MM:SS.mmmZ
    let num = |r: std::ops::Range<usize>| iso.get(r).and_then(|s| s.parse::<u32>().ok());
    let (y, mo, d, h, mi, s) = (
        num(0..4).unwrap_or(0),
        num(5..7).unwrap_or(0),
        num(8..10).unwrap_or(0),
        num(11..13).unwrap_or(0),
        num(14..16).unwrap_or(0),
        num(17..19).unwrap_or(0),
    );
    let (h12, half) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    format!("{mo}/{d}/{y} {h12}:{mi:02}:{s:02} {half}")
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        "content-type",
        "application/json; charset=utf-8"
            .parse()
            .expect("static header"),
    );
    resp
}

/// `k=v&k=v` with percent-decoding (`+` as space, as forms encode it).
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Drops the requests logged before `cutoff` (the log is in arrival order).
fn forget_before(log: &mut Vec<LoggedRequest>, cutoff: UnixMillis) {
    let old = log.partition_point(|r| r.at < cutoff);
    log.drain(..old);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_with_a_retention_forgets_old_requests_and_tokens() {
        let request = |at: i64| LoggedRequest {
            at: UnixMillis(at),
            path: EVENTS_PATH.into(),
            query: String::new(),
            status: 200,
            authorized: true,
        };
        let now = 10 * HOUR_MS;
        let mut state = State {
            config: ApiConfig::default(),
            timeline: Timeline::new(
                crate::simulator::Tenant::new(crate::simulator::TenantSpec::default()),
                1,
                0.0,
                crate::simulator::timeline::Lag::default(),
                UnixMillis(now),
            ),
            rng: Rng::new(1),
            tokens: (0..300).map(|i| format!("t{i}")).collect(),
            assertion_ids: Default::default(),
            log: (0..10).map(|h| request(h * HOUR_MS + 1)).collect(),
            base_url: String::new(),
            own_url: String::new(),
            clock: SharedClock::system(),
        };
        // A retention under an hour still keeps the budget's hour.
        state.forget_requests(UnixMillis(now), std::time::Duration::from_secs(60));
        assert_eq!(state.log, vec![request(9 * HOUR_MS + 1)]);
        assert_eq!(state.tokens.len(), KEPT_TOKENS);
        assert_eq!(state.tokens.last().map(String::as_str), Some("t299"));
        assert_eq!(state.requests_in_last_hour(EVENTS_PATH, UnixMillis(now)), 1);
    }

    #[test]
    fn tokens_round_trip_and_look_like_the_docs_sample() {
        let c = Cursor {
            start: UnixMillis(1),
            end: UnixMillis(2),
            hour: 3,
            offset: 4,
            as_of: UnixMillis(5),
            page: 6,
        };
        let token = c.token();
        assert!(token.ends_with("%3D") || !token.contains('='), "{token}");
        // Decoded once, as a server decodes the query string, the token is valid…
        assert_eq!(Cursor::from_token(&percent_decode(&token)), Ok(c));
        // …encoded twice by a client, it is not.
        let twice = percent_decode(&token.replace('%', "%25"));
        assert!(twice.contains("%3D") && Cursor::from_token(&twice).is_err());
        assert_eq!(
            STANDARD.encode(b",2020-08-13T07:55:00Z,2020-08-13T09:00:00Z,1,,"),
            "LDIwMjAtMDgtMTNUMDc6NTU6MDBaLDIwMjAtMDgtMTNUMDk6MDA6MDBaLDEsLA=="
        );
    }

    #[test]
    fn windows_are_validated_like_the_api() {
        let now = UnixMillis(1_795_172_700_000);
        let err = |q: &str| Cursor::from_query(q, now).unwrap_err();
        assert!(
            err("startDateTime=2026-11-20T00:00:00Z&endDateTime='2026-11-20T01:00:00Z'")
                .contains("single quotes")
        );
        assert!(
            err("startDateTime='2026-11-19T23:00:00Z'&endDateTime='2026-11-20T01:00:00Z'")
                .contains("same UTC day")
        );
        assert!(
            err("startDateTime='2026-10-01T00:00:00Z'&endDateTime='2026-10-01T01:00:00Z'")
                .contains("28 days")
        );
        assert!(
            err("continuationToken='x'&startDateTime='2026-11-20T00:00:00Z'").contains("either")
        );
        let c = Cursor::from_query(
            "startDateTime='2026-11-20T10:00:00.000Z'&endDateTime='2026-11-20T10:59:59.999Z'",
            now,
        )
        .unwrap();
        assert_eq!((c.hour, c.offset, c.as_of), (c.start.0 / HOUR_MS, 0, now));
    }
}
