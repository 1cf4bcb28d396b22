//! The inventory reader (`--inventory.enabled`): every workspace and its reports from
//! `GET admin/groups?$top=N&$skip=…&$expand=reports,datasets,dashboards,dataflows`, refreshed
//! rarely.
//!
//! Invariants:
//! - it has its own request budget (the API allows "50 requests per hour or 15 requests per
//!   minute, per tenant" for this call — GetGroupsAsAdmin, Limitations), and never takes from
//!   the activity log's; past 15 requests in a minute it waits for the minute to roll over;
//! - a page is the last when it lists fewer than `$top` workspaces, counting deleted and
//!   removing ones (they are dropped after the count);
//! - `$top` is `--inventory.page-size` (default 2000, not the API's 5000: "this call will
//!   also time out after 30 seconds", and a page of 5000 workspaces with their reports is
//!   the one that risks it);
//! - every request has its own timeout (the API gives up after 30 s anyway);
//! - a failure (429, timeout, error, the budget) is counted by reason and retried later — after
//!   the `Retry-After` of a 429, else after a backoff — and never stops activity polling; the
//!   retry goes on from the page that failed (within one refresh period), so a tenant with
//!   more pages than the hourly budget is read over several hours instead of never;
//! - an inventory is handed on only when every page was read.

use std::time::Duration;

use super::budget::RequestBudget;
use super::client::ApiClient;
use super::window::Purpose;
use crate::azure::http::{read_capped, retry_after_secs, without_url};
use crate::decode::inventory::{parse_groups_page, InventoryWorkspace};
use crate::decode::UnixMillis;
use crate::source::InventoryStatus;

/// Settings of the inventory reader.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryConfig {
    /// How often the inventory is read again.
    pub refresh: Duration,
    /// Requests per rolling hour (the API's limit for the call is 50 for the whole tenant).
    pub max_requests_per_hour: usize,
    /// Time allowed for one page.
    pub timeout: Duration,
    /// `$top` of each request (the API allows 1–5000).
    pub page_size: usize,
}

/// Largest `$top` the API takes.
pub const MAX_PAGE_SIZE: usize = 5000;

/// Requests to admin/groups allowed in any minute, for the whole tenant.
pub const MAX_REQUESTS_PER_MINUTE: usize = 15;

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            refresh: Duration::from_secs(24 * 3600),
            max_requests_per_hour: 20,
            timeout: Duration::from_secs(30),
            page_size: 2000,
        }
    }
}

const GROUPS_PATH: &str = "/v1.0/myorg/admin/groups";
/// Wait before reading again after a failure that gave no `Retry-After`.
const FAILURE_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// Why an inventory read failed; `reason` is the label of `powerbi_inventory_errors_total`.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("throttled by the API (429); retrying after {retry_after:?}")]
    Throttled { retry_after: Duration },
    #[error("the inventory request budget is used up until {}", .0.to_api_string())]
    Budget(UnixMillis),
    #[error("no answer within the inventory timeout: {0}")]
    Timeout(String),
    #[error(
        "HTTP {0} from admin/groups (the service principal needs the read-only admin API switch)"
    )]
    Http(u16),
    #[error("request failed: {0}")]
    Unreachable(String),
    #[error("not a page of admin/groups: {0}")]
    Invalid(String),
    #[error("authentication failed: {0}")]
    Auth(String),
}

/// The kinds of [`InventoryError`]: the `reason` label values of
/// `powerbi_inventory_errors_total`, all of which the self metrics show (0 until one happens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventoryErrorKind {
    Auth,
    Budget,
    HttpError,
    InvalidResponse,
    Throttled,
    Timeout,
}

impl InventoryErrorKind {
    pub const ALL: [InventoryErrorKind; 6] = [
        InventoryErrorKind::Auth,
        InventoryErrorKind::Budget,
        InventoryErrorKind::HttpError,
        InventoryErrorKind::InvalidResponse,
        InventoryErrorKind::Throttled,
        InventoryErrorKind::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InventoryErrorKind::Auth => "auth",
            InventoryErrorKind::Budget => "budget",
            InventoryErrorKind::HttpError => "http_error",
            InventoryErrorKind::InvalidResponse => "invalid_response",
            InventoryErrorKind::Throttled => "throttled",
            InventoryErrorKind::Timeout => "timeout",
        }
    }
}

