//! Forwarding's settings: the Azure Monitor Logs Ingestion sink (`logs_ingestion.*`) and the
//! spool's disk budget (`forward.*`). OTLP logs are switched on with the OTLP settings
//! (`exposition::settings`); the spool serves both.
//!
//! Invariant: a resolved [`ForwardConfig`] is valid (endpoint and rule together, an https
//! endpoint or a loopback one, a custom stream name, a credential); the sinks do not check it
//! again.

use std::time::Duration;

use clap::Args;

use super::logs_ingestion::{LogsIngestionConfig, MAX_BODY_BYTES};
use crate::azure::auth::Credential;
use crate::config::{section, with_default, Description, Document, Problems, Section, Sourced};
use crate::duration;

/// Disk the spool may use by default: 1 GiB.
pub const DEFAULT_MAX_BACKLOG_BYTES: u64 = 1 << 30;

/// The rule's stream by default.
pub const DEFAULT_STREAM: &str = "Custom-PowerBIActivity_CL";

/// Time allowed for one Logs Ingestion request by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

section! {
    /// `logs_ingestion:` of the config file.
    pub struct LogsIngestionFile("logs_ingestion") {
        endpoint: String => "a URL",
        dcr_id: String => "a rule id like dcr-…",
        stream: String => "a stream name",
        timeout: String => "a duration like 30s",
    }
}

section! {
    /// `forward:` of the config file.
    pub struct ForwardFile("forward") {
        max_backlog_bytes: u64 => "a whole number of bytes",
    }
}

/// Forwarding's sections of the config file.
#[derive(Debug, Default)]
pub struct ForwardFiles {
    pub logs_ingestion: LogsIngestionFile,
    pub forward: ForwardFile,
}

impl ForwardFiles {
    /// The section keys, for the list of known top-level keys.
    pub const KEYS: [&'static str; 2] = [LogsIngestionFile::KEY, ForwardFile::KEY];

    pub fn read(doc: &Document, problems: &mut Problems) -> Self {
        ForwardFiles {
            logs_ingestion: doc.section(problems),
            forward: doc.section(problems),
        }
    }
}

/// Flag names, each spelled once: in its `#[arg]` and in the origin of its value.
const ENDPOINT_FLAG: &str = "logs-ingestion.endpoint";
const DCR_ID_FLAG: &str = "logs-ingestion.dcr-id";
const STREAM_FLAG: &str = "logs-ingestion.stream";
const TIMEOUT_FLAG: &str = "logs-ingestion.timeout";

/// Forwarding's flags.
#[derive(Debug, Args, Default)]
pub struct ForwardFlags {
    /// Azure Monitor Logs Ingestion: the data collection endpoint (or the rule's
    /// logsIngestion endpoint) that receives every counted event as a row.
    #[arg(long = ENDPOINT_FLAG, value_name = "URL")]
    pub logs_ingestion_endpoint: Option<String>,

    /// Immutable id of the data collection rule (dcr-…).
    #[arg(long = DCR_ID_FLAG, value_name = "ID")]
    pub logs_ingestion_dcr_id: Option<String>,

    #[arg(
        long = STREAM_FLAG,
        value_name = "NAME",
        help = with_default("Stream of the data collection rule", DEFAULT_STREAM)
    )]
    pub logs_ingestion_stream: Option<String>,

    #[arg(
        long = TIMEOUT_FLAG,
        value_name = "DURATION",
        help = with_default("Time allowed for one Logs Ingestion request", duration::format(DEFAULT_TIMEOUT))
    )]
    pub logs_ingestion_timeout: Option<String>,

    #[arg(
        long = "forward.max-backlog-bytes",
        value_name = "BYTES",
        help = with_default(
            "Disk the forwarding spool may use for events a destination has not accepted yet; past it the oldest are dropped and counted",
            format!("{DEFAULT_MAX_BACKLOG_BYTES}, 1 GiB"),
        )
    )]
    pub forward_max_backlog_bytes: Option<u64>,
}

