//! The UI's forms: log in and out, submit, kill and scale an app, kill a driver. Every
//! action but logging in needs the login session's CSRF token ([`super::authorise`]) and
//! then makes the API's call for the session's caller, so a submit token acts only on
//! its own apps here as everywhere. Success answers `303 See Other` to the page to look
//! at next; a refusal is a page saying why, with the API's HTTP code.

use super::{authorise, error_page, leader_href, Refusal, UiState, Viewer};
use crate::api::{CreateApp, Driver, Process};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use hearth_proto::auth::{Caller, Session, SESSION_COOKIE, SESSION_SECS};
use hearth_proto::pb;
use hearth_proto::pb::master_service_server::MasterService;
use hearth_proto::status::leader_hint;
use maud::{html, PreEscaped, DOCTYPE};
use serde::Deserialize;
use std::time::{SystemTime, UNIX_EPOCH};
use tonic::Status;

/// `303 See Other` to `to`, with `extra` headers.
fn see_other(to: &str, extra: Option<(header::HeaderName, String)>) -> Response {
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
    if let Some((k, v)) = extra {
        if let Ok(v) = v.parse() {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

/// A refused or failed call as a page: the API's HTTP code, the reason, and where the
/// leader is when this master is not it.
fn refused(s: &Status, here: &str) -> Response {
    let (code, _) = crate::api::http_code(s);
    let code = if code == StatusCode::TEMPORARY_REDIRECT {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        code
    };
    let mut message = s.message().to_owned();
    if let Some(l) = leader_hint(s) {
        message = format!("{message} (the leader's page: {})", leader_href(&l, here));
    }
    error_page(code, &message)
}

/// `msg` as a `MasterService` request from `caller`.
fn request<T>(msg: T, caller: Option<Caller>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(c) = caller {
        req.extensions_mut().insert(c);
    }
    req
}

/// Where to go after logging in: a path on this site, else the overview.
fn local_path(next: Option<&str>) -> &str {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or("/")
}

#[derive(Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

pub(crate) async fn login_form(Query(q): Query<Next>) -> Response {
    let next = local_path(q.next.as_deref());
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "log in · hearth" } style { (PreEscaped(super::STYLE)) } }
            body {
                nav { a href="/" { "overview" } }
                h1 { "Log in" }
                p { "With the cluster secret (its file's text) or a submit token. "
                    "The session lasts " (SESSION_SECS / 3600) " hours, on every master of this cluster." }
                form method="post" action="/ui/login" {
                    input type="hidden" name="next" value=(next);
                    label { "secret or token " input #secret type="password" name="secret" required autocomplete="off"; }
                    button #login-button type="submit" { "log in" }
                }
            }
        }
    }
    .into_response()
}

#[derive(Deserialize)]
pub(crate) struct Login {
    secret: String,
    next: Option<String>,
}

/// Checks the posted secret or token like the `authorization` header, then sets the
/// session cookie (HttpOnly, SameSite=Strict).
pub(crate) async fn login(State(ui): UiState, Form(l): Form<Login>) -> Response {
    let next = local_path(l.next.as_deref());
    let Some(access) = ui.node.config.access() else {
        return see_other(next, None);
    };
    let Some(caller) = access.who(l.secret.trim()) else {
        tracing::warn!("refused a UI login: wrong secret or token");
        return error_page(
            StatusCode::UNAUTHORIZED,
            "that is neither the cluster secret nor a submit token",
        );
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let value = match access.open_session(&caller, now) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "cannot draw a session nonce from /dev/urandom");
            return error_page(StatusCode::INTERNAL_SERVER_ERROR, "cannot open a session");
        }
    };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={SESSION_SECS}; HttpOnly; SameSite=Strict"
    );
    see_other(next, Some((header::SET_COOKIE, cookie)))
}

#[derive(Deserialize)]
pub(crate) struct Csrf {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn logout(
    State(ui): UiState,
    session: Option<Extension<Session>>,
    Form(c): Form<Csrf>,
) -> Response {
    if let Err(refusal) = authorise(&Viewer::of(&ui, session), &c.csrf) {
        return refusal.into_response();
    }
    let gone = format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    see_other("/", Some((header::SET_COOKIE, gone)))
}

/// The submit form's fields (numbers as typed; checked here).
#[derive(Deserialize)]
pub(crate) struct Submit {
    #[serde(default)]
    csrf: String,
    name: String,
    command: String,
    #[serde(default)]
    args: String,
    cores: String,
    memory_mb: String,
    #[serde(default)]
    executors: String,
    #[serde(default)]
    executor_command: String,
}

fn number<T: std::str::FromStr>(field: &str, text: &str) -> Result<T, Refusal> {
    text.trim().parse().map_err(|_| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("{field}: {text:?} is not a whole number"),
        )
    })
}

