//! The Activity Events client: reads one UTC hour to its end, page by page.
//!
//! Invariants:
//! - every request, retries included, is taken from the [`RequestBudget`] first;
//! - the bearer token goes only to the configured API host and the allowed Power BI cluster
//!   hosts; a `continuationUri` elsewhere is refused and counted; plain `http` only on loopback;
//! - a page is handed on only once it parses to its end (a truncated body is retried, never
//!   half-applied); the event dedup makes a re-read page harmless;
//! - a 429 blocks the budget for its wait: the `Retry-After` header, else the body's "Retry in
//!   N seconds" or `until: <time>`, else 60 s, never more than [`MAX_RETRY_AFTER`] (a longer
//!   one is clamped, logged and counted); a long wait ends the read (the exporter keeps serving),
//!   a short one is waited out;
//! - a page cap and a repeated-token guard end a broken paging loop with an error, not a hang;
//! - the next page is the `continuationUri` (a relative one resolved against the page's own
//!   URL, RFC 3986 §5.1.3), else the `continuationToken`; a page that has neither in a usable
//!   form while naming one ends the read with an error, never as "last page".

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde::de::IgnoredAny;

use super::budget::{RequestBudget, MAX_RETRY_AFTER};
use super::window::{Purpose, UtcHour};
use crate::azure::auth::{AuthError, TokenCache};
use crate::azure::http::{read_capped, without_url, BodyError};
use crate::decode::time::parse_creation_time;
use crate::decode::UnixMillis;
use crate::simulator::clock::SharedClock;

const EVENTS_PATH: &str = "/v1.0/myorg/admin/activityevents";

/// Largest API response accepted by default: pages of 10,000 events are ~20 MB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 << 20;

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` up to this long is waited out inside the read.
    pub max_inline_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            max_inline_wait: Duration::from_secs(60),
        }
    }
}

/// Where the client may send its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPolicy {
    /// The configured API base URL, e.g. `https://api.powerbi.com`.
    pub api_url: String,
    /// Host suffixes of the cloud's Power BI clusters, e.g. `.analysis.windows.net`.
    pub cluster_suffixes: Vec<String>,
}

impl HostPolicy {
    /// Whether `url` may receive the bearer token: the API's own origin (scheme, host and
    /// port), or an https host under one of the cluster suffixes. Plain http only on loopback.
    pub fn allows(&self, url: &reqwest::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1");
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return false;
        }
        let same_origin =
            reqwest::Url::parse(&self.api_url).is_ok_and(|api| api.origin() == url.origin());
        let cluster = url.scheme() == "https"
            && self
                .cluster_suffixes
                .iter()
                .any(|s| host.ends_with(s.as_str()));
        same_origin || cluster
    }
}

/// The labels of one series of `powerbi_api_requests_total`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct RequestKey {
    pub purpose: Purpose,
    /// The HTTP status, or `"error"` when no whole response came.
    pub code: String,
}

/// What the client has seen, cumulative, for the self metrics.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ApiStats {
    /// Responses by purpose and HTTP status.
    #[serde(
        default,
        rename = "requests_by_purpose",
        with = "super::window::pairs",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub requests: BTreeMap<RequestKey, u64>,
    /// Responses by HTTP status that a release before the purposes counted (a state file
    /// saved then); shown as `purpose="unknown"`, never added to.
    #[serde(
        default,
        rename = "requests",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub before_purposes: BTreeMap<String, u64>,
    pub throttled: u64,
    pub foreign_continuations: u64,
    /// Pages whose continuation could not be used (neither URI nor token).
    #[serde(default)]
    pub bad_continuations: u64,
    /// 429s that asked for a wait longer than [`MAX_RETRY_AFTER`].
    #[serde(default)]
    pub retry_after_clamped: u64,
    pub auth_errors: BTreeMap<String, u64>,
}

impl ApiStats {
    /// Counts one request sent for `purpose` that ended with `code`.
    pub fn count(&mut self, purpose: Purpose, code: impl Into<String>) {
        let key = RequestKey {
            purpose,
            code: code.into(),
        };
        *self.requests.entry(key).or_default() += 1;
    }
}

