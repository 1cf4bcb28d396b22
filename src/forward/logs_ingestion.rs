//! Azure Monitor Logs Ingestion sink: raw events as rows of a custom Log Analytics table,
//! through a data collection rule (`deploy/azure/` defines the table and the rule).
//!
//! Invariants:
//! - a row is the event as the API sent it, with `Id` renamed `EventId` (a reserved column)
//!   and `TimeGenerated` set from `CreationTime`;
//! - a request body is a JSON array of at most `max_body_bytes` before gzip (the service's
//!   limit is 1 MB; gzip only makes it smaller), sent gzip-compressed;
//! - 413 halves the array and retries; 429 waits for `Retry-After`; 5xx and network errors
//!   back off; 401/403 drop the cached token; another 4xx narrows down to the one row refused
//!   and gives that row up (counted), never the rest.

use std::io::Write;
use std::time::Duration;

use flate2::write::GzEncoder;

use super::{ErrorReason, SendError, SendFuture, Sink};
use crate::aggregate::outbox::split_line;
use crate::azure::auth::{Credential, TokenCache};
use crate::azure::http::{retry_after_secs, without_url};
use crate::decode::time::parse_creation_time;
use crate::decode::UnixMillis;
use crate::state::spool::DropReason;

/// Scope of tokens for the Logs Ingestion API (public cloud).
pub const MONITOR_SCOPE: &str = "https://monitor.azure.com/.default";
/// The service refuses bodies over 1 MB; stay a little under.
pub const MAX_BODY_BYTES: usize = 1_000_000;
const API_VERSION: &str = "2023-01-01";

/// Where rows go.
#[derive(Debug, Clone)]
pub struct LogsIngestionConfig {
    /// Data collection endpoint (or the DCR's own `logsIngestion` endpoint), e.g.
    /// `https://my-dce-abcd.westeurope-1.ingest.monitor.azure.com`.
    pub endpoint: String,
    /// Immutable id of the data collection rule (`dcr-…`).
    pub dcr_id: String,
    /// Stream declared in the rule.
    pub stream: String,
    pub credential: Credential,
    pub scope: String,
    pub timeout: Duration,
    pub max_body_bytes: usize,
}

pub struct LogsIngestion {
    config: LogsIngestionConfig,
    url: String,
    http: reqwest::Client,
    tokens: TokenCache,
    /// 413s and refused rows handled by splitting, since the last take.
    handled: Vec<ErrorReason>,
}

impl LogsIngestion {
    pub fn new(config: LogsIngestionConfig) -> Result<Self, reqwest::Error> {
        let http = crate::azure::http::client_builder()
            .timeout(config.timeout)
            .build()?;
        let url = format!(
            "{}/dataCollectionRules/{}/streams/{}?api-version={API_VERSION}",
            config.endpoint.trim_end_matches('/'),
            config.dcr_id,
            config.stream
        );
        let tokens = TokenCache::new(config.credential.clone(), config.scope.clone());
        Ok(LogsIngestion {
            config,
            url,
            http,
            tokens,
            handled: Vec::new(),
        })
    }

    /// Sends `rows[..]` as arrays within the body limit, in order.
    async fn send_rows(&mut self, rows: &[Vec<u8>]) -> Result<(), SendError> {
        let mut done = 0;
        while done < rows.len() {
            let n = fitting(&rows[done..], self.config.max_body_bytes).max(1);
            self.send_array(&rows[done..done + n])
                .await
                .map_err(|e| SendError {
                    delivered: done + e.delivered,
                    ..e
                })?;
            done += n;
        }
        Ok(())
    }

    /// One array; on 413 or a refused row, halves it until the culprit is alone.
    fn send_array<'a>(&'a mut self, rows: &'a [Vec<u8>]) -> SendFuture<'a> {
        Box::pin(async move {
            match self.post(rows).await {
                Ok(()) => Ok(()),
                Err(e) if e.give_up.is_some() && rows.len() > 1 => {
                    self.handled.push(e.reason);
                    let half = rows.len() / 2;
                    self.send_array(&rows[..half]).await?;
                    self.send_array(&rows[half..]).await.map_err(|e| SendError {
                        delivered: half + e.delivered,
                        ..e
                    })
                }
                Err(e) => Err(e),
            }
        })
    }

