//! Logging: `tracing` to stderr as logfmt (default) or JSON, filtered by `--log.level`
//! (or `RUST_LOG` when set, for debugging dependencies).
//!
//! The logfmt lines are those of Prometheus' own Go programs: `prometheus/common/promslog`
//! writes through Go's `log/slog` TextHandler, and its go-kit style (the keys `ts`, `level` in
//! lower case, `msg`) is the one exporters have always written. Keys and values are quoted
//! exactly when slog's `needsQuoting` says so and then escaped as Go's `strconv.Quote` escapes
//! them (see `quote`). The fields of the spans an event happens in follow `msg`, outermost
//! first, then the event's own, as attributes added with slog's `Logger.With` do. The JSON
//! format is tracing-subscriber's, unchanged.

pub mod settings;

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::decode::UnixMillis;
pub use settings::{LogConfig, LogFormat};

/// Installs the global subscriber. Our crate logs at the configured level; dependencies only
/// warnings and above unless `RUST_LOG` says otherwise.
pub fn init(config: &LogConfig) {
    let level = config.level.as_str().to_ascii_lowercase();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,powerbi_exporter={level}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Logfmt => builder
            .fmt_fields(LogfmtFields)
            .event_format(Logfmt)
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// The logfmt subscriber writing to `writer`, our crate at `level` and dependencies at warn.
#[cfg(test)]
fn logfmt_subscriber<W>(writer: W, level: &str) -> impl Subscriber + Send + Sync
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(format!("warn,powerbi_exporter={level}")))
        .with_writer(writer)
        .fmt_fields(LogfmtFields)
        .event_format(Logfmt)
        .finish()
}

/// `ts=… level=… msg="…" span_key=value … key=value …`, one line per event.
struct Logfmt;

impl<S> FormatEvent<S, LogfmtFields> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, LogfmtFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = UnixMillis::now();
        let mut line = format!(
            "ts={}.{:03}Z level={}",
            now.to_api_string(),
            now.0.rem_euclid(1000),
            event.metadata().level().as_str().to_ascii_lowercase()
        );
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let Some(msg) = &fields.message {
            let _ = write!(line, " msg={}", quote(msg));
        }
        for span in ctx.event_scope().into_iter().flat_map(|s| s.from_root()) {
            let extensions = span.extensions();
            let formatted = extensions.get::<FormattedFields<LogfmtFields>>();
            if let Some(f) = formatted.filter(|f| !f.fields.is_empty()) {
                line.push(' ');
                line.push_str(&f.fields);
            }
        }
        line.push_str(&fields.rest);
        writeln!(writer, "{line}")
    }
}

/// Formats a span's fields as `key=value` pairs (kept in the span, written with each event).
struct LogfmtFields;

impl<'writer> FormatFields<'writer> for LogfmtFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut v = Fields::default();
        fields.record(&mut v);
        if let Some(msg) = &v.message {
            let _ = write!(v.rest, " message={}", quote(msg));
        }
        writer.write_str(v.rest.trim_start())
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    /// ` key=value` for every field but the message, each with its leading space.
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            let _ = write!(self.rest, " {}={}", quote(field.name()), quote(value));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// A logfmt key or value as Go's slog TextHandler writes it: as is, unless `needsQuoting`
/// (golang/go src/log/slog/text_handler.go) says otherwise, then as `strconv.Quote` writes it.
fn quote(v: &str) -> std::borrow::Cow<'_, str> {
    if needs_quoting(v) {
        std::borrow::Cow::Owned(go_quote(v))
    } else {
        std::borrow::Cow::Borrowed(v)
    }
}

/// slog's `needsQuoting`: empty; an ASCII space, `=`, `"` or control byte (its JSON safe set,
/// where DEL counts as safe and a backslash does not trigger quoting); or a non-ASCII space,
/// a non-printable character, or U+FFFD.
fn needs_quoting(s: &str) -> bool {
    s.is_empty()
        || s.chars().any(|c| {
            if c.is_ascii() {
                c != '\\' && (c == ' ' || c == '=' || c == '"' || c < ' ')
            } else {
                c == '\u{fffd}' || c.is_whitespace() || !go_is_print(c)
            }
        })
}

