//! The exporter's settings, composed: the config file's sections and the flags of every
//! component, resolved in one pass so that every problem is reported at once.
//!
//! Invariants:
//! - every problem is reported at once, each naming the key or flag and what is expected;
//!   the binary exits 2 on any of them;
//! - unknown keys are errors (a typo must not silently fall back to a default);
//! - after [`Config::load`] succeeds the values are valid: later stages do not re-check them.
//!
//! Each component declares its section, flags, defaults, `resolve` and `describe` in its own
//! `settings` module (`exposition`, `telemetry`, `state`, `aggregate`, `forward`); this module
//! only reads the sections and resolves them in the order they depend on each other. The
//! sources (`source::settings`, with each source's own) and the credential
//! (`azure::settings`) do the same.

use std::path::PathBuf;
use std::time::Duration;

use crate::aggregate::settings::{
    AggregateDraft, AggregateFiles, DedupFile, FiltersFile, LimitsFile, SourceTraits, TenantFile,
    UsersFile,
};
use crate::aggregate::AggregateConfig;
use crate::azure::settings::{AzureFile, AzureSettings, CredentialEnv};
use crate::backfill::{BackfillConfig, History};
use crate::cli::{BackfillArgs, RunArgs};
use crate::config::{Description, Document, Problems, Section};
use crate::exposition::otlp::OtlpConfig;
use crate::exposition::settings::{
    describe_otlp, resolve_otlp, OtlpFile, ProbeTarget, WebConfig, WebFile,
};
use crate::forward::settings::{
    check_spool, ForwardConfig, ForwardFile, ForwardFiles, LogsIngestionFile, SinkIdentity,
};
use crate::source::demo::settings::DemoFile;
use crate::source::powerbi::progress::ProgressMode;
use crate::source::powerbi::settings::{InventoryFile, LiveFiles, LiveSettings, PowerBiFile};
use crate::source::replay::settings::ReplayFile;
pub use crate::source::settings::SourceConfig;
use crate::source::settings::SourceFiles;
use crate::state::settings::StateFile;
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
        crate::state::settings::describe(self.state_dir.as_ref(), &mut description);
        self.aggregate.describe(&mut description);
        describe_otlp(&self.otlp, &mut description);
        self.forward
            .describe(self.otlp.logs.is_some(), &mut description);
        self.source
            .describe(!self.aggregate.exclude_own_exports, &mut description);
        if self.once {
            description.line("once", true);
        }
        description.finish()
    }

    /// Loads the file named by `--config.file` (if any) and applies the flags over it.
    pub fn load(args: &RunArgs) -> Result<Config, Problems> {
        let mut problems = Problems::default();
        let doc = Document::load(args.config_file.as_deref(), TOP_KEYS, &mut problems);
        let file = FileSections::read(&doc, &mut problems);
        let config = resolve(file, args, CredentialEnv::read(), &mut problems);
        problems.into_result(config)
    }

    /// Parses a YAML document alone (no flags, no environment), for tests and `check-config`.
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

/// A backfill's configuration: the exporter's (source, aggregation, state directory) under
/// the backfill's own flags. The demo is refused: its tenant is made up at each start, so its
/// history has no exporter to continue it.
pub fn backfill(args: &BackfillArgs) -> Result<BackfillConfig, Problems> {
    let config = Config::load(&args.run)?;
    let mut problems = Problems::default();
    let replay = matches!(config.source, SourceConfig::Replay(_));
    let settings = crate::backfill::settings::resolve(&args.backfill, replay, &mut problems);
    let history = match config.source {
        SourceConfig::Replay(replay) => Some(History::Archives(replay.path)),
        SourceConfig::PowerBi(live) => Some(History::Tenant(live)),
        SourceConfig::Demo(_) => {
            problems.push("flag --demo: backfill reads --replay archives or the live tenant; to try it, write an archive with `powerbi-exporter simulate --days 7 --out FILE` and backfill it with --replay FILE");
            None
        }
    };
    let config = history.map(|history| BackfillConfig {
        history,
        settings,
        aggregate: config.aggregate,
        state_dir: config.state_dir,
        progress: ProgressMode::for_stderr(),
    });
    problems.into_result(config)
}

/// The config file, read section by section.
struct FileSections {
    web: WebFile,
    log: LogFile,
    otlp: OtlpFile,
    state: StateFile,
    aggregate: AggregateFiles,
    forward: ForwardFiles,
    sources: SourceFiles,
    live: LiveFiles,
    azure: AzureFile,
}

/// Every section the file may have.
const TOP_KEYS: &[&str] = &[
    WebFile::KEY,
    LogFile::KEY,
    ReplayFile::KEY,
    DemoFile::KEY,
    LimitsFile::KEY,
    DedupFile::KEY,
    PowerBiFile::KEY,
    AzureFile::KEY,
    StateFile::KEY,
    FiltersFile::KEY,
    UsersFile::KEY,
    TenantFile::KEY,
    InventoryFile::KEY,
    OtlpFile::KEY,
    LogsIngestionFile::KEY,
    ForwardFile::KEY,
];

impl FileSections {
    fn read(doc: &Document, problems: &mut Problems) -> FileSections {
        FileSections {
            web: doc.section(problems),
            log: doc.section(problems),
            sources: SourceFiles::read(doc, problems),
            aggregate: AggregateFiles::read(doc, problems),
            live: LiveFiles::read(doc, problems),
            azure: doc.section(problems),
            state: doc.section(problems),
            otlp: doc.section(problems),
            forward: ForwardFiles::read(doc, problems),
        }
    }
}

