//! The `GET /json` document, rendered from a [`StatusView`]. The master's HTTP
//! endpoint and `hearth status --json` (README.md, "The CLI") both print exactly this, so
//! scripts see one format. Field names follow Spark's master `/json`; memory is in MiB,
//! times in milliseconds since the epoch, durations in milliseconds.

use super::view::StatusView;
use hearth_core::{AppInfo, DriverInfo, WorkerState};
use serde_json::{json, Value};

fn app(a: &AppInfo, now: u64) -> Value {
    let end = a.ended_at.map_or(now, |t| t.0);
    json!({
        "id": a.id,
        "name": a.desc.name,
        "user": a.desc.user(),
        "cores": a.cores_granted(),
        "memoryperexecutor": a.desc.memory_per_executor_mb,
        "state": a.state.as_str(),
        "starttime": a.submitted_at.0,
        "duration": end.saturating_sub(a.submitted_at.0),
        "driver": a.driver,
        "driverurl": a.driver_url,
        "executorlimit": a.executor_limit,
        "retrycount": a.retry_count,
        "endreason": a.end_reason,
        "executors": a.executors.values().map(|e| json!({
            "id": e.id,
            "worker": e.worker,
            "cores": e.cores,
            "memory": e.memory_mb,
            "state": e.state.as_str(),
        })).collect::<Vec<_>>(),
    })
}

fn driver(d: &DriverInfo) -> Value {
    json!({
        "id": d.id,
        "app": d.app,
        "state": d.state.as_str(),
        "worker": d.worker,
        "cores": d.desc.cores,
        "memory": d.desc.memory_mb,
        "supervise": d.desc.supervise,
        "starttime": d.submitted_at.0,
        "relaunchof": d.relaunch_of,
        "endreason": d.end_reason,
    })
}

/// The `/json` document.
pub fn status_json(s: &StatusView) -> Value {
    let now = s.now.0;
    let alive: Vec<_> = s
        .workers
        .iter()
        .filter(|w| w.info.state == WorkerState::Alive)
        .collect();
    json!({
        "status": s.status.as_str(),
        "leader": s.leader,
        "term": s.term,
        "masters": s.masters.iter().map(|m| json!({
            "id": m.id,
            "address": m.address,
            "role": m.role.as_str(),
        })).collect::<Vec<_>>(),
        "workers": s.workers.iter().map(|w| json!({
            "id": w.info.identity.id,
            "host": w.info.identity.host,
            "port": w.info.identity.port,
            "webuiport": w.info.identity.http_port,
            "cores": w.info.identity.cores,
            "coresused": w.info.cores_used,
            "coresfree": w.info.cores_free(),
            "memory": w.info.identity.memory_mb,
            "memoryused": w.info.memory_used_mb,
            "memoryfree": w.info.memory_free_mb(),
            "state": w.info.state.as_str(),
            "draindeadline": w.info.state.drain_deadline().map(|t| t.0),
            "lastheartbeat": w.last_heartbeat.map(|t| t.0),
        })).collect::<Vec<_>>(),
        "aliveworkers": alive.len(),
        "cores": alive.iter().map(|w| u64::from(w.info.identity.cores)).sum::<u64>(),
        "coresused": alive.iter().map(|w| u64::from(w.info.cores_used)).sum::<u64>(),
        "memory": alive.iter().map(|w| w.info.identity.memory_mb).sum::<u64>(),
        "memoryused": alive.iter().map(|w| w.info.memory_used_mb).sum::<u64>(),
        "activeapps": s.active_apps.iter().map(|a| app(a, now)).collect::<Vec<_>>(),
        "completedapps": s.completed_apps.iter().map(|a| app(a, now)).collect::<Vec<_>>(),
        "activedrivers": s.active_drivers.iter().map(driver).collect::<Vec<_>>(),
        "completeddrivers": s.completed_drivers.iter().map(driver).collect::<Vec<_>>(),
    })
}
