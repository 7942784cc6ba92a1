//! The UI's pages: the overview (`/`), one app, one driver, one worker. Each handler
//! reads the node's status once and renders it with a pure function of it (tested in
//! `tests.rs`).

use super::{error_page, layout, leader_href, time, Frame, Ui, UiState, Viewer};
use crate::node::Node;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use hearth_core::{AppInfo, AppState, DriverInfo, WorkerState, USER_ENV};
use hearth_proto::auth::Session;
use hearth_proto::convert::StatusView;
use maud::{html, Markup};
use std::collections::BTreeMap;

/// Raft's numbers as this master sees them: its log and what it applied; on the leader,
/// how far each member's log matches.
#[derive(Clone, Debug, Default)]
pub(crate) struct Replication {
    pub last_log: u64,
    pub applied: u64,
    /// Member id → its last log index known to match the leader's (leader only).
    pub matched: Option<BTreeMap<u64, u64>>,
}

fn replication(node: &Node) -> Option<Replication> {
    let m = node.raft_handle()?.raft.metrics().borrow().clone();
    Some(Replication {
        last_log: m.last_log_index.unwrap_or(0),
        applied: m.last_applied.map_or(0, |l| l.index),
        matched: m.replication.as_ref().map(|r| {
            r.iter()
                .map(|(id, l)| (*id, l.map_or(0, |l| l.index)))
                .collect()
        }),
    })
}

pub(crate) async fn overview(
    State(ui): UiState,
    session: Option<Extension<Session>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let viewer = Viewer::of(&ui, session);
    let raft = replication(&ui.node);
    let from = Offsets::parse(&query);
    framed(&ui, viewer, "/".into(), move |f| {
        overview_page(f, raft.as_ref(), &from)
    })
    .await
    .into_response()
}

/// Rows of each list the overview shows at once: a page of 5,000 workers took seconds
/// to load and to refresh.
pub(crate) const UI_ROWS: usize = 100;

/// The overview's lists, each with the query parameter saying where it starts.
const LISTS: [&str; 5] = [
    "workers",
    "apps",
    "completed_apps",
    "drivers",
    "completed_drivers",
];

/// Where each of the overview's lists starts (`/?workers=100&apps=200`); a parameter
/// missing or not a number is 0, others are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Offsets([usize; 5]);

impl Offsets {
    pub(crate) fn parse(query: &[(String, String)]) -> Self {
        let mut o = Offsets::default();
        for (k, v) in query {
            if let Some(i) = LISTS.iter().position(|l| l == k) {
                o.0[i] = v.parse().unwrap_or(0);
            }
        }
        o
    }

    fn of(&self, list: &str) -> usize {
        LISTS
            .iter()
            .position(|l| *l == list)
            .map_or(0, |i| self.0[i])
    }

    /// The overview's URL with `list` starting at `from`, the other lists where they are.
    fn with(&self, list: &str, from: usize) -> String {
        let params: Vec<String> = (LISTS.iter().zip(self.0))
            .map(|(l, at)| if *l == list { (l, from) } else { (l, at) })
            .filter(|(_, at)| *at > 0)
            .map(|(l, at)| format!("{l}={at}"))
            .collect();
        if params.is_empty() {
            "/".into()
        } else {
            format!("/?{}", params.join("&"))
        }
    }

    /// The rows of `items` the page shows for `list`, where they start, and the links
    /// to the rows before and after.
    fn page<'a, T>(&self, list: &str, items: &'a [T]) -> (&'a [T], Markup) {
        let total = items.len();
        let from = self
            .of(list)
            .min(total.saturating_sub(1) / UI_ROWS * UI_ROWS);
        let to = (from + UI_ROWS).min(total);
        let pager = html! {
            @if total > UI_ROWS {
                p.pager {
                    "rows " (from + 1) "–" (to) " of " (total)
                    @if from > 0 {
                        " · " a href=(self.with(list, 0)) { "first" }
                        " · " a href=(self.with(list, from.saturating_sub(UI_ROWS))) { "previous " (UI_ROWS) }
                    }
                    @if to < total {
                        " · " a href=(self.with(list, to)) { "next " (UI_ROWS) }
                        " · " a href=(self.with(list, (total - 1) / UI_ROWS * UI_ROWS)) { "last" }
                    }
                }
            }
        };
        (&items[from..to], pager)
    }
}