/// Why an hour could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("request budget used up until {}", .until.to_api_string())]
    Budget { until: UnixMillis },
    #[error("throttled by the API (429) until {}", .until.to_api_string())]
    Throttled { until: UnixMillis },
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthError),
    #[error("the API refused the token (401 {0}): the service principal must be in the security group allowed to use read-only admin APIs (Fabric admin portal), and the app must not have admin-consented Power BI permissions")]
    NotAuthorized(String),
    #[error("the API rejected the request (400): {0}")]
    BadRequest(String),
    #[error(
        "refused to follow a continuationUri to {0}: not the API host or a Power BI cluster host"
    )]
    ForeignContinuation(String),
    #[error(
        "the page's continuation could not be used ({0}); the hour is read again at the next poll"
    )]
    BadContinuation(String),
    #[error("a response body was larger than {limit} bytes (--powerbi.max-response-bytes); the hour is read again at the next poll")]
    TooLarge { limit: usize },
    #[error("paging did not end: {0}")]
    Loop(&'static str),
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: String },
}

impl ReadError {
    /// Whether the rest of a poll should wait: the budget or the API said to, or the
    /// credential is refused (every other hour would fail the same way).
    pub fn stops_the_poll(&self) -> bool {
        matches!(
            self,
            ReadError::Budget { .. }
                | ReadError::Throttled { .. }
                | ReadError::Auth(_)
                | ReadError::NotAuthorized(_)
        )
    }
}

/// The parts of a page the client needs; the events are decoded later, by the pipeline.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageMeta {
    activity_event_entities: EventCount,
    continuation_uri: Option<String>,
    continuation_token: Option<String>,
}

/// The number of entries of `activityEventEntities`, each skipped unread (for progress and
/// the status page; the events are decoded later).
struct EventCount(usize);

impl<'de> serde::Deserialize<'de> for EventCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Counter;
        impl<'de> serde::de::Visitor<'de> for Counter {
            type Value = EventCount;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of activity events")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<EventCount, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(EventCount(n))
            }
            // Anything else counts no event, as before the count existed (the decoder
            // judges the page).
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<EventCount, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(EventCount(0))
            }
            fn visit_unit<E>(self) -> Result<EventCount, E> {
                Ok(EventCount(0))
            }
            fn visit_none<E>(self) -> Result<EventCount, E> {
                Ok(EventCount(0))
            }
            fn visit_bool<E>(self, _: bool) -> Result<EventCount, E> {
                Ok(EventCount(0))
            }
            fn visit_i64<E>(self, _: i64) -> Result<EventCount, E> {
                Ok(EventCount(0))
            }
            fn visit_u64<E>(self, _: u64) -> Result<EventCount, E> {
                Ok(EventCount(0))
            }
            fn visit_f64<E>(self, _: f64) -> Result<EventCount, E> {
                Ok(EventCount(0))
            }
            fn visit_str<E>(self, _: &str) -> Result<EventCount, E> {
                Ok(EventCount(0))
            }
        }
        d.deserialize_any(Counter)
    }
}

/// One attempt's outcome.
enum Attempt {
    Page(Bytes, PageMeta),
    Retry(String),
    WaitThenRetry(UnixMillis),
}

/// What sending one request gave.
enum Sent {
    /// A response whose body arrived whole.
    Answered(Answer),
    /// No usable response (connection, timeout, a body cut short): worth a retry.
    Failed(String),
}

/// A response read whole.
struct Answer {
    status: u16,
    /// The `Retry-After` header, as sent.
    retry_after: Option<String>,
    body: Bytes,
}

pub struct ApiClient {
    pub http: reqwest::Client,
    pub hosts: HostPolicy,
    pub tokens: TokenCache,
    pub retry: RetryPolicy,
    pub max_pages_per_hour: usize,
    /// A response body larger than this fails the read (see [`read_capped`]).
    pub max_response_bytes: usize,
    pub stats: ApiStats,
    /// Entries of `activityEventEntities` on the pages read so far (duplicates included).
    pub events_read: u64,
    /// Where "now" comes from and how waits pass (a test runs a simulated one fast).
    pub clock: SharedClock,
    jitter: crate::rng::Rng,
}

