//! Build facts for `powerbi_exporter_build_info` and `--version`, as Prometheus' promu stamps
//! Go binaries: revision and branch from git (or `POWERBI_EXPORTER_REVISION` /
//! `POWERBI_EXPORTER_BRANCH`, e.g. Docker build arguments, since `.dockerignore` keeps `.git`
//! out of the build context), the toolchain, the build user and date. Anything unknown is
//! `unknown`; the build never fails for want of git.

use std::process::Command;

fn main() {
    for var in [
        "POWERBI_EXPORTER_REVISION",
        "POWERBI_EXPORTER_BRANCH",
        "SOURCE_DATE_EPOCH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    watch_git_head();
    let revision = env("POWERBI_EXPORTER_REVISION").or_else(|| git(&["rev-parse", "HEAD"]));
    let branch =
        env("POWERBI_EXPORTER_BRANCH").or_else(|| git(&["rev-parse", "--abbrev-ref", "HEAD"]));
    let rustc = env("RUSTC").unwrap_or_else(|| "rustc".into());
    let rust_version =
        run(&rustc, &["--version"]).and_then(|v| v.split_whitespace().nth(1).map(str::to_string));
    let user = env("USER")
        .or_else(|| env("LOGNAME"))
        .or_else(|| run("id", &["-un"]));
    let host = env("HOSTNAME").or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
    });
    let build_user = match (user, host) {
        (Some(u), Some(h)) => Some(format!("{u}@{h}")),
        (u, _) => u,
    };
    let epoch = env("SOURCE_DATE_EPOCH")
        .and_then(|s| s.parse::<i64>().ok())
        .or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs() as i64)
        });
    let facts = [
        ("POWERBI_EXPORTER_BUILD_REVISION", revision),
        ("POWERBI_EXPORTER_BUILD_BRANCH", branch),
        ("POWERBI_EXPORTER_BUILD_RUST_VERSION", rust_version),
        ("POWERBI_EXPORTER_BUILD_USER", build_user),
        ("POWERBI_EXPORTER_BUILD_DATE", epoch.map(promu_date)),
    ];
    for (key, value) in facts {
        let value = value.unwrap_or_else(|| "unknown".into());
        println!("cargo:rustc-env={key}={value}");
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn git(args: &[&str]) -> Option<String> {
    run("git", args)
}

/// Rebuilds the facts when HEAD moves (a commit, a checkout); without git, never.
fn watch_git_head() {
    let Some(git_dir) = git(&["rev-parse", "--git-dir"]) else {
        return;
    };
    println!("cargo:rerun-if-changed={git_dir}/HEAD");
    let common = git(&["rev-parse", "--git-common-dir"]).unwrap_or(git_dir);
    println!("cargo:rerun-if-changed={common}/packed-refs");
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        println!("cargo:rerun-if-changed={common}/{reference}");
    }
}

/// `YYYYMMDD-HH:MM:SS` in UTC, promu's build date format.
fn promu_date(epoch: i64) -> String {
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
