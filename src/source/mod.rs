//! Source stage: where documents of activity events come from.
//!
//! A source only fetches: it sends [`Document`]s (an API page, a replay file, a simulated
//! page) down a bounded channel and never decodes or counts. The live API client
//! ([`powerbi`]), the replay and the demo each implement [`Source`]. A live source also
//! reports its health ([`SourceStatus`], shown by [`metrics`]); the pipeline keeps it, and the
//! state file saves it beside the aggregator's state, so the later stages need not know it.

pub mod demo;
pub mod metrics;
pub mod powerbi;
pub mod replay;
pub mod settings;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use bytes::Bytes;
use tokio::sync::mpsc;

/// The bytes of a document: in memory, or a file the decoder streams from disk.
#[derive(Debug, Clone)]
pub enum Body {
    Bytes(Bytes),
    File(PathBuf),
}

/// One unit of input: one API page, one replay file, one simulated page.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where it came from, for log lines and error messages.
    pub origin: String,
    pub body: Body,
}

/// Whether the events describe the past (replayed archives) or arrive as they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Archived history: "now" is the newest event, so results do not depend on the date.
    Historical,
    /// Events arrive as they happen: "now" is the wall clock.
    Live,
}

/// Why a source stopped.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read replay path {path}: {source}")]
    ReplayPath {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("replay directory {0} contains no .json, .jsonl or .ndjson files")]
    ReplayEmpty(PathBuf),
    #[error("cannot build the HTTP client for the Power BI API: {0}")]
    HttpClient(String),
    #[error("the archive {path} changed since the replay in passes saved in the state stopped part-way: its days {days} held {was} events then and hold {now} now (or moved between days); counting them again would count twice. Put the archive back as it was to finish the replay, or replay it from zero with an empty --state.dir (or move its state.json away)")]
    ReplayArchiveChanged {
        path: PathBuf,
        days: String,
        was: u64,
        now: u64,
    },
    #[error("the archive {path} changed since the replay saved in the state counted its first {was} files, up to {through}: {now} files sort up to it now, so files were added or removed among those counted; counting them again would count twice, skipping them would leave changes out. Put the archive back as it was, name new files so they sort after {through}, or replay from zero with an empty --state.dir (or move its state.json away)")]
    ReplayFilesChanged {
        path: PathBuf,
        through: PathBuf,
        was: usize,
        now: usize,
    },
}

/// What a source sends: documents, and (live sources) its own status for the self metrics.
#[derive(Debug, Clone)]
pub enum SourceMessage {
    Document(Document),
    /// The tenant's workspaces and reports, read from the admin inventory API.
    Inventory(Box<crate::decode::inventory::Inventory>),
    Status(Box<SourceStatus>),
    /// A replay starts another pass over its files: only the events of its days count.
    ReplayPass(replay::ReplayPass),
}

/// A live source's status, cumulative since it started; replaces the previous one.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourceStatus {
    /// The last poll read every planned hour to its end.
    pub up: bool,
    pub last_success: Option<crate::decode::UnixMillis>,
    pub poll_duration_seconds: f64,
    pub api: powerbi::client::ApiStats,
    pub budget_remaining: usize,
    /// How long the most overdue re-read of the lookback has waited past its age.
    pub sweep_age_seconds: Option<f64>,
    /// Hours of the initial lookback (first start) not read yet.
    #[serde(default)]
    pub initial_lookback_hours_remaining: usize,
    /// When the current access token expires.
    pub token_expiry: Option<crate::decode::UnixMillis>,
    /// When the client certificate expires (`notAfter`), for a certificate credential.
    pub certificate_expiry: Option<crate::decode::UnixMillis>,
    /// What the source needs to resume where it stopped; sent after every page of a poll, so
    /// whoever applies it has applied those pages too.
    pub checkpoint: Option<SourceCheckpoint>,
    /// Reads of the inventory (`--inventory.enabled`).
    #[serde(default)]
    pub inventory: Option<InventoryStatus>,
    /// The ids the exporter's access token names it by (application id, object id): its own
    /// `ExportActivityEvents` carry one of them as `UserId`.
    #[serde(default)]
    pub own_identities: Vec<String>,
    /// The last polls, oldest first, at most [`POLLS_KEPT`].
    #[serde(default)]
    pub polls: Vec<PollRecord>,
    /// `--powerbi.max-requests-per-hour`, the whole of the budget `budget_remaining` is part of.
    #[serde(default)]
    pub budget_limit: usize,
    /// The re-read schedule's state after the last poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleStatus>,
    /// Each hour the source reads, by state, for the status page. Rebuilt by every poll, so
    /// not saved.
    #[serde(skip)]
    pub hours: Option<HourGrid>,
}

/// Where the re-read schedule stands: hours by state, and what it plans.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleStatus {
    /// Hours of the lookback (and of an initial lookback being loaded) by state.
    pub hours: std::collections::BTreeMap<powerbi::window::LookbackState, usize>,
    /// Requests planned for the next hour.
    pub planned_next_hour: usize,
}

/// Polls kept in [`SourceStatus::polls`].
pub const POLLS_KEPT: usize = 20;
/// Longest reason kept in a [`PollOutcome`], in characters.
pub const REASON_CHARS: usize = 200;

/// One poll of the live source.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PollRecord {
    pub started: crate::decode::UnixMillis,
    pub duration_seconds: f64,
    pub hours_read: u32,
    pub hours_failed: u32,
    /// Events on the pages read (before dedup).
    pub events: u64,
    pub outcome: PollOutcome,
}

/// How a poll ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollOutcome {
    /// Every planned hour was read to its end.
    Complete,
    /// The request budget ran out; the rest is read by later polls.
    Paused,
    /// An hour failed; `reason` is the first failure (at most [`REASON_CHARS`]).
    Failed { reason: String },
}

/// The hours from `first` on, one state each, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct HourGrid {
    pub first: powerbi::window::UtcHour,
    pub states: Vec<HourState>,
}

/// Where an hour of the activity log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HourState {
    Read,
    NotYetRead,
    /// Its last read failed; it is read again.
    Failed,
}

/// How the inventory reads went.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InventoryStatus {
    pub last_success: Option<crate::decode::UnixMillis>,
    /// Failed reads by reason.
    pub errors: std::collections::BTreeMap<String, u64>,
}

/// The live source's durable state: which hours were read when, and the request ledger.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourceCheckpoint {
    pub ledger: powerbi::window::SweepLedger,
    pub requests_sent: Vec<crate::decode::UnixMillis>,
    pub blocked_until: crate::decode::UnixMillis,
}

pub type DocumentSender = mpsc::Sender<SourceMessage>;
pub type SourceFuture = Pin<Box<dyn Future<Output = Result<(), SourceError>> + Send>>;

/// A source of documents.
pub trait Source: Send {
    fn timing(&self) -> Timing;
    /// Sends documents until the source is exhausted (finite sources) or forever; stops
    /// early, without error, when the receiving side is gone.
    fn run(self: Box<Self>, out: DocumentSender) -> SourceFuture;
}
