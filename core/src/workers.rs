//! Commands about a worker as a whole: it is lost, forgotten, decommissioned, drained
//! or undrained. (Registration reconciles what a worker reports, so it lives in
//! [`crate::recovery`].)
//!
//! A drain is DRAINING with a deadline on the wall clock: a deadline is replicated, so it
//! must mean the same on whichever master leads when it passes, which a leader's
//! monotonic clock cannot. A wall clock stepped forward ends drains early, one stepped
//! back ends them late; nothing else depends on it.

use crate::command::{Action, Command, DriverKill, Outcome, Rejection};
use crate::ids::WorkerId;
use crate::lifecycle;
use crate::state::{ClusterState, DriverState, WorkerInfo, WorkerState};
use crate::time::Millis;

/// The worker stopped heartbeating: DEAD, unless it already is.
pub(crate) fn worker_lost(
    state: &mut ClusterState,
    worker: &WorkerId,
    reason: &str,
    at: Millis,
    actions: &mut Vec<Action>,
) -> Result<Outcome, Rejection> {
    let w = known(state, worker)?;
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
    let w = known(state, worker)?;
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
    let w = known_mut(state, worker)?;
    match w.state {
        WorkerState::Decommissioned => Ok(Outcome::Unchanged),
        WorkerState::Dead => Err(Rejection::wrong_state(
            worker,
            w.state,
            "a DEAD worker cannot be decommissioned",
        )),
        WorkerState::Alive | WorkerState::Unknown | WorkerState::Draining { .. } => {
            w.state = WorkerState::Decommissioned;
            Ok(Outcome::Done)
        }
    }
}

/// No new placements on the worker; what runs there may run until `deadline`. Draining a
/// draining worker again moves its deadline.
pub(crate) fn drain_worker(
    state: &mut ClusterState,
    worker: &WorkerId,
    deadline: Millis,
) -> Result<Outcome, Rejection> {
    let w = known_mut(state, worker)?;
    let draining = WorkerState::Draining { deadline };
    match w.state {
        WorkerState::Dead => Err(Rejection::wrong_state(
            worker,
            w.state,
            "a DEAD worker cannot be drained",
        )),
        same if same == draining => Ok(Outcome::Unchanged),
        WorkerState::Alive
        | WorkerState::Unknown
        | WorkerState::Decommissioned
        | WorkerState::Draining { .. } => {
            w.state = draining;
            Ok(Outcome::Done)
        }
    }
}

/// A DRAINING or DECOMMISSIONED worker takes placements again.
pub(crate) fn undrain_worker(
    state: &mut ClusterState,
    worker: &WorkerId,
) -> Result<Outcome, Rejection> {
    let w = known_mut(state, worker)?;
    match w.state {
        WorkerState::Dead => Err(Rejection::wrong_state(
            worker,
            w.state,
            "a DEAD worker cannot be undrained; it is ALIVE again once it registers",
        )),
        // UNKNOWN was ALIVE before the leader changed, and is again once it registers.
        WorkerState::Alive | WorkerState::Unknown => Ok(Outcome::Unchanged),
        WorkerState::Decommissioned | WorkerState::Draining { .. } => {
            w.state = WorkerState::Alive;
            Ok(Outcome::Done)
        }
    }
}

/// Ends a drain: what still runs on the worker is killed there and placed elsewhere (the
/// scheduler places the apps' missing executors again; a supervised driver is relaunched
/// under a new id, any other ends KILLED with its app), and the worker is DECOMMISSIONED.
/// Refused before the deadline while something still runs there.
pub(crate) fn finish_drain(
    state: &mut ClusterState,
    worker: &WorkerId,
    at: Millis,
    actions: &mut Vec<Action>,
) -> Result<Outcome, Rejection> {
    let w = known(state, worker)?;
    let deadline = match w.state {
        // Already finished (a retried command).
        WorkerState::Decommissioned => return Ok(Outcome::Unchanged),
        WorkerState::Draining { deadline } => deadline,
        _ => {
            return Err(Rejection::wrong_state(
                worker,
                w.state,
                "only a DRAINING worker's drain finishes",
            ))
        }
    };
    let holds_nothing = w.executors.is_empty() && w.drivers.is_empty();
    if at < deadline && !holds_nothing {
        return Err(Rejection::wrong_state(
            worker,
            w.state,
            format!("its drain deadline {deadline} has not passed at {at}"),
        ));
    }
    let executors: Vec<_> = w.executors.iter().cloned().collect();
    let drivers: Vec<_> = w.drivers.iter().cloned().collect();
    for (app, id) in executors {
        lifecycle::kill_executor(state, &app, id, actions);
    }
    let why = format!("worker {worker} drained: its deadline {deadline} passed");
    for d in drivers {
        actions.push(Action::KillDriver(DriverKill {
            worker: worker.clone(),
            driver: d.clone(),
        }));
        state.detach_driver(&d);
        let supervised = state.drivers.get(&d).is_some_and(|d| d.desc.supervise);
        if supervised {
            lifecycle::relaunch_driver(state, &d, &why, at, actions);
        } else {
            lifecycle::complete_driver(state, &d, DriverState::Killed, &why, at, actions);
        }
    }
    if let Some(w) = state.workers.get_mut(worker) {
        w.state = WorkerState::Decommissioned;
    }
    Ok(Outcome::Done)
}

/// The [`Command::FinishDrain`]s due at `now` (the leader's wall clock), in worker order:
/// every DRAINING worker whose deadline has passed, or that holds nothing any more.
pub fn due_drains(state: &ClusterState, now: Millis) -> Vec<Command> {
    state
        .workers
        .values()
        .filter(|w| {
            w.state.drain_deadline().is_some_and(|deadline| {
                now >= deadline || (w.executors.is_empty() && w.drivers.is_empty())
            })
        })
        .map(|w| Command::FinishDrain {
            worker: w.identity.id.clone(),
            at: now,
        })
        .collect()
}

/// The worker named by a command, or the command's refusal.
fn known<'a>(state: &'a ClusterState, worker: &WorkerId) -> Result<&'a WorkerInfo, Rejection> {
    state
        .workers
        .get(worker)
        .ok_or_else(|| Rejection::UnknownWorker(worker.clone()))
}

/// [`known`], to change it.
fn known_mut<'a>(
    state: &'a mut ClusterState,
    worker: &WorkerId,
) -> Result<&'a mut WorkerInfo, Rejection> {
    state
        .workers
        .get_mut(worker)
        .ok_or_else(|| Rejection::UnknownWorker(worker.clone()))
}
