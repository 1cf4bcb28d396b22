//! Reading the small files an operator names — the configuration, web config, keys,
//! certificates, secrets and token files — and writing a file whole or not at all.
//!
//! Invariants: [`write_atomically`] leaves either the old file or the new one, never a part;
//! only a regular file (a symlink to one is fine: Kubernetes mounts secrets that way)
//! of at most [`SMALL_FILE_LIMIT`] bytes is read, so a FIFO, a device such as `/dev/zero` or a
//! huge file named by mistake is a clear error, never a hang or an unbounded allocation.

use std::io::{self, Read};
use std::path::Path;

/// Largest file read as configuration, key or certificate.
pub const SMALL_FILE_LIMIT: u64 = 4 * 1024 * 1024;

/// Writes `bytes` to `path` through a temporary file beside it, synced and renamed, then
/// syncs the directory: after a crash the file is the old one or the new one, whole.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    std::fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
}

/// The bytes of a small regular file.
pub fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(SMALL_FILE_LIMIT + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > SMALL_FILE_LIMIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {} MiB", SMALL_FILE_LIMIT >> 20),
        ));
    }
    Ok(bytes)
}

/// The text of a small regular file (UTF-8).
pub fn read_small_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read_small(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("progress.json");
        write_atomically(&path, b"first, and longer").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["progress.json"]);
    }

    #[test]
    fn devices_directories_and_large_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = |p: &Path| read_small(p).unwrap_err().to_string();
        assert_eq!(err(Path::new("/dev/zero")), "not a regular file");
        assert_eq!(err(dir.path()), "not a regular file");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; SMALL_FILE_LIMIT as usize + 1]).unwrap();
        assert_eq!(err(&big), "larger than 4 MiB");
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "key: value\n").unwrap();
        assert_eq!(read_small_to_string(&ok).unwrap(), "key: value\n");
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&ok, &link).unwrap();
            assert_eq!(read_small(&link).unwrap(), b"key: value\n");
        }
    }
}
