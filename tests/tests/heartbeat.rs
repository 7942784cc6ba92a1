//! HA hole 9 from outside: a master with a short worker timeout and a worker started
//! without `--heartbeat-interval` (15 s until told otherwise). The master asks for a
//! quarter of its timeout when the worker registers, so the worker is never declared
//! lost; before, it flapped every few seconds and its executors were killed.

use hearth_tests::harness::*;
use std::time::{Duration, Instant};

#[test]
fn a_default_worker_heartbeats_as_often_as_a_short_worker_timeout_needs() {
    let dir = TestDir::new("heartbeat-advice");
    let master = MasterProc::start(dir.path(), &["--worker-timeout", "2s"]);
    let work = dir.path().join("worker");
    std::fs::create_dir_all(&work).expect("work dir");
    let args: Vec<String> = [
        "worker",
        "--masters",
        &master.url,
        "--cores",
        "2",
        "--work-dir",
        &work.to_string_lossy(),
    ]
    .map(String::from)
    .to_vec();
    let _worker = Proc::spawn(
        "worker",
        &bin("hearth"),
        &args,
        dir.path().join("worker.log"),
    );
    wait_for("the worker ALIVE", Duration::from_secs(20), || {
        (master.json()["aliveworkers"] == 1).then_some(())
    });
    // Three worker timeouts: a worker heartbeating every 15 s would be lost by now.
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(6) {
        let status = master.json();
        assert_eq!(status["aliveworkers"], 1, "the worker was lost: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = master.proc.log_text();
    assert!(!log.contains("WorkerLost"), "{log}");
    master.assert_no_errors();
}
