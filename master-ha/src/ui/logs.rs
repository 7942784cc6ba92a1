//! `GET /ui/logs/{id}/{stdout|stderr}[?executor=N][&offset=K]`: a process's output as
//! `text/plain`, read by this master from the worker's `WorkerControl.ReadLog` with the
//! cluster secret it holds. Found like `hearth logs` finds it
//! (`hearth_client::logs::locate`): `id` is a driver, or an app (its driver; with
//! `executor`, that executor). Without `offset`, the last [`TAIL`] bytes; with it, up to
//! 1 MiB from there (negative: that many bytes before the end). The headers
//! `x-hearth-log-offset`, `-size` and `-running` say where the text starts, how long the
//! file is and whether the process still runs.
//!
//! Not an open read: the port's auth layer asks for the secret or a submit token (or a
//! login session's cookie), and a token reads only its own apps' logs ([`crate::grpc`]'s
//! `owns`, as for a kill).

use super::UiState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use hearth_client::logs::{locate, LocateError};
use hearth_proto::auth::Caller;
use hearth_proto::convert::StatusView;
use serde::Deserialize;
use std::time::Duration;

/// What a log link shows without `offset`: the last 64 KiB.
pub const TAIL: u32 = 64 << 10;

#[derive(Deserialize)]
pub(crate) struct LogQuery {
    executor: Option<u32>,
    offset: Option<i64>,
}

fn text(code: StatusCode, body: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Who submitted the app `id` names (a driver's app for a driver id), as
/// [`crate::grpc`]'s `owns` takes it: `None` when the view does not list it.
fn owner(view: &StatusView, id: &str) -> Option<Option<String>> {
    let app = if id.starts_with("driver-") {
        let d = (view.active_drivers.iter())
            .chain(&view.completed_drivers)
            .find(|d| d.id.as_str() == id)?;
        d.app.clone()
    } else {
        hearth_core::AppId::from(id)
    };
    let a = (view.active_apps.iter())
        .chain(&view.completed_apps)
        .find(|a| a.id == app)?;
    Some(a.desc.user().map(str::to_owned))
}

pub(crate) async fn read(
    State(ui): UiState,
    Path((id, stream)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
    caller: Option<Extension<Caller>>,
) -> Response {
    let stderr = match stream.as_str() {
        "stdout" => false,
        "stderr" => true,
        other => {
            let why = format!("no stream {other:?}: stdout or stderr");
            return text(StatusCode::NOT_FOUND, why);
        }
    };
    let view = ui.node.status().await;
    if let Some(Extension(Caller { token: Some(name) })) = &caller {
        if let Err(s) = crate::grpc::owns(name, owner(&view, &id)) {
            return text(StatusCode::FORBIDDEN, s.message().to_owned());
        }
    }
    let (addr, mut req) = match locate(&view, &id, q.executor, stderr) {
        Ok(found) => found,
        Err(e @ LocateError::NotFound(_)) => return text(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ LocateError::ClientMode(_)) => {
            return text(StatusCode::BAD_REQUEST, format!("{e} (?executor=N)"))
        }
    };
    (req.offset, req.max_bytes) = match q.offset {
        Some(k) => (k, 1 << 20),
        None => (-i64::from(TAIL), TAIL),
    };
    let credential = ui.node.config.credential();
    let read = async {
        let mut w = hearth_client::logs::worker(&credential, &addr).await?;
        (w.read_log(req).await)
            .map(|r| r.into_inner())
            .map_err(|s| format!("worker {addr}: {}", s.message()))
    };
    let r = match tokio::time::timeout(Duration::from_secs(10), read).await {
        Ok(Ok(r)) => r,
        Ok(Err(why)) => return text(StatusCode::BAD_GATEWAY, why),
        Err(_) => {
            let why = format!("worker {addr} did not answer within 10 s");
            return text(StatusCode::GATEWAY_TIMEOUT, why);
        }
    };
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (
                header::HeaderName::from_static("x-hearth-log-offset"),
                r.offset.to_string(),
            ),
            (
                header::HeaderName::from_static("x-hearth-log-size"),
                r.size.to_string(),
            ),
            (
                header::HeaderName::from_static("x-hearth-log-running"),
                r.running.to_string(),
            ),
        ],
        String::from_utf8_lossy(&r.data).into_owned(),
    )
        .into_response()
}
