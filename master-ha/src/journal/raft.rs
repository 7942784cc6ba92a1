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
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

/// Entries proposed and not yet committed, at most.
pub const WINDOW: usize = 4;
/// Commands in one entry, at most.
pub const MAX_BATCH: usize = 4096;

/// Who waits for which sequence number. Each waiter is woken once, when its command is
/// committed or the leader is deposed, not at every commit as with a shared watch: 5,000
/// re-registrations waiting through a few dozen commits were over 100,000 wake-ups.
#[derive(Default)]
struct Waiters(Mutex<Waiting>);

#[derive(Default)]
struct Waiting {
    /// Every command up to this sequence number is committed.
    committed: u64,
    deposed: bool,
    /// Sequence number → who waits for it (true: committed; false: deposed).
    waiting: BTreeMap<u64, Vec<oneshot::Sender<bool>>>,
}

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once `lsn` is committed (`Ok`) or the leader was deposed first.
    async fn wait(&self, lsn: u64) -> Result<(), JournalError> {
        let rx = {
            let mut w = self.lock();
            if w.committed >= lsn {
                return Ok(());
            }
            if w.deposed {
                return Err(JournalError::Deposed);
            }
            let (tx, rx) = oneshot::channel();
            w.waiting.entry(lsn).or_default().push(tx);
            rx
        };
        match rx.await {
            Ok(true) => Ok(()),
            _ => Err(JournalError::Deposed),
        }
    }

    /// Everything up to `last` is committed: wakes whoever waits for it.
    fn committed(&self, last: u64) {
        let done = {
            let mut w = self.lock();
            w.committed = w.committed.max(last);
            let next = w.committed + 1;
            let later = w.waiting.split_off(&next);
            std::mem::replace(&mut w.waiting, later)
        };
        for tx in done.into_values().flatten() {
            let _ = tx.send(true);
        }
    }

    /// The leader was deposed: every wait not yet satisfied fails, and every later one.
    fn depose(&self) {
        let all = {
            let mut w = self.lock();
            w.deposed = true;
            std::mem::take(&mut w.waiting)
        };
        for tx in all.into_values().flatten() {
            let _ = tx.send(false);
        }
    }
}

pub struct RaftJournal {
    seq: AtomicU64,
    tx: mpsc::UnboundedSender<(u64, Command)>,
    waiters: Arc<Waiters>,
    /// Set when this master stops leading: the proposer stops.
    deposed: watch::Sender<bool>,
}

impl RaftJournal {
    /// Starts the proposer task for a leader of `raft`. Sequence numbers start at 1.
    pub fn start(raft: Raft) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let waiters = Arc::new(Waiters::default());
        let deposed = watch::Sender::new(false);
        tokio::spawn(propose(raft, rx, Arc::clone(&waiters), deposed.clone()).in_current_span());
        RaftJournal {
            seq: AtomicU64::new(0),
            tx,
            waiters,
            deposed,
        }
    }

    /// This master stopped leading: nothing more is proposed, and every wait not yet
    /// satisfied ends with [`JournalError::Deposed`].
    pub fn deposer(&self) -> impl Fn() + Send + Sync + 'static {
        let (deposed, waiters) = (self.deposed.clone(), Arc::clone(&self.waiters));
        move || {
            deposed.send_replace(true);
            waiters.depose();
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
        Box::pin(self.waiters.wait(lsn))
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
    waiters: Arc<Waiters>,
    deposed: watch::Sender<bool>,
) {
    let mut in_flight: VecDeque<Pending> = VecDeque::new();
    let mut stopped = deposed.subscribe();
    let stop = |why: &str| {
        tracing::info!("{why}: no longer leading");
        deposed.send_replace(true);
        waiters.depose();
    };
    loop {
        tokio::select! {
            biased;
            _ = async { stopped.wait_for(|d| *d).await.is_ok() } => return,
            done = async { (&mut in_flight.front_mut().expect("non-empty").1).await }, if !in_flight.is_empty() => {
                let (last, _) = in_flight.pop_front().expect("non-empty");
                match done {
                    Ok(Ok(_)) => waiters.committed(last),
                    Ok(Err(e)) => return stop(&format!("a proposal failed ({e})")),
                    Err(_) => return stop("raft dropped a proposal"),
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
                        deposed.send_replace(true);
                        waiters.depose();
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_waiter_is_woken_when_its_command_is_committed_or_the_leader_deposed() {
        let w = Arc::new(Waiters::default());
        let wait = |lsn| {
            tokio::spawn({
                let w = Arc::clone(&w);
                async move { w.wait(lsn).await }
            })
        };
        let (a, b, c) = (wait(1), wait(3), wait(5));
        tokio::task::yield_now().await;
        w.committed(3);
        assert_eq!(a.await.unwrap(), Ok(()));
        assert_eq!(b.await.unwrap(), Ok(()));
        assert!(!c.is_finished());
        // Committed already: at once.
        assert_eq!(w.wait(2).await, Ok(()));
        w.depose();
        assert_eq!(c.await.unwrap(), Err(JournalError::Deposed));
        // After the leader was deposed, nothing not yet committed is waited for.
        assert_eq!(w.wait(4).await, Err(JournalError::Deposed));
        assert_eq!(w.wait(3).await, Ok(()));
        assert!(w.lock().waiting.is_empty());
    }
}
