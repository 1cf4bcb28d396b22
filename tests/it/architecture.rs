//! The shape of `src/` as rules a test can check: imports follow the stage order of
//! `powerbi_exporter::LAYERS`, no non-test function is over [`MAX_FUNCTION_LINES`] lines, and
//! README's `## Layout` names exactly what is in the tree.
//!
//! Sources are read as text, with comments and string literals blanked out (a doc comment may
//! mention any module) and line numbers kept. `#[cfg(test)]` modules obey the layering like
//! any other code: a unit test that needs a higher stage belongs in `tests/it`. They are left
//! out of the function-length rule, where a long table-driven test is no defect.
//!
//! The allowlists below ([`KNOWN_BACK_EDGES`], [`LONG_FUNCTIONS`]) can only shrink: an entry
//! that no longer matches anything fails too, so it is removed with the fix that made it true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use powerbi_exporter::LAYERS;

/// An import against the stage order that is being removed (issue 13), kept here so that
/// every *other* back edge fails now.
struct KnownBackEdge {
    /// The importing file, relative to the repository (`src/…`).
    file: &'static str,
    /// The top-level module it reaches up to.
    to: &'static str,
}

/// Imports against the order tolerated while they are being removed (none today). An entry
/// must name a file and the module it reaches; one that no longer occurs fails the test.
const KNOWN_BACK_EDGES: &[KnownBackEdge] = &[];

/// Longest non-test function, from its `fn` line to its closing brace.
const MAX_FUNCTION_LINES: usize = 80;

/// A function allowed over [`MAX_FUNCTION_LINES`], and why.
struct LongFunction {
    file: &'static str,
    name: &'static str,
    reason: &'static str,
}

/// Functions allowed over the limit (none today; the splitter's state machine was split too).
const LONG_FUNCTIONS: &[LongFunction] = &[];

#[test]
fn imports_follow_the_stage_order() {
    let layer_of = layer_of_module();
    let mut seen_known = BTreeSet::new();
    let mut failures = Vec::new();
    for source in library_sources() {
        let Some(from) = top_level_module(&source.file) else {
            continue;
        };
        let from_layer = layer_of[from.as_str()];
        for path in crate_paths(&source.code) {
            let Some(&to_layer) = layer_of.get(path.module.as_str()) else {
                continue; // an item of the crate root: a foundation
            };
            let backwards = to_layer > from_layer;
            let between_independent =
                to_layer == from_layer && from != path.module && LAYERS[from_layer].independent;
            if !(backwards || between_independent) {
                continue;
            }
            let known = KNOWN_BACK_EDGES
                .iter()
                .position(|e| e.file == source.file && e.to == path.module);
            if let Some(index) = known {
                seen_known.insert(index);
            } else {
                let why = if backwards {
                    format!(
                        "{} must not use {}",
                        LAYERS[from_layer].role, LAYERS[to_layer].role
                    )
                } else {
                    format!("{} do not use each other", LAYERS[to_layer].role)
                };
                failures.push(format!(
                    "{}:{}  {from} → {}  ({why})",
                    source.file, path.line, path.module
                ));
            }
        }
    }
    let stale = (0..KNOWN_BACK_EDGES.len()).filter(|i| !seen_known.contains(i));
    for entry in stale.map(|i| &KNOWN_BACK_EDGES[i]) {
        failures.push(format!(
            "{} → {} is in KNOWN_BACK_EDGES but no longer occurs: remove the entry",
            entry.file, entry.to
        ));
    }
    assert!(
        failures.is_empty(),
        "imports against the stage order of powerbi_exporter::LAYERS (src/lib.rs):\n{}",
        failures.join("\n")
    );
}

/// `pub use powerbi_exporter_decode as decode;` → `decode`.
fn reexported(line: &str) -> Option<&str> {
    let line = line.trim().strip_prefix("pub use ")?.strip_suffix(';')?;
    Some(line.split_once(" as ")?.1)
}

#[test]
fn every_module_is_in_exactly_one_layer() {
    let lib = strip_comments_and_strings(&read("src/lib.rs"));
    // A stage may be a workspace crate re-exported under its module name
    // (`pub use powerbi_exporter_decode as decode;`).
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("pub mod ")
                .and_then(|l| l.strip_suffix(';'))
                .or_else(|| reexported(l))
        })
        .map(str::to_string)
        .collect();
    let mut layered = BTreeSet::new();
    for layer in LAYERS {
        for module in layer.modules {
            assert!(
                layered.insert(module.to_string()),
                "{module} is in two layers"
            );
        }
    }
    assert_eq!(declared, layered, "the `pub mod`s of src/lib.rs vs LAYERS");
}

