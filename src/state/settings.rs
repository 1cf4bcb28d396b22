//! The state directory's setting (`state.dir`, `--state.dir`).

use std::path::PathBuf;

use clap::Args;

use crate::config::{section, Description, Sourced};

section! {
    /// `state:` of the config file.
    pub struct StateFile("state") {
        dir: PathBuf => "a directory path",
    }
}

/// Flag names, each spelled once: in its `#[arg]` and in the origin of its value.
const DIR_FLAG: &str = "state.dir";

/// The `--state.*` flags.
#[derive(Debug, Args, Default)]
pub struct StateFlags {
    /// Directory for the durable state: counters, distinct users, dedup set and request ledgers
    /// continue across restarts. Without it, state lives in memory only.
    #[arg(long = DIR_FLAG, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// The state directory, the flag over the file; `None`: state lives in memory.
pub fn resolve(file: StateFile, flags: &StateFlags) -> Option<PathBuf> {
    Sourced::layer(file.dir, flags.state_dir.clone(), DIR_FLAG).map(|dir| dir.value)
}

/// The `state.*` lines of `check-config`.
pub fn describe(dir: Option<&PathBuf>, out: &mut Description) {
    match dir {
        Some(dir) => out.line("state.dir", dir.display()),
        None => out.line("state.dir", "(none: in memory)"),
    }
}
