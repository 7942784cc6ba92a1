//! The heartbeat interval (HA hole 9): a worker started without `--heartbeat-interval`
//! heartbeats as often as the leading master asks at registration, so a master with a
//! short worker timeout does not see default workers flap; an interval the operator set
//! is kept whatever the master asks.

mod common;

use common::{config, eventually, FakeMaster, TestWorker};
use std::time::Duration;

#[tokio::test]
async fn a_worker_without_its_own_interval_heartbeats_as_the_leader_asks() {
    let master = FakeMaster::start(false).await;
    master.advise_heartbeat(Duration::from_millis(50));
    let dir = tempfile::tempdir().unwrap();
    let cfg = hearth_worker::WorkerConfig {
        heartbeat_interval: None,
        ..config(vec![master.addr.clone()], dir.path())
    };
    let worker = TestWorker::start_with(cfg).await;
    // The default interval is 15 s: five heartbeats come this soon only as asked.
    eventually("five heartbeats, 50 ms apart", || {
        (master.heartbeats() >= 5).then_some(())
    })
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn an_interval_the_operator_set_is_kept_whatever_the_leader_asks() {
    let master = FakeMaster::start(false).await;
    master.advise_heartbeat(Duration::from_millis(50));
    let dir = tempfile::tempdir().unwrap();
    let cfg = hearth_worker::WorkerConfig {
        heartbeat_interval: Some(Duration::from_secs(30)),
        ..config(vec![master.addr.clone()], dir.path())
    };
    let worker = TestWorker::start_with(cfg).await;
    eventually("the registration", || {
        (!master.registrations().is_empty()).then_some(())
    })
    .await;
    // A window in which a worker following the advice would have heartbeated ten times.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(master.heartbeats(), 0);
    worker.stop().await;
}
