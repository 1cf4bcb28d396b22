//! Hand-written parser of one event object, used by the splitter on every `{`.
//!
//! It locates keys with `memchr`, compares them as bytes, parses only the fields an event
//! needs and skips every other value by counting brackets, so an event costs about one scan
//! of its bytes. serde remains the authority: anything this parser does not handle plainly —
//! an escaped key, a syntax error, an `activityEventEntities` key (a page, not an event) — is
//! answered with [`Parse::Bail`], and the caller hands the element's bytes to serde instead.
//!
//! Invariant: for every object it accepts, the fields equal what serde's decoder reads from
//! the same bytes (tested below on tricky inputs). It is more lenient than serde only inside
//! values it skips (their syntax is not validated).

use std::borrow::Cow;

use memchr::memchr2;

use super::event::{Field, Lenient, RawEvent};

/// Outcome of parsing the object that starts at a `{`.
pub(crate) enum Parse {
    /// The event's fields are in the slot; the index just past its closing `}`.
    Event(usize),
    /// The buffer ends inside the object.
    NeedMore,
    /// Not plain enough for this parser: let serde decide.
    Bail,
}

/// Parses the object starting at `buf[i] == b'{'` into `slot` (filled in place: an event is
/// never moved).
pub(crate) fn parse_event_object<'b>(buf: &'b [u8], i: usize, slot: &mut RawEvent<'b>) -> Parse {
    *slot = RawEvent::default();
    match parse(buf, i, slot) {
        Ok(Some(end)) => Parse::Event(end),
        Ok(None) => Parse::NeedMore,
        Err(Bail) => Parse::Bail,
    }
}

struct Bail;

/// `Ok(None)`: more bytes needed.
type Partial<T> = Result<Option<T>, Bail>;

fn parse<'b>(buf: &'b [u8], i: usize, raw: &mut RawEvent<'b>) -> Partial<usize> {
    let Some(mut j) = ws(buf, i + 1) else {
        return Ok(None);
    };
    if buf[j] == b'}' {
        return Ok(Some(j + 1));
    }
    loop {
        if buf[j] != b'"' {
            return Err(Bail);
        }
        let Some((key_end, escaped)) = string_end(buf, j)? else {
            return Ok(None);
        };
        let key = &buf[j + 1..key_end - 1];
        if escaped || key == b"activityEventEntities" {
            return Err(Bail);
        }
        let Some(colon) = ws(buf, key_end) else {
            return Ok(None);
        };
        if buf[colon] != b':' {
            return Err(Bail);
        }
        let Some(v) = ws(buf, colon + 1) else {
            return Ok(None);
        };
        let field = Field::from_key(key);
        let Some(value_end) = (match field {
            Field::Other => skip(buf, v)?,
            _ => match value(buf, v)? {
                Some((end, value)) => {
                    *raw.slot(field) = value;
                    Some(end)
                }
                None => None,
            },
        }) else {
            return Ok(None);
        };
        let Some(next) = ws(buf, value_end) else {
            return Ok(None);
        };
        match buf[next] {
            b',' => {
                let Some(k) = ws(buf, next + 1) else {
                    return Ok(None);
                };
                j = k;
            }
            b'}' => return Ok(Some(next + 1)),
            _ => return Err(Bail),
        }
    }
}

/// First non-whitespace index at or after `i`.
fn ws(buf: &[u8], mut i: usize) -> Option<usize> {
    while i < buf.len() {
        if !matches!(buf[i], b' ' | b'\t' | b'\r' | b'\n') {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Index just past the string whose opening quote is at `i`, and whether it has escapes.
fn string_end(buf: &[u8], i: usize) -> Partial<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        let Some(k) = memchr2(b'"', b'\\', &buf[j..]) else {
            return Ok(None);
        };
        let k = j + k;
        if buf[k] == b'"' {
            return Ok(Some((k + 1, escaped)));
        }
        escaped = true;
        j = k + 2;
        if j > buf.len() {
            return Ok(None);
        }
    }
}

/// A field value we read: strings (borrowed unless escaped), booleans, null; anything else
/// is skipped and recorded as of another type.
fn value(buf: &[u8], v: usize) -> Partial<(usize, Lenient<'_>)> {
    match buf[v] {
        b'"' => {
            let Some((end, escaped)) = string_end(buf, v)? else {
                return Ok(None);
            };
            let inner = &buf[v + 1..end - 1];
            let s = if escaped {
                Cow::Owned(serde_json::from_slice::<String>(&buf[v..end]).map_err(|_| Bail)?)
            } else {
                if inner.iter().any(|&b| b < 0x20) {
                    return Err(Bail); // control characters must be escaped in JSON
                }
                Cow::Borrowed(std::str::from_utf8(inner).map_err(|_| Bail)?)
            };
            Ok(Some((end, Lenient::Str(s))))
        }
        b't' => literal(buf, v, b"true", Lenient::Bool(true)),
        b'f' => literal(buf, v, b"false", Lenient::Bool(false)),
        b'n' => literal(buf, v, b"null", Lenient::Null),
        _ => Ok(skip(buf, v)?.map(|end| (end, Lenient::Other))),
    }
}

fn literal<'b>(
    buf: &[u8],
    v: usize,
    word: &[u8],
    value: Lenient<'b>,
) -> Partial<(usize, Lenient<'b>)> {
    let end = v + word.len();
    if buf.len() < end {
        return if word.starts_with(&buf[v..]) {
            Ok(None)
        } else {
            Err(Bail)
        };
    }
    if &buf[v..end] != word {
        return Err(Bail);
    }
    Ok(Some((end, value)))
}

