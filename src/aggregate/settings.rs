//! The aggregation's settings: series caps and retention (`limits.*`), scoping filters
//! (`filters.*`), how users are labelled (`users.*`), the tenant's domains (`tenant.*`) and
//! the dedup window (`dedup.*`).
//!
//! They resolve in two steps, because some depend on the source: [`AggregateDraft::resolve`]
//! reads what stands alone (the caps, the dedup window if set), and [`AggregateDraft::finish`]
//! completes it with the [`SourceTraits`] of the source that was chosen.
//!
//! Invariant: a finished [`AggregateConfig`] is valid (caps name capped families, filters
//! compile, the retention covers the windows and the dedup window); the aggregator does not
//! check it again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::dedup::DedupAnchor;
use super::filter::{FilterSpec, Filters};
use super::people::{PseudonymKey, UserLabelConfig};
use super::{AggregateConfig, Limits, DEFAULT_SERIES_RETENTION, MIN_SERIES_RETENTION};
use crate::catalogue;
use crate::config::{
    duration_or, section, switch, with_default, Description, Document, Origin, Problems, Section,
    Sourced,
};
use crate::decode::UnixMillis;
use crate::duration;

/// Users are labelled with keyed pseudonyms unless asked otherwise.
pub const DEFAULT_USERS_LABEL: &str = "pseudonym";

/// The variable that may hold the pseudonym key inline.
const PSEUDONYM_KEY_VAR: &str = "POWERBI_EXPORTER_PSEUDONYM_KEY";

/// The shortest key a pseudonym may be keyed with.
const MIN_KEY_BYTES: usize = 16;

section! {
    /// `limits:` of the config file.
    pub struct LimitsFile("limits") {
        max_series: BTreeMap<String, usize> => "a map of family name to a whole number",
        series_retention: String => "a duration like 35d",
    }
}

section! {
    /// `filters:` of the config file.
    pub struct FiltersFile("filters") {
        include_workspaces: Vec<String> => "a list of regular expressions",
        exclude_workspaces: Vec<String> => "a list of regular expressions",
        exclude_personal_workspaces: bool => "true or false",
        exclude_users: Vec<String> => "a list of regular expressions",
        exclude_service_principals: bool => "true or false",
        include_activities: Vec<String> => "a list of regular expressions",
        exclude_activities: Vec<String> => "a list of regular expressions",
    }
}

section! {
    /// `users:` of the config file.
    pub struct UsersFile("users") {
        label: String => "pseudonym, plain or off",
        pseudonym_key_file: PathBuf => "a file path",
    }
}

section! {
    /// `tenant:` of the config file.
    pub struct TenantFile("tenant") {
        domains: Vec<String> => "a list of domains",
    }
}

section! {
    /// `dedup:` of the config file.
    pub struct DedupFile("dedup") {
        window: String => "a duration like 29d",
    }
}

/// The aggregation's sections of the config file.
#[derive(Debug, Default)]
pub struct AggregateFiles {
    pub limits: LimitsFile,
    pub filters: FiltersFile,
    pub users: UsersFile,
    pub tenant: TenantFile,
    pub dedup: DedupFile,
}

impl AggregateFiles {
    /// The section keys, for the list of known top-level keys.
    pub const KEYS: [&'static str; 5] = [
        LimitsFile::KEY,
        FiltersFile::KEY,
        UsersFile::KEY,
        TenantFile::KEY,
        DedupFile::KEY,
    ];

    pub fn read(doc: &Document, problems: &mut Problems) -> Self {
        AggregateFiles {
            limits: doc.section(problems),
            filters: doc.section(problems),
            users: doc.section(problems),
            tenant: doc.section(problems),
            dedup: doc.section(problems),
        }
    }
}

/// Flag names, each spelled once: in its `#[arg]` and in the origin of its value.
const DEDUP_WINDOW_FLAG: &str = "dedup.window";
const SERIES_RETENTION_FLAG: &str = "limits.series-retention";
const MAX_SERIES_FLAG: &str = "limits.max-series";
const USERS_LABEL_FLAG: &str = "users.label";
const PSEUDONYM_KEY_FILE_FLAG: &str = "users.pseudonym-key-file";

