//! [`Master`], the single writer (its take-over: `takeover.rs`). Every change to the
//! cluster state goes through [`Master::propose`] (or the scheduler's pass): `commit`
//! applies the command with `hearth_core::apply`, appends it to the [`Journal`] and
//! queues the resulting actions for the workers, all under the state lock so the journal
//! and every worker's queue follow the commit order; `propose` then waits for the journal
//! to make it durable before anyone is answered or any action is sent.
//!
//! The leader-local liveness bookkeeping (when each worker and client app was last heard
//! from) is updated by the same commit, so it always belongs to the master that
//! committed. It is kept on the monotonic clock ([`mono_now`]), as is every timeout; the
//! wall clock ([`now`]) only labels commands and statuses.

use crate::dispatch::Dispatcher;
use crate::drill::Isolation;
use crate::journal::{Journal, JournalError};
use crate::lease::{self, Lease};
use hearth_core::recovery;
use hearth_core::{
    apply, schedule_up_to, Adoption, AppId, AppState, Applied, ClusterConfig, ClusterState,
    Command, LastHeard, MasterRole, Millis, Now, Outcome, Policy, Rejection, WorkerId,
    WorkerRegistration, WorkerState, PLACEMENTS_PER_PASS,
};
use hearth_proto::auth::{Credential, Secret};
use hearth_proto::convert::{Fence, Member, MemberRole, StatusView, WorkerStatus};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, MutexGuard, Notify};
use tracing::Instrument;

mod takeover;
pub use takeover::ANNOUNCE_GRACE;

/// What a master is configured with.
#[derive(Clone, Debug)]
pub struct MasterConfig {
    /// This master's id (Raft node id in HA mode; 1 otherwise).
    pub id: u64,
    /// The host workers and clients reach this master on.
    pub host: String,
    /// The `host:port` workers, clients and peers reach this master at, when it is not
    /// `host` and the listening port (a proxy or NAT in between).
    pub advertise: Option<String>,
    /// A worker unheard for longer is DEAD.
    pub worker_timeout: Duration,
    /// How long a new leader waits for workers and apps to check in.
    pub recovery_timeout: Duration,
    /// A client-mode app whose submitter is unheard for longer is FAILED.
    pub app_timeout: Duration,
    pub policy: Policy,
    /// Replicated settings; the leader proposes them when they differ from the state's.
    pub cluster: ClusterConfig,
    /// More gRPC services served on the master's port (the drill service, when drills
    /// are enabled).
    pub extra_grpc: Option<tonic::service::Routes>,
    /// This master's isolate-drill switch (the drill service holds a clone).
    pub isolation: Isolation,
    /// The cluster secret (`--secret-file`): every caller of this master's ports must
    /// send it (see `hearth_proto::auth`), and this master sends it to workers and
    /// peers. `None`: a cluster without one (loopback only, or `--insecure-no-auth`).
    pub secret: Option<Secret>,
    /// Named submit tokens (`--submit-token-file`): their holders may only submit, look
    /// at and kill apps (`hearth_proto::auth::submitter_may`). Needs a secret.
    pub submit_tokens: Vec<(String, Secret)>,
    /// Mutual TLS on this master's ports and to its peers and workers
    /// (`--tls-cert/--tls-key/--tls-ca`); `None`: plain TCP.
    pub tls: Option<hearth_proto::tls::Tls>,
}

impl MasterConfig {
    /// What this master shows workers and peers: the cluster secret, if any, and its TLS
    /// certificate, if any.
    pub fn credential(&self) -> Credential {
        Credential::new(self.secret.as_ref()).with_tls(self.tls.as_ref())
    }

    /// Who may call this master's ports (`None`: anyone, a cluster without a secret).
    pub fn access(&self) -> Option<hearth_proto::auth::Access> {
        let secret = self.secret.clone()?;
        Some(hearth_proto::auth::Access::new(
            secret,
            self.submit_tokens.clone(),
        ))
    }
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            id: 1,
            host: "127.0.0.1".into(),
            advertise: None,
            worker_timeout: Duration::from_secs(60),
            recovery_timeout: Duration::from_secs(60),
            app_timeout: Duration::from_secs(60),
            policy: Policy::default(),
            cluster: ClusterConfig::default(),
            extra_grpc: None,
            isolation: Isolation::default(),
            secret: None,
            submit_tokens: Vec::new(),
            tls: None,
        }
    }
}

