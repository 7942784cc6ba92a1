//! Simulated workers: N workers in this process speaking the real protocol to real
//! masters, without starting any OS process.
//!
//! Each one behaves as `hearth-worker`'s link and control do (`worker/src/link.rs`,
//! `control.rs`): it registers with what it runs (retrying with backoff 100 ms doubling
//! to 5 s), heartbeats as often as the leader asks, registers again when a heartbeat
//! fails or is answered `reregister`, when a command comes from a newer term, or when a
//! leader of its master list announces itself (`MasterChanged`: a newer term, or the
//! same term from another master process); it obeys `WorkerControl` commands behind a
//! term fence (in memory, not persisted) and reports each launch RUNNING and each kill
//! KILLED, in order, at least once.
//!
//! Like a worker it keeps a `WatchLeader` call waiting on every master (`link.rs`
//! `watch`; off with `--no-watch`), offering its registration (renewed when what it runs
//! changes), and registers with a master that answers it leads in a newer term, unless
//! that master answers it registered it from the offer.
//!
//! Sharing: every simulated worker is served by ONE `WorkerControl` gRPC server
//! ([`crate::control`]), over a listening socket per 250 workers bound to `0.0.0.0`
//! (connections from outside loopback are dropped at accept). Worker `i` registers as host `127.100.a.b` (all of 127/8 is loopback on Linux), so
//! the leader dials a distinct address per worker (it replaces a worker registered at
//! the same address, so they must differ), and the server tells the worker addressed by
//! the connection's local address: `MasterChanged` carries no worker id. Workers share
//! `--clients` [`MasterClient`]s (one HTTP/2 connection to each master each) instead of
//! one each, to stay within the file descriptor limit.

use crate::control::Control;
use anyhow::{bail, Result};
use hearth_client::{ClientError, Idempotency, MasterClient};
use hearth_proto::pb;
use hearth_proto::pb::worker_control_server::WorkerControlServer;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{StreamExt, StreamMap};
use tonic::{Code, Response};

/// At most this many workers: one loopback address each, `127.100.1.1` upwards.
pub const MAX_WORKERS: usize = 250 * 250;
/// Workers sharing one listening socket.
const PER_LISTENER: usize = 250;

/// Worker `i`'s loopback address.
fn host_of(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 100, 1 + (i / 250) as u8, 1 + (i % 250) as u8)
}

/// The worker a loopback address belongs to.
pub(crate) fn index_of(ip: IpAddr) -> Option<usize> {
    let IpAddr::V4(ip) = ip else { return None };
    let [a, b, c, d] = ip.octets();
    (a == 127 && b == 100 && c >= 1 && (1..=250).contains(&d))
        .then(|| usize::from(c - 1) * 250 + usize::from(d - 1))
}

/// What the fleet has seen, for the benchmark to wait on.
#[derive(Default)]
pub struct Counters {
    /// RUNNING reports of executors the leader acknowledged.
    pub executors_running: AtomicU64,
    /// RUNNING reports of drivers the leader acknowledged.
    pub drivers_running: AtomicU64,
    /// Launches obeyed (not duplicates).
    pub launches: AtomicU64,
    /// Kills obeyed (not duplicates).
    pub kills: AtomicU64,
    /// Commands refused (stale term, another worker's id).
    pub refused: AtomicU64,
    /// Registrations a leader answered.
    pub registrations: AtomicU64,
    /// `MasterChanged` announcements received.
    pub announced: AtomicU64,
    /// Watches a new leader answered.
    pub watch_answers: AtomicU64,
    /// Watches a new leader answered having registered the worker from its offer.
    pub adoptions: AtomicU64,
    /// Watches that failed (no answer, or an error).
    pub watch_failures: AtomicU64,
}

/// A state change to tell the leader about.
#[derive(Clone, Debug)]
enum Report {
    Executor(pb::ExecutorStateChangedRequest),
    Driver(pb::DriverStateChangedRequest),
}

/// What a worker runs: `(app, executor)` and driver ids.
#[derive(Default)]
struct Table {
    executors: BTreeSet<(String, u32)>,
    drivers: BTreeSet<String>,
}

