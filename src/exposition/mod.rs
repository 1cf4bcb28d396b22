//! Exposition stage: snapshots → Prometheus text, served over HTTP or printed (`--once`).

pub mod http;
pub mod text;
pub mod webconfig;
