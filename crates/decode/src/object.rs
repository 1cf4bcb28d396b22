//! Hand-written parser of one event object, used by the splitter on every `{`.
//!
//! It finds the end of each string 8 bytes at a time (`split::scan_string`, which also tells
//! whether the text is printable ASCII, so only other strings are checked for control bytes),
//! classifies keys by one table probe, parses only the fields an event needs and skips every
//! other value by counting brackets, so an event costs about one scan of its bytes. serde remains the authority: anything this parser does not handle plainly —
//! an escaped key, a syntax error, an `activityEventEntities` key (a page, not an event) — is
//! answered with [`Parse::Bail`], and the caller hands the element's bytes to serde instead.
//!
//! Invariant: for every object it accepts, the fields equal what serde's decoder reads from
//! the same bytes (tested below on tricky inputs). It is more lenient than serde only inside
//! values it skips (their syntax is not validated).

use std::borrow::Cow;

use super::event::{Field, Lenient, RawEvent};
use super::split::{scan_string, skip_string, skip_value, skip_ws as ws, StringScan};

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
        let Some((key_end, escaped)) = skip_string(buf, j) else {
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
        if field == Field::SharingInformation {
            return Err(Bail); // an array of objects: serde reads the recipients
        }
        let Some(value_end) = (match field {
            Field::Other => skip(buf, v)?,
            _ => value(buf, v, raw.slot(field))?,
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

/// Index just past a value we do not read. Its syntax is not checked: only brackets and
/// strings are followed. Inside an object a value never ends the data, hence `eof: false`.
fn skip(buf: &[u8], v: usize) -> Partial<usize> {
    skip_value(buf, v, false).map_err(|_| Bail)
}

/// Reads a field value into its slot: strings (borrowed unless escaped), booleans, null;
/// anything else is skipped and recorded as of another type. Written in place: returned
/// through memory, the value cost a store-forwarding stall on every kept field.
fn value<'b>(buf: &'b [u8], v: usize, slot: &mut Lenient<'b>) -> Partial<usize> {
    let (end, value) = match buf[v] {
        b'"' => {
            let Some(scan) = scan_string(buf, v) else {
                return Ok(None);
            };
            (scan.end, Lenient::Str(string(buf, v, scan)?))
        }
        b't' => return literal(buf, v, b"true", Lenient::Bool(true), slot),
        b'f' => return literal(buf, v, b"false", Lenient::Bool(false), slot),
        b'n' => return literal(buf, v, b"null", Lenient::Null, slot),
        b'-' | b'0'..=b'9' => match skip(buf, v)? {
            Some(end) => (end, number(&buf[v..end])),
            None => return Ok(None),
        },
        b'{' | b'[' => match skip(buf, v)? {
            Some(end) => (end, Lenient::Other),
            None => return Ok(None),
        },
        _ => return Err(Bail),
    };
    *slot = value;
    Ok(Some(end))
}

/// The text of the string scanned from `buf[v]`: borrowed when it has no escapes, else
/// unescaped by serde. Control bytes must be escaped in JSON, and text must be UTF-8: the
/// scan already proved both for printable ASCII, so only other strings are checked here.
fn string<'b>(buf: &'b [u8], v: usize, scan: StringScan) -> Result<Cow<'b, str>, Bail> {
    let quoted = &buf[v..scan.end];
    if scan.escaped {
        return serde_json::from_slice::<String>(quoted)
            .map(Cow::Owned)
            .map_err(|_| Bail);
    }
    let inner = &quoted[1..quoted.len() - 1];
    if !scan.printable_ascii && inner.iter().any(|&b| b < 0x20) {
        return Err(Bail);
    }
    if scan.printable_ascii {
        return Ok(Cow::Borrowed(printable_ascii_str(inner)));
    }
    std::str::from_utf8(inner)
        .map(Cow::Borrowed)
        .map_err(|_| Bail)
}

