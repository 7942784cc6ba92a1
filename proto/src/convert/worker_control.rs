//! Core [`Action`]s as `WorkerControl` requests, stamped with the leader's [`Fence`], and
//! back (on the worker). Each request converts to and from one core struct
//! ([`ExecutorLaunch`], [`ExecutorKill`], [`DriverLaunch`], [`DriverKill`]), which the
//! worker runs as it is.

use super::{id, required, ConvertError};
use crate::pb;
use hearth_core::{Action, DriverKill, DriverLaunch, ExecutorKill, ExecutorLaunch};

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
        match action {
            Action::LaunchExecutor(l) => {
                WorkerCommand::LaunchExecutor(pb::LaunchExecutorRequest::fenced(l, fence))
            }
            Action::KillExecutor(k) => {
                WorkerCommand::KillExecutor(pb::KillExecutorRequest::fenced(k, fence))
            }
            Action::LaunchDriver(l) => {
                WorkerCommand::LaunchDriver(pb::LaunchDriverRequest::fenced(l, fence))
            }
            Action::KillDriver(k) => {
                WorkerCommand::KillDriver(pb::WorkerKillDriverRequest::fenced(k, fence))
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

impl pb::LaunchExecutorRequest {
    fn fenced(l: &ExecutorLaunch, Fence { term, master_id }: Fence) -> Self {
        pb::LaunchExecutorRequest {
            term,
            master_id,
            worker_id: l.worker.0.clone(),
            app_id: l.app.0.clone(),
            executor_id: l.executor,
            cores: l.cores,
            memory_mb: l.memory_mb,
            command: Some((&l.command).into()),
            driver_url: l.driver_url.clone(),
        }
    }
}

impl pb::KillExecutorRequest {
    fn fenced(k: &ExecutorKill, Fence { term, master_id }: Fence) -> Self {
        pb::KillExecutorRequest {
            term,
            master_id,
            worker_id: k.worker.0.clone(),
            app_id: k.app.0.clone(),
            executor_id: k.executor,
        }
    }
}

impl pb::LaunchDriverRequest {
    fn fenced(l: &DriverLaunch, Fence { term, master_id }: Fence) -> Self {
        pb::LaunchDriverRequest {
            term,
            master_id,
            worker_id: l.worker.0.clone(),
            driver_id: l.driver.0.clone(),
            app_id: l.app.0.clone(),
            cores: l.cores,
            memory_mb: l.memory_mb,
            supervise: l.supervise,
            command: Some((&l.command).into()),
        }
    }
}

impl pb::WorkerKillDriverRequest {
    fn fenced(k: &DriverKill, Fence { term, master_id }: Fence) -> Self {
        pb::WorkerKillDriverRequest {
            term,
            master_id,
            worker_id: k.worker.0.clone(),
            driver_id: k.driver.0.clone(),
        }
    }
}

/// For each request: its fence, and decoding to its core struct and to the [`Action`]
/// that wraps it.
macro_rules! worker_request {
    ($($pb:ty => $variant:ident($core:ty)),+ $(,)?) => {$(
        impl $pb {
            /// The term and master id this request carries.
            pub fn fence(&self) -> Fence {
                Fence { term: self.term, master_id: self.master_id }
            }
        }

        impl TryFrom<$pb> for Action {
            type Error = ConvertError;
            fn try_from(r: $pb) -> Result<Self, ConvertError> {
                <$core>::try_from(r).map(Action::$variant)
            }
        }
    )+};
}

worker_request!(
    pb::LaunchExecutorRequest => LaunchExecutor(ExecutorLaunch),
    pb::KillExecutorRequest => KillExecutor(ExecutorKill),
    pb::LaunchDriverRequest => LaunchDriver(DriverLaunch),
    pb::WorkerKillDriverRequest => KillDriver(DriverKill),
);

impl TryFrom<pb::LaunchExecutorRequest> for ExecutorLaunch {
    type Error = ConvertError;
    fn try_from(r: pb::LaunchExecutorRequest) -> Result<Self, ConvertError> {
        Ok(ExecutorLaunch {
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

impl TryFrom<pb::KillExecutorRequest> for ExecutorKill {
    type Error = ConvertError;
    fn try_from(r: pb::KillExecutorRequest) -> Result<Self, ConvertError> {
        Ok(ExecutorKill {
            worker: id("KillExecutorRequest.worker_id", r.worker_id)?,
            app: id("KillExecutorRequest.app_id", r.app_id)?,
            executor: r.executor_id,
        })
    }
}

impl TryFrom<pb::LaunchDriverRequest> for DriverLaunch {
    type Error = ConvertError;
    fn try_from(r: pb::LaunchDriverRequest) -> Result<Self, ConvertError> {
        Ok(DriverLaunch {
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

impl TryFrom<pb::WorkerKillDriverRequest> for DriverKill {
    type Error = ConvertError;
    fn try_from(r: pb::WorkerKillDriverRequest) -> Result<Self, ConvertError> {
        Ok(DriverKill {
            worker: id("WorkerKillDriverRequest.worker_id", r.worker_id)?,
            driver: id("WorkerKillDriverRequest.driver_id", r.driver_id)?,
        })
    }
}
