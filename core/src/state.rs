//! The replicated cluster state: what every master holds and what [`apply`](crate::apply)
//! changes. Ordered maps everywhere, so iteration order and serialization are the same
//! on every replica.
//!
//! What is *not* here on purpose: heartbeat timestamps and anything else a leader can
//! rebuild by listening (they are leader-local soft state, see [`crate::liveness`]), and
//! the scheduling [`Policy`](crate::Policy), which only the leader reads.

use crate::ids::{AppId, DriverId, ExecutorId, WorkerId};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;

macro_rules! state_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The upper-case name used in `/json`, the CLI and logs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        concat!("unknown ", stringify!($name), " {:?}; expected one of {}"),
                        other,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

/// A worker's state as the master sees it.
///
/// Written by hand, not through `state_enum!`, because DRAINING carries its deadline.
/// Journals and snapshots encode it by position (recovery/FORMAT.md): new states go last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WorkerState {
    /// Registered and heartbeating; takes placements.
    #[serde(rename = "ALIVE")]
    Alive,
    /// Stopped heartbeating; holds nothing.
    #[serde(rename = "DEAD")]
    Dead,
    /// Takes no new placements; what runs there keeps running (also where a drain ends,
    /// with nothing left running).
    #[serde(rename = "DECOMMISSIONED")]
    Decommissioned,
    /// A new leader waits for it to register again (it was ALIVE).
    #[serde(rename = "UNKNOWN")]
    Unknown,
    /// Being drained: takes no new placements; what still runs there at `deadline` (the
    /// wall clock of the master that accepted the drain) is killed and placed elsewhere,
    /// and the worker becomes DECOMMISSIONED.
    #[serde(rename = "DRAINING")]
    Draining { deadline: Millis },
}

impl WorkerState {
    /// One value of each state, in declaration order. DRAINING's deadline here is 0: the
    /// name alone does not carry it.
    pub const ALL: &'static [WorkerState] = &[
        WorkerState::Alive,
        WorkerState::Dead,
        WorkerState::Decommissioned,
        WorkerState::Unknown,
        WorkerState::Draining {
            deadline: Millis(0),
        },
    ];

    /// The upper-case name used in `/json`, the CLI and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Alive => "ALIVE",
            WorkerState::Dead => "DEAD",
            WorkerState::Decommissioned => "DECOMMISSIONED",
            WorkerState::Unknown => "UNKNOWN",
            WorkerState::Draining { .. } => "DRAINING",
        }
    }

    /// When a DRAINING worker's remaining work is killed; `None` in any other state.
    pub fn drain_deadline(self) -> Option<Millis> {
        match self {
            WorkerState::Draining { deadline } => Some(deadline),
            _ => None,
        }
    }

    /// ALIVE, DECOMMISSIONED or DRAINING: registered with this leader and running what it
    /// holds, so it must keep heartbeating (silence makes it DEAD).
    pub fn is_serving(self) -> bool {
        matches!(
            self,
            WorkerState::Alive | WorkerState::Decommissioned | WorkerState::Draining { .. }
        )
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a state name. `DRAINING` parses with deadline 0: the name alone does not carry
/// it, so a decoder that has the deadline (`WorkerInfo.drain_deadline_ms` in hearth-proto)
/// sets it.
impl FromStr for WorkerState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        WorkerState::ALL
            .iter()
            .find(|w| w.as_str() == s)
            .copied()
            .ok_or_else(|| {
                let names: Vec<_> = WorkerState::ALL.iter().map(|w| w.as_str()).collect();
                format!(
                    "unknown WorkerState {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

state_enum!(
    /// An application's state.
    AppState {
        Waiting => "WAITING",
        Running => "RUNNING",
        Finished => "FINISHED",
        Failed => "FAILED",
        Killed => "KILLED",
        Unknown => "UNKNOWN",
    }
);

state_enum!(
    /// A driver's state.
    DriverState {
        Submitted => "SUBMITTED",
        Running => "RUNNING",
        Relaunching => "RELAUNCHING",
        Finished => "FINISHED",
        Failed => "FAILED",
        Killed => "KILLED",
        Error => "ERROR",
        Unknown => "UNKNOWN",
    }
);

state_enum!(
    /// An executor's state.
    ExecutorState {
        Launching => "LAUNCHING",
        Running => "RUNNING",
        Killed => "KILLED",
        Failed => "FAILED",
        Lost => "LOST",
        Exited => "EXITED",
        Decommissioned => "DECOMMISSIONED",
    }
);

state_enum!(
    /// Where the leading master is in the recovery protocol ([`crate::recovery`]). A master that
    /// does not lead reports STANDBY whatever this says.
    MasterRole {
        Standby => "STANDBY",
        Recovering => "RECOVERING",
        CompletingRecovery => "COMPLETING_RECOVERY",
        Alive => "ALIVE",
    }
);

impl AppState {
    /// FINISHED, FAILED or KILLED: the app is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            AppState::Finished | AppState::Failed | AppState::Killed
        )
    }
}

impl DriverState {
    /// The driver is over (RELAUNCHING counts: its successor has a new id).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DriverState::Relaunching
                | DriverState::Finished
                | DriverState::Failed
                | DriverState::Killed
                | DriverState::Error
        )
    }
}

