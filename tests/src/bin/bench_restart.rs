//! FILESYSTEM restart benchmark: how long from a master's start on an existing recovery
//! directory to ALIVE, with every worker and client app answering at once.
//!
//! The directory holds a cluster of 1,000 workers and 10,000 client-mode apps (one
//! RUNNING executor each) built by 100,000 journaled commands (registrations, then
//! executor churn: exits and replacements). Measured twice: everything in the journal,
//! and the way a running master leaves it (a snapshot, then the 10,000-record tail).
//! Each round copies the directory fresh, starts a real master in-process on loopback
//! (`Journal::open` → gRPC), fires the 1,000 RegisterWorker reports all at once, then the
//! 10,000 client apps' AppHeartbeats all at once, and reads the clock when the last
//! worker has answered and when the last app has (the master completes recovery before
//! answering the last one; checked with GetState).
//!
//! Run: `cargo run --release -p hearth-tests --bin bench-restart [-- --rounds 5]`.

use hearth_client::SleepingApp;
use hearth_core::*;
use hearth_master::{FsJournal, MasterConfig};
use hearth_proto::pb;
use hearth_proto::pb::master_service_client::MasterServiceClient;
use hearth_tests::harness::arg;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tonic::transport::Channel;

const WORKERS: u32 = 1_000;
const APPS: u32 = 10_000;
const RECORDS: usize = 100_000;
const TAIL: usize = 10_000;
const T0: u64 = 1_795_457_728_000;

fn wid(n: u32) -> WorkerId {
    ids::worker_id(Millis(T0), "127.0.0.1", 20_000 + n as u16)
}

/// Commands and the state they build, each applied as a master would.
struct History {
    s: ClusterState,
    cmds: Vec<Command>,
}

/// Builds the commands: workers register, apps are placed, executors churn, and at the
/// end everything runs.
fn history() -> (Vec<Command>, ClusterState) {
    let mut h = History {
        s: ClusterState::default(),
        cmds: Vec::with_capacity(RECORDS),
    };
    let policy = Policy::default();
    h.push(Command::BeginRecovery { at: Millis(T0) });
    h.register_workers();
    h.place_apps(&policy);
    h.churn(&policy);
    h.all_running();
    (h.cmds, h.s)
}

impl History {
    fn push(&mut self, cmd: Command) {
        apply(&mut self.s, &cmd).unwrap_or_else(|e| panic!("{} refused: {e}", cmd.kind()));
        self.cmds.push(cmd);
    }

    fn register_workers(&mut self) {
        for n in 0..WORKERS {
            let reg = WorkerRegistration {
                identity: WorkerIdentity {
                    id: wid(n),
                    host: "127.0.0.1".into(),
                    port: 20_000 + n as u16,
                    http_port: 0,
                    cores: 32,
                    memory_mb: 64 * 1024,
                },
                executors: vec![],
                drivers: vec![],
            };
            self.push(Command::RegisterWorker {
                reg,
                at: Millis(T0),
            });
        }
    }

    fn place_apps(&mut self, policy: &Policy) {
        for a in 0..APPS {
            let app = SleepingApp::client().named(&format!("app{a}"));
            let (desc, _) = app.executor_memory_mb(512).exiting().describe();
            let at = Millis(T0 + u64::from(a));
            self.push(Command::RegisterApp {
                desc,
                driver: None,
                driver_url: Some("127.0.0.1:1".into()),
                at,
            });
            let placements = schedule(&self.s, policy, u64::from(a));
            self.push(Command::Place { placements, at });
        }
    }

    /// Churn: an executor reports RUNNING, later exits, and is replaced.
    fn churn(&mut self, policy: &Policy) {
        let apps: Vec<AppId> = self.s.apps.keys().cloned().collect();
        let mut k = 0usize;
        // Leave room for the final RUNNING reports (about one per app).
        while self.cmds.len() + 3 + APPS as usize <= RECORDS {
            let app = &apps[k % apps.len()];
            let e = self.s.apps[app]
                .executors
                .values()
                .next()
                .expect("one executor")
                .clone();
            let at = Millis(T0 + 1_000_000 + k as u64);
            let report = |state, exit_code| Command::ExecutorStateChanged {
                worker: e.worker.clone(),
                app: app.clone(),
                executor: e.id,
                state,
                exit_code,
                message: String::new(),
                at,
            };
            self.push(report(ExecutorState::Running, None));
            if self.cmds.len() + 2 > RECORDS {
                break;
            }
            self.push(report(ExecutorState::Exited, Some(0)));
            let placements = schedule(&self.s, policy, k as u64);
            self.push(Command::Place { placements, at });
            k += 1;
        }
    }

    /// Everything RUNNING at the end, as a healthy cluster would be.
    fn all_running(&mut self) {
        let pending: Vec<(AppId, ExecutorInfo)> = self
            .s
            .apps
            .iter()
            .flat_map(|(id, a)| {
                a.executors
                    .values()
                    .filter(|e| e.state != ExecutorState::Running)
                    .map(move |e| (id.clone(), e.clone()))
            })
            .collect();
        for (app, e) in pending {
            self.push(Command::ExecutorStateChanged {
                worker: e.worker,
                app,
                executor: e.id,
                state: ExecutorState::Running,
                exit_code: None,
                message: String::new(),
                at: Millis(T0 + 9_000_000),
            });
        }
    }
}

