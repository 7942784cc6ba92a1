//! What a real worker tells the master: registration contents, state reports of real
//! processes, re-registration, delivery of reports made while no master answered, and
//! supervised drivers. The master is a recording stand-in (`FakeMaster`); the worker and
//! its processes are real.

mod common;

use common::*;

fn exec_states(m: &FakeMaster, app: &str, exec: u32) -> Vec<String> {
    states(&m.executor_reports(app, exec), |r| &r.state)
}

fn driver_states(m: &FakeMaster, driver: &str) -> Vec<String> {
    states(&m.driver_reports(driver), |r| &r.state)
}

/// Waits until the reports of `app/exec` end with a terminal state and returns them.
async fn ended(
    m: &FakeMaster,
    app: &str,
    exec: u32,
) -> Vec<hearth_proto::pb::ExecutorStateChangedRequest> {
    eventually(&format!("a terminal report for {app}/{exec}"), || {
        let r = m.executor_reports(app, exec);
        r.last()
            .is_some_and(|l| l.state != "RUNNING" && l.state != "LAUNCHING")
            .then_some(r)
    })
    .await
}

#[tokio::test]
async fn executors_report_running_then_exited_failed_or_killed() {
    let m = FakeMaster::start(false).await;
    let tmp = tempfile::tempdir().unwrap();
    let w = TestWorker::start(vec![m.addr.clone()], tmp.path()).await;
    let first = eventually("a registration", || m.registrations().into_iter().next()).await;
    assert_eq!(first.worker_id, w.id);
    assert_eq!(
        (first.host.as_str(), first.port),
        ("127.0.0.1", u32::from(w.addr.port()))
    );
    assert_eq!((first.cores, first.memory_mb), (4, 1024));
    assert!(first.executors.is_empty() && first.driver_ids.is_empty());

    let mut c = w.client().await;
    tracing::info!("--- exit 0, exit 3, a missing program, a kill");
    c.launch_executor(w.launch(1, "app-r", 0, &sh("exit 0")))
        .await
        .unwrap();
    c.launch_executor(w.launch(1, "app-r", 1, &sh("exit 3")))
        .await
        .unwrap();
    c.launch_executor(w.launch(1, "app-r", 2, &["/nonexistent/hearth-test-program"]))
        .await
        .unwrap();
    c.launch_executor(w.launch(1, "app-r", 3, &sh("exec sleep 1000")))
        .await
        .unwrap();

    let r = ended(&m, "app-r", 0).await;
    assert_eq!(states(&r, |r| &r.state), ["RUNNING", "EXITED"]);
    assert_eq!(r[1].exit_code, Some(0));
    assert_eq!(r[1].worker_id, w.id);

    let r = ended(&m, "app-r", 1).await;
    assert_eq!(states(&r, |r| &r.state), ["RUNNING", "FAILED"]);
    assert_eq!(r[1].exit_code, Some(3));

    let r = ended(&m, "app-r", 2).await;
    assert_eq!(states(&r, |r| &r.state), ["FAILED"], "never RUNNING: {r:?}");
    assert!(
        r[0].message.contains("No such file"),
        "message: {}",
        r[0].message
    );
    assert!(r[0].message.contains("/nonexistent/hearth-test-program"));

    eventually("executor 3 RUNNING", || {
        (exec_states(&m, "app-r", 3) == ["RUNNING"]).then_some(())
    })
    .await;
    c.kill_executor(w.kill(1, "app-r", 3)).await.unwrap();
    let r = ended(&m, "app-r", 3).await;
    assert_eq!(states(&r, |r| &r.state), ["RUNNING", "KILLED"]);
    assert!(r[1].message.contains("master"), "{}", r[1].message);
    w.stop().await;
}

