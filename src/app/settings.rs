//! The exporter's settings, composed: the config file's sections and the flags of every
//! component, resolved in one pass so that every problem is reported at once.
//!
//! Invariants:
//! - every problem is reported at once, each naming the key or flag and what is expected;
//!   the binary exits 2 on any of them;
//! - unknown keys are errors (a typo must not silently fall back to a default);
//! - after [`Config::load`] succeeds the values are valid: later stages do not re-check them.
//!
//! Components that own their settings (`exposition::settings`, `telemetry::settings`) declare
//! their section, flags and `resolve`; the rest is still resolved here until it moves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::RangeBounds;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_yaml_ng::Mapping;

use crate::aggregate::dedup::DedupAnchor;
use crate::aggregate::people::{PseudonymKey, UserLabelConfig};
use crate::aggregate::{AggregateConfig, Limits, DEFAULT_SERIES_RETENTION, MIN_SERIES_RETENTION};
use crate::azure::auth::{Authority, Credential, Secret};
use crate::catalogue;
use crate::cli::{LiveArgs, RunArgs};
use crate::config::{Description, Document, Problems, Section, Sourced};
use crate::decode::UnixMillis;
use crate::duration;
use crate::exposition::otlp::OtlpConfig;
use crate::exposition::settings::{WebConfig, WebFile};
use crate::forward::logs_ingestion::{LogsIngestionConfig, MAX_BODY_BYTES};
use crate::source::demo::DemoConfig;
use crate::source::powerbi::client::{HostPolicy, RetryPolicy, DEFAULT_MAX_RESPONSE_BYTES};
use crate::source::powerbi::cloud::Cloud;
use crate::source::powerbi::inventory::{InventoryConfig, MAX_PAGE_SIZE};
use crate::source::powerbi::window::PlanConfig;
use crate::source::powerbi::PowerBiConfig;
use crate::source::replay::{ReplayConfig, DEFAULT_MAX_IDS_PER_PASS};
use crate::telemetry::settings::{LogConfig, LogFile};

#[derive(Debug, Clone)]
pub enum SourceConfig {
    Replay(ReplayConfig),
    Demo(DemoConfig),
    PowerBi(Box<PowerBiConfig>),
}

/// The validated configuration of a run of the exporter.
#[derive(Debug, Clone)]
pub struct Config {
    pub web: WebConfig,
    pub log: LogConfig,
    pub source: SourceConfig,
    pub once: bool,
    pub aggregate: AggregateConfig,
    pub state_dir: Option<PathBuf>,
    pub otlp: OtlpConfig,
    pub forward: ForwardConfig,
}

/// Where raw events are forwarded, besides OTLP logs.
#[derive(Debug, Clone, Default)]
pub struct ForwardConfig {
    pub logs_ingestion: Option<LogsIngestionConfig>,
    /// Disk the spool may use for events not yet accepted everywhere.
    pub max_backlog_bytes: u64,
}

/// Request budget allowed against a plain-http loopback API (a simulated tenant); the real
/// API's is 200.
const SIMULATED_MAX_REQUESTS_PER_HOUR: usize = 100_000;

/// Largest simulated tenant `demo.workspaces` / `demo.users` may ask for.
const DEMO_MAX_WORKSPACES: usize = 10_000;
const DEMO_MAX_USERS: usize = 1_000_000;

/// Default of `--forward.max-backlog-bytes`.
pub const DEFAULT_MAX_BACKLOG_BYTES: u64 = 1 << 30;

impl Config {
    /// The tenant whose activity is read, when known (a resource attribute of OTLP data).
    pub fn tenant_id(&self) -> Option<String> {
        match &self.source {
            SourceConfig::PowerBi(live) => live.credential.tenant_id().map(str::to_string),
            SourceConfig::Demo(_) => Some(crate::simulator::api::ApiConfig::default().tenant_id),
            SourceConfig::Replay(_) => None,
        }
    }

    /// The effective settings as YAML-like lines, for `check-config`; secrets never appear.
    pub fn describe(&self) -> String {
        let mut description = Description::default();
        self.web.describe(&mut description);
        self.log.describe(&mut description);
        let mut out = String::new();
        let mut line = |key: &str, value: String| {
            use std::fmt::Write as _;
            let _ = writeln!(out, "{key}: {value}");
        };
        line(
            "state.dir",
            self.state_dir
                .as_ref()
                .map_or("(none: in memory)".into(), |d| d.display().to_string()),
        );
        line(
            "dedup.window",
            duration::format(self.aggregate.dedup_window),
        );
        line(
            "limits.series_retention",
            self.aggregate.series_retention.map_or(
                "(none: a replay keeps every series)".into(),
                duration::format,
            ),
        );
        let protocol = |p: Option<crate::exposition::otlp::Protocol>| {
            p.map_or("off".to_string(), |p| p.as_str().to_string())
        };
        line("otlp.metrics", protocol(self.otlp.metrics));
        line("otlp.logs", protocol(self.otlp.logs));
        if let Some(li) = &self.forward.logs_ingestion {
            line("logs_ingestion.endpoint", li.endpoint.clone());
            line("logs_ingestion.dcr_id", li.dcr_id.clone());
            line("logs_ingestion.stream", li.stream.clone());
            line("logs_ingestion.credential", li.credential.kind().into());
        }
        if self.otlp.logs.is_some() || self.forward.logs_ingestion.is_some() {
            line(
                "forward.max_backlog_bytes",
                self.forward.max_backlog_bytes.to_string(),
            );
        }
        let f = &self.aggregate.filters;
        for (key, list) in [
            ("filters.include_workspaces", &f.include_workspaces),
            ("filters.exclude_workspaces", &f.exclude_workspaces),
            ("filters.exclude_users", &f.exclude_users),
            ("filters.include_activities", &f.include_activities),
            ("filters.exclude_activities", &f.exclude_activities),
        ] {
            if !list.is_empty() {
                line(key, format!("{list:?}"));
            }
        }
        line(
            "users.label",
            match &self.aggregate.users {
                UserLabelConfig::Off => "off".into(),
                UserLabelConfig::Plain => "plain".into(),
                UserLabelConfig::Pseudonym(_) => "pseudonym (key: <redacted>)".into(),
                UserLabelConfig::PseudonymUnkeyed => {
                    "pseudonym (key: kept in the state directory)".into()
                }
            },
        );
        if !self.aggregate.tenant_domains.is_empty() {
            line(
                "tenant.domains",
                format!("{:?}", self.aggregate.tenant_domains),
            );
        }
        if f.exclude_personal_workspaces {
            line("filters.exclude_personal_workspaces", "true".into());
        }
        if f.exclude_service_principals {
            line("filters.exclude_service_principals", "true".into());
        }
        for (family, cap) in &self.aggregate.limits.max_series {
            line(&format!("limits.max_series.{family}"), cap.to_string());
        }
        match &self.source {
            SourceConfig::Replay(r) => line(
                "source",
                format!(
                    "replay {} (at most {} ids per pass)",
                    r.path.display(),
                    r.max_ids_per_pass
                ),
            ),
            SourceConfig::Demo(d) => line(
                "source",
                format!(
                    "demo (seed {}, {} events/min at peak)",
                    d.tenant.seed, d.peak_events_per_minute
                ),
            ),
            SourceConfig::PowerBi(live) => {
                line("source", "powerbi".into());
                line("powerbi.api_url", live.hosts.api_url.clone());
                line("powerbi.scope", live.scope.clone());
                line(
                    "powerbi.poll_interval",
                    duration::format(live.poll_interval),
                );
                line("powerbi.lookback", format!("{}h", live.plan.lookback_hours));
                line(
                    "powerbi.initial_lookback",
                    duration::format(live.initial_lookback),
                );
                line(
                    "powerbi.max_requests_per_hour",
                    live.max_requests_per_hour.to_string(),
                );
                if let Some(inv) = &live.inventory {
                    line(
                        "inventory",
                        format!(
                            "every {}, timeout {}, {} requests/hour, page size {}",
                            duration::format(inv.refresh),
                            duration::format(inv.timeout),
                            inv.max_requests_per_hour,
                            inv.page_size
                        ),
                    );
                }
                line(
                    "powerbi.request_timeout",
                    duration::format(live.request_timeout),
                );
                line(
                    "powerbi.max_response_bytes",
                    live.max_response_bytes.to_string(),
                );
                line(
                    "powerbi.count_own_exports",
                    (!self.aggregate.exclude_own_exports).to_string(),
                );
                line("azure.credential", live.credential.kind().into());
                match &live.credential {
                    Credential::ClientSecret { authority, .. } => {
                        line("azure.authority_host", authority.host.clone());
                        line("azure.tenant_id", authority.tenant_id.clone());
                        line("azure.client_id", authority.client_id.clone());
                        line("azure.client_secret", "<redacted>".into());
                    }
                    Credential::Certificate { authority, key } => {
                        line("azure.authority_host", authority.host.clone());
                        line("azure.tenant_id", authority.tenant_id.clone());
                        line("azure.client_id", authority.client_id.clone());
                        line("azure.certificate_thumbprint", key.thumbprint.clone());
                    }
                    Credential::WorkloadIdentity {
                        authority,
                        token_file,
                    } => {
                        line("azure.authority_host", authority.host.clone());
                        line("azure.tenant_id", authority.tenant_id.clone());
                        line("azure.client_id", authority.client_id.clone());
                        line(
                            "azure.federated_token_file",
                            token_file.display().to_string(),
                        );
                    }
                    Credential::ManagedIdentity(_) => {}
                }
            }
        }
        if self.once {
            line("once", "true".into());
        }
        description.finish() + &out
    }
}

