//! Loading settings: the YAML file read into sections, the problem list, and values that
//! carry their origin. A foundation: it imports no component. Each component declares its
//! own section (`section!`), flags and `resolve` in its `settings` module; the application
//! composes them.
//!
//! Invariants:
//! - every problem is reported at once, each naming the key or flag and what is expected;
//!   the binary exits 2 on any of them;
//! - unknown keys are errors (a typo must not silently fall back to a default);
//! - a value's [`Origin`] travels with it, so a late check still names where it came from.

mod origin;
mod parse;
mod problems;
mod yaml;

pub use origin::{Origin, Sourced};
pub use parse::{count_within, duration_or, flag_pair, switch, with_default};
pub use problems::{Description, Problems};
pub(crate) use yaml::section;
pub use yaml::{Document, Section};
