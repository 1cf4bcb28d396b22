//! Streaming splitter: finds the bytes of each event in a document without parsing them.
//!
//! A document is any of what users have on disk or what the API sends:
//! - an API page `{"activityEventEntities": [...], "continuationUri": ...}` (several pages may
//!   follow each other in one file, or one per line);
//! - a JSON array of events (what `Get-PowerBIActivityEvent` and most archivers save);
//! - JSON Lines / concatenated objects, one event each.
//!
//! Invariants:
//! - memory is bounded by the read chunk plus the largest single event, never by the number
//!   of events: the buffer only ever holds the element being scanned;
//! - each element is handed out as one contiguous slice, so the event decoder can borrow
//!   from it; the splitter does not validate inside elements (the decoder does, per event);
//! - structural faults outside elements (truncation, garbage between elements) end the
//!   document with a [`SplitError`] that names the byte offset; elements already handed out
//!   stay handed out.

use std::io::{self, Read};

use super::event::RawEvent;
use super::object::{parse_event_object, Parse};

/// The key under which an API page carries its events.
const ENTITIES_KEY: &[u8] = b"activityEventEntities";
/// Read size; also the initial buffer size.
const CHUNK: usize = 256 * 1024;
/// Largest single event (or top-level value scanned as one) the splitter accepts.
pub const MAX_ELEMENT_BYTES: usize = 32 * 1024 * 1024;

/// Why a document could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    #[error("invalid JSON at byte {offset}: expected {expected} {context}")]
    Syntax {
        offset: u64,
        expected: &'static str,
        context: &'static str,
    },
    #[error("truncated: the data ends at byte {offset} {context}")]
    Truncated { offset: u64, context: &'static str },
    #[error("a single value at byte {offset} is larger than {MAX_ELEMENT_BYTES} bytes")]
    TooLarge { offset: u64 },
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Between top-level values.
    TopLevel,
    /// Inside an array of events: the top-level one, or a page's `activityEventEntities`.
    Array { first: bool, in_page: bool },
    /// Inside a top-level object. Until its `activityEventEntities` key shows it is a page,
    /// it may be an event itself, so its bytes from `obj_start` are kept.
    Object {
        obj_start: usize,
        first: bool,
        page: bool,
    },
}

impl State {
    fn context(self) -> &'static str {
        match self {
            State::TopLevel => "between top-level values",
            State::Array { in_page: true, .. } => "inside the activityEventEntities array",
            State::Array { in_page: false, .. } => "inside the top-level array",
            State::Object { .. } => "inside a top-level object",
        }
    }
}

enum Step<'b> {
    NeedMore,
    /// An element's bytes, and whether the event parser filled the slot from them.
    Element(&'b [u8], bool),
    Continue,
    Done,
}

/// One element of a document: its bytes and, when the event parser could read them plainly,
/// its fields (else the decoder hands the bytes to serde).
pub struct Element<'s, 'b> {
    pub bytes: &'b [u8],
    pub(crate) parsed: Option<&'s mut RawEvent<'b>>,
}

/// The splitter's position: everything but the bytes, so one scanner serves a streamed
/// document (with a sliding buffer) and an in-memory one (the slice itself).
#[derive(Debug, Clone, Copy)]
struct Scanner {
    /// Bytes before `start` are consumed.
    start: usize,
    /// Absolute offset of `buf[0]` in the document.
    base: u64,
    eof: bool,
    state: State,
}

/// Splits one document read from `R` into event elements.
pub struct Splitter<R> {
    reader: R,
    buf: Vec<u8>,
    /// Bytes before `end` are filled.
    end: usize,
    scan: Scanner,
}

/// Calls `on_element` with every element of an in-memory document, without copying it.
pub fn split_slice<'b>(
    doc: &'b [u8],
    mut on_element: impl FnMut(Element<'_, 'b>),
) -> Result<(), SplitError> {
    let mut scan = Scanner {
        start: 0,
        base: 0,
        eof: true,
        state: State::TopLevel,
    };
    let mut slot = RawEvent::default();
    loop {
        match scan.step(doc, &mut slot)? {
            Step::Element(bytes, parsed) => on_element(Element {
                bytes,
                parsed: parsed.then_some(&mut slot),
            }),
            Step::Continue => {}
            Step::NeedMore => {
                return Err(SplitError::Truncated {
                    offset: doc.len() as u64,
                    context: scan.state.context(),
                })
            }
            Step::Done => return Ok(()),
        }
    }
}