/// Raw values before validation: strings as written, with where each came from.
#[derive(Debug, Default)]
struct Raw {
    replay: Option<PathBuf>,
    replay_max_ids_per_pass: Option<(usize, String)>,
    demo: bool,
    demo_seed: Option<u64>,
    demo_workspaces: Option<usize>,
    demo_users: Option<usize>,
    demo_peak: Option<(f64, String)>,
    demo_backfill: Option<(String, String)>,
    demo_api_only: bool,
    max_series: Vec<(String, usize, String)>,
    series_retention: Option<(String, String)>,
    filters: crate::aggregate::filter::FilterSpec,
    users_label: Option<(String, String)>,
    pseudonym_key_file: Option<(PathBuf, String)>,
    tenant_domains: Vec<String>,
    dedup_window: Option<(String, String)>,
    once: bool,
    live: RawLive,
    state_dir: Option<PathBuf>,
    otlp_enabled: bool,
    otlp_logs: bool,
    otlp_logs_user_attribute: bool,
    logs_ingestion: RawLogsIngestion,
    forward_max_backlog_bytes: Option<u64>,
}

/// Raw settings of the Logs Ingestion sink.
#[derive(Debug, Default)]
struct RawLogsIngestion {
    endpoint: Option<(String, String)>,
    dcr_id: Option<(String, String)>,
    stream: Option<(String, String)>,
    timeout: Option<(String, String)>,
}

/// Raw settings of the live source.
#[derive(Debug, Default)]
struct RawLive {
    api_url: Option<(String, String)>,
    poll_interval: Option<(String, String)>,
    lookback: Option<(String, String)>,
    initial_lookback: Option<(String, String)>,
    retry_delay: Option<(String, String)>,
    request_timeout: Option<(String, String)>,
    max_response_bytes: Option<(usize, String)>,
    max_requests_per_hour: Option<(usize, String)>,
    authority_host: Option<(String, String)>,
    cloud: Option<(String, String)>,
    count_own_exports: bool,
    inventory_enabled: bool,
    inventory_refresh: Option<(String, String)>,
    inventory_timeout: Option<(String, String)>,
    inventory_max_requests_per_hour: Option<(usize, String)>,
    inventory_page_size: Option<(usize, String)>,
    credential: RawCredential,
}

impl Config {
    /// Loads the file named by `--config.file` (if any) and applies the flags over it.
    pub fn load(args: &RunArgs) -> Result<Config, Problems> {
        let mut problems = Problems::default();
        let doc = Document::load(args.config_file.as_deref(), TOP_KEYS, &mut problems);
        let mut file = FileSections::read(&doc, &mut problems);
        apply_flags(args, &mut file.raw, &mut problems.0);
        read_credential_env(&mut file.raw.live.credential);
        let config = resolve(file, args, &mut problems);
        problems.into_result(config)
    }

    /// Parses a YAML document alone (no flags), for tests and `check-config`.
    pub fn from_yaml(text: &str) -> Result<Config, Problems> {
        let mut problems = Problems::default();
        let doc = Document::parse(text, TOP_KEYS, &mut problems);
        let file = FileSections::read(&doc, &mut problems);
        let config = resolve(file, &RunArgs::default(), &mut problems);
        problems.into_result(config)
    }
}

/// The config file, read section by section.
struct FileSections {
    web: WebFile,
    log: LogFile,
    /// The sections not yet owned by their component.
    raw: Raw,
}

impl FileSections {
    fn read(doc: &Document, problems: &mut Problems) -> FileSections {
        let web = doc.section(problems);
        let log = doc.section(problems);
        let mut raw = Raw::default();
        read_file(doc, &mut raw, &mut problems.0);
        FileSections { web, log, raw }
    }
}

/// Each component's settings: flags over the file, checked.
fn resolve(file: FileSections, args: &RunArgs, problems: &mut Problems) -> Option<Config> {
    let web = WebConfig::resolve(file.web, &args.web, problems);
    let log = LogConfig::resolve(file.log, &args.log, problems);
    validate(file.raw, web, log, &mut problems.0)
}

// === The YAML file ===

/// `otlp:`, `logs_ingestion:` and `forward:`.
fn read_forwarding(doc: &Document, raw: &mut Raw, errors: &mut Vec<String>) {
    let file = |key: &str| format!("config key `{key}`");
    if let Some(otlp) = sub(
        doc,
        "otlp",
        &["enabled", "logs", "logs_user_attribute"],
        errors,
    ) {
        let flag = |key: &str, errors: &mut Vec<String>| {
            field::<bool>(otlp, &format!("otlp.{key}"), "true or false", errors).unwrap_or(false)
        };
        raw.otlp_enabled = flag("enabled", errors);
        raw.otlp_logs = flag("logs", errors);
        raw.otlp_logs_user_attribute = flag("logs_user_attribute", errors);
    }
    if let Some(li) = sub(
        doc,
        "logs_ingestion",
        &["endpoint", "dcr_id", "stream", "timeout"],
        errors,
    ) {
        let string = |key: &str, expected: &str, errors: &mut Vec<String>| {
            let path = format!("logs_ingestion.{key}");
            field::<String>(li, &path, expected, errors).map(|v| (v, file(&path)))
        };
        raw.logs_ingestion.endpoint = string("endpoint", "a URL", errors);
        raw.logs_ingestion.dcr_id = string("dcr_id", "a rule id like dcr-…", errors);
        raw.logs_ingestion.stream = string("stream", "a stream name", errors);
        raw.logs_ingestion.timeout = string("timeout", "a duration like 30s", errors);
    }
    if let Some(fw) = sub(doc, "forward", &["max_backlog_bytes"], errors) {
        raw.forward_max_backlog_bytes = field(
            fw,
            "forward.max_backlog_bytes",
            "a whole number of bytes",
            errors,
        );
    }
}

const TOP_KEYS: &[&str] = &[
    WebFile::KEY,
    LogFile::KEY,
    "replay",
    "demo",
    "limits",
    "dedup",
    "powerbi",
    "azure",
    "state",
    "filters",
    "users",
    "tenant",
    "inventory",
    "otlp",
    "logs_ingestion",
    "forward",
];

const FILTER_KEYS: &[&str] = &[
    "include_workspaces",
    "exclude_workspaces",
    "exclude_personal_workspaces",
    "exclude_users",
    "exclude_service_principals",
    "include_activities",
    "exclude_activities",
];

