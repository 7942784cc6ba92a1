//! hearth-recovery: the FILESYSTEM recovery mode.
//!
//! Owns the crash-safe journal of hearth-core [`Command`](hearth_core::Command)s and the
//! periodic [`ClusterState`] snapshots in a master's `--recovery-dir`, restoring from
//! them, the directory lock, and the offline tools behind `hearth recovery
//! inspect|verify|export|import`. The byte format is a contract, written down in
//! `recovery/FORMAT.md`.
//!
//! Must not: depend on openraft, or decide anything about the cluster. Restoring replays
//! the journal through [`hearth_core::apply()`]; which commands to journal, when to sync
//! and when to snapshot is the master's business.
//!
//! # Layout
//! - [`Journal`] (`journal.rs`): open = lock + restore + open for append; `append`,
//!   `sync` (group commit, blocking or async), `snapshot` (temp file, fsync, rename,
//!   directory fsync, roll, cleanup).
//! - `group.rs`: the group-commit bookkeeping shared by the flusher thread and waiters.
//! - `restore.rs`: newest valid snapshot + contiguous journal replay; torn-tail and
//!   operator truncation.
//! - `frame.rs`: the record frame (kind, version, length, two CRC32Cs) and payloads.
//! - `layout.rs`: file names, directory listing, durable-write helpers.
//! - `lock.rs`: the `flock`ed `LOCK` file naming its holder.
//! - [`offline`]: inspect, verify, export, import.
//!
//! # Guarantees
//! - A command whose `sync` returned `Ok` survives a crash of the process or the machine.
//! - Restore never starts silently with less state: any damage other than a torn final
//!   record stops `open` with an error naming file, record and offset, unless the operator
//!   names that exact point in [`Options::allow_truncate_at`] (the dropped bytes are kept).
//! - After any crash, restore yields the state after some prefix of the appended commands,
//!   at least as long as the last one acknowledged by `sync`.

mod error;
mod frame;
mod group;
mod journal;
mod layout;
mod lock;
pub mod offline;
mod restore;

pub use error::{Problem, RecoveryError};
pub use journal::{Journal, JournalStats};

use hearth_core::ClusterState;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How a [`Journal`] behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Records between snapshots: [`Journal::snapshot_due`] turns true once this many
    /// were appended since the last one. Default 10,000.
    pub snapshot_every: u64,
    /// The operator's explicit permission to drop a damaged record and everything after
    /// it. Must name exactly the record `open` reported (file and offset); anything else
    /// still refuses to start. The dropped bytes are kept beside the file.
    pub allow_truncate_at: Option<TruncatePoint>,
    /// A segment that has grown past this many bytes is closed (fsynced) and a new one
    /// started, so segments stay small even when snapshots are rare. Default 64 MiB.
    pub segment_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            snapshot_every: 10_000,
            allow_truncate_at: None,
            segment_bytes: 64 << 20,
        }
    }
}

/// Where an operator allows `open` to cut the journal: `FILE:OFFSET`, as printed in a
/// corruption error (e.g. `journal-00000000000000000001.log:40960`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruncatePoint {
    /// The segment's file name inside the recovery dir.
    pub file: String,
    /// The offset of the first bad record in it.
    pub offset: u64,
}

impl fmt::Display for TruncatePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.offset)
    }
}

impl FromStr for TruncatePoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (file, offset) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?}: expected FILE:OFFSET, e.g. journal-1.log:4096"))?;
        let offset = offset
            .parse()
            .map_err(|e| format!("{s:?}: offset {offset:?} is not a number: {e}"))?;
        if file.is_empty() || file.contains('/') {
            return Err(format!(
                "{s:?}: FILE must be a file name inside the recovery dir"
            ));
        }
        Ok(TruncatePoint {
            file: file.to_owned(),
            offset,
        })
    }
}

/// What [`Journal::open`] restored.
#[derive(Clone, Debug, PartialEq)]
pub struct Restored {
    pub state: ClusterState,
    /// The LSN of the last command reflected in `state` (0: nothing ever journaled).
    pub lsn: u64,
    /// The snapshot restore started from, if any.
    pub snapshot_lsn: Option<u64>,
    /// Journal records applied on top of the snapshot.
    pub replayed: u64,
    /// The journal's end that was cut: a torn final record, or the operator's truncation.
    pub truncated_tail: Option<TornTail>,
    /// Newer snapshots that were damaged and passed over (the journal covered them).
    pub skipped_snapshots: Vec<SkippedSnapshot>,
    /// From `open` being called to the state being ready.
    pub elapsed: Duration,
}

/// A cut made at the end of the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    /// The bad record's index in the file (0 = the segment header).
    pub record: u64,
    pub offset: u64,
    /// Bytes removed from `file` (from `offset` to its end).
    pub bytes_dropped: u64,
    /// What was wrong with the record at `offset`.
    pub problem: String,
    /// True when [`Options::allow_truncate_at`] asked for it; false for a torn write.
    pub operator_requested: bool,
    /// Operator truncation: where the dropped bytes were kept.
    pub kept_in: Option<PathBuf>,
    /// Operator truncation: later segments, renamed to `<name>.dropped`.
    pub dropped_segments: Vec<PathBuf>,
}

/// A damaged snapshot that restore passed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedSnapshot {
    pub file: PathBuf,
    pub lsn: u64,
    pub reason: String,
}

/// True when the `failpoints` feature is on and the named failpoint is configured to
/// fire (the `fail` crate's "return"; "panic" panics here).
#[inline(always)]
fn failpoint(name: &'static str) -> bool {
    #[cfg(feature = "failpoints")]
    {
        fail::eval(name, |_| ()).is_some()
    }
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = name;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_point_parses_and_prints() {
        let tp: TruncatePoint = "journal-00000000000000000001.log:40960".parse().unwrap();
        assert_eq!(tp.file, "journal-00000000000000000001.log");
        assert_eq!(tp.offset, 40960);
        assert_eq!(tp.to_string(), "journal-00000000000000000001.log:40960");
        assert!("nocolon".parse::<TruncatePoint>().is_err());
        assert!("a/b.log:1".parse::<TruncatePoint>().is_err());
        assert!("a.log:x".parse::<TruncatePoint>().is_err());
    }

    #[test]
    fn journal_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Journal>();
    }
}