impl ApiClient {
    pub fn new(
        http: reqwest::Client,
        hosts: HostPolicy,
        tokens: TokenCache,
        retry: RetryPolicy,
    ) -> Self {
        let seed = UnixMillis::now().0 as u64;
        ApiClient {
            http,
            hosts,
            tokens,
            retry,
            max_pages_per_hour: 10_000,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            stats: ApiStats::default(),
            events_read: 0,
            clock: SharedClock::system(),
            jitter: crate::rng::Rng::new(seed),
        }
    }

    /// Reads `hour` to its end, handing each page to `on_page` as soon as it parsed. Returns
    /// the number of pages.
    pub async fn read_hour<F, Fut>(
        &mut self,
        hour: UtcHour,
        purpose: Purpose,
        budget: &mut RequestBudget,
        mut on_page: F,
    ) -> Result<usize, ReadError>
    where
        F: FnMut(Bytes) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let first = format!(
            "{}{EVENTS_PATH}?{}",
            self.hosts.api_url.trim_end_matches('/'),
            hour.query()
        );
        let mut url = reqwest::Url::parse(&first)
            .map_err(|_| ReadError::BadRequest(format!("invalid API URL {first}")))?;
        let mut pages = 0;
        let mut previous: Option<String> = None;
        loop {
            let (body, meta) = self.fetch(&url, purpose, budget).await?;
            self.events_read += meta.activity_event_entities.0 as u64;
            on_page(body).await;
            pages += 1;
            let next = match next_url(&url, &self.hosts.api_url, meta) {
                Ok(Some(next)) => next,
                Ok(None) => return Ok(pages),
                Err(why) => {
                    self.stats.bad_continuations += 1;
                    return Err(ReadError::BadContinuation(why));
                }
            };
            if pages >= self.max_pages_per_hour {
                return Err(ReadError::Loop("page cap reached"));
            }
            if previous.as_deref() == Some(next.as_str()) {
                return Err(ReadError::Loop("the same continuation was returned twice"));
            }
            if !self.hosts.allows(&next) {
                self.stats.foreign_continuations += 1;
                return Err(ReadError::ForeignContinuation(
                    next.host_str().unwrap_or("?").to_string(),
                ));
            }
            previous = Some(next.to_string());
            url = next;
        }
    }

    /// One page, with retries.
    async fn fetch(
        &mut self,
        url: &reqwest::Url,
        purpose: Purpose,
        budget: &mut RequestBudget,
    ) -> Result<(Bytes, PageMeta), ReadError> {
        let mut last = String::new();
        let mut retried_401 = false;
        for attempt in 0..self.retry.attempts {
            match self.attempt(url, purpose, budget, &mut retried_401).await? {
                Attempt::Page(body, meta) => return Ok((body, meta)),
                Attempt::WaitThenRetry(until) => self.clock.sleep_until(until).await,
                Attempt::Retry(why) => {
                    last = why;
                    if attempt + 1 < self.retry.attempts {
                        let backoff = self.backoff(attempt);
                        self.clock.sleep(backoff).await;
                    }
                }
            }
        }
        Err(ReadError::GaveUp {
            attempts: self.retry.attempts,
            last,
        })
    }

    /// Capped exponential backoff with full jitter.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let cap = self
            .retry
            .first_delay
            .saturating_mul(1 << attempt.min(16))
            .min(self.retry.max_delay);
        let ms = cap.as_millis() as u64;
        Duration::from_millis(ms / 2 + self.jitter.below(ms / 2 + 1))
    }

    /// One request for a page: what to do next, judged from the response.
    async fn attempt(
        &mut self,
        url: &reqwest::Url,
        purpose: Purpose,
        budget: &mut RequestBudget,
        retried_401: &mut bool,
    ) -> Result<Attempt, ReadError> {
        let now = self.clock.now();
        budget
            .acquire(now)
            .map_err(|until| ReadError::Budget { until })?;
        match self.send(url, purpose, now).await? {
            Sent::Failed(why) => Ok(Attempt::Retry(why)),
            Sent::Answered(response) => self.judge(response, budget, retried_401),
        }
    }

    /// Sends one authorised GET and reads its body whole (up to the response size limit).
    async fn send(
        &mut self,
        url: &reqwest::Url,
        purpose: Purpose,
        now: UnixMillis,
    ) -> Result<Sent, ReadError> {
        let token = match self.tokens.token(&self.http, now).await {
            Ok(t) => t,
            Err(e) => {
                *self
                    .stats
                    .auth_errors
                    .entry(e.reason().to_string())
                    .or_default() += 1;
                return Err(e.into());
            }
        };
        let sent = self
            .http
            .get(url.clone())
            .bearer_auth(token.token.expose())
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                self.stats.count(purpose, "error");
                return Ok(Sent::Failed(without_url(&e)));
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // A response counts by its status only once its body arrived whole.
        let body = match read_capped(resp, self.max_response_bytes).await {
            Ok(b) => b,
            Err(e) => {
                self.stats.count(purpose, "error");
                return match e {
                    BodyError::TooLarge { limit } => Err(ReadError::TooLarge { limit }),
                    BodyError::Read(why) => Ok(Sent::Failed(why)),
                };
            }
        };
        self.stats.count(purpose, status.to_string());
        Ok(Sent::Answered(Answer {
            status,
            retry_after,
            body,
        }))
    }

    /// What a whole response means: a page, a retry (now or after a wait), or a failure.
    fn judge(
        &mut self,
        answer: Answer,
        budget: &mut RequestBudget,
        retried_401: &mut bool,
    ) -> Result<Attempt, ReadError> {
        let Answer {
            status,
            retry_after,
            body,
        } = answer;
        match status {
            200 => match serde_json::from_slice::<PageMeta>(&body) {
                Ok(meta) => Ok(Attempt::Page(body, meta)),
                Err(e) => Ok(Attempt::Retry(format!(
                    "the page is not valid JSON to its end ({e})"
                ))),
            },
            429 => self.throttled(retry_after.as_deref(), &body, budget),
            401 if !*retried_401 => {
                *retried_401 = true;
                self.tokens.invalidate();
                Ok(Attempt::Retry(
                    "401: token refused, requesting a new one".into(),
                ))
            }
            401 | 403 => Err(ReadError::NotAuthorized(error_code(&body))),
            400 => Err(ReadError::BadRequest(error_code(&body))),
            408 | 500..=599 => Ok(Attempt::Retry(format!("HTTP {status}"))),
            _ => Err(ReadError::BadRequest(format!(
                "HTTP {status}: {}",
                error_code(&body)
            ))),
        }
    }

    /// A 429: the whole client waits as long as it was asked (clamped), inline when that is
    /// short, else the poll ends and resumes after the wait.
    fn throttled(
        &mut self,
        retry_after: Option<&str>,
        body: &[u8],
        budget: &mut RequestBudget,
    ) -> Result<Attempt, ReadError> {
        self.stats.throttled += 1;
        let now = self.clock.now();
        let asked = throttle_wait(retry_after, body, now);
        if asked.clamped {
            self.stats.retry_after_clamped += 1;
            tracing::warn!(
                max_seconds = MAX_RETRY_AFTER.as_secs(),
                retry_after = retry_after.unwrap_or("(from the body)"),
                "A 429 asked for a longer wait than the API ever needs; Retry-After is clamped to the maximum."
            );
        }
        let until = UnixMillis(now.0.saturating_add(asked.wait.as_millis() as i64));
        budget.block_until(until);
        if asked.wait <= self.retry.max_inline_wait {
            Ok(Attempt::WaitThenRetry(until))
        } else {
            Err(ReadError::Throttled { until })
        }
    }
}

