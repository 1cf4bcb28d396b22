//! What the build script (`build.rs`) stamped into the binary: the facts of
//! `powerbi_exporter_build_info` and of `--version`, after the Prometheus toolkit's
//! `version` package (`<name>_build_info{version, revision, branch, goversion}` and
//! `version.Print`). The toolchain label is `rustversion`: `goversion` would name a toolchain
//! this binary was not built with, and client_golang's collector names it after its language.

/// The crate's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit built (`unknown` without git or `POWERBI_EXPORTER_REVISION`).
pub const REVISION: &str = env!("POWERBI_EXPORTER_BUILD_REVISION");
/// The git branch built (`unknown` without git or `POWERBI_EXPORTER_BRANCH`).
pub const BRANCH: &str = env!("POWERBI_EXPORTER_BUILD_BRANCH");
/// The Rust compiler's version, e.g. `1.95.0`.
pub const RUST_VERSION: &str = env!("POWERBI_EXPORTER_BUILD_RUST_VERSION");
/// `user@host` of the build, as promu writes it.
pub const BUILD_USER: &str = env!("POWERBI_EXPORTER_BUILD_USER");
/// When it was built, `YYYYMMDD-HH:MM:SS` UTC (or `SOURCE_DATE_EPOCH`'s time).
pub const BUILD_DATE: &str = env!("POWERBI_EXPORTER_BUILD_DATE");

/// The label values of `powerbi_exporter_build_info`, in the catalogue's order.
pub fn info_labels() -> Vec<String> {
    [VERSION, REVISION, BRANCH, RUST_VERSION]
        .map(str::to_string)
        .to_vec()
}

/// What `--version` prints, laid out as Prometheus' `version.Print`.
pub fn version_text() -> String {
    format!(
        "powerbi-exporter, version {VERSION} (branch: {BRANCH}, revision: {REVISION})\n  \
         build user:       {BUILD_USER}\n  \
         build date:       {BUILD_DATE}\n  \
         rust version:     {RUST_VERSION}\n  \
         platform:         {}/{}\n",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