fn read_file(doc: &Document, raw: &mut Raw, errors: &mut Vec<String>) {
    let file = |key: &str| format!("config key `{key}`");
    if let Some(replay) = sub(doc, "replay", &["path", "max_ids_per_pass"], errors) {
        raw.replay = field::<PathBuf>(replay, "replay.path", "a file or directory path", errors);
        raw.replay_max_ids_per_pass = field::<usize>(
            replay,
            "replay.max_ids_per_pass",
            "a number of ids like 2000000",
            errors,
        )
        .map(|v| (v, file("replay.max_ids_per_pass")));
    }
    if let Some(demo) = sub(
        doc,
        "demo",
        &[
            "enabled",
            "seed",
            "workspaces",
            "users",
            "peak_events_per_minute",
            "backfill",
            "api_only",
        ],
        errors,
    ) {
        raw.demo = field::<bool>(demo, "demo.enabled", "true or false", errors).unwrap_or(false);
        raw.demo_seed = field(demo, "demo.seed", "a whole number", errors);
        raw.demo_workspaces = field(demo, "demo.workspaces", "a whole number", errors);
        raw.demo_users = field(demo, "demo.users", "a whole number", errors);
        raw.demo_peak = field::<f64>(demo, "demo.peak_events_per_minute", "a number", errors)
            .map(|v| (v, file("demo.peak_events_per_minute")));
        raw.demo_backfill = field::<String>(demo, "demo.backfill", "a duration like 6h", errors)
            .map(|v| (v, file("demo.backfill")));
        raw.demo_api_only =
            field::<bool>(demo, "demo.api_only", "true or false", errors).unwrap_or(false);
    }
    if let Some(limits) = sub(doc, "limits", &["max_series", "series_retention"], errors) {
        raw.series_retention = field::<String>(
            limits,
            "limits.series_retention",
            "a duration like 35d",
            errors,
        )
        .map(|v| (v, file("limits.series_retention")));
        if let Some(caps) = field::<BTreeMap<String, usize>>(
            limits,
            "limits.max_series",
            "a map of family name to a whole number",
            errors,
        ) {
            raw.max_series = caps
                .into_iter()
                .map(|(k, v)| (k.clone(), v, file(&format!("limits.max_series.{k}"))))
                .collect();
        }
    }
    if let Some(f) = sub(doc, "filters", FILTER_KEYS, errors) {
        let list = |key: &str, errors: &mut Vec<String>| -> Vec<String> {
            field(
                f,
                &format!("filters.{key}"),
                "a list of regular expressions",
                errors,
            )
            .unwrap_or_default()
        };
        let spec = &mut raw.filters;
        spec.include_workspaces = list("include_workspaces", errors);
        spec.exclude_workspaces = list("exclude_workspaces", errors);
        spec.exclude_users = list("exclude_users", errors);
        spec.include_activities = list("include_activities", errors);
        spec.exclude_activities = list("exclude_activities", errors);
        spec.exclude_personal_workspaces = field(
            f,
            "filters.exclude_personal_workspaces",
            "true or false",
            errors,
        )
        .unwrap_or(false);
        spec.exclude_service_principals = field(
            f,
            "filters.exclude_service_principals",
            "true or false",
            errors,
        )
        .unwrap_or(false);
    }
    if let Some(inv) = sub(
        doc,
        "inventory",
        &[
            "enabled",
            "refresh",
            "timeout",
            "max_requests_per_hour",
            "page_size",
        ],
        errors,
    ) {
        let live = &mut raw.live;
        live.inventory_enabled =
            field(inv, "inventory.enabled", "true or false", errors).unwrap_or(false);
        live.inventory_refresh =
            field::<String>(inv, "inventory.refresh", "a duration like 24h", errors)
                .map(|v| (v, file("inventory.refresh")));
        live.inventory_timeout =
            field::<String>(inv, "inventory.timeout", "a duration like 30s", errors)
                .map(|v| (v, file("inventory.timeout")));
        live.inventory_max_requests_per_hour = field::<usize>(
            inv,
            "inventory.max_requests_per_hour",
            "a whole number",
            errors,
        )
        .map(|v| (v, file("inventory.max_requests_per_hour")));
        live.inventory_page_size =
            field::<usize>(inv, "inventory.page_size", "a whole number", errors)
                .map(|v| (v, file("inventory.page_size")));
    }
    if let Some(users) = sub(doc, "users", &["label", "pseudonym_key_file"], errors) {
        raw.users_label = field::<String>(users, "users.label", "pseudonym, plain or off", errors)
            .map(|v| (v, file("users.label")));
        raw.pseudonym_key_file =
            field::<PathBuf>(users, "users.pseudonym_key_file", "a file path", errors)
                .map(|v| (v, file("users.pseudonym_key_file")));
    }
    if let Some(tenant) = sub(doc, "tenant", &["domains"], errors) {
        raw.tenant_domains =
            field(tenant, "tenant.domains", "a list of domains", errors).unwrap_or_default();
    }
    if let Some(dedup) = sub(doc, "dedup", &["window"], errors) {
        raw.dedup_window = field::<String>(dedup, "dedup.window", "a duration like 29d", errors)
            .map(|v| (v, file("dedup.window")));
    }
    if let Some(state) = sub(doc, "state", &["dir"], errors) {
        raw.state_dir = field(state, "state.dir", "a directory path", errors);
    }
    read_forwarding(doc, raw, errors);
    let keys = [
        "api_url",
        "poll_interval",
        "lookback",
        "initial_lookback",
        "max_requests_per_hour",
        "retry_delay",
        "request_timeout",
        "max_response_bytes",
    ];
    if let Some(pb) = sub(doc, "powerbi", &keys, errors) {
        let string = |key: &str, expected: &str, errors: &mut Vec<String>| {
            let path = format!("powerbi.{key}");
            field::<String>(pb, &path, expected, errors).map(|v| (v, file(&path)))
        };
        raw.live.api_url = string("api_url", "a URL", errors);
        raw.live.poll_interval = string("poll_interval", "a duration like 5m", errors);
        raw.live.lookback = string("lookback", "a duration like 24h", errors);
        raw.live.initial_lookback = string("initial_lookback", "a duration like 7d", errors);
        raw.live.retry_delay = string("retry_delay", "a duration like 2s", errors);
        raw.live.request_timeout = string("request_timeout", "a duration like 120s", errors);
        raw.live.max_response_bytes = field::<usize>(
            pb,
            "powerbi.max_response_bytes",
            "a whole number of bytes",
            errors,
        )
        .map(|v| (v, file("powerbi.max_response_bytes")));
        raw.live.max_requests_per_hour = field::<usize>(
            pb,
            "powerbi.max_requests_per_hour",
            "a whole number",
            errors,
        )
        .map(|v| (v, file("powerbi.max_requests_per_hour")));
    }
    if let Some(az) = sub(
        doc,
        "azure",
        &[
            "authority_host",
            "tenant_id",
            "client_id",
            "client_secret_file",
            "client_certificate_path",
            "federated_token_file",
            "managed_identity",
            "cloud",
        ],
        errors,
    ) {
        raw.live.cloud = field::<String>(az, "azure.cloud", Cloud::NAMES, errors)
            .map(|v| (v, file("azure.cloud")));
        raw.live.authority_host = field::<String>(az, "azure.authority_host", "a URL", errors)
            .map(|v| (v, file("azure.authority_host")));
        let credential = &mut raw.live.credential;
        credential.tenant_id = field(az, "azure.tenant_id", "a tenant id", errors);
        credential.client_id = field(az, "azure.client_id", "a client id", errors);
        credential.client_secret_file =
            field(az, "azure.client_secret_file", "a file path", errors);
        credential.certificate_path =
            field(az, "azure.client_certificate_path", "a file path", errors);
        credential.federated_token_file =
            field(az, "azure.federated_token_file", "a file path", errors);
        credential.managed_identity =
            field(az, "azure.managed_identity", "true or false", errors).unwrap_or(false);
    }
}

/// The mapping of a section not yet declared with `section!`, its unknown keys reported.
fn sub<'a>(
    doc: &'a Document,
    key: &str,
    known: &[&str],
    errors: &mut Vec<String>,
) -> Option<&'a Mapping> {
    let mut problems = Problems::default();
    let map = doc.mapping(key, known, &mut problems);
    errors.extend(problems.0);
    map
}

fn field<T: DeserializeOwned>(
    map: &Mapping,
    path: &str,
    expected: &str,
    errors: &mut Vec<String>,
) -> Option<T> {
    let key = path.rsplit('.').next().unwrap_or(path);
    let value = map.get(key)?;
    match serde_yaml_ng::from_value(value.clone()) {
        Ok(v) => Some(v),
        Err(_) => {
            let shown = serde_yaml_ng::to_string(value).unwrap_or_default();
            errors.push(format!(
                "config key `{path}`: expected {expected}, got {}",
                shown.trim()
            ));
            None
        }
    }
}

// === Flags ===

