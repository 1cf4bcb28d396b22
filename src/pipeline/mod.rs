//! Pipeline glue: runs a source and feeds each document through the decoder into a sink.
//!
//! Decoding and aggregation are CPU work and file reads are blocking, so documents are
//! consumed on a blocking thread; the source runs on the async runtime. The documents already
//! waiting are taken together as a window; on a machine with more than one core they are read
//! and decoded ahead on worker threads while the consuming thread counts (`ahead`,
//! [`Decoding::Pipelined`]): the sink sees the same calls in the same order as on one thread,
//! so the outcome is the same byte for byte. A document that breaks (unreadable, truncated,
//! not JSON) is logged, counted, and the next one is read.
//!
//! A replay in passes ([`ReplayPass`]) sends its files once per pass: each pass hands on only
//! the events of its days, and what has no day (rejections, documents read or failed) only in
//! the first, so every count is the archive's once.

mod ahead;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::aggregate::Aggregator;
use crate::decode::inventory::Inventory;
use crate::decode::{
    decode_reader, decode_slice, ActivityEvent, EventSink, Rejection, SplitError, UnixMillis,
};
use crate::source::replay::ReplayPass;
use crate::source::{Body, Document, Source, SourceError, SourceMessage, SourceStatus};
use crate::state::{Checkpointer, SharedSourceState, SourceState};

/// Documents in flight between the source and the decoder: a window takes those waiting, so
/// this many (and the one received) can be decoded ahead together.
const CHANNEL_DEPTH: usize = 8;
/// Events applied per lock of the shared aggregator: scrapes wait for at most one batch.
const EVENTS_PER_LOCK: u32 = 4096;
/// Document errors kept for the end-of-run report (all are logged and counted).
const ERRORS_KEPT: usize = 20;

/// A document that could not be read to its end.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {kind}")]
pub struct DocumentError {
    pub origin: String,
    pub kind: SplitError,
}

/// Decodes one document into `sink` on the calling thread.
fn decode_document(doc: &Document, sink: &mut impl EventSink) -> Result<(), SplitError> {
    match &doc.body {
        Body::Bytes(bytes) => decode_slice(bytes, sink),
        Body::File(path) => decode_file(path, sink),
    }
}

/// A file up to [`ahead::WHOLE_FILE_BYTES`] is read whole and decoded in one pass; a larger
/// one is streamed, so memory stays bounded whatever the file size.
fn decode_file(path: &std::path::Path, sink: &mut impl EventSink) -> Result<(), SplitError> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > ahead::WHOLE_FILE_BYTES {
        return decode_reader(file, sink);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    std::io::Read::read_to_end(&mut file, &mut bytes)?;
    decode_slice(&bytes, sink)
}

/// How documents are decoded and handed to their sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoding {
    /// Read, decoded and counted on the calling thread, one event after the other.
    OneThread,
    /// Read and decoded ahead by worker threads, one a core, while the calling thread counts
    /// (in batches, in document order): the wall time is that of the slowest part, not the sum.
    /// A lone small document (a live page of a few events) is decoded on the calling thread.
    Pipelined,
}

/// A lone document smaller than this is decoded on the calling thread: a worker would cost
/// more to start than it saves.
const PIPELINED_MIN_BYTES: u64 = 256 * 1024;

impl Decoding {
    /// What the exporter uses: [`Decoding::Pipelined`] on a machine with more than one core.
    pub fn auto() -> Self {
        if ahead::cores() > 1 {
            Decoding::Pipelined
        } else {
            Decoding::OneThread
        }
    }

    /// Decodes `docs` into `sink`, in windows as a run takes them; the same calls, in the same
    /// order, whichever way.
    pub fn apply_documents<S: DocumentSink>(self, docs: &[Document], sink: &mut S) -> RunReport {
        let (mut report, mut spare) = (RunReport::default(), ahead::ReadBuffers::default());
        let mut rest = docs;
        while !rest.is_empty() {
            let (mut take, mut bytes) = (0, 0);
            while take < rest.len() && (take == 0 || !ahead::window_is_full(take, bytes)) {
                bytes += ahead::size_of(&rest[take]);
                take += 1;
            }
            let (window, later) = rest.split_at(take);
            self.apply_window(window, &mut spare, sink, None, |_, _, result| {
                report.record(result)
            });
            rest = later;
        }
        report
    }

