//! Shared pieces of hearth-worker's integration tests: a real worker (`run`) on an
//! ephemeral port, a gRPC client for it, a recording stand-in for the *master* (the
//! worker under test stays real), and polling helpers with deadlines.

#![allow(dead_code)] // each test binary uses a different subset

use hearth_proto::pb;
use hearth_proto::pb::master_service_server::{MasterService, MasterServiceServer};
use hearth_proto::pb::worker_control_client::WorkerControlClient;
use hearth_worker::{run, WorkerConfig, WORKER_ID_FILE};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

pub const GUARD: &str = env!("CARGO_BIN_EXE_hearth-guard");
pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Polls `f` every 20 ms until it yields a value; panics naming `what` after
/// [`DEADLINE`].
pub async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > DEADLINE {
            panic!("timed out after {DEADLINE:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An address where nothing listens (bound, then released).
pub fn closed_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// The process exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 1..]
                .trim_start()
                .chars()
                .next();
            !matches!(state, Some('Z') | Some('X'))
        }
        Err(_) => false,
    }
}

/// The process group of `pid`.
pub fn pgid_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// Live processes whose working directory is `dir`.
pub fn processes_in(dir: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|c| c == dir) && pid_alive(pid) {
            out.push(pid);
        }
    }
    out
}

pub fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Reads a pid a command wrote (write-then-rename, so never torn).
pub fn read_pid(path: impl AsRef<Path>) -> Option<i32> {
    read(path).trim().parse().ok()
}

/// A worker running in this process, as `hearth worker` runs it.
pub struct TestWorker {
    pub addr: SocketAddr,
    pub id: String,
    /// Canonical path of the work dir.
    pub work_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// [`config`] for one master with no heartbeat during a test: only an announcement (or
/// a command of a newer term) makes the worker register again.
pub fn announced_only(master: &FakeMaster, work_dir: &Path) -> WorkerConfig {
    WorkerConfig {
        heartbeat_interval: Some(Duration::from_secs(60)),
        ..config(vec![master.addr.clone()], work_dir)
    }
}

/// A leader's announcement (`MasterChanged`).
pub fn announce(
    leader: &str,
    term: u64,
    master_id: u64,
    incarnation: u64,
) -> pb::MasterChangedRequest {
    pb::MasterChangedRequest {
        term,
        master_id,
        leader: leader.to_owned(),
        incarnation,
    }
}

pub fn config(masters: Vec<String>, work_dir: &Path) -> WorkerConfig {
    WorkerConfig {
        masters,
        host: "127.0.0.1".into(),
        cores: 4,
        memory_mb: 1024,
        work_dir: work_dir.to_owned(),
        heartbeat_interval: Some(Duration::from_millis(200)),
        kill_grace: Duration::from_secs(2),
        guard: vec![GUARD.to_owned()],
        http_port: 0,
        extra_grpc: None,
        secret: None,
        tls: None,
        housekeeping: Default::default(),
    }
}

impl TestWorker {
    pub async fn start(masters: Vec<String>, work_dir: &Path) -> TestWorker {
        Self::start_with(config(masters, work_dir)).await
    }

    /// A worker with `cfg` (its work dir made and canonicalized here).
    pub async fn start_with(cfg: WorkerConfig) -> TestWorker {
        let work_dir = &cfg.work_dir.clone();
        init_tracing();
        std::fs::create_dir_all(work_dir).unwrap();
        let work_dir = std::fs::canonicalize(work_dir).unwrap();
        let id_file = work_dir.join(WORKER_ID_FILE);
        let _ = std::fs::remove_file(&id_file);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let cfg = WorkerConfig {
            work_dir: work_dir.clone(),
            ..cfg
        };
        let task = tokio::spawn(run(cfg, listener, async {
            let _ = stopped.await;
        }));
        let id = eventually("the worker id file", || {
            Some(read(&id_file).trim().to_owned()).filter(|s| !s.is_empty())
        })
        .await;
        TestWorker {
            addr,
            id,
            work_dir,
            stop: Some(stop),
            task,
        }
    }

