//! Credentials as the Azure SDKs take them, each kind against the simulator's loopback token
//! endpoint: a password-protected certificate (encrypted PKCS#8 PEM, PFX/PKCS#12), the
//! certificate chain in `x5c`, the `MSI_ENDPOINT` managed identities, a managed identity
//! tried by itself when no secret, certificate or federated token is configured, and the
//! cloud from the environment.
//!
//! Test files are made here by the `openssl` CLI, and every expected value (thumbprints, the
//! `x5c` chain) is computed by openssl, not by the exporter's code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use powerbi_exporter::simulator::api::{ApiConfig, SimulatedApi, TrustedCertificate};

use crate::live::{certificate, counts_with_credential, late_log, live_args, openssl};
use crate::support::{assert_exit_2_naming, run_with_env, runtime, sample_value, Exporter};

const PASSWORD: &str = "pässword with spaces";

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A simulated tenant that trusts `trusted`, with the given extra settings.
fn tenant_trusting(rt: &tokio::runtime::Runtime, config: ApiConfig) -> SimulatedApi {
    rt.block_on(SimulatedApi::start(config, late_log(6, 1), 0))
        .unwrap()
}

/// Waits until the exporter counts an `invalid_client` refusal.
fn refused(e: &Exporter, what: &str) {
    e.scrape_until(
        Duration::from_secs(20),
        |s| sample_value(s, r#"powerbi_auth_errors_total{reason="invalid_client"}"#) >= 1.0,
        |_| format!("{what} was not refused"),
    );
}

/// The args of a live run against `api`, as `&str`s.
fn args(api: &SimulatedApi) -> Vec<String> {
    live_args(api, "200")
}

#[test]
fn an_encrypted_pkcs8_key_opens_with_azure_client_certificate_password() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (_, trusted) = certificate(dir.path(), "c");
    let encrypted = dir.path().join("c.enc.key");
    // PBES2 with AES-256-CBC and PBKDF2 (openssl's default for -topk8 with a password).
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        p(&dir.path().join("c.key")),
        "-passout",
        &format!("pass:{PASSWORD}"),
        "-out",
        p(&encrypted),
    ]);
    let key_text = std::fs::read_to_string(&encrypted).unwrap();
    assert!(
        key_text.contains("BEGIN ENCRYPTED PRIVATE KEY"),
        "{key_text}"
    );
    let pem = dir.path().join("c.enc.pem");
    std::fs::write(
        &pem,
        std::fs::read_to_string(dir.path().join("c.crt")).unwrap() + &key_text,
    )
    .unwrap();
    let api = tenant_trusting(
        &rt,
        ApiConfig {
            certificate: Some(trusted),
            ..ApiConfig::default()
        },
    );
    counts_with_credential(
        &api,
        &[],
        &[
            ("AZURE_CLIENT_CERTIFICATE_PATH", p(&pem)),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", PASSWORD),
        ],
    );
    // Without the password, or with a wrong one, the configuration is refused (exit 2) and the
    // message names the variable; the password itself is never printed.
    let args = args(&api);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_with_env(&args, &[("AZURE_CLIENT_CERTIFICATE_PATH", p(&pem))]);
    assert_exit_2_naming(&out, &["AZURE_CLIENT_CERTIFICATE_PASSWORD", p(&pem)]);
    let out = run_with_env(
        &args,
        &[
            ("AZURE_CLIENT_CERTIFICATE_PATH", p(&pem)),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "wrong-guess-123"),
        ],
    );
    assert_exit_2_naming(&out, &["AZURE_CLIENT_CERTIFICATE_PASSWORD", p(&pem)]);
    assert!(!crate::support::stderr(&out).contains("wrong-guess-123"));
}

