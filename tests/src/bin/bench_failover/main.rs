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
//! Options: `--secret 1` (every master and worker with a cluster secret, every client
//! sending it: what authentication costs), `--tls 1` (every port and connection mutual
//! TLS with a CA and certificate made in the directory: what encryption costs), `--workers N` (N real workers instead of 2,
//! heartbeating every 750 ms, a quarter of the worker timeout: the re-registration herd
//! after each failover; the JSON then has `term_steps`, how far the term moved per
//! round, which shows an election storm), `--rounds N`, `--submissions N`, `--poll-ms N`, `--skip-failover 1`,
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
//!
//! The measuring is hearth-client's failover engine ([`hearth_client::failover`]), the
//! one `hearth drill` uses; here its fault is a SIGKILL of a child process and its views
//! are each survivor's `/json`.

use anyhow::{anyhow, bail, ensure, Result};
use hearth_client::failover::stats::ms;
use hearth_client::failover::{
    self, CountedOn, Placement, Polling, Round, Tally, Target, Timings, Watch,
};
use hearth_client::SleepingApp;
use hearth_core::AppId;
use hearth_tests::cluster::RaftCluster;
use hearth_tests::harness::{arg, bin, hearth_within, start_worker_beating, Proc};
use hearth_tests::procs::app_pids;
use hearth_tests::stats::dist;
use hearth_tests::wait::Wait;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const WORKER_TIMEOUT: &str = "3s";
const WORKER_HEARTBEAT: &str = "100ms";
const WORKER_CORES: u32 = 8;
/// Setting up, restarting a master, a CLI call: anything that is not measured.
const SETUP: Duration = Duration::from_secs(60);
/// One failover round's measurements.
const ROUND: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Small helpers

