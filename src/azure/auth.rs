//! Entra ID tokens — for the Power BI API and for Azure Monitor Logs Ingestion, one credential
//! chain, a cache per scope — refreshed well before they expire.
//!
//! Invariants: the secret never appears in a log line or an error message; a token is
//! refreshed when less than [`REFRESH_BEFORE`] of its lifetime remains (lifetimes are 60–90
//! minutes, not fixed); a failed request names the likely cause.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};

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
        self.kind().as_str()
    }

    pub fn kind(&self) -> AuthErrorKind {
        match self {
            AuthError::InvalidClient { .. } => AuthErrorKind::InvalidClient,
            AuthError::Rejected { .. } => AuthErrorKind::Rejected,
            AuthError::Unreachable(_) => AuthErrorKind::Unreachable,
            AuthError::UntrustedCertificate(_) => AuthErrorKind::UntrustedCertificate,
            AuthError::BadResponse { .. } => AuthErrorKind::BadResponse,
        }
    }
}

/// The kinds of [`AuthError`]: the `reason` label values of `powerbi_auth_errors_total`, all
/// of which the self metrics show (0 until one happens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthErrorKind {
    BadResponse,
    InvalidClient,
    Rejected,
    Unreachable,
    UntrustedCertificate,
}

impl AuthErrorKind {
    pub const ALL: [AuthErrorKind; 5] = [
        AuthErrorKind::BadResponse,
        AuthErrorKind::InvalidClient,
        AuthErrorKind::Rejected,
        AuthErrorKind::Unreachable,
        AuthErrorKind::UntrustedCertificate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthErrorKind::BadResponse => "bad_response",
            AuthErrorKind::InvalidClient => "invalid_client",
            AuthErrorKind::Rejected => "rejected",
            AuthErrorKind::Unreachable => "unreachable",
            AuthErrorKind::UntrustedCertificate => "untrusted_certificate",
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
    /// The `x5c` header: standard base64 of each certificate's DER in the file, in its order
    /// (RFC 7515 §4.1.6), sent only when `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` asks, for
    /// subject name/issuer authentication.
    pub chain: Option<Vec<String>>,
}

/// Why a certificate file could not be used; each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("no CERTIFICATE block in the PEM file")]
    NoCertificate,
    #[error("no PRIVATE KEY block in the PEM file")]
    NoKey,
    #[error("the private key is encrypted: set AZURE_CLIENT_CERTIFICATE_PASSWORD to its password")]
    PasswordNeeded,
    #[error(
        "the private key could not be decrypted: check AZURE_CLIENT_CERTIFICATE_PASSWORD ({0})"
    )]
    Undecryptable(String),
    #[error("the PEM file is malformed: {0}")]
    Malformed(String),
    #[error("not a PEM file, and not a PFX/PKCS#12 file that AZURE_CLIENT_CERTIFICATE_PASSWORD opens ({0})")]
    Pkcs12(String),
    #[error("the PFX/PKCS#12 file holds no private key with its certificate")]
    Pkcs12Empty,
    #[error("the private key is not a usable RSA key: {0}")]
    NotRsa(String),
}

/// A certificate file's parts: its certificates (DER, in file order) and the private key.
struct CertificateParts {
    certificates: Vec<Vec<u8>>,
    key: ring::signature::RsaKeyPair,
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
    /// RSA).
    pub fn from_pem(pem: &str) -> Result<Self, CertificateError> {
        Self::from_file(pem.as_bytes(), None, false)
    }