/// Index just past the value at `v`: strings and containers by scanning, numbers up to the
/// next delimiter. Brackets are counted, not matched (the value is not used).
fn skip(buf: &[u8], v: usize) -> Partial<usize> {
    match buf[v] {
        b'"' => Ok(string_end(buf, v)?.map(|(end, _)| end)),
        b'{' | b'[' => {
            let mut depth = 0u32;
            let mut j = v;
            while j < buf.len() {
                match buf[j] {
                    b'"' => {
                        let Some((k, _)) = string_end(buf, j)? else {
                            return Ok(None);
                        };
                        j = k;
                        continue;
                    }
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
        b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
            let n = buf[v..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'));
            Ok(n.map(|n| v + n))
        }
        _ => Err(Bail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::event::decode_event;

    /// The parser's event equals serde's for the same bytes.
    fn agrees(json: &str) {
        let serde = decode_event(json.as_bytes());
        let mut raw = RawEvent::default();
        match parse_event_object(json.as_bytes(), 0, &mut raw) {
            Parse::Event(end) => {
                assert_eq!(end, json.len(), "{json}");
                assert_eq!(raw.take_event(true), serde, "{json}");
            }
            Parse::NeedMore => panic!("complete input reported incomplete: {json}"),
            Parse::Bail => {} // serde decides; nothing to compare
        }
    }

    #[test]
    fn agrees_with_serde_on_tricky_events() {
        for json in [
            r#"{}"#,
            r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00"}"#,
            r#" { "Id" : "a" , "Activity" :"ViewReport",
                "CreationTime":"2026-11-20T10:00:00Z", "IsSuccess" : false } "#
                .trim(),
            r#"{"Id":"a","Activity":"View\"Report\\","CreationTime":"2026-11-20T10:00:00","WorkSpaceName":"Zoë \u00e9 ✓"}"#,
            r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","Nested":{"a":[1,{"b":"}]"}]},"N":-1.5e3,"T":true,"Z":null}"#,
            r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","ReportId":{"x":1},"UserId":7,"IsSuccess":"false"}"#,
            r#"{"Id":"a","Id":"b","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","WorkspaceName":"alias","WorkSpaceName":"real"}"#,
            r#"{"Id":"  ","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00"}"#,
            r#"{"Id":"a","Activity":null,"CreationTime":"2026-11-20T10:00:00"}"#,
            r#"{"Id":"a","Activity":"ViewReport","CreationTime":"tomorrow"}"#,
            r#"{"I\u0064":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00"}"#,
        ] {
            agrees(json);
        }
    }

    #[test]
    fn bails_on_what_serde_must_judge() {
        for json in [
            r#"{"Id": tru}"#,
            r#"{"Id" "a"}"#,
            r#"{"Id":"a",}"#,
            r#"{"Id":"a" "B":1}"#,
            r#"{"I\u0064":"a"}"#,
            r#"{"activityEventEntities":[]}"#,
            "{\"Id\":\"a\u{1}\"}",
            r#"{"Id":@}"#,
        ] {
            assert!(
                matches!(
                    parse_event_object(json.as_bytes(), 0, &mut RawEvent::default()),
                    Parse::Bail
                ),
                "{json}"
            );
        }
    }

    #[test]
    fn asks_for_more_at_every_cut_of_a_valid_event() {
        let json = r#"{"Id":"a","Activity":"View\"Report","N":[1,{"x":"]"}],"IsSuccess":true,"CreationTime":"2026-11-20T10:00:00"}"#;
        for cut in 1..json.len() {
            let mut raw = RawEvent::default();
            assert!(
                matches!(
                    parse_event_object(&json.as_bytes()[..cut], 0, &mut raw),
                    Parse::NeedMore
                ),
                "cut at {cut}"
            );
        }
    }
}
