//! The service units in `deploy/systemd/` are valid for systemd: `systemd-analyze verify`
//! on each (with `ExecStart` pointing at the binary this workspace built) reports nothing,
//! not even an ignored unknown key. `.ci/run` installs systemd when it is missing.

use hearth_tests::harness::bin;
use std::path::PathBuf;
use std::process::Command;

fn units() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .join("deploy/systemd")
}

#[test]
fn the_service_units_pass_systemd_analyze_verify() {
    let dir = hearth_tests::harness::TestDir::new("systemd-units");
    let hearth = bin("hearth");
    let mut checked = Vec::new();
    for unit in ["hearth-master.service", "hearth-worker.service"] {
        let text = std::fs::read_to_string(units().join(unit)).expect("the unit file");
        assert!(text.contains("ExecStart=/usr/local/bin/hearth "), "{unit}");
        assert!(text.contains("Restart=always"), "{unit}");
        let local = dir.path().join(unit);
        std::fs::write(
            &local,
            text.replace("/usr/local/bin/hearth", &hearth.to_string_lossy()),
        )
        .expect("write");
        checked.push(local);
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&checked)
        .output()
        .expect("systemd-analyze (apt-get install systemd; .ci/run does)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert_eq!(said.trim(), "", "systemd-analyze found something to say");
    let worker = std::fs::read_to_string(units().join("hearth-worker.service")).expect("unit");
    assert!(
        worker.contains("Delegate=yes"),
        "the worker needs its cgroup for memory limits"
    );
}