impl Submit {
    /// What `POST /v1/apps` would take: a cluster-mode app whose driver runs the
    /// command with its arguments (one per line); `executors` executors of the same size
    /// run the executor command through `sh -c` (none: no executors, as `hearth submit`
    /// without `--executor-command`).
    fn into_app(self) -> Result<CreateApp, Refusal> {
        let cores: u32 = number("cores", &self.cores)?;
        let memory_mb: u64 = number("memory", &self.memory_mb)?;
        let executors: u32 = match self.executors.trim() {
            "" => 0,
            n => number("executors", n)?,
        };
        let mut argv = vec![self.command.trim().to_owned()];
        argv.extend(
            (self.args.lines())
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
        let script = match self.executor_command.trim() {
            "" => "true".to_owned(),
            c => c.to_owned(),
        };
        let process = |argv| Process {
            argv,
            env: Default::default(),
        };
        Ok(CreateApp {
            name: self.name.trim().to_owned(),
            executor_cores: Some(cores),
            executor_memory_mb: memory_mb,
            max_cores: (executors > 0).then(|| executors.saturating_mul(cores)),
            initial_executors: (executors == 0).then_some(0),
            driver_url: None,
            driver: Some(Driver {
                cores,
                memory_mb,
                supervise: false,
                command: process(argv),
            }),
            command: process(vec!["sh".into(), "-c".into(), script]),
            user: None,
        })
    }
}

pub(crate) async fn submit(
    State(ui): UiState,
    session: Option<Extension<Session>>,
    Form(s): Form<Submit>,
) -> Response {
    let caller = match authorise(&Viewer::of(&ui, session), &s.csrf) {
        Ok(c) => c,
        Err(refusal) => return refusal.into_response(),
    };
    let app = match s.into_app() {
        Ok(app) => app,
        Err(refusal) => return refusal.into_response(),
    };
    match crate::api::register(&ui.svc, caller, app).await {
        Ok(r) => see_other(&format!("/ui/apps/{}", r.app_id), None),
        Err(s) => refused(&s, "/"),
    }
}

pub(crate) async fn kill(
    State(ui): UiState,
    Path(id): Path<String>,
    session: Option<Extension<Session>>,
    Form(c): Form<Csrf>,
) -> Response {
    let caller = match authorise(&Viewer::of(&ui, session), &c.csrf) {
        Ok(c) => c,
        Err(refusal) => return refusal.into_response(),
    };
    let page = format!("/ui/apps/{id}");
    let req = pb::KillAppRequest { app_id: id };
    match ui.svc.kill_app(request(req, caller)).await {
        Ok(_) => see_other(&page, None),
        Err(s) => refused(&s, &page),
    }
}

#[derive(Deserialize)]
pub(crate) struct Scale {
    #[serde(default)]
    csrf: String,
    target: String,
}

pub(crate) async fn scale(
    State(ui): UiState,
    Path(id): Path<String>,
    session: Option<Extension<Session>>,
    Form(s): Form<Scale>,
) -> Response {
    let caller = match authorise(&Viewer::of(&ui, session), &s.csrf) {
        Ok(c) => c,
        Err(refusal) => return refusal.into_response(),
    };
    let target = match number("executors", &s.target) {
        Ok(t) => t,
        Err(refusal) => return refusal.into_response(),
    };
    let page = format!("/ui/apps/{id}");
    let req = pb::ScaleAppRequest {
        app_id: id,
        target_executors: target,
    };
    match ui.svc.scale_app(request(req, caller)).await {
        Ok(_) => see_other(&page, None),
        Err(s) => refused(&s, &page),
    }
}

pub(crate) async fn kill_driver(
    State(ui): UiState,
    Path(id): Path<String>,
    session: Option<Extension<Session>>,
    Form(c): Form<Csrf>,
) -> Response {
    let caller = match authorise(&Viewer::of(&ui, session), &c.csrf) {
        Ok(c) => c,
        Err(refusal) => return refusal.into_response(),
    };
    let page = format!("/ui/drivers/{id}");
    let req = pb::KillDriverRequest { driver_id: id };
    match ui.svc.kill_driver(request(req, caller)).await {
        Ok(_) => see_other(&page, None),
        Err(s) => refused(&s, &page),
    }
}