impl ExecutorState {
    /// The process is gone.
    pub fn is_terminal(self) -> bool {
        !matches!(self, ExecutorState::Launching | ExecutorState::Running)
    }
}

/// What to run: an argv and extra environment. The worker adds the `HEARTH_*` variables
/// (README.md, "What a launched process gets").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// What an application asked for when it registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppDescription {
    pub name: String,
    /// Cores of each executor. `None`: one executor per worker takes every core it is
    /// given (Spark's behaviour without `spark.executor.cores`).
    pub cores_per_executor: Option<u32>,
    pub memory_per_executor_mb: u64,
    /// Cap on the cores granted to the app at once (`--total-executor-cores`). `None`:
    /// the policy's default cap, else unlimited.
    pub max_cores: Option<u32>,
    /// Initial executor target for dynamic allocation; `None` = no target.
    pub initial_executor_limit: Option<u32>,
    /// The executor command. Its env's [`USER_ENV`] names who submitted the app.
    pub command: ProcessSpec,
}

/// The env variable of an app's command that names who submitted it (as Spark's
/// `SPARK_USER`): the submit token's name, or what the client said when it came with the
/// cluster secret. Its launched processes get it too; it is the one env value a status
/// shows. (In the env, not a field of its own: the FILESYSTEM format is positional, and
/// a new field would need a format version.)
pub const USER_ENV: &str = "HEARTH_USER";

impl AppDescription {
    /// Who submitted it ([`USER_ENV`]), if anyone said.
    pub fn user(&self) -> Option<&str> {
        self.command.env.get(USER_ENV).map(String::as_str)
    }
}

/// What a cluster-mode driver needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverDescription {
    pub cores: u32,
    pub memory_mb: u64,
    /// Relaunch (under a new id) when its worker is lost; the worker restarts it on a
    /// non-zero exit.
    pub supervise: bool,
    pub command: ProcessSpec,
}

/// Who a worker is and what it offers: what it registers with, what the master records,
/// and what the worker knows of itself.
///
/// Not serialized on its own: the records that embed it ([`WorkerInfo`],
/// [`WorkerRegistration`](crate::WorkerRegistration)) keep its fields inline and first,
/// as they were before this type existed, so data dirs written before it still restore
/// (see `wire.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerIdentity {
    pub id: WorkerId,
    pub host: String,
    /// The worker's gRPC port, where the master sends launches and kills.
    pub port: u16,
    /// The worker's HTTP port (0 if it has none).
    pub http_port: u16,
    /// Cores offered.
    pub cores: u32,
    /// Memory offered, in MiB.
    pub memory_mb: u64,
}