    /// Reads what `AZURE_CLIENT_CERTIFICATE_PATH` points to, as the Azure SDKs do: a PEM with
    /// the certificate (first; any chain after it) and its private key — PKCS#8, encrypted
    /// PKCS#8 or PKCS#1 RSA — or a PFX/PKCS#12 file; `password` is
    /// `AZURE_CLIENT_CERTIFICATE_PASSWORD`. With `send_chain`, the assertion carries every
    /// certificate of the file in `x5c`.
    pub fn from_file(
        bytes: &[u8],
        password: Option<&Secret>,
        send_chain: bool,
    ) -> Result<Self, CertificateError> {
        let parts = match std::str::from_utf8(bytes) {
            Ok(text) if text.contains("-----BEGIN ") => pem_parts(text, password)?,
            _ => pkcs12_parts(bytes, password)?,
        };
        let leaf = parts
            .certificates
            .first()
            .ok_or(CertificateError::NoCertificate)?;
        let thumbprint =
            URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, leaf).as_ref());
        Ok(CertificateKey {
            key: std::sync::Arc::new(parts.key),
            thumbprint,
            not_after: super::x509::certificate_not_after(leaf),
            chain: send_chain.then(|| {
                parts
                    .certificates
                    .iter()
                    .map(|c| STANDARD.encode(c))
                    .collect()
            }),
        })
    }

    /// A client assertion for `authority`, valid for 10 minutes, with a fresh random `jti`.
    fn assertion(&self, authority: &Authority, now: UnixMillis) -> Result<String, AuthError> {
        let secs = now.0 / 1000;
        let mut header =
            serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint});
        if let Some(chain) = &self.chain {
            header["x5c"] = serde_json::json!(chain);
        }
        let claims = serde_json::json!({
            "aud": authority.token_url(), "iss": authority.client_id, "sub": authority.client_id,
            "jti": random_guid()?, "nbf": secs, "iat": secs, "exp": secs + 600,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
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
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(&signature)))
    }
}

/// The certificates and key of a PEM file; an encrypted PKCS#8 key (PBES2, as `openssl pkcs8
/// -topk8` writes it) is opened with `password`. The first key wins in this order: encrypted
/// PKCS#8, PKCS#8, PKCS#1 RSA.
fn pem_parts(pem: &str, password: Option<&Secret>) -> Result<CertificateParts, CertificateError> {
    let malformed =
        |e: pem::Error| CertificateError::Malformed(super::http::pem_error(&e, "certificate"));
    let certificates: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(malformed)?;
    if certificates.is_empty() {
        return Err(CertificateError::NoCertificate);
    }
    let not_rsa = |e: ring::error::KeyRejected| CertificateError::NotRsa(e.to_string());
    let key = if let Some(der) = encrypted_pkcs8(pem).map_err(malformed)? {
        let password = password.ok_or(CertificateError::PasswordNeeded)?;
        let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.secret_pkcs8_der())
            .map_err(|e| CertificateError::Undecryptable(e.to_string()))?;
        let plain = info
            .decrypt(password.expose().as_bytes())
            .map_err(|e| CertificateError::Undecryptable(e.to_string()))?;
        ring::signature::RsaKeyPair::from_pkcs8(plain.as_bytes()).map_err(not_rsa)?
    } else if let Some(der) =
        first_section::<PrivatePkcs8KeyDer>(pem.as_bytes()).map_err(malformed)?
    {
        ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(not_rsa)?
    } else if let Some(der) =
        first_section::<PrivatePkcs1KeyDer>(pem.as_bytes()).map_err(malformed)?
    {
        ring::signature::RsaKeyPair::from_der(der.secret_pkcs1_der()).map_err(not_rsa)?
    } else {
        return Err(CertificateError::NoKey);
    };
    Ok(CertificateParts { certificates, key })
}

/// The first PEM section of kind `T`, if any.
fn first_section<T: PemObject>(pem: &[u8]) -> Result<Option<T>, pem::Error> {
    T::pem_slice_iter(pem).next().transpose()
}

