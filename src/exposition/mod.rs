//! Exposition stage: snapshots → Prometheus text, served over HTTP or printed (`--once`).

pub mod healthcheck;
pub mod http;
pub mod otlp;
pub mod settings;
pub mod status;
pub mod text;
pub mod webconfig;