/// Runs the `hearth` CLI with `HEARTH_MASTERS=masters`; its stdout, or an error with its
/// stderr if it fails or does not finish within `timeout`.
fn cli(masters: &str, args: &[&str], timeout: Duration) -> Result<String> {
    let out = hearth_within(masters, args, timeout)?;
    ensure!(
        out.status.success(),
        "`hearth {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `hearth submit` of `app`; returns its id. As its error asks, when the CLI says the
/// outcome is unknown (the leader died under the call) the app is looked up by its name
/// (unique here) on a leader (`hearth status --json`), and submitted again only if no
/// leader lists it.
fn submit_cluster_app(masters: &str, app: &SleepingApp) -> Result<String> {
    let mut args = vec!["submit".to_owned()];
    args.extend(app.submit_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Each call within a third of a round, so that a hung one is reported with its
    // stderr before the round gives up on the submission.
    let each = ROUND / 3;
    loop {
        match cli(masters, &args, each) {
            Ok(out) => {
                return out
                    .lines()
                    .find(|l| l.starts_with("app-"))
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow!("hearth submit printed no app id: {out:?}"))
            }
            Err(e) if format!("{e:#}").contains("is unknown") => {
                let name = app.name.as_deref().ok_or(e)?;
                if let Some(id) = app_named(masters, name, each)? {
                    return Ok(id);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The id of the app named `name` (active or completed), as a leader lists it.
fn app_named(masters: &str, name: &str, within: Duration) -> Result<Option<String>> {
    let j: Value = serde_json::from_str(&cli(masters, &["status", "--json"], within)?)?;
    Ok(["activeapps", "completedapps"]
        .iter()
        .filter_map(|list| j[*list].as_array())
        .flatten()
        .find(|a| a["name"] == name)
        .and_then(|a| a["id"].as_str().map(str::to_owned)))
}

/// A worker with 8 cores and 4 GiB heartbeating every `heartbeat` (with the secret
/// under `--secret 1`).
fn start_worker(dir: &Path, name: &str, masters: &str, heartbeat: &str) -> Proc {
    let flags = secured(dir);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    start_worker_beating(dir, name, masters, WORKER_CORES, heartbeat, &flags)
}

/// The workers' heartbeat: every 100 ms for the usual 2 workers; with more (`--workers
/// N`, a scale run) a quarter of the worker timeout, what the master advises.
fn worker_heartbeat(workers: usize) -> &'static str {
    if workers <= 2 {
        WORKER_HEARTBEAT
    } else {
        "750ms"
    }
}

/// Under `--secret 1`: `--secret-file F` with a secret in `dir` (made once); under `--tls
/// 1`: `--tls-cert/--tls-key/--tls-ca` with a CA and a certificate in `dir/tls` (made
/// once). Else nothing.
pub(crate) fn secured(dir: &Path) -> Vec<String> {
    let mut flags = Vec::new();
    if arg("--secret", 0) == 1 {
        let file = dir.join("secret");
        if !file.exists() {
            hearth_proto::auth::Secret::create(&file).expect("write the secret");
        }
        flags.extend(["--secret-file".into(), file.display().to_string()]);
    }
    if let Some(t) = tls_files(dir) {
        for (flag, file) in [
            ("--tls-cert", t.cert),
            ("--tls-key", t.key),
            ("--tls-ca", t.ca),
        ] {
            flags.extend([flag.into(), file.display().to_string()]);
        }
    }
    flags
}

/// Under `--tls 1`: the CA and certificate in `dir/tls`, made once.
fn tls_files(dir: &Path) -> Option<hearth_proto::tls::TlsFiles> {
    if arg("--tls", 0) != 1 {
        return None;
    }
    let tls = dir.join("tls");
    if !tls.join("node.pem").exists() {
        hearth_proto::tls::generate_local(&tls, &[]).expect("make a CA and a certificate");
    }
    Some(hearth_proto::tls::TlsFiles {
        cert: tls.join("node.pem"),
        key: tls.join("node-key.pem"),
        ca: tls.join(hearth_proto::tls::CA_CERT),
    })
}

/// The cluster at `url` wants the secret and TLS of `dir` (CLI calls send them), under
/// `--secret 1` / `--tls 1`.
pub(crate) fn remember(dir: &Path, url: &str) {
    if arg("--secret", 0) == 1 {
        hearth_tests::harness::remember_secret(url, &dir.join("secret"));
    }
    if let Some(t) = tls_files(dir) {
        hearth_tests::harness::remember_tls(url, &t);
    }
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

// ---------------------------------------------------------------------------------------
// Failover

/// What the rounds measured.
#[derive(Default)]
struct Figures {
    /// Each round's timings, from the leader's SIGKILL.
    rounds: Vec<Timings>,
    /// Each round's restart of the old leader until it follows in step.
    rejoined: Vec<Duration>,
    /// The long-running app's processes and each round's app's.
    tally: Tally,
    /// How far the term moved in each round (1: one election).
    term_steps: Vec<u64>,
}

/// The group under test: three masters, two workers and the long-running app.
struct Bench {
    c: RaftCluster,
    _workers: Vec<Proc>,
    /// How many workers (`--workers`, default 2).
    workers: usize,
    url: String,
    /// The long-running app and its processes.
    long: String,
    before: Vec<u32>,
    poll: Duration,
    rt: tokio::runtime::Runtime,
}

fn failover(dir: &Path, rounds: u64, poll: Duration) -> Result<Value> {
    let help = cli("", &["master", "--help"], SETUP)?;
    let hb = master_default(&help, "--raft-heartbeat");
    let emin = master_default(&help, "--election-timeout-min");
    let emax = master_default(&help, "--election-timeout-max");
    let workers = arg("--workers", 2).max(2) as usize;
    let heartbeat = worker_heartbeat(workers);
    println!(
        "failover: 3 masters, default Raft timings (heartbeat {hb}, election timeout {emin}–{emax}), \
         --worker-timeout {WORKER_TIMEOUT}; {workers} workers ({WORKER_CORES} cores, heartbeat every \
         {heartbeat}); 1 long-running cluster-mode app with 2 executors; {rounds} rounds; \
         /json polled every {} ms",
        poll.as_millis()
    );
    let mut b = Bench::start(dir, poll)?;
    let mut f = Figures::default();
    for round in 1..=rounds {
        b.round(round, &mut f)?;
    }
    b.stop_long_app()?;

    println!("failover, ms from the leader's SIGKILL (restart: from the restart):");
    let measure = |m: fn(&Timings) -> Option<Duration>| f.rounds.iter().filter_map(m);
    let figures = json!({
        "raft_heartbeat_ms": duration_ms(&hb),
        "election_timeout_min_ms": duration_ms(&emin),
        "election_timeout_max_ms": duration_ms(&emax),
        "worker_heartbeat_ms": duration_ms(heartbeat),
        "worker_timeout_ms": duration_ms(WORKER_TIMEOUT),
        "poll_ms": poll.as_millis() as u64,
        "rounds": rounds,
        "elected": dist("a survivor names a new leader (any status)", measure(|t| t.elected)),
        "leading": dist("a survivor leads (RECOVERING or ALIVE)", measure(|t| t.leading)),
        "alive": dist("a survivor is the ALIVE leader", measure(|t| t.alive)),
        "submit_returned": dist("hearth submit (started at SIGKILL) returned", measure(|t| t.submitted)),
        "executor_running": dist("the new app's executor RUNNING", measure(|t| t.placed)),
        "workers_back": dist("every worker ALIVE on the new leader", measure(|t| t.workers_back)),
        "rejoined": dist("restarted master a STANDBY in step (from restart)", f.rejoined.iter().copied()),
        "doubled": f.tally.doubled,
        "lost": f.tally.lost,
        "workers": workers,
        "term_step_max": f.term_steps.iter().max().copied().unwrap_or(0),
        "term_steps": f.term_steps,
    });
    println!(
        "  term moved per failover: {:?} (1: one election; more: repeated elections)",
        f.term_steps
    );
    println!(
        "  long-running app: {} processes doubled, {} lost over {rounds} rounds",
        f.tally.doubled, f.tally.lost
    );
    Ok(figures)
}

impl Bench {
    /// Starts the masters and workers and the long-running app, and waits until its
    /// driver and executors run.
    fn start(dir: &Path, poll: Duration) -> Result<Bench> {
        let mut flags = vec!["--worker-timeout".to_owned(), WORKER_TIMEOUT.to_owned()];
        flags.extend(secured(dir));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let c = RaftCluster::start(dir, 3, &flags);
        let url = c.url();
        remember(dir, &url);
        let n = arg("--workers", 2).max(2) as usize;
        let workers: Vec<Proc> = (0..n)
            .map(|i| start_worker(dir, &format!("w{i}"), &url, worker_heartbeat(n)))
            .collect();
        Wait::new(format!("an ALIVE leader with {n} workers"), SETUP * 4)
            .every(poll.max(Duration::from_millis(50)))
            .until(|| c.leader_with_workers(n))?;
        let long = submit_cluster_app(&url, &SleepingApp::cluster().named("long").executors(2))?;
        let before = Wait::new(
            "the long-running app's driver and 2 executors running",
            SETUP,
        )
        .every(poll)
        .until(|| c.app_running(&long, 2, 3))?;
        Ok(Bench {
            c,
            _workers: workers,
            workers: n,
            url,
            long,
            before,
            poll,
            rt: tokio::runtime::Runtime::new()?,
        })
    }

    fn wait(&self, what: &str, deadline: Duration) -> Wait {
        Wait::new(what, deadline).every(self.poll)
    }

    /// One round: SIGKILL the leader, measure, check the new app's processes, restart
    /// the old leader until it follows in step, check the long-running app's processes.
    fn round(&mut self, round: u64, f: &mut Figures) -> Result<()> {
        let old = self
            .wait("an ALIVE leader", SETUP)
            .until(|| self.c.alive_leader(None))?;
        let term = |c: &RaftCluster, i: usize| c.json(i).and_then(|j| j["term"].as_u64());
        let term_before = term(&self.c, old);
        let (r, app) = self.kill_and_measure(round, old)?;
        let t = r.timings();
        let new_addr = r.leader().expect("seen all").to_owned();
        let new = (self.c.advertised.iter())
            .position(|a| *a == new_addr)
            .expect("a survivor");
        f.rounds.push(t);
        // An election storm shows as terms moving by more than one or two per failover.
        if let (Some(a), Some(b)) = (term_before, term(&self.c, new)) {
            f.term_steps.push(b.saturating_sub(a));
        }

        // The new app: exactly its driver and one executor (both run once its executor
        // is RUNNING; a moment more for /proc to show the driver's exec).
        let url = &self.url;
        let app_procs = self
            .wait(
                &format!("round {round}: {app}'s driver and executor processes"),
                Duration::from_secs(10),
            )
            .until(|| {
                let p = app_pids(url, &app);
                (p.len() >= 2).then_some(p.len())
            })
            .unwrap_or_else(|_| app_pids(url, &app).len());
        if app_procs != 2 {
            eprintln!("round {round}: {app} has {app_procs} processes, not 2");
        }
        f.tally += Tally::of_count(2, app_procs);
        cli(url, &["app", "kill", &app], SETUP)?;

        let rejoined = self.rejoin(round, old, new)?;
        f.rejoined.push(rejoined);

        // The long-running app kept exactly its processes.
        let kept = Tally::of_kept(&self.before, &app_pids(&self.url, &self.long));
        f.tally += kept;
        let steps = [
            ("elected", t.elected),
            ("leading", t.leading),
            ("ALIVE", t.alive),
            ("submit returned", t.submitted),
            ("executor RUNNING", t.placed),
            ("workers back", t.workers_back),
        ]
        .map(|(step, d)| format!("{step} {:>6.1}", ms(d.expect("seen all"))));
        let long_app = if kept.is_clean() {
            String::new()
        } else {
            format!("; long app: {} doubled, {} lost", kept.doubled, kept.lost)
        };
        println!(
            "  round {round:>3}: master {} killed, master {} leads: {} ms; rejoined in {:>6.1} ms{long_app}",
            old + 1,
            new + 1,
            steps.join(", "),
            ms(rejoined),
        );
        Ok(())
    }

    /// SIGKILLs master `old` (the leader) and at once submits a new app and polls each
    /// survivor's `/json`, until everything is seen; returns the round and the app's id.
    fn kill_and_measure(&mut self, round: u64, old: usize) -> Result<(Round, String)> {
        let c = &mut self.c;
        let old_addr = c.advertised[old].clone();
        let survivors: Vec<usize> = (0..3).filter(|i| *i != old).collect();
        let app_name = format!("round-{round}");
        let watch = Watch {
            target: Target::Leader,
            old_leader: old_addr.clone(),
            ignore: Some(old_addr),
            workers: self.workers,
            placement: Placement::NewApp(app_name.clone()),
            counted_on: CountedOn::Acting,
        };
        let polling = Polling {
            masters: survivors.iter().map(|&i| c.advertised[i].clone()).collect(),
            every: self.poll,
            within: ROUND,
        };
        let view = c.json_views();
        let submit = {
            let (url, app) = (self.url.clone(), SleepingApp::cluster().named(&app_name));
            async move {
                let id =
                    tokio::task::spawn_blocking(move || submit_cluster_app(&url, &app)).await??;
                anyhow::Ok(AppId::from(id))
            }
        };
        let victim = c.masters[old].take().expect("the leader runs");
        let fault = async {
            victim.proc.signal(libc::SIGKILL);
            anyhow::Ok(())
        };
        let r = self
            .rt
            .block_on(failover::run_round(watch, &polling, fault, submit, view))?;
        // Reaps it (dropping a process SIGKILLs it, harmless now, and waits).
        drop(victim);
        let app = match r.app() {
            Some(Ok(app)) => app.to_string(),
            Some(Err(e)) => bail!("round {round}: submitting during failover: {e}"),
            None => bail!("round {round}: hearth submit (started at the SIGKILL) did not return within {ROUND:?}"),
        };
        if !r.done() {
            bail!(
                "round {round}: within {ROUND:?} of the leader's SIGKILL not everything was seen: \
                 missing {:?}, {:?}; survivors' last views: {:?}",
                r.missing(),
                r.timings(),
                r.last_views()
            );
        }
        Ok((r, app))
    }

    /// Restarts master `old` and waits until it is a STANDBY following master `new` with
    /// the same history; the time that took.
    fn rejoin(&mut self, round: u64, old: usize, new: usize) -> Result<Duration> {
        let restarted = Instant::now();
        self.c.start_master(old);
        let what =
            format!("round {round}: the restarted master a STANDBY following the new leader");
        self.wait(&what, SETUP)
            .until(|| self.c.follows(old, new).then_some(()))?;
        Ok(restarted.elapsed())
    }

    /// Stops the long app before the workers go.
    fn stop_long_app(&self) -> Result<()> {
        cli(&self.url, &["app", "kill", &self.long], SETUP)?;
        let (url, long) = (&self.url, &self.long);
        self.wait("the long app's processes gone", SETUP)
            .until(|| app_pids(url, long).is_empty().then_some(()))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------

fn main() {
    hearth_tests::harness::bins_next_to_me();
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
    let (errors, _) = hearth_tests::logs::scan(&dir);
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
    let mut figures = json!({
        "bench": "failover",
        "hearth": bin("hearth").display().to_string(),
        "secret": arg("--secret", 0) == 1,
        "tls": arg("--tls", 0) == 1,
    });
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
        let bench = hearth_tests::commit::CommitBench {
            submissions,
            poll,
            concurrent: vec![16, 64, 256],
            flags: secured(&d),
            quiet: false,
        };
        figures["commit"] = hearth_tests::commit::commit(&d, &bench)?;
    }
    Ok((figures, ok))
}