fn write_dir(dir: &Path, cmds: &[Command], snapshot_at: Option<usize>) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let opts = hearth_recovery::Options {
        snapshot_every: u64::MAX,
        ..Default::default()
    };
    let (j, _) = hearth_recovery::Journal::open(dir, opts).unwrap();
    let mut s = ClusterState::default();
    for (i, c) in cmds.iter().enumerate() {
        let _ = apply(&mut s, c);
        let lsn = j.append(c).unwrap();
        if Some(i + 1) == snapshot_at {
            j.sync_blocking(lsn).unwrap();
            j.snapshot(&s, lsn).unwrap();
        }
    }
    j.close().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The answers the cluster gives a new master: each worker's report and each app's
/// heartbeat.
fn answers(s: &ClusterState) -> (Vec<pb::RegisterWorkerRequest>, Vec<pb::AppHeartbeatRequest>) {
    let regs = s
        .workers
        .values()
        .map(|w| {
            let reg = WorkerRegistration {
                identity: WorkerIdentity {
                    http_port: 0,
                    ..w.identity.clone()
                },
                executors: w
                    .executors
                    .iter()
                    .map(|(app, executor)| ReportedExecutor {
                        app: app.clone(),
                        executor: *executor,
                        state: ExecutorState::Running,
                    })
                    .collect(),
                drivers: w.drivers.iter().cloned().collect(),
            };
            (&reg).into()
        })
        .collect();
    let beats = s
        .apps
        .keys()
        .map(|a| pb::AppHeartbeatRequest {
            app_id: a.0.clone(),
        })
        .collect();
    (regs, beats)
}

/// One restart: (restore, every worker answered, ALIVE), each from the start.
async fn round(
    dir: &Path,
    regs: &[pb::RegisterWorkerRequest],
    beats: &[pb::AppHeartbeatRequest],
) -> (Duration, Duration, Duration) {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(
            Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect_lazy(),
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let dir = dir.to_owned();
    let (journal, restored) = tokio::task::spawn_blocking(move || {
        hearth_recovery::Journal::open(&dir, Default::default()).unwrap()
    })
    .await
    .unwrap();
    let opened = start.elapsed();
    let config = MasterConfig {
        worker_timeout: Duration::from_secs(600),
        recovery_timeout: Duration::from_secs(600),
        app_timeout: Duration::from_secs(600),
        ..MasterConfig::default()
    };
    let master = tokio::spawn(hearth_master::serve(
        config,
        Box::new(FsJournal(journal)),
        (restored.state, restored.lsn),
        grpc,
        http,
        async {
            let _ = stop_rx.await;
        },
    ));
    let mut calls = tokio::task::JoinSet::new();
    for (i, r) in regs.iter().enumerate() {
        let mut c = MasterServiceClient::new(channels[i % channels.len()].clone());
        let r = r.clone();
        calls.spawn(async move { c.register_worker(r).await.map(|_| ()) });
    }
    while let Some(r) = calls.join_next().await {
        r.unwrap().expect("answer accepted");
    }
    let workers_in = start.elapsed();
    for (i, b) in beats.iter().enumerate() {
        let mut c = MasterServiceClient::new(channels[i % channels.len()].clone());
        let b = b.clone();
        calls.spawn(async move { c.app_heartbeat(b).await.map(|_| ()) });
    }
    while let Some(r) = calls.join_next().await {
        r.unwrap().expect("answer accepted");
    }
    let alive = start.elapsed();
    let mut c = MasterServiceClient::new(channels[0].clone())
        .max_decoding_message_size(hearth_proto::MAX_MESSAGE);
    let status = c
        .get_state(pb::GetStateRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status, "ALIVE");
    let _ = stop_tx.send(());
    master.await.unwrap().unwrap();
    (opened, workers_in, alive)
}

#[tokio::main]
async fn main() {
    let rounds = arg("--rounds", 5) as usize;
    let base: PathBuf =
        std::env::temp_dir().join(format!("hearth-bench-restart-{}", std::process::id()));
    let (cmds, state) = history();
    let (regs, beats) = answers(&state);
    let executors: usize = state.apps.values().map(|a| a.executors.len()).sum();
    println!(
        "hearth FILESYSTEM restart to ALIVE: {} workers, {} apps, {executors} executors, {} journaled commands; \
         every worker and app answers at once over loopback gRPC; {rounds} rounds each",
        state.workers.len(),
        state.apps.len(),
        cmds.len()
    );
    for (label, snapshot_at) in [
        ("all 100,000 records in the journal", None),
        ("snapshot + 10,000-record tail", Some(cmds.len() - TAIL)),
    ] {
        let golden = base.join("golden");
        write_dir(&golden, &cmds, snapshot_at);
        let (mut opens, mut workers, mut alives) = (vec![], vec![], vec![]);
        for _ in 0..rounds {
            let dir = base.join("round");
            copy_dir(&golden, &dir);
            let (o, w, a) = round(&dir, &regs, &beats).await;
            opens.push(o);
            workers.push(w);
            alives.push(a);
        }
        let p50 = |v: &mut Vec<Duration>| {
            v.sort();
            (
                v[v.len() / 2].as_secs_f64() * 1e3,
                v[v.len() - 1].as_secs_f64() * 1e3,
            )
        };
        let (o, om) = p50(&mut opens);
        let (w, wm) = p50(&mut workers);
        let (a, am) = p50(&mut alives);
        println!(
            "{label:<36} restore p50 {o:>6.1} ms (max {om:>6.1}) | 1,000 workers answered p50 {w:>6.1} ms (max {wm:>6.1}) \
             | + 10,000 apps, ALIVE p50 {a:>7.1} ms (max {am:>7.1})"
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}