#[test]
fn a_pfx_file_opens_with_its_password_in_the_current_and_the_legacy_encryption() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (_, trusted) = certificate(dir.path(), "c");
    let api = tenant_trusting(
        &rt,
        ApiConfig {
            certificate: Some(trusted),
            ..ApiConfig::default()
        },
    );
    let (crt, key) = (dir.path().join("c.crt"), dir.path().join("c.key"));
    let pass = format!("pass:{PASSWORD}");
    // OpenSSL 3's default (PBES2: PBKDF2-SHA256 + AES-256-CBC, SHA-256 MAC), and the legacy
    // 3DES + SHA-1 MAC that Windows' certificate export still writes.
    let modern = dir.path().join("modern.pfx");
    openssl(&[
        "pkcs12",
        "-export",
        "-in",
        p(&crt),
        "-inkey",
        p(&key),
        "-passout",
        &pass,
        "-out",
        p(&modern),
    ]);
    let legacy = dir.path().join("legacy.p12");
    openssl(&[
        "pkcs12",
        "-export",
        "-in",
        p(&crt),
        "-inkey",
        p(&key),
        "-passout",
        &pass,
        "-certpbe",
        "PBE-SHA1-3DES",
        "-keypbe",
        "PBE-SHA1-3DES",
        "-macalg",
        "sha1",
        "-out",
        p(&legacy),
    ]);
    for pfx in [&modern, &legacy] {
        counts_with_credential(
            &api,
            &[],
            &[
                ("AZURE_CLIENT_CERTIFICATE_PATH", p(pfx)),
                ("AZURE_CLIENT_CERTIFICATE_PASSWORD", PASSWORD),
            ],
        );
    }
    let args = args(&api);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_with_env(
        &args,
        &[
            ("AZURE_CLIENT_CERTIFICATE_PATH", p(&modern)),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "not-it"),
        ],
    );
    assert_exit_2_naming(&out, &["AZURE_CLIENT_CERTIFICATE_PASSWORD", p(&modern)]);
}

/// A CA and a leaf certificate it signed, in one PEM with the leaf's key (leaf, CA, key), and
/// what the tenant knows: the leaf's key and thumbprint, and the chain as `x5c` (standard
/// base64 of each certificate's DER, leaf first: RFC 7515 §4.1.6), all computed by openssl.
fn chain(dir: &Path) -> (PathBuf, TrustedCertificate, Vec<String>) {
    let f = |n: &str| dir.join(n);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        p(&f("ca.key")),
        "-out",
        p(&f("ca.crt")),
        "-days",
        "2",
        "-subj",
        "/CN=test issuing CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        p(&f("leaf.key")),
        "-out",
        p(&f("leaf.csr")),
        "-subj",
        "/CN=powerbi-exporter.example",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        p(&f("leaf.csr")),
        "-CA",
        p(&f("ca.crt")),
        "-CAkey",
        p(&f("ca.key")),
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        p(&f("leaf.crt")),
    ]);
    let der_base64 = |name: &str| {
        let der = f(&format!("{name}.der"));
        openssl(&[
            "x509",
            "-in",
            p(&f(&format!("{name}.crt"))),
            "-outform",
            "DER",
            "-out",
            p(&der),
        ]);
        openssl(&["base64", "-A", "-in", p(&der)])
            .trim()
            .to_string()
    };
    let x5c = vec![der_base64("leaf"), der_base64("ca")];
    openssl(&[
        "rsa",
        "-in",
        p(&f("leaf.key")),
        "-RSAPublicKey_out",
        "-outform",
        "DER",
        "-out",
        p(&f("leaf.pub")),
    ]);
    openssl(&[
        "dgst",
        "-sha256",
        "-binary",
        "-out",
        p(&f("leaf.sha256")),
        p(&f("leaf.der")),
    ]);
    let thumbprint_sha256 = openssl(&["base64", "-A", "-in", p(&f("leaf.sha256"))])
        .trim()
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_");
    let pem = f("chain.pem");
    let read = |n: &str| std::fs::read_to_string(f(n)).unwrap();
    std::fs::write(&pem, read("leaf.crt") + &read("ca.crt") + &read("leaf.key")).unwrap();
    let trusted = TrustedCertificate {
        public_key: std::fs::read(f("leaf.pub")).unwrap(),
        thumbprint_sha256,
    };
    (pem, trusted, x5c)
}

/// Subject name/issuer authentication: the app trusts the issuer, so the assertion must carry
/// the chain in `x5c`; `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=true` sends it, as in the Azure SDKs.
#[test]
fn the_certificate_chain_goes_in_x5c_when_asked() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (pem, trusted, x5c) = chain(dir.path());
    let api = tenant_trusting(
        &rt,
        ApiConfig {
            certificate: Some(trusted),
            required_x5c: Some(x5c),
            ..ApiConfig::default()
        },
    );
    counts_with_credential(
        &api,
        &[],
        &[
            ("AZURE_CLIENT_CERTIFICATE_PATH", p(&pem)),
            ("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "true"),
        ],
    );
    let args = args(&api);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = Exporter::start_with_env(&args, &[("AZURE_CLIENT_CERTIFICATE_PATH", p(&pem))]);
    refused(&e, "an assertion without x5c");
}

