//! The one error type at this crate's boundary. What can be wrong with one record
//! ([`Problem`]) is defined with the record framing in `frame.rs`.
//!
//! Every message names the directory and says what to do next; a bad record is named by
//! file, record index (0 = a segment's header) and byte offset, so an operator can find
//! it with `hearth recovery verify` and a hex dump.

use std::io;
use std::path::{Path, PathBuf};

pub use crate::frame::Problem;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("recovery dir {}: cannot {action}: {source}; check the disk, free space and the directory's permissions", dir.display())]
    Io {
        dir: PathBuf,
        /// What was being done, as a verb phrase ("fsync journal-…log").
        action: String,
        #[source]
        source: io::Error,
    },

    #[error("recovery dir {} is locked by {holder}; stop that master (or tool) first: two writers on one directory would corrupt it", dir.display())]
    Locked { dir: PathBuf, holder: String },

    #[error("recovery dir {}: {file} record {record} at offset {offset} {problem}; run 'hearth recovery verify --dir {}'{hint}", dir.display(), dir.display())]
    Corrupt {
        dir: PathBuf,
        /// File name inside `dir`.
        file: String,
        /// Index of the record in the file, 0 = the segment header.
        record: u64,
        offset: u64,
        problem: Problem,
        /// What the operator may do about it (may be empty).
        hint: String,
    },

    #[error("recovery dir {}: {detail}; run 'hearth recovery verify --dir {}'", dir.display(), dir.display())]
    Inconsistent { dir: PathBuf, detail: String },

    #[error("recovery dir {}: the journal stopped accepting writes after an earlier failure ({cause}); restart the master so it restores from what is on disk", dir.display())]
    Poisoned { dir: PathBuf, cause: String },

    #[error("recovery dir {}: {what}", dir.display())]
    Misuse { dir: PathBuf, what: String },

    #[error("export file {}: {problem}", file.display())]
    Export { file: PathBuf, problem: String },

    #[error("recovery dir {} already holds {entry}; import writes only into an empty directory: choose a new one or move the old files away", dir.display())]
    NotEmpty { dir: PathBuf, entry: String },

    /// A test failpoint fired (only with the `failpoints` feature).
    #[error("failpoint {0} fired")]
    Injected(&'static str),
}

impl RecoveryError {
    pub(crate) fn io(dir: &Path, action: impl Into<String>, source: io::Error) -> Self {
        RecoveryError::Io {
            dir: dir.to_path_buf(),
            action: action.into(),
            source,
        }
    }

    pub(crate) fn inconsistent(dir: &Path, detail: impl Into<String>) -> Self {
        RecoveryError::Inconsistent {
            dir: dir.to_path_buf(),
            detail: detail.into(),
        }
    }

    pub(crate) fn misuse(dir: &Path, what: impl Into<String>) -> Self {
        RecoveryError::Misuse {
            dir: dir.to_path_buf(),
            what: what.into(),
        }
    }
}
