//! The one error type at this crate's boundary, and what can be wrong with one record.
//!
//! Every message names the directory and says what to do next; a bad record is named by
//! file, record index (0 = a segment's header) and byte offset, so an operator can find
//! it with `hearth recovery verify` and a hex dump.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What is wrong with one record. Displayed after "`<file>` record N at offset M ".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Fewer bytes than a record header are left in the file.
    ShortHeader { available: u64 },
    /// The header's own CRC32C does not match (kind, version, flags or length damaged).
    BadHeaderChecksum,
    /// A valid header of a format version this build does not read.
    UnknownVersion(u8),
    /// A valid header with flags this build does not know.
    UnknownFlags(u16),
    /// A valid header of the wrong record type for its place in the file.
    UnexpectedKind { found: u8, expected: &'static str },
    /// The header declares more payload than the file holds.
    PastEof { len: u64, available: u64 },
    /// The payload's CRC32C does not match.
    BadChecksum,
    /// The checksums match but the payload does not decode (a bug or a foreign file).
    Decode(String),
    /// The record's LSN is not the one its position requires.
    LsnMismatch { expected: u64, found: u64 },
    /// A segment header whose first LSN disagrees with the file name.
    HeaderMismatch { name_lsn: u64, header_lsn: u64 },
    /// A segment starts at an LSN that does not follow what comes before it.
    SegmentGap { expected: u64, first: u64 },
    /// A snapshot file holds bytes after its one record.
    TrailingBytes(u64),
}

impl Problem {
    /// Whether an interrupted write can produce this (only such damage at the very end of
    /// the newest segment is truncated as a torn tail; anything else is corruption).
    pub fn may_be_torn(&self) -> bool {
        matches!(
            self,
            Problem::ShortHeader { .. }
                | Problem::BadHeaderChecksum
                | Problem::PastEof { .. }
                | Problem::BadChecksum
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::ShortHeader { available } => write!(
                f,
                "is cut short: only {available} of the {} header bytes are there",
                crate::frame::HEADER_LEN
            ),
            Problem::BadHeaderChecksum => f.write_str("has a bad header checksum"),
            Problem::UnknownVersion(v) => write!(
                f,
                "has format version {v}, which this build does not read (it reads version {}); \
                 use the hearth release that wrote it",
                crate::frame::VERSION
            ),
            Problem::UnknownFlags(x) => write!(f, "has unknown flags 0x{x:04x}"),
            Problem::UnexpectedKind { found, expected } => write!(
                f,
                "has record type 0x{found:02x} where {expected} was expected"
            ),
            Problem::PastEof { len, available } => write!(
                f,
                "is cut short: it declares {len} payload bytes but only {available} are there"
            ),
            Problem::BadChecksum => f.write_str("has a bad checksum"),
            Problem::Decode(e) => write!(f, "has valid checksums but does not decode: {e}"),
            Problem::LsnMismatch { expected, found } => write!(
                f,
                "holds lsn {found} where lsn {expected} was expected (a gap or a repeat)"
            ),
            Problem::HeaderMismatch {
                name_lsn,
                header_lsn,
            } => write!(
                f,
                "is a segment header for lsn {header_lsn} but the file name says {name_lsn}"
            ),
            Problem::SegmentGap { expected, first } => write!(
                f,
                "starts the segment at lsn {first} but the journal before it ends at lsn {} \
                 (records are missing)",
                expected.saturating_sub(1)
            ),
            Problem::TrailingBytes(n) => write!(f, "is followed by {n} unexpected bytes"),
        }
    }
}

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
