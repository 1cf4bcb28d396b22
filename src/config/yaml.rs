//! The config file: parsed once into a [`Document`], then read one section per component.
//!
//! A section is a `#[serde(deny_unknown_fields)]` struct declared with `section!`: the
//! struct is the schema. Each key is still checked on its own, so that every unknown key and
//! every value of the wrong type is reported at once, in today's words ("config key `web.x`
//! is unknown (known keys here: …)", "config key `web.max_requests`: expected a whole
//! number, got …"), not only serde's first error.

use serde::de::DeserializeOwned;
use serde_yaml_ng::{Mapping, Value};

use super::Problems;

/// One section of the config file (`web:`, `log:`, …), declared with `section!`.
pub trait Section: DeserializeOwned + Default {
    /// The section's key at the top of the file.
    const KEY: &'static str;
    /// Its keys, in the order their problems are reported.
    const KEYS: &'static [&'static str];
    /// What a key expects, for a value of the wrong type ("a whole number").
    fn expected(key: &str) -> &'static str;
    /// Sets each value's origin to its key.
    fn stamp(&mut self);
}

/// Declares a config file section: a struct of `Option<Sourced<T>>` fields, one per key, each
/// with the words a message uses for what it expects.
///
/// ```ignore
/// section! {
///     pub struct WebFile("web") {
///         max_requests: usize => "a whole number",
///     }
/// }
/// ```
macro_rules! section {
    ($(#[$meta:meta])* $vis:vis struct $name:ident($key:literal) {
        $($(#[$fmeta:meta])* $field:ident: $ty:ty => $expected:expr),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            $($(#[$fmeta])* pub $field: Option<$crate::config::Sourced<$ty>>,)*
        }

        impl $crate::config::Section for $name {
            const KEY: &'static str = $key;
            const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            fn expected(key: &str) -> &'static str {
                match key {
                    $(stringify!($field) => $expected,)*
                    _ => "a known key",
                }
            }

            fn stamp(&mut self) {
                $(
                    if let Some(v) = &mut self.$field {
                        v.origin = $crate::config::Origin::File(
                            concat!($key, ".", stringify!($field)).to_string(),
                        );
                    }
                )*
            }
        }
    };
}
pub(crate) use section;

/// The config file, parsed; an empty document without one.
#[derive(Debug, Default)]
pub struct Document {
    top: Mapping,
}

impl Document {
    /// Parses `text`, reporting top-level keys that are not among `sections`.
    pub fn parse(text: &str, sections: &[&str], problems: &mut Problems) -> Document {
        let doc: Value = match serde_yaml_ng::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("config file is not valid YAML: {e}"));
                return Document::default();
            }
        };
        if doc.is_null() {
            return Document::default();
        }
        match checked_mapping(&doc, "", sections, problems) {
            Some(top) => Document { top: top.clone() },
            None => Document::default(),
        }
    }

    /// Reads the file at `path` (none: an empty document); what cannot be read goes to
    /// `problems`, naming `--config.file`.
    pub fn load(
        path: Option<&std::path::Path>,
        sections: &[&str],
        problems: &mut Problems,
    ) -> Document {
        let Some(path) = path else {
            return Document::default();
        };
        match crate::files::read_small_to_string(path) {
            Ok(text) => Document::parse(&text, sections, problems),
            Err(e) => {
                problems.push(format!(
                    "--config.file {}: cannot read it: {e}",
                    path.display()
                ));
                Document::default()
            }
        }
    }

    /// The section `S`, each of its problems reported; what is missing or wrong stays `None`.
    pub fn section<S: Section>(&self, problems: &mut Problems) -> S {
        let Some(map) = self.mapping(S::KEY, S::KEYS, problems) else {
            return S::default();
        };
        let mut kept = Mapping::new();
        for key in S::KEYS {
            let Some(value) = map.get(*key) else { continue };
            // A key written without a value is a mistake, not "unset" (serde would read an
            // `Option` as `None`).
            let one = Mapping::from_iter([(Value::from(*key), value.clone())]);
            match serde_yaml_ng::from_value::<S>(Value::Mapping(one)) {
                Ok(_) if !value.is_null() => {
                    kept.insert(Value::from(*key), value.clone());
                }
                _ => problems.push(format!(
                    "config key `{}.{key}`: expected {}, got {}",
                    S::KEY,
                    S::expected(key),
                    shown(value)
                )),
            }
        }
        let mut section: S = serde_yaml_ng::from_value(Value::Mapping(kept)).unwrap_or_default();
        section.stamp();
        section
    }

    /// The mapping under `key`, its unknown keys reported; `None` when absent or null. For a
    /// section read by hand rather than declared with `section!`.
    pub fn mapping(&self, key: &str, known: &[&str], problems: &mut Problems) -> Option<&Mapping> {
        let value = self.top.get(key).filter(|v| !v.is_null())?;
        checked_mapping(value, key, known, problems)
    }
}

