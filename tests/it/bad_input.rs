use crate::support::*;

#[test]
fn an_unreadable_replay_path_is_a_clear_error() {
    let out = run(&["--once", "--replay", "/nonexistent/archive"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("cannot read replay path /nonexistent/archive: No such file or directory"),
        "{}",
        stderr(&out)
    );
    let empty = tempfile::tempdir().unwrap();
    let out = run(&["--once", "--replay", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("contains no .json, .jsonl or .ndjson files"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn invalid_and_truncated_files_fail_the_run_but_lose_no_event() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-not-json.json"), "hello, world").unwrap();
    let e = |n: u32| {
        format!(
            r#"{{"Id":"t{n}","CreationTime":"2026-11-20T10:00:0{n}","Activity":"ViewReport","WorkspaceId":"w"}}"#
        )
    };
    std::fs::write(
        dir.path().join("b-truncated.json"),
        format!(
            r#"{{"activityEventEntities":[{},{},{{"Id":"t3","Crea"#,
            e(1),
            e(2)
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("c-good.jsonl"), format!("{}\n", e(4))).unwrap();
    let out = run(&["--once", "--replay", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("2 document(s) could not be read to their end"),
        "{err}"
    );
    assert!(
        err.contains("a-not-json.json: invalid JSON at byte 0: expected '[' or '{'"),
        "{err}"
    );
    assert!(
        err.contains("b-truncated.json: truncated: the data ends at byte"),
        "{err}"
    );
    let s = samples(&stdout(&out));
    assert_eq!(
        s[r#"powerbi_activity_events_total{workspace_id="w",activity="ViewReport"}"#], 3.0,
        "t1, t2 and t4 counted"
    );
    assert_eq!(s["powerbi_pages_failed_total"], 2.0);
    assert_eq!(s["powerbi_pages_processed_total"], 1.0);
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let out = run(&["--web.listen-adress", ":1"]);
    assert_exit_2_naming(&out, &["--web.listen-adress"]);
    let out = run(&["--demo", "--log.level", "loud"]);
    assert_exit_2_naming(&out, &["invalid value 'loud' for '--log.level <LEVEL>'"]);
    let out = run(&["--once", "--demo"]);
    assert_exit_2_naming(&out, &["flag --once needs --replay PATH"]);
    let out = run(&[]);
    assert_exit_2_naming(&out, &["no source configured: pass --demo"]);
    let out = run(&["--demo.api-only"]);
    assert_exit_2_naming(&out, &["--demo"]);
    let out = run(&["--demo", "--dedup.window", "30m"]);
    assert_exit_2_naming(&out, &["flag --dedup.window 30m: must be at least 1h"]);
}

#[test]
fn only_a_simulated_tenant_may_be_read_faster_than_the_apis_200_an_hour() {
    let live = |url: &str, per_hour: &str| {
        run_with_env(
            &[
                "check-config",
                "--powerbi.api-url",
                url,
                "--azure.tenant-id",
                "t",
                "--azure.client-id",
                "c",
                "--powerbi.max-requests-per-hour",
                per_hour,
            ],
            &[("AZURE_CLIENT_SECRET", "s")],
        )
    };
    let out = live("https://api.powerbi.com", "201");
    assert_exit_2_naming(
        &out,
        &["flag --powerbi.max-requests-per-hour 201: expected 1 to 200"],
    );
    let out = live("http://127.0.0.1:9", "10000");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("powerbi.max_requests_per_hour: 10000"));
    let out = live("http://127.0.0.1:9", "100001");
    assert_exit_2_naming(&out, &["expected 1 to 100000 for a simulated tenant"]);
}

#[test]
fn a_bad_config_file_lists_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(&path, "web:\n  listen_address: nowhere\nlog:\n  levle: debug\ndemo:\n  enabled: yes please\nlimits:\n  max_series:\n    powerbi_report_events_total: -1\n").unwrap();
    let out = run(&[
        "--config.file",
        path.to_str().unwrap(),
        "--dedup.window",
        "5x",
    ]);
    assert_exit_2_naming(
        &out,
        &[
            "config key `web.listen_address` \"nowhere\": expected HOST:PORT",
            "config key `log.levle` is unknown",
            "config key `demo.enabled`: expected true or false",
            "config key `limits.max_series`: expected a map of family name to a whole number",
            "flag --dedup.window: expected a duration like 30s, 5m, 24h or 29d, got \"5x\"",
        ],
    );
    // A device (or a FIFO, or a huge file) named by mistake is refused, not read forever.
    let out = run(&["--config.file", "/dev/zero", "--demo"]);
    assert_exit_2_naming(
        &out,
        &["--config.file /dev/zero: cannot read it: not a regular file"],
    );
    let out = run(&["--config.file", "/nonexistent.yml", "--demo"]);
    assert_exit_2_naming(&out, &["--config.file /nonexistent.yml: cannot read it"]);
}

#[test]
fn problems_of_different_components_are_reported_together() {
    // Each component reads its own section; one's problem must not hide another's.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        "web:\n  listen_addres: ':1'\nforward:\n  max_backlog: 10\nlimits:\n  series_retention: 1d\n",
    )
    .unwrap();
    let out = run(&["--config.file", path.to_str().unwrap(), "--demo"]);
    assert_exit_2_naming(
        &out,
        &[
            "config key `web.listen_addres` is unknown (known keys here: listen_address,",
            "config key `forward.max_backlog` is unknown (known keys here: max_backlog_bytes)",
            "config key `limits.series_retention` 1d: must be at least 29d",
            "invalid configuration (3 problems)",
        ],
    );
}

#[test]
fn flags_override_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        "demo: {enabled: true, backfill: 5m}\nweb: {telemetry_path: /from-file}\n",
    )
    .unwrap();
    let e = Exporter::start(&[
        "--config.file",
        path.to_str().unwrap(),
        "--web.telemetry-path",
        "/from-flag",
    ]);
    e.wait_ready();
    assert_eq!(e.status("/from-flag"), 200);
    assert_eq!(e.status("/from-file"), 404);
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = run(&["--demo", "--web.listen-address", &addr]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("cannot listen on {addr}: Address already in use")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_config_prints_the_effective_settings_with_secrets_redacted() {
    let out = std::process::Command::new(BIN)
        .args([
            "check-config",
            "--azure.cloud",
            "usgov",
            "--powerbi.lookback",
            "48h",
            "--state.dir",
            "/var/lib/x",
            "--otlp.logs",
            "--forward.max-backlog-bytes",
            "1048576",
        ])
        .envs([
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_CLIENT_ID", "client-1"),
            ("AZURE_CLIENT_SECRET", "Very-Secret-Value"),
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "source: powerbi",
        "powerbi.api_url: https://api.powerbigov.us",
        "powerbi.lookback: 48h",
        "dedup.window: 2d2h",
        "state.dir: /var/lib/x",
        "azure.tenant_id: tenant-1",
        "azure.client_secret: <redacted>",
        "otlp.metrics: off",
        "otlp.logs: grpc",
        "forward.max_backlog_bytes: 1048576",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert!(!text.contains("Very-Secret-Value") && !stderr(&out).contains("Very-Secret-Value"));
    let out = run(&["check-config", "--replay", "x", "--demo"]);
    assert_exit_2_naming(&out, &["choose one source"]);
}

#[test]
fn forwarding_settings_are_checked_together_and_exit_2() {
    let out = run(&[
        "--demo",
        "--otlp.logs",
        "--logs-ingestion.endpoint",
        "http://example.com",
    ]);
    assert_exit_2_naming(
        &out,
        &[
            "Logs Ingestion needs both --logs-ingestion.endpoint and --logs-ingestion.dcr-id",
            "need --state.dir",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_env(
        &[
            "--demo",
            "--state.dir",
            dir.path().to_str().unwrap(),
            "--logs-ingestion.endpoint",
            "http://ingest.example.com",
            "--logs-ingestion.dcr-id",
            "dcr-1",
            "--logs-ingestion.stream",
            "PowerBI",
            "--otlp.enabled",
        ],
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/etc/hostname"),
        ],
    );
    assert_exit_2_naming(&out, &[
        "expected an https:// URL (plain http only for loopback)",
        "OTEL_EXPORTER_OTLP_PROTOCOL=\"http/json\": expected http/protobuf or grpc",
        "OTLP TLS: OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY go together",
    ]);
    // OTLP protocol problems matter only when something is pushed: the plain demo ignores them.
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        "demo:\n  users: 0\notlp:\n  enabled: maybe\nlogs_ingestion:\n  endpoint: https://x.example\n  dcr_id: dcr-1\n  stream: Custom-PowerBIActivity_CL\nforward:\n  max_backlog_bytes: lots\n",
    )
    .unwrap();
    let out = run(&["--config.file", path.to_str().unwrap(), "--demo"]);
    assert_exit_2_naming(
        &out,
        &[
            "config key `otlp.enabled`: expected true or false",
            "config key `forward.max_backlog_bytes`: expected a whole number of bytes",
            "config key `demo.users` 0: expected 1 to 1000000",
            "Logs Ingestion needs a credential",
        ],
    );
}
