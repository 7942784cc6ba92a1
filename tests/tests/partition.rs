//! HA hole 8 from outside: a worker cut off from every master (its traffic to the master
//! goes through a proxy, which is cut) while the master declares it lost and relaunches
//! its supervised driver on another worker. The cut-off worker used to go on restarting
//! its copy of the driver for the whole partition: two drivers of one app. It now has a
//! lease of its own (no leader answered within the master's worker timeout) and restarts
//! nothing once it has lapsed; after healing, the driver runs once, on the other worker.

use hearth_tests::harness::*;
use hearth_tests::procs;
use hearth_tests::proxy::Proxy;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

/// The processes (not the guards) of `app`'s driver, any relaunch of it included, whose
/// directory is under `work`.
fn driver_procs_under(work: &Path, app: &str) -> usize {
    procs::with_env("HEARTH_APP_ID", app)
        .iter()
        .filter(|p| !p.is_guard() && p.env("HEARTH_DRIVER_ID").is_some())
        .filter(|p| {
            std::fs::read_link(format!("/proc/{}/cwd", p.pid))
                .is_ok_and(|cwd| cwd.starts_with(work))
        })
        .count()
}

#[test]
fn a_worker_cut_off_from_every_master_restarts_no_supervised_driver() {
    let dir = TestDir::new("worker-lease");
    let master = MasterProc::start(dir.path(), &["--worker-timeout", "2s"]);
    let addr = master.url.trim_start_matches("hearth://").to_owned();
    let proxy = Proxy::start(&addr).expect("a proxy in front of the master");
    let cut_off: PathBuf = dir.path().join("cut-off");
    let _a = start_worker(
        dir.path(),
        "cut-off",
        &format!("hearth://{}", proxy.addr()),
        2,
        &[],
    );
    wait_for("the first worker ALIVE", LONG, || {
        (master.json()["aliveworkers"] == 1).then_some(())
    });
    // A supervised driver that fails every 4 s: restarted again and again. Its first end
    // comes after the cut-off worker's lease (the master's 2 s worker timeout) has
    // lapsed, as long as the cut comes within 2 s of its start (it comes at once).
    let out = hearth(
        &master.url,
        &[
            "submit",
            "--deploy-mode",
            "cluster",
            "--supervise",
            "--name",
            "lease",
            "--driver-memory",
            "64m",
            "--",
            "sh",
            "-c",
            "sleep 4; exit 3",
        ],
    );
    assert!(out.status.success(), "submit: {}", stderr(&out));
    let app = stdout(&out).lines().next().expect("an app id").to_owned();
    wait_for("the driver running on the first worker", LONG, || {
        (driver_procs_under(&cut_off, &app) > 0).then_some(())
    });
    let other: PathBuf = dir.path().join("other");
    let _b = start_worker(dir.path(), "other", &master.url, 2, &[]);
    proxy.cut();
    wait_for("the driver relaunched on the other worker", LONG, || {
        (driver_procs_under(&other, &app) > 0).then_some(())
    });
    wait_for("the cut-off worker's copy ending", LONG, || {
        (driver_procs_under(&cut_off, &app) == 0).then_some(())
    });
    // A window in which the cut-off worker would restart its copy (every 1-4 s), if it
    // would: it must not, while the partition lasts.
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(6) {
        assert_eq!(
            driver_procs_under(&cut_off, &app),
            0,
            "the cut-off worker restarted its copy of {app}'s driver"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    proxy.heal();
    wait_for("both workers ALIVE again", LONG, || {
        (master.json()["aliveworkers"] == 2).then_some(())
    });
    // One active driver for the app (the relaunch, on the other worker), not failed.
    let j = master.json();
    let active: Vec<_> = j["activedrivers"]
        .as_array()
        .expect("activedrivers")
        .iter()
        .filter(|d| d["app"] == app.as_str())
        .collect();
    assert_eq!(active.len(), 1, "{active:?}");
    assert_ne!(active[0]["state"], "FAILED", "{}", active[0]);
    assert!(!active[0]["relaunchof"].is_null(), "{}", active[0]);
    assert_eq!(driver_procs_under(&cut_off, &app), 0);
}
