//! The Entra ID credential's settings (`azure.*` in the file, `--azure.*` flags and the Azure
//! SDKs' `AZURE_*`, `IDENTITY_*`, `MSI_*` variables): the tenant and client, which credential
//! proves them, the authority and the sovereign cloud. The live source and the Logs Ingestion
//! sink both read them (each for its own scope).
//!
//! Invariants:
//! - secrets come from the environment or from files only, never from a flag or the config
//!   file, and `describe` never prints one;
//! - the credential is picked the way the Azure SDKs' DefaultAzureCredential picks it, so the
//!   same variables mean the same here as in any other Azure tool.

use std::path::{Path, PathBuf};

use clap::Args;

use super::auth::{Authority, CertificateKey, Credential, ManagedIdentity, Secret, IMDS_ENDPOINT};
use super::cloud::Cloud;
use crate::config::{flag_pair, section, with_default, Description, Problems, Sourced};

section! {
    /// `azure:` of the config file.
    pub struct AzureFile("azure") {
        authority_host: String => "a URL",
        tenant_id: String => "a tenant id",
        client_id: String => "a client id",
        client_secret_file: PathBuf => "a file path",
        client_certificate_path: PathBuf => "a file path",
        federated_token_file: PathBuf => "a file path",
        managed_identity: bool => "true or false",
        cloud: String => Cloud::NAMES,
    }
}

/// The `--azure.*` flags (each also read from its Azure SDK variable); unset ones leave the
/// file's values.
#[derive(Debug, Args, Default)]
pub struct AzureFlags {
    #[arg(
        long = "azure.cloud",
        value_name = "CLOUD",
        env = "POWERBI_EXPORTER_AZURE_CLOUD",
        help = with_default(
            "Sovereign cloud: public, usgov, usgovhigh, usdod or china; sets the API URL, the token audience, the authority and the cluster hosts together",
            Cloud::default()
        )
    )]
    pub azure_cloud: Option<String>,

    #[arg(
        long = "azure.authority-host",
        value_name = "URL",
        env = "AZURE_AUTHORITY_HOST",
        help = with_default("Entra ID authority", format!("the cloud's, {}", Cloud::default().authority_host()))
    )]
    pub azure_authority_host: Option<String>,

    /// Entra ID tenant of the service principal.
    #[arg(long = "azure.tenant-id", value_name = "ID", env = "AZURE_TENANT_ID")]
    pub azure_tenant_id: Option<String>,

    /// Application (client) id of the service principal.
    #[arg(long = "azure.client-id", value_name = "ID", env = "AZURE_CLIENT_ID")]
    pub azure_client_id: Option<String>,

    /// File holding the client secret (e.g. a mounted Kubernetes Secret); otherwise the secret
    /// is read from AZURE_CLIENT_SECRET. There is no flag for the secret itself.
    #[arg(
        long = "azure.client-secret-file",
        value_name = "FILE",
        env = "AZURE_CLIENT_SECRET_FILE"
    )]
    pub azure_client_secret_file: Option<PathBuf>,

    /// PEM file with the client certificate and its private key, or a PFX/PKCS#12 file
    /// (AZURE_CLIENT_CERTIFICATE_PASSWORD opens an encrypted key or the PFX).
    #[arg(
        long = "azure.client-certificate-path",
        value_name = "FILE",
        env = "AZURE_CLIENT_CERTIFICATE_PATH"
    )]
    pub azure_client_certificate_path: Option<PathBuf>,

    /// Federated token file of a workload identity (AKS sets it); re-read for every token.
    #[arg(
        long = "azure.federated-token-file",
        value_name = "FILE",
        env = "AZURE_FEDERATED_TOKEN_FILE"
    )]
    pub azure_federated_token_file: Option<PathBuf>,

    /// Use the managed identity of the host (App Service / Container Apps through
    /// IDENTITY_ENDPOINT, MSI_ENDPOINT hosts, else the instance metadata service);
    /// AZURE_CLIENT_ID picks a user-assigned identity. Tried by itself when a tenant or client
    /// id is set without a secret, certificate or federated token (`=false` or
    /// `--no-azure.managed-identity` undoes the file's `true`).
    #[arg(
        long = "azure.managed-identity",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        overrides_with = "azure_no_managed_identity"
    )]
    pub azure_managed_identity: Option<bool>,

    #[arg(
        long = "no-azure.managed-identity",
        hide = true,
        overrides_with = "azure_managed_identity"
    )]
    pub azure_no_managed_identity: bool,

    #[arg(
        long = "azure.imds-endpoint",
        value_name = "URL",
        help = with_default("Token endpoint of the instance metadata service", IMDS_ENDPOINT)
    )]
    pub azure_imds_endpoint: Option<String>,
}

