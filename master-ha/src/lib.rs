//! hearth-master: the master server.
//!
//! Owns: the gRPC `MasterService` (workers, apps, CLI), delivery of the leader's launches
//! and kills to workers (term-stamped, in order, retried), worker and client-app liveness
//! (leader-local "last heard" times fed to `hearth_core::liveness`), the recovery driver
//! (`BeginRecovery` when it takes over, `recovery::next_step` until ALIVE), the
//! scheduling loop (`hearth_core::schedule` → `Command::Place` → send the resulting
//! actions), persistence behind the [`Journal`] trait, and HTTP (`/`, `/json`, `/readyz`, the apps' JSON API `/v1/apps`).
//!
//! Must not: hold scheduling or state rules. They live in hearth-core; this crate reads
//! the clock, moves messages and bytes, and calls into the core.
//!
//! # Layout
//! - [`serve`] and [`serve_raft`] (here): a whole master, from listeners to shutdown.
//! - [`master`]: [`Master`], the single writer: `propose` applies a command, journals it,
//!   records who was heard from, and hands the resulting actions to [`dispatch`].
//! - [`node`]: [`Node`], what a master process answers with: the acting master, or a
//!   standby's replica and the leader's address.
//! - [`leadership`]: Raft mode's supervisor: a [`Master`] per term led, dropped when
//!   the term ends.
//! - [`journal`]: the [`Journal`] trait and its three kinds (none, filesystem, Raft).
//! - [`lease`]: whether a master may write and command workers now.
//! - [`dispatch`]: one ordered, retrying delivery queue per worker, released as commands
//!   become durable.
//! - [`raft`]: opening and bootstrapping the Raft group, the tonic network between
//!   masters, `hearth cluster` administration.
//! - [`service`]: a master's gRPC port (every service, and HTTP/1.1, behind the secret);
//!   [`grpc`]: the `MasterService` shim; [`http`]: status page, `/json`,
//!   `/readyz`; [`ui`]: the web UI; [`api`]: the apps' JSON API (`/v1/apps`) on both ports, over the same
//!   `MasterService` calls; [`loops`]: scheduling and timeouts.
//! - [`drill`]: the isolate drill's switch; [`ports`]: peer ports for local clusters.
//! - [`error`]: [`MasterError`], why a master could not start or stopped.

pub mod api;
pub mod dispatch;
pub mod drill;
pub mod error;
pub mod grpc;
pub mod http;
pub mod journal;
pub mod leadership;
pub mod lease;
pub mod loops;
pub mod master;
pub mod metrics;
pub mod node;
pub mod ports;
pub mod raft;
pub mod service;
pub mod ui;

pub use error::MasterError;
pub use journal::{FsJournal, Journal, JournalError, NoJournal};
pub use master::{Master, MasterConfig, ProposeError};
pub use node::Node;
pub use raft::RaftOptions;

use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::Instrument;

/// Runs a master over `restored` (state and journal position; empty in recovery mode
/// none) until `shutdown` resolves: gRPC on `grpc`, HTTP on `http`.
pub async fn serve(
    config: MasterConfig,
    journal: Box<dyn Journal>,
    restored: (hearth_core::ClusterState, u64),
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MasterError> {
    let span = tracing::info_span!("master", node_id = config.id);
    async move {
        let advertised = advertised(&config, &grpc)?;
        let master = Arc::new(Master::new(config, journal, restored, advertised));
        let stop_rx = stop_on(shutdown);
        master.take_over(&[]).await.map_err(MasterError::TakeOver)?;
        (master.announce(&Default::default()))
            .instrument(master.span().clone())
            .await;
        let loops = loops::spawn(master.clone(), stop_rx.clone());
        let node = Arc::new(Node::single(master.clone()));
        let http_task = tokio::spawn(
            http::serve(node.clone(), http, stopped(stop_rx.clone())).in_current_span(),
        );
        let grpc_result = service::serve(node, grpc, stopped(stop_rx)).await;
        for l in loops {
            l.abort();
        }
        http_task.abort();
        master.dispatcher().close_all();
        tracing::info!("master stopped");
        grpc_result
    }
    .instrument(span)
    .await
}

/// Runs a Raft master (`--recovery-mode raft`) until `shutdown` resolves: Raft and
/// `MasterService` on `grpc`, HTTP on `http`. It stands by until elected, leads while
/// it is, and stands by again when it is not.
pub async fn serve_raft(
    config: MasterConfig,
    opts: RaftOptions,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MasterError> {
    let span = tracing::info_span!("master", node_id = config.id);
    async move {
        let advertised = advertised(&config, &grpc)?;
        check_peer_address(&opts, &advertised)?;
        let stop_rx = stop_on(shutdown);
        let raft_threads = raft::runtime::RaftRuntime::start()?;
        let handle = raft::open(&opts, config.isolation.clone(), raft_threads.handle()).await?;
        let node = Arc::new(Node::raft(config, advertised, handle.clone()));
        let leader = tokio::spawn(
            leadership::lead(node.clone(), handle.clone(), stop_rx.clone()).in_current_span(),
        );
        let watcher = raft_threads
            .handle()
            .spawn(raft::elect::run(handle.clone(), stop_rx.clone()).in_current_span());
        let http_task = tokio::spawn(
            http::serve(node.clone(), http, stopped(stop_rx.clone())).in_current_span(),
        );
        let grpc_result = service::serve(node.clone(), grpc, stopped(stop_rx)).await;
        let _ = leader.await;
        watcher.abort();
        http_task.abort();
        if let Err(e) = handle.raft.shutdown().await {
            tracing::warn!(error = %e, "Raft did not shut down cleanly");
        }
        drop(raft_threads);
        tracing::info!("master stopped");
        grpc_result
    }
    .instrument(span)
    .await
}

/// `--peers` must give this master the address it is reached at.
fn check_peer_address(opts: &RaftOptions, advertised: &str) -> Result<(), MasterError> {
    if opts.peers.get(&opts.id).map(String::as_str) == Some(advertised) {
        return Ok(());
    }
    Err(MasterError::Config(format!(
        "--peers gives master {} the address {}, but it is reached at {advertised}; use the same host:port in --peers as in --host and --port (or --advertise)",
        opts.id,
        opts.peers.get(&opts.id).map_or("(none)", |a| a.as_str())
    )))
}

/// The address this master is reached at: `--advertise`, else host and listening port.
fn advertised(config: &MasterConfig, grpc: &TcpListener) -> Result<String, MasterError> {
    Ok(match &config.advertise {
        Some(a) => a.clone(),
        None => {
            let addr = grpc
                .local_addr()
                .map_err(|e| MasterError::io("reading the gRPC listener's address", e))?;
            format!("{}:{}", config.host, addr.port())
        }
    })
}

/// A stop flag set once `shutdown` resolves.
fn stop_on(
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::sync::watch::Receiver<bool> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    stop_rx
}

/// Resolves once the stop flag is set.
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}
