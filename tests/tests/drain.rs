//! `hearth worker-admin drain` / `undrain` against real processes: a draining worker
//! gets nothing new while what runs there keeps running until the deadline; then its
//! executors are killed there (gone from /proc) and placed on another worker; undrained,
//! it takes placements again.

use hearth_client::SleepingApp;
use hearth_tests::harness::*;
use hearth_tests::procs;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const LONG: Duration = Duration::from_secs(30);

/// (worker id, count) of an app's RUNNING executors, per /json.
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

/// The `/json` entry of worker `id`.
fn worker<'a>(json: &'a Value, id: &str) -> &'a Value {
    json["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .find(|w| w["id"] == id)
        .unwrap_or_else(|| panic!("worker {id} in {json}"))
}

/// The pids of the executors of `app` running under the work dir `work`, from /proc.
fn executor_pids_under(master: &MasterProc, app: &str, work: &Path) -> Vec<u32> {
    executor_pids_under_url(&master.url, app, work)
}

/// [`executor_pids_under`] for the cluster at `url`.
fn executor_pids_under_url(url: &str, app: &str, work: &Path) -> Vec<u32> {
    let work = work.to_string_lossy();
    let mut pids: Vec<u32> = procs::of_app(url, app)
        .into_iter()
        .filter(|p| !p.is_guard() && p.env("HEARTH_EXECUTOR_ID").is_some())
        .filter(|p| {
            p.env("HEARTH_WORK_DIR")
                .is_some_and(|d| d.starts_with(&*work))
        })
        .map(|p| p.pid)
        .collect();
    pids.sort();
    pids
}

