//! Entra ID tokens — for the Power BI API and for Azure Monitor Logs Ingestion, one credential
//! chain, a cache per scope — refreshed well before they expire.
//!
//! Invariants: the secret never appears in a log line or an error message; a token is
//! refreshed when less than [`REFRESH_BEFORE`] of its lifetime remains (lifetimes are 60–90
//! minutes, not fixed); a failed request names the likely cause.

use std::fmt;
use std::time::Duration;

use super::http::without_url;
use crate::decode::UnixMillis;

/// A token response is a few kilobytes; anything past this is refused unread.
const TOKEN_BODY_LIMIT: usize = 1 << 20;

/// The scope of a Power BI API token (client-credentials flow).
pub const POWERBI_SCOPE: &str = "https://analysis.windows.net/powerbi/api/.default";

/// Tokens are refreshed when less than this remains (azure_identity uses 300 s too).
pub const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// The longest a token is trusted, whatever its response says: Entra access tokens live 60–90
/// minutes, a day at most (configurable lifetimes, managed identities).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A token response without an expiry is taken to live this long (Entra's default is longer).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// A secret that does not print.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// An access token and when it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_at: UnixMillis,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why no token could be had; the label of `powerbi_auth_errors_total{reason}`.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token endpoint refused the client credentials ({code}): check AZURE_CLIENT_ID and the client secret, and that the secret has not expired")]
    InvalidClient { code: String },
    #[error("the token request was rejected ({code}): {description}")]
    Rejected { code: String, description: String },
    #[error("the token endpoint could not be reached: {0}")]
    Unreachable(String),
    /// The TLS handshake failed because the server's certificate is not trusted (a
    /// TLS-inspecting proxy or a private CA): the fix is the trusted roots, not the network.
    #[error("the token endpoint could not be reached: {0}")]
    UntrustedCertificate(String),
    #[error("the token endpoint answered {status} without a usable token")]
    BadResponse { status: u16 },
}

impl AuthError {
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::InvalidClient { .. } => "invalid_client",
            AuthError::Rejected { .. } => "rejected",
            AuthError::Unreachable(_) => "unreachable",
            AuthError::UntrustedCertificate(_) => "untrusted_certificate",
            AuthError::BadResponse { .. } => "bad_response",
        }
    }
}

/// Where a client-credentials flow asks for tokens, and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub host: String,
    pub tenant_id: String,
    pub client_id: String,
}

impl Authority {
    fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.host.trim_end_matches('/'),
            self.tenant_id
        )
    }
}

/// A certificate credential: the private key signs a client assertion (a PS256 JWT) whose
/// `x5t#S256` names the certificate, as Entra's current guidance has it
/// (learn.microsoft.com/entra/identity-platform/certificate-credentials: "alg Should be PS256",
/// "x5t#S256 Base64url-encoded SHA-256 thumbprint of the X.509 certificate's DER encoding",
/// "jti (a GUID)", signature "Use PSS padding"). RS256 with a SHA-1 `x5t` is the legacy form.
#[derive(Clone)]
pub struct CertificateKey {
    key: std::sync::Arc<ring::signature::RsaKeyPair>,
    /// base64url SHA-256 of the certificate's DER (the `x5t#S256` header).
    pub thumbprint: String,
    /// The certificate's `notAfter`, as Unix seconds.
    pub not_after: Option<i64>,
}

