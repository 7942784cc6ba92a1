//! HA hole 11: a leader killed and restarted within its term announces the same term
//! from a new master process (incarnation); workers that registered with the old process
//! register again at once instead of at their next failed heartbeat (12–15 s in
//! RECOVERING seen in randomized runs). An announcement from the process a worker
//! registered with changes nothing.

mod common;

use common::{announce, announced_only, eventually, FakeMaster, TestWorker};
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
