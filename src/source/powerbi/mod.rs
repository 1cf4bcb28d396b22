//! The live source: polls the Power BI admin Activity Events API forever.
//!
//! [`window`] plans which UTC hours to read (the current hour every poll, an ended hour again
//! at each of its re-read ages, for late events), [`budget`] keeps requests under the hourly limit,
//! [`crate::azure::auth`] gets Entra ID tokens, [`client`] reads an hour page by page. Each
//! page goes down the channel as a document; after each poll the source's status goes down
//! the channel too.
//!
//! Invariants: exactly-once counting does not depend on the source (the aggregator dedups by
//! `Id` over its window, which must cover the lookback); the source only decides what to read
//! again, and reading again is always safe.

pub mod budget;
pub mod client;
pub mod inventory;
pub mod progress;
pub mod settings;
pub mod window;

use std::time::Duration;

use bytes::Bytes;

use std::collections::BTreeSet;

use super::{
    Body, Document, DocumentSender, HourGrid, HourState, PollOutcome, PollRecord, ScheduleStatus,
    Source, SourceCheckpoint, SourceError, SourceFuture, SourceMessage, SourceStatus, Timing,
    POLLS_KEPT, REASON_CHARS,
};
use crate::azure::auth::{Credential, TokenCache};
use crate::decode::inventory::Inventory;
use crate::decode::UnixMillis;
use crate::simulator::clock::SharedClock;
use budget::RequestBudget;
use client::{ApiClient, HostPolicy, ReadError, RetryPolicy};
use inventory::{InventoryConfig, InventoryReader};
use progress::{Progress, ProgressMode};
use window::{
    at_retention_edge, lookback_start, oldest_servable, plan, planned_next_hour, LookbackState,
    PlanConfig, PlannedRead, Purpose, SweepLedger, UtcHour,
};

/// Settings of the live source.
#[derive(Debug, Clone)]
pub struct PowerBiConfig {
    pub hosts: HostPolicy,
    pub credential: Credential,
    /// Token scope of the cloud's Power BI API (resource + `/.default`).
    pub scope: String,

    pub poll_interval: Duration,
    pub plan: PlanConfig,
    pub max_requests_per_hour: usize,
    /// History loaded at first start; 0 counts only events from the start on.
    pub initial_lookback: Duration,
    pub retry: RetryPolicy,
    pub request_timeout: Duration,
    /// Largest response body read; a larger one fails the request.
    pub max_response_bytes: usize,
    /// The inventory reader's settings, when `--inventory.enabled`.
    pub inventory: Option<InventoryConfig>,
    /// The time the source plans and waits by: the wall clock, or a test's simulated one.
    pub clock: SharedClock,
}

pub struct PowerBiSource {
    config: PowerBiConfig,
    /// Built with the source, so that a client that cannot be built stops the start.
    http: reqwest::Client,
    resume: Option<SourceStatus>,
    /// Read this history once and stop (`top --since`, `backfill`), instead of polling forever.
    history: Option<History>,
    /// How a read of history shows its progress.
    progress: ProgressMode,
}

impl PowerBiSource {
    /// A source that polls forever, resuming from `resume` (the status saved in the durable
    /// state) when given.
    pub fn new(config: PowerBiConfig, resume: Option<SourceStatus>) -> Result<Self, SourceError> {
        Ok(PowerBiSource {
            http: http_client(
                crate::azure::http::client_builder().timeout(config.request_timeout),
            )?,
            config,
            resume,
            history: None,
            progress: ProgressMode::Off,
        })
    }

    /// A source that reads every hour of the last `since` once, then ends. When the budget is
    /// used up it waits for it; an hour that keeps failing is given up after three rounds, and
    /// the final status says `up = false`.
    pub fn history(
        config: PowerBiConfig,
        since: Duration,
        progress: ProgressMode,
    ) -> Result<Self, SourceError> {
        Ok(PowerBiSource {
            history: Some(History::Since(since)),
            progress,
            ..PowerBiSource::new(config, None)?
        })
    }

