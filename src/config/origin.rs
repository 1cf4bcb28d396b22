//! Where a setting's value came from, so that every message names the key or flag to fix.

use std::fmt;

/// Where a value was set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Origin {
    /// Nobody set it: the built-in default.
    #[default]
    Default,
    /// A key of the config file, dotted (`web.listen_address`).
    File(String),
    /// A flag, without its dashes (`web.listen-address`).
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
}

impl Origin {
    /// The origin of an entry under this key (`limits.max_series.FAMILY`); a flag or a
    /// variable is its own origin for each of its entries.
    pub fn entry(&self, name: &str) -> Origin {
        match self {
            Origin::File(key) => Origin::File(format!("{key}.{name}")),
            other => other.clone(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the default"),
            Origin::File(key) => write!(f, "config key `{key}`"),
            Origin::Flag(name) => write!(f, "flag --{name}"),
            Origin::Env(var) => write!(f, "environment {var}"),
        }
    }
}

/// A value with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Sourced<T> {
    pub fn new(value: T, origin: Origin) -> Self {
        Sourced { value, origin }
    }

    /// The flag's value when it was given, else the file's: flags override the file.
    pub fn layer(file: Option<Sourced<T>>, flag: Option<T>, name: &'static str) -> Option<Self> {
        match flag {
            Some(value) => Some(Sourced::new(value, Origin::Flag(name))),
            None => file,
        }
    }
}

/// A file's value of a field is read as the bare value; the section stamps its key after.
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Sourced<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(|value| Sourced::new(value, Origin::Default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_name_the_key_the_flag_or_the_variable() {
        assert_eq!(
            Origin::File("web.listen_address".into()).to_string(),
            "config key `web.listen_address`"
        );
        assert_eq!(
            Origin::Flag("web.listen-address").to_string(),
            "flag --web.listen-address"
        );
        assert_eq!(
            Origin::Env("AZURE_TENANT_ID").to_string(),
            "environment AZURE_TENANT_ID"
        );
        assert_eq!(
            Origin::File("limits.max_series".into()).entry("f"),
            Origin::File("limits.max_series.f".into())
        );
    }

    #[test]
    fn a_flag_overrides_the_file() {
        let file = Some(Sourced::new(1, Origin::File("a.b".into())));
        assert_eq!(
            Sourced::layer(file.clone(), Some(2), "a.b"),
            Some(Sourced::new(2, Origin::Flag("a.b")))
        );
        assert_eq!(Sourced::layer(file.clone(), None, "a.b"), file);
    }
}
