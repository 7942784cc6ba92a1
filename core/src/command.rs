//! The replicated commands, what applying one yields, and why one can be refused.
//!
//! A [`Command`] carries everything [`apply`](crate::apply) needs (times included), so
//! applying the same commands in the same order gives the same state on every replica.

use crate::ids::{AppId, DriverId, ExecutorId, WorkerId};
pub use crate::recovery::Adoption;
use crate::schedule::Placement;
use crate::state::{
    AppDescription, AppState, ClusterConfig, DriverDescription, DriverState, ExecutorState,
    ProcessSpec, WorkerIdentity,
};
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// An executor a worker says it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedExecutor {
    pub app: AppId,
    pub executor: ExecutorId,
    pub state: ExecutorState,
}

/// A worker's registration: who it is, what it offers, and what it runs right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "wire::WorkerRegistration", into = "wire::WorkerRegistration")]
pub struct WorkerRegistration {
    pub identity: WorkerIdentity,
    /// Executors it runs (empty on a first registration).
    pub executors: Vec<ReportedExecutor>,
    /// Drivers it runs.
    pub drivers: Vec<DriverId>,
}

crate::wire::identity_inline!(WorkerRegistration {
    executors: Vec<ReportedExecutor>,
    drivers: Vec<DriverId>,
});

/// A change to the cluster state, decided by the leader and replicated.
///
/// Journals store commands in a positional encoding (hearth-recovery, recovery/FORMAT.md):
/// add variants and fields only at the end; reordering, removing or retyping one needs a
/// format version bump and a migration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Replace the settings `apply` reads.
    SetConfig(ClusterConfig),
    /// A worker registers or re-registers (after a leader change, a restart of the
    /// master, or a timeout it survived). Idempotent: a live worker registering again is
    /// answered as a duplicate. What it reports is reconciled against the state.
    RegisterWorker { reg: WorkerRegistration, at: Millis },
    /// The worker stopped heartbeating: DEAD, its executors LOST, its drivers relaunched
    /// (supervised) or ERROR.
    WorkerLost {
        worker: WorkerId,
        reason: String,
        at: Millis,
    },
    /// Drop a DEAD worker from the list.
    ForgetWorker { worker: WorkerId },
    /// No new placements on this worker; what runs there keeps running.
    DecommissionWorker { worker: WorkerId },
    /// A new app. With `driver`, cluster mode: a driver is placed by the leader and the
    /// app's executors wait for it. Without, client mode: `driver_url` says where the
    /// already-running driver listens.
    RegisterApp {
        desc: AppDescription,
        driver: Option<DriverDescription>,
        driver_url: Option<String>,
        at: Millis,
    },
    /// A client-mode app's submitter got back in touch after a leader change.
    AppReconnected { app: AppId },
    /// Dynamic allocation / `app scale`: keep at most `target` executors.
    SetExecutorTarget { app: AppId, target: u32 },
    /// End an app (its driver exited, a user killed it, its client vanished).
    FinishApp {
        app: AppId,
        state: AppState,
        reason: String,
        at: Millis,
    },
    /// Record the scheduler's placements. All or nothing: a batch that no longer fits
    /// the state is refused whole and the leader schedules again.
    Place {
        placements: Vec<Placement>,
        at: Millis,
    },
    /// A worker reports an executor's new state.
    ExecutorStateChanged {
        worker: WorkerId,
        app: AppId,
        executor: ExecutorId,
        state: ExecutorState,
        exit_code: Option<i32>,
        message: String,
        at: Millis,
    },
    /// A worker reports a driver's new state; `driver_url` comes with RUNNING.
    DriverStateChanged {
        worker: WorkerId,
        driver: DriverId,
        state: DriverState,
        driver_url: Option<String>,
        exit_code: Option<i32>,
        message: String,
        at: Millis,
    },
    /// A user kills a driver (and so its app).
    KillDriver { driver: DriverId, at: Millis },
    /// A new leader takes over: everything that must answer becomes UNKNOWN.
    BeginRecovery { at: Millis },
    /// Everyone answered or the recovery timeout passed: settle what did not answer and
    /// become ALIVE.
    CompleteRecovery { at: Millis },
    /// Spark's `requestTotalExecutors`: at most `limit` executors from now on. Unlike
    /// [`Command::SetExecutorTarget`] a lower limit kills nothing: the app names the
    /// executors it releases ([`Command::KillExecutors`]).
    SetExecutorLimit { app: AppId, limit: u32 },
    /// Spark's `killExecutors`: stop these executors of the app. Ids no longer running
    /// are ignored (the request was retried, or they ended meanwhile).
    KillExecutors {
        app: AppId,
        executors: Vec<ExecutorId>,
    },
    /// Drain a worker: no new placements; what runs there may finish until `deadline`
    /// (the master's wall clock when it accepted the request, plus the grace the operator
    /// gave), then [`Command::FinishDrain`] kills it and it is placed elsewhere. Draining
    /// again sets the new deadline.
    DrainWorker { worker: WorkerId, deadline: Millis },
    /// A DRAINING or DECOMMISSIONED worker takes placements again (ALIVE).
    UndrainWorker { worker: WorkerId },
    /// A DRAINING worker's deadline has passed (`at` is at or after it), or nothing is
    /// left on it: what still runs there is killed and placed elsewhere (executors
    /// rescheduled, supervised drivers relaunched under a new id, others KILLED), and the
    /// worker stays registered as DECOMMISSIONED. Proposed by the leader
    /// ([`due_drains`](crate::due_drains)).
    FinishDrain { worker: WorkerId, at: Millis },
    /// A new leader re-adopts UNKNOWN workers from the registrations they offered while
    /// watching it for a leader (`WatchLeader`), without a `RegisterWorker` round trip
    /// each. A worker is adopted, as if it had registered reporting exactly what the
    /// state places on it, only while it is UNKNOWN and only when `fingerprint` equals
    /// the fingerprint of what the state places on it
    /// ([`recovery::fingerprint`](crate::recovery::fingerprint)); any other worker
    /// registers the usual way. Proposed by the leader right after
    /// [`Command::BeginRecovery`].
    AdoptWorkers { workers: Vec<Adoption>, at: Millis },
}

