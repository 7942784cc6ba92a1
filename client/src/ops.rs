//! Typed requests on top of [`MasterClient`]: what the CLI, a client-mode driver and the
//! benchmarks send. Each says whether it may be retried after a lost answer.

use crate::masters::{ClientError, Idempotency, MasterClient};
use hearth_core::listing::ListQuery;
use hearth_core::{AppDescription, AppId, AppState, DriverDescription, DriverId, WorkerId};
use hearth_proto::convert::StatusView;
use hearth_proto::pb;

use Idempotency::{AtMostOnce, Idempotent};

impl MasterClient {
    /// Registers an app: client mode with `driver_url`, cluster mode with `driver`.
    /// Not retried once it may have reached the leader (a retry could register twice).
    pub async fn register_app(
        &self,
        app: &AppDescription,
        driver: Option<&DriverDescription>,
        driver_url: Option<&str>,
    ) -> Result<(AppId, Option<DriverId>), ClientError> {
        let (app, driver, _) = self.register_app_advised(app, driver, driver_url).await?;
        Ok((app, driver))
    }

    /// [`register_app`](Self::register_app), also returning how often the master wants
    /// a client-mode app's heartbeat (`None` if it does not say).
    pub async fn register_app_advised(
        &self,
        app: &AppDescription,
        driver: Option<&DriverDescription>,
        driver_url: Option<&str>,
    ) -> Result<(AppId, Option<DriverId>, Option<std::time::Duration>), ClientError> {
        let req = pb::RegisterAppRequest {
            app: Some(app.into()),
            driver: driver.map(Into::into),
            driver_url: driver_url.map(str::to_owned),
        };
        let resp = self
            .call("app registration", AtMostOnce, |mut c| {
                let req = req.clone();
                async move { c.register_app(req).await }
            })
            .await?;
        let every = (resp.heartbeat_interval_ms > 0)
            .then(|| std::time::Duration::from_millis(resp.heartbeat_interval_ms));
        let (app, driver) = resp.into_core()?;
        Ok((app, driver, every))
    }

    /// The cluster's status as the leader sees it: a standby's answer names the leader,
    /// which is then asked (a leader's answer is linearizable: it shows every write
    /// acknowledged before it was asked).
    pub async fn state(&self) -> Result<StatusView, ClientError> {
        self.state_listed(&ListQuery::default()).await
    }

    /// [`state`](Self::state) filtered and paged on the master by `q` (hearth-core
    /// `listing`): only the entries it shows cross the wire, with the totals they were
    /// cut from (`StatusView::totals`) when `q` asks for anything.
    pub async fn state_listed(&self, q: &ListQuery) -> Result<StatusView, ClientError> {
        let req = pb::GetStateRequest::from(q);
        let mut snap = self.state_here_with(&req).await?;
        for _ in 0..3 {
            match (&snap.status, &snap.leader) {
                (hearth_core::MasterRole::Standby, Some(leader))
                    if self.preferred().as_deref() != Some(leader.as_str()) =>
                {
                    self.prefer(leader.clone());
                    snap = self.state_here_with(&req).await?;
                }
                _ => break,
            }
        }
        Ok(snap)
    }

