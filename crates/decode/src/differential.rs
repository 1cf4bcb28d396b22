//! The decoders checked against each other, shared by the fuzz targets (`fuzz/`) and the
//! regression test that replays their findings (`tests/it/fuzz_regressions.rs`), so a crash
//! file replays exactly as it ran. Not part of the exporter's behaviour; public only for them.
//!
//! Each check panics, naming the disagreement, when the decoders differ.

use std::io::{self, Read};

use super::{decode_event, decode_reader, decode_slice, split_slice, ActivityEvent, EventSink};
use super::{Rejection, SplitError};

/// Every outcome a sink saw, events as their full `Debug` text (a `Cow` prints its contents).
#[derive(Debug, Default, PartialEq)]
pub struct Outcomes(pub Vec<Result<String, Rejection>>);

impl EventSink for Outcomes {
    fn accept(&mut self, event: &ActivityEvent<'_>) {
        self.0.push(Ok(format!("{event:?}")));
    }
    fn reject(&mut self, reason: Rejection) {
        self.0.push(Err(reason));
    }
}

/// One event object: an object serde reads gives the same single outcome as a one-line
/// document, through the splitter's own parser (pages excluded: an `activityEventEntities` key
/// makes the object a page).
pub fn check_event(bytes: &[u8]) {
    let outcome = decode_event(bytes);
    if let Ok(event) = &outcome {
        assert!(
            !event.activity.as_str().trim().is_empty(),
            "an accepted event has an Activity"
        );
    }
    let expected = match outcome {
        Ok(e) => Ok(format!("{e:?}")),
        Err(Rejection::InvalidJson | Rejection::NotAnObject) => return,
        Err(reason) => Err(reason),
    };
    if bytes
        .windows(b"activityEventEntities".len())
        .any(|w| w == b"activityEventEntities")
    {
        return;
    }
    let mut seen = Outcomes::default();
    let result = decode_slice(bytes, &mut seen);
    assert!(
        result.is_ok(),
        "a valid object is a valid document: {result:?}"
    );
    assert_eq!(
        seen.0,
        vec![expected],
        "decode_slice and decode_event differ"
    );
}

/// A whole document: in memory, streamed in chunks chosen by `mode` (see [`Chunks`]) and
/// streamed whole agree event for event and end the same way; each element agrees with
/// serde's reading of its bytes unless serde finds them invalid (the splitter's parser does
/// not validate values it skips, and has no nesting limit).
pub fn check_document(mode: u8, doc: &[u8]) {
    let run = |reader: Option<&mut dyn Read>| {
        let mut seen = Outcomes::default();
        let result: Result<(), SplitError> = match reader {
            None => decode_slice(doc, &mut seen),
            Some(r) => decode_reader(r, &mut seen),
        };
        (seen, result.map_err(|e| e.to_string()))
    };
    let in_memory = run(None);
    assert_eq!(
        run(Some(&mut Chunks::new(mode, doc))),
        in_memory,
        "decode_slice and chunked decode_reader differ"
    );
    assert_eq!(
        run(Some(&mut &doc[..])),
        in_memory,
        "decode_slice and decode_reader differ"
    );
    // Each element is at least one byte: outcomes are bounded by the input.
    assert!(in_memory.0 .0.len() <= doc.len());
    let mut serde = Vec::new();
    let split = split_slice(doc, |element| {
        serde.push(decode_event(element.bytes).map(|e| format!("{e:?}")));
    });
    assert_eq!(
        split.map_err(|e| e.to_string()),
        in_memory.1,
        "split_slice and decode_slice end differently"
    );
    assert_eq!(serde.len(), in_memory.0 .0.len(), "one outcome per element");
    for (i, (delivered, by_serde)) in in_memory.0 .0.iter().zip(&serde).enumerate() {
        if *by_serde != Err(Rejection::InvalidJson) {
            assert_eq!(
                delivered, by_serde,
                "element {i}: fast parser and serde differ"
            );
        }
    }
}

/// A reader handing out a document in chunks of at most `1 << (mode & 0x0F)` bytes (1 to
/// 32 KiB: every refill point of the splitter with 1-byte reads, and quick runs with large
/// ones); with bit 6 the sizes vary (1..=max, pseudo-random from `mode`); with bit 7 every
/// third read is `Interrupted` first (the splitter must retry).
pub struct Chunks<'a> {
    rest: &'a [u8],
    max: usize,
    vary: bool,
    interrupt: bool,
    rng: u32,
    reads: u32,
}

impl<'a> Chunks<'a> {
    pub fn new(mode: u8, doc: &'a [u8]) -> Self {
        Chunks {
            rest: doc,
            max: 1 << (mode & 0x0F),
            vary: mode & 0x40 != 0,
            interrupt: mode & 0x80 != 0,
            rng: u32::from(mode) | 0x9E37_7900,
            reads: 0,
        }
    }
}

impl Read for Chunks<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        if self.interrupt && self.reads % 3 == 0 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let mut n = self.max;
        if self.vary {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 17;
            self.rng ^= self.rng << 5;
            n = 1 + self.rng as usize % self.max;
        }
        let n = n.min(self.rest.len()).min(out.len());
        out[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}
