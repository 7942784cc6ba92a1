//! `apply`: the one function that changes the cluster state.
//!
//! It validates first and mutates after, so a refused command leaves the state exactly as
//! it was; it never panics on any input; and it is deterministic (no clock, no RNG, ordered
//! maps), so every replica that applies the same commands holds the same state.

use crate::command::{Action, Applied, Command, Outcome, Rejection};
use crate::ids::{self, AppId, DriverId, ExecutorId, WorkerId};
use crate::recovery;
use crate::schedule::Placement;
use crate::state::{
    AppDescription, AppInfo, AppState, ClusterConfig, ClusterState, DriverDescription, DriverInfo,
    DriverState, ExecutorInfo, ExecutorState, MasterRole, WorkerState,
};
use crate::time::Millis;
use std::collections::{BTreeMap, BTreeSet};

/// Applies `cmd` to `state`. On `Err` the state is unchanged.
pub fn apply(state: &mut ClusterState, cmd: &Command) -> Result<Applied, Rejection> {
    let mut actions = Vec::new();
    let outcome = match cmd {
        Command::SetConfig(cfg) => set_config(state, cfg),
        Command::RegisterWorker { reg, at } => {
            recovery::register_worker(state, reg, *at, &mut actions)
        }
        Command::WorkerLost { worker, reason, at } => {
            let w = state
                .workers
                .get(worker)
                .ok_or_else(|| Rejection::UnknownWorker(worker.clone()))?;
            if w.state == WorkerState::Dead {
                Ok(Outcome::Unchanged)
            } else {
                lose_worker(state, worker, reason, *at, &mut actions);
                Ok(Outcome::Done)
            }
        }
        Command::ForgetWorker { worker } => forget_worker(state, worker),
        Command::DecommissionWorker { worker } => decommission_worker(state, worker),
        Command::RegisterApp {
            desc,
            driver,
            driver_url,
            at,
        } => register_app(state, desc, driver.as_ref(), driver_url.as_deref(), *at),
        Command::AppReconnected { app } => recovery::app_reconnected(state, app),
        Command::SetExecutorTarget { app, target } => {
            set_executor_target(state, app, *target, &mut actions)
        }
        Command::FinishApp {
            app,
            state: end,
            reason,
            at,
        } => finish_app_request(state, app, *end, reason, *at, &mut actions),
        Command::Place { placements, .. } => place(state, placements, &mut actions),
        Command::ExecutorStateChanged {
            worker,
            app,
            executor,
            state: new,
            exit_code,
            message,
            at,
        } => executor_state_changed(
            state,
            ExecutorReport {
                worker,
                app,
                executor: *executor,
                state: *new,
                exit_code: *exit_code,
                message,
            },
            *at,
            &mut actions,
        ),
        Command::DriverStateChanged {
            worker,
            driver,
            state: new,
            driver_url,
            exit_code,
            message,
            at,
        } => driver_state_changed(
            state,
            DriverReport {
                worker,
                driver,
                state: *new,
                driver_url: driver_url.as_deref(),
                exit_code: *exit_code,
                message,
            },
            *at,
            &mut actions,
        ),
        Command::KillDriver { driver, at } => kill_driver(state, driver, *at, &mut actions),
        Command::BeginRecovery { at } => Ok(recovery::begin_recovery(state, *at)),
        Command::CompleteRecovery { at } => {
            Ok(recovery::complete_recovery(state, *at, &mut actions))
        }
    }?;
    Ok(Applied { outcome, actions })
}

fn set_config(state: &mut ClusterState, cfg: &ClusterConfig) -> Result<Outcome, Rejection> {
    if state.config == *cfg {
        return Ok(Outcome::Unchanged);
    }
    state.config = cfg.clone();
    trim_completed(state);
    Ok(Outcome::Done)
}

fn forget_worker(state: &mut ClusterState, worker: &WorkerId) -> Result<Outcome, Rejection> {
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

fn decommission_worker(state: &mut ClusterState, worker: &WorkerId) -> Result<Outcome, Rejection> {
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
fn relaunch_driver(
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
            actions.push(Action::KillDriver {
                worker,
                driver: driver.clone(),
            });
        }
        let why = format!("app {app} ended {end}: {reason}");
        complete_driver(state, &driver, DriverState::Killed, &why, at, actions);
    }
}

fn kill_all_executors(state: &mut ClusterState, app: &AppId, actions: &mut Vec<Action>) {
    let ids: Vec<ExecutorId> = match state.apps.get(app) {
        Some(a) => a.executors.keys().copied().collect(),
        None => return,
    };
    for id in ids {
        kill_executor(state, app, id, actions);
    }
}

fn kill_executor(state: &mut ClusterState, app: &AppId, id: ExecutorId, actions: &mut Vec<Action>) {
    if let Some(e) = state.remove_executor(app, id) {
        actions.push(Action::KillExecutor {
            worker: e.worker,
            app: app.clone(),
            executor: id,
        });
    }
}

