//! Durable state under faults the simulator never makes: a state file that cannot be read
//! (a directory, a FIFO, a symbolic link to nowhere or to itself, an I/O error, no permission)
//! and a full filesystem under the forwarding spool.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use crate::fake_logs_ingestion::{FakeConfig, FakeLogsIngestion};

use crate::logs_ingestion::{row_ids, start_forwarding, start_forwarding_with};
use crate::otlp::{event_id, wait_until, write_events};
use crate::support::{fixtures, runtime, sample_value, stderr, BIN};

/// Runs the exporter in serve mode on the fixtures with `state` as its state directory, as
/// user `uid` when given; fails the test when it is still running after 20 s.
fn start_on_state(state: &Path, uid: Option<u32>) -> Output {
    let mut command = Command::new(BIN);
    command
        .args([
            "--replay",
            fixtures().join("2026-11-20T09.json").to_str().unwrap(),
        ])
        .args(["--state.dir", state.to_str().unwrap()])
        .args(["--web.listen-address", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .env_remove("POWERBI_EXPORTER_PSEUDONYM_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(uid) = uid {
        std::os::unix::process::CommandExt::uid(&mut command, uid);
        std::os::unix::process::CommandExt::gid(&mut command, uid);
    }
    let mut child = command.spawn().expect("starting powerbi-exporter");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after 20 s on an unreadable state file:\n{}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Asserts a refused start: exit 1, the message names the file and `reason`.
#[track_caller]
fn assert_refused(out: &Output, file: &Path, reason: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains(&file.display().to_string()) && last.contains(reason),
        "the error names {} and {reason:?}:\n{err}",
        file.display()
    );
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

/// The directory's entries with their kind, for "nothing was written over it".
fn listing(dir: &Path) -> Vec<(String, String)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let kind = e.file_type().unwrap();
            let kind = if kind.is_symlink() {
                format!(
                    "link to {}",
                    std::fs::read_link(e.path()).unwrap().display()
                )
            } else if kind.is_dir() {
                "dir".into()
            } else if kind.is_file() {
                format!("file {:?}", std::fs::read(e.path()).unwrap())
            } else {
                "special".into()
            };
            (e.file_name().to_string_lossy().into_owned(), kind)
        })
        .collect();
    entries.sort();
    entries
}

/// A state directory whose `state.json` is made by `make`; returns it and the file's path.
fn state_dir_with(make: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    make(&file);
    (dir, file)
}

/// A way to put something unreadable in place of the state file, and what the error says.
struct Unreadable {
    what: &'static str,
    make: fn(&Path),
    reason: &'static str,
}

fn dangling_link(p: &Path) {
    std::os::unix::fs::symlink("/nonexistent/volume/state.json", p).unwrap()
}

#[test]
fn an_unreadable_state_file_stops_the_start_and_is_left_as_it_is() {
    let cases = [
        Unreadable {
            what: "a directory",
            make: |p| std::fs::create_dir(p).unwrap(),
            reason: "is a directory",
        },
        Unreadable {
            what: "a FIFO",
            make: mkfifo,
            reason: "is a FIFO",
        },
        Unreadable {
            what: "a dangling symbolic link",
            make: dangling_link,
            reason: "/nonexistent/volume/state.json, which does not exist",
        },
        Unreadable {
            what: "a symbolic link to itself",
            make: |p| std::os::unix::fs::symlink("state.json", p).unwrap(),
            // ELOOP, as the kernel words it.
            reason: "Too many levels of symbolic links",
        },
        Unreadable {
            // Reading /proc/self/mem at offset 0 fails with EIO: a real I/O error.
            what: "an I/O error",
            make: |p| std::os::unix::fs::symlink("/proc/self/mem", p).unwrap(),
            reason: "Input/output error",
        },
    ];
    for case in cases {
        let (dir, file) = state_dir_with(case.make);
        let before = listing(dir.path());
        let out = start_on_state(dir.path(), None);
        let what = case.what;
        eprintln!(
            "{what}: {}",
            stderr(&out).lines().last().unwrap_or_default()
        );
        assert_refused(&out, &file, case.reason);
        assert_eq!(
            listing(dir.path()),
            before,
            "{what}: nothing written over it"
        );
    }
}