impl<R: Read> Splitter<R> {
    pub fn new(reader: R) -> Self {
        Splitter {
            reader,
            buf: vec![0; CHUNK],
            end: 0,
            scan: Scanner {
                start: 0,
                base: 0,
                eof: false,
                state: State::TopLevel,
            },
        }
    }

    /// Calls `on_element` with the bytes of every element, in document order.
    pub fn for_each(
        &mut self,
        mut on_element: impl FnMut(Element<'_, '_>),
    ) -> Result<(), SplitError> {
        loop {
            // One slot per fill, not one per step: the parser resets it for each event.
            let buf = &self.buf[..self.end];
            let mut slot = RawEvent::default();
            loop {
                match self.scan.step(buf, &mut slot)? {
                    Step::Element(bytes, parsed) => on_element(Element {
                        bytes,
                        parsed: parsed.then_some(&mut slot),
                    }),
                    Step::Continue => {}
                    Step::NeedMore => break,
                    Step::Done => return Ok(()),
                }
            }
            if self.scan.eof {
                return Err(SplitError::Truncated {
                    offset: self.scan.base + self.end as u64,
                    context: self.scan.state.context(),
                });
            }
            self.fill()?;
        }
    }

    /// Moves the kept bytes to the front, grows the buffer when one value fills it, reads more.
    fn fill(&mut self) -> Result<(), SplitError> {
        let scan = &mut self.scan;
        let keep = match scan.state {
            State::Object {
                obj_start,
                page: false,
                ..
            } => obj_start,
            _ => scan.start,
        };
        if keep > 0 {
            self.buf.copy_within(keep..self.end, 0);
            scan.base += keep as u64;
            self.end -= keep;
            scan.start -= keep;
            if let State::Object { obj_start, .. } = &mut scan.state {
                *obj_start = obj_start.saturating_sub(keep);
            }
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_ELEMENT_BYTES {
                return Err(SplitError::TooLarge { offset: scan.base });
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    scan.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Scanner {
    fn syntax(&self, at: usize, expected: &'static str) -> SplitError {
        SplitError::Syntax {
            offset: self.base + at as u64,
            expected,
            context: self.state.context(),
        }
    }

    /// Parses one step of `buf` from `start`. A step either completes (and moves `start`) or
    /// asks for more bytes and is then redone from the same `start`.
    fn step<'b>(&mut self, buf: &'b [u8], slot: &mut RawEvent<'b>) -> Result<Step<'b>, SplitError> {
        let mut i = self.start;
        if self.base == 0 && i == 0 {
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            if buf.len() < BOM.len() && !self.eof && BOM.starts_with(buf) {
                return Ok(Step::NeedMore);
            }
            if buf.starts_with(BOM) {
                i = BOM.len();
            }
        }
        let Some(p) = skip_ws(buf, i) else {
            return Ok(if self.eof && matches!(self.state, State::TopLevel) {
                Step::Done
            } else {
                Step::NeedMore
            });
        };
        match self.state {
            State::TopLevel => self.top_level(buf, p, slot),
            State::Array { first, in_page } => self.in_array(buf, p, first, in_page, slot),
            State::Object {
                obj_start,
                first,
                page,
            } => self.in_object(buf, p, obj_start, first, page),
        }
    }

    /// At `buf[p]`, outside any value: an array, or an object (an event, or a page).
    #[inline]
    fn top_level<'b>(
        &mut self,
        buf: &'b [u8],
        p: usize,
        slot: &mut RawEvent<'b>,
    ) -> Result<Step<'b>, SplitError> {
        match buf[p] {
            b'[' => {
                self.start = p + 1;
                self.state = State::Array {
                    first: true,
                    in_page: false,
                };
                Ok(Step::Continue)
            }
            b'{' => match parse_event_object(buf, p, slot) {
                Parse::Event(end) => {
                    self.start = end;
                    Ok(Step::Element(&buf[p..end], true))
                }
                Parse::NeedMore => Ok(Step::NeedMore),
                // A page, or an object only serde can judge: walk its keys.
                Parse::Bail => {
                    self.start = p + 1;
                    self.state = State::Object {
                        obj_start: p,
                        first: true,
                        page: false,
                    };
                    Ok(Step::Continue)
                }
            },
            _ => Err(self.syntax(
                p,
                "'[' or '{' (an API page, an array of events or JSON Lines)",
            )),
        }
    }

    /// At `buf[p]` inside an array (top-level, or a page's `activityEventEntities`): its end,
    /// or the next element, parsed as an event when plain enough, else skipped whole.
    #[inline]
    fn in_array<'b>(
        &mut self,
        buf: &'b [u8],
        p: usize,
        first: bool,
        in_page: bool,
        slot: &mut RawEvent<'b>,
    ) -> Result<Step<'b>, SplitError> {
        if buf[p] == b']' {
            self.start = p + 1;
            self.state = if in_page {
                State::Object {
                    obj_start: 0,
                    first: false,
                    page: true,
                }
            } else {
                State::TopLevel
            };
            return Ok(Step::Continue);
        }
        let Some(v) = self.next_item(buf, p, first, "',' or ']'")? else {
            return Ok(Step::NeedMore);
        };
        let next = State::Array {
            first: false,
            in_page,
        };
        if buf[v] == b'{' {
            match parse_event_object(buf, v, slot) {
                Parse::Event(end) => {
                    self.start = end;
                    self.state = next;
                    return Ok(Step::Element(&buf[v..end], true));
                }
                Parse::NeedMore => return Ok(Step::NeedMore),
                Parse::Bail => {}
            }
        }
        match skip_value(buf, v, self.eof).map_err(|e| self.syntax(v, e))? {
            None => Ok(Step::NeedMore),
            Some(to) => {
                self.start = to;
                self.state = next;
                Ok(Step::Element(&buf[v..to], false))
            }
        }
    }

