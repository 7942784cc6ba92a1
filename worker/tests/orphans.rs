//! The worker is SIGKILLed: nothing it started survives it, grandchildren included. The
//! worker runs as a real separate process (`hearth-worker-test`).

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn a_sigkilled_worker_leaves_no_orphans() {
    init_tracing();
    let tmp = tempfile::tempdir().unwrap();
    let work_dir = std::fs::canonicalize(tmp.path()).unwrap();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_hearth-worker-test"))
        .args(["--masters", &closed_addr(), "--guard", GUARD, "--work-dir"])
        .arg(&work_dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(worker.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .expect("a listening line")
        .to_owned();
    let id_file = work_dir.join(hearth_worker::WORKER_ID_FILE);
    let id = eventually("the worker id file", || {
        Some(read(&id_file).trim().to_owned()).filter(|s| !s.is_empty())
    })
    .await;

    tracing::info!("--- launch a command that forks a grandchild");
    let mut c = hearth_proto::pb::worker_control_client::WorkerControlClient::connect(format!(
        "http://{addr}"
    ))
    .await
    .unwrap();
    let script = "sleep 1000 & echo $! > child.tmp && mv child.tmp child.pid; \
                  echo $$ > sh.tmp && mv sh.tmp sh.pid; wait";
    let request = hearth_proto::pb::LaunchExecutorRequest {
        term: 1,
        master_id: 1,
        worker_id: id,
        app_id: "app-o".into(),
        executor_id: 0,
        cores: 1,
        memory_mb: 64,
        command: Some(hearth_proto::pb::ProcessSpec {
            argv: sh(script).iter().map(|s| s.to_string()).collect(),
            env: Default::default(),
        }),
        driver_url: String::new(),
    };
    let ack = c.launch_executor(request).await.unwrap().into_inner();
    assert_eq!(ack.refused, None);
    let dir = work_dir.join("app-o").join("0");
    let sh_pid = eventually("sh.pid", || read_pid(dir.join("sh.pid"))).await;
    let child = read_pid(dir.join("child.pid")).unwrap();
    let guard = pgid_of(sh_pid);
    assert!(pid_alive(guard) && pid_alive(sh_pid) && pid_alive(child));

    tracing::info!("--- kill -9 the worker");
    worker.kill().unwrap(); // SIGKILL
    worker.wait().unwrap();
    eventually("guard, sh and grandchild gone", || {
        [guard, sh_pid, child]
            .iter()
            .all(|p| !pid_alive(*p))
            .then_some(())
    })
    .await;
}
