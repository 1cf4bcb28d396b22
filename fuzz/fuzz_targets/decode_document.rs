//! A whole document (API page(s), JSON array, JSON Lines): `decode_slice` (in memory) and
//! `decode_reader` (streamed in chunks whose sizes the input chooses) deliver the same
//! events and rejections and end the same way; every element the splitter's own parser read
//! agrees with serde's reading of the same bytes whenever serde can read them.
//!
//! Input: byte 0 picks the chunking (see `Chunks`), the rest is the document.
#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use powerbi_exporter::decode::{
    decode_event, decode_reader, decode_slice, split_slice, ActivityEvent, EventSink, Rejection,
};

#[derive(Default, Debug, PartialEq)]
struct Seen(Vec<Result<String, Rejection>>);

impl EventSink for Seen {
    fn accept(&mut self, event: &ActivityEvent<'_>) {
        self.0.push(Ok(format!("{event:?}")));
    }
    fn reject(&mut self, reason: Rejection) {
        self.0.push(Err(reason));
    }
}

/// A reader handing out the document in chunks of at most `1 << (mode & 0x0F)` bytes (1 to
/// 32 KiB: every refill point of the splitter with 1-byte reads, and quick runs with large
/// ones); with bit 6 the sizes vary (1..=max, pseudo-random from `mode`); with bit 7 every
/// third read is `Interrupted` first (the splitter must retry).
struct Chunks<'a> {
    rest: &'a [u8],
    max: usize,
    vary: bool,
    interrupt: bool,
    rng: u32,
    reads: u32,
}

impl<'a> Chunks<'a> {
    fn new(mode: u8, doc: &'a [u8]) -> Self {
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

fuzz_target!(|data: &[u8]| {
    let Some((&mode, doc)) = data.split_first() else {
        return;
    };

    let mut in_memory = Seen::default();
    let slice_result = decode_slice(doc, &mut in_memory).map_err(|e| e.to_string());

    let mut streamed = Seen::default();
    let reader_result =
        decode_reader(Chunks::new(mode, doc), &mut streamed).map_err(|e| e.to_string());
    assert_eq!(
        in_memory, streamed,
        "decode_slice and chunked decode_reader differ"
    );
    assert_eq!(
        slice_result, reader_result,
        "decode_slice and decode_reader end differently"
    );

    let mut whole = Seen::default();
    let whole_result = decode_reader(doc, &mut whole).map_err(|e| e.to_string());
    assert_eq!(in_memory, whole, "decode_slice and decode_reader differ");
    assert_eq!(slice_result, whole_result);

    // Each element is at least one byte: outcomes are bounded by the input.
    assert!(in_memory.0.len() <= doc.len());

    // Element by element: what the document decoder delivered equals serde's `decode_event`
    // on the element's bytes, unless serde finds the bytes invalid (the splitter's parser
    // does not validate values it skips, and has no nesting limit).
    let mut serde = Vec::new();
    let split_result = split_slice(doc, |element| {
        serde.push(decode_event(element.bytes).map(|e| format!("{e:?}")));
    })
    .map_err(|e| e.to_string());
    assert_eq!(
        split_result, slice_result,
        "split_slice and decode_slice end differently"
    );
    assert_eq!(serde.len(), in_memory.0.len(), "one outcome per element");
    for (i, (delivered, by_serde)) in in_memory.0.iter().zip(&serde).enumerate() {
        if *by_serde != Err(Rejection::InvalidJson) {
            assert_eq!(
                delivered, by_serde,
                "element {i}: fast parser and serde differ"
            );
        }
    }
});
