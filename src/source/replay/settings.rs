//! The replay's settings (`replay.*` in the file, `--replay` and `--replay.*` flags): the
//! archive, and how many ids a pass may remember.

use std::path::PathBuf;

use clap::Args;

use super::{ReplayConfig, DEFAULT_MAX_IDS_PER_PASS};
use crate::config::{count_within, section, with_default, Problems, Sourced};

/// Fewest ids a pass may remember: fewer makes passes of single days.
const MIN_IDS_PER_PASS: usize = 1_000;

section! {
    /// `replay:` of the config file.
    pub struct ReplayFile("replay") {
        path: PathBuf => "a file or directory path",
        max_ids_per_pass: usize => "a number of ids like 2000000",
    }
}

/// The `--replay` flags.
#[derive(Debug, Args, Default)]
pub struct ReplayFlags {
    /// Replay saved activity events: a file or a directory of API pages, JSON arrays of
    /// events, or JSON Lines.
    #[arg(long, value_name = "PATH")]
    pub replay: Option<PathBuf>,

    #[arg(
        long = "replay.max-ids-per-pass",
        value_name = "N",
        help = with_default("Event ids a replay pass may remember (≈20–40 bytes each); a larger archive is read in passes of days", DEFAULT_MAX_IDS_PER_PASS)
    )]
    pub replay_max_ids_per_pass: Option<usize>,
}

impl ReplayConfig {
    /// The replay of `path`, its pass size the flag's over the file's, checked.
    pub fn resolve(
        path: PathBuf,
        file: ReplayFile,
        flags: &ReplayFlags,
        problems: &mut Problems,
    ) -> ReplayConfig {
        let max_ids_per_pass = Sourced::layer(
            file.max_ids_per_pass,
            flags.replay_max_ids_per_pass,
            "replay.max-ids-per-pass",
        );
        ReplayConfig {
            path,
            max_ids_per_pass: count_within(
                max_ids_per_pass,
                MIN_IDS_PER_PASS..,
                "at least 1000 (ids a replay pass may remember)",
                DEFAULT_MAX_IDS_PER_PASS,
                problems,
            ),
        }
    }
}