#[test]
fn no_function_outside_tests_is_over_80_lines() {
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for source in all_sources() {
        for f in functions(&source.code) {
            if f.lines <= MAX_FUNCTION_LINES {
                continue;
            }
            let allowed = LONG_FUNCTIONS
                .iter()
                .position(|a| a.file == source.file && a.name == f.name);
            if let Some(index) = allowed {
                seen.insert(index);
            } else {
                failures.push(format!(
                    "{}:{}  fn {} is {} lines (at most {MAX_FUNCTION_LINES})",
                    source.file, f.line, f.name, f.lines
                ));
            }
        }
    }
    let stale = (0..LONG_FUNCTIONS.len()).filter(|i| !seen.contains(i));
    for entry in stale.map(|i| &LONG_FUNCTIONS[i]) {
        failures.push(format!(
            "{}: fn {} is in LONG_FUNCTIONS ({}) but is not over {MAX_FUNCTION_LINES} lines \
             (or is gone): remove the entry",
            entry.file, entry.name, entry.reason
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_readme_layout_names_exactly_the_tree() {
    let named = readme_layout_paths();
    let mut failures = Vec::new();
    for path in &named {
        if !repository().join(path).exists() {
            failures.push(format!(
                "README's Layout names {path}, which is not in the tree"
            ));
        }
    }
    let stage_folders = entries(&repository().join("src"))
        .into_iter()
        .filter(|e| e.ends_with('/'))
        .map(|e| format!("src/{e}"));
    for folder in std::iter::once("src/".to_string()).chain(stage_folders) {
        for entry in entries(&repository().join(&folder)) {
            let path = format!("{folder}{entry}");
            if entry != "mod.rs" && !named.contains(&path) {
                failures.push(format!("{path} is not named in README's Layout"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- the rule checkers' own tests: each rule sees what it must, and only that ----

#[test]
fn comments_strings_and_chars_are_blanked_and_lines_kept() {
    let code = "use crate::a; // crate::b\n/* crate::c /* nested */ crate::d */ let s = \"crate::e\\\"\";\nlet r = r#\"crate::f\"#; let c = '\"'; fn f<'a>(x: &'a str) { crate::g(); }\n";
    let stripped = strip_comments_and_strings(code);
    assert_eq!(stripped.lines().count(), code.lines().count());
    let found: Vec<(String, usize)> = crate_paths(&stripped)
        .into_iter()
        .map(|p| (p.module, p.line))
        .collect();
    assert_eq!(found, [("a".to_string(), 1), ("g".to_string(), 3)]);
}

#[test]
fn grouped_and_nested_crate_paths_are_all_found() {
    let code = "use crate::{a::X, b, c::{d, e}};\nfn f() { crate :: h::g(); $crate::i!(); }";
    let found: Vec<String> = crate_paths(code).into_iter().map(|p| p.module).collect();
    assert_eq!(found, ["a", "b", "c", "h", "i"]);
}

#[test]
fn functions_are_measured_from_fn_to_closing_brace_outside_test_modules() {
    let code = "fn short() {\n}\ntrait T { fn declared(&self); }\nfn three(\n  f: fn(u8),\n) { let _ = \"}\"; }\n#[cfg(test)]\nmod tests {\n    fn hidden() {}\n}\n";
    let found: Vec<(String, usize, usize)> = functions(&strip_comments_and_strings(code))
        .into_iter()
        .map(|f| (f.name, f.line, f.lines))
        .collect();
    assert_eq!(
        found,
        [("short".to_string(), 1, 2), ("three".to_string(), 4, 3)]
    );
}

#[test]
fn layout_lines_nest_by_indentation_and_continuations_are_skipped() {
    let block = "src/\n  a/         first line\n               b/ continues the description\n    c.rs     inside a/\n  d.rs       under src/\ntests/it/    top level\n";
    assert_eq!(
        layout_paths(block),
        BTreeSet::from(["src/", "src/a/", "src/a/c.rs", "src/d.rs", "tests/it/"].map(String::from))
    );
}

// ---- reading the sources ----

struct SourceFile {
    /// Relative to the repository, with `/` separators: `src/decode/split.rs`.
    file: String,
    /// The text with comments and literals blanked out.
    code: String,
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repository().join(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

/// Every `.rs` file under `src/` and of the workspace crates (`crates/*/src/`), sorted.
fn all_sources() -> Vec<SourceFile> {
    let mut files = Vec::new();
    collect_rs(&repository().join("src"), &mut files);
    for krate in std::fs::read_dir(repository().join("crates")).unwrap() {
        collect_rs(&krate.unwrap().path().join("src"), &mut files);
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let file = path
                .strip_prefix(repository())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let code = strip_comments_and_strings(&read(&file));
            // Unbalanced braces would mean a literal or comment was misread.
            let opened = code.matches('{').count();
            assert_eq!(opened, code.matches('}').count(), "braces of {file}");
            SourceFile { file, code }
        })
        .collect()
}

/// The library's files: `src/main.rs` is the binary, a crate of its own above the library, and
/// a workspace crate's `crate::` paths are its own (Cargo forbids it to depend back on the
/// exporter).
fn library_sources() -> Vec<SourceFile> {
    all_sources()
        .into_iter()
        .filter(|s| s.file.starts_with("src/") && s.file != "src/main.rs")
        .collect()
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names in a directory, directories with a trailing `/`.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                name + "/"
            } else {
                name
            }
        })
        .collect();
    names.sort();
    names
}

/// `src/decode/split.rs` → `decode`; `src/lib.rs` (the root) → `None`.
fn top_level_module(file: &str) -> Option<String> {
    let rest = file.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    let module = first.strip_suffix(".rs").unwrap_or(first);
    (module != "lib").then(|| module.to_string())
}

fn layer_of_module() -> BTreeMap<&'static str, usize> {
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| layer.modules.iter().map(move |&m| (m, i)))
        .collect()
}

/// Replaces comments, string, byte-string, raw-string and char literals by spaces, keeping
/// every newline so line numbers still hold.
fn strip_comments_and_strings(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < chars.len() {
        let end = literal_or_comment_end(&chars, i);
        if end == i {
            out.push(chars[i]);
            i += 1;
        } else {
            out.extend(
                chars[i..end]
                    .iter()
                    .map(|&c| if c == '\n' { '\n' } else { ' ' }),
            );
            i = end;
        }
    }
    out
}

/// Where the comment or literal starting at `i` ends, or `i` when none starts there.
fn literal_or_comment_end(chars: &[char], i: usize) -> usize {
    let at = |k: usize| chars.get(k).copied().unwrap_or('\0');
    let after_ident = i > 0 && is_ident(at(i - 1));
    match at(i) {
        '/' if at(i + 1) == '/' => (i..chars.len())
            .find(|&k| chars[k] == '\n')
            .unwrap_or(chars.len()),
        '/' if at(i + 1) == '*' => block_comment_end(chars, i),
        '"' => quoted_end(chars, i, '"'),
        '\'' if at(i + 1) == '\\' || (at(i + 1) != '\'' && at(i + 2) == '\'') => {
            quoted_end(chars, i, '\'')
        }
        'r' if !after_ident => raw_string_end(chars, i + 1).unwrap_or(i),
        'b' if !after_ident && at(i + 1) == 'r' => raw_string_end(chars, i + 2).unwrap_or(i),
        _ => i,
    }
}

fn block_comment_end(chars: &[char], start: usize) -> usize {
    let mut depth = 0;
    let mut k = start;
    while k + 1 < chars.len() {
        match (chars[k], chars[k + 1]) {
            ('/', '*') => {
                depth += 1;
                k += 2;
            }
            ('*', '/') => {
                depth -= 1;
                k += 2;
                if depth == 0 {
                    return k;
                }
            }
            _ => k += 1,
        }
    }
    chars.len()
}

/// The end of a literal quoted by `quote`, honouring backslash escapes.
fn quoted_end(chars: &[char], start: usize, quote: char) -> usize {
    let mut k = start + 1;
    while k < chars.len() {
        match chars[k] {
            '\\' => k += 2,
            c if c == quote => return k + 1,
            _ => k += 1,
        }
    }
    chars.len()
}

/// A raw string whose `#`s or quote start at `k` (just after the `r`): its end.
fn raw_string_end(chars: &[char], k: usize) -> Option<usize> {
    let hashes = chars[k..].iter().take_while(|&&c| c == '#').count();
    if chars.get(k + hashes) != Some(&'"') {
        return None; // an identifier such as `r#type`, or just `r`
    }
    let closing: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    let body = k + hashes + 1;
    let end = (body..chars.len())
        .find(|&j| chars[j..].starts_with(&closing))
        .map_or(chars.len(), |j| j + closing.len());
    Some(end)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// One `crate::<module>` path: the first segment after `crate::`, on its line.
struct CratePath {
    module: String,
    line: usize,
}

/// Every `crate::x` of stripped code, with each member of a `crate::{x, y::z}` group.
fn crate_paths(code: &str) -> Vec<CratePath> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(start) = find_word(&chars, i, "crate") {
        i = start + "crate".len();
        let Some(after) = after_path_separator(&chars, i) else {
            continue;
        };
        if chars.get(after) == Some(&'{') {
            for (module, at) in group_heads(&chars, after) {
                found.push(CratePath {
                    module,
                    line: line_of(&chars, at),
                });
            }
        } else {
            let name = ident_at(&chars, after);
            if !name.is_empty() {
                found.push(CratePath {
                    module: name,
                    line: line_of(&chars, start),
                });
            }
        }
    }
    found
}

/// The first position of `word` at or after `from` as a whole word.
fn find_word(chars: &[char], from: usize, word: &str) -> Option<usize> {
    let word: Vec<char> = word.chars().collect();
    (from..chars.len()).find(|&k| {
        chars[k..].starts_with(&word)
            && (k == 0 || !is_ident(chars[k - 1]))
            && !chars.get(k + word.len()).copied().is_some_and(is_ident)
    })
}

/// After `crate` at `k`: the position past `::` and any whitespace around it.
fn after_path_separator(chars: &[char], k: usize) -> Option<usize> {
    let k = skip_space(chars, k);
    if !chars[k..].starts_with(&[':', ':']) {
        return None;
    }
    Some(skip_space(chars, k + 2))
}

fn skip_space(chars: &[char], mut k: usize) -> usize {
    while chars.get(k).is_some_and(|c| c.is_whitespace()) {
        k += 1;
    }
    k
}

fn ident_at(chars: &[char], k: usize) -> String {
    chars[k..].iter().take_while(|&&c| is_ident(c)).collect()
}

/// The first segment of each member of the `{…}` group opening at `open`.
fn group_heads(chars: &[char], open: usize) -> Vec<(String, usize)> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = false;
    for k in open..chars.len() {
        match chars[k] {
            '{' => {
                depth += 1;
                expect_head = depth == 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expect_head = true,
            c if expect_head && is_ident(c) => {
                heads.push((ident_at(chars, k), k));
                expect_head = false;
            }
            _ => {}
        }
    }
    heads
}

fn line_of(chars: &[char], k: usize) -> usize {
    1 + chars[..k].iter().filter(|&&c| c == '\n').count()
}

/// One function with a body: its name, the line of `fn`, and its length in lines.
struct Function {
    name: String,
    line: usize,
    lines: usize,
}

/// Every function with a body in stripped code, leaving out items under `#[cfg(test)]`.
fn functions(code: &str) -> Vec<Function> {
    let chars: Vec<char> = code.chars().collect();
    let test_items = cfg_test_items(&chars);
    let in_test = |k: usize| test_items.iter().any(|&(a, b)| a <= k && k < b);
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = find_word(&chars, i, "fn") {
        i = at + 2;
        let name_at = skip_space(&chars, i);
        let name = ident_at(&chars, name_at);
        if name.is_empty() || in_test(at) {
            continue; // a `fn(…)` pointer type, or test code
        }
        let Some(open) = body_open(&chars, name_at) else {
            continue; // a declaration without a body
        };
        let close = matching_brace(&chars, open);
        found.push(Function {
            name,
            line: line_of(&chars, at),
            lines: line_of(&chars, close) - line_of(&chars, at) + 1,
        });
    }
    found
}

/// The `{` of an item's body, or `None` when a `;` ends it first (a `;` inside brackets,
/// as in `[u8; 4]`, does not).
fn body_open(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, &c) in chars.iter().enumerate().skip(from) {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            '{' if depth == 0 => return Some(k),
            ';' if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

fn matching_brace(chars: &[char], open: usize) -> usize {
    let mut depth = 0;
    for (k, &c) in chars.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    chars.len() - 1
}

/// The spans of the items that follow a `#[cfg(test)]` attribute.
fn cfg_test_items(chars: &[char]) -> Vec<(usize, usize)> {
    let attribute: Vec<char> = "#[cfg(test)]".chars().collect();
    (0..chars.len())
        .filter(|&k| chars[k..].starts_with(&attribute))
        .filter_map(|k| {
            let open = body_open(chars, k + attribute.len())?;
            Some((k, matching_brace(chars, open) + 1))
        })
        .collect()
}

// ---- README's Layout ----

/// The paths README's `## Layout` block names, relative to the repository.
fn readme_layout_paths() -> BTreeSet<String> {
    let readme = read("README.md");
    let section = readme
        .split("\n## Layout\n")
        .nth(1)
        .expect("README has a ## Layout section");
    let block = section
        .split("```text\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the Layout section opens with a ```text block");
    layout_paths(block)
}

/// A Layout block's entries: `<indent><name>  <description>`, where a name ending in `/` is a
/// directory and the entries indented two spaces more below it are inside it. A line indented
/// deeper than one level below the entry above continues that entry's description.
fn layout_paths(block: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    // (indent, path) of the entries enclosing the current line.
    let mut open: Vec<(usize, String)> = Vec::new();
    for line in block.lines() {
        let indent = line.len() - line.trim_start().len();
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let deepest = open.last().map_or(0, |(i, _)| i + 2);
        if indent > deepest {
            continue; // a continuation of the description above
        }
        while open.last().is_some_and(|(i, _)| *i >= indent) {
            open.pop();
        }
        let parent = open.last().map_or("", |(_, p)| p.as_str());
        let path = format!("{parent}{name}");
        paths.insert(path.clone());
        if name.ends_with('/') {
            open.push((indent, path));
        }
    }
    paths
}
