//! Unmodified Apache Spark (pyspark 4.3.0's) on `hearth local`: Spark's own example
//! programs and this repo's `tests/spark/*.py`, submitted with `spark-submit --master
//! spark+hearth://...` and the hearth jar on the driver's class path. Executors are real
//! JVMs that hearth's workers start; the leader is SIGKILLed mid-job, an executor JVM
//! too. `spark/setup.sh` installs what this needs under `~/.cache` (once per machine).

use hearth_tests::harness::{one_at_a_time, wait_for, TestDir};
use hearth_tests::spark::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Executors of 2 cores and 512 MiB, at most 4 cores: one executor on each of the two
/// 4-core workers (hearth spreads an app's executors).
const SMALL: &[&str] = &[
    "spark.executor.memory=512m",
    "spark.executor.cores=2",
    "spark.cores.max=4",
    "spark.ui.enabled=false",
    "spark.hearth.connectTimeout=60s",
];

fn confs(extra: &[&'static str]) -> Vec<&'static str> {
    [SMALL, extra].concat()
}

const JOB: Duration = Duration::from_secs(180);

/// The executor ids hearth lists for `app`, with the host of each.
fn hearth_executors(local: &Local, app: &str) -> Option<BTreeMap<u64, String>> {
    let j = local.app(app)?;
    Some(
        j["executors"]
            .as_array()?
            .iter()
            .filter(|e| e["state"] == "RUNNING")
            .filter_map(|e| Some((e["id"].as_u64()?, e["worker"].as_str()?.to_owned())))
            .collect(),
    )
}

/// Waits until the app named `name` runs `n` executors that hearth lists RUNNING, that
/// are live JVMs and that have registered with the Spark driver; returns the app's id
/// and the executors' pids by id.
fn running(
    local: &Local,
    run: &mut SparkRun,
    name: &str,
    n: usize,
) -> (String, BTreeMap<u32, u32>) {
    let found = || {
        assert!(
            run.proc.running(),
            "the driver exited early:\n{}",
            tail(&run.log(), 60)
        );
        let app = local.app_named(name)?;
        let listed = hearth_executors(local, &app)?;
        let jvms = local.executor_jvms(&app);
        let pids: BTreeMap<u32, u32> = jvms.iter().map(|(id, p)| (*id, p.pid)).collect();
        let ids: BTreeSet<u64> = pids.keys().map(|i| u64::from(*i)).collect();
        let log = run.log();
        let registered = ids
            .iter()
            .all(|id| log.contains(&format!("with ID {id}, ResourceProfileId")));
        (listed.len() == n && listed.keys().copied().collect::<BTreeSet<_>>() == ids && registered)
            .then_some((app, pids))
    };
    wait_for(
        &format!("{name}: {n} executors running as JVMs"),
        Duration::from_secs(90),
        found,
    )
}

/// A deterministic text: `lines` lines of 8 words from a 40-word vocabulary.
fn text(lines: usize) -> (String, BTreeMap<String, u64>) {
    let vocab: Vec<String> = (0..40).map(|i| format!("w{i:02}x{}", i * 7 % 13)).collect();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = String::new();
    let mut counts = BTreeMap::new();
    for _ in 0..lines {
        let mut words = Vec::with_capacity(8);
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let w = &vocab[(x % vocab.len() as u64) as usize];
            *counts.entry(w.clone()).or_insert(0) += 1;
            words.push(w.as_str());
        }
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    (out, counts)
}

#[test]
fn spark_wordcount_and_pi_run_on_executors_hearth_places_on_both_workers() {
    let _one = one_at_a_time();
    let dir = TestDir::new("spark-wordcount");
    let local = Local::start(dir.path(), 2, &[]);
    let (body, want) = text(100_000);
    let input = dir.path().join("words.txt");
    std::fs::write(&input, body).expect("write input");

    let kit = kit();
    let mut run = local.submit(
        dir.path(),
        "wordcount",
        &confs(&[]),
        &kit.example("wordcount.py"),
        &[input.to_str().unwrap()],
    );
    let (app, pids) = running(&local, &mut run, "PythonWordCount", 2);
    let workers: BTreeSet<String> = hearth_executors(&local, &app)
        .expect("app listed")
        .into_values()
        .collect();
    assert_eq!(workers.len(), 2, "one executor on each worker: {workers:?}");
    assert_eq!(pids.len(), 2, "two executor JVMs in /proc");
    let code = run.wait(JOB);
    assert_eq!(code, 0, "wordcount failed:\n{}", tail(&run.log(), 60));
    let got: BTreeMap<String, u64> = run
        .stdout()
        .lines()
        .filter_map(|l| {
            let (w, n) = l.rsplit_once(": ")?;
            Some((w.to_owned(), n.parse().ok()?))
        })
        .collect();
    assert_eq!(got, want, "Spark's counts differ from the test's own");

    // The app ended FINISHED, and its executors with it.
    wait_for(
        "the app FINISHED, no executor JVM left",
        Duration::from_secs(30),
        || {
            let j = local.app(&app)?;
            (j["state"] == "FINISHED" && local.executor_jvms(&app).is_empty()).then_some(())
        },
    );

    let mut pi = local.submit(dir.path(), "pi", &confs(&[]), &kit.example("pi.py"), &["4"]);
    assert_eq!(pi.wait(JOB), 0, "pi failed:\n{}", tail(&pi.log(), 60));
    assert!(pi.stdout().contains("Pi is roughly 3.1"), "{}", pi.stdout());
}

/// `slow_sum.py`'s exact answer.
fn slow_sum_expected(parts: u64, per: u64) -> u64 {
    let n = parts * per;
    n * (n - 1) / 2
}

fn slow_sum(
    dir: &TestDir,
    local: &Local,
    name: &str,
    parts: u64,
    per: u64,
    pause: &str,
) -> SparkRun {
    local.submit(
        dir.path(),
        name,
        &confs(&[]),
        &program("slow_sum.py"),
        &[name, &parts.to_string(), &per.to_string(), pause],
    )
}

fn printed_sum(run: &SparkRun) -> Option<u64> {
    run.stdout()
        .lines()
        .find_map(|l| l.strip_prefix("SUM ")?.trim().parse().ok())
}

#[test]
fn a_spark_job_survives_the_hearth_leader_sigkilled_mid_job() {
    let _one = one_at_a_time();
    let dir = TestDir::new("spark-leader-kill");
    let local = Local::start(dir.path(), 2, &[]);
    let (parts, per) = (32, 50_000);
    let mut run = slow_sum(&dir, &local, "slow-sum-leader-kill", parts, per, "1.0");
    let (app, pids) = running(&local, &mut run, "slow-sum-leader-kill", 2);

    let old = local.leader().expect("a leader");
    let pid = local.master_pid(&old).expect("the leader's process");
    // SAFETY: kill(2) on a master process of this test's cluster.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let killed = Instant::now();

    // A new leader, ALIVE, shows the app RUNNING with the same executors, while the
    // job still runs. It is another process: another master, or the killed one that
    // `hearth local` restarted on its own directory (it may lead again, in its term).
    let same: BTreeSet<u64> = pids.keys().map(|i| u64::from(*i)).collect();
    wait_for(
        "a new leader showing the app RUNNING with its executors",
        Duration::from_secs(30),
        || {
            let leader = local
                .leader()
                .filter(|l| local.master_pid(l).is_some_and(|p| p != pid))?;
            let (code, j) = get_json(&format!("http://{leader}/v1/apps/{app}"))?;
            let ids: BTreeSet<u64> = j["executors"]
                .as_array()?
                .iter()
                .filter(|e| e["state"] == "RUNNING")
                .filter_map(|e| e["id"].as_u64())
                .collect();
            (code == 200 && j["state"] == "RUNNING" && ids == same).then_some(())
        },
    );
    let recovered = killed.elapsed();
    assert!(
        run.proc.running(),
        "the job ended before the new leader was seen; make it longer"
    );

    // Until the job's result is out, the executor JVMs are the same processes: each one
    // seen before the kill stays alive, and no other executor id appears. (Comparing the
    // pid found per id at every look, as before, once took a process the executor started
    // itself, with its environment and class name, for a new executor: the worker's log
    // showed executor 0 launched once.)
    let mut ids_seen = BTreeSet::new();
    'job: while run.proc.running() && printed_sum(&run).is_none() {
        ids_seen.extend(local.executor_jvms(&app).into_keys());
        for (id, pid) in &pids {
            if !hearth_tests::procs::alive(*pid) {
                if printed_sum(&run).is_some() {
                    break 'job; // the job is over: its executors are being stopped
                }
                panic!("executor {id}'s process {pid} ended while the job ran");
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        run.wait(JOB),
        0,
        "the job failed:\n{}",
        tail(&run.log(), 80)
    );
    assert_eq!(printed_sum(&run), Some(slow_sum_expected(parts, per)));
    let before: BTreeSet<u32> = pids.keys().copied().collect();
    assert!(
        ids_seen.is_subset(&before),
        "executors {ids_seen:?} while the job ran, {before:?} before the kill"
    );
    assert_eq!(run.task_failures(), Vec::<String>::new(), "tasks failed");
    eprintln!("new leader showed the app {recovered:?} after the kill");
}

#[test]
fn a_sigkilled_executor_jvm_is_replaced_and_the_result_is_exact() {
    let _one = one_at_a_time();
    let dir = TestDir::new("spark-executor-kill");
    let local = Local::start(dir.path(), 2, &[]);
    let (parts, per) = (32, 50_000);
    let mut run = slow_sum(&dir, &local, "slow-sum-executor-kill", parts, per, "1.0");
    let (app, pids) = running(&local, &mut run, "slow-sum-executor-kill", 2);
    let (&victim, &pid) = pids.iter().next().expect("an executor");
    wait_for(
        "a task running on the victim",
        Duration::from_secs(60),
        || {
            run.log()
                .contains(&format!("executor {victim}, partition"))
                .then_some(())
        },
    );
    // SAFETY: kill(2) on an executor JVM of this test's cluster.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };

    wait_for(
        "hearth replaces the killed executor",
        Duration::from_secs(60),
        || {
            let jvms = local.executor_jvms(&app);
            (jvms.len() == 2
                && !jvms.contains_key(&victim)
                && jvms.keys().any(|id| !pids.contains_key(id)))
            .then_some(())
        },
    );
    assert_eq!(
        run.wait(JOB),
        0,
        "the job failed:\n{}",
        tail(&run.log(), 80)
    );
    assert_eq!(printed_sum(&run), Some(slow_sum_expected(parts, per)));
    assert!(
        !run.task_failures().is_empty(),
        "Spark re-ran the lost executor's tasks (its log says so)"
    );
}

#[test]
fn dynamic_allocation_grows_under_load_and_hearth_kills_the_executors_spark_releases() {
    let _one = one_at_a_time();
    let dir = TestDir::new("spark-dynamic");
    let local = Local::start(dir.path(), 2, &[]);
    let dynamic = [
        "spark.executor.memory=512m",
        "spark.executor.cores=1",
        "spark.ui.enabled=false",
        "spark.hearth.connectTimeout=60s",
        "spark.dynamicAllocation.enabled=true",
        "spark.dynamicAllocation.shuffleTracking.enabled=true",
        "spark.dynamicAllocation.minExecutors=1",
        "spark.dynamicAllocation.initialExecutors=1",
        "spark.dynamicAllocation.maxExecutors=4",
        "spark.dynamicAllocation.schedulerBacklogTimeout=1s",
        "spark.dynamicAllocation.sustainedSchedulerBacklogTimeout=1s",
        "spark.dynamicAllocation.executorIdleTimeout=2s",
    ];
    let name = "dynamic";
    let go = dir.path().join("go");
    let mut run = local.submit(
        dir.path(),
        name,
        &dynamic,
        &program("dynamic.py"),
        &[name, "24", "1.5", "1", "60", go.to_str().unwrap()],
    );
    let mut app = None;
    let mut peak = 0;
    let mut idle: Option<BTreeSet<u64>> = None;
    let deadline = Instant::now() + JOB;
    while idle.is_none() && run.proc.running() && Instant::now() < deadline {
        app = app.or_else(|| local.app_named(name));
        if let Some(listed) = app.as_deref().and_then(|a| hearth_executors(&local, a)) {
            peak = peak.max(listed.len());
        }
        idle = run.stdout().lines().find_map(|l| {
            let ids = l.strip_prefix("IDLE")?;
            Some(
                ids.trim()
                    .split(',')
                    .filter_map(|i| i.parse().ok())
                    .collect(),
            )
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    let app = app.expect("the app was listed");
    let kept =
        idle.unwrap_or_else(|| panic!("dynamic.py never went idle:\n{}", tail(&run.log(), 60)));
    assert!(peak >= 3, "executors grew under load (peak {peak})");
    assert_eq!(kept.len(), 1, "Spark kept minExecutors");
    // hearth runs exactly the executors Spark kept: the ones Spark released are the
    // ones hearth killed.
    wait_for(
        "hearth lists exactly the executors Spark kept",
        Duration::from_secs(10),
        || {
            let listed: BTreeSet<u64> = hearth_executors(&local, &app)?.into_keys().collect();
            let jvms: BTreeSet<u64> = local
                .executor_jvms(&app)
                .into_keys()
                .map(u64::from)
                .collect();
            (listed == kept && jvms == kept).then_some(())
        },
    );
    std::fs::write(&go, "").expect("let the driver stop");
    assert_eq!(
        run.wait(JOB),
        0,
        "the job failed:\n{}",
        tail(&run.log(), 60)
    );
    assert!(run.stdout().contains("BURST 276"), "{}", run.stdout());
}

#[test]
fn a_master_url_with_no_master_fails_the_driver_with_a_message_that_names_it() {
    let _one = one_at_a_time();
    let dir = TestDir::new("spark-no-master");
    let nobody = hearth_master_ports_nobody_listens_on();
    let url = format!("spark+hearth://{nobody}");
    let mut run = SparkRun::submit(
        dir.path(),
        "no-master",
        &url,
        &["spark.hearth.connectTimeout=3s", "spark.ui.enabled=false"],
        &program("slow_sum.py"),
        &["no-master", "2", "10", "0"],
    );
    let code = run.wait(Duration::from_secs(120));
    assert_ne!(code, 0);
    let log = run.log();
    assert!(
        log.contains(&nobody) && log.contains("no master reachable"),
        "the driver's error names the address it tried:\n{}",
        tail(&log, 40)
    );
}

/// A loopback address where nothing listens (bound, then released).
fn hearth_master_ports_nobody_listens_on() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    drop(l);
    addr
}

#[test]
fn executors_that_cannot_start_fail_the_driver_with_hearths_reason_and_leave_nothing() {
    let _one = one_at_a_time();
    let dir = TestDir::new("spark-bad-executor");
    let local = Local::start(dir.path(), 2, &[]);
    let mut run = local.submit(
        dir.path(),
        "bad-executor",
        &confs(&["spark.hearth.executor.javaHome=/nonexistent/java-home"]),
        &program("slow_sum.py"),
        &["bad-executor", "4", "10", "0"],
    );
    let code = run.wait(JOB);
    assert_ne!(code, 0, "the job cannot succeed without executors");
    let log = run.log();
    assert!(
        log.contains("hearth ended the app") && log.contains("executors ended and none registered"),
        "the driver's error says its executors cannot start:\n{}",
        tail(&log, 60)
    );
    let app = local
        .app_named("bad-executor")
        .expect("the app was registered");
    wait_for(
        "the app FAILED with no process left",
        Duration::from_secs(30),
        || {
            let j = local.app(&app)?;
            let left = hearth_tests::procs::of_app(&local.masters, &app);
            (j["state"] == "FAILED" && left.is_empty()).then_some(())
        },
    );
}

#[test]
fn a_wrong_or_missing_secret_fails_the_driver_with_hearths_refusal_and_registers_nothing() {
    let _one = one_at_a_time();
    let dir = TestDir::new("spark-token");
    let local = Local::start(dir.path(), 2, &[]);
    let refused = |run: &mut SparkRun, why: &str| {
        assert_ne!(run.wait(JOB), 0);
        let log = run.log();
        assert!(
            log.contains("hearth refused the token") && log.contains(why),
            "the driver's error says the token was refused ({why}):\n{}",
            tail(&log, 40)
        );
    };
    let mut wrong = local.submit(
        dir.path(),
        "wrong-token",
        &confs(&["spark.hearth.token=not-the-secret-of-this-cluster-at-all"]),
        &program("slow_sum.py"),
        &["wrong-token", "2", "10", "0"],
    );
    refused(&mut wrong, "wrong secret");
    let mut none = SparkRun::submit(
        dir.path(),
        "no-token",
        &local.spark_url(),
        &confs(&[]),
        &program("slow_sum.py"),
        &["no-token", "2", "10", "0"],
    );
    refused(&mut none, "no secret");
    let j = local.leader_json().expect("leader");
    assert_eq!(j["activeapps"], serde_json::json!([]), "no app registered");
    assert_eq!(
        j["completedapps"],
        serde_json::json!([]),
        "no app registered"
    );

    // The cluster's secret file (what `hearth local` prints) runs the job.
    let mut ok = local.submit(
        dir.path(),
        "right-token",
        &confs(&[]),
        &program("slow_sum.py"),
        &["right-token", "4", "10", "0"],
    );
    assert_eq!(ok.wait(JOB), 0, "{}", tail(&ok.log(), 60));
    assert_eq!(printed_sum(&ok), Some(slow_sum_expected(4, 10)));
}

#[test]
fn spark_submit_runs_as_a_supervised_cluster_mode_driver_on_a_worker() {
    let _one = one_at_a_time();
    let dir = TestDir::new("spark-cluster-mode");
    let local = Local::start(dir.path(), 2, &[]);
    let kit = kit();
    let spark_submit = kit.python.parent().expect("venv bin").join("spark-submit");
    let env = |k: &str, v: &std::path::Path| format!("{k}={}", v.display());
    let mut args: Vec<String> = [
        "submit",
        "--deploy-mode",
        "cluster",
        "--supervise",
        "--wait",
        "--name",
        "spark-driver",
        "--env",
        "SPARK_LOCAL_IP=127.0.0.1",
    ]
    .map(String::from)
    .to_vec();
    for e in [
        env("PYSPARK_PYTHON", &kit.python),
        env("SPARK_HOME", &kit.spark_home),
        env("HEARTH_SECRET_FILE", &local.secret),
    ] {
        args.extend(["--env".to_owned(), e]);
    }
    args.extend([
        "--".to_owned(),
        spark_submit.display().to_string(),
        "--master".to_owned(),
        local.spark_url(),
        "--driver-class-path".to_owned(),
        kit.jar.display().to_string(),
    ]);
    for c in SMALL {
        args.extend(["--conf".to_owned(), c.to_string()]);
    }
    args.extend([kit.example("pi.py").display().to_string(), "4".to_owned()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = hearth_tests::harness::hearth_within(&local.masters, &argv, JOB)
        .expect("hearth submit --wait");
    let printed = hearth_tests::harness::stdout(&out);
    assert!(
        out.status.success(),
        "the driver did not finish: {}{}",
        printed,
        hearth_tests::harness::stderr(&out)
    );
    // hearth ran the driver on a worker; the driver's own Spark app got the executors.
    let driver = printed.lines().nth(1).expect("the driver id").to_owned();
    let stdout = std::fs::read_dir(&local.dir)
        .expect("data dir")
        .flatten()
        .map(|w| w.path().join(&driver).join("stdout"))
        .find(|p| p.exists())
        .expect("the driver's stdout on its worker");
    let text = std::fs::read_to_string(&stdout).expect("read stdout");
    assert!(text.contains("Pi is roughly 3.1"), "{text}");
    let j = local.leader_json().expect("leader");
    let done: Vec<(&str, &str, usize)> = j["completedapps"]
        .as_array()
        .expect("completed")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap_or("?"),
                a["state"].as_str().unwrap_or("?"),
                a["executors"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    assert!(done.contains(&("spark-driver", "FINISHED", 0)), "{done:?}");
    assert!(done.contains(&("PythonPi", "FINISHED", 0)), "{done:?}");
}

#[test]
fn a_spark_job_runs_on_a_cluster_that_speaks_only_mutual_tls() {
    // The plugin's HTTPS client shows the cluster's certificate (spark.hearth.tls.*, as
    // `hearth local --tls` prints them); nothing else would get an answer.
    let _one = one_at_a_time();
    let dir = TestDir::new("spark-tls");
    let local = Local::start(dir.path(), 1, &["--tls"]);
    let mut run = slow_sum(&dir, &local, "over-tls", 2, 50, "0");
    let code = run.wait(JOB);
    assert_eq!(code, 0, "the job failed:\n{}", tail(&run.log(), 60));
    assert_eq!(printed_sum(&run), Some(slow_sum_expected(2, 50)));
}
