//! The web UI every master serves, on its HTTP port and (over HTTP/1.1) its gRPC port:
//! an overview at `/` (masters, a cluster summary, workers, apps, drivers, a submit
//! form), one page per app, driver and worker under `/ui/`, their processes' logs, and
//! the forms that act (log in and out, submit, kill, scale).
//!
//! Owns: rendering (maud templates, so every value is HTML-escaped unless a constant is
//! marked otherwise) and turning forms into the calls the API makes. It decides
//! nothing: a submission goes through [`crate::api::register`], a kill or scale through
//! the same `MasterService` method as gRPC and `/v1/apps`, so the leader check,
//! exactly-once answers and a submit token's limits ([`crate::grpc`]'s `owns`) are the
//! API's.
//!
//! A standby shows its replica, its role and a link to the leader's UI. The leader is
//! known by its gRPC address (Raft membership holds no other), and that port answers
//! the UI over HTTP/1.1 too, so the link is `//<leader's gRPC address>/`
//! (scheme-relative: the browser keeps http or https).
//!
//! Auth (`hearth_proto::auth`): pages are open reads, like `/json`; a log needs the
//! secret or the app's own submit token; a form's POST needs a login session (the cookie
//! `/ui/login` sets after checking the posted secret or token) and that session's CSRF
//! token in a hidden field. Without a cluster secret anyone may do anything, as with
//! the API.
//!
//! Pages refresh themselves: a small inline script fetches the same URL every few
//! seconds and swaps the `<main>` element (forms live outside it), so the scroll
//! position and what is being typed stay.

mod actions;
mod logs;
mod pages;
#[cfg(test)]
mod tests;

use crate::grpc::Svc;
use crate::node::Node;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use hearth_core::{MasterRole, Millis};
use hearth_proto::auth::{Caller, Session};
use hearth_proto::convert::StatusView;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::sync::Arc;

/// The UI's routes over `node`.
pub fn router(node: Arc<Node>) -> Router {
    let ui = Arc::new(Ui {
        svc: Svc::new(node.clone()),
        node,
    });
    Router::new()
        .route("/", get(pages::overview))
        .route("/ui/apps/{id}", get(pages::app))
        .route("/ui/drivers/{id}", get(pages::driver))
        .route("/ui/workers/{id}", get(pages::worker))
        .route("/ui/logs/{id}/{stream}", get(logs::read))
        .route("/ui/login", get(actions::login_form).post(actions::login))
        .route("/ui/logout", post(actions::logout))
        .route("/ui/submit", post(actions::submit))
        .route("/ui/apps/{id}/kill", post(actions::kill))
        .route("/ui/apps/{id}/scale", post(actions::scale))
        .route("/ui/drivers/{id}/kill", post(actions::kill_driver))
        .with_state(ui)
}

/// What the UI's handlers share.
pub(crate) struct Ui {
    node: Arc<Node>,
    /// The `MasterService` the API calls too.
    svc: Svc,
}

type UiState = axum::extract::State<Arc<Ui>>;

/// Who is looking: whether the cluster asks for credentials at all, and the login
/// session, if any (set by `hearth_proto::auth::require_secret`).
#[derive(Clone, Debug)]
pub(crate) struct Viewer {
    pub auth: bool,
    pub session: Option<Session>,
}

impl Viewer {
    fn of(ui: &Ui, session: Option<Extension<Session>>) -> Self {
        Viewer {
            auth: ui.node.config.secret.is_some(),
            session: session.map(|Extension(s)| s),
        }
    }

    /// Whether forms are shown: logged in, or a cluster without a secret.
    pub fn may_act(&self) -> bool {
        !self.auth || self.session.is_some()
    }

    fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.csrf())
    }

    /// The hidden field every form carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf()); }
    }

    fn who(&self) -> Option<String> {
        let s = self.session.as_ref()?;
        Some(match &s.caller.token {
            None => "the cluster secret".to_owned(),
            Some(name) => format!("submit token {name}"),
        })
    }
}

/// Everything a page's header shows.
pub(crate) struct Frame<'a> {
    pub view: &'a StatusView,
    /// This master's advertised (gRPC) address.
    pub this: &'a str,
    pub viewer: &'a Viewer,
    /// The path to come back to after logging in.
    pub here: &'a str,
}

