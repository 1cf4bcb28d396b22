//! Pipeline glue: runs a source and feeds each document through the decoder into a sink.
//!
//! Decoding and aggregation are CPU work and file reads are blocking, so documents are
//! consumed on a blocking thread; the source runs on the async runtime. A large document may
//! also be decoded on a second thread while the first counts the events decoded before
//! ([`Decoding::Pipelined`]; not the default yet, see [`Decoding::auto`]): the sink sees the
//! same calls in the same order as on one thread, so the outcome is the same byte for byte. A document that
//! breaks (unreadable, truncated, not JSON) is logged, counted, and the next one is read.
//!
//! A replay in passes ([`ReplayPass`]) sends its files once per pass: each pass hands on only
//! the events of its days, and what has no day (rejections, documents read or failed) only in
//! the first, so every count is the archive's once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::aggregate::Aggregator;
use crate::decode::inventory::Inventory;
use crate::decode::{
    decode_reader, decode_slice, decode_slice_each, ActivityEvent, Decoded, EventSink, Rejection,
    SplitError, UnixMillis,
};
use crate::source::replay::ReplayPass;
use crate::source::{Body, Document, Source, SourceError, SourceMessage, SourceStatus};
use crate::state::{Checkpointer, SharedSourceState, SourceState};

/// Documents in flight between the source and the decoder.
const CHANNEL_DEPTH: usize = 4;
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

/// Decodes one document into `sink` the default way ([`Decoding::auto`]).
pub fn apply_document(doc: &Document, sink: &mut impl EventSink) -> Result<(), DocumentError> {
    apply_document_with(doc, sink, Decoding::auto())
}

/// Decodes one document into `sink` the way `decoding` says; the sink sees the same calls in
/// the same order either way.
pub fn apply_document_with(
    doc: &Document,
    sink: &mut impl EventSink,
    decoding: Decoding,
) -> Result<(), DocumentError> {
    let result = match &doc.body {
        Body::Bytes(bytes) => decoding.decode_slice(bytes, sink),
        Body::File(path) => decode_file(path, sink, decoding),
    };
    result.map_err(|kind| DocumentError {
        origin: doc.origin.clone(),
        kind,
    })
}

/// Files up to this size are read whole and decoded in one pass; larger ones are streamed, so
/// memory stays bounded whatever the file size.
const WHOLE_FILE_BYTES: u64 = 32 * 1024 * 1024;

fn decode_file(
    path: &std::path::Path,
    sink: &mut impl EventSink,
    decoding: Decoding,
) -> Result<(), SplitError> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > WHOLE_FILE_BYTES {
        return decode_reader(file, sink);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    std::io::Read::read_to_end(&mut file, &mut bytes)?;
    decoding.decode_slice(&bytes, sink)
}

/// How a document in memory is decoded and handed to its sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoding {
    /// Decoded and counted on the calling thread, one event after the other.
    OneThread,
    /// Decoded on a second thread while the calling thread counts the events decoded before
    /// (in batches, in document order): the wall time is that of the slower of the two, not
    /// their sum. Small documents are decoded on the calling thread all the same.
    Pipelined,
}

/// Events per batch handed from the decoding thread to the counting one: small, so the counting
/// thread waits little at the start of a document, and large enough that the hand-over (a
/// channel message) costs nothing per event.
const BATCH_EVENTS: usize = 256;
/// Batches decoded ahead of the counting thread, at most.
const BATCHES_AHEAD: usize = 8;
/// Documents smaller than this are decoded on the calling thread: a second thread would cost
/// more to start than it saves (a live page of a few events, a small file).
const PIPELINED_MIN_BYTES: usize = 256 * 1024;

impl Decoding {
    /// What the exporter uses: [`Decoding::OneThread`] for now. On the 2-core dev machine,
    /// busy with other builds, the pipelined path measured 0–20 % slower than one thread in
    /// most runs (batches of 64, 256 and 1,024 events) and 15 % faster in one, not the ~1.7×
    /// a quiet machine should give; it stays available, with its test of equal outcomes,
    /// until a quiet machine decides (`cargo bench --bench pipeline` times both).
    pub fn auto() -> Self {
        Decoding::OneThread
    }

    /// Decodes `doc` into `sink`; the same calls, in the same order, whichever way.
    pub fn decode_slice(self, doc: &[u8], sink: &mut impl EventSink) -> Result<(), SplitError> {
        if self == Decoding::OneThread || doc.len() < PIPELINED_MIN_BYTES {
            return decode_slice(doc, sink);
        }
        decode_slice_pipelined(doc, sink)
    }
}

