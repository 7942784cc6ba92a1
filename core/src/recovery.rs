//! The recovery protocol as pure functions: how a master that takes over (after a crash,
//! a restart, or a Raft leader change; README.md, "A master that survives a crash") finds
//! out what still runs.
//!
//! 1. A new leader proposes [`Command::BeginRecovery`]: every ALIVE worker, every placed
//!    driver and every app that must check in becomes UNKNOWN.
//! 2. Workers re-register with what they run ([`Command::RegisterWorker`]); the report is
//!    reconciled: what the state does not know is killed, what it expects but the worker
//!    lacks is LOST (executors) or relaunched/ERROR (drivers), what matches is re-adopted
//!    (same process, not relaunched). Client-mode apps check in with
//!    [`Command::AppReconnected`]; a cluster-mode app checks in when its driver is reported.
//! 3. [`next_step`] says when to propose [`Command::CompleteRecovery`]: as soon as nothing
//!    is UNKNOWN, or once the recovery timeout has passed on the leader's monotonic clock
//!    (a wall clock step neither ends recovery early nor prolongs it). Completing settles
//!    whatever did not answer and makes the master ALIVE.
//!
//! A worker that watches the masters for a new leader (`WatchLeader`) offers its
//! registration with the watch; the new leader proposes [`Command::AdoptWorkers`] for the
//! offers right after `BeginRecovery`, and every worker whose offer [`fingerprint`]s the
//! same as what the state places on it is registered there and then, without a round
//! trip of its own ([`adopt_workers`]). What differs (a launch or an exit the offer
//! predates) is left to the usual registration, so adoption never loses or kills.
//!
//! The same reconcile runs on every registration, not only during recovery, so a worker
//! that re-registers at any time has whatever the state does not know killed. Only a
//! worker that was UNKNOWN has what it lacks declared LOST: a live worker's report can
//! predate launches still on their way to it (a real race, found by the FILESYSTEM
//! restart test), and a live worker reports every process's end by itself.

use crate::command::{
    Action, Command, DriverKill, ExecutorKill, Outcome, Rejection, ReportedExecutor,
    WorkerRegistration,
};
use crate::ids::{AppId, DriverId, ExecutorId, WorkerId};
use crate::lifecycle::{driver_gone, finish_app, lose_worker};
use crate::state::WorkerIdentity;
use crate::state::{
    AppState, ClusterState, DriverState, ExecutorState, MasterRole, WorkerInfo, WorkerState,
};
use crate::time::{Millis, Now};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A worker to re-adopt ([`Command::AdoptWorkers`]): who it is, as it offered to
/// register, and the [`fingerprint`] of what it said it runs. Serialized with the
/// identity's fields inline, like every record that holds one (`wire.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "wire::Adoption", into = "wire::Adoption")]
pub struct Adoption {
    pub identity: WorkerIdentity,
    pub fingerprint: u64,
}

crate::wire::identity_inline!(Adoption { fingerprint: u64 });

/// Step 1: mark everything that must answer UNKNOWN. With nothing to wait for, the master
/// is ALIVE at once.
pub(crate) fn begin_recovery(state: &mut ClusterState, at: Millis) -> Outcome {
    for w in state.workers.values_mut() {
        if w.state == WorkerState::Alive {
            w.state = WorkerState::Unknown;
        }
    }
    let mut placed_drivers = BTreeSet::new();
    for d in state.drivers.values_mut() {
        if d.worker.is_some() {
            d.state = DriverState::Unknown;
            placed_drivers.insert(d.id.clone());
        }
    }
    for a in state.apps.values_mut() {
        let must_answer = match &a.driver {
            None => true,
            Some(d) => placed_drivers.contains(d),
        };
        if must_answer {
            a.state = AppState::Unknown;
        }
    }
    if !anyone_unknown(state) {
        state.role = MasterRole::Alive;
        state.recovery_started_at = None;
    } else {
        state.role = MasterRole::Recovering;
        state.recovery_started_at = Some(at);
    }
    Outcome::Done
}