/// Renders `page` in the frame of `here` for `viewer`, off the runtime's threads
/// ([`Node::render`](crate::node::Node::render)): a big cluster's page takes a while.
async fn framed<T: Send + 'static>(
    ui: &Ui,
    viewer: Viewer,
    here: String,
    page: impl FnOnce(&Frame) -> T + Send + 'static,
) -> T {
    let this = ui.node.advertised().to_owned();
    ui.node
        .render(move |view| {
            page(&Frame {
                view,
                this: &this,
                viewer: &viewer,
                here: &here,
            })
        })
        .await
}

/// The overview: summary, masters, workers, apps, drivers (at most [`UI_ROWS`] rows of
/// each, from where `from` says); the submit form after.
pub(crate) fn overview_page(f: &Frame, raft: Option<&Replication>, from: &Offsets) -> Markup {
    let v = f.view;
    let main = html! {
        (summary(v))
        (masters(f, raft))
        (workers(v, from))
        (apps("Running apps", &v.active_apps, "apps", from))
        (apps("Completed apps", &v.completed_apps, "completed_apps", from))
        (drivers("Running drivers", &v.active_drivers, "drivers", from))
        (drivers("Completed drivers", &v.completed_drivers, "completed_drivers", from))
    };
    layout(f, "hearth cluster", main, submit_form(f))
}

fn summary(v: &StatusView) -> Markup {
    let alive: Vec<_> = (v.workers.iter())
        .filter(|w| w.info.state == WorkerState::Alive)
        .collect();
    let cores: u32 = alive.iter().map(|w| w.info.identity.cores).sum();
    let cores_used: u32 = alive.iter().map(|w| w.info.cores_used).sum();
    let mem: u64 = alive.iter().map(|w| w.info.identity.memory_mb).sum();
    let mem_used: u64 = alive.iter().map(|w| w.info.memory_used_mb).sum();
    let waiting = (v.active_apps.iter())
        .filter(|a| a.state == AppState::Waiting)
        .count();
    html! {
        table #summary {
            tr { th { "workers" } td { (alive.len()) " alive of " (v.workers.len()) } }
            tr { th { "cores" } td { (cores_used) " used of " (cores) } }
            tr { th { "memory" } td { (mem_used) " MiB used of " (mem) " MiB" } }
            tr { th { "apps" } td { (v.active_apps.len()) " active (" (waiting) " waiting), " (v.completed_apps.len()) " completed" } }
            tr { th { "drivers" } td { (v.active_drivers.len()) " active, " (v.completed_drivers.len()) " completed" } }
        }
    }
}

fn masters(f: &Frame, raft: Option<&Replication>) -> Markup {
    let v = f.view;
    let leader_log = raft.filter(|r| r.matched.is_some()).map(|r| r.last_log);
    html! {
        h2 { "Masters (" (v.masters.len()) ")" }
        @if let Some(r) = raft {
            p { "Here: last log index " (r.last_log) ", applied " (r.applied)
                ", apply lag " (r.last_log.saturating_sub(r.applied)) "."
                @if r.matched.is_none() { " Each member's replication lag shows on the leader's page." } }
        }
        table #masters {
            tr { th { "id" } th { "address" } th { "role" } th { "matched index" } th { "lag (entries)" } }
            @for m in &v.masters {
                @let matched = raft.and_then(|r| r.matched.as_ref()?.get(&m.id).copied());
                tr {
                    td { (m.id) }
                    td { a href=(leader_href(&m.address, "/")) { (m.address) } @if m.address == f.this { " (this one)" } }
                    td { (m.role) }
                    td { @if let Some(i) = matched { (i) } @else { "-" } }
                    td { @if let (Some(i), Some(l)) = (matched, leader_log) { (l.saturating_sub(i)) } @else { "-" } }
                }
            }
        }
    }
}

fn workers(v: &StatusView, from: &Offsets) -> Markup {
    let (rows, pager) = from.page("workers", &v.workers);
    html! {
        h2 { "Workers (" (v.workers.len()) ")" }
        (pager)
        table #workers {
            tr { th { "id" } th { "address" } th { "state" } th { "cores" } th { "memory" } th { "last heartbeat" } }
            @for w in rows {
                @let i = &w.info;
                tr {
                    td { a href={ "/ui/workers/" (i.identity.id) } { (i.identity.id) } }
                    td { (i.identity.addr()) }
                    td { (i.state) }
                    td { (i.identity.cores) " (" (i.cores_used) " used)" }
                    td { (i.identity.memory_mb) " MiB (" (i.memory_used_mb) " used)" }
                    td { (time(w.last_heartbeat)) }
                }
            }
        }
    }
}