    /// A source that reads the hours `first..=last` once (`backfill`), skipping those the
    /// `resume` status's ledger records as read, and sends its status after every hour read,
    /// so that whoever keeps the pages can record the hour as done. A fresh ledger starts at
    /// `first` with no initial lookback pending: an exporter resuming from the final status
    /// continues polling from there.
    pub fn hours(
        config: PowerBiConfig,
        (first, last): (UtcHour, UtcHour),
        resume: Option<SourceStatus>,
        progress: ProgressMode,
    ) -> Result<Self, SourceError> {
        let resume = resume.unwrap_or_else(|| SourceStatus {
            checkpoint: Some(SourceCheckpoint {
                ledger: SweepLedger::starting_at(first),
                ..SourceCheckpoint::default()
            }),
            ..SourceStatus::default()
        });
        Ok(PowerBiSource {
            history: Some(History::Hours { first, last }),
            progress,
            ..PowerBiSource::new(config, Some(resume))?
        })
    }
}

/// How one hour of a read of history went.
enum HistoryHour {
    Read,
    /// Past what the API serves: nothing to read.
    LeftOut,
    /// Failed; tried again in the next round.
    Failed(ReadError),
    /// The credential was refused: nothing more can be read.
    Refused(ReadError),
}

/// A read of history that ends.
#[derive(Debug, Clone, Copy)]
enum History {
    /// Every hour of the last `since` (`top`): nothing is kept of it.
    Since(Duration),
    /// Hours `first..=last` not read yet (`backfill`), each recorded in the ledger and
    /// reported by a status as it is read.
    Hours { first: UtcHour, last: UtcHour },
}