    /// At `buf[p]` inside an object walked key by key (a page, or an element serde judges):
    /// its end, or the next key and value; `activityEventEntities` opens the page's array.
    #[inline]
    fn in_object<'b>(
        &mut self,
        buf: &'b [u8],
        p: usize,
        obj_start: usize,
        first: bool,
        page: bool,
    ) -> Result<Step<'b>, SplitError> {
        if buf[p] == b'}' {
            self.start = p + 1;
            self.state = State::TopLevel;
            return Ok(if page {
                Step::Continue
            } else {
                Step::Element(&buf[obj_start..p + 1], false)
            });
        }
        let Some(k) = self.next_item(buf, p, first, "',' or '}'")? else {
            return Ok(Step::NeedMore);
        };
        if buf[k] != b'"' {
            return Err(self.syntax(k, "a key string"));
        }
        let Some((key_end, _)) = skip_string(buf, k) else {
            return Ok(Step::NeedMore);
        };
        let Some(colon) = skip_ws(buf, key_end) else {
            return Ok(Step::NeedMore);
        };
        if buf[colon] != b':' {
            return Err(self.syntax(colon, "':'"));
        }
        let Some(v) = skip_ws(buf, colon + 1) else {
            return Ok(Step::NeedMore);
        };
        let is_entities = &buf[k + 1..key_end - 1] == ENTITIES_KEY;
        if is_entities && buf[v] == b'[' {
            self.start = v + 1;
            self.state = State::Array {
                first: true,
                in_page: true,
            };
            return Ok(Step::Continue);
        }
        match skip_value(buf, v, self.eof).map_err(|e| self.syntax(v, e))? {
            None => Ok(Step::NeedMore),
            Some(to) => {
                self.start = to;
                self.state = State::Object {
                    obj_start,
                    first: false,
                    page: page || is_entities,
                };
                Ok(Step::Continue)
            }
        }
    }

    /// Where the next item of an array or object starts, at or after `buf[p]`: `p` for the
    /// first, else past the `,` that must be at `p` (`expected` names what may be there).
    /// `Ok(None)`: the buffer ends first.
    #[inline]
    fn next_item(
        &self,
        buf: &[u8],
        p: usize,
        first: bool,
        expected: &'static str,
    ) -> Result<Option<usize>, SplitError> {
        if first {
            return Ok(Some(p));
        }
        if buf[p] != b',' {
            return Err(self.syntax(p, expected));
        }
        Ok(skip_ws(buf, p + 1))
    }
}