/// Step 3: whatever has not answered is settled, then ALIVE.
pub(crate) fn complete_recovery(
    state: &mut ClusterState,
    at: Millis,
    actions: &mut Vec<Action>,
) -> Outcome {
    if state.role != MasterRole::Recovering {
        return Outcome::Unchanged;
    }
    state.role = MasterRole::CompletingRecovery;
    let silent = awaiting(state);
    for w in &silent.workers {
        lose_worker(
            state,
            w,
            "it did not re-register within the recovery timeout",
            at,
            actions,
        );
    }
    // Placed drivers still UNKNOWN sit on workers that answered without them is not
    // possible (the report settles those); any left are on workers just lost above, which
    // relaunched or ended them. Anything else UNKNOWN is settled here.
    let unknown_drivers: Vec<DriverId> = state
        .drivers
        .values()
        .filter(|d| d.state == DriverState::Unknown)
        .map(|d| d.id.clone())
        .collect();
    for d in unknown_drivers {
        state.detach_driver(&d);
        driver_gone(
            state,
            &d,
            "it was not reported by any worker during recovery",
            at,
            actions,
        );
    }
    let unknown_apps: Vec<AppId> = state
        .apps
        .values()
        .filter(|a| a.state == AppState::Unknown)
        .map(|a| a.id.clone())
        .collect();
    for a in unknown_apps {
        finish_app(
            state,
            &a,
            AppState::Failed,
            "its driver did not reconnect within the recovery timeout after the master changed",
            at,
            actions,
        );
    }
    state.role = MasterRole::Alive;
    state.recovery_started_at = None;
    Outcome::Done
}

/// Who the leader is still waiting for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Awaiting {
    pub workers: Vec<WorkerId>,
    pub apps: Vec<AppId>,
}

impl Awaiting {
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty() && self.apps.is_empty()
    }
}

/// The workers and apps that are still UNKNOWN.
pub fn awaiting(state: &ClusterState) -> Awaiting {
    Awaiting {
        workers: state
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Unknown)
            .map(|w| w.identity.id.clone())
            .collect(),
        apps: state
            .apps
            .values()
            .filter(|a| a.state == AppState::Unknown)
            .map(|a| a.id.clone())
            .collect(),
    }
}

/// Whether any worker or app is still UNKNOWN. Runs after every command while
/// recovering, so it allocates nothing and stops at the first one found.
fn anyone_unknown(state: &ClusterState) -> bool {
    state
        .workers
        .values()
        .any(|w| w.state == WorkerState::Unknown)
        || state.apps.values().any(|a| a.state == AppState::Unknown)
}

/// The recovery decision: `Some(CompleteRecovery)` once everyone answered or `timeout_ms`
/// has passed since this leader began recovery; `None` while waiting or when not
/// recovering.
///
/// `began` is when this leader began recovery on its monotonic clock (its
/// [`LastHeard::leader_since`](crate::LastHeard::leader_since)), compared with
/// `now.mono`; the replicated `recovery_started_at` is a wall-clock label, never measured
/// against. The command is labelled `now.wall`.
pub fn next_step(
    state: &ClusterState,
    now: Now,
    began: Millis,
    timeout_ms: u64,
) -> Option<Command> {
    if state.role != MasterRole::Recovering {
        return None;
    }
    if !anyone_unknown(state) || now.mono.since(began) >= timeout_ms {
        Some(Command::CompleteRecovery { at: now.wall })
    } else {
        None
    }
}