/// The next page's URL, `None` after the last page: the `continuationUri` (it already quotes and
/// encodes the token), resolved against `page`, the URL that returned it, when relative; else one
/// built from the `continuationToken` without encoding it again. `Err` says why a page that
/// names a continuation gives no usable URL: that hour is not read to its end.
fn next_url(
    page: &reqwest::Url,
    api_url: &str,
    meta: PageMeta,
) -> Result<Option<reqwest::Url>, String> {
    let uri = meta.continuation_uri.filter(|u| !u.trim().is_empty());
    let token = meta.continuation_token.filter(|t| !t.trim().is_empty());
    let unusable_uri = match uri.as_deref().map(|u| page.join(u.trim())) {
        Some(Ok(url)) if matches!(url.scheme(), "https" | "http") => return Ok(Some(url)),
        Some(Ok(url)) => Some(format!("continuationUri has scheme {:?}", url.scheme())),
        Some(Err(e)) => Some(format!("continuationUri is not a URL: {e}")),
        None => None,
    };
    match (token, unusable_uri) {
        (Some(token), unusable) => {
            let base = api_url.trim_end_matches('/');
            let built = format!("{base}{EVENTS_PATH}?continuationToken='{token}'");
            reqwest::Url::parse(&built).map(Some).map_err(|e| {
                let uri = unusable.map(|u| format!("{u}; ")).unwrap_or_default();
                format!("{uri}no URL can be built from continuationToken: {e}")
            })
        }
        (None, Some(unusable)) => Err(format!("{unusable}, and there is no continuationToken")),
        (None, None) => Ok(None),
    }
}

