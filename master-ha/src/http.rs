//! The master's HTTP side: the web UI at `/` and `/ui/...` ([`crate::ui`]), `GET /json` (rendered by
//! `hearth_proto::convert::json`, so `hearth status --json` prints the same document;
//! optional `?state=S[,S...]&offset=K&limit=N&executors=0|1`, read and applied by
//! hearth-core's `listing` rules, a refused one answered `400` with what is allowed),
//! `GET /readyz` (200 when ALIVE, 503 otherwise, with the role in the body), `GET
//! /metrics` (Prometheus, [`crate::metrics`]), and the apps' JSON API ([`crate::api`]).

use crate::node::Node;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hearth_core::listing::parse_status_query;
use hearth_core::MasterRole;
use hearth_proto::convert::json::status_json_with;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/json", get(json))
        .route("/json/", get(json))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(node.clone())
        .merge(crate::api::router(node.clone()))
        .merge(crate::ui::router(node))
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
                watching: node.watching_count(),
                adoptable: node.adoptable_count(),
                raft: raft.as_ref(),
            })
        },
    )
        .into_response()
}

async fn json(
    State(node): State<Arc<Node>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let q = match parse_status_query(&params) {
        Ok(q) => q,
        Err(e) => {
            let body = serde_json::json!({"code": "INVALID", "error": e});
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    // Rendered and encoded off the runtime's threads ([`Node::render`]); without a
    // filter or page, the whole view as it always was.
    let body = node
        .render(move |view| {
            if q.list.is_given() {
                serde_json::to_vec(&status_json_with(&view.paged(&q.list), q.executors))
            } else {
                serde_json::to_vec(&status_json_with(view, q.executors))
            }
        })
        .await;
    match body {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
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
