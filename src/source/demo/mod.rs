//! The demo source: the simulated tenant served over loopback HTTP, read by the real live
//! source — token request, hour windows, paging, continuation URIs, retries, the budget, late
//! events and re-reads all run exactly as against a real tenant.
//!
//! The simulated API starts with `backfill` hours of history, keeps generating events at the
//! tenant's rhythm, shows them a few minutes late (some up to two hours), and now and then
//! throttles, fails or re-delivers, so the self metrics move too. Its request budget is set
//! high (it is simulated), so the demo can poll every few seconds and look alive.

pub mod settings;

use std::time::Duration;

use super::powerbi::client::RetryPolicy;
use super::powerbi::window::{PlanConfig, RereadAges};
use super::powerbi::{PowerBiConfig, PowerBiSource};
use super::{DocumentSender, Source, SourceFuture, Timing};
use crate::decode::UnixMillis;
use crate::simulator::api::{ApiConfig, Faults, SimulatedApi};
use crate::simulator::timeline::{Lag, Timeline};
use crate::simulator::{Tenant, TenantSpec};

/// Settings of the demo source.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoConfig {
    pub tenant: TenantSpec,
    /// Events per minute in the busiest minute of a weekday.
    pub peak_events_per_minute: f64,
    /// History the tenant has when the demo starts, all of it read at start.
    pub backfill: Duration,
    /// How often the simulated tenant is polled.
    pub tick: Duration,
    /// Serve the simulated tenant only, without the exporter (`--demo.api-only`).
    pub api_only: bool,
    /// The simulated tenant's Entra ID tenant id (the tokens' `tid`, a resource attribute).
    pub tenant_id: String,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            tenant: TenantSpec::default(),
            peak_events_per_minute: 600.0,
            backfill: Duration::from_secs(6 * 3600),
            tick: Duration::from_secs(2),
            api_only: false,
            tenant_id: ApiConfig::default().tenant_id,
        }
    }
}

/// Requests per hour of the simulated API and of the demo's client.
const DEMO_BUDGET: usize = 10_000;

pub struct Demo {
    config: DemoConfig,
}

impl Demo {
    pub fn new(config: DemoConfig) -> Self {
        Demo { config }
    }
}

/// Hours the demo's client reads: the backfill and the late events behind it.
fn lookback_hours(config: &DemoConfig) -> u64 {
    config.backfill.as_secs() / 3600 + 3
}

/// The demo's re-read schedule, from its tenant's lag (most events within 5 minutes, 5% up
/// to 2 hours): everything is visible 2 hours after an hour's end.
fn demo_reread_ages() -> RereadAges {
    RereadAges::parse("5m,30m,1h,2h").unwrap_or_default()
}

/// The simulated tenant of the demo: its API's settings and its event timeline, starting
/// `backfill` ago. Its request budget is the demo's, and it keeps only what the demo's
/// lookback reads.
pub fn simulated_tenant(config: &DemoConfig) -> (ApiConfig, Timeline) {
    let start = UnixMillis::now().saturating_sub_millis(config.backfill.as_millis() as i64);
    let timeline = Timeline::new(
        Tenant::new(config.tenant),
        config.tenant.seed.wrapping_add(1),
        config.peak_events_per_minute,
        Lag::default(),
        start,
    );
    let api_config = ApiConfig {
        budget_per_hour: DEMO_BUDGET,
        retention: Some(Duration::from_secs((lookback_hours(config) + 1) * 3600)),
        retry_after_secs: 3,
        tenant_id: config.tenant_id.clone(),
        faults: Faults {
            throttle: 0.01,
            server_error: 0.01,
            truncate: 0.005,
            duplicate: 0.02,
            empty_page: 0.05,
        },
        ..ApiConfig::default()
    };
    (api_config, timeline)
}

impl Source for Demo {
    fn timing(&self) -> Timing {
        Timing::Live
    }

    fn run(self: Box<Self>, out: DocumentSender) -> SourceFuture {
        Box::pin(async move {
            let config = self.config;
            let (api_config, timeline) = simulated_tenant(&config);
            let lookback_hours = lookback_hours(&config);
            let api = match SimulatedApi::start(api_config.clone(), timeline, 0).await {
                Ok(api) => api,
                Err(e) => {
                    tracing::error!(error = %e, "The simulated tenant could not listen on 127.0.0.1.");
                    return Ok(());
                }
            };
            tracing::info!(api = %api.base_url(), "Simulated tenant serving the Activity Events API.");
            let live = PowerBiConfig {
                poll_interval: config.tick,
                // The lookback covers the backfill, so all of it is read.
                plan: PlanConfig {
                    lookback_hours: lookback_hours as i64,
                    reread_ages: demo_reread_ages(),
                    poll_interval: config.tick,
                },
                max_requests_per_hour: DEMO_BUDGET,
                initial_lookback: config.backfill,
                retry: RetryPolicy {
                    first_delay: Duration::from_millis(200),
                    ..RetryPolicy::default()
                },
                request_timeout: Duration::from_secs(30),
                // The simulated tenant serves an inventory too, so the unused-report panels
                // have something to show.
                inventory: Some(super::powerbi::inventory::InventoryConfig {
                    refresh: Duration::from_secs(3600),
                    ..Default::default()
                }),
                ..PowerBiConfig::for_simulated_tenant(
                    api.base_url(),
                    &api_config,
                    crate::simulator::clock::SharedClock::system(),
                )
            };
            Box::new(PowerBiSource::new(live, None)?).run(out).await
        })
    }
}
