//! One master, real workers, real processes (the single-master issue's "must show").
//! Every process here is a real OS process; what runs is checked in /proc, not by asking
//! the master.

use hearth_tests::harness::*;
use hearth_tests::procs;
use serde_json::Value;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

/// Executor processes of an app (the commands themselves, not their guards).
fn executor_pids(master: &MasterProc, app: &str) -> Vec<u32> {
    procs::of_app(&master.url, app)
        .into_iter()
        .filter(|p| !p.is_guard() && p.env("HEARTH_EXECUTOR_ID").is_some())
        .map(|p| p.pid)
        .collect()
}

/// (worker id, executor count) of an app's RUNNING executors, per /json.
fn running_spread(master: &MasterProc, app: &str) -> Vec<(String, usize)> {
    let Some(a) = master.app(app) else {
        return vec![];
    };
    let mut counts = std::collections::BTreeMap::new();
    for e in a["executors"].as_array().into_iter().flatten() {
        if e["state"] == "RUNNING" {
            *counts
                .entry(e["worker"].as_str().unwrap_or_default().to_owned())
                .or_insert(0) += 1;
        }
    }
    counts.into_iter().collect()
}

fn two_workers(dir: &TestDir, master: &MasterProc) -> (Proc, Proc) {
    let a = start_worker(dir.path(), "worker-a", &master.url, 4, &[]);
    let b = start_worker(dir.path(), "worker-b", &master.url, 4, &[]);
    wait_for("two ALIVE workers", LONG, || {
        (master.json()["aliveworkers"] == 2).then_some(())
    });
    (a, b)
}

#[test]
fn cluster_app_spreads_two_and_two_and_kill_ends_every_process() {
    let dir = TestDir::new("spread");
    let master = MasterProc::start(dir.path(), &[]);
    let (_a, _b) = two_workers(&dir, &master);
    let desc = SleepingApp::cluster().named("spread").executors(4);
    let ids = submit_app(&master.url, &desc.memory_mb(256));
    assert_eq!(ids.len(), 2, "app and driver ids: {ids:?}");
    let (app, driver) = (&ids[0], &ids[1]);
    assert!(
        app.starts_with("app-") && driver.starts_with("driver-"),
        "{ids:?}"
    );
    let spread = wait_for("4 RUNNING executors", LONG, || {
        let s = running_spread(&master, app);
        (s.iter().map(|(_, n)| n).sum::<usize>() == 4).then_some(s)
    });
    assert_eq!(
        spread.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        vec![2, 2],
        "{spread:?}"
    );
    assert_eq!(
        executor_pids(&master, app).len(),
        4,
        "four executor processes in /proc"
    );
    let out = hearth(&master.url, &["app", "kill", app]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for("every process of the app gone from /proc", LONG, || {
        procs::of_app(&master.url, app).is_empty().then_some(())
    });
    let a = master.app(app).expect("app listed");
    assert_eq!(a["state"], "KILLED");
    let drivers = master.json()["completeddrivers"].clone();
    assert!(drivers
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["id"] == driver.as_str() && d["state"] == "KILLED"));
    master.assert_no_errors();
}