/// The aggregation's flags.
#[derive(Debug, Args, Default)]
pub struct AggregateFlags {
    /// Count only workspaces whose id or name matches this anchored regex (repeatable).
    #[arg(long = "filter.include-workspace", value_name = "REGEX")]
    pub filter_include_workspace: Vec<String>,

    /// Leave out workspaces whose id or name matches this anchored regex (repeatable).
    #[arg(long = "filter.exclude-workspace", value_name = "REGEX")]
    pub filter_exclude_workspace: Vec<String>,

    /// Leave out events in personal workspaces ("My workspace"); `=false` or
    /// `--no-filter.exclude-personal-workspaces` keeps them though the file leaves them out.
    #[arg(
        long = "filter.exclude-personal-workspaces",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        overrides_with = "no_filter_exclude_personal_workspaces"
    )]
    pub filter_exclude_personal_workspaces: Option<bool>,

    #[arg(
        long = "no-filter.exclude-personal-workspaces",
        hide = true,
        overrides_with = "filter_exclude_personal_workspaces"
    )]
    pub no_filter_exclude_personal_workspaces: bool,

    /// Leave out events of users whose UserId matches this anchored, case-insensitive regex
    /// (repeatable).
    #[arg(long = "filter.exclude-user", value_name = "REGEX")]
    pub filter_exclude_user: Vec<String>,

    /// Leave out events of service principals (UserType 5 or 6, or a GUID UserId); `=false`
    /// or `--no-filter.exclude-service-principals` keeps them though the file leaves them out.
    #[arg(
        long = "filter.exclude-service-principals",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        overrides_with = "no_filter_exclude_service_principals"
    )]
    pub filter_exclude_service_principals: Option<bool>,

    #[arg(
        long = "no-filter.exclude-service-principals",
        hide = true,
        overrides_with = "filter_exclude_service_principals"
    )]
    pub no_filter_exclude_service_principals: bool,

    /// Count only activities matching this anchored regex (repeatable).
    #[arg(long = "filter.include-activity", value_name = "REGEX")]
    pub filter_include_activity: Vec<String>,

    /// Leave out activities matching this anchored regex (repeatable).
    #[arg(long = "filter.exclude-activity", value_name = "REGEX")]
    pub filter_exclude_activity: Vec<String>,

    #[arg(
        long = USERS_LABEL_FLAG,
        value_name = "MODE",
        value_parser = ["pseudonym", "plain", "off"],
        help = with_default(
            "How users are labelled in powerbi_user_sensitive_events_total: pseudonym (a keyed hash), plain (the UserId, opt-in) or off (no per-user family)",
            DEFAULT_USERS_LABEL,
        )
    )]
    pub users_label: Option<String>,

    #[arg(
        long = PSEUDONYM_KEY_FILE_FLAG,
        value_name = "FILE",
        help = format!("File holding the pseudonym key (any bytes, at least {MIN_KEY_BYTES}; env {PSEUDONYM_KEY_VAR} holds it inline, and the file wins). Without either, a random key is kept in --state.dir")
    )]
    pub users_pseudonym_key_file: Option<PathBuf>,

    /// The tenant's e-mail domains, for external shares (repeatable or comma-separated);
    /// without it, the domains of the tenant's own users seen so far.
    #[arg(long = "tenant.domains", value_name = "DOMAIN", value_delimiter = ',')]
    pub tenant_domains: Vec<String>,

    /// Series cap of one family, e.g. powerbi_report_events_total=5000 (repeatable).
    #[arg(long = MAX_SERIES_FLAG, value_name = "FAMILY=N")]
    pub max_series: Vec<String>,

    #[arg(
        long = SERIES_RETENTION_FLAG,
        value_name = "DURATION",
        help = with_default(
            "Series with no event for this long expire, freeing their place under the cap (at least 29d: the 28-day windows)",
            duration::format(DEFAULT_SERIES_RETENTION),
        )
    )]
    pub series_retention: Option<String>,

    #[arg(
        long = DEDUP_WINDOW_FLAG,
        value_name = "DURATION",
        help = with_default(
            "How far behind the wall clock a re-delivered event is still recognised",
            format!(
                "the lookback + 2h for a live tenant, {} for the demo; a replay has no window",
                duration::format(AggregateConfig::default().dedup_window)
            ),
        )
    )]
    pub dedup_window: Option<String>,
}

