//! One event object: `decode_event` never panics, and an event that serde reads is read the
//! same way by the splitter's own parser (`decode_slice` on the same bytes). The check lives in
//! `powerbi_exporter_decode::differential`, shared with `tests/it/fuzz_regressions.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    powerbi_exporter_decode::differential::check_event(data);
});
