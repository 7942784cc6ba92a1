//! What users and clients ask of apps and cluster-mode drivers: register an app (and its
//! driver), scale it, finish it, kill a driver. (A client-mode app reconnecting after a
//! leader change is part of the recovery protocol, in [`crate::recovery`].)

use crate::command::{Action, Command, DriverKill, Outcome, Rejection};
use crate::ids::{self, AppId, DriverId, ExecutorId};
use crate::lifecycle::{complete_driver, finish_app, kill_executor};
use crate::state::{
    AppDescription, AppInfo, AppState, ClusterState, DriverDescription, DriverInfo, DriverState,
    WorkerIdentity, WorkerState,
};
use crate::time::Millis;
use std::collections::BTreeMap;

fn validate_process(field: &str, argv: &[String]) -> Result<(), Rejection> {
    if argv.is_empty() || argv[0].trim().is_empty() {
        return Err(Rejection::invalid(field, "the command is empty"));
    }
    Ok(())
}

fn validate_app(desc: &AppDescription) -> Result<(), Rejection> {
    if desc.name.trim().is_empty() {
        return Err(Rejection::invalid("name", "an app needs a name"));
    }
    if desc.cores_per_executor == Some(0) {
        return Err(Rejection::invalid("executor-cores", "must be at least 1"));
    }
    if desc.memory_per_executor_mb == 0 {
        return Err(Rejection::invalid(
            "executor-memory",
            "must be at least 1 MiB",
        ));
    }
    if desc.max_cores == Some(0) {
        return Err(Rejection::invalid(
            "total-executor-cores",
            "must be at least 1",
        ));
    }
    if let (Some(per), Some(max)) = (desc.cores_per_executor, desc.max_cores) {
        if per > max {
            return Err(Rejection::invalid(
                "total-executor-cores",
                format!("{max} is less than one executor's {per} cores, so no executor could ever start"),
            ));
        }
    }
    validate_process("executor-command", &desc.command.argv)
}

fn validate_driver(desc: &DriverDescription) -> Result<(), Rejection> {
    if desc.cores == 0 {
        return Err(Rejection::invalid("driver-cores", "must be at least 1"));
    }
    if desc.memory_mb == 0 {
        return Err(Rejection::invalid(
            "driver-memory",
            "must be at least 1 MiB",
        ));
    }
    validate_process("driver command", &desc.command.argv)
}

/// Refuses a request no known worker could ever hold. With no worker known yet the
/// request is accepted and waits (a cluster still starting up).
fn check_fits_some_worker(
    state: &ClusterState,
    what: &str,
    cores: u32,
    memory_mb: u64,
) -> Result<(), Rejection> {
    let live: Vec<&WorkerIdentity> = state
        .workers
        .values()
        .filter(|w| matches!(w.state, WorkerState::Alive | WorkerState::Unknown))
        .map(|w| &w.identity)
        .collect();
    if live.is_empty()
        || live
            .iter()
            .any(|w| w.cores >= cores && w.memory_mb >= memory_mb)
    {
        return Ok(());
    }
    let max_cores = live.iter().map(|w| w.cores).max().unwrap_or(0);
    let max_mem = live.iter().map(|w| w.memory_mb).max().unwrap_or(0);
    Err(Rejection::Unschedulable(format!(
        "{what} needs {cores} cores and {memory_mb} MiB, but no worker offers that \
         (largest: {max_cores} cores, {max_mem} MiB)"
    )))
}

/// Checks a new app (and, in cluster mode, its driver) against the rules and the workers
/// the cluster has, changing nothing.
fn validate_registration(
    state: &ClusterState,
    desc: &AppDescription,
    driver: Option<&DriverDescription>,
    driver_url: Option<&str>,
) -> Result<(), Rejection> {
    validate_app(desc)?;
    let per_executor = desc.cores_per_executor.unwrap_or(1);
    check_fits_some_worker(
        state,
        "each executor",
        per_executor,
        desc.memory_per_executor_mb,
    )?;
    match driver {
        Some(d) => {
            validate_driver(d)?;
            check_fits_some_worker(state, "the driver", d.cores, d.memory_mb)?;
        }
        None => {
            if driver_url.is_none_or(|u| u.trim().is_empty()) {
                return Err(Rejection::invalid(
                    "driver-url",
                    "a client-mode app must say where its driver listens",
                ));
            }
        }
    }
    Ok(())
}