    /// The status from a leader only, so it shows every write acknowledged before the
    /// call (also one whose answer was lost). While only standbys answer (an election is
    /// under way), asks again until [`deadline`](MasterClient::deadline). What decides
    /// "was it registered?" must read this: a standby's replica may not have applied a
    /// committed write yet, and the write it lacks would then be made twice.
    pub async fn leader_state(&self) -> Result<StatusView, ClientError> {
        let start = tokio::time::Instant::now();
        let mut backoff = std::time::Duration::from_millis(25);
        loop {
            let s = self.state().await?;
            if s.status != hearth_core::MasterRole::Standby {
                return Ok(s);
            }
            if start.elapsed() >= self.deadline {
                return Err(ClientError::NoLeader {
                    waited: start.elapsed(),
                    tried: self.masters().join(", "),
                    last: format!(
                        "only standbys answered (last named leader: {})",
                        s.leader.as_deref().unwrap_or("none")
                    ),
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_millis(100));
        }
    }

    /// The status as the first master that answers sees it (a standby answers from its
    /// replica, with status STANDBY).
    pub async fn state_here(&self) -> Result<StatusView, ClientError> {
        self.state_here_with(&pb::GetStateRequest::default()).await
    }

    async fn state_here_with(&self, req: &pb::GetStateRequest) -> Result<StatusView, ClientError> {
        let resp = self
            .call("status", Idempotent, |mut c| {
                let req = req.clone();
                async move { c.get_state(req).await }
            })
            .await?;
        Ok(resp.try_into()?)
    }

    /// Keeps a client-mode app alive; `false` when the master no longer has it active.
    pub async fn app_heartbeat(&self, app: &AppId) -> Result<bool, ClientError> {
        let req = pb::AppHeartbeatRequest {
            app_id: app.0.clone(),
        };
        let resp = self
            .call("app heartbeat", Idempotent, |mut c| {
                let req = req.clone();
                async move { c.app_heartbeat(req).await }
            })
            .await?;
        Ok(resp.exists)
    }

    /// Ends an app in `state` (FINISHED, FAILED or KILLED). `true` if it changed anything.
    pub async fn finish_app(
        &self,
        app: &AppId,
        state: AppState,
        reason: &str,
    ) -> Result<bool, ClientError> {
        let req = pb::FinishAppRequest {
            app_id: app.0.clone(),
            state: state.as_str().to_owned(),
            reason: reason.to_owned(),
        };
        let ack = self
            .call("finishing the app", Idempotent, |mut c| {
                let req = req.clone();
                async move { c.finish_app(req).await }
            })
            .await?;
        Ok(!ack.unchanged)
    }

    /// Kills an app: its executors and, in cluster mode, its driver.
    pub async fn kill_app(&self, app: &AppId) -> Result<bool, ClientError> {
        let req = pb::KillAppRequest {
            app_id: app.0.clone(),
        };
        let ack = self
            .call("killing the app", Idempotent, |mut c| {
                let req = req.clone();
                async move { c.kill_app(req).await }
            })
            .await?;
        Ok(!ack.unchanged)
    }

    /// Sets an app's executor target.
    pub async fn scale_app(&self, app: &AppId, executors: u32) -> Result<(), ClientError> {
        let req = pb::ScaleAppRequest {
            app_id: app.0.clone(),
            target_executors: executors,
        };
        self.call("scaling the app", Idempotent, |mut c| {
            let req = req.clone();
            async move { c.scale_app(req).await }
        })
        .await?;
        Ok(())
    }

    /// Kills a driver (and so its app).
    pub async fn kill_driver(&self, driver: &DriverId) -> Result<bool, ClientError> {
        let req = pb::KillDriverRequest {
            driver_id: driver.0.clone(),
        };
        let ack = self
            .call("killing the driver", Idempotent, |mut c| {
                let req = req.clone();
                async move { c.kill_driver(req).await }
            })
            .await?;
        Ok(!ack.unchanged)
    }

    /// Stops placing anything new on a worker.
    pub async fn decommission_worker(&self, worker: &WorkerId) -> Result<bool, ClientError> {
        let req = pb::DecommissionWorkerRequest {
            worker_id: worker.0.clone(),
        };
        let ack = self
            .call("decommissioning the worker", Idempotent, |mut c| {
                let req = req.clone();
                async move { c.decommission_worker(req).await }
            })
            .await?;
        Ok(!ack.unchanged)
    }

    /// Drains a worker: nothing new is placed there, and what still runs there `grace`
    /// after the leader accepts this is killed and placed elsewhere. `false`: it was
    /// already draining with that very deadline.
    pub async fn drain_worker(
        &self,
        worker: &WorkerId,
        grace: std::time::Duration,
    ) -> Result<bool, ClientError> {
        let req = pb::DrainWorkerRequest {
            worker_id: worker.0.clone(),
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
        };
        // A retry sets a slightly later deadline: harmless.
        let ack = self
            .call("draining the worker", Idempotent, |mut c| {
                let req = req.clone();
                async move { c.drain_worker(req).await }
            })
            .await?;
        Ok(!ack.unchanged)
    }

    /// A DRAINING or DECOMMISSIONED worker takes placements again. `false`: it already did.
    pub async fn undrain_worker(&self, worker: &WorkerId) -> Result<bool, ClientError> {
        let req = pb::UndrainWorkerRequest {
            worker_id: worker.0.clone(),
        };
        let ack = self
            .call("undraining the worker", Idempotent, |mut c| {
                let req = req.clone();
                async move { c.undrain_worker(req).await }
            })
            .await?;
        Ok(!ack.unchanged)
    }
}