#[test]
fn a_client_mode_app_finishes_when_its_driver_exits_and_leaves_nothing_behind() {
    let dir = TestDir::new("client");
    let master = MasterProc::start(dir.path(), &[]);
    let (_a, _b) = two_workers(&dir, &master);
    let pi = bin("hearth-pi");
    let pi = pi.to_str().unwrap();
    let executor = format!("exec {pi} executor");
    let out = hearth(
        &master.url,
        &[
            "submit",
            "--name",
            "pi-client",
            "--executor-cores",
            "1",
            "--executor-memory",
            "128m",
            "--total-executor-cores",
            "2",
            "--executor-command",
            &executor,
            "--",
            pi,
            "driver",
            "--tasks",
            "20",
            "--samples-per-task",
            "20000",
        ],
    );
    assert!(
        out.status.success(),
        "client-mode submit failed: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    let mut lines = text.lines();
    let app = lines.next().expect("app id first").to_owned();
    assert!(app.starts_with("app-"), "{text}");
    let expected = std::process::Command::new(pi)
        .args(["expected", "--tasks", "20", "--samples-per-task", "20000"])
        .output()
        .expect("pi expected");
    assert!(
        text.contains(String::from_utf8_lossy(&expected.stdout).trim()),
        "driver output: {text}"
    );
    assert_eq!(master.app(&app).expect("listed")["state"], "FINISHED");
    wait_for("no process of the app left", LONG, || {
        procs::of_app(&master.url, &app).is_empty().then_some(())
    });
    master.assert_no_errors();
}

#[test]
fn sigkill_of_a_worker_loses_its_executors_and_replaces_them_on_the_other() {
    let dir = TestDir::new("lose-worker");
    let master = MasterProc::start(dir.path(), &["--worker-timeout", "2s"]);
    let (mut a, _b) = two_workers(&dir, &master);
    // A client-mode app: its driver runs under `hearth submit`, off the workers.
    let (mut submitter, app) = client_app_in_background(
        dir.path(),
        &master.url,
        &SleepingApp::client().executors(4).executor_memory_mb(128),
    );
    let spread = wait_for("4 RUNNING executors", LONG, || {
        let s = running_spread(&master, &app);
        (s.iter().map(|(_, n)| n).sum::<usize>() == 4).then_some(s)
    });
    assert_eq!(
        spread.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        vec![2, 2]
    );
    let work_a = dir.path().join("worker-a");
    let on_a = procs::with_env_prefix("HEARTH_WORK_DIR", work_a.to_str().unwrap());
    assert_eq!(
        on_a.iter().filter(|p| !p.is_guard()).count(),
        2,
        "worker a runs two executors"
    );
    let killed_at = Instant::now();
    a.kill9();
    wait_for("no orphan of worker a", Duration::from_secs(5), || {
        on_a.iter().all(|p| !procs::alive(p.pid)).then_some(())
    });
    let b_id = wait_for("worker a DEAD", LONG, || {
        let j = master.json();
        let workers = j["workers"].as_array()?.clone();
        let dead = workers.iter().any(|w| w["state"] == "DEAD");
        let alive: Vec<&Value> = workers.iter().filter(|w| w["state"] == "ALIVE").collect();
        (dead && alive.len() == 1).then(|| alive[0]["id"].as_str().unwrap().to_owned())
    });
    let replaced = wait_for("all four executors RUNNING on worker b", LONG, || {
        (running_spread(&master, &app) == vec![(b_id.clone(), 4)]).then(|| killed_at.elapsed())
    });
    assert_eq!(
        executor_pids(&master, &app).len(),
        4,
        "four executor processes in /proc"
    );
    eprintln!("replacements RUNNING {replaced:?} after SIGKILL of the worker (worker timeout 2 s)");
    assert!(
        replaced <= Duration::from_secs(3),
        "replacements took {replaced:?}, more than worker timeout + 1 s"
    );
    submitter.stop(LONG);
    wait_for("no process of the app left", LONG, || {
        procs::of_app(&master.url, &app).is_empty().then_some(())
    });
    assert_eq!(master.app(&app).expect("listed")["state"], "KILLED");
}

#[test]
fn the_example_app_is_exact_while_an_executor_is_killed_mid_run() {
    let dir = TestDir::new("pi");
    let master = MasterProc::start(dir.path(), &[]);
    let (_a, _b) = two_workers(&dir, &master);
    let pi = bin("hearth-pi");
    let pi = pi.to_str().unwrap();
    let executor = format!("exec {pi} executor");
    let ids = submit(
        &master.url,
        &[
            "--deploy-mode",
            "cluster",
            "--name",
            "pi",
            "--driver-memory",
            "128m",
            "--executor-cores",
            "1",
            "--executor-memory",
            "128m",
            "--total-executor-cores",
            "3",
            "--env",
            "HEARTH_PI_TASK_DELAY_MS=40",
            "--executor-command",
            &executor,
            "--",
            pi,
            "driver",
            "--tasks",
            "60",
            "--samples-per-task",
            "50000",
        ],
    );
    let (app, driver) = (&ids[0], &ids[1]);
    let victim = wait_for("three executor processes", LONG, || {
        let pids = executor_pids(&master, app);
        (pids.len() == 3).then(|| pids[0])
    });
    // Wait until the victim has taken a task, then kill it mid-run.
    let victim_dir = procs::all()
        .into_iter()
        .find(|p| p.pid == victim)
        .and_then(|p| p.env("HEARTH_WORK_DIR").map(str::to_owned))
        .expect("victim work dir");
    wait_for("the victim computing a task", LONG, || {
        std::fs::read_to_string(format!("{victim_dir}/stderr"))
            .ok()?
            .contains("task")
            .then_some(())
    });
    // SAFETY: kill(2) on a process this test's cluster started.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let done = wait_for("the app to finish", Duration::from_secs(120), || {
        let a = master.app(app)?;
        (a["state"] != "RUNNING" && a["state"] != "WAITING").then_some(a)
    });
    assert_eq!(done["state"], "FINISHED", "{done}");
    let j = master.json();
    let d = j["completeddrivers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == driver.as_str())
        .cloned()
        .expect("driver");
    assert_eq!(d["state"], "FINISHED");
    let work = ["worker-a", "worker-b"]
        .iter()
        .map(|w| dir.path().join(w).join(driver).join("stdout"))
        .find(|p| p.exists())
        .expect("driver stdout");
    let answer = std::fs::read_to_string(work).unwrap();
    let expected = std::process::Command::new(pi)
        .args(["expected", "--tasks", "60", "--samples-per-task", "50000"])
        .output()
        .unwrap();
    assert_eq!(
        answer.trim(),
        String::from_utf8_lossy(&expected.stdout).trim()
    );
}

