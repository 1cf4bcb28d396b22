use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use powerbi_exporter::decode::UnixMillis;
use powerbi_exporter::rng::Rng;
use powerbi_exporter::simulator::timeline::{Lag, Timeline};
use powerbi_exporter::simulator::{Tenant, TenantSpec};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_powerbi-exporter");

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replay")
}

/// Runs the binary to its end.
pub fn run(args: &[&str]) -> Output {
    run_with_env(args, &[])
}

/// Runs the binary to its end with extra environment variables.
pub fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("POWERBI_EXPORTER_PSEUDONYM_KEY")
        .envs(env.iter().copied())
        .output()
        .expect("running powerbi-exporter")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts that the command exited 2 (bad flags or configuration) and said each of `needles`.
#[track_caller]
pub fn assert_exit_2_naming(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every sample of an exposition: `name{labels}` as written → value.
pub fn samples(exposition: &str) -> BTreeMap<String, f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad sample line {l:?}"));
            (
                series.to_string(),
                value
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {l:?}")),
            )
        })
        .collect()
}

/// The value of the sample `name` in a scrape, 0 when it has none.
pub fn sample_value(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    samples.get(name).copied().unwrap_or(0.0)
}

/// Samples of one family (by metric name), keyed by their label text.
pub fn family(samples: &BTreeMap<String, f64>, name: &str) -> BTreeMap<String, f64> {
    samples
        .iter()
        .filter_map(|(k, v)| {
            let labels = k.strip_prefix(name)?;
            (labels.is_empty() || labels.starts_with('{')).then(|| (labels.to_string(), *v))
        })
        .collect()
}

/// Path of promtool. `.ci/run` installs it; a missing one is a set-up error, not a skip.
pub fn promtool() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("promtool"))
            .find(|p| p.is_file())
    });
    found.expect("promtool not found: run the README's test command (it installs Debian's `prometheus` package)")
}

/// A running exporter; stopped (SIGTERM, then kill) when dropped.
pub struct Exporter {
    pub child: Child,
    pub addr: String,
    pub log: mpsc::Receiver<String>,
    /// Log lines up to and including "Listening.".
    pub startup_log: Vec<String>,
}

impl Exporter {
    /// Starts the binary on 127.0.0.1:0 and waits for its "Listening." line.
    pub fn start(args: &[&str]) -> Exporter {
        Self::start_with_env(args, &[])
    }

