//! The apps' HTTP JSON API (`/v1/apps/...`), for clients without gRPC code: the Spark
//! plugin (`spark/`), scripts, curl. Served on the master's HTTP port and, over
//! HTTP/1.1, on its gRPC port too, so a client needs only the masters' list
//! (`HEARTH_MASTERS`). README "HTTP JSON API" documents the routes.
//!
//! Each route decodes its JSON into the gRPC request and calls the same `MasterService`
//! method the gRPC side runs: one set of rules (leader check, exactly-once answers,
//! refusals) for both. This module only moves bytes and maps a `tonic::Status` to an
//! HTTP answer:
//!
//! | gRPC | HTTP | `code` |
//! | --- | --- | --- |
//! | not the leader, leader known | 307, `Location` on the leader | `NOT_LEADER` |
//! | not the leader, none known | 503 | `NOT_LEADER` |
//! | `ABORTED` (may have been applied) | 409 | `MAYBE_APPLIED` |
//! | `FAILED_PRECONDITION` | 409 | `FAILED_PRECONDITION` |
//! | `NOT_FOUND` | 404 | `NOT_FOUND` |
//! | `INVALID_ARGUMENT`, bad JSON | 400 | `INVALID` |
//! | `UNAUTHENTICATED` / `PERMISSION_DENIED` | 401 / 403 | same |
//! | other `UNAVAILABLE` | 503 | `UNAVAILABLE` |
//!
//! Every error body is `{"code", "error", "leader"}`. The cluster secret is checked in
//! front of the whole port (`hearth_proto::auth::require_secret`): a write without it is
//! answered `401` `UNAUTHENTICATED` before any route runs.

use crate::grpc::Svc;
use crate::node::Node;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hearth_core::{AppId, AppInfo};
use hearth_proto::pb;
use hearth_proto::pb::master_service_server::MasterService;
use hearth_proto::status::leader_hint;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tonic::{Code, Request, Status};

/// The `/v1/apps` routes over `node`.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/v1/apps", post(create))
        .route("/v1/apps/{id}", get(read))
        .route("/v1/apps/{id}/heartbeat", post(heartbeat))
        .route("/v1/apps/{id}/executors/total", post(set_total))
        .route("/v1/apps/{id}/executors/kill", post(kill_executors))
        .route("/v1/apps/{id}/scale", post(scale))
        .route("/v1/apps/{id}/finish", post(finish))
        .route("/v1/apps/{id}/kill", post(kill))
        .layer(axum::extract::DefaultBodyLimit::max(
            hearth_proto::MAX_REQUEST,
        ))
        .with_state(Arc::new(Svc::new(node)))
}

type Api = State<Arc<Svc>>;
type Answer = Result<Response, ApiError>;

/// A refused or failed request, answered as `{"code", "error", "leader"}`.
pub struct ApiError {
    status: Status,
    uri: Uri,
}

impl ApiError {
    fn new(status: Status, uri: &Uri) -> Self {
        ApiError {
            status,
            uri: uri.clone(),
        }
    }
}

/// The HTTP status and `code` a refusal is answered with (the table above).
pub(crate) fn http_code(s: &Status) -> (StatusCode, &'static str) {
    let leader = leader_hint(s);
    let not_leader = s.code() == Code::Unavailable && s.message().starts_with("not the leader");
    match s.code() {
        Code::Unavailable if not_leader && leader.is_some() => {
            (StatusCode::TEMPORARY_REDIRECT, "NOT_LEADER")
        }
        Code::Unavailable if not_leader => (StatusCode::SERVICE_UNAVAILABLE, "NOT_LEADER"),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        Code::Aborted => (StatusCode::CONFLICT, "MAYBE_APPLIED"),
        Code::FailedPrecondition => (StatusCode::CONFLICT, "FAILED_PRECONDITION"),
        Code::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        Code::InvalidArgument => (StatusCode::BAD_REQUEST, "INVALID"),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let s = &self.status;
        let leader = leader_hint(s);
        let (http, code) = http_code(s);
        let body = Json(json!({ "code": code, "error": s.message(), "leader": leader }));
        match leader.filter(|_| http == StatusCode::TEMPORARY_REDIRECT) {
            Some(addr) => {
                let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
                // Scheme-relative (RFC 7231 7.1.2): the client keeps http or https.
                let location = format!("//{addr}{path}");
                (http, [(header::LOCATION, location)], body).into_response()
            }
            None => (http, body).into_response(),
        }
    }
}

