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
    #[error("the token endpoint answered {status} without a usable token")]
    BadResponse { status: u16 },
}

impl AuthError {
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::InvalidClient { .. } => "invalid_client",
            AuthError::Rejected { .. } => "rejected",
            AuthError::Unreachable(_) => "unreachable",
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

/// A certificate credential: the private key signs a client assertion (RS256 JWT) whose `x5t`
/// names the certificate.
#[derive(Clone)]
pub struct CertificateKey {
    key: std::sync::Arc<ring::signature::RsaKeyPair>,
    /// base64url SHA-1 of the certificate (the `x5t` header).
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
        let thumbprint = base64url(
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert).as_ref(),
        );
        Ok(CertificateKey {
            key: std::sync::Arc::new(key),
            thumbprint,
            not_after: certificate_not_after(&cert),
        })
    }

    /// A client assertion for `authority`, valid for 10 minutes.
    fn assertion(
        &self,
        authority: &Authority,
        now: UnixMillis,
        jti: u64,
    ) -> Result<String, AuthError> {
        use crate::encoding::base64url;
        let secs = now.0 / 1000;
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": self.thumbprint});
        let claims = serde_json::json!({
            "aud": authority.token_url(), "iss": authority.client_id, "sub": authority.client_id,
            "jti": format!("{jti:016x}"), "nbf": secs, "iat": secs, "exp": secs + 600,
        });
        let input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
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
                let assertion = key.assertion(authority, now, now.0 as u64 ^ 0x5eed)?;
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
        let resp = request
            .send()
            .await
            .map_err(|e| AuthError::Unreachable(without_url(&e)))?;
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
                let expires_at = number(&t.expires_on)
                    .map(UnixMillis::from_secs)
                    .or_else(|| number(&t.expires_in).map(|s| UnixMillis(now.0 + s * 1000)))
                    .unwrap_or(UnixMillis(now.0 + 3_599_000));
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
