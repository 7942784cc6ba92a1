//! `Place`: recording a batch of the scheduler's placements, all or nothing, and the
//! launches it sends.

use crate::command::{Action, DriverLaunch, ExecutorLaunch, Outcome, Rejection};
use crate::ids::{AppId, DriverId, ExecutorId, WorkerId};
use crate::schedule::Placement;
use crate::state::{
    AppState, ClusterState, DriverState, ExecutorInfo, ExecutorState, MasterRole, WorkerState,
};
use std::collections::{BTreeMap, BTreeSet};

/// Checks a placement batch against the state without changing anything.
fn validate_placements(state: &ClusterState, placements: &[Placement]) -> Result<(), Rejection> {
    if state.role != MasterRole::Alive {
        return Err(Rejection::wrong_state(
            "the master",
            state.role,
            "placements are made only when ALIVE",
        ));
    }
    let mut batch = Batch::default();
    for p in placements {
        let (worker, cores, mem) = match p {
            Placement::Driver { driver, worker } => {
                let (cores, mem) = batch.add_driver(state, driver)?;
                (worker, cores, mem)
            }
            Placement::Executor {
                app,
                executor,
                worker,
                cores,
                memory_mb,
            } => {
                batch.add_executor(state, app, *executor, *cores, *memory_mb)?;
                (worker, *cores, *memory_mb)
            }
        };
        batch.charge(state, worker, cores, mem)?;
    }
    batch.check_workers(state)?;
    batch.check_apps(state)
}

fn stale<T>(why: String) -> Result<T, Rejection> {
    Err(Rejection::StalePlacement(why))
}

/// What a placement batch adds up to, summed placement by placement as it is checked.
#[derive(Default)]
struct Batch<'p> {
    /// Per worker: the cores and MiB the batch puts there.
    need: BTreeMap<&'p WorkerId, (u64, u64)>,
    /// Per app: what the batch gives it.
    apps: BTreeMap<&'p AppId, AppAdds>,
    /// The drivers the batch places (each at most once).
    drivers: BTreeSet<&'p DriverId>,
}

/// The executors a batch gives one app.
struct AppAdds {
    /// The id the next executor must have: ids follow on without a gap.
    next_id: ExecutorId,
    executors: u32,
    cores: u64,
}

impl<'p> Batch<'p> {
    /// A driver that waits to be placed and is placed once: its cores and MiB.
    fn add_driver(
        &mut self,
        state: &ClusterState,
        driver: &'p DriverId,
    ) -> Result<(u32, u64), Rejection> {
        let Some(d) = state.drivers.get(driver) else {
            return stale(format!("driver {driver} is not waiting"));
        };
        if d.state != DriverState::Submitted || d.worker.is_some() || !self.drivers.insert(driver) {
            return stale(format!("driver {driver} is already placed"));
        }
        Ok((d.desc.cores, d.desc.memory_mb))
    }

    /// An executor with resources, for an app that can take executors now, numbered next.
    fn add_executor(
        &mut self,
        state: &ClusterState,
        app: &'p AppId,
        executor: ExecutorId,
        cores: u32,
        memory_mb: u64,
    ) -> Result<(), Rejection> {
        let Some(a) = state.apps.get(app) else {
            return stale(format!("app {app} is not active"));
        };
        if a.state == AppState::Unknown || a.driver_url.is_none() {
            return stale(format!("app {app} cannot take executors now"));
        }
        if cores == 0 || memory_mb == 0 {
            return stale(format!("executor {app}/{executor} has no resources"));
        }
        let adds = self.apps.entry(app).or_insert(AppAdds {
            next_id: a.next_executor_id,
            executors: 0,
            cores: 0,
        });
        if executor != adds.next_id {
            return stale(format!(
                "executor {app}/{executor}: expected id {}",
                adds.next_id
            ));
        }
        adds.next_id += 1;
        adds.executors += 1;
        adds.cores += u64::from(cores);
        Ok(())
    }

    /// Counts `cores` and `mem` against `worker`, which must be ALIVE.
    fn charge(
        &mut self,
        state: &ClusterState,
        worker: &'p WorkerId,
        cores: u32,
        mem: u64,
    ) -> Result<(), Rejection> {
        if state
            .workers
            .get(worker)
            .is_none_or(|w| w.state != WorkerState::Alive)
        {
            return stale(format!("worker {worker} is not ALIVE"));
        }
        let n = self.need.entry(worker).or_default();
        n.0 += u64::from(cores);
        n.1 += mem;
        Ok(())
    }

    /// Every worker has room for what the batch puts on it.
    fn check_workers(&self, state: &ClusterState) -> Result<(), Rejection> {
        for (worker, &(cores, mem)) in &self.need {
            let w = &state.workers[*worker];
            if cores > u64::from(w.cores_free()) || mem > w.memory_free_mb() {
                return stale(format!(
                    "worker {worker} has {} cores and {} MiB free, the batch needs {cores} and {mem}",
                    w.cores_free(),
                    w.memory_free_mb()
                ));
            }
        }
        Ok(())
    }

    /// No app goes past its executor target or its core cap.
    fn check_apps(&self, state: &ClusterState) -> Result<(), Rejection> {
        for (app, adds) in &self.apps {
            let a = &state.apps[*app];
            let over_limit = a.executor_limit.is_some_and(|l| {
                a.executors.len() as u64 + u64::from(adds.executors) > u64::from(l)
            });
            let over_cap = a
                .desc
                .max_cores
                .is_some_and(|m| u64::from(a.cores_granted()) + adds.cores > u64::from(m));
            if over_limit || over_cap {
                return stale(format!(
                    "app {app} would exceed its executor target or core cap"
                ));
            }
        }
        Ok(())
    }
}

/// Records a batch of placements (validated whole first): drivers RUNNING, executors
/// LAUNCHING, their apps RUNNING, and a launch for each.
pub(crate) fn place(
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
                actions.push(Action::LaunchDriver(DriverLaunch {
                    worker: worker.clone(),
                    driver: driver.clone(),
                    app: d.app.clone(),
                    cores: d.desc.cores,
                    memory_mb: d.desc.memory_mb,
                    supervise: d.desc.supervise,
                    command: d.desc.command.clone(),
                }));
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
                actions.push(Action::LaunchExecutor(ExecutorLaunch {
                    worker: worker.clone(),
                    app: app.clone(),
                    executor: *executor,
                    cores: *cores,
                    memory_mb: *memory_mb,
                    command: a.desc.command.clone(),
                    driver_url: a.driver_url.clone().unwrap_or_default(),
                }));
            }
        }
    }
    Ok(Outcome::Done)
}
