//! The exporter's settings, composed: the config file's sections and the flags of every
//! component, resolved in one pass so that every problem is reported at once.
//!
//! Invariants:
//! - every problem is reported at once, each naming the key or flag and what is expected;
//!   the binary exits 2 on any of them;
//! - unknown keys are errors (a typo must not silently fall back to a default);
//! - after [`Config::load`] succeeds the values are valid: later stages do not re-check them.
//!
//! Components that own their settings (`exposition::settings`, `telemetry::settings`,
//! `source::settings` with each source's, `azure::settings`) declare their section, flags and
//! `resolve`; the rest is still resolved here until it moves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_yaml_ng::Mapping;

use crate::aggregate::dedup::DedupAnchor;
use crate::aggregate::people::{PseudonymKey, UserLabelConfig};
use crate::aggregate::{AggregateConfig, Limits, DEFAULT_SERIES_RETENTION, MIN_SERIES_RETENTION};
use crate::azure::settings::{AzureFile, AzureSettings, CredentialEnv};
use crate::catalogue;
use crate::cli::RunArgs;
use crate::config::{Description, Document, Problems, Section, Sourced};
use crate::decode::UnixMillis;
use crate::duration;
use crate::exposition::otlp::OtlpConfig;
use crate::exposition::settings::{WebConfig, WebFile};
use crate::forward::logs_ingestion::{LogsIngestionConfig, MAX_BODY_BYTES};
use crate::source::demo::settings::DemoFile;
use crate::source::powerbi::settings::{InventoryFile, LiveFiles, LiveSettings, PowerBiFile};
use crate::source::replay::settings::ReplayFile;
pub use crate::source::settings::SourceConfig;
use crate::source::settings::{SourceFiles, SourceFlags};
use crate::telemetry::settings::{LogConfig, LogFile};

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

/// Default of `--forward.max-backlog-bytes`.
pub const DEFAULT_MAX_BACKLOG_BYTES: u64 = 1 << 30;

impl Config {
    /// The tenant whose activity is read, when known (a resource attribute of OTLP data).
    pub fn tenant_id(&self) -> Option<String> {
        self.source.tenant_id()
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
        let mut source = Description::default();
        self.source
            .describe(!self.aggregate.exclude_own_exports, &mut source);
        if self.once {
            source.line("once", true);
        }
        description.finish() + &out + &source.finish()
    }
}

/// Raw values before validation: strings as written, with where each came from.
#[derive(Debug, Default)]
struct Raw {
    max_series: Vec<(String, usize, String)>,
    series_retention: Option<(String, String)>,
    filters: crate::aggregate::filter::FilterSpec,
    users_label: Option<(String, String)>,
    pseudonym_key_file: Option<(PathBuf, String)>,
    tenant_domains: Vec<String>,
    dedup_window: Option<(String, String)>,
    once: bool,
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

impl Config {
    /// Loads the file named by `--config.file` (if any) and applies the flags over it.
    pub fn load(args: &RunArgs) -> Result<Config, Problems> {
        let mut problems = Problems::default();
        let doc = Document::load(args.config_file.as_deref(), TOP_KEYS, &mut problems);
        let mut file = FileSections::read(&doc, &mut problems);
        apply_flags(args, &mut file.raw, &mut problems.0);
        let config = resolve(file, args, CredentialEnv::read(), &mut problems);
        problems.into_result(config)
    }

