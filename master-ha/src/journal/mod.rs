//! Where the acting master makes committed commands durable, one [`Journal`] per
//! recovery mode: [`NoJournal`] (none: nothing survives a restart), [`FsJournal`]
//! (filesystem: hearth-recovery's fsynced journal and snapshots), [`RaftJournal`] (raft:
//! proposals batched into Raft entries, durable once a majority has them).

mod fs;
mod raft;

pub use fs::FsJournal;
pub use raft::{RaftJournal, MAX_BATCH, WINDOW};

use hearth_core::{ClusterState, Command};
use std::future::Future;
use std::pin::Pin;

/// Why a journal could not make a command durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The disk failed: memory is ahead of disk, the process must stop.
    #[error("{0}")]
    Failed(String),
    /// This master stopped leading before the command was committed (Raft): it may or may
    /// not be committed by the next leader. Whoever asked must be told so.
    #[error("no longer leading")]
    Deposed,
}

/// What [`Journal::sync`] returns.
pub type Synced<'a> = Pin<Box<dyn Future<Output = Result<(), JournalError>> + Send + 'a>>;

/// Where committed commands are made durable. The master appends under its state lock
/// (so the journal's order is the commit order), then waits for `sync` outside the lock
/// before it answers anyone or sends any resulting action: concurrent requests share one
/// fsync (group commit).
pub trait Journal: Send + Sync {
    /// Writes `cmd` (not yet durable) and returns its sequence number.
    fn append(&self, cmd: &Command) -> Result<u64, JournalError>;
    /// Resolves once everything up to `lsn` is durable.
    fn sync(&self, lsn: u64) -> Synced<'_>;
    /// Called after commits with the state as of `lsn`: writes a snapshot when one is due.
    fn maybe_snapshot(&self, state: &ClusterState, lsn: u64) -> Result<(), JournalError>;
}

/// `--recovery-mode none`: nothing survives a restart of the master.
#[derive(Default)]
pub struct NoJournal {
    lsn: std::sync::atomic::AtomicU64,
}

impl NoJournal {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Journal for NoJournal {
    fn append(&self, _cmd: &Command) -> Result<u64, JournalError> {
        Ok(self.lsn.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1)
    }
    fn sync(&self, _lsn: u64) -> Synced<'_> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn maybe_snapshot(&self, _state: &ClusterState, _lsn: u64) -> Result<(), JournalError> {
        Ok(())
    }
}