    /// Starts the binary with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Exporter {
        let mut child = Command::new(BIN)
            .args(args)
            .args(["--web.listen-address", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .env_remove("POWERBI_EXPORTER_PSEUDONYM_KEY")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting powerbi-exporter");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Owned by the guard first: a failed wait below still stops the child.
        let mut exporter = Exporter {
            child,
            addr: String::new(),
            log: rx,
            startup_log: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while exporter.addr.is_empty() {
            let line = exporter
                .log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|e| {
                    panic!(
                        "no Listening. line within 20s ({e}): {:#?}",
                        exporter.startup_log
                    )
                });
            if line.contains("msg=Listening.") {
                let addr = line
                    .split(' ')
                    .find_map(|kv| kv.strip_prefix("address="))
                    .expect("address in the Listening line");
                exporter.addr = addr.to_string();
            }
            exporter.startup_log.push(line);
        }
        exporter
    }

    /// Starts the exporter on `args` with the simulated tenant's client secret ([`SECRET`]).
    pub fn start_with_secret(args: &[String]) -> Exporter {
        Self::start_with_env(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            &[SECRET],
        )
    }

    /// Waits until `/-/ready` answers 200 (at most 30 s).
    pub fn wait_ready(&self) {
        // A debug build of the demo serializes its simulated hours before it serves a page:
        // 8–13 s on the 2-core machine while other tests run, 22 s with a 2-hour backfill while
        // a build runs beside them, 47 s at a load of 4.5, and over 30 s once in a clean-clone
        // CI run. Unoptimized serde_json and slice checks are most of it (perf); a release
        // build takes 2 s. Waiting longer costs nothing when it is ready sooner.
        self.wait_ready_within(Duration::from_secs(120))
    }

    /// Waits until `/-/ready` answers 200, at most `limit`.
    pub fn wait_ready_within(&self, limit: Duration) {
        let client = http();
        let deadline = Instant::now() + limit;
        while client
            .get(self.url("/-/ready"))
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
            != 200
        {
            assert!(Instant::now() < deadline, "not ready within {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The current exposition's samples.
    pub fn scrape(&self) -> BTreeMap<String, f64> {
        samples(
            &http()
                .get(self.url("/metrics"))
                .send()
                .unwrap()
                .text()
                .unwrap(),
        )
    }

    /// Scrapes every 100 ms until `done` holds, failing with `why` of the last scrape after
    /// `limit`; returns the scrape that satisfied `done`.
    pub fn scrape_until(
        &self,
        limit: Duration,
        done: impl Fn(&BTreeMap<String, f64>) -> bool,
        why: impl Fn(&BTreeMap<String, f64>) -> String,
    ) -> BTreeMap<String, f64> {
        let deadline = Instant::now() + limit;
        let mut s = self.scrape();
        while !done(&s) {
            assert!(Instant::now() < deadline, "{}", why(&s));
            std::thread::sleep(Duration::from_millis(100));
            s = self.scrape();
        }
        s
    }

    /// Status code of a GET of `path`.
    pub fn status(&self, path: &str) -> u16 {
        http().get(self.url(path)).send().unwrap().status().as_u16()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("exporter did not stop within 15s of SIGTERM");
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the exporter's log so far: no panic, and the Retry-After of `asked` seconds logged as
/// clamped to an hour.
pub fn assert_retry_after_clamp_logged(e: &Exporter, asked: u64) {
    let log: Vec<String> = e.log.try_iter().collect();
    assert!(!log.iter().any(|l| l.contains("panicked")), "{log:#?}");
    assert!(
        log.iter().any(|l| l.contains("Retry-After")
            && l.contains(&format!("asked_seconds={asked}"))
            && l.contains("max_seconds=3600")),
        "the clamp is logged: {log:#?}"
    );
}

/// The client secret the simulated tenant accepts, as the environment variable that carries it.
pub const SECRET: (&str, &str) = ("AZURE_CLIENT_SECRET", "simulated-secret");

/// `n` events of the tenant `spec` at random times over the `hours` before now, all visible already.
pub fn visible_history(spec: TenantSpec, rng_seed: u64, n: usize, hours: i64) -> Timeline {
    const HOUR: i64 = 3_600_000;
    let now = UnixMillis::now();
    let tenant = Tenant::new(spec);
    let mut timeline = Timeline::new(tenant.clone(), spec.seed, 0.0, Lag::default(), now);
    let mut rng = Rng::new(rng_seed);
    for _ in 0..n {
        let time =
            UnixMillis(now.0 - hours * HOUR + rng.below((hours * HOUR) as u64 - 60_000) as i64);
        let mut json = Vec::new();
        tenant.write_event(&mut rng, time, &mut json);
        timeline.push(time, now, json);
    }
    timeline
}

/// The flags that point the exporter at a simulated tenant served at `base_url` (its token
/// endpoint too); the client secret goes in `AZURE_CLIENT_SECRET`.
pub fn simulated_tenant_args(base_url: &str) -> Vec<String> {
    let sim = powerbi_exporter::simulator::api::ApiConfig::default();
    [
        "--powerbi.api-url",
        base_url,
        "--azure.authority-host",
        base_url,
        "--azure.tenant-id",
        &sim.tenant_id,
        "--azure.client-id",
        &sim.client_id,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn http() -> reqwest::blocking::Client {
    powerbi_exporter::install_tls_provider();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap()
}

/// A small tokio runtime for the simulated API a test starts in its own process.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A `/proc/<pid>/status` memory field in KiB (`VmRSS`, `VmHWM`). Panics when it cannot be
/// read: a memory bound checked against 0 would pass without measuring anything.
#[track_caller]
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {path}: {e}"))
        .and_then(|text| status_field_kib(&text, field))
        .unwrap_or_else(|e| panic!("no memory measurement: {e}"))
}

/// A memory field of a `/proc/<pid>/status` text in KiB; an error when the field is missing
/// (a process that has exited has none), not a number, or 0 (a running process has pages).
pub fn status_field_kib(status: &str, field: &str) -> Result<u64, String> {
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .ok_or_else(|| format!("no {field} line"))?;
    match value.trim().trim_end_matches("kB").trim().parse() {
        Ok(0) => Err(format!("{field} is 0")),
        Ok(kib) => Ok(kib),
        Err(_) => Err(format!("{field} is not a number of kB: {value:?}")),
    }
}

/// A Prometheus server, killed when dropped.
pub struct Prometheus(pub Child, pub String);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Prometheus with the shipped rules and `scrape_configs` (YAML list items).
pub fn prometheus_with(scrape_configs: &str, dir: &Path) -> Prometheus {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/rules/alerts.yaml");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{rules:?}]\nscrape_configs:\n{scrape_configs}"
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={address}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian package, installed by scripts/test.sh)");
    let server = Prometheus(child, format!("http://{address}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while http()
        .get(format!("{}/-/ready", server.1))
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "prometheus not ready within 30s");
        std::thread::sleep(Duration::from_millis(200));
    }
    server
}

pub fn query(server: &Prometheus, expr: &str) -> Value {
    let resp = http()
        .get(format!("{}/api/v1/query", server.1))
        .query(&[("query", expr)])
        .send()
        .unwrap();
    serde_json::from_str(&resp.text().unwrap()).unwrap()
}

/// Grafana's variables, as an instant query over the last hour would see them, with the job,
/// tenant and exporter chosen as `job`, `tenant`, `instance` (".*" is All).
pub fn substitute_with(expr: &str, job: &str, tenant: &str, instance: &str) -> String {
    [
        ("$__rate_interval", "1m"),
        ("$__range", "1h"),
        ("$__interval", "1m"),
        ("$job", job),
        ("$tenant", tenant),
        ("$instance", instance),
        ("$workspace", ".*"),
        ("$activity", ".*"),
    ]
    .iter()
    .fold(expr.to_string(), |e, (var, value)| e.replace(var, value))
}

/// Waits until Prometheus has 5 scrapes of the exporter's counters (for increase() and rate()).
pub fn wait_for_scrapes(server: &Prometheus) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while query(
        server,
        "min(count_over_time(powerbi_events_processed_total[1m]))",
    )["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        < 5.0
    {
        assert!(
            Instant::now() < deadline,
            "prometheus did not get 5 scrapes in 30s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `powerbi_api_requests_total` answered with `code`, whatever their purpose.
pub fn api_requests_with_code(samples: &BTreeMap<String, f64>, code: &str) -> f64 {
    let prefix = format!(r#"{{code="{code}","#);
    family(samples, "powerbi_api_requests_total")
        .iter()
        .filter(|(labels, _)| labels.starts_with(&prefix))
        .map(|(_, v)| v)
        .sum()
}

/// Asserts that `promtool check metrics` finds nothing to say about `body` (text format 0.0.4).
pub fn promtool_check_metrics(body: &str) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
