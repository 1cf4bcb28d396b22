//! Fuzzing regressions (fuzz/README.md). Every file under
//! `tests/fixtures/fuzz-regressions/<target>/` goes through the entry point of that fuzz
//! target, must pass the target's own checks and give the outcome recorded for it here: a
//! crash a target found, or a hostile input worth pinning. Inputs too large to commit
//! (100,000-deep nesting, megabyte strings) are built in code.
//!
//! A file without a recorded outcome fails the test: add its name and what it must give.

use std::io::Read;
use std::path::Path;

use powerbi_exporter::app::Config;
use powerbi_exporter::decode::{
    decode_event, decode_reader, decode_slice, differential, ActivityEvent, EventSink, Rejection,
};

/// The files of one target's regression directory, by name.
fn files(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz-regressions")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// Checks every file of `target` against `cases`, and that every case has its file.
fn each_file(target: &str, cases: &[&str], mut check: impl FnMut(&str, &[u8])) {
    let files = files(target);
    for (name, bytes) in &files {
        assert!(
            cases.contains(&name.as_str()),
            "{target}/{name} has no recorded outcome in tests/it/fuzz_regressions.rs"
        );
        check(name, bytes);
    }
    for case in cases {
        assert!(
            files.iter().any(|(name, _)| name == case),
            "{target}/{case} is missing"
        );
    }
}

/// An accepted event, in a form the expectations spell out.
fn outline(e: &ActivityEvent<'_>) -> String {
    format!(
        "{:?} ws={:?} report={:?} user={} success={}",
        e.activity.as_str(),
        e.workspace_name.as_deref(),
        e.report_name.as_deref(),
        e.user.is_some(),
        e.success
    )
}

/// What a document decoder delivered.
#[derive(Debug, Default, PartialEq)]
struct Seen(Vec<Result<String, Rejection>>);

impl EventSink for Seen {
    fn accept(&mut self, e: &ActivityEvent<'_>) {
        self.0.push(Ok(outline(e)));
    }
    fn reject(&mut self, reason: Rejection) {
        self.0.push(Err(reason));
    }
}

/// Decodes a document in memory and streamed in the chunks the fuzz target's `mode` byte picks
/// (byte 0 of a crash file), after the fuzz target's own checks.
fn decode_document(mode: u8, doc: &[u8]) -> (Seen, Result<(), String>) {
    differential::check_document(mode, doc);
    decode_both(doc, differential::Chunks::new(mode, doc))
}

/// The decode_event fuzz target's check, naming the input when it fails.
fn event_checks(name: &str, bytes: &[u8]) {
    if let Err(panic) = std::panic::catch_unwind(|| differential::check_event(bytes)) {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{name}: {why}");
    }
}

/// Decodes a document in memory and streamed from `reader`; both must agree.
fn decode_both(doc: &[u8], reader: impl Read) -> (Seen, Result<(), String>) {
    let mut in_memory = Seen::default();
    let result = decode_slice(doc, &mut in_memory).map_err(|e| e.to_string());
    let mut streamed = Seen::default();
    let streamed_result = decode_reader(reader, &mut streamed).map_err(|e| e.to_string());
    assert_eq!(in_memory, streamed, "in memory and streamed");
    assert_eq!(result, streamed_result, "in memory and streamed");
    (in_memory, result)
}

/// A large document, in memory and streamed as a file is read (large reads). Small chunks
/// would rescan the element at every read: quadratic in its size (see fuzz/README.md).
fn decode_large(doc: &str) -> (Seen, Result<(), String>) {
    decode_both(doc.as_bytes(), doc.as_bytes())
}

fn event(bytes: &[u8]) -> Result<String, Rejection> {
    decode_event(bytes).map(|e| outline(&e))
}

const VIEW: &str = r#""ViewReport" ws=None report=None user=false success=true"#;
const EXPORT: &str = r#""ExportReport" ws=None report=None user=false success=true"#;

#[test]
fn decode_event_files() {
    use Rejection::*;
    let cases: &[(&str, Result<&str, Rejection>)] = &[
        ("bad-number-in-ignored-field.json", Err(InvalidJson)),
        (
            "escaped-nul-and-controls.json",
            Ok(r#""View\0Report\u{7}" ws=Some("\0\u{1f}\n") report=None user=false success=true"#),
        ),
        ("invalid-utf8-in-activity.json", Err(InvalidJson)),
        ("invalid-utf8-in-ignored-field.json", Ok(VIEW)),
        ("invalid-utf8-in-key.json", Ok(VIEW)),
        ("lone-surrogate-in-activity.json", Err(InvalidJson)),
        ("lone-surrogate-in-ignored-field.json", Ok(VIEW)),
        // Failed decode_event's agreement check before cf90d32: serde reads `-0` as a float
        // (no UserType), the splitter's parser read it as the integer 0.
        ("negative-zero-user-type.json", Ok(VIEW)),
        ("raw-control-in-activity.json", Err(InvalidJson)),
        ("raw-nul-in-key.json", Err(MissingId)),
        ("raw-tab-in-ignored-field.json", Err(InvalidJson)),
    ];
    let names: Vec<_> = cases.iter().map(|(n, _)| *n).collect();
    each_file("decode_event", &names, |name, bytes| {
        let expected = cases.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(
            event(bytes),
            expected.map(str::to_string),
            "decode_event/{name}"
        );
        event_checks(name, bytes);
    });
}

#[test]
fn decode_document_files() {
    use Rejection::*;
    type Case<'a> = (
        &'a str,
        &'a [Result<&'a str, Rejection>],
        Result<(), &'a str>,
    );
    let cases: &[Case] = &[
        (
            "controls-in-page-keys.bin",
            &[Err(MissingId), Err(MissingId)],
            Ok(()),
        ),
        (
            "invalid-utf8-in-page.bin",
            &[Ok(VIEW), Err(InvalidJson), Ok(EXPORT)],
            Ok(()),
        ),
        (
            "nested-non-event-object.bin",
            &[Err(MissingId), Ok(VIEW), Ok(EXPORT)],
            Ok(()),
        ),
        (
            "nul-before-event.bin",
            &[Ok(VIEW), Err(InvalidJson), Err(NotAnObject)],
            Err("invalid JSON at byte 94: expected ',' or ']' inside the top-level array"),
        ),
    ];
    let names: Vec<_> = cases.iter().map(|(n, _, _)| *n).collect();
    each_file("decode_document", &names, |name, bytes| {
        let (_, seen, end) = cases.iter().find(|(n, _, _)| *n == name).unwrap();
        let (mode, doc) = bytes.split_first().expect("byte 0 is the chunking");
        let (got, result) = decode_document(*mode, doc);
        let want: Vec<_> = seen.iter().map(|r| r.map(str::to_string)).collect();
        assert_eq!(got.0, want, "decode_document/{name}");
        assert_eq!(
            result,
            end.map_err(str::to_string),
            "decode_document/{name}"
        );
    });
}