/// Go's `strconv.Quote` for a valid UTF-8 string: `\"` and `\\`, printable characters as
/// they are, `\a \b \f \n \r \t \v`, other control bytes and DEL as `\xHH`, other
/// non-printable characters as `\uHHHH` or `\UHHHHHHHH` (lower-case hex).
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if go_is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
/// Rust's standard library has no general categories, so beyond Latin-1 this takes out the
/// separators (all white space), the controls, the format characters (Cf, listed), the private
/// use areas and the noncharacters; a code point unassigned in Unicode is taken as printable
/// (Go escapes it), the one known difference.
fn go_is_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x100 {
        return (0x20..0x7f).contains(&u) || (0xa1..=0xff).contains(&u) && u != 0xad;
    }
    const FORMAT: [(u32, u32); 19] = [
        (0x600, 0x605),
        (0x61c, 0x61c),
        (0x6dd, 0x6dd),
        (0x70f, 0x70f),
        (0x890, 0x891),
        (0x8e2, 0x8e2),
        (0x180e, 0x180e),
        (0x200b, 0x200f),
        (0x202a, 0x202e),
        (0x2060, 0x206f),
        (0xfeff, 0xfeff),
        (0xfff9, 0xfffb),
        (0x110bd, 0x110bd),
        (0x110cd, 0x110cd),
        (0x13430, 0x1343f),
        (0x1bca0, 0x1bca3),
        (0x1d173, 0x1d17a),
        (0xe0001, 0xe0001),
        (0xe0020, 0xe007f),
    ];
    let private_use = (0xe000..=0xf8ff).contains(&u) || u >= 0xf0000;
    let nonchar = u & 0xfffe == 0xfffe || (0xfdd0..=0xfdef).contains(&u);
    !(c.is_whitespace()
        || c.is_control()
        || private_use
        || nonchar
        || FORMAT.iter().any(|&(a, b)| (a..=b).contains(&u)))
}

#[cfg(test)]
mod tests {
    use super::quote;
    use std::sync::{Arc, Mutex};

    #[test]
    fn logfmt_quotes_only_when_needed() {
        assert_eq!(super::quote("127.0.0.1:80"), "127.0.0.1:80");
        assert_eq!(super::quote("Listening now."), "\"Listening now.\"");
        assert_eq!(super::quote("a=b"), "\"a=b\"");
        assert_eq!(super::quote(""), "\"\"");
    }

    /// slog's TextHandler decides to quote as Go's `needsQuoting` does; the cases of
    /// golang/go src/log/slog/text_handler_test.go (TestNeedsQuoting, TestTextHandler).
    #[test]
    fn quoting_is_decided_as_go_slog_decides_it() {
        for (input, want_quoted) in [
            ("", true),
            ("ab", false),
            ("a=b", true),
            ("\"ab\"", true),
            ("\u{7}\u{8}", true),
            ("a\tb", true),
            ("µåπ", false),
            ("a b", true),
        ] {
            let got = quote(input);
            assert_eq!(got.starts_with('"'), want_quoted, "{input:?} -> {got}");
        }
        // TestTextHandler "quoted": key `x = y`, value `qu"o`.
        assert_eq!(quote("x = y"), r#""x = y""#);
        assert_eq!(quote("qu\"o"), r#""qu\"o""#);
        // A lone backslash is not a reason to quote (needsQuoting skips it).
        assert_eq!(quote(r"C:\dir"), r"C:\dir");
    }

    /// Once quoted, values are escaped as Go's strconv.Quote escapes them; the cases of
    /// golang/go src/strconv/quote_test.go (quotetests, column `out`).
    #[test]
    fn escaping_is_go_strconv_quote() {
        for (input, want) in [
            ("\u{7}\u{8}\u{c}\r\n\t\u{b}", r#""\a\b\f\r\n\t\v""#),
            ("\u{263a} x", "\"\u{263a} x\""),
            ("\u{10ffff}", r#""\U0010ffff""#),
            ("\u{4}", r#""\x04""#),
            ("!\u{a0}!\u{2000}!\u{3000}!", r#""!\u00a0!\u2000!\u3000!""#),
            ("a \\ b", r#""a \\ b""#),
        ] {
            assert_eq!(quote(input), want, "{input:?}");
        }
        // "\x7f" alone is not quoted by slog (its safe set has DEL); with a space it is,
        // and strconv.Quote writes \x7f.
        assert_eq!(quote("\u{7f} "), r#""\x7f ""#);
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Fields of the spans an event happens in come after `msg`, outermost first, before the
    /// event's own: as slog's `Logger.With` attributes do (TestTextHandlerPreformatted:
    /// `level=INFO msg=m dur=1m0s b=true a=1`).
    #[test]
    fn span_fields_are_included() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = super::logfmt_subscriber(move || writer.clone(), "debug");
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("poll", tenant = "t 1");
            let _o = outer.enter();
            let inner = tracing::info_span!("hour", hour = "2026-11-20T03", attempt = 2);
            let _i = inner.enter();
            tracing::warn!(status = 429, "Throttled.");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let line = text.lines().next().unwrap();
        let (_, rest) = line.split_once(' ').unwrap();
        assert!(line.starts_with("ts="), "{line}");
        assert_eq!(
            rest,
            r#"level=warn msg=Throttled. tenant="t 1" hour=2026-11-20T03 attempt=2 status=429"#
        );
    }
}