/// The first `ENCRYPTED PRIVATE KEY` section (an `EncryptedPrivateKeyInfo`, RFC 5958), if any.
/// rustls-pki-types reads only the sections a TLS stack loads and skips the others, this one
/// among them; its body is base64 DER like a `PRIVATE KEY`'s, so it is read from a copy where
/// it alone carries that label.
fn encrypted_pkcs8(pem: &str) -> Result<Option<PrivatePkcs8KeyDer<'static>>, pem::Error> {
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    if !pem.contains(BEGIN) {
        return Ok(None);
    }
    let only_encrypted = pem
        .replace(
            "-----BEGIN PRIVATE KEY-----",
            "-----BEGIN UNENCRYPTED PRIVATE KEY-----",
        )
        .replace(
            "-----END PRIVATE KEY-----",
            "-----END UNENCRYPTED PRIVATE KEY-----",
        )
        .replace(BEGIN, "-----BEGIN PRIVATE KEY-----")
        .replace(END, "-----END PRIVATE KEY-----");
    first_section(only_encrypted.as_bytes())
}

/// The key and its certificates of a PFX/PKCS#12 file (PBES2/AES as OpenSSL 3 writes it, or
/// the legacy 3DES/RC2 of Windows exports), opened with `password` (none: the empty one).
fn pkcs12_parts(
    bytes: &[u8],
    password: Option<&Secret>,
) -> Result<CertificateParts, CertificateError> {
    let password = password.map_or("", Secret::expose);
    let store = p12_keystore::KeyStore::from_pkcs12(
        bytes,
        password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|e| CertificateError::Pkcs12(e.to_string()))?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or(CertificateError::Pkcs12Empty)?;
    let key = ring::signature::RsaKeyPair::from_pkcs8(chain.key().as_der())
        .map_err(|e| CertificateError::NotRsa(e.to_string()))?;
    let certificates: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
    if certificates.is_empty() {
        return Err(CertificateError::Pkcs12Empty);
    }
    Ok(CertificateParts { certificates, key })
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
    /// `MSI_ENDPOINT` + `MSI_SECRET`: the 2017-09-01 protocol (the secret in a `secret`
    /// header, the identity in `clientid`), as Azure ML compute and older App Service hosts
    /// offer it (azure-identity for Python reads it so).
    MsiSecret {
        endpoint: String,
        secret: Secret,
        client_id: Option<String>,
    },
    /// `MSI_ENDPOINT` alone: Azure Cloud Shell (a POSTed form, `Metadata: true`), as
    /// azure-sdk-for-go's azidentity reads it; no user-assigned identity there.
    CloudShell { endpoint: String },
    /// Azure Arc-enabled servers: `IDENTITY_ENDPOINT` with `IMDS_ENDPOINT` set beside it. The
    /// endpoint answers 401 naming a key file the local agent wrote; the file's contents are
    /// the `Basic` credential of the second request. Only a file under [`ARC_KEY_DIR`] ending
    /// in `.key`, of at most 4096 bytes, is read (as the Azure SDKs check), so an endpoint
    /// cannot make the exporter read and send any other file.
    Arc { endpoint: String },
    /// VM / AKS node: the instance metadata service.
    Imds {
        endpoint: String,
        client_id: Option<String>,
    },
}

/// Where the Azure Connected Machine agent writes the key files of its challenges (Linux).
pub const ARC_KEY_DIR: &str = "/var/opt/azcmagent/tokens";

