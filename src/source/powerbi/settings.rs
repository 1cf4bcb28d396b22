//! The live source's settings (`powerbi.*` and `inventory.*` in the file, `--powerbi.*`,
//! `--inventory.*` and the credential's `--azure.*` flags): how often and how far back the
//! Activity Events API is read, within which budget, and the inventory reader.
//!
//! Invariant: a resolved [`PowerBiConfig`] is valid (durations within their ranges, budgets
//! within the API's limits, URLs https or loopback); the source does not check it again.

use std::ops::RangeInclusive;
use std::time::Duration;

use clap::Args;

use super::client::{HostPolicy, RetryPolicy, DEFAULT_MAX_RESPONSE_BYTES};
use super::inventory::{InventoryConfig, MAX_PAGE_SIZE};
use super::window::{PlanConfig, RereadAges, DEFAULT_REREAD_AGES};
use super::PowerBiConfig;
use crate::azure::settings::{https_url, AzureFile, AzureFlags, AzureSettings, CredentialEnv};
use crate::config::{
    count_within, flag_pair, section, with_default, Description, Problems, Sourced,
};
use crate::duration;

/// How often the activity log is polled by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(300);
/// Hours read again for late events by default.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(24 * 3600);
/// History loaded at first start by default: none, only events from the start on.
pub const DEFAULT_INITIAL_LOOKBACK: Duration = Duration::ZERO;
/// First delay before a retry by default.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(2);
/// Time allowed for one API request by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Activity Events requests in any rolling hour by default; the API allows 200 for all.
pub const DEFAULT_MAX_REQUESTS_PER_HOUR: usize = 120;
/// The API's own limit of requests per hour, for all callers of a tenant together.
const API_MAX_REQUESTS_PER_HOUR: usize = 200;
/// Request budget allowed against a plain-http loopback API (a simulated tenant).
const SIMULATED_MAX_REQUESTS_PER_HOUR: usize = 100_000;
/// The API keeps 28 days of activity.
const DAYS_28: Duration = Duration::from_secs(28 * 86_400);
const HOUR: Duration = Duration::from_secs(3600);

section! {
    /// `powerbi:` of the config file.
    pub struct PowerBiFile("powerbi") {
        api_url: String => "a URL",
        poll_interval: String => "a duration like 5m",
        lookback: String => "a duration like 24h",
        initial_lookback: String => "a duration like 7d",
        max_requests_per_hour: usize => "a whole number",
        retry_delay: String => "a duration like 2s",
        request_timeout: String => "a duration like 120s",
        max_response_bytes: usize => "a whole number of bytes",
        reread_ages: String => "durations after an hour's end like 10m,1h,3h,8h,24h",
    }
}

section! {
    /// `inventory:` of the config file.
    pub struct InventoryFile("inventory") {
        enabled: bool => "true or false",
        refresh: String => "a duration like 24h",
        timeout: String => "a duration like 30s",
        max_requests_per_hour: usize => "a whole number",
        page_size: usize => "a whole number",
    }
}

