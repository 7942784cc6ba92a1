//! Shared by the in-process master tests: loopback listeners that can be re-bound after
//! a master stops, a condition wait with a deadline, a minimal app description, and the
//! one in-process Raft group fixture ([`start_master`], [`Group`]).

#![allow(dead_code)]

use hearth_client::MasterClient;
use hearth_core::{AppDescription, MasterRole, ProcessSpec};
use hearth_master::drill::Isolation;
use hearth_master::ports::free_peer_ports;
use hearth_master::{MasterConfig, MasterError, RaftOptions};
use hearth_proto::convert::StatusView;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const DEADLINE: Duration = Duration::from_secs(30);

/// A listener on 127.0.0.1 (`port` 0: an ephemeral one), reusable after a stop.
pub fn listen(port: u16) -> TcpListener {
    let s = TcpSocket::new_v4().expect("socket");
    s.set_reuseaddr(true).expect("reuseaddr");
    s.bind(([127, 0, 0, 1], port).into()).expect("bind");
    s.listen(128).expect("listen")
}

/// Polls `f` every 20 ms until it yields, or panics naming `what` after [`DEADLINE`].
pub async fn wait<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client-mode app asking for one one-core executor that runs `true`.
pub fn app(name: &str) -> AppDescription {
    AppDescription {
        name: name.into(),
        cores_per_executor: Some(1),
        memory_per_executor_mb: 64,
        max_cores: Some(1),
        initial_executor_limit: None,
        command: ProcessSpec {
            argv: vec!["true".into()],
            env: Default::default(),
        },
    }
}

/// How the masters of an in-process group are set up beyond their ids and peers.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a new leader waits for workers and apps to check in.
    pub recovery_timeout: Duration,
    /// A snapshot is built after this many log entries.
    pub snapshot_every: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            recovery_timeout: Duration::from_secs(2),
            snapshot_every: 10_000,
        }
    }
}

/// One in-process `hearth master --recovery-mode raft`.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), MasterError>>,
    /// Its isolate-drill switch.
    pub isolation: Isolation,
}

impl Running {
    /// Stops it (its Raft shuts down; pending proposals fail) and returns how it ended.
    pub async fn stop(mut self) -> Result<(), MasterError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the master stops within the deadline")
            .expect("the master task")
    }
}

/// Starts master `id` of `peers` on `grpc`, its Raft directory `dir/m<id>`, with fast
/// Raft timings (heartbeat 50 ms, elections 300–600 ms).
pub fn start_master(
    id: u64,
    peers: &BTreeMap<u64, String>,
    dir: &Path,
    grpc: TcpListener,
    settings: &Settings,
) -> Running {
    let isolation = Isolation::default();
    let config = MasterConfig {
        id,
        worker_timeout: Duration::from_secs(600),
        recovery_timeout: settings.recovery_timeout,
        app_timeout: Duration::from_secs(600),
        isolation: isolation.clone(),
        ..MasterConfig::default()
    };
    let opts = RaftOptions {
        id,
        peers: peers.clone(),
        dir: dir.join(format!("m{id}")),
        heartbeat: Duration::from_millis(50),
        election_min: Duration::from_millis(300),
        election_max: Duration::from_millis(600),
        snapshot_every: settings.snapshot_every,
        via: BTreeMap::new(),
        credential: Default::default(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(hearth_master::serve_raft(
        config,
        opts,
        grpc,
        listen(0),
        async {
            let _ = stopped.await;
        },
    ));
    Running {
        stop: Some(stop),
        task,
        isolation,
    }
}

/// A group of in-process Raft masters on fixed loopback ports (so each can be stopped
/// and started again on its directory), index `i` being master `i + 1`.
pub struct Group {
    dir: PathBuf,
    ports: Vec<u16>,
    pub peers: BTreeMap<u64, String>,
    settings: Settings,
    masters: Vec<Option<Running>>,
}

impl Group {
    pub fn start(dir: &Path, n: usize, settings: Settings) -> Group {
        // Masters are bound again after each stop and restart, so their ports come from
        // where the kernel never hands out ports to port-0 binders (other tests here).
        let ports = free_peer_ports(n).expect("free ports");
        let peers = ports
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u64 + 1, format!("127.0.0.1:{p}")))
            .collect();
        let mut g = Group {
            dir: dir.to_owned(),
            ports,
            peers,
            settings,
            masters: Vec::new(),
        };
        g.masters = (0..n).map(|i| Some(g.run(i))).collect();
        g
    }

    fn run(&self, i: usize) -> Running {
        let id = i as u64 + 1;
        start_master(
            id,
            &self.peers,
            &self.dir,
            listen(self.ports[i]),
            &self.settings,
        )
    }

    /// Master `i`, if it runs.
    pub fn master(&self, i: usize) -> Option<&Running> {
        self.masters[i].as_ref()
    }

    /// Stops master `i` and waits for it.
    pub async fn stop(&mut self, i: usize) {
        if let Some(m) = self.masters[i].take() {
            m.stop().await.ok();
        }
    }

    /// Starts master `i` again on its directory and port.
    pub fn restart(&mut self, i: usize) {
        self.masters[i] = Some(self.run(i));
    }

    pub fn len(&self) -> usize {
        self.ports.len()
    }

    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    /// A client of the whole group.
    pub fn client(&self) -> MasterClient {
        MasterClient::new((0..self.len()).map(|i| self.addr(i)).collect())
    }

    /// What master `i` itself holds (a standby answers from its replica).
    pub async fn view(&self, i: usize) -> Option<StatusView> {
        let mut c = MasterClient::new(vec![self.addr(i)]);
        c.deadline = Duration::from_secs(1);
        c.state_here().await.ok()
    }

    /// The index of the ALIVE leader, waiting for one.
    pub async fn leader(&self) -> usize {
        wait("an ALIVE leader", || async {
            for i in 0..self.len() {
                if let Some(s) = self.view(i).await {
                    if s.status == MasterRole::Alive && s.leader.as_deref() == Some(&self.addr(i)) {
                        return Some(i);
                    }
                }
            }
            None
        })
        .await
    }

    /// Stops every master.
    pub async fn stop_all(&mut self) {
        for i in 0..self.len() {
            self.stop(i).await;
        }
    }
}