/// `MSI_ENDPOINT` with `MSI_SECRET`: the 2017-09-01 managed-identity protocol (header `secret`),
/// and `MSI_ENDPOINT` alone: Cloud Shell (a POSTed form with `Metadata: true`), as
/// azure-sdk-for-go's azidentity and azure-identity for Python read them. No
/// `--azure.managed-identity` flag: with a tenant and client id but no secret, certificate or
/// federated token, the managed identity is tried by itself (DefaultAzureCredential's order).
#[test]
fn msi_endpoint_identities_are_tried_by_themselves() {
    let rt = runtime();
    let api = tenant_trusting(
        &rt,
        ApiConfig {
            msi_secret: Some("msi-secret-value".into()),
            ..ApiConfig::default()
        },
    );
    let endpoint = format!("{}/msi2017/token", api.base_url());
    counts_with_credential(
        &api,
        &[],
        &[
            ("MSI_ENDPOINT", &endpoint),
            ("MSI_SECRET", "msi-secret-value"),
        ],
    );
    let cloud_shell = format!("{}/cloudshell/token", api.base_url());
    counts_with_credential(&api, &[], &[("MSI_ENDPOINT", &cloud_shell)]);
    // IMDS and IDENTITY_ENDPOINT + IDENTITY_HEADER, without the flag too.
    let imds = format!("{}/metadata/identity/oauth2/token", api.base_url());
    counts_with_credential(&api, &["--azure.imds-endpoint", &imds], &[]);
    let api2 = tenant_trusting(
        &rt,
        ApiConfig {
            identity_header: Some("h".into()),
            ..ApiConfig::default()
        },
    );
    let app_service2 = format!("{}/msi/token", api2.base_url());
    counts_with_credential(
        &api2,
        &[],
        &[
            ("IDENTITY_ENDPOINT", &app_service2),
            ("IDENTITY_HEADER", "h"),
        ],
    );
    let tokens: Vec<(String, u16)> = api
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("token"))
        .map(|r| (r.path, r.status))
        .collect();
    assert!(
        tokens.contains(&("/msi2017/token".to_string(), 200))
            && tokens.contains(&("/cloudshell/token".to_string(), 200))
            && tokens.contains(&("/metadata/identity/oauth2/token".to_string(), 200)),
        "{tokens:?}"
    );
    // A wrong MSI_SECRET is refused by the endpoint and counted.
    let args = args(&api);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = Exporter::start_with_env(
        &args,
        &[("MSI_ENDPOINT", &endpoint), ("MSI_SECRET", "stale")],
    );
    e.scrape_until(
        Duration::from_secs(20),
        |s| {
            crate::support::family(s, "powerbi_auth_errors_total")
                .values()
                .sum::<f64>()
                >= 1.0
        },
        |_| "a wrong MSI_SECRET was not refused".into(),
    );
}

/// `POWERBI_EXPORTER_AZURE_CLOUD` sets `--azure.cloud`: API, audience and authority together.
#[test]
fn the_cloud_comes_from_the_environment_too() {
    let out = run_with_env(
        &[
            "check-config",
            "--azure.tenant-id",
            "t",
            "--azure.client-id",
            "c",
        ],
        &[
            ("AZURE_CLIENT_SECRET", "s"),
            ("POWERBI_EXPORTER_AZURE_CLOUD", "usgovhigh"),
        ],
    );
    let text = crate::support::stdout(&out);
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    // Values of the Power BI national-clouds documentation (reference §9.6).
    for want in [
        "https://api.high.powerbigov.us",
        "https://high.analysis.usgovcloudapi.net/powerbi/api/.default",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    let out = run_with_env(
        &[
            "check-config",
            "--azure.tenant-id",
            "t",
            "--azure.client-id",
            "c",
        ],
        &[
            ("AZURE_CLIENT_SECRET", "s"),
            ("POWERBI_EXPORTER_AZURE_CLOUD", "mars"),
        ],
    );
    assert_exit_2_naming(&out, &["azure.cloud", "mars"]);
}

/// A key file where the Azure Connected Machine agent writes them, removed on drop.
struct ArcKeyFile(PathBuf);

impl ArcKeyFile {
    fn new(key: &str) -> ArcKeyFile {
        let dir = Path::new(powerbi_exporter::azure::auth::ARC_KEY_DIR);
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("{} (the tests run as root): {e}", dir.display()));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = dir.join(format!(
            "powerbi-exporter-test-{}-{nanos}.key",
            std::process::id()
        ));
        std::fs::write(&path, key).unwrap();
        ArcKeyFile(path)
    }
}

