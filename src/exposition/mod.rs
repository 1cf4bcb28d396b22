//! Exposition stage: the exporter's collectors composed into one snapshot ([`scrape`]) →
//! Prometheus text 0.0.4 ([`text`]) or OpenMetrics ([`openmetrics`]), each family rendered once
//! while it does not change ([`rendered`]), served over HTTP ([`http`], with the status
//! page [`status`] and the web configuration [`webconfig`]) or printed (`--once`), and pushed
//! over OTLP ([`otlp`]; over gRPC through a channel of its own, `otlp_grpc`, that honours the
//! proxy and CA variables as the HTTP clients do).
//!
//! Invariants:
//! - a scrape renders from a snapshot and never waits on the source or a checkpoint; a family
//!   whose samples did not change since the last scrape is not rendered again;
//! - families appear in catalogue order, each sample with its family's labels in order, so
//!   two renders of the same snapshot are byte-identical;
//! - the OTLP push carries the same families and values as `/metrics`;
//! - this stage reads metrics only: the events themselves leave through `forward`, its
//!   independent sibling.

pub mod healthcheck;
pub mod http;
pub mod openmetrics;
pub mod otlp;
mod otlp_grpc;
pub mod rendered;
pub mod scrape;
pub mod settings;
pub mod status;
pub mod text;
pub mod webconfig;