#[test]
fn a_state_file_without_read_permission_stops_the_start() {
    let (dir, file) = state_dir_with(|p| {
        std::fs::write(p, b"{}").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o000)).unwrap();
    });
    // Root reads any file whatever its mode: then the exporter runs as nobody (65534), in a
    // directory it may write to, on a file it may not read.
    let uid = (euid() == 0).then_some(65534);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let before = listing(dir.path());
    let out = start_on_state(dir.path(), uid);
    assert_refused(&out, &file, "Permission denied");
    assert_eq!(listing(dir.path()), before, "nothing written over it");
}

/// The effective user id, from `id -u` (no libc in the tests).
fn euid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A tmpfs of `bytes` mounted at `path` (the test runs as root, as in CI), unmounted on drop.
struct SmallFilesystem {
    path: PathBuf,
}

impl SmallFilesystem {
    fn mount(path: &Path, bytes: u64) -> SmallFilesystem {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root: {}",
            stderr(&out)
        );
        SmallFilesystem {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.path).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            // Still busy (a child not reaped yet): detach it, it goes once unused.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

const SPOOLED: usize = 2_000;

/// The lines of the spool's segments, in order.
fn spool_lines(forward: &Path) -> Vec<String> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(forward)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    segments.sort();
    segments
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "no fragment at the end"
            );
            text.lines().map(String::from).collect::<Vec<_>>()
        })
        .collect()
}

/// A fake Logs Ingestion API, and a spool directory under `state` on a 4 MiB filesystem all
/// but 40,000 bytes of which a filler file takes: the ~2.2 MB of events fit once the filler
/// (its path returned) is gone, and the first append runs out of space in the middle of a line.
fn full_spool_disk(
    rt: &tokio::runtime::Runtime,
    state: &Path,
) -> (FakeConfig, FakeLogsIngestion, SmallFilesystem, PathBuf) {
    let config = FakeConfig::default();
    let fake = rt
        .block_on(FakeLogsIngestion::start(config.clone()))
        .unwrap();
    let forward = state.join("forward");
    let disk = SmallFilesystem::mount(&forward, 4 << 20);
    let filler = forward.join("filler");
    std::fs::write(&filler, vec![0u8; (4 << 20) - 40_000]).unwrap();
    (config, fake, disk, filler)
}

