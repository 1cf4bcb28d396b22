//! The web server's settings (`web.*` in the file, `--web.*` flags): where it listens, the
//! metrics path, the exporter-toolkit web config, the scrape limit.
//!
//! Invariant: a resolved [`WebConfig`] is valid (the address parsed, the path usable, the web
//! config file readable); the server does not check it again.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::Args;

use super::otlp::{OtlpConfig, Protocol};
use crate::config::{section, switch, with_default, Description, Problems, Sourced};
use crate::DEFAULT_PORT;

/// Path of the metrics by default.
pub const DEFAULT_TELEMETRY_PATH: &str = "/metrics";

/// Concurrent scrapes allowed by default, as in node_exporter.
pub const DEFAULT_MAX_REQUESTS: usize = 40;

/// Flag names, each spelled once: in its `#[arg]` and in the origin of its value (the first
/// two and the variable are shared with `healthcheck`).
const LISTEN_ADDRESS_FLAG: &str = "web.listen-address";
const WEB_CONFIG_FILE_FLAG: &str = "web.config.file";
const WEB_CONFIG_FILE_VAR: &str = "POWERBI_EXPORTER_WEB_CONFIG_FILE";
const TELEMETRY_PATH_FLAG: &str = "web.telemetry-path";

/// All interfaces at the default port.
pub fn default_listen_address() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    pub listen_address: SocketAddr,
    pub telemetry_path: String,
    pub disable_exporter_metrics: bool,
    /// `--web.config.file`; validated at load, re-read by the server when it changes.
    pub config_file: Option<PathBuf>,
    /// `--web.max-requests`: concurrent scrapes allowed, 0 = no limit.
    pub max_requests: usize,
}

section! {
    /// `web:` of the config file.
    pub struct WebFile("web") {
        listen_address: String => "a string like \":10195\"",
        telemetry_path: String => "a path like /metrics",
        disable_exporter_metrics: bool => "true or false",
        config_file: PathBuf => "a file path",
        max_requests: usize => "a whole number",
    }
}

/// The `--web.*` flags; unset ones leave the file's values.
#[derive(Debug, Args, Default)]
pub struct WebFlags {
    #[arg(
        long = LISTEN_ADDRESS_FLAG,
        value_name = "HOST:PORT",
        help = with_default("Address to listen on for the web interface and telemetry", format!(":{DEFAULT_PORT}"))
    )]
    pub listen_address: Option<String>,

    #[arg(
        long = TELEMETRY_PATH_FLAG,
        value_name = "PATH",
        help = with_default("Path under which to expose metrics", DEFAULT_TELEMETRY_PATH)
    )]
    pub telemetry_path: Option<String>,

    /// Leave out the process_* metrics about the exporter process (`=false` or
    /// `--no-web.disable-exporter-metrics` keeps them though the file leaves them out).
    #[arg(
        long = "web.disable-exporter-metrics",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        overrides_with = "no_disable_exporter_metrics"
    )]
    pub disable_exporter_metrics: Option<bool>,

    #[arg(
        long = "no-web.disable-exporter-metrics",
        hide = true,
        overrides_with = "disable_exporter_metrics"
    )]
    pub no_disable_exporter_metrics: bool,

    /// Prometheus exporter-toolkit web config (TLS, client certificates, basic auth, headers);
    /// reloaded when it or a file it names changes. The same variable tells `healthcheck`.
    #[arg(long = WEB_CONFIG_FILE_FLAG, value_name = "FILE", env = WEB_CONFIG_FILE_VAR)]
    pub web_config_file: Option<PathBuf>,

    #[arg(
        long = "web.max-requests",
        value_name = "N",
        help = with_default("Maximum number of concurrent scrapes; 0 = no limit", DEFAULT_MAX_REQUESTS)
    )]
    pub max_requests: Option<usize>,
}

impl WebConfig {
    /// The flags over the file, checked; `None` when a problem leaves no usable value.
    pub fn resolve(file: WebFile, flags: &WebFlags, problems: &mut Problems) -> Option<Self> {
        let listen_address = listen_address(
            Sourced::layer(
                file.listen_address,
                flags.listen_address.clone(),
                LISTEN_ADDRESS_FLAG,
            ),
            problems,
        );
        let telemetry_path = telemetry_path(
            Sourced::layer(
                file.telemetry_path,
                flags.telemetry_path.clone(),
                TELEMETRY_PATH_FLAG,
            ),
            problems,
        );
        let disable_exporter_metrics = switch(
            file.disable_exporter_metrics,
            flags.disable_exporter_metrics,
            flags.no_disable_exporter_metrics,
        );
        let config_file = Sourced::layer(
            file.config_file,
            flags.web_config_file.clone(),
            WEB_CONFIG_FILE_FLAG,
        )
        .and_then(|file| checked_web_config(file, problems));
        let max_requests = flags
            .max_requests
            .or(file.max_requests.map(|s| s.value))
            .unwrap_or(DEFAULT_MAX_REQUESTS);
        Some(WebConfig {
            listen_address: listen_address?,
            telemetry_path,
            disable_exporter_metrics,
            config_file,
            max_requests,
        })
    }