/// `text` as a `str` without validating it again: the caller's scan proved every byte
/// printable ASCII. The crate's one `unsafe`: `str::from_utf8` on the 10 to 15 strings an
/// event keeps cost a quarter of the decoder's time (measured: decode 2.0x → 1.6x the bare
/// parse without it), for bytes the scan has just read.
#[allow(unsafe_code)]
fn printable_ascii_str(text: &[u8]) -> &str {
    debug_assert!(text.iter().all(|b| (0x20..0x80).contains(b)));
    // SAFETY: every byte is below 0x80, so `text` is ASCII, which is valid UTF-8.
    // `scan_string` sets `printable_ascii` only when no byte before the closing quote has its
    // high bit set (`split::tests::string_scan_agrees_with_a_bytewise_reading_at_every_position`
    // checks that at every position of every lane), and `text` lies between the quotes.
    unsafe { std::str::from_utf8_unchecked(text) }
}

/// A JSON number as serde reads it into a [`Lenient`]: integers that fit an `i64` are kept.
/// serde_json reads `-0` as the float -0.0, so it is not an integer here either.
fn number(text: &[u8]) -> Lenient<'static> {
    let negative = text.first() == Some(&b'-');
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.trim_end().parse::<i64>().ok())
        .filter(|n| !(negative && *n == 0))
        .map_or(Lenient::Other, Lenient::Int)
}

fn literal<'b>(
    buf: &[u8],
    v: usize,
    word: &[u8],
    value: Lenient<'b>,
    slot: &mut Lenient<'b>,
) -> Partial<usize> {
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
    *slot = value;
    Ok(Some(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::decode_event;

    /// The parser's event equals serde's for the same bytes.
    fn agrees(json: &str) {
        agrees_bytes(json.as_bytes(), false);
    }

    /// [`agrees`] on bytes that may not be UTF-8; with `laxer`, the parser may accept what serde
    /// rejects (inside a value it skips, whose syntax it does not check).
    fn agrees_bytes(json: &[u8], laxer: bool) {
        let serde = decode_event(json);
        let mut raw = RawEvent::default();
        let text = String::from_utf8_lossy(json);
        match parse_event_object(json, 0, &mut raw) {
            Parse::Event(end) => {
                assert_eq!(end, json.len(), "{text}");
                if !(laxer && serde == Err(crate::Rejection::InvalidJson)) {
                    assert_eq!(raw.take_event(true), serde, "{text}");
                }
            }
            Parse::NeedMore => panic!("complete input reported incomplete: {text}"),
            Parse::Bail => {} // serde decides; nothing to compare
        }
    }

    #[test]
    fn agrees_with_serde_whatever_byte_sits_anywhere_in_a_string() {
        // Control bytes (which JSON forbids unescaped), DEL, a lone UTF-8 lead or continuation
        // byte, an invalid byte and a whole two-byte character, at every position of strings
        // of 0 to 2 words and a bit: in a field we keep, the alias we keep, and one we skip.
        let odd: [&[u8]; 8] = [
            b"\x00",
            b"\x1f",
            b"\x7f",
            b"\xc3",
            b"\xa9",
            b"\xff",
            "é".as_bytes(),
            b"\t",
        ];
        for (field, laxer) in [
            ("Activity", false),
            ("WorkspaceName", false),
            ("UserAgent", true),
        ] {
            for len in 1..20 {
                for at in 0..len {
                    for bytes in odd {
                        let mut text = vec![b'a'; len];
                        text.splice(at..=at, bytes.iter().copied());
                        let json = [
                            br#"{"Id":"a","CreationTime":"2026-11-20T10:00:00","Activity":"View","#
                                .as_slice(),
                            format!("\"{field}\":\"").as_bytes(),
                            &text,
                            b"\"}",
                        ]
                        .concat();
                        agrees_bytes(&json, laxer);
                    }
                }
            }
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
            r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","UserType":6,"UserId":"ABC@x"}"#,
            r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","UserType":-1.5}"#,
            r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","UserType":-0}"#,
            r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","UserType":-7}"#,
            r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","UserType":99999999999999999999}"#,
            r#"{"Id":"a","Activity":"ReadArtifact","CreationTime":"2026-11-20T10:00:00","ArtifactId":"94E57E92-CEE2-486D-8CC8-218C97200579","ArtifactName":"L\u00e9","ArtifactKind":"Lakehouse","DatasetId":7,"DatasetName":"M","DashboardId":null,"DataflowId":"F","DataflowName":{"x":1},"AppId":"","AppName":"A"}"#,
            r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","DatasetId":"d","DatasetId":"e","DashboardName":"B","ArtifactKind":["x"]}"#,
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
