//! A whole document (API page(s), JSON array, JSON Lines): `decode_slice` (in memory) and
//! `decode_reader` (streamed in chunks whose sizes the input chooses) deliver the same
//! events and rejections and end the same way; every element the splitter's own parser read
//! agrees with serde's reading of the same bytes whenever serde can read them. The check lives
//! in `powerbi_exporter_decode::differential`, shared with `tests/it/fuzz_regressions.rs`.
//!
//! Input: byte 0 picks the chunking (see `differential::Chunks`), the rest is the document.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&mode, doc)) = data.split_first() {
        powerbi_exporter_decode::differential::check_document(mode, doc);
    }
});
