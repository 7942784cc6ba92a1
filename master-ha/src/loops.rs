//! The acting master's background loops: scheduling (woken after every commit), the
//! timeouts tick (workers and client apps unheard for too long, drains whose deadline
//! passed, and the end of the recovery wait), and the workers' refusals (committed as
//! what they mean).

use crate::master::Master;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// Starts both loops for `master`, in its span; they run until aborted (the timeouts
/// loop also ends once `stop` is set).
pub fn spawn(master: Arc<Master>, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let span = master.span().clone();
    vec![
        tokio::spawn(scheduling(master.clone()).instrument(span.clone())),
        feedback(master.clone()),
        tokio::spawn(timeouts(master, stop).instrument(span)),
    ]
}

/// Starts the loop that commits the workers' refusals' feedback (part of [`spawn`]).
pub fn feedback(master: Arc<Master>) -> JoinHandle<()> {
    let span = master.span().clone();
    tokio::spawn(refusals(master).instrument(span))
}

/// Commits what each worker's refusal means ([`crate::dispatch::feedback`]): the refused
/// process FAILED and rescheduled, a worker refusing this leader lost.
async fn refusals(master: Arc<Master>) {
    let taken = master
        .refusals
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let Some(mut rx) = taken else { return };
    while let Some(refused) = rx.recv().await {
        crate::metrics::metrics().refusals.inc();
        for cmd in crate::dispatch::feedback(&refused, crate::master::now()) {
            let kind = cmd.kind();
            match master.propose(cmd.clone()).await {
                Ok(_) => {
                    tracing::warn!(command = kind, worker = %refused.worker, why = %refused.why, "a worker refused a command: committed what it means")
                }
                Err(e) => {
                    tracing::debug!(command = kind, error = %e, "a refusal's feedback was refused")
                }
            }
        }
    }
}

/// How often a scheduling pass skipped while the lease lapsed is tried again.
const LEASE_RETRY: Duration = Duration::from_millis(20);

async fn scheduling(master: Arc<Master>) {
    loop {
        master.kick.notified().await;
        loop {
            let placed = master.schedule_once().await;
            if placed > 0 {
                tracing::debug!(placed, "scheduling pass");
            }
            // A pass skipped (or cut short) while the lease had lapsed runs again once it
            // is back: in a quiet cluster no other commit would kick it.
            if master.holds_lease() {
                break;
            }
            tokio::time::sleep(LEASE_RETRY).await;
        }
    }
}

/// How often timeouts are checked: an eighth of the worker timeout, within 20 ms..1 s.
pub fn tick(worker_timeout: Duration) -> Duration {
    (worker_timeout / 8).clamp(Duration::from_millis(20), Duration::from_secs(1))
}

/// Proposes what the liveness rules, the recovery timeout and drain deadlines call for,
/// every tick.
async fn timeouts(master: Arc<Master>, stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(tick(master.config.worker_timeout));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*stop.borrow() {
        every.tick().await;
        for cmd in master.due_commands().await {
            let kind = cmd.kind();
            match master.propose(cmd.clone()).await {
                Ok(_) => tracing::info!(command = kind, detail = ?cmd, "liveness"),
                Err(e) => tracing::debug!(command = kind, error = %e, "liveness command refused"),
            }
        }
    }
}
