//! `GET /metrics` (Prometheus text format) on real masters through a failover: the leader
//! says it leads and its commit-latency histogram counts every write; a follower shows the
//! replica's apps; after the leader is SIGKILLed, the new leader's term is higher, it
//! counts the leader change and how long its take-over took.

use hearth_tests::cluster::{RaftCluster, CI_TIMINGS};
use hearth_tests::harness::*;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// The value of the sample `name` (no labels) in a text exposition, if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

fn scrape(c: &RaftCluster, i: usize) -> Option<String> {
    let (code, body) = http_get(&format!("http://127.0.0.1:{}/metrics", c.http[i])).ok()?;
    (code == 200).then_some(body)
}

#[test]
fn metrics_show_the_leader_its_commits_and_a_leader_change() {
    let dir = TestDir::new("metrics");
    let mut c = RaftCluster::start(dir.path(), 3, CI_TIMINGS);
    let leader = wait_for("an ALIVE leader", LONG, || c.alive_leader(None));
    let text = scrape(&c, leader).expect("the leader's /metrics");
    assert_eq!(sample(&text, "hearth_is_leader"), Some(1.0), "{text}");
    let term = sample(&text, "hearth_raft_term").expect("a term");
    let commits = sample(&text, "hearth_commit_seconds_count").expect("a histogram");
    assert!(
        text.contains("hearth_commit_seconds_bucket{le="),
        "buckets: {text}"
    );
    for n in 0..3 {
        let app = SleepingApp::cluster().named(&format!("counted-{n}"));
        submit_app(&c.url(), &app);
    }
    let text = scrape(&c, leader).expect("the leader's /metrics");
    let after = sample(&text, "hearth_commit_seconds_count").expect("a histogram");
    assert!(after >= commits + 3.0, "{commits} -> {after}");
    let follower = (0..3).find(|i| *i != leader).expect("a follower");
    wait_for("the follower's replica showing the 3 apps", LONG, || {
        let text = scrape(&c, follower)?;
        (sample(&text, "hearth_apps") == Some(3.0)
            && sample(&text, "hearth_is_leader") == Some(0.0))
        .then_some(())
    });

    c.kill9(leader);
    let new = wait_for("a new ALIVE leader", LONG, || c.alive_leader(Some(leader)));
    let text = scrape(&c, new).expect("the new leader's /metrics");
    assert_eq!(sample(&text, "hearth_is_leader"), Some(1.0), "{text}");
    assert!(
        sample(&text, "hearth_raft_term").expect("a term") > term,
        "{text}"
    );
    assert!(
        sample(&text, "hearth_leader_changes_total").expect("a counter") >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "hearth_take_over_seconds").expect("a gauge") > 0.0,
        "{text}"
    );
    assert_eq!(sample(&text, "hearth_apps"), Some(3.0), "{text}");
}

/// A worker's `/metrics` (HTTP/1.1 on its own port): the processes it runs, how many it
/// launched, how they ended, how long kills took, and its lease on the masters.
#[test]
fn a_workers_metrics_count_its_processes_kills_and_lease() {
    let dir = TestDir::new("worker-metrics");
    let master = MasterProc::start(dir.path(), &["--worker-timeout", "2s"]);
    let _worker = start_worker(dir.path(), "w", &master.url, 4, &[]);
    wait_for("the worker ALIVE", LONG, || {
        (master.json()["aliveworkers"] == 1).then_some(())
    });
    let port = master.json()["workers"][0]["port"]
        .as_u64()
        .expect("the worker's port");
    let scrape = || {
        let (code, body) = http_get(&format!("http://127.0.0.1:{port}/metrics")).ok()?;
        (code == 200).then_some(body)
    };
    let app = submit_app(
        &master.url,
        &SleepingApp::cluster().named("metered").executors(1),
    )[0]
    .clone();
    let text = wait_for("the driver and the executor running", LONG, || {
        let text = scrape()?;
        (sample(&text, "hearth_worker_processes{phase=\"running\"}") == Some(2.0)).then_some(text)
    });
    assert!(sample(&text, "hearth_worker_launches_total").expect("launches") >= 2.0);
    assert_eq!(sample(&text, "hearth_worker_lease_ok"), Some(1.0), "{text}");
    assert!(
        sample(&text, "hearth_worker_leader_silence_seconds").expect("silence") < 2.0,
        "{text}"
    );
    let out = hearth(&master.url, &["app", "kill", &app]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = wait_for("both processes killed", LONG, || {
        let text = scrape()?;
        (sample(&text, "hearth_worker_processes{phase=\"running\"}") == Some(0.0)
            && sample(&text, "hearth_worker_process_ends_total{state=\"KILLED\"}") >= Some(2.0))
        .then_some(text)
    });
    assert!(
        sample(&text, "hearth_worker_kill_seconds_count").expect("kills timed") >= 2.0,
        "{text}"
    );
}
