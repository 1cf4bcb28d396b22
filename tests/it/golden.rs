//! The golden file is reviewed by hand; regenerate it with `UPDATE_GOLDEN=1 cargo test --test it golden`.
//! Its values are derived in `tests/fixtures/README.md`.

use crate::support::*;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/fixtures.prom");

pub const GOLDEN_KEY: &str = "golden-fixtures-pseudonym-key";

fn once_on_fixtures() -> String {
    // A fixed key, so the pseudonyms of powerbi_user_sensitive_events_total are too.
    let out = run_with_env(
        &["--once", "--replay", fixtures().to_str().unwrap()],
        &[("POWERBI_EXPORTER_PSEUDONYM_KEY", GOLDEN_KEY)],
    );
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        stderr(&out)
    );
    stdout(&out)
}

/// The build facts of `powerbi_exporter_build_info` change with every commit: the golden file
/// has placeholders for them, filled from git and rustc here.
fn build_facts() -> [(&'static str, String); 3] {
    [
        ("@REVISION@", crate::face::git(&["rev-parse", "HEAD"])),
        (
            "@BRANCH@",
            crate::face::git(&["rev-parse", "--abbrev-ref", "HEAD"]),
        ),
        ("@RUSTVERSION@", crate::face::rust_version()),
    ]
}

#[test]
fn once_output_matches_the_reviewed_golden_file() {
    let actual = once_on_fixtures();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let line = |s: &str| {
            s.lines()
                .find(|l| l.starts_with("powerbi_exporter_build_info{"))
                .unwrap()
                .to_string()
        };
        let mut placeholders = line(&actual);
        for (placeholder, value) in build_facts() {
            placeholders =
                placeholders.replace(&format!("\"{value}\""), &format!("\"{placeholder}\""));
        }
        std::fs::write(GOLDEN, actual.replace(&line(&actual), &placeholders)).unwrap();
    }
    let mut expected =
        std::fs::read_to_string(GOLDEN).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    for (placeholder, value) in build_facts() {
        expected = expected.replace(placeholder, &value);
    }
    assert_eq!(actual, expected, "exposition differs from {GOLDEN}");
}

#[test]
fn golden_exposition_passes_promtool_without_warnings() {
    promtool_check_metrics(&once_on_fixtures());
}

#[test]
fn fixture_values_are_the_hand_derived_ones() {
    let s = samples(&once_on_fixtures());
    let v = |k: &str| s.get(k).copied().unwrap_or_else(|| panic!("missing {k}"));
    assert_eq!(v("powerbi_events_processed_total"), 21.0);
    assert_eq!(v("powerbi_events_duplicate_total"), 2.0);
    assert_eq!(
        v(r#"powerbi_events_rejected_total{reason="missing_activity"}"#),
        1.0
    );
    assert_eq!(
        v(r#"powerbi_events_rejected_total{reason="not_an_object"}"#),
        1.0
    );
    assert_eq!(
        v(r#"powerbi_events_rejected_total{reason="invalid_time"}"#),
        1.0
    );
    assert_eq!(
        family(&s, "powerbi_activity_events_total")
            .values()
            .sum::<f64>(),
        16.0
    );
    assert_eq!(
        v(
            r#"powerbi_report_info{report_id="7ba2c5de-f72b-49f4-a146-8bc5de3e093d",report_name="Pipeline Review FY27",workspace_id="f95b8b6f-ac8f-4d3c-baa0-f46d7e254acf"}"#
        ),
        1.0
    );
    assert_eq!(v(r#"powerbi_active_users{window="1d"}"#), 6.0);
    // 2026-11-20T11:05:00Z, the newest CreationTime (archiver-export.jsonl).
    assert_eq!(
        v("powerbi_events_watermark_timestamp_seconds"),
        1_795_172_700.0
    );
}
