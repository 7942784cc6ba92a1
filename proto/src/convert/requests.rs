//! `MasterService` requests: the worker's registration both ways, and the requests that
//! become a core [`Command`] once the master adds the time (`at`, read at the edge).
//!
//! What the master does with a request beyond decoding it (answering a heartbeat,
//! reconnecting an app, killing an app) is the master's and core's business, not this
//! module's: requests that carry only an id decode to that id with `into_core`.

use super::{encode_owned, id, port, required, state, ConvertError};
use crate::pb;
use hearth_core::{
    AppId, Command, DriverId, Millis, ReportedExecutor, WorkerId, WorkerIdentity,
    WorkerRegistration,
};

impl From<&ReportedExecutor> for pb::ReportedExecutor {
    fn from(v: &ReportedExecutor) -> Self {
        pb::ReportedExecutor {
            app_id: v.app.0.clone(),
            executor_id: v.executor,
            state: v.state.as_str().to_owned(),
        }
    }
}

impl TryFrom<pb::ReportedExecutor> for ReportedExecutor {
    type Error = ConvertError;
    fn try_from(v: pb::ReportedExecutor) -> Result<Self, ConvertError> {
        Ok(ReportedExecutor {
            app: id("ReportedExecutor.app_id", v.app_id)?,
            executor: v.executor_id,
            state: state("ReportedExecutor.state", &v.state)?,
        })
    }
}

impl From<&WorkerRegistration> for pb::RegisterWorkerRequest {
    fn from(v: &WorkerRegistration) -> Self {
        let me = &v.identity;
        pb::RegisterWorkerRequest {
            worker_id: me.id.0.clone(),
            host: me.host.clone(),
            port: me.port.into(),
            http_port: me.http_port.into(),
            cores: me.cores,
            memory_mb: me.memory_mb,
            executors: v.executors.iter().map(Into::into).collect(),
            driver_ids: v.drivers.iter().map(|d| d.0.clone()).collect(),
        }
    }
}

impl TryFrom<pb::RegisterWorkerRequest> for WorkerRegistration {
    type Error = ConvertError;
    fn try_from(v: pb::RegisterWorkerRequest) -> Result<Self, ConvertError> {
        Ok(WorkerRegistration {
            identity: WorkerIdentity {
                id: id("RegisterWorkerRequest.worker_id", v.worker_id)?,
                host: v.host,
                port: port("RegisterWorkerRequest.port", v.port)?,
                http_port: port("RegisterWorkerRequest.http_port", v.http_port)?,
                cores: v.cores,
                memory_mb: v.memory_mb,
            },
            executors: v
                .executors
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            drivers: v
                .driver_ids
                .into_iter()
                .map(|d| id("RegisterWorkerRequest.driver_ids", d))
                .collect::<Result<_, _>>()?,
        })
    }
}

encode_owned!(
    ReportedExecutor => pb::ReportedExecutor,
    WorkerRegistration => pb::RegisterWorkerRequest,
);

impl pb::RegisterWorkerRequest {
    /// [`Command::RegisterWorker`] at `at`.
    pub fn into_command(self, at: Millis) -> Result<Command, ConvertError> {
        Ok(Command::RegisterWorker {
            reg: self.try_into()?,
            at,
        })
    }
}

impl pb::ExecutorStateChangedRequest {
    /// [`Command::ExecutorStateChanged`] at `at`.
    pub fn into_command(self, at: Millis) -> Result<Command, ConvertError> {
        Ok(Command::ExecutorStateChanged {
            worker: id("ExecutorStateChangedRequest.worker_id", self.worker_id)?,
            app: id("ExecutorStateChangedRequest.app_id", self.app_id)?,
            executor: self.executor_id,
            state: state("ExecutorStateChangedRequest.state", &self.state)?,
            exit_code: self.exit_code,
            message: self.message,
            at,
        })
    }
}

impl pb::DriverStateChangedRequest {
    /// [`Command::DriverStateChanged`] at `at`.
    pub fn into_command(self, at: Millis) -> Result<Command, ConvertError> {
        Ok(Command::DriverStateChanged {
            worker: id("DriverStateChangedRequest.worker_id", self.worker_id)?,
            driver: id("DriverStateChangedRequest.driver_id", self.driver_id)?,
            state: state("DriverStateChangedRequest.state", &self.state)?,
            driver_url: self.driver_url,
            exit_code: self.exit_code,
            message: self.message,
            at,
        })
    }
}