/// The most apps active at once (WAITING or RUNNING, client and cluster mode): a bound
/// on the replicated state and on every scheduling pass, whatever clients send. A
/// registration beyond it is refused (`INVALID_ARGUMENT`, naming the limit).
pub const MAX_ACTIVE_APPS: usize = 10_000;

/// A new app, WAITING; in cluster mode its driver too, SUBMITTED (the scheduler places
/// it). Ids are minted from the state's counters and the command's time.
pub(crate) fn register_app(
    state: &mut ClusterState,
    desc: &AppDescription,
    driver: Option<&DriverDescription>,
    driver_url: Option<&str>,
    at: Millis,
) -> Result<Outcome, Rejection> {
    validate_registration(state, desc, driver, driver_url)?;
    if let Some(same) = same_client_app(state, desc, driver, driver_url) {
        return Ok(Outcome::AppRegistered {
            app: same,
            driver: None,
        });
    }
    if state.apps.len() >= MAX_ACTIVE_APPS {
        return Err(Rejection::invalid(
            "app",
            format!(
                "the cluster has {} active apps, the most it takes ({MAX_ACTIVE_APPS}); wait for some to end, or kill some",
                state.apps.len()
            ),
        ));
    }
    let number = state.next_app_number;
    state.next_app_number += 1;
    let app_id = ids::app_id(at, number);
    let driver_id = driver.map(|d| {
        let n = state.next_driver_number;
        state.next_driver_number += 1;
        let id = ids::driver_id(at, n);
        state.drivers.insert(
            id.clone(),
            DriverInfo {
                id: id.clone(),
                seq: n,
                app: app_id.clone(),
                desc: d.clone(),
                state: DriverState::Submitted,
                worker: None,
                submitted_at: at,
                ended_at: None,
                end_reason: None,
                relaunch_of: None,
            },
        );
        id
    });
    state.apps.insert(
        app_id.clone(),
        AppInfo {
            id: app_id.clone(),
            seq: number,
            desc: desc.clone(),
            state: AppState::Waiting,
            submitted_at: at,
            ended_at: None,
            end_reason: None,
            driver: driver_id.clone(),
            driver_url: if driver.is_some() {
                None
            } else {
                driver_url.map(str::to_owned)
            },
            executors: BTreeMap::new(),
            next_executor_id: 0,
            executor_limit: desc.initial_executor_limit,
            retry_count: 0,
        },
    );
    Ok(Outcome::AppRegistered {
        app: app_id,
        driver: driver_id,
    })
}

/// A client-mode registration is the app already active with the same description and
/// driver URL (no two live drivers listen on one address): a retried registration whose
/// answer was lost gets the same app, not a second one.
fn same_client_app(
    state: &ClusterState,
    desc: &AppDescription,
    driver: Option<&DriverDescription>,
    driver_url: Option<&str>,
) -> Option<AppId> {
    if driver.is_some() {
        return None;
    }
    state
        .apps
        .values()
        .find(|a| a.driver.is_none() && a.driver_url.as_deref() == driver_url && a.desc == *desc)
        .map(|a| a.id.clone())
}

/// An active app, or the reason there is none (completed apps are named as such).
fn active_app<'s>(state: &'s mut ClusterState, app: &AppId) -> Result<&'s mut AppInfo, Rejection> {
    if let Some(done) = state.completed_apps.iter().find(|a| &a.id == app) {
        return Err(Rejection::wrong_state(app, done.state, "the app has ended"));
    }
    state
        .apps
        .get_mut(app)
        .ok_or_else(|| Rejection::UnknownApp(app.clone()))
}

/// Dynamic allocation / `app scale`: at most `target` executors from now on; the newest
/// beyond it are killed.
pub(crate) fn set_executor_target(
    state: &mut ClusterState,
    app: &AppId,
    target: u32,
    actions: &mut Vec<Action>,
) -> Result<Outcome, Rejection> {
    let info = active_app(state, app)?;
    info.executor_limit = Some(target);
    // Kill the newest executors beyond the target.
    let extra: Vec<ExecutorId> = info
        .executors
        .keys()
        .rev()
        .take(info.executors.len().saturating_sub(target as usize))
        .copied()
        .collect();
    for id in extra {
        kill_executor(state, app, id, actions);
    }
    Ok(Outcome::Done)
}

