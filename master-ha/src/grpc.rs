//! The `MasterService` gRPC shim: decode the request into a core `Command` (hearth-proto),
//! propose it, encode the answer. Refusals become statuses in one function
//! (`hearth_proto::status::rejection_status`). The apps' JSON API ([`crate::api`]) calls
//! it too; [`crate::service`] serves it.

use crate::master::{now, Master};
use crate::node::Node;
use hearth_core::{AppState, Command, Outcome};
use hearth_proto::auth::Caller;
use hearth_proto::pb::master_service_server::MasterService;
use hearth_proto::pb::*;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The `MasterService` implementation; the JSON API ([`crate::api`]) calls it too.
pub(crate) struct Svc {
    pub(crate) node: Arc<Node>,
}

/// How often a client-mode submitter is asked to check in: a quarter of the app timeout,
/// at most a second. A new leader waits for every app to check in before it is ALIVE,
/// so this bounds a failover with client-mode apps running (an app heartbeat is cheap:
/// leader-local, never replicated).
pub fn advised_app_heartbeat(app_timeout: std::time::Duration) -> std::time::Duration {
    (app_timeout / 4).min(std::time::Duration::from_secs(1))
}

/// How often a worker is asked to heartbeat: a quarter of the worker timeout (as in
/// Spark), so that a worker is declared lost only after several missed heartbeats.
pub fn advised_worker_heartbeat(worker_timeout: std::time::Duration) -> std::time::Duration {
    (worker_timeout / 4).max(std::time::Duration::from_millis(1))
}

/// The longest a `WatchLeader` call waits.
const MAX_WATCH_MS: u32 = 60_000;

impl Svc {
    /// Who leads as this master knows it, and whether it acts as master itself.
    fn leadership(&self) -> WhoLeadsResponse {
        self.leadership_and_master().0
    }

    /// [`leadership`](Self::leadership), and the master acting in the term it names.
    fn leadership_and_master(&self) -> (WhoLeadsResponse, Option<Arc<Master>>) {
        let acting = self.node.current();
        let raft = self.node.raft_handle();
        let answer = WhoLeadsResponse {
            // The term it acts in, when it acts (Raft's may have moved on already).
            term: match (&acting, raft) {
                (Some(m), _) => m.term(),
                (None, Some(h)) => h.current_term(),
                (None, None) => 0,
            },
            leader: match raft {
                Some(h) => h.leader_addr(),
                None => Some(self.node.advertised().to_owned()),
            },
            leads: acting.is_some(),
            master_id: self.node.config.id,
            incarnation: crate::master::incarnation(),
            registered: false,
            heartbeat_interval_ms: 0,
        };
        (answer, acting)
    }

    pub(crate) fn new(node: Arc<Node>) -> Self {
        Svc { node }
    }

    /// Proposes `cmd` through `master`, the acting master asked once per request: every
    /// answer about the command comes from the master that committed it.
    async fn propose(&self, master: &Master, cmd: Command) -> Result<hearth_core::Applied, Status> {
        master
            .propose(cmd)
            .await
            .map_err(|e| self.node.propose_status(e))
    }

    async fn ack(&self, cmd: Command) -> Result<Response<Ack>, Status> {
        self.ack_as(None, cmd).await
    }

    /// [`ack`](Self::ack) of a command from `caller`: a submit token may act only on the
    /// apps it submitted ([`owns`]).
    async fn ack_as(&self, caller: Option<Caller>, cmd: Command) -> Result<Response<Ack>, Status> {
        let master = self.node.acting()?;
        if let Some(token) = caller.and_then(|c| c.token) {
            owns(&token, master.owner_of(&cmd).await)?;
        }
        let applied = self.propose(&master, cmd).await?;
        Ok(Response::new(Ack {
            unchanged: applied.outcome == Outcome::Unchanged,
        }))
    }
}