#[test]
fn a_full_disk_under_the_spool_holds_the_checkpoint_back_and_loses_no_event() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let events = write_events(dir.path(), SPOOLED);
    let state = dir.path().join("state");
    let forward = state.join("forward");
    let (config, fake, disk, filler) = full_spool_disk(&rt, &state);

    let e = start_forwarding(&events, &state, &fake.base_url(), &config);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = e.startup_log.clone();
    while !log.iter().any(|l| l.contains("No space left on device")) {
        let line = e
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no spool write failure logged: {log:#?}"));
        log.push(line);
    }
    // The source has ended; whatever it was going to save meanwhile, it has had time to.
    std::thread::sleep(Duration::from_secs(2));
    assert!(fake.rows().is_empty(), "nothing could be spooled yet");
    // Each held-back checkpoint is counted, under the step that failed.
    let errors = |s: &BTreeMap<String, f64>, reason: &str| {
        sample_value(
            s,
            &format!(r#"powerbi_state_save_errors_total{{reason="{reason}"}}"#),
        )
    };
    let s = e.scrape();
    let held_back = errors(&s, "spool_append");
    assert!(held_back >= 1.0, "{s:#?}");
    assert_eq!(
        (errors(&s, "spool_sync"), errors(&s, "state_write")),
        (0.0, 0.0)
    );

    std::fs::remove_file(&filler).unwrap();
    wait_until(Duration::from_secs(60), "every event delivered", || {
        fake.rows().len() >= SPOOLED
            && sample_value(
                &e.scrape(),
                r#"powerbi_forward_backlog_events{sink="logs_ingestion"}"#,
            ) == 0.0
    });
    // Every event exactly once (no restart, so no batch is sent twice), each row whole.
    let mut ids = row_ids(&fake);
    ids.sort();
    let mut expected: Vec<String> = (0..SPOOLED).map(event_id).collect();
    expected.sort();
    assert_eq!(ids, expected);
    // The spool holds each event once, on whole lines: the cut line was truncated.
    let lines = spool_lines(&forward);
    assert_eq!(lines.len(), SPOOLED);
    for line in &lines {
        let (_, json) = line.split_once(' ').unwrap();
        serde_json::from_str::<serde_json::Value>(json).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    // The checkpoint went through once the events were spooled: all counted and served.
    let s = e.scrape();
    assert_eq!(
        sample_value(&s, "powerbi_events_processed_total"),
        SPOOLED as f64
    );
    assert_eq!(
        sample_value(
            &s,
            r#"powerbi_forwarded_events_total{sink="logs_ingestion"}"#
        ),
        SPOOLED as f64
    );
    // The failures stay counted once the saves go through again.
    assert!(errors(&s, "spool_append") >= held_back);
    assert_eq!(errors(&s, "state_write"), 0.0);
    drop(e);
    drop(disk);
}

/// A spool whose disk stays full: the counted events held in memory for it stop growing at
/// their bound (here `--forward.max-backlog-bytes`, 300,000 bytes, under the 64 MiB default
/// bound) instead of taking in the whole archive, and counting goes on once the disk is freed.
#[test]
fn a_spool_that_stays_full_bounds_the_events_held_in_memory() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    // The 2,000 events of write_events, ~1.1 KB each, in ten files of 200.
    let page: serde_json::Value =
        serde_json::from_slice(&std::fs::read(write_events(dir.path(), SPOOLED)).unwrap()).unwrap();
    let archive = dir.path().join("archive");
    std::fs::create_dir(&archive).unwrap();
    let mut largest = 0;
    for (i, chunk) in page["activityEventEntities"]
        .as_array()
        .unwrap()
        .chunks(SPOOLED / 10)
        .enumerate()
    {
        let bytes = serde_json::to_vec(chunk).unwrap();
        largest = largest.max(bytes.len());
        std::fs::write(archive.join(format!("{i:02}.json")), bytes).unwrap();
    }
    let state = dir.path().join("state");
    let (config, fake, disk, filler) = full_spool_disk(&rt, &state);

    let bound = 300_000;
    let flag = bound.to_string();
    let e = start_forwarding_with(
        &archive,
        &state,
        &fake.base_url(),
        &config,
        &["--forward.max-backlog-bytes", &flag],
    );
    let held_back = || sample_value(&e.scrape(), "powerbi_forward_held_back_bytes");
    let mut log = e.startup_log.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log.iter().any(|l| l.contains("counting waits")) {
        let line = e
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("counting did not wait for the spool: {log:#?}"));
        log.push(line);
    }
    // The bound is checked after each file: at most one file's events past it (each line the
    // raw event and its fetch time), far from the archive's 2.2 MB.
    let waiting = held_back();
    assert!(
        waiting >= bound as f64 && waiting <= (bound + largest + 40 * SPOOLED / 10) as f64,
        "{waiting} bytes held back"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(held_back(), waiting, "counting waits");
    assert!(fake.rows().is_empty(), "nothing could be spooled yet");

    std::fs::remove_file(&filler).unwrap();
    // Every event counted once, and each forwarded or, over the spool's 300,000 bytes before
    // the sink read it, dropped and counted.
    wait_until(
        Duration::from_secs(60),
        "every event forwarded or dropped",
        || {
            let s = e.scrape();
            let forwarded = sample_value(
                &s,
                r#"powerbi_forwarded_events_total{sink="logs_ingestion"}"#,
            );
            let dropped = sample_value(
                &s,
                r#"powerbi_forward_dropped_events_total{sink="logs_ingestion",reason="backlog_full"}"#,
            );
            sample_value(&s, "powerbi_events_processed_total") == SPOOLED as f64
                && forwarded + dropped == SPOOLED as f64
        },
    );
    assert_eq!(held_back(), 0.0);
    let mut ids = row_ids(&fake);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), row_ids(&fake).len(), "nothing forwarded twice");
    drop(e);
    drop(disk);
}