/// Why a proposal was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// The command was refused; nothing changed.
    #[error("{0}")]
    Rejected(Rejection),
    /// This master does not (or no longer) lead; see [`JournalError::Deposed`].
    /// `maybe_applied` is true when the command was already handed to the journal.
    #[error("{}", not_leading(*maybe_applied))]
    NotLeading { maybe_applied: bool },
}

fn not_leading(maybe_applied: bool) -> &'static str {
    if maybe_applied {
        "leadership changed while the request was being committed; it may or may not have taken effect"
    } else {
        "this master is not leading (it has no quorum or was deposed)"
    }
}

impl From<Rejection> for ProposeError {
    fn from(r: Rejection) -> Self {
        ProposeError::Rejected(r)
    }
}

/// Stops the process: memory is ahead of disk and nothing more may be acknowledged.
fn persistence_failed(what: &str, e: &JournalError) -> ! {
    tracing::error!(error = %e, "{what} failed; exiting so that nothing unpersisted is acknowledged");
    std::process::exit(1);
}

pub(crate) struct Inner {
    pub(crate) state: ClusterState,
    /// Leader-local soft state: when each worker and client app was last heard from, on
    /// the monotonic clock ([`mono_now`]).
    pub(crate) heard: LastHeard,
    /// Seed of the next scheduling pass (drivers' shuffle).
    seed: u64,
    /// Sequence number of the last journaled command.
    lsn: u64,
}

pub struct Master {
    pub config: MasterConfig,
    /// This master's gRPC address as clients reach it.
    advertised: String,
    /// Fencing token stamped on every command to workers: the Raft term in Raft mode;
    /// without Raft the start time in milliseconds, so a restarted master outranks its
    /// predecessor.
    term: u64,
    /// Checked before every write and every command to a worker.
    lease: Lease,
    inner: Mutex<Inner>,
    journal: Box<dyn Journal>,
    /// The highest sequence number known durable; actions wait for it (see dispatch).
    durable: tokio::sync::watch::Sender<u64>,
    dispatcher: Dispatcher,
    /// Workers' refusals, taken by the loop that commits their feedback
    /// ([`crate::dispatch::feedback`]).
    pub(crate) refusals:
        std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<crate::dispatch::Refused>>>,
    /// Wakes the scheduling loop.
    pub(crate) kick: Notify,
    /// The state's role is RECOVERING (kept by [`Master::commit`], read without the lock).
    recovering: std::sync::atomic::AtomicBool,
    /// The workers [`Master::take_over`] adopted from the registrations their leader
    /// watches offered, by id: what each offered ([`Master::adopted`]).
    adopted: std::sync::Mutex<HashMap<WorkerId, Adoption>>,
    /// `term` on every log line of this master's work.
    span: tracing::Span,
}

/// This master process, new at every start (never 0): a leader restarted within its
/// term tells workers it is not the process they registered with.
pub fn incarnation() -> u64 {
    static INCARNATION: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *INCARNATION.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        (nanos ^ u64::from(std::process::id()).rotate_left(48)).max(1)
    })
}

/// The master's wall clock, read only here: the label of replicated commands and of what
/// statuses show. It may step (NTP, an operator), so no duration is measured on it.
pub fn now() -> Millis {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Millis(ms)
}

/// The master's monotonic clock, read only here: milliseconds since an instant of this
/// process (never 0). Every timeout is measured on it; it is never replicated.
pub fn mono_now() -> Millis {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    Millis((origin.elapsed().as_millis() as u64).saturating_add(1))
}

/// Both clocks, read together.
fn now_both() -> Now {
    Now {
        wall: now(),
        mono: mono_now(),
    }
}

impl Master {
    /// A master over `state` (restored from disk, or empty) whose journal has reached `lsn`.
    pub fn new(
        config: MasterConfig,
        journal: Box<dyn Journal>,
        restored: (ClusterState, u64),
        advertised: String,
    ) -> Self {
        let term = now().0.max(1);
        Self::leading(config, journal, restored, advertised, term, lease::always())
    }

