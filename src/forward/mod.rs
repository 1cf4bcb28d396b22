//! Forwarding of raw events: each new, counted event goes to a durable spool
//! ([`crate::state::spool`]) and from there to every configured sink — Azure Monitor Logs
//! Ingestion ([`logs_ingestion`]) and OTLP logs ([`otlp_logs`]) — each at its own pace.
//!
//! Invariants:
//! - a sink's cursor moves only past events its destination accepted (at-least-once);
//! - a sink never blocks polling, aggregation or scraping: it runs on its own task and reads
//!   the spool from disk;
//! - a failing destination is retried forever with capped exponential backoff (or after its
//!   `Retry-After`), counted by reason, and logged once when an outage starts and once when
//!   it ends, not per attempt;
//! - its counters live in its cursor file, so they continue across restarts.

pub mod logs_ingestion;
pub mod otlp_logs;
pub mod settings;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::catalogue;
use crate::catalogue::{Collector, Snapshot};
use crate::state::spool::{CursorFile, DropReason, SpoolReader};

/// How often a caught-up sink looks for new events.
const IDLE_POLL: Duration = Duration::from_millis(250);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why a delivery failed; the `reason` label of `powerbi_forward_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorReason {
    Auth,
    ClientError,
    Network,
    ServerError,
    Throttled,
    TooLarge,
}

impl ErrorReason {
    pub const ALL: [ErrorReason; 6] = [
        ErrorReason::Auth,
        ErrorReason::ClientError,
        ErrorReason::Network,
        ErrorReason::ServerError,
        ErrorReason::Throttled,
        ErrorReason::TooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorReason::Auth => "auth",
            ErrorReason::ClientError => "client_error",
            ErrorReason::Network => "network",
            ErrorReason::ServerError => "server_error",
            ErrorReason::Throttled => "throttled",
            ErrorReason::TooLarge => "too_large",
        }
    }
}

/// A failed delivery of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Events at the front of the batch the destination accepted before the failure.
    pub delivered: usize,
    pub reason: ErrorReason,
    /// When the destination said when to come back.
    pub retry_after: Option<Duration>,
    /// The event right after the delivered ones is refused for good: give it up (counted as
    /// dropped for this reason).
    pub give_up: Option<DropReason>,
    /// For the log line.
    pub detail: String,
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// A destination of raw events.
pub trait Sink: Send + 'static {
    /// The `sink` label.
    fn name(&self) -> &'static str;
    /// Largest batch to hand to [`Sink::send`]: events, and bytes of raw JSON.
    fn batch_limits(&self) -> (usize, usize);
    /// Delivers the batch (raw event JSON, in order); `Ok` once all were accepted.
    fn send<'a>(&'a mut self, events: &'a [Vec<u8>]) -> SendFuture<'a>;
    /// Refusals the sink worked around within the last [`Sink::send`] (e.g. a 413 answered by
    /// splitting the array), to be counted like failures.
    fn take_handled_errors(&mut self) -> Vec<ErrorReason> {
        Vec::new()
    }
}

/// What `/metrics` shows of one sink.
#[derive(Debug, Clone, Default)]
struct SinkView {
    cursor: CursorFile,
    backlog: u64,
}

/// The self metrics of every sink, shared with the exposition.
#[derive(Debug, Clone, Default)]
pub struct ForwardStats(Arc<Mutex<BTreeMap<&'static str, SinkView>>>);

impl ForwardStats {
    fn update(&self, sink: &'static str, reader: &SpoolReader) {
        let view = SinkView {
            cursor: reader.cursor.clone(),
            backlog: reader.backlog(),
        };
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sink, view);
    }
}

impl Collector for ForwardStats {
    /// The forwarding families, each sink's series; none without sinks.
    fn collect(&self, out: &mut Snapshot) {
        let sinks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if sinks.is_empty() {
            return;
        }
        let per_sink = |value: fn(&SinkView) -> u64| {
            sinks
                .iter()
                .map(move |(sink, view)| (vec![sink.to_string()], value(view) as f64))
        };
        out.push(&catalogue::FORWARD_BACKLOG, per_sink(|v| v.backlog));
        out.push(
            &catalogue::FORWARD_DROPPED,
            sinks.iter().flat_map(|(sink, view)| {
                let reasons = DropReason::ALL.map(DropReason::as_str);
                by_reason(sink, reasons, &view.cursor.dropped)
            }),
        );
        out.push(
            &catalogue::FORWARD_ERRORS,
            sinks.iter().flat_map(|(sink, view)| {
                let reasons = ErrorReason::ALL.map(ErrorReason::as_str);
                by_reason(sink, reasons, &view.cursor.errors)
            }),
        );
        out.push(
            &catalogue::FORWARDED_EVENTS,
            per_sink(|v| v.cursor.forwarded),
        );
    }
}

/// One sample per reason of `reasons` for `sink`, 0 for reasons not counted yet.
fn by_reason<'a, const N: usize>(
    sink: &'static str,
    reasons: [&'static str; N],
    counts: &'a BTreeMap<String, u64>,
) -> impl Iterator<Item = (Vec<String>, f64)> + 'a {
    reasons.into_iter().map(move |r| {
        let n = counts.get(r).copied().unwrap_or(0);
        (vec![sink.to_string(), r.to_string()], n as f64)
    })
}

/// Feeds `sink` from `reader` until the task is dropped.
pub async fn run_sink(mut sink: impl Sink, mut reader: SpoolReader, stats: ForwardStats) {
    let name = sink.name();
    let (max_events, max_bytes) = sink.batch_limits();
    let mut outage = Outage::new(name);
    loop {
        stats.update(name, &reader);
        let batch = match reader.peek(max_events, max_bytes) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(sink = name, error = %e, "Reading the forwarding spool failed; retrying.");
                tokio::time::sleep(MAX_BACKOFF).await;
                continue;
            }
        };
        if batch.lines.is_empty() {
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        }
        let result = sink.send(&batch.lines).await;
        for reason in sink.take_handled_errors() {
            reader.count_error(reason.as_str());
        }
        let saved = match &result {
            Ok(()) => reader.commit(batch.lines.len()),
            Err(e) => {
                reader.count_error(e.reason.as_str());
                reader.commit(e.delivered).and_then(|()| match e.give_up {
                    Some(why) => reader.drop_first(why),
                    None => Ok(()),
                })
            }
        };
        if let Err(e) = saved {
            tracing::error!(sink = name, error = %e, "Saving the forwarding cursor failed; the batch may be sent again.");
        }
        match result {
            Ok(()) => outage.recovered(),
            Err(e) => {
                let wait = outage.failed(&e);
                stats.update(name, &reader);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Backoff and log-once bookkeeping of a sink's failures.
struct Outage {
    sink: &'static str,
    failures: u32,
}

impl Outage {
    fn new(sink: &'static str) -> Self {
        Outage { sink, failures: 0 }
    }

    /// Logs the first failure of an outage; returns how long to wait.
    fn failed(&mut self, e: &SendError) -> Duration {
        if self.failures == 0 && e.give_up.is_none() {
            tracing::warn!(sink = self.sink, reason = e.reason.as_str(), error = %e.detail, "Forwarding failed; retrying with backoff until the destination accepts (logged once per outage).");
        } else if let Some(why) = e.give_up {
            tracing::warn!(sink = self.sink, reason = why.as_str(), error = %e.detail, "An event was refused for good and is dropped.");
        }
        if e.give_up.is_some() {
            return Duration::ZERO;
        }
        self.failures += 1;
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << (self.failures - 1).min(10))
            .min(MAX_BACKOFF);
        e.retry_after.map_or(backoff, |r| r.min(MAX_BACKOFF * 5))
    }

    fn recovered(&mut self) {
        if self.failures > 0 {
            tracing::info!(
                sink = self.sink,
                failed_attempts = self.failures,
                "Forwarding recovered."
            );
        }
        self.failures = 0;
    }
}
