//! Refusals and the not-leader hint as gRPC statuses, also over a real connection.

use crate::fixtures::*;
use hearth_core::Rejection;
use hearth_proto::pb;
use hearth_proto::status::{leader_hint, not_leader, rejection_status, LEADER_KEY};
use hearth_proto::ConvertError;
use tonic::{Code, Request, Response, Status};

#[test]
fn not_leader_carries_the_leader_address() {
    let s = not_leader(Some("10.0.0.2:7077"));
    assert_eq!(s.code(), Code::Unavailable);
    assert_eq!(s.message(), "not the leader; the leader is 10.0.0.2:7077");
    assert_eq!(
        s.metadata().get(LEADER_KEY).map(|v| v.to_str().ok()),
        Some(Some("10.0.0.2:7077"))
    );
    assert_eq!(leader_hint(&s), Some("10.0.0.2:7077".to_owned()));
}

#[test]
fn not_leader_without_a_known_leader_has_no_hint() {
    let s = not_leader(None);
    assert_eq!(s.code(), Code::Unavailable);
    assert_eq!(s.message(), "not the leader; no leader is known yet");
    assert_eq!(leader_hint(&s), None);
}

#[test]
fn an_address_that_cannot_be_metadata_is_dropped_not_panicked_on() {
    for bad in ["mäster:7077", "a\nb:7077"] {
        let s = not_leader(Some(bad));
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(leader_hint(&s), None);
    }
}

#[test]
fn other_statuses_have_no_hint() {
    assert_eq!(
        leader_hint(&Status::unavailable("connection refused")),
        None
    );
    assert_eq!(
        leader_hint(&rejection_status(&Rejection::UnknownApp(app_id(1)))),
        None
    );
}

#[test]
fn rejections_map_to_codes_with_display_text() {
    let cases = [
        (
            Rejection::UnknownWorker(worker_id("h", 1)),
            Code::NotFound,
            "unknown worker worker-20261123181528-h-1",
        ),
        (
            Rejection::UnknownApp(app_id(3)),
            Code::NotFound,
            "unknown app app-20261123181528-0003",
        ),
        (
            Rejection::UnknownDriver(driver_id(3)),
            Code::NotFound,
            "unknown driver driver-20261123181528-0003",
        ),
        (
            Rejection::UnknownExecutor(app_id(3), 4),
            Code::NotFound,
            "unknown executor app-20261123181528-0003/4",
        ),
        (
            Rejection::Invalid {
                field: "--executor-memory".into(),
                reason: "must be at least 1 MiB".into(),
            },
            Code::InvalidArgument,
            "invalid --executor-memory: must be at least 1 MiB",
        ),
        (
            Rejection::WrongState {
                what: "app app-20261123181528-0003".into(),
                state: "FINISHED".into(),
                why: "cannot scale an ended app".into(),
            },
            Code::FailedPrecondition,
            "app app-20261123181528-0003 is FINISHED: cannot scale an ended app",
        ),
        (
            Rejection::Unschedulable("needs 64 cores, the largest worker has 16".into()),
            Code::InvalidArgument,
            "cannot be scheduled: needs 64 cores, the largest worker has 16",
        ),
        (
            Rejection::StalePlacement("worker full".into()),
            Code::FailedPrecondition,
            "stale placement: worker full",
        ),
    ];
    for (rejection, code, message) in cases {
        let s = rejection_status(&rejection);
        assert_eq!((s.code(), s.message()), (code, message), "{rejection:?}");
    }
}

#[test]
fn convert_errors_are_invalid_argument() {
    let s = Status::from(ConvertError::OutOfRange {
        field: "RegisterWorkerRequest.port",
        value: 70_000,
        max: 65_535,
    });
    assert_eq!(s.code(), Code::InvalidArgument);
    assert_eq!(
        s.message(),
        "malformed request: RegisterWorkerRequest.port = 70000 is out of range (at most 65535)"
    );
}

/// A follower that answers every call with the not-leader status.
struct Follower;

#[tonic::async_trait]
impl pb::raft_service_server::RaftService for Follower {
    async fn append_entries(
        &self,
        _: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        Err(not_leader(Some("127.0.0.1:7077")))
    }
    async fn vote(&self, _: Request<pb::RaftPayload>) -> Result<Response<pb::RaftPayload>, Status> {
        Err(not_leader(None))
    }
    async fn install_snapshot(
        &self,
        _: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        Err(not_leader(None))
    }
    async fn pre_vote(
        &self,
        _: Request<pb::PreVoteRequest>,
    ) -> Result<Response<pb::PreVoteResponse>, Status> {
        Err(not_leader(None))
    }
}

#[tokio::test]
async fn the_hint_survives_a_real_grpc_call() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an ephemeral port");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::raft_service_server::RaftServiceServer::new(Follower))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );

    let mut client = pb::raft_service_client::RaftServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect to the in-process server");
    let err = client
        .append_entries(pb::RaftPayload {
            payload: b"write".to_vec(),
        })
        .await
        .expect_err("a follower refuses");
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(leader_hint(&err), Some("127.0.0.1:7077".to_owned()));

    let err = client
        .vote(pb::RaftPayload { payload: vec![] })
        .await
        .expect_err("a follower refuses");
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(leader_hint(&err), None);

    stop.send(()).expect("server still running");
    server
        .await
        .expect("server task joins")
        .expect("server stops cleanly");
}
