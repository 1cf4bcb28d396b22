//! The backfill's own flags (`--out`, `--since`, `--step`, `--label`, `--tsdb` and its
//! `--tsdb.max-block-duration`) and their checks. Everything else — which source, the credential, the caps, filters and users, the
//! state directory — is the exporter's configuration, read by the same flags and file, so the
//! backfilled series are the ones the exporter will serve.
//!
//! Invariant: after [`resolve`] the settings are valid; every problem is reported at once.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::writer::ExtraLabel;
use crate::catalogue::BACKFILLED;
use crate::config::{with_default, Problems};

/// Default of `--step`: at Prometheus' 5-minute lookback, an instant query anywhere in the
/// history finds a sample (a longer step leaves gaps), at a fifth of the samples of 1m.
pub const DEFAULT_STEP: &str = "5m";
/// Default of `--tsdb.max-block-duration`: promtool makes blocks of 18h (the largest of
/// Prometheus' ranges 2h·3ⁿ that fits), reading a 28-day file 38 times instead of the 336 of
/// its own 2h default; measured on 28 days of 4,142 series at a 5m step (5.1 GB): 937 s
/// against ≈ 2¼ h estimated at 2h.
pub const DEFAULT_MAX_BLOCK: &str = "24h";
/// Default of `--since`: everything the API keeps.
pub const DEFAULT_SINCE: &str = "28d";
/// The API keeps 28 days of activity.
const MAX_SINCE: Duration = Duration::from_secs(28 * 86_400);
const MIN_STEP: Duration = Duration::from_secs(1);
/// promtool's blocks go from its 2h default up to a range of 31 days (Prometheus' largest
/// compaction).
const MAX_BLOCK: Duration = Duration::from_secs(31 * 86_400);
const MAX_STEP: Duration = Duration::from_secs(86_400);

/// Flags of `powerbi-exporter backfill` beside the exporter's own.
#[derive(Debug, Args)]
pub struct BackfillFlags {
    /// The OpenMetrics file to write (under a temporary name until it is whole).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    #[arg(long, value_name = "DURATION", help = with_default("How far back to read the live tenant, hour by hour (at most 28d; not with --replay)", DEFAULT_SINCE))]
    pub since: Option<String>,

    #[arg(long, value_name = "DURATION", help = with_default("How often a sample of every series is written (Prometheus looks back 5m for a sample: a longer step leaves gaps in instant queries)", DEFAULT_STEP))]
    pub step: Option<String>,

    /// A label added to every series, repeatable: the target labels the live scrape adds
    /// (`job`, `instance`, `tenant`), so backfilled and live samples are the same series.
    #[arg(long = "label", value_name = "NAME=VALUE")]
    pub labels: Vec<String>,

    /// Also turn the file into TSDB blocks in DIR with `promtool tsdb create-blocks-from
    /// openmetrics` (promtool must be on PATH); then move the blocks into Prometheus' data
    /// directory.
    #[arg(long, value_name = "DIR")]
    pub tsdb: Option<PathBuf>,

    #[arg(long = "tsdb.max-block-duration", value_name = "DURATION", help = with_default("With --tsdb: the longest block promtool makes. It reads the whole file once per block: longer blocks are faster, but a block is kept until its newest sample leaves the retention, and Mimir takes none over 24h", DEFAULT_MAX_BLOCK))]
    pub tsdb_max_block_duration: Option<String>,
}

/// The backfill's own settings, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillSettings {
    pub out: PathBuf,
    /// How far back a live read goes (unused with `--replay`).
    pub since: Duration,
    pub step: Duration,
    pub labels: Vec<ExtraLabel>,
    pub tsdb: Option<Tsdb>,
}

/// Where and how promtool makes blocks (`--tsdb`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tsdb {
    pub dir: PathBuf,
    pub max_block_duration: Duration,
}

/// Checks the flags; `replay` says whether the exporter's configuration names archives.
pub fn resolve(flags: &BackfillFlags, replay: bool, problems: &mut Problems) -> BackfillSettings {
    if replay && flags.since.is_some() {
        problems.push("flag --since reads the live tenant; with --replay every event of the archives is read (leave --since out)");
    }
    let since = duration(
        "--since",
        flags.since.as_deref(),
        DEFAULT_SINCE,
        (Duration::from_secs(1), MAX_SINCE),
        problems,
    );
    let step = duration(
        "--step",
        flags.step.as_deref(),
        DEFAULT_STEP,
        (MIN_STEP, MAX_STEP),
        problems,
    );
    let max_block_duration = duration(
        "--tsdb.max-block-duration",
        flags.tsdb_max_block_duration.as_deref(),
        DEFAULT_MAX_BLOCK,
        (Duration::from_secs(2 * 3600), MAX_BLOCK),
        problems,
    );
    if flags.tsdb.is_none() && flags.tsdb_max_block_duration.is_some() {
        problems.push("flag --tsdb.max-block-duration: only with --tsdb DIR");
    }
    BackfillSettings {
        out: flags.out.clone(),
        since,
        step,
        labels: labels(&flags.labels, problems),
        tsdb: flags.tsdb.clone().map(|dir| Tsdb {
            dir,
            max_block_duration,
        }),
    }
}