fn apps(title: &str, apps: &[AppInfo], list: &str, from: &Offsets) -> Markup {
    let (rows, pager) = from.page(list, apps);
    html! {
        h2 { (title) " (" (apps.len()) ")" }
        (pager)
        table.apps {
            tr { th { "id" } th { "name" } th { "user" } th { "state" } th { "cores" } th { "MiB per executor" } th { "submitted" } th { "end reason" } }
            @for a in rows {
                tr {
                    td { a href={ "/ui/apps/" (a.id) } { (a.id) } }
                    td { (a.desc.name) }
                    td { (a.desc.user().unwrap_or("-")) }
                    td { (a.state) }
                    td { (a.cores_granted()) }
                    td { (a.desc.memory_per_executor_mb) }
                    td { (a.submitted_at.rfc3339_utc()) }
                    td { (a.end_reason.as_deref().unwrap_or("")) }
                }
            }
        }
    }
}

fn drivers(title: &str, drivers: &[DriverInfo], list: &str, from: &Offsets) -> Markup {
    let (rows, pager) = from.page(list, drivers);
    html! {
        h2 { (title) " (" (drivers.len()) ")" }
        (pager)
        table.drivers {
            tr { th { "id" } th { "app" } th { "state" } th { "worker" } th { "cores" } th { "MiB" } th { "end reason" } }
            @for d in rows {
                tr {
                    td { a href={ "/ui/drivers/" (d.id) } { (d.id) } }
                    td { a href={ "/ui/apps/" (d.app) } { (d.app) } }
                    td { (d.state) }
                    td { @if let Some(w) = &d.worker { a href={ "/ui/workers/" (w) } { (w) } } }
                    td { (d.desc.cores) }
                    td { (d.desc.memory_mb) }
                    td { (d.end_reason.as_deref().unwrap_or("")) }
                }
            }
        }
    }
}

/// What the form under a page says when it cannot be used here.
fn cannot_act(f: &Frame) -> Option<Markup> {
    if !f.leads() {
        let to = f.view.leader.as_deref().map(|l| leader_href(l, f.here));
        return Some(html! {
            p { "Act on the leader: "
                @if let Some(href) = to { a href=(href) { "its page" } } @else { "none is known now" } "." }
        });
    }
    (!f.viewer.may_act()).then(|| {
        html! { p { a href={ "/ui/login?next=" (f.here) } { "Log in" } " to act." } }
    })
}

/// The submit form: a cluster-mode app whose driver runs `command args...`, with
/// optional executors running a shell command.
fn submit_form(f: &Frame) -> Markup {
    html! {
        aside #submit {
            h2 { "Submit an app" }
            @if let Some(why) = cannot_act(f) { (why) } @else {
                form method="post" action="/ui/submit" {
                    (f.viewer.csrf_field())
                    label { "name " input name="name" required; }
                    label { "driver command " input name="command" required placeholder="/usr/bin/python3"; }
                    label { "arguments, one per line " br; textarea name="args" rows="3" cols="50" {} }
                    label { "cores " input name="cores" type="number" min="1" value="1"; }
                    label { "memory (MiB) " input name="memory_mb" type="number" min="1" value="512"; }
                    label { "executors " input name="executors" type="number" min="0" value="0"; }
                    label { "executor command (sh -c) " input name="executor_command" size="50"; }
                    button type="submit" #submit-button { "submit" }
                }
            }
        }
    }
}

/// The page of one app, driver or worker (`what` `id`, at `here`), rendered off the
/// runtime's threads ([`framed`]); 404 when `page` finds no such thing.
async fn one_page(
    ui: &Ui,
    session: Option<Extension<Session>>,
    what: &'static str,
    here: String,
    id: String,
    page: fn(&Frame, &str) -> Option<Markup>,
) -> Response {
    let viewer = Viewer::of(ui, session);
    let wanted = id.clone();
    let found = framed(ui, viewer, here, move |f| page(f, &wanted)).await;
    match found {
        Some(page) => page.into_response(),
        None => error_page(StatusCode::NOT_FOUND, &format!("unknown {what} {id}")),
    }
}

