//! The worker's link to the masters: registration, heartbeats, re-registration with a
//! new leader, and at-least-once delivery of state reports.
//!
//! Two loops share one [`MasterClient`] (which follows `NotLeader` hints itself):
//! - *sessions*: register (retrying forever with capped exponential backoff, 100 ms
//!   doubling to 5 s, every failure logged at WARN), then heartbeat every interval until
//!   a heartbeat fails, the answer says `reregister`, or a re-registration is asked for
//!   (a command from a newer term, an undeliverable report); then register again. Each
//!   registration carries what the worker runs at that moment, read from the [`Table`].
//! - *deliver*: takes state reports in order from one queue and sends each until a
//!   master answers; a refusal counts as delivered (and is logged). While no session is
//!   up, reports wait; a report that cannot be delivered asks for a re-registration and
//!   is sent again after it. One consumer, so reports keep their order.

use crate::backoff::Backoff;
use crate::fence::TermStore;
use crate::table::Table;
use hearth_client::{ClientError, Idempotency, MasterClient};
use hearth_core::{
    DriverId, DriverState, ExecutorId, ExecutorState, WorkerId, WorkerIdentity, WorkerRegistration,
};
use hearth_proto::auth::Credential;
use hearth_proto::pb;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tonic::Code;
use tracing::{debug, info, warn, Instrument};

/// A state change to tell the leader about.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Report {
    Executor(pb::ExecutorStateChangedRequest),
    Driver(pb::DriverStateChangedRequest),
}

impl Report {
    pub fn executor(
        worker: &WorkerId,
        app: &hearth_core::AppId,
        executor: ExecutorId,
        state: ExecutorState,
    ) -> Self {
        Report::Executor(pb::ExecutorStateChangedRequest {
            worker_id: worker.0.clone(),
            app_id: app.0.clone(),
            executor_id: executor,
            state: state.as_str().to_owned(),
            exit_code: None,
            message: String::new(),
        })
    }

    pub fn driver(worker: &WorkerId, driver: &DriverId, state: DriverState) -> Self {
        Report::Driver(pb::DriverStateChangedRequest {
            worker_id: worker.0.clone(),
            driver_id: driver.0.clone(),
            state: state.as_str().to_owned(),
            driver_url: None,
            exit_code: None,
            message: String::new(),
        })
    }

    pub fn with_driver_url(mut self, url: Option<String>) -> Self {
        if let Report::Driver(r) = &mut self {
            r.driver_url = url;
        }
        self
    }

    pub fn with_exit(mut self, code: Option<i32>, message: String) -> Self {
        match &mut self {
            Report::Executor(r) => (r.exit_code, r.message) = (code, message),
            Report::Driver(r) => (r.exit_code, r.message) = (code, message),
        }
        self
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Executor(r) => write!(f, "executor {}/{} {}", r.app_id, r.executor_id, r.state),
            Report::Driver(r) => write!(f, "driver {} {}", r.driver_id, r.state),
        }
    }
}

/// How long before asking again a master that does not know `WatchLeader`.
const WATCH_UNKNOWN_PAUSE: Duration = Duration::from_secs(600);

pub(crate) struct Link {
    masters: Vec<String>,
    /// Who this worker is, as it registers.
    me: WorkerIdentity,
    table: Arc<Table>,
    /// The operator's heartbeat interval, if one was set (it overrides the leader's).
    heartbeat_fixed: Option<Duration>,
    /// The interval the leader asked for at the last registration, in milliseconds.
    heartbeat_advised_ms: AtomicU64,
    /// Time allowed for one call on one master.
    attempt_timeout: Duration,
    client: Mutex<Arc<MasterClient>>,
    /// The cluster secret, sent to the masters.
    credential: Credential,
    /// The term fence, raised to the leader's term when it takes this worker's report.
    fence: Arc<TermStore>,
    /// `Some(generation)` while registered; a new generation per registration.
    session: watch::Sender<Option<u64>>,
    /// Bumped to ask the session loop to register again.
    reregister: watch::Sender<u64>,
    /// The highest leader term heard of (registration answers and commands).
    known_term: AtomicU64,
    /// The master process this worker last registered with (0: it did not say).
    registered_incarnation: AtomicU64,
    /// The term of a new leader that registered this worker from its watch's offer
    /// ([`Link::adopted_by`]), until the session loop takes it instead of registering.
    adopted: hearth_client::Adopted,
    /// When a leader last answered, and the masters' worker timeout.
    lease: Arc<crate::lease::MasterLease>,
}

