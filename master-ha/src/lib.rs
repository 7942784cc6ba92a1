//! hearth-master: the master server.
//!
//! Owns: the gRPC `MasterService` (workers, apps, CLI), delivery of the leader's launches
//! and kills to workers (term-stamped, in order, retried), worker and client-app liveness
//! (leader-local "last heard" times fed to `hearth_core::liveness`), the recovery driver
//! (`BeginRecovery` when it takes over, `recovery::next_step` until ALIVE), the
//! scheduling loop (`hearth_core::schedule` → `Command::Place` → send the resulting
//! actions), persistence behind the [`Journal`] trait, and HTTP (`/`, `/json`, `/readyz`).
//!
//! Must not: hold scheduling or state rules. They live in hearth-core; this crate reads
//! the clock, moves messages and bytes, and calls into the core.
//!
//! # Layout
//! - [`node`]: [`Master`], the single writer: `propose` applies a command, journals it,
//!   and hands the resulting actions to [`dispatch`].
//! - [`dispatch`]: one ordered, retrying delivery queue per worker, released as commands
//!   become durable.
//! - [`fs`]: the FILESYSTEM recovery mode's journal (hearth-recovery) as a [`Journal`].
//! - [`raft`]: the Raft recovery mode: the store, the tonic network between masters, the
//!   leader's journal (proposals batched into Raft entries) and the leadership
//!   supervisor that makes a [`Master`] per term led.
//! - [`acting`]: [`Node`], what a master process answers with: the acting master, or a
//!   standby's replica and the leader's address.
//! - [`service`]: the `MasterService` gRPC shim.
//! - [`loops`]: scheduling, liveness and recovery loops.
//! - [`http`]: status page, `/json`, `/readyz`.

pub mod acting;
pub mod dispatch;
pub mod drill;
pub mod fs;
pub mod http;
pub mod loops;
pub mod node;
pub mod raft;
pub mod service;

pub use acting::Node;
pub use fs::FsJournal;
pub use node::{Journal, Master, MasterConfig, NoJournal};
pub use raft::RaftOptions;

use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Runs a master over `restored` (state and journal position; empty in recovery mode
/// none) until `shutdown` resolves: gRPC on `grpc`, HTTP on `http`.
pub async fn run(
    config: MasterConfig,
    journal: Box<dyn Journal>,
    restored: (hearth_core::ClusterState, u64),
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let advertised = advertised(&config, &grpc)?;
    let master = Arc::new(Master::new(config, journal, restored, advertised));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    if let Err(e) = master.take_over().await {
        anyhow::bail!("taking over: {e}");
    }
    master.announce().await;
    let loops = loops::spawn(master.clone(), stop_rx.clone());
    let node = Arc::new(Node::single(master.clone()));
    let http_task = tokio::spawn(http::serve(node.clone(), http, stopped(stop_rx.clone())));
    let grpc_result = service::serve(node, grpc, stopped(stop_rx)).await;
    for l in loops {
        l.abort();
    }
    http_task.abort();
    master.dispatcher().close_all();
    tracing::info!("master stopped");
    grpc_result
}

/// Runs a Raft master (`--recovery-mode raft`) until `shutdown` resolves: Raft and
/// `MasterService` on `grpc`, HTTP on `http`. It stands by until elected, leads while
/// it is, and stands by again when it is not.
pub async fn run_raft(
    config: MasterConfig,
    opts: RaftOptions,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let advertised = advertised(&config, &grpc)?;
    if opts.peers.get(&opts.id) != Some(&advertised) {
        anyhow::bail!(
            "--peers gives master {} the address {}, but it is reached at {advertised}; use the same host:port in --peers as in --host and --port (or --advertise)",
            opts.id,
            opts.peers
                .get(&opts.id)
                .map_or("(none)", |a| a.as_str())
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let handle = raft::open(&opts).await?;
    let node = Arc::new(Node::raft(config, advertised, handle.clone()));
    let leader = tokio::spawn(raft::lead(node.clone(), handle.clone(), stop_rx.clone()));
    let watcher = tokio::spawn(raft::watch_leader(handle.clone(), stop_rx.clone()));
    let http_task = tokio::spawn(http::serve(node.clone(), http, stopped(stop_rx.clone())));
    let grpc_result = service::serve(node.clone(), grpc, stopped(stop_rx)).await;
    let _ = leader.await;
    watcher.abort();
    http_task.abort();
    if let Err(e) = handle.raft.shutdown().await {
        tracing::warn!(error = %e, "Raft did not shut down cleanly");
    }
    tracing::info!("master stopped");
    grpc_result
}

/// The address this master is reached at: `--advertise`, else host and listening port.
fn advertised(config: &MasterConfig, grpc: &TcpListener) -> anyhow::Result<String> {
    Ok(match &config.advertise {
        Some(a) => a.clone(),
        None => format!("{}:{}", config.host, grpc.local_addr()?.port()),
    })
}

/// Resolves once the stop flag is set.
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}
