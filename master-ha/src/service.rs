//! The `MasterService` gRPC shim: decode the request into a core `Command` (hearth-proto),
//! propose it, encode the answer. Refusals become statuses in one function
//! (`hearth_proto::status::rejection_status`).

use crate::acting::Node;
use crate::node::now;
use hearth_core::{AppState, Command, Outcome};
use hearth_proto::pb::master_service_server::{MasterService, MasterServiceServer};
use hearth_proto::pb::*;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// Messages up to this size are accepted (a whole-cluster `GetState` can be large).
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Serves `MasterService` (and, in Raft mode, `RaftService` and `RaftAdmin`) on `listener`.
pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let raft = node
        .raft_handle()
        .map(|h| crate::raft::net::RaftServer::service(h.raft.clone(), h.heard.clone()));
    let admin = node
        .raft_handle()
        .map(|h| crate::raft::admin::AdminServer::service(h.clone()));
    let extra = node.config.extra_grpc.clone();
    let svc = MasterServiceServer::new(Svc { node })
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let mut server = tonic::transport::Server::builder();
    let router = match extra {
        Some(extra) => server.add_routes(extra.add_service(svc)),
        None => server.add_service(svc),
    };
    router
        .add_optional_service(raft)
        .add_optional_service(admin)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}

struct Svc {
    node: Arc<Node>,
}

/// How often a client-mode submitter is asked to check in: a quarter of the app timeout,
/// at most a second. A new leader waits for every app to check in before it is ALIVE,
/// so this bounds a failover with client-mode apps running (an app heartbeat is cheap:
/// leader-local, never replicated).
pub fn advised_app_heartbeat(app_timeout: std::time::Duration) -> std::time::Duration {
    (app_timeout / 4).min(std::time::Duration::from_secs(1))
}

impl Svc {
    /// Proposes `cmd` through the acting master.
    async fn propose(&self, cmd: Command) -> Result<hearth_core::Applied, Status> {
        let master = self.node.acting()?;
        master
            .propose(cmd)
            .await
            .map_err(|e| self.node.propose_status(e))
    }

    async fn ack(&self, cmd: Command) -> Result<Response<Ack>, Status> {
        let applied = self.propose(cmd).await?;
        Ok(Response::new(Ack {
            unchanged: applied.outcome == Outcome::Unchanged,
        }))
    }
}

#[tonic::async_trait]
impl MasterService for Svc {
    async fn register_worker(
        &self,
        req: Request<RegisterWorkerRequest>,
    ) -> Result<Response<RegisterWorkerResponse>, Status> {
        let cmd = req.into_inner().into_command(now())?;
        let worker = match &cmd {
            Command::RegisterWorker { reg, .. } => reg.identity.id.clone(),
            _ => unreachable!("RegisterWorkerRequest decodes to RegisterWorker"),
        };
        let applied = self.propose(cmd).await?;
        let master = self.node.acting()?;
        let duplicate = matches!(
            applied.outcome,
            Outcome::WorkerRegistered { duplicate: true }
        );
        master.heard_worker(&worker).await;
        tracing::info!(%worker, duplicate, kills = applied.actions.len(), "worker registered");
        Ok(Response::new(RegisterWorkerResponse {
            duplicate,
            term: master.term(),
            master_id: master.config.id,
        }))
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let worker = req.into_inner().into_core()?;
        let live = self.node.acting()?.heard_worker(&worker).await;
        Ok(Response::new(HeartbeatResponse { reregister: !live }))
    }

    async fn executor_state_changed(
        &self,
        req: Request<ExecutorStateChangedRequest>,
    ) -> Result<Response<Ack>, Status> {
        self.ack(req.into_inner().into_command(now())?).await
    }

    async fn driver_state_changed(
        &self,
        req: Request<DriverStateChangedRequest>,
    ) -> Result<Response<Ack>, Status> {
        self.ack(req.into_inner().into_command(now())?).await
    }

    async fn register_app(
        &self,
        req: Request<RegisterAppRequest>,
    ) -> Result<Response<RegisterAppResponse>, Status> {
        let cmd = req.into_inner().into_command(now())?;
        let applied = self.propose(cmd).await?;
        match applied.outcome {
            Outcome::AppRegistered { app, driver } => {
                if driver.is_none() {
                    self.node.acting()?.heard_app(&app).await;
                }
                tracing::info!(%app, driver = ?driver, "app registered");
                let mut resp = RegisterAppResponse::new(&app, driver.as_ref());
                resp.heartbeat_interval_ms =
                    advised_app_heartbeat(self.node.config.app_timeout).as_millis() as u64;
                Ok(Response::new(resp))
            }
            other => Err(Status::internal(format!(
                "registering an app gave {other:?}"
            ))),
        }
    }

    async fn app_heartbeat(
        &self,
        req: Request<AppHeartbeatRequest>,
    ) -> Result<Response<AppHeartbeatResponse>, Status> {
        let app = req.into_inner().into_core()?;
        let master = self.node.acting()?;
        let (exists, unknown) = {
            let snapshot_state = master.app_state(&app).await;
            (
                snapshot_state.is_some(),
                snapshot_state == Some(AppState::Unknown),
            )
        };
        if exists {
            master.heard_app(&app).await;
        }
        if unknown {
            self.propose(Command::AppReconnected { app: app.clone() })
                .await?;
            tracing::info!(%app, "client app checked in after the master changed");
        }
        Ok(Response::new(AppHeartbeatResponse { exists }))
    }

    async fn finish_app(&self, req: Request<FinishAppRequest>) -> Result<Response<Ack>, Status> {
        self.ack(req.into_inner().into_command(now())?).await
    }

    async fn kill_app(&self, req: Request<KillAppRequest>) -> Result<Response<Ack>, Status> {
        let app = req.into_inner().into_core()?;
        self.ack(Command::FinishApp {
            app,
            state: AppState::Killed,
            reason: "killed by request".into(),
            at: now(),
        })
        .await
    }

    async fn scale_app(&self, req: Request<ScaleAppRequest>) -> Result<Response<Ack>, Status> {
        self.ack(req.into_inner().into_command()?).await
    }

    async fn kill_driver(&self, req: Request<KillDriverRequest>) -> Result<Response<Ack>, Status> {
        self.ack(req.into_inner().into_command(now())?).await
    }

    async fn decommission_worker(
        &self,
        req: Request<DecommissionWorkerRequest>,
    ) -> Result<Response<Ack>, Status> {
        self.ack(req.into_inner().into_command()?).await
    }

    async fn get_state(
        &self,
        _req: Request<GetStateRequest>,
    ) -> Result<Response<ClusterStatus>, Status> {
        // Linearizable on the leader (a quorum confirms it still leads, so the answer
        // shows every write acknowledged before); a standby answers from its replica
        // with status STANDBY and the leader's address.
        crate::drill::refuse_if_isolated()?;
        if self.node.current().is_some() {
            self.node.read_barrier().await?;
        }
        let snapshot = self.node.snapshot().await;
        Ok(Response::new((&snapshot).into()))
    }
}