fn apply_flags(args: &RunArgs, raw: &mut Raw, errors: &mut Vec<String>) {
    let flag = |name: &str| format!("flag --{name}");
    let spec = &mut raw.filters;
    for (slot, flags) in [
        (&mut spec.include_workspaces, &args.filter_include_workspace),
        (&mut spec.exclude_workspaces, &args.filter_exclude_workspace),
        (&mut spec.exclude_users, &args.filter_exclude_user),
        (&mut spec.include_activities, &args.filter_include_activity),
        (&mut spec.exclude_activities, &args.filter_exclude_activity),
    ] {
        if !flags.is_empty() {
            slot.clone_from(flags);
        }
    }
    spec.exclude_personal_workspaces |= args.filter_exclude_personal_workspaces;
    if let Some(v) = &args.users_label {
        raw.users_label = Some((v.clone(), flag("users.label")));
    }
    if let Some(v) = &args.users_pseudonym_key_file {
        raw.pseudonym_key_file = Some((v.clone(), flag("users.pseudonym-key-file")));
    }
    if !args.tenant_domains.is_empty() {
        raw.tenant_domains.clone_from(&args.tenant_domains);
    }
    spec.exclude_service_principals |= args.filter_exclude_service_principals;
    raw.once = args.once;
    raw.otlp_enabled |= args.otlp_enabled;
    raw.otlp_logs |= args.otlp_logs;
    raw.otlp_logs_user_attribute |= args.otlp_logs_user_attribute;
    let li = &mut raw.logs_ingestion;
    for (slot, value, name) in [
        (
            &mut li.endpoint,
            &args.logs_ingestion_endpoint,
            "logs-ingestion.endpoint",
        ),
        (
            &mut li.dcr_id,
            &args.logs_ingestion_dcr_id,
            "logs-ingestion.dcr-id",
        ),
        (
            &mut li.stream,
            &args.logs_ingestion_stream,
            "logs-ingestion.stream",
        ),
        (
            &mut li.timeout,
            &args.logs_ingestion_timeout,
            "logs-ingestion.timeout",
        ),
    ] {
        if let Some(v) = value {
            *slot = Some((v.clone(), flag(name)));
        }
    }
    if args.forward_max_backlog_bytes.is_some() {
        raw.forward_max_backlog_bytes = args.forward_max_backlog_bytes;
    }
    if args.state_dir.is_some() {
        raw.state_dir.clone_from(&args.state_dir);
    }
    if let Some(n) = args.replay_max_ids_per_pass {
        raw.replay_max_ids_per_pass = Some((n, flag("replay.max-ids-per-pass")));
    }
    if let Some(p) = &args.replay {
        raw.replay = Some(p.clone());
        raw.demo = false;
    }
    if args.demo {
        raw.demo = true;
        if args.replay.is_none() {
            raw.replay = None;
        }
    }
    if let Some(v) = args.demo_seed {
        raw.demo_seed = Some(v);
    }
    if let Some(v) = args.demo_peak_events_per_minute {
        raw.demo_peak = Some((v, flag("demo.peak-events-per-minute")));
    }
    if let Some(v) = &args.demo_backfill {
        raw.demo_backfill = Some((v.clone(), flag("demo.backfill")));
    }
    if args.demo_api_only {
        raw.demo_api_only = true;
    }
    for spec in &args.max_series {
        match spec.split_once('=').map(|(k, v)| (k.trim(), v.trim().parse::<usize>())) {
            Some((family, Ok(n))) => {
                raw.max_series.retain(|(f, _, _)| f != family);
                raw.max_series.push((family.to_string(), n, flag("limits.max-series")));
            }
            _ => errors.push(format!("flag --limits.max-series {spec:?}: expected FAMILY=N, e.g. powerbi_report_events_total=5000")),
        }
    }
    if let Some(v) = &args.dedup_window {
        raw.dedup_window = Some((v.clone(), flag("dedup.window")));
    }
    if let Some(v) = &args.series_retention {
        raw.series_retention = Some((v.clone(), flag("limits.series-retention")));
    }
    apply_live_flags(&args.live, &mut raw.live);
}

/// The live source's flags over its file settings.
fn apply_live_flags(args: &LiveArgs, live: &mut RawLive) {
    let flag = |name: &str| format!("flag --{name}");
    let set = |slot: &mut Option<(String, String)>, v: &Option<String>, name: &str| {
        if let Some(v) = v {
            *slot = Some((v.clone(), flag(name)));
        }
    };
    set(&mut live.api_url, &args.powerbi_api_url, "powerbi.api-url");
    set(
        &mut live.poll_interval,
        &args.powerbi_poll_interval,
        "powerbi.poll-interval",
    );
    set(
        &mut live.lookback,
        &args.powerbi_lookback,
        "powerbi.lookback",
    );
    set(
        &mut live.initial_lookback,
        &args.powerbi_initial_lookback,
        "powerbi.initial-lookback",
    );
    set(
        &mut live.retry_delay,
        &args.powerbi_retry_delay,
        "powerbi.retry-delay",
    );
    set(
        &mut live.request_timeout,
        &args.powerbi_request_timeout,
        "powerbi.request-timeout",
    );
    if let Some(n) = args.powerbi_max_response_bytes {
        live.max_response_bytes = Some((n, flag("powerbi.max-response-bytes")));
    }
    set(
        &mut live.authority_host,
        &args.azure_authority_host,
        "azure.authority-host",
    );
    set(&mut live.cloud, &args.azure_cloud, "azure.cloud");
    live.count_own_exports |= args.powerbi_count_own_exports;
    live.inventory_enabled |= args.inventory_enabled;
    set(
        &mut live.inventory_refresh,
        &args.inventory_refresh,
        "inventory.refresh",
    );
    set(
        &mut live.inventory_timeout,
        &args.inventory_timeout,
        "inventory.timeout",
    );
    if let Some(n) = args.inventory_max_requests_per_hour {
        live.inventory_max_requests_per_hour = Some((n, flag("inventory.max-requests-per-hour")));
    }
    if let Some(n) = args.inventory_page_size {
        live.inventory_page_size = Some((n, flag("inventory.page-size")));
    }
    if let Some(n) = args.powerbi_max_requests_per_hour {
        live.max_requests_per_hour = Some((n, flag("powerbi.max-requests-per-hour")));
    }
    let credential = &mut live.credential;
    let replace = |slot: &mut Option<PathBuf>, v: &Option<PathBuf>| {
        if v.is_some() {
            slot.clone_from(v);
        }
    };
    if args.azure_tenant_id.is_some() {
        credential.tenant_id.clone_from(&args.azure_tenant_id);
    }
    if args.azure_client_id.is_some() {
        credential.client_id.clone_from(&args.azure_client_id);
    }
    replace(
        &mut credential.client_secret_file,
        &args.azure_client_secret_file,
    );
    replace(
        &mut credential.certificate_path,
        &args.azure_client_certificate_path,
    );
    replace(
        &mut credential.federated_token_file,
        &args.azure_federated_token_file,
    );
    credential.managed_identity |= args.azure_managed_identity;
    if args.azure_imds_endpoint.is_some() {
        credential
            .imds_endpoint
            .clone_from(&args.azure_imds_endpoint);
    }
}

// === Validation ===