/// One simulated worker.
pub struct Sim {
    pub id: String,
    host: Ipv4Addr,
    port: u16,
    cores: u32,
    memory_mb: u64,
    /// The masters it was given (`MasterChanged` is believed only from one of them).
    masters: Arc<Vec<String>>,
    /// Shared with other workers (see the module header).
    client: Arc<MasterClient>,
    /// The highest term obeyed.
    fence: Mutex<u64>,
    /// The highest leader term heard of.
    known_term: AtomicU64,
    /// The master process last registered with.
    registered_incarnation: AtomicU64,
    /// The heartbeat interval the leader asked for, in ms.
    heartbeat_ms: AtomicU64,
    table: Mutex<Table>,
    /// Bumped whenever `table` changes (the watches offer the registration again).
    table_changed: watch::Sender<u64>,
    /// The term of a leader that registered this worker from its watch's offer, until
    /// the session loop takes it instead of registering.
    adopted: hearth_client::Adopted,
    /// Bumped to ask the session loop to register again.
    reregister: watch::Sender<u64>,
    /// `Some(generation)` while registered.
    session: watch::Sender<Option<u64>>,
    reports: mpsc::UnboundedSender<Report>,
    /// The last registration a leader answered: when, its term and its incarnation.
    pub registered: Mutex<Option<(Instant, u64, u64)>>,
    /// When the last `MasterChanged` announcement arrived.
    pub(crate) announced_at: Mutex<Option<Instant>>,
    pub(crate) counters: Arc<Counters>,
}

fn ack(highest_term: u64, duplicate: bool) -> Response<pb::WorkerAck> {
    Response::new(pb::WorkerAck {
        refused: None,
        highest_term,
        duplicate,
    })
}

/// A checked command, ready to carry out.
pub(crate) enum Step {
    LaunchExecutor(String, u32),
    KillExecutor(String, u32),
    LaunchDriver(String),
    KillDriver(String),
}

