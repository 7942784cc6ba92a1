//! Where a process's output is: the worker that runs (or ran) a driver or an app's
//! executor, and the `WorkerControl.ReadLog` request naming it. `hearth logs` and the
//! masters' web UI (its log links) both find a log here, then read it from the worker.

use hearth_proto::auth::{authed, AuthChannel, Credential};
use hearth_proto::convert::StatusView;
use hearth_proto::pb;
use hearth_proto::pb::worker_control_client::WorkerControlClient;

/// Why a log cannot be found.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LocateError {
    /// No such app, driver or executor, or it has not been placed on a worker.
    #[error("{0}")]
    NotFound(String),
    /// A client-mode app's driver runs outside hearth: only its executors have logs here.
    #[error("{0} is a client-mode app: its driver runs outside hearth; name an executor")]
    ClientMode(String),
}

/// The worker (`host:port`) holding the stdout (or `stderr`) of `id`: a driver id, or an
/// app id (its driver in cluster mode; with `executor`, that executor), as `s` shows it.
/// The request names the file; its offset and length are the caller's.
pub fn locate(
    s: &StatusView,
    id: &str,
    executor: Option<u32>,
    stderr: bool,
) -> Result<(String, pb::ReadLogRequest), LocateError> {
    let missing = |what: String| LocateError::NotFound(what);
    let mut req = pb::ReadLogRequest {
        stderr,
        ..Default::default()
    };
    let mut apps = s.active_apps.iter().chain(&s.completed_apps);
    let drivers = || s.active_drivers.iter().chain(&s.completed_drivers);
    let worker = if id.starts_with("driver-") {
        req.driver_id = id.to_owned();
        let d = drivers()
            .find(|d| d.id.as_str() == id)
            .ok_or_else(|| missing(format!("unknown driver {id}")))?;
        d.worker.clone()
    } else {
        let app = apps
            .find(|x| x.id.as_str() == id)
            .ok_or_else(|| missing(format!("unknown app or driver {id}")))?;
        match executor {
            Some(n) => {
                req.app_id = id.to_owned();
                req.executor_id = n;
                let e = app.executors.get(&n).ok_or_else(|| {
                    missing(format!(
                        "{id} has no executor {n} now (the leader lists running executors only)"
                    ))
                })?;
                Some(e.worker.clone())
            }
            None => {
                let driver =
                    (app.driver.clone()).ok_or_else(|| LocateError::ClientMode(id.to_owned()))?;
                req.driver_id = driver.0.clone();
                drivers()
                    .find(|d| d.id == driver)
                    .and_then(|d| d.worker.clone())
            }
        }
    };
    let worker = worker.ok_or_else(|| missing(format!("{id} has not been placed on a worker")))?;
    let w = (s.workers.iter())
        .find(|w| w.info.identity.id == worker)
        .ok_or_else(|| missing(format!("worker {worker} is no longer listed")))?;
    Ok((
        format!("{}:{}", w.info.identity.host, w.info.identity.port),
        req,
    ))
}

/// A `WorkerControl` client of the worker at `addr` showing `credential` (the cluster
/// secret, and TLS when the cluster uses it).
pub async fn worker(
    credential: &Credential,
    addr: &str,
) -> Result<WorkerControlClient<AuthChannel>, String> {
    let channel = (credential.endpoint(addr))
        .map_err(|e| format!("worker address: {e}"))?
        .connect()
        .await
        .map_err(|e| format!("cannot reach worker {addr}: {e}"))?;
    Ok(WorkerControlClient::new(authed(channel, credential)))
}
