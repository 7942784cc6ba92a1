//! The `GET /json` document, rendered from a [`StatusView`]. The master's HTTP
//! endpoint and `hearth status --json` (README.md, "The CLI") both print exactly this, so
//! scripts see one format. Field names follow Spark's master `/json`; memory is in MiB,
//! times in milliseconds since the epoch, durations in milliseconds.
//!
//! A filtered or paged view ([`StatusView::paged`], `GET /json?state=..&offset=..&limit=..`)
//! renders the same fields for the entries it holds, plus `workerstotal`, `appstotal` and
//! `driverstotal` (how many the state filter kept, before paging); `aliveworkers`,
//! `cores`, `coresused`, `memory` and `memoryused` stay those of the whole cluster. A view
//! that is not paged has no `*total` field: the document is what it was before paging.
//! [`status_json_with`] with `executors` false gives each app `executorcount` instead of
//! its `executors` list.

use super::view::StatusView;
use hearth_core::{AppInfo, DriverInfo};
use serde_json::{json, Value};

fn app(a: &AppInfo, now: u64, executors: bool) -> Value {
    let end = a.ended_at.map_or(now, |t| t.0);
    let mut v = json!({
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
    });
    // serde_json's maps are sorted by key (no `preserve_order`): where a field is added
    // does not change the document.
    let (key, value) = if executors {
        let list = a.executors.values().map(|e| {
            json!({
                "id": e.id,
                "worker": e.worker,
                "cores": e.cores,
                "memory": e.memory_mb,
                "state": e.state.as_str(),
            })
        });
        ("executors", Value::Array(list.collect()))
    } else {
        ("executorcount", a.executors.len().into())
    };
    if let Some(o) = v.as_object_mut() {
        o.insert(key.into(), value);
    }
    v
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
    status_json_with(s, true)
}

/// The `/json` document, with each app's executors listed (`executors`) or only counted.
pub fn status_json_with(s: &StatusView, executors: bool) -> Value {
    let now = s.now.0;
    let capacity = s.capacity();
    let mut doc = json!({
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
        "aliveworkers": capacity.alive_workers,
        "cores": capacity.cores,
        "coresused": capacity.cores_used,
        "memory": capacity.memory_mb,
        "memoryused": capacity.memory_used_mb,
        "activeapps": s.active_apps.iter().map(|a| app(a, now, executors)).collect::<Vec<_>>(),
        "completedapps": s.completed_apps.iter().map(|a| app(a, now, executors)).collect::<Vec<_>>(),
        "activedrivers": s.active_drivers.iter().map(driver).collect::<Vec<_>>(),
        "completeddrivers": s.completed_drivers.iter().map(driver).collect::<Vec<_>>(),
    });
    if let (Some(t), Some(o)) = (&s.totals, doc.as_object_mut()) {
        o.insert("workerstotal".into(), t.workers.into());
        o.insert("appstotal".into(), t.apps.into());
        o.insert("driverstotal".into(), t.drivers.into());
    }
    doc
}