pub(crate) async fn app(
    State(ui): UiState,
    Path(id): Path<String>,
    session: Option<Extension<Session>>,
) -> Response {
    one_page(&ui, session, "app", format!("/ui/apps/{id}"), id, app_page).await
}

/// One app: what it is, its executors with their logs; kill and scale after.
pub(crate) fn app_page(f: &Frame, id: &str) -> Option<Markup> {
    let v = f.view;
    let (a, active) = (v.active_apps.iter().map(|a| (a, true)))
        .chain(v.completed_apps.iter().map(|a| (a, false)))
        .find(|(a, _)| a.id.as_str() == id)?;
    let env: Vec<_> = (a.desc.command.env.keys())
        .filter(|k| *k != USER_ENV)
        .collect();
    let main = html! {
        table #app {
            tr { th { "name" } td { (a.desc.name) } }
            tr { th { "state" } td #app-state { (a.state) } }
            tr { th { "user" } td { (a.desc.user().unwrap_or("-")) } }
            tr { th { "submitted" } td { (a.submitted_at.rfc3339_utc()) } }
            tr { th { "ended" } td { (time(a.ended_at)) } }
            tr { th { "end reason" } td { (a.end_reason.as_deref().unwrap_or("")) } }
            tr { th { "driver" } td { @if let Some(d) = &a.driver { a href={ "/ui/drivers/" (d) } { (d) } } @else { "client mode: " (a.driver_url.as_deref().unwrap_or("-")) } } }
            tr { th { "cores granted" } td { (a.cores_granted()) " (cap " (a.desc.max_cores.map_or("default".to_owned(), |c| c.to_string())) ")" } }
            tr { th { "executor limit" } td { (a.executor_limit.map_or("none".to_owned(), |l| l.to_string())) } }
            tr { th { "executor command" } td { code { (a.desc.command.argv.join(" ")) } } }
            tr { th { "environment" } td { (env.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")) " (values not shown)" } }
        }
        h2 { "Executors (" (a.executors.len()) ")" }
        table #executors {
            tr { th { "id" } th { "worker" } th { "state" } th { "cores" } th { "MiB" } th { "logs" } }
            @for e in a.executors.values() {
                tr {
                    td { (e.id) }
                    td { a href={ "/ui/workers/" (e.worker) } { (e.worker) } }
                    td { (e.state) }
                    td { (e.cores) }
                    td { (e.memory_mb) }
                    td { (log_links(a.id.as_str(), Some(e.id))) }
                }
            }
        }
    };
    let after = html! {
        @if active {
            aside #actions {
                h2 { "Act on this app" }
                @if let Some(why) = cannot_act(f) { (why) } @else {
                    form method="post" action={ "/ui/apps/" (a.id) "/kill" } {
                        (f.viewer.csrf_field())
                        button type="submit" #kill-button { "kill the app" }
                    }
                    form method="post" action={ "/ui/apps/" (a.id) "/scale" } {
                        (f.viewer.csrf_field())
                        label { "executors " input name="target" type="number" min="0" required; }
                        button type="submit" #scale-button { "scale" }
                    }
                }
            }
        }
    };
    Some(layout(f, &format!("app {}", a.id), main, after))
}

/// Links to a process's stdout and stderr: `id` a driver or app (with `executor`).
fn log_links(id: &str, executor: Option<u32>) -> Markup {
    let q = executor.map_or(String::new(), |n| format!("?executor={n}"));
    html! {
        a.stdout href={ "/ui/logs/" (id) "/stdout" (q) } { "stdout" } " "
        a.stderr href={ "/ui/logs/" (id) "/stderr" (q) } { "stderr" }
    }
}

pub(crate) async fn driver(
    State(ui): UiState,
    Path(id): Path<String>,
    session: Option<Extension<Session>>,
) -> Response {
    one_page(
        &ui,
        session,
        "driver",
        format!("/ui/drivers/{id}"),
        id,
        driver_page,
    )
    .await
}

/// One driver: what it runs, where, its logs; kill after.
fn driver_page(f: &Frame, id: &str) -> Option<Markup> {
    let v = f.view;
    let (d, active) = (v.active_drivers.iter().map(|d| (d, true)))
        .chain(v.completed_drivers.iter().map(|d| (d, false)))
        .find(|(d, _)| d.id.as_str() == id)?;
    let main = html! {
        table #driver {
            tr { th { "app" } td { a href={ "/ui/apps/" (d.app) } { (d.app) } } }
            tr { th { "state" } td #driver-state { (d.state) } }
            tr { th { "worker" } td { @if let Some(w) = &d.worker { a href={ "/ui/workers/" (w) } { (w) } } @else { "-" } } }
            tr { th { "cores" } td { (d.desc.cores) } }
            tr { th { "memory" } td { (d.desc.memory_mb) " MiB" } }
            tr { th { "supervised" } td { (d.desc.supervise) } }
            tr { th { "command" } td { code { (d.desc.command.argv.join(" ")) } } }
            tr { th { "submitted" } td { (d.submitted_at.rfc3339_utc()) } }
            tr { th { "ended" } td { (time(d.ended_at)) } }
            tr { th { "end reason" } td { (d.end_reason.as_deref().unwrap_or("")) } }
            tr { th { "relaunch of" } td { (d.relaunch_of.as_ref().map_or("-".to_owned(), |r| r.to_string())) } }
            tr { th { "logs" } td { (log_links(d.id.as_str(), None)) } }
        }
    };
    let after = html! {
        @if active {
            aside #actions {
                @if let Some(why) = cannot_act(f) { (why) } @else {
                    form method="post" action={ "/ui/drivers/" (d.id) "/kill" } {
                        (f.viewer.csrf_field())
                        button type="submit" #kill-driver-button { "kill the driver" }
                    }
                }
            }
        }
    };
    Some(layout(f, &format!("driver {}", d.id), main, after))
}