    /// The `web.*` lines of `check-config`.
    pub fn describe(&self, out: &mut Description) {
        out.line("web.listen_address", self.listen_address);
        out.line("web.telemetry_path", &self.telemetry_path);
        out.line(
            "web.disable_exporter_metrics",
            self.disable_exporter_metrics,
        );
        match &self.config_file {
            Some(path) => out.line("web.config_file", path.display()),
            None => out.line("web.config_file", "(none: plain HTTP, no authentication)"),
        }
        out.line("web.max_requests", self.max_requests);
    }
}

/// The `healthcheck`'s view of the web flags: where the exporter listens and its web config,
/// over the config file's `web:` section.
#[derive(Debug, Args, Default)]
pub struct ProbeFlags {
    #[arg(
        long = LISTEN_ADDRESS_FLAG,
        value_name = "HOST:PORT",
        help = with_default(
            "Address the exporter listens on; an all-interfaces address is checked on loopback",
            format!("the config file's, else :{DEFAULT_PORT}"),
        )
    )]
    pub listen_address: Option<String>,

    /// The exporter's web config: when it turns TLS on, the probe speaks TLS (without checking
    /// the certificate: it is the exporter's own address).
    #[arg(long = WEB_CONFIG_FILE_FLAG, value_name = "FILE", env = WEB_CONFIG_FILE_VAR)]
    pub web_config_file: Option<PathBuf>,
}

/// What `healthcheck` needs of the exporter's settings: where it listens and its web config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    pub listen_address: SocketAddr,
    pub web_config_file: Option<PathBuf>,
}

impl ProbeTarget {
    /// The probe's flags over the file's `web:` section, then the default address.
    pub fn resolve(file: WebFile, flags: &ProbeFlags, problems: &mut Problems) -> Option<Self> {
        let listen_address = listen_address(
            Sourced::layer(
                file.listen_address,
                flags.listen_address.clone(),
                LISTEN_ADDRESS_FLAG,
            ),
            problems,
        )?;
        let web_config_file = Sourced::layer(
            file.config_file,
            flags.web_config_file.clone(),
            WEB_CONFIG_FILE_FLAG,
        );
        Some(ProbeTarget {
            listen_address,
            web_config_file: web_config_file.map(|file| file.value),
        })
    }
}

section! {
    /// `otlp:` of the config file.
    pub struct OtlpFile("otlp") {
        enabled: bool => "true or false",
        logs: bool => "true or false",
        logs_user_attribute: bool => "true or false",
    }
}

/// The `--otlp.*` switches; each takes `=false` or a `--no-` form to switch off what the file
/// switched on. Endpoint, protocol, headers, TLS, timeout and interval come from the standard
/// OTEL_* variables.
#[derive(Debug, Args, Default)]
pub struct OtlpFlags {
    /// Push the metric families over OTLP (also on when OTEL_EXPORTER_OTLP_ENDPOINT or
    /// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is set).
    #[arg(
        long = "otlp.enabled",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        overrides_with = "no_otlp_enabled"
    )]
    pub otlp_enabled: Option<bool>,

    #[arg(long = "no-otlp.enabled", hide = true, overrides_with = "otlp_enabled")]
    pub no_otlp_enabled: bool,

    /// Forward every counted event as an OTLP log record (needs --state.dir: delivery is
    /// at-least-once from a durable spool).
    #[arg(
        long = "otlp.logs",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        overrides_with = "no_otlp_logs"
    )]
    pub otlp_logs: Option<bool>,

    #[arg(long = "no-otlp.logs", hide = true, overrides_with = "otlp_logs")]
    pub no_otlp_logs: bool,

    /// Add the event's UserId as the `user.id` attribute of OTLP log records.
    #[arg(
        long = "otlp.logs.user-attribute",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        overrides_with = "no_otlp_logs_user_attribute"
    )]
    pub otlp_logs_user_attribute: Option<bool>,

    #[arg(
        long = "no-otlp.logs.user-attribute",
        hide = true,
        overrides_with = "otlp_logs_user_attribute"
    )]
    pub no_otlp_logs_user_attribute: bool,
}