impl fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateKey")
            .field("thumbprint", &self.thumbprint)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertificateKey {
    /// Reads a PEM holding the certificate and its unencrypted private key (PKCS#8 or PKCS#1
    /// RSA), as `AZURE_CLIENT_CERTIFICATE_PATH` points to.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        use crate::encoding::{base64url, certificate_not_after, pem_blocks};
        let cert = pem_blocks(pem, "CERTIFICATE")
            .into_iter()
            .next()
            .ok_or("no CERTIFICATE block in the PEM file")?;
        if !pem_blocks(pem, "ENCRYPTED PRIVATE KEY").is_empty() {
            return Err("the private key is encrypted, which is not supported: decrypt it with `openssl pkcs8 -nocrypt` and protect the file instead".into());
        }
        let key = if let Some(der) = pem_blocks(pem, "PRIVATE KEY").into_iter().next() {
            ring::signature::RsaKeyPair::from_pkcs8(&der)
        } else if let Some(der) = pem_blocks(pem, "RSA PRIVATE KEY").into_iter().next() {
            ring::signature::RsaKeyPair::from_der(&der)
        } else {
            return Err("no PRIVATE KEY block in the PEM file".into());
        };
        let key = key.map_err(|e| format!("the private key is not a usable RSA key: {e}"))?;
        let thumbprint = base64url(ring::digest::digest(&ring::digest::SHA256, &cert).as_ref());
        Ok(CertificateKey {
            key: std::sync::Arc::new(key),
            thumbprint,
            not_after: certificate_not_after(&cert),
        })
    }

    /// A client assertion for `authority`, valid for 10 minutes, with a fresh random `jti`.
    fn assertion(&self, authority: &Authority, now: UnixMillis) -> Result<String, AuthError> {
        use crate::encoding::base64url;
        let secs = now.0 / 1000;
        let header = serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint});
        let claims = serde_json::json!({
            "aud": authority.token_url(), "iss": authority.client_id, "sub": authority.client_id,
            "jti": random_guid()?, "nbf": secs, "iat": secs, "exp": secs + 600,
        });
        let input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PSS_SHA256,
                &ring::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| AuthError::Rejected {
                code: "signing_failed".into(),
                description: "the client assertion could not be signed".into(),
            })?;
        Ok(format!("{input}.{}", base64url(&signature)))
    }
}

/// A random (version 4) GUID from the system's CSPRNG: unique across processes and restarts,
/// unlike anything derived from the clock.
fn random_guid() -> Result<String, AuthError> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| AuthError::Rejected {
            code: "random_failed".into(),
            description: "no random bytes for the client assertion's jti".into(),
        })?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// Where a managed identity's token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagedIdentity {
    /// App Service, Functions, Container Apps: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`.
    AppService {
        endpoint: String,
        header: Secret,
        client_id: Option<String>,
    },
    /// VM / AKS node: the instance metadata service.
    Imds {
        endpoint: String,
        client_id: Option<String>,
    },
}

/// The IMDS token endpoint.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// How the exporter proves who it is, picked from the environment like the Azure SDKs do.
#[derive(Debug, Clone)]
pub enum Credential {
    /// `AZURE_CLIENT_SECRET` (or a secret file).
    ClientSecret {
        authority: Authority,
        secret: Secret,
    },
    /// `AZURE_CLIENT_CERTIFICATE_PATH`.
    Certificate {
        authority: Authority,
        key: CertificateKey,
    },
    /// `AZURE_FEDERATED_TOKEN_FILE`, re-read for every request (the file rotates).
    WorkloadIdentity {
        authority: Authority,
        token_file: std::path::PathBuf,
    },
    ManagedIdentity(ManagedIdentity),
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    expires_on: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
}

/// A number that token endpoints send as a number or a string.
fn number(v: &Option<serde_json::Value>) -> Option<i64> {
    let v = v.as_ref()?;
    v.as_i64().or_else(|| v.as_str()?.trim().parse().ok())
}