impl InventoryError {
    pub fn reason(&self) -> &'static str {
        self.kind().as_str()
    }

    pub fn kind(&self) -> InventoryErrorKind {
        match self {
            InventoryError::Throttled { .. } => InventoryErrorKind::Throttled,
            InventoryError::Budget(_) => InventoryErrorKind::Budget,
            InventoryError::Timeout(_) => InventoryErrorKind::Timeout,
            InventoryError::Http(_) | InventoryError::Unreachable(_) => {
                InventoryErrorKind::HttpError
            }
            InventoryError::Invalid(_) => InventoryErrorKind::InvalidResponse,
            InventoryError::Auth(_) => InventoryErrorKind::Auth,
        }
    }

    /// How long to wait before the next try.
    pub fn retry_in(&self) -> Duration {
        match self {
            InventoryError::Throttled { retry_after } => *retry_after,
            InventoryError::Budget(until) => {
                Duration::from_millis((until.0 - UnixMillis::now().0).max(0) as u64)
            }
            _ => FAILURE_BACKOFF,
        }
    }
}

/// The pages of an unfinished read.
struct PartialRead {
    started: UnixMillis,
    next_page: usize,
    workspaces: Vec<InventoryWorkspace>,
}

/// When the inventory is due, and how its reads went.
pub struct InventoryReader {
    pub config: InventoryConfig,
    /// A read stopped part-way: the pages read so far, to go on from.
    partial: Option<PartialRead>,
    pub budget: RequestBudget,
    /// The API's per-minute limit; the reader waits rather than fails on it.
    pub per_minute: RequestBudget,
    pub next_due: UnixMillis,
    pub status: InventoryStatus,
}

impl InventoryReader {
    /// A reader that is due at once, or `refresh` after the last success of a saved status (a
    /// saved time later than now counts as now: the state file may hold any number).
    pub fn new(config: InventoryConfig, saved: Option<InventoryStatus>) -> Self {
        let status = saved.unwrap_or_default();
        let refresh_ms = i64::try_from(config.refresh.as_millis()).unwrap_or(i64::MAX);
        let now = UnixMillis::now();
        let next_due = status.last_success.map_or(UnixMillis(0), |t| {
            UnixMillis(t.min(now).0.saturating_add(refresh_ms))
        });
        InventoryReader {
            budget: RequestBudget::new(config.max_requests_per_hour),
            per_minute: RequestBudget::per_minute(MAX_REQUESTS_PER_MINUTE),
            partial: None,
            config,
            next_due,
            status,
        }
    }

    pub fn is_due(&self, now: UnixMillis) -> bool {
        now >= self.next_due
    }

    /// Reads every page; on success schedules the next refresh, on failure the retry.
    pub async fn read(&mut self, client: &mut ApiClient) -> Option<Vec<InventoryWorkspace>> {
        let now = UnixMillis::now();
        let refresh_ms = self.config.refresh.as_millis() as i64;
        // Pages older than a refresh period describe another inventory: start over.
        let partial = self
            .partial
            .take()
            .filter(|p| now.0 - p.started.0 < refresh_ms)
            .unwrap_or(PartialRead {
                started: now,
                next_page: 0,
                workspaces: Vec::new(),
            });
        let started = partial.started;
        match self.read_all(client, partial).await {
            Ok(workspaces) => {
                self.status.last_success = Some(started);
                self.next_due = UnixMillis(started.0 + self.config.refresh.as_millis() as i64);
                tracing::info!(
                    workspaces = workspaces.len(),
                    reports = workspaces.iter().map(|w| w.reports.len()).sum::<usize>(),
                    "Read the inventory."
                );
                Some(workspaces)
            }
            Err(e) => {
                *self.status.errors.entry(e.reason().into()).or_default() += 1;
                let wait = e.retry_in().min(self.config.refresh);
                self.next_due = UnixMillis(UnixMillis::now().0 + wait.as_millis() as i64);
                tracing::warn!(error = %e, retry_in_secs = wait.as_secs(), "Reading the inventory failed; activity polling goes on.");
                None
            }
        }
    }