    /// Parses a YAML document alone (no flags), for tests and `check-config`.
    pub fn from_yaml(text: &str) -> Result<Config, Problems> {
        let mut problems = Problems::default();
        let doc = Document::parse(text, TOP_KEYS, &mut problems);
        let file = FileSections::read(&doc, &mut problems);
        let config = resolve(
            file,
            &RunArgs::default(),
            CredentialEnv::default(),
            &mut problems,
        );
        problems.into_result(config)
    }
}

/// The config file, read section by section.
struct FileSections {
    web: WebFile,
    log: LogFile,
    sources: SourceFiles,
    live: LiveFiles,
    azure: AzureFile,
    /// The sections not yet owned by their component.
    raw: Raw,
}

impl FileSections {
    fn read(doc: &Document, problems: &mut Problems) -> FileSections {
        let web = doc.section(problems);
        let log = doc.section(problems);
        let mut raw = Raw::default();
        read_file(doc, &mut raw, &mut problems.0);
        let sources = SourceFiles::read(doc, problems);
        let live = LiveFiles::read(doc, problems);
        let azure = doc.section(problems);
        FileSections {
            web,
            log,
            sources,
            live,
            azure,
            raw,
        }
    }
}

/// Each component's settings: flags over the file, checked.
fn resolve(
    file: FileSections,
    args: &RunArgs,
    env: CredentialEnv,
    problems: &mut Problems,
) -> Option<Config> {
    let web = WebConfig::resolve(file.web, &args.web, problems);
    let log = LogConfig::resolve(file.log, &args.log, problems);
    let azure = AzureSettings::layer(file.azure, &args.source.live.azure).with_env(env);
    let sources = Sources {
        files: file.sources,
        flags: &args.source,
        live: LiveSettings::layer(file.live, &args.source.live, azure),
    };
    validate(file.raw, sources, web, log, &mut problems.0)
}

/// The sources' settings, handed to `validate` (which resolves the aggregation beside them).
struct Sources<'a> {
    files: SourceFiles,
    flags: &'a SourceFlags,
    live: LiveSettings,
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
    ReplayFile::KEY,
    DemoFile::KEY,
    "limits",
    "dedup",
    PowerBiFile::KEY,
    AzureFile::KEY,
    "state",
    "filters",
    "users",
    "tenant",
    InventoryFile::KEY,
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
    raw.once = args.source.once;
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
}

// === Validation ===

fn validate(
    raw: Raw,
    sources: Sources,
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
    if dedup_window < Duration::from_secs(3600) {
        errors.push(format!(
            "{dedup_origin} {}: must be at least 1h (events arrive up to an hour late)",
            duration::format(dedup_window)
        ));
    }
    // The Logs Ingestion sink uses the same credential chain (another scope).
    let sink_credential = (raw.logs_ingestion.endpoint.is_some()
        || raw.logs_ingestion.dcr_id.is_some())
    .then(|| sources.live.azure.clone());
    // The exporter's own reads of the log appear as ExportActivityEvents by its application
    // id or its object id: the client id, and the ids of its token.
    let client_id = sources.live.azure.client_id.clone();
    let count_own_exports = sources.live.count_own_exports;
    let mut problems = Problems::default();
    let source = SourceConfig::resolve(
        sources.files,
        sources.flags,
        sources.live,
        explicit_dedup_window.then_some(dedup_window),
        &mut problems,
    );
    errors.extend(problems.0);
    if let Some(SourceConfig::PowerBi(live)) = &source {
        own_user = client_id;
        exclude_own_exports = !count_own_exports;
        if !explicit_dedup_window {
            // Ids older than the lookback are never re-read, so the live source need not
            // remember them (the state file holds every id in the window).
            dedup_window = Duration::from_secs((live.plan.lookback_hours as u64 + 2) * 3600);
        }
    }
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

/// The Logs Ingestion sink: endpoint and rule id together, a credential, a sane stream name.
fn logs_ingestion(
    raw: RawLogsIngestion,
    azure: AzureSettings,
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
    // A bad cloud name is the live source's problem to report; the sink takes the public one.
    let cloud = azure.cloud_or_public();
    let host = azure
        .authority_host
        .clone()
        .map_or_else(|| cloud.authority_host().to_string(), |s| s.value);
    if !azure.requested() && !azure.on_managed_host() {
        errors.push("Logs Ingestion needs a credential: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or a certificate, a federated token, a managed identity)".into());
        return None;
    }
    let mut problems = Problems::default();
    let credential = azure.credential(host, &mut problems);
    errors.extend(problems.0);
    let credential = credential?;
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
    use crate::azure::auth::Credential;
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