impl Link {
    pub fn new(
        masters: Vec<String>,
        me: WorkerIdentity,
        table: Arc<Table>,
        heartbeat_fixed: Option<Duration>,
        credential: Credential,
        fence: Arc<TermStore>,
        lease: Arc<crate::lease::MasterLease>,
    ) -> Arc<Self> {
        let first = heartbeat_fixed.unwrap_or(crate::WorkerConfig::DEFAULT_HEARTBEAT_INTERVAL);
        let attempt_timeout = first.clamp(Duration::from_secs(1), Duration::from_secs(5));
        let link = Link {
            client: Mutex::new(Arc::new(MasterClient::new(Vec::new()))),
            credential,
            fence,
            masters,
            me,
            table,
            heartbeat_fixed,
            heartbeat_advised_ms: AtomicU64::new(first.as_millis() as u64),
            attempt_timeout,
            session: watch::Sender::new(None),
            reregister: watch::Sender::new(0),
            known_term: AtomicU64::new(0),
            registered_incarnation: AtomicU64::new(0),
            adopted: Default::default(),
            lease,
        };
        *link.client.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(link.new_client(0));
        Arc::new(link)
    }

    /// Runs the loops until dropped (the worker's shutdown drops it).
    pub async fn run(self: Arc<Self>, reports: mpsc::UnboundedReceiver<Report>) {
        // Aborted when this future is dropped.
        let mut watches = tokio::task::JoinSet::new();
        for addr in self.masters.clone() {
            watches.spawn(Arc::clone(&self).watch(addr).in_current_span());
        }
        tokio::join!(Arc::clone(&self).sessions(), self.deliver(reports));
    }

