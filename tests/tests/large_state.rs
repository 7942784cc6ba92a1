//! A cluster state bigger than tonic's default 4 MiB message limit: every client and
//! server uses hearth-proto's one `MAX_MESSAGE`, so `hearth status --json` still works.

use hearth_tests::harness::*;
use serde_json::Value;
use std::process::{Command, Stdio};

#[test]
fn status_json_works_on_a_state_bigger_than_four_mib() {
    let dir = TestDir::new("large-state");
    let master = MasterProc::start(dir.path(), &[]);
    // 80 cluster-mode apps (no worker: they wait) with 60 KiB names: about 4.7 MiB of
    // state, in `GetState` and in `/json`.
    let apps = 80;
    let filler = "x".repeat(60 * 1024);
    for i in 0..apps {
        let name = format!("big-{i}-{filler}");
        let args = ["--deploy-mode", "cluster", "--name", &name];
        submit(
            &master.url,
            &[&args[..], &["--executor-command", "true", "--", "true"]].concat(),
        );
    }
    // Not `harness::hearth`: the output is megabytes, more than a pipe holds unread.
    let out = Command::new(bin("hearth"))
        .args(["status", "--json"])
        .env("HEARTH_MASTERS", &master.url)
        .stdin(Stdio::null())
        .output()
        .expect("run hearth status");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        out.stdout.len() > 4 << 20,
        "the state is {} bytes, not above 4 MiB",
        out.stdout.len()
    );
    let status: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(status["activeapps"].as_array().map(Vec::len), Some(apps));
    master.assert_no_errors();
}