#[test]
fn bad_input_is_refused_clearly_and_the_master_keeps_everything() {
    let dir = TestDir::new("bad-input");
    let master = MasterProc::start(dir.path(), &[]);
    let _w = start_worker(dir.path(), "worker-a", &master.url, 4, &[]);
    wait_for("an ALIVE worker", LONG, || {
        (master.json()["aliveworkers"] == 1).then_some(())
    });
    let good = submit_app(&master.url, &SleepingApp::cluster().executor_cores(None));
    let base = [
        "submit",
        "--deploy-mode",
        "cluster",
        "--executor-command",
        "true",
    ];
    let run = |extra: &[&str]| hearth(&master.url, &[&base[..], extra, &["--", "true"]].concat());
    let banana = run(&["--executor-memory", "banana"]);
    assert_eq!(banana.status.code(), Some(2), "bad usage exits 2");
    assert!(
        stderr(&banana).contains("--executor-memory") && stderr(&banana).contains("banana"),
        "{}",
        stderr(&banana)
    );
    let zero = run(&["--executor-cores", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(
        stderr(&zero).contains("--executor-cores") && stderr(&zero).contains("at least 1"),
        "{}",
        stderr(&zero)
    );
    let huge = run(&["--executor-cores", "64"]);
    assert_eq!(huge.status.code(), Some(1), "a refused request exits 1");
    assert_eq!(
        stderr(&huge).trim(),
        "error: cannot be scheduled: each executor needs 64 cores and 1024 MiB, but no worker offers that (largest: 4 cores, 4096 MiB)"
    );
    let unknown = hearth(&master.url, &["app", "kill", "app-nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(stderr(&unknown).trim(), "error: unknown app app-nope");
    let port = master.url.rsplit(':').next().unwrap();
    let clash = hearth(&master.url, &["master", "--port", port, "--http-port", "0"]);
    assert_eq!(clash.status.code(), Some(1));
    assert!(
        stderr(&clash).contains("cannot listen for gRPC")
            && stderr(&clash).contains("choose another --port"),
        "{}",
        stderr(&clash)
    );
    // Malformed gRPC payloads are refused and change nothing.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = master.url.trim_start_matches("hearth://");
        let mut c = hearth_proto::pb::master_service_client::MasterServiceClient::connect(format!(
            "http://{addr}"
        ))
        .await
        .unwrap();
        let e = c
            .register_app(hearth_proto::pb::RegisterAppRequest::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        let e = c
            .executor_state_changed(hearth_proto::pb::ExecutorStateChangedRequest {
                worker_id: "w".into(),
                app_id: "a".into(),
                state: "BANANA".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("BANANA"), "{}", e.message());
        let e = c
            .register_worker(hearth_proto::pb::RegisterWorkerRequest {
                worker_id: "worker-x".into(),
                host: "127.0.0.1".into(),
                port: 1,
                cores: 0,
                memory_mb: 1,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            e.message(),
            "invalid cores: a worker must offer at least 1 core"
        );
    });
    let j = master.json();
    assert_eq!(j["status"], "ALIVE");
    assert_eq!(j["activeapps"].as_array().unwrap().len(), 1);
    assert_eq!(j["activeapps"][0]["id"], good[0].as_str());
    assert_eq!(j["aliveworkers"], 1);
}

#[test]
fn a_leader_watch_answers_at_once_for_a_new_leader_and_waits_for_the_one_known() {
    let dir = TestDir::new("watch-leader");
    let master = MasterProc::start(dir.path(), &[]);
    let addr = master.url.trim_start_matches("hearth://").to_owned();
    let client = hearth_client::MasterClient::from_url(&master.url).expect("url");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let watch = |after_term, after_incarnation, wait_ms| {
        let started = Instant::now();
        let a = rt
            .block_on(client.watch_leader(
                &addr,
                hearth_proto::pb::WatchLeaderRequest {
                    after_term,
                    after_incarnation,
                    worker_id: "w-1".into(),
                    wait_ms,
                    registration: None,
                },
            ))
            .expect("WatchLeader answered");
        (a, started.elapsed())
    };
    // A worker that registered with nobody: this master leads, at once.
    let (a, _) = watch(0, 0, 20_000);
    assert!(a.leads && a.term > 0 && a.incarnation != 0, "{a:?}");
    // The leader it registered with: nothing new, so the watch waits it out, and still
    // says who leads.
    let (same, waited) = watch(a.term, a.incarnation, 500);
    assert!(
        waited >= Duration::from_millis(450),
        "answered after {waited:?}"
    );
    assert_eq!(
        (same.leads, same.term, same.incarnation),
        (true, a.term, a.incarnation)
    );
    // The same term from another process (a leader restarted within its term): at once.
    let (other, waited) = watch(a.term, a.incarnation + 1, 20_000);
    assert!(
        other.leads && waited < Duration::from_secs(10),
        "{other:?} after {waited:?}"
    );
    // A term above this leader's: it is not news, the watch waits.
    let (_, waited) = watch(a.term + 1, 0, 300);
    assert!(
        waited >= Duration::from_millis(250),
        "answered after {waited:?}"
    );
}