    /// Worker threads for a window of `docs`.
    fn workers(self, docs: &[Document]) -> usize {
        let lone_and_small = docs.len() == 1 && ahead::size_of(&docs[0]) < PIPELINED_MIN_BYTES;
        if self == Decoding::OneThread || lone_and_small {
            return 0;
        }
        ahead::cores()
    }

    /// Decodes a window of documents into `sink` within `pass`, in order, and calls `after`
    /// with each document's result once the sink has had it (a document is counted, and its
    /// fault reported, in the first pass only: `after` sees `Ok` in later passes).
    fn apply_window<S: DocumentSink>(
        self,
        docs: &[Document],
        spare: &mut ahead::ReadBuffers,
        sink: &mut S,
        pass: Option<ReplayPass>,
        mut after: impl FnMut(&mut S, &Document, Result<(), DocumentError>),
    ) {
        ahead::with_workers(docs, self.workers(docs), spare, |routes| {
            for (doc, route) in docs.iter().zip(routes) {
                let result = apply_in_pass(doc, sink, pass, |sink| match &route {
                    ahead::Route::Ahead(queue) => ahead::deliver_ahead(queue, sink),
                    ahead::Route::Here => decode_document(doc, sink),
                });
                after(sink, doc, result);
            }
        });
    }
}

/// What a finished run saw go wrong.
#[derive(Debug, Default)]
pub struct RunReport {
    pub failed_documents: usize,
    /// The first few errors, for the final message.
    pub errors: Vec<DocumentError>,
}

impl RunReport {
    /// Logs and counts a document that could not be read to its end.
    fn record(&mut self, result: Result<(), DocumentError>) {
        let Err(e) = result else { return };
        tracing::warn!(error = %e, "Document could not be read to its end; the events before the fault are counted.");
        self.failed_documents += 1;
        if self.errors.len() < ERRORS_KEPT {
            self.errors.push(e);
        }
    }
}

/// The source's messages in order, with the documents already waiting taken together.
enum Step {
    /// Consecutive documents, decoded as one window.
    Documents(Vec<Document>),
    Inventory(Box<Inventory>),
    Status(Box<SourceStatus>),
    ReplayPass(ReplayPass),
}

/// Reads the source's messages as [`Step`]s.
struct Steps {
    rx: mpsc::Receiver<SourceMessage>,
    /// A message received while a window was gathered, for the next step.
    held: Option<SourceMessage>,
    /// The read buffers of the windows before, for the next.
    spare: ahead::ReadBuffers,
}

impl Steps {
    fn new(rx: mpsc::Receiver<SourceMessage>) -> Self {
        Steps {
            rx,
            held: None,
            spare: ahead::ReadBuffers::default(),
        }
    }

