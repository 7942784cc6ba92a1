//! The `WorkerControl` service against a real worker and real processes, with no master
//! answering (the masters list points at a closed port): launches, environment,
//! idempotency, kills of whole process trees, fencing across a restart.

mod common;

use common::*;
use tonic::Code;

#[tokio::test]
async fn a_launched_executor_runs_in_its_dir_with_its_env_and_a_duplicate_starts_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let master = closed_addr();
    let w = TestWorker::start(vec![master.clone()], tmp.path()).await;
    let mut c = w.client().await;
    tracing::info!("--- launch executor 0 with no master answering");
    let script = "echo started >> starts; env > env.tmp && mv env.tmp env.txt; \
                  pwd > pwd.tmp && mv pwd.tmp pwd.txt; echo hi; exec sleep 1000";
    let ack = c
        .launch_executor(w.launch(1, "app-1", 0, &sh(script)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (ack.refused, ack.duplicate, ack.highest_term),
        (None, false, 1)
    );

    let dir = w.exec_dir("app-1", 0);
    eventually("`hi` in the executor's stdout", || {
        read(dir.join("stdout")).contains("hi\n").then_some(())
    })
    .await;
    let env = read(dir.join("env.txt"));
    for want in [
        "FOO=bar".to_owned(),
        "HEARTH_APP_ID=app-1".to_owned(),
        "HEARTH_EXECUTOR_ID=0".to_owned(),
        "HEARTH_CORES=2".to_owned(),
        "HEARTH_MEMORY_MB=256".to_owned(),
        format!("HEARTH_MASTERS=hearth://{master}"),
        format!("HEARTH_WORK_DIR={}", dir.display()),
        "HEARTH_DRIVER_URL=driver-host:7".to_owned(),
    ] {
        assert!(
            env.lines().any(|l| l == want),
            "{want} missing from env:\n{env}"
        );
    }
    assert!(
        !env.contains("HEARTH_GUARD_PARENT"),
        "guard-only variable leaked:\n{env}"
    );
    assert!(
        !env.contains("HEARTH_DRIVER_ID"),
        "driver variable on an executor:\n{env}"
    );
    assert_eq!(read(dir.join("pwd.txt")).trim(), dir.display().to_string());

    tracing::info!("--- the same launch again is a duplicate");
    let ack = c
        .launch_executor(w.launch(1, "app-1", 0, &sh(script)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ack.refused, ack.duplicate), (None, true));
    // Launches start in order on one spawner thread: once executor 1 runs, a second
    // start of executor 0 would have happened already.
    c.launch_executor(w.launch(1, "app-1", 1, &sh("echo ok; exec sleep 1000")))
        .await
        .unwrap();
    let dir1 = w.exec_dir("app-1", 1);
    eventually("executor 1 running", || {
        read(dir1.join("stdout")).contains("ok").then_some(())
    })
    .await;
    assert_eq!(read(dir.join("starts")), "started\n");
    let procs = processes_in(&dir);
    assert_eq!(
        procs.len(),
        2,
        "expected the guard and sleep in {}, got {procs:?}",
        dir.display()
    );

    tracing::info!("--- shutting the worker down stops everything it started");
    let mut all = procs;
    all.extend(processes_in(&dir1));
    w.stop().await;
    eventually("every process gone after shutdown", || {
        all.iter().all(|p| !pid_alive(*p)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_kill_stops_the_process_and_its_grandchildren() {
    let tmp = tempfile::tempdir().unwrap();
    let w = TestWorker::start(vec![closed_addr()], tmp.path()).await;
    let mut c = w.client().await;
    let script = "sleep 1000 & echo $! > child.tmp && mv child.tmp child.pid; \
                  echo $$ > sh.tmp && mv sh.tmp sh.pid; wait";
    c.launch_executor(w.launch(2, "app-k", 0, &sh(script)))
        .await
        .unwrap();
    let dir = w.exec_dir("app-k", 0);
    let sh_pid = eventually("sh.pid", || read_pid(dir.join("sh.pid"))).await;
    let child = read_pid(dir.join("child.pid")).expect("child.pid is written first");
    let guard = pgid_of(sh_pid);
    assert_ne!(
        guard, sh_pid,
        "the command is not its group's leader: the guard is"
    );
    assert_eq!(
        pgid_of(child),
        guard,
        "the grandchild stays in the guard's group"
    );

    tracing::info!("--- kill");
    let ack = c
        .kill_executor(w.kill(2, "app-k", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ack.refused, ack.duplicate), (None, false));
    eventually("guard, sh and the grandchild gone", || {
        [guard, sh_pid, child]
            .iter()
            .all(|p| !pid_alive(*p))
            .then_some(())
    })
    .await;

    tracing::info!("--- kills of finished and unknown executors, and a relaunch, are duplicates");
    let again = c
        .kill_executor(w.kill(2, "app-k", 0))
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    let unknown = c
        .kill_executor(w.kill(2, "app-k", 9))
        .await
        .unwrap()
        .into_inner();
    assert!(unknown.duplicate && unknown.refused.is_none());
    let relaunch = c
        .launch_executor(w.launch(2, "app-k", 0, &sh(script)))
        .await
        .unwrap()
        .into_inner();
    assert!(relaunch.duplicate);
    let driver = c
        .kill_driver(w.kill_driver(2, "driver-x"))
        .await
        .unwrap()
        .into_inner();
    assert!(driver.duplicate);
    w.stop().await;
}

#[tokio::test]
async fn a_stale_term_is_refused_starts_nothing_and_stays_refused_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let w = TestWorker::start(vec![closed_addr()], tmp.path()).await;
    let mut c = w.client().await;
    let run = sh("echo $$ > sh.tmp && mv sh.tmp sh.pid; exec sleep 1000");
    c.launch_executor(w.launch(5, "app-f", 0, &run))
        .await
        .unwrap();
    let sh_pid = eventually("executor 0 running", || {
        read_pid(w.exec_dir("app-f", 0).join("sh.pid"))
    })
    .await;

    tracing::info!("--- term 3 < 5: a launch and a kill are refused");
    let ack = c
        .launch_executor(w.launch(3, "app-f", 1, &run))
        .await
        .unwrap()
        .into_inner();
    let why = ack.refused.expect("a stale launch is refused");
    assert!(why.starts_with("stale term 3 < 5"), "{why}");
    assert_eq!((ack.highest_term, ack.duplicate), (5, false));
    let ack = c
        .kill_executor(w.kill(3, "app-f", 0))
        .await
        .unwrap()
        .into_inner();
    assert!(ack
        .refused
        .is_some_and(|r| r.starts_with("stale term 3 < 5")));

    tracing::info!("--- a command for another worker id is refused and its term not recorded");
    let mut other = w.launch(9, "app-f", 2, &run);
    other.worker_id = "worker-20000101000000-elsewhere-1".into();
    let ack = c.launch_executor(other).await.unwrap().into_inner();
    assert!(
        ack.refused
            .is_some_and(|r| r.contains("addressed to worker")),
        "wrong refusal"
    );
    assert_eq!(ack.highest_term, 5);

    // Barrier: executor 3 at term 5 starts after everything above was answered.
    c.launch_executor(w.launch(5, "app-f", 3, &run))
        .await
        .unwrap();
    eventually("executor 3 running", || {
        read_pid(w.exec_dir("app-f", 3).join("sh.pid"))
    })
    .await;
    assert!(
        !w.exec_dir("app-f", 1).exists(),
        "a refused launch created its dir"
    );
    assert!(
        !w.exec_dir("app-f", 2).exists(),
        "a misaddressed launch created its dir"
    );
    assert!(pid_alive(sh_pid), "a refused kill killed");
    assert_eq!(read(w.work_dir.join(hearth_worker::TERM_FILE)), "5\n");

    tracing::info!("--- restart on the same work dir: term 5 is still the floor");
    let old_id = w.id.clone();
    w.stop().await;
    let w = TestWorker::start(vec![closed_addr()], tmp.path()).await;
    assert_ne!(w.id, old_id);
    let mut c = w.client().await;
    let ack = c
        .launch_executor(w.launch(4, "app-g", 0, &run))
        .await
        .unwrap()
        .into_inner();
    assert!(ack
        .refused
        .is_some_and(|r| r.starts_with("stale term 4 < 5")));
    let ack = c
        .launch_executor(w.launch(6, "app-g", 1, &run))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ack.refused, ack.highest_term), (None, 6));
    assert_eq!(read(w.work_dir.join(hearth_worker::TERM_FILE)), "6\n");
    w.stop().await;
}

#[tokio::test]
async fn malformed_launches_are_invalid_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let w = TestWorker::start(vec![closed_addr()], tmp.path()).await;
    let mut c = w.client().await;
    let mut no_command = w.launch(1, "app-m", 0, &sh("true"));
    no_command.command = None;
    let err = c.launch_executor(no_command).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let escape = w.launch(1, "../outside", 0, &sh("true"));
    let err = c.launch_executor(escape).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    assert!(!tmp.path().parent().unwrap().join("outside").exists());
    w.stop().await;
}
