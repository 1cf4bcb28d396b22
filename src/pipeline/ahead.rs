//! Documents read and decoded ahead on the machine's cores while the calling thread counts:
//! a window of the documents the source has already sent is shared out between worker
//! threads (a document to whichever is free, in order), each worker reads its document and
//! decodes it into batches of [`Decoded`] outcomes, and the calling thread hands the batches
//! to the sink document by document, in the order the source sent them.
//!
//! Invariants:
//! - the sink sees the same calls in the same order as when every document is decoded on the
//!   calling thread, so the outcome is the same byte for byte (`tests/it/parallel.rs`);
//! - memory is bounded by the window: its documents' bytes (at most two documents a core, and
//!   [`WINDOW_BYTES`] but for one large document) and [`BATCHES_AHEAD`] batches a document;
//! - no deadlock: documents are taken in order and a worker takes the next only when done
//!   with its last, so the document the calling thread waits for is always being decoded
//!   (or done); a worker waits only on a later document's full queue, which the calling
//!   thread reaches after the ones before.
//!
//! A file too large to read whole is streamed on the calling thread, where it was before.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::decode::{decode_slice_each, Decoded, EventSink, SplitError};
use crate::source::{Body, Document};

/// Events per batch handed from a worker to the counting thread: small, so the counting
/// thread waits little at the start of a document, and large enough that the hand-over (a
/// channel message) costs nothing per event.
const BATCH_EVENTS: usize = 256;
/// Batches a worker decodes ahead of the counting thread, per document.
const BATCHES_AHEAD: usize = 8;
/// A window's documents hold at most this many bytes (the first document is taken whatever its
/// size): the bound of the memory decoding ahead adds.
pub(super) const WINDOW_BYTES: u64 = 32 * 1024 * 1024;
/// Documents a window takes per core, at most: two, so that documents of like sizes share out
/// evenly between the workers (with one and a half a worker, one waits for the other at the
/// window's end, idle a third of the time).
const WINDOW_DOCUMENTS_PER_CORE: usize = 2;

/// Whether a window of `docs` documents holding `bytes` takes no more.
pub(super) fn window_is_full(docs: usize, bytes: u64) -> bool {
    docs >= WINDOW_DOCUMENTS_PER_CORE * cores() || bytes >= WINDOW_BYTES
}

/// The cores this process may use, asked once (on Linux the answer reads the cgroup's files,
/// and it is wanted for every document).
pub(super) fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Files up to this size are read whole and decoded in one pass; larger ones are streamed, so
/// memory stays bounded whatever the file size.
pub(super) const WHOLE_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// What a worker sends the counting thread about one document.
pub(super) enum Piece<'b> {
    Batch(Vec<Decoded<'b>>),
    /// The document is decoded to its end, or broke there.
    End(Result<(), SplitError>),
}

/// A document a worker decodes: where its outcomes go, and where its bytes are kept while
/// the window lives (a file's; a document in memory is borrowed as it is).
struct Job<'w> {
    doc: &'w Document,
    out: Mutex<Option<SyncSender<Piece<'w>>>>,
    bytes: &'w OnceLock<Vec<u8>>,
    spare: &'w Mutex<ReadBuffers>,
}

/// Buffers files were read into, kept from one window to the next (at most [`WINDOW_BYTES`] of
/// them): a file read into a buffer that already has the room touches no new memory, where a
/// fresh one is allocated and faulted in page by page.
#[derive(Debug, Default)]
pub(super) struct ReadBuffers(Vec<Vec<u8>>);

impl ReadBuffers {
    fn take(&mut self) -> Vec<u8> {
        self.0.pop().unwrap_or_default()
    }

    /// Keeps the buffers of a window that ended, the smallest first, up to [`WINDOW_BYTES`]
    /// in all (a large file's buffer is let go rather than held for good).
    fn keep(&mut self, buffers: Vec<OnceLock<Vec<u8>>>) {
        for mut buffer in buffers.into_iter().filter_map(OnceLock::into_inner) {
            buffer.clear();
            self.0.push(buffer);
        }
        self.0.sort_by_key(Vec::capacity);
        let mut kept = 0;
        self.0.retain(|buffer| {
            kept += buffer.capacity() as u64;
            kept <= WINDOW_BYTES
        });
    }
}

/// How one document of a window reaches the sink.
pub(super) enum Route<'w> {
    /// Decoded on the calling thread (a file too large to read whole, or no workers).
    Here,
    /// Decoded by a worker; its outcomes come in order on this queue.
    Ahead(Receiver<Piece<'w>>),
}