#[tokio::test]
async fn a_reregistration_reports_what_runs() {
    let m = FakeMaster::start(false).await;
    let tmp = tempfile::tempdir().unwrap();
    let w = TestWorker::start(vec![m.addr.clone()], tmp.path()).await;
    eventually("a registration", || m.registrations().into_iter().next()).await;
    let mut c = w.client().await;
    c.launch_executor(w.launch(1, "app-s", 0, &sh("exec sleep 1000")))
        .await
        .unwrap();
    c.launch_executor(w.launch(1, "app-s", 1, &sh("exit 0")))
        .await
        .unwrap();
    c.launch_driver(w.launch_driver(1, "driver-s", false, "exec sleep 1000"))
        .await
        .unwrap();
    eventually("executor 0 RUNNING", || {
        (!exec_states(&m, "app-s", 0).is_empty()).then_some(())
    })
    .await;
    ended(&m, "app-s", 1).await;
    let running = eventually("driver RUNNING", || {
        m.driver_reports("driver-s").into_iter().next()
    })
    .await;
    assert_eq!(running.state, "RUNNING");

    tracing::info!("--- the master asks for a re-registration");
    let before = m.registrations().len();
    m.ask_reregister();
    let reg = eventually("a second registration", || {
        m.registrations().into_iter().nth(before)
    })
    .await;
    assert_eq!(
        reg.executors.len(),
        1,
        "only the live executor: {:?}",
        reg.executors
    );
    let e = &reg.executors[0];
    assert_eq!(
        (e.app_id.as_str(), e.executor_id, e.state.as_str()),
        ("app-s", 0, "RUNNING")
    );
    assert_eq!(reg.driver_ids, ["driver-s"]);
    w.stop().await;
}

#[tokio::test]
async fn reports_made_while_no_master_answers_are_delivered_after_registering_again() {
    let m = FakeMaster::start(false).await;
    let tmp = tempfile::tempdir().unwrap();
    let w = TestWorker::start(vec![m.addr.clone()], tmp.path()).await;
    eventually("a registration", || m.registrations().into_iter().next()).await;
    let mut c = w.client().await;
    let waits_for_go = "while [ ! -e go ]; do sleep 0.05; done; exit 4";
    c.launch_executor(w.launch(1, "app-d", 0, &sh(waits_for_go)))
        .await
        .unwrap();
    eventually("executor 0 RUNNING", || {
        (exec_states(&m, "app-d", 0) == ["RUNNING"]).then_some(())
    })
    .await;

    tracing::info!("--- the master stops answering; the worker falls back to registering");
    m.set_down(true);
    // A short outage is ridden out inside one call; wait until the worker gave up on
    // its session and is registering again.
    eventually("a refused registration attempt", || {
        m.refused_registrations().into_iter().next()
    })
    .await;

    tracing::info!("--- two executors end while no master answers");
    c.launch_executor(w.launch(1, "app-d", 1, &sh("exit 0")))
        .await
        .unwrap();
    std::fs::write(w.exec_dir("app-d", 0).join("go"), "").unwrap();
    // Executor 0 ends only after `go`, which is written after executor 1 was accepted:
    // an attempt that lists no executor was made after both ended.
    eventually("a registration attempt listing no executor", || {
        m.refused_registrations()
            .into_iter()
            .any(|r| r.executors.is_empty())
            .then_some(())
    })
    .await;
    assert!(
        exec_states(&m, "app-d", 1).is_empty() && exec_states(&m, "app-d", 0) == ["RUNNING"],
        "nothing is delivered while no master answers"
    );
    let accepted_before = m.registrations().len();

    tracing::info!("--- the master answers again");
    m.set_down(false);
    let r0 = ended(&m, "app-d", 0).await;
    let r1 = ended(&m, "app-d", 1).await;
    assert_eq!(states(&r0, |r| &r.state), ["RUNNING", "FAILED"]);
    assert_eq!(r0[1].exit_code, Some(4));
    assert_eq!(states(&r1, |r| &r.state), ["RUNNING", "EXITED"]);

    let received = m.received();
    let registered_again = received
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Received::Register(_)))
        .map(|(i, _)| i)
        .nth(accepted_before)
        .expect("a registration after the master came back");
    let Received::Register(reg) = &received[registered_again] else {
        unreachable!()
    };
    assert!(
        reg.executors.is_empty(),
        "ended executors reported as running: {reg:?}"
    );
    let first_late_report = received
        .iter()
        .position(|r| {
            matches!(r, Received::Executor(e)
                if e.app_id == "app-d" && (e.executor_id == 1 || e.state != "RUNNING"))
        })
        .unwrap();
    assert!(
        registered_again < first_late_report,
        "reports made while no master answered came before the re-registration: {received:#?}"
    );
    w.stop().await;
}

