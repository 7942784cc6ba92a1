//! The leader's [`Journal`] in Raft mode: commands the leader has applied are proposed to
//! Raft in commit order, batched, and a command counts as durable once Raft has committed
//! it (on disk on a majority) and this master's state machine has applied it.
//!
//! Batching: one proposer task takes every command appended since its last proposal and
//! proposes them as one log entry ([`Request::batch`]), with at most [`WINDOW`] entries
//! in flight. While openraft syncs one entry, the next batch fills, so one fsync and one
//! replication round serve many requests.
//!
//! When this master stops leading, openraft fails the entries in flight; the journal then
//! reports [`JournalError::Deposed`] for everything not yet committed, and the master's
//! callers answer "may or may not have taken effect" instead of success.

use super::{Journal, JournalError, Synced};
use hearth_core::{ClusterState, Command};
use hearth_raft_store::{Raft, Request};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

/// Entries proposed and not yet committed, at most.
pub const WINDOW: usize = 4;
/// Commands in one entry, at most.
pub const MAX_BATCH: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Progress {
    /// Every command up to this sequence number is committed.
    committed: u64,
    deposed: bool,
}

pub struct RaftJournal {
    seq: AtomicU64,
    tx: mpsc::UnboundedSender<(u64, Command)>,
    progress: watch::Receiver<Progress>,
    depose: watch::Sender<Progress>,
}

impl RaftJournal {
    /// Starts the proposer task for a leader of `raft`. Sequence numbers start at 1.
    pub fn start(raft: Raft) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (progress_tx, progress) = watch::channel(Progress {
            committed: 0,
            deposed: false,
        });
        tokio::spawn(propose(raft, rx, progress_tx.clone()).in_current_span());
        RaftJournal {
            seq: AtomicU64::new(0),
            tx,
            progress,
            depose: progress_tx,
        }
    }

    /// This master stopped leading: nothing more is proposed, and every wait not yet
    /// satisfied ends with [`JournalError::Deposed`].
    pub fn deposer(&self) -> impl Fn() + Send + Sync + 'static {
        let tx = self.depose.clone();
        move || {
            tx.send_modify(|p| p.deposed = true);
        }
    }
}

impl Journal for RaftJournal {
    fn append(&self, cmd: &Command) -> Result<u64, JournalError> {
        // Called under the master's state lock, so sequence numbers follow the commit
        // order and the channel keeps it.
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        // A closed channel means the proposer stopped (deposed): the wait reports it.
        let _ = self.tx.send((seq, cmd.clone()));
        Ok(seq)
    }

    fn sync(&self, lsn: u64) -> Synced<'_> {
        let mut progress = self.progress.clone();
        Box::pin(async move {
            let p = progress
                .wait_for(|p| p.committed >= lsn || p.deposed)
                .await
                .map_err(|_| JournalError::Deposed)?;
            if p.committed >= lsn {
                Ok(())
            } else {
                Err(JournalError::Deposed)
            }
        })
    }

    /// Raft snapshots are openraft's (its snapshot policy); nothing to do here.
    fn maybe_snapshot(&self, _state: &ClusterState, _lsn: u64) -> Result<(), JournalError> {
        Ok(())
    }
}

/// The last sequence number of a proposed batch and where its result arrives (openraft's
/// oneshot responder on the tokio runtime).
type Pending = (
    u64,
    tokio::sync::oneshot::Receiver<
        hearth_raft_store::openraft::raft::ClientWriteResult<hearth_raft_store::TypeConfig>,
    >,
);

async fn propose(
    raft: Raft,
    mut rx: mpsc::UnboundedReceiver<(u64, Command)>,
    progress: watch::Sender<Progress>,
) {
    let mut in_flight: VecDeque<Pending> = VecDeque::new();
    let mut deposed = progress.subscribe();
    loop {
        tokio::select! {
            biased;
            _ = async { deposed.wait_for(|p| p.deposed).await.is_ok() } => return,
            done = async { (&mut in_flight.front_mut().expect("non-empty").1).await }, if !in_flight.is_empty() => {
                let (last, _) = in_flight.pop_front().expect("non-empty");
                match done {
                    Ok(Ok(_)) => progress.send_modify(|p| p.committed = p.committed.max(last)),
                    Ok(Err(e)) => {
                        tracing::info!(error = %e, "a proposal failed: no longer leading");
                        progress.send_modify(|p| p.deposed = true);
                        return;
                    }
                    Err(_) => {
                        tracing::info!("raft dropped a proposal: no longer leading");
                        progress.send_modify(|p| p.deposed = true);
                        return;
                    }
                }
            }
            got = rx.recv(), if in_flight.len() < WINDOW => {
                let Some((mut last, cmd)) = got else { return };
                let mut batch = vec![cmd];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok((seq, cmd)) => {
                            last = seq;
                            batch.push(cmd);
                        }
                        Err(_) => break,
                    }
                }
                match raft.client_write_ff(Request::batch(batch)).await {
                    Ok(rx) => in_flight.push_back((last, rx)),
                    Err(fatal) => {
                        tracing::error!(error = %fatal, "raft stopped");
                        progress.send_modify(|p| p.deposed = true);
                        return;
                    }
                }
            }
        }
    }
}
