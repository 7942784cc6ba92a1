//! The master's HTTP side: the status page at `/`, `GET /json` (rendered by
//! `hearth_proto::convert::json`, so `hearth status --json` prints the same document)
//! `GET /readyz` (200 when ALIVE, 503 otherwise, with the role in the body), `GET
//! /metrics` (Prometheus, [`crate::metrics`]), and the apps' JSON API ([`crate::api`]).

use crate::node::Node;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hearth_core::{AppInfo, DriverInfo, MasterRole, Millis};
use hearth_proto::convert::json::status_json;
use hearth_proto::convert::StatusView;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/json", get(json))
        .route("/json/", get(json))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(node.clone())
        .merge(crate::api::router(node))
}

pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let access = node.config.access();
    let tls = node.config.tls.clone();
    let app = router(node).layer(axum::middleware::from_fn_with_state(
        access,
        hearth_proto::auth::require_secret,
    ));
    // tonic's server, as on the gRPC port: the same TLS, and the peer's address for the
    // secret's refusal log lines.
    let served = tonic::transport::Server::builder()
        .accept_http1(true)
        .add_routes(tonic::service::Routes::from(app))
        .serve_with_incoming_shutdown(
            hearth_proto::tls::incoming(listener, tls.as_ref()),
            shutdown,
        )
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

/// Prometheus text format ([`crate::metrics`]).
async fn metrics(State(node): State<Arc<Node>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        {
            let view = node.status().await;
            let raft = node
                .raft_handle()
                .map(|h| h.raft.metrics().borrow().clone());
            crate::metrics::render(crate::metrics::Scrape {
                view: &view,
                is_leader: node.current().is_some(),
                raft: raft.as_ref(),
            })
        },
    )
        .into_response()
}

async fn json(State(node): State<Arc<Node>>) -> Json<serde_json::Value> {
    Json(status_json(&node.status().await))
}

async fn readyz(State(node): State<Arc<Node>>) -> Response {
    let role = node.role().await;
    let code = if role == MasterRole::Alive {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CONTENT_TYPE, "text/plain")],
        format!("{role}\n"),
    )
        .into_response()
}

async fn page(State(node): State<Arc<Node>>) -> Html<String> {
    Html(render(&node.status().await))
}

/// Escapes text for HTML (app names and commands come from users).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn time(t: Option<Millis>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.rfc3339_utc())
}

fn table(out: &mut String, title: &str, head: &[&str], rows: Vec<Vec<String>>) {
    let _ = write!(out, "<h2>{} ({})</h2><table><tr>", esc(title), rows.len());
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", esc(&cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// The status page: workers, apps with their executors, drivers.
pub fn render(s: &StatusView) -> String {
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>hearth master</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1em}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#eee}</style></head><body>",
    );
    let _ = write!(
        out,
        "<h1>hearth master at {}</h1><p>Status: <b>{}</b> &middot; term {} &middot; leader {}</p>",
        esc(s.leader.as_deref().unwrap_or("-")),
        s.status,
        s.term,
        esc(s.leader.as_deref().unwrap_or("unknown"))
    );
    workers_table(&mut out, s);
    for (title, apps) in [
        ("Running apps", &s.active_apps),
        ("Completed apps", &s.completed_apps),
    ] {
        apps_table(&mut out, title, apps);
    }
    executors_table(&mut out, s);
    for (title, drivers) in [
        ("Running drivers", &s.active_drivers),
        ("Completed drivers", &s.completed_drivers),
    ] {
        drivers_table(&mut out, title, drivers);
    }
    out.push_str("</body></html>");
    out
}

fn workers_table(out: &mut String, s: &StatusView) {
    let workers = s
        .workers
        .iter()
        .map(|w| {
            let i = &w.info;
            vec![
                i.identity.id.to_string(),
                i.identity.addr(),
                i.state.to_string(),
                format!("{} ({} used)", i.identity.cores, i.cores_used),
                format!("{} MiB ({} used)", i.identity.memory_mb, i.memory_used_mb),
                time(w.last_heartbeat),
            ]
        })
        .collect();
    let head = [
        "id",
        "address",
        "state",
        "cores",
        "memory",
        "last heartbeat",
    ];
    table(out, "Workers", &head, workers);
}

fn apps_table(out: &mut String, title: &str, apps: &[AppInfo]) {
    let rows = apps
        .iter()
        .map(|a| {
            vec![
                a.id.to_string(),
                a.desc.name.clone(),
                a.state.to_string(),
                a.cores_granted().to_string(),
                a.desc.memory_per_executor_mb.to_string(),
                a.submitted_at.rfc3339_utc(),
                a.end_reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let head = [
        "id",
        "name",
        "state",
        "cores",
        "MiB per executor",
        "submitted",
        "end reason",
    ];
    table(out, title, &head, rows);
}

fn executors_table(out: &mut String, s: &StatusView) {
    let executors = s
        .active_apps
        .iter()
        .flat_map(|a| {
            a.executors.values().map(move |e| {
                vec![
                    a.id.to_string(),
                    e.id.to_string(),
                    e.worker.to_string(),
                    e.state.to_string(),
                    e.cores.to_string(),
                    e.memory_mb.to_string(),
                ]
            })
        })
        .collect();
    let head = ["app", "executor", "worker", "state", "cores", "MiB"];
    table(out, "Executors", &head, executors);
}

fn drivers_table(out: &mut String, title: &str, drivers: &[DriverInfo]) {
    let rows = drivers
        .iter()
        .map(|d| {
            vec![
                d.id.to_string(),
                d.app.to_string(),
                d.state.to_string(),
                d.worker
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                d.desc.cores.to_string(),
                d.desc.memory_mb.to_string(),
                d.end_reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let head = ["id", "app", "state", "worker", "cores", "MiB", "end reason"];
    table(out, title, &head, rows);
}