    async fn post(&mut self, rows: &[Vec<u8>]) -> Result<(), SendError> {
        let fail = |reason, detail: String| SendError {
            delivered: 0,
            reason,
            retry_after: None,
            give_up: None,
            detail,
        };
        let token = self
            .tokens
            .token(&self.http, UnixMillis::now())
            .await
            .map_err(|e| fail(ErrorReason::Auth, e.to_string()))?;
        let body = gzip_array(rows);
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(token.token.expose())
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
            .await
            .map_err(|e| fail(ErrorReason::Network, without_url(&e)))?;
        let status = response.status().as_u16();
        let retry_after = retry_after_secs(&response);
        let detail = format!("HTTP {status} for {} rows", rows.len());
        match status {
            200..=299 => Ok(()),
            413 => Err(SendError {
                give_up: Some(DropReason::TooLarge),
                ..fail(ErrorReason::TooLarge, detail)
            }),
            429 => Err(SendError {
                retry_after: Some(Duration::from_secs(retry_after.unwrap_or(30))),
                ..fail(ErrorReason::Throttled, detail)
            }),
            401 | 403 => {
                self.tokens.invalidate();
                Err(fail(ErrorReason::Auth, detail))
            }
            400..=499 => Err(SendError {
                give_up: Some(DropReason::Rejected),
                ..fail(ErrorReason::ClientError, detail)
            }),
            _ => Err(fail(ErrorReason::ServerError, detail)),
        }
    }
}

impl Sink for LogsIngestion {
    fn name(&self) -> &'static str {
        "logs_ingestion"
    }

    fn batch_limits(&self) -> (usize, usize) {
        (10_000, 4 * self.config.max_body_bytes)
    }

    fn take_handled_errors(&mut self) -> Vec<ErrorReason> {
        std::mem::take(&mut self.handled)
    }

    fn send<'a>(&'a mut self, events: &'a [Vec<u8>]) -> SendFuture<'a> {
        Box::pin(async move {
            // A row that cannot be made, or that alone exceeds the limit, is given up; the
            // rows before it are sent first so the cursor can move past them.
            let mut rows = Vec::with_capacity(events.len());
            for line in events {
                let (_, event) = split_line(line);
                let Some(row) = to_row(event).filter(|r| r.len() + 2 <= self.config.max_body_bytes)
                else {
                    self.send_rows(&rows).await?;
                    let (reason, give_up) = if to_row(event).is_some() {
                        (ErrorReason::TooLarge, DropReason::TooLarge)
                    } else {
                        (ErrorReason::ClientError, DropReason::Rejected)
                    };
                    return Err(SendError {
                        delivered: rows.len(),
                        reason,
                        retry_after: None,
                        give_up: Some(give_up),
                        detail: format!("event {} cannot be sent as a row", rows.len()),
                    });
                };
                rows.push(row);
            }
            self.send_rows(&rows).await
        })
    }
}

/// How many of `rows` fit in one JSON array of at most `limit` bytes.
fn fitting(rows: &[Vec<u8>], limit: usize) -> usize {
    let mut size = 2; // the brackets
    rows.iter()
        .take_while(|r| {
            size += r.len() + 1;
            size <= limit + 1
        })
        .count()
}

fn gzip_array(rows: &[Vec<u8>]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut write = || -> std::io::Result<()> {
        gz.write_all(b"[")?;
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                gz.write_all(b",")?;
            }
            gz.write_all(row)?;
        }
        gz.write_all(b"]")
    };
    // Writing to a Vec cannot fail.
    let _ = write();
    gz.finish().unwrap_or_default()
}

/// The row of one event: `Id` → `EventId`, `TimeGenerated` from `CreationTime`; `None` when
/// the event is not a JSON object with a valid `CreationTime`.
pub fn to_row(event: &[u8]) -> Option<Vec<u8>> {
    let serde_json::Value::Object(mut fields) = serde_json::from_slice(event).ok()? else {
        return None;
    };
    let time = fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("CreationTime"))
        .and_then(|(_, v)| v.as_str())
        .and_then(parse_creation_time)?;
    if let Some(id) = fields.remove("Id").or_else(|| fields.remove("id")) {
        fields.insert("EventId".into(), id);
    }
    fields.insert("TimeGenerated".into(), time.to_iso_millis().into());
    serde_json::to_vec(&fields).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_renames_id_and_adds_time_generated() {
        let row =
            to_row(br#"{"Id":"a1","CreationTime":"2026-11-20T10:00:00","Activity":"ViewReport"}"#)
                .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&row).unwrap();
        assert_eq!(v["EventId"], "a1");
        assert_eq!(v["TimeGenerated"], "2026-11-20T10:00:00.000Z");
        assert_eq!(v["CreationTime"], "2026-11-20T10:00:00");
        assert!(v.get("Id").is_none());
        assert_eq!(to_row(b"[1]"), None);
        assert_eq!(to_row(br#"{"Id":"a"}"#), None);
    }

    #[test]
    fn arrays_are_cut_at_the_byte_limit() {
        let rows = vec![vec![b'x'; 10]; 5];
        // "[" + 10 + "," + 10 + "]" = 23 bytes for two rows.
        assert_eq!(fitting(&rows, 23), 2);
        assert_eq!(fitting(&rows, 22), 1);
        assert_eq!(fitting(&rows, 12), 1);
        assert_eq!(fitting(&rows, 11), 0);
        let body = gzip_array(&rows[..2]);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text)
            .unwrap();
        assert_eq!(text.len(), 23);
    }
}
