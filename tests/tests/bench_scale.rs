//! `bench-scale` at CI size: the binary runs 3 real Raft masters against 50 simulated
//! workers holding 200 executors, kills the leader twice and measures commits; its one
//! JSON object must hold every figure, sane, with every worker back each round and
//! every executor placed and still RUNNING at the end.

use hearth_tests::harness::bin;
use hearth_tests::wait::Wait;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

const WORKERS: u64 = 50;
const EXECUTORS: u64 = 200;

/// Runs `bench-scale` with `args` (killed after `deadline`); its stdout and stderr.
fn bench_scale(args: &[&str], deadline: Duration) -> (String, String) {
    let hearth = bin("hearth");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bench-scale"))
        .args(args)
        .env("HEARTH_BIN_DIR", hearth.parent().expect("bin dir"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bench-scale");
    // Read both pipes on their own threads, so a full pipe never blocks the benchmark.
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let finished = Wait::new("bench-scale to finish", deadline)
        .every(Duration::from_millis(50))
        .until(|| child.try_wait().expect("try_wait"));
    if finished.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (out, err) = (out.join().expect("stdout"), err.join().expect("stderr"));
    let status = finished.unwrap_or_else(|e| panic!("{e}; its stderr:\n{err}"));
    assert!(status.success(), "bench-scale failed ({status}):\n{err}");
    (out, err)
}

fn num(j: &Value, key: &str) -> f64 {
    j[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is missing or not a number in {j}"))
}

#[test]
fn bench_scale_reports_every_figure_with_every_worker_back() {
    let (out, err) = bench_scale(
        &[
            "--workers",
            &WORKERS.to_string(),
            "--executors",
            &EXECUTORS.to_string(),
            "--rounds",
            "2",
            "--window-s",
            "1",
            "--submissions",
            "100",
            "--json",
        ],
        Duration::from_secs(180),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "stdout is one JSON object:\n{out}\nstderr:\n{err}"
    );
    let j: Value = serde_json::from_str(lines[0]).expect("stdout is JSON");

    // The named figures are there and plausible.
    let (p50, p99) = (num(&j, "failover_p50_ms"), num(&j, "failover_p99_ms"));
    assert!(
        0.0 < p50 && p50 <= p99 && p99 < 60_000.0,
        "failover {p50}/{p99} ms"
    );
    let rss = num(&j, "leader_rss_mb");
    assert!(1.0 < rss && rss < 2_000.0, "leader RSS {rss} MB");
    let cpu = num(&j, "leader_cpu_cores");
    assert!((0.0..=4.0).contains(&cpu), "leader CPU {cpu} cores");
    assert!(num(&j, "placements_per_s") > 0.0);
    for key in ["commits_per_s_1", "commits_per_s_256", "commit_p50_ms_1"] {
        assert!(num(&j, key) > 0.0, "{key} in {j}");
    }
    // CPU per commit is counted in clock ticks (10 ms): a 256-commit phase may show 0.
    for key in ["commit_leader_cpu_us_256", "commit_clients_cpu_us_256"] {
        assert!(num(&j, key) >= 0.0, "{key} in {j}");
    }
    let cpu = &j["commit"]["clients_1"]["cpu"];
    assert!(
        (0.0..=1.0).contains(&cpu["machine_busy"].as_f64().unwrap_or(-1.0)),
        "the machine's busy share during the 1-client phase: {cpu}"
    );
    assert!(cpu["cpus"].as_u64().is_some_and(|n| n >= 1), "{cpu}");
    assert!(num(&j, "status_ms") > 0.0);
    assert!(num(&j, "status_bytes") > 1_000.0, "/json of 200 executors");
    assert!(num(&j, "getstate_bytes") > 1_000.0);
    // A page without executors is smaller than one with them (200 executors), and the
    // CLI's status answered.
    assert!(
        num(&j, "status_summary_bytes") < num(&j, "status_paged_bytes"),
        "{j}"
    );
    assert!(num(&j, "getstate_filtered_bytes") > 0.0, "{j}");
    assert!(
        num(&j, "cli_status_ms") > 0.0 && num(&j, "cli_status_all_ms") > 0.0,
        "{j}"
    );
    assert!(num(&j, "snapshot_index") > 0.0);

    // Every worker came back in every round; every executor was placed and still runs.
    assert_eq!(j["reregistered_all"], true, "{j}");
    assert_eq!(num(&j, "reregistered_min"), WORKERS as f64);
    assert_eq!(num(&j, "alive_workers_end"), WORKERS as f64);
    assert_eq!(num(&j, "executors_running_end"), EXECUTORS as f64);
    assert_eq!(j["term_steps"].as_array().map(Vec::len), Some(2));
    assert!(
        num(&j, "term_step_max") >= 1.0,
        "each failover is an election"
    );
    assert_eq!(
        num(&j, "log_errors"),
        0.0,
        "the masters logged ERROR lines:\n{err}"
    );
}
