//! New events queued for the forwarders: each event's JSON as the source sent it, one per line,
//! after the time it was fetched (`<unix millis> <json>`).
//!
//! Invariants: only events that were new (not duplicates) and passed the scoping filters are
//! queued, in the order they were counted; a line never contains `\n` (a raw event's line
//! breaks can only be whitespace between JSON tokens, so they become spaces).

use std::io::Write as _;

use crate::decode::UnixMillis;

/// Splits a line into the time its event was fetched and the event's JSON.
pub fn split_line(line: &[u8]) -> (UnixMillis, &[u8]) {
    let at = memchr::memchr(b' ', line).unwrap_or(0);
    let millis = std::str::from_utf8(&line[..at])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (UnixMillis(millis), line.get(at + 1..).unwrap_or_default())
}

/// Raw events, newline-delimited.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outbox {
    lines: Vec<u8>,
    events: u64,
}

impl Outbox {
    pub fn push(&mut self, raw: &[u8], fetched: UnixMillis) {
        // Writing to a Vec cannot fail.
        let _ = write!(self.lines, "{} ", fetched.0);
        let start = self.lines.len();
        let raw = raw.trim_ascii();
        self.lines.extend_from_slice(raw);
        // Most events are on one line already: look before touching every byte.
        if memchr::memchr2(b'\n', b'\r', raw).is_some() {
            for b in &mut self.lines[start..] {
                if matches!(*b, b'\n' | b'\r') {
                    *b = b' ';
                }
            }
        }
        self.lines.push(b'\n');
        self.events += 1;
    }

    /// Moves `other`'s events after this one's.
    pub fn extend(&mut self, other: Outbox) {
        if self.is_empty() {
            *self = other;
            return;
        }
        self.lines.extend_from_slice(&other.lines);
        self.events += other.events;
    }

    /// The queued lines, each ending in `\n`.
    pub fn lines(&self) -> &[u8] {
        &self.lines
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_inside_an_event_become_spaces() {
        let mut o = Outbox::default();
        o.push(b"{\n  \"Id\": \"a\",\r\n  \"X\": 1\n}\n", UnixMillis(7));
        o.push(br#"{"Id":"b"}"#, UnixMillis(1_795_168_800_000));
        assert_eq!(
            o.lines(),
            b"7 {   \"Id\": \"a\",    \"X\": 1 }\n1795168800000 {\"Id\":\"b\"}\n"
        );
        assert_eq!(o.events(), 2);
        let second = o.lines().split(|b| *b == b'\n').nth(1).unwrap();
        assert_eq!(
            split_line(second),
            (UnixMillis(1_795_168_800_000), &br#"{"Id":"b"}"#[..])
        );
    }

    #[test]
    fn an_extended_outbox_holds_both_in_order() {
        let (mut held, mut new) = (Outbox::default(), Outbox::default());
        held.extend(Outbox::default());
        assert!(held.is_empty());
        held.push(br#"{"Id":"a"}"#, UnixMillis(1));
        new.push(br#"{"Id":"b"}"#, UnixMillis(2));
        new.push(br#"{"Id":"c"}"#, UnixMillis(3));
        held.extend(new);
        assert_eq!(
            held.lines(),
            b"1 {\"Id\":\"a\"}\n2 {\"Id\":\"b\"}\n3 {\"Id\":\"c\"}\n"
        );
        assert_eq!(held.events(), 3);
    }
}
