//! HA hole 11: a leader killed and restarted within its term announces the same term
//! from a new master process (incarnation); workers that registered with the old process
//! register again at once instead of at their next failed heartbeat (12–15 s in
//! RECOVERING seen in randomized runs). An announcement from the process a worker
//! registered with changes nothing.

mod common;

use common::{announce, announced_only, eventually, sh, FakeMaster, TestWorker};
use std::time::Duration;

#[tokio::test]
async fn a_leader_restarted_within_its_term_is_registered_with_again() {
    let master = FakeMaster::start(false).await;
    master.set_incarnation(7);
    let dir = tempfile::tempdir().unwrap();
    let worker = TestWorker::start_with(announced_only(&master, dir.path())).await;
    eventually("the first registration", || {
        (master.registrations().len() == 1).then_some(())
    })
    .await;
    let same_term = |incarnation| announce(&master.addr, 1, 1, incarnation);
    let mut control = worker.client().await;

    // The same process announcing its term again (a late or repeated announcement).
    control.master_changed(same_term(7)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        master.registrations().len(),
        1,
        "registered again for nothing"
    );

    // The leader process restarted, same term: register with the new process now.
    master.set_incarnation(8);
    control.master_changed(same_term(8)).await.unwrap();
    eventually("a registration with the restarted leader", || {
        (master.registrations().len() == 2).then_some(())
    })
    .await;
    // Registered with process 8 now: its announcement changes nothing more.
    control.master_changed(same_term(8)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(master.registrations().len(), 2);
    worker.stop().await;
}

/// A new leader that registered this worker from the registration its leader watch
/// offered (issue 15): the worker takes the watch's answer as a registration (the new
/// term fenced, heartbeats to the new leader) and calls RegisterWorker no more. Its watch
/// offered what it ran.
#[tokio::test]
async fn a_worker_registered_from_its_watch_offer_heartbeats_without_registering() {
    let master = FakeMaster::start(false).await;
    master.set_incarnation(7);
    // Watches are answered (after 100 ms: "this master leads in term 1") from the start,
    // so each is renewed with what runs now.
    master.answer_watches();
    let dir = tempfile::tempdir().unwrap();
    let worker = TestWorker::start(vec![master.addr.clone()], dir.path()).await;
    eventually("the first registration", || {
        (!master.registrations().is_empty()).then_some(())
    })
    .await;
    let mut control = worker.client().await;
    let ack = control
        .launch_executor(worker.launch(1, "app-1", 0, &sh("sleep 600")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.refused, None);
    eventually("a watch offering the executor RUNNING", || {
        master.offers().into_iter().find(|o| {
            (o.executors.iter())
                .any(|e| e.app_id == "app-1" && e.executor_id == 0 && e.state == "RUNNING")
        })
    })
    .await;

    let registrations = master.registrations().len();
    master.adopt_at(2, 9);
    let heartbeats = master.heartbeats();
    eventually("heartbeats to the new leader", || {
        (master.heartbeats() >= heartbeats + 3).then_some(())
    })
    .await;
    assert_eq!(
        master.registrations().len(),
        registrations,
        "registered again although the new leader said it had registered the worker"
    );
    // The new leader's term is this worker's fence: a command of the old term is refused.
    let stale = control
        .launch_executor(worker.launch(1, "app-1", 1, &sh("sleep 600")))
        .await
        .unwrap()
        .into_inner();
    assert!(stale.refused.is_some(), "{stale:?}");
    assert_eq!(stale.highest_term, 2);
    worker.stop().await;
}