/// The API's HTTP client. reqwest refuses to build one only for TLS settings it cannot use (a
/// crypto provider or platform verifier that fails to initialise); the exporter cannot run
/// without it, so that is a start-up error, not a source that quietly never polls.
fn http_client(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, SourceError> {
    builder.build().map_err(|e| {
        // A builder error has no URL in it; its reason is in the chain of sources.
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(inner) = source {
            why = format!("{why}: {inner}");
            source = inner.source();
        }
        SourceError::HttpClient(why)
    })
}

impl Source for PowerBiSource {
    fn timing(&self) -> Timing {
        Timing::Live
    }

    fn run(self: Box<Self>, out: DocumentSender) -> SourceFuture {
        Box::pin(async move {
            let history = self.history;
            let mut poller = Poller::start(*self);
            if let Some(history) = history {
                poller.read_history(history, &out).await;
                let _ = out
                    .send(SourceMessage::Status(Box::new(poller.status.clone())))
                    .await;
                return Ok(());
            }
            loop {
                // The inventory first: it is a few requests, and read after a poll it would
                // wait behind a whole initial lookback before names and unused reports show.
                poller.refresh_inventory(&out).await;
                poller.poll(&out).await;
                if out
                    .send(SourceMessage::Status(Box::new(poller.status.clone())))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
                poller.config.clock.sleep(poller.config.poll_interval).await;
            }
        })
    }
}

/// Where polling starts: the saved budget, ledger and status, or a fresh initial lookback.
struct StartingPoint {
    budget: RequestBudget,
    ledger: SweepLedger,
    status: SourceStatus,
}

impl StartingPoint {
    /// From the saved status when there is one (the client's counters continue too).
    fn new(config: &PowerBiConfig, resume: Option<SourceStatus>, client: &mut ApiClient) -> Self {
        let now = config.clock.now();
        let Some(mut saved) = resume else {
            let lookback = config.initial_lookback.as_millis() as i64;
            let start = UtcHour::containing(now.saturating_sub_millis(lookback));
            return StartingPoint {
                budget: RequestBudget::new(config.max_requests_per_hour),
                ledger: SweepLedger::loading_history(start, now),
                status: SourceStatus::default(),
            };
        };
        let checkpoint = saved.checkpoint.take().unwrap_or_default();
        client.stats = saved.api.clone();
        let budget = RequestBudget::restore(
            config.max_requests_per_hour,
            checkpoint.requests_sent,
            checkpoint.blocked_until,
            now,
        );
        tracing::info!(
            hours_read = checkpoint.ledger.len(),
            "Resuming the activity log where the saved state left it."
        );
        StartingPoint {
            budget,
            ledger: checkpoint.ledger,
            status: saved,
        }
    }
}

struct Poller {
    inventory: Option<InventoryReader>,
    config: PowerBiConfig,
    client: ApiClient,
    budget: RequestBudget,
    ledger: SweepLedger,
    status: SourceStatus,
    /// Hours whose last read failed (not by the budget), until one succeeds.
    failed: BTreeSet<UtcHour>,
    progress: ProgressMode,
    /// The initial lookback's load, while hours of it are pending.
    history_load: Option<HistoryLoad>,
}

/// What one poll did, as it goes.
struct PollTally {
    started: UnixMillis,
    events_before: u64,
    hours_read: u32,
    hours_failed: u32,
    outcome: PollOutcome,
}

impl PollTally {
    fn new(started: UnixMillis, client: &ApiClient) -> Self {
        PollTally {
            started,
            events_before: client.events_read,
            hours_read: 0,
            hours_failed: 0,
            outcome: PollOutcome::Complete,
        }
    }

    fn failed(&mut self, e: &ReadError) {
        // A pause for the budget is not a failed hour: it is read by a later poll.
        if !matches!(e, ReadError::Budget { .. }) {
            self.hours_failed += 1;
        }
        if self.outcome == PollOutcome::Complete {
            self.outcome = match e {
                ReadError::Budget { .. } => PollOutcome::Paused,
                e => PollOutcome::Failed {
                    reason: e.to_string().chars().take(REASON_CHARS).collect(),
                },
            };
        }
    }

    fn complete(&self) -> bool {
        self.outcome == PollOutcome::Complete
    }
}

/// Each hour from the oldest the source reads (the lookback, or the initial lookback's start
/// when older; never before the ledger's start nor what the API serves) to the current one.
fn hour_grid(
    ledger: &SweepLedger,
    failed: &BTreeSet<UtcHour>,
    plan: &window::PlanConfig,
    now: UnixMillis,
) -> HourGrid {
    let current = UtcHour::containing(now);
    let lookback_start = current.0 - plan.lookback_hours.max(0);
    let mut first = ledger
        .start
        .map_or(lookback_start, |s| s.0.min(lookback_start));
    if let Some(start) = ledger.start {
        first = first.max(start.0);
    }
    let first = first.max(oldest_servable(now).0).min(current.0);
    let states = (first..=current.0)
        .map(UtcHour)
        .map(|h| {
            if failed.contains(&h) {
                HourState::Failed
            } else if ledger.is_pending(h)
                || (h.0 >= lookback_start && ledger.last_read(h).is_none())
            {
                HourState::NotYetRead
            } else {
                // Read, or older than the lookback and no longer pending: read, then forgotten.
                HourState::Read
            }
        })
        .collect();
    HourGrid {
        first: UtcHour(first),
        states,
    }
}

impl Poller {
    /// The poller of `source`: its client, and where it starts (see [`StartingPoint`]).
    fn start(source: PowerBiSource) -> Self {
        let PowerBiSource {
            config,
            http,
            resume,
            history,
            progress,
        } = source;
        let tokens = TokenCache::new(config.credential.clone(), config.scope.clone());
        let mut client = ApiClient::new(http, config.hosts.clone(), tokens, config.retry);
        client.max_response_bytes = config.max_response_bytes;
        client.clock = config.clock.clone();
        let StartingPoint {
            budget,
            ledger,
            status,
        } = StartingPoint::new(&config, resume, &mut client);
        let inventory = match (&config.inventory, history) {
            (Some(c), None) => Some(InventoryReader::new(c.clone(), status.inventory.clone())),
            _ => None,
        };
        let history_load = match ledger.history_remaining() {
            0 => None,
            pending => Some(HistoryLoad {
                started: std::time::Instant::now(),
                total: pending,
                events_before: 0,
                budget_waits: 0,
            }),
        };
        Poller {
            client,
            budget,
            ledger,
            status,
            config,
            inventory,
            failed: BTreeSet::new(),
            progress,
            history_load,
        }
    }

    /// Reads a poll may plan beside the current hour: its share of the hourly budget (at least
    /// one), and never more than the budget has left after the current hour. A ceiling: a poll
    /// sends only what is due.
    fn allowance(&mut self, now: UnixMillis) -> usize {
        let per_poll = self.per_poll_share();
        per_poll.min(self.budget.remaining(now).saturating_sub(1))
    }

    /// A poll's share of the hourly budget beside the current hour, at least one: spread over
    /// the polls of an hour, a backlog never takes the current hour's requests.
    fn per_poll_share(&self) -> usize {
        let polls_per_hour = (3600.0 / self.config.poll_interval.as_secs_f64().max(1.0)).max(1.0);
        let per_poll = (self.config.max_requests_per_hour as f64 / polls_per_hour).floor() as usize;
        per_poll.saturating_sub(1).max(1)
    }

    /// Fills in the status after a poll.
    fn finish_status(&mut self, tally: PollTally) {
        let now = self.config.clock.now();
        let (started, complete) = (tally.started, tally.complete());
        self.status.polls.push(PollRecord {
            started,
            duration_seconds: (now.0 - started.0) as f64 / 1000.0,
            hours_read: tally.hours_read,
            hours_failed: tally.hours_failed,
            events: self.client.events_read - tally.events_before,
            outcome: tally.outcome,
        });
        let excess = self.status.polls.len().saturating_sub(POLLS_KEPT);
        self.status.polls.drain(..excess);
        self.status.budget_limit = self.config.max_requests_per_hour;
        let grid = hour_grid(&self.ledger, &self.failed, &self.config.plan, now);
        self.status.schedule = Some(self.schedule_status(&grid, now));
        self.status.hours = Some(grid);
        self.status.up = complete;
        if complete {
            self.status.last_success = Some(started);
        }
        self.status.poll_duration_seconds = (now.0 - started.0) as f64 / 1000.0;
        self.status.api = self.client.stats.clone();
        self.status.budget_remaining = self.budget.remaining(now);
        self.status.sweep_age_seconds = self
            .ledger
            .oldest_sweep_age(&self.config.plan, now)
            .map(|ms| ms as f64 / 1000.0);
        self.status.initial_lookback_hours_remaining = self.ledger.history_remaining();
        self.status.token_expiry = self.client.tokens.expires_at();
        self.status.certificate_expiry = self.client.tokens.credential_expires_at();
        let (requests_sent, blocked_until) = self.budget.ledger();
        let ledger = self.ledger.clone();
        self.status.checkpoint = Some(SourceCheckpoint {
            ledger,
            requests_sent,
            blocked_until,
        });
    }

    /// The hours of `grid` by schedule state (those older than the lookback count only while
    /// the initial lookback has them pending), and the requests planned for the next hour.
    fn schedule_status(&self, grid: &HourGrid, now: UnixMillis) -> ScheduleStatus {
        let plan = &self.config.plan;
        let lookback = lookback_start(plan, now);
        let mut hours = std::collections::BTreeMap::new();
        for (i, state) in grid.states.iter().enumerate() {
            let hour = UtcHour(grid.first.0 + i as i64);
            let state = match state {
                HourState::Failed => LookbackState::Failed,
                HourState::NotYetRead => LookbackState::NeverRead,
                HourState::Read if hour < lookback => continue,
                HourState::Read => self.ledger.state(plan, hour, now),
            };
            *hours.entry(state).or_insert(0) += 1;
        }
        let planned = planned_next_hour(plan, &self.ledger, now, self.per_poll_share());
        ScheduleStatus {
            hours,
            planned_next_hour: planned.min(self.config.max_requests_per_hour),
        }
    }

    /// Reads the inventory when it is due, handing it down the channel before the status.
    async fn refresh_inventory(&mut self, out: &DocumentSender) {
        let Some(reader) = self.inventory.as_mut() else {
            return;
        };
        let now = self.config.clock.now();
        if reader.is_due(now) {
            if let Some(workspaces) = reader.read(&mut self.client).await {
                let inventory = Inventory {
                    fetched_at: now,
                    workspaces,
                };
                let _ = out
                    .send(SourceMessage::Inventory(Box::new(inventory)))
                    .await;
            }
        }
        self.status.inventory = Some(reader.status.clone());
    }

    /// Reads `hour` to its end, handing its pages down the channel.
    async fn read(
        &mut self,
        hour: UtcHour,
        purpose: Purpose,
        out: &DocumentSender,
    ) -> Result<usize, ReadError> {
        self.client
            .read_hour(hour, purpose, &mut self.budget, |page: Bytes| {
                let doc = Document {
                    origin: format!("activity events {hour}"),
                    body: Body::Bytes(page),
                };
                let out = out.clone();
                async move {
                    let _ = out.send(SourceMessage::Document(doc)).await;
                }
            })
            .await
    }

    /// The hours a read of history covers, oldest first: never before what the API serves,
    /// nor (when resuming a backfill) hours the ledger records as read.
    fn history_hours(&self, history: History, now: UnixMillis) -> Vec<UtcHour> {
        let (first, last) = match history {
            History::Since(since) => (
                UtcHour::containing(now.saturating_sub_millis(since.as_millis() as i64)),
                UtcHour::containing(now),
            ),
            History::Hours { first, last } => (first, last),
        };
        (first.max(oldest_servable(now)).0..=last.0)
            .map(UtcHour)
            .filter(|h| self.ledger.last_read(*h).is_none())
            .collect()
    }

    /// Reads a history once (`top --since`, `backfill`), oldest hour first, showing progress;
    /// an hour that fails is tried again in two more rounds, then given up (the final status
    /// says `up = false`, and the hour stays unread in the ledger).
    async fn read_history(&mut self, history: History, out: &DocumentSender) {
        let now = self.config.clock.now();
        let mut pending = self.history_hours(history, now);
        let report_each_hour = matches!(history, History::Hours { .. });
        let mut progress = Progress::new(self.progress, pending.len() as u64);
        let purpose = match history {
            History::Since(_) => Purpose::Top,
            History::Hours { .. } => Purpose::Backfill,
        };
        let events_before = self.client.events_read;
        let mut tally = PollTally::new(now, &self.client);
        for round in 0..3 {
            let mut failed = Vec::new();
            for hour in pending {
                match self
                    .read_history_hour(hour, purpose, out, &mut progress)
                    .await
                {
                    HistoryHour::Read => {
                        tally.hours_read += 1;
                        self.ledger.record(hour, self.config.clock.now());
                        if report_each_hour {
                            self.report_hour(&mut tally, out).await;
                        }
                    }
                    HistoryHour::LeftOut => {}
                    HistoryHour::Failed(e) => {
                        if round == 2 {
                            tally.failed(&e);
                        }
                        failed.push(hour);
                    }
                    HistoryHour::Refused(e) => {
                        tally.failed(&e);
                        self.finish_status(tally);
                        return;
                    }
                }
                // An hour that failed counts as done at its last round only.
                if failed.last() != Some(&hour) || round == 2 {
                    progress.hour_done(self.client.events_read - events_before);
                }
            }
            pending = failed;
            if pending.is_empty() {
                break;
            }
        }
        progress.finish();
        for hour in &pending {
            self.failed.insert(*hour);
            tracing::error!(%hour, "This hour could not be read; its events are missing from what was read.");
        }
        self.finish_status(tally);
    }

    /// Reads one hour of history to its end, waiting for the request budget as long as it
    /// takes.
    async fn read_history_hour(
        &mut self,
        hour: UtcHour,
        purpose: Purpose,
        out: &DocumentSender,
        progress: &mut Progress,
    ) -> HistoryHour {
        loop {
            match self.read(hour, purpose, out).await {
                Ok(_) => return HistoryHour::Read,
                Err(ReadError::Budget { until } | ReadError::Throttled { until }) => {
                    tracing::warn!(%hour, until = %until.to_api_string(), "Waiting for the request budget.");
                    progress.waiting(until);
                    self.config.clock.sleep_until(until).await;
                }
                Err(e @ (ReadError::Auth(_) | ReadError::NotAuthorized(_))) => {
                    tracing::error!(error = %e, "Reading the activity log failed.");
                    return HistoryHour::Refused(e);
                }
                Err(ReadError::BadRequest(reason))
                    if at_retention_edge(hour, self.config.clock.now()) =>
                {
                    tracing::warn!(%hour, %reason, "The API no longer serves this hour (it keeps 28 days); it is left out.");
                    return HistoryHour::LeftOut;
                }
                Err(e) => {
                    tracing::warn!(%hour, error = %e, "Reading an hour failed; it is tried again.");
                    return HistoryHour::Failed(e);
                }
            }
        }
    }

    /// Sends the status after an hour of a backfill was read: its pages are all down the
    /// channel before it, so the receiver may record the hour as done.
    async fn report_hour(&mut self, tally: &mut PollTally, out: &DocumentSender) {
        let next = PollTally::new(self.config.clock.now(), &self.client);
        self.finish_status(std::mem::replace(tally, next));
        let _ = out
            .send(SourceMessage::Status(Box::new(self.status.clone())))
            .await;
    }

    /// Tells the aggregation who the exporter is (from its access token) before any page that
    /// may hold its own `ExportActivityEvents`; a status is sent only when that changed. A
    /// token that cannot be had now fails the reads below, which count it.
    async fn learn_own_identities(&mut self, out: &DocumentSender) {
        let now = self.config.clock.now();
        if self
            .client
            .tokens
            .token(&self.client.http, now)
            .await
            .is_err()
        {
            return;
        }
        let ids = self.client.tokens.principal_ids();
        if ids.is_empty() || ids == self.status.own_identities {
            return;
        }
        self.status.own_identities = ids;
        // The rest of the status is the last poll's, but the history still to load is today's:
        // a first status must not tell the aggregation the initial lookback is loaded.
        self.status.initial_lookback_hours_remaining = self.ledger.history_remaining();
        let _ = out
            .send(SourceMessage::Status(Box::new(self.status.clone())))
            .await;
    }

    async fn poll(&mut self, out: &DocumentSender) {
        let started = self.config.clock.now();
        self.ledger
            .forget_before(lookback_start(&self.config.plan, started));
        self.ledger.expire_before(oldest_servable(started));
        let history_before = self.ledger.history_remaining();
        self.learn_own_identities(out).await;
        let allowance = self.allowance(started);
        let reads = plan(&self.config.plan, &self.ledger, started, allowance);
        let mut tally = PollTally::new(started, &self.client);
        for read in reads {
            if let Err(e) = self.read_planned(read, out).await {
                tally.failed(&e);
                if e.stops_the_poll() {
                    break;
                }
            } else {
                tally.hours_read += 1;
            }
        }
        let paused = tally.outcome == PollOutcome::Paused;
        self.log_history_progress(history_before, paused);
        let oldest = oldest_servable(self.config.clock.now());
        self.failed = self.failed.split_off(&oldest);
        self.finish_status(tally);
    }

    /// Reads one planned hour and records it in the ledger; an hour at the API's edge is
    /// expired (not an error). A failure other than the budget marks the hour failed.
    async fn read_planned(
        &mut self,
        PlannedRead { hour, purpose }: PlannedRead,
        out: &DocumentSender,
    ) -> Result<(), ReadError> {
        let read_started = self.config.clock.now();
        let events_before = self.client.events_read;
        match self.read(hour, purpose, out).await {
            Ok(pages) => {
                tracing::debug!(%hour, pages, purpose = purpose.as_str(), "Hour read to its end.");
                let events = self.client.events_read - events_before;
                let ages = &self.config.plan.reread_ages;
                self.ledger.record_read(hour, read_started, events, ages);
                self.failed.remove(&hour);
                Ok(())
            }
            Err(ReadError::BadRequest(reason))
                if at_retention_edge(hour, self.config.clock.now()) =>
            {
                tracing::warn!(%hour, %reason, "The API no longer serves this hour (it keeps 28 days): it is expired, not read again.");
                self.ledger.expire_before(hour.next());
                self.failed = self.failed.split_off(&hour.next());
                Ok(())
            }
            Err(e) => {
                if matches!(e, ReadError::Budget { .. }) {
                    tracing::info!(%hour, error = %e, "Poll paused by the request budget.");
                } else {
                    self.failed.insert(hour);
                    tracing::warn!(%hour, error = %e, "Reading an hour of activity events failed; it is read again next poll.");
                }
                Err(e)
            }
        }
    }

    /// Logs the initial lookback's progress (hours done and total, events on the pages, polls
    /// paused by the budget, ETA), when a poll read some of it.
    fn log_history_progress(&mut self, before: usize, paused: bool) {
        let remaining = self.ledger.history_remaining();
        let Some(load) = self.history_load.as_mut() else {
            return;
        };
        load.budget_waits += u64::from(paused);
        if remaining == before {
            return;
        }
        let counts = progress::Counts {
            hours_done: (load.total - remaining) as u64,
            hours_total: load.total as u64,
            events: self.client.events_read - load.events_before,
            budget_waits: load.budget_waits,
        };
        let eta = counts.eta(load.started.elapsed()).map(|d| d.as_secs());
        if remaining == 0 {
            tracing::info!(
                hours_done = counts.hours_done,
                hours_total = counts.hours_total,
                events = counts.events,
                budget_waits = counts.budget_waits,
                elapsed_seconds = load.started.elapsed().as_secs(),
                "Initial lookback loaded."
            );
            self.history_load = None;
        } else {
            tracing::info!(
                hours_done = counts.hours_done,
                hours_total = counts.hours_total,
                hours_remaining = remaining,
                events = counts.events,
                budget_waits = counts.budget_waits,
                eta_seconds = eta,
                "Loading the initial lookback (oldest hours first)."
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_reqwest_cannot_build_is_a_start_up_error_naming_why() {
        // TLS 1.3 at least and 1.2 at most: no version left, which reqwest refuses to build.
        let builder = crate::azure::http::client_builder()
            .tls_version_min(reqwest::tls::Version::TLS_1_3)
            .tls_version_max(reqwest::tls::Version::TLS_1_2);
        let Err(e) = http_client(builder) else {
            panic!("built a client without a TLS version");
        };
        let message = e.to_string();
        assert!(message.contains("HTTP client"), "{message}");
        assert!(message.contains("tls versions"), "{message}");
    }
}

/// Where the initial lookback's load stands, for its progress lines.
struct HistoryLoad {
    started: std::time::Instant,
    total: usize,
    events_before: u64,
    budget_waits: u64,
}

#[cfg(test)]
mod grid_tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    #[test]
    fn the_grid_runs_from_the_initial_lookback_to_now_with_each_hours_state() {
        let plan = window::PlanConfig {
            lookback_hours: 3,
            ..window::PlanConfig::default()
        };
        let now = UnixMillis(100 * HOUR_MS + 30 * 60_000);
        // Initial lookback from hour 94: 94..=98 pending, 99 and 100 recent.
        let mut ledger = SweepLedger::loading_history(UtcHour(94), now);
        for h in [94, 95, 100] {
            ledger.record(UtcHour(h), now);
        }
        let failed: BTreeSet<UtcHour> = [UtcHour(96)].into();
        let grid = hour_grid(&ledger, &failed, &plan, now);
        assert_eq!(grid.first, UtcHour(94));
        use HourState::*;
        assert_eq!(
            grid.states,
            // 94 95 read; 96 failed; 97 98 pending; 99 (in the lookback) never read; 100 read.
            vec![Read, Read, Failed, NotYetRead, NotYetRead, NotYetRead, Read]
        );
        // Once the history is read and forgotten, hours older than the lookback stay read.
        for h in [96, 97, 98, 99] {
            ledger.record(UtcHour(h), now);
        }
        ledger.forget_before(UtcHour(97));
        let grid = hour_grid(&ledger, &BTreeSet::new(), &plan, now);
        assert_eq!(grid.states, vec![Read; 7]);
        // A first start without history: nothing before its start.
        let ledger = SweepLedger::starting_at(UtcHour(99));
        let grid = hour_grid(&ledger, &BTreeSet::new(), &plan, now);
        assert_eq!(
            (grid.first, grid.states),
            (UtcHour(99), vec![NotYetRead; 2])
        );
    }
}