impl Sim {
    fn lock_table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn highest(&self) -> u64 {
        *self.fence.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn request_reregister(&self) {
        self.reregister.send_modify(|n| *n += 1);
    }

    /// A command of `term` was obeyed: a newer leader than any registered with.
    fn saw_term(&self, term: u64) {
        if term > self.known_term.fetch_max(term, Ordering::SeqCst) {
            self.request_reregister();
        }
    }

    /// The fence, then the step, as `control.rs` obeys: addressed to this worker, a term
    /// at least the highest obeyed.
    pub(crate) fn obey(&self, term: u64, addressed: &str, step: Step) -> Response<pb::WorkerAck> {
        let refuse = |why: String, highest: u64| {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            Response::new(pb::WorkerAck {
                refused: Some(why),
                highest_term: highest,
                duplicate: false,
            })
        };
        if addressed != self.id {
            let why = format!(
                "addressed to worker {addressed}, but this is {} (the worker restarted?)",
                self.id
            );
            return refuse(why, self.highest());
        }
        let mut fence = self.fence.lock().unwrap_or_else(|p| p.into_inner());
        if term < *fence {
            let why = format!(
                "stale term {term} < {}: this worker has obeyed a newer leader",
                *fence
            );
            return refuse(why, *fence);
        }
        *fence = term;
        self.saw_term(term);
        let duplicate = !self.carry_out(step);
        ack(*fence, duplicate)
    }

    /// Does `step` and queues its report; false for a duplicate.
    fn carry_out(&self, step: Step) -> bool {
        let launch = matches!(step, Step::LaunchExecutor(..) | Step::LaunchDriver(_));
        let mut t = self.lock_table();
        let (done, report) = match step {
            Step::LaunchExecutor(app, e) => (
                t.executors.insert((app.clone(), e)),
                self.executor_report(app, e, "RUNNING"),
            ),
            Step::KillExecutor(app, e) => (
                t.executors.remove(&(app.clone(), e)),
                self.executor_report(app, e, "KILLED"),
            ),
            Step::LaunchDriver(d) => (t.drivers.insert(d.clone()), self.driver_report(d, true)),
            Step::KillDriver(d) => (t.drivers.remove(&d), self.driver_report(d, false)),
        };
        drop(t);
        if done {
            self.table_changed.send_modify(|n| *n += 1);
            let c = if launch {
                &self.counters.launches
            } else {
                &self.counters.kills
            };
            c.fetch_add(1, Ordering::Relaxed);
            let _ = self.reports.send(report);
        }
        done
    }

    fn executor_report(&self, app: String, executor: u32, state: &str) -> Report {
        Report::Executor(pb::ExecutorStateChangedRequest {
            worker_id: self.id.clone(),
            app_id: app,
            executor_id: executor,
            state: state.into(),
            exit_code: None,
            message: String::new(),
        })
    }

    fn driver_report(&self, driver: String, running: bool) -> Report {
        Report::Driver(pb::DriverStateChangedRequest {
            worker_id: self.id.clone(),
            driver_id: driver,
            state: if running { "RUNNING" } else { "KILLED" }.into(),
            // Where the driver "listens": the executors are told, and never dial it.
            driver_url: running.then(|| format!("{}:1", self.host)),
            exit_code: None,
            message: String::new(),
        })
    }

    /// `MasterChanged`, as `control.rs` and `link.rs` take it.
    pub(crate) fn master_changed(&self, r: &pb::MasterChangedRequest) -> Response<pb::WorkerAck> {
        *self.announced_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let mut fence = self.fence.lock().unwrap_or_else(|p| p.into_inner());
        let highest = *fence;
        if r.term < highest {
            return ack(highest, false);
        }
        let configured = self.masters.contains(&r.leader);
        if configured {
            *fence = (*fence).max(r.term);
        }
        drop(fence);
        let leader = if configured { r.leader.as_str() } else { "" };
        let _ = self.new_leader(r.term, r.incarnation, leader);
        ack(highest, false)
    }

    /// A leader made itself known (`MasterChanged`, or an answer to a watch), as
    /// `link.rs` `new_leader` takes it.
    fn new_leader(&self, term: u64, incarnation: u64, leader: &str) -> bool {
        let known = self.known_term.load(Ordering::SeqCst);
        let registered = self.registered_incarnation.load(Ordering::SeqCst);
        if !hearth_core::is_new_leader(term, incarnation, known, registered) {
            return false;
        }
        if !leader.is_empty() {
            self.client.prefer(leader.to_owned());
        }
        if term == known {
            self.request_reregister();
        } else {
            self.saw_term(term);
        }
        true
    }

    /// Keeps a `WatchLeader` call waiting on the master at `addr`, as `link.rs` `watch`.
    async fn watch(self: Arc<Self>, addr: String) {
        let mut pause = Duration::from_millis(500);
        let mut session = self.session.subscribe();
        let mut table = self.table_changed.subscribe();
        loop {
            let (known, registered) = (
                self.known_term.load(Ordering::SeqCst),
                self.registered_incarnation.load(Ordering::SeqCst),
            );
            table.borrow_and_update();
            let offer = Some(self.registration());
            let request = MasterClient::watch_request(&self.id, known, registered, offer);
            let Some(answer) = (self.client)
                .watch_or_reoffer(&addr, request, &mut table)
                .await
            else {
                continue;
            };
            match answer {
                Ok(a)
                    if a.leads
                        && hearth_core::is_new_leader(a.term, a.incarnation, known, registered) =>
                {
                    pause = Duration::from_millis(500);
                    self.counters.watch_answers.fetch_add(1, Ordering::Relaxed);
                    let before = *session.borrow_and_update();
                    let news = if a.registered {
                        self.adopted_by(&a, &addr)
                    } else {
                        self.new_leader(a.term, a.incarnation, &addr)
                    };
                    if !news {
                        continue;
                    }
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        session.wait_for(|s| s.is_some() && *s != before),
                    )
                    .await;
                    tokio::time::sleep(MasterClient::rewatch_pause()).await;
                }
                Ok(_) => pause = Duration::from_millis(500),
                Err(_) => {
                    self.counters.watch_failures.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(3));
                }
            }
        }
    }

    /// The new leader `a` at `addr` registered this worker from its watch's offer, as
    /// `link.rs` `adopted_by` takes it: recorded as a registration answer, no call.
    fn adopted_by(&self, a: &pb::WhoLeadsResponse, addr: &str) -> bool {
        let known = self.known_term.load(Ordering::SeqCst);
        let registered = self.registered_incarnation.load(Ordering::SeqCst);
        if !hearth_core::is_new_leader(a.term, a.incarnation, known, registered) {
            return false;
        }
        self.registered_answer(a.term, a.incarnation, a.heartbeat_interval_ms);
        self.client.prefer(addr.to_owned());
        self.counters.adoptions.fetch_add(1, Ordering::Relaxed);
        self.adopted.set(a.term);
        self.request_reregister();
        true
    }

    /// A leader of `term` (process `incarnation`) took this worker's registration.
    fn registered_answer(&self, term: u64, incarnation: u64, heartbeat_ms: u64) {
        {
            let mut fence = self.fence.lock().unwrap_or_else(|p| p.into_inner());
            *fence = (*fence).max(term);
        }
        self.known_term.fetch_max(term, Ordering::SeqCst);
        (self.registered_incarnation).store(incarnation, Ordering::SeqCst);
        if heartbeat_ms > 0 {
            (self.heartbeat_ms).store(heartbeat_ms, Ordering::SeqCst);
        }
        *self.registered.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), term, incarnation));
    }

    fn registration(&self) -> pb::RegisterWorkerRequest {
        let t = self.lock_table();
        pb::RegisterWorkerRequest {
            worker_id: self.id.clone(),
            host: self.host.to_string(),
            port: self.port.into(),
            http_port: 0,
            cores: self.cores,
            memory_mb: self.memory_mb,
            executors: (t.executors.iter())
                .map(|(app, e)| pb::ReportedExecutor {
                    app_id: app.clone(),
                    executor_id: *e,
                    state: "RUNNING".into(),
                })
                .collect(),
            driver_ids: t.drivers.iter().cloned().collect(),
        }
    }

    /// Registers, retrying until a leader answers yes.
    async fn register(&self) -> u64 {
        let mut delay = Duration::from_millis(100);
        loop {
            if let Some(term) = self.adopted.take() {
                return term;
            }
            let request = self.registration();
            let answer = (self.client)
                .call("RegisterWorker", Idempotency::Idempotent, |mut c| {
                    let r = request.clone();
                    async move { c.register_worker(r).await }
                })
                .await;
            match answer {
                Ok(a) => {
                    self.registered_answer(a.term, a.incarnation, a.heartbeat_interval_ms);
                    self.counters.registrations.fetch_add(1, Ordering::Relaxed);
                    return a.term;
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Heartbeats until the session is over (a failure, `reregister`, or an ask).
    async fn heartbeat(&self, asks: &mut watch::Receiver<u64>) {
        let request = pb::HeartbeatRequest {
            worker_id: self.id.clone(),
        };
        loop {
            let every = Duration::from_millis(self.heartbeat_ms.load(Ordering::SeqCst));
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = asks.changed() => return,
            }
            let call = self
                .client
                .call("Heartbeat", Idempotency::Idempotent, |mut c| {
                    let r = request.clone();
                    async move { c.heartbeat(r).await }
                });
            let answer = tokio::select! {
                a = call => a,
                _ = asks.changed() => return,
            };
            match answer {
                Ok(a) if !a.reregister => {}
                _ => return,
            }
        }
    }

    async fn sessions(self: Arc<Self>) {
        let mut asks = self.reregister.subscribe();
        let mut generation = 0;
        loop {
            asks.borrow_and_update();
            let term = self.register().await;
            if self.known_term.load(Ordering::SeqCst) <= term {
                asks.borrow_and_update();
            }
            generation += 1;
            self.session.send_replace(Some(generation));
            self.heartbeat(&mut asks).await;
            self.session.send_replace(None);
        }
    }

    /// Delivers reports in order, each at least once (`link.rs` `deliver`).
    async fn deliver(self: Arc<Self>, mut reports: mpsc::UnboundedReceiver<Report>) {
        let mut session = self.session.subscribe();
        while let Some(report) = reports.recv().await {
            loop {
                let Ok(generation) = session.wait_for(Option::is_some).await.map(|g| *g) else {
                    return;
                };
                match self.send(&report).await {
                    Ok(()) => {
                        self.count_delivered(&report);
                        break;
                    }
                    Err(ClientError::Refused(status)) => {
                        if status.code() == Code::NotFound {
                            self.request_reregister();
                        }
                        break;
                    }
                    Err(_) => {
                        self.request_reregister();
                        let _ = session.wait_for(|s| *s != generation).await;
                    }
                }
            }
        }
    }

    fn count_delivered(&self, report: &Report) {
        match report {
            Report::Executor(r) if r.state == "RUNNING" => &self.counters.executors_running,
            Report::Driver(r) if r.state == "RUNNING" => &self.counters.drivers_running,
            _ => return,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    async fn send(&self, report: &Report) -> Result<(), ClientError> {
        let idem = Idempotency::Idempotent;
        match report {
            Report::Executor(r) => self
                .client
                .call("ExecutorStateChanged", idem, |mut c| {
                    let r = r.clone();
                    async move { c.executor_state_changed(r).await }
                })
                .await
                .map(drop),
            Report::Driver(r) => self
                .client
                .call("DriverStateChanged", idem, |mut c| {
                    let r = r.clone();
                    async move { c.driver_state_changed(r).await }
                })
                .await
                .map(drop),
        }
    }
}

/// How the fleet is made.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    pub workers: usize,
    pub cores: u32,
    pub memory_mb: u64,
    /// Master clients the workers share.
    pub clients: usize,
    /// The masters' gRPC addresses.
    pub masters: Vec<String>,
    /// Each worker keeps a `WatchLeader` call waiting on every master.
    pub watch: bool,
}

/// Every simulated worker and their server.
pub struct Fleet {
    pub workers: Arc<Vec<Arc<Sim>>>,
    pub counters: Arc<Counters>,
    /// The server and every worker's loops (aborted on drop).
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Each worker's report queue, until its loops start.
    queues: Vec<Option<mpsc::UnboundedReceiver<Report>>>,
    /// Workers watch the masters for a new leader.
    watch: bool,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Fleet {
    /// Binds the server and builds the workers (none registers yet).
    pub async fn new(cfg: &FleetConfig) -> Result<Fleet> {
        if cfg.workers > MAX_WORKERS {
            bail!("at most {MAX_WORKERS} simulated workers");
        }
        // One listening socket per 250 workers, each with a long accept queue: after a
        // failover the new leader dials every worker at once (MasterChanged, then its
        // commands), and one socket's queue overflowed (SYNs dropped, connects timing
        // out, counted in `nstat TcpExtListenOverflows`), which real workers, each with
        // its own socket, would not see.
        let mut ports = Vec::new();
        let mut listeners = StreamMap::new();
        for group in 0..cfg.workers.div_ceil(PER_LISTENER) {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from(([0, 0, 0, 0], 0)))?;
            let listener = socket.listen(4096)?;
            ports.push(listener.local_addr()?.port());
            listeners.insert(group, TcpListenerStream::new(listener));
        }
        let masters = Arc::new(cfg.masters.clone());
        let clients: Vec<Arc<MasterClient>> = (0..cfg.clients.max(1))
            .map(|_| {
                let mut c = MasterClient::new(cfg.masters.clone());
                // As a worker with the default heartbeat sets them (`link.rs`).
                c.attempt_timeout = Duration::from_secs(5);
                c.deadline = Duration::from_secs(21);
                Arc::new(c)
            })
            .collect();
        let counters = Arc::new(Counters::default());
        let mut workers = Vec::with_capacity(cfg.workers);
        let mut queues = Vec::with_capacity(cfg.workers);
        for i in 0..cfg.workers {
            let (tx, rx) = mpsc::unbounded_channel();
            queues.push(Some(rx));
            workers.push(Arc::new(Sim {
                id: format!("sim-{i:05}"),
                host: host_of(i),
                port: ports[i / PER_LISTENER],
                cores: cfg.cores,
                memory_mb: cfg.memory_mb,
                masters: Arc::clone(&masters),
                client: Arc::clone(&clients[i % clients.len()]),
                fence: Mutex::new(0),
                known_term: AtomicU64::new(0),
                registered_incarnation: AtomicU64::new(0),
                heartbeat_ms: AtomicU64::new(15_000),
                table: Mutex::new(Table::default()),
                table_changed: watch::Sender::new(0),
                adopted: Default::default(),
                reregister: watch::Sender::new(0),
                session: watch::Sender::new(None),
                reports: tx,
                registered: Mutex::new(None),
                announced_at: Mutex::new(None),
                counters: Arc::clone(&counters),
            }));
        }
        let workers = Arc::new(workers);
        let incoming = listeners.map(|(_, s)| s).filter(|s| match s {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                s.peer_addr().is_ok_and(|a| a.ip().is_loopback())
            }
            Err(_) => true,
        });
        let server = tonic::transport::Server::builder()
            .add_service(WorkerControlServer::new(Control::new(Arc::clone(&workers))))
            .serve_with_incoming(incoming);
        let server = tokio::spawn(async move {
            if let Err(e) = server.await {
                eprintln!("error: the simulated workers' server stopped: {e}");
            }
        });
        Ok(Fleet {
            workers,
            counters,
            tasks: vec![server],
            queues,
            watch: cfg.watch,
        })
    }

    /// Starts workers `range` (registration, heartbeats, reports).
    pub fn start(&mut self, range: std::ops::Range<usize>) {
        for i in range {
            let Some(rx) = self.queues[i].take() else {
                continue;
            };
            let sim = Arc::clone(&self.workers[i]);
            self.tasks.push(tokio::spawn(Arc::clone(&sim).sessions()));
            for addr in sim.masters.iter().filter(|_| self.watch) {
                self.tasks
                    .push(tokio::spawn(Arc::clone(&sim).watch(addr.clone())));
            }
            self.tasks.push(tokio::spawn(sim.deliver(rx)));
        }
    }

    /// How many workers a leader of `incarnation` answered since `since`.
    pub fn registered_with(&self, incarnation: u64, since: Instant) -> usize {
        self.workers
            .iter()
            .filter(|w| {
                let r = w.registered.lock().unwrap_or_else(|p| p.into_inner());
                r.is_some_and(|(at, _, inc)| inc == incarnation && at >= since)
            })
            .count()
    }

    /// The last registration of every worker: (latest time, term, incarnation), if all
    /// registered with one master process since `since`.
    pub fn all_registered_since(&self, since: Instant) -> Option<(Instant, u64, u64)> {
        let mut last: Option<(Instant, u64, u64)> = None;
        for w in self.workers.iter() {
            let r = *w.registered.lock().unwrap_or_else(|p| p.into_inner());
            let (at, term, inc) = r.filter(|(at, _, _)| *at >= since)?;
            match last {
                Some((_, _, i)) if i != inc => return None,
                Some((t, _, _)) if t >= at => {}
                _ => last = Some((at, term, inc)),
            }
        }
        last
    }

    /// When the announcements received since `since` arrived, sorted.
    pub fn announced_since(&self, since: Instant) -> Vec<Instant> {
        let mut at: Vec<Instant> = (self.workers.iter())
            .filter_map(|w| *w.announced_at.lock().unwrap_or_else(|p| p.into_inner()))
            .filter(|at| *at >= since)
            .collect();
        at.sort();
        at
    }

    /// The incarnation most workers last registered with.
    pub fn incarnation(&self) -> Option<u64> {
        let mut counts = std::collections::HashMap::<u64, usize>::new();
        for w in self.workers.iter() {
            if let Some((_, _, inc)) = *w.registered.lock().unwrap_or_else(|p| p.into_inner()) {
                *counts.entry(inc).or_default() += 1;
            }
        }
        counts.into_iter().max_by_key(|(_, n)| *n).map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_worker_has_its_own_loopback_address() {
        for i in [0, 1, 249, 250, 4999, MAX_WORKERS - 1] {
            assert_eq!(index_of(IpAddr::V4(host_of(i))), Some(i));
        }
        assert_eq!(host_of(0), Ipv4Addr::new(127, 100, 1, 1));
        assert_eq!(index_of(IpAddr::V4(Ipv4Addr::LOCALHOST)), None);
    }
}