/// The credential's settings, the flags over the file, and what the environment adds; checked
/// when a component asks for the [`Credential`].
#[derive(Debug, Default, Clone)]
pub struct AzureSettings {
    /// `azure.cloud`, parsed by whoever uses it (a bad one is the live source's problem).
    pub cloud: Option<Sourced<String>>,
    pub authority_host: Option<Sourced<String>>,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub certificate_path: Option<PathBuf>,
    pub federated_token_file: Option<PathBuf>,
    pub managed_identity: bool,
    pub imds_endpoint: Option<String>,
    pub env: CredentialEnv,
}

/// What only the environment sets: secrets, and the endpoints a managed host provides.
#[derive(Debug, Default, Clone)]
pub struct CredentialEnv {
    /// `AZURE_CLIENT_SECRET`.
    pub client_secret: Option<Secret>,
    /// `AZURE_CLIENT_CERTIFICATE_PASSWORD`.
    pub certificate_password: Option<Secret>,
    /// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`.
    pub send_certificate_chain: bool,
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` (App Service, Container Apps).
    pub identity_endpoint: Option<(String, Secret)>,
    /// `MSI_ENDPOINT` (Cloud Shell, or with `MSI_SECRET` the 2017-09-01 protocol).
    pub msi_endpoint: Option<String>,
    /// `MSI_SECRET`.
    pub msi_secret: Option<Secret>,
    /// `IDENTITY_ENDPOINT` of an Azure Arc host (`IMDS_ENDPOINT` set, no `IDENTITY_HEADER`).
    pub arc_endpoint: Option<String>,
}

impl CredentialEnv {
    /// Secrets and host-provided endpoints, read from the process environment (Azure SDK names).
    pub fn read() -> CredentialEnv {
        let env = |name: &str| std::env::var(name).ok().filter(|s| !s.is_empty());
        CredentialEnv {
            client_secret: env("AZURE_CLIENT_SECRET").map(Secret::new),
            certificate_password: env("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(Secret::new),
            // azure-identity reads "true" or "1" (case-insensitive) as yes.
            send_certificate_chain: env("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")
                .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
            identity_endpoint: env("IDENTITY_ENDPOINT")
                .zip(env("IDENTITY_HEADER").map(Secret::new)),
            msi_endpoint: env("MSI_ENDPOINT"),
            // IDENTITY_ENDPOINT without IDENTITY_HEADER but with IMDS_ENDPOINT beside it: Arc.
            arc_endpoint: env("IDENTITY_ENDPOINT")
                .filter(|_| env("IDENTITY_HEADER").is_none() && env("IMDS_ENDPOINT").is_some()),
            msi_secret: env("MSI_SECRET").map(Secret::new),
        }
    }
}

impl AzureSettings {
    /// The flags over the file; the environment is added by [`AzureSettings::with_env`].
    pub fn layer(file: AzureFile, flags: &AzureFlags) -> AzureSettings {
        let value = |file: Option<Sourced<String>>, flag: &Option<String>| {
            flag.clone().or(file.map(|s| s.value))
        };
        let path = |file: Option<Sourced<PathBuf>>, flag: &Option<PathBuf>| {
            flag.clone().or(file.map(|s| s.value))
        };
        AzureSettings {
            cloud: Sourced::layer(file.cloud, flags.azure_cloud.clone(), "azure.cloud"),
            authority_host: Sourced::layer(
                file.authority_host,
                flags.azure_authority_host.clone(),
                "azure.authority-host",
            ),
            tenant_id: value(file.tenant_id, &flags.azure_tenant_id),
            client_id: value(file.client_id, &flags.azure_client_id),
            client_secret_file: path(file.client_secret_file, &flags.azure_client_secret_file),
            certificate_path: path(
                file.client_certificate_path,
                &flags.azure_client_certificate_path,
            ),
            federated_token_file: path(
                file.federated_token_file,
                &flags.azure_federated_token_file,
            ),
            managed_identity: flag_pair(
                flags.azure_managed_identity,
                flags.azure_no_managed_identity,
            )
            .or(file.managed_identity.map(|s| s.value))
            .unwrap_or(false),
            imds_endpoint: flags.azure_imds_endpoint.clone(),
            env: CredentialEnv::default(),
        }
    }

    /// These settings with what the environment says.
    pub fn with_env(self, env: CredentialEnv) -> AzureSettings {
        AzureSettings { env, ..self }
    }

    /// Whether anything asks for a tenant.
    pub fn requested(&self) -> bool {
        self.tenant_id.is_some() || self.client_id.is_some() || self.managed_identity
    }

    /// Whether the host offers a managed identity through its variables (IMDS cannot be told
    /// without asking it).
    pub fn on_managed_host(&self) -> bool {
        self.env.identity_endpoint.is_some()
            || self.env.msi_endpoint.is_some()
            || self.env.arc_endpoint.is_some()
    }

    /// The sovereign cloud; a bad name is reported, and the public cloud taken.
    pub fn cloud(&self, problems: &mut Problems) -> Cloud {
        match &self.cloud {
            None => Cloud::Public,
            Some(Sourced { value, origin }) => value.parse().unwrap_or_else(|e| {
                problems.push(format!("{origin} {value:?}: {e}"));
                Cloud::Public
            }),
        }
    }

    /// The sovereign cloud, or the public one when the name is bad (for a component that
    /// leaves reporting it to the live source).
    pub fn cloud_or_public(&self) -> Cloud {
        self.cloud
            .as_ref()
            .and_then(|c| c.value.parse().ok())
            .unwrap_or(Cloud::Public)
    }

    /// The authority, checked as an https URL; else the cloud's.
    pub fn checked_authority_host(&self, cloud: Cloud, problems: &mut Problems) -> String {
        https_url(
            self.authority_host.clone(),
            cloud.authority_host(),
            problems,
        )
    }

    /// Picks the credential the way the Azure SDKs' DefaultAzureCredential does — a client
    /// secret, else a client certificate, else a federated token file (the environment and
    /// workload identity credentials) — and else a managed identity, whether or not
    /// `--azure.managed-identity` asks for it.
    pub fn credential(
        &self,
        authority_host: String,
        problems: &mut Problems,
    ) -> Option<Credential> {
        let authority = |problems: &mut Problems| match (&self.tenant_id, &self.client_id) {
            (Some(tenant_id), Some(client_id)) => Some(Authority {
                host: authority_host.clone(),
                tenant_id: tenant_id.clone(),
                client_id: client_id.clone(),
            }),
            _ => {
                problems.push("a client secret, certificate or federated token needs both AZURE_TENANT_ID (--azure.tenant-id) and AZURE_CLIENT_ID (--azure.client-id)");
                None
            }
        };
        if let Some(path) = &self.client_secret_file {
            let secret = secret_file(path, problems)?;
            return Some(Credential::ClientSecret {
                authority: authority(problems)?,
                secret,
            });
        }
        if let Some(secret) = self.env.client_secret.clone() {
            return Some(Credential::ClientSecret {
                authority: authority(problems)?,
                secret,
            });
        }
        if let Some(path) = &self.certificate_path {
            let key = self.certificate(path, problems)?;
            return Some(Credential::Certificate {
                authority: authority(problems)?,
                key,
            });
        }
        if let Some(token_file) = self.federated_token_file.clone() {
            return Some(Credential::WorkloadIdentity {
                authority: authority(problems)?,
                token_file,
            });
        }
        Some(Credential::ManagedIdentity(self.managed_identity()))
    }

    /// The client certificate at `path`, opened with the environment's password.
    fn certificate(&self, path: &Path, problems: &mut Problems) -> Option<CertificateKey> {
        let shown = path.display();
        let bytes = crate::files::read_small(path)
            .map_err(|e| {
                problems.push(format!(
                    "AZURE_CLIENT_CERTIFICATE_PATH {shown}: cannot read it: {e}"
                ))
            })
            .ok()?;
        let password = self.env.certificate_password.as_ref();
        CertificateKey::from_file(&bytes, password, self.env.send_certificate_chain)
            .map_err(|e| problems.push(format!("AZURE_CLIENT_CERTIFICATE_PATH {shown}: {e}")))
            .ok()
    }

    /// The host's managed identity, found as azure-sdk-for-go's azidentity finds it:
    /// `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` (App Service, Container Apps), else
    /// `IDENTITY_ENDPOINT` + `IMDS_ENDPOINT` (Azure Arc), else `MSI_ENDPOINT`
    /// (with `MSI_SECRET` the 2017-09-01 protocol, as azure-identity for Python reads it;
    /// alone, Cloud Shell), else the instance metadata service. `AZURE_CLIENT_ID` picks a
    /// user-assigned identity.
    fn managed_identity(&self) -> ManagedIdentity {
        let client_id = self.client_id.clone();
        let env = self.env.clone();
        if let (None, Some(endpoint)) = (&env.identity_endpoint, env.arc_endpoint) {
            return ManagedIdentity::Arc { endpoint };
        }
        match (env.identity_endpoint, env.msi_endpoint, env.msi_secret) {
            (Some((endpoint, header)), _, _) => ManagedIdentity::AppService {
                endpoint,
                header,
                client_id,
            },
            (None, Some(endpoint), Some(secret)) => ManagedIdentity::MsiSecret {
                endpoint,
                secret,
                client_id,
            },
            (None, Some(endpoint), None) => ManagedIdentity::CloudShell { endpoint },
            (None, None, _) => ManagedIdentity::Imds {
                endpoint: self
                    .imds_endpoint
                    .clone()
                    .unwrap_or_else(|| IMDS_ENDPOINT.into()),
                client_id,
            },
        }
    }
}

/// The client secret held in `path`, without its line ending; an empty file is a problem.
fn secret_file(path: &Path, problems: &mut Problems) -> Option<Secret> {
    let what = "--azure.client-secret-file";
    let text = crate::files::read_small_to_string(path)
        .map_err(|e| problems.push(format!("{what} {}: cannot read it: {e}", path.display())))
        .ok()?;
    if text.trim().is_empty() {
        problems.push(format!("{what} {}: the file is empty", path.display()));
        return None;
    }
    Some(Secret::new(text.trim_end_matches(['\r', '\n'])))
}

/// `value` when it is an https URL (plain http only for loopback: a simulated tenant),
/// without its trailing slash; else `default`, and a bad one is reported.
pub fn https_url(value: Option<Sourced<String>>, default: &str, problems: &mut Problems) -> String {
    let Some(Sourced { value, origin }) = value else {
        return default.to_string();
    };
    match reqwest::Url::parse(&value) {
        Ok(u)
            if u.scheme() == "https"
                || (u.scheme() == "http"
                    && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))) =>
        {
            value.trim_end_matches('/').to_string()
        }
        _ => {
            problems.push(format!(
                "{origin} {value:?}: expected an https:// URL (plain http only for loopback)"
            ));
            default.to_string()
        }
    }
}

/// The `azure.*` lines of `check-config` for `credential`; the secret is redacted.
pub fn describe(credential: &Credential, out: &mut Description) {
    out.line("azure.credential", credential.kind());
    let authority = match credential {
        Credential::ClientSecret { authority, .. }
        | Credential::Certificate { authority, .. }
        | Credential::WorkloadIdentity { authority, .. } => authority,
        Credential::ManagedIdentity(_) => return,
    };
    out.line("azure.authority_host", &authority.host);
    out.line("azure.tenant_id", &authority.tenant_id);
    out.line("azure.client_id", &authority.client_id);
    match credential {
        Credential::ClientSecret { .. } => out.line("azure.client_secret", "<redacted>"),
        Credential::Certificate { key, .. } => {
            out.line("azure.certificate_thumbprint", &key.thumbprint)
        }
        Credential::WorkloadIdentity { token_file, .. } => {
            out.line("azure.federated_token_file", token_file.display())
        }
        Credential::ManagedIdentity(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Document;

    fn settings(yaml: &str, flags: &AzureFlags) -> AzureSettings {
        let mut problems = Problems::default();
        let doc = Document::parse(yaml, &["azure"], &mut problems);
        let settings = AzureSettings::layer(doc.section(&mut problems), flags);
        assert_eq!(problems, Problems::default());
        settings
    }

    #[test]
    fn the_flag_switches_off_the_files_managed_identity() {
        let yaml = "azure: {managed_identity: true}\n";
        assert!(settings(yaml, &AzureFlags::default()).managed_identity);
        let off = AzureFlags {
            azure_no_managed_identity: true,
            ..AzureFlags::default()
        };
        assert!(!settings(yaml, &off).managed_identity);
        let off = AzureFlags {
            azure_managed_identity: Some(false),
            ..AzureFlags::default()
        };
        assert!(!settings(yaml, &off).requested());
    }

    #[test]
    fn the_secret_never_appears_in_the_description() {
        let credential = Credential::ClientSecret {
            authority: Authority {
                host: "https://login.example".into(),
                tenant_id: "t".into(),
                client_id: "c".into(),
            },
            secret: Secret::new("s3cret-value"),
        };
        let mut out = Description::default();
        describe(&credential, &mut out);
        let text = out.finish();
        assert!(!text.contains("s3cret-value"), "{text}");
        assert!(text.contains("azure.client_secret: <redacted>\n"), "{text}");
    }

    #[test]
    fn a_bad_cloud_names_its_origin() {
        let flags = AzureFlags {
            azure_cloud: Some("germany".into()),
            ..AzureFlags::default()
        };
        let mut problems = Problems::default();
        assert_eq!(settings("", &flags).cloud(&mut problems), Cloud::Public);
        assert_eq!(
            problems.0,
            ["flag --azure.cloud \"germany\": expected one of public, usgov, usgovhigh, usdod, china"]
        );
    }
}