impl Credential {
    /// The Entra ID tenant, when the credential names one (a managed identity does not).
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            Credential::ClientSecret { authority, .. }
            | Credential::Certificate { authority, .. }
            | Credential::WorkloadIdentity { authority, .. } => Some(&authority.tenant_id),
            Credential::ManagedIdentity(_) => None,
        }
    }

    /// Short name for logs and the README.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ClientSecret { .. } => "client secret",
            Credential::Certificate { .. } => "client certificate",
            Credential::WorkloadIdentity { .. } => "workload identity",
            Credential::ManagedIdentity(ManagedIdentity::AppService { .. }) => {
                "managed identity (App Service)"
            }
            Credential::ManagedIdentity(ManagedIdentity::Imds { .. }) => "managed identity (IMDS)",
        }
    }

    /// When the credential itself expires, when known (a certificate's `notAfter`).
    pub fn expires_at(&self) -> Option<UnixMillis> {
        match self {
            Credential::Certificate { key, .. } => key.not_after.map(UnixMillis::from_secs),
            _ => None,
        }
    }

    /// Asks for a new token for `scope` (resource + `/.default`).
    pub async fn request(
        &self,
        http: &reqwest::Client,
        scope: &str,
        now: UnixMillis,
    ) -> Result<AccessToken, AuthError> {
        let resource = scope.trim_end_matches("/.default");
        let request = match self {
            Credential::ClientSecret { authority, secret } => {
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", &authority.client_id),
                    ("client_secret", secret.expose()),
                    ("scope", scope),
                ];
                http.post(authority.token_url()).form(&form)
            }
            Credential::Certificate { authority, key } => {
                let assertion = key.assertion(authority, now)?;
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", &authority.client_id),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &assertion),
                    ("scope", scope),
                ];
                http.post(authority.token_url()).form(&form)
            }
            Credential::WorkloadIdentity {
                authority,
                token_file,
            } => {
                let assertion = crate::files::read_small_to_string(token_file).map_err(|e| {
                    AuthError::Rejected {
                        code: "federated_token_unreadable".into(),
                        description: format!(
                            "cannot read AZURE_FEDERATED_TOKEN_FILE {}: {e}",
                            token_file.display()
                        ),
                    }
                })?;
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", &authority.client_id),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", assertion.trim()),
                    ("scope", scope),
                ];
                http.post(authority.token_url()).form(&form)
            }
            Credential::ManagedIdentity(ManagedIdentity::AppService {
                endpoint,
                header,
                client_id,
            }) => {
                let mut query = vec![("resource", resource), ("api-version", "2019-08-01")];
                if let Some(id) = client_id {
                    query.push(("client_id", id));
                }
                http.get(endpoint)
                    .query(&query)
                    .header("X-IDENTITY-HEADER", header.expose())
            }
            Credential::ManagedIdentity(ManagedIdentity::Imds {
                endpoint,
                client_id,
            }) => {
                let mut query = vec![("api-version", "2018-02-01"), ("resource", resource)];
                if let Some(id) = client_id {
                    query.push(("client_id", id));
                }
                http.get(endpoint).query(&query).header("Metadata", "true")
            }
        };
        let resp = request.send().await.map_err(|e| {
            if super::http::untrusted_certificate(&e).is_some() {
                AuthError::UntrustedCertificate(without_url(&e))
            } else {
                AuthError::Unreachable(without_url(&e))
            }
        })?;
        let status = resp.status().as_u16();
        let body = super::http::read_capped(resp, TOKEN_BODY_LIMIT)
            .await
            .map_err(|e| AuthError::Unreachable(e.to_string()))?;
        let parsed: Option<TokenResponse> = serde_json::from_slice(&body).ok();
        match parsed {
            Some(
                t @ TokenResponse {
                    access_token: Some(_),
                    ..
                },
            ) if status == 200 => {
                let expires_at = token_expiry(number(&t.expires_on), number(&t.expires_in), now);
                Ok(AccessToken {
                    token: Secret(t.access_token.unwrap_or_default()),
                    expires_at,
                })
            }
            Some(TokenResponse {
                error: Some(code), ..
            }) if code == "invalid_client" || code == "unauthorized_client" => {
                Err(AuthError::InvalidClient { code })
            }
            Some(TokenResponse {
                error: Some(code),
                error_description,
                ..
            }) => Err(AuthError::Rejected {
                code,
                description: first_line(error_description.as_deref().unwrap_or("")),
            }),
            _ => Err(AuthError::BadResponse { status }),
        }
    }
}