    /// Waits for a message; a document comes with those queued behind it, until the window is
    /// full (never waits for more: a live page is counted when it comes).
    fn next(&mut self) -> Option<Step> {
        let doc = match self.held.take().or_else(|| self.rx.blocking_recv())? {
            SourceMessage::Document(doc) => doc,
            SourceMessage::Inventory(inventory) => return Some(Step::Inventory(inventory)),
            SourceMessage::Status(status) => return Some(Step::Status(status)),
            SourceMessage::ReplayPass(pass) => return Some(Step::ReplayPass(pass)),
        };
        let mut bytes = ahead::size_of(&doc);
        let mut docs = vec![doc];
        while !ahead::window_is_full(docs.len(), bytes) {
            match self.rx.try_recv() {
                Ok(SourceMessage::Document(doc)) => {
                    bytes += ahead::size_of(&doc);
                    docs.push(doc);
                }
                Ok(other) => {
                    self.held = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        Some(Step::Documents(docs))
    }
}

/// A sink that also wants to know where documents start and end.
pub trait DocumentSink: EventSink {
    fn document_started(&mut self) {}
    fn document_done(&mut self, _complete: bool) {}
    /// A live source's health, for the self metrics.
    fn source_status(&mut self, _status: SourceStatus) {}
    /// The tenant's inventory (names, types, the report list).
    fn inventory(&mut self, _inventory: Inventory) {}
    /// A replay pass begins: the days of earlier passes never come again.
    fn replay_pass_started(&mut self, _pass: ReplayPass) {}
}

/// Hands on the events of the current replay pass's days only, and what has no day in the
/// first pass only; everything when there are no passes.
struct InPass<'a, S> {
    sink: &'a mut S,
    pass: Option<ReplayPass>,
}

impl<S: EventSink> EventSink for InPass<'_, S> {
    fn accept(&mut self, event: &ActivityEvent<'_>) {
        if self.pass.is_none_or(|p| p.contains(event.time)) {
            self.sink.accept(event);
        }
    }
    fn reject(&mut self, reason: Rejection) {
        if self.pass.is_none_or(|p| p.is_first()) {
            self.sink.reject(reason);
        }
    }
    fn accept_raw(&mut self, event: &ActivityEvent<'_>, raw: &[u8]) {
        if self.pass.is_none_or(|p| p.contains(event.time)) {
            self.sink.accept_raw(event, raw);
        }
    }
}

/// Decodes `doc` into `sink` within `pass`; a document is counted, and its fault reported, in
/// the first pass only.
fn apply_in_pass<S: DocumentSink>(
    doc: &Document,
    sink: &mut S,
    pass: Option<ReplayPass>,
    decode: impl FnOnce(&mut InPass<'_, S>) -> Result<(), SplitError>,
) -> Result<(), DocumentError> {
    let counts = pass.is_none_or(|p| p.is_first());
    sink.document_started();
    let result = decode(&mut InPass { sink, pass }).map_err(|kind| DocumentError {
        origin: doc.origin.clone(),
        kind,
    });
    if !counts {
        return Ok(());
    }
    sink.document_done(result.is_ok());
    result
}

impl DocumentSink for Aggregator {
    fn document_started(&mut self) {
        self.set_clock(UnixMillis::now());
    }
    fn document_done(&mut self, complete: bool) {
        Aggregator::document_done(self, complete);
    }
    fn source_status(&mut self, status: SourceStatus) {
        self.source_reported(
            &status.own_identities,
            status.initial_lookback_hours_remaining == 0,
        );
    }
    fn inventory(&mut self, inventory: Inventory) {
        self.apply_inventory(inventory);
    }
    fn replay_pass_started(&mut self, _pass: ReplayPass) {
        // A run to the end starts from nothing: every pass is new.
        self.forget_seen_ids();
    }
}

/// Runs a finite source to its end into `sink` and hands the sink back.
pub async fn run_to_end<S: DocumentSink + Send + 'static>(
    source: Box<dyn Source>,
    sink: S,
) -> Result<(S, RunReport), SourceError> {
    run_to_end_with(source, sink, Decoding::auto()).await
}

/// [`run_to_end`], decoding the documents as `decoding` says.
pub async fn run_to_end_with<S: DocumentSink + Send + 'static>(
    source: Box<dyn Source>,
    mut sink: S,
    decoding: Decoding,
) -> Result<(S, RunReport), SourceError> {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let consumer = tokio::task::spawn_blocking(move || {
        let (mut pass, mut report) = (None, RunReport::default());
        let mut steps = Steps::new(rx);
        while let Some(step) = steps.next() {
            match step {
                Step::Documents(docs) => {
                    let spare = &mut steps.spare;
                    decoding
                        .apply_window(&docs, spare, &mut sink, pass, |_, _, r| report.record(r));
                }
                Step::ReplayPass(next) => {
                    pass = Some(next);
                    sink.replay_pass_started(next);
                }
                Step::Status(status) => sink.source_status(*status),
                Step::Inventory(inventory) => sink.inventory(*inventory),
            }
        }
        (sink, report)
    });
    let produced = source.run(tx).await;
    let (sink, report) = consumer.await.expect("the decoding thread does not panic");
    produced.map(|()| (sink, report))
}