fn push_completed_driver(state: &mut ClusterState, d: DriverInfo) {
    state.completed_drivers.push_back(d);
    trim_completed(state);
}

/// Spark's retention: past the cap, drop the oldest tenth (at least one) at a time.
fn trim_completed(state: &mut ClusterState) {
    fn trim<T>(list: &mut std::collections::VecDeque<T>, cap: usize) {
        while list.len() > cap {
            let n = (cap / 10).max(1).min(list.len());
            list.drain(..n);
        }
    }
    trim(&mut state.completed_apps, state.config.retained_apps);
    trim(&mut state.completed_drivers, state.config.retained_drivers);
}

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
    let live: Vec<_> = state
        .workers
        .values()
        .filter(|w| matches!(w.state, WorkerState::Alive | WorkerState::Unknown))
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

fn register_app(
    state: &mut ClusterState,
    desc: &AppDescription,
    driver: Option<&DriverDescription>,
    driver_url: Option<&str>,
    at: Millis,
) -> Result<Outcome, Rejection> {
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

fn set_executor_target(
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

fn finish_app_request(
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

fn kill_driver(
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
        actions.push(Action::KillDriver {
            worker,
            driver: driver.clone(),
        });
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

/// Checks a placement batch against the state without changing anything.
fn validate_placements(state: &ClusterState, placements: &[Placement]) -> Result<(), Rejection> {
    let stale = |s: String| Err(Rejection::StalePlacement(s));
    if state.role != MasterRole::Alive {
        return Err(Rejection::wrong_state(
            "the master",
            state.role,
            "placements are made only when ALIVE",
        ));
    }
    let mut need: BTreeMap<&WorkerId, (u64, u64)> = BTreeMap::new();
    // per app: (next expected executor id, executors added, cores added)
    let mut per_app: BTreeMap<&AppId, (ExecutorId, u32, u64)> = BTreeMap::new();
    let mut drivers = BTreeSet::new();
    for p in placements {
        let (worker, cores, mem) = match p {
            Placement::Driver { driver, worker } => {
                let Some(d) = state.drivers.get(driver) else {
                    return stale(format!("driver {driver} is not waiting"));
                };
                if d.state != DriverState::Submitted
                    || d.worker.is_some()
                    || !drivers.insert(driver)
                {
                    return stale(format!("driver {driver} is already placed"));
                }
                (worker, d.desc.cores, d.desc.memory_mb)
            }
            Placement::Executor {
                app,
                executor,
                worker,
                cores,
                memory_mb,
            } => {
                let Some(a) = state.apps.get(app) else {
                    return stale(format!("app {app} is not active"));
                };
                if a.state == AppState::Unknown || a.driver_url.is_none() {
                    return stale(format!("app {app} cannot take executors now"));
                }
                if *cores == 0 || *memory_mb == 0 {
                    return stale(format!("executor {app}/{executor} has no resources"));
                }
                let entry = per_app.entry(app).or_insert((a.next_executor_id, 0, 0));
                if *executor != entry.0 {
                    return stale(format!(
                        "executor {app}/{executor}: expected id {}",
                        entry.0
                    ));
                }
                entry.0 += 1;
                entry.1 += 1;
                entry.2 += u64::from(*cores);
                (worker, *cores, *memory_mb)
            }
        };
        if state
            .workers
            .get(worker)
            .is_none_or(|w| w.state != WorkerState::Alive)
        {
            return stale(format!("worker {worker} is not ALIVE"));
        }
        let n = need.entry(worker).or_default();
        n.0 += u64::from(cores);
        n.1 += mem;
    }
    for (worker, (cores, mem)) in need {
        let w = &state.workers[worker];
        if cores > u64::from(w.cores_free()) || mem > w.memory_free_mb() {
            return stale(format!(
                "worker {worker} has {} cores and {} MiB free, the batch needs {cores} and {mem}",
                w.cores_free(),
                w.memory_free_mb()
            ));
        }
    }
    for (app, (_, count, cores)) in per_app {
        let a = &state.apps[app];
        let over_limit = a
            .executor_limit
            .is_some_and(|l| a.executors.len() as u64 + u64::from(count) > u64::from(l));
        let over_cap = a
            .desc
            .max_cores
            .is_some_and(|m| u64::from(a.cores_granted()) + cores > u64::from(m));
        if over_limit || over_cap {
            return stale(format!(
                "app {app} would exceed its executor target or core cap"
            ));
        }
    }
    Ok(())
}

fn place(
    state: &mut ClusterState,
    placements: &[Placement],
    actions: &mut Vec<Action>,
) -> Result<Outcome, Rejection> {
    validate_placements(state, placements)?;
    for p in placements {
        match p {
            Placement::Driver { driver, worker } => {
                state.attach_driver(driver, worker);
                let d = state.drivers.get_mut(driver).expect("validated above");
                d.state = DriverState::Running;
                actions.push(Action::LaunchDriver {
                    worker: worker.clone(),
                    driver: driver.clone(),
                    app: d.app.clone(),
                    cores: d.desc.cores,
                    memory_mb: d.desc.memory_mb,
                    supervise: d.desc.supervise,
                    command: d.desc.command.clone(),
                });
            }
            Placement::Executor {
                app,
                executor,
                worker,
                cores,
                memory_mb,
            } => {
                let exec = ExecutorInfo {
                    id: *executor,
                    worker: worker.clone(),
                    cores: *cores,
                    memory_mb: *memory_mb,
                    state: ExecutorState::Launching,
                };
                state.add_executor(app, exec);
                let a = state.apps.get_mut(app).expect("validated above");
                a.state = AppState::Running;
                actions.push(Action::LaunchExecutor {
                    worker: worker.clone(),
                    app: app.clone(),
                    executor: *executor,
                    cores: *cores,
                    memory_mb: *memory_mb,
                    command: a.desc.command.clone(),
                    driver_url: a.driver_url.clone().unwrap_or_default(),
                });
            }
        }
    }
    Ok(Outcome::Done)
}

struct ExecutorReport<'a> {
    worker: &'a WorkerId,
    app: &'a AppId,
    executor: ExecutorId,
    state: ExecutorState,
    exit_code: Option<i32>,
    message: &'a str,
}

fn executor_state_changed(
    state: &mut ClusterState,
    r: ExecutorReport<'_>,
    at: Millis,
    actions: &mut Vec<Action>,
) -> Result<Outcome, Rejection> {
    let known = state
        .apps
        .get(r.app)
        .and_then(|a| a.executors.get(&r.executor))
        .is_some_and(|e| &e.worker == r.worker);
    if !known {
        // Not ours (ended, killed, or placed by a deposed leader): a live one is killed,
        // an ended one is a late report. Either way the worker is answered.
        if !r.state.is_terminal() {
            actions.push(Action::KillExecutor {
                worker: r.worker.clone(),
                app: r.app.clone(),
                executor: r.executor,
            });
        }
        return Ok(Outcome::Unchanged);
    }
    let app = state.apps.get_mut(r.app).expect("checked above");
    match r.state {
        ExecutorState::Launching => Ok(Outcome::Unchanged),
        ExecutorState::Running => {
            let e = app.executors.get_mut(&r.executor).expect("checked above");
            e.state = ExecutorState::Running;
            app.retry_count = 0;
            if app.state == AppState::Waiting {
                app.state = AppState::Running;
            }
            Ok(Outcome::Done)
        }
        end => {
            let counts_as_failure = r.exit_code != Some(0) && end != ExecutorState::Decommissioned;
            state.remove_executor(r.app, r.executor);
            let app = state.apps.get_mut(r.app).expect("checked above");
            if counts_as_failure {
                app.retry_count += 1;
            }
            let exhausted = state
                .config
                .max_executor_retries
                .is_some_and(|max| app.retry_count >= max);
            if counts_as_failure && exhausted && !app.has_running_executor() {
                let why = format!(
                    "{} executors failed in a row with none running (last: {end}, exit code {}: {})",
                    app.retry_count,
                    r.exit_code.map_or("none".to_owned(), |c| c.to_string()),
                    r.message
                );
                finish_app(state, r.app, AppState::Failed, &why, at, actions);
            }
            Ok(Outcome::Done)
        }
    }
}

struct DriverReport<'a> {
    worker: &'a WorkerId,
    driver: &'a DriverId,
    state: DriverState,
    driver_url: Option<&'a str>,
    exit_code: Option<i32>,
    message: &'a str,
}

fn driver_state_changed(
    state: &mut ClusterState,
    r: DriverReport<'_>,
    at: Millis,
    actions: &mut Vec<Action>,
) -> Result<Outcome, Rejection> {
    let reportable = matches!(
        r.state,
        DriverState::Running
            | DriverState::Finished
            | DriverState::Failed
            | DriverState::Killed
            | DriverState::Error
    );
    if !reportable {
        return Err(Rejection::invalid(
            "state",
            format!("a worker cannot report a driver {}", r.state),
        ));
    }
    let known = state
        .drivers
        .get(r.driver)
        .is_some_and(|d| d.worker.as_ref() == Some(r.worker));
    if !known {
        if r.state == DriverState::Running {
            actions.push(Action::KillDriver {
                worker: r.worker.clone(),
                driver: r.driver.clone(),
            });
        }
        return Ok(Outcome::Unchanged);
    }
    if r.state == DriverState::Running {
        let d = state.drivers.get_mut(r.driver).expect("checked above");
        d.state = DriverState::Running;
        let app_id = d.app.clone();
        if let (Some(app), Some(url)) = (state.apps.get_mut(&app_id), r.driver_url) {
            if app.driver.as_ref() == Some(r.driver) && !url.trim().is_empty() {
                app.driver_url = Some(url.to_owned());
            }
        }
        return Ok(Outcome::Done);
    }
    let reason = match r.exit_code {
        Some(code) => format!("exit code {code}: {}", r.message),
        None => r.message.to_owned(),
    };
    complete_driver(state, r.driver, r.state, &reason, at, actions);
    Ok(Outcome::Done)
}