/// What the aggregation needs to know of the source it counts.
#[derive(Debug, Clone, Default)]
pub struct SourceTraits {
    /// A replayed archive: no dedup window, and series kept unless a retention is set.
    pub replay: bool,
    /// History loaded at first start (a live initial lookback, a demo backfill).
    pub history: Option<Duration>,
    /// The dedup window the source needs when none is set (a live lookback + 2h).
    pub dedup_window: Option<Duration>,
    /// The exporter's own client id, and whether its own exports are left out.
    pub own_user: Option<String>,
    pub exclude_own_exports: bool,
}

/// The settings that stand alone, before the source is known.
#[derive(Debug)]
pub struct AggregateDraft {
    limits: Limits,
    dedup_window: Option<Duration>,
    series_retention: Option<Sourced<String>>,
    filters: FilterSpec,
    users_label: Option<Sourced<String>>,
    pseudonym_key_file: Option<Sourced<PathBuf>>,
    tenant_domains: Vec<String>,
}

impl AggregateDraft {
    /// The flags over the file; the caps and the dedup window are checked now.
    pub fn resolve(files: AggregateFiles, flags: &AggregateFlags, problems: &mut Problems) -> Self {
        let limits = limits(files.limits.max_series, &flags.max_series, problems);
        let window = Sourced::layer(
            files.dedup.window,
            flags.dedup_window.clone(),
            DEDUP_WINDOW_FLAG,
        );
        let dedup_window = window.map(|w| checked_dedup_window(w, problems));
        AggregateDraft {
            limits,
            dedup_window,
            series_retention: Sourced::layer(
                files.limits.series_retention,
                flags.series_retention.clone(),
                SERIES_RETENTION_FLAG,
            ),
            filters: filters(files.filters, flags),
            users_label: Sourced::layer(
                files.users.label,
                flags.users_label.clone(),
                USERS_LABEL_FLAG,
            ),
            pseudonym_key_file: Sourced::layer(
                files.users.pseudonym_key_file,
                flags.users_pseudonym_key_file.clone(),
                PSEUDONYM_KEY_FILE_FLAG,
            ),
            tenant_domains: layer_list(files.tenant.domains, &flags.tenant_domains),
        }
    }

    /// The dedup window when one was set.
    pub fn dedup_window(&self) -> Option<Duration> {
        self.dedup_window
    }

    /// The whole configuration, for the source described by `source`.
    pub fn finish(self, source: &SourceTraits, problems: &mut Problems) -> AggregateConfig {
        let dedup_window = self
            .dedup_window
            .or(source.dedup_window)
            .unwrap_or(AggregateConfig::default().dedup_window);
        if let Err(bad) = Filters::new(&self.filters) {
            problems.extend(bad.into_iter().map(|e| format!("filters: {e}")));
        }
        let series_retention =
            series_retention(self.series_retention, dedup_window, source.replay, problems);
        let users = user_labels(self.users_label, self.pseudonym_key_file, problems);
        AggregateConfig {
            limits: self.limits,
            dedup_anchor: if source.replay {
                DedupAnchor::Unanchored
            } else {
                DedupAnchor::WallClock
            },
            dedup_hold_from: source
                .history
                .and_then(|h| dedup_hold_from(h, dedup_window)),
            dedup_window,
            own_user: source.own_user.clone(),
            exclude_own_exports: source.exclude_own_exports,
            filters: self.filters,
            users,
            tenant_domains: tenant_domains(&self.tenant_domains),
            series_retention,
        }
    }
}