/// Feeds documents into the shared aggregator until the channel closes, and keeps the source's
/// status and replay progress in `source`; sets `ready` after the first document. With a
/// checkpointer, the state is saved (and published) after every status message of a live
/// source, (without a state file) after the first document, at most every few seconds between documents, and once
/// more when the channel closes; a last checkpoint held back by a failing spool is retried
/// until it goes through or `stop` is set.
pub fn spawn_shared_consumer(
    rx: mpsc::Receiver<SourceMessage>,
    aggregator: Arc<Mutex<Aggregator>>,
    source: SharedSourceState,
    ready: Arc<AtomicBool>,
    checkpointer: Option<Checkpointer>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<RunReport> {
    let consumer = SharedConsumer {
        aggregator,
        source,
        ready,
        checkpointer,
        pass: None,
        stop,
    };
    std::thread::Builder::new()
        .name("decode".into())
        .spawn(move || consumer.run(rx))
        .expect("spawning the decode thread")
}

/// The state of [`spawn_shared_consumer`]'s thread.
struct SharedConsumer {
    aggregator: Arc<Mutex<Aggregator>>,
    source: SharedSourceState,
    ready: Arc<AtomicBool>,
    checkpointer: Option<Checkpointer>,
    pass: Option<ReplayPass>,
    /// Set at shutdown: a held-back checkpoint is not waited for any longer.
    stop: Arc<AtomicBool>,
}

impl SharedConsumer {
    fn run(mut self, rx: mpsc::Receiver<SourceMessage>) -> RunReport {
        let mut report = RunReport::default();
        let mut steps = Steps::new(rx);
        while let Some(step) = steps.next() {
            match step {
                Step::Documents(docs) => self.documents(&docs, &mut steps.spare, &mut report),
                Step::ReplayPass(next) => {
                    self.pass = Some(next);
                    start_replay_pass(&self.aggregator, &self.source, next);
                }
                Step::Inventory(inventory) => lock(&self.aggregator).apply_inventory(*inventory),
                Step::Status(status) => self.status(*status),
            }
        }
        if let Some(c) = &mut self.checkpointer {
            c.checkpoint(&self.aggregator);
        }
        // A replay resumed with no file left sends no document: /metrics shows the state now.
        self.ready.store(true, Ordering::Release);
        if let Some(c) = &mut self.checkpointer {
            retry_held_back(c, &self.aggregator, &self.stop);
        }
        report
    }

    fn status(&mut self, status: SourceStatus) {
        lock(&self.aggregator).source_reported(
            &status.own_identities,
            status.initial_lookback_hours_remaining == 0,
        );
        lock_source(&self.source).status = Some(status);
        if let Some(c) = &mut self.checkpointer {
            c.checkpoint(&self.aggregator);
        }
    }

    /// Counts a window of documents; after each, the lock is let go and the state saved when
    /// due (the first document's at once, so ready means /metrics shows it).
    fn documents(
        &mut self,
        docs: &[Document],
        spare: &mut ahead::ReadBuffers,
        report: &mut RunReport,
    ) {
        let (aggregator, source, ready, checkpointer, stop) = (
            &self.aggregator,
            &self.source,
            &self.ready,
            &mut self.checkpointer,
            &self.stop,
        );
        let mut sink = LockedSink {
            mutex: aggregator,
            guard: None,
            applied: 0,
        };
        Decoding::auto().apply_window(docs, spare, &mut sink, self.pass, |sink, doc, result| {
            sink.guard = None;
            if let Body::File(path) = &doc.body {
                // A replayed file, saved with the counters it is in: a restart goes on after it.
                lock_source(source).replay.counted(path);
            }
            if let Some(c) = checkpointer.as_mut() {
                if ready.load(Ordering::Acquire) {
                    c.maybe_checkpoint(aggregator);
                } else {
                    c.first_document(aggregator);
                }
                if c.must_wait_for_spool() {
                    wait_for_spool(c, aggregator, stop);
                }
            }
            ready.store(true, Ordering::Release);
            report.record(result);
        });
    }
}

/// A replay pass begins: when it is a new one (not the one under way, read again after a
/// restart), the ids of the days of the pass before go, since those days never come again;
/// ids of other days stay (a state from a backfill brought them). The progress
/// and the dedup set are saved together, so a restart skips the passes done only with their
/// ids forgotten, and reads the one under way again with its ids.
fn start_replay_pass(aggregator: &Mutex<Aggregator>, source: &SharedSourceState, pass: ReplayPass) {
    // The source's lock is let go before the aggregator's is taken (checkpoints take both).
    let done = {
        let mut source = lock_source(source);
        let previous = source.replay.current;
        source.replay.start(pass).then_some(previous).flatten()
    };
    if let Some(done) = done {
        lock(aggregator).forget_seen_days(done.first_day, done.last_day);
    }
}

/// The source's state; a panic elsewhere does not make it unusable.
pub fn lock_source(source: &SharedSourceState) -> MutexGuard<'_, SourceState> {
    source.lock().unwrap_or_else(PoisonError::into_inner)
}

