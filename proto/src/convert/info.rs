//! The replicated records: [`WorkerInfo`], [`ExecutorInfo`], [`AppInfo`], [`DriverInfo`].

use super::{encode_owned, id, opt_id, port, required, state, ConvertError};
use crate::pb;
use hearth_core::{
    AppInfo, DriverInfo, ExecutorInfo, Millis, WorkerIdentity, WorkerInfo, WorkerState,
};
use std::collections::{BTreeMap, BTreeSet};

/// Encodes without `last_heartbeat_ms`, which is not part of core's record; see
/// [`WorkerStatus`](super::WorkerStatus) for the record with it.
impl From<&WorkerInfo> for pb::WorkerInfo {
    fn from(v: &WorkerInfo) -> Self {
        let me = &v.identity;
        pb::WorkerInfo {
            id: me.id.0.clone(),
            host: me.host.clone(),
            port: me.port.into(),
            http_port: me.http_port.into(),
            cores: me.cores,
            memory_mb: me.memory_mb,
            cores_used: v.cores_used,
            memory_used_mb: v.memory_used_mb,
            state: v.state.as_str().to_owned(),
            registered_at_ms: v.registered_at.0,
            dead_since_ms: v.dead_since.map(|t| t.0),
            executors: v
                .executors
                .iter()
                .map(|(app, exec)| pb::ExecutorRef {
                    app_id: app.0.clone(),
                    executor_id: *exec,
                })
                .collect(),
            driver_ids: v.drivers.iter().map(|d| d.0.clone()).collect(),
            last_heartbeat_ms: None,
            drain_deadline_ms: v.state.drain_deadline().map(|t| t.0),
        }
    }
}

/// Decodes the replicated record; `last_heartbeat_ms` is ignored.
impl TryFrom<pb::WorkerInfo> for WorkerInfo {
    type Error = ConvertError;
    fn try_from(v: pb::WorkerInfo) -> Result<Self, ConvertError> {
        let mut executors = BTreeSet::new();
        for e in v.executors {
            let key = (id("ExecutorRef.app_id", e.app_id)?, e.executor_id);
            if executors.contains(&key) {
                return Err(ConvertError::Duplicate {
                    field: "WorkerInfo.executors",
                    value: format!("{}/{}", key.0, key.1),
                });
            }
            executors.insert(key);
        }
        let mut drivers = BTreeSet::new();
        for d in v.driver_ids {
            let d = id("WorkerInfo.driver_ids", d)?;
            if drivers.contains(&d) {
                return Err(ConvertError::Duplicate {
                    field: "WorkerInfo.driver_ids",
                    value: format!("{d}"),
                });
            }
            drivers.insert(d);
        }
        Ok(WorkerInfo {
            identity: WorkerIdentity {
                id: id("WorkerInfo.id", v.id)?,
                host: v.host,
                port: port("WorkerInfo.port", v.port)?,
                http_port: port("WorkerInfo.http_port", v.http_port)?,
                cores: v.cores,
                memory_mb: v.memory_mb,
            },
            cores_used: v.cores_used,
            memory_used_mb: v.memory_used_mb,
            state: worker_state(&v.state, v.drain_deadline_ms)?,
            registered_at: Millis(v.registered_at_ms),
            dead_since: v.dead_since_ms.map(Millis),
            executors,
            drivers,
        })
    }
}

/// A worker's state: its name, and for DRAINING the deadline, which must be there.
fn worker_state(name: &str, drain_deadline_ms: Option<u64>) -> Result<WorkerState, ConvertError> {
    match state("WorkerInfo.state", name)? {
        WorkerState::Draining { .. } => Ok(WorkerState::Draining {
            deadline: Millis(required("WorkerInfo.drain_deadline_ms", drain_deadline_ms)?),
        }),
        other => Ok(other),
    }
}

impl From<&ExecutorInfo> for pb::ExecutorInfo {
    fn from(v: &ExecutorInfo) -> Self {
        pb::ExecutorInfo {
            id: v.id,
            worker_id: v.worker.0.clone(),
            cores: v.cores,
            memory_mb: v.memory_mb,
            state: v.state.as_str().to_owned(),
        }
    }
}