/// When a token expires: `expires_on` (Unix seconds), else `now + expires_in`, else the
/// default lifetime; with checked arithmetic, never before `now` and never more than
/// [`MAX_TOKEN_LIFETIME`] after it (a wrong clock or a hostile endpoint cannot pin a token).
fn token_expiry(expires_on: Option<i64>, expires_in: Option<i64>, now: UnixMillis) -> UnixMillis {
    let latest = now.0.saturating_add(MAX_TOKEN_LIFETIME.as_millis() as i64);
    let at = expires_on
        .map(|secs| secs.saturating_mul(1000))
        .or_else(|| expires_in.map(|secs| now.0.saturating_add(secs.saturating_mul(1000))))
        .unwrap_or(
            now.0
                .saturating_add(DEFAULT_TOKEN_LIFETIME.as_millis() as i64),
        );
    UnixMillis(at.clamp(now.0, latest))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(300).collect()
}

/// Caches a token and refreshes it before it expires.
#[derive(Debug)]
pub struct TokenCache {
    credential: Credential,
    scope: String,
    current: Option<AccessToken>,
}

impl TokenCache {
    pub fn new(credential: Credential, scope: String) -> Self {
        TokenCache {
            credential,
            scope,
            current: None,
        }
    }

    /// A token valid for at least [`REFRESH_BEFORE`], from the cache or freshly requested.
    pub async fn token(
        &mut self,
        http: &reqwest::Client,
        now: UnixMillis,
    ) -> Result<AccessToken, AuthError> {
        if let Some(t) = &self.current {
            if t.expires_at.0 - now.0 > REFRESH_BEFORE.as_millis() as i64 {
                return Ok(t.clone());
            }
        }
        let fresh = self.credential.request(http, &self.scope, now).await?;
        self.current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets the cached token (after a 401 from the API).
    pub fn invalidate(&mut self) {
        self.current = None;
    }

    /// When the cached token expires.
    pub fn expires_at(&self) -> Option<UnixMillis> {
        self.current.as_ref().map(|t| t.expires_at)
    }

    /// When the credential itself expires, when known.
    pub fn credential_expires_at(&self) -> Option<UnixMillis> {
        self.credential.expires_at()
    }

    /// Who the cached token says the exporter is: its application id (`appid`, or `azp` in v2
    /// tokens) and its service principal's object id (`oid`), GUIDs in lower case. Read, not
    /// verified: they only tell the exporter's own events apart. Empty without a token or
    /// when it is not a JWT.
    pub fn principal_ids(&self) -> Vec<String> {
        self.current
            .as_ref()
            .map_or_else(Vec::new, |t| principal_ids(t.token.expose()))
    }
}

/// The `appid`, `azp` and `oid` claims of a JWT's payload.
fn principal_ids(jwt: &str) -> Vec<String> {
    let Some(claims) = jwt
        .split('.')
        .nth(1)
        .and_then(crate::encoding::unbase64)
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return Vec::new();
    };
    let mut ids: Vec<String> = ["appid", "azp", "oid"]
        .iter()
        .filter_map(|c| claims.get(*c)?.as_str())
        .map(|id| crate::decode::event::lower_guid(id.into()).into_owned())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    /// The ids an Entra access token names its caller by: `appid` (v1) or `azp` (v2) and
    /// `oid`, as the exporter's own `ExportActivityEvents` may carry them.
    #[test]
    fn principal_ids_come_from_the_tokens_claims() {
        let jwt = |claims: &str| {
            let b = crate::encoding::base64url;
            format!(
                "{}.{}.{}",
                b(br#"{"alg":"RS256"}"#),
                b(claims.as_bytes()),
                b(b"sig")
            )
        };
        let v1 = jwt(
            r#"{"appid":"2F9237E0-79E9-47BE-A68C-BAA0AF943CF2","oid":"b7c5e1d2-3f4a-4b6c-8d9e-0a1b2c3d4e5f","tid":"t"}"#,
        );
        assert_eq!(
            principal_ids(&v1),
            [
                "2f9237e0-79e9-47be-a68c-baa0af943cf2",
                "b7c5e1d2-3f4a-4b6c-8d9e-0a1b2c3d4e5f"
            ]
        );
        let v2 = jwt(r#"{"azp":"app","oid":"app","ver":"2.0"}"#);
        assert_eq!(principal_ids(&v2), ["app"]);
        for not_a_jwt in ["sim-0123", "a.!!!.c", "", "a..b"] {
            assert!(principal_ids(not_a_jwt).is_empty(), "{not_a_jwt}");
        }
    }

    use super::*;

    /// A fresh RSA key and self-signed certificate in one PEM, made by openssl.
    fn openssl_certificate(dir: &std::path::Path) -> String {
        let (key, cert) = (dir.join("k.pem"), dir.join("c.pem"));
        let status = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=t", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl (scripts/test.sh installs it)");
        assert!(status.status.success());
        std::fs::read_to_string(cert).unwrap() + &std::fs::read_to_string(key).unwrap()
    }

    #[test]
    fn assertions_are_ps256_with_a_fresh_guid_jti_even_within_one_millisecond() {
        let dir = tempfile::tempdir().unwrap();
        let key = CertificateKey::from_pem(&openssl_certificate(dir.path())).unwrap();
        let authority = Authority {
            host: "https://login.microsoftonline.com".into(),
            tenant_id: "t".into(),
            client_id: "c".into(),
        };
        let now = UnixMillis(1_795_000_000_000);
        let part = |jwt: &str, i: usize| -> serde_json::Value {
            let b64 = jwt.split('.').nth(i).unwrap();
            serde_json::from_slice(&crate::encoding::unbase64(b64).unwrap()).unwrap()
        };
        let (a, b) = (
            key.assertion(&authority, now).unwrap(),
            key.assertion(&authority, now).unwrap(),
        );
        let header = part(&a, 0);
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["x5t#S256"], key.thumbprint.as_str());
        assert!(header.get("x5t").is_none(), "no SHA-1 thumbprint");
        let (ja, jb) = (part(&a, 1)["jti"].clone(), part(&b, 1)["jti"].clone());
        assert_ne!(ja, jb, "two assertions in the same millisecond share a jti");
        for jti in [ja, jb] {
            let jti = jti.as_str().unwrap().to_string();
            let groups: Vec<usize> = jti.split('-').map(str::len).collect();
            assert_eq!(groups, [8, 4, 4, 4, 12], "{jti}");
            assert!(
                jti.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
                "{jti}"
            );
            assert_eq!(&jti[14..15], "4", "version 4: {jti}");
        }
    }

