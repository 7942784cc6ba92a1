//! Requests a worker must not let move its fence or its leader: one that cannot be
//! carried out, an absurd term (`u64::MAX` locked a worker out of every real leader,
//! also after restarts), and an announcement naming an address outside `--masters`.

mod common;

use common::{announce, announced_only, eventually, sh, FakeMaster, TestWorker};

fn fence(worker: &TestWorker) -> String {
    std::fs::read_to_string(worker.work_dir.join("worker-term")).unwrap_or_default()
}

#[tokio::test]
async fn a_request_that_cannot_be_carried_out_or_an_absurd_term_never_moves_the_fence() {
    let master = FakeMaster::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let worker = TestWorker::start(vec![master.addr.clone()], dir.path()).await;
    let mut control = worker.client().await;
    let ok = control
        .launch_executor(worker.launch(1, "app-1", 0, &sh("sleep 100")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.refused, None);
    assert_eq!(fence(&worker), "1\n");

    // A launch with no command, at a newer term: refused, the fence stays.
    let bad = control
        .launch_executor(worker.launch(5, "app-1", 1, &[]))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    assert_eq!(fence(&worker), "1\n");

    // Absurd terms, for an executor that does not even exist.
    let clock_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for term in [u64::MAX, 1 << 63, clock_ms + (1 << 33)] {
        let ack = control
            .kill_executor(worker.kill(term, "app-nope", 9))
            .await
            .unwrap()
            .into_inner();
        let why = ack.refused.expect("refused");
        assert!(why.starts_with(&format!("absurd term {term}")), "{why}");
        assert_eq!(ack.highest_term, 1);
        assert_eq!(fence(&worker), "1\n");
    }

    // The real next leader is obeyed.
    let ack = control
        .kill_executor(worker.kill(2, "app-1", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ack.refused, ack.highest_term), (None, 2));
    assert_eq!(fence(&worker), "2\n");
    worker.stop().await;
}

#[tokio::test]
async fn an_announcement_naming_a_stranger_is_not_dialled() {
    let master = FakeMaster::start(false).await;
    let stranger = FakeMaster::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let worker = TestWorker::start_with(announced_only(&master, dir.path())).await;
    eventually("the first registration", || {
        (master.registrations().len() == 1).then_some(())
    })
    .await;
    let mut control = worker.client().await;
    // "The leader, restarted within its term, is now at the stranger's address."
    control
        .master_changed(announce(&stranger.addr, 1, 9, 3))
        .await
        .unwrap();
    // The worker registers again, through its own list: with the real master.
    eventually("a registration with the real master", || {
        (master.registrations().len() == 2).then_some(())
    })
    .await;
    assert!(
        stranger.received().is_empty(),
        "the stranger was dialled: {:?}",
        stranger.received()
    );
    // Nor does a stranger's announcement of a far newer term move the fence: the real
    // leader (term 1) is still obeyed.
    assert_eq!(fence(&worker), "1\n");
    control
        .master_changed(announce(&stranger.addr, 50, 9, 4))
        .await
        .unwrap();
    assert_eq!(fence(&worker), "1\n");
    let ack = control
        .kill_executor(worker.kill(1, "app-x", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.refused, None);
    assert!(stranger.received().is_empty());
    worker.stop().await;
}

/// HA hole 5: the fence moves to the new leader's term before the worker's report is
/// taken (on its announcement) and when the leader answers the registration; a launch the
/// deposed leader sends late is refused, so no process escapes the new leader's
/// reconciliation.
#[tokio::test]
async fn a_late_command_of_a_deposed_leader_is_refused_once_the_new_one_is_known() {
    let master = FakeMaster::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let worker = TestWorker::start_with(announced_only(&master, dir.path())).await;
    eventually("the first registration", || {
        (master.registrations().len() == 1).then_some(())
    })
    .await;
    let mut control = worker.client().await;
    let ok = control
        .launch_executor(worker.launch(5, "app-1", 0, &sh("sleep 100")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ok.refused, fence(&worker)), (None, "5\n".to_owned()));

    // The new leader (term 6) announces itself: the fence is at 6 at once.
    let before = master.registrations().len();
    control
        .master_changed(announce(&master.addr, 6, 2, 0))
        .await
        .unwrap();
    assert_eq!(fence(&worker), "6\n");
    eventually("the registration with the new leader", || {
        (master.registrations().len() > before).then_some(())
    })
    .await;
    let late = control
        .launch_executor(worker.launch(5, "app-1", 1, &sh("sleep 100")))
        .await
        .unwrap()
        .into_inner();
    assert!(late
        .refused
        .is_some_and(|w| w.starts_with("stale term 5 < 6")));

    // A registration answered at term 9 (the announcement that made it said 6): the
    // fence moves to 9 with the answer.
    master.set_term(9);
    master.set_incarnation(42);
    control
        .master_changed(announce(&master.addr, 6, 2, 42))
        .await
        .unwrap();
    eventually("a registration answered at term 9", || {
        (fence(&worker) == "9\n").then_some(())
    })
    .await;
    let late = control
        .kill_executor(worker.kill(8, "app-1", 0))
        .await
        .unwrap()
        .into_inner();
    assert!(late
        .refused
        .is_some_and(|w| w.starts_with("stale term 8 < 9")));
    worker.stop().await;
}