impl TryFrom<pb::ExecutorInfo> for ExecutorInfo {
    type Error = ConvertError;
    fn try_from(v: pb::ExecutorInfo) -> Result<Self, ConvertError> {
        Ok(ExecutorInfo {
            id: v.id,
            worker: id("ExecutorInfo.worker_id", v.worker_id)?,
            cores: v.cores,
            memory_mb: v.memory_mb,
            state: state("ExecutorInfo.state", &v.state)?,
        })
    }
}

impl From<&AppInfo> for pb::AppInfo {
    fn from(v: &AppInfo) -> Self {
        pb::AppInfo {
            id: v.id.0.clone(),
            seq: v.seq,
            desc: Some((&v.desc).into()),
            state: v.state.as_str().to_owned(),
            submitted_at_ms: v.submitted_at.0,
            ended_at_ms: v.ended_at.map(|t| t.0),
            end_reason: v.end_reason.clone(),
            driver_id: v.driver.as_ref().map(|d| d.0.clone()),
            driver_url: v.driver_url.clone(),
            executors: v.executors.values().map(Into::into).collect(),
            next_executor_id: v.next_executor_id,
            executor_limit: v.executor_limit,
            retry_count: v.retry_count,
        }
    }
}

impl TryFrom<pb::AppInfo> for AppInfo {
    type Error = ConvertError;
    fn try_from(v: pb::AppInfo) -> Result<Self, ConvertError> {
        let mut executors = BTreeMap::new();
        for e in v.executors {
            let e = ExecutorInfo::try_from(e)?;
            if executors.contains_key(&e.id) {
                return Err(ConvertError::Duplicate {
                    field: "AppInfo.executors",
                    value: format!("executor {}", e.id),
                });
            }
            executors.insert(e.id, e);
        }
        Ok(AppInfo {
            id: id("AppInfo.id", v.id)?,
            seq: v.seq,
            desc: required("AppInfo.desc", v.desc)?.try_into()?,
            state: state("AppInfo.state", &v.state)?,
            submitted_at: Millis(v.submitted_at_ms),
            ended_at: v.ended_at_ms.map(Millis),
            end_reason: v.end_reason,
            driver: opt_id("AppInfo.driver_id", v.driver_id)?,
            driver_url: v.driver_url,
            executors,
            next_executor_id: v.next_executor_id,
            executor_limit: v.executor_limit,
            retry_count: v.retry_count,
        })
    }
}

impl From<&DriverInfo> for pb::DriverInfo {
    fn from(v: &DriverInfo) -> Self {
        pb::DriverInfo {
            id: v.id.0.clone(),
            seq: v.seq,
            app_id: v.app.0.clone(),
            desc: Some((&v.desc).into()),
            state: v.state.as_str().to_owned(),
            worker_id: v.worker.as_ref().map(|w| w.0.clone()),
            submitted_at_ms: v.submitted_at.0,
            ended_at_ms: v.ended_at.map(|t| t.0),
            end_reason: v.end_reason.clone(),
            relaunch_of: v.relaunch_of.as_ref().map(|d| d.0.clone()),
        }
    }
}

impl TryFrom<pb::DriverInfo> for DriverInfo {
    type Error = ConvertError;
    fn try_from(v: pb::DriverInfo) -> Result<Self, ConvertError> {
        Ok(DriverInfo {
            id: id("DriverInfo.id", v.id)?,
            seq: v.seq,
            app: id("DriverInfo.app_id", v.app_id)?,
            desc: required("DriverInfo.desc", v.desc)?.try_into()?,
            state: state("DriverInfo.state", &v.state)?,
            worker: opt_id("DriverInfo.worker_id", v.worker_id)?,
            submitted_at: Millis(v.submitted_at_ms),
            ended_at: v.ended_at_ms.map(Millis),
            end_reason: v.end_reason,
            relaunch_of: opt_id("DriverInfo.relaunch_of", v.relaunch_of)?,
        })
    }
}

encode_owned!(
    WorkerInfo => pb::WorkerInfo,
    ExecutorInfo => pb::ExecutorInfo,
    AppInfo => pb::AppInfo,
    DriverInfo => pb::DriverInfo,
);