fn duration(
    flag: &str,
    value: Option<&str>,
    default: &str,
    (min, max): (Duration, Duration),
    problems: &mut Problems,
) -> Duration {
    let text = value.unwrap_or(default);
    match crate::duration::parse(text) {
        Ok(d) if d >= min && d <= max => d,
        Ok(_) => {
            let (min, max) = (crate::duration::format(min), crate::duration::format(max));
            problems.push(format!(
                "flag {flag} {text:?}: expected from {min} to {max}"
            ));
            Duration::from_secs(60)
        }
        Err(e) => {
            problems.push(format!("flag {flag} {text:?}: {e}"));
            Duration::from_secs(60)
        }
    }
}

/// `NAME=VALUE` pairs: valid Prometheus label names, not reserved (`__`), not given twice, and
/// none a label the families already carry.
fn labels(pairs: &[String], problems: &mut Problems) -> Vec<ExtraLabel> {
    let mut out: Vec<ExtraLabel> = Vec::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            problems.push(format!("flag --label {pair:?}: expected NAME=VALUE"));
            continue;
        };
        let problem = if !is_label_name(name) {
            Some("is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)".to_string())
        } else if name.starts_with("__") {
            Some("starts with __, which Prometheus reserves".to_string())
        } else if out.iter().any(|l| l.name == name) {
            Some("is given twice".to_string())
        } else {
            family_using(name).map(|f| format!("is already a label of {f}"))
        };
        match problem {
            Some(why) => problems.push(format!("flag --label {pair:?}: {name:?} {why}")),
            None => out.push(ExtraLabel {
                name: name.to_string(),
                value: value.to_string(),
            }),
        }
    }
    out
}

fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A backfilled family that already has a label `name`.
fn family_using(name: &str) -> Option<&'static str> {
    BACKFILLED
        .iter()
        .find(|f| f.labels.contains(&name))
        .map(|f| f.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> BackfillFlags {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            flags: BackfillFlags,
        }
        let all = [&["backfill", "--out", "h.om"], args].concat();
        <Cli as clap::Parser>::try_parse_from(all).unwrap().flags
    }

    fn check(args: &[&str], replay: bool) -> (BackfillSettings, Vec<String>) {
        let mut problems = Problems::default();
        let settings = resolve(&flags(args), replay, &mut problems);
        (settings, problems.0)
    }

    #[test]
    fn defaults_and_labels_resolve() {
        let (s, problems) = check(&["--label", "job=pbi", "--label", "instance=a:1=b"], false);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.step, Duration::from_secs(300));
        assert_eq!(s.since, MAX_SINCE);
        let labels: Vec<_> = s.labels.iter().map(|l| (&*l.name, &*l.value)).collect();
        assert_eq!(labels, [("job", "pbi"), ("instance", "a:1=b")]);
    }

    #[test]
    fn promtools_block_duration_defaults_to_a_day_and_needs_tsdb() {
        let (s, problems) = check(&["--tsdb", "blocks"], false);
        assert!(problems.is_empty(), "{problems:?}");
        let tsdb = s.tsdb.unwrap();
        assert_eq!(
            (tsdb.dir, tsdb.max_block_duration),
            ("blocks".into(), Duration::from_secs(86_400))
        );
        let (_, problems) = check(&["--tsdb.max-block-duration", "1h"], false);
        assert_eq!(
            problems,
            [
                "flag --tsdb.max-block-duration \"1h\": expected from 2h to 31d",
                "flag --tsdb.max-block-duration: only with --tsdb DIR",
            ]
        );
    }

    #[test]
    fn every_bad_flag_is_named_at_once() {
        let (_, problems) = check(
            &[
                "--step",
                "0s",
                "--since",
                "29d",
                "--label",
                "job",
                "--label",
                "1x=a",
                "--label",
                "__name__=a",
                "--label",
                "activity=a",
                "--label",
                "t=a",
                "--label",
                "t=b",
            ],
            true,
        );
        assert_eq!(
            problems,
            [
                "flag --since reads the live tenant; with --replay every event of the archives is read (leave --since out)",
                "flag --since \"29d\": expected from 1s to 28d",
                "flag --step \"0s\": expected from 1s to 1d",
                "flag --label \"job\": expected NAME=VALUE",
                "flag --label \"1x=a\": \"1x\" is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                "flag --label \"__name__=a\": \"__name__\" starts with __, which Prometheus reserves",
                "flag --label \"activity=a\": \"activity\" is already a label of powerbi_activity_events_total",
                "flag --label \"t=b\": \"t\" is given twice",
            ]
        );
    }
}
