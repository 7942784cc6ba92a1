//! Commands about a worker as a whole: it is lost, forgotten or decommissioned.
//! (Registration reconciles what a worker reports, so it lives in [`crate::recovery`].)

use crate::command::{Action, Outcome, Rejection};
use crate::ids::WorkerId;
use crate::lifecycle;
use crate::state::{ClusterState, WorkerState};
use crate::time::Millis;

/// The worker stopped heartbeating: DEAD, unless it already is.
pub(crate) fn worker_lost(
    state: &mut ClusterState,
    worker: &WorkerId,
    reason: &str,
    at: Millis,
    actions: &mut Vec<Action>,
) -> Result<Outcome, Rejection> {
    let w = state
        .workers
        .get(worker)
        .ok_or_else(|| Rejection::UnknownWorker(worker.clone()))?;
    if w.state == WorkerState::Dead {
        return Ok(Outcome::Unchanged);
    }
    lifecycle::lose_worker(state, worker, reason, at, actions);
    Ok(Outcome::Done)
}

/// Drops a DEAD worker from the list.
pub(crate) fn forget_worker(
    state: &mut ClusterState,
    worker: &WorkerId,
) -> Result<Outcome, Rejection> {
    let w = state
        .workers
        .get(worker)
        .ok_or_else(|| Rejection::UnknownWorker(worker.clone()))?;
    if w.state != WorkerState::Dead {
        return Err(Rejection::wrong_state(
            worker,
            w.state,
            "only DEAD workers are forgotten",
        ));
    }
    state.workers.remove(worker);
    Ok(Outcome::Done)
}

/// No new placements on the worker; what runs there keeps running.
pub(crate) fn decommission_worker(
    state: &mut ClusterState,
    worker: &WorkerId,
) -> Result<Outcome, Rejection> {
    let w = state
        .workers
        .get_mut(worker)
        .ok_or_else(|| Rejection::UnknownWorker(worker.clone()))?;
    match w.state {
        WorkerState::Decommissioned => Ok(Outcome::Unchanged),
        WorkerState::Dead => Err(Rejection::wrong_state(
            worker,
            w.state,
            "a DEAD worker cannot be decommissioned",
        )),
        WorkerState::Alive | WorkerState::Unknown => {
            w.state = WorkerState::Decommissioned;
            Ok(Outcome::Done)
        }
    }
}
