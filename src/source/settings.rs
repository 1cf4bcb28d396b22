//! Which source runs — a replay, the demo or the live tenant — and `--once`: the choice and its
//! rules. Each source owns its own settings ([`super::replay::settings`],
//! [`super::demo::settings`], [`super::powerbi::settings`]); this module picks one.
//!
//! Invariants: exactly one source is chosen, or the problem says why not; a replay and the
//! demo together are refused, as is `--once` with a source that never ends.

use std::time::Duration;

use clap::Args;

use super::demo::settings::{DemoFile, DemoFlags};
use super::demo::DemoConfig;
use super::powerbi::settings::{LiveFlags, LiveSettings};
use super::powerbi::PowerBiConfig;
use super::replay::settings::{ReplayFile, ReplayFlags};
use super::replay::ReplayConfig;
use crate::config::{Description, Document, Problems};

/// The source a run reads, with its settings.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    Replay(ReplayConfig),
    Demo(DemoConfig),
    PowerBi(Box<PowerBiConfig>),
}

/// The flags of every source, and `--once`.
#[derive(Debug, Args, Default)]
pub struct SourceFlags {
    #[command(flatten)]
    pub replay: ReplayFlags,

    #[command(flatten)]
    pub demo: DemoFlags,

    /// Process the source to its end, print the metrics to stdout and exit (replay only).
    #[arg(long)]
    pub once: bool,

    #[command(flatten)]
    pub live: LiveFlags,
}

/// The replay's and the demo's sections of the config file (the live source's are read into
/// its [`LiveSettings`], which the aggregation reads too).
#[derive(Debug, Default)]
pub struct SourceFiles {
    pub replay: ReplayFile,
    pub demo: DemoFile,
}

impl SourceFiles {
    /// Reads each section, reporting its problems.
    pub fn read(doc: &Document, problems: &mut Problems) -> SourceFiles {
        SourceFiles {
            replay: doc.section(problems),
            demo: doc.section(problems),
        }
    }
}

const NO_SOURCE: &str = "no source configured: pass --demo to run on the simulated tenant, --replay PATH to replay saved events, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET to read a tenant";
const ONCE_NEEDS_REPLAY: &str = "flag --once needs --replay PATH (the demo never ends)";

impl SourceConfig {
    /// The source the flags and the file choose, checked: `--replay` over the file's demo,
    /// `--demo` over the file's replay, else the live tenant when a credential asks for one.
    /// `dedup_window`, when set explicitly, must cover the live source's lookback.
    pub fn resolve(
        mut files: SourceFiles,
        flags: &SourceFlags,
        live: LiveSettings,
        dedup_window: Option<Duration>,
        problems: &mut Problems,
    ) -> Option<SourceConfig> {
        let file_demo = files.demo.enabled.take().map(|s| s.value);
        let demo_flag = flags.demo.enabled();
        let replay = match (&flags.replay.replay, demo_flag) {
            (Some(path), _) => Some(path.clone()),
            // `--demo` replaces the file's replay.
            (None, Some(true)) => None,
            (None, _) => files.replay.path.take().map(|s| s.value),
        };
        let demo = match (&flags.replay.replay, demo_flag) {
            // `--replay` replaces the file's demo, unless `--demo` is given too.
            (Some(_), flag) => flag == Some(true),
            (None, flag) => flag.or(file_demo).unwrap_or(false),
        };
        let demo_config = DemoConfig::resolve(files.demo, &flags.demo, problems);
        match (replay, demo) {
            (Some(_), true) => {
                problems.push("choose one source: --replay PATH or --demo, not both");
                None
            }
            (Some(path), false) => Some(SourceConfig::Replay(ReplayConfig::resolve(
                path,
                files.replay,
                &flags.replay,
                problems,
            ))),
            (None, _) if flags.once => {
                problems.push(ONCE_NEEDS_REPLAY);
                None
            }
            (None, true) => {
                demo_config.check_size(problems);
                Some(SourceConfig::Demo(demo_config))
            }
            (None, false) if live.azure.requested() => live
                .resolve(dedup_window, problems)
                .map(|c| SourceConfig::PowerBi(Box::new(c))),
            (None, false) => {
                problems.push(NO_SOURCE);
                None
            }
        }
    }