/// Flags of the live source (also read by `top`); unset ones leave the file's values.
#[derive(Debug, Args, Default)]
pub struct LiveFlags {
    #[arg(
        long = "powerbi.api-url",
        value_name = "URL",
        help = with_default("Base URL of the Power BI REST API", crate::azure::cloud::Cloud::default().api_url())
    )]
    pub powerbi_api_url: Option<String>,

    #[arg(
        long = "powerbi.poll-interval",
        value_name = "DURATION",
        help = with_default("How often the activity log is polled", duration::format(DEFAULT_POLL_INTERVAL))
    )]
    pub powerbi_poll_interval: Option<String>,

    #[arg(
        long = "powerbi.lookback",
        value_name = "DURATION",
        help = with_default("How far back hours are read again for late events, at most 28d", duration::format(DEFAULT_LOOKBACK))
    )]
    pub powerbi_lookback: Option<String>,

    #[arg(
        long = "powerbi.initial-lookback",
        value_name = "DURATION",
        help = with_default("History loaded at first start; by default only events from the start on", duration::format(DEFAULT_INITIAL_LOOKBACK))
    )]
    pub powerbi_initial_lookback: Option<String>,

    #[arg(
        long = "powerbi.max-requests-per-hour",
        value_name = "N",
        help = with_default("Requests to the Activity Events API in any rolling hour, retries included; the API allows 200 for all callers together", DEFAULT_MAX_REQUESTS_PER_HOUR)
    )]
    pub powerbi_max_requests_per_hour: Option<usize>,

    #[arg(
        long = "powerbi.retry-delay",
        value_name = "DURATION",
        help = with_default("First delay before retrying a failed request; doubles up to 60s", duration::format(DEFAULT_RETRY_DELAY))
    )]
    pub powerbi_retry_delay: Option<String>,

    #[arg(
        long = "powerbi.request-timeout",
        value_name = "DURATION",
        help = with_default("Time allowed for one API request, from connecting to the last byte of the body (a server that trickles bytes is cut off)", duration::format(DEFAULT_REQUEST_TIMEOUT))
    )]
    pub powerbi_request_timeout: Option<String>,

    #[arg(
        long = "powerbi.max-response-bytes",
        value_name = "BYTES",
        help = with_default("Largest API response body accepted, in bytes; a larger page fails its hour (retried at the next poll) instead of filling memory", DEFAULT_MAX_RESPONSE_BYTES)
    )]
    pub powerbi_max_response_bytes: Option<usize>,

    #[arg(
        long = "powerbi.reread-ages",
        value_name = "DURATIONS",
        help = with_default("When an ended hour is read again for late events: ages after its end, ascending, comma-separated, the last within --powerbi.lookback (an hour that found new events is read again sooner); fewer ages send fewer requests, later ones count late events later", DEFAULT_REREAD_AGES)
    )]
    pub powerbi_reread_ages: Option<String>,

    /// Also count the exporter's own reads of the activity log (ExportActivityEvents by its
    /// client id), which are left out of the usage families by default (`=false` or
    /// `--no-powerbi.count-own-exports` leaves them out again).
    #[arg(
        long = "powerbi.count-own-exports",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        overrides_with = "powerbi_no_count_own_exports"
    )]
    pub powerbi_count_own_exports: Option<bool>,

    #[arg(
        long = "no-powerbi.count-own-exports",
        hide = true,
        overrides_with = "powerbi_count_own_exports"
    )]
    pub powerbi_no_count_own_exports: bool,

    #[command(flatten)]
    pub inventory: InventoryFlags,

    #[command(flatten)]
    pub azure: AzureFlags,
}

/// The `--inventory.*` flags.
#[derive(Debug, Args, Default)]
pub struct InventoryFlags {
    /// Read the tenant's workspaces and reports (admin/groups) for names, workspace types,
    /// capacities and unused reports; within its own request budget (`=false` or
    /// `--no-inventory.enabled` switches off what the file switched on).
    #[arg(
        long = "inventory.enabled",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        overrides_with = "inventory_no_enabled"
    )]
    pub inventory_enabled: Option<bool>,

    #[arg(
        long = "no-inventory.enabled",
        hide = true,
        overrides_with = "inventory_enabled"
    )]
    pub inventory_no_enabled: bool,

    #[arg(
        long = "inventory.refresh",
        value_name = "DURATION",
        help = with_default("How often the inventory is read again", duration::format(InventoryConfig::default().refresh))
    )]
    pub inventory_refresh: Option<String>,

    #[arg(
        long = "inventory.timeout",
        value_name = "DURATION",
        help = with_default("Time allowed for one inventory page (the API's own limit)", duration::format(InventoryConfig::default().timeout))
    )]
    pub inventory_timeout: Option<String>,

    #[arg(
        long = "inventory.max-requests-per-hour",
        value_name = "N",
        help = with_default("Inventory requests in any rolling hour; the API allows 50 for the whole tenant", InventoryConfig::default().max_requests_per_hour)
    )]
    pub inventory_max_requests_per_hour: Option<usize>,

    #[arg(
        long = "inventory.page-size",
        value_name = "N",
        help = with_default("Workspaces asked for per inventory page (`$top`, 1 to 5000; a page of 5000 with its reports risks the API's 30 s limit)", InventoryConfig::default().page_size)
    )]
    pub inventory_page_size: Option<usize>,
}

/// The live source's sections of the config file.
#[derive(Debug, Default)]
pub struct LiveFiles {
    pub powerbi: PowerBiFile,
    pub inventory: InventoryFile,
}

impl LiveFiles {
    /// Reads each section, reporting its problems.
    pub fn read(doc: &crate::config::Document, problems: &mut Problems) -> LiveFiles {
        LiveFiles {
            powerbi: doc.section(problems),
            inventory: doc.section(problems),
        }
    }
}

