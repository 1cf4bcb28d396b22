//! Entra ID tokens for the Power BI API, cached and refreshed well before they expire.
//!
//! Invariants: the secret never appears in a log line or an error message; a token is
//! refreshed when less than [`REFRESH_BEFORE`] of its lifetime remains (lifetimes are 60–90
//! minutes, not fixed); a failed request names the likely cause.

use std::fmt;
use std::time::Duration;

use crate::decode::UnixMillis;

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

/// Client-credentials flow with a client secret (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
/// `AZURE_CLIENT_SECRET`).
#[derive(Debug, Clone)]
pub struct ClientSecretCredential {
    pub authority_host: String,
    pub tenant_id: String,
    pub client_id: String,
    pub secret: Secret,
    pub scope: String,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
}

impl ClientSecretCredential {
    fn url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority_host.trim_end_matches('/'),
            self.tenant_id
        )
    }

    /// Asks the token endpoint for a new token.
    pub async fn request(
        &self,
        http: &reqwest::Client,
        now: UnixMillis,
    ) -> Result<AccessToken, AuthError> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.expose()),
            ("scope", self.scope.as_str()),
        ];
        let resp = http
            .post(self.url())
            .form(&form)
            .send()
            .await
            .map_err(|e| AuthError::Unreachable(without_url(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| AuthError::Unreachable(without_url(&e)))?;
        let parsed: Option<TokenResponse> = serde_json::from_slice(&body).ok();
        match parsed {
            Some(TokenResponse {
                access_token: Some(token),
                expires_in,
                ..
            }) if status == 200 => {
                let secs = expires_in
                    .as_ref()
                    .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                    .unwrap_or(3599);
                Ok(AccessToken {
                    token: Secret(token),
                    expires_at: UnixMillis(now.0 + secs as i64 * 1000),
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

/// What went wrong with a request, without its URL (a URL may carry a token).
pub fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response body could not be read"
    } else {
        "request failed"
    };
    kind.to_string()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(300).collect()
}

/// Caches a token and refreshes it before it expires.
#[derive(Debug)]
pub struct TokenCache {
    credential: ClientSecretCredential,
    current: Option<AccessToken>,
}

impl TokenCache {
    pub fn new(credential: ClientSecretCredential) -> Self {
        TokenCache {
            credential,
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
        let fresh = self.credential.request(http, now).await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let t = AccessToken {
            token: Secret::new("eyJ0eXAi.secret"),
            expires_at: UnixMillis(5),
        };
        let c = ClientSecretCredential {
            authority_host: "https://login.microsoftonline.com".into(),
            tenant_id: "t".into(),
            client_id: "c".into(),
            secret: Secret::new("s3cr3t-value"),
            scope: "x".into(),
        };
        let printed = format!("{t:?} {c:?}");
        assert!(
            !printed.contains("eyJ0eXAi") && !printed.contains("s3cr3t"),
            "{printed}"
        );
        assert_eq!(
            c.url(),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
    }
}