/// The wait a 429 asks for when it says nothing usable.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long a 429 asks to wait, at most [`MAX_RETRY_AFTER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ThrottleWait {
    wait: Duration,
    /// It asked for more than [`MAX_RETRY_AFTER`].
    clamped: bool,
}

/// The wait of a 429: the `Retry-After` header (seconds), else the body's text, else
/// [`DEFAULT_RETRY_AFTER`]; clamped to [`MAX_RETRY_AFTER`].
fn throttle_wait(header: Option<&str>, body: &[u8], now: UnixMillis) -> ThrottleWait {
    let asked = header
        .and_then(header_seconds)
        .or_else(|| body_wait(&String::from_utf8_lossy(body), now))
        .unwrap_or(DEFAULT_RETRY_AFTER);
    ThrottleWait {
        wait: asked.min(MAX_RETRY_AFTER),
        clamped: asked > MAX_RETRY_AFTER,
    }
}

/// `Retry-After` as delta-seconds; digits too many for a `u64` are still a (very long) wait.
fn header_seconds(v: &str) -> Option<Duration> {
    let v = v.trim();
    let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| Duration::from_secs(v.parse().unwrap_or(u64::MAX)))
}

/// The wait written in a 429's body: "Retry in N seconds." (Power BI, reference §3) or "…
/// blocked by the upstream service until: 2/6/2024 12:58:37 PM" (Fabric, reference §16; UTC,
/// .NET en-US format; ISO 8601 accepted too). A time in the past is no wait.
fn body_wait(text: &str, now: UnixMillis) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    if let Some(at) = lower.find("retry in ") {
        let digits: String = lower[at + 9..]
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !digits.is_empty() {
            return Some(Duration::from_secs(digits.parse().unwrap_or(u64::MAX)));
        }
    }
    let at = lower.find("until:")?;
    let rest = text.get(at + 6..)?;
    let rest = rest.split(['"', '(']).next()?.trim();
    let until = parse_creation_time(rest).or_else(|| parse_us_date_time(rest))?;
    let ms = until.0.saturating_sub(now.0).max(0);
    Some(Duration::from_millis(ms as u64))
}

/// `M/D/YYYY h:mm:ss AM|PM` (UTC), as .NET writes en-US times.
fn parse_us_date_time(s: &str) -> Option<UnixMillis> {
    let mut parts = s.split_whitespace();
    let (date, time, half) = (parts.next()?, parts.next()?, parts.next());
    let mut d = date.split('/').map(|n| n.parse::<u32>().ok());
    let (month, day, year) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|n| n.parse::<u32>().ok());
    let (hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    let hour = match half.map(str::to_ascii_uppercase).as_deref() {
        Some("AM") if (1..=12).contains(&hour) => hour % 12,
        Some("PM") if (1..=12).contains(&hour) => hour % 12 + 12,
        None if hour < 24 => hour,
        _ => return None,
    };
    parse_creation_time(&format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z"
    ))
}