pub(crate) async fn worker(
    State(ui): UiState,
    Path(id): Path<String>,
    session: Option<Extension<Session>>,
) -> Response {
    one_page(
        &ui,
        session,
        "worker",
        format!("/ui/workers/{id}"),
        id,
        worker_page,
    )
    .await
}

/// One worker: its resources and the processes it runs, with their logs.
fn worker_page(f: &Frame, id: &str) -> Option<Markup> {
    let v = f.view;
    let w = v
        .workers
        .iter()
        .find(|w| w.info.identity.id.as_str() == id)?;
    let i = &w.info;
    let executor = |app: &hearth_core::AppId, n: u32| {
        (v.active_apps.iter())
            .find(|a| &a.id == app)
            .and_then(|a| a.executors.get(&n))
    };
    let driver = |d: &hearth_core::DriverId| v.active_drivers.iter().find(|x| &x.id == d);
    let main = html! {
        table #worker {
            tr { th { "address" } td { (i.identity.addr()) } }
            tr { th { "state" } td { (i.state) } }
            tr { th { "cores" } td { (i.identity.cores) " (" (i.cores_used) " used, " (i.cores_free()) " free)" } }
            tr { th { "memory" } td { (i.identity.memory_mb) " MiB (" (i.memory_used_mb) " used)" } }
            tr { th { "registered" } td { (i.registered_at.rfc3339_utc()) } }
            tr { th { "last heartbeat" } td { (time(w.last_heartbeat)) } }
            tr { th { "dead since" } td { (time(i.dead_since)) } }
        }
        h2 { "Executors (" (i.executors.len()) ")" }
        table #worker-executors {
            tr { th { "app" } th { "executor" } th { "state" } th { "cores" } th { "MiB" } th { "logs" } }
            @for (app, n) in &i.executors {
                @let e = executor(app, *n);
                tr {
                    td { a href={ "/ui/apps/" (app) } { (app) } }
                    td { (n) }
                    td { (e.map_or("-".to_owned(), |e| e.state.to_string())) }
                    td { (e.map_or(0, |e| e.cores)) }
                    td { (e.map_or(0, |e| e.memory_mb)) }
                    td { (log_links(app.as_str(), Some(*n))) }
                }
            }
        }
        h2 { "Drivers (" (i.drivers.len()) ")" }
        table #worker-drivers {
            tr { th { "driver" } th { "app" } th { "state" } th { "logs" } }
            @for d in &i.drivers {
                @let info = driver(d);
                tr {
                    td { a href={ "/ui/drivers/" (d) } { (d) } }
                    td { @if let Some(x) = info { a href={ "/ui/apps/" (x.app) } { (x.app) } } }
                    td { (info.map_or("-".to_owned(), |x| x.state.to_string())) }
                    td { (log_links(d.as_str(), None)) }
                }
            }
        }
    };
    Some(layout(
        f,
        &format!("worker {}", i.identity.id),
        main,
        html! {},
    ))
}