/// First non-whitespace index at or after `i`, or `None` if the buffer ends first.
pub(super) fn skip_ws(buf: &[u8], mut i: usize) -> Option<usize> {
    while i < buf.len() {
        if !matches!(buf[i], b' ' | b'\t' | b'\r' | b'\n') {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// What [`scan_string`] learnt about one string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StringScan {
    /// Index just past the closing quote.
    pub end: usize,
    /// Whether it has escapes (the event parser then lets serde unescape it).
    pub escaped: bool,
    /// Whether every byte between the quotes is printable ASCII: no control byte (which JSON
    /// forbids unescaped) and no byte of a multi-byte UTF-8 sequence. Such a string is valid
    /// UTF-8 as it stands; any other needs checking byte by byte.
    pub printable_ascii: bool,
}

/// Index just past the string starting with the quote at `i`, and whether it has escapes;
/// `None` if the buffer ends first.
pub(super) fn skip_string(buf: &[u8], i: usize) -> Option<(usize, bool)> {
    scan::<false>(buf, i).map(|s| (s.end, s.escaped))
}

/// Scans the string starting with the quote at `i` to its closing quote; `None` if the buffer
/// ends first.
pub(super) fn scan_string(buf: &[u8], i: usize) -> Option<StringScan> {
    scan::<true>(buf, i)
}

/// [`scan_string`]; without `PRINTABLE`, `printable_ascii` is not computed (and means
/// nothing), which saves a third of the work on keys and on values that are skipped.
#[inline]
fn scan<const PRINTABLE: bool>(buf: &[u8], i: usize) -> Option<StringScan> {
    let mut j = i + 1;
    let mut escaped = false;
    let mut odd = false;
    loop {
        let (k, odd_before) = next_quote_or_backslash::<PRINTABLE>(buf, j)?;
        odd |= odd_before;
        if buf[k] == b'"' {
            return Some(StringScan {
                end: k + 1,
                escaped,
                printable_ascii: !odd,
            });
        }
        escaped = true;
        j = k + 2;
        if j > buf.len() {
            return None;
        }
    }
}

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGH_BITS: u64 = u64::from_le_bytes([0x80; 8]);

/// The high bit of each byte of `w` that is below `n` (`n` ≤ 0x80). Exact up to the lowest
/// flagged byte; a byte above a flagged one may be flagged falsely (a borrow), which is why
/// callers only ever look at the lowest flag.
#[inline]
fn bytes_below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH_BITS
}

/// The high bit of each byte of `w` equal to `b`; exact up to the lowest flagged byte.
#[inline]
fn bytes_equal(w: u64, b: u8) -> u64 {
    bytes_below(w ^ (ONES * u64::from(b)), 1)
}

/// The first quote or backslash at or after `j`, and (with `PRINTABLE`) whether a byte that
/// is not printable ASCII comes before it. Reads 8 bytes at a time: most strings of an event
/// are 2 to 40 bytes, too short for `memchr`'s vector setup to pay; a skipped string still
/// open after 24 bytes (a user agent, say) is left to `memchr` (measured best of 8, 24, 40).
#[inline]
fn next_quote_or_backslash<const PRINTABLE: bool>(
    buf: &[u8],
    mut j: usize,
) -> Option<(usize, bool)> {
    let start = j;
    let mut odd_seen = false;
    while let Some(word) = buf.get(j..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*word);
        let stops = bytes_equal(w, b'"') | bytes_equal(w, b'\\');
        let odd = if PRINTABLE {
            bytes_below(w, 0x20) | (w & HIGH_BITS)
        } else {
            0
        };
        if stops != 0 {
            // Only flags below the lowest stop count; the lowest flag of `odd` is exact.
            let before = (stops & stops.wrapping_neg()) - 1;
            let at = j + stops.trailing_zeros() as usize / 8;
            return Some((at, odd_seen || odd & before != 0));
        }
        odd_seen |= odd != 0;
        j += 8;
        if !PRINTABLE && j >= start + 24 {
            return memchr::memchr2(b'"', b'\\', &buf[j..]).map(|n| (j + n, false));
        }
    }
    let (at, odd) = next_quote_or_backslash_bytewise(buf, j)?;
    Some((at, odd_seen || odd))
}