/// The live source's settings, the flags over the file, not yet checked.
#[derive(Debug, Default)]
pub struct LiveSettings {
    powerbi: PowerBiFile,
    inventory: InventoryFile,
    inventory_enabled: bool,
    /// Whether the exporter's own reads of the log are counted (aggregation reads it).
    pub count_own_exports: bool,
    /// The credential (also the Logs Ingestion sink's).
    pub azure: AzureSettings,
}

impl LiveSettings {
    /// The flags over the file's sections.
    pub fn layer(files: LiveFiles, flags: &LiveFlags, azure: AzureSettings) -> LiveSettings {
        let LiveFiles {
            mut powerbi,
            inventory,
        } = files;
        powerbi.api_url = Sourced::layer(
            powerbi.api_url,
            flags.powerbi_api_url.clone(),
            "powerbi.api-url",
        );
        powerbi.poll_interval = Sourced::layer(
            powerbi.poll_interval,
            flags.powerbi_poll_interval.clone(),
            "powerbi.poll-interval",
        );
        powerbi.lookback = Sourced::layer(
            powerbi.lookback,
            flags.powerbi_lookback.clone(),
            "powerbi.lookback",
        );
        powerbi.initial_lookback = Sourced::layer(
            powerbi.initial_lookback,
            flags.powerbi_initial_lookback.clone(),
            "powerbi.initial-lookback",
        );
        powerbi.max_requests_per_hour = Sourced::layer(
            powerbi.max_requests_per_hour,
            flags.powerbi_max_requests_per_hour,
            "powerbi.max-requests-per-hour",
        );
        powerbi.retry_delay = Sourced::layer(
            powerbi.retry_delay,
            flags.powerbi_retry_delay.clone(),
            "powerbi.retry-delay",
        );
        powerbi.request_timeout = Sourced::layer(
            powerbi.request_timeout,
            flags.powerbi_request_timeout.clone(),
            "powerbi.request-timeout",
        );
        powerbi.max_response_bytes = Sourced::layer(
            powerbi.max_response_bytes,
            flags.powerbi_max_response_bytes,
            "powerbi.max-response-bytes",
        );
        powerbi.reread_ages = Sourced::layer(
            powerbi.reread_ages,
            flags.powerbi_reread_ages.clone(),
            "powerbi.reread-ages",
        );
        let inventory = layer_inventory(inventory, &flags.inventory);
        LiveSettings {
            powerbi,
            inventory_enabled: inventory.enabled.as_ref().is_some_and(|s| s.value),
            inventory,
            // Not in the file: a flag only, off by default.
            count_own_exports: flag_pair(
                flags.powerbi_count_own_exports,
                flags.powerbi_no_count_own_exports,
            )
            .unwrap_or(false),
            azure,
        }
    }

