//! The README's metrics table is generated from the catalogue; `UPDATE_README=1` rewrites it.

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
const START: &str = "<!-- metrics-table:start -->\n";
const END: &str = "<!-- metrics-table:end -->";

#[test]
fn the_readme_metrics_table_is_the_catalogue() {
    let readme = std::fs::read_to_string(README).unwrap();
    let start = readme.find(START).expect("metrics-table start marker") + START.len();
    let end = readme.find(END).expect("metrics-table end marker");
    let table = powerbi_exporter::catalogue::markdown_table();
    if std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(
            README,
            format!("{}{table}{}", &readme[..start], &readme[end..]),
        )
        .unwrap();
        return;
    }
    assert_eq!(
        &readme[start..end],
        table,
        "README metrics table is stale: UPDATE_README=1 cargo test --test it readme"
    );
}

#[test]
fn the_readme_names_the_two_commands() {
    let readme = std::fs::read_to_string(README).unwrap();
    assert!(readme.contains("cargo run --release -- --demo"));
    assert!(readme.contains("scripts/test.sh"));
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(
        ci.contains("scripts/test.sh"),
        ".ci/run calls the README's test command"
    );
}
