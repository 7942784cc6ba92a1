//! The recovery directory's files: names, listing, and the durable-write helpers.
//!
//! ```text
//! LOCK                                   pid and host of the holder (flock'd)
//! snapshot-00000000000000010000.snap     state as of lsn 10000
//! journal-00000000000000010001.log       entries from lsn 10001
//! *.tmp                                  a snapshot or export being written (removed at open)
//! *.dropped*                             bytes an operator-requested truncation set aside
//! ```

use crate::error::RecoveryError;
use crate::frame;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) const LOCK_FILE: &str = "LOCK";

pub(crate) fn segment_name(first_lsn: u64) -> String {
    format!("journal-{first_lsn:020}.log")
}

pub(crate) fn snapshot_name(lsn: u64) -> String {
    format!("snapshot-{lsn:020}.snap")
}

/// A snapshot or segment file, with the LSN its name carries.
#[derive(Clone, Debug)]
pub(crate) struct FileRef {
    pub lsn: u64,
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
}

/// What a directory holds, each list sorted by LSN.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub snapshots: Vec<FileRef>,
    pub segments: Vec<FileRef>,
    /// Unfinished temp files of a crashed snapshot or export.
    pub temps: Vec<PathBuf>,
    /// Anything else except LOCK (set-aside `.dropped` files, strangers).
    pub others: Vec<String>,
}

fn lsn_between(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Lists `dir`. Two files naming the same LSN (say `journal-3.log` and
/// `journal-0003.log`) are an error: which one is the journal cannot be guessed.
pub(crate) fn list(dir: &Path) -> Result<Listing, RecoveryError> {
    let mut out = Listing::default();
    let entries = fs::read_dir(dir).map_err(|e| RecoveryError::io(dir, "list the directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| RecoveryError::io(dir, "list the directory", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let bytes = || -> Result<u64, RecoveryError> {
            let meta = entry
                .metadata()
                .map_err(|e| RecoveryError::io(dir, format!("stat {name}"), e))?;
            Ok(meta.len())
        };
        if let Some(lsn) = lsn_between(&name, "journal-", ".log") {
            let bytes = bytes()?;
            out.segments.push(FileRef {
                lsn,
                name,
                path,
                bytes,
            });
        } else if let Some(lsn) = lsn_between(&name, "snapshot-", ".snap") {
            let bytes = bytes()?;
            out.snapshots.push(FileRef {
                lsn,
                name,
                path,
                bytes,
            });
        } else if name.ends_with(".tmp") {
            out.temps.push(path);
        } else if name != LOCK_FILE {
            out.others.push(name);
        }
    }
    for files in [&mut out.segments, &mut out.snapshots] {
        files.sort_by_key(|f| f.lsn);
        if let Some(w) = files.windows(2).find(|w| w[0].lsn == w[1].lsn) {
            return Err(RecoveryError::inconsistent(
                dir,
                format!(
                    "{} and {} both claim lsn {}; keep the right one and move the other away",
                    w[0].name, w[1].name, w[0].lsn
                ),
            ));
        }
    }
    out.others.sort();
    out.temps.sort();
    Ok(out)
}

/// Creates `dir` if it is missing, durably (its entry in the parent is fsynced too).
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), RecoveryError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| RecoveryError::io(dir, "create the directory", e))?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Makes the directory's entries (creates, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), RecoveryError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RecoveryError::io(dir, "fsync the directory", e))
}

/// Writes `bytes` to `<name>.tmp` and fsyncs it; [`commit_temp`] renames it into place.
pub(crate) fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, RecoveryError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let result = File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(|e| RecoveryError::io(dir, format!("write {name}.tmp"), e));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| tmp)
}

/// Renames a synced temp file to `name` and fsyncs the directory.
pub(crate) fn commit_temp(dir: &Path, tmp: &Path, name: &str) -> Result<(), RecoveryError> {
    fs::rename(tmp, dir.join(name))
        .map_err(|e| RecoveryError::io(dir, format!("rename {} to {name}", tmp.display()), e))?;
    sync_dir(dir)
}

/// Creates `journal-<first_lsn>.log` holding only its header, durably (file and
/// directory entry), and returns it positioned at its end.
pub(crate) fn create_segment(dir: &Path, first_lsn: u64) -> Result<(File, u64), RecoveryError> {
    let name = segment_name(first_lsn);
    let path = dir.join(&name);
    let header = frame::segment_header(first_lsn);
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| RecoveryError::io(dir, format!("create {name}"), e))?;
    let written = (&created)
        .write_all(&header)
        .and_then(|()| created.sync_all())
        .map_err(|e| RecoveryError::io(dir, format!("write the header of {name}"), e))
        .and_then(|()| sync_dir(dir));
    if let Err(e) = written {
        // Leave no half-made segment behind: the next roll creates it again.
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok((created, header.len() as u64))
}

/// Removes a file, treating "already gone" as done.
pub(crate) fn remove(dir: &Path, path: &Path) -> Result<(), RecoveryError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RecoveryError::io(
            dir,
            format!("remove {}", path.display()),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        assert_eq!(lsn_between(&segment_name(3), "journal-", ".log"), Some(3));
        assert_eq!(segment_name(3), "journal-00000000000000000003.log");
        assert_eq!(
            lsn_between(&snapshot_name(u64::MAX), "snapshot-", ".snap"),
            Some(u64::MAX)
        );
        assert_eq!(
            lsn_between("journal-000003.log", "journal-", ".log"),
            Some(3)
        );
        assert_eq!(lsn_between("journal-.log", "journal-", ".log"), None);
        assert_eq!(lsn_between("journal-3a.log", "journal-", ".log"), None);
        assert_eq!(lsn_between("journal-3.log.tmp", "journal-", ".log"), None);
    }

    #[test]
    fn duplicate_lsns_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("journal-3.log"), b"").unwrap();
        fs::write(dir.path().join("journal-0003.log"), b"").unwrap();
        let err = list(dir.path()).unwrap_err().to_string();
        assert!(err.contains("both claim lsn 3"), "{err}");
    }
}