fn validate(
    raw: Raw,
    web: Option<WebConfig>,
    log: LogConfig,
    errors: &mut Vec<String>,
) -> Option<Config> {
    let mut limits = Limits::default();
    for (family, n, from) in raw.max_series {
        match catalogue::by_name(&family) {
            Some(f) if f.default_cap.is_some() && n >= 1 => {
                limits.max_series.insert(family, n);
            }
            Some(f) if f.default_cap.is_some() => {
                errors.push(format!("{from}: the cap of {family} must be at least 1"))
            }
            Some(_) => errors.push(format!(
                "{from}: {family} has a fixed set of series and takes no cap"
            )),
            None => {
                let capped: Vec<_> = catalogue::capped().map(|f| f.name).collect();
                errors.push(format!(
                    "{from}: unknown family {family:?} (capped families: {})",
                    capped.join(", ")
                ));
            }
        }
    }
    let mut duration_of = |value: Option<(String, String)>, default: Duration| match value {
        None => default,
        Some((v, from)) => duration::parse(&v).unwrap_or_else(|e| {
            errors.push(format!("{from}: {e}"));
            default
        }),
    };
    let explicit_dedup_window = raw.dedup_window.is_some();
    let dedup_origin = raw
        .dedup_window
        .as_ref()
        .map_or_else(|| "--dedup.window".to_string(), |(_, from)| from.clone());
    let mut own_user = None;
    let mut exclude_own_exports = false;
    let mut dedup_window = duration_of(raw.dedup_window, AggregateConfig::default().dedup_window);
    let defaults = DemoConfig::default();
    let backfill = duration_of(raw.demo_backfill, defaults.backfill);
    let peak = match raw.demo_peak {
        Some((v, from)) if !(v.is_finite() && v > 0.0) => {
            errors.push(format!("{from}: expected a positive number, got {v}"));
            defaults.peak_events_per_minute
        }
        Some((v, _)) => v,
        None => defaults.peak_events_per_minute,
    };
    if dedup_window < Duration::from_secs(3600) {
        errors.push(format!(
            "{dedup_origin} {}: must be at least 1h (events arrive up to an hour late)",
            duration::format(dedup_window)
        ));
    }
    // The Logs Ingestion sink uses the same credential chain (another scope).
    let sink_credential = (raw.logs_ingestion.endpoint.is_some()
        || raw.logs_ingestion.dcr_id.is_some())
    .then(|| SinkCredential {
        raw: raw.live.credential.clone(),
        authority: raw.live.authority_host.clone(),
        cloud: raw.live.cloud.clone(),
    });
    let source = match (raw.replay, raw.demo) {
        (Some(_), true) => {
            errors.push("choose one source: --replay PATH or --demo, not both".into());
            None
        }
        (Some(path), false) => Some(SourceConfig::Replay(ReplayConfig {
            path,
            // At least 1,000: fewer makes passes of single days.
            max_ids_per_pass: count_within(
                raw.replay_max_ids_per_pass,
                1_000..,
                "at least 1000 (ids a replay pass may remember)",
                DEFAULT_MAX_IDS_PER_PASS,
                errors,
            ),
        })),
        (None, true) if raw.once => {
            errors.push("flag --once needs --replay PATH (the demo never ends)".into());
            None
        }
        (None, true) => {
            let mut tenant = defaults.tenant;
            tenant.seed = raw.demo_seed.unwrap_or(tenant.seed);
            tenant.workspaces = raw.demo_workspaces.unwrap_or(tenant.workspaces);
            tenant.users = raw.demo_users.unwrap_or(tenant.users);
            // The simulated tenant is built in memory at start: keep it laptop-sized.
            for (key, n, max) in [
                ("demo.workspaces", tenant.workspaces, DEMO_MAX_WORKSPACES),
                ("demo.users", tenant.users, DEMO_MAX_USERS),
            ] {
                if !(1..=max).contains(&n) {
                    errors.push(format!(
                        "config key `{key}` {n}: expected 1 to {max} (the simulated tenant lives in memory)"
                    ));
                }
            }
            Some(SourceConfig::Demo(DemoConfig {
                tenant,
                peak_events_per_minute: peak,
                backfill,
                tick: defaults.tick,
                api_only: raw.demo_api_only,
            }))
        }
        (None, false) if raw.once => {
            errors.push("flag --once needs --replay PATH (the demo never ends)".into());
            None
        }
        (None, false) if raw.live.credential.requested() => {
            // The exporter's own reads of the log appear as ExportActivityEvents by its client id.
            // The exporter's own reads of the log appear as ExportActivityEvents by its
            // application id or its object id: the client id, and the ids of its token.
            exclude_own_exports = !raw.live.count_own_exports;
            own_user = raw.live.credential.client_id.clone();
            let live = live_source(
                raw.live,
                explicit_dedup_window.then_some(dedup_window),
                errors,
            );
            if let (Some(live), false) = (&live, explicit_dedup_window) {
                // Ids older than the lookback are never re-read, so the live source need not
                // remember them (the state file holds every id in the window).
                dedup_window = Duration::from_secs((live.plan.lookback_hours as u64 + 2) * 3600);
            }
            live.map(|c| SourceConfig::PowerBi(Box::new(c)))
        }
        (None, false) => {
            errors.push("no source configured: pass --demo to run on the simulated tenant, --replay PATH to replay saved events, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET to read a tenant".into());
            None
        }
    };
    if let Err(bad) = crate::aggregate::filter::Filters::new(&raw.filters) {
        errors.extend(bad.into_iter().map(|e| format!("filters: {e}")));
    }
    let filters = raw.filters;
    let replay = matches!(source, Some(SourceConfig::Replay(_)));
    let series_retention = series_retention(raw.series_retention, dedup_window, replay, errors);
    let users = user_labels(raw.users_label, raw.pseudonym_key_file, errors);
    let tenant_domains: Vec<String> = raw
        .tenant_domains
        .iter()
        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    let otlp = OtlpConfig::resolve(
        raw.otlp_enabled,
        raw.otlp_logs,
        raw.otlp_logs_user_attribute,
        errors,
    );
    let forward = ForwardConfig {
        logs_ingestion: sink_credential.and_then(|c| logs_ingestion(raw.logs_ingestion, c, errors)),
        max_backlog_bytes: raw
            .forward_max_backlog_bytes
            .unwrap_or(DEFAULT_MAX_BACKLOG_BYTES),
    };
    if forward.logs_ingestion.is_some() || otlp.logs.is_some() {
        if raw.once {
            errors.push("--otlp.logs and --logs-ingestion.* forward events from a running exporter; they do not go with --once".into());
        } else if raw.state_dir.is_none() {
            errors.push("--otlp.logs and --logs-ingestion.* need --state.dir: events are delivered at-least-once from a durable spool there".into());
        }
    }
    let (dedup_anchor, dedup_hold_from) = (
        dedup_anchor(source.as_ref()),
        dedup_hold_from(source.as_ref(), dedup_window),
    );
    // Outbound HTTPS reads the proxy and CA variables: a wrong one would fail every request.
    let outbound = matches!(source, Some(SourceConfig::PowerBi(_)))
        || forward.logs_ingestion.is_some()
        || otlp.metrics.is_some()
        || otlp.logs.is_some();
    if outbound {
        errors.extend(crate::azure::http::environment_problems());
    }
    Some(Config {
        otlp,
        forward,
        web: web?,
        log,
        once: raw.once,
        state_dir: raw.state_dir,
        source: source?,
        aggregate: AggregateConfig {
            limits,
            dedup_anchor,
            dedup_hold_from,
            dedup_window,
            own_user,
            exclude_own_exports,
            filters,
            users,
            tenant_domains,
            series_retention,
        },
    })
}

/// `--limits.series-retention`: longer than the 28-day windows, and no shorter than the dedup
/// window (an event old enough to be accepted must not land in a series that is expired).
/// A replay keeps every series unless asked: an archive is replayed for its totals, in any
/// order, while the live and demo sources move forward in time.
fn series_retention(
    value: Option<(String, String)>,
    dedup_window: Duration,
    replay: bool,
    errors: &mut Vec<String>,
) -> Option<Duration> {
    let Some((v, from)) = value else {
        return (!replay).then(|| DEFAULT_SERIES_RETENTION.max(dedup_window));
    };
    let retention = match duration::parse(&v) {
        Ok(d) => d,
        Err(e) => {
            errors.push(format!("{from}: {e}"));
            return Some(DEFAULT_SERIES_RETENTION);
        }
    };
    let min = MIN_SERIES_RETENTION.max(dedup_window);
    if retention < min {
        errors.push(format!(
            "{from} {v}: must be at least {} (the 28-day windows span 29 UTC days, and the dedup window is {})",
            duration::format(min),
            duration::format(dedup_window)
        ));
    }
    Some(retention)
}

/// The count `value` when `ok` holds it; else the error `{from} {n}: expected {expected}`, and
/// `default`.
fn count_within(
    value: Option<(usize, String)>,
    ok: impl RangeBounds<usize>,
    expected: &str,
    default: usize,
    errors: &mut Vec<String>,
) -> usize {
    match value {
        Some((n, from)) if !ok.contains(&n) => {
            errors.push(format!("{from} {n}: expected {expected}"));
            default
        }
        Some((n, _)) => n,
        None => default,
    }
}

/// A replayed archive has no dedup window (its passes bound memory); the others end theirs at
/// the wall clock.
fn dedup_anchor(source: Option<&SourceConfig>) -> DedupAnchor {
    match source {
        Some(SourceConfig::Replay(_)) => DedupAnchor::Unanchored,
        _ => DedupAnchor::WallClock,
    }
}

