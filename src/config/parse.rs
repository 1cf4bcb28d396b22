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

/// A tri-state switch from its flag pair: `--x` or `--x=true` is on, `--x=false` or `--no-x`
/// is off, neither leaves the file's value. The pair is declared with `overrides_with`, so
/// only the last one given reaches here.
pub fn switch(on: Option<bool>, off: bool) -> Option<bool> {
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
    fn the_last_of_a_switch_pair_wins_and_neither_keeps_the_file() {
        assert_eq!(switch(None, false), None);
        assert_eq!(switch(Some(true), false), Some(true));
        assert_eq!(switch(Some(false), false), Some(false));
        assert_eq!(switch(None, true), Some(false));
    }
}