    pub async fn client(&self) -> WorkerControlClient<Channel> {
        WorkerControlClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    /// Asks `run` to shut down and waits until it returned.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }

    pub fn launch(
        &self,
        term: u64,
        app: &str,
        exec: u32,
        argv: &[&str],
    ) -> pb::LaunchExecutorRequest {
        pb::LaunchExecutorRequest {
            term,
            master_id: 1,
            worker_id: self.id.clone(),
            app_id: app.into(),
            executor_id: exec,
            cores: 2,
            memory_mb: 256,
            command: Some(pb::ProcessSpec {
                argv: argv.iter().map(|s| s.to_string()).collect(),
                env: BTreeMap::from([("FOO".to_owned(), "bar".to_owned())]),
            }),
            driver_url: "driver-host:7".into(),
        }
    }

    pub fn kill(&self, term: u64, app: &str, exec: u32) -> pb::KillExecutorRequest {
        pb::KillExecutorRequest {
            term,
            master_id: 1,
            worker_id: self.id.clone(),
            app_id: app.into(),
            executor_id: exec,
        }
    }

    pub fn launch_driver(
        &self,
        term: u64,
        driver: &str,
        supervise: bool,
        script: &str,
    ) -> pb::LaunchDriverRequest {
        pb::LaunchDriverRequest {
            term,
            master_id: 1,
            worker_id: self.id.clone(),
            driver_id: driver.into(),
            app_id: "app-d".into(),
            cores: 1,
            memory_mb: 128,
            command: Some(pb::ProcessSpec {
                argv: vec!["sh".into(), "-c".into(), script.into()],
                env: BTreeMap::new(),
            }),
            supervise,
        }
    }

    pub fn kill_driver(&self, term: u64, driver: &str) -> pb::WorkerKillDriverRequest {
        pb::WorkerKillDriverRequest {
            term,
            master_id: 1,
            worker_id: self.id.clone(),
            driver_id: driver.into(),
        }
    }

    pub fn exec_dir(&self, app: &str, exec: u32) -> PathBuf {
        self.work_dir.join(app).join(exec.to_string())
    }
}

pub fn sh(script: &str) -> [&str; 3] {
    ["sh", "-c", script]
}

/// What the stand-in master received, in order.
#[derive(Clone, Debug)]
pub enum Received {
    Register(pb::RegisterWorkerRequest),
    /// A call answered "not the leader" while the master was down.
    Refused(&'static str),
    /// A registration answered "not the leader" while the master was down.
    RefusedRegister(pb::RegisterWorkerRequest),
    Heartbeat,
    Executor(pb::ExecutorStateChangedRequest),
    Driver(pb::DriverStateChangedRequest),
    /// A leader watch and the registration it offered (only once watches are answered,
    /// [`FakeMaster::answer_watches`]).
    Watch(Option<pb::RegisterWorkerRequest>),
}

#[derive(Default)]
struct Recorder {
    received: Mutex<Vec<Received>>,
    down: AtomicBool,
    reregister: AtomicBool,
    /// The heartbeat interval registrations are answered with (0: not said).
    advised_heartbeat_ms: std::sync::atomic::AtomicU64,
    /// The master process registrations are answered with (0: not said).
    incarnation: std::sync::atomic::AtomicU64,
    /// The term registrations are answered with, above 1.
    term_above_one: std::sync::atomic::AtomicU64,
    /// Leader watches are answered (else UNIMPLEMENTED, as by an older master).
    watches: AtomicBool,
    /// A watch with an offer is answered "registered" by a leader of this term and
    /// process, once set.
    adopt: tokio::sync::watch::Sender<Option<(u64, u64)>>,
}

/// A stand-in for the leading master that records what workers send it. It answers
/// like a leader at term 1, or, while `down`, like a master that knows no leader.
#[derive(Clone)]
pub struct FakeMaster {
    pub addr: String,
    rec: Arc<Recorder>,
}

impl FakeMaster {
    pub async fn start(down: bool) -> FakeMaster {
        let rec = Arc::new(Recorder::default());
        rec.down.store(down, Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let service = MasterServiceServer::new(Service(Arc::clone(&rec)));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        FakeMaster { addr, rec }
    }

    pub fn set_down(&self, down: bool) {
        self.rec.down.store(down, Ordering::SeqCst);
    }

    /// Registrations are answered with this heartbeat interval from now on.
    pub fn advise_heartbeat(&self, every: Duration) {
        self.rec
            .advised_heartbeat_ms
            .store(every.as_millis() as u64, Ordering::SeqCst);
    }

    /// Registrations are answered as from master process `incarnation` from now on.
    pub fn set_incarnation(&self, incarnation: u64) {
        self.rec.incarnation.store(incarnation, Ordering::SeqCst);
    }

    /// Answers registrations at `term` (1 by default).
    pub fn set_term(&self, term: u64) {
        self.rec
            .term_above_one
            .store(term.saturating_sub(1), Ordering::SeqCst);
    }

    /// Leader watches are answered from now on: after their wait (at most 100 ms here)
    /// with "this master leads at term 1", or at once by [`FakeMaster::adopt_at`].
    pub fn answer_watches(&self) {
        self.rec.watches.store(true, Ordering::SeqCst);
    }

    /// Becomes a new leader of `term` (process `incarnation`) that registered every
    /// worker whose watch offers a registration: such watches are answered so, and
    /// registrations and the rest are answered at `term`.
    pub fn adopt_at(&self, term: u64, incarnation: u64) {
        self.set_term(term);
        self.set_incarnation(incarnation);
        self.rec.adopt.send_replace(Some((term, incarnation)));
    }

    /// The registrations the leader watches offered, in order.
    pub fn offers(&self) -> Vec<pb::RegisterWorkerRequest> {
        self.received()
            .into_iter()
            .filter_map(|r| match r {
                Received::Watch(offer) => offer,
                _ => None,
            })
            .collect()
    }

    /// Heartbeats received so far.
    pub fn heartbeats(&self) -> usize {
        self.received()
            .iter()
            .filter(|r| matches!(r, Received::Heartbeat))
            .count()
    }

    /// The next heartbeat is answered `reregister: true`.
    pub fn ask_reregister(&self) {
        self.rec.reregister.store(true, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.rec.received.lock().unwrap().clone()
    }

    /// Registrations refused while the master was down.
    pub fn refused_registrations(&self) -> Vec<pb::RegisterWorkerRequest> {
        self.received()
            .into_iter()
            .filter_map(|r| match r {
                Received::RefusedRegister(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    pub fn registrations(&self) -> Vec<pb::RegisterWorkerRequest> {
        self.received()
            .into_iter()
            .filter_map(|r| match r {
                Received::Register(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// States reported for executor `app/exec`, in order, with exit code and message.
    pub fn executor_reports(&self, app: &str, exec: u32) -> Vec<pb::ExecutorStateChangedRequest> {
        self.received()
            .into_iter()
            .filter_map(|r| match r {
                Received::Executor(r) if r.app_id == app && r.executor_id == exec => Some(r),
                _ => None,
            })
            .collect()
    }

    pub fn driver_reports(&self, driver: &str) -> Vec<pb::DriverStateChangedRequest> {
        self.received()
            .into_iter()
            .filter_map(|r| match r {
                Received::Driver(r) if r.driver_id == driver => Some(r),
                _ => None,
            })
            .collect()
    }
}

pub fn states<T>(reports: &[T], state: impl Fn(&T) -> &str) -> Vec<String> {
    reports.iter().map(|r| state(r).to_owned()).collect()
}

struct Service(Arc<Recorder>);

impl Service {
    fn record<T>(&self, what: &'static str, r: Received, answer: T) -> Result<Response<T>, Status> {
        let mut received = self.0.received.lock().unwrap();
        if self.0.down.load(Ordering::SeqCst) {
            received.push(match r {
                Received::Register(r) => Received::RefusedRegister(r),
                _ => Received::Refused(what),
            });
            return Err(hearth_proto::status::not_leader(None));
        }
        received.push(r);
        Ok(Response::new(answer))
    }
}

#[tonic::async_trait]
impl MasterService for Service {
    async fn register_worker(
        &self,
        r: Request<pb::RegisterWorkerRequest>,
    ) -> Result<Response<pb::RegisterWorkerResponse>, Status> {
        let answer = pb::RegisterWorkerResponse {
            duplicate: false,
            term: 1 + self.0.term_above_one.load(Ordering::SeqCst),
            master_id: 1,
            heartbeat_interval_ms: self.0.advised_heartbeat_ms.load(Ordering::SeqCst),
            incarnation: self.0.incarnation.load(Ordering::SeqCst),
        };
        self.record("RegisterWorker", Received::Register(r.into_inner()), answer)
    }

    async fn heartbeat(
        &self,
        _: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let reregister =
            !self.0.down.load(Ordering::SeqCst) && self.0.reregister.swap(false, Ordering::SeqCst);
        self.record(
            "Heartbeat",
            Received::Heartbeat,
            pb::HeartbeatResponse { reregister },
        )
    }

    async fn executor_state_changed(
        &self,
        r: Request<pb::ExecutorStateChangedRequest>,
    ) -> Result<Response<pb::Ack>, Status> {
        let ack = pb::Ack { unchanged: false };
        self.record(
            "ExecutorStateChanged",
            Received::Executor(r.into_inner()),
            ack,
        )
    }

    async fn driver_state_changed(
        &self,
        r: Request<pb::DriverStateChangedRequest>,
    ) -> Result<Response<pb::Ack>, Status> {
        let ack = pb::Ack { unchanged: false };
        self.record("DriverStateChanged", Received::Driver(r.into_inner()), ack)
    }

    async fn register_app(
        &self,
        _: Request<pb::RegisterAppRequest>,
    ) -> Result<Response<pb::RegisterAppResponse>, Status> {
        Err(Status::unimplemented("not a worker call"))
    }

    async fn app_heartbeat(
        &self,
        _: Request<pb::AppHeartbeatRequest>,
    ) -> Result<Response<pb::AppHeartbeatResponse>, Status> {
        Err(Status::unimplemented("not a worker call"))
    }

    async fn finish_app(
        &self,
        _: Request<pb::FinishAppRequest>,
    ) -> Result<Response<pb::Ack>, Status> {
        Err(Status::unimplemented("not a worker call"))
    }

    async fn kill_app(&self, _: Request<pb::KillAppRequest>) -> Result<Response<pb::Ack>, Status> {
        Err(Status::unimplemented("not a worker call"))
    }

    async fn scale_app(
        &self,
        _: Request<pb::ScaleAppRequest>,
    ) -> Result<Response<pb::Ack>, Status> {
        Err(Status::unimplemented("not a worker call"))
    }

    async fn who_leads(
        &self,
        _: Request<pb::WhoLeadsRequest>,
    ) -> Result<Response<pb::WhoLeadsResponse>, Status> {
        Err(Status::unimplemented("not a worker call"))
    }

    async fn watch_leader(
        &self,
        r: Request<pb::WatchLeaderRequest>,
    ) -> Result<Response<pb::WhoLeadsResponse>, Status> {
        if !self.0.watches.load(Ordering::SeqCst) {
            return Err(Status::unimplemented(
                "this fake master does not answer leader watches",
            ));
        }
        let r = r.into_inner();
        let offered = r.registration.is_some();
        self.0
            .received
            .lock()
            .unwrap()
            .push(Received::Watch(r.registration));
        // A new leader adopting the worker, or after 100 ms what is known.
        let mut adopt = self.0.adopt.subscribe();
        let newer = |a: &Option<(u64, u64)>| a.is_some_and(|(term, _)| term > r.after_term);
        let waited = tokio::time::timeout(Duration::from_millis(100), adopt.wait_for(newer)).await;
        match waited {
            Ok(Ok(a)) => {
                let (term, incarnation) = a.expect("newer");
                Ok(Response::new(pb::WhoLeadsResponse {
                    term,
                    leader: None,
                    leads: true,
                    master_id: 2,
                    incarnation,
                    registered: offered,
                    heartbeat_interval_ms: 200,
                }))
            }
            _ => Ok(Response::new(pb::WhoLeadsResponse {
                term: 1 + self.0.term_above_one.load(Ordering::SeqCst),
                leads: true,
                incarnation: self.0.incarnation.load(Ordering::SeqCst),
                ..Default::default()
            })),
        }
    }

    async fn set_executor_limit(
        &self,
        _: Request<pb::SetExecutorLimitRequest>,
    ) -> Result<Response<pb::Ack>, Status> {
        Err(Status::unimplemented("not a worker call"))
    }

    async fn kill_executors(
        &self,
        _: Request<pb::KillExecutorsRequest>,
    ) -> Result<Response<pb::Ack>, Status> {
        Err(Status::unimplemented("not a worker call"))
    }

    async fn kill_driver(
        &self,
        _: Request<pb::KillDriverRequest>,
    ) -> Result<Response<pb::Ack>, Status> {
        Err(Status::unimplemented("not a worker call"))
    }

    async fn decommission_worker(
        &self,
        _: Request<pb::DecommissionWorkerRequest>,
    ) -> Result<Response<pb::Ack>, Status> {
        Err(Status::unimplemented("not a worker call"))
    }

    async fn drain_worker(
        &self,
        _: Request<pb::DrainWorkerRequest>,
    ) -> Result<Response<pb::Ack>, Status> {
        Err(Status::unimplemented("not a worker call"))
    }

    async fn undrain_worker(
        &self,
        _: Request<pb::UndrainWorkerRequest>,
    ) -> Result<Response<pb::Ack>, Status> {
        Err(Status::unimplemented("not a worker call"))
    }

    async fn get_state(
        &self,
        _: Request<pb::GetStateRequest>,
    ) -> Result<Response<pb::ClusterStatus>, Status> {
        Err(Status::unimplemented("not a worker call"))
    }
}
