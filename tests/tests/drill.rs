//! Failover drills on `hearth local`: every scenario runs three rounds and holds
//! (measured from outside, nothing lost, nothing doubled); drills without the token, with
//! a wrong one, or against a cluster that cannot fail over are refused with no effect;
//! SIGTERM then leaves no process behind.

use hearth_tests::harness::*;
use hearth_tests::procs;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// `hearth drill ...` against `masters` with `token` (none: no token in the environment).
fn drill(masters: &str, token: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(bin("hearth"));
    cmd.arg("drill")
        .args(args)
        .env("HEARTH_MASTERS", masters)
        .env_remove("HEARTH_DRILL_TOKEN")
        .stdin(Stdio::null());
    if let Some(secret) = secret_of(masters) {
        cmd.env("HEARTH_SECRET_FILE", secret);
    }
    if let Some(t) = token {
        cmd.env("HEARTH_DRILL_TOKEN", t);
    }
    cmd.output().expect("run hearth drill")
}

fn leader_term(masters: &str) -> (String, u64) {
    let out = hearth(masters, &["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let j: Value = serde_json::from_str(&stdout(&out)).expect("status json");
    (
        j["leader"].as_str().unwrap_or("").to_owned(),
        j["term"].as_u64().unwrap_or(0),
    )
}

#[test]
fn every_drill_scenario_holds_on_hearth_local_and_bad_drills_are_refused() {
    let dir = TestDir::new("drill");
    let data = dir.path().join("data");
    let args: Vec<String> = [
        "local",
        "--workers",
        "2",
        "--worker-timeout",
        "2s",
        "--dir",
        data.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let mut local = Proc::spawn("local", &bin("hearth"), &args, dir.path().join("local.log"));
    let v = local.announced(
        &[
            "HEARTH_MASTERS",
            "HEARTH_UI",
            "HEARTH_DRILL_TOKEN",
            "HEARTH_SECRET_FILE",
        ],
        Duration::from_secs(30),
    );
    let (masters, token) = (v[0].clone(), v[2].clone());
    remember_secret(&masters, std::path::Path::new(&v[3]));
    wait_for("an ALIVE leader with two workers", LONG, || {
        let out = hearth(&masters, &["status", "--json"]);
        let j: Value = serde_json::from_str(&stdout(&out)).ok()?;
        (j["status"] == "ALIVE" && j["aliveworkers"] == 2).then_some(())
    });

    // Refusals first: nothing may change.
    let before = leader_term(&masters);
    let o = drill(&masters, None, &["--scenario", "kill-leader"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no drill token"), "{}", stderr(&o));
    let o = drill(
        &masters,
        Some("not-the-token"),
        &["--scenario", "kill-leader"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("wrong token"), "{}", stderr(&o));
    assert_eq!(
        leader_term(&masters),
        before,
        "a refused drill changed nothing"
    );

    for scenario in [
        "kill-leader",
        "pause-leader",
        "partition-leader",
        "kill-worker",
    ] {
        let o = drill(
            &masters,
            Some(&token),
            &["--scenario", scenario, "--rounds", "3", "--json"],
        );
        let out = stdout(&o);
        let j: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| {
            panic!(
                "{scenario}: no JSON ({e}), {:?}: {out}\n{}",
                o.status,
                stderr(&o)
            )
        });
        assert!(
            o.status.success() && j["ok"] == true,
            "{scenario} did not hold: {j}\n{}",
            stderr(&o)
        );
        assert_eq!(j["rounds"], 3, "{j}");
        assert_eq!(
            (j["lost"].as_u64(), j["doubled"].as_u64()),
            (Some(0), Some(0))
        );
        let placed = &j["measures"]["to_first_placement_ms"];
        assert_eq!(placed["n"], 3, "{scenario}: {j}");
        eprintln!("{scenario}: {j}");
    }

    let status = local
        .stop(Duration::from_secs(30))
        .expect("hearth local exits on SIGTERM");
    assert!(status.success(), "hearth local exited {status:?}");
    let ours = |p: &procs::ProcInfo| {
        p.argv.iter().any(|a| a.contains(data.to_str().unwrap()))
            || p.env("HEARTH_MASTERS") == Some(masters.as_str())
    };
    wait_for(
        "no process of the local cluster left",
        Duration::from_secs(10),
        || procs::all().iter().all(|p| !ours(p)).then_some(()),
    );
}

#[test]
fn a_leader_drill_against_one_master_is_refused() {
    let dir = TestDir::new("drill-one");
    let master = MasterProc::start(dir.path(), &[]);
    let _a = start_worker(dir.path(), "wa", &master.url, 2, &[]);
    let _b = start_worker(dir.path(), "wb", &master.url, 2, &[]);
    wait_for("two workers", LONG, || {
        (master.json()["aliveworkers"] == 2).then_some(())
    });
    let o = drill(
        &master.url,
        Some("0123456789"),
        &["--scenario", "kill-leader"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("needs at least 3"), "{}", stderr(&o));
    // Drills not enabled: refused before anything is injected.
    let o = drill(
        &master.url,
        Some("0123456789"),
        &["--scenario", "kill-worker"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not enabled"), "{}", stderr(&o));
    assert_eq!(master.json()["aliveworkers"], 2);
}