impl pb::RegisterAppRequest {
    /// [`Command::RegisterApp`] at `at`.
    pub fn into_command(self, at: Millis) -> Result<Command, ConvertError> {
        Ok(Command::RegisterApp {
            desc: required("RegisterAppRequest.app", self.app)?.try_into()?,
            driver: self.driver.map(TryInto::try_into).transpose()?,
            driver_url: self.driver_url,
            at,
        })
    }
}

impl pb::FinishAppRequest {
    /// [`Command::FinishApp`] at `at`.
    pub fn into_command(self, at: Millis) -> Result<Command, ConvertError> {
        Ok(Command::FinishApp {
            app: id("FinishAppRequest.app_id", self.app_id)?,
            state: state("FinishAppRequest.state", &self.state)?,
            reason: self.reason,
            at,
        })
    }
}

impl pb::ScaleAppRequest {
    /// [`Command::SetExecutorTarget`].
    pub fn into_command(self) -> Result<Command, ConvertError> {
        Ok(Command::SetExecutorTarget {
            app: id("ScaleAppRequest.app_id", self.app_id)?,
            target: self.target_executors,
        })
    }
}

impl pb::SetExecutorLimitRequest {
    /// [`Command::SetExecutorLimit`].
    pub fn into_command(self) -> Result<Command, ConvertError> {
        Ok(Command::SetExecutorLimit {
            app: id("SetExecutorLimitRequest.app_id", self.app_id)?,
            limit: self.limit,
        })
    }
}

impl pb::KillExecutorsRequest {
    /// [`Command::KillExecutors`].
    pub fn into_command(self) -> Result<Command, ConvertError> {
        Ok(Command::KillExecutors {
            app: id("KillExecutorsRequest.app_id", self.app_id)?,
            executors: self.executor_ids,
        })
    }
}

impl pb::KillDriverRequest {
    /// [`Command::KillDriver`] at `at`.
    pub fn into_command(self, at: Millis) -> Result<Command, ConvertError> {
        Ok(Command::KillDriver {
            driver: id("KillDriverRequest.driver_id", self.driver_id)?,
            at,
        })
    }
}

impl pb::DecommissionWorkerRequest {
    /// [`Command::DecommissionWorker`].
    pub fn into_command(self) -> Result<Command, ConvertError> {
        Ok(Command::DecommissionWorker {
            worker: id("DecommissionWorkerRequest.worker_id", self.worker_id)?,
        })
    }
}

impl pb::DrainWorkerRequest {
    /// [`Command::DrainWorker`] with its deadline `grace_ms` after `at` (the leader's wall
    /// clock when it accepts the request).
    pub fn into_command(self, at: Millis) -> Result<Command, ConvertError> {
        Ok(Command::DrainWorker {
            worker: id("DrainWorkerRequest.worker_id", self.worker_id)?,
            deadline: at.plus(self.grace_ms),
        })
    }
}

impl pb::UndrainWorkerRequest {
    /// [`Command::UndrainWorker`].
    pub fn into_command(self) -> Result<Command, ConvertError> {
        Ok(Command::UndrainWorker {
            worker: id("UndrainWorkerRequest.worker_id", self.worker_id)?,
        })
    }
}

impl pb::HeartbeatRequest {
    /// The worker that beats.
    pub fn into_core(self) -> Result<WorkerId, ConvertError> {
        id("HeartbeatRequest.worker_id", self.worker_id)
    }
}

impl pb::AppHeartbeatRequest {
    /// The app whose submitter is alive.
    pub fn into_core(self) -> Result<AppId, ConvertError> {
        id("AppHeartbeatRequest.app_id", self.app_id)
    }
}

impl pb::KillAppRequest {
    /// The app to kill.
    pub fn into_core(self) -> Result<AppId, ConvertError> {
        id("KillAppRequest.app_id", self.app_id)
    }
}

impl pb::RegisterAppResponse {
    /// The reply to a registration that core answered with
    /// [`Outcome::AppRegistered`](hearth_core::Outcome::AppRegistered).
    pub fn new(app: &AppId, driver: Option<&DriverId>) -> Self {
        pb::RegisterAppResponse {
            app_id: app.0.clone(),
            driver_id: driver.map(|d| d.0.clone()),
            heartbeat_interval_ms: 0,
        }
    }

    /// The new app's id and, in cluster mode, its driver's.
    pub fn into_core(self) -> Result<(AppId, Option<DriverId>), ConvertError> {
        Ok((
            id("RegisterAppResponse.app_id", self.app_id)?,
            super::opt_id("RegisterAppResponse.driver_id", self.driver_id)?,
        ))
    }
}