    /// A master that leads in `term` while `lease` holds (Raft mode).
    pub fn leading(
        config: MasterConfig,
        journal: Box<dyn Journal>,
        restored: (ClusterState, u64),
        advertised: String,
        term: u64,
        lease: Lease,
    ) -> Self {
        let fence = Fence {
            term,
            master_id: config.id,
        };
        let span = tracing::info_span!("leading", term);
        let (state, lsn) = restored;
        let (durable, durable_rx) = tokio::sync::watch::channel(lsn);
        let (refused, refusals) = tokio::sync::mpsc::unbounded_channel();
        Master {
            refusals: std::sync::Mutex::new(Some(refusals)),
            advertised,
            term,
            inner: Mutex::new(Inner {
                state,
                heard: LastHeard::new(mono_now()),
                seed: term,
                lsn,
            }),
            journal,
            durable,
            dispatcher: Dispatcher::new(
                fence,
                durable_rx,
                lease.clone(),
                span.clone(),
                config.credential(),
                refused,
            ),
            lease,
            kick: Notify::new(),
            recovering: Default::default(),
            adopted: Default::default(),
            config,
            span,
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

    /// The span every log line of this master's work is in (`term`).
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    pub(crate) async fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().await
    }

    /// Whether this master may write and command workers now (see [`Lease`]).
    pub fn holds_lease(&self) -> bool {
        (self.lease)()
    }

    /// Applies, journals and dispatches one command, and returns once it is durable;
    /// `Err` means refused (nothing changed) or no longer leading. A registration also
    /// counts its worker or client app as heard from now.
    pub async fn propose(&self, cmd: Command) -> Result<Applied, ProposeError> {
        async {
            if !self.holds_lease() {
                return Err(ProposeError::NotLeading {
                    maybe_applied: false,
                });
            }
            let started = std::time::Instant::now();
            let (applied, lsn) = {
                let mut inner = self.lock().await;
                let applied = self.commit(&mut inner, &cmd)?;
                (applied, inner.lsn)
            };
            self.make_durable(lsn).await?;
            crate::metrics::metrics()
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
            Ok(applied)
        }
        .instrument(self.span.clone())
        .await
    }

    /// Waits until everything up to `lsn` is on disk (one fsync serves every waiter),
    /// which also releases the actions queued up to it.
    async fn make_durable(&self, lsn: u64) -> Result<(), ProposeError> {
        if *self.durable.borrow() >= lsn {
            return Ok(());
        }
        match self.journal.sync(lsn).await {
            Ok(()) => {}
            Err(JournalError::Deposed) => {
                return Err(ProposeError::NotLeading {
                    maybe_applied: true,
                })
            }
            Err(e) => persistence_failed("syncing the journal", &e),
        }
        self.durable.send_if_modified(|d| {
            let newer = lsn > *d;
            *d = (*d).max(lsn);
            newer
        });
        Ok(())
    }

    /// The one place a command takes effect. Called with the state locked, so the
    /// journal's order and each worker's action queue follow the commit order.
    fn commit(&self, inner: &mut Inner, cmd: &Command) -> Result<Applied, Rejection> {
        let _in_term = self.span.enter();
        let applied = apply(&mut inner.state, cmd)?;
        if applied.outcome != Outcome::Unchanged {
            self.journal_append(inner, cmd);
        }
        tracing::debug!(command = cmd.kind(), outcome = ?applied.outcome, actions = applied.actions.len(), "applied");
        record_heard(inner, cmd, &applied.outcome);
        if let Command::WorkerLost { worker, .. } | Command::ForgetWorker { worker } = cmd {
            self.dispatcher.remove(worker);
        }
        self.queue_actions(inner, &applied);
        if inner.state.role == MasterRole::Recovering {
            let timeout = self.config.recovery_timeout.as_millis() as u64;
            let began = inner.heard.leader_since;
            if let Some(done) = recovery::next_step(&inner.state, now_both(), began, timeout) {
                tracing::info!(awaiting = ?recovery::awaiting(&inner.state), "completing recovery");
                let _ = self.commit(inner, &done);
                let alive = (inner.state.workers.values())
                    .filter(|w| w.state == WorkerState::Alive)
                    .count();
                tracing::info!(role = %inner.state.role, workers_alive = alive, "recovery complete");
            }
        }
        let recovering = inner.state.role == MasterRole::Recovering;
        self.recovering
            .store(recovering, std::sync::atomic::Ordering::Relaxed);
        if inner.state.role == MasterRole::Alive {
            // Nothing is scheduled before the master is ALIVE; completing recovery kicks.
            self.kick.notify_one();
        }
        Ok(applied)
    }

    /// Appends a command that changed the state, and writes a snapshot when one is due.
    fn journal_append(&self, inner: &mut Inner, cmd: &Command) {
        match self.journal.append(cmd) {
            Ok(lsn) => inner.lsn = lsn,
            Err(e) => persistence_failed("appending to the journal", &e),
        }
        if let Err(e) = self.journal.maybe_snapshot(&inner.state, inner.lsn) {
            // The journal still holds everything; a failed snapshot only costs time.
            tracing::warn!(error = %e, "snapshot failed; the journal keeps growing");
        }
    }

    /// Queues each action for its worker, released once `inner.lsn` is durable.
    fn queue_actions(&self, inner: &Inner, applied: &Applied) {
        for action in &applied.actions {
            match inner.state.workers.get(action.worker()) {
                Some(w) => {
                    let addr = w.identity.addr();
                    let id = &w.identity.id;
                    self.dispatcher.send(id, &addr, action, inner.lsn)
                }
                None => {
                    tracing::warn!(worker = %action.worker(), "no address for an action's worker; dropped")
                }
            }
        }
    }

    /// One scheduling pass: place what fits, commit the placements, send the launches.
    pub async fn schedule_once(&self) -> usize {
        let (placed, lsn) = {
            let mut inner = self.lock().await;
            if inner.state.role != MasterRole::Alive || !self.holds_lease() {
                return 0;
            }
            inner.seed = inner.seed.wrapping_add(1);
            let placements = schedule_up_to(
                &inner.state,
                &self.config.policy,
                inner.seed,
                PLACEMENTS_PER_PASS,
            );
            if placements.is_empty() {
                return 0;
            }
            let n = placements.len();
            let cmd = Command::Place {
                placements,
                at: now(),
            };
            if let Err(e) = self.commit(&mut inner, &cmd) {
                let _in_term = self.span.enter();
                tracing::warn!(error = %e, "the scheduler's placements were refused");
                return 0;
            }
            (n, inner.lsn)
        };
        match self.make_durable(lsn).await {
            Ok(()) => placed,
            Err(_) => 0,
        }
    }

    /// A worker's heartbeat: records that it was heard from now. False if the master
    /// does not count it as live (it should register again).
    pub async fn worker_heartbeat(&self, id: &WorkerId) -> bool {
        let mut inner = self.lock().await;
        let live = inner.state.workers.get(id).is_some_and(is_live);
        if live {
            inner.heard.workers.insert(id.clone(), mono_now());
        }
        live
    }

    /// A client-mode submitter's check-in: records it as heard from now, and if this
    /// master was waiting for it after taking over (UNKNOWN), commits its return. False
    /// if the app is not active.
    pub async fn app_heartbeat(&self, app: &AppId) -> Result<bool, ProposeError> {
        let state = {
            let mut inner = self.lock().await;
            let state = inner.state.apps.get(app).map(|a| a.state);
            if state.is_some() {
                inner.heard.apps.insert(app.clone(), mono_now());
            }
            state
        };
        if state == Some(AppState::Unknown) {
            self.propose(Command::AppReconnected { app: app.clone() })
                .await?;
            let _in_term = self.span.enter();
            tracing::info!(%app, "client app checked in after the master changed");
        }
        Ok(state.is_some())
    }

    /// Commands the liveness rules, the recovery timeout and drain deadlines call for now.
    pub async fn due_commands(&self) -> Vec<Command> {
        let inner = self.lock().await;
        let at = now_both();
        let cfg = hearth_core::LivenessConfig {
            worker_timeout_ms: self.config.worker_timeout.as_millis() as u64,
            dead_worker_persistence: 15,
            app_timeout_ms: self.config.app_timeout.as_millis() as u64,
        };
        let mut due = hearth_core::liveness_commands(&inner.state, &inner.heard, at, &cfg);
        let timeout = self.config.recovery_timeout.as_millis() as u64;
        let began = inner.heard.leader_since;
        due.extend(recovery::next_step(&inner.state, at, began, timeout));
        due.extend(hearth_core::due_drains(&inner.state, at.wall));
        due
    }

    /// Everything `GetState` and `/json` show.
    /// What this master shows, once everything in it is durable: a read never shows a
    /// write that a crash could still lose (FILESYSTEM: fsynced; Raft: committed on a
    /// majority). `None` if this master was deposed first.
    pub async fn status(&self) -> Option<StatusView> {
        let (mut view, lsn) = {
            let inner = self.lock().await;
            (status_of(&inner.state, Some(&inner.heard)), inner.lsn)
        };
        self.make_durable(lsn).await.ok()?;
        view.leader = Some(self.advertised.clone());
        view.term = self.term;
        view.masters = vec![Member {
            id: self.config.id,
            address: self.advertised.clone(),
            role: MemberRole::Leader,
        }];
        Some(view)
    }

    /// Who submitted the app a command is about (its `HEARTH_USER`): `None` for a
    /// command about no app, or an app or driver this master does not know (the
    /// command's own checks answer those); `Some(None)` for an app no one named.
    pub async fn owner_of(&self, cmd: &Command) -> Option<Option<String>> {
        let inner = self.lock().await;
        hearth_core::submitter_of(&inner.state, cmd).map(|u| u.map(str::to_owned))
    }

    /// Whether the state was RECOVERING after the last command.
    pub fn recovering(&self) -> bool {
        self.recovering.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The master's role (RECOVERING, ALIVE, ...).
    pub async fn role(&self) -> MasterRole {
        self.lock().await.state.role
    }
}

/// Whether the master counts a worker as live (heartbeats keep it so).
fn is_live(w: &hearth_core::WorkerInfo) -> bool {
    w.state.is_serving()
}

/// Liveness bookkeeping of a committed command: a registered worker, and a registered
/// or reconnected client-mode app (one without a cluster driver), are heard from now.
fn record_heard(inner: &mut Inner, cmd: &Command, outcome: &Outcome) {
    match (cmd, outcome) {
        (Command::RegisterWorker { reg, .. }, _) => {
            let id = &reg.identity.id;
            if inner.state.workers.get(id).is_some_and(is_live) {
                inner.heard.workers.insert(id.clone(), mono_now());
            }
        }
        (Command::AdoptWorkers { .. }, Outcome::WorkersAdopted { workers }) => {
            let now = mono_now();
            for id in workers {
                inner.heard.workers.insert(id.clone(), now);
            }
        }
        (_, Outcome::AppRegistered { app, driver: None }) => {
            inner.heard.apps.insert(app.clone(), mono_now());
        }
        _ => {}
    }
}

/// The status of `state` as `GetState` and `/json` show it, with the answering master's
/// status set to the state's role; `heard` gives workers' last heartbeats (a leader's),
/// shown on the wall clock. The caller fills in `leader`, `term` and `masters`.
pub fn status_of(state: &ClusterState, heard: Option<&LastHeard>) -> StatusView {
    let s = state;
    let at = now_both();
    StatusView {
        status: s.role,
        leader: None,
        term: 0,
        masters: Vec::new(),
        workers: s
            .workers
            .values()
            .map(|w| WorkerStatus {
                info: w.clone(),
                last_heartbeat: heard
                    .and_then(|h| h.workers.get(&w.identity.id).copied())
                    .map(|mono| wall_of(mono, at)),
            })
            .collect(),
        active_apps: s.apps.values().map(shown_app).collect(),
        completed_apps: s.completed_apps.iter().map(shown_app).collect(),
        active_drivers: s.drivers.values().map(shown_driver).collect(),
        completed_drivers: s.completed_drivers.iter().map(shown_driver).collect(),
        now: at.wall,
        totals: None,
    }
}

/// The wall-clock time of `mono`, a reading of [`mono_now`], as seen from `at`: as long
/// before `at.wall` as `mono` is before `at.mono`.
fn wall_of(mono: Millis, at: Now) -> Millis {
    Millis(at.wall.0.saturating_sub(at.mono.since(mono)))
}

/// What a status shows of a command's environment: the names, never the values (they
/// may hold credentials; only the workers that run the command get them).
fn hide_env(spec: &mut hearth_core::ProcessSpec) {
    for (k, v) in spec.env.iter_mut() {
        // Who submitted the app: a name, shown as the app's `user`.
        if k != hearth_core::USER_ENV {
            *v = HIDDEN.to_owned();
        }
    }
}

/// The value every env variable shows in a status (`GetState`, `/json`, the UI).
pub const HIDDEN: &str = "<hidden>";

fn shown_app(a: &hearth_core::AppInfo) -> hearth_core::AppInfo {
    let mut a = a.clone();
    hide_env(&mut a.desc.command);
    a
}

fn shown_driver(d: &hearth_core::DriverInfo) -> hearth_core::DriverInfo {
    let mut d = d.clone();
    hide_env(&mut d.desc.command);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_heartbeat_is_shown_on_the_wall_clock() {
        let at = Now {
            wall: Millis(1_795_457_728_000),
            mono: Millis(10_000),
        };
        assert_eq!(wall_of(Millis(4_000), at), Millis(1_795_457_722_000));
        assert_eq!(wall_of(Millis(10_000), at), at.wall);
        let early = Now {
            wall: Millis(3),
            mono: Millis(10_000),
        };
        assert_eq!(wall_of(Millis(1), early), Millis(0), "saturates");
    }

    #[test]
    fn the_monotonic_clock_is_never_0_and_never_goes_back() {
        let a = mono_now();
        let b = mono_now();
        assert!(a.0 >= 1);
        assert!(b >= a);
    }
}
