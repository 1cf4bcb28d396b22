//! Corporate networks: the exporter's requests to Entra ID and the Power BI API, and its OTLP
//! pushes over gRPC, go through the proxy `HTTPS_PROXY` names unless `NO_PROXY` names the
//! host, and trust a corporate CA given by `SSL_CERT_FILE` or `SSL_CERT_DIR`, or mounted by the
//! Helm chart. Everything runs on loopback: the simulated tenant (or an OTLP/gRPC collector)
//! behind a TLS front whose certificate a test CA signed, and an HTTP CONNECT proxy written
//! here that records what it tunnels.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use powerbi_exporter::decode::UnixMillis;
use powerbi_exporter::rng::Rng;
use powerbi_exporter::simulator::api::{ApiConfig, SimulatedApi};
use powerbi_exporter::simulator::timeline::{Lag, Timeline};
use powerbi_exporter::simulator::{Tenant, TenantSpec};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_yaml_ng::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::otlp::wait_until;
use crate::otlp_receiver::{as_prometheus, canonical, Receiver, Transport};
use crate::support::*;
use crate::web::{pki, Pki};

const HOUR: i64 = 3_600_000;
const EVENTS: usize = 7;

/// A log of `EVENTS` events of the last two hours, all visible now.
fn log() -> Timeline {
    let now = UnixMillis::now();
    let tenant = Tenant::new(TenantSpec {
        seed: 5,
        workspaces: 2,
        users: 10,
    });
    let mut timeline = Timeline::new(tenant.clone(), 5, 0.0, Lag::default(), now);
    let mut rng = Rng::new(55);
    for _ in 0..EVENTS {
        let time = UnixMillis(now.0 - 2 * HOUR + rng.below(HOUR as u64) as i64);
        let mut json = Vec::new();
        tenant.write_event(&mut rng, time, &mut json);
        timeline.push(time, now, json);
    }
    timeline
}

/// The simulated tenant (API and token endpoint) behind TLS on 127.0.0.1, with a certificate
/// for `localhost` and 127.0.0.1 that the test CA signed.
struct Upstream {
    rt: tokio::runtime::Runtime,
    port: u16,
    /// TLS connections the front accepted.
    accepted: Arc<Mutex<usize>>,
    _api: SimulatedApi,
}

fn upstream(pki: &Pki) -> Upstream {
    powerbi_exporter::install_tls_provider();
    let rt = runtime();
    let front = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind the TLS front");
    let port = front.local_addr().unwrap().port();
    // Continuations point back at the front, the host the exporter was given.
    let config = ApiConfig {
        continuation_base: Some(format!("https://localhost:{port}")),
        ..ApiConfig::default()
    };
    let api = rt.block_on(SimulatedApi::start(config, log(), 0)).unwrap();
    let front = tls_front(&rt, front, server_tls(pki, Vec::new(), false), api.addr());
    Upstream {
        rt,
        port,
        accepted: front.accepted,
        _api: api,
    }
}