fn validate_registration(reg: &WorkerRegistration) -> Result<(), Rejection> {
    let me = &reg.identity;
    if me.id.as_str().trim().is_empty() {
        return Err(Rejection::invalid("worker id", "is empty"));
    }
    if me.host.trim().is_empty() {
        return Err(Rejection::invalid("host", "is empty"));
    }
    if me.port == 0 {
        return Err(Rejection::invalid("port", "a worker must listen on a port"));
    }
    if me.cores == 0 {
        return Err(Rejection::invalid(
            "cores",
            "a worker must offer at least 1 core",
        ));
    }
    if me.memory_mb == 0 {
        return Err(Rejection::invalid(
            "memory",
            "a worker must offer at least 1 MiB",
        ));
    }
    Ok(())
}

/// Step 2, and every registration: admit the worker, then reconcile its report.
pub(crate) fn register_worker(
    state: &mut ClusterState,
    reg: &WorkerRegistration,
    at: Millis,
    actions: &mut Vec<Action>,
) -> Result<Outcome, Rejection> {
    validate_registration(reg)?;
    let me = &reg.identity;
    // Only a worker the master was waiting on (UNKNOWN after a leader change) can be
    // trusted to report everything the state placed on it: a live worker's report may
    // predate launches still on their way to it, and it reports every process's end
    // itself anyway.
    let lose_missing = state
        .workers
        .get(&me.id)
        .is_some_and(|w| w.state == WorkerState::Unknown);
    // Another worker the state still counts (ALIVE, or UNKNOWN after a takeover) at the
    // address this one registers from: that one's process is gone, since one address
    // holds one process (a worker restarted in place), so what it ran is lost now, not a
    // worker timeout later. Whether this id is new or one the state knew (even as dead).
    //
    // A worker that was not DEAD and registers again at the address it had (every
    // re-registration after a failover) replaces nobody: at most one worker that is not
    // DEAD holds an address (`check_invariants`), and here it is this one. Skipping the
    // scan of every worker keeps a re-registration herd O(N), not O(N²): at 5,000 workers
    // the scan was 25 million comparisons on each master.
    let in_place = state.workers.get(&me.id).is_some_and(|w| {
        w.state != WorkerState::Dead && w.identity.host == me.host && w.identity.port == me.port
    });
    let replaced: Vec<_> = if in_place {
        Vec::new()
    } else {
        state
            .workers
            .values()
            .filter(|w| {
                let old = &w.identity;
                old.id != me.id
                    && old.host == me.host
                    && old.port == me.port
                    && w.state != WorkerState::Dead
            })
            .map(|w| w.identity.id.clone())
            .collect()
    };
    for old in replaced {
        let why = format!(
            "{} registered at its address {}:{} (the worker restarted)",
            me.id, me.host, me.port
        );
        lose_worker(state, &old, &why, at, actions);
    }
    let duplicate = match state.workers.get_mut(&me.id) {
        None => {
            state.workers.insert(
                me.id.clone(),
                WorkerInfo {
                    identity: me.clone(),
                    cores_used: 0,
                    memory_used_mb: 0,
                    state: WorkerState::Alive,
                    registered_at: at,
                    dead_since: None,
                    executors: BTreeSet::new(),
                    drivers: BTreeSet::new(),
                },
            );
            false
        }
        Some(w) => {
            let duplicate = w.state == WorkerState::Alive;
            if matches!(w.state, WorkerState::Unknown | WorkerState::Dead) {
                w.state = WorkerState::Alive;
                w.dead_since = None;
            }
            // A worker may come back on another address (same id, new host:port).
            w.identity.host = me.host.clone();
            w.identity.port = me.port;
            w.identity.http_port = me.http_port;
            duplicate
        }
    };
    reconcile_report(state, reg, lose_missing, at, actions);
    Ok(Outcome::WorkerRegistered { duplicate })
}