/// How the Logs Ingestion sink signs in: the live source's credential chain, with the Azure
/// Monitor scope of its cloud.
pub struct SinkIdentity {
    pub credential: Credential,
    pub scope: String,
}

/// Where raw events are forwarded, besides OTLP logs.
#[derive(Debug, Clone, Default)]
pub struct ForwardConfig {
    pub logs_ingestion: Option<LogsIngestionConfig>,
    /// Disk the spool may use for events not yet accepted everywhere.
    pub max_backlog_bytes: u64,
}

impl ForwardConfig {
    /// The flags over the file, checked. `identity` is asked only when a sink is configured.
    pub fn resolve(
        files: ForwardFiles,
        flags: &ForwardFlags,
        identity: impl FnOnce(&mut Problems) -> Option<SinkIdentity>,
        problems: &mut Problems,
    ) -> Self {
        let file = files.logs_ingestion;
        let sink = LogsIngestionSettings {
            endpoint: Sourced::layer(
                file.endpoint,
                flags.logs_ingestion_endpoint.clone(),
                ENDPOINT_FLAG,
            ),
            dcr_id: Sourced::layer(
                file.dcr_id,
                flags.logs_ingestion_dcr_id.clone(),
                DCR_ID_FLAG,
            ),
            stream: Sourced::layer(
                file.stream,
                flags.logs_ingestion_stream.clone(),
                STREAM_FLAG,
            ),
            timeout: Sourced::layer(
                file.timeout,
                flags.logs_ingestion_timeout.clone(),
                TIMEOUT_FLAG,
            ),
        };
        let logs_ingestion = (sink.endpoint.is_some() || sink.dcr_id.is_some())
            .then(|| sink.resolve(identity, problems))
            .flatten();
        let max_backlog_bytes = flags
            .forward_max_backlog_bytes
            .or(files.forward.max_backlog_bytes.map(|s| s.value))
            .unwrap_or(DEFAULT_MAX_BACKLOG_BYTES);
        ForwardConfig {
            logs_ingestion,
            max_backlog_bytes,
        }
    }

    /// Forwarding's lines of `check-config`; the credential shows only its kind.
    pub fn describe(&self, otlp_logs: bool, out: &mut Description) {
        if let Some(li) = &self.logs_ingestion {
            out.line("logs_ingestion.endpoint", &li.endpoint);
            out.line("logs_ingestion.dcr_id", &li.dcr_id);
            out.line("logs_ingestion.stream", &li.stream);
            out.line("logs_ingestion.credential", li.credential.kind());
        }
        if otlp_logs || self.logs_ingestion.is_some() {
            out.line("forward.max_backlog_bytes", self.max_backlog_bytes);
        }
    }
}

/// Events are forwarded from a durable spool, by a running exporter: a sink needs a state
/// directory and does not go with `--once`.
pub fn check_spool(forwarding: bool, once: bool, state_dir: bool, problems: &mut Problems) {
    if !forwarding {
        return;
    }
    if once {
        problems.push("--otlp.logs and --logs-ingestion.* forward events from a running exporter; they do not go with --once");
    } else if !state_dir {
        problems.push("--otlp.logs and --logs-ingestion.* need --state.dir: events are delivered at-least-once from a durable spool there");
    }
}

/// The Logs Ingestion settings, flags over the file, before they are checked.
struct LogsIngestionSettings {
    endpoint: Option<Sourced<String>>,
    dcr_id: Option<Sourced<String>>,
    stream: Option<Sourced<String>>,
    timeout: Option<Sourced<String>>,
}

