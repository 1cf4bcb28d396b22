//! Migrations of the state file from the layouts of earlier releases to today's.
//!
//! Invariants:
//! - each step is a pure function from one version's JSON to the next one's, so an old file is
//!   brought up step by step and every step is tested alone;
//! - only versions from [`OLDEST`] to [`CURRENT`] are read: a newer one (a later release's
//!   file, after a downgrade) or an unknown one is refused, never guessed at, and the caller
//!   leaves the file as it is;
//! - a step moves what it knows and keeps everything else as it was.

use serde_json::Value;

/// The version today's build writes.
pub const CURRENT: u32 = 2;
/// The oldest version today's build reads.
pub const OLDEST: u32 = 1;

/// Why a state file's JSON could not be brought up to [`CURRENT`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrationError {
    #[error("it is state version {found}, newer than the version {CURRENT} this build writes (a later release wrote it)")]
    Newer { found: u32 },
    #[error("it is state version {found}, which no release wrote (this build reads versions {OLDEST} to {CURRENT})")]
    Unknown { found: u32 },
    #[error("its version {version} layout has no {field:?} object")]
    Missing { version: u32, field: &'static str },
}

/// Whether a file of `version` can be read, after migrating it when it is older.
pub fn check(version: u32) -> Result<(), MigrationError> {
    match version {
        v if v > CURRENT => Err(MigrationError::Newer { found: v }),
        v if v < OLDEST => Err(MigrationError::Unknown { found: v }),
        _ => Ok(()),
    }
}

/// The whole file of `version`, brought up to [`CURRENT`] (its `version` field too).
pub fn to_current(version: u32, mut file: Value) -> Result<Value, MigrationError> {
    check(version)?;
    let mut at = version;
    while at < CURRENT {
        file = match at {
            1 => v1_to_v2(file)?,
            found => return Err(MigrationError::Unknown { found }),
        };
        at += 1;
    }
    if let Some(object) = file.as_object_mut() {
        object.insert("version".into(), Value::from(CURRENT));
    }
    Ok(file)
}

/// Version 1 kept the live source's status (`source`) and the replay's progress (`replay`)
/// inside the aggregator's state; version 2 keeps them beside it, as the source's own.
pub fn v1_to_v2(mut file: Value) -> Result<Value, MigrationError> {
    let missing = |field| MigrationError::Missing { version: 1, field };
    let object = file.as_object_mut().ok_or(missing("file"))?;
    let aggregate = object
        .get_mut("aggregate")
        .and_then(Value::as_object_mut)
        .ok_or(missing("aggregate"))?;
    let source = aggregate.remove("source").unwrap_or(Value::Null);
    // Files from before replays in passes have none: the reader's default (no pass) holds.
    let replay = aggregate.remove("replay");
    object.insert("source".into(), source);
    if let Some(replay) = replay {
        object.insert("replay".into(), replay);
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v1_moves_the_source_status_and_the_replay_progress_beside_the_aggregate() {
        let v1 = json!({
            "format": "powerbi-exporter-state", "version": 1, "saved_at": 5,
            "aggregate": {"processed": 3, "source": {"up": true}, "replay": {"done": [], "current": null}},
        });
        assert_eq!(
            v1_to_v2(v1).unwrap(),
            json!({
                "format": "powerbi-exporter-state", "version": 1, "saved_at": 5,
                "aggregate": {"processed": 3},
                "source": {"up": true},
                "replay": {"done": [], "current": null},
            })
        );
    }

    #[test]
    fn a_v1_file_of_a_replay_has_no_source_and_one_from_before_passes_no_replay() {
        let v1 = json!({"version": 1, "aggregate": {"processed": 3, "source": null}});
        assert_eq!(
            v1_to_v2(v1).unwrap(),
            json!({"version": 1, "aggregate": {"processed": 3}, "source": null})
        );
    }

    #[test]
    fn a_v1_file_without_an_aggregate_is_not_migrated() {
        assert_eq!(
            v1_to_v2(json!({"version": 1})),
            Err(MigrationError::Missing {
                version: 1,
                field: "aggregate"
            })
        );
        assert_eq!(
            v1_to_v2(json!([1])),
            Err(MigrationError::Missing {
                version: 1,
                field: "file"
            })
        );
    }

    #[test]
    fn to_current_runs_every_step_and_sets_the_version() {
        let v1 = json!({"version": 1, "aggregate": {"source": {"up": false}}});
        assert_eq!(
            to_current(1, v1).unwrap(),
            json!({"version": 2, "aggregate": {}, "source": {"up": false}})
        );
        let v2 = json!({"version": 2, "aggregate": {}, "source": null, "replay": {}});
        assert_eq!(to_current(2, v2.clone()).unwrap(), v2);
    }

    #[test]
    fn newer_and_unknown_versions_are_refused() {
        assert_eq!(
            to_current(3, json!({})),
            Err(MigrationError::Newer { found: 3 })
        );
        assert_eq!(
            to_current(0, json!({})),
            Err(MigrationError::Unknown { found: 0 })
        );
        assert_eq!(check(CURRENT), Ok(()));
        assert_eq!(check(OLDEST), Ok(()));
    }
}