/// The error code (or message) of an API error body, for messages; never the whole body.
fn error_code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = v["error"]["code"]
        .as_str()
        .or(v["error"]["message"].as_str())
        .or(v["message"].as_str());
    let text = match (v["error"]["code"].as_str(), v["error"]["message"].as_str()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => text.unwrap_or("no error code").to_string(),
    };
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_only_to_allowed_hosts() {
        let hosts = HostPolicy {
            api_url: "https://api.powerbi.com".into(),
            cluster_suffixes: vec![".analysis.windows.net".into()],
        };
        let ok = |u: &str| hosts.allows(&reqwest::Url::parse(u).unwrap());
        assert!(ok(
            "https://api.powerbi.com/v1.0/myorg/admin/activityevents?continuationToken='a'"
        ));
        assert!(ok(
            "https://wabi-north-europe-d-primary-redirect.analysis.windows.net/v1.0/x"
        ));
        assert!(!ok("https://evil.example/v1.0/x"));
        assert!(!ok("https://api.powerbi.com.evil.example/x"));
        assert!(
            !ok("http://api.powerbi.com/x"),
            "plain http only on loopback"
        );
        let local = HostPolicy {
            api_url: "http://127.0.0.1:8080".into(),
            cluster_suffixes: vec![],
        };
        assert!(local.allows(&reqwest::Url::parse("http://127.0.0.1:8080/x").unwrap()));
        assert!(!local.allows(&reqwest::Url::parse("http://127.0.0.2:8080/x").unwrap()));
        assert!(
            !local.allows(&reqwest::Url::parse("http://127.0.0.1:8081/x").unwrap()),
            "another port is another server"
        );
    }

    #[test]
    fn error_bodies_become_short_messages() {
        assert_eq!(
            error_code(br#"{"error":{"code":"InvalidRequest","message":"same UTC day"}}"#),
            "InvalidRequest: same UTC day"
        );
        assert_eq!(
            error_code(br#"{"error":{"code":"PowerBINotAuthorizedException","pbi.error":{}}}"#),
            "PowerBINotAuthorizedException"
        );
        assert_eq!(error_code(b"<html>"), "no error code");
    }
}

#[cfg(test)]
mod continuation_tests {
    use super::*;

    const API: &str = "https://api.powerbi.com";

    fn meta(uri: Option<&str>, token: Option<&str>) -> PageMeta {
        let v = serde_json::json!({
            "activityEventEntities": [], "continuationUri": uri, "continuationToken": token
        });
        serde_json::from_value(v).unwrap()
    }

    fn next(page: &str, uri: Option<&str>, token: Option<&str>) -> Result<Option<String>, String> {
        let page = reqwest::Url::parse(page).unwrap();
        next_url(&page, API, meta(uri, token)).map(|u| u.map(|u| u.to_string()))
    }

    const FIRST: &str = "https://api.powerbi.com/v1.0/myorg/admin/activityevents?startDateTime='2026-11-20T09:00:00.000Z'&endDateTime='2026-11-20T09:59:59.999Z'";

    #[test]
    fn a_relative_continuation_uri_is_resolved_against_the_page_that_sent_it() {
        assert_eq!(
            next(
                FIRST,
                Some("/v1.0/myorg/admin/activityevents?continuationToken='LDIw%3D'"),
                None
            ),
            Ok(Some(
                "https://api.powerbi.com/v1.0/myorg/admin/activityevents?continuationToken=%27LDIw%3D%27".into()
            ))
        );
        // A query-only reference keeps the page's path (RFC 3986 §5.2.2).
        assert_eq!(
            next(FIRST, Some("?continuationToken='a'"), None),
            Ok(Some(
                "https://api.powerbi.com/v1.0/myorg/admin/activityevents?continuationToken=%27a%27"
                    .into()
            ))
        );
        // After a redirect to a cluster, "/…" stays on that cluster.
        assert_eq!(
            next(
                "https://wabi-north-europe-d-primary-redirect.analysis.windows.net/v1.0/myorg/admin/activityevents?continuationToken='a'",
                Some("/v1.0/myorg/admin/activityevents?continuationToken='b'"),
                Some("b")
            ),
            Ok(Some("https://wabi-north-europe-d-primary-redirect.analysis.windows.net/v1.0/myorg/admin/activityevents?continuationToken=%27b%27".into()))
        );
    }

    #[test]
    fn an_unusable_uri_falls_back_to_the_token_and_both_unusable_is_an_error() {
        let broken = "https://[wabi-north-europe::/v1.0/myorg/admin/activityevents";
        assert_eq!(
            next(FIRST, Some(broken), Some("LDIw%3D")),
            Ok(Some(
                "https://api.powerbi.com/v1.0/myorg/admin/activityevents?continuationToken=%27LDIw%3D%27".into()
            ))
        );
        let err = next(FIRST, Some(broken), None).unwrap_err();
        assert!(
            err.contains("continuationUri is not a URL") && err.contains("no continuationToken"),
            "{err}"
        );
        let err = next(FIRST, Some("mailto:x@example.com"), None).unwrap_err();
        assert!(err.contains("scheme \"mailto\""), "{err}");
        // Null, absent or empty both: the last page (reference §2, docs' final page).
        assert_eq!(next(FIRST, None, None), Ok(None));
        assert_eq!(next(FIRST, Some(""), Some("")), Ok(None));
    }

    #[test]
    fn microsofts_example_with_a_bad_percent_escape_is_sent_as_given() {
        // Microsoft's "Get the next set of audit activity events" example (PowerBI-CSharp
        // sdk/swaggers/swagger.json @ 4ad33dd): its URI carries `%$4Z`, not a valid escape.
        let uri = "https://api.powerbi.com/v1.0/myorg/admin/activityevents?continuationToken='%2BRID%$4Z244SAKlHY7YQAAAAAAAAAA%3D%3D%23RT%3A1%23TRC%3A5%23FPC%3AARAAAAAAAAAAFwAAAAAAAAA%3D'";
        assert_eq!(
            next(FIRST, Some(uri), None),
            Ok(Some(
                "https://api.powerbi.com/v1.0/myorg/admin/activityevents?continuationToken=%27%2BRID%$4Z244SAKlHY7YQAAAAAAAAAA%3D%3D%23RT%3A1%23TRC%3A5%23FPC%3AARAAAAAAAAAAFwAAAAAAAAA%3D%27".into()
            ))
        );
    }
}

#[cfg(test)]
mod throttle_tests {
    use super::*;

    const NOW: UnixMillis = UnixMillis(1_707_224_000_000); // 2024-02-06T12:53:20Z

    fn wait(header: Option<&str>, body: &str) -> (u64, bool) {
        let w = throttle_wait(header, body.as_bytes(), NOW);
        (w.wait.as_secs(), w.clamped)
    }

    #[test]
    fn retry_after_is_clamped_to_an_hour() {
        assert_eq!(wait(Some("3392"), ""), (3392, false));
        assert_eq!(wait(Some("3600"), ""), (3600, false));
        assert_eq!(wait(Some("3601"), ""), (3600, true));
        assert_eq!(wait(Some("99999999999"), ""), (3600, true));
        // More digits than a u64 holds: still a wait, clamped, no overflow.
        assert_eq!(wait(Some("184467440737095516160"), ""), (3600, true));
        // Not a number (an HTTP date, garbage): the body, else 60 s.
        assert_eq!(wait(Some("soon"), ""), (60, false));
    }

    #[test]
    fn a_429_without_retry_after_reads_the_wait_from_its_body() {
        // The captured admin 429 body (reference §3, pbimonitor issue 58).
        let power_bi = r#"{"message":"You have exceeded the amount of requests allowed in the current time frame and further requests will fail. Retry in 3392 seconds."}"#;
        assert_eq!(wait(None, power_bi), (3392, false));
        // The header wins when both are there.
        assert_eq!(wait(Some("10"), power_bi), (10, false));
        // Fabric's RequestBlocked body (microsoft/fabric-migration issue 14): 12:58:37 is
        // 317 s after NOW.
        let fabric = r#"{"requestId":"3c79bd34-2c34-4b72-9aca-5e2375aad1da","errorCode":"RequestBlocked","message":"Request is blocked by the upstream service until: 2/6/2024 12:58:37 PM"}"#;
        assert_eq!(wait(None, fabric), (317, false));
        let utc = "Request is blocked by the upstream service until: 2/6/2024 12:58:37 PM (UTC)";
        assert_eq!(wait(None, utc), (317, false));
        let iso = "blocked until: 2024-02-06T13:53:20Z";
        assert_eq!(wait(None, iso), (3600, false));
        let midnight = "blocked until: 2/7/2024 12:00:00 AM";
        // 11 h 06 min 40 s away: clamped.
        assert_eq!(wait(None, midnight), (3600, true));
        assert_eq!(
            wait(None, "blocked until: 2/6/2024 11:00:00 AM"),
            (0, false)
        );
        assert_eq!(
            wait(None, "Retry in 99999999999999999999999 seconds."),
            (3600, true)
        );
        assert_eq!(wait(None, "slow down"), (60, false));
        assert_eq!(wait(None, "until: 13/45/2024 1:00:00 PM"), (60, false));
    }
}