impl Command {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::SetConfig(_) => "SetConfig",
            Command::RegisterWorker { .. } => "RegisterWorker",
            Command::WorkerLost { .. } => "WorkerLost",
            Command::ForgetWorker { .. } => "ForgetWorker",
            Command::DecommissionWorker { .. } => "DecommissionWorker",
            Command::RegisterApp { .. } => "RegisterApp",
            Command::AppReconnected { .. } => "AppReconnected",
            Command::SetExecutorTarget { .. } => "SetExecutorTarget",
            Command::FinishApp { .. } => "FinishApp",
            Command::Place { .. } => "Place",
            Command::ExecutorStateChanged { .. } => "ExecutorStateChanged",
            Command::DriverStateChanged { .. } => "DriverStateChanged",
            Command::KillDriver { .. } => "KillDriver",
            Command::BeginRecovery { .. } => "BeginRecovery",
            Command::CompleteRecovery { .. } => "CompleteRecovery",
            Command::SetExecutorLimit { .. } => "SetExecutorLimit",
            Command::KillExecutors { .. } => "KillExecutors",
            Command::DrainWorker { .. } => "DrainWorker",
            Command::UndrainWorker { .. } => "UndrainWorker",
            Command::FinishDrain { .. } => "FinishDrain",
            Command::AdoptWorkers { .. } => "AdoptWorkers",
        }
    }
}

/// Start an executor on `worker`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorLaunch {
    pub worker: WorkerId,
    pub app: AppId,
    pub executor: ExecutorId,
    pub cores: u32,
    pub memory_mb: u64,
    pub command: ProcessSpec,
    /// Where the app's driver listens (`host:port`).
    pub driver_url: String,
}

/// Stop an executor on `worker`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorKill {
    pub worker: WorkerId,
    pub app: AppId,
    pub executor: ExecutorId,
}

/// Start a cluster-mode driver on `worker`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverLaunch {
    pub worker: WorkerId,
    pub driver: DriverId,
    pub app: AppId,
    pub cores: u32,
    pub memory_mb: u64,
    /// Restart on a non-zero exit (the worker does this itself, with backoff).
    pub supervise: bool,
    pub command: ProcessSpec,
}

/// Stop a driver on `worker`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverKill {
    pub worker: WorkerId,
    pub driver: DriverId,
}

/// What a worker must be told to do. Only the leader sends these; replicas drop them.
///
/// Each variant's struct is what travels: the leader encodes it into a `WorkerControl`
/// request (hearth-proto) and the worker decodes the same struct and runs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    LaunchExecutor(ExecutorLaunch),
    KillExecutor(ExecutorKill),
    LaunchDriver(DriverLaunch),
    KillDriver(DriverKill),
}

impl Action {
    /// The worker the action goes to.
    pub fn worker(&self) -> &WorkerId {
        match self {
            Action::LaunchExecutor(a) => &a.worker,
            Action::KillExecutor(a) => &a.worker,
            Action::LaunchDriver(a) => &a.worker,
            Action::KillDriver(a) => &a.worker,
        }
    }
}

/// What a successfully applied command produced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub outcome: Outcome,
    /// Launches and kills for the leader to send, in order.
    pub actions: Vec<Action>,
}

/// The answer a command's submitter gets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Applied; nothing to report beyond the state change.
    #[default]
    Done,
    /// Applied, and it changed nothing (a retried or duplicate request).
    Unchanged,
    /// A new app (and, in cluster mode, its driver).
    AppRegistered {
        app: AppId,
        driver: Option<DriverId>,
    },
    /// A worker registered for the first time, or again; `duplicate` when it was
    /// already ALIVE (a harmless retry, answered rather than refused).
    WorkerRegistered { duplicate: bool },
    /// The workers [`Command::AdoptWorkers`] adopted (the others must register).
    WorkersAdopted { workers: Vec<WorkerId> },
}

/// Why a command was refused. Refusing never changes the state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Rejection {
    #[error("unknown worker {0}")]
    UnknownWorker(WorkerId),
    #[error("unknown app {0}")]
    UnknownApp(AppId),
    #[error("unknown driver {0}")]
    UnknownDriver(DriverId),
    #[error("unknown executor {0}/{1}")]
    UnknownExecutor(AppId, ExecutorId),
    /// Bad input: `field` is the name the user typed it under.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The thing exists but is in a state where this does not apply.
    #[error("{what} is {state}: {why}")]
    WrongState {
        what: String,
        state: String,
        why: String,
    },
    /// Could never be placed on the workers the cluster has.
    #[error("cannot be scheduled: {0}")]
    Unschedulable(String),
    /// A placement batch that no longer fits the state (the leader schedules again).
    #[error("stale placement: {0}")]
    StalePlacement(String),
}

impl Rejection {
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Rejection::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn wrong_state(
        what: impl ToString,
        state: impl ToString,
        why: impl Into<String>,
    ) -> Self {
        Rejection::WrongState {
            what: what.to_string(),
            state: state.to_string(),
            why: why.into(),
        }
    }
}