    #[test]
    fn token_expiry_is_checked_and_kept_within_a_day() {
        let now = UnixMillis(1_795_000_000_000);
        let day = 86_400_000;
        assert_eq!(
            token_expiry(None, Some(3599), now),
            UnixMillis(now.0 + 3_599_000)
        );
        assert_eq!(
            token_expiry(Some(1_795_003_600), Some(3599), now),
            UnixMillis(now.0 + 3_600_000),
            "expires_on wins"
        );
        assert_eq!(token_expiry(None, None, now), UnixMillis(now.0 + 3_599_000));
        for absurd in [i64::MAX, 100_000_000_000_000_000, 10 * 86_400] {
            assert_eq!(
                token_expiry(None, Some(absurd), now),
                UnixMillis(now.0 + day)
            );
        }
        for absurd in [
            i64::MAX,
            100_000_000_000_000_000,
            now.0 / 1000 + 10 * 86_400,
        ] {
            assert_eq!(
                token_expiry(Some(absurd), None, now),
                UnixMillis(now.0 + day)
            );
        }
        for past in [i64::MIN, -5, 0] {
            assert_eq!(token_expiry(None, Some(past), now), now);
            assert_eq!(token_expiry(Some(past), None, now), now);
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let t = AccessToken {
            token: Secret::new("eyJ0eXAi.secret"),
            expires_at: UnixMillis(5),
        };
        let authority = Authority {
            host: "https://login.microsoftonline.com/".into(),
            tenant_id: "t".into(),
            client_id: "c".into(),
        };
        let c = Credential::ClientSecret {
            authority: authority.clone(),
            secret: Secret::new("s3cr3t-value"),
        };
        let printed = format!("{t:?} {c:?}");
        assert!(
            !printed.contains("eyJ0eXAi") && !printed.contains("s3cr3t"),
            "{printed}"
        );
        assert_eq!(
            authority.token_url(),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
    }
}
