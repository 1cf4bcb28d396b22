//! The web configuration file (`--web.config.file`), compatible with the Prometheus
//! exporter-toolkit: TLS (rustls) with optional client certificates, `basic_auth_users` with
//! bcrypt hashes, and extra response headers.
//!
//! Invariants:
//! - [`WebSettings::load`] either returns settings that can serve, or an error naming the key
//!   or file to fix; nothing is half-applied;
//! - relative file paths are relative to the web config file's directory, as in the toolkit;
//! - [`Fingerprint`] covers the file and every file it names, so a renewed certificate is a
//!   change even when the YAML is untouched;
//! - a bcrypt hash is checked off the async runtime and a successful check is cached (keyed by
//!   a SHA-256 of user, password and hash), so a scrape every few seconds costs one bcrypt.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hyper::header::{HeaderName, HeaderValue};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::azure::http::pem_error;

/// Why a web config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("web config {path}: cannot read it: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("web config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Client certificate policy, spelled as in the toolkit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

/// Everything the server applies from the file.
pub struct WebSettings {
    /// `None` serves plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub client_auth: ClientAuth,
    pub basic_auth: Option<Arc<BasicAuth>>,
    /// Added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for WebSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSettings")
            .field("tls", &self.tls.is_some())
            .field("client_auth", &self.client_auth)
            .field(
                "basic_auth_users",
                &self.basic_auth.as_ref().map_or(0, |a| a.users.len()),
            )
            .field("headers", &self.headers.len())
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileModel {
    tls_server_config: Option<TlsModel>,
    http_server_config: Option<HttpModel>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsModel {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpModel {
    headers: Option<BTreeMap<String, String>>,
    /// Accepted for compatibility; this server speaks HTTP/1.1 only.
    http2: Option<bool>,
}

/// Headers the toolkit lets a web config set (others would let a file override framing).
const ALLOWED_HEADERS: &[&str] = &[
    "content-security-policy",
    "x-frame-options",
    "x-content-type-options",
    "x-xss-protection",
    "strict-transport-security",
];

impl WebSettings {
    /// Reads and validates the file and everything it names.
    pub fn load(path: &Path) -> Result<WebSettings, WebConfigError> {
        let text =
            crate::files::read_small_to_string(path).map_err(|source| WebConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        let invalid = |message: String| WebConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let model: FileModel = if text.trim().is_empty() {
            FileModel::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| invalid(e.to_string()))?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let (tls, client_auth) = match &model.tls_server_config {
            Some(t) => {
                let (config, auth) = tls_config(t, dir).map_err(invalid)?;
                (Some(Arc::new(config)), auth)
            }
            None => (None, ClientAuth::NoClientCert),
        };
        let headers = headers(model.http_server_config.as_ref()).map_err(invalid)?;
        let basic_auth = model
            .basic_auth_users
            .map(|users| BasicAuth::new(users).map(Arc::new))
            .transpose()
            .map_err(invalid)?;
        Ok(WebSettings {
            tls,
            client_auth,
            basic_auth,
            headers,
        })
    }

    /// Plain HTTP, no authentication: what runs without `--web.config.file`.
    pub fn plain() -> WebSettings {
        WebSettings {
            tls: None,
            client_auth: ClientAuth::NoClientCert,
            basic_auth: None,
            headers: Vec::new(),
        }
    }
}

fn resolve(dir: &Path, file: &Path) -> PathBuf {
    if file.is_absolute() {
        file.to_path_buf()
    } else {
        dir.join(file)
    }
}

fn tls_config(t: &TlsModel, dir: &Path) -> Result<(rustls::ServerConfig, ClientAuth), String> {
    refuse_unsupported(t)?;
    let (Some(cert_file), Some(key_file)) = (&t.cert_file, &t.key_file) else {
        return Err("tls_server_config needs both cert_file and key_file".into());
    };
    let certs = read_certificates("cert_file", &resolve(dir, cert_file))?;
    let key = read_private_key("key_file", &resolve(dir, key_file))?;
    let versions = versions(t.min_version.as_deref(), t.max_version.as_deref())?;
    let client_auth = client_auth(t.client_auth_type.as_deref())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let builder = match (client_auth, &t.client_ca_file) {
        (ClientAuth::NoClientCert, None) => builder.with_no_client_auth(),
        (ClientAuth::NoClientCert, Some(_)) => {
            return Err("client_ca_file is set but client_auth_type is NoClientCert; set client_auth_type to RequireAndVerifyClientCert or VerifyClientCertIfGiven".into())
        }
        (_, None) => {
            return Err(format!(
                "client_auth_type {client_auth:?} needs client_ca_file"
            ))
        }
        (auth, Some(ca_file)) => builder.with_client_cert_verifier(client_verifier(
            auth,
            &resolve(dir, ca_file),
            provider,
        )?),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("cert_file/key_file do not make a usable pair: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, client_auth))
}

/// The exporter-toolkit keys rustls has no counterpart for are refused, not ignored.
fn refuse_unsupported(t: &TlsModel) -> Result<(), String> {
    for (set, key) in [
        (t.cipher_suites.is_some(), "cipher_suites"),
        (t.curve_preferences.is_some(), "curve_preferences"),
        (t.client_allowed_sans.is_some(), "client_allowed_sans"),
    ] {
        if set {
            return Err(format!(
                "tls_server_config.{key} is not supported (rustls offers only modern AEAD suites and curves); remove it"
            ));
        }
    }
    let _ = t.prefer_server_cipher_suites; // rustls always prefers the server's order.
    Ok(())
}

/// Every certificate of the PEM file at `path`, named `key` in messages; at least one.
fn read_certificates(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem =
        crate::files::read_small(path).map_err(|e| format!("{key} {}: {e}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{key} {}: {}", path.display(), pem_error(&e, "certificate")))?;
    if certs.is_empty() {
        return Err(format!(
            "{key} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

/// The first private key of the PEM file at `path`, named `key` in messages.
fn read_private_key(key: &str, path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem =
        crate::files::read_small(path).map_err(|e| format!("{key} {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("{key} {}: {}", path.display(), pem_error(&e, "private key")))
}

/// The verifier of client certificates signed by a CA of `ca_path`; with
/// `VerifyClientCertIfGiven`, a client without one is let through to basic auth.
fn client_verifier(
    auth: ClientAuth,
    ca_path: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in read_certificates("client_ca_file", ca_path)? {
        roots
            .add(ca)
            .map_err(|e| format!("client_ca_file {}: {e}", ca_path.display()))?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let verifier = if auth == ClientAuth::VerifyClientCertIfGiven {
        verifier.allow_unauthenticated()
    } else {
        verifier
    };
    verifier
        .build()
        .map_err(|e| format!("client_ca_file {}: {e}", ca_path.display()))
}

fn versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let rank = |v: Option<&str>, key: &str, default: u8| -> Result<u8, String> {
        match v {
            None => Ok(default),
            Some("TLS12") => Ok(12),
            Some("TLS13") => Ok(13),
            Some(other @ ("TLS10" | "TLS11")) => Err(format!(
                "tls_server_config.{key} {other}: rustls supports TLS12 and TLS13 only"
            )),
            Some(other) => Err(format!(
                "tls_server_config.{key} {other:?}: expected TLS12 or TLS13"
            )),
        }
    };
    let (lo, hi) = (rank(min, "min_version", 12)?, rank(max, "max_version", 13)?);
    if lo > hi {
        return Err("tls_server_config.min_version is above max_version".into());
    }
    Ok(
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (lo..=hi).contains(v))
            .map(|(_, p)| p)
            .collect(),
    )
}

fn client_auth(kind: Option<&str>) -> Result<ClientAuth, String> {
    match kind.unwrap_or("NoClientCert") {
        "NoClientCert" => Ok(ClientAuth::NoClientCert),
        "VerifyClientCertIfGiven" => Ok(ClientAuth::VerifyClientCertIfGiven),
        "RequireAndVerifyClientCert" => Ok(ClientAuth::RequireAndVerifyClientCert),
        other @ ("RequestClientCert" | "RequireAnyClientCert") => Err(format!(
            "client_auth_type {other} accepts unverified certificates and is not supported; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        )),
        other => Err(format!(
            "client_auth_type {other:?}: expected NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        )),
    }
}

fn headers(http: Option<&HttpModel>) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let Some(map) = http.and_then(|h| h.headers.as_ref()) else {
        return Ok(Vec::new());
    };
    let _ = http.and_then(|h| h.http2);
    map.iter()
        .map(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            if !ALLOWED_HEADERS.contains(&lower.as_str()) {
                return Err(format!(
                    "http_server_config.headers: {name} cannot be set (allowed: {})",
                    ALLOWED_HEADERS.join(", ")
                ));
            }
            let value = HeaderValue::from_str(value).map_err(|_| {
                format!("http_server_config.headers.{name}: not a valid header value")
            })?;
            let name = HeaderName::from_bytes(lower.as_bytes())
                .map_err(|_| format!("http_server_config.headers: {name} is not a header name"))?;
            Ok((name, value))
        })
        .collect()
}

/// Positive checks kept; beyond this the cache starts over (it only saves CPU).
const CACHE_LIMIT: usize = 256;

/// `basic_auth_users`: user → bcrypt hash.
pub struct BasicAuth {
    users: HashMap<String, String>,
    verified: Mutex<HashSet<[u8; 32]>>,
    bcrypt_checks: std::sync::atomic::AtomicU64,
    /// The cost of the file's most expensive hash.
    cost: u32,
    /// What a user name unknown to the file is checked against, made (off the runtime) at the
    /// file's own cost, so that a wrong user costs as long as a wrong password and user names
    /// cannot be told apart by timing.
    dummy: std::sync::OnceLock<String>,
}

impl BasicAuth {
    fn new(users: BTreeMap<String, String>) -> Result<BasicAuth, String> {
        let mut cost = None;
        for (user, hash) in &users {
            let Ok(parts) = hash.parse::<bcrypt::HashParts>() else {
                return Err(format!(
                    "basic_auth_users.{user}: not a bcrypt hash (generate one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
                ));
            };
            cost = cost.max(Some(parts.get_cost()));
        }
        Ok(BasicAuth {
            users: users.into_iter().collect(),
            verified: Mutex::new(HashSet::new()),
            bcrypt_checks: std::sync::atomic::AtomicU64::new(0),
            cost: cost.unwrap_or(bcrypt::DEFAULT_COST),
            dummy: std::sync::OnceLock::new(),
        })
    }

    /// The hash unknown users are checked against; bcrypt work, so on the blocking pool only.
    fn dummy_hash(&self) -> &str {
        self.dummy
            .get_or_init(|| bcrypt::hash("not a password", self.cost).unwrap_or_default())
    }

    /// How many bcrypt comparisons ran (the cache skips repeats).
    pub fn bcrypt_checks(&self) -> u64 {
        self.bcrypt_checks
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// True when `authorization` carries a user of the file with the right password. Blocking
    /// bcrypt work runs on the blocking pool.
    pub async fn check(self: &Arc<Self>, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let hash = self.users.get(&user).cloned();
        let key = cache_key(&user, &password, hash.as_deref().unwrap_or(""));
        if hash.is_some() && self.lock().contains(&key) {
            return true;
        }
        let this = self.clone();
        let checked = tokio::task::spawn_blocking(move || {
            this.bcrypt_checks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let against = match &hash {
                Some(h) => h.as_str(),
                None => this.dummy_hash(),
            };
            let ok = bcrypt::verify(&password, against).unwrap_or(false);
            ok && hash.is_some()
        })
        .await
        .unwrap_or(false);
        if checked {
            let mut cache = self.lock();
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key);
        }
        checked
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn cache_key(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, password, hash] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Identifies the content of the web config file and of every file it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// Hashes the file and the files it references; unreadable files hash as absent.
    pub fn of(path: &Path) -> Fingerprint {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let text = crate::files::read_small(path).unwrap_or_default();
        hasher.update(&text);
        let dir = path.parent().unwrap_or(Path::new("."));
        if let Ok(model) = serde_yaml_ng::from_slice::<FileModel>(&text) {
            if let Some(t) = model.tls_server_config {
                for file in [t.cert_file, t.key_file, t.client_ca_file]
                    .into_iter()
                    .flatten()
                {
                    hasher.update(
                        &crate::files::read_small(&resolve(dir, &file)).unwrap_or_default(),
                    );
                }
            }
        }
        Fingerprint(hasher.digest())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PEM file without what its key names, or with a section cut short, is refused with
    /// a message naming the key, the file and what was expected.
    #[test]
    fn pem_files_must_hold_what_their_key_names() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["t".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_pem = write(dir.path(), "c.pem", &cert.pem());
        let key_pem = write(dir.path(), "k.pem", &key.serialize_pem());
        let cut = cert.pem();
        let cut = write(dir.path(), "cut.pem", &cut[..cut.len() / 2]);
        assert_eq!(read_certificates("cert_file", &cert_pem).unwrap().len(), 1);
        assert!(read_private_key("key_file", &key_pem).is_ok());
        let show = |p: &Path| p.display().to_string();
        assert_eq!(
            read_certificates("client_ca_file", &key_pem).unwrap_err(),
            format!(
                "client_ca_file {}: no PEM certificate in it",
                show(&key_pem)
            )
        );
        assert_eq!(
            read_private_key("key_file", &cert_pem).unwrap_err(),
            format!("key_file {}: no PEM private key in it", show(&cert_pem))
        );
        assert_eq!(
            read_certificates("cert_file", &cut).unwrap_err(),
            format!(
                "cert_file {}: a PEM section does not end (no -----END CERTIFICATE-----)",
                show(&cut)
            )
        );
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "web.yml", text);
        WebSettings::load(&p).unwrap_err().to_string()
    }

    #[test]
    fn bad_files_name_what_to_fix() {
        assert!(error("tls_server_config:\n  cert_file: a.crt\n")
            .contains("needs both cert_file and key_file"));
        assert!(error("tls_server_confg: {}\n").contains("unknown field `tls_server_confg`"));
        assert!(error("basic_auth_users:\n  alice: secret\n")
            .contains("basic_auth_users.alice: not a bcrypt hash"));
        assert!(
            error("http_server_config:\n  headers:\n    Content-Length: '1'\n")
                .contains("Content-Length cannot be set")
        );
        assert!(
            error("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n")
                .contains("missing.crt")
        );
    }

    #[test]
    fn versions_and_client_auth_follow_the_toolkit_names() {
        assert_eq!(versions(None, None).unwrap().len(), 2);
        assert_eq!(versions(Some("TLS13"), None).unwrap().len(), 1);
        assert!(versions(Some("TLS11"), None)
            .unwrap_err()
            .contains("TLS12 and TLS13 only"));
        assert!(versions(Some("TLS13"), Some("TLS12")).is_err());
        assert_eq!(client_auth(None).unwrap(), ClientAuth::NoClientCert);
        assert!(client_auth(Some("RequireAnyClientCert"))
            .unwrap_err()
            .contains("not supported"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn basic_auth_checks_bcrypt_once_per_credential() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = Arc::new(BasicAuth::new(BTreeMap::from([("alice".to_string(), hash)])).unwrap());
        let header = |user: &str, pw: &str| {
            HeaderValue::from_str(&format!(
                "Basic {}",
                STANDARD.encode(format!("{user}:{pw}"))
            ))
            .unwrap()
        };
        assert!(auth.check(Some(&header("alice", "s3cret"))).await);
        assert!(auth.check(Some(&header("alice", "s3cret"))).await);
        assert_eq!(
            auth.bcrypt_checks(),
            1,
            "the second success came from the cache"
        );
        assert!(!auth.check(Some(&header("alice", "wrong"))).await);
        assert!(!auth.check(Some(&header("alice", "wrong"))).await);
        assert_eq!(auth.bcrypt_checks(), 3, "failures are never cached");
        assert!(!auth.check(Some(&header("mallory", "s3cret"))).await);
        assert_eq!(
            auth.bcrypt_checks(),
            4,
            "an unknown user costs a bcrypt too"
        );
        let dummy: bcrypt::HashParts = auth.dummy_hash().parse().unwrap();
        assert_eq!(
            dummy.get_cost(),
            4,
            "at the file's cost, not the library's default of 12: as long as a wrong password"
        );
        assert!(!auth.check(None).await);
        assert!(
            !auth
                .check(Some(&HeaderValue::from_static("Bearer x")))
                .await
        );
    }
}