/// Where the dedup window is held open while a first start loads history older than the window
/// (an hour early: the source takes its own start a moment later).
fn dedup_hold_from(source: Option<&SourceConfig>, window: Duration) -> Option<UnixMillis> {
    let history = match source {
        Some(SourceConfig::PowerBi(c)) => c.initial_lookback,
        Some(SourceConfig::Demo(d)) => d.backfill,
        _ => return None,
    };
    let held = history + Duration::from_secs(3600);
    (held > window).then(|| UnixMillis::now().saturating_sub_millis(held.as_millis() as i64))
}

/// `--users.label` and the pseudonym key (file, else `POWERBI_EXPORTER_PSEUDONYM_KEY`, else
/// none yet: the application keeps a random one in the state directory).
fn user_labels(
    mode: Option<(String, String)>,
    key_file: Option<(PathBuf, String)>,
    errors: &mut Vec<String>,
) -> UserLabelConfig {
    let mode = match mode {
        None => "pseudonym".to_string(),
        Some((m, _)) if ["pseudonym", "plain", "off"].contains(&m.as_str()) => m,
        Some((m, from)) => {
            errors.push(format!("{from} {m:?}: expected pseudonym, plain or off"));
            "pseudonym".to_string()
        }
    };
    match mode.as_str() {
        "off" => return UserLabelConfig::Off,
        "plain" => return UserLabelConfig::Plain,
        _ => {}
    }
    if let Some((path, from)) = key_file {
        return match crate::files::read_small(&path) {
            Ok(bytes) if bytes.trim_ascii().len() >= 16 => {
                UserLabelConfig::Pseudonym(PseudonymKey(bytes.trim_ascii().to_vec()))
            }
            Ok(_) => {
                errors.push(format!(
                    "{from} {}: the key must hold at least 16 bytes",
                    path.display()
                ));
                UserLabelConfig::PseudonymUnkeyed
            }
            Err(e) => {
                errors.push(format!("{from} {}: cannot read it: {e}", path.display()));
                UserLabelConfig::PseudonymUnkeyed
            }
        };
    }
    match std::env::var("POWERBI_EXPORTER_PSEUDONYM_KEY") {
        Ok(k) if k.trim().len() >= 16 => {
            UserLabelConfig::Pseudonym(PseudonymKey(k.trim().as_bytes().to_vec()))
        }
        Ok(k) if !k.is_empty() => {
            errors.push(
                "environment POWERBI_EXPORTER_PSEUDONYM_KEY: the key must hold at least 16 bytes"
                    .into(),
            );
            UserLabelConfig::PseudonymUnkeyed
        }
        _ => UserLabelConfig::PseudonymUnkeyed,
    }
}

/// The live source's settings, checked.
fn live_source(
    raw: RawLive,
    dedup_window: Option<Duration>,
    errors: &mut Vec<String>,
) -> Option<PowerBiConfig> {
    let mut duration_of = |value: Option<(String, String)>,
                           default: Duration,
                           min: Duration,
                           max: Duration| match value {
        None => default,
        Some((v, from)) => match duration::parse(&v) {
            Ok(d) if d >= min && d <= max => d,
            Ok(_) => {
                errors.push(format!(
                    "{from} {v:?}: expected between {} and {}",
                    duration::format(min),
                    duration::format(max)
                ));
                default
            }
            Err(e) => {
                errors.push(format!("{from}: {e}"));
                default
            }
        },
    };
    let hour = Duration::from_secs(3600);
    let days28 = Duration::from_secs(28 * 86_400);
    let poll_interval = duration_of(
        raw.poll_interval,
        Duration::from_secs(300),
        Duration::from_secs(1),
        hour,
    );
    let lookback = duration_of(raw.lookback, Duration::from_secs(24 * 3600), hour, days28);
    let initial_lookback =
        duration_of(raw.initial_lookback, Duration::ZERO, Duration::ZERO, days28);
    let retry_delay = duration_of(
        raw.retry_delay,
        Duration::from_secs(2),
        Duration::from_millis(10),
        Duration::from_secs(60),
    );
    let request_timeout = duration_of(
        raw.request_timeout,
        Duration::from_secs(120),
        Duration::from_secs(1),
        Duration::from_secs(600),
    );
    let inventory_refresh = duration_of(
        raw.inventory_refresh,
        Duration::from_secs(24 * 3600),
        Duration::from_secs(60),
        Duration::from_secs(7 * 86_400),
    );
    let inventory_timeout = duration_of(
        raw.inventory_timeout,
        Duration::from_secs(30),
        Duration::from_secs(1),
        Duration::from_secs(120),
    );
    let inventory_budget = count_within(
        raw.inventory_max_requests_per_hour,
        1..=50,
        "1 to 50 (the API allows 50 per hour for the whole tenant)",
        20,
        errors,
    );
    let page_size = count_within(
        raw.inventory_page_size,
        1..=MAX_PAGE_SIZE,
        &format!("1 to {MAX_PAGE_SIZE} (the API's range for $top)"),
        InventoryConfig::default().page_size,
        errors,
    );
    let inventory = raw.inventory_enabled.then_some(InventoryConfig {
        refresh: inventory_refresh,
        timeout: inventory_timeout,
        max_requests_per_hour: inventory_budget,
        page_size,
    });
    let max_response_bytes = count_within(
        raw.max_response_bytes,
        4096..,
        "at least 4096 (an API page with a few events)",
        DEFAULT_MAX_RESPONSE_BYTES,
        errors,
    );
    if let Some(dedup_window) = dedup_window.filter(|w| lookback + hour > *w) {
        errors.push(format!(
            "--dedup.window (dedup.window) {} must exceed --powerbi.lookback ({}) by at least 1h, or re-read events would count twice",
            duration::format(dedup_window),
            duration::format(lookback)
        ));
    }
    let url = |value: Option<(String, String)>,
               default: &str,
               errors: &mut Vec<String>|
     -> String {
        let Some((v, from)) = value else {
            return default.to_string();
        };
        match reqwest::Url::parse(&v) {
            Ok(u)
                if u.scheme() == "https"
                    || (u.scheme() == "http"
                        && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))) =>
            {
                v.trim_end_matches('/').to_string()
            }
            _ => {
                errors.push(format!(
                    "{from} {v:?}: expected an https:// URL (plain http only for loopback)"
                ));
                default.to_string()
            }
        }
    };
    let cloud = match raw.cloud {
        None => Cloud::Public,
        Some((v, from)) => v.parse().unwrap_or_else(|e| {
            errors.push(format!("{from} {v:?}: {e}"));
            Cloud::Public
        }),
    };
    let api_url = url(raw.api_url, cloud.api_url(), errors);
    // Power BI is https only; a plain-http API on loopback is a simulated tenant
    // (`--demo.api-only`), whose budget is not the tenant's shared 200.
    let simulated = api_url.starts_with("http://");
    let max_requests_per_hour = match raw.max_requests_per_hour {
        Some((n, from)) if n == 0 || (n > 200 && !simulated) => {
            errors.push(format!("{from} {n}: expected 1 to 200 (the API allows 200 per hour for all callers together)"));
            120
        }
        Some((n, from)) if n > SIMULATED_MAX_REQUESTS_PER_HOUR => {
            errors.push(format!(
                "{from} {n}: expected 1 to {SIMULATED_MAX_REQUESTS_PER_HOUR} for a simulated tenant"
            ));
            120
        }
        Some((n, _)) => n,
        None => 120,
    };
    let authority_host = url(raw.authority_host, cloud.authority_host(), errors);
    let credential = credential(raw.credential, authority_host, errors)?;
    Some(PowerBiConfig {
        hosts: HostPolicy {
            api_url,
            cluster_suffixes: vec![cloud.cluster_suffix().into()],
        },
        credential,
        scope: cloud.scope().into(),
        poll_interval,
        plan: PlanConfig {
            recent_hours: 2,
            lookback_hours: (lookback.as_secs() / 3600) as i64,
        },
        max_requests_per_hour,
        initial_lookback,
        retry: RetryPolicy {
            first_delay: retry_delay,
            ..RetryPolicy::default()
        },
        request_timeout,
        max_response_bytes,
        inventory,
    })
}

/// The credential settings the Logs Ingestion sink shares with the live source.
struct SinkCredential {
    raw: RawCredential,
    authority: Option<(String, String)>,
    cloud: Option<(String, String)>,
}