impl WorkerIdentity {
    /// `host:port`, where the master reaches the worker's gRPC service.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A worker as the master knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "wire::WorkerInfo", into = "wire::WorkerInfo")]
pub struct WorkerInfo {
    /// As it last registered (a worker may come back on another address).
    pub identity: WorkerIdentity,
    /// Sum of the cores of the executors and drivers placed here; kept by
    /// [`ClusterState::add_executor`] and friends, checked by [`ClusterState::check_invariants`].
    pub cores_used: u32,
    pub memory_used_mb: u64,
    pub state: WorkerState,
    pub registered_at: Millis,
    /// When it was declared DEAD; DEAD workers are forgotten some time later.
    pub dead_since: Option<Millis>,
    pub executors: BTreeSet<(AppId, ExecutorId)>,
    pub drivers: BTreeSet<DriverId>,
}

crate::wire::identity_inline!(WorkerInfo {
    cores_used: u32,
    memory_used_mb: u64,
    state: WorkerState,
    registered_at: Millis,
    dead_since: Option<Millis>,
    executors: BTreeSet<(AppId, ExecutorId)>,
    drivers: BTreeSet<DriverId>,
});

impl WorkerInfo {
    pub fn cores_free(&self) -> u32 {
        self.identity.cores.saturating_sub(self.cores_used)
    }

    pub fn memory_free_mb(&self) -> u64 {
        self.identity.memory_mb.saturating_sub(self.memory_used_mb)
    }

    /// Still running things, or could be (not DEAD).
    pub fn is_known_live(&self) -> bool {
        self.state != WorkerState::Dead
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    pub id: ExecutorId,
    pub worker: WorkerId,
    pub cores: u32,
    pub memory_mb: u64,
    pub state: ExecutorState,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    pub id: AppId,
    /// Registration number: apps are scheduled FIFO by it.
    pub seq: u64,
    pub desc: AppDescription,
    pub state: AppState,
    pub submitted_at: Millis,
    pub ended_at: Option<Millis>,
    /// Why it ended, for people.
    pub end_reason: Option<String>,
    /// Cluster mode: the driver the leader places. `None`: client mode.
    pub driver: Option<DriverId>,
    /// Where executors reach the driver (`host:port`). The app gets executors only once
    /// this is known: at registration in client mode, when its driver runs in cluster mode.
    pub driver_url: Option<String>,
    /// Live executors (LAUNCHING or RUNNING); ended ones are removed.
    pub executors: BTreeMap<ExecutorId, ExecutorInfo>,
    pub next_executor_id: ExecutorId,
    /// Dynamic-allocation target: at most this many executors.
    pub executor_limit: Option<u32>,
    /// Executor failures since the last executor reached RUNNING.
    pub retry_count: u32,
}

impl AppInfo {
    pub fn cores_granted(&self) -> u32 {
        self.executors.values().map(|e| e.cores).sum()
    }

