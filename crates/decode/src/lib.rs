//! Decode stage of powerbi-exporter: bytes of a source document → [`ActivityEvent`]s borrowed
//! from those bytes.
//!
//! [`split`] finds each event's bytes in a streamed document; [`event`] decodes one event
//! leniently with serde, and `object` parses plain event objects faster inside the splitter.
//! [`decode_reader`] and [`decode_slice`] join them and hands every outcome to an [`EventSink`],
//! so the aggregation and the `top` ranking consume one decoder; [`decode_slice_each`] hands
//! out the same outcomes as [`Decoded`] values that borrow the document, for a caller that
//! decodes on one thread and counts on another. [`item`] says which one item
//! (report, semantic model, dashboard, dataflow, app, Fabric item) an event is about.
//! [`census`] counts a document's events by day without decoding them, for a replay's plan.
//!
//! Invariants:
//! - pure and synchronous: no I/O beyond the reader handed to [`decode_reader`], no async
//!   runtime, no global state, so the fuzz targets and benchmarks build it alone;
//! - every element read from a document reaches the sink once, as an event or as a rejection with
//!   its reason; a malformed document is an error, never a panic (the fuzz targets check it);
//! - the fast object parser only handles what it reads plainly and defers the rest to serde,
//!   the authority (`differential` checks they agree).
//!
//! A crate of its own at the bottom of the stage order: it depends on no other part of the
//! exporter, which re-exports it as `powerbi_exporter::decode`.

// One function may use `unsafe` (`object::printable_ascii_str`, with its proof); none other.
#![deny(unsafe_code)]

pub mod census;
#[doc(hidden)]
pub mod differential;
pub mod event;
pub mod inventory;
pub mod item;
mod object;
pub mod split;
pub mod time;

use std::io::Read;

pub use event::{
    decode_event, Activity, ActivityEvent, EventKey, ItemId, ItemRef, ItemRefs, Rejection,
    ReportId, TypedField, UserKey, WorkspaceId,
};
pub use item::{item_of, Item, ItemType};
pub use split::{split_slice, Element, SplitError, Splitter};
pub use time::UnixMillis;

/// What consumes decoded events.
pub trait EventSink {
    /// Called with every event that decoded.
    fn accept(&mut self, event: &ActivityEvent<'_>);
    /// Called for every element that did not decode.
    fn reject(&mut self, reason: Rejection);
    /// Called instead of [`EventSink::accept`] by the decoders: `raw` is the event's JSON as
    /// the document had it, for sinks that forward events as they came.
    fn accept_raw(&mut self, event: &ActivityEvent<'_>, _raw: &[u8]) {
        self.accept(event);
    }
}

/// Decodes every event of a streamed document into `sink`. On error the events before the
/// fault have been delivered; the error says where the document broke.
pub fn decode_reader<R: Read>(reader: R, sink: &mut impl EventSink) -> Result<(), SplitError> {
    Splitter::new(reader).for_each(|element| deliver(element, sink))
}

/// Decodes every event of a document already in memory into `sink`, without copying it; same
/// outcome as [`decode_reader`].
pub fn decode_slice(doc: &[u8], sink: &mut impl EventSink) -> Result<(), SplitError> {
    split_slice(doc, |element| deliver(element, sink))
}

/// One element of a document, decoded: its event (with the event's JSON as the document had
/// it) or why it was rejected. Borrows from the document, so it can be decoded on one thread
/// and handed to a sink on another while the document lives.
// Nearly every outcome is an event: boxing it to shrink the rare rejection would cost an
// allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded<'b> {
    Event {
        event: ActivityEvent<'b>,
        raw: &'b [u8],
    },
    Rejected(Rejection),
}

impl Decoded<'_> {
    /// Hands the outcome to `sink`, as [`decode_slice`] would have.
    pub fn deliver(&self, sink: &mut impl EventSink) {
        match self {
            Decoded::Event { event, raw } => sink.accept_raw(event, raw),
            Decoded::Rejected(reason) => sink.reject(*reason),
        }
    }
}

/// Calls `each` with every element of a document in memory, decoded, in document order: what
/// [`decode_slice`] hands a sink, as values that borrow from `doc` and may outlive the call.
pub fn decode_slice_each<'b>(
    doc: &'b [u8],
    mut each: impl FnMut(Decoded<'b>),
) -> Result<(), SplitError> {
    split_slice(doc, |element| each(decoded(element)))
}

fn decoded<'b>(element: Element<'_, 'b>) -> Decoded<'b> {
    let outcome = match element.parsed {
        Some(raw) => raw.take_event(true),
        None => decode_event(element.bytes),
    };
    match outcome {
        Ok(event) => Decoded::Event {
            event,
            raw: element.bytes,
        },
        Err(reason) => Decoded::Rejected(reason),
    }
}

/// Hands one element's event, or its rejection, to `sink`.
fn deliver(element: Element<'_, '_>, sink: &mut impl EventSink) {
    decoded(element).deliver(sink);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what a sink saw, to compare the fast path with the splitter.
    #[derive(Debug, Default, PartialEq)]
    struct Seen(Vec<Result<(String, String), Rejection>>);

    impl EventSink for Seen {
        fn accept(&mut self, e: &ActivityEvent<'_>) {
            self.0
                .push(Ok((e.activity.to_string(), format!("{:?}", e.key))));
        }
        fn reject(&mut self, r: Rejection) {
            self.0.push(Err(r));
        }
    }

    fn both(doc: &str) -> (Seen, Option<String>) {
        let (mut fast, mut slow) = (Seen::default(), Seen::default());
        let fast_result = decode_slice(doc.as_bytes(), &mut fast).map_err(|e| e.to_string());
        // Streamed two bytes at a time: every refill point of the splitter and the parser.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = 2.min(self.0.len()).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let slow_result =
            decode_reader(Trickle(doc.as_bytes()), &mut slow).map_err(|e| e.to_string());
        assert_eq!(fast, slow, "same events for {doc}");
        assert_eq!(fast_result, slow_result, "same outcome for {doc}");
        (fast, fast_result.err())
    }

    const E1: &str = r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00"}"#;
    const E2: &str = r#"{"Id":"b","Activity":"ExportReport","CreationTime":"2026-11-20T10:00:01"}"#;

    #[test]
    fn in_memory_and_streamed_decoding_agree() {
        let docs = [
            format!(
                r#"{{"continuationToken":null,"activityEventEntities":[{E1},{E2},"x",7],"lastResultSet":true}}"#
            ),
            format!("[{E1},{E2}]"),
            format!("{E1}\n{E2}\n"),
            format!(r#"{{"activityEventEntities":[{E1}]}}{{"activityEventEntities":null}}[{E2}]"#),
            format!("[{E1},{{\"Id\": tru}},{E2}]"),
            format!("[{E1},{E2}"),
            format!(r#"{{"activityEventEntities":[{E1}, {E2}], "continuationUri": "#),
            format!("{E1} garbage {E2}"),
            "\u{feff}[]".to_string(),
            " \n ".to_string(),
            "7".to_string(),
        ];
        for doc in &docs {
            both(doc);
        }
        let (seen, err) = both(&docs[4]);
        assert_eq!(seen.0.len(), 3, "the broken element is rejected alone");
        assert_eq!(seen.0[1], Err(Rejection::InvalidJson));
        assert_eq!(err, None);
        let (seen, err) = both(&docs[5]);
        assert_eq!(seen.0.len(), 2);
        assert!(err.unwrap().starts_with("truncated"));
    }
}
