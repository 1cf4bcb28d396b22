//! powerbi-exporter: Power BI / Microsoft Fabric activity events as Prometheus metrics.
//!
//! Data flows in one direction, one module per stage; no stage reaches backwards:
//!
//! ```text
//! source (replay files | simulated tenant | live API later)
//!    │  Document: one page, file or JSON Lines stream, as bytes
//!    ▼
//! decode   streaming splitter + lenient per-event decoder, borrowing from the buffer
//!    │  ActivityEvent<'buf> | Rejection
//!    ▼
//! aggregate  dedup by Id, capped series, info names, distinct users
//!    │  Snapshot (families of samples, owned)
//!    ▼
//! exposition  Prometheus text over HTTP (/metrics), `--once` to stdout
//! ```
//!
//! [`catalogue`] is the single list of metric families (name, type, HELP, labels, cap);
//! the exposition, the README table and the config validation all read it.

pub mod aggregate;
pub mod app;
pub mod azure;
pub mod build;
pub mod catalogue;
pub mod cli;
pub mod config;
/// The decode stage, a crate of its own (`crates/decode`): see its documentation.
pub use powerbi_exporter_decode as decode;
pub mod duration;
pub mod encoding;
pub mod exposition;
pub mod files;
pub mod forward;
pub mod pipeline;
pub mod rng;
pub mod simulator;
pub mod source;
pub mod state;
pub mod telemetry;
pub mod top;

/// The exporter's version, as exported in `powerbi_exporter_build_info`.
pub const VERSION: &str = build::VERSION;

/// Default TCP port. Ports 9100–9999 of the Prometheus allocation table are taken; this one
/// sits above them and is not registered yet (see README, "Port").
pub const DEFAULT_PORT: u16 = 10195;

/// Installs rustls' `ring` crypto provider for every HTTPS client of the process. reqwest is
/// built without a provider so that the build needs no C toolchain beyond `cc`; call this
/// before building any client (a second call does nothing).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
