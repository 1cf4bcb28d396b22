//! OTLP logs sink (`--otlp.logs`): each counted event becomes one log record, sent with the
//! `opentelemetry-otlp` log exporter (same endpoint, protocol, headers, TLS and timeout
//! variables as the metric push).
//!
//! A record: body = the event's JSON as the API sent it; timestamp = `CreationTime`; observed
//! timestamp = when the exporter fetched it; attributes `powerbi.activity`,
//! `powerbi.workspace.id`, `powerbi.report.id` when present, and `user.id` only with
//! `--otlp.logs.user-attribute` (the body carries the UserId regardless: forwarding raw events
//! is itself the operator's choice).

use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::logs::{LogBatch, LogExporter as _, SdkLogRecord, SdkLogger};
use opentelemetry_sdk::Resource;

use super::{ErrorReason, SendError, SendFuture, Sink};
use crate::aggregate::outbox::split_line;
use crate::decode::{decode_event, UnixMillis};

/// Records per export request.
const BATCH: usize = 512;

pub struct OtlpLogs {
    exporter: opentelemetry_otlp::LogExporter,
    logger: SdkLogger,
    scope: InstrumentationScope,
    user_attribute: bool,
    // Keeps the logger's provider alive; records are built with it, never emitted through it.
    _provider: opentelemetry_sdk::logs::SdkLoggerProvider,
}

impl OtlpLogs {
    pub fn new(
        mut exporter: opentelemetry_otlp::LogExporter,
        resource: &Resource,
        user_attribute: bool,
    ) -> Self {
        exporter.set_resource(resource);
        let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder().build();
        let scope = InstrumentationScope::builder("powerbi-exporter")
            .with_version(crate::VERSION)
            .build();
        let logger = provider.logger_with_scope(scope.clone());
        OtlpLogs {
            exporter,
            logger,
            scope,
            user_attribute,
            _provider: provider,
        }
    }

    fn record(&self, line: &[u8]) -> SdkLogRecord {
        let (fetched, raw) = split_line(line);
        let mut record = self.logger.create_log_record();
        record.set_body(AnyValue::String(
            String::from_utf8_lossy(raw).into_owned().into(),
        ));
        record.set_observed_timestamp(system_time(fetched));
        record.set_severity_number(Severity::Info);
        record.set_event_name("powerbi.activity");
        if let Ok(event) = decode_event(raw) {
            record.set_timestamp(system_time(event.time));
            record.add_attribute("powerbi.activity", event.activity.as_str().to_string());
            if let Some(ws) = &event.workspace_id {
                record.add_attribute("powerbi.workspace.id", ws.as_str().to_string());
            }
            if let Some(report) = &event.report_id {
                record.add_attribute("powerbi.report.id", report.as_str().to_string());
            }
            if let (true, Some(user)) = (self.user_attribute, &event.user_id) {
                record.add_attribute("user.id", user.to_string());
            }
        }
        record
    }
}

fn system_time(t: UnixMillis) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(t.0.max(0) as u64)
}

impl Sink for OtlpLogs {
    fn name(&self) -> &'static str {
        "otlp_logs"
    }

    fn batch_limits(&self) -> (usize, usize) {
        (BATCH, 4 * 1024 * 1024)
    }

    fn send<'a>(&'a mut self, events: &'a [Vec<u8>]) -> SendFuture<'a> {
        Box::pin(async move {
            let records: Vec<SdkLogRecord> = events.iter().map(|l| self.record(l)).collect();
            let pairs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                records.iter().map(|r| (r, &self.scope)).collect();
            self.exporter
                .export(LogBatch::new(&pairs))
                .await
                .map_err(|e| {
                    let detail = e.to_string();
                    let reason = if detail.contains("connect") || detail.contains("timed out") {
                        ErrorReason::Network
                    } else {
                        ErrorReason::ServerError
                    };
                    SendError {
                        delivered: 0,
                        reason,
                        retry_after: None,
                        give_up: None,
                        detail,
                    }
                })
        })
    }
}
