//! The protected web face: `--web.config.file` (TLS, client certificates, basic auth, headers,
//! reload) and `--web.max-requests`, against the real binary over 127.0.0.1 with certificates
//! generated here by rcgen and a rustls client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::support::{
    assert_exit_2_naming, family, fixtures, http, run, samples, stderr, Exporter,
};

/// A CA, a server certificate for 127.0.0.1 signed by it, a client certificate signed by it,
/// and a client certificate signed by nobody the server trusts.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub client_pem: String,
    pub rogue_pem: String,
}

pub fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca, &ca_key);

    let leaf = |names: Vec<String>,
                usage: ExtendedKeyUsagePurpose,
                issuer: Option<&Issuer<'_, &KeyPair>>| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, "leaf");
        params.extended_key_usages = vec![usage];
        let cert = match issuer {
            Some(i) => params.signed_by(&key, i).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(
        vec!["127.0.0.1".into(), "localhost".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
        Some(&issuer),
    );
    let (client_cert, client_key) = leaf(
        vec!["scraper".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
        Some(&issuer),
    );
    let (rogue_cert, rogue_key) = leaf(
        vec!["scraper".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.crt"), &server_cert).unwrap();
    std::fs::write(dir.path().join("server.key"), &server_key).unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca_cert.pem()).unwrap();
    Pki {
        dir,
        ca_pem: ca_cert.pem(),
        client_pem: format!("{client_cert}{client_key}"),
        rogue_pem: format!("{rogue_cert}{rogue_key}"),
    }
}

fn tls_client(pki: &Pki, identity: Option<&str>) -> reqwest::blocking::Client {
    powerbi_exporter::install_tls_provider();
    let mut b = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()]);
    if let Some(pem) = identity {
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

fn write_web_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("web.yml");
    // Written aside and renamed, as config management does, so the watcher never reads half.
    let tmp = dir.join("web.yml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn start_replay(extra: &[&str]) -> Exporter {
    let fixtures = fixtures();
    let mut args = vec!["--replay", fixtures.to_str().unwrap()];
    args.extend_from_slice(extra);
    Exporter::start(&args)
}

#[test]
fn tls_with_required_client_certificates() {
    let pki = pki();
    // Relative paths: resolved against the web config's directory, as in the toolkit.
    let config = write_web_config(
        pki.dir.path(),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\n",
    );
    let exporter = start_replay(&["--web.config.file", config.to_str().unwrap()]);
    let https = format!("https://{}/metrics", exporter.addr);

    let trusted = tls_client(&pki, Some(&pki.client_pem));
    // Served at once, and the replay's counts once its first file is read (a loaded CI
    // machine once scraped before that).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = trusted.get(&https).send().expect("mTLS scrape");
        assert_eq!(resp.status().as_u16(), 200);
        if resp
            .text()
            .unwrap()
            .contains("powerbi_activity_events_total{")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the replay not served in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }

    assert!(
        tls_client(&pki, None).get(&https).send().is_err(),
        "no client certificate"
    );
    assert!(
        tls_client(&pki, Some(&pki.rogue_pem))
            .get(&https)
            .send()
            .is_err(),
        "a client certificate from an unknown CA"
    );
    assert!(
        http().get(exporter.url("/metrics")).send().is_err(),
        "plain HTTP"
    );

    let text = trusted.get(&https).send().unwrap().text().unwrap();
    let rejected = family(&samples(&text), "powerbi_web_rejections_total");
    assert_eq!(rejected["{reason=\"tls_handshake\"}"], 3.0);
    assert_eq!(rejected["{reason=\"unauthorized\"}"], 0.0);
    let reload = family(&samples(&text), "powerbi_web_config_last_reload_successful");
    assert_eq!(reload[""], 1.0);
}

#[test]
fn tls_without_client_certificates_serves_any_client_that_trusts_the_server() {
    let pki = pki();
    let config = write_web_config(
        pki.dir.path(),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n",
    );
    let exporter = start_replay(&["--web.config.file", config.to_str().unwrap()]);
    let resp = tls_client(&pki, None)
        .get(format!("https://{}/-/healthy", exporter.addr))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
}

fn basic(client: &reqwest::blocking::Client, url: &str, user: &str, pw: &str) -> u16 {
    client
        .get(url)
        .basic_auth(user, Some(pw))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn auth_config(dir: &Path, user: &str, password: &str) -> PathBuf {
    let hash = bcrypt::hash(password, 4).unwrap();
    write_web_config(
        dir,
        &format!("basic_auth_users:\n  {user}: '{hash}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n"),
    )
}

#[test]
fn basic_auth_accepts_only_the_right_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = auth_config(dir.path(), "prometheus", "correct horse");
    let hash = std::fs::read_to_string(&config).unwrap();
    let hash = hash.split('\'').nth(1).unwrap().to_string();
    let mut exporter = start_replay(&[
        "--web.config.file",
        config.to_str().unwrap(),
        "--log.level",
        "debug",
    ]);
    let client = http();
    let url = exporter.url("/metrics");

    let denied = client.get(&url).send().unwrap();
    assert_eq!(denied.status().as_u16(), 401);
    assert_eq!(
        denied.headers()["www-authenticate"],
        "Basic realm=\"powerbi-exporter\""
    );
    assert_eq!(
        denied.headers()["x-frame-options"],
        "deny",
        "headers on every answer"
    );
    assert_eq!(basic(&client, &url, "prometheus", "wrong"), 401);
    assert_eq!(basic(&client, &url, "nobody", "correct horse"), 401);
    assert_eq!(
        client
            .get(exporter.url("/-/healthy"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        401
    );

    let ok = client
        .get(&url)
        .basic_auth("prometheus", Some("correct horse"))
        .send()
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.headers()["x-content-type-options"], "nosniff");
    let text = ok.text().unwrap();
    let rejected = family(&samples(&text), "powerbi_web_rejections_total");
    assert_eq!(rejected["{reason=\"unauthorized\"}"], 4.0);
    assert!(!text.contains("correct horse") && !text.contains(&hash));
    exporter.terminate();
    let log: Vec<String> = exporter.log.try_iter().collect();
    assert!(!log.is_empty(), "the log was read");
    for line in &log {
        assert!(
            !line.contains("correct horse") && !line.contains(&hash),
            "a secret in the log: {line}"
        );
    }
}

/// Polls `check` every 100 ms for up to 10 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 10s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn web_config_reloads_good_files_and_keeps_the_old_one_on_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = auth_config(dir.path(), "prometheus", "first");
    let exporter = start_replay(&["--web.config.file", config.to_str().unwrap()]);
    let client = http();
    let url = exporter.url("/metrics");
    assert_eq!(basic(&client, &url, "prometheus", "first"), 200);

    auth_config(dir.path(), "prometheus", "second");
    eventually("the new password accepted", || {
        basic(&client, &url, "prometheus", "second") == 200
    });
    assert_eq!(basic(&client, &url, "prometheus", "first"), 401);

    write_web_config(dir.path(), "basic_auth_users:\n  prometheus: not-a-hash\n");
    let reload_ok = |client: &reqwest::blocking::Client| {
        let text = client
            .get(&url)
            .basic_auth("prometheus", Some("second"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        family(&samples(&text), "powerbi_web_config_last_reload_successful")[""]
    };
    eventually("the failed reload reported", || reload_ok(&client) == 0.0);
    assert_eq!(
        basic(&client, &url, "prometheus", "second"),
        200,
        "old settings kept"
    );
    let log: Vec<String> = exporter.log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("keeping the previous one")
            && l.contains("basic_auth_users.prometheus: not a bcrypt hash")),
        "the reason is logged: {log:#?}"
    );

    auth_config(dir.path(), "prometheus", "third");
    eventually("the third password accepted", || {
        basic(&client, &url, "prometheus", "third") == 200
    });
    let text = client
        .get(&url)
        .basic_auth("prometheus", Some("third"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let ok = family(&samples(&text), "powerbi_web_config_last_reload_successful");
    assert_eq!(
        ok[""], 1.0,
        "a good file after a bad one clears the failure"
    );
}

#[test]
fn a_bad_web_config_at_start_exits_2_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = fixtures();
    let cases = [
        ("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n", "nope.crt"),
        ("basic_auth_user:\n  a: b\n", "unknown field `basic_auth_user`"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n",
            "",
        ),
    ];
    for (text, needle) in cases {
        let config = write_web_config(dir.path(), text);
        let out = run(&[
            "--replay",
            fixtures.to_str().unwrap(),
            "--web.config.file",
            config.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = stderr(&out);
        assert!(
            err.contains("flag --web.config.file") && err.contains(needle),
            "{err}"
        );
    }
    let out = run(&[
        "--replay",
        fixtures.to_str().unwrap(),
        "--web.config.file",
        "/nonexistent/web.yml",
    ]);
    assert_exit_2_naming(&out, &["/nonexistent/web.yml: cannot read it"]);
}

/// A replay whose exposition is tens of megabytes, so a client that does not read holds its
/// scrape for as long as it likes.
fn big_replay(dir: &Path, reports: usize) -> PathBuf {
    let path = dir.join("big.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..reports {
        writeln!(
            out,
            r#"{{"Id":"00000000-0000-0000-0000-{i:012}","Activity":"ViewReport","CreationTime":"2026-11-20T10:00:00","UserId":"u@example.com","WorkspaceId":"11111111-1111-1111-1111-111111111111","ReportId":"22222222-2222-2222-2222-{i:012}","ReportName":"A report with a long name so that the exposition is large {i:012}"}}"#
        )
        .unwrap();
    }
    out.flush().unwrap();
    path
}

#[test]
fn max_requests_refuses_scrapes_beyond_the_limit_until_slots_free_up() {
    let dir = tempfile::tempdir().unwrap();
    let replay = big_replay(dir.path(), 60_000);
    let exporter = Exporter::start(&[
        "--replay",
        replay.to_str().unwrap(),
        "--web.max-requests",
        "2",
        "--limits.max-series",
        "powerbi_report_events_total=100000",
        "--limits.max-series",
        "powerbi_report_info=100000",
    ]);
    exporter.wait_ready();
    let client = http();
    eventually("every event applied", || {
        exporter
            .scrape()
            .get("powerbi_events_processed_total")
            .copied()
            == Some(60_000.0)
    });

    // Two scrapers that read the status line and then stop reading.
    let mut stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(&exporter.addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200");
            s
        })
        .collect();
    let refused = client.get(exporter.url("/metrics")).send().unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(
        refused.text().unwrap(),
        "Limit of concurrent scrapes reached (2); try again later.\n"
    );
    assert_eq!(
        exporter.status("/-/healthy"),
        200,
        "only scrapes are limited"
    );

    stalled.clear();
    eventually("a slot free again", || exporter.status("/metrics") == 200);
    let rejected = family(&exporter.scrape(), "powerbi_web_rejections_total");
    assert!(rejected["{reason=\"max_requests\"}"] >= 1.0);
}

/// `powerbi-exporter healthcheck` against `addr` with the web config; its exit code.
fn healthcheck(addr: &str, config: &Path) -> Option<i32> {
    run(&[
        "healthcheck",
        "--web.listen-address",
        addr,
        "--web.config.file",
        config.to_str().unwrap(),
    ])
    .status
    .code()
}

#[test]
fn the_container_health_check_works_behind_tls_client_certificates_and_basic_auth() {
    let pki = pki();
    let hash = bcrypt::hash("pw", 4).unwrap();
    for (tls, auth) in [
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
            "",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
            "basic_auth_users:\n  prom: 'HASH'\n",
        ),
        ("", "basic_auth_users:\n  prom: 'HASH'\n"),
    ] {
        let text = format!("{tls}{}", auth.replace("HASH", &hash));
        let config = write_web_config(pki.dir.path(), &text);
        let mut exporter = start_replay(&["--web.config.file", config.to_str().unwrap()]);
        let addr = exporter.addr.clone();
        assert_eq!(healthcheck(&addr, &config), Some(0), "alive with {text}");
        exporter.terminate();
        assert_eq!(healthcheck(&addr, &config), Some(1), "stopped, with {text}");
    }
}
