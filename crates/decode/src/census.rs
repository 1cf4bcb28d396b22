//! A census of a document's events by UTC day at the speed of a byte search, for planning a
//! replay's passes: every `"CreationTime"` key is found with `memmem`, its string value parsed
//! as the decoder parses it, and its day counted. Nothing else of the document is read.
//!
//! Invariants:
//! - an upper bound of the events the decoder accepts, for documents written as the API and
//!   every JSON serializer write them (keys without escapes): each accepted event has one
//!   `CreationTime`; a nested object, a repeated key or an event the decoder rejects for
//!   another reason (no `Id`) is counted too, which only makes a pass smaller;
//! - a key written with escapes (`"Creation\u0054ime"`), or a value with escapes, is not seen:
//!   such an event is still counted by the replay, only left out of the plan of its memory;
//! - pure, allocation-free on a slice; [`DayCensus`] carries at most one unfinished key
//!   between the chunks of a stream, so the result is the same however the bytes are cut.

use memchr::memmem;

use crate::time::parse_creation_time;

const KEY: &[u8] = b"\"CreationTime\"";
/// Longest value read as a time (the longest form the decoder parses, with room to spare).
const MAX_VALUE: usize = 40;
/// An unfinished key is dropped once this many bytes follow it with no value: only
/// whitespace can come between a key and its value, and no writer puts this much there.
const MAX_CARRY: usize = 4096;

/// Counts events by UTC day over the chunks of a stream, or one slice.
#[derive(Debug, Default)]
pub struct DayCensus {
    /// The bytes from an unfinished key on, kept for the next chunk.
    carry: Vec<u8>,
}

impl DayCensus {
    /// Counts the events of `doc`, a whole document, into `each` (called with days since the
    /// Unix epoch, once an event).
    pub fn count_slice(doc: &[u8], mut each: impl FnMut(i64)) {
        scan(doc, true, &mut each);
    }

    /// Counts the events of the next `chunk` of a stream; a key cut by the chunk's end is
    /// finished by the next one, or by [`DayCensus::finish`].
    pub fn feed(&mut self, chunk: &[u8], mut each: impl FnMut(i64)) {
        if self.carry.is_empty() {
            let done = scan(chunk, false, &mut each);
            self.keep(&chunk[done..]);
            return;
        }
        self.carry.extend_from_slice(chunk);
        let carry = std::mem::take(&mut self.carry);
        let done = scan(&carry, false, &mut each);
        self.keep(&carry[done..]);
    }

    /// The stream ended: a key still unfinished counts if its value is whole.
    pub fn finish(&mut self, mut each: impl FnMut(i64)) {
        scan(&std::mem::take(&mut self.carry), true, &mut each);
    }

    fn keep(&mut self, rest: &[u8]) {
        if rest.len() <= MAX_CARRY {
            self.carry.extend_from_slice(rest);
        }
    }
}

/// Counts every whole key of `buf`; returns where the first unfinished one starts (or where a
/// key could start that `buf`'s end cuts), `buf.len()` when nothing is left over. With `last`,
/// nothing is left over.
fn scan(buf: &[u8], last: bool, each: &mut impl FnMut(i64)) -> usize {
    let finder = memmem::Finder::new(KEY);
    let mut at = 0;
    while let Some(found) = finder.find(&buf[at..]) {
        let key = at + found;
        match value_after(buf, key + KEY.len()) {
            Value::Time(day, end) => {
                each(day);
                at = end;
            }
            Value::Other(end) => at = end,
            Value::Cut if last => return buf.len(),
            Value::Cut => return key,
        }
    }
    if last {
        return buf.len();
    }
    // The last bytes may be the start of a key that the next chunk finishes.
    buf.len().saturating_sub(KEY.len() - 1).max(at)
}

enum Value {
    /// A time of this day; the value ends before the index.
    Time(i64, usize),
    /// Not a string that parses as a time (a key in a string, an escaped or bad value).
    Other(usize),
    /// The buffer ends before the value does.
    Cut,
}

fn value_after(buf: &[u8], mut i: usize) -> Value {
    i = skip_ws(buf, i);
    match buf.get(i) {
        None => return Value::Cut,
        Some(b':') => i = skip_ws(buf, i + 1),
        Some(_) => return Value::Other(i),
    }
    match buf.get(i) {
        None => return Value::Cut,
        Some(b'"') => i += 1,
        Some(_) => return Value::Other(i),
    }
    let window = &buf[i..buf.len().min(i + MAX_VALUE + 1)];
    let Some(len) = memchr::memchr(b'"', window) else {
        return if window.len() > MAX_VALUE {
            Value::Other(i)
        } else {
            Value::Cut
        };
    };
    let text = std::str::from_utf8(&window[..len]).ok();
    match text.and_then(parse_creation_time) {
        Some(time) => Value::Time(time.utc_day(), i + len + 1),
        None => Value::Other(i + len + 1),
    }
}

fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while buf
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Days since the epoch, counted by the test from the dates it wrote.
    const D20: i64 = 20_412; // 2025-11-20
    const D21: i64 = 20_413;

    fn count(doc: &[u8]) -> BTreeMap<i64, usize> {
        let mut days = BTreeMap::new();
        DayCensus::count_slice(doc, |d| *days.entry(d).or_default() += 1);
        days
    }

    fn count_in_chunks(doc: &[u8], size: usize) -> BTreeMap<i64, usize> {
        let mut days = BTreeMap::new();
        let mut census = DayCensus::default();
        for chunk in doc.chunks(size) {
            census.feed(chunk, |d| *days.entry(d).or_default() += 1);
        }
        census.finish(|d| *days.entry(d).or_default() += 1);
        days
    }

    const DOC: &str = r#"{"activityEventEntities":[
        {"Id":"a","CreationTime":"2025-11-20T10:00:00","Activity":"ViewReport"},
        {"Id":"b","Activity":"ViewReport","CreationTime" : "2025-11-20T23:59:59.999Z"},
        {"Id":"c","CreationTime":
            "2025-11-21T00:00:00Z"},
        {"Id":"d","CreationTime":"yesterday"},
        {"Id":"e","CreationTime":7},
        {"Id":"f","Note":"a \"CreationTime\" in a string","CreationTime":"2025-11-21T08:00:00+02:00"},
        {"Id":"g","Creation\u0054ime":"2025-11-21T10:00:00"}
    ],"continuationToken":null}"#;

    #[test]
    fn counts_each_dated_key_by_its_utc_day() {
        assert_eq!(D20, crate::time::days_from_civil(2025, 11, 20));
        // a and b on the 20th; c on the 21st; f is 06:00Z on the 21st. d and e have no time;
        // g's escaped key is not seen (documented), nor the escaped quotes inside f's string.
        let expected = BTreeMap::from([(D20, 2), (D21, 2)]);
        assert_eq!(count(DOC.as_bytes()), expected);
    }

    #[test]
    fn a_stream_cut_anywhere_counts_the_same() {
        let doc = DOC.as_bytes();
        let whole = count(doc);
        for size in 1..=doc.len() {
            assert_eq!(count_in_chunks(doc, size), whole, "chunks of {size}");
        }
    }

    #[test]
    fn a_value_cut_by_the_end_of_the_document_is_not_counted() {
        assert!(count(br#"[{"CreationTime":"2025-11-20T10:00"#).is_empty());
        assert!(count(br#"[{"CreationTime""#).is_empty());
        assert_eq!(count(br#"{"CreationTime":"2025-11-20T10:00:00"}"#).len(), 1);
    }
}