impl LogsIngestionSettings {
    /// Endpoint and rule id together, a usable endpoint, a custom stream, a credential.
    fn resolve(
        self,
        identity: impl FnOnce(&mut Problems) -> Option<SinkIdentity>,
        problems: &mut Problems,
    ) -> Option<LogsIngestionConfig> {
        let (Some(endpoint), Some(dcr_id)) = (self.endpoint, self.dcr_id) else {
            problems.push("Logs Ingestion needs both --logs-ingestion.endpoint and --logs-ingestion.dcr-id (logs_ingestion.endpoint, logs_ingestion.dcr_id)");
            return None;
        };
        let endpoint = checked_endpoint(endpoint, problems)?;
        let stream = checked_stream(self.stream, problems);
        let timeout = checked_timeout(self.timeout, problems);
        let SinkIdentity { credential, scope } = identity(problems)?;
        Some(LogsIngestionConfig {
            endpoint,
            dcr_id: dcr_id.value,
            stream,
            credential,
            scope,
            timeout,
            max_body_bytes: MAX_BODY_BYTES,
        })
    }
}

/// An https endpoint, or plain http on loopback (a test receiver).
fn checked_endpoint(
    Sourced { value, origin }: Sourced<String>,
    problems: &mut Problems,
) -> Option<String> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| value.starts_with(p));
    if !value.starts_with("https://") && !loopback {
        problems.push(format!(
            "{origin} {value:?}: expected an https:// URL (plain http only for loopback)"
        ));
        return None;
    }
    Some(value)
}

fn checked_stream(stream: Option<Sourced<String>>, problems: &mut Problems) -> String {
    let Some(Sourced { value, origin }) = stream else {
        return DEFAULT_STREAM.to_string();
    };
    if !value.starts_with("Custom-") || value.contains(['/', '?', '#', ' ']) {
        problems.push(format!(
            "{origin} {value:?}: expected the rule's custom stream name, like {DEFAULT_STREAM}"
        ));
    }
    value
}

fn checked_timeout(timeout: Option<Sourced<String>>, problems: &mut Problems) -> Duration {
    let Some(Sourced { value, origin }) = timeout else {
        return DEFAULT_TIMEOUT;
    };
    match duration::parse(&value) {
        Ok(d) if d >= Duration::from_secs(1) => d,
        _ => {
            problems.push(format!(
                "{origin} {value:?}: expected a duration of 1s or more"
            ));
            DEFAULT_TIMEOUT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(yaml: &str, flags: &ForwardFlags) -> (ForwardConfig, Problems, bool) {
        let mut problems = Problems::default();
        let doc = Document::parse(yaml, &ForwardFiles::KEYS, &mut problems);
        let files = ForwardFiles::read(&doc, &mut problems);
        let mut asked = false;
        let config = ForwardConfig::resolve(
            files,
            flags,
            |_| {
                asked = true;
                None
            },
            &mut problems,
        );
        (config, problems, asked)
    }

    #[test]
    fn without_a_sink_no_credential_is_asked_for() {
        let (c, problems, asked) = resolve(
            "forward: {max_backlog_bytes: 5}\n",
            &ForwardFlags::default(),
        );
        assert!(problems.is_empty() && !asked && c.logs_ingestion.is_none());
        assert_eq!(c.max_backlog_bytes, 5);
        let (c, _, _) = resolve("", &ForwardFlags::default());
        assert_eq!(c.max_backlog_bytes, DEFAULT_MAX_BACKLOG_BYTES);
    }

    #[test]
    fn a_sink_is_checked_before_its_credential_is_asked_for() {
        let flags = ForwardFlags {
            logs_ingestion_endpoint: Some("http://example.com".into()),
            ..ForwardFlags::default()
        };
        let (_, problems, asked) = resolve("logs_ingestion: {dcr_id: dcr-1}\n", &flags);
        assert_eq!(
            problems.0,
            ["flag --logs-ingestion.endpoint \"http://example.com\": expected an https:// URL (plain http only for loopback)"]
        );
        assert!(!asked);
        let yaml = "logs_ingestion: {endpoint: 'https://x.example', dcr_id: dcr-1, stream: Bad, timeout: 0s}\n";
        let (_, problems, asked) = resolve(yaml, &ForwardFlags::default());
        assert_eq!(problems.0.len(), 2, "{problems}");
        assert!(problems.0[0].starts_with("config key `logs_ingestion.stream` \"Bad\""));
        assert!(problems.0[1].starts_with("config key `logs_ingestion.timeout` \"0s\""));
        assert!(asked);
    }
}