/// Spark's `requestTotalExecutors`: at most `limit` executors from now on, killing none.
pub(crate) fn set_executor_limit(
    state: &mut ClusterState,
    app: &AppId,
    limit: u32,
) -> Result<Outcome, Rejection> {
    let info = active_app(state, app)?;
    if info.executor_limit == Some(limit) {
        return Ok(Outcome::Unchanged);
    }
    info.executor_limit = Some(limit);
    Ok(Outcome::Done)
}

/// Spark's `killExecutors`: kills the named executors the app still has; the others are
/// ignored (already ended, or a retried request).
pub(crate) fn kill_executors(
    state: &mut ClusterState,
    app: &AppId,
    executors: &[ExecutorId],
    actions: &mut Vec<Action>,
) -> Result<Outcome, Rejection> {
    let info = active_app(state, app)?;
    let live: Vec<ExecutorId> = executors
        .iter()
        .copied()
        .filter(|id| info.executors.contains_key(id))
        .collect();
    if live.is_empty() {
        return Ok(Outcome::Unchanged);
    }
    for id in live {
        kill_executor(state, app, id, actions);
    }
    Ok(Outcome::Done)
}

/// Ends an app on request (its driver exited, a user killed it, its client vanished). An
/// app that already ended is answered as unchanged: the request was retried.
pub(crate) fn finish_app_request(
    state: &mut ClusterState,
    app: &AppId,
    end: AppState,
    reason: &str,
    at: Millis,
    actions: &mut Vec<Action>,
) -> Result<Outcome, Rejection> {
    if !end.is_terminal() {
        return Err(Rejection::invalid(
            "state",
            format!("{end} is not an end state (FINISHED, FAILED or KILLED)"),
        ));
    }
    if state.completed_apps.iter().any(|a| &a.id == app) {
        return Ok(Outcome::Unchanged);
    }
    if !state.apps.contains_key(app) {
        return Err(Rejection::UnknownApp(app.clone()));
    }
    finish_app(state, app, end, reason, at, actions);
    Ok(Outcome::Done)
}

/// A user kills a driver: it ends KILLED, and its app with it.
pub(crate) fn kill_driver(
    state: &mut ClusterState,
    driver: &DriverId,
    at: Millis,
    actions: &mut Vec<Action>,
) -> Result<Outcome, Rejection> {
    let Some(d) = state.drivers.get(driver) else {
        return if state.completed_drivers.iter().any(|d| &d.id == driver) {
            Ok(Outcome::Unchanged)
        } else {
            Err(Rejection::UnknownDriver(driver.clone()))
        };
    };
    if let Some(worker) = d.worker.clone() {
        actions.push(Action::KillDriver(DriverKill {
            worker,
            driver: driver.clone(),
        }));
    }
    complete_driver(
        state,
        driver,
        DriverState::Killed,
        "killed by request",
        at,
        actions,
    );
    Ok(Outcome::Done)
}

/// Who submitted the app `cmd` is about (its [`USER_ENV`](crate::USER_ENV)): `None` for
/// a command about no app, or an app or driver `state` does not know (the command's own
/// checks answer those); `Some(None)` for an app no one named.
pub fn submitter_of<'s>(state: &'s ClusterState, cmd: &Command) -> Option<Option<&'s str>> {
    let app = match cmd {
        Command::FinishApp { app, .. }
        | Command::SetExecutorLimit { app, .. }
        | Command::SetExecutorTarget { app, .. }
        | Command::KillExecutors { app, .. }
        | Command::AppReconnected { app } => app,
        Command::KillDriver { driver, .. } => &state.drivers.get(driver)?.app,
        _ => return None,
    };
    let desc = match state.apps.get(app) {
        Some(a) => &a.desc,
        None => &state.completed_apps.iter().find(|a| &a.id == app)?.desc,
    };
    Some(desc.user())
}