/// The largest Arc key file read (the Azure SDKs' limit).
const ARC_KEY_LIMIT: u64 = 4096;

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
            Credential::ManagedIdentity(ManagedIdentity::MsiSecret { .. }) => {
                "managed identity (MSI_ENDPOINT, 2017-09-01)"
            }
            Credential::ManagedIdentity(ManagedIdentity::CloudShell { .. }) => {
                "managed identity (Cloud Shell)"
            }
            Credential::ManagedIdentity(ManagedIdentity::Arc { .. }) => {
                "managed identity (Azure Arc)"
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
        let request = match self {
            Credential::ClientSecret { authority, secret } => {
                authority.client_credentials(http, scope, ClientProof::Secret(secret.expose()))
            }
            Credential::Certificate { authority, key } => {
                let assertion = key.assertion(authority, now)?;
                authority.client_credentials(http, scope, ClientProof::Assertion(&assertion))
            }
            Credential::WorkloadIdentity {
                authority,
                token_file,
            } => {
                let assertion = federated_token(token_file)?;
                let proof = ClientProof::Assertion(assertion.trim());
                authority.client_credentials(http, scope, proof)
            }
            Credential::ManagedIdentity(identity) => {
                identity
                    .token_request(http, scope.trim_end_matches("/.default"))
                    .await?
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
        token_from_response(status, &body, now)
    }
}

/// How an application proves itself in a client-credentials request.
enum ClientProof<'a> {
    Secret(&'a str),
    /// A JWT: signed with the certificate's key, or the federated token as read.
    Assertion(&'a str),
}

impl Authority {
    /// The client-credentials request (RFC 6749 §4.4) for `scope`.
    fn client_credentials(
        &self,
        http: &reqwest::Client,
        scope: &str,
        proof: ClientProof<'_>,
    ) -> reqwest::RequestBuilder {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
        ];
        match proof {
            ClientProof::Secret(secret) => form.push(("client_secret", secret)),
            ClientProof::Assertion(assertion) => form.extend([
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion),
            ]),
        }
        form.push(("scope", scope));
        http.post(self.token_url()).form(&form)
    }
}

/// `AZURE_FEDERATED_TOKEN_FILE`'s current token (the file rotates: read for every request).
fn federated_token(token_file: &std::path::Path) -> Result<String, AuthError> {
    crate::files::read_small_to_string(token_file).map_err(|e| AuthError::Rejected {
        code: "federated_token_unreadable".into(),
        description: format!(
            "cannot read AZURE_FEDERATED_TOKEN_FILE {}: {e}",
            token_file.display()
        ),
    })
}

impl ManagedIdentity {
    /// The token request for `resource`, in the protocol of the host's identity endpoint.
    async fn token_request(
        &self,
        http: &reqwest::Client,
        resource: &str,
    ) -> Result<reqwest::RequestBuilder, AuthError> {
        Ok(match self {
            ManagedIdentity::AppService {
                endpoint,
                header,
                client_id,
            } => {
                let mut query = vec![("resource", resource), ("api-version", "2019-08-01")];
                if let Some(id) = client_id {
                    query.push(("client_id", id));
                }
                http.get(endpoint)
                    .query(&query)
                    .header("X-IDENTITY-HEADER", header.expose())
            }
            ManagedIdentity::MsiSecret {
                endpoint,
                secret,
                client_id,
            } => {
                let mut query = vec![("api-version", "2017-09-01"), ("resource", resource)];
                if let Some(id) = client_id {
                    query.push(("clientid", id));
                }
                http.get(endpoint)
                    .query(&query)
                    .header("secret", secret.expose())
            }
            ManagedIdentity::CloudShell { endpoint } => http
                .post(endpoint)
                .header("Metadata", "true")
                .form(&[("resource", resource)]),
            ManagedIdentity::Arc { endpoint } => {
                let query = [("api-version", ARC_API_VERSION), ("resource", resource)];
                let key = arc_challenge(http.get(endpoint).query(&query)).await?;
                http.get(endpoint)
                    .query(&query)
                    .header("Metadata", "true")
                    .header("Authorization", format!("Basic {}", key.expose()))
            }
            ManagedIdentity::Imds {
                endpoint,
                client_id,
            } => {
                let mut query = vec![("api-version", "2018-02-01"), ("resource", resource)];
                if let Some(id) = client_id {
                    query.push(("client_id", id));
                }
                http.get(endpoint).query(&query).header("Metadata", "true")
            }
        })
    }
}