/// The TLS of a front: the test CA's certificate for `localhost` and 127.0.0.1, offering
/// `alpn`, and when `mutual` requiring a client certificate the test CA signed.
fn server_tls(pki: &Pki, alpn: Vec<Vec<u8>>, mutual: bool) -> rustls::ServerConfig {
    powerbi_exporter::install_tls_provider();
    let read = |name: &str| std::fs::read(pki.dir.path().join(name)).unwrap();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read("server.crt"))
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(&read("server.key")).unwrap();
    let builder = rustls::ServerConfig::builder();
    let builder = if mutual {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(&read("ca.crt")) {
            roots.add(ca.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut tls = builder.with_single_cert(certs, key).unwrap();
    tls.alpn_protocols = alpn;
    tls
}

/// A TLS front on `listener` (127.0.0.1) with `tls`, forwarding each connection it accepts in
/// plain to `backend`.
struct Front {
    port: u16,
    /// TLS connections the front accepted.
    accepted: Arc<Mutex<usize>>,
}

fn tls_front(
    rt: &tokio::runtime::Runtime,
    listener: TcpListener,
    tls: rustls::ServerConfig,
    backend: std::net::SocketAddr,
) -> Front {
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let accepted = Arc::new(Mutex::new(0));
    let count = accepted.clone();
    rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let count = count.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                *count.lock().unwrap() += 1;
                if let Ok(mut plain) = TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    Front { port, accepted }
}

impl Upstream {
    fn accepted(&self) -> usize {
        *self.accepted.lock().unwrap()
    }
}

/// An HTTP CONNECT proxy on 127.0.0.1 that records each request line and tunnels to its target.
struct Proxy {
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

/// How a test proxy answers a request, once it has its head.
#[derive(Clone, Copy)]
enum Answer {
    /// A CONNECT is tunnelled to its target.
    Tunnel,
    /// These bytes, then the connection is closed.
    Refuse(&'static [u8]),
    /// Nothing, with the connection held open until the client gives up.
    Silent,
}

fn connect_proxy(rt: &tokio::runtime::Runtime) -> Proxy {
    proxy_answering(rt, Answer::Tunnel)
}

/// A proxy on 127.0.0.1 that records each request line and refuses it with 407, as a proxy
/// wanting credentials the exporter was not given does.
fn refusing_proxy(rt: &tokio::runtime::Runtime) -> Proxy {
    let refusal = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
        Proxy-Authenticate: Basic realm=\"corporate\"\r\nContent-Length: 0\r\n\r\n";
    proxy_answering(rt, Answer::Refuse(refusal))
}

/// A proxy on 127.0.0.1 that records each request line and then never answers.
fn silent_proxy(rt: &tokio::runtime::Runtime) -> Proxy {
    proxy_answering(rt, Answer::Silent)
}

/// A proxy on 127.0.0.1 that records each request line and gives every request `answer`.
fn proxy_answering(rt: &tokio::runtime::Runtime, answer: Answer) -> Proxy {
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let log = lines.clone();
    rt.spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut client = BufReader::new(client);
                let mut request = String::new();
                if client.read_line(&mut request).await.is_err() {
                    return;
                }
                // The rest of the head, up to the empty line.
                loop {
                    let mut header = String::new();
                    match client.read_line(&mut header).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) if header == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let request = request.trim_end().to_string();
                log.lock().unwrap().push(request.clone());
                match answer {
                    Answer::Tunnel => {}
                    Answer::Refuse(refusal) => {
                        let _ = client.get_mut().write_all(refusal).await;
                        return;
                    }
                    Answer::Silent => {
                        let _ = client.read_to_end(&mut Vec::new()).await;
                        return;
                    }
                }
                let target = match request.split(' ').collect::<Vec<_>>()[..] {
                    ["CONNECT", target, _] => target.to_string(),
                    _ => {
                        let _ = client
                            .get_mut()
                            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                            .await;
                        return;
                    }
                };
                let Ok(mut upstream) = TcpStream::connect(target).await else {
                    let _ = client
                        .get_mut()
                        .write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                        .await;
                    return;
                };
                let mut client = client.into_inner();
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    Proxy { port, lines }
}

impl Proxy {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// The exporter's flags for the tenant behind `host:port` over HTTPS.
fn tenant_args(host: &str, port: u16) -> Vec<String> {
    let mut args = simulated_tenant_args(&format!("https://{host}:{port}"));
    args.extend(
        [
            "--powerbi.poll-interval",
            "1s",
            "--powerbi.lookback",
            "3h",
            "--powerbi.initial-lookback",
            "3h",
            "--powerbi.retry-delay",
            "20ms",
        ]
        .map(String::from),
    );
    args
}

/// The environment every run here sets, so that the caller's own proxy and CA settings never
/// leak in: no proxy, and roots from `cert_file` and `cert_dir` only.
fn environment(cert_file: &Path, cert_dir: &Path) -> Vec<(String, String)> {
    let path = |p: &Path| p.to_str().unwrap().to_string();
    [
        ("AZURE_CLIENT_SECRET", "simulated-secret".to_string()),
        ("SSL_CERT_FILE", path(cert_file)),
        ("SSL_CERT_DIR", path(cert_dir)),
        ("HTTPS_PROXY", String::new()),
        ("HTTP_PROXY", String::new()),
        ("ALL_PROXY", String::new()),
        ("https_proxy", String::new()),
        ("http_proxy", String::new()),
        ("all_proxy", String::new()),
        ("NO_PROXY", String::new()),
        ("no_proxy", String::new()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Sets `key` in `env` (replacing it).
fn set(env: &mut [(String, String)], key: &str, value: &str) {
    env.iter_mut().find(|(k, _)| k == key).unwrap().1 = value.to_string();
}

/// Runs the exporter until it has counted every event (`Ok`) or 15 s passed (`Err` with the
/// last scrape's self metrics).
fn run_exporter(args: &[String], env: &[(String, String)]) -> Result<(), BTreeMap<String, f64>> {
    let outcome = run_until(args, env, counted_everything);
    outcome.map(|_| ()).map_err(self_metrics)
}

fn counted_everything(s: &BTreeMap<String, f64>) -> bool {
    let counted: f64 = family(s, "powerbi_activity_events_total").values().sum();
    counted == EVENTS as f64 && s.get("powerbi_up") == Some(&1.0)
}

/// Runs the exporter until its failed sign-in is counted, and checks that its log says why:
/// the certificate, and the variables that fix it. Returns the self metrics then.
fn expect_refused(args: &[String], env: &[(String, String)]) -> BTreeMap<String, f64> {
    let mut log = Vec::new();
    let outcome = run_until_logging(args, env, &mut log, |s| {
        family(s, "powerbi_auth_errors_total").values().sum::<f64>() >= 1.0
    });
    let s = outcome.unwrap_or_else(|s| panic!("no failure counted: {:?}", self_metrics(s)));
    let counted: f64 = family(&s, "powerbi_activity_events_total").values().sum();
    assert_eq!(counted, 0.0, "events read from a server it must not trust");
    assert_eq!(s.get("powerbi_up"), Some(&0.0));
    assert!(
        log.iter()
            .any(|l| l.contains("certificate") && l.contains("SSL_CERT_FILE")),
        "the log does not say the certificate is not trusted:\n{}",
        log.join("\n")
    );
    self_metrics(s)
}

/// The scrape once `done` holds (`Ok`), or the last one after 15 s (`Err`).
fn run_until(
    args: &[String],
    env: &[(String, String)],
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> Result<BTreeMap<String, f64>, BTreeMap<String, f64>> {
    run_until_logging(args, env, &mut Vec::new(), done)
}

/// [`run_until`], keeping the exporter's log lines in `log`.
fn run_until_logging(
    args: &[String],
    env: &[(String, String)],
    log: &mut Vec<String>,
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> Result<BTreeMap<String, f64>, BTreeMap<String, f64>> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let exporter = Exporter::start_with_env(&args, &env);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = exporter.scrape();
        if done(&s) {
            // The line that reports the failure is written before the counter is scraped.
            std::thread::sleep(Duration::from_millis(200));
            log.extend(exporter.log.try_iter());
            return Ok(s);
        }
        if Instant::now() > deadline {
            return Err(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn self_metrics(s: BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    s.into_iter()
        .filter(|(k, _)| k.contains("error") || k.contains("requests") || k == "powerbi_up")
        .collect()
}

/// A directory with only `files` (name, contents).
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn a_corporate_ca_in_ssl_cert_file_or_ssl_cert_dir_is_trusted_and_nothing_else_is() {
    let pki = pki();
    let up = upstream(&pki);
    let args = tenant_args("localhost", up.port);
    // A CA that signed nothing here: the roots of a machine that does not know the test CA.
    let other = pki_other_ca();
    let other_dir = dir_with(&[("other.pem", &other)]);
    let empty = tempfile::tempdir().unwrap();

    // Without the CA: every request fails, and the failure is counted.
    let env = environment(&other_dir.path().join("other.pem"), empty.path());
    let refused = expect_refused(&args, &env);
    eprintln!("without the CA: {refused:?}");
    // Counted as what it is: the network works, the certificate is not trusted.
    let reason = |r: &str| {
        refused
            .get(&format!(r#"powerbi_auth_errors_total{{reason="{r}"}}"#))
            .copied()
    };
    assert!(reason("untrusted_certificate") >= Some(1.0), "{refused:?}");
    assert_eq!(reason("unreachable"), Some(0.0), "{refused:?}");

    // SSL_CERT_FILE names the CA's PEM file.
    let ca_file = pki.dir.path().join("ca.crt");
    let env = environment(&ca_file, empty.path());
    run_exporter(&args, &env).unwrap_or_else(|m| panic!("SSL_CERT_FILE: {m:?}"));

    // SSL_CERT_DIR names a directory holding it (beside a file of other roots).
    let ca_dir = dir_with(&[("corporate.pem", &pki.ca_pem)]);
    let env = environment(&other_dir.path().join("other.pem"), ca_dir.path());
    run_exporter(&args, &env).unwrap_or_else(|m| panic!("SSL_CERT_DIR: {m:?}"));
    assert!(up.accepted() >= 2, "{} TLS connections", up.accepted());
}

/// A self-signed CA certificate (PEM) unrelated to [`pki`]'s.
fn pki_other_ca() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "some other CA");
    params.self_signed(&key).unwrap().pem()
}

#[test]
fn requests_go_through_https_proxy_unless_no_proxy_names_the_host() {
    let pki = pki();
    let up = upstream(&pki);
    let proxy = connect_proxy(&up.rt);
    let empty = tempfile::tempdir().unwrap();
    let ca_file = pki.dir.path().join("ca.crt");

    // HTTPS_PROXY: the token request and every API request are tunnelled with CONNECT to the
    // host and port of the URL; TLS runs end to end through the tunnel (the CA still counts).
    // The proxy's password never reaches the log, even at debug level.
    let mut env = environment(&ca_file, empty.path());
    let password = "pr0xy-pa55-never-logged";
    set(
        &mut env,
        "HTTPS_PROXY",
        &proxy
            .url()
            .replace("://", &format!("://exporter:{password}@")),
    );
    let mut args = tenant_args("localhost", up.port);
    args.extend(["--log.level".to_string(), "debug".to_string()]);
    let mut log = Vec::new();
    run_until_logging(&args, &env, &mut log, counted_everything)
        .unwrap_or_else(|m| panic!("through the proxy: {:?}", self_metrics(m)));
    // The scan means something only if debug lines were written (how many depends on timing).
    assert!(
        log.iter().any(|l| l.contains("level=debug")),
        "no debug line: {log:?}"
    );
    assert!(log.iter().all(|l| !l.contains(password)), "{log:?}");
    set(&mut env, "HTTPS_PROXY", &proxy.url());
    let lines = proxy.lines();
    let expected = format!("CONNECT localhost:{} HTTP/1.1", up.port);
    assert!(!lines.is_empty(), "nothing went through the proxy");
    assert!(lines.iter().all(|l| *l == expected), "{lines:?}");
    // Every connection the server saw came through the proxy.
    assert_eq!(up.accepted(), lines.len());

    // Loopback addresses are not exempt by themselves (curl's rules, as reqwest applies them):
    // 127.0.0.1 goes through the proxy too unless NO_PROXY names it.
    run_exporter(&tenant_args("127.0.0.1", up.port), &env)
        .unwrap_or_else(|m| panic!("127.0.0.1 through the proxy: {m:?}"));
    let expected_ip = format!("CONNECT 127.0.0.1:{} HTTP/1.1", up.port);
    assert!(proxy.lines().contains(&expected_ip), "{:?}", proxy.lines());

    // NO_PROXY naming the host (or a domain suffix, or the IP): straight to the server.
    for (host, no_proxy) in [
        ("localhost", "localhost"),
        ("localhost", "example.com, .localhost, localhost"),
        ("127.0.0.1", "10.0.0.0/8,127.0.0.1"),
    ] {
        let before_proxy = proxy.lines().len();
        let before_server = up.accepted();
        set(&mut env, "NO_PROXY", no_proxy);
        run_exporter(&tenant_args(host, up.port), &env)
            .unwrap_or_else(|m| panic!("NO_PROXY={no_proxy}: {m:?}"));
        assert_eq!(proxy.lines().len(), before_proxy, "NO_PROXY={no_proxy}");
        assert!(up.accepted() > before_server);
    }
}

/// The Deployment's container among rendered objects.
fn container(objects: &[Value]) -> Value {
    objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("a Deployment")["spec"]["template"]["spec"]["containers"][0]
        .clone()
}

#[test]
fn the_charts_ca_bundle_makes_the_exporter_trust_the_ca() {
    let objects = crate::deploy::helm_template_values(
        "caBundle:\n  configMap: corporate-ca\n  key: corporate-root.pem\n",
    );
    let container = container(&objects);
    let pod = objects.iter().find(|o| o["kind"] == "Deployment").unwrap()["spec"]["template"]
        ["spec"]
        .clone();
    // The volume holds only the ConfigMap's key, under its own name.
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["configMap"]["name"] == "corporate-ca")
        .expect("the ConfigMap is a volume")
        .clone();
    let items = volume["configMap"]["items"].as_sequence().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["key"], "corporate-root.pem");
    let file_name = items[0]["path"].as_str().unwrap();
    let mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the volume is mounted")
        .clone();
    let mount_path = mount["mountPath"].as_str().unwrap();
    assert_eq!(mount["readOnly"], true);
    let env: BTreeMap<String, String> = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?.into(), e["value"].as_str()?.into())))
        .collect();
    assert_eq!(
        env.get("SSL_CERT_DIR").map(String::as_str),
        Some(mount_path),
        "{env:?}"
    );
    // The image's public roots stay trusted (distroless and Debian keep them there).
    let public_roots = env.get("SSL_CERT_FILE").expect("SSL_CERT_FILE");
    assert_eq!(public_roots, "/etc/ssl/certs/ca-certificates.crt");

    // The pod's view, on this machine: the mount is a directory with the bundle under the
    // item's path; the exporter gets the chart's variables with the mount path moved there.
    let pki = pki();
    let up = upstream(&pki);
    let mounted = dir_with(&[(file_name, &pki.ca_pem)]);
    let mut vars = environment(Path::new(public_roots), mounted.path());
    assert!(
        Path::new(public_roots).is_file(),
        "this machine has the public roots where the image has them"
    );
    set(
        &mut vars,
        "SSL_CERT_DIR",
        &env["SSL_CERT_DIR"].replace(mount_path, mounted.path().to_str().unwrap()),
    );
    run_exporter(&tenant_args("localhost", up.port), &vars)
        .unwrap_or_else(|m| panic!("with the chart's CA mount: {m:?}"));
    // And with the public roots alone (the chart without caBundle), the same server fails.
    let empty = tempfile::tempdir().unwrap();
    let vars = environment(Path::new(public_roots), empty.path());
    expect_refused(&tenant_args("localhost", up.port), &vars);
}

#[test]
fn proxy_and_ca_variables_that_cannot_work_exit_2_naming_them() {
    let base = simulated_tenant_args("https://localhost:1");
    let mut args = vec!["check-config"];
    args.extend(base.iter().map(String::as_str));
    let empty = tempfile::tempdir().unwrap();
    let not_pem = dir_with(&[("bundle.der", "\u{30}\u{82}binary")]);
    let not_pem_file = not_pem.path().join("bundle.der");
    let missing = empty.path().join("missing");
    let env = |pairs: &[(&str, &str)]| {
        let mut env = environment(&std::path::PathBuf::from(""), Path::new(""));
        for (k, v) in pairs {
            set(&mut env, k, v);
        }
        env
    };
    let run = |env: Vec<(String, String)>| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_with_env(&args, &env)
    };
    // Each of them alone (variable, value, what stderr must name), then all of them at once:
    // validation collects every problem.
    let missing = missing.to_str().unwrap();
    let cases = [
        (
            "HTTPS_PROXY",
            "socks5://user:hunter2@proxy.example:1080",
            &["socks5", "http://"][..],
        ),
        ("http_proxy", "http://", &["http://proxy.example:3128"]),
        ("SSL_CERT_FILE", missing, &["missing", "cannot be read"]),
        ("SSL_CERT_DIR", missing, &["not a readable directory"]),
        (
            "SSL_CERT_FILE",
            not_pem_file.to_str().unwrap(),
            &["no PEM certificate"],
        ),
    ];
    for (variable, value, named) in cases {
        let out = run(env(&[(variable, value)]));
        let mut needles = vec![variable];
        needles.extend(named);
        assert_exit_2_naming(&out, &needles);
        assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
    }
    // All at once (SSL_CERT_FILE once: the file that is not PEM).
    let all: Vec<(&str, &str)> = cases
        .iter()
        .filter(|(k, v, _)| !(*k == "SSL_CERT_FILE" && *v == missing))
        .map(|(k, v, _)| (*k, *v))
        .collect();
    assert_exit_2_naming(
        &run(env(&all)),
        &[
            "HTTPS_PROXY",
            "http_proxy",
            "SSL_CERT_DIR",
            "no PEM certificate",
        ],
    );
    // Good values pass: a proxy without a scheme is http (curl's rule), the CA file is PEM.
    let ca = dir_with(&[("ca.pem", &pki_other_ca())]);
    let good = env(&[
        ("HTTPS_PROXY", "user:pw-not-printed@proxy.example:3128"),
        ("NO_PROXY", ".svc,10.0.0.0/8"),
        ("SSL_CERT_FILE", ca.path().join("ca.pem").to_str().unwrap()),
        ("SSL_CERT_DIR", ca.path().to_str().unwrap()),
    ]);
    let out = run(good);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!format!("{}{}", stdout(&out), stderr(&out)).contains("pw-not-printed"));
}

/// An OTLP/gRPC "collector" behind a TLS front (HTTP/2 by ALPN) whose certificate the test CA
/// signed, for `localhost` and 127.0.0.1.
struct GrpcCollector {
    rt: tokio::runtime::Runtime,
    receiver: Receiver,
    front: Front,
}

fn grpc_collector(pki: &Pki) -> GrpcCollector {
    grpc_collector_with(pki, false)
}

/// [`grpc_collector`], requiring a client certificate the test CA signed when `mutual`.
fn grpc_collector_with(pki: &Pki, mutual: bool) -> GrpcCollector {
    let rt = runtime();
    let receiver = Receiver::start(Transport::Grpc);
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let backend = ([127, 0, 0, 1], receiver.port()).into();
    let tls = server_tls(pki, vec![b"h2".to_vec()], mutual);
    let front = tls_front(&rt, listener, tls, backend);
    GrpcCollector {
        rt,
        receiver,
        front,
    }
}

impl GrpcCollector {
    /// The endpoint of the TLS front.
    fn https(&self, host: &str) -> String {
        format!("https://{host}:{}", self.front.port)
    }
    fn pushes(&self) -> usize {
        self.receiver.metrics_requests().len()
    }
    fn accepted(&self) -> usize {
        *self.front.accepted.lock().unwrap()
    }
}

/// The test CA, a gRPC collector behind its TLS front, and an environment whose only root is
/// that CA, with no proxy. Keep the scene whole while the exporter runs: its CA file and the
/// empty directory the environment names as `SSL_CERT_DIR` are removed with it.
struct GrpcScene {
    collector: GrpcCollector,
    env: Vec<(String, String)>,
    pki: Pki,
    _empty: tempfile::TempDir,
}

fn grpc_scene() -> GrpcScene {
    let pki = pki();
    let collector = grpc_collector(&pki);
    let empty = tempfile::tempdir().unwrap();
    let env = environment(&pki.dir.path().join("ca.crt"), empty.path());
    GrpcScene {
        collector,
        env,
        pki,
        _empty: empty,
    }
}

/// Starts the exporter on the fixtures, pushing its metrics over gRPC to `endpoint` every
/// 200 ms, in `env` (an [`environment`]). Each push may take the default 10 s: a debug build's
/// TLS handshakes on a loaded machine must not fail a push that should succeed.
fn push_grpc(endpoint: &str, env: &[(String, String)]) -> Exporter {
    let mut env = env.to_vec();
    env.extend(
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Exporter::start_with_env(&["--replay", fixtures().to_str().unwrap()], &env)
}

fn export_errors(e: &Exporter) -> f64 {
    e.scrape()["powerbi_otlp_export_errors_total"]
}

/// Waits until `collector` has `more` pushes than `before`.
fn wait_for_pushes(collector: &GrpcCollector, before: usize, more: usize) {
    wait_until(Duration::from_secs(15), "pushes over gRPC", || {
        collector.pushes() >= before + more
    });
}

/// The exporter's log lines so far (a line written just before a counter moved included).
fn log_so_far(e: &Exporter) -> Vec<String> {
    std::thread::sleep(Duration::from_millis(200));
    e.log.try_iter().collect()
}

#[test]
fn grpc_pushes_trust_a_corporate_ca_in_ssl_cert_file_and_nothing_else() {
    let pki = pki();
    let collector = grpc_collector(&pki);
    let other_dir = dir_with(&[("other.pem", &pki_other_ca())]);
    let empty = tempfile::tempdir().unwrap();

    // Without the CA: no handshake completes, nothing arrives, and every push is counted as
    // failed: tried again at each interval, never a panic (/metrics still answers).
    let env = environment(&other_dir.path().join("other.pem"), empty.path());
    let e = push_grpc(&collector.https("localhost"), &env);
    wait_until(Duration::from_secs(20), "two failed pushes", || {
        export_errors(&e) >= 2.0
    });
    assert_eq!(collector.pushes(), 0);
    assert_eq!(collector.accepted(), 0);
    let log = log_so_far(&e);
    assert!(
        log.iter()
            .any(|l| l.contains("certificate is not trusted") && l.contains("SSL_CERT_FILE")),
        "the log does not say the certificate is not trusted:\n{}",
        log.join("\n")
    );
    drop(e);

    // SSL_CERT_FILE names the CA: every push arrives over TLS, and carries what /metrics shows.
    let env = environment(&pki.dir.path().join("ca.crt"), empty.path());
    let e = push_grpc(&collector.https("localhost"), &env);
    let events = |series: BTreeMap<String, f64>| -> BTreeMap<String, f64> {
        series
            .into_iter()
            .filter(|(k, _)| k.starts_with("powerbi_activity_events_total"))
            .collect()
    };
    // The replay is counted once its last file is read; then the values stay put.
    wait_until(Duration::from_secs(20), "the replay counted", || {
        log_so_far(&e).iter().any(|l| l.contains("Source finished"))
    });
    let scraped = events(canonical(&e.scrape()));
    wait_for_pushes(&collector, collector.pushes(), 2);
    let requests = collector.receiver.metrics_requests();
    let pushed = events(as_prometheus(requests.last().unwrap()));
    assert!(!scraped.is_empty(), "the replay was counted");
    assert_eq!(pushed, scraped);
    assert_eq!(export_errors(&e), 0.0);
    assert!(collector.accepted() >= 1);
}

#[test]
fn grpc_pushes_go_through_the_proxy_unless_no_proxy_names_the_host() {
    let mut scene = grpc_scene();
    let (pki, collector, env) = (&scene.pki, &scene.collector, &mut scene.env);
    let proxy = connect_proxy(&collector.rt);

    // HTTPS_PROXY, an https endpoint: a CONNECT tunnel to the collector's host and port, TLS
    // end to end inside it (the CA still counts), every connection through the proxy.
    set(env, "HTTPS_PROXY", &proxy.url());
    let e = push_grpc(&collector.https("localhost"), env);
    wait_for_pushes(collector, 0, 2);
    assert_eq!(export_errors(&e), 0.0);
    drop(e);
    let lines = proxy.lines();
    let expected = format!("CONNECT localhost:{} HTTP/1.1", collector.front.port);
    assert!(!lines.is_empty(), "nothing went through the proxy");
    assert!(lines.iter().all(|l| *l == expected), "{lines:?}");
    assert_eq!(collector.accepted(), lines.len());

    // HTTP_PROXY, a plaintext endpoint (reqwest's rule for http:// URLs): still a tunnel, as
    // HTTP/2 cannot be forwarded like a request.
    set(env, "HTTPS_PROXY", "");
    set(env, "HTTP_PROXY", &proxy.url());
    let before = collector.pushes();
    let e = push_grpc(&collector.receiver.endpoint(), env);
    wait_for_pushes(collector, before, 2);
    assert_eq!(export_errors(&e), 0.0);
    drop(e);
    let expected = format!("CONNECT 127.0.0.1:{} HTTP/1.1", collector.receiver.port());
    assert!(proxy.lines().contains(&expected), "{:?}", proxy.lines());

    // An https:// proxy: TLS to the proxy too (trusting the same roots), the collector's TLS
    // inside the tunnel.
    let listener = collector
        .rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let proxy_addr = ([127, 0, 0, 1], proxy.port).into();
    let tls_proxy = tls_front(
        &collector.rt,
        listener,
        server_tls(pki, Vec::new(), false),
        proxy_addr,
    );
    set(env, "HTTP_PROXY", "");
    set(
        env,
        "HTTPS_PROXY",
        &format!("https://localhost:{}", tls_proxy.port),
    );
    let (before, before_proxy) = (collector.pushes(), proxy.lines().len());
    let e = push_grpc(&collector.https("localhost"), env);
    wait_for_pushes(collector, before, 2);
    assert_eq!(export_errors(&e), 0.0);
    drop(e);
    let expected = format!("CONNECT localhost:{} HTTP/1.1", collector.front.port);
    let lines = proxy.lines();
    assert!(lines.len() > before_proxy, "{lines:?}");
    assert!(lines[before_proxy..].iter().all(|l| *l == expected));
    assert_eq!(
        *tls_proxy.accepted.lock().unwrap(),
        lines.len() - before_proxy
    );

    // NO_PROXY naming the host: straight to the collector.
    set(env, "HTTP_PROXY", "");
    set(env, "HTTPS_PROXY", &proxy.url());
    set(env, "NO_PROXY", "example.com,localhost");
    let (before, before_proxy, before_front) = (
        collector.pushes(),
        proxy.lines().len(),
        collector.accepted(),
    );
    let e = push_grpc(&collector.https("localhost"), env);
    wait_for_pushes(collector, before, 2);
    assert_eq!(export_errors(&e), 0.0);
    assert_eq!(proxy.lines().len(), before_proxy, "{:?}", proxy.lines());
    assert!(collector.accepted() > before_front);
}

#[test]
fn a_proxy_refusing_the_grpc_tunnel_fails_pushes_that_are_counted_and_tried_again() {
    let mut scene = grpc_scene();
    let (collector, env) = (&scene.collector, &mut scene.env);
    let proxy = refusing_proxy(&collector.rt);
    set(env, "HTTPS_PROXY", &proxy.url());
    let e = push_grpc(&collector.https("localhost"), env);
    wait_until(Duration::from_secs(20), "three failed pushes", || {
        export_errors(&e) >= 3.0
    });
    // Each failed push asked the proxy again; nothing reached the collector.
    let lines = proxy.lines();
    let expected = format!("CONNECT localhost:{} HTTP/1.1", collector.front.port);
    assert!(lines.len() >= 3, "{lines:?}");
    assert!(lines.iter().all(|l| *l == expected), "{lines:?}");
    assert_eq!(collector.accepted(), 0);
    assert_eq!(collector.pushes(), 0);
    let log = log_so_far(&e);
    assert!(
        log.iter()
            .any(|l| l.contains("proxy") && l.contains("authorization required")),
        "the log does not say the proxy refused:\n{}",
        log.join("\n")
    );
}

#[test]
fn grpc_pushes_add_the_otlp_ca_to_the_roots_and_present_the_client_certificate() {
    let pki = pki();
    let collector = grpc_collector_with(&pki, true);
    // The client's certificate and key as separate files, as the variables name them.
    let split = pki.client_pem.find("-----BEGIN PRIVATE KEY").unwrap();
    std::fs::write(pki.dir.path().join("client.crt"), &pki.client_pem[..split]).unwrap();
    std::fs::write(pki.dir.path().join("client.key"), &pki.client_pem[split..]).unwrap();
    let other_dir = dir_with(&[("other.pem", &pki_other_ca())]);
    let empty = tempfile::tempdir().unwrap();
    let file = |name: &str| pki.dir.path().join(name).to_str().unwrap().to_string();

    // SSL_CERT_FILE without the test CA: OTEL_EXPORTER_OTLP_CERTIFICATE adds it to the roots,
    // and the client certificate opens the mutual TLS.
    let mut env = environment(&other_dir.path().join("other.pem"), empty.path());
    env.push(("OTEL_EXPORTER_OTLP_CERTIFICATE".into(), file("ca.crt")));
    let with_ca = env.clone();
    env.push((
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE".into(),
        file("client.crt"),
    ));
    env.push(("OTEL_EXPORTER_OTLP_CLIENT_KEY".into(), file("client.key")));
    let e = push_grpc(&collector.https("localhost"), &env);
    wait_for_pushes(&collector, 0, 2);
    assert_eq!(export_errors(&e), 0.0);
    drop(e);

    // Without the client certificate the collector ends the handshake: nothing arrives, and
    // each push is counted as failed.
    let before = collector.pushes();
    let e = push_grpc(&collector.https("localhost"), &with_ca);
    wait_until(Duration::from_secs(20), "two failed pushes", || {
        export_errors(&e) >= 2.0
    });
    assert_eq!(collector.pushes(), before);
}

#[test]
fn a_proxy_that_never_answers_fails_each_grpc_push_within_the_otlp_timeout() {
    let mut scene = grpc_scene();
    let (collector, env) = (&scene.collector, &mut scene.env);
    let proxy = silent_proxy(&collector.rt);
    set(env, "HTTPS_PROXY", &proxy.url());
    // Each push gives up after 2 s and is counted (with the default 10 s, as the first did).
    env.push(("OTEL_EXPORTER_OTLP_TIMEOUT".into(), "2000".into()));
    let e = push_grpc(&collector.https("localhost"), env);
    wait_until(Duration::from_secs(20), "two failed pushes", || {
        export_errors(&e) >= 2.0
    });
    let expected = format!("CONNECT localhost:{} HTTP/1.1", collector.front.port);
    assert!(proxy.lines().contains(&expected), "{:?}", proxy.lines());
    assert_eq!(collector.pushes(), 0);
}

#[test]
fn events_forwarded_as_otlp_logs_over_grpc_go_through_the_proxy() {
    const N: usize = 30;
    let mut scene = grpc_scene();
    let (collector, env) = (&scene.collector, &mut scene.env);
    let proxy = connect_proxy(&collector.rt);
    let dir = tempfile::tempdir().unwrap();
    let events = crate::otlp::write_events(dir.path(), N);
    let state = dir.path().join("state");
    set(env, "HTTPS_PROXY", &proxy.url());
    env.extend(
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.https("localhost")),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
            ("OTEL_METRICS_EXPORTER", "none".into()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args = [
        "--replay",
        events.to_str().unwrap(),
        "--state.dir",
        state.to_str().unwrap(),
        "--otlp.logs",
    ];
    let e = Exporter::start_with_env(&args, &env);
    let records = || -> usize {
        let requests = collector.receiver.logs_requests();
        let batches = requests.iter().flat_map(|r| r.resource_logs.iter());
        let scopes = batches.flat_map(|r| r.scope_logs.iter());
        scopes.map(|s| s.log_records.len()).sum()
    };
    let forwarded = r#"powerbi_forwarded_events_total{sink="otlp_logs"}"#;
    wait_until(Duration::from_secs(20), "every event forwarded", || {
        sample_value(&e.scrape(), forwarded) == N as f64
    });
    assert_eq!(records(), N);
    let lines = proxy.lines();
    let expected = format!("CONNECT localhost:{} HTTP/1.1", collector.front.port);
    assert!(!lines.is_empty(), "nothing went through the proxy");
    assert!(lines.iter().all(|l| *l == expected), "{lines:?}");
    assert_eq!(collector.accepted(), lines.len());
}