/// `Ok(lines)`: accepted, and `describe()` has these lines. `Err(prefixes)`: rejected with
/// exactly these problems, in order, each starting with its prefix (the rest lists known
/// keys, which grows with the config).
type ConfigCase<'a> = (&'a str, Result<&'a [&'a str], &'a [&'a str]>);

const NO_SOURCE: &str = "no source configured: pass --demo";

#[test]
fn config_yaml_files() {
    let cases: &[ConfigCase] = &[
        (
            "alias-bomb.yaml",
            Err(&[
                "config file is not valid YAML: repetition limit exceeded",
                NO_SOURCE,
            ]),
        ),
        (
            "escaped-controls.yaml",
            Err(&[
                "config key `we\u{7}b` is unknown (known keys: ",
                "config key `<not a string>` is unknown (known keys: ",
                "config key `log.level` \"de\\0bug\\u{7}\": expected one of debug, info, warn, error",
            ]),
        ),
        // Once accepted, then the demo source panicked (capacity overflow) or aborted
        // (allocation failure) at start: the tenant's size is now bounded.
        (
            "huge-demo-tenant.yaml",
            Err(&[
                "config key `demo.workspaces` 18446744073709551615: expected 1 to 10000",
                "config key `demo.users` 18446744073709551615: expected 1 to 1000000",
            ]),
        ),
        (
            "number-edges.yaml",
            Err(&[
                "config key `demo.workspaces`: expected a whole number, got -1",
                "config key `limits.max_series.powerbi_report_events_total`: the cap of powerbi_report_events_total must be at least 1",
                "config key `dedup.window`: expected a duration like 30s, 5m, 24h or 29d, got \"99999999999999999999d\"",
                "config key `demo.backfill`: expected a duration like 30s, 5m, 24h or 29d, got \"584942418y\"",
                "config key `demo.peak_events_per_minute`: expected a positive number, got NaN",
            ]),
        ),
        (
            "raw-nul-in-key.yaml",
            Err(&[
                "config file is not valid YAML: control characters are not allowed at position 13",
                NO_SOURCE,
            ]),
        ),
        (
            "u64-overflow.yaml",
            Err(&[
                "config file is not valid YAML: demo.seed: invalid type: integer `18446744073709551616` as u128, expected any YAML value at line 1 column 29",
                NO_SOURCE,
            ]),
        ),
    ];
    let names: Vec<_> = cases.iter().map(|(n, _)| *n).collect();
    each_file("config_yaml", &names, |name, bytes| {
        let expected = cases.iter().find(|(n, _)| *n == name).unwrap().1;
        let text = std::str::from_utf8(bytes).expect("a config file is text");
        check_config(name, text, expected);
    });
}

