//! Decode stage: bytes of a source document → [`ActivityEvent`]s borrowed from those bytes.
//!
//! [`split`] finds each event's bytes in a streamed document; [`event`] decodes one event
//! leniently; [`decode_slice`] decodes an in-memory document in one pass. [`decode_reader`]
//! and [`decode_slice`] join them and hands every outcome to an [`EventSink`],
//! so the aggregation and the `top` ranking consume one decoder.

pub mod event;
mod fast;
pub mod split;
pub mod time;

use std::io::Read;

pub use event::{
    decode_event, Activity, ActivityEvent, EventKey, Rejection, ReportId, UserKey, WorkspaceId,
};
pub use fast::decode_slice;
pub use split::{split_slice, SplitError, Splitter};
pub use time::UnixMillis;

/// What consumes decoded events.
pub trait EventSink {
    /// Called with every event that decoded.
    fn accept(&mut self, event: &ActivityEvent<'_>);
    /// Called for every element that did not decode.
    fn reject(&mut self, reason: Rejection);
}

/// Decodes every event of a streamed document into `sink`. On error the events before the
/// fault have been delivered; the error says where the document broke. For documents already
/// in memory, [`decode_slice`] gives the same outcome faster.
pub fn decode_reader<R: Read>(reader: R, sink: &mut impl EventSink) -> Result<(), SplitError> {
    Splitter::new(reader).for_each(|bytes| deliver_bytes(bytes, sink))
}

/// Decodes one element and hands the outcome to `sink`.
fn deliver_bytes(bytes: &[u8], sink: &mut impl EventSink) {
    match decode_event(bytes) {
        Ok(event) => sink.accept(&event),
        Err(reason) => sink.reject(reason),
    }
}