/// Diffs what a worker runs against what the state placed on it: what the state does not
/// know is killed, what matches is re-adopted, and (with `lose_missing`) what the state
/// expects but the worker lacks is LOST (executors) or relaunched/ERROR (drivers).
fn reconcile_report(
    state: &mut ClusterState,
    reg: &WorkerRegistration,
    lose_missing: bool,
    at: Millis,
    actions: &mut Vec<Action>,
) {
    let worker = &reg.identity.id;
    let (expected_execs, expected_drivers) = match state.workers.get(worker) {
        Some(w) => (w.executors.clone(), w.drivers.clone()),
        None => return,
    };
    let mut reported: BTreeMap<(AppId, ExecutorId), ExecutorState> = BTreeMap::new();
    for r in reg.executors.iter().filter(|r| !r.state.is_terminal()) {
        reported.insert((r.app.clone(), r.executor), r.state);
    }
    for ((app, id), st) in &reported {
        if expected_execs.contains(&(app.clone(), *id)) {
            if let Some(a) = state.apps.get_mut(app) {
                if let Some(e) = a.executors.get_mut(id) {
                    if *st == ExecutorState::Running {
                        e.state = ExecutorState::Running;
                    }
                }
                if a.state == AppState::Waiting {
                    a.state = AppState::Running;
                }
            }
        } else {
            actions.push(Action::KillExecutor(ExecutorKill {
                worker: worker.clone(),
                app: app.clone(),
                executor: *id,
            }));
        }
    }
    for (app, id) in expected_execs.iter().filter(|_| lose_missing) {
        if !reported.contains_key(&(app.clone(), *id)) {
            state.remove_executor(app, *id); // LOST: not the app's fault
        }
    }
    let reported_drivers: BTreeSet<&DriverId> = reg.drivers.iter().collect();
    for d in &reported_drivers {
        if !expected_drivers.contains(*d) {
            actions.push(Action::KillDriver(DriverKill {
                worker: worker.clone(),
                driver: (*d).clone(),
            }));
            continue;
        }
        let Some(info) = state.drivers.get_mut(*d) else {
            continue;
        };
        info.state = DriverState::Running;
        let app_id = info.app.clone();
        if let Some(a) = state.apps.get_mut(&app_id) {
            if a.state == AppState::Unknown && a.driver.as_ref() == Some(*d) {
                a.state = if a.executors.is_empty() {
                    AppState::Waiting
                } else {
                    AppState::Running
                };
            }
        }
    }
    for d in expected_drivers.iter().filter(|_| lose_missing) {
        if !reported_drivers.contains(d) {
            state.detach_driver(d);
            let why = format!("worker {worker} re-registered without it");
            driver_gone(state, d, &why, at, actions);
        }
    }
}

/// A 64-bit fingerprint (FNV-1a) of what a worker runs: its live executors with their
/// states, and its drivers, each in key order. Equal for a report and the state exactly
/// when [`reconcile_report`] would find nothing to kill, lose or change (up to hash
/// collisions, which only a worker lying about itself could aim for).
pub fn fingerprint<'a>(
    executors: impl IntoIterator<Item = (&'a AppId, ExecutorId, Option<ExecutorState>)>,
    drivers: impl IntoIterator<Item = &'a DriverId>,
) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(PRIME);
        }
    };
    let mut count = 0u64;
    for (app, id, st) in executors {
        count += 1;
        eat(&(app.as_str().len() as u64).to_le_bytes());
        eat(app.as_str().as_bytes());
        eat(&id.to_le_bytes());
        eat(st.map_or("", ExecutorState::as_str).as_bytes());
        eat(&[0]);
    }
    eat(&count.to_le_bytes());
    for d in drivers {
        eat(&(d.as_str().len() as u64).to_le_bytes());
        eat(d.as_str().as_bytes());
    }
    h
}

/// The [`fingerprint`] of what `reg` reports, read as [`reconcile_report`] reads it
/// (terminal executors dropped, a repeated executor counted once with its last state).
pub fn report_fingerprint(reg: &WorkerRegistration) -> u64 {
    let mut executors: BTreeMap<(&AppId, ExecutorId), ExecutorState> = BTreeMap::new();
    for r in reg.executors.iter().filter(|r| !r.state.is_terminal()) {
        executors.insert((&r.app, r.executor), r.state);
    }
    let drivers: BTreeSet<&DriverId> = reg.drivers.iter().collect();
    fingerprint(
        executors.into_iter().map(|((a, e), st)| (a, e, Some(st))),
        drivers,
    )
}

