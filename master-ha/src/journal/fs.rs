//! `--recovery-mode filesystem`: hearth-recovery's crash-safe journal behind the
//! master's [`Journal`] interface.

use super::{Journal, JournalError, Synced};
use hearth_core::{ClusterState, Command};

/// The journal and snapshots in a recovery directory (see recovery/FORMAT.md).
pub struct FsJournal(pub hearth_recovery::Journal);

fn failed(e: impl std::fmt::Display) -> JournalError {
    JournalError::Failed(e.to_string())
}

impl Journal for FsJournal {
    fn append(&self, cmd: &Command) -> Result<u64, JournalError> {
        self.0.append(cmd).map_err(failed)
    }

    fn sync(&self, lsn: u64) -> Synced<'_> {
        Box::pin(async move { self.0.sync(lsn).await.map_err(failed) })
    }

    fn maybe_snapshot(&self, state: &ClusterState, lsn: u64) -> Result<(), JournalError> {
        if !self.0.snapshot_due() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        self.0.snapshot(state, lsn).map_err(failed)?;
        tracing::info!(
            lsn,
            took_ms = started.elapsed().as_millis() as u64,
            "snapshot written"
        );
        Ok(())
    }
}
