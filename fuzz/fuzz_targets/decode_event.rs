//! One event object: `decode_event` never panics, and an event that serde reads is read the
//! same way by the splitter's own parser (`decode_slice` on the same bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use powerbi_exporter::decode::{decode_event, decode_slice, ActivityEvent, EventSink, Rejection};

/// Every outcome a sink saw, events as their `Debug` text (a `Cow` prints its contents).
#[derive(Default)]
struct Seen(Vec<Result<String, Rejection>>);

impl EventSink for Seen {
    fn accept(&mut self, event: &ActivityEvent<'_>) {
        self.0.push(Ok(format!("{event:?}")));
    }
    fn reject(&mut self, reason: Rejection) {
        self.0.push(Err(reason));
    }
}

fuzz_target!(|data: &[u8]| {
    let outcome = decode_event(data);
    if let Ok(event) = &outcome {
        assert!(
            !event.activity.as_str().trim().is_empty(),
            "an accepted event has an Activity"
        );
    }
    // serde read a whole JSON object (else InvalidJson / NotAnObject): as a one-line document
    // it must give the same single outcome, through the splitter's parser or serde. Pages are
    // excluded (an `activityEventEntities` key makes the object a page, not an event).
    let expected = match outcome {
        Ok(event) => Ok(format!("{event:?}")),
        Err(Rejection::InvalidJson | Rejection::NotAnObject) => return,
        Err(reason) => Err(reason),
    };
    if data
        .windows(b"activityEventEntities".len())
        .any(|w| w == b"activityEventEntities")
    {
        return;
    }
    let mut seen = Seen::default();
    let result = decode_slice(data, &mut seen);
    assert!(
        result.is_ok(),
        "a valid object is a valid document: {result:?}"
    );
    assert_eq!(
        seen.0,
        vec![expected],
        "decode_slice and decode_event differ"
    );
});