impl AggregateConfig {
    /// The aggregation's lines of `check-config`; the pseudonym key is never shown.
    pub fn describe(&self, out: &mut Description) {
        out.line("dedup.window", duration::format(self.dedup_window));
        match self.series_retention {
            Some(d) => out.line("limits.series_retention", duration::format(d)),
            None => out.line(
                "limits.series_retention",
                "(none: a replay keeps every series)",
            ),
        }
        let f = &self.filters;
        for (key, list) in [
            ("filters.include_workspaces", &f.include_workspaces),
            ("filters.exclude_workspaces", &f.exclude_workspaces),
            ("filters.exclude_users", &f.exclude_users),
            ("filters.include_activities", &f.include_activities),
            ("filters.exclude_activities", &f.exclude_activities),
        ] {
            if !list.is_empty() {
                out.line(key, format!("{list:?}"));
            }
        }
        out.line("users.label", users_label_text(&self.users));
        if !self.tenant_domains.is_empty() {
            out.line("tenant.domains", format!("{:?}", self.tenant_domains));
        }
        if f.exclude_personal_workspaces {
            out.line("filters.exclude_personal_workspaces", true);
        }
        if f.exclude_service_principals {
            out.line("filters.exclude_service_principals", true);
        }
        for (family, cap) in &self.limits.max_series {
            out.line(&format!("limits.max_series.{family}"), cap);
        }
    }
}

fn users_label_text(users: &UserLabelConfig) -> &'static str {
    match users {
        UserLabelConfig::Off => "off",
        UserLabelConfig::Plain => "plain",
        UserLabelConfig::Pseudonym(_) => "pseudonym (key: <redacted>)",
        UserLabelConfig::PseudonymUnkeyed => "pseudonym (key: kept in the state directory)",
    }
}

/// A list flag given replaces the file's list.
fn layer_list(file: Option<Sourced<Vec<String>>>, flag: &[String]) -> Vec<String> {
    if flag.is_empty() {
        file.map(|f| f.value).unwrap_or_default()
    } else {
        flag.to_vec()
    }
}

fn filters(file: FiltersFile, flags: &AggregateFlags) -> FilterSpec {
    FilterSpec {
        include_workspaces: layer_list(file.include_workspaces, &flags.filter_include_workspace),
        exclude_workspaces: layer_list(file.exclude_workspaces, &flags.filter_exclude_workspace),
        exclude_personal_workspaces: switch(
            file.exclude_personal_workspaces,
            flags.filter_exclude_personal_workspaces,
            flags.no_filter_exclude_personal_workspaces,
        ),
        exclude_users: layer_list(file.exclude_users, &flags.filter_exclude_user),
        exclude_service_principals: switch(
            file.exclude_service_principals,
            flags.filter_exclude_service_principals,
            flags.no_filter_exclude_service_principals,
        ),
        include_activities: layer_list(file.include_activities, &flags.filter_include_activity),
        exclude_activities: layer_list(file.exclude_activities, &flags.filter_exclude_activity),
    }
}

/// The caps of the file, each flag's over them; each names a capped family and is at least 1.
fn limits(
    file: Option<Sourced<BTreeMap<String, usize>>>,
    flags: &[String],
    problems: &mut Problems,
) -> Limits {
    let mut caps: Vec<(String, Sourced<usize>)> = match file {
        Some(Sourced { value, origin }) => value
            .into_iter()
            .map(|(family, n)| {
                let origin = origin.entry(&family);
                (family, Sourced::new(n, origin))
            })
            .collect(),
        None => Vec::new(),
    };
    for spec in flags {
        match spec.split_once('=').map(|(k, v)| (k.trim(), v.trim().parse::<usize>())) {
            Some((family, Ok(n))) => {
                caps.retain(|(f, _)| f != family);
                caps.push((family.to_string(), Sourced::new(n, Origin::Flag(MAX_SERIES_FLAG))));
            }
            _ => problems.push(format!("flag --{MAX_SERIES_FLAG} {spec:?}: expected FAMILY=N, e.g. powerbi_report_events_total=5000")),
        }
    }
    let mut limits = Limits::default();
    for (family, Sourced { value: n, origin }) in caps {
        match catalogue::by_name(&family) {
            Some(f) if f.default_cap.is_some() && n >= 1 => {
                limits.max_series.insert(family, n);
            }
            Some(f) if f.default_cap.is_some() => {
                problems.push(format!("{origin}: the cap of {family} must be at least 1"))
            }
            Some(_) => problems.push(format!(
                "{origin}: {family} has a fixed set of series and takes no cap"
            )),
            None => {
                let capped: Vec<_> = catalogue::capped().map(|f| f.name).collect();
                problems.push(format!(
                    "{origin}: unknown family {family:?} (capped families: {})",
                    capped.join(", ")
                ));
            }
        }
    }
    limits
}