#[tokio::test]
async fn a_supervised_driver_is_restarted_after_a_failure_but_not_after_success() {
    let m = FakeMaster::start(false).await;
    let tmp = tempfile::tempdir().unwrap();
    let w = TestWorker::start(vec![m.addr.clone()], tmp.path()).await;
    let mut c = w.client().await;

    tracing::info!("--- exit 1 under supervise: restarted, nothing reported but RUNNING");
    c.launch_driver(w.launch_driver(1, "driver-1", true, "echo run; exit 1"))
        .await
        .unwrap();
    let out = w.work_dir.join("driver-1").join("stdout");
    eventually("a second run", || {
        (read(&out).lines().count() >= 2).then_some(())
    })
    .await;
    assert_eq!(driver_states(&m, "driver-1"), ["RUNNING"]);
    let ack = c
        .kill_driver(w.kill_driver(1, "driver-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(!ack.duplicate);
    eventually("driver-1 KILLED", || {
        (driver_states(&m, "driver-1") == ["RUNNING", "KILLED"]).then_some(())
    })
    .await;

    tracing::info!("--- exit 0 under supervise: FINISHED, not restarted");
    let script = "echo $HEARTH_DRIVER_PORT > port; echo run; exit 0";
    c.launch_driver(w.launch_driver(1, "driver-2", true, script))
        .await
        .unwrap();
    let r = eventually("driver-2 FINISHED", || {
        let r = m.driver_reports("driver-2");
        (states(&r, |r| &r.state) == ["RUNNING", "FINISHED"]).then_some(r)
    })
    .await;
    let dir = w.work_dir.join("driver-2");
    assert_eq!(read(dir.join("stdout")), "run\n");
    let port = read(dir.join("port")).trim().to_owned();
    assert_eq!(r[0].driver_url, Some(format!("127.0.0.1:{port}")));
    assert_eq!(r[1].exit_code, Some(0));

    tracing::info!("--- exit 1 without supervise: FAILED");
    c.launch_driver(w.launch_driver(1, "driver-3", false, "exit 1"))
        .await
        .unwrap();
    eventually("driver-3 FAILED", || {
        (driver_states(&m, "driver-3") == ["RUNNING", "FAILED"]).then_some(())
    })
    .await;
    w.stop().await;
}

#[tokio::test]
async fn a_process_that_ignores_sigterm_is_sigkilled_when_the_grace_is_over() {
    let m = FakeMaster::start(false).await;
    let tmp = tempfile::tempdir().unwrap();
    let w = TestWorker::start(vec![m.addr.clone()], tmp.path()).await;
    let mut c = w.client().await;
    let script = "trap '' TERM; sleep 1000 & echo $! > child.tmp && mv child.tmp child.pid; \
                  echo $$ > sh.tmp && mv sh.tmp sh.pid; wait";
    c.launch_executor(w.launch(1, "app-t", 0, &sh(script)))
        .await
        .unwrap();
    let dir = w.exec_dir("app-t", 0);
    let sh_pid = eventually("sh.pid", || read_pid(dir.join("sh.pid"))).await;
    let child = read_pid(dir.join("child.pid")).unwrap();
    let guard = pgid_of(sh_pid);

    tracing::info!("--- kill: SIGTERM is ignored, SIGKILL follows the grace");
    let asked = std::time::Instant::now();
    c.kill_executor(w.kill(1, "app-t", 0)).await.unwrap();
    let r = ended(&m, "app-t", 0).await;
    let took = asked.elapsed();
    let grace = config(vec![], tmp.path()).kill_grace;
    assert!(
        took >= grace,
        "SIGKILL came after {took:?}, before the {grace:?} grace"
    );
    assert_eq!(states(&r, |r| &r.state), ["RUNNING", "KILLED"]);
    assert_eq!(
        r[1].exit_code,
        Some(128 + 9),
        "the guard itself was SIGKILLed"
    );
    eventually("guard, sh and grandchild gone", || {
        [guard, sh_pid, child]
            .iter()
            .all(|p| !pid_alive(*p))
            .then_some(())
    })
    .await;
    w.stop().await;
}