    /// The live source's settings, checked. `dedup_window`, when set explicitly, must cover
    /// the lookback by an hour, or re-read events would count twice.
    pub fn resolve(
        self,
        dedup_window: Option<Duration>,
        problems: &mut Problems,
    ) -> Option<PowerBiConfig> {
        let file = self.powerbi;
        let poll_interval = between(
            file.poll_interval,
            DEFAULT_POLL_INTERVAL,
            Duration::from_secs(1)..=HOUR,
            problems,
        );
        let lookback = between(file.lookback, DEFAULT_LOOKBACK, HOUR..=DAYS_28, problems);
        let initial_lookback = between(
            file.initial_lookback,
            DEFAULT_INITIAL_LOOKBACK,
            Duration::ZERO..=DAYS_28,
            problems,
        );
        let retry_delay = between(
            file.retry_delay,
            DEFAULT_RETRY_DELAY,
            Duration::from_millis(10)..=Duration::from_secs(60),
            problems,
        );
        let request_timeout = between(
            file.request_timeout,
            DEFAULT_REQUEST_TIMEOUT,
            Duration::from_secs(1)..=Duration::from_secs(600),
            problems,
        );
        // Checked whether or not it is enabled, as a bad key is a problem either way.
        let inventory = inventory(self.inventory, problems);
        let inventory = self.inventory_enabled.then_some(inventory);
        let max_response_bytes = count_within(
            file.max_response_bytes,
            4096..,
            "at least 4096 (an API page with a few events)",
            DEFAULT_MAX_RESPONSE_BYTES,
            problems,
        );
        check_dedup_window(dedup_window, lookback, problems);
        let reread_ages = reread_ages(file.reread_ages, lookback, problems);
        let cloud = self.azure.cloud(problems);
        let api_url = https_url(file.api_url, cloud.api_url(), problems);
        let max_requests_per_hour =
            max_requests_per_hour(file.max_requests_per_hour, &api_url, problems);
        let authority_host = self.azure.checked_authority_host(cloud, problems);
        let credential = self.azure.credential(authority_host, problems)?;
        Some(PowerBiConfig {
            hosts: HostPolicy {
                api_url,
                cluster_suffixes: vec![cloud.cluster_suffix().into()],
            },
            credential,
            scope: cloud.scope().into(),
            poll_interval,
            plan: PlanConfig {
                lookback_hours: (lookback.as_secs() / 3600) as i64,
                reread_ages,
                poll_interval,
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
            clock: crate::simulator::clock::SharedClock::system(),
        })
    }
}

/// The `--inventory.*` flags over the file's `inventory:`.
fn layer_inventory(mut inventory: InventoryFile, inv: &InventoryFlags) -> InventoryFile {
    inventory.enabled = Sourced::layer(
        inventory.enabled,
        flag_pair(inv.inventory_enabled, inv.inventory_no_enabled),
        "inventory.enabled",
    );
    inventory.refresh = Sourced::layer(
        inventory.refresh,
        inv.inventory_refresh.clone(),
        "inventory.refresh",
    );
    inventory.timeout = Sourced::layer(
        inventory.timeout,
        inv.inventory_timeout.clone(),
        "inventory.timeout",
    );
    inventory.max_requests_per_hour = Sourced::layer(
        inventory.max_requests_per_hour,
        inv.inventory_max_requests_per_hour,
        "inventory.max-requests-per-hour",
    );
    inventory.page_size = Sourced::layer(
        inventory.page_size,
        inv.inventory_page_size,
        "inventory.page-size",
    );
    inventory
}

/// An explicit dedup window must cover the lookback by an hour, or re-read events would count
/// twice.
fn check_dedup_window(dedup_window: Option<Duration>, lookback: Duration, problems: &mut Problems) {
    if let Some(dedup_window) = dedup_window.filter(|w| lookback + HOUR > *w) {
        problems.push(format!(
            "--dedup.window (dedup.window) {} must exceed --powerbi.lookback ({}) by at least 1h, or re-read events would count twice",
            duration::format(dedup_window),
            duration::format(lookback)
        ));
    }
}

/// The budget of Activity Events requests: the API's 200 for a real tenant; a plain-http API
/// on loopback is a simulated tenant (`--demo.api-only`), whose budget is not the tenant's.
fn max_requests_per_hour(
    value: Option<Sourced<usize>>,
    api_url: &str,
    problems: &mut Problems,
) -> usize {
    let simulated = api_url.starts_with("http://");
    match value {
        Some(Sourced { value: n, origin })
            if n == 0 || (n > API_MAX_REQUESTS_PER_HOUR && !simulated) =>
        {
            problems.push(format!("{origin} {n}: expected 1 to 200 (the API allows 200 per hour for all callers together)"));
            DEFAULT_MAX_REQUESTS_PER_HOUR
        }
        Some(Sourced { value: n, origin }) if n > SIMULATED_MAX_REQUESTS_PER_HOUR => {
            problems.push(format!(
                "{origin} {n}: expected 1 to {SIMULATED_MAX_REQUESTS_PER_HOUR} for a simulated tenant"
            ));
            DEFAULT_MAX_REQUESTS_PER_HOUR
        }
        Some(Sourced { value: n, .. }) => n,
        None => DEFAULT_MAX_REQUESTS_PER_HOUR,
    }
}

/// The re-read schedule: ascending ages above zero, the last within the lookback (an hour
/// leaves the lookback that long after its end).
fn reread_ages(
    value: Option<Sourced<String>>,
    lookback: Duration,
    problems: &mut Problems,
) -> RereadAges {
    let Some(Sourced { value, origin }) = value else {
        return RereadAges::default();
    };
    match RereadAges::parse(&value) {
        Ok(ages) if ages.last().is_some_and(|last| last > lookback) => {
            problems.push(format!(
                "{origin} {value:?}: the last age must be within the lookback ({}): an hour is not read once it left it",
                duration::format(lookback)
            ));
            RereadAges::default()
        }
        Ok(ages) => ages,
        Err(e) => {
            problems.push(format!("{origin} {value:?}: {e}"));
            RereadAges::default()
        }
    }
}

/// The inventory reader's settings, checked.
fn inventory(file: InventoryFile, problems: &mut Problems) -> InventoryConfig {
    let defaults = InventoryConfig::default();
    let refresh = between(
        file.refresh,
        defaults.refresh,
        Duration::from_secs(60)..=Duration::from_secs(7 * 86_400),
        problems,
    );
    let timeout = between(
        file.timeout,
        defaults.timeout,
        Duration::from_secs(1)..=Duration::from_secs(120),
        problems,
    );
    let max_requests_per_hour = count_within(
        file.max_requests_per_hour,
        1..=50,
        "1 to 50 (the API allows 50 per hour for the whole tenant)",
        defaults.max_requests_per_hour,
        problems,
    );
    let page_size = count_within(
        file.page_size,
        1..=MAX_PAGE_SIZE,
        &format!("1 to {MAX_PAGE_SIZE} (the API's range for $top)"),
        defaults.page_size,
        problems,
    );
    InventoryConfig {
        refresh,
        timeout,
        max_requests_per_hour,
        page_size,
    }
}

/// The duration `value` spells when within `range`; else `default`, and the problem.
fn between(
    value: Option<Sourced<String>>,
    default: Duration,
    range: RangeInclusive<Duration>,
    problems: &mut Problems,
) -> Duration {
    let Some(Sourced { value, origin }) = value else {
        return default;
    };
    match duration::parse(&value) {
        Ok(d) if range.contains(&d) => d,
        Ok(_) => {
            problems.push(format!(
                "{origin} {value:?}: expected between {} and {}",
                duration::format(*range.start()),
                duration::format(*range.end())
            ));
            default
        }
        Err(e) => {
            problems.push(format!("{origin}: {e}"));
            default
        }
    }
}

impl PowerBiConfig {
    /// A live source reading the simulated tenant that `api` describes, served at `base_url`
    /// (its API and its sign-in both), timed by `clock`; every other setting at its flag's
    /// default, the inventory off. The demo and the tests change what they need from here.
    pub fn for_simulated_tenant(
        base_url: String,
        api: &crate::simulator::api::ApiConfig,
        clock: crate::simulator::clock::SharedClock,
    ) -> Self {
        let authority = crate::azure::auth::Authority {
            host: base_url.clone(),
            tenant_id: api.tenant_id.clone(),
            client_id: api.client_id.clone(),
        };
        PowerBiConfig {
            hosts: HostPolicy {
                api_url: base_url,
                cluster_suffixes: Vec::new(),
            },
            credential: crate::azure::auth::Credential::ClientSecret {
                authority,
                secret: crate::azure::auth::Secret::new(api.client_secret.clone()),
            },
            scope: crate::azure::auth::POWERBI_SCOPE.into(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            plan: PlanConfig {
                lookback_hours: (DEFAULT_LOOKBACK.as_secs() / 3600) as i64,
                reread_ages: RereadAges::default(),
                poll_interval: DEFAULT_POLL_INTERVAL,
            },
            max_requests_per_hour: DEFAULT_MAX_REQUESTS_PER_HOUR,
            initial_lookback: DEFAULT_INITIAL_LOOKBACK,
            retry: RetryPolicy::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            inventory: None,
            clock,
        }
    }

    /// The `powerbi.*`, `inventory` and `azure.*` lines of `check-config`; whether the
    /// exporter's own reads are counted is the aggregation's, told here by `count_own_exports`.
    pub fn describe(&self, count_own_exports: bool, out: &mut Description) {
        out.line("powerbi.api_url", &self.hosts.api_url);
        out.line("powerbi.scope", &self.scope);
        out.line(
            "powerbi.poll_interval",
            duration::format(self.poll_interval),
        );
        out.line("powerbi.lookback", format!("{}h", self.plan.lookback_hours));
        out.line("powerbi.reread_ages", &self.plan.reread_ages);
        out.line(
            "powerbi.initial_lookback",
            duration::format(self.initial_lookback),
        );
        out.line("powerbi.max_requests_per_hour", self.max_requests_per_hour);
        if let Some(inv) = &self.inventory {
            out.line(
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
        out.line(
            "powerbi.request_timeout",
            duration::format(self.request_timeout),
        );
        out.line("powerbi.max_response_bytes", self.max_response_bytes);
        out.line("powerbi.count_own_exports", count_own_exports);
        crate::azure::settings::describe(&self.credential, out);
    }
}

/// The live source for `top` against a tenant: flags and the environment only (no config
/// file), checked like the exporter's.
pub fn for_top(flags: &LiveFlags) -> Result<PowerBiConfig, Problems> {
    let mut problems = Problems::default();
    let azure =
        AzureSettings::layer(AzureFile::default(), &flags.azure).with_env(CredentialEnv::read());
    if !azure.requested() {
        problems.push("top needs --replay PATH, or a tenant: set AZURE_TENANT_ID, AZURE_CLIENT_ID and a credential (see README, Connecting a real tenant)");
        return Err(problems);
    }
    let live = LiveSettings::layer(LiveFiles::default(), flags, azure);
    let config = live.resolve(None, &mut problems);
    problems.into_result(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Document;

    fn layered(yaml: &str, flags: &LiveFlags) -> LiveSettings {
        let mut problems = Problems::default();
        let doc = Document::parse(yaml, &["powerbi", "inventory"], &mut problems);
        let settings = LiveSettings::layer(
            LiveFiles::read(&doc, &mut problems),
            flags,
            AzureSettings::default(),
        );
        assert_eq!(problems, Problems::default());
        settings
    }

    #[test]
    fn the_flag_switches_off_the_inventory_the_file_switched_on() {
        let yaml = "inventory: {enabled: true}\n";
        assert!(layered(yaml, &LiveFlags::default()).inventory_enabled);
        for off in [
            InventoryFlags {
                inventory_no_enabled: true,
                ..InventoryFlags::default()
            },
            InventoryFlags {
                inventory_enabled: Some(false),
                ..InventoryFlags::default()
            },
        ] {
            let flags = LiveFlags {
                inventory: off,
                ..LiveFlags::default()
            };
            assert!(!layered(yaml, &flags).inventory_enabled);
        }
        let on = LiveFlags {
            inventory: InventoryFlags {
                inventory_enabled: Some(true),
                ..InventoryFlags::default()
            },
            ..LiveFlags::default()
        };
        assert!(layered("", &on).inventory_enabled);
    }

    #[test]
    fn a_flag_over_the_file_names_the_flag_in_its_problem() {
        let flags = LiveFlags {
            powerbi_poll_interval: Some("2h".into()),
            ..LiveFlags::default()
        };
        let settings = layered("powerbi: {poll_interval: 1m, lookback: 30m}\n", &flags);
        let mut problems = Problems::default();
        let _ = settings.resolve(None, &mut problems);
        assert_eq!(
            problems.0[..2],
            [
                "flag --powerbi.poll-interval \"2h\": expected between 1s and 1h",
                "config key `powerbi.lookback` \"30m\": expected between 1h and 28d",
            ]
        );
    }

    #[test]
    fn reread_ages_from_the_file_or_the_flag_are_checked_against_the_lookback() {
        let problems_of = |yaml: &str, flag: Option<&str>| {
            let flags = LiveFlags {
                powerbi_reread_ages: flag.map(String::from),
                ..LiveFlags::default()
            };
            let mut problems = Problems::default();
            let ages = reread_ages(
                layered(yaml, &flags).powerbi.reread_ages,
                HOUR * 6,
                &mut problems,
            );
            (ages.to_string(), problems.0)
        };
        let yaml = "powerbi: {reread_ages: \"5s,30s,2m\"}\n";
        assert_eq!(problems_of(yaml, None), ("5s,30s,2m".into(), vec![]));
        assert_eq!(problems_of(yaml, Some("10m,6h")).0, "10m,6h");
        assert_eq!(
            problems_of("", None).0,
            DEFAULT_REREAD_AGES.replace("24h", "1d")
        );
        let (ages, problems) = problems_of(yaml, Some("10m,7h"));
        assert_eq!(ages, RereadAges::default().to_string());
        assert_eq!(
            problems,
            ["flag --powerbi.reread-ages \"10m,7h\": the last age must be within the lookback (6h): an hour is not read once it left it"]
        );
        let (_, problems) = problems_of("powerbi: {reread_ages: \"1h,10m\"}\n", None);
        assert_eq!(
            problems,
            ["config key `powerbi.reread_ages` \"1h,10m\": the ages must be ascending, got \"1h,10m\""]
        );
    }
}
