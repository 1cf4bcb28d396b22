//! Durable state under faults the simulator never makes: a state file that cannot be read
//! (a directory, a FIFO, a symbolic link to nowhere or to itself, an I/O error, no permission)
//! and a full filesystem under the forwarding spool.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{fixtures, stderr, BIN};

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

#[test]
fn an_unreadable_state_file_stops_the_start_and_is_left_as_it_is() {
    let cases: Vec<(&str, Box<dyn FnOnce(&Path)>, &str)> = vec![
        (
            "a directory",
            Box::new(|p: &Path| std::fs::create_dir(p).unwrap()),
            "is a directory",
        ),
        ("a FIFO", Box::new(mkfifo), "is a FIFO"),
        (
            "a dangling symbolic link",
            Box::new(|p: &Path| {
                std::os::unix::fs::symlink("/nonexistent/volume/state.json", p).unwrap()
            }),
            "/nonexistent/volume/state.json, which does not exist",
        ),
        (
            "a symbolic link to itself",
            Box::new(|p: &Path| std::os::unix::fs::symlink("state.json", p).unwrap()),
            // ELOOP, as the kernel words it.
            "Too many levels of symbolic links",
        ),
        (
            // Reading /proc/self/mem at offset 0 fails with EIO: a real I/O error.
            "an I/O error",
            Box::new(|p: &Path| std::os::unix::fs::symlink("/proc/self/mem", p).unwrap()),
            "Input/output error",
        ),
    ];
    for (case, make, reason) in cases {
        let (dir, file) = state_dir_with(make);
        let before = listing(dir.path());
        let out = start_on_state(dir.path(), None);
        eprintln!(
            "{case}: {}",
            stderr(&out).lines().last().unwrap_or_default()
        );
        assert_refused(&out, &file, reason);
        assert_eq!(
            listing(dir.path()),
            before,
            "{case}: nothing written over it"
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