    pub fn has_running_executor(&self) -> bool {
        self.executors
            .values()
            .any(|e| e.state == ExecutorState::Running)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverInfo {
    pub id: DriverId,
    /// Submission number: waiting drivers are placed in this order.
    pub seq: u64,
    pub app: AppId,
    pub desc: DriverDescription,
    pub state: DriverState,
    /// Where it was placed. `None` while waiting.
    pub worker: Option<WorkerId>,
    pub submitted_at: Millis,
    pub ended_at: Option<Millis>,
    pub end_reason: Option<String>,
    /// The driver this one was relaunched from (supervise).
    pub relaunch_of: Option<DriverId>,
}

/// Settings that [`apply`](crate::apply) reads. They are replicated (changed only by
/// [`Command::SetConfig`](crate::Command::SetConfig)) because replicas must apply every
/// command alike, whatever flags each master was started with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// Consecutive executor failures after which an app with no RUNNING executor FAILS.
    /// `None`: never (Spark's `-1`).
    pub max_executor_retries: Option<u32>,
    /// Completed apps kept for display.
    pub retained_apps: usize,
    /// Completed drivers kept for display.
    pub retained_drivers: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            max_executor_retries: Some(10),
            retained_apps: 200,
            retained_drivers: 200,
        }
    }
}

/// Everything the masters replicate.
///
/// Snapshots store it in a positional encoding (hearth-recovery, recovery/FORMAT.md): add
/// fields (here and in every type inside) only at the end; reordering, removing or
/// retyping one needs a format version bump and a migration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub role: MasterRole,
    /// When the current recovery began (RECOVERING only).
    pub recovery_started_at: Option<Millis>,
    pub workers: BTreeMap<WorkerId, WorkerInfo>,
    /// Apps that have not ended.
    pub apps: BTreeMap<AppId, AppInfo>,
    /// Ended apps, oldest first, at most `config.retained_apps`.
    pub completed_apps: VecDeque<AppInfo>,
    /// Drivers that have not ended.
    pub drivers: BTreeMap<DriverId, DriverInfo>,
    /// Ended drivers, oldest first, at most `config.retained_drivers`.
    pub completed_drivers: VecDeque<DriverInfo>,
    /// The number the next app id gets; never goes back.
    pub next_app_number: u64,
    /// The number the next driver id gets; never goes back.
    pub next_driver_number: u64,
    pub config: ClusterConfig,
}

// Declared through `state_enum!`, which has no `#[default]` slot.
#[allow(clippy::derivable_impls)]
impl Default for MasterRole {
    fn default() -> Self {
        MasterRole::Standby
    }
}

/// Bookkeeping that keeps the two sides of every placement in step: an executor is in
/// its app's map *and* its worker's set, and its resources are counted on the worker.
/// Every change to placements goes through these, so the invariant has one home.
impl ClusterState {
    /// Records a placed executor on its app and worker. The caller has checked both exist.
    pub(crate) fn add_executor(&mut self, app: &AppId, exec: ExecutorInfo) {
        if let Some(w) = self.workers.get_mut(&exec.worker) {
            w.cores_used += exec.cores;
            w.memory_used_mb += exec.memory_mb;
            w.executors.insert((app.clone(), exec.id));
        }
        if let Some(a) = self.apps.get_mut(app) {
            a.next_executor_id = a.next_executor_id.max(exec.id + 1);
            a.executors.insert(exec.id, exec);
        }
    }

    /// Removes an executor from its app and worker and frees its resources.
    pub(crate) fn remove_executor(&mut self, app: &AppId, id: ExecutorId) -> Option<ExecutorInfo> {
        let exec = self.apps.get_mut(app)?.executors.remove(&id)?;
        if let Some(w) = self.workers.get_mut(&exec.worker) {
            w.cores_used = w.cores_used.saturating_sub(exec.cores);
            w.memory_used_mb = w.memory_used_mb.saturating_sub(exec.memory_mb);
            w.executors.remove(&(app.clone(), id));
        }
        Some(exec)
    }

    /// Places a waiting driver on a worker (counting its resources there).
    pub(crate) fn attach_driver(&mut self, driver: &DriverId, worker: &WorkerId) {
        let Some(d) = self.drivers.get_mut(driver) else {
            return;
        };
        d.worker = Some(worker.clone());
        let (cores, mem) = (d.desc.cores, d.desc.memory_mb);
        if let Some(w) = self.workers.get_mut(worker) {
            w.cores_used += cores;
            w.memory_used_mb += mem;
            w.drivers.insert(driver.clone());
        }
    }

    /// Takes a driver off its worker (freeing its resources); it stays in `drivers`.
    pub(crate) fn detach_driver(&mut self, driver: &DriverId) -> Option<WorkerId> {
        let d = self.drivers.get_mut(driver)?;
        let worker = d.worker.take()?;
        let (cores, mem) = (d.desc.cores, d.desc.memory_mb);
        if let Some(w) = self.workers.get_mut(&worker) {
            w.cores_used = w.cores_used.saturating_sub(cores);
            w.memory_used_mb = w.memory_used_mb.saturating_sub(mem);
            w.drivers.remove(driver);
        }
        Some(worker)
    }