/// The OTLP switches, flags over the file, with the standard variables read by
/// [`OtlpConfig::resolve`].
pub fn resolve_otlp(file: OtlpFile, flags: &OtlpFlags, problems: &mut Problems) -> OtlpConfig {
    OtlpConfig::resolve(
        switch(file.enabled, flags.otlp_enabled, flags.no_otlp_enabled),
        switch(file.logs, flags.otlp_logs, flags.no_otlp_logs),
        switch(
            file.logs_user_attribute,
            flags.otlp_logs_user_attribute,
            flags.no_otlp_logs_user_attribute,
        ),
        &mut problems.0,
    )
}

/// The `otlp.*` lines of `check-config`.
pub fn describe_otlp(otlp: &OtlpConfig, out: &mut Description) {
    let protocol = |p: Option<Protocol>| p.map_or("off", |p| p.as_str());
    out.line("otlp.metrics", protocol(otlp.metrics));
    out.line("otlp.logs", protocol(otlp.logs));
}

/// The address to listen on (the default without one); a bad one is reported.
fn listen_address(value: Option<Sourced<String>>, problems: &mut Problems) -> Option<SocketAddr> {
    match value {
        None => Some(default_listen_address()),
        Some(Sourced { value, origin }) => parse_listen_address(&value)
            .map_err(|e| problems.push(format!("{origin} {value:?}: {e}")))
            .ok(),
    }
}

fn telemetry_path(value: Option<Sourced<String>>, problems: &mut Problems) -> String {
    let Some(Sourced { value, origin }) = value else {
        return DEFAULT_TELEMETRY_PATH.to_string();
    };
    if !value.starts_with('/') || value == "/" || value.starts_with("/-/") {
        problems.push(format!(
            "{origin} {value:?}: expected a path starting with '/', other than / and /-/…"
        ));
    }
    value
}

/// The web config file when it loads; else its problem, naming where it was set.
fn checked_web_config(file: Sourced<PathBuf>, problems: &mut Problems) -> Option<PathBuf> {
    match super::webconfig::WebSettings::load(&file.value) {
        Ok(_) => Some(file.value),
        Err(e) => {
            problems.push(format!("{}: {e}", file.origin));
            None
        }
    }
}

/// `:PORT` (all interfaces, as the exporter-toolkit writes it), `HOST:PORT` or `[V6]:PORT`.
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, String> {
    let expected = "expected HOST:PORT, e.g. :10195 or 127.0.0.1:10195";
    if let Some(port) = s.strip_prefix(':') {
        return port
            .parse::<u16>()
            .map(|p| SocketAddr::from(([0, 0, 0, 0], p)))
            .map_err(|_| expected.to_string());
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => s
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to no address")),
        _ => Err(expected.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Document;

    fn resolve(yaml: &str, flags: &WebFlags) -> Result<WebConfig, Problems> {
        let mut problems = Problems::default();
        let doc = Document::parse(yaml, &["web"], &mut problems);
        let config = WebConfig::resolve(doc.section(&mut problems), flags, &mut problems);
        problems.into_result(config)
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_address(":10195"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 10195)))
        );
        assert_eq!(
            parse_listen_address("[::1]:80"),
            Ok("[::1]:80".parse().unwrap())
        );
        assert!(parse_listen_address("localhost:0")
            .unwrap()
            .ip()
            .is_loopback());
        assert!(parse_listen_address("10195").is_err());
        assert!(parse_listen_address(":99999").is_err());
    }

    #[test]
    fn defaults_then_the_file_then_the_flags() {
        let c = resolve("", &WebFlags::default()).unwrap();
        assert_eq!(
            (c.listen_address, c.telemetry_path.as_str(), c.max_requests),
            (
                default_listen_address(),
                DEFAULT_TELEMETRY_PATH,
                DEFAULT_MAX_REQUESTS
            )
        );
        let yaml = "web: {telemetry_path: /file, max_requests: 3}\n";
        let c = resolve(yaml, &WebFlags::default()).unwrap();
        assert_eq!((c.telemetry_path.as_str(), c.max_requests), ("/file", 3));
        let flags = WebFlags {
            telemetry_path: Some("/flag".into()),
            ..WebFlags::default()
        };
        let c = resolve(yaml, &flags).unwrap();
        assert_eq!((c.telemetry_path.as_str(), c.max_requests), ("/flag", 3));
    }

    #[test]
    fn a_bad_value_names_its_origin() {
        let flags = WebFlags {
            listen_address: Some("nowhere".into()),
            ..WebFlags::default()
        };
        let err = resolve("web: {telemetry_path: metrics}\n", &flags).unwrap_err();
        assert_eq!(
            err.0,
            [
                "flag --web.listen-address \"nowhere\": expected HOST:PORT, e.g. :10195 or 127.0.0.1:10195",
                "config key `web.telemetry_path` \"metrics\": expected a path starting with '/', other than / and /-/…",
            ]
        );
    }
}
