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

/// `Type=notify`: a master and a worker tell systemd they are ready (`READY=1` on
/// `NOTIFY_SOCKET`) once they listen.
#[test]
fn masters_and_workers_tell_systemd_they_are_ready() {
    use hearth_tests::harness::{wait_for, Proc};
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;
    let dir = hearth_tests::harness::TestDir::new("systemd-notify");
    let socket = dir.path().join("notify");
    let listen = UnixDatagram::bind(&socket).expect("bind the notify socket");
    listen
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let env = [("NOTIFY_SOCKET", socket.to_str().unwrap())];
    let args: Vec<String> = ["master", "--port", "0", "--http-port", "0"]
        .map(String::from)
        .to_vec();
    let mut master = Proc::spawn_env(
        "master",
        &bin("hearth"),
        &args,
        &env,
        dir.path().join("m.log"),
    );
    let url = master.announced(&["HEARTH_MASTERS"], Duration::from_secs(20))[0].clone();
    let mut buf = [0u8; 256];
    let n = listen.recv(&mut buf).expect("the master's notification");
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim(), "READY=1");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let args: Vec<String> = vec![
        "worker".into(),
        "--masters".into(),
        url,
        "--work-dir".into(),
        work.to_string_lossy().into_owned(),
        "--port".into(),
        "0".into(),
    ];
    let _worker = Proc::spawn_env(
        "worker",
        &bin("hearth"),
        &args,
        &env,
        dir.path().join("w.log"),
    );
    let n = wait_for("the worker's notification", Duration::from_secs(30), || {
        listen.recv(&mut buf).ok()
    });
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim(), "READY=1");
    master.stop(Duration::from_secs(10));
}