/// The Logs Ingestion sink: endpoint and rule id together, a credential, a sane stream name.
fn logs_ingestion(
    raw: RawLogsIngestion,
    sink: SinkCredential,
    errors: &mut Vec<String>,
) -> Option<LogsIngestionConfig> {
    let (Some((endpoint, from)), Some((dcr_id, _))) = (raw.endpoint, raw.dcr_id) else {
        errors.push("Logs Ingestion needs both --logs-ingestion.endpoint and --logs-ingestion.dcr-id (logs_ingestion.endpoint, logs_ingestion.dcr_id)".into());
        return None;
    };
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| endpoint.starts_with(p));
    if !endpoint.starts_with("https://") && !loopback {
        errors.push(format!(
            "{from} {endpoint:?}: expected an https:// URL (plain http only for loopback)"
        ));
        return None;
    }
    let SinkCredential {
        raw: credential_raw,
        authority,
        cloud,
    } = sink;
    let (stream, stream_origin) = raw.stream.unwrap_or_else(|| {
        (
            "Custom-PowerBIActivity_CL".to_string(),
            "--logs-ingestion.stream".to_string(),
        )
    });
    if !stream.starts_with("Custom-") || stream.contains(['/', '?', '#', ' ']) {
        errors.push(format!(
            "{stream_origin} {stream:?}: expected the rule's custom stream name, like Custom-PowerBIActivity_CL"
        ));
    }
    let timeout = match raw.timeout {
        None => Duration::from_secs(30),
        Some((v, from)) => match crate::duration::parse(&v) {
            Ok(d) if d >= Duration::from_secs(1) => d,
            _ => {
                errors.push(format!("{from} {v:?}: expected a duration of 1s or more"));
                Duration::from_secs(30)
            }
        },
    };
    let cloud: Cloud = match cloud {
        None => Cloud::Public,
        Some((v, _)) => v.parse().unwrap_or(Cloud::Public),
    };
    let host = authority.map_or_else(|| cloud.authority_host().to_string(), |(v, _)| v);
    if !credential_raw.requested() && !credential_raw.on_managed_host() {
        errors.push("Logs Ingestion needs a credential: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or a certificate, a federated token, a managed identity)".into());
        return None;
    }
    let credential = credential(credential_raw, host, errors)?;
    Some(LogsIngestionConfig {
        endpoint,
        dcr_id,
        stream,
        credential,
        scope: cloud.monitor_scope().into(),
        timeout,
        max_body_bytes: MAX_BODY_BYTES,
    })
}

