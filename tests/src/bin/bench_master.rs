//! Master benchmark: one real master (in-process, real gRPC over loopback) against 200
//! simulated workers — in-process gRPC servers that acknowledge every launch without
//! spawning a process and report the executor RUNNING, as a real worker would.
//!
//! Run: `cargo run --release -p hearth-tests --bin bench-master [-- --workers 200
//! --apps 100 --executors 100 --submissions 2000 --fsync 1]` (`--fsync 1`: FILESYSTEM
//! recovery mode, every acknowledged request fsynced with group commit). Prints executor placements
//! acknowledged per second end to end (register apps → master schedules → launch
//! delivered and acknowledged by the worker → RUNNING reported back and applied), and
//! app submissions per second, sequential and with 16 concurrent clients.

use hearth_client::{MasterClient, SleepingApp};
use hearth_core::AppDescription;
use hearth_master::{MasterConfig, NoJournal};
use hearth_proto::pb;
use hearth_proto::pb::master_service_client::MasterServiceClient;
use hearth_proto::pb::worker_control_server::{WorkerControl, WorkerControlServer};
use hearth_tests::harness::arg;
use hearth_tests::wait::Wait;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

struct SimWorker {
    id: String,
    master: MasterServiceClient<Channel>,
    launched: Arc<AtomicU64>,
}

fn ack() -> Result<Response<pb::WorkerAck>, Status> {
    Ok(Response::new(pb::WorkerAck {
        refused: None,
        highest_term: 0,
        duplicate: false,
    }))
}

#[tonic::async_trait]
impl WorkerControl for SimWorker {
    async fn launch_executor(
        &self,
        req: Request<pb::LaunchExecutorRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        let r = req.into_inner();
        self.launched.fetch_add(1, Ordering::Relaxed);
        let mut master = self.master.clone();
        let report = pb::ExecutorStateChangedRequest {
            worker_id: self.id.clone(),
            app_id: r.app_id,
            executor_id: r.executor_id,
            state: "RUNNING".into(),
            exit_code: None,
            message: String::new(),
        };
        tokio::spawn(async move {
            if let Err(e) = master.executor_state_changed(report).await {
                eprintln!("report failed: {e}");
            }
        });
        ack()
    }
    async fn kill_executor(
        &self,
        _: Request<pb::KillExecutorRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        ack()
    }
    async fn launch_driver(
        &self,
        _: Request<pb::LaunchDriverRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        ack()
    }
    async fn kill_driver(
        &self,
        _: Request<pb::WorkerKillDriverRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        ack()
    }
    async fn master_changed(
        &self,
        _: Request<pb::MasterChangedRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        ack()
    }
    async fn read_log(
        &self,
        _: Request<pb::ReadLogRequest>,
    ) -> Result<Response<pb::ReadLogResponse>, Status> {
        Err(Status::not_found("a simulated worker runs nothing"))
    }
}

fn app(executors: u32) -> AppDescription {
    let app = SleepingApp::client().named("bench").executors(executors);
    app.executor_memory_mb(256).exiting().describe().0
}

async fn running_executors(client: &MasterClient) -> u64 {
    let s = client.state().await.expect("state");
    s.active_apps
        .iter()
        .flat_map(|a| a.executors.values())
        .filter(|e| e.state == hearth_core::ExecutorState::Running)
        .count() as u64
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let workers = arg("--workers", 200);
    let apps = arg("--apps", 100);
    let per_app = arg("--executors", 100) as u32;
    let submissions = arg("--submissions", 2000);
    // --fsync 1: FILESYSTEM recovery mode (every acknowledged request fsynced, with group
    // commit) in a fresh directory; otherwise recovery mode none.
    let fsync = arg("--fsync", 0) == 1;
    let rec_dir = std::env::temp_dir().join(format!("hearth-bench-master-{}", std::process::id()));
    let addr = start_master(fsync.then_some(rec_dir.as_path())).await?;
    let client = MasterClient::new(vec![addr.to_string()]);
    let launched = start_workers(&addr, workers).await?;
    println!(
        "hearth master benchmark: {workers} simulated workers (64 cores each) on loopback, one master, recovery mode {}",
        if fsync { "filesystem (fsync, group commit)" } else { "none" }
    );
    placements(&client, &launched, apps, per_app).await?;
    submit_sequentially(&client, submissions).await?;
    submit_concurrently(Arc::new(client), submissions).await?;
    let _ = std::fs::remove_dir_all(&rec_dir);
    Ok(())
}