/// A dedup window that was set: a duration of an hour or more (events arrive up to an hour
/// late).
fn checked_dedup_window(window: Sourced<String>, problems: &mut Problems) -> Duration {
    let default = AggregateConfig::default().dedup_window;
    let origin = window.origin.clone();
    let parsed = duration_or(Some(window), default, problems);
    if parsed < Duration::from_secs(3600) {
        problems.push(format!(
            "{origin} {}: must be at least 1h (events arrive up to an hour late)",
            duration::format(parsed)
        ));
    }
    parsed
}

/// `--limits.series-retention`: longer than the 28-day windows, and no shorter than the dedup
/// window (an event old enough to be accepted must not land in a series that is expired).
/// A replay keeps every series unless asked: an archive is replayed for its totals, in any
/// order, while the live and demo sources move forward in time.
fn series_retention(
    value: Option<Sourced<String>>,
    dedup_window: Duration,
    replay: bool,
    problems: &mut Problems,
) -> Option<Duration> {
    let Some(Sourced { value, origin }) = value else {
        return (!replay).then(|| DEFAULT_SERIES_RETENTION.max(dedup_window));
    };
    let retention = match duration::parse(&value) {
        Ok(d) => d,
        Err(e) => {
            problems.push(format!("{origin}: {e}"));
            return Some(DEFAULT_SERIES_RETENTION);
        }
    };
    let min = MIN_SERIES_RETENTION.max(dedup_window);
    if retention < min {
        problems.push(format!(
            "{origin} {value}: must be at least {} (the 28-day windows span 29 UTC days, and the dedup window is {})",
            duration::format(min),
            duration::format(dedup_window)
        ));
    }
    Some(retention)
}

/// Where the dedup window is held open while a first start loads `history` older than the
/// window (an hour early: the source takes its own start a moment later).
fn dedup_hold_from(history: Duration, window: Duration) -> Option<UnixMillis> {
    let held = history + Duration::from_secs(3600);
    (held > window).then(|| UnixMillis::now().saturating_sub_millis(held.as_millis() as i64))
}

/// Domains in lower case, without a leading `@`, blanks dropped.
fn tenant_domains(domains: &[String]) -> Vec<String> {
    domains
        .iter()
        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect()
}

/// `--users.label` and the pseudonym key (file, else `POWERBI_EXPORTER_PSEUDONYM_KEY`, else
/// none yet: the application keeps a random one in the state directory).
fn user_labels(
    mode: Option<Sourced<String>>,
    key_file: Option<Sourced<PathBuf>>,
    problems: &mut Problems,
) -> UserLabelConfig {
    let mode = match mode {
        None => DEFAULT_USERS_LABEL.to_string(),
        Some(Sourced { value, .. }) if ["pseudonym", "plain", "off"].contains(&value.as_str()) => {
            value
        }
        Some(Sourced { value, origin }) => {
            problems.push(format!(
                "{origin} {value:?}: expected pseudonym, plain or off"
            ));
            DEFAULT_USERS_LABEL.to_string()
        }
    };
    match mode.as_str() {
        "off" => UserLabelConfig::Off,
        "plain" => UserLabelConfig::Plain,
        _ => match key_file {
            Some(file) => key_from_file(file, problems),
            None => key_from_env(problems),
        },
    }
}

fn key_from_file(
    Sourced {
        value: path,
        origin,
    }: Sourced<PathBuf>,
    problems: &mut Problems,
) -> UserLabelConfig {
    match crate::files::read_small(&path) {
        Ok(bytes) if bytes.trim_ascii().len() >= MIN_KEY_BYTES => {
            UserLabelConfig::Pseudonym(PseudonymKey(bytes.trim_ascii().to_vec()))
        }
        Ok(_) => {
            problems.push(format!(
                "{origin} {}: the key must hold at least {MIN_KEY_BYTES} bytes",
                path.display()
            ));
            UserLabelConfig::PseudonymUnkeyed
        }
        Err(e) => {
            problems.push(format!("{origin} {}: cannot read it: {e}", path.display()));
            UserLabelConfig::PseudonymUnkeyed
        }
    }
}

