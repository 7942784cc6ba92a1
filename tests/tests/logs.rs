//! `hearth logs` on real processes: an executor that prints a numbered line every 100 ms.
//! `--tail 3` prints its last three lines; `-f` keeps printing while the leader is
//! SIGKILLed and another takes over (it reads from the worker, which the failover does
//! not touch), with no line lost or printed twice.

use hearth_tests::cluster::{running_executors, RaftCluster, CI_TIMINGS};
use hearth_tests::harness::*;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// The number of a `line-N` line.
fn number(line: &str) -> Option<u64> {
    line.trim().strip_prefix("line-")?.parse().ok()
}

#[test]
fn hearth_logs_tails_and_follows_an_executor_through_a_leader_failover() {
    let dir = TestDir::new("logs");
    let mut c = RaftCluster::start(dir.path(), 3, CI_TIMINGS);
    let url = c.url();
    let _worker = start_worker(dir.path(), "w1", &url, 4, &[]);
    wait_for("an ALIVE leader with the worker", LONG, || {
        c.leader_with_workers(1)
    });
    let app = submit(
        &url,
        &[
            "--deploy-mode",
            "cluster",
            "--name",
            "printer",
            "--total-executor-cores",
            "1",
            "--executor-command",
            "i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.1; done",
            "--",
            "sleep",
            "100000",
        ],
    )[0]
    .clone();
    wait_for("the printing executor RUNNING", LONG, || {
        let l = c.alive_leader(None)?;
        (running_executors(&c.json(l)?, "id", &app) == 1).then_some(())
    });

    wait_for("a few lines printed", LONG, || {
        let out = hearth(&url, &["logs", &app, "--executor", "0"]);
        (stdout(&out).lines().count() >= 5).then_some(())
    });
    let out = hearth(&url, &["logs", &app, "--executor", "0", "--tail", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tail: Vec<u64> = stdout(&out).lines().filter_map(number).collect();
    assert_eq!(tail.len(), 3, "{}", stdout(&out));
    assert_eq!(tail[1], tail[0] + 1);
    assert_eq!(tail[2], tail[0] + 2);
    let err = hearth(&url, &["logs", &app, "--executor", "0", "--stderr"]);
    assert!(err.status.success(), "{}", stderr(&err));
    assert_eq!(stdout(&err), "", "the executor wrote nothing to stderr");
    let missing = hearth(&url, &["logs", &app, "--executor", "7"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("has no executor 7"),
        "{}",
        stderr(&missing)
    );

    let args: Vec<String> = ["logs", &app, "--executor", "0", "-f"]
        .map(String::from)
        .to_vec();
    let mut follow = Proc::spawn_env(
        "hearth logs -f",
        &bin("hearth"),
        &args,
        &[("HEARTH_MASTERS", &url)],
        dir.path().join("follow.log"),
    );
    let mut seen: Vec<u64> = Vec::new();
    let next = |follow: &mut Proc, seen: &mut Vec<u64>| {
        let line = follow.next_line(Duration::from_secs(10));
        seen.extend(number(&line));
    };
    while seen.len() < 20 {
        next(&mut follow, &mut seen);
    }
    let leader = c.alive_leader(None).expect("the leader");
    c.kill9(leader);
    let at_kill = *seen.last().expect("lines");
    wait_for("a new ALIVE leader", LONG, || c.alive_leader(Some(leader)));
    // Two seconds of output after the failover, read through it.
    while *seen.last().expect("lines") < at_kill + 20 {
        next(&mut follow, &mut seen);
    }
    let first = seen[0];
    let expected: Vec<u64> = (first..first + seen.len() as u64).collect();
    assert_eq!(seen, expected, "every line once, in order");
}