/// One in-process master on loopback (FILESYSTEM recovery mode in `fsync_dir`, if
/// given); returns its gRPC address.
async fn start_master(fsync_dir: Option<&std::path::Path>) -> anyhow::Result<SocketAddr> {
    let grpc = TcpListener::bind("127.0.0.1:0").await?;
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let addr = grpc.local_addr()?;
    let config = MasterConfig {
        worker_timeout: Duration::from_secs(600),
        ..MasterConfig::default()
    };
    let journal: Box<dyn hearth_master::Journal> = match fsync_dir {
        Some(dir) => {
            let _ = std::fs::remove_dir_all(dir);
            let (j, _) = hearth_recovery::Journal::open(dir, Default::default())?;
            Box::new(hearth_master::FsJournal(j))
        }
        None => Box::new(NoJournal::new()),
    };
    tokio::spawn(hearth_master::serve(
        config,
        journal,
        (Default::default(), 0),
        grpc,
        http,
        std::future::pending(),
    ));
    Ok(addr)
}

/// `workers` simulated workers, each an in-process `WorkerControl` server registered
/// with the master at `addr`; returns the count of launches they acknowledged.
async fn start_workers(addr: &SocketAddr, workers: u64) -> anyhow::Result<Arc<AtomicU64>> {
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let master = MasterServiceClient::new(channel);
    let launched = Arc::new(AtomicU64::new(0));
    for n in 0..workers {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let id = format!("worker-sim-{n:04}");
        let sim = SimWorker {
            id: id.clone(),
            master: master.clone(),
            launched: launched.clone(),
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(WorkerControlServer::new(sim))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        let reg = pb::RegisterWorkerRequest {
            worker_id: id,
            host: "127.0.0.1".into(),
            port: port.into(),
            http_port: 0,
            cores: 64,
            memory_mb: 64 * 1024,
            executors: vec![],
            driver_ids: vec![],
        };
        master.clone().register_worker(reg).await?;
    }
    Ok(launched)
}

/// Placements: registers every app at once, then waits until every executor is RUNNING.
async fn placements(
    client: &MasterClient,
    launched: &AtomicU64,
    apps: u64,
    per_app: u32,
) -> anyhow::Result<()> {
    let total = apps * u64::from(per_app);
    let start = Instant::now();
    for _ in 0..apps {
        client
            .register_app(&app(per_app), None, Some("127.0.0.1:1"))
            .await?;
    }
    let registered = start.elapsed();
    // Poll with a deadline: a lost launch or report fails the run instead of hanging it.
    let deadline = Duration::from_secs(120);
    Wait::new(
        "every launch acknowledged",
        deadline.saturating_sub(registered),
    )
    .every(Duration::from_millis(2))
    .until_async(|| async { (launched.load(Ordering::Relaxed) >= total).then_some(()) })
    .await?;
    let acked = start.elapsed();
    Wait::new("every executor RUNNING", deadline.saturating_sub(acked))
        .every(Duration::from_millis(5))
        .until_async(|| async { (running_executors(client).await >= total).then_some(()) })
        .await?;
    let running = start.elapsed();
    println!(
        "placements: {total} executors ({apps} apps x {per_app}); apps registered in {:.0} ms; \
         all launches acknowledged by workers after {:.0} ms = {:.0} placements/s; \
         all RUNNING in the master after {:.0} ms = {:.0} placements/s",
        registered.as_secs_f64() * 1e3,
        acked.as_secs_f64() * 1e3,
        total as f64 / acked.as_secs_f64(),
        running.as_secs_f64() * 1e3,
        total as f64 / running.as_secs_f64(),
    );
    Ok(())
}

/// Submissions from one client, one after another. Each app asks for one executor, so
/// the scheduler runs too.
async fn submit_sequentially(client: &MasterClient, submissions: u64) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut lat = Vec::with_capacity(submissions as usize);
    for _ in 0..submissions {
        let t = Instant::now();
        client
            .register_app(&app(1), None, Some("127.0.0.1:1"))
            .await?;
        lat.push(t.elapsed());
    }
    let seq = start.elapsed();
    lat.sort();
    println!(
        "submissions, 1 client: {submissions} in {:.0} ms = {:.0}/s (p50 {:.2} ms, p99 {:.2} ms)",
        seq.as_secs_f64() * 1e3,
        submissions as f64 / seq.as_secs_f64(),
        lat[lat.len() / 2].as_secs_f64() * 1e3,
        lat[lat.len() * 99 / 100].as_secs_f64() * 1e3,
    );
    Ok(())
}

/// Submissions from 16, then 64 concurrent clients.
async fn submit_concurrently(client: Arc<MasterClient>, submissions: u64) -> anyhow::Result<()> {
    for clients in [16u64, 64] {
        let start = Instant::now();
        let per = submissions / clients;
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let c = client.clone();
                tokio::spawn(async move {
                    for _ in 0..per {
                        c.register_app(&app(1), None, Some("127.0.0.1:1"))
                            .await
                            .expect("submit");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await?;
        }
        let took = start.elapsed();
        println!(
            "submissions, {clients} clients: {} in {:.0} ms = {:.0}/s",
            per * clients,
            took.as_secs_f64() * 1e3,
            (per * clients) as f64 / took.as_secs_f64()
        );
    }
    Ok(())
}
