//! `hearth local`, the README's "run it" command: a cluster as real processes, and SIGTERM
//! leaves nothing behind.

use hearth_tests::harness::*;
use hearth_tests::procs;
use std::time::Duration;

#[test]
fn hearth_local_runs_a_cluster_and_sigterm_stops_every_process() {
    let dir = TestDir::new("local");
    let data = dir.path().join("data");
    let args: Vec<String> = ["local", "--workers", "2", "--dir", data.to_str().unwrap()]
        .map(String::from)
        .to_vec();
    let mut local = Proc::spawn("local", &bin("hearth"), &args, dir.path().join("local.log"));
    let v = local.announced(
        &["HEARTH_MASTERS", "HEARTH_UI", "HEARTH_SECRET_FILE"],
        Duration::from_secs(30),
    );
    let (masters, ui) = (&v[0], &v[1]);
    // A secret of its own, readable by this user only, in its directory.
    let secret = std::path::Path::new(&v[2]);
    assert_eq!(secret.parent(), Some(data.as_path()));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(secret).expect("secret").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    remember_secret(masters, secret);
    // The CLI without it is refused.
    let out = std::process::Command::new(bin("hearth"))
        .args(["status", "--master", masters])
        .env_remove("HEARTH_SECRET_FILE")
        .output()
        .expect("run hearth status");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no secret"), "{}", stderr(&out));
    let alive = || -> Option<()> {
        let (code, body) = http_get(&format!("{ui}/json")).ok()?;
        let j: serde_json::Value = serde_json::from_str(&body).ok()?;
        (code == 200 && j["aliveworkers"] == 2).then_some(())
    };
    wait_for("two ALIVE workers", Duration::from_secs(30), alive);
    let (code, page) = http_get(&format!("{ui}/")).expect("status page");
    assert_eq!(code, 200);
    assert!(page.contains("<h2>Workers (2)</h2>"), "{page}");
    // Three Raft masters; HEARTH_UI is the first, which leads (ready) or stands by.
    let (_, body) = http_get(&format!("{ui}/json")).expect("/json");
    let j: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(j["masters"].as_array().map(Vec::len), Some(3), "{j}");
    let (code, ready) = http_get(&format!("{ui}/readyz")).expect("readyz");
    assert!(
        [(200, "ALIVE"), (503, "STANDBY")].contains(&(code, ready.trim())),
        "readyz answered {code} {ready}"
    );
    let app = submit_app(masters, &SleepingApp::cluster().named("local").executors(2))[0].clone();
    wait_for(
        "driver and two executors running",
        Duration::from_secs(30),
        || (procs::app_pids(masters, &app).len() == 3).then_some(()),
    );
    let everything = |p: &procs::ProcInfo| {
        p.argv.iter().any(|a| a.contains(data.to_str().unwrap()))
            || p.env("HEARTH_MASTERS") == Some(masters.as_str())
    };
    assert!(
        procs::all().iter().filter(|p| everything(p)).count() >= 3 + 3,
        "master, workers and the app's processes"
    );
    let status = local
        .stop(Duration::from_secs(30))
        .expect("hearth local exits on SIGTERM");
    assert!(status.success(), "hearth local exited {status:?}");
    wait_for(
        "no process of the local cluster left",
        Duration::from_secs(10),
        || procs::all().iter().all(|p| !everything(p)).then_some(()),
    );
}
