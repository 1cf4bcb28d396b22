//! The demo's settings (`demo.*` in the file, `--demo` and `--demo.*` flags): the simulated
//! tenant's seed and size, its rhythm and the history it starts with.

use clap::Args;

use super::DemoConfig;
use crate::config::{duration_or, flag_pair, section, with_default, Problems, Sourced};
use crate::duration;
use crate::simulator::TenantSpec;

/// Largest simulated tenant `demo.workspaces` / `demo.users` may ask for: it is built in
/// memory at start, so it stays laptop-sized.
const MAX_WORKSPACES: usize = 10_000;
const MAX_USERS: usize = 1_000_000;

section! {
    /// `demo:` of the config file.
    pub struct DemoFile("demo") {
        enabled: bool => "true or false",
        seed: u64 => "a whole number",
        workspaces: usize => "a whole number",
        users: usize => "a whole number",
        peak_events_per_minute: f64 => "a number",
        backfill: String => "a duration like 6h",
        api_only: bool => "true or false",
    }
}

/// The `--demo` flags.
#[derive(Debug, Args, Default)]
pub struct DemoFlags {
    /// Run on the built-in simulated tenant (`=false` or `--no-demo` switches off the file's
    /// `demo.enabled`).
    #[arg(
        long = "demo",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        overrides_with = "no_demo"
    )]
    pub demo: Option<bool>,

    #[arg(long = "no-demo", hide = true, overrides_with = "demo")]
    pub no_demo: bool,

    #[arg(
        long = "demo.seed",
        value_name = "N",
        help = with_default("Seed of the simulated tenant", TenantSpec::default().seed)
    )]
    pub demo_seed: Option<u64>,

    #[arg(
        long = "demo.peak-events-per-minute",
        value_name = "N",
        help = with_default("Events per minute in the simulated tenant's busiest minute", DemoConfig::default().peak_events_per_minute)
    )]
    pub demo_peak_events_per_minute: Option<f64>,

    #[arg(
        long = "demo.backfill",
        value_name = "DURATION",
        help = with_default("History the simulated tenant generates at start", duration::format(DemoConfig::default().backfill))
    )]
    pub demo_backfill: Option<String>,

    /// Serve only the simulated tenant (Activity Events API, admin groups, token endpoint) on
    /// 127.0.0.1 at the port of --web.listen-address, without exporting: point an exporter, a
    /// script or a notebook at it.
    #[arg(
        long = "demo.api-only",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        requires = "demo",
        overrides_with = "demo_no_api_only"
    )]
    pub demo_api_only: Option<bool>,

    #[arg(
        long = "no-demo.api-only",
        hide = true,
        overrides_with = "demo_api_only"
    )]
    pub demo_no_api_only: bool,
}

impl DemoFlags {
    /// `--demo`, `--demo=BOOL` or `--no-demo`, when given.
    pub fn enabled(&self) -> Option<bool> {
        flag_pair(self.demo, self.no_demo)
    }
}

impl DemoConfig {
    /// The demo's settings, the flags over the file, checked. They are checked whichever
    /// source runs: a bad value is a problem either way.
    pub fn resolve(file: DemoFile, flags: &DemoFlags, problems: &mut Problems) -> DemoConfig {
        let defaults = DemoConfig::default();
        let backfill = duration_or(
            Sourced::layer(file.backfill, flags.demo_backfill.clone(), "demo.backfill"),
            defaults.backfill,
            problems,
        );
        let peak = Sourced::layer(
            file.peak_events_per_minute,
            flags.demo_peak_events_per_minute,
            "demo.peak-events-per-minute",
        );
        let peak_events_per_minute = match peak {
            Some(Sourced { value, origin }) if !(value.is_finite() && value > 0.0) => {
                problems.push(format!("{origin}: expected a positive number, got {value}"));
                defaults.peak_events_per_minute
            }
            Some(Sourced { value, .. }) => value,
            None => defaults.peak_events_per_minute,
        };
        let value = |file: Option<Sourced<usize>>, default| file.map_or(default, |s| s.value);
        let tenant = TenantSpec {
            seed: flags
                .demo_seed
                .or(file.seed.map(|s| s.value))
                .unwrap_or(defaults.tenant.seed),
            workspaces: value(file.workspaces, defaults.tenant.workspaces),
            users: value(file.users, defaults.tenant.users),
        };
        DemoConfig {
            tenant,
            peak_events_per_minute,
            backfill,
            api_only: flag_pair(flags.demo_api_only, flags.demo_no_api_only)
                .or(file.api_only.map(|s| s.value))
                .unwrap_or(false),
            ..defaults
        }
    }

    /// The simulated tenant's size problems, when the demo is the source.
    pub fn check_size(&self, problems: &mut Problems) {
        for (key, n, max) in [
            ("demo.workspaces", self.tenant.workspaces, MAX_WORKSPACES),
            ("demo.users", self.tenant.users, MAX_USERS),
        ] {
            if !(1..=max).contains(&n) {
                problems.push(format!(
                    "config key `{key}` {n}: expected 1 to {max} (the simulated tenant lives in memory)"
                ));
            }
        }
    }
}