impl Frame<'_> {
    fn leads(&self) -> bool {
        self.view.status != MasterRole::Standby
    }
}

/// The leader's UI, seen from any master: `//host:port/` (see the module header).
pub(crate) fn leader_href(leader: &str, path: &str) -> String {
    format!("//{leader}{path}")
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin-bottom:1em}\
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#eee}.banner{padding:.6em 1em;margin-bottom:1em;border-radius:4px}\
.standby{background:#fff4d6;border:1px solid #e0b84a}.leader{background:#e5f5e5;border:1px solid #7c7}\
.error{background:#fde2e2;border:1px solid #d77}form.inline{display:inline}\
aside{border:1px solid #ccc;padding:.5em 1em;margin:1em 0;max-width:40em}\
label{display:block;margin:.3em 0}code{background:#f4f4f4}nav a{margin-right:1em}";

/// Every few seconds: fetch this URL again and swap `<main>` (not while a field in it
/// has the focus), so the page stays current without losing the scroll position.
const REFRESH: &str = "(function(){setInterval(async function(){\
var m=document.querySelector('main');if(!m||m.contains(document.activeElement))return;\
try{var r=await fetch(location.href,{credentials:'same-origin'});if(!r.ok)return;\
var d=new DOMParser().parseFromString(await r.text(),'text/html');\
var n=d.querySelector('main');if(n){m.innerHTML=n.innerHTML;}}catch(e){}},3000);})();";

/// A whole page: header (this master, its role, the leader, who is logged in), the
/// refreshed `main`, and what follows it (forms).
pub(crate) fn layout(f: &Frame, title: &str, main: Markup, after: Markup) -> Markup {
    let v = f.view;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · hearth" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                nav {
                    a href="/" { "overview" }
                    @if let Some(who) = f.viewer.who() {
                        span { "logged in with " (who) " " }
                        form.inline method="post" action="/ui/logout" {
                            (f.viewer.csrf_field())
                            button type="submit" { "log out" }
                        }
                    } @else if f.viewer.auth {
                        a href={ "/ui/login?next=" (f.here) } { "log in" }
                    }
                }
                h1 { (title) }
                @if f.leads() {
                    div.banner.leader #role {
                        "This master (" (f.this) ") leads: " b { (v.status) } ", term " (v.term) "."
                    }
                } @else {
                    div.banner.standby #role {
                        "This master (" (f.this) ") is a " b { "STANDBY" } " (term " (v.term) "); "
                        @match &v.leader {
                            Some(l) => {
                                "the leader is "
                                a #leader-link href=(leader_href(l, f.here)) { (l) }
                                ". It shows this master's replica; act on the leader."
                            }
                            None => { "no leader is known now." }
                        }
                    }
                }
                main { (main) }
                (after)
                script { (PreEscaped(REFRESH)) }
            }
        }
    }
}

/// A page saying what went wrong, with `code`.
pub(crate) fn error_page(code: StatusCode, message: &str) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "hearth: " (code) } style { (PreEscaped(STYLE)) } }
            body {
                nav { a href="/" { "overview" } }
                div.banner.error #error { b { (code) } ": " (message) }
            }
        }
    };
    (code, body).into_response()
}

/// Why the UI refuses a request: an HTTP code and a sentence, answered as a page.
pub(crate) struct Refusal {
    pub code: StatusCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error_page(self.code, &self.message)
    }
}

/// A time for people: RFC 3339, or `-`.
pub(crate) fn time(t: Option<Millis>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.rfc3339_utc())
}

/// Who may act through a form: with a cluster secret, a login session whose CSRF token
/// the form carries (its caller, for the API's checks); without one, anyone.
pub(crate) fn authorise(viewer: &Viewer, csrf: &str) -> Result<Option<Caller>, Refusal> {
    if !viewer.auth {
        return Ok(None);
    }
    let Some(session) = &viewer.session else {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "log in first (the UI's forms act for a login session)",
        ));
    };
    if !session.csrf_ok(csrf) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or not this session's; reload the page and try again",
        ));
    }
    Ok(Some(session.caller.clone()))
}
