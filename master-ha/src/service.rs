//! A master's gRPC port: `MasterService` ([`crate::grpc`]), in Raft mode `RaftService`
//! and `RaftAdmin`, the extra services (drills), and over HTTP/1.1 the HTTP routes
//! ([`crate::http`]), all behind the cluster secret (`hearth_proto::auth`) and, with
//! `--tls-*`, mutual TLS (`hearth_proto::tls`).

use crate::error::MasterError;
use crate::grpc::Svc;
use crate::node::Node;
use hearth_proto::pb::master_service_server::MasterServiceServer;
use hearth_proto::MAX_MESSAGE;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// How often a master pings each client connection, and how long it waits for the
/// answer before closing it.
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves `MasterService` (and, in Raft mode, `RaftService` and `RaftAdmin`) on `listener`.
/// Every request is handled in a span naming this master (`node_id`).
pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MasterError> {
    let raft = node.raft_handle().map(|h| {
        crate::raft::runtime::OnRaftThreads::new(
            crate::raft::net::RaftServer::service(h),
            h.runtime(),
        )
    });
    let admin = node
        .raft_handle()
        .map(|h| crate::raft::admin::AdminServer::service(h.clone()));
    let extra = node.config.extra_grpc.clone();
    let node_id = node.config.id;
    let http = crate::http::router(node.clone());
    let access = node.config.access();
    let tls = node.config.tls.clone();
    let svc = MasterServiceServer::new(Svc::new(node))
        .max_decoding_message_size(hearth_proto::MAX_REQUEST)
        .max_encoding_message_size(MAX_MESSAGE);
    let mut routes = extra.unwrap_or_default().add_service(svc);
    if let Some(raft) = raft {
        routes = routes.add_service(raft);
    }
    if let Some(admin) = admin {
        routes = routes.add_service(admin);
    }
    // The HTTP side (status page, /json, /readyz, the apps' JSON API) answers here too,
    // over HTTP/1.1: a client needs only the masters' gRPC addresses (`HEARTH_MASTERS`),
    // and a standby's redirect names the leader's.
    let router = routes
        .into_axum_router()
        .merge(http)
        .layer(axum::middleware::from_fn_with_state(
            access,
            hearth_proto::auth::require_secret,
        ));
    // Pings every connection: one whose client vanished (host gone, process frozen) is
    // closed within ~10 s, and with it the leader watches waiting on it, so a new
    // leader does not adopt a worker from the offer of a watch nobody holds any more.
    let mut server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE))
        .http2_keepalive_timeout(Some(KEEPALIVE))
        .accept_http1(true)
        .trace_fn(move |_| tracing::info_span!("master", node_id));
    server
        .add_routes(tonic::service::Routes::from(router))
        .serve_with_incoming_shutdown(
            hearth_proto::tls::incoming(listener, tls.as_ref()),
            shutdown,
        )
        .await?;
    Ok(())
}