    /// Keeps a `WatchLeader` call waiting on the master at `addr`, so that when it
    /// becomes leader this worker hears it at once, over a connection it already holds
    /// (the leader announces itself only to workers that do not watch it). The call
    /// offers this worker's registration: a new leader that finds it matches what the
    /// state places here registers this worker as it takes over and says so in the
    /// answer ([`Link::adopted_by`]); otherwise this worker registers with it. When
    /// what runs here changes, the call is renewed with the new registration once it
    /// settles, except on the master it registered with
    /// ([`MasterClient::watch_or_reoffer`]). A master that does not know the call (an
    /// older build) is asked again after [`WATCH_UNKNOWN_PAUSE`]; one that cannot be
    /// reached, with backoff.
    async fn watch(self: Arc<Self>, addr: String) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
        let mut session = self.session.subscribe();
        let mut table = self.table.changes();
        loop {
            let (known, registered) = (
                self.known_term.load(Ordering::SeqCst),
                self.registered_incarnation.load(Ordering::SeqCst),
            );
            table.borrow_and_update();
            let offer = Some(self.registration());
            let request = MasterClient::watch_request(&self.me.id.0, known, registered, offer);
            let client = self.client();
            let Some(answer) = client.watch_or_reoffer(&addr, request, &mut table).await else {
                continue; // what runs here changed: offer the registration as it is now
            };
            match answer {
                Ok(a)
                    if a.leads
                        && hearth_core::is_new_leader(a.term, a.incarnation, known, registered) =>
                {
                    backoff.reset();
                    let before = *session.borrow_and_update();
                    let news = if a.registered {
                        self.adopted_by(&a, &addr).await
                    } else {
                        self.new_leader(a.term, a.incarnation, a.master_id, &addr, "watch")
                    };
                    if !news {
                        continue; // registered with it meanwhile
                    }
                    // Until registered again (not in a loop should that fail), and a
                    // little longer: it leads now, so this watch is for its next term.
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        session.wait_for(|s| s.is_some() && *s != before),
                    )
                    .await;
                    tokio::time::sleep(MasterClient::rewatch_pause()).await;
                }
                Ok(_) => backoff.reset(),
                Err(s) if s.code() == Code::Unimplemented => {
                    debug!(master = %addr, "this master does not answer leader watches (an older build)");
                    tokio::time::sleep(WATCH_UNKNOWN_PAUSE).await;
                }
                Err(s) => {
                    let retry_in = backoff.next_delay();
                    debug!(master = %addr, error = %s.message(), ?retry_in, "leader watch failed; watching again");
                    tokio::time::sleep(retry_in).await;
                }
            }
        }
    }

    /// The new leader `a` at `addr` registered this worker from the registration its
    /// watch offered: record it as a registration answer would be recorded (the term
    /// fence first), and start a session with it without registering. False if that
    /// leader is not new after all; a fence that cannot be recorded falls back to
    /// registering.
    async fn adopted_by(&self, a: &pb::WhoLeadsResponse, addr: &str) -> bool {
        let known = self.known_term.load(Ordering::SeqCst);
        let registered = self.registered_incarnation.load(Ordering::SeqCst);
        if !hearth_core::is_new_leader(a.term, a.incarnation, known, registered) {
            return false;
        }
        if let Err(e) = self.fence.admit(a.term).await {
            warn!(error = %e, term = a.term, "cannot record the new leader's term; registering with it");
            return self.new_leader(a.term, a.incarnation, a.master_id, addr, "watch");
        }
        self.lease.heard();
        self.known_term.fetch_max(a.term, Ordering::SeqCst);
        self.registered_incarnation
            .store(a.incarnation, Ordering::SeqCst);
        self.advise_heartbeat(a.heartbeat_interval_ms);
        self.client().prefer(addr.to_owned());
        info!(
            term = a.term,
            master_id = a.master_id,
            leader = %addr,
            "a new leader registered this worker from the registration its watch offered"
        );
        self.adopted.set(a.term);
        self.request_reregister();
        true
    }

    /// A command of `term` was obeyed: if it is newer than any leader this worker
    /// registered with, the leader changed, so register with it now rather than at the
    /// next failed heartbeat.
    pub fn saw_term(&self, term: u64) {
        let before = self.known_term.fetch_max(term, Ordering::SeqCst);
        if term > before {
            info!(
                term,
                before, "a command came from a newer leader term; registering again"
            );
            self.request_reregister();
        }
    }

    /// Whether `addr` is one of the masters this worker was given.
    pub fn is_configured(&self, addr: &str) -> bool {
        self.masters.iter().any(|m| m == addr)
    }

    /// A leader made itself known at `leader` (`via`: its `MasterChanged` announcement, or
    /// the answer to this worker's watch): register with it now if its term is newer
    /// than any this worker knows, or if it is the same term from another master
    /// process than the one this worker registered with (a leader killed and restarted
    /// within its term, which would otherwise wait for the next failed heartbeat).
    /// An empty `leader`: register through the list of masters. True if it is a new
    /// leader.
    pub fn new_leader(
        &self,
        term: u64,
        incarnation: u64,
        master_id: u64,
        leader: &str,
        via: &'static str,
    ) -> bool {
        let known = self.known_term.load(Ordering::SeqCst);
        let registered = self.registered_incarnation.load(Ordering::SeqCst);
        if !hearth_core::is_new_leader(term, incarnation, known, registered) {
            return false;
        }
        let restarted = term == known;
        info!(term, master_id, %leader, restarted, via, "a new leader made itself known; registering with it");
        if !leader.is_empty() {
            self.client().prefer(leader.to_owned());
        }
        self.known_term.fetch_max(term, Ordering::SeqCst);
        self.request_reregister();
        true
    }

    /// How long to wait between heartbeats now.
    fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_fixed.unwrap_or_else(|| {
            Duration::from_millis(self.heartbeat_advised_ms.load(Ordering::SeqCst))
        })
    }

    /// The leader asked for heartbeats every `advised_ms` (0: it did not say): follow
    /// it, unless the operator set an interval, which is kept (with a warning when it
    /// is slower than the leader asks: it may then count this worker lost).
    fn advise_heartbeat(&self, advised_ms: u64) {
        if advised_ms == 0 {
            return;
        }
        let advised = Duration::from_millis(advised_ms);
        // The leader's worker timeout, whatever interval this worker heartbeats at.
        self.lease.advised(advised);
        match self.heartbeat_fixed {
            Some(fixed) if fixed > advised => warn!(
                ?fixed,
                ?advised,
                "--heartbeat-interval is slower than the leading master asks (a quarter of \
                 its worker timeout): it may declare this worker lost between heartbeats; \
                 remove the flag to follow the master"
            ),
            Some(_) => {}
            None => {
                let before = self.heartbeat_advised_ms.swap(advised_ms, Ordering::SeqCst);
                if before != advised_ms {
                    info!(?advised, "heartbeating as often as the leading master asks");
                }
            }
        }
    }

    fn request_reregister(&self) {
        self.reregister.send_modify(|n| *n += 1);
    }

    fn client(&self) -> Arc<MasterClient> {
        Arc::clone(&self.client.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A client whose list starts at the `rotation`-th master, so that successive
    /// attempts do not all begin with the same (perhaps hung) master.
    fn new_client(&self, rotation: usize) -> MasterClient {
        let mut masters = self.masters.clone();
        if !masters.is_empty() {
            let n = rotation % masters.len();
            masters.rotate_left(n);
        }
        let tries = masters.len() as u32 + 1;
        let mut client = MasterClient::new(masters).with_credential(self.credential.clone());
        client.attempt_timeout = self.attempt_timeout;
        client.deadline = self.attempt_timeout * tries + Duration::from_secs(1);
        client
    }

    async fn sessions(self: Arc<Self>) {
        let mut asks = self.reregister.subscribe();
        let mut generation = 0;
        loop {
            asks.borrow_and_update();
            let term = self.register().await;
            // Asked to register again while registering: done, unless a newer leader
            // made itself known meanwhile (its term is above the one just registered with).
            if self.known_term.load(Ordering::SeqCst) <= term {
                asks.borrow_and_update();
            }
            generation += 1;
            self.session.send_replace(Some(generation));
            self.heartbeat(&mut asks).await;
            self.session.send_replace(None);
        }
    }

    fn registration(&self) -> pb::RegisterWorkerRequest {
        let (executors, drivers) = self.table.snapshot();
        let reg = WorkerRegistration {
            identity: self.me.clone(),
            executors,
            drivers,
        };
        pb::RegisterWorkerRequest::from(&reg)
    }

    /// Registers, retrying until a leader answers yes; the leader's term. Never gives up.
    async fn register(&self) -> u64 {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        // A new leader making itself known (watch, announcement) ends a backoff pause.
        let mut asks = self.reregister.subscribe();
        asks.borrow_and_update();
        let mut told = false;
        for attempt in 1usize.. {
            // A new leader registered this worker from its watch's offer meanwhile.
            if let Some(term) = self.adopted.take() {
                return term;
            }
            // The first attempt, and one after a new leader made itself known, keep the
            // client that knows (prefers) the leader.
            let client = match attempt {
                1 => self.client(),
                _ if told => self.client(),
                n => Arc::new(self.new_client(n - 1)),
            };
            told = false;
            let request = self.registration();
            let (executors, drivers) = (request.executors.len(), request.driver_ids.len());
            let answer = client
                .call("RegisterWorker", Idempotency::Idempotent, |mut c| {
                    let r = request.clone();
                    async move { c.register_worker(r).await }
                })
                .await;
            match answer {
                Ok(a) => {
                    // The leader that took the report commands at `a.term`: from now on a
                    // command of an older term (a deposed leader's, sent late) is refused.
                    if a.term > 0 && !crate::fence::absurd_term(a.term, 0) {
                        if let Err(e) = self.fence.admit(a.term).await {
                            warn!(error = %e, term = a.term, "cannot record the leader's term; registering again");
                            tokio::time::sleep(backoff.next_delay()).await;
                            continue;
                        }
                    }
                    self.lease.heard();
                    self.known_term.fetch_max(a.term, Ordering::SeqCst);
                    self.registered_incarnation
                        .store(a.incarnation, Ordering::SeqCst);
                    self.advise_heartbeat(a.heartbeat_interval_ms);
                    info!(
                        attempt, term = a.term, master_id = a.master_id, duplicate = a.duplicate,
                        leader = ?client.preferred(), executors, drivers,
                        "registered with the leading master"
                    );
                    *self.client.lock().unwrap_or_else(|p| p.into_inner()) = client;
                    return a.term;
                }
                Err(e) => {
                    let retry_in = backoff.next_delay();
                    warn!(attempt, error = %e, ?retry_in, "registration failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(retry_in) => {}
                        _ = asks.changed() => told = true,
                    }
                }
            }
        }
        unreachable!("registration is retried forever")
    }

    /// Heartbeats until the session is over.
    async fn heartbeat(&self, asks: &mut watch::Receiver<u64>) {
        let client = self.client();
        let request = pb::HeartbeatRequest {
            worker_id: self.me.id.0.clone(),
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.heartbeat_interval()) => {}
                _ = asks.changed() => return,
            }
            let call = client.call("Heartbeat", Idempotency::Idempotent, |mut c| {
                let r = request.clone();
                async move { c.heartbeat(r).await }
            });
            // A new leader's announcement ends a heartbeat stuck on a hung master.
            let answer = tokio::select! {
                a = call => a,
                _ = asks.changed() => return,
            };
            // Answered by a leader that still counts this worker ALIVE.
            if matches!(&answer, Ok(a) if !a.reregister) {
                self.lease.heard();
            }
            match answer {
                Ok(a) if a.reregister => {
                    info!("the master asked this worker to register again");
                    return;
                }
                Ok(_) => debug!("heartbeat answered"),
                Err(e) => {
                    warn!(error = %e, "heartbeat failed; registering again");
                    return;
                }
            }
        }
    }

    /// Delivers reports in order, each at least once.
    async fn deliver(self: Arc<Self>, mut reports: mpsc::UnboundedReceiver<Report>) {
        let mut session = self.session.subscribe();
        while let Some(report) = reports.recv().await {
            for attempt in 1u64.. {
                let Ok(generation) = session.wait_for(Option::is_some).await.map(|g| *g) else {
                    return;
                };
                match self.send(&report).await {
                    Ok(()) => {
                        debug!(%report, attempt, "state report delivered");
                        break;
                    }
                    Err(ClientError::Refused(status)) => {
                        info!(%report, error = %status.message(), "the master refused a state report; not sending it again");
                        if status.code() == Code::NotFound {
                            self.request_reregister();
                        }
                        break;
                    }
                    Err(e) => {
                        warn!(%report, attempt, error = %e, "state report not delivered; sending it again after registering");
                        self.request_reregister();
                        let _ = session.wait_for(|s| *s != generation).await;
                    }
                }
            }
        }
    }

    async fn send(&self, report: &Report) -> Result<(), ClientError> {
        let client = self.client();
        let idem = Idempotency::Idempotent;
        match report {
            Report::Executor(r) => client
                .call("ExecutorStateChanged", idem, |mut c| {
                    let r = r.clone();
                    async move { c.executor_state_changed(r).await }
                })
                .await
                .map(drop),
            Report::Driver(r) => client
                .call("DriverStateChanged", idem, |mut c| {
                    let r = r.clone();
                    async move { c.driver_state_changed(r).await }
                })
                .await
                .map(drop),
        }
    }
}
