//! powerbi-exporter: Power BI / Microsoft Fabric activity events as Prometheus metrics.
//!
//! # How data flows
//!
//! ```text
//!  live API (source/powerbi, tokens from azure) | replay files | demo (simulated tenant)
//!    │  Document: one API page, file or JSON Lines stream, as bytes; SourceStatus per poll
//!    ▼
//! decode      streaming splitter + lenient per-event decoder, borrowing from the buffer
//!    │  ActivityEvent<'buf> | Rejection
//!    ▼
//! aggregate   dedup by Id, capped series, info names, distinct users
//!    │  AggregatorState, and the counted events to forward
//!    ▼
//! state       a checkpoint: the events into the spool (state/spool.rs), then the state file
//!    │  Snapshot of what was saved             │  spooled events, read back from disk
//!    ▼                                         ▼
//! exposition  /metrics, status page,     forward  Logs Ingestion and OTLP logs sinks
//!             OTLP push, `--once`
//! ```
//!
//! Without `--state.dir` the exposition takes its snapshot from the aggregator directly.
//! `pipeline` runs source → decode → aggregate on a blocking thread; `app` wires the stages
//! together and `cli` parses their flags; `top` ranks reports with the same decoder, and
//! `backfill` writes past activity with timestamps (OpenMetrics) and leaves the state the
//! exporter continues from.
//!
//! # The stage order
//!
//! Imports run one way: a module may use (`crate::…`) a module of its own layer or of a
//! lower one, never of a higher one, and the two egress stages `exposition` and `forward`
//! do not use each other. The order is that of the imports, not of the flow: the source
//! sits above `decode` because it speaks the decoder's vocabulary (`UnixMillis`, inventory
//! pages), though its documents reach the decoder only through `pipeline`.
//!
//! [`LAYERS`], bottom first, is the one statement of the order, from the foundations to the
//! wiring. `tests/it/architecture.rs` reads it and fails on an import against it, in
//! `#[cfg(test)]` modules too: a unit test that needs a higher stage belongs in `tests/it`.
//!
//! [`catalogue`] is the single list of metric families (name, type, HELP, labels, cap);
//! the exposition, the README table and the config validation all read it.

pub mod aggregate;
pub mod app;
pub mod azure;
pub mod backfill;
pub mod build;
pub mod catalogue;
pub mod cli;
pub mod config;
/// The decode stage, a crate of its own (`crates/decode`): see its documentation.
pub use powerbi_exporter_decode as decode;
pub mod duration;
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

/// One layer of the stage order: top-level modules that may use each other (unless
/// `independent`) and any module of a lower layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    /// What the layer is for, as the architecture test names it in a failure.
    pub role: &'static str,
    /// Top-level module names (`src/<name>.rs` or `src/<name>/`).
    pub modules: &'static [&'static str],
    /// The modules of this layer must not use each other (siblings fed by the same stages).
    pub independent: bool,
}

/// The stage order, bottom first: every `pub mod` above is in exactly one layer.
pub const LAYERS: &[Layer] = &[
    Layer {
        role: "foundations (build facts, files, the metric catalogue and sample \
               model, loading the configuration file; the crate root's items too)",
        modules: &["build", "duration", "files", "rng", "catalogue", "config"],
        independent: false,
    },
    Layer {
        role: "the event vocabulary and the pure decoder",
        modules: &["decode"],
        independent: false,
    },
    Layer {
        role: "Entra ID credentials, token caches and shared HTTP helpers",
        modules: &["azure"],
        independent: false,
    },
    Layer {
        role: "the simulated tenant (a source's upstream)",
        modules: &["simulator"],
        independent: false,
    },
    Layer {
        // Siblings: the aggregator counts events and never sees which source sent them or
        // how that source is doing (the source's status is saved beside it by `state`).
        role: "the sources (live API, replay, demo) and the aggregation",
        modules: &["source", "aggregate"],
        independent: true,
    },
    Layer {
        role: "the durable state (state file and forwarding spool)",
        modules: &["state"],
        independent: false,
    },
    Layer {
        role: "the egress siblings (metrics out, events out)",
        modules: &["exposition", "forward"],
        independent: true,
    },
    Layer {
        role: "the runs (pipeline, logging, top, backfill)",
        modules: &["pipeline", "telemetry", "top", "backfill"],
        independent: false,
    },
    Layer {
        role: "the wiring (compose the stages' settings and start them)",
        modules: &["app", "cli"],
        independent: false,
    },
];

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
