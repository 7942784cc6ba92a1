//! hearth-core: the cluster's state and every rule that changes it.
//!
//! Owns: ids and their formats ([`ids`]), the replicated [`ClusterState`], the replicated
//! [`Command`] enum and [`apply`], the scheduler ([`schedule`]), executor-failure and
//! supervise accounting, liveness decisions ([`liveness`]) and the recovery state machine
//! ([`recovery`]).
//!
//! Must not: do IO, read a clock, draw random numbers, or depend on tokio, tonic, rocksdb,
//! openraft or rand. Time ([`Millis`]) and seeds are arguments, so every function here is
//! deterministic and every replica that applies the same commands holds the same state.
//! Servers move bytes and call into this crate; they do not decide.
//!
//! # Layout
//! - [`state`]: `ClusterState` and its parts, the resource bookkeeping, `check_invariants`.
//! - [`command`]: `Command`, `Applied` (outcome + [`Action`]s for the leader to send, each
//!   a struct the worker runs as it is), `Rejection`.
//! - [`mod@apply`]: dispatches each command to its handler:
//!   - `workers`: a worker lost, forgotten, decommissioned, drained or undrained, and
//!     [`due_drains`]: which drains the leader ends now;
//!   - `apps`: apps registered, scaled, finished; drivers killed (with validation);
//!   - `placement`: the scheduler's placements recorded, all or nothing;
//!   - `reports`: what workers report about their executors and drivers;
//!   - [`recovery`]: registration and reconciliation, begin / complete recovery, and when
//!     to complete;
//!   - `lifecycle`: the transitions those share (a worker lost, a driver or an app ended,
//!     a supervised driver relaunched, executors killed, retention).
//! - [`mod@schedule`]: Spark's placement rules as a pure function, with `Policy`.
//! - [`listing`]: which workers, apps and drivers a filtered or paged status shows
//!   (`/json`, `GetState`, the CLI's lists), in which order, and their totals.
//! - [`liveness`]: worker and client-app timeouts from leader-local "last heard" times, on
//!   the leader's monotonic clock ([`Now`]; the wall clock only labels commands).
//! - `wire`: the frozen serialized form of the records that embed a [`WorkerIdentity`].

pub mod apply;
mod apps;
pub mod command;
pub mod ids;
mod lifecycle;
pub mod listing;
pub mod liveness;
mod placement;
pub mod recovery;
mod reports;
pub mod rng;
pub mod schedule;
pub mod state;
pub mod time;
mod wire;
mod workers;

pub use apply::apply;
pub use apps::{submitter_of, MAX_ACTIVE_APPS};
pub use command::{
    Action, Adoption, Applied, Command, DriverKill, DriverLaunch, ExecutorKill, ExecutorLaunch,
    Outcome, Rejection, ReportedExecutor, WorkerRegistration,
};
pub use ids::{AppId, DriverId, ExecutorId, WorkerId};
pub use liveness::{is_new_leader, liveness_commands, LastHeard, LivenessConfig};
pub use schedule::{
    schedule, schedule_up_to, Placement, Policy, WorkerSelection, PLACEMENTS_PER_PASS,
};
pub use state::{
    AppDescription, AppInfo, AppState, ClusterConfig, ClusterState, DriverDescription, DriverInfo,
    DriverState, ExecutorInfo, ExecutorState, MasterRole, ProcessSpec, WorkerIdentity, WorkerInfo,
    WorkerState, USER_ENV,
};
pub use time::{Millis, Now};
pub use workers::due_drains;
