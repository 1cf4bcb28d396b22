//! Logging: `tracing` to stderr as logfmt (default) or JSON, filtered by `--log.level`
//! (or `RUST_LOG` when set, for debugging dependencies).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};
use crate::decode::UnixMillis;

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
        LogFormat::Logfmt => builder.event_format(Logfmt).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// `ts=… level=… msg="…" key=value …`, one line per event.
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
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
        line.push_str(&fields.rest);
        writeln!(writer, "{line}")
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            let _ = write!(self.rest, " {}={}", field.name(), quote(value));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// Quotes a logfmt value when it needs it.
fn quote(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\')
    {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn logfmt_quotes_only_when_needed() {
        assert_eq!(super::quote("127.0.0.1:80"), "127.0.0.1:80");
        assert_eq!(super::quote("Listening now."), "\"Listening now.\"");
        assert_eq!(super::quote("a=b"), "\"a=b\"");
        assert_eq!(super::quote(""), "\"\"");
    }
}