/// Decodes `doc` on a scoped thread into batches of [`Decoded`] outcomes (borrowing `doc`) and
/// hands them to `sink` on this thread as they come; emptied batches go back to be refilled, so
/// no batch is allocated per document after the first few. A panic of the decoding thread is
/// raised again here.
fn decode_slice_pipelined(doc: &[u8], sink: &mut impl EventSink) -> Result<(), SplitError> {
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<Decoded<'_>>>(BATCHES_AHEAD);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<Decoded<'_>>>();
    std::thread::scope(|scope| {
        let decoder = scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH_EVENTS);
            let result = decode_slice_each(doc, |decoded| {
                batch.push(decoded);
                if batch.len() == BATCH_EVENTS {
                    let next =
                        (empty_rx.try_recv()).unwrap_or_else(|_| Vec::with_capacity(BATCH_EVENTS));
                    // The counting thread only stops receiving once this thread is done.
                    let _ = full_tx.send(std::mem::replace(&mut batch, next));
                }
            });
            if !batch.is_empty() {
                let _ = full_tx.send(batch);
            }
            result
        });
        for mut batch in full_rx {
            for decoded in batch.drain(..) {
                decoded.deliver(sink);
            }
            // Refused once the decoding thread is done: the batch is then dropped here.
            let _ = empty_tx.send(batch);
        }
        decoder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// What a finished run saw go wrong.
#[derive(Debug, Default)]
pub struct RunReport {
    pub failed_documents: usize,
    /// The first few errors, for the final message.
    pub errors: Vec<DocumentError>,
}

fn drain(
    mut rx: mpsc::Receiver<SourceMessage>,
    mut handle: impl FnMut(SourceMessage) -> Result<(), DocumentError>,
) -> RunReport {
    let mut report = RunReport::default();
    while let Some(message) = rx.blocking_recv() {
        if let Err(e) = handle(message) {
            tracing::warn!(error = %e, "Document could not be read to its end; the events before the fault are counted.");
            report.failed_documents += 1;
            if report.errors.len() < ERRORS_KEPT {
                report.errors.push(e);
            }
        }
    }
    report
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
    decoding: Decoding,
) -> Result<(), DocumentError> {
    let counts = pass.is_none_or(|p| p.is_first());
    sink.document_started();
    let result = apply_document_with(doc, &mut InPass { sink, pass }, decoding);
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
        let mut pass = None;
        let report = drain(rx, |message| match message {
            SourceMessage::Document(doc) => apply_in_pass(&doc, &mut sink, pass, decoding),
            SourceMessage::ReplayPass(next) => {
                pass = Some(next);
                sink.replay_pass_started(next);
                Ok(())
            }
            SourceMessage::Status(status) => {
                sink.source_status(*status);
                Ok(())
            }
            SourceMessage::Inventory(inventory) => {
                sink.inventory(*inventory);
                Ok(())
            }
        });
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
    mut checkpointer: Option<Checkpointer>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<RunReport> {
    std::thread::Builder::new()
        .name("decode".into())
        .spawn(move || {
            let mut pass = None;
            let report = drain(rx, |message| {
                let doc = match message {
                    SourceMessage::Document(doc) => doc,
                    SourceMessage::ReplayPass(next) => {
                        pass = Some(next);
                        start_replay_pass(&aggregator, &source, next);
                        return Ok(());
                    }
                    SourceMessage::Inventory(inventory) => {
                        lock(&aggregator).apply_inventory(*inventory);
                        return Ok(());
                    }
                    SourceMessage::Status(status) => {
                        lock(&aggregator).source_reported(
                            &status.own_identities,
                            status.initial_lookback_hours_remaining == 0,
                        );
                        lock_source(&source).status = Some(*status);
                        if let Some(c) = &mut checkpointer {
                            c.checkpoint(&aggregator);
                        }
                        return Ok(());
                    }
                };
                let mut sink = LockedSink {
                    mutex: &aggregator,
                    guard: None,
                    applied: 0,
                };
                let result = apply_in_pass(&doc, &mut sink, pass, Decoding::auto());
                drop(sink);
                if let Some(c) = &mut checkpointer {
                    if ready.load(Ordering::Acquire) {
                        c.maybe_checkpoint(&aggregator);
                    } else {
                        c.first_document(&aggregator);
                    }
                }
                ready.store(true, Ordering::Release);
                result
            });
            if let Some(c) = &mut checkpointer {
                c.checkpoint(&aggregator);
                retry_held_back(c, &aggregator, &stop);
            }
            report
        })
        .expect("spawning the decode thread")
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