/// [`next_quote_or_backslash`] one byte at a time, for the last bytes of a buffer.
fn next_quote_or_backslash_bytewise(buf: &[u8], j: usize) -> Option<(usize, bool)> {
    let n = buf
        .get(j..)?
        .iter()
        .position(|&b| b == b'"' || b == b'\\')?;
    let odd = buf[j..j + n].iter().any(|&b| !(0x20..0x80).contains(&b));
    Some((j + n, odd))
}

/// Index just past the value starting at `i`, `None` if the buffer ends first. Brackets are
/// only counted, not matched: the decoder validates what is inside.
pub(super) fn skip_value(buf: &[u8], i: usize, eof: bool) -> Result<Option<usize>, &'static str> {
    match buf[i] {
        b'"' => Ok(skip_string(buf, i).map(|(end, _)| end)),
        b'{' | b'[' => {
            let mut depth = 0u32;
            let mut j = i;
            while j < buf.len() {
                match buf[j] {
                    b'"' => match skip_string(buf, j) {
                        Some((k, _)) => {
                            j = k;
                            continue;
                        }
                        None => return Ok(None),
                    },
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(Some(j + 1));
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Ok(None)
        }
        b'}' | b']' | b',' | b':' => Err("a value"),
        _ => {
            let n = buf[i..]
                .iter()
                .position(|c| matches!(c, b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n'));
            match n {
                Some(n) => Ok(Some(i + n)),
                None if eof => Ok(Some(buf.len())),
                None => Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `n` bytes per read, to exercise every refill point.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(self.0.len()).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn split(doc: &str, trickle: usize) -> Result<Vec<String>, SplitError> {
        let mut out = Vec::new();
        Splitter::new(Trickle(doc.as_bytes(), trickle))
            .for_each(|e| out.push(String::from_utf8(e.bytes.to_vec()).unwrap()))
            .map(|()| out)
    }

    fn all_ways(doc: &str) -> Vec<String> {
        let whole = split(doc, usize::MAX).unwrap();
        let mut in_memory = Vec::new();
        split_slice(doc.as_bytes(), |e| {
            in_memory.push(String::from_utf8(e.bytes.to_vec()).unwrap())
        })
        .unwrap();
        assert_eq!(in_memory, whole, "in-memory split");
        for t in [1, 2, 3, 7] {
            assert_eq!(split(doc, t).unwrap(), whole, "trickle {t}");
        }
        whole
    }

    #[test]
    fn splits_an_api_page() {
        let doc = r#"{"activityEventEntities": [{"Id":"a","S":"x]}\"{"}, {"Id":"b","N":[1,{"c":2}]}],
            "continuationUri": "https://x/?t='a%3D'", "continuationToken": null, "lastResultSet": false}"#;
        assert_eq!(
            all_ways(doc),
            vec![
                r#"{"Id":"a","S":"x]}\"{"}"#,
                r#"{"Id":"b","N":[1,{"c":2}]}"#
            ]
        );
    }

    #[test]
    fn splits_arrays_lines_and_consecutive_pages() {
        assert_eq!(
            all_ways("\u{feff}[ {\"Id\":1} ,\n{\"Id\":2}]\n"),
            vec!["{\"Id\":1}", "{\"Id\":2}"]
        );
        assert_eq!(
            all_ways("{\"Id\":1}\n{\"Id\":2}\r\n\n{\"Id\":3}"),
            vec!["{\"Id\":1}", "{\"Id\":2}", "{\"Id\":3}"]
        );
        let pages = r#"{"continuationToken":"x","activityEventEntities":[{"Id":1}]}{"activityEventEntities":[]}
            {"activityEventEntities":null}{"activityEventEntities":[{"Id":2}]}"#;
        assert_eq!(all_ways(pages), vec!["{\"Id\":1}", "{\"Id\":2}"]);
        assert_eq!(all_ways("[]"), Vec::<String>::new());
        assert_eq!(all_ways(""), Vec::<String>::new());
    }

    #[test]
    fn hands_out_non_objects_for_the_decoder_to_reject() {
        assert_eq!(
            all_ways("[1, \"s\", null, {\"Id\":2}, [3]]"),
            vec!["1", "\"s\"", "null", "{\"Id\":2}", "[3]"]
        );
    }

    #[test]
    fn truncation_is_an_error_after_the_complete_events() {
        let doc = r#"{"activityEventEntities": [{"Id":"a"}, {"Id":"b", "Activ"#;
        let mut seen = Vec::new();
        let err = Splitter::new(Trickle(doc.as_bytes(), 5))
            .for_each(|e| seen.push(e.bytes.to_vec()))
            .unwrap_err();
        assert_eq!(seen, vec![br#"{"Id":"a"}"#.to_vec()]);
        assert!(
            matches!(
                err,
                SplitError::Truncated {
                    offset: 56,
                    context: "inside the activityEventEntities array"
                }
            ),
            "{err}"
        );
        assert!(matches!(
            split("[{\"Id\":1}", 3),
            Err(SplitError::Truncated { .. })
        ));
    }

    #[test]
    fn garbage_is_a_syntax_error_with_its_offset() {
        let err = split("hello", 100).unwrap_err();
        assert_eq!(err.to_string(), "invalid JSON at byte 0: expected '[' or '{' (an API page, an array of events or JSON Lines) between top-level values");
        assert!(matches!(
            split("[{\"Id\":1} {\"Id\":2}]", 4),
            Err(SplitError::Syntax { offset: 10, .. })
        ));
        assert!(matches!(
            split("{\"a\" 1}", 4),
            Err(SplitError::Syntax { offset: 5, .. })
        ));
    }

    #[test]
    fn large_events_grow_the_buffer() {
        let big = format!("{{\"Id\":\"{}\"}}", "x".repeat(3 * CHUNK));
        let doc = format!("[{big},{{\"Id\":2}}]");
        assert_eq!(
            split(&doc, 100_000).unwrap(),
            vec![big, "{\"Id\":2}".to_string()]
        );
    }

    /// How a byte-by-byte reader sees the string at `doc[0]`: the truth the word-wise scan
    /// must match.
    fn bytewise_scan(doc: &[u8]) -> Option<StringScan> {
        let (mut j, mut escaped, mut odd) = (1, false, false);
        while j < doc.len() {
            match doc[j] {
                b'"' => {
                    return Some(StringScan {
                        end: j + 1,
                        escaped,
                        printable_ascii: !odd,
                    })
                }
                b'\\' => {
                    escaped = true;
                    j += 2;
                    continue;
                }
                b => odd |= !(0x20..0x80).contains(&b),
            }
            j += 1;
        }
        None
    }

    #[test]
    fn string_scan_agrees_with_a_bytewise_reading_at_every_position() {
        // Two special bytes at every pair of positions of strings up to 3 words long, so each
        // lands in every lane of a word, in the tail, before and after the other; with and
        // without bytes after the string (the scan reads whole words while they last).
        let specials = [b'"', b'\\', 0x00, 0x1f, b' ', 0x7f, 0x80, 0xc3, 0xff];
        for len in 0..24 {
            for (a, b) in (0..len).flat_map(|a| (0..len).map(move |b| (a, b))) {
                for (&x, &y) in specials
                    .iter()
                    .flat_map(|x| specials.iter().map(move |y| (x, y)))
                {
                    let mut text = vec![b'a'; len];
                    text[a] = x;
                    text[b] = y;
                    let doc = [&[b'"'][..], &text, b"\""].concat();
                    for doc in [doc.clone(), [&doc[..], b"\"a\\b\"c"].concat()] {
                        let truth = bytewise_scan(&doc);
                        assert_eq!(scan_string(&doc, 0), truth, "{doc:?}");
                        let ends = truth.map(|t| (t.end, t.escaped));
                        assert_eq!(skip_string(&doc, 0), ends, "{doc:?}");
                    }
                }
            }
        }
    }
}
