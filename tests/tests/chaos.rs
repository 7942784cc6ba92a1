//! The randomized fault-injection run (`src/bin/chaos/`) as a CI test: 30 rounds with a
//! fixed seed, every fault kind at least three times; any violation (two leaders in a
//! term, a lost or doubled acknowledged submission, an acknowledged kill not in effect,
//! a duplicated process, an orphan, masters that do not converge...) makes `chaos` exit
//! 1 and this test fail. Build the binaries first
//! (`cargo build --workspace --features hearth-recovery/failpoints --bins`).

use hearth_tests::harness::{bin, one_at_a_time};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Instant;

const SEED: &str = "20240613";

#[test]
fn thirty_random_faults_break_no_promise() {
    let _turn = one_at_a_time();
    let start = Instant::now();
    let out = Command::new(bin("chaos"))
        .args(["--rounds", "30", "--seed", SEED, "--json"])
        .env_remove("HEARTH_BIN_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run chaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    eprintln!("chaos took {:?}", start.elapsed());
    let last = stdout.lines().last().unwrap_or("");
    let report: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the last line is not the JSON report ({e}): {last}"));
    assert_eq!(report["seed"], SEED.parse::<u64>().unwrap());
    assert_eq!(
        report["violations"].as_array().map(Vec::len),
        Some(0),
        "violations: {:#}",
        report["violations"]
    );
    assert_eq!(report["rounds"], 30, "not every round ran");
    assert!(out.status.success(), "chaos exited with {}", out.status);
    let acked = report["requests"]["acked"].as_u64().unwrap_or(0);
    assert!(
        acked > 0,
        "no request was acknowledged: {}",
        report["requests"]
    );
}