fn check_config(name: &str, text: &str, expected: Result<&[&str], &[&str]>) {
    match (Config::from_yaml(text), expected) {
        (Ok(config), Ok(lines)) => {
            let described = config.describe();
            for line in lines {
                assert!(
                    described.lines().any(|l| l == *line),
                    "{name}: no line {line:?} in\n{described}"
                );
            }
        }
        (Err(errors), Err(prefixes)) => {
            assert_eq!(
                errors.0.len(),
                prefixes.len(),
                "{name}: problems {:#?}",
                errors.0
            );
            for (error, prefix) in errors.0.iter().zip(prefixes) {
                assert!(
                    error.starts_with(prefix),
                    "{name}: {error:?} does not start with {prefix:?}"
                );
            }
        }
        (got, _) => panic!("{name}: unexpected {got:?}"),
    }
}

/// Builds `depth` opening brackets, `middle`, and the closing ones.
fn nested(open: &str, middle: &str, close: &str, depth: usize) -> String {
    let mut s = String::with_capacity(depth * (open.len() + close.len()) + middle.len());
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push_str(middle);
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

const DEEP: usize = 100_000;
const MB: usize = 1024 * 1024;
const TIME: &str = r#""CreationTime":"2026-11-20T10:00:00""#;

#[test]
fn deep_nesting_is_rejected_or_skipped_without_overflowing_the_stack() {
    use Rejection::*;
    // 100,000 nested arrays in a field nobody reads: serde skips them without recursing
    // (its depth limit applies to values it builds), the splitter's own parser by counting
    // brackets; both keep the event.
    let event = format!(
        r#"{{"Id":"a","Activity":"ViewReport",{TIME},"Deep":{}}}"#,
        nested("[", "", "]", DEEP)
    );
    assert_eq!(self::event(event.as_bytes()), Ok(VIEW.to_string()));
    event_checks("deep ignored field", event.as_bytes());
    assert_eq!(
        decode_large(&event),
        (Seen(vec![Ok(VIEW.to_string())]), Ok(()))
    );
    // The same inside a JSON array: the element is still parsed by the splitter.
    let doc = format!("[{event}]");
    assert_eq!(
        decode_large(&doc),
        (Seen(vec![Ok(VIEW.to_string())]), Ok(()))
    );
    // A document that is only nested arrays: one element, not an object.
    let arrays = nested("[", "", "]", DEEP);
    assert_eq!(
        decode_large(&arrays),
        (Seen(vec![Err(NotAnObject)]), Ok(()))
    );
    // Nested objects: the outer one is an event without an Id, the inner ones are skipped.
    let objects = nested(r#"{"a":"#, "1", "}", DEEP);
    assert_eq!(decode_large(&objects), (Seen(vec![Err(MissingId)]), Ok(())));
    assert_eq!(decode_event(objects.as_bytes()), Err(MissingId));
    event_checks("deep objects", objects.as_bytes());
    // Nested in a field that is read: a value of the wrong type, skipped the same way.
    let deep_activity = format!(
        r#"{{"Id":"a",{TIME},"Activity":{}}}"#,
        nested("[", "", "]", DEEP)
    );
    assert_eq!(decode_event(deep_activity.as_bytes()), Err(MissingActivity));
    assert_eq!(
        decode_large(&deep_activity),
        (Seen(vec![Err(MissingActivity)]), Ok(()))
    );
    // Never closed: the document is truncated, nothing is delivered.
    let open = "[".repeat(DEEP);
    assert_eq!(
        decode_large(&open),
        (
            Seen(vec![]),
            Err(format!(
                "truncated: the data ends at byte {DEEP} inside the top-level array"
            ))
        )
    );
    // The config: YAML's depth limit. 5,000 levels, not 100,000: libyaml's scanner is
    // quadratic in the nesting of flow collections (minutes for 100,000 in a debug build).
    for yaml in [nested("[", "", "]", 5_000), nested("{a: ", "1", "}", 5_000)] {
        check_config(
            "deep yaml",
            &yaml,
            Err(&[
                "config file is not valid YAML: recursion limit exceeded",
                NO_SOURCE,
            ]),
        );
    }
}

#[test]
fn megabyte_strings_are_read_whole() {
    let big = "x".repeat(MB);
    // Unescaped: borrowed from the input, not copied.
    let event = format!(r#"{{"Id":"a","Activity":"{big}",{TIME},"ReportName":"{big}"}}"#);
    let decoded = decode_event(event.as_bytes()).unwrap();
    assert_eq!(decoded.activity.as_str().len(), MB);
    assert!(matches!(decoded.activity.0, std::borrow::Cow::Borrowed(_)));
    assert_eq!(decoded.report_name.as_deref().map(str::len), Some(MB));
    // Escaped: copied, unescaped.
    let escaped = "\\\"".repeat(MB / 2);
    let event =
        format!(r#"{{"Id":"a","Activity":"ViewReport",{TIME},"WorkSpaceName":"{escaped}"}}"#);
    let decoded = decode_event(event.as_bytes()).unwrap();
    assert_eq!(
        decoded.workspace_name.as_deref(),
        Some("\"".repeat(MB / 2).as_str())
    );
    // A megabyte key and a megabyte ignored value, in a page read in one go and streamed.
    let event = format!(r#"{{"{big}":1,"Id":"a","Activity":"ViewReport",{TIME},"Other":"{big}"}}"#);
    let page =
        format!(r#"{{"activityEventEntities":[{event},{event}],"continuationUri":"{big}"}}"#);
    assert_eq!(
        decode_large(&page),
        (
            Seen(vec![Ok(VIEW.to_string()), Ok(VIEW.to_string())]),
            Ok(())
        )
    );
    // A megabyte config value: rejected, and the message quotes it whole.
    let errors = Config::from_yaml(&format!("log: {{level: {big}}}\ndemo: {{enabled: true}}\n"))
        .unwrap_err();
    assert_eq!(errors.0.len(), 1, "{:?}", errors.0.len());
    assert_eq!(
        errors.0[0],
        format!("config key `log.level` \"{big}\": expected one of debug, info, warn, error")
    );
}

#[test]
fn nul_and_control_characters_in_names() {
    use Rejection::*;
    // Escaped in values: kept as they are (only whitespace counts as blank).
    let ev = decode_event(
        br#"{"Id":"\u0000","Activity":"\u0001","CreationTime":"2026-11-20T10:00:00","ReportName":"\u0000\n"}"#,
    )
    .unwrap();
    assert_eq!(ev.activity.as_str(), "\u{1}");
    assert_eq!(ev.report_name.as_deref(), Some("\0\n"));
    // Escaped whitespace only: blank, so absent or missing.
    let blank = br#"{"Id":"\t","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00"}"#;
    assert_eq!(decode_event(blank), Err(MissingId));
    // Raw in a value: invalid JSON, alone or in a document, where it is rejected alone.
    let raw = b"{\"Id\":\"a\",\"Activity\":\"A\x00B\",\"CreationTime\":\"2026-11-20T10:00:00\"}";
    assert_eq!(decode_event(raw), Err(InvalidJson));
    let mut doc = b"[".to_vec();
    doc.extend_from_slice(raw);
    doc.extend_from_slice(
        b",{\"Id\":\"b\",\"Activity\":\"ViewReport\",\"CreationTime\":\"2026-11-20T10:00:00\"}]",
    );
    assert_eq!(
        decode_document(0x00, &doc),
        (Seen(vec![Err(InvalidJson), Ok(VIEW.to_string())]), Ok(()))
    );
    // Raw in a key: keys are compared as bytes and never validated, so the field is unknown.
    let key =
        b"{\"Id\":\"a\",\"Act\x00ivity\":\"ViewReport\",\"CreationTime\":\"2026-11-20T10:00:00\"}";
    assert_eq!(decode_event(key), Err(MissingActivity));
    assert_eq!(
        decode_document(0x05, key),
        (Seen(vec![Err(MissingActivity)]), Ok(()))
    );
    // Config keys and values: YAML refuses raw control characters; escaped ones are reported.
    check_config(
        "raw tab-free control",
        "log:\n  level: de\u{1}bug\n",
        Err(&[
            "config file is not valid YAML: control characters are not allowed",
            NO_SOURCE,
        ]),
    );
    check_config(
        "escaped NUL",
        "demo: {enabled: true}\nlog: {format: \"js\\0on\"}\n",
        Err(&["config key `log.format` \"js\\0on\": expected logfmt or json"]),
    );
}