/// Parses a JSON body (an empty body reads as `{}`), refusing bad JSON with its reason.
fn parse<T: DeserializeOwned>(body: &Bytes, uri: &Uri) -> Result<T, ApiError> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(text).map_err(|e| {
        ApiError::new(
            Status::invalid_argument(format!("malformed JSON body: {e}")),
            uri,
        )
    })
}

fn ok<T: Serialize>(value: T) -> Answer {
    Ok(Json(value).into_response())
}

/// An `Ack` as `{"unchanged": bool}`.
fn ack(r: Result<tonic::Response<pb::Ack>, Status>, uri: &Uri) -> Answer {
    let a = r.map_err(|s| ApiError::new(s, uri))?.into_inner();
    ok(json!({ "unchanged": a.unchanged }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Process {
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// A submission: the body of `POST /v1/apps`, and what the web UI's form builds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApp {
    pub name: String,
    #[serde(default)]
    pub executor_cores: Option<u32>,
    pub executor_memory_mb: u64,
    #[serde(default)]
    pub max_cores: Option<u32>,
    #[serde(default)]
    pub initial_executors: Option<u32>,
    /// A client-mode app: where its driver listens.
    #[serde(default)]
    pub driver_url: Option<String>,
    /// A cluster-mode app: the driver the leader places on a worker.
    #[serde(default)]
    pub driver: Option<Driver>,
    pub command: Process,
    /// Who submits it (kept with the cluster secret; a submit token's name wins).
    #[serde(default)]
    pub user: Option<String>,
}

/// A cluster-mode app's driver.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Driver {
    pub cores: u32,
    pub memory_mb: u64,
    /// Relaunch it when it fails or its worker is lost.
    #[serde(default)]
    pub supervise: bool,
    pub command: Process,
}

/// Who called (set by the port's auth layer): a submit token acts only on its own apps.
type Who = Option<axum::Extension<hearth_proto::auth::Caller>>;

/// `msg` as a gRPC request carrying who called.
fn as_caller<T>(msg: T, who: Who) -> Request<T> {
    let mut req = Request::new(msg);
    if let Some(axum::Extension(c)) = who {
        req.extensions_mut().insert(c);
    }
    req
}

async fn create(State(svc): Api, caller: Who, uri: Uri, body: Bytes) -> Answer {
    let c: CreateApp = parse(&body, &uri)?;
    let caller = caller.map(|axum::Extension(c)| c);
    let r = register(&svc, caller, c)
        .await
        .map_err(|s| ApiError::new(s, &uri))?;
    ok(
        json!({ "app_id": r.app_id, "driver_id": r.driver_id, "heartbeat_interval_ms": r.heartbeat_interval_ms }),
    )
}

/// Registers `c` for `caller` through `MasterService.RegisterApp`: the one way `POST
/// /v1/apps` and the web UI's form submit.
pub(crate) async fn register(
    svc: &Svc,
    caller: Option<hearth_proto::auth::Caller>,
    c: CreateApp,
) -> Result<pb::RegisterAppResponse, Status> {
    let process = |p: Process| pb::ProcessSpec {
        argv: p.argv,
        env: p.env.into_iter().collect(),
    };
    let req = pb::RegisterAppRequest {
        app: Some(pb::AppDescription {
            name: c.name,
            cores_per_executor: c.executor_cores,
            memory_per_executor_mb: c.executor_memory_mb,
            max_cores: c.max_cores,
            initial_executor_limit: c.initial_executors,
            command: Some(process(c.command)),
            user: c.user.unwrap_or_default(),
        }),
        driver: c.driver.map(|d| pb::DriverDescription {
            cores: d.cores,
            memory_mb: d.memory_mb,
            supervise: d.supervise,
            command: Some(process(d.command)),
        }),
        driver_url: c.driver_url,
    };
    // Who called (the submit token's name is recorded as the app's user).
    let mut req = Request::new(req);
    if let Some(c) = caller {
        req.extensions_mut().insert(c);
    }
    Ok(svc.register_app(req).await?.into_inner())
}

async fn heartbeat(State(svc): Api, Path(id): Path<String>, uri: Uri) -> Answer {
    let req = pb::AppHeartbeatRequest { app_id: id };
    let r = svc
        .app_heartbeat(Request::new(req))
        .await
        .map_err(|s| ApiError::new(s, &uri))?;
    ok(json!({ "exists": r.into_inner().exists }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Total {
    total: u32,
}

async fn set_total(
    State(svc): Api,
    who: Who,
    Path(id): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Answer {
    let t: Total = parse(&body, &uri)?;
    let req = pb::SetExecutorLimitRequest {
        app_id: id,
        limit: t.total,
    };
    ack(svc.set_executor_limit(as_caller(req, who)).await, &uri)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Named {
    executors: Vec<u32>,
}

async fn kill_executors(
    State(svc): Api,
    who: Who,
    Path(id): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Answer {
    let n: Named = parse(&body, &uri)?;
    let req = pb::KillExecutorsRequest {
        app_id: id,
        executor_ids: n.executors,
    };
    ack(svc.kill_executors(as_caller(req, who)).await, &uri)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    target: u32,
}

async fn scale(State(svc): Api, who: Who, Path(id): Path<String>, uri: Uri, body: Bytes) -> Answer {
    let t: Target = parse(&body, &uri)?;
    let req = pb::ScaleAppRequest {
        app_id: id,
        target_executors: t.target,
    };
    ack(svc.scale_app(as_caller(req, who)).await, &uri)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Finish {
    state: String,
    #[serde(default)]
    reason: String,
}

async fn finish(
    State(svc): Api,
    who: Who,
    Path(id): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Answer {
    let f: Finish = parse(&body, &uri)?;
    let req = pb::FinishAppRequest {
        app_id: id,
        state: f.state,
        reason: f.reason,
    };
    ack(svc.finish_app(as_caller(req, who)).await, &uri)
}

async fn kill(State(svc): Api, who: Who, Path(id): Path<String>, uri: Uri) -> Answer {
    let req = pb::KillAppRequest { app_id: id };
    ack(svc.kill_app(as_caller(req, who)).await, &uri)
}

/// One app as the leader knows it, with where each executor runs. Read on the leader
/// after a quorum confirms it still leads (a standby redirects), like `GetState`.
async fn read(State(svc): Api, Path(id): Path<String>, uri: Uri) -> Answer {
    let node = &svc.node;
    node.acting().map_err(|s| ApiError::new(s, &uri))?;
    node.read_barrier()
        .await
        .map_err(|s| ApiError::new(s, &uri))?;
    let view = node.status().await;
    let app_id = AppId::from(id.as_str());
    let found = view
        .active_apps
        .iter()
        .map(|a| (a, true))
        .chain(view.completed_apps.iter().map(|a| (a, false)))
        .find(|(a, _)| a.id == app_id);
    let Some((app, active)) = found else {
        let status = Status::not_found(format!("unknown app {id}"));
        return Err(ApiError::new(status, &uri));
    };
    let hosts: BTreeMap<_, _> = view
        .workers
        .iter()
        .map(|w| (w.info.identity.id.clone(), w.info.identity.host.clone()))
        .collect();
    ok(app_json(app, active, &hosts))
}

fn app_json(
    app: &AppInfo,
    active: bool,
    hosts: &BTreeMap<hearth_core::WorkerId, String>,
) -> serde_json::Value {
    let executors: Vec<_> = app
        .executors
        .values()
        .map(|e| {
            json!({
                "id": e.id,
                "worker": e.worker.to_string(),
                "host": hosts.get(&e.worker),
                "state": e.state.to_string(),
                "cores": e.cores,
                "memory_mb": e.memory_mb,
            })
        })
        .collect();
    json!({
        "id": app.id.to_string(),
        "name": app.desc.name,
        "state": app.state.to_string(),
        "active": active,
        "end_reason": app.end_reason,
        "executor_limit": app.executor_limit,
        "executors": executors,
    })
}
