//! The master's single writer. Every change to the cluster state goes through
//! [`Master::propose`] (or the scheduler's pass), which applies the command with
//! `hearth_core::apply`, makes it durable through the [`Journal`] before anyone is
//! answered, and queues the resulting actions for the workers in commit order.

use crate::dispatch::Dispatcher;
use hearth_core::recovery;
use hearth_core::{
    apply, schedule, Applied, ClusterConfig, ClusterState, Command, LastHeard, MasterRole, Millis,
    Outcome, Policy, Rejection, WorkerId,
};
use hearth_proto::convert::{ClusterSnapshot, Fence, Member, MemberRole, WorkerStatus};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, MutexGuard, Notify};

/// What a master is configured with.
#[derive(Clone, Debug)]
pub struct MasterConfig {
    /// This master's id (Raft node id in HA mode; 1 otherwise).
    pub id: u64,
    /// The host workers and clients reach this master on.
    pub host: String,
    /// A worker unheard for longer is DEAD.
    pub worker_timeout: Duration,
    /// How long a new leader waits for workers and apps to check in.
    pub recovery_timeout: Duration,
    /// A client-mode app whose submitter is unheard for longer is FAILED.
    pub app_timeout: Duration,
    pub policy: Policy,
    /// Replicated settings; the leader proposes them when they differ from the state's.
    pub cluster: ClusterConfig,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            id: 1,
            host: "127.0.0.1".into(),
            worker_timeout: Duration::from_secs(60),
            recovery_timeout: Duration::from_secs(60),
            app_timeout: Duration::from_secs(60),
            policy: Policy::default(),
            cluster: ClusterConfig::default(),
        }
    }
}

/// Where committed commands are made durable. `append` returns only once `cmd` is on
/// disk; the request that caused it is answered after that.
pub trait Journal: Send {
    fn append(&mut self, cmd: &Command) -> std::io::Result<()>;
}

/// `--recovery-mode none`: nothing survives a restart of the master.
pub struct NoJournal;

impl Journal for NoJournal {
    fn append(&mut self, _cmd: &Command) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) struct Inner {
    pub(crate) state: ClusterState,
    /// Leader-local soft state: when each worker and client app was last heard from.
    pub(crate) heard: LastHeard,
    journal: Box<dyn Journal>,
    /// Seed of the next scheduling pass (drivers' shuffle).
    seed: u64,
}

pub struct Master {
    pub config: MasterConfig,
    /// This master's gRPC address as clients reach it.
    advertised: String,
    /// Fencing token stamped on every command to workers. Without Raft a master takes
    /// its start time in milliseconds, so a restarted master outranks its predecessor.
    term: u64,
    inner: Mutex<Inner>,
    dispatcher: Dispatcher,
    /// Wakes the scheduling loop.
    pub(crate) kick: Notify,
}

/// The master's wall clock, read only here.
pub fn now() -> Millis {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Millis(ms)
}

impl Master {
    pub fn new(config: MasterConfig, journal: Box<dyn Journal>, advertised: String) -> Self {
        let term = now().0.max(1);
        let fence = Fence {
            term,
            master_id: config.id,
        };
        Master {
            advertised,
            term,
            inner: Mutex::new(Inner {
                state: ClusterState::default(),
                heard: LastHeard::default(),
                journal,
                seed: term,
            }),
            dispatcher: Dispatcher::new(fence),
            kick: Notify::new(),
            config,
        }
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn advertised(&self) -> &str {
        &self.advertised
    }

    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    pub(crate) async fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().await
    }

    /// Applies, journals and dispatches one command; `Err` means refused (nothing changed).
    pub async fn propose(&self, cmd: Command) -> Result<Applied, Rejection> {
        let mut inner = self.lock().await;
        self.commit(&mut inner, &cmd)
    }

    /// The one place a command takes effect. Called with the state locked, so actions
    /// are queued per worker in commit order.
    fn commit(&self, inner: &mut Inner, cmd: &Command) -> Result<Applied, Rejection> {
        let applied = apply(&mut inner.state, cmd)?;
        if applied.outcome != Outcome::Unchanged {
            if let Err(e) = inner.journal.append(cmd) {
                // Memory is now ahead of disk and nothing may be acknowledged: stop
                // rather than run on with a state that a restart would not restore.
                tracing::error!(error = %e, command = cmd.kind(), "cannot persist a committed command; exiting");
                std::process::exit(1);
            }
        }
        tracing::debug!(command = cmd.kind(), outcome = ?applied.outcome, actions = applied.actions.len(), "applied");
        if let Command::WorkerLost { worker, .. } | Command::ForgetWorker { worker } = cmd {
            self.dispatcher.remove(worker);
        }
        for action in &applied.actions {
            match inner.state.workers.get(action.worker()) {
                Some(w) => self
                    .dispatcher
                    .send(&w.id, &format!("{}:{}", w.host, w.port), action),
                None => {
                    tracing::warn!(worker = %action.worker(), "no address for an action's worker; dropped")
                }
            }
        }
        if inner.state.role == MasterRole::Recovering {
            let timeout = self.config.recovery_timeout.as_millis() as u64;
            if let Some(done) = recovery::next_step(&inner.state, now(), timeout) {
                tracing::info!(awaiting = ?recovery::awaiting(&inner.state), "completing recovery");
                let _ = self.commit(inner, &done);
                tracing::info!(role = %inner.state.role, "recovery complete");
            }
        }
        self.kick.notify_one();
        Ok(applied)
    }

