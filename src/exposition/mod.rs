//! Exposition stage: the exporter's collectors composed into one snapshot ([`scrape`]) →
//! Prometheus text, served over HTTP or printed (`--once`), or pushed over OTLP ([`otlp`]).

pub mod healthcheck;
pub mod http;
pub mod otlp;
pub mod scrape;
pub mod status;
pub mod text;
pub mod webconfig;
