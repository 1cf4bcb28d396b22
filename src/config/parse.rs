//! Small helpers the components' `resolve` share: durations and counts with their origin,
//! tri-state switches, and help text that shows a default written once.

use std::fmt::Display;
use std::ops::RangeBounds;
use std::time::Duration;

use super::{Problems, Sourced};

/// A flag's help text ending in `[default: …]`, built from the constant the code uses.
pub fn with_default(text: &str, default: impl Display) -> String {
    format!("{text} [default: {default}]")
}

/// A switch: the file's value, under its tri-state flag pair. `--x` or `--x=true` is on,
/// `--x=false` or `--no-x` is off, neither leaves the file's value (off without one). The pair
/// is declared with `overrides_with`, so only the last one given reaches here.
pub fn switch(file: Option<Sourced<bool>>, on: Option<bool>, off: bool) -> bool {
    flag_pair(on, off)
        .or(file.map(|f| f.value))
        .unwrap_or(false)
}

/// A tri-state flag pair alone: `Some(true)` for `--x`, `Some(false)` for `--x=false` or
/// `--no-x`, `None` when neither was given (for a setting whose file value is layered
/// elsewhere).
pub fn flag_pair(on: Option<bool>, off: bool) -> Option<bool> {
    if off {
        Some(false)
    } else {
        on
    }
}

/// The duration `value` spells, or `default` when unset; a bad one is reported.
pub fn duration_or(
    value: Option<Sourced<String>>,
    default: Duration,
    problems: &mut Problems,
) -> Duration {
    match value {
        None => default,
        Some(Sourced { value, origin }) => crate::duration::parse(&value).unwrap_or_else(|e| {
            problems.push(format!("{origin}: {e}"));
            default
        }),
    }
}

/// The count `value` when `ok` holds it; else the problem `{origin} {n}: expected {expected}`,
/// and `default`.
pub fn count_within(
    value: Option<Sourced<usize>>,
    ok: impl RangeBounds<usize>,
    expected: &str,
    default: usize,
    problems: &mut Problems,
) -> usize {
    match value {
        Some(Sourced { value, origin }) if !ok.contains(&value) => {
            problems.push(format!("{origin} {value}: expected {expected}"));
            default
        }
        Some(Sourced { value, .. }) => value,
        None => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_switches_off_what_the_file_switched_on() {
        let file = || {
            Some(Sourced::new(
                true,
                crate::config::Origin::File("a.b".into()),
            ))
        };
        assert!(!switch(None, None, false));
        assert!(switch(file(), None, false));
        assert!(!switch(file(), Some(false), false));
        assert!(!switch(file(), None, true));
        assert!(switch(None, Some(true), false));
    }
}
