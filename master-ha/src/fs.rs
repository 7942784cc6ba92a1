//! `--recovery-mode filesystem`: hearth-recovery's crash-safe journal behind the
//! master's [`Journal`] interface.

use crate::node::{Journal, JournalError};
use hearth_core::{ClusterState, Command};
use std::future::Future;
use std::pin::Pin;

/// The journal and snapshots in a recovery directory (see recovery/FORMAT.md).
pub struct FsJournal(pub hearth_recovery::Journal);

impl Journal for FsJournal {
    fn append(&self, cmd: &Command) -> Result<u64, String> {
        self.0.append(cmd).map_err(|e| e.to_string())
    }

    fn sync(
        &self,
        lsn: u64,
    ) -> Pin<Box<dyn Future<Output = Result<(), JournalError>> + Send + '_>> {
        Box::pin(async move {
            self.0
                .sync(lsn)
                .await
                .map_err(|e| JournalError::Failed(e.to_string()))
        })
    }

    fn maybe_snapshot(&self, state: &ClusterState, lsn: u64) -> Result<(), String> {
        if !self.0.snapshot_due() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        self.0.snapshot(state, lsn).map_err(|e| e.to_string())?;
        tracing::info!(
            lsn,
            took_ms = started.elapsed().as_millis() as u64,
            "snapshot written"
        );
        Ok(())
    }
}