/// The state of executor `id` of `app`, if the state holds it.
fn executor_state(state: &ClusterState, app: &AppId, id: ExecutorId) -> Option<ExecutorState> {
    (state.apps.get(app)).and_then(|a| a.executors.get(&id).map(|e| e.state))
}

/// The executors the state places on worker `w`, each with its state (`None`: one the
/// state lost track of, which no report matches), in key order.
fn expected_executors<'a>(
    state: &'a ClusterState,
    w: &'a WorkerInfo,
) -> Vec<(&'a AppId, ExecutorId, Option<ExecutorState>)> {
    (w.executors.iter())
        .map(|(app, id)| (app, *id, executor_state(state, app, *id)))
        .collect()
}

/// The [`fingerprint`] of what the state places on worker `w`.
fn expected_print(state: &ClusterState, w: &WorkerInfo) -> u64 {
    fingerprint(expected_executors(state, w), &w.drivers)
}

/// The [`fingerprint`] of what `state` places on `worker`, if it knows the worker: equal
/// to an offer's [`report_fingerprint`] exactly when a leader taking over from this state
/// would adopt that worker from it (were it UNKNOWN by then).
pub fn expected_fingerprint(state: &ClusterState, worker: &WorkerId) -> Option<u64> {
    state.workers.get(worker).map(|w| expected_print(state, w))
}

/// [`Command::AdoptWorkers`]: each UNKNOWN worker whose offer fingerprints the same as
/// what the state places on it registers as if it had reported exactly that; the others
/// are left as they are (UNKNOWN until they register). Never kills or loses anything.
pub(crate) fn adopt_workers(
    state: &mut ClusterState,
    adoptions: &[Adoption],
    at: Millis,
    actions: &mut Vec<Action>,
) -> Outcome {
    let mut adopted = Vec::new();
    for a in adoptions {
        let Some(w) = state.workers.get(&a.identity.id) else {
            continue;
        };
        if w.state != WorkerState::Unknown {
            continue;
        }
        // Looked up once: for the fingerprint, and, when it matches, the registration.
        let executors = expected_executors(state, w);
        if fingerprint(executors.iter().copied(), &w.drivers) != a.fingerprint {
            continue;
        }
        let reg = WorkerRegistration {
            identity: a.identity.clone(),
            executors: (executors.into_iter())
                .filter_map(|(app, executor, st)| {
                    st.map(|state| ReportedExecutor {
                        app: app.clone(),
                        executor,
                        state,
                    })
                })
                .collect(),
            drivers: w.drivers.iter().cloned().collect(),
        };
        if register_worker(state, &reg, at, actions).is_ok() {
            adopted.push(a.identity.id.clone());
        }
    }
    if adopted.is_empty() {
        Outcome::Unchanged
    } else {
        Outcome::WorkersAdopted { workers: adopted }
    }
}

/// A client-mode app's submitter is back.
pub(crate) fn app_reconnected(state: &mut ClusterState, app: &AppId) -> Result<Outcome, Rejection> {
    if let Some(done) = state.completed_apps.iter().find(|a| &a.id == app) {
        return Err(Rejection::wrong_state(
            app,
            done.state,
            "the app has ended; stop its driver",
        ));
    }
    let a = state
        .apps
        .get_mut(app)
        .ok_or_else(|| Rejection::UnknownApp(app.clone()))?;
    if a.state != AppState::Unknown {
        return Ok(Outcome::Unchanged);
    }
    a.state = if a.executors.is_empty() {
        AppState::Waiting
    } else {
        AppState::Running
    };
    Ok(Outcome::Done)
}