    /// Finds an app, active or completed.
    pub fn find_app(&self, id: &AppId) -> Option<&AppInfo> {
        self.apps
            .get(id)
            .or_else(|| self.completed_apps.iter().find(|a| &a.id == id))
    }

    /// Finds a driver, active or completed.
    pub fn find_driver(&self, id: &DriverId) -> Option<&DriverInfo> {
        self.drivers
            .get(id)
            .or_else(|| self.completed_drivers.iter().find(|d| &d.id == id))
    }

    /// Checks the structural invariants and returns the first one broken. Tests and
    /// property tests call it after every command; it never changes anything.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut addresses = std::collections::BTreeMap::new();
        for w in self.workers.values() {
            self.check_worker(w)?;
            if w.state != WorkerState::Dead {
                let at = (w.identity.host.as_str(), w.identity.port);
                if let Some(other) = addresses.insert(at, &w.identity.id) {
                    return Err(format!(
                        "{other} and {} both hold {}:{} (a registration at an address replaces \
                         the worker there)",
                        w.identity.id, w.identity.host, w.identity.port
                    ));
                }
            }
        }
        for a in self.apps.values() {
            if a.state.is_terminal() {
                return Err(format!("{} is {} but still active", a.id, a.state));
            }
            for (id, e) in &a.executors {
                let listed = self
                    .workers
                    .get(&e.worker)
                    .is_some_and(|w| w.executors.contains(&(a.id.clone(), *id)));
                if !listed || *id != e.id || *id >= a.next_executor_id {
                    return Err(format!("{}/{id}: not consistently placed", a.id));
                }
            }
        }
        for d in self.drivers.values() {
            if d.state.is_terminal() {
                return Err(format!("{} is {} but still active", d.id, d.state));
            }
            if let Some(w) = &d.worker {
                if !self
                    .workers
                    .get(w)
                    .is_some_and(|w| w.drivers.contains(&d.id))
                {
                    return Err(format!("{} placed on {w}, which does not list it", d.id));
                }
            }
        }
        if self.completed_apps.len() > self.config.retained_apps
            || self.completed_drivers.len() > self.config.retained_drivers
        {
            return Err("more completed apps or drivers retained than configured".into());
        }
        Ok(())
    }

    /// A worker's placements are placed there, add up to what it counts as used, and are
    /// none if it is DEAD.
    fn check_worker(&self, w: &WorkerInfo) -> Result<(), String> {
        let me = &w.identity.id;
        let mut cores = 0u64;
        let mut mem = 0u64;
        for (app, id) in &w.executors {
            let e = self
                .apps
                .get(app)
                .and_then(|a| a.executors.get(id))
                .ok_or_else(|| format!("{me}: lists {app}/{id}, which no app has"))?;
            if e.worker != *me {
                return Err(format!("{app}/{id} is on {} but listed by {me}", e.worker));
            }
            cores += u64::from(e.cores);
            mem += e.memory_mb;
        }
        for d in &w.drivers {
            let info = self
                .drivers
                .get(d)
                .ok_or_else(|| format!("{me}: lists driver {d}, which is not active"))?;
            if info.worker.as_ref() != Some(me) {
                return Err(format!("driver {d} listed by {me} but placed elsewhere"));
            }
            cores += u64::from(info.desc.cores);
            mem += info.desc.memory_mb;
        }
        if cores != u64::from(w.cores_used) || mem != w.memory_used_mb {
            return Err(format!(
                "{me}: counts {} cores / {} MiB used, placements add up to {cores} / {mem}",
                w.cores_used, w.memory_used_mb
            ));
        }
        if w.state == WorkerState::Dead && (!w.executors.is_empty() || !w.drivers.is_empty()) {
            return Err(format!("{me} is DEAD but still holds placements"));
        }
        Ok(())
    }
}