/// First and longest wait between retries of a held-back checkpoint once no more documents come
/// (a finished replay, or the shutdown of a live source): a disk freed meanwhile is noticed
/// within half a minute.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Counting stops while the events held back for a spool that cannot be written are at their
/// bound: memory stays bounded, and the source waits on its full channel (a live source's
/// pages stay in the API, a replay's in its files). Counting goes on once the spool takes them.
fn wait_for_spool(c: &mut Checkpointer, aggregator: &Mutex<Aggregator>, stop: &AtomicBool) {
    if stop.load(Ordering::Acquire) {
        return;
    }
    tracing::warn!(
        "The events counted but not spooled reached their bound in memory; counting waits until the forwarding spool can be written again."
    );
    retry_held_back(c, aggregator, stop);
    if !c.held_back() {
        tracing::info!("The forwarding spool took the held-back events; counting goes on.");
    }
}

/// Retries a checkpoint the spool held back, with backoff, until it goes through or `stop` is
/// set; `stop` is looked at every 100 ms, so it does not hold up a shutdown.
fn retry_held_back(c: &mut Checkpointer, aggregator: &Mutex<Aggregator>, stop: &AtomicBool) {
    let mut wait = RETRY_FIRST;
    while c.held_back() {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if stop.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        c.checkpoint(aggregator);
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// Applies events to a shared aggregator, re-taking the lock every few thousand events.
struct LockedSink<'a> {
    mutex: &'a Mutex<Aggregator>,
    guard: Option<MutexGuard<'a, Aggregator>>,
    applied: u32,
}

impl LockedSink<'_> {
    fn aggregator(&mut self) -> &mut Aggregator {
        self.applied += 1;
        if self.applied >= EVENTS_PER_LOCK {
            self.guard = None;
            self.applied = 0;
        }
        let mutex = self.mutex;
        self.guard.get_or_insert_with(|| lock(mutex))
    }
}

impl DocumentSink for LockedSink<'_> {
    fn document_started(&mut self) {
        self.aggregator().document_started();
    }
    fn document_done(&mut self, complete: bool) {
        self.aggregator().document_done(complete);
    }
}

impl EventSink for LockedSink<'_> {
    fn accept(&mut self, event: &ActivityEvent<'_>) {
        self.aggregator().accept(event);
    }
    fn reject(&mut self, reason: Rejection) {
        self.aggregator().reject(reason);
    }
    fn accept_raw(&mut self, event: &ActivityEvent<'_>, raw: &[u8]) {
        self.aggregator().accept_raw(event, raw);
    }
}

/// Locks the aggregator; a panic elsewhere while holding it leaves consistent counters (each
/// update is a single increment), so a poisoned lock is still used.
pub fn lock(mutex: &Mutex<Aggregator>) -> MutexGuard<'_, Aggregator> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
