//! `apply`: the one function that changes the cluster state. It dispatches each
//! [`Command`] to its handler; the handlers live with what they are about.
//!
//! Every handler validates first and mutates after, so a refused command leaves the state
//! exactly as it was; none panics on any input; and all are deterministic (no clock, no
//! RNG, ordered maps), so every replica that applies the same commands holds the same
//! state.
//!
//! - `workers`: a worker lost, forgotten, decommissioned, drained and undrained.
//! - `apps`: an app registered, scaled, finished; a driver killed.
//! - `placement`: the scheduler's placements recorded, launches sent.
//! - `reports`: what workers report about executors and drivers.
//! - [`crate::recovery`]: registration (reconciling what a worker runs), a client-mode
//!   app reconnecting, beginning and completing recovery.
//! - `lifecycle`: the transitions those share (a worker lost, a driver or an app ended, a
//!   supervised driver relaunched, executors killed, retention).

use crate::command::{Applied, Command, Outcome, Rejection};
use crate::reports::{DriverReport, ExecutorReport};
use crate::state::{ClusterConfig, ClusterState};
use crate::{apps, lifecycle, placement, recovery, reports, workers};

/// Applies `cmd` to `state`. On `Err` the state is unchanged.
pub fn apply(state: &mut ClusterState, cmd: &Command) -> Result<Applied, Rejection> {
    let mut actions = Vec::new();
    let outcome = match cmd {
        Command::SetConfig(cfg) => Ok(set_config(state, cfg)),
        Command::RegisterWorker { reg, at } => {
            recovery::register_worker(state, reg, *at, &mut actions)
        }
        Command::WorkerLost { worker, reason, at } => {
            workers::worker_lost(state, worker, reason, *at, &mut actions)
        }
        Command::ForgetWorker { worker } => workers::forget_worker(state, worker),
        Command::DecommissionWorker { worker } => workers::decommission_worker(state, worker),
        Command::RegisterApp {
            desc,
            driver,
            driver_url,
            at,
        } => apps::register_app(state, desc, driver.as_ref(), driver_url.as_deref(), *at),
        Command::AppReconnected { app } => recovery::app_reconnected(state, app),
        Command::SetExecutorTarget { app, target } => {
            apps::set_executor_target(state, app, *target, &mut actions)
        }
        Command::FinishApp {
            app,
            state: end,
            reason,
            at,
        } => apps::finish_app_request(state, app, *end, reason, *at, &mut actions),
        Command::Place { placements, .. } => placement::place(state, placements, &mut actions),
        Command::ExecutorStateChanged {
            worker,
            app,
            executor,
            state: new,
            exit_code,
            message,
            at,
        } => reports::executor_state_changed(
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
        } => reports::driver_state_changed(
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
        Command::KillDriver { driver, at } => apps::kill_driver(state, driver, *at, &mut actions),
        Command::BeginRecovery { at } => Ok(recovery::begin_recovery(state, *at)),
        Command::CompleteRecovery { at } => {
            Ok(recovery::complete_recovery(state, *at, &mut actions))
        }
        Command::SetExecutorLimit { app, limit } => apps::set_executor_limit(state, app, *limit),
        Command::KillExecutors { app, executors } => {
            apps::kill_executors(state, app, executors, &mut actions)
        }
        Command::DrainWorker { worker, deadline } => {
            workers::drain_worker(state, worker, *deadline)
        }
        Command::UndrainWorker { worker } => workers::undrain_worker(state, worker),
        Command::FinishDrain { worker, at } => {
            workers::finish_drain(state, worker, *at, &mut actions)
        }
        Command::AdoptWorkers { workers, at } => {
            Ok(recovery::adopt_workers(state, workers, *at, &mut actions))
        }
    }?;
    Ok(Applied { outcome, actions })
}

/// New settings; fewer retained apps or drivers take effect at once.
fn set_config(state: &mut ClusterState, cfg: &ClusterConfig) -> Outcome {
    if state.config == *cfg {
        return Outcome::Unchanged;
    }
    state.config = cfg.clone();
    lifecycle::trim_completed(state);
    Outcome::Done
}
