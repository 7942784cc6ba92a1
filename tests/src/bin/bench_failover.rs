//! Raft failover benchmark: real `hearth master --recovery-mode raft` processes on
//! loopback, real workers, real executors (`sleep`).
//!
//! What it measures:
//!
//! 1. **Failover** (`--rounds N`, default 20). Three masters with the product's DEFAULT
//!    Raft timings (no `--raft-heartbeat` / `--election-timeout-*` flags: 50 ms heartbeat,
//!    150–300 ms election timeout; read back from `hearth master --help` and printed) and
//!    `--worker-timeout 3s`; two workers (8 cores each, `--heartbeat-interval 100ms`) and
//!    one long-running cluster-mode app with 2 executors. Each round finds the ALIVE
//!    leader, reads the clock (t0) and SIGKILLs it; a background thread at once submits a
//!    new cluster-mode app with 1 executor (`hearth submit`, which retries until a leader
//!    accepts), while one thread per survivor polls its `/json` every `--poll-ms` (default
//!    2) ms. Measured from t0, first time seen on any survivor:
//!    - *elected*: a survivor names a new leader (`leader` not the old one, any status);
//!    - *leading*: a survivor leads (names itself, status RECOVERING or ALIVE);
//!    - *ALIVE*: a survivor is the ALIVE leader;
//!    - *submit returned*: the background `hearth submit` printed the new app's id;
//!    - *executor RUNNING*: the new app's executor is RUNNING on the new leader;
//!    - *workers back*: both workers ALIVE again on the new leader;
//!
//!    then the killed master is restarted on its directory and the round ends once it is
//!    a STANDBY following the new leader with the same history (*rejoined*, from its
//!    restart). The long-running app must keep exactly its processes (checked in `/proc`):
//!    a process that appeared is counted `doubled`, one that vanished `lost`; any such
//!    violation makes the benchmark exit non-zero. Each round's app is killed
//!    (`hearth app kill`) so cores do not run out.
//!
//! 2. **Commit throughput and latency** (`--submissions N`, default 2000) through a fresh
//!    group of three masters (default timings, no workers), every Raft append fsynced:
//!    `hearth_client::MasterClient` registers client-mode apps (driver URL
//!    `127.0.0.1:1`; the apps just wait) — one client sequentially (submissions/s, p50 and
//!    p99 latency), then 16 and 64 concurrent clients, each with its own connection
//!    (submissions/s, latency distribution).
//!
//! Every figure is printed as a distribution (n, p50, p99, max, in ms), and the last line
//! of output is one JSON object with all of them, for scripts.
//!
//! Run (release, as the goals are meant):
//!
//! ```text
//! cargo build --release -p hearth && \
//!   cargo run --release -p hearth-tests --bin bench-failover -- --rounds 20
//! ```
//!
//! Options: `--rounds N`, `--submissions N`, `--poll-ms N`, `--skip-failover 1`,
//! `--skip-commit 1`, `--keep 1` (keep the directory with the master and worker logs;
//! it is always kept when the benchmark fails). The `hearth` binary is taken from the
//! directory this binary was built into (`HEARTH_BIN_DIR` overrides).
//!
//! Goals:
//! - SIGKILL of the leader → new ALIVE leader: p50 ≤ 300 ms, p99 ≤ 1 s;
//! - SIGKILL of the leader → first new executor RUNNING: p99 ≤ 1.5 s;
//! - ≥ 10,000 submissions/s with batching (concurrent clients);
//! - p50 commit latency ≤ 2 ms (one client, three masters, fsync).
//!
//! For scale: Spark's standalone master with ZooKeeper recovery takes 31–37 s from a
//! SIGKILL of the leader to the standby being ALIVE.