/// The token in a token endpoint's answer, or why there is none.
fn token_from_response(
    status: u16,
    body: &[u8],
    now: UnixMillis,
) -> Result<AccessToken, AuthError> {
    let parsed: Option<TokenResponse> = serde_json::from_slice(body).ok();
    match parsed {
        Some(TokenResponse {
            access_token: Some(token),
            expires_on,
            expires_in,
            ..
        }) if status == 200 => Ok(AccessToken {
            token: Secret(token),
            expires_at: token_expiry(number(&expires_on), number(&expires_in), now),
        }),
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

/// The Arc identity endpoint's API version (MSAL's AzureArcManagedIdentity uses it too).
const ARC_API_VERSION: &str = "2019-11-01";

/// The first Arc request: a 401 whose `WWW-Authenticate: Basic realm=<file>` names the key
/// file; its contents, when the file is where the agent writes them.
async fn arc_challenge(request: reqwest::RequestBuilder) -> Result<Secret, AuthError> {
    let refused = |description: String| AuthError::Rejected {
        code: "arc_challenge".into(),
        description,
    };
    let resp = request
        .header("Metadata", "true")
        .send()
        .await
        .map_err(|e| AuthError::Unreachable(without_url(&e)))?;
    if resp.status().as_u16() != 401 {
        return Err(refused(format!(
            "the Azure Arc identity endpoint answered {} where a 401 challenge was expected",
            resp.status().as_u16()
        )));
    }
    let header = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let path = header
        .rsplit_once('=')
        .map(|(_, p)| std::path::PathBuf::from(p.trim()))
        .ok_or_else(|| refused(format!("no key file in WWW-Authenticate {header:?}")))?;
    arc_key(&path).map_err(refused)
}

/// The Arc key file's contents, if `path` is a `.key` file directly under [`ARC_KEY_DIR`] of
/// at most [`ARC_KEY_LIMIT`] bytes.
fn arc_key(path: &std::path::Path) -> Result<Secret, String> {
    let allowed = path.parent() == Some(std::path::Path::new(ARC_KEY_DIR))
        && path.extension().is_some_and(|e| e == "key");
    if !allowed {
        return Err(format!(
            "the Azure Arc endpoint named {}, not a .key file in {ARC_KEY_DIR}: not read",
            path.display()
        ));
    }
    let size = std::fs::metadata(path)
        .map_err(|e| format!("Azure Arc key file {}: {e}", path.display()))?
        .len();
    if size > ARC_KEY_LIMIT {
        return Err(format!(
            "Azure Arc key file {} has {size} bytes, more than {ARC_KEY_LIMIT}",
            path.display()
        ));
    }
    crate::files::read_small_to_string(path)
        .map(|k| Secret::new(k.trim()))
        .map_err(|e| format!("Azure Arc key file {}: {e}", path.display()))
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
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
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
            let b = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
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

    /// The encrypted key is found beside a plain one (and wins over it, as before), and a
    /// file without one gives none; the plain sections are still read as themselves.
    #[test]
    fn the_encrypted_key_section_is_read_whatever_sits_beside_it() {
        let both = "-----BEGIN PRIVATE KEY-----\nAQID\n-----END PRIVATE KEY-----\n\
                    -----BEGIN ENCRYPTED PRIVATE KEY-----\nBAU=\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let der = |k: Option<PrivatePkcs8KeyDer<'_>>| k.map(|k| k.secret_pkcs8_der().to_vec());
        assert_eq!(der(encrypted_pkcs8(both).unwrap()), Some(vec![4, 5]));
        let plain = first_section::<PrivatePkcs8KeyDer>(both.as_bytes()).unwrap();
        assert_eq!(der(plain), Some(vec![1, 2, 3]));
        let only_plain = &both[..both.find("-----BEGIN ENCRYPTED").unwrap()];
        assert_eq!(der(encrypted_pkcs8(only_plain).unwrap()), None);
        let cut = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nBAU=\n";
        assert!(encrypted_pkcs8(cut).is_err());
        assert_eq!(
            CertificateKey::from_pem(both).unwrap_err().to_string(),
            "no CERTIFICATE block in the PEM file"
        );
    }

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
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap()
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
