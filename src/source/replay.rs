//! Replay: saved API pages, JSON arrays of events and JSON Lines, from a file or a directory.
//!
//! Files are listed when the source is built (a bad path fails start-up with its reason) and
//! handed on one by one, sorted by path, as [`Body::File`]: the decoder streams each from disk,
//! so memory never grows with the size or number of files.

use std::path::{Path, PathBuf};

use super::{
    Body, Document, DocumentSender, Source, SourceError, SourceFuture, SourceMessage, Timing,
};

const EXTENSIONS: &[&str] = &["json", "jsonl", "ndjson"];

#[derive(Debug)]
pub struct Replay {
    files: Vec<PathBuf>,
}

impl Replay {
    /// A file is replayed whatever its name; a directory contributes its `.json`, `.jsonl` and
    /// `.ndjson` files, recursively, skipping hidden entries.
    pub fn new(path: &Path) -> Result<Self, SourceError> {
        let err = |source| SourceError::ReplayPath {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(err)?;
        if !meta.is_dir() {
            std::fs::File::open(path).map_err(err)?;
            return Ok(Replay {
                files: vec![path.to_path_buf()],
            });
        }
        let mut files = Vec::new();
        collect(path, &mut files)?;
        files.sort();
        if files.is_empty() {
            return Err(SourceError::ReplayEmpty(path.to_path_buf()));
        }
        Ok(Replay { files })
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let err = |source| SourceError::ReplayPath {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let path = entry.map_err(err)?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            out.push(path);
        }
    }
    Ok(())
}

impl Source for Replay {
    fn timing(&self) -> Timing {
        Timing::Historical
    }

    fn run(self: Box<Self>, out: DocumentSender) -> SourceFuture {
        Box::pin(async move {
            for path in self.files {
                let doc = Document {
                    origin: path.display().to_string(),
                    body: Body::File(path),
                };
                if out.send(SourceMessage::Document(doc)).await.is_err() {
                    break;
                }
            }
            Ok(())
        })
    }
}