/// Secrets and host-provided endpoints come from the environment only (Azure SDK names).
fn read_credential_env(credential: &mut RawCredential) {
    let env = |name: &str| std::env::var(name).ok().filter(|s| !s.is_empty());
    credential.client_secret = env("AZURE_CLIENT_SECRET").map(Secret::new);
    credential.certificate_password = env("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(Secret::new);
    // azure-identity reads "true" or "1" (case-insensitive) as yes.
    credential.send_certificate_chain = env("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    credential.identity_endpoint =
        env("IDENTITY_ENDPOINT").zip(env("IDENTITY_HEADER").map(Secret::new));
    credential.msi_endpoint = env("MSI_ENDPOINT");
    // IDENTITY_ENDPOINT without IDENTITY_HEADER but with IMDS_ENDPOINT beside it: Azure Arc.
    credential.arc_endpoint = env("IDENTITY_ENDPOINT")
        .filter(|_| env("IDENTITY_HEADER").is_none() && env("IMDS_ENDPOINT").is_some());
    credential.msi_secret = env("MSI_SECRET").map(Secret::new);
}

/// The live source and the aggregation settings for `top` against a tenant: flags and the
/// environment only (no config file), checked like the exporter's.
pub fn live_for_top(args: &LiveArgs) -> Result<(PowerBiConfig, AggregateConfig), Problems> {
    let mut errors = Vec::new();
    let mut raw = RawLive::default();
    apply_live_flags(args, &mut raw);
    read_credential_env(&mut raw.credential);
    if !raw.credential.requested() {
        errors.push("top needs --replay PATH, or a tenant: set AZURE_TENANT_ID, AZURE_CLIENT_ID and a credential (see README, Connecting a real tenant)".into());
        return Err(Problems(errors));
    }
    let own_user = raw.credential.client_id.clone();
    let exclude_own_exports = !raw.count_own_exports;
    let live = live_source(raw, None, &mut errors);
    match live {
        Some(live) if errors.is_empty() => Ok((
            live,
            AggregateConfig {
                own_user,
                exclude_own_exports,
                ..AggregateConfig::default()
            },
        )),
        _ => Err(Problems(errors)),
    }
}

/// What the environment says about the credential (Azure SDK variable names).
#[derive(Debug, Default, Clone)]
struct RawCredential {
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<PathBuf>,
    /// `AZURE_CLIENT_SECRET`.
    client_secret: Option<Secret>,
    certificate_path: Option<PathBuf>,
    federated_token_file: Option<PathBuf>,
    managed_identity: bool,
    /// `AZURE_CLIENT_CERTIFICATE_PASSWORD`.
    certificate_password: Option<Secret>,
    /// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`.
    send_certificate_chain: bool,
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` (App Service, Container Apps).
    identity_endpoint: Option<(String, Secret)>,
    /// `MSI_ENDPOINT` (Cloud Shell, or with `MSI_SECRET` the 2017-09-01 protocol).
    msi_endpoint: Option<String>,
    /// `MSI_SECRET`.
    msi_secret: Option<Secret>,
    /// `IDENTITY_ENDPOINT` of an Azure Arc host (`IMDS_ENDPOINT` set, no `IDENTITY_HEADER`).
    arc_endpoint: Option<String>,
    imds_endpoint: Option<String>,
}

impl RawCredential {
    /// Whether anything asks for the live source.
    fn requested(&self) -> bool {
        self.tenant_id.is_some() || self.client_id.is_some() || self.managed_identity
    }

    /// Whether the host offers a managed identity through its variables (IMDS cannot be told
    /// without asking it).
    fn on_managed_host(&self) -> bool {
        self.identity_endpoint.is_some()
            || self.msi_endpoint.is_some()
            || self.arc_endpoint.is_some()
    }
}

/// Picks the credential the way the Azure SDKs' DefaultAzureCredential does — a client secret,
/// else a client certificate, else a federated token file (the environment and workload
/// identity credentials) — and else a managed identity, whether or not
/// `--azure.managed-identity` asks for it.
fn credential(
    raw: RawCredential,
    authority_host: String,
    errors: &mut Vec<String>,
) -> Option<Credential> {
    use crate::azure::auth::CertificateKey;
    let authority = |errors: &mut Vec<String>| match (&raw.tenant_id, &raw.client_id) {
        (Some(tenant_id), Some(client_id)) => Some(Authority {
            host: authority_host.clone(),
            tenant_id: tenant_id.clone(),
            client_id: client_id.clone(),
        }),
        _ => {
            errors.push("a client secret, certificate or federated token needs both AZURE_TENANT_ID (--azure.tenant-id) and AZURE_CLIENT_ID (--azure.client-id)".into());
            None
        }
    };
    if let Some(path) = &raw.client_secret_file {
        let text = read_named_file("--azure.client-secret-file", path, errors)?;
        if text.trim().is_empty() {
            errors.push(format!(
                "--azure.client-secret-file {}: the file is empty",
                path.display()
            ));
            return None;
        }
        let secret = Secret::new(text.trim_end_matches(['\r', '\n']));
        return Some(Credential::ClientSecret {
            authority: authority(errors)?,
            secret,
        });
    }
    if let Some(secret) = raw.client_secret.clone() {
        return Some(Credential::ClientSecret {
            authority: authority(errors)?,
            secret,
        });
    }
    if let Some(path) = &raw.certificate_path {
        let bytes = crate::files::read_small(path)
            .map_err(|e| {
                errors.push(format!(
                    "AZURE_CLIENT_CERTIFICATE_PATH {}: cannot read it: {e}",
                    path.display()
                ))
            })
            .ok()?;
        let password = raw.certificate_password.as_ref();
        let key = CertificateKey::from_file(&bytes, password, raw.send_certificate_chain)
            .map_err(|e| {
                errors.push(format!(
                    "AZURE_CLIENT_CERTIFICATE_PATH {}: {e}",
                    path.display()
                ))
            })
            .ok()?;
        return Some(Credential::Certificate {
            authority: authority(errors)?,
            key,
        });
    }
    if let Some(token_file) = raw.federated_token_file.clone() {
        return Some(Credential::WorkloadIdentity {
            authority: authority(errors)?,
            token_file,
        });
    }
    Some(Credential::ManagedIdentity(managed_identity(raw)))
}

/// The host's managed identity, found as azure-sdk-for-go's azidentity finds it:
/// `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` (App Service, Container Apps), else
/// `IDENTITY_ENDPOINT` + `IMDS_ENDPOINT` (Azure Arc), else `MSI_ENDPOINT`
/// (with `MSI_SECRET` the 2017-09-01 protocol, as azure-identity for Python reads it; alone,
/// Cloud Shell), else the instance metadata service. `AZURE_CLIENT_ID` picks a user-assigned
/// identity.
fn managed_identity(raw: RawCredential) -> crate::azure::auth::ManagedIdentity {
    use crate::azure::auth::{ManagedIdentity, IMDS_ENDPOINT};
    let client_id = raw.client_id;
    if let (None, Some(endpoint)) = (&raw.identity_endpoint, raw.arc_endpoint) {
        return ManagedIdentity::Arc { endpoint };
    }
    match (raw.identity_endpoint, raw.msi_endpoint, raw.msi_secret) {
        (Some((endpoint, header)), _, _) => ManagedIdentity::AppService {
            endpoint,
            header,
            client_id,
        },
        (None, Some(endpoint), Some(secret)) => ManagedIdentity::MsiSecret {
            endpoint,
            secret,
            client_id,
        },
        (None, Some(endpoint), None) => ManagedIdentity::CloudShell { endpoint },
        (None, None, _) => ManagedIdentity::Imds {
            endpoint: raw.imds_endpoint.unwrap_or_else(|| IMDS_ENDPOINT.into()),
            client_id,
        },
    }
}

/// The contents of `path`, or an error naming the setting (`what`) and the path.
fn read_named_file(what: &str, path: &std::path::Path, errors: &mut Vec<String>) -> Option<String> {
    crate::files::read_small_to_string(path)
        .map_err(|e| errors.push(format!("{what} {}: cannot read it: {e}", path.display())))
        .ok()
}

/// What `healthcheck` needs of the exporter's settings: where it listens and its web config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    pub listen_address: SocketAddr,
    pub web_config_file: Option<PathBuf>,
}

/// The probe's target, read like the exporter reads its own: `--config.file`'s `web:` section
/// (the whole file is checked, as the exporter would check it), the healthcheck's own flags
/// over it, then the default address.
pub fn probe_target(args: &crate::cli::HealthcheckArgs) -> Result<ProbeTarget, Problems> {
    let mut problems = Problems::default();
    let doc = Document::load(args.config_file.as_deref(), TOP_KEYS, &mut problems);
    let file = FileSections::read(&doc, &mut problems);
    let listen_address = crate::exposition::settings::listen_address(
        Sourced::layer(
            file.web.listen_address,
            args.listen_address.clone(),
            "web.listen-address",
        ),
        &mut problems,
    );
    let web_config_file = Sourced::layer(
        file.web.config_file,
        args.web_config_file.clone(),
        "web.config.file",
    );
    problems.into_result(listen_address.map(|listen_address| ProbeTarget {
        listen_address,
        web_config_file: web_config_file.map(|file| file.value),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::settings::LogFormat;

    #[test]
    fn a_full_file_is_read() {
        let c = Config::from_yaml(
            "web: {listen_address: '127.0.0.1:9999', telemetry_path: /m}\nlog: {level: debug, format: json}\n\
             demo: {enabled: true, seed: 3, backfill: 1h}\nlimits: {max_series: {powerbi_report_events_total: 7}}\ndedup: {window: 2d}\n",
        )
        .unwrap();
        assert_eq!(c.web.listen_address, "127.0.0.1:9999".parse().unwrap());
        assert_eq!(c.web.telemetry_path, "/m");
        assert_eq!(
            c.log,
            LogConfig {
                level: tracing::Level::DEBUG,
                format: LogFormat::Json
            }
        );
        assert_eq!(
            c.aggregate.limits.max_series["powerbi_report_events_total"],
            7
        );
        assert_eq!(c.aggregate.dedup_window, Duration::from_secs(2 * 86_400));
        let SourceConfig::Demo(d) = c.source else {
            panic!("demo expected")
        };
        assert_eq!((d.tenant.seed, d.backfill), (3, Duration::from_secs(3600)));
    }

    #[test]
    fn forwarding_is_read_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let c = Config::from_yaml(&format!(
            "demo: {{enabled: true}}\nstate: {{dir: {}}}\notlp: {{logs: true, logs_user_attribute: true}}\n\
             logs_ingestion: {{endpoint: 'https://dce.example.com', dcr_id: dcr-abc, timeout: 10s}}\n\
             forward: {{max_backlog_bytes: 1000}}\nazure: {{tenant_id: t1, client_id: c1, client_secret_file: {}, cloud: usgovhigh}}\n",
            dir.path().display(),
            secret.display()
        ))
        .unwrap();
        assert!(c.otlp.logs.is_some() && c.otlp.logs_user_attribute);
        assert_eq!(c.forward.max_backlog_bytes, 1000);
        let li = c.forward.logs_ingestion.unwrap();
        assert_eq!(
            (li.endpoint.as_str(), li.dcr_id.as_str(), li.stream.as_str()),
            (
                "https://dce.example.com",
                "dcr-abc",
                "Custom-PowerBIActivity_CL"
            )
        );
        assert_eq!(li.timeout, Duration::from_secs(10));
        // The sovereign cloud picks the monitor audience and the authority.
        assert_eq!(li.scope, "https://monitor.azure.us/.default");
        let Credential::ClientSecret { authority, secret } = &li.credential else {
            panic!("client secret expected")
        };
        assert_eq!(
            (authority.tenant_id.as_str(), authority.client_id.as_str()),
            ("t1", "c1")
        );
        assert_eq!(authority.host, "https://login.microsoftonline.us");
        assert_eq!(secret.expose(), "s3cret");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::from_yaml(
            "web: {listen_addres: ':1', telemetry_path: metrics}\nlog: {level: loud}\nlimits: {max_series: {powerbi_nope: 1, powerbi_active_users: 2}}\ndedup: {window: 10}\ncolour: red\n",
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "config key `colour` is unknown",
            "config key `web.listen_addres` is unknown (known keys here: listen_address, telemetry_path, disable_exporter_metrics, config_file, max_requests)",
            "config key `web.telemetry_path` \"metrics\": expected a path starting with '/'",
            "config key `log.level` \"loud\": expected one of debug, info, warn, error",
            "unknown family \"powerbi_nope\"",
            "powerbi_active_users has a fixed set of series and takes no cap",
            "config key `dedup.window`: expected a duration like 29d, got 10",
            "no source configured",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert_eq!(err.0.len(), 8, "{text}");
    }

    #[test]
    fn a_sovereign_cloud_sets_api_audience_authority_and_clusters_together() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        let yaml = format!(
            "azure: {{cloud: usgovhigh, tenant_id: t, client_id: c, client_secret_file: {}}}\n",
            empty.display()
        );
        // An empty secret file: the error names it, and the cloud still parsed.
        let err = Config::from_yaml(&yaml).unwrap_err().to_string();
        assert!(err.contains("the file is empty"), "{err}");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s\n").unwrap();
        let yaml = format!(
            "azure: {{cloud: usgovhigh, tenant_id: t, client_id: c, client_secret_file: {}}}\n",
            secret.display()
        );
        let c = Config::from_yaml(&yaml).unwrap();
        let SourceConfig::PowerBi(live) = c.source else {
            panic!("live source expected")
        };
        assert_eq!(live.hosts.api_url, "https://api.high.powerbigov.us");
        assert_eq!(
            live.hosts.cluster_suffixes,
            vec![".analysis.usgovcloudapi.net".to_string()]
        );
        assert_eq!(
            live.scope,
            "https://high.analysis.usgovcloudapi.net/powerbi/api/.default"
        );
        assert!(
            matches!(&live.credential, Credential::ClientSecret { authority, .. } if authority.host == "https://login.microsoftonline.us")
        );
        assert_eq!(
            (
                c.aggregate.own_user.as_deref(),
                c.aggregate.exclude_own_exports
            ),
            (Some("c"), true),
            "own exports filtered by default"
        );
        assert_eq!(
            c.aggregate.dedup_window,
            Duration::from_secs(26 * 3600),
            "lookback 24h + 2h"
        );
        assert!(Config::from_yaml("azure: {cloud: germany, tenant_id: t}\n")
            .unwrap_err()
            .to_string()
            .contains("expected one of public, usgov"));
    }
}