    /// Reads the pages from `partial.next_page` on; on failure keeps what was read in
    /// `self.partial` for the next try.
    async fn read_all(
        &mut self,
        client: &mut ApiClient,
        mut partial: PartialRead,
    ) -> Result<Vec<InventoryWorkspace>, InventoryError> {
        let top = self.config.page_size;
        let base = client.hosts.api_url.trim_end_matches('/').to_string();
        loop {
            let url = format!(
                "{base}{GROUPS_PATH}?$top={top}&$skip={}&$expand=reports,datasets,dashboards,dataflows",
                partial.next_page * top
            );
            let page = match self
                .get(client, &url)
                .await
                .and_then(|body| parse_groups_page(&body).map_err(InventoryError::Invalid))
            {
                Ok(page) => page,
                Err(e) => {
                    self.partial = Some(partial);
                    return Err(e);
                }
            };
            partial.workspaces.extend(page.workspaces);
            partial.next_page += 1;
            // The listed count, not the kept one: a page holding a deleted workspace is full.
            if page.listed < top {
                return Ok(partial.workspaces);
            }
        }
    }

    async fn get(
        &mut self,
        client: &mut ApiClient,
        url: &str,
    ) -> Result<bytes::Bytes, InventoryError> {
        self.budget
            .acquire(UnixMillis::now())
            .map_err(InventoryError::Budget)?;
        // A wait of under a minute: the read goes on rather than starting over later.
        while let Err(until) = self.per_minute.acquire(UnixMillis::now()) {
            let wait = (until.0 - UnixMillis::now().0).clamp(1, 60_000);
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        let now = UnixMillis::now();
        let token = client
            .tokens
            .token(&client.http, now)
            .await
            .map_err(|e| InventoryError::Auth(e.to_string()))?;
        let resp = client
            .http
            .get(url)
            .bearer_auth(token.token.expose())
            .timeout(self.config.timeout)
            .send()
            .await
            .map_err(|e| {
                client.stats.count(Purpose::Inventory, "error");
                if e.is_timeout() {
                    InventoryError::Timeout(without_url(&e))
                } else {
                    InventoryError::Unreachable(without_url(&e))
                }
            })?;
        let status = resp.status().as_u16();
        client.stats.count(Purpose::Inventory, status.to_string());
        if status == 429 {
            // At most an hour (the helper's clamp), so the product fits.
            let secs = retry_after_secs(&resp).unwrap_or(3600);
            let wait_ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            self.budget
                .block_until(UnixMillis(now.0.saturating_add(wait_ms)));
            return Err(InventoryError::Throttled {
                retry_after: Duration::from_secs(secs),
            });
        }
        if status != 200 {
            return Err(InventoryError::Http(status));
        }
        read_capped(resp, client.max_response_bytes)
            .await
            .map_err(|e| match e {
                crate::azure::http::BodyError::Read(why) if why.contains("timed out") => {
                    InventoryError::Timeout(why)
                }
                other => InventoryError::Unreachable(other.to_string()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_last_success_at_the_ends_of_i64_neither_overflows_nor_delays_for_ever() {
        let config = InventoryConfig::default();
        let refresh_ms = config.refresh.as_millis() as i64;
        for t in [i64::MAX, i64::MIN] {
            let saved = InventoryStatus {
                last_success: Some(UnixMillis(t)),
                ..InventoryStatus::default()
            };
            let before = UnixMillis::now().0;
            let reader = InventoryReader::new(config.clone(), Some(saved));
            let after = UnixMillis::now().0;
            let due = reader.next_due.0;
            if t == i64::MAX {
                // Counted as a success now: due one refresh from now.
                assert!(
                    (before + refresh_ms..=after + refresh_ms).contains(&due),
                    "{due}"
                );
            } else {
                assert_eq!(due, i64::MIN + refresh_ms);
            }
        }
    }
}