/// The size a document's bytes will take in memory, when known without reading it.
pub(super) fn size_of(doc: &Document) -> u64 {
    match &doc.body {
        Body::Bytes(bytes) => bytes.len() as u64,
        Body::File(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
    }
}

/// Whether a worker can decode `doc`: anything but a file too large to read whole.
fn decodable_ahead(doc: &Document) -> bool {
    match &doc.body {
        Body::Bytes(_) => true,
        Body::File(path) => std::fs::metadata(path).is_ok_and(|m| m.len() <= WHOLE_FILE_BYTES),
    }
}

/// Runs `count` on the calling thread with each document's route, while `workers` threads
/// decode the documents routed ahead, in order. A worker's panic is raised again here.
pub(super) fn with_workers<R>(
    docs: &[Document],
    workers: usize,
    spare: &mut ReadBuffers,
    count: impl FnOnce(Vec<Route<'_>>) -> R,
) -> R {
    let buffers: Vec<OnceLock<Vec<u8>>> = docs.iter().map(|_| OnceLock::new()).collect();
    let shared_spare = Mutex::new(std::mem::take(spare));
    let result = with_buffers(docs, workers, &buffers, &shared_spare, count);
    *spare = shared_spare
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    spare.keep(buffers);
    result
}

fn with_buffers<R>(
    docs: &[Document],
    workers: usize,
    buffers: &[OnceLock<Vec<u8>>],
    spare: &Mutex<ReadBuffers>,
    count: impl FnOnce(Vec<Route<'_>>) -> R,
) -> R {
    let jobs: Vec<_> = (docs.iter().zip(buffers))
        .map(|(doc, bytes)| (workers > 0 && decodable_ahead(doc)).then(|| job(doc, bytes, spare)))
        .collect();
    let (jobs, routes): (Vec<_>, Vec<_>) = jobs.into_iter().map(split_route).unzip();
    let ahead: Vec<&Job<'_>> = jobs.iter().flatten().collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..workers.min(ahead.len()) {
            scope.spawn(|| {
                while let Some(job) = ahead.get(next.fetch_add(1, Ordering::Relaxed)) {
                    decode_job(job);
                }
            });
        }
        count(routes)
    })
}

fn job<'w>(
    doc: &'w Document,
    bytes: &'w OnceLock<Vec<u8>>,
    spare: &'w Mutex<ReadBuffers>,
) -> (Job<'w>, Receiver<Piece<'w>>) {
    let (tx, rx) = sync_channel(BATCHES_AHEAD);
    let job = Job {
        doc,
        out: Mutex::new(Some(tx)),
        bytes,
        spare,
    };
    (job, rx)
}

fn split_route<'w>(job: Option<(Job<'w>, Receiver<Piece<'w>>)>) -> (Option<Job<'w>>, Route<'w>) {
    match job {
        Some((job, rx)) => (Some(job), Route::Ahead(rx)),
        None => (None, Route::Here),
    }
}

/// Reads and decodes one document into its queue. The sender is taken out of the job, so a
/// panic here drops it and the counting thread stops waiting (the scope raises the panic).
fn decode_job<'w>(job: &Job<'w>) {
    let taken = job
        .out
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let Some(out) = taken else { return };
    let doc: &'w Document = job.doc;
    let bytes: &'w [u8] = match &doc.body {
        Body::Bytes(bytes) => bytes,
        Body::File(path) => match read_whole(path, job.spare) {
            Ok(bytes) => job.bytes.get_or_init(|| bytes),
            Err(e) => {
                let _ = out.send(Piece::End(Err(e.into())));
                return;
            }
        },
    };
    let mut batch = Vec::with_capacity(BATCH_EVENTS);
    let result = decode_slice_each(bytes, |decoded| {
        batch.push(decoded);
        if batch.len() == BATCH_EVENTS {
            // The counting thread reads every document's queue to its end.
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_EVENTS));
            let _ = out.send(Piece::Batch(full));
        }
    });
    if !batch.is_empty() {
        let _ = out.send(Piece::Batch(batch));
    }
    let _ = out.send(Piece::End(result));
}

/// Reads the file into a spare buffer (the largest: they are sorted by capacity).
fn read_whole(path: &Path, spare: &Mutex<ReadBuffers>) -> std::io::Result<Vec<u8>> {
    let mut buffer = spare.lock().unwrap_or_else(PoisonError::into_inner).take();
    std::io::Read::read_to_end(&mut std::fs::File::open(path)?, &mut buffer)?;
    Ok(buffer)
}

/// Hands the outcomes of a document decoded ahead to `sink` as they come; the document's
/// result. A worker gone without one (it panicked) ends the document here.
pub(super) fn deliver_ahead(
    queue: &Receiver<Piece<'_>>,
    sink: &mut impl EventSink,
) -> Result<(), SplitError> {
    while let Ok(piece) = queue.recv() {
        match piece {
            Piece::Batch(batch) => batch.iter().for_each(|decoded| decoded.deliver(sink)),
            Piece::End(result) => return result,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window_of(capacities: &[usize]) -> Vec<OnceLock<Vec<u8>>> {
        (capacities.iter())
            .map(|&capacity| OnceLock::from(Vec::with_capacity(capacity)))
            .collect()
    }

    #[test]
    fn spare_buffers_keep_the_smallest_up_to_a_window_and_hand_out_the_largest() {
        const MIB: usize = 1024 * 1024;
        let mut spare = ReadBuffers::default();
        spare.keep(window_of(&[20 * MIB, 5 * MIB, 10 * MIB, 30 * MIB]));
        // 5 + 10 = 15 MiB fit the 32 MiB bound; adding 20 would not.
        let capacities: Vec<usize> = spare.0.iter().map(Vec::capacity).collect();
        assert_eq!(capacities, [5 * MIB, 10 * MIB]);
        assert_eq!(spare.take().capacity(), 10 * MIB);
        assert_eq!(spare.take().capacity(), 5 * MIB);
        assert_eq!(spare.take().capacity(), 0, "then a new one");
    }
}
