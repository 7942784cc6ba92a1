//! hearth-raft-store: the Raft side of a master's persistence.
//!
//! Owns: the openraft 0.9 [`TypeConfig`] whose app data ([`Request`]) wraps hearth-core's
//! [`Command`] and whose state machine is [`hearth_core::apply`]; the RocksDB log store
//! ([`LogStore`]) and state-machine store ([`StateMachineStore`]) over one directory;
//! snapshots; seeding a fresh directory from a FILESYSTEM export ([`seed_from_export`]).
//!
//! Must not: know about workers' processes, schedule, or decide anything. `apply` decides;
//! this crate stores what Raft hands it and replays it in order.
//!
//! # Layout
//! - `db` (private): the RocksDB directory. Column families `log` (key =
//!   big-endian log index, value = `Entry`), `meta` (vote, committed, last purged
//!   log id), `sm` (the last snapshot: `SnapshotMeta` + the snapshot document).
//! - [`codec`]: how values are encoded, on disk and between masters. Written compact (a
//!   `0x01` marker byte, then postcard); read compact or as JSON, the form everything
//!   written before the compact one used, so older data dirs open and a log may hold
//!   both. The snapshot document is still written as JSON (see [`SnapshotDoc`]).
//! - [`log_store`] holds [`LogStore`], openraft's `RaftLogStorage` + `RaftLogReader`.
//! - [`state_machine`] holds [`StateMachineStore`] (`RaftStateMachine` + `RaftSnapshotBuilder`)
//!   and [`StateReader`], the master's read-only view of the applied `ClusterState`.
//! - [`seed`] holds [`seed_from_export`].
//!
//! # Durability
//! Every write that Raft's safety depends on is synced (`WriteOptions::set_sync`) before
//! the call returns: `save_vote`, `append` (the `LogFlushed` callback fires after the
//! sync), `truncate`, `purge`, a built snapshot and an installed snapshot. `save_committed`
//! is not synced: losing it on a machine crash only means re-applying less on restart,
//! which openraft tolerates (it is an optimisation, never a promise).
//!
//! The applied `ClusterState` is persisted **only through snapshots**: `apply` changes
//! memory. After a restart the state machine is the last snapshot, and openraft replays
//! the log from there (up to the saved committed index at once, the rest as the leader
//! commits it). Why: apply sits on the write path of every command, and a whole-state
//! write per apply would cost an fsync (or a large unsynced write) per batch for nothing
//! the log does not already hold; openraft only purges log entries a synced snapshot
//! covers, so nothing applied can be lost. Snapshot frequency (openraft's
//! `snapshot_policy`) bounds the replay on restart.
//!
//! Calls into RocksDB block the calling task for the duration of one write (an fsync for
//! the synced ones). openraft 0.9 awaits storage calls one after another anyway.

// openraft's storage traits fix the error type (`StorageError`, ~224 bytes); the private
// helpers that feed those trait methods return it too rather than convert twice.
#![allow(clippy::result_large_err)]

pub mod codec;
mod db;
pub mod log_store;
pub mod seed;
pub mod state_machine;

use hearth_core::{Applied, Command, Rejection};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::path::{Path, PathBuf};

pub use log_store::LogStore;
pub use openraft;
pub use openraft::BasicNode;
pub use seed::seed_from_export;
pub use state_machine::{SnapshotDoc, StateMachineStore, StateReader};

/// A Raft node id: the master's `--id`.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// hearth's openraft type configuration: log entries carry [`Request`]s, the state
    /// machine answers [`Response`]s, nodes are addressed by their gRPC `host:port`
    /// ([`BasicNode::addr`]).
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The `Raft` handle for hearth.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id.
pub type LogId = openraft::LogId<NodeId>;
/// openraft's storage error for this config.
pub type StorageError = openraft::StorageError<NodeId>;

/// The app data of a Raft log entry: a batch of replicated commands, applied in order.
///
/// The leader batches the commands committed while the previous append was being synced
/// into one entry, so one fsync (and one replication round) serves many requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub commands: Vec<Command>,
}

impl Request {
    /// One command.
    pub fn new(command: Command) -> Self {
        Self::batch(vec![command])
    }

    /// Several commands, applied in order, as one log entry.
    pub fn batch(commands: Vec<Command>) -> Self {
        Request { commands }
    }
}

impl From<Command> for Request {
    fn from(command: Command) -> Self {
        Request::new(command)
    }
}

/// What applying one log entry answered: one result per command of the batch.
///
/// For a `Normal` entry each is exactly what [`hearth_core::apply`] returned. Blank and
/// membership entries (which openraft writes itself and whose answers no client sees)
/// answer no results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub results: Vec<Result<Applied, Rejection>>,
}

/// Why the store could not be opened or seeded.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("raft store {dir}: cannot open RocksDB ({source}); is another master running on this directory?")]
    Open {
        dir: PathBuf,
        source: rocksdb::Error,
    },
    #[error("raft store {dir}: {what} is unreadable ({reason}); restore the directory from a peer or re-seed it")]
    Corrupt {
        dir: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("raft store {dir}: cannot write {what} ({reason})")]
    Write {
        dir: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("raft store {dir} already holds data; seeding needs a fresh directory (move it aside first)")]
    NotFresh { dir: PathBuf },
    #[error("seeding from an export: {0}")]
    Export(#[from] hearth_recovery::RecoveryError),
}

/// Opens (or creates) the store in `dir` and returns its two handles over one RocksDB.
///
/// The state machine starts from the last snapshot in `dir` (empty state if none);
/// openraft replays the log after it once `Raft::new` is given these handles.
pub async fn open(dir: &Path) -> Result<(LogStore, StateMachineStore), StoreError> {
    let db = db::open_db(dir).map_err(|source| StoreError::Open {
        dir: dir.to_path_buf(),
        source,
    })?;
    let sm = StateMachineStore::load(db.clone(), dir)?;
    Ok((LogStore::new(db), sm))
}