    /// Becomes the acting master: proposes the configured settings and begins recovery
    /// (ALIVE at once when there is nothing to recover).
    pub async fn take_over(&self) {
        let mut inner = self.lock().await;
        let at = now();
        inner.heard = LastHeard::new(at);
        if inner.state.config != self.config.cluster {
            let _ = self.commit(&mut inner, &Command::SetConfig(self.config.cluster.clone()));
        }
        let _ = self.commit(&mut inner, &Command::BeginRecovery { at });
        let awaiting = recovery::awaiting(&inner.state);
        tracing::info!(
            term = self.term,
            role = %inner.state.role,
            workers = awaiting.workers.len(),
            apps = awaiting.apps.len(),
            "took over as master"
        );
    }

    /// One scheduling pass: place what fits, commit the placements, send the launches.
    pub async fn schedule_once(&self) -> usize {
        let mut inner = self.lock().await;
        if inner.state.role != MasterRole::Alive {
            return 0;
        }
        inner.seed = inner.seed.wrapping_add(1);
        let placements = schedule(&inner.state, &self.config.policy, inner.seed);
        if placements.is_empty() {
            return 0;
        }
        let n = placements.len();
        let cmd = Command::Place {
            placements,
            at: now(),
        };
        match self.commit(&mut inner, &cmd) {
            Ok(_) => n,
            Err(e) => {
                tracing::warn!(error = %e, "the scheduler's placements were refused");
                0
            }
        }
    }

    /// Records that a worker was heard from now. False if the master does not count it
    /// as live (it should register again).
    pub async fn heard_worker(&self, id: &WorkerId) -> bool {
        let mut inner = self.lock().await;
        let live = inner.state.workers.get(id).is_some_and(|w| {
            matches!(
                w.state,
                hearth_core::WorkerState::Alive | hearth_core::WorkerState::Decommissioned
            )
        });
        if live {
            inner.heard.workers.insert(id.clone(), now());
        }
        live
    }

    /// Records that a client app's submitter was heard from now.
    pub async fn heard_app(&self, id: &hearth_core::AppId) {
        self.lock().await.heard.apps.insert(id.clone(), now());
    }

    /// Commands the liveness rules and the recovery timeout call for now.
    pub async fn due_commands(&self) -> Vec<Command> {
        let inner = self.lock().await;
        let at = now();
        let cfg = hearth_core::LivenessConfig {
            worker_timeout_ms: self.config.worker_timeout.as_millis() as u64,
            dead_worker_persistence: 15,
            app_timeout_ms: self.config.app_timeout.as_millis() as u64,
        };
        let mut due = hearth_core::liveness_commands(&inner.state, &inner.heard, at, &cfg);
        let timeout = self.config.recovery_timeout.as_millis() as u64;
        due.extend(recovery::next_step(&inner.state, at, timeout));
        due
    }

    /// Everything `GetState` and `/json` show.
    pub async fn snapshot(&self) -> ClusterSnapshot {
        let inner = self.lock().await;
        let s = &inner.state;
        ClusterSnapshot {
            status: s.role,
            leader: Some(self.advertised.clone()),
            term: self.term,
            masters: vec![Member {
                id: self.config.id,
                address: self.advertised.clone(),
                role: MemberRole::Leader,
            }],
            workers: s
                .workers
                .values()
                .map(|w| WorkerStatus {
                    info: w.clone(),
                    last_heartbeat: inner.heard.workers.get(&w.id).copied(),
                })
                .collect(),
            active_apps: s.apps.values().cloned().collect(),
            completed_apps: s.completed_apps.iter().cloned().collect(),
            active_drivers: s.drivers.values().cloned().collect(),
            completed_drivers: s.completed_drivers.iter().cloned().collect(),
            now: now(),
        }
    }

    /// The master's role (RECOVERING, ALIVE, ...).
    pub async fn role(&self) -> MasterRole {
        self.lock().await.state.role
    }
}

impl Master {
    /// The state of an active app, `None` if it is not active.
    pub async fn app_state(&self, app: &hearth_core::AppId) -> Option<hearth_core::AppState> {
        self.lock().await.state.apps.get(app).map(|a| a.state)
    }
}