fn key_from_env(problems: &mut Problems) -> UserLabelConfig {
    match std::env::var(PSEUDONYM_KEY_VAR) {
        Ok(k) if k.trim().len() >= MIN_KEY_BYTES => {
            UserLabelConfig::Pseudonym(PseudonymKey(k.trim().as_bytes().to_vec()))
        }
        Ok(k) if !k.is_empty() => {
            problems.push(format!(
                "environment {PSEUDONYM_KEY_VAR}: the key must hold at least {MIN_KEY_BYTES} bytes"
            ));
            UserLabelConfig::PseudonymUnkeyed
        }
        _ => UserLabelConfig::PseudonymUnkeyed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(yaml: &str, flags: &AggregateFlags) -> (AggregateDraft, Problems) {
        let mut problems = Problems::default();
        let doc = Document::parse(yaml, &AggregateFiles::KEYS, &mut problems);
        let files = AggregateFiles::read(&doc, &mut problems);
        (
            AggregateDraft::resolve(files, flags, &mut problems),
            problems,
        )
    }

    #[test]
    fn the_source_completes_what_the_settings_leave_open() {
        let (d, problems) = draft("", &AggregateFlags::default());
        assert!(problems.is_empty());
        let live = SourceTraits {
            dedup_window: Some(Duration::from_secs(26 * 3600)),
            own_user: Some("c".into()),
            exclude_own_exports: true,
            ..SourceTraits::default()
        };
        let c = d.finish(&live, &mut Problems::default());
        assert_eq!(c.dedup_window, Duration::from_secs(26 * 3600));
        assert_eq!(c.dedup_anchor, DedupAnchor::WallClock);
        assert_eq!(c.series_retention, Some(DEFAULT_SERIES_RETENTION));
        assert_eq!(
            (c.own_user.as_deref(), c.exclude_own_exports),
            (Some("c"), true)
        );
        // A replay: no window to anchor, every series kept.
        let (d, _) = draft("dedup: {window: 2d}\n", &AggregateFlags::default());
        assert_eq!(d.dedup_window(), Some(Duration::from_secs(2 * 86_400)));
        let replay = SourceTraits {
            replay: true,
            ..SourceTraits::default()
        };
        let c = d.finish(&replay, &mut Problems::default());
        assert_eq!(c.dedup_window, Duration::from_secs(2 * 86_400));
        assert_eq!(
            (c.dedup_anchor, c.series_retention),
            (DedupAnchor::Unanchored, None)
        );
    }

    #[test]
    fn a_cap_flag_replaces_the_files_cap_of_that_family() {
        let flags = AggregateFlags {
            max_series: vec!["powerbi_report_events_total=9".into(), "nonsense".into()],
            ..AggregateFlags::default()
        };
        let yaml = "limits: {max_series: {powerbi_report_events_total: 7, powerbi_nope: 1}}\n";
        let (d, problems) = draft(yaml, &flags);
        assert_eq!(d.limits.max_series["powerbi_report_events_total"], 9);
        assert_eq!(problems.0.len(), 2, "{problems}");
        assert!(
            problems.0[0].starts_with("flag --limits.max-series \"nonsense\": expected FAMILY=N")
        );
        assert!(problems.0[1].starts_with(
            "config key `limits.max_series.powerbi_nope`: unknown family \"powerbi_nope\""
        ));
    }

    #[test]
    fn check_config_never_shows_the_pseudonym_key() {
        let c = AggregateConfig {
            users: UserLabelConfig::Pseudonym(PseudonymKey(b"0123456789abcdef-secret".to_vec())),
            ..AggregateConfig::default()
        };
        let mut out = Description::default();
        c.describe(&mut out);
        let text = out.finish();
        assert!(
            text.contains("users.label: pseudonym (key: <redacted>)\n"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
    }
}