    /// The tenant whose activity is read, when known (a resource attribute of OTLP data).
    pub fn tenant_id(&self) -> Option<String> {
        match self {
            SourceConfig::PowerBi(live) => live.credential.tenant_id().map(str::to_string),
            SourceConfig::Demo(demo) => Some(demo.tenant_id.clone()),
            SourceConfig::Replay(_) => None,
        }
    }

    /// The `source` lines of `check-config` (a live source's `powerbi.*` and `azure.*` too;
    /// `count_own_exports` is the aggregation's, shown beside them).
    pub fn describe(&self, count_own_exports: bool, out: &mut Description) {
        match self {
            SourceConfig::Replay(r) => out.line(
                "source",
                format!(
                    "replay {} (at most {} ids per pass)",
                    r.path.display(),
                    r.max_ids_per_pass
                ),
            ),
            SourceConfig::Demo(d) => out.line(
                "source",
                format!(
                    "demo (seed {}, {} events/min at peak)",
                    d.tenant.seed, d.peak_events_per_minute
                ),
            ),
            SourceConfig::PowerBi(live) => {
                out.line("source", "powerbi");
                live.describe(count_own_exports, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::settings::AzureSettings;
    use crate::source::powerbi::settings::LiveFiles;

    fn resolve(yaml: &str, flags: &SourceFlags) -> Result<SourceConfig, Problems> {
        let mut problems = Problems::default();
        let doc = Document::parse(yaml, &["replay", "demo"], &mut problems);
        let files = SourceFiles::read(&doc, &mut problems);
        let live = LiveSettings::layer(LiveFiles::default(), &flags.live, AzureSettings::default());
        let source = SourceConfig::resolve(files, flags, live, None, &mut problems);
        problems.into_result(source)
    }

    #[test]
    fn the_demo_carries_the_simulated_tenants_id() {
        let source = resolve("demo: {enabled: true}\n", &SourceFlags::default()).unwrap();
        assert_eq!(
            source.tenant_id(),
            Some(crate::simulator::api::ApiConfig::default().tenant_id)
        );
    }

    #[test]
    fn a_flag_picks_its_source_over_the_files_and_both_flags_are_refused() {
        let yaml = "replay: {path: /archive}\ndemo: {enabled: true}\n";
        let err = resolve(yaml, &SourceFlags::default()).unwrap_err();
        assert_eq!(
            err.0,
            ["choose one source: --replay PATH or --demo, not both"]
        );
        let mut flags = SourceFlags::default();
        flags.demo.demo = Some(true);
        assert!(matches!(resolve(yaml, &flags), Ok(SourceConfig::Demo(_))));
        let mut flags = SourceFlags::default();
        flags.replay.replay = Some("/other".into());
        let Ok(SourceConfig::Replay(r)) = resolve(yaml, &flags) else {
            panic!("the flag's replay expected")
        };
        assert_eq!(r.path, std::path::Path::new("/other"));
        flags.demo.demo = Some(true);
        assert!(resolve(yaml, &flags).is_err());
        let mut flags = SourceFlags::default();
        flags.demo.no_demo = true;
        assert!(matches!(resolve(yaml, &flags), Ok(SourceConfig::Replay(_))));
    }

    #[test]
    fn once_needs_a_replay_and_no_source_is_a_problem() {
        let flags = SourceFlags {
            once: true,
            ..SourceFlags::default()
        };
        let err = resolve("demo: {enabled: true}\n", &flags).unwrap_err();
        assert_eq!(err.0, [ONCE_NEEDS_REPLAY]);
        let err = resolve("", &SourceFlags::default()).unwrap_err();
        assert_eq!(err.0, [NO_SOURCE]);
    }
}
