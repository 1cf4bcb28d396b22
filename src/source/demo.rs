//! The demo source: the simulated tenant producing events as they happen.
//!
//! At start it back-fills the last hours (so dashboards have history at once), then sends one
//! page per tick with the events of that tick. Like the real API it delivers some events twice
//! and, rarely, an event without `Activity`, so the dedup and rejection counters move too.

use std::time::Duration;

use bytes::Bytes;

use super::{Body, Document, DocumentSender, Source, SourceFuture, SourceMessage, Timing};
use crate::decode::UnixMillis;
use crate::simulator::{write_page, Rng, Tenant, TenantSpec};

/// Settings of the demo source.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoConfig {
    pub tenant: TenantSpec,
    /// Events per minute in the busiest minute of a weekday.
    pub peak_events_per_minute: f64,
    /// History generated at start.
    pub backfill: Duration,
    /// How often a page is produced.
    pub tick: Duration,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            tenant: TenantSpec::default(),
            peak_events_per_minute: 600.0,
            backfill: Duration::from_secs(6 * 3600),
            tick: Duration::from_secs(1),
        }
    }
}

const DUPLICATE_SHARE: f64 = 0.01;
const MALFORMED_SHARE: f64 = 0.0002;
const BACKFILL_PAGE: i64 = 15 * 60_000;

pub struct Demo {
    config: DemoConfig,
}

impl Demo {
    pub fn new(config: DemoConfig) -> Self {
        Demo { config }
    }
}

impl Source for Demo {
    fn timing(&self) -> Timing {
        Timing::Live
    }

    fn run(self: Box<Self>, out: DocumentSender) -> SourceFuture {
        Box::pin(async move {
            let config = self.config;
            let tenant = Tenant::new(config.tenant);
            let mut rng = Rng::new(config.tenant.seed.wrapping_add(1));
            let mut from =
                UnixMillis::now().saturating_sub_millis(config.backfill.as_millis() as i64);
            let mut previous: Vec<Vec<u8>> = Vec::new();
            let mut ticker = tokio::time::interval(config.tick);
            loop {
                let now = UnixMillis::now();
                while from < now {
                    let to = UnixMillis((from.0 + BACKFILL_PAGE).min(now.0));
                    let mut events = Vec::new();
                    tenant.events_between(
                        &mut rng,
                        from,
                        to,
                        config.peak_events_per_minute,
                        &mut events,
                    );
                    let page = quirky_page(&mut rng, &events, &previous, to);
                    previous = events;
                    let doc = Document {
                        origin: format!("demo page until {}", to.to_api_string()),
                        body: Body::Bytes(page),
                    };
                    if out.send(SourceMessage::Document(doc)).await.is_err() {
                        return Ok(());
                    }
                    from = to;
                }
                ticker.tick().await;
            }
        })
    }
}

/// A page of `events`, plus re-deliveries of some of the previous page's events and a rare
/// malformed one.
fn quirky_page(rng: &mut Rng, events: &[Vec<u8>], previous: &[Vec<u8>], time: UnixMillis) -> Bytes {
    let mut extra: Vec<Vec<u8>> = previous
        .iter()
        .filter(|_| rng.chance(DUPLICATE_SHARE))
        .cloned()
        .collect();
    if rng.chance(MALFORMED_SHARE * events.len() as f64) {
        extra.push(
            format!(
                "{{\"Id\":\"{}\",\"CreationTime\":\"{}\"}}",
                rng.guid(),
                time.to_api_string()
            )
            .into_bytes(),
        );
    }
    let mut page = Vec::with_capacity(events.iter().map(Vec::len).sum::<usize>() + 128);
    write_page(events.iter().chain(&extra).map(Vec::as_slice), &mut page);
    Bytes::from(page)
}