/// The rule for a submit token `token` acting on an app submitted by `owner` (see
/// [`Master::owner_of`]): only its own apps (and commands about no known app, which
/// their own checks answer).
pub(crate) fn owns(token: &str, owner: Option<Option<String>>) -> Result<(), Status> {
    match owner {
        None => Ok(()),
        Some(Some(user)) if user == token => Ok(()),
        Some(other) => Err(Status::permission_denied(format!(
            "the submit token {token} may act only on the apps it submitted; this one was submitted by {}",
            other.as_deref().unwrap_or("someone unnamed")
        ))),
    }
}

fn caller<T>(req: &Request<T>) -> Option<Caller> {
    req.extensions().get::<Caller>().cloned()
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
        let master = self.node.acting()?;
        let applied = self.propose(&master, cmd).await?;
        let duplicate = matches!(
            applied.outcome,
            Outcome::WorkerRegistered { duplicate: true }
        );
        // Every worker registers again after a failover: thousands of lines an operator
        // does not need (the recovery's own lines count them), so those are DEBUG.
        if master.recovering() {
            tracing::debug!(parent: master.span(), %worker, duplicate, kills = applied.actions.len(), "worker registered");
        } else {
            tracing::info!(parent: master.span(), %worker, duplicate, kills = applied.actions.len(), "worker registered");
        }
        Ok(Response::new(RegisterWorkerResponse {
            duplicate,
            term: master.term(),
            master_id: master.config.id,
            heartbeat_interval_ms: advised_worker_heartbeat(master.config.worker_timeout)
                .as_millis() as u64,
            incarnation: crate::master::incarnation(),
        }))
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let worker = req.into_inner().into_core()?;
        let live = self.node.acting()?.worker_heartbeat(&worker).await;
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
        // A submit token's holder is the app's user, whatever the request says.
        let token = req
            .extensions()
            .get::<hearth_proto::auth::Caller>()
            .and_then(|c| c.token.clone());
        let mut r = req.into_inner();
        if let (Some(name), Some(app)) = (token, r.app.as_mut()) {
            app.user = name;
        }
        let cmd = r.into_command(now())?;
        let master = self.node.acting()?;
        let applied = self.propose(&master, cmd).await?;
        match applied.outcome {
            Outcome::AppRegistered { app, driver } => {
                tracing::info!(parent: master.span(), %app, driver = ?driver, "app registered");
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
        let exists = self
            .node
            .acting()?
            .app_heartbeat(&app)
            .await
            .map_err(|e| self.node.propose_status(e))?;
        Ok(Response::new(AppHeartbeatResponse { exists }))
    }

    async fn finish_app(&self, req: Request<FinishAppRequest>) -> Result<Response<Ack>, Status> {
        let who = caller(&req);
        self.ack_as(who, req.into_inner().into_command(now())?)
            .await
    }

    async fn kill_app(&self, req: Request<KillAppRequest>) -> Result<Response<Ack>, Status> {
        let who = caller(&req);
        let app = req.into_inner().into_core()?;
        self.ack_as(
            who,
            Command::FinishApp {
                app,
                state: AppState::Killed,
                reason: "killed by request".into(),
                at: now(),
            },
        )
        .await
    }

    async fn scale_app(&self, req: Request<ScaleAppRequest>) -> Result<Response<Ack>, Status> {
        let who = caller(&req);
        self.ack_as(who, req.into_inner().into_command()?).await
    }

    async fn set_executor_limit(
        &self,
        req: Request<SetExecutorLimitRequest>,
    ) -> Result<Response<Ack>, Status> {
        let who = caller(&req);
        self.ack_as(who, req.into_inner().into_command()?).await
    }

    async fn kill_executors(
        &self,
        req: Request<KillExecutorsRequest>,
    ) -> Result<Response<Ack>, Status> {
        let who = caller(&req);
        self.ack_as(who, req.into_inner().into_command()?).await
    }

    async fn kill_driver(&self, req: Request<KillDriverRequest>) -> Result<Response<Ack>, Status> {
        let who = caller(&req);
        self.ack_as(who, req.into_inner().into_command(now())?)
            .await
    }

    async fn decommission_worker(
        &self,
        req: Request<DecommissionWorkerRequest>,
    ) -> Result<Response<Ack>, Status> {
        self.ack(req.into_inner().into_command()?).await
    }

    /// The deadline is this master's wall clock now plus the grace: `apply` only
    /// compares it, so every replica holds the same one.
    async fn drain_worker(
        &self,
        req: Request<DrainWorkerRequest>,
    ) -> Result<Response<Ack>, Status> {
        self.ack(req.into_inner().into_command(now())?).await
    }

    async fn undrain_worker(
        &self,
        req: Request<UndrainWorkerRequest>,
    ) -> Result<Response<Ack>, Status> {
        self.ack(req.into_inner().into_command()?).await
    }

    async fn who_leads(
        &self,
        _req: Request<WhoLeadsRequest>,
    ) -> Result<Response<WhoLeadsResponse>, Status> {
        self.node.config.isolation.refuse()?;
        Ok(Response::new(self.leadership()))
    }

    async fn watch_leader(
        &self,
        req: Request<WatchLeaderRequest>,
    ) -> Result<Response<WhoLeadsResponse>, Status> {
        self.node.config.isolation.refuse()?;
        let req = req.into_inner();
        let wait = std::time::Duration::from_millis(u64::from(req.wait_ms.min(MAX_WATCH_MS)));
        // An offer that does not decode, or names another worker, is no offer: the
        // worker registers the usual way.
        let offer = (req.registration)
            .and_then(|r| hearth_core::WorkerRegistration::try_from(r).ok())
            .filter(|r| r.identity.id.as_str() == req.worker_id);
        let _watching = self.node.watching(&req.worker_id, offer.clone());
        let mut changes = self.node.acting_changes();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            changes.borrow_and_update();
            let (mut now, master) = self.leadership_and_master();
            if now.leads
                && hearth_core::is_new_leader(
                    now.term,
                    now.incarnation,
                    req.after_term,
                    req.after_incarnation,
                )
            {
                if let (Some(m), Some(offer)) = (master, &offer) {
                    if m.adopted(offer) {
                        now.registered = true;
                        now.heartbeat_interval_ms =
                            advised_worker_heartbeat(m.config.worker_timeout).as_millis() as u64;
                    }
                }
                return Ok(Response::new(now));
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // Waited long enough, or this process is stopping: what it knows now.
                _ => return Ok(Response::new(self.leadership())),
            }
        }
    }

    async fn get_state(
        &self,
        req: Request<GetStateRequest>,
    ) -> Result<Response<ClusterStatus>, Status> {
        // Linearizable on the leader (a quorum confirms it still leads, so the answer
        // shows every write acknowledged before); a standby answers from its replica
        // with status STANDBY and the leader's address.
        // Filtered and paged when the request asks (hearth-core `listing`); an unknown
        // state is INVALID_ARGUMENT.
        self.node.config.isolation.refuse()?;
        let q = hearth_proto::convert::view::list_query(req.get_ref())
            .map_err(Status::invalid_argument)?;
        if self.node.current().is_some() {
            self.node.read_barrier().await?;
        }
        let status = self
            .node
            .render(move |view| {
                if q.is_given() {
                    ClusterStatus::from(&view.paged(&q))
                } else {
                    ClusterStatus::from(view)
                }
            })
            .await;
        Ok(Response::new(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submit_token_acts_only_on_its_own_apps() {
        assert!(owns("alice", Some(Some("alice".into()))).is_ok());
        assert!(
            owns("alice", None).is_ok(),
            "no app: the command's own checks answer"
        );
        let other = owns("alice", Some(Some("bob".into()))).unwrap_err();
        assert_eq!(other.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            other.message(),
            "the submit token alice may act only on the apps it submitted; this one was submitted by bob"
        );
        let unnamed = owns("alice", Some(None)).unwrap_err();
        assert!(unnamed.message().ends_with("submitted by someone unnamed"));
    }
}
