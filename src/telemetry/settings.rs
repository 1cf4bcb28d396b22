//! Logging settings (`log.*` in the file, `--log.*` flags): the level and the line format.

use clap::Args;

use crate::config::{section, with_default, Description, Problems, Sourced};

/// Level logged by default.
pub const DEFAULT_LEVEL: &str = "info";
/// Line format by default.
pub const DEFAULT_FORMAT: &str = "logfmt";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Logfmt,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub level: tracing::Level,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: tracing::Level::INFO,
            format: LogFormat::Logfmt,
        }
    }
}

section! {
    /// `log:` of the config file.
    pub struct LogFile("log") {
        level: String => "one of debug, info, warn, error",
        format: String => "logfmt or json",
    }
}

/// Flag names, each spelled once: in its `#[arg]` and in the origin of its value.
const LEVEL_FLAG: &str = "log.level";
const FORMAT_FLAG: &str = "log.format";

/// The `--log.*` flags.
#[derive(Debug, Args, Default)]
pub struct LogFlags {
    #[arg(
        long = LEVEL_FLAG,
        value_name = "LEVEL",
        value_parser = ["debug", "info", "warn", "error"],
        help = with_default("Only log messages with the given severity or above", DEFAULT_LEVEL)
    )]
    pub log_level: Option<String>,

    #[arg(
        long = FORMAT_FLAG,
        value_name = "FORMAT",
        value_parser = ["logfmt", "json"],
        help = with_default("Output format of log messages", DEFAULT_FORMAT)
    )]
    pub log_format: Option<String>,
}

impl LogConfig {
    /// The flags over the file, checked.
    pub fn resolve(file: LogFile, flags: &LogFlags, problems: &mut Problems) -> Self {
        let level = Sourced::layer(file.level, flags.log_level.clone(), LEVEL_FLAG);
        let format = Sourced::layer(file.format, flags.log_format.clone(), FORMAT_FLAG);
        LogConfig {
            level: level.map_or(tracing::Level::INFO, |l| parse_level(l, problems)),
            format: format.map_or(LogFormat::Logfmt, |f| parse_format(f, problems)),
        }
    }

    /// The `log.*` lines of `check-config`.
    pub fn describe(&self, out: &mut Description) {
        out.line("log.level", self.level.as_str().to_ascii_lowercase());
        let format = match self.format {
            LogFormat::Logfmt => "logfmt",
            LogFormat::Json => "json",
        };
        out.line("log.format", format);
    }
}

fn parse_level(
    Sourced { value, origin }: Sourced<String>,
    problems: &mut Problems,
) -> tracing::Level {
    match value.as_str() {
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" => tracing::Level::WARN,
        "error" => tracing::Level::ERROR,
        _ => {
            problems.push(format!(
                "{origin} {value:?}: expected one of debug, info, warn, error"
            ));
            tracing::Level::INFO
        }
    }
}

fn parse_format(Sourced { value, origin }: Sourced<String>, problems: &mut Problems) -> LogFormat {
    match value.as_str() {
        "logfmt" => LogFormat::Logfmt,
        "json" => LogFormat::Json,
        _ => {
            problems.push(format!("{origin} {value:?}: expected logfmt or json"));
            LogFormat::Logfmt
        }
    }
}
