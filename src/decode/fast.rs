//! Single-pass decoding of an in-memory document (an API page, a demo page, a small file).
//!
//! serde walks the whole document once and each event is decoded as it is reached, so no
//! byte is scanned twice. A syntax error anywhere makes serde give up, so then the document is
//! decoded again by the splitter ([`super::split`]), skipping the elements already delivered:
//! the outcome — which events are counted, which are rejected alone, which error ends the
//! document — is always the splitter's, only faster when the JSON is valid.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::event::{Field, KeyVisitor, RawEvent, Slot};
use super::split::{split_slice, SplitError};
use super::EventSink;

/// Decodes every event of `doc` into `sink`; same outcome as streaming it through the splitter.
pub fn decode_slice(doc: &[u8], sink: &mut impl EventSink) -> Result<(), SplitError> {
    let mut deliver = Deliver { sink, delivered: 0 };
    if single_pass(doc, &mut deliver).is_ok() {
        return Ok(());
    }
    let (sink, already) = (deliver.sink, deliver.delivered);
    let mut index = 0usize;
    split_slice(doc, |bytes| {
        if index >= already {
            super::deliver_bytes(bytes, sink);
        }
        index += 1;
    })
}

fn single_pass<S: EventSink>(
    doc: &[u8],
    deliver: &mut Deliver<'_, S>,
) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(doc);
    // `end` skips whitespace and succeeds only at the end: JSON Lines and consecutive pages
    // are several top-level values.
    while de.end().is_err() {
        Top(deliver).deserialize(&mut de)?;
    }
    Ok(())
}

struct Deliver<'s, S> {
    sink: &'s mut S,
    delivered: usize,
}

impl<S: EventSink> Deliver<'_, S> {
    fn deliver(&mut self, raw: &mut RawEvent<'_>, is_object: bool) {
        self.delivered += 1;
        match raw.take_event(is_object) {
            Ok(event) => self.sink.accept(&event),
            Err(reason) => self.sink.reject(reason),
        }
    }
}

/// A top-level value: an array of events, an API page, or one event.
struct Top<'a, 's, S>(&'a mut Deliver<'s, S>);

impl<'de, S: EventSink> DeserializeSeed<'de> for Top<'_, '_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: EventSink> Visitor<'de> for Top<'_, '_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an API page, an array of events or an event")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut raw = RawEvent::default();
        while let Some(is_object) = seq.next_element_seed(Slot(&mut raw))? {
            self.0.deliver(&mut raw, is_object);
        }
        Ok(())
    }

    /// Until its `activityEventEntities` key shows it is a page, a top-level object may be an
    /// event itself, so its fields are read as an event's on the way.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut event = RawEvent::default();
        let mut page = false;
        while let Some(key) = map.next_key_seed(TopKey)? {
            match key {
                None => {
                    page = true;
                    map.next_value_seed(Entities(&mut *self.0))?;
                }
                Some(field) => event.read(field, &mut map)?,
            }
        }
        if !page {
            self.0.deliver(&mut event, true);
        }
        Ok(())
    }
}

/// A key of a top-level object: `None` for `activityEventEntities`, else an event field.
struct TopKey;

impl<'de> DeserializeSeed<'de> for TopKey {
    type Value = Option<Field>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Field>, D::Error> {
        d.deserialize_bytes(KeyVisitor(|key: &[u8]| {
            (key != b"activityEventEntities").then(|| Field::from_key(key))
        }))
    }
}

/// The value of `activityEventEntities`: an array of events (anything else holds none).
struct Entities<'a, 's, S>(&'a mut Deliver<'s, S>);

impl<'de, S: EventSink> DeserializeSeed<'de> for Entities<'_, '_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: EventSink> Visitor<'de> for Entities<'_, '_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Top(self.0).visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_reader, ActivityEvent, Rejection};

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
        let slow_result = decode_reader(doc.as_bytes(), &mut slow).map_err(|e| e.to_string());
        assert_eq!(fast, slow, "same events for {doc}");
        assert_eq!(fast_result, slow_result, "same outcome for {doc}");
        (fast, fast_result.err())
    }

    const E1: &str = r#"{"Id":"a","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00"}"#;
    const E2: &str = r#"{"Id":"b","Activity":"ExportReport","CreationTime":"2026-11-20T10:00:01"}"#;

    #[test]
    fn the_fast_path_agrees_with_the_splitter() {
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
