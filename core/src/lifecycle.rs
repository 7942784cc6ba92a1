//! The lifecycle transitions that several commands share: how a worker is lost, how a
//! driver and an app end, how a supervised driver is relaunched, how executors are
//! killed, and how many ended apps and drivers are kept.
//!
//! Each takes the state and the actions list and cannot fail: the command handlers
//! (`workers`, `apps`, `reports`, `recovery`) have validated before calling them.

use crate::command::{Action, DriverKill, ExecutorKill};
use crate::ids::{self, AppId, DriverId, ExecutorId, WorkerId};
use crate::state::{AppState, ClusterState, DriverInfo, DriverState, WorkerState};
use crate::time::Millis;
use std::collections::VecDeque;

/// Marks a worker DEAD: its executors are LOST (not counted as app failures), its drivers
/// relaunched if supervised, else ERROR.
pub(crate) fn lose_worker(
    state: &mut ClusterState,
    worker: &WorkerId,
    reason: &str,
    at: Millis,
    actions: &mut Vec<Action>,
) {
    let Some(w) = state.workers.get(worker) else {
        return;
    };
    let executors: Vec<_> = w.executors.iter().cloned().collect();
    let drivers: Vec<_> = w.drivers.iter().cloned().collect();
    for (app, id) in executors {
        state.remove_executor(&app, id);
    }
    let why = format!("worker {worker} lost: {reason}");
    for d in drivers {
        state.detach_driver(&d);
        driver_gone(state, &d, &why, at, actions);
    }
    if let Some(w) = state.workers.get_mut(worker) {
        w.state = WorkerState::Dead;
        w.dead_since = Some(at);
    }
}

/// A placed driver's process is gone without its worker saying how it ended: relaunch
/// it under a new id if supervised, else it ends in ERROR. The caller has detached it.
pub(crate) fn driver_gone(
    state: &mut ClusterState,
    driver: &DriverId,
    reason: &str,
    at: Millis,
    actions: &mut Vec<Action>,
) {
    let supervised = state.drivers.get(driver).is_some_and(|d| d.desc.supervise);
    if supervised {
        relaunch_driver(state, driver, reason, at, actions);
    } else {
        complete_driver(state, driver, DriverState::Error, reason, at, actions);
    }
}

/// Supervise: the old driver ends RELAUNCHING, a new one (new id, same description) waits
/// to be placed, and the app's executors, which served the old driver, are killed.
pub(crate) fn relaunch_driver(
    state: &mut ClusterState,
    old_id: &DriverId,
    reason: &str,
    at: Millis,
    actions: &mut Vec<Action>,
) {
    let Some(mut old) = state.drivers.remove(old_id) else {
        return;
    };
    let number = state.next_driver_number;
    state.next_driver_number += 1;
    let new_id = ids::driver_id(at, number);
    let new = DriverInfo {
        id: new_id.clone(),
        seq: number,
        app: old.app.clone(),
        desc: old.desc.clone(),
        state: DriverState::Submitted,
        worker: None,
        submitted_at: at,
        ended_at: None,
        end_reason: None,
        relaunch_of: Some(old.id.clone()),
    };
    state.drivers.insert(new_id.clone(), new);
    if state.apps.contains_key(&old.app) {
        kill_all_executors(state, &old.app, actions);
        if let Some(app) = state.apps.get_mut(&old.app) {
            app.driver = Some(new_id.clone());
            app.driver_url = None;
            app.state = AppState::Waiting;
        }
    }
    old.state = DriverState::Relaunching;
    old.ended_at = Some(at);
    old.end_reason = Some(format!("relaunched as {new_id}: {reason}"));
    push_completed_driver(state, old);
}

/// Ends an active driver (already off its worker, or still on it: it is detached here)
/// and, if it is its app's driver, ends the app with the matching state.
pub(crate) fn complete_driver(
    state: &mut ClusterState,
    driver: &DriverId,
    end: DriverState,
    reason: &str,
    at: Millis,
    actions: &mut Vec<Action>,
) {
    state.detach_driver(driver);
    let Some(mut d) = state.drivers.remove(driver) else {
        return;
    };
    d.state = end;
    d.ended_at = Some(at);
    d.end_reason = Some(reason.to_owned());
    let app = d.app.clone();
    push_completed_driver(state, d);
    if state
        .apps
        .get(&app)
        .is_some_and(|a| a.driver.as_ref() == Some(driver))
    {
        let app_end = match end {
            DriverState::Finished => AppState::Finished,
            DriverState::Killed => AppState::Killed,
            _ => AppState::Failed,
        };
        let why = format!("driver {driver} ended {end}: {reason}");
        finish_app(state, &app, app_end, &why, at, actions);
    }
}

/// Ends an active app: its executors are killed, a cluster-mode driver still running is
/// killed too.
pub(crate) fn finish_app(
    state: &mut ClusterState,
    app: &AppId,
    end: AppState,
    reason: &str,
    at: Millis,
    actions: &mut Vec<Action>,
) {
    kill_all_executors(state, app, actions);
    let Some(mut info) = state.apps.remove(app) else {
        return;
    };
    info.state = end;
    info.ended_at = Some(at);
    info.end_reason = Some(reason.to_owned());
    let driver = info.driver.clone();
    state.completed_apps.push_back(info);
    trim_completed(state);
    if let Some(driver) = driver {
        if let Some(worker) = state.drivers.get(&driver).and_then(|d| d.worker.clone()) {
            actions.push(Action::KillDriver(DriverKill {
                worker,
                driver: driver.clone(),
            }));
        }
        let why = format!("app {app} ended {end}: {reason}");
        complete_driver(state, &driver, DriverState::Killed, &why, at, actions);
    }
}

/// Kills every executor of an app.
fn kill_all_executors(state: &mut ClusterState, app: &AppId, actions: &mut Vec<Action>) {
    let ids: Vec<ExecutorId> = match state.apps.get(app) {
        Some(a) => a.executors.keys().copied().collect(),
        None => return,
    };
    for id in ids {
        kill_executor(state, app, id, actions);
    }
}

/// Takes an executor off its app and worker and tells the worker to kill it.
pub(crate) fn kill_executor(
    state: &mut ClusterState,
    app: &AppId,
    id: ExecutorId,
    actions: &mut Vec<Action>,
) {
    if let Some(e) = state.remove_executor(app, id) {
        actions.push(Action::KillExecutor(ExecutorKill {
            worker: e.worker,
            app: app.clone(),
            executor: id,
        }));
    }
}

fn push_completed_driver(state: &mut ClusterState, d: DriverInfo) {
    state.completed_drivers.push_back(d);
    trim_completed(state);
}

/// Spark's retention: past the cap, drop the oldest tenth (at least one) at a time.
pub(crate) fn trim_completed(state: &mut ClusterState) {
    fn trim<T>(list: &mut VecDeque<T>, cap: usize) {
        while list.len() > cap {
            let n = (cap / 10).max(1).min(list.len());
            list.drain(..n);
        }
    }
    trim(&mut state.completed_apps, state.config.retained_apps);
    trim(&mut state.completed_drivers, state.config.retained_drivers);
}
