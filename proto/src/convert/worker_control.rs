//! Core [`Action`]s as `WorkerControl` requests, stamped with the leader's [`Fence`], and
//! back (on the worker).

use super::{id, required, ConvertError};
use crate::pb;
use hearth_core::Action;

/// What every `WorkerControl` request carries so a worker can refuse a deposed leader:
/// the Raft term of the leader that sent it, and that leader's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence {
    pub term: u64,
    pub master_id: u64,
}

/// One `WorkerControl` call, ready to send (or just received).
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerCommand {
    LaunchExecutor(pb::LaunchExecutorRequest),
    KillExecutor(pb::KillExecutorRequest),
    LaunchDriver(pb::LaunchDriverRequest),
    KillDriver(pb::WorkerKillDriverRequest),
}

impl WorkerCommand {
    /// The request that carries `action` out, stamped with `fence`.
    pub fn new(action: &Action, fence: Fence) -> Self {
        let Fence { term, master_id } = fence;
        match action {
            Action::LaunchExecutor {
                worker,
                app,
                executor,
                cores,
                memory_mb,
                command,
                driver_url,
            } => WorkerCommand::LaunchExecutor(pb::LaunchExecutorRequest {
                term,
                master_id,
                worker_id: worker.0.clone(),
                app_id: app.0.clone(),
                executor_id: *executor,
                cores: *cores,
                memory_mb: *memory_mb,
                command: Some(command.into()),
                driver_url: driver_url.clone(),
            }),
            Action::KillExecutor {
                worker,
                app,
                executor,
            } => WorkerCommand::KillExecutor(pb::KillExecutorRequest {
                term,
                master_id,
                worker_id: worker.0.clone(),
                app_id: app.0.clone(),
                executor_id: *executor,
            }),
            Action::LaunchDriver {
                worker,
                driver,
                app,
                cores,
                memory_mb,
                supervise,
                command,
            } => WorkerCommand::LaunchDriver(pb::LaunchDriverRequest {
                term,
                master_id,
                worker_id: worker.0.clone(),
                driver_id: driver.0.clone(),
                app_id: app.0.clone(),
                cores: *cores,
                memory_mb: *memory_mb,
                supervise: *supervise,
                command: Some(command.into()),
            }),
            Action::KillDriver { worker, driver } => {
                WorkerCommand::KillDriver(pb::WorkerKillDriverRequest {
                    term,
                    master_id,
                    worker_id: worker.0.clone(),
                    driver_id: driver.0.clone(),
                })
            }
        }
    }

    /// The fence the request carries.
    pub fn fence(&self) -> Fence {
        match self {
            WorkerCommand::LaunchExecutor(r) => r.fence(),
            WorkerCommand::KillExecutor(r) => r.fence(),
            WorkerCommand::LaunchDriver(r) => r.fence(),
            WorkerCommand::KillDriver(r) => r.fence(),
        }
    }

    /// The action the request carries.
    pub fn into_action(self) -> Result<Action, ConvertError> {
        match self {
            WorkerCommand::LaunchExecutor(r) => r.try_into(),
            WorkerCommand::KillExecutor(r) => r.try_into(),
            WorkerCommand::LaunchDriver(r) => r.try_into(),
            WorkerCommand::KillDriver(r) => r.try_into(),
        }
    }
}

macro_rules! fenced {
    ($($t:ty),+) => {$(
        impl $t {
            /// The term and master id this request carries.
            pub fn fence(&self) -> Fence {
                Fence { term: self.term, master_id: self.master_id }
            }
        }
    )+};
}

fenced!(
    pb::LaunchExecutorRequest,
    pb::KillExecutorRequest,
    pb::LaunchDriverRequest,
    pb::WorkerKillDriverRequest
);

impl TryFrom<pb::LaunchExecutorRequest> for Action {
    type Error = ConvertError;
    fn try_from(r: pb::LaunchExecutorRequest) -> Result<Self, ConvertError> {
        Ok(Action::LaunchExecutor {
            worker: id("LaunchExecutorRequest.worker_id", r.worker_id)?,
            app: id("LaunchExecutorRequest.app_id", r.app_id)?,
            executor: r.executor_id,
            cores: r.cores,
            memory_mb: r.memory_mb,
            command: required("LaunchExecutorRequest.command", r.command)?.into(),
            driver_url: r.driver_url,
        })
    }
}

impl TryFrom<pb::KillExecutorRequest> for Action {
    type Error = ConvertError;
    fn try_from(r: pb::KillExecutorRequest) -> Result<Self, ConvertError> {
        Ok(Action::KillExecutor {
            worker: id("KillExecutorRequest.worker_id", r.worker_id)?,
            app: id("KillExecutorRequest.app_id", r.app_id)?,
            executor: r.executor_id,
        })
    }
}

impl TryFrom<pb::LaunchDriverRequest> for Action {
    type Error = ConvertError;
    fn try_from(r: pb::LaunchDriverRequest) -> Result<Self, ConvertError> {
        Ok(Action::LaunchDriver {
            worker: id("LaunchDriverRequest.worker_id", r.worker_id)?,
            driver: id("LaunchDriverRequest.driver_id", r.driver_id)?,
            app: id("LaunchDriverRequest.app_id", r.app_id)?,
            cores: r.cores,
            memory_mb: r.memory_mb,
            supervise: r.supervise,
            command: required("LaunchDriverRequest.command", r.command)?.into(),
        })
    }
}

impl TryFrom<pb::WorkerKillDriverRequest> for Action {
    type Error = ConvertError;
    fn try_from(r: pb::WorkerKillDriverRequest) -> Result<Self, ConvertError> {
        Ok(Action::KillDriver {
            worker: id("WorkerKillDriverRequest.worker_id", r.worker_id)?,
            driver: id("WorkerKillDriverRequest.driver_id", r.driver_id)?,
        })
    }
}