/// A directory of its own for a submitter's log.
fn sub(dir: &TestDir, name: &str) -> std::path::PathBuf {
    let d = dir.path().join(name);
    std::fs::create_dir_all(&d).expect("submitter dir");
    d
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

fn ok_cli(master: &MasterProc, args: &[&str]) -> String {
    let out = hearth(&master.url, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn a_drained_worker_keeps_its_work_until_the_deadline_then_it_moves() {
    let dir = TestDir::new("drain");
    let master = MasterProc::start(dir.path(), &[]);
    tracing_free_step("--- worker A alone, an app with two executors on it");
    let _a = start_worker(dir.path(), "worker-a", &master.url, 4, &[]);
    let a = wait_for("worker A ALIVE", LONG, || {
        let j = master.json();
        j["workers"][0]["id"].as_str().map(str::to_owned)
    });
    let (_app1_driver, app1) = client_app_in_background(
        dir.path(),
        &master.url,
        &SleepingApp::client().named("one").executors(2),
    );
    wait_for("app one: 2 RUNNING executors on A", LONG, || {
        (running_spread(&master, &app1) == vec![(a.clone(), 2)]).then_some(())
    });
    let a_dir = dir.path().join("worker-a");
    let a_pids = wait_for("app one's two executor processes on A", LONG, || {
        let p = executor_pids_under(&master, &app1, &a_dir);
        (p.len() == 2).then_some(p)
    });

    tracing_free_step("--- drain A for 3 s: nothing new there, what runs keeps running");
    let out = ok_cli(&master, &["worker-admin", "drain", &a, "--deadline", "3s"]);
    assert_eq!(
        out,
        format!("{a} draining: what still runs there in 3s is killed and placed elsewhere\n")
    );
    let j = master.json();
    assert_eq!(worker(&j, &a)["state"], "DRAINING", "{j}");
    let deadline = worker(&j, &a)["draindeadline"]
        .as_u64()
        .unwrap_or_else(|| panic!("a drain deadline in {j}"));
    assert_eq!(j["aliveworkers"], 0, "{j}");
    let status = ok_cli(&master, &["status"]);
    assert!(
        status.contains("DRAINING") && status.contains("until 20"),
        "{status}"
    );
    // A has 2 free cores, but a new app waits rather than go there.
    let (_app2_driver, app2) = client_app_in_background(
        &sub(&dir, "two"),
        &master.url,
        &SleepingApp::client().named("two").executors(1),
    );
    let waiting = master.app(&app2).expect("app two listed");
    assert_eq!(waiting["executors"], serde_json::json!([]), "{waiting}");

    tracing_free_step("--- worker B: app two's executor goes there, not to A");
    let _b = start_worker(dir.path(), "worker-b", &master.url, 3, &[]);
    let b = wait_for("worker B ALIVE", LONG, || {
        let j = master.json();
        j["workers"]
            .as_array()?
            .iter()
            .find(|w| w["id"] != a.as_str() && w["state"] == "ALIVE")
            .and_then(|w| w["id"].as_str().map(str::to_owned))
    });
    wait_for("app two RUNNING on B", LONG, || {
        (running_spread(&master, &app2) == vec![(b.clone(), 1)]).then_some(())
    });

    tracing_free_step("--- until the deadline A's executors run; then they are killed there");
    let gone_at = wait_for("A's executors killed", LONG, || {
        let pids = executor_pids_under(&master, &app1, &a_dir);
        let now = wall_ms();
        if pids == a_pids {
            return None;
        }
        assert!(
            now >= deadline,
            "A's executors changed before the deadline {deadline} (now {now}): {pids:?}"
        );
        pids.is_empty().then_some(now)
    });
    assert!(a_pids.iter().all(|p| !procs::alive(*p)));
    assert!(gone_at >= deadline);
    wait_for("app one's two executors replaced on B", LONG, || {
        (running_spread(&master, &app1) == vec![(b.clone(), 2)]).then_some(())
    });
    let j = master.json();
    assert_eq!(worker(&j, &a)["state"], "DECOMMISSIONED", "{j}");
    assert_eq!(worker(&j, &a)["draindeadline"], Value::Null, "{j}");
    assert_eq!(worker(&j, &a)["coresused"], 0, "{j}");
    let one = master.app(&app1).expect("app one");
    assert_eq!(one["state"], "RUNNING", "{one}");
    assert_eq!(one["retrycount"], 0, "{one}");

    tracing_free_step("--- undrain by host: A takes placements again (B is full)");
    let out = ok_cli(&master, &["worker-admin", "undrain", "127.0.0.1"]);
    let mut ids = [a.clone(), b.clone()];
    ids.sort();
    assert_eq!(
        out,
        format!(
            "host 127.0.0.1 has 2 workers: {}, {}\n{} {}\n{} {}\n",
            ids[0],
            ids[1],
            ids[0],
            if ids[0] == a {
                "undrained: takes placements again"
            } else {
                "was not draining or decommissioned"
            },
            ids[1],
            if ids[1] == a {
                "undrained: takes placements again"
            } else {
                "was not draining or decommissioned"
            },
        )
    );
    assert_eq!(worker(&master.json(), &a)["state"], "ALIVE");
    let (_app3_driver, app3) = client_app_in_background(
        &sub(&dir, "three"),
        &master.url,
        &SleepingApp::client().named("three").executors(1),
    );
    wait_for("app three RUNNING on A", LONG, || {
        (running_spread(&master, &app3) == vec![(a.clone(), 1)]).then_some(())
    });

    tracing_free_step("--- an unknown host is an error naming it and the hosts there are");
    let out = hearth(&master.url, &["worker-admin", "drain", "nowhere.example"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "no worker has the id or host nowhere.example; hosts with workers: 127.0.0.1"
        ),
        "{}",
        stderr(&out)
    );
    master.assert_no_errors();
}

/// Narrates a step in the test's output (the harness has no tracing subscriber).
fn tracing_free_step(what: &str) {
    eprintln!("{what}");
}

/// Raft: a drain is replicated with its deadline, so the leader that follows a SIGKILLed
/// one kills the drained worker's executors at that deadline, not before.
#[test]
fn a_drain_survives_a_leader_sigkill() {
    use hearth_tests::cluster::{RaftCluster, CI_TIMINGS};
    let dir = TestDir::new("drain-raft");
    let mut c = RaftCluster::start(dir.path(), 3, CI_TIMINGS);
    let url = c.url();
    let _a = start_worker(dir.path(), "worker-a", &url, 4, &[]);
    let leader = wait_for("a leader with worker A", LONG, || c.leader_with_workers(1));
    let a = c.json(leader).expect("leader /json")["workers"][0]["id"]
        .as_str()
        .expect("A's id")
        .to_owned();
    let (_submitter, app) = client_app_in_background(
        dir.path(),
        &url,
        &SleepingApp::client().named("one").executors(2),
    );
    let a_dir = dir.path().join("worker-a");
    let a_pids = wait_for("two executor processes on A", LONG, || {
        let p = executor_pids_under_url(&url, &app, &a_dir);
        (p.len() == 2).then_some(p)
    });
    let _b = start_worker(dir.path(), "worker-b", &url, 4, &[]);
    let leader = wait_for("a leader with workers A and B", LONG, || {
        c.leader_with_workers(2)
    });

    tracing_free_step("--- drain A for 5 s, then SIGKILL the leader at once");
    let out = hearth(&url, &["worker-admin", "drain", &a, "--deadline", "5s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let j = c.json(leader).expect("leader /json");
    let deadline = worker(&j, &a)["draindeadline"]
        .as_u64()
        .unwrap_or_else(|| panic!("a drain deadline in {j}"));
    c.kill9(leader);
    let new = wait_for("a new ALIVE leader", LONG, || c.alive_leader(Some(leader)));
    let j = c.json(new).expect("new leader /json");
    let st = &worker(&j, &a)["state"];
    assert!(
        (st == "DRAINING" && worker(&j, &a)["draindeadline"] == deadline)
            || (st == "DECOMMISSIONED" && wall_ms() >= deadline),
        "the new leader lost the drain: {j}"
    );

    tracing_free_step("--- the new leader kills A's executors at the deadline, not before");
    let gone_at = wait_for("A's executors killed", LONG, || {
        let pids = executor_pids_under_url(&url, &app, &a_dir);
        let now = wall_ms();
        if pids == a_pids {
            return None;
        }
        assert!(
            now >= deadline,
            "A's executors changed before the deadline {deadline} (now {now}): {pids:?}"
        );
        pids.is_empty().then_some(now)
    });
    assert!(gone_at >= deadline);
    wait_for("the app's two executors RUNNING on B", LONG, || {
        let j = c.json(c.alive_leader(None)?)?;
        let on_b = j["activeapps"]
            .as_array()?
            .iter()
            .find(|x| x["id"] == app.as_str())?["executors"]
            .as_array()?
            .iter()
            .filter(|e| e["state"] == "RUNNING" && e["worker"] != a.as_str())
            .count();
        (on_b == 2 && worker(&j, &a)["state"] == "DECOMMISSIONED").then_some(())
    });
}