impl Drop for ArcKeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Azure Arc: `IDENTITY_ENDPOINT` with `IMDS_ENDPOINT` beside it (azure-sdk-for-go's
/// azidentity, managed_identity_client.go). The endpoint's 401 names a key file in
/// `WWW-Authenticate: Basic realm=<file>`; its contents go back as `Authorization: Basic`.
/// A realm outside the agent's directory is not read, so its contents never leave.
#[test]
fn azure_arc_answers_its_key_file_challenge_and_nothing_else_is_read() {
    let rt = runtime();
    let key = ArcKeyFile::new("arc-key-0123456789abcdef");
    let api = tenant_trusting(
        &rt,
        ApiConfig {
            arc_key: Some((p(&key.0).to_string(), "arc-key-0123456789abcdef".into())),
            ..ApiConfig::default()
        },
    );
    let endpoint = format!("{}/arc/token", api.base_url());
    let env = [
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        ("IMDS_ENDPOINT", "http://127.0.0.1:9/unused"),
    ];
    counts_with_credential(&api, &[], &env);
    let arc: Vec<u16> = api
        .requests()
        .into_iter()
        .filter(|r| r.path == "/arc/token")
        .map(|r| r.status)
        .collect();
    assert_eq!(&arc[..2], [401, 200], "challenge, then the token: {arc:?}");

    // An endpoint that names some other file gets nothing.
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("not-a-key.key");
    std::fs::write(&elsewhere, "private-contents").unwrap();
    let api = tenant_trusting(
        &rt,
        ApiConfig {
            arc_key: Some((p(&elsewhere).to_string(), "private-contents".into())),
            ..ApiConfig::default()
        },
    );
    let endpoint = format!("{}/arc/token", api.base_url());
    let args = args(&api);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = Exporter::start_with_env(
        &args,
        &[
            ("IDENTITY_ENDPOINT", endpoint.as_str()),
            ("IMDS_ENDPOINT", "http://127.0.0.1:9/unused"),
        ],
    );
    e.scrape_until(
        Duration::from_secs(20),
        |s| sample_value(s, r#"powerbi_auth_errors_total{reason="rejected"}"#) >= 1.0,
        |_| "the foreign realm was not refused".into(),
    );
    assert!(
        api.requests()
            .iter()
            .filter(|r| r.path == "/arc/token")
            .all(|r| r.status == 401),
        "the file outside the agent's directory was sent"
    );
}

/// The Logs Ingestion sink takes the host's managed identity by itself too, whichever
/// variable names it (it needs no tenant or client id).
#[test]
fn logs_ingestion_finds_every_host_identity() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let args = [
        "check-config",
        "--demo",
        "--state.dir",
        state,
        "--logs-ingestion.endpoint",
        "https://dce.example.ingest.monitor.azure.com",
        "--logs-ingestion.dcr-id",
        "dcr-0123",
    ];
    for (env, kind) in [
        (
            vec![
                ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi"),
                ("IDENTITY_HEADER", "h"),
            ],
            "managed identity (App Service)",
        ),
        (
            vec![
                ("MSI_ENDPOINT", "http://127.0.0.1:9/msi"),
                ("MSI_SECRET", "s"),
            ],
            "managed identity (MSI_ENDPOINT, 2017-09-01)",
        ),
        (
            vec![("MSI_ENDPOINT", "http://127.0.0.1:9/msi")],
            "managed identity (Cloud Shell)",
        ),
        (
            vec![
                ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/arc"),
                ("IMDS_ENDPOINT", "http://127.0.0.1:9"),
            ],
            "managed identity (Azure Arc)",
        ),
    ] {
        let out = run_with_env(&args, &env);
        let err = crate::support::stderr(&out);
        assert!(out.status.success(), "{env:?}: {err}");
        let text = crate::support::stdout(&out);
        assert!(
            text.contains(&format!("logs_ingestion.credential: {kind}")),
            "{env:?}: {text}"
        );
    }
}