/// `value` as a mapping, each key not in `known` reported as unknown.
fn checked_mapping<'a>(
    value: &'a Value,
    path: &str,
    known: &[&str],
    problems: &mut Problems,
) -> Option<&'a Mapping> {
    let Some(map) = value.as_mapping() else {
        let what = if path.is_empty() {
            "the config file".to_string()
        } else {
            format!("config key `{path}`")
        };
        problems.push(format!("{what}: expected a mapping of keys to values"));
        return None;
    };
    for key in map.keys() {
        let name = key.as_str().unwrap_or("<not a string>");
        if !known.contains(&name) {
            let (full, here) = if path.is_empty() {
                (name.to_string(), "")
            } else {
                (format!("{path}.{name}"), " here")
            };
            problems.push(format!(
                "config key `{full}` is unknown (known keys{here}: {})",
                known.join(", ")
            ));
        }
    }
    Some(map)
}

/// A value as YAML on one line, for a message.
fn shown(value: &Value) -> String {
    serde_yaml_ng::to_string(value)
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Origin, Sourced};

    section! {
        /// A section for the tests.
        struct TestFile("test") {
            count: usize => "a whole number",
            on: bool => "true or false",
        }
    }

    #[test]
    fn every_unknown_key_and_bad_value_is_reported_and_the_rest_is_read() {
        let mut problems = Problems::default();
        let doc = Document::parse(
            "test: {cuont: 1, count: x, on: true, other: 2}\nnope: 1\n",
            &["test"],
            &mut problems,
        );
        let section: TestFile = doc.section(&mut problems);
        assert_eq!(
            problems.0,
            [
                "config key `nope` is unknown (known keys: test)",
                "config key `test.cuont` is unknown (known keys here: count, on)",
                "config key `test.other` is unknown (known keys here: count, on)",
                "config key `test.count`: expected a whole number, got x",
            ]
        );
        assert_eq!(section.count, None);
        assert_eq!(
            section.on,
            Some(Sourced::new(true, Origin::File("test.on".into())))
        );
    }

    #[test]
    fn a_key_without_a_value_is_a_problem_but_a_section_without_one_is_empty() {
        let mut problems = Problems::default();
        let doc = Document::parse("test: {on: ~}\n", &["test"], &mut problems);
        let section: TestFile = doc.section(&mut problems);
        assert_eq!(
            problems.0,
            ["config key `test.on`: expected true or false, got null"]
        );
        assert_eq!(section.on, None);
        let mut problems = Problems::default();
        let doc = Document::parse("test: ~\n", &["test"], &mut problems);
        let _: TestFile = doc.section(&mut problems);
        assert!(problems.is_empty());
    }

    #[test]
    fn a_section_that_is_not_a_mapping_is_named() {
        let mut problems = Problems::default();
        let doc = Document::parse("test: [1]\n", &["test"], &mut problems);
        let _: TestFile = doc.section(&mut problems);
        assert_eq!(
            problems.0,
            ["config key `test`: expected a mapping of keys to values"]
        );
    }
}
