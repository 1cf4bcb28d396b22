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

use super::event::{Field, Lenient, RawEvent};
use super::split::{skip_string, skip_value, skip_ws as ws};

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

/// Index just past a value we do not read. Its syntax is not checked: only brackets and
/// strings are followed. Inside an object a value never ends the data, hence `eof: false`.
fn skip(buf: &[u8], v: usize) -> Partial<usize> {
    skip_value(buf, v, false).map_err(|_| Bail)
}

/// A field value we read: strings (borrowed unless escaped), booleans, null; anything else
/// is skipped and recorded as of another type.
fn value(buf: &[u8], v: usize) -> Partial<(usize, Lenient<'_>)> {
    match buf[v] {
        b'"' => {
            let Some((end, escaped)) = skip_string(buf, v) else {
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
        b'-' | b'0'..=b'9' => Ok(skip(buf, v)?.map(|end| (end, number(&buf[v..end])))),
        b'{' | b'[' => Ok(skip(buf, v)?.map(|end| (end, Lenient::Other))),
        _ => Err(Bail),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::decode_event;

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