/// Each component's settings: flags over the file, checked, in the order they depend on
/// each other (the aggregation completes once the source is known).
fn resolve(
    file: FileSections,
    args: &RunArgs,
    env: CredentialEnv,
    problems: &mut Problems,
) -> Option<Config> {
    let web = WebConfig::resolve(file.web, &args.web, problems);
    let log = LogConfig::resolve(file.log, &args.log, problems);
    let state_dir = crate::state::settings::resolve(file.state, &args.state);
    let draft = AggregateDraft::resolve(file.aggregate, &args.aggregate, problems);
    let azure = AzureSettings::layer(file.azure, &args.source.live.azure).with_env(env);
    let live = LiveSettings::layer(file.live, &args.source.live, azure);
    // The Logs Ingestion sink uses the live source's credential chain (another scope).
    let sink_azure = live.azure.clone();
    let client_id = live.azure.client_id.clone();
    let count_own_exports = live.count_own_exports;
    let source = SourceConfig::resolve(
        file.sources,
        &args.source,
        live,
        draft.dedup_window(),
        problems,
    );
    let traits = source_traits(source.as_ref(), client_id, count_own_exports);
    let aggregate = draft.finish(&traits, problems);
    let otlp = resolve_otlp(file.otlp, &args.otlp, problems);
    let forward = ForwardConfig::resolve(
        file.forward,
        &args.forward,
        |problems| sink_identity(sink_azure, problems),
        problems,
    );
    let forwarding = forward.logs_ingestion.is_some() || otlp.logs.is_some();
    let once = args.source.once;
    check_spool(forwarding, once, state_dir.is_some(), problems);
    // Outbound HTTPS reads the proxy and CA variables: a wrong one would fail every request.
    let live = matches!(source, Some(SourceConfig::PowerBi(_)));
    if live || forwarding || otlp.metrics.is_some() {
        problems.extend(crate::azure::http::environment_problems());
    }
    Some(Config {
        web: web?,
        log,
        source: source?,
        once,
        aggregate,
        state_dir,
        otlp,
        forward,
    })
}

/// What the aggregation needs to know of the chosen source. `client_id` and
/// `count_own_exports` are the live source's: its own reads of the log appear as
/// ExportActivityEvents by its application id or its object id (the client id, and the ids
/// of its token).
fn source_traits(
    source: Option<&SourceConfig>,
    client_id: Option<String>,
    count_own_exports: bool,
) -> SourceTraits {
    match source {
        Some(SourceConfig::Replay(_)) => SourceTraits {
            replay: true,
            ..SourceTraits::default()
        },
        Some(SourceConfig::Demo(demo)) => SourceTraits {
            history: Some(demo.backfill),
            ..SourceTraits::default()
        },
        Some(SourceConfig::PowerBi(live)) => SourceTraits {
            replay: false,
            history: Some(live.initial_lookback),
            // Ids older than the lookback are never re-read, so the live source need not
            // remember them (the state file holds every id in the window).
            dedup_window: Some(Duration::from_secs(
                (live.plan.lookback_hours as u64 + 2) * 3600,
            )),
            own_user: client_id,
            exclude_own_exports: !count_own_exports,
        },
        None => SourceTraits::default(),
    }
}

/// How the Logs Ingestion sink signs in: the live source's credential chain, with the Azure
/// Monitor scope of the cloud.
fn sink_identity(azure: AzureSettings, problems: &mut Problems) -> Option<SinkIdentity> {
    // A bad cloud name is the live source's problem to report; the sink takes the public one.
    let cloud = azure.cloud_or_public();
    let host = azure
        .authority_host
        .clone()
        .map_or_else(|| cloud.authority_host().to_string(), |s| s.value);
    if !azure.requested() && !azure.on_managed_host() {
        problems.push("Logs Ingestion needs a credential: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or a certificate, a federated token, a managed identity)");
        return None;
    }
    let credential = azure.credential(host, problems)?;
    Some(SinkIdentity {
        credential,
        scope: cloud.monitor_scope().into(),
    })
}

/// The probe's target, read like the exporter reads its own: `--config.file`'s `web:` section
/// (the whole file is checked, as the exporter would check it), the healthcheck's own flags
/// over it, then the default address.
pub fn probe_target(args: &crate::cli::HealthcheckArgs) -> Result<ProbeTarget, Problems> {
    let mut problems = Problems::default();
    let doc = Document::load(args.config_file.as_deref(), TOP_KEYS, &mut problems);
    let file = FileSections::read(&doc, &mut problems);
    let target = ProbeTarget::resolve(file.web, &args.web, &mut problems);
    problems.into_result(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::auth::Credential;
    use crate::telemetry::settings::LogFormat;
    use std::time::Duration;

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
    fn a_flag_switches_off_what_the_file_switched_on() {
        use clap::Parser as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        std::fs::write(
            &path,
            "demo: {enabled: true}\nweb: {disable_exporter_metrics: true}\nfilters: {exclude_service_principals: true}\n",
        )
        .unwrap();
        let load = |flags: &[&str]| {
            let file = ["powerbi-exporter", "--config.file", path.to_str().unwrap()];
            let cli = crate::cli::Cli::try_parse_from([&file[..], flags].concat()).unwrap();
            let c = Config::load(&cli.run).unwrap();
            (
                c.web.disable_exporter_metrics,
                c.aggregate.filters.exclude_service_principals,
            )
        };
        assert_eq!(load(&[]), (true, true));
        assert_eq!(
            load(&[
                "--web.disable-exporter-metrics=false",
                "--no-filter.exclude-service-principals"
            ]),
            (false, false)
        );
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