use anyhow::{anyhow, bail, ensure, Context, Result};
use hearth_client::MasterClient;
use hearth_core::{AppDescription, ProcessSpec};
use hearth_tests::cluster::{history, running_executors, RaftCluster};
use hearth_tests::harness::{arg, bin, http_get, sleeping_cluster_app, Proc};
use hearth_tests::procs::app_pids;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKER_TIMEOUT: &str = "3s";
const WORKER_HEARTBEAT: &str = "100ms";
const WORKER_CORES: u32 = 8;
/// Setting up, restarting a master, a CLI call: anything that is not measured.
const SETUP: Duration = Duration::from_secs(60);
/// One failover round's measurements.
const ROUND: Duration = Duration::from_secs(30);
/// One phase of the commit benchmark.
const PHASE: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------------------------------
// Small helpers

/// Polls `f` every `every` until it returns `Some`; an error naming `what` after `timeout`.
fn until<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(every);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

/// n, p50, p99 and max of `values` (ms), printed under `label` and returned as JSON.
fn dist(label: &str, values: &[f64]) -> Value {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        println!("  {label:<52} n=  0");
        return json!({ "n": 0 });
    }
    let (p50, p99, max) = (pct(&v, 0.50), pct(&v, 0.99), v[v.len() - 1]);
    println!(
        "  {label:<52} n={:>4}  p50 {p50:>8.1} ms  p99 {p99:>8.1} ms  max {max:>8.1} ms",
        v.len()
    );
    json!({
        "n": v.len(),
        "p50_ms": round3(p50),
        "p99_ms": round3(p99),
        "max_ms": round3(max),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// Runs the `hearth` CLI with `HEARTH_MASTERS=masters`; its stdout, or an error with its
/// stderr if it fails or does not finish within `timeout`.
fn cli(masters: &str, args: &[&str], timeout: Duration) -> Result<String> {
    let mut child = Command::new(bin("hearth"))
        .args(args)
        .env("HEARTH_MASTERS", masters)
        .env("HEARTH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running hearth")?;
    let start = Instant::now();
    while child.try_wait()?.is_none() {
        if start.elapsed() > timeout {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "`hearth {}` did not finish within {timeout:?}; stderr: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "`hearth {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Submits a cluster-mode app named `name` whose driver and `executors` one-core
/// executors sleep; returns its id.
fn submit_cluster_app(masters: &str, name: &str, executors: u32) -> Result<String> {
    let mut args = vec!["submit".to_owned()];
    args.extend(sleeping_cluster_app(name, executors));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cli(masters, &args, SETUP)?;
    out.lines()
        .find(|l| l.starts_with("app-"))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("hearth submit printed no app id: {out:?}"))
}

/// A worker with 8 cores and 4 GiB heartbeating every 100 ms.
fn start_worker(dir: &Path, name: &str, masters: &str) -> Result<Proc> {
    let work = dir.join(name);
    std::fs::create_dir_all(&work)?;
    let args: Vec<String> = [
        "worker",
        "--masters",
        masters,
        "--cores",
        &WORKER_CORES.to_string(),
        "--memory",
        "4g",
        "--work-dir",
        &work.to_string_lossy(),
        "--heartbeat-interval",
        WORKER_HEARTBEAT,
        "--kill-grace",
        "2s",
    ]
    .map(String::from)
    .to_vec();
    Ok(Proc::spawn(
        name,
        &bin("hearth"),
        &args,
        dir.join(format!("{name}.log")),
    ))
}

/// The default of `flag` as `hearth master --help` prints it (`[default: 50ms]`).
fn master_default(help: &str, flag: &str) -> String {
    // The option's own line (the flag also appears in other options' descriptions).
    let Some(at) = help
        .match_indices(&format!("{flag} "))
        .map(|(i, _)| i)
        .find(|&i| {
            help[..i]
                .rsplit('\n')
                .next()
                .is_some_and(|l| l.trim().is_empty())
        })
    else {
        return "?".into();
    };
    let rest = &help[at..];
    // This option's block ends where the next option's line begins.
    let end = rest
        .match_indices('\n')
        .map(|(i, _)| i)
        .find(|&i| rest[i + 1..].trim_start().starts_with('-'))
        .unwrap_or(rest.len());
    rest[..end]
        .split("[default: ")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or("?")
        .to_owned()
}

fn duration_ms(s: &str) -> Option<u64> {
    if let Some(v) = s.strip_suffix("ms") {
        return v.parse().ok();
    }
    s.strip_suffix('s')
        .and_then(|v| v.parse::<u64>().ok())
        .map(|v| v * 1000)
}

/// The `*.log` files in `dir` and its direct subdirectories.
fn logs(dir: &Path) -> Vec<PathBuf> {
    let entries = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect()
    };
    let mut files = Vec::new();
    for p in entries(dir) {
        if p.is_dir() {
            files.extend(entries(&p));
        } else {
            files.push(p);
        }
    }
    files.retain(|p| p.extension().is_some_and(|e| e == "log"));
    files.sort();
    files
}

/// ERROR and WARN lines of every log under `dir`: prints the ERRORs (at most 20) and the
/// distinct WARN messages with counts; returns (errors, warnings).
fn scan_logs(dir: &Path) -> (usize, usize) {
    let files = logs(dir);
    let mut errors = Vec::new();
    let mut warns: Vec<(String, usize)> = Vec::new();
    for f in &files {
        let name = f
            .strip_prefix(dir)
            .unwrap_or(f)
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines() {
            if line.contains(" ERROR ") {
                errors.push(format!("{name}: {line}"));
            } else if let Some(at) = line.find(" WARN ") {
                // Group by message: drop the timestamp, keep the rest.
                let kind = name.split(['-', '.']).next().unwrap_or("");
                let msg = format!("{kind}: {}", &line[at + 1..]);
                let msg: String = msg.chars().take(200).collect();
                match warns.iter_mut().find(|(m, _)| *m == msg) {
                    Some((_, n)) => *n += 1,
                    None => warns.push((msg, 1)),
                }
            }
        }
    }
    let nwarn = warns.iter().map(|(_, n)| n).sum();
    println!(
        "logs ({}): {} ERROR lines, {nwarn} WARN lines",
        dir.display(),
        errors.len()
    );
    for e in errors.iter().take(20) {
        println!("  {e}");
    }
    warns.sort_by_key(|w| std::cmp::Reverse(w.1));
    for (m, n) in warns.iter().take(12) {
        println!("  {n:>4} x {m}");
    }
    (errors.len(), nwarn)
}

// ---------------------------------------------------------------------------------------
// Failover

/// What the pollers saw, in ms after the SIGKILL (first time on any survivor).
#[derive(Default, Debug)]
struct Seen {
    elected: Option<f64>,
    leading: Option<f64>,
    alive: Option<f64>,
    running: Option<f64>,
    workers: Option<f64>,
    /// The new leader's advertised address.
    leader: Option<String>,
    /// Each survivor's last status, for an error message.
    last: Vec<String>,
}

impl Seen {
    fn complete(&self) -> bool {
        self.elected.is_some()
            && self.leading.is_some()
            && self.alive.is_some()
            && self.running.is_some()
            && self.workers.is_some()
    }
}

fn first(slot: &mut Option<f64>, t: f64) {
    if slot.is_none_or(|s| t < s) {
        *slot = Some(t);
    }
}

/// One survivor's poller: what it reads and what it looks for.
struct Poller {
    /// Index into `Seen::last`.
    slot: usize,
    /// The survivor's `/json` URL.
    http: String,
    /// The survivor's advertised address (what `leader` says when it leads).
    me: String,
    /// The killed leader's address.
    old: String,
    /// The name of the app submitted at the SIGKILL.
    app_name: String,
}

impl Poller {
    /// Reads `/json` every `every` until `done` or the round deadline.
    fn run(self, t0: Instant, every: Duration, seen: Arc<Mutex<Seen>>, done: Arc<AtomicBool>) {
        while !done.load(Ordering::Relaxed) && t0.elapsed() < ROUND {
            let answer = http_get(&self.http);
            let t = ms(t0.elapsed());
            if let Some(j) = answer
                .ok()
                .filter(|(code, _)| *code == 200)
                .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
            {
                let mut s = seen.lock().expect("seen lock");
                self.look(&j, t, &mut s);
                if s.complete() {
                    done.store(true, Ordering::Relaxed);
                    return;
                }
            }
            std::thread::sleep(every);
        }
    }

    fn look(&self, j: &Value, t: f64, s: &mut Seen) {
        let leader = j["leader"].as_str().unwrap_or("");
        let status = j["status"].as_str().unwrap_or("");
        s.last[self.slot] = format!(
            "{}: status {status}, leader {leader:?}, term {}, {} workers ALIVE",
            self.me, j["term"], j["aliveworkers"]
        );
        if !leader.is_empty() && leader != self.old {
            first(&mut s.elected, t);
        }
        let acting =
            leader == self.me && matches!(status, "RECOVERING" | "COMPLETING_RECOVERY" | "ALIVE");
        if !acting {
            return;
        }
        s.leader = Some(self.me.clone());
        first(&mut s.leading, t);
        if status == "ALIVE" {
            first(&mut s.alive, t);
        }
        if running_executors(j, "name", &self.app_name) >= 1 {
            first(&mut s.running, t);
        }
        if j["aliveworkers"] == 2 {
            first(&mut s.workers, t);
        }
    }
}

#[derive(Default)]
struct Figures {
    elected: Vec<f64>,
    leading: Vec<f64>,
    alive: Vec<f64>,
    submitted: Vec<f64>,
    running: Vec<f64>,
    workers: Vec<f64>,
    rejoined: Vec<f64>,
    doubled: usize,
    lost: usize,
}

fn failover(dir: &Path, rounds: u64, poll: Duration) -> Result<Value> {
    let help = cli("", &["master", "--help"], SETUP)?;
    let hb = master_default(&help, "--raft-heartbeat");
    let emin = master_default(&help, "--election-timeout-min");
    let emax = master_default(&help, "--election-timeout-max");
    println!(
        "failover: 3 masters, default Raft timings (heartbeat {hb}, election timeout {emin}–{emax}), \
         --worker-timeout {WORKER_TIMEOUT}; 2 workers ({WORKER_CORES} cores, heartbeat every \
         {WORKER_HEARTBEAT}); 1 long-running cluster-mode app with 2 executors; {rounds} rounds; \
         /json polled every {} ms",
        poll.as_millis()
    );

    let mut c = RaftCluster::start(dir, 3, &["--worker-timeout", WORKER_TIMEOUT]);
    let url = c.url();
    let _workers = [
        start_worker(dir, "wa", &url)?,
        start_worker(dir, "wb", &url)?,
    ];
    until("an ALIVE leader with both workers", SETUP, poll, || {
        let l = c.alive_leader(None)?;
        (c.json(l)?["aliveworkers"] == 2).then_some(())
    })?;
    let long = submit_cluster_app(&url, "long", 2)?;
    let before = until(
        "the long-running app's driver and 2 executors running",
        SETUP,
        poll,
        || {
            let l = c.alive_leader(None)?;
            let p = app_pids(&url, &long);
            (running_executors(&c.json(l)?, "id", &long) == 2 && p.len() == 3).then_some(p)
        },
    )?;

    let mut f = Figures::default();
    for round in 1..=rounds {
        let old = until("an ALIVE leader", SETUP, poll, || c.alive_leader(None))?;
        let old_addr = c.advertised[old].clone();
        let survivors: Vec<usize> = (0..3).filter(|i| *i != old).collect();
        let app_name = format!("round-{round}");
        let seen = Arc::new(Mutex::new(Seen {
            last: vec![String::new(); survivors.len()],
            ..Seen::default()
        }));
        let done = Arc::new(AtomicBool::new(false));
        let victim = c.masters[old].take().expect("the leader runs");

        // t0: SIGKILL, then at once the submission and the pollers; reap afterwards.
        let t0 = Instant::now();
        victim.proc.signal(libc::SIGKILL);
        let submitter = {
            let (url, name) = (url.clone(), app_name.clone());
            std::thread::spawn(move || {
                let r = submit_cluster_app(&url, &name, 1);
                (r, ms(t0.elapsed()))
            })
        };
        let pollers: Vec<_> = survivors
            .iter()
            .enumerate()
            .map(|(slot, &i)| {
                let p = Poller {
                    slot,
                    http: format!("http://127.0.0.1:{}/json", c.http[i]),
                    me: c.advertised[i].clone(),
                    old: old_addr.clone(),
                    app_name: app_name.clone(),
                };
                let (seen, done) = (seen.clone(), done.clone());
                std::thread::spawn(move || p.run(t0, poll, seen, done))
            })
            .collect();
        // Reaps it (dropping a process SIGKILLs it, harmless now, and waits).
        drop(victim);
        for p in pollers {
            p.join().map_err(|_| anyhow!("a poller panicked"))?;
        }
        let (submitted, submit_ms) = submitter
            .join()
            .map_err(|_| anyhow!("the submitter panicked"))?;
        let app =
            submitted.with_context(|| format!("round {round}: submitting during failover"))?;
        let s = std::mem::take(&mut *seen.lock().expect("seen lock"));
        if !s.complete() {
            bail!(
                "round {round}: within {ROUND:?} of the leader's SIGKILL not everything was seen: {s:?}"
            );
        }
        let new_addr = s.leader.clone().expect("complete");
        let new = c
            .advertised
            .iter()
            .position(|a| *a == new_addr)
            .expect("a survivor");
        let (elected, leading, alive, running, workers) = (
            s.elected.unwrap(),
            s.leading.unwrap(),
            s.alive.unwrap(),
            s.running.unwrap(),
            s.workers.unwrap(),
        );
        f.elected.push(elected);
        f.leading.push(leading);
        f.alive.push(alive);
        f.submitted.push(submit_ms);
        f.running.push(running);
        f.workers.push(workers);

        // The new app: exactly its driver and one executor (both run once its executor
        // is RUNNING; a moment more for /proc to show the driver's exec).
        let app_procs = until(
            &format!("round {round}: {app}'s driver and executor processes"),
            Duration::from_secs(10),
            poll,
            || {
                let p = app_pids(&url, &app);
                (p.len() >= 2).then_some(p.len())
            },
        )
        .unwrap_or_else(|_| app_pids(&url, &app).len());
        if app_procs != 2 {
            eprintln!("round {round}: {app} has {app_procs} processes, not 2");
            f.doubled += app_procs.saturating_sub(2);
            f.lost += 2usize.saturating_sub(app_procs);
        }
        cli(&url, &["app", "kill", &app], SETUP)?;

        // Restart the old leader and wait until it follows the new one with its history.
        let restarted = Instant::now();
        c.start_master(old);
        until(
            &format!("round {round}: the restarted master a STANDBY following the new leader"),
            SETUP,
            poll,
            || {
                let j = c.json(old)?;
                (j["status"] == "STANDBY"
                    && j["leader"] == new_addr
                    && history(&j) == history(&c.json(new)?))
                .then_some(())
            },
        )?;
        let rejoined = ms(restarted.elapsed());
        f.rejoined.push(rejoined);

        // The long-running app kept exactly its processes.
        let now = app_pids(&url, &long);
        let doubled = now.iter().filter(|p| !before.contains(p)).count();
        let lost = before.iter().filter(|p| !now.contains(p)).count();
        f.doubled += doubled;
        f.lost += lost;
        println!(
            "  round {round:>3}: master {} killed, master {} leads: elected {elected:>6.1}, \
             leading {leading:>6.1}, ALIVE {alive:>6.1}, submit returned {submit_ms:>6.1}, \
             executor RUNNING {running:>6.1}, workers back {workers:>6.1} ms; \
             rejoined in {rejoined:>6.1} ms{}",
            old + 1,
            new + 1,
            if doubled + lost > 0 {
                format!("; long app: {doubled} doubled, {lost} lost")
            } else {
                String::new()
            }
        );
    }

    // Stop the long app before the workers go.
    cli(&url, &["app", "kill", &long], SETUP)?;
    until("the long app's processes gone", SETUP, poll, || {
        app_pids(&url, &long).is_empty().then_some(())
    })?;

    println!("failover, ms from the leader's SIGKILL (restart: from the restart):");
    let figures = json!({
        "raft_heartbeat_ms": duration_ms(&hb),
        "election_timeout_min_ms": duration_ms(&emin),
        "election_timeout_max_ms": duration_ms(&emax),
        "worker_heartbeat_ms": duration_ms(WORKER_HEARTBEAT),
        "worker_timeout_ms": duration_ms(WORKER_TIMEOUT),
        "poll_ms": poll.as_millis() as u64,
        "rounds": rounds,
        "elected": dist("a survivor names a new leader (any status)", &f.elected),
        "leading": dist("a survivor leads (RECOVERING or ALIVE)", &f.leading),
        "alive": dist("a survivor is the ALIVE leader", &f.alive),
        "submit_returned": dist("hearth submit (started at SIGKILL) returned", &f.submitted),
        "executor_running": dist("the new app's executor RUNNING", &f.running),
        "workers_back": dist("both workers ALIVE on the new leader", &f.workers),
        "rejoined": dist("restarted master a STANDBY in step (from restart)", &f.rejoined),
        "doubled": f.doubled,
        "lost": f.lost,
    });
    println!(
        "  long-running app: {} processes doubled, {} lost over {rounds} rounds",
        f.doubled, f.lost
    );
    drop(c);
    Ok(figures)
}

// ---------------------------------------------------------------------------------------
// Commit throughput and latency

fn client_app() -> AppDescription {
    AppDescription {
        name: "bench".into(),
        cores_per_executor: Some(1),
        memory_per_executor_mb: 64,
        max_cores: Some(1),
        initial_executor_limit: None,
        command: ProcessSpec {
            argv: vec!["true".into()],
            env: Default::default(),
        },
    }
}

async fn register(client: &MasterClient) -> Result<Duration> {
    let t = Instant::now();
    client
        .register_app(&client_app(), None, Some("127.0.0.1:1"))
        .await
        .context("registering a client-mode app")?;
    Ok(t.elapsed())
}

async fn within<T>(what: &str, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(PHASE, fut)
        .await
        .map_err(|_| anyhow!("{what} did not finish within {PHASE:?}"))?
}

/// `clients` clients (each with its own connection) registering `per` apps each, all at
/// once; returns (wall time, every latency).
async fn concurrent(url: &str, clients: u64, per: u64) -> Result<(Duration, Vec<Duration>)> {
    let mut cs = Vec::new();
    for _ in 0..clients {
        let c = Arc::new(MasterClient::from_url(url)?);
        // Warm up: connect and find the leader, untimed.
        register(&c).await?;
        cs.push(c);
    }
    let start = Instant::now();
    let tasks: Vec<_> = cs
        .into_iter()
        .map(|c| {
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per as usize);
                for _ in 0..per {
                    lat.push(register(&c).await?);
                }
                anyhow::Ok(lat)
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    Ok((start.elapsed(), lat))
}

fn commit(dir: &Path, submissions: u64, poll: Duration) -> Result<Value> {
    println!(
        "commit: 3 masters (default timings, every Raft append fsynced, directories in {}), \
         no workers; client-mode apps registered through hearth_client::MasterClient",
        dir.display()
    );
    let c = RaftCluster::start(dir, 3, &[]);
    let leader = until("an ALIVE leader", SETUP, poll, || c.alive_leader(None))?;
    let url = c.url();
    println!("  leader: master {}", leader + 1);
    let rt = tokio::runtime::Runtime::new()?;
    let out = rt.block_on(async {
        let client = MasterClient::from_url(&url)?;
        for _ in 0..10 {
            register(&client).await?;
        }
        let (seq, lat) = within("1 client's submissions", async {
            let start = Instant::now();
            let mut lat = Vec::with_capacity(submissions as usize);
            for _ in 0..submissions {
                lat.push(ms(register(&client).await?));
            }
            Ok((start.elapsed(), lat))
        })
        .await?;
        let rate = submissions as f64 / seq.as_secs_f64();
        println!(
            "  1 client: {submissions} submissions in {:.0} ms = {rate:.0}/s",
            ms(seq)
        );
        let mut out = json!({
            "submissions": submissions,
            "clients_1": {
                "submissions": submissions,
                "per_s": rate.round(),
                "latency": dist("1 client: commit latency", &lat),
            },
        });
        for clients in [16u64, 64, 256] {
            let per = submissions.div_ceil(clients);
            let (took, lat) = within(
                &format!("{clients} clients' submissions"),
                concurrent(&url, clients, per),
            )
            .await?;
            let n = per * clients;
            let rate = n as f64 / took.as_secs_f64();
            println!(
                "  {clients} clients: {n} submissions in {:.0} ms = {rate:.0}/s",
                ms(took)
            );
            let lat: Vec<f64> = lat.into_iter().map(ms).collect();
            out[format!("clients_{clients}")] = json!({
                "submissions": n,
                "per_s": rate.round(),
                "latency": dist(&format!("{clients} clients: commit latency"), &lat),
            });
        }
        anyhow::Ok(out)
    })?;
    drop(c);
    Ok(out)
}

// ---------------------------------------------------------------------------------------

fn main() {
    // The `hearth` binary sits next to this one (target/<profile>/).
    if std::env::var_os("HEARTH_BIN_DIR").is_none() {
        if let Some(d) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            std::env::set_var("HEARTH_BIN_DIR", d);
        }
    }
    let hearth = bin("hearth");
    if !hearth.exists() {
        eprintln!(
            "error: {} is not built; build it with the same profile first \
             (`cargo build --release -p hearth`)",
            hearth.display()
        );
        std::process::exit(2);
    }
    let dir = std::env::temp_dir().join(format!("hearth-bench-failover-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let keep = arg("--keep", 0) == 1;
    let result = run(&dir);
    let (errors, _) = scan_logs(&dir);
    match result {
        Ok((figures, ok)) => {
            println!("{}", serde_json::to_string(&figures).expect("JSON"));
            if keep || !ok {
                eprintln!("test files kept in {}", dir.display());
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
            if !ok {
                eprintln!("FAILED: the long-running app's processes were doubled or lost");
                std::process::exit(1);
            }
            if errors > 0 {
                eprintln!("note: the logs hold ERROR lines (see above)");
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            eprintln!("test files kept in {}", dir.display());
            std::process::exit(1);
        }
    }
}

fn run(dir: &Path) -> Result<(Value, bool)> {
    let rounds = arg("--rounds", 20);
    let submissions = arg("--submissions", 2000);
    let poll = Duration::from_millis(arg("--poll-ms", 2).clamp(1, 50));
    let mut figures = json!({ "bench": "failover", "hearth": bin("hearth").display().to_string() });
    let mut ok = true;
    if arg("--skip-failover", 0) != 1 && rounds > 0 {
        let d = dir.join("failover");
        std::fs::create_dir_all(&d)?;
        let f = failover(&d, rounds, poll)?;
        ok = f["doubled"] == 0 && f["lost"] == 0;
        figures["failover"] = f;
    }
    if arg("--skip-commit", 0) != 1 && submissions > 0 {
        let d = dir.join("commit");
        std::fs::create_dir_all(&d)?;
        figures["commit"] = commit(&d, submissions, poll)?;
    }
    Ok((figures, ok))
}
