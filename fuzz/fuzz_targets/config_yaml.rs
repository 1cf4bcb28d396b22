//! The config parser: `Config::from_yaml` never panics, an error lists at least one problem,
//! and an accepted config can be described.
//!
//! `from_yaml` has two side effects a fuzzer must not trigger: it reads the files named by
//! `azure.client_secret_file` / `azure.client_certificate_path` (a fuzzer could name
//! `/dev/zero` or a FIFO), and it resolves a host name in `web.listen_address` through DNS.
//! Inputs that would do either are skipped (see `side_effect_free`).
#![no_main]

use std::net::SocketAddr;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use powerbi_exporter::app::Config;
use serde_yaml_ng::Value;

/// Largest file the config may read during fuzzing (every real one is far smaller).
const MAX_READ_FILE: u64 = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if may_have_side_effects(text) && !side_effect_free(text) {
        return;
    }
    match Config::from_yaml(text) {
        Ok(config) => {
            let described = config.describe();
            assert!(described.contains("web.listen_address: "));
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error names at least one problem");
            let _ = errors.to_string();
        }
    }
});

/// A quick look at the text that clears most inputs without parsing them twice: a string can
/// only name a host to resolve under `listen_address`, and a special file (`/dev`, `/proc`,
/// `/sys`, `/run`, or a relative path up to them) only if those letters are in the text, or
/// made by an escape (a backslash). Plain scalars fold line breaks into spaces, never joining
/// letters.
fn may_have_side_effects(text: &str) -> bool {
    text.contains('\\')
        || ["listen_address", "dev", "proc", "sys", "run"]
            .iter()
            .any(|w| text.contains(w))
}

/// Whether `from_yaml` would neither resolve a host name nor read anything but a small
/// regular file. Parsed the way the config parses it (same crate, same version).
fn side_effect_free(text: &str) -> bool {
    let Ok(doc) = serde_yaml_ng::from_str::<Value>(text) else {
        return true; // rejected before any value is used
    };
    if let Some(Value::String(addr)) = doc.get("web").and_then(|w| w.get("listen_address")) {
        if would_resolve(addr) {
            return false;
        }
    }
    let mut ok = true;
    visit_strings(&doc, &mut |s| {
        // Any string may end up as a path read relative to the working directory.
        let path = Path::new(s);
        if let Ok(meta) = path.metadata() {
            // /proc and /sys files claim to be small regular files; some block when read.
            let virtual_fs = path.canonicalize().map_or(true, |p| {
                ["/proc", "/sys", "/dev", "/run"]
                    .iter()
                    .any(|d| p.starts_with(d))
            });
            if virtual_fs || !meta.is_file() || meta.len() > MAX_READ_FILE {
                ok = false;
            }
        }
    });
    ok
}

/// Mirrors `exposition::settings::parse_listen_address`: only a `HOST:PORT` that is not an IP address goes
/// to the resolver.
fn would_resolve(s: &str) -> bool {
    if s.starts_with(':') || s.parse::<SocketAddr>().is_ok() {
        return false;
    }
    matches!(s.rsplit_once(':'), Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok())
}

fn visit_strings(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::String(s) => f(s),
        Value::Sequence(items) => items.iter().for_each(|v| visit_strings(v, f)),
        Value::Mapping(map) => {
            for (k, v) in map {
                visit_strings(k, f);
                visit_strings(v, f);
            }
        }
        Value::Tagged(tagged) => visit_strings(&tagged.value, f),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
