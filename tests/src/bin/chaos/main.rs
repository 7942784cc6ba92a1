//! `chaos`: randomized fault injection against a real Raft group (issue 13).
//!
//! Three `hearth master --recovery-mode raft` processes (their peer traffic through one
//! [`Proxy`] per ordered pair, `--peer-via`, so a master can be cut off from its peers
//! alone) and three real `hearth worker` processes; a workload submits small cluster-mode
//! sleeping apps with unique names, kills and scales them, and records every request's
//! outcome (acknowledged / refused / uncertain). Each round injects one fault drawn from
//! the seed: SIGKILL of the leader, of a follower, of a worker; SIGSTOP of the leader or a
//! follower for 0.5–3 s; two masters killed at once (quorum loss); the leader killed twice
//! in quick succession; the leader cut from its peers; a delay on one peer link. Every
//! killed process is restarted on its own directory. Then it waits (with a deadline) for
//! the cluster to heal — every master answering, one ALIVE leader, every worker back,
//! every master with the same history — pauses the workload and checks, on a leader:
//! every acknowledged submission exactly once, no refused one, an uncertain one at most
//! once, no app no request explains, every acknowledged kill in effect (and its
//! processes gone), every acknowledged scale the app's limit.
//!
//! Throughout, samplers check every ~100 ms that at most one master claims to lead each
//! term, that no executor or driver runs as two live processes, and that no app runs more
//! executors than its limit (the leader's `/json`, and `/proc` allowing a kill's grace).
//! At the end, with everything stopped, no process of this run may be left.
//!
//! ```text
//! cargo build --workspace --features hearth-recovery/failpoints --bins
//! cargo run -p hearth-tests --bin chaos -- --rounds 200 --seed 7 --json
//! ```
//!
//! Options: `--rounds N` (30), `--seed S` (from the clock; printed), `--masters N` (3),
//! `--json` (the last line is one JSON object with everything), `--keep 1` (keep the
//! directory; it is always kept when a check failed), `--calm-ms` (workload before each
//! fault, 0.5–1.5 times; 800), `--submit-ms` (500), `--mutate-ms` (700), `--json-ms`
//! (how often the leader's `/json` is read; 500), `--heal-secs` (60). Exit status 1 on any
//! violation. The `hearth` binary is taken from this binary's directory (`HEARTH_BIN_DIR`
//! overrides).

mod rng;
mod sampler;
mod shared;
mod workload;

use hearth_client::failover::stats::ms;
use hearth_client::failover::Distribution;
use hearth_client::MasterClient;
use hearth_tests::cluster::RaftCluster;
use hearth_tests::harness::{arg, bin, Proc};
use hearth_tests::proxy::Proxy;
use hearth_tests::wait::Wait;
use rng::Rng;
use serde_json::{json, Map, Value};
use shared::{Meas, Shared};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::{Kind, Outcome, Pace, Workload};

/// Every completed app kept, so that every acknowledged submission can be looked for at
/// the end (with the tests' slower timings, `CI_TIMINGS`).
const RETAIN_ALL: &[&str] = &[
    "--retained-apps",
    "1000000",
    "--retained-drivers",
    "1000000",
];

const WORKERS: usize = 3;
const WORKER_CORES: u32 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    KillLeader,
    KillFollower,
    KillWorker,
    StopLeader,
    StopFollower,
    QuorumLoss,
    KillLeaderTwice,
    CutLeader,
    DelayLink,
}

const ALL: [Fault; 9] = [
    Fault::KillLeader,
    Fault::KillFollower,
    Fault::KillWorker,
    Fault::StopLeader,
    Fault::StopFollower,
    Fault::QuorumLoss,
    Fault::KillLeaderTwice,
    Fault::CutLeader,
    Fault::DelayLink,
];

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::KillLeader => "kill-leader",
            Fault::KillFollower => "kill-follower",
            Fault::KillWorker => "kill-worker",
            Fault::StopLeader => "stop-leader",
            Fault::StopFollower => "stop-follower",
            Fault::QuorumLoss => "quorum-loss",
            Fault::KillLeaderTwice => "kill-leader-twice",
            Fault::CutLeader => "cut-leader",
            Fault::DelayLink => "delay-link",
        }
    }
}

struct Opts {
    rounds: usize,
    seed: u64,
    masters: usize,
    json: bool,
    keep: bool,
    calm: u64,
    heal: Duration,
}

/// The cluster under test.
struct Chaos {
    dir: PathBuf,
    c: RaftCluster,
    /// `pair[i][j]`: master i's way to master j.
    pair: Vec<Vec<Option<Proxy>>>,
    workers: Vec<Option<Proc>>,
    worker_starts: usize,
    shared: Arc<Shared>,
}

impl Chaos {
    fn start(dir: &Path, n: usize) -> Chaos {
        let flags = [hearth_tests::cluster::CI_TIMINGS, RETAIN_ALL].concat();
        let mut c = RaftCluster::new(dir, n, &flags);
        let pair = hearth_tests::cluster::peer_proxies(&mut c, |_| Vec::new());
        for i in 0..n {
            c.start_master(i);
        }
        let shared = Arc::new(Shared::new(c.advertised.clone(), c.http.clone()));
        let mut chaos = Chaos {
            dir: dir.to_path_buf(),
            c,
            pair,
            workers: (0..WORKERS).map(|_| None).collect(),
            worker_starts: 0,
            shared,
        };
        for w in 0..WORKERS {
            chaos.start_worker(w);
        }
        chaos
    }

    fn worker_name(w: usize) -> String {
        format!("w{}", w + 1)
    }

    /// Starts (or restarts, on the same work dir) worker `w`; each start logs to its own
    /// file.
    fn start_worker(&mut self, w: usize) {
        let name = Self::worker_name(w);
        let work = self.dir.join(&name);
        std::fs::create_dir_all(&work).expect("work dir");
        self.worker_starts += 1;
        let args: Vec<String> = [
            "worker",
            "--masters",
            &self.c.url(),
            "--cores",
            &WORKER_CORES.to_string(),
            "--memory",
            "4g",
            "--work-dir",
            &work.to_string_lossy(),
            "--heartbeat-interval",
            "200ms",
            "--kill-grace",
            "2s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let log = self.dir.join(format!("{name}-{}.log", self.worker_starts));
        self.workers[w] = Some(Proc::spawn(&name, &bin("hearth"), &args, log));
    }

    fn kill_worker(&mut self, w: usize) {
        if let Some(mut p) = self.workers[w].take() {
            p.kill9();
        }
    }

    fn kill_master(&mut self, i: usize) {
        self.shared.set_impaired(i, true);
        self.c.kill9(i);
    }

    /// Restarts master `i` on its directory; a master that does not start is a violation.
    fn restart_master(&mut self, i: usize) {
        let c = &mut self.c;
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.start_master(i)));
        if started.is_err() {
            self.shared.violation(
                "master-restart",
                format!("m{} did not start again on its directory", i + 1),
            );
        }
        self.shared.set_impaired(i, false);
    }

    fn signal(&self, i: usize, sig: i32) {
        self.c.signal(i, sig);
    }

    /// Cuts (or heals) every peer link into or out of master `i`.
    fn cut(&self, i: usize, on: bool) {
        for (a, row) in self.pair.iter().enumerate() {
            for (b, p) in row.iter().enumerate() {
                if let Some(p) = p.as_ref().filter(|_| a == i || b == i) {
                    if on {
                        p.cut()
                    } else {
                        p.heal()
                    }
                }
            }
        }
    }

    /// The ALIVE leader per the samplers, waiting for one at most `within`.
    fn leader(&self, since: Instant, within: Duration) -> Option<usize> {
        Wait::new("an ALIVE leader", within)
            .until(|| self.shared.alive_leader(since, Duration::from_millis(500)))
            .ok()
    }

    fn n(&self) -> usize {
        self.c.masters.len()
    }

    /// A master process or worker that exited without being killed is a violation; it is
    /// started again so the run can go on.
    fn check_processes(&mut self) {
        for i in 0..self.n() {
            let exited = match self.c.masters[i].as_mut() {
                Some(m) => !m.proc.running(),
                None => true,
            };
            if exited {
                let log = self.c.masters[i]
                    .as_ref()
                    .map(|m| m.proc.log.display().to_string());
                self.shared.violation(
                    "process-exited",
                    format!("master m{} exited by itself (log {log:?})", i + 1),
                );
                self.restart_master(i);
            }
        }
        for w in 0..WORKERS {
            let exited = self.workers[w].as_mut().is_none_or(|p| !p.running());
            if exited {
                let log = self.workers[w]
                    .as_ref()
                    .map(|p| p.log.display().to_string());
                self.shared.violation(
                    "process-exited",
                    format!("worker {} exited by itself (log {log:?})", w + 1),
                );
                self.start_worker(w);
            }
        }
    }

    /// Healed: every master answers, one ALIVE leader that every other master names and
    /// follows with the same history, every worker ALIVE on it. The leader, or what was
    /// missing when `within` ran out.
    fn healed(&self, within: Duration) -> Result<usize, String> {
        let since = Instant::now();
        let mut missing = String::new();
        let found = Wait::new("the cluster healed", within)
            .every(Duration::from_millis(100))
            .until(|| {
                let Some(l) = self.shared.alive_leader(since, Duration::from_millis(500)) else {
                    missing = "no single ALIVE leader".into();
                    return None;
                };
                {
                    let latest = self.shared.latest.lock().unwrap();
                    for (i, s) in latest.iter().enumerate() {
                        let ok = s.as_ref().is_some_and(|s| {
                            s.asked >= since && s.leader.as_deref() == Some(&self.c.advertised[l])
                        });
                        if !ok {
                            missing = format!("m{} does not answer or name m{}", i + 1, l + 1);
                            return None;
                        }
                    }
                }
                let j = self.c.json(l)?;
                if j["aliveworkers"] != WORKERS {
                    missing = format!("the leader counts {} ALIVE workers", j["aliveworkers"]);
                    return None;
                }
                for i in (0..self.n()).filter(|i| *i != l) {
                    if !self.c.follows(i, l) {
                        missing = format!("m{} does not follow m{} with its history", i + 1, l + 1);
                        return None;
                    }
                }
                Some(l)
            });
        found.map_err(|_| missing)
    }

    /// Stops every process; then no launched process of this run may be left.
    fn stop(&mut self) {
        for w in 0..WORKERS {
            self.kill_worker(w);
        }
        for i in 0..self.n() {
            self.c.kill9(i);
        }
        let left = Wait::new("no process of this run left", Duration::from_secs(15))
            .every(Duration::from_millis(100))
            .until(|| {
                let left = sampler::ours(&self.shared);
                left.is_empty().then_some(())
            });
        if left.is_err() {
            let left = sampler::ours(&self.shared);
            let desc: Vec<String> = left
                .iter()
                .map(|p| {
                    format!(
                        "pid {} {:?} app {:?}",
                        p.pid,
                        p.argv,
                        p.env("HEARTH_APP_ID")
                    )
                })
                .collect();
            self.shared.violation(
                "no-orphans",
                format!(
                    "processes left after the cluster stopped: {}",
                    desc.join("; ")
                ),
            );
            for p in left {
                // SAFETY: kill(2) on a process this run launched (its env names our masters).
                unsafe { libc::kill(p.pid as i32, libc::SIGKILL) };
            }
        }
    }
}

/// What one round measured.
struct RoundResult {
    fault: Fault,
    alive: Option<Duration>,
    write: Option<Duration>,
    heal: Option<Duration>,
}

fn sleep(d: Duration) {
    std::thread::sleep(d);
}

/// Injects `fault` (and ends it: restarts, SIGCONT, heal); returns what it did.
fn inject(ch: &mut Chaos, fault: Fault, leader: usize, rng: &mut Rng) -> String {
    let n = ch.n();
    let m = |i: usize| format!("m{}", i + 1);
    let follower = {
        let others: Vec<usize> = (0..n).filter(|i| *i != leader).collect();
        *rng.pick(&others)
    };
    match fault {
        Fault::KillLeader => {
            let wait = rng.millis(200, 2000);
            ch.kill_master(leader);
            sleep(wait);
            ch.restart_master(leader);
            format!("{} killed, restarted after {wait:?}", m(leader))
        }
        Fault::KillFollower => {
            let wait = rng.millis(200, 2000);
            ch.kill_master(follower);
            sleep(wait);
            ch.restart_master(follower);
            format!("{} killed, restarted after {wait:?}", m(follower))
        }
        Fault::KillWorker => {
            let w = rng.below(WORKERS as u64) as usize;
            let wait = rng.millis(200, 1500);
            ch.kill_worker(w);
            sleep(wait);
            ch.start_worker(w);
            format!("worker w{} killed, restarted after {wait:?}", w + 1)
        }
        Fault::StopLeader | Fault::StopFollower => {
            let i = if fault == Fault::StopLeader {
                leader
            } else {
                follower
            };
            let d = rng.millis(500, 3000);
            ch.shared.set_impaired(i, true);
            ch.signal(i, libc::SIGSTOP);
            sleep(d);
            ch.signal(i, libc::SIGCONT);
            ch.shared.set_impaired(i, false);
            format!("{} stopped for {d:?}", m(i))
        }
        Fault::QuorumLoss => {
            let mut all: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut all);
            let victims: Vec<usize> = all[..n / 2 + 1].to_vec();
            let wait = rng.millis(500, 2000);
            for &i in &victims {
                ch.kill_master(i);
            }
            sleep(wait);
            for &i in &victims {
                ch.restart_master(i);
            }
            let names: Vec<String> = victims.iter().map(|i| m(*i)).collect();
            format!("{} killed, restarted after {wait:?}", names.join("+"))
        }
        Fault::KillLeaderTwice => {
            let killed = Instant::now();
            ch.kill_master(leader);
            ch.restart_master(leader);
            let Some(second) = ch.leader(killed, Duration::from_secs(30)) else {
                ch.shared.violation(
                    "availability",
                    format!("no ALIVE leader within 30 s after {} was killed", m(leader)),
                );
                return format!("{} killed and restarted; no new leader", m(leader));
            };
            let wait = rng.millis(0, 1000);
            ch.kill_master(second);
            sleep(wait);
            ch.restart_master(second);
            format!(
                "{} killed and restarted, then the new leader {} killed, restarted after {wait:?}",
                m(leader),
                m(second)
            )
        }
        Fault::CutLeader => {
            let d = rng.millis(1500, 4000);
            ch.shared.set_impaired(leader, true);
            ch.cut(leader, true);
            sleep(d);
            ch.cut(leader, false);
            ch.shared.set_impaired(leader, false);
            format!("{} cut from its peers for {d:?}", m(leader))
        }
        Fault::DelayLink => {
            let a = rng.below(n as u64) as usize;
            let b = (a + 1 + rng.below(n as u64 - 1) as usize) % n;
            let delay = rng.millis(50, 400);
            let d = rng.millis(1500, 3000);
            for (x, y) in [(a, b), (b, a)] {
                ch.pair[x][y].as_ref().expect("pair").set_delay(delay);
            }
            sleep(d);
            for (x, y) in [(a, b), (b, a)] {
                ch.pair[x][y]
                    .as_ref()
                    .expect("pair")
                    .set_delay(Duration::ZERO);
            }
            format!("link {}-{} delayed {delay:?} for {d:?}", m(a), m(b))
        }
    }
}

/// The checks made once the cluster healed, with the workload paused: on a leader, every
/// acknowledged submission exactly once (refused never, uncertain at most once), no app
/// no request explains, every acknowledged kill in effect, every acknowledged scale the
/// app's limit; and no process of an ended app left.
fn check(ch: &Chaos, w: &Workload) {
    let shared = &ch.shared;
    let mut client = MasterClient::new(ch.c.advertised.clone());
    client.deadline = Duration::from_secs(15);
    let state = match w.block_on(client.leader_state()) {
        Ok(s) => s,
        Err(e) => {
            shared.violation("read", format!("no leader answered GetState: {e}"));
            return;
        }
    };
    let ledger = w.ledger.lock().unwrap();
    let mut by_name: BTreeMap<&str, Vec<(&str, bool)>> = BTreeMap::new();
    for (a, active) in (state.active_apps.iter().map(|a| (a, true)))
        .chain(state.completed_apps.iter().map(|a| (a, false)))
    {
        by_name
            .entry(a.desc.name.as_str())
            .or_default()
            .push((a.id.0.as_str(), active));
    }
    let mut explained = std::collections::BTreeSet::new();
    for r in ledger.reqs.iter().filter(|r| r.kind == Kind::Submit) {
        explained.insert(r.name.as_str());
        let seen = by_name.get(r.name.as_str()).map_or(&[][..], |v| &v[..]);
        let bad = match &r.outcome {
            Outcome::Acked => {
                let id = r.app.as_deref().unwrap_or("");
                (seen.len() != 1 || seen[0].0 != id)
                    .then(|| format!("acknowledged as {id}, the leader lists {seen:?}"))
            }
            Outcome::Refused(why) => {
                (!seen.is_empty()).then(|| format!("refused ({why}), the leader lists {seen:?}"))
            }
            Outcome::Uncertain(_) => {
                (seen.len() > 1).then(|| format!("uncertain, the leader lists {seen:?}"))
            }
        };
        if let Some(bad) = bad {
            shared.violation_once(
                format!("submission-{}", r.name),
                "submissions",
                format!("{} (sent in round {}): {bad}", r.name, r.round),
            );
        }
    }
    for (name, ids) in &by_name {
        if !explained.contains(name) {
            shared.violation_once(
                format!("unexplained-{name}"),
                "submissions",
                format!("the leader lists {name} {ids:?}, which no request submitted"),
            );
        }
    }
    let active: BTreeMap<&str, &hearth_core::AppInfo> = (state.active_apps.iter())
        .map(|a| (a.id.0.as_str(), a))
        .collect();
    let mut last_scale: BTreeMap<&str, &workload::Req> = BTreeMap::new();
    for r in &ledger.reqs {
        let id = r.app.as_deref().unwrap_or("");
        match r.kind {
            Kind::Kill if r.outcome == Outcome::Acked && active.contains_key(id) => {
                shared.violation_once(
                    format!("kill-{id}"),
                    "kills",
                    format!(
                        "{id} ({}) was killed (round {}) and is still active",
                        r.name, r.round
                    ),
                );
            }
            Kind::Scale => {
                last_scale.insert(id, r);
            }
            _ => {}
        }
    }
    for (id, r) in last_scale {
        if let (Outcome::Acked, Some(a)) = (&r.outcome, active.get(id)) {
            if a.executor_limit != Some(r.target) {
                shared.violation_once(
                    format!("scale-{id}-{}", r.round),
                    "scales",
                    format!(
                        "{id} ({}) was scaled to {} (round {}), its limit is {:?}",
                        r.name, r.target, r.round, a.executor_limit
                    ),
                );
            }
        }
    }
    drop(ledger);
    // Every ended app's processes go (a kill allows the workers' 2 s grace).
    let ended: std::collections::BTreeSet<String> = (state.completed_apps.iter())
        .map(|a| a.id.0.clone())
        .collect();
    let left_of_ended = || {
        sampler::ours(shared)
            .into_iter()
            .filter(|p| p.env("HEARTH_APP_ID").is_some_and(|a| ended.contains(a)))
            .map(|p| (p.pid, p.env("HEARTH_APP_ID").unwrap_or("").to_owned()))
            .collect::<Vec<_>>()
    };
    let gone = Wait::new("ended apps' processes gone", Duration::from_secs(10))
        .every(Duration::from_millis(100))
        .until(|| left_of_ended().is_empty().then_some(()));
    if gone.is_err() {
        let left = left_of_ended();
        let key = format!("ended-procs-{:?}", left.first());
        shared.violation_once(
            key,
            "ended-apps-processes",
            format!("processes of ended apps still live 10 s after the check began: {left:?}"),
        );
    }
}

fn dist_json(prefix: &str, d: &Distribution, out: &mut Map<String, Value>) {
    let v = |x: Option<Duration>| x.map_or(Value::Null, |d| json!((ms(d) * 10.0).round() / 10.0));
    out.insert(format!("{prefix}_p50_ms"), v(d.p50));
    out.insert(format!("{prefix}_p99_ms"), v(d.p99));
    out.insert(format!("{prefix}_max_ms"), v(d.max));
    out.insert(format!("{prefix}_n"), json!(d.n));
}

fn fmt_ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.0}", ms(d)))
}

fn main() {
    hearth_tests::harness::bins_next_to_me();
    if !bin("hearth").exists() {
        eprintln!(
            "error: {} is not built (cargo build --workspace --bins)",
            bin("hearth").display()
        );
        std::process::exit(2);
    }
    let args: Vec<String> = std::env::args().collect();
    let clock_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let opts = Opts {
        rounds: arg("--rounds", 30) as usize,
        seed: arg("--seed", clock_seed),
        masters: arg("--masters", 3) as usize,
        json: args.iter().any(|a| a == "--json"),
        keep: arg("--keep", 0) == 1,
        calm: arg("--calm-ms", 800),
        heal: Duration::from_secs(arg("--heal-secs", 60)),
    };
    if opts.masters < 3 {
        eprintln!("error: --masters must be at least 3");
        std::process::exit(2);
    }
    let pace = Pace {
        submit_every: Duration::from_millis(arg("--submit-ms", 500)),
        mutate_every: Duration::from_millis(arg("--mutate-ms", 700)),
    };
    let json_every = Duration::from_millis(arg("--json-ms", 500));
    let dir = std::env::temp_dir().join(format!("hearth-chaos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the run's directory");
    println!(
        "chaos: seed {} rounds {} masters {} dir {}",
        opts.seed,
        opts.rounds,
        opts.masters,
        dir.display()
    );
    let started = Instant::now();
    let mut rng = Rng::new(opts.seed);
    let mut ch = Chaos::start(&dir, opts.masters);
    let shared = ch.shared.clone();
    let mut threads = sampler::masters(shared.clone());
    threads.push(sampler::processes(shared.clone()));
    let w = Workload::start(shared.clone(), opts.seed, &mut rng, pace);
    threads.push(sampler::leader_json(
        shared.clone(),
        w.ledger.clone(),
        json_every,
    ));
    let mut results: Vec<RoundResult> = Vec::new();
    match ch.healed(opts.heal) {
        Ok(_) => {}
        Err(missing) => shared.violation(
            "heal",
            format!(
                "the new cluster did not come up within {:?}: {missing}",
                opts.heal
            ),
        ),
    }
    // Each block of 9 rounds holds every fault once, in an order the seed decides.
    let mut deck: Vec<Fault> = Vec::new();
    for r in 1..=opts.rounds {
        if shared.violations().iter().any(|v| v.check == "heal") {
            eprintln!("stopping: the cluster did not heal");
            break;
        }
        if deck.is_empty() {
            deck = ALL.to_vec();
            rng.shuffle(&mut deck);
        }
        let fault = deck.pop().expect("deck");
        shared.round.store(r, std::sync::atomic::Ordering::SeqCst);
        let before = shared.violations().len();
        sleep(rng.millis(opts.calm / 2, opts.calm + opts.calm / 2));
        let Some(leader) = ch.leader(Instant::now(), Duration::from_secs(30)) else {
            shared.violation("heal", "no ALIVE leader before the fault".into());
            break;
        };
        let t0 = Instant::now();
        *shared.meas.lock().unwrap() = Meas {
            t0: Some(t0),
            alive_at: None,
        };
        let what = inject(&mut ch, fault, leader, &mut rng);
        let fault_end = Instant::now();
        ch.check_processes();
        let heal = match ch.healed(opts.heal) {
            Ok(_) => Some(fault_end.elapsed()),
            Err(missing) => {
                shared.violation(
                    "heal",
                    format!(
                        "not healed {:?} after the fault ended: {missing}",
                        opts.heal
                    ),
                );
                None
            }
        };
        if !w.pause(Duration::from_secs(30)) {
            shared.violation("workload", "requests still in flight after 30 s".into());
        }
        let alive = shared.meas.lock().unwrap().alive_at.map(|a| a - t0);
        let write = w.ledger.lock().unwrap().first_ack_after(t0).map(|a| a - t0);
        if heal.is_some() {
            check(&ch, &w);
        }
        w.resume();
        let counts = {
            let l = w.ledger.lock().unwrap();
            let mut c = [0usize; 3];
            for q in l.reqs.iter().filter(|q| q.round == r) {
                c[match q.outcome {
                    Outcome::Acked => 0,
                    Outcome::Refused(_) => 1,
                    Outcome::Uncertain(_) => 2,
                }] += 1;
            }
            c
        };
        println!(
            "round {r}/{} {:<17} alive {:>5} ms  write {:>5} ms  healed {:>6} ms  \
             requests {}/{}/{} (acked/refused/uncertain)  violations {}  | {what}",
            opts.rounds,
            fault.name(),
            fmt_ms(alive),
            fmt_ms(write),
            fmt_ms(heal),
            counts[0],
            counts[1],
            counts[2],
            shared.violations().len() - before,
        );
        results.push(RoundResult {
            fault,
            alive,
            write,
            heal,
        });
    }
    w.pause(Duration::from_secs(30));
    shared.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    ch.stop();
    let elapsed = started.elapsed();

    // The summary.
    let mut by_fault = Map::new();
    println!(
        "\n{:<18} {:>3} {:>22} {:>22} {:>16}",
        "fault", "n", "ALIVE p50/p99/max ms", "write p50/p99/max ms", "healed p50/max"
    );
    for f in ALL {
        let rs: Vec<&RoundResult> = results.iter().filter(|r| r.fault == f).collect();
        let alive = Distribution::of(rs.iter().filter_map(|r| r.alive));
        let write = Distribution::of(rs.iter().filter_map(|r| r.write));
        let heal = Distribution::of(rs.iter().filter_map(|r| r.heal));
        println!(
            "{:<18} {:>3} {:>22} {:>22} {:>16}",
            f.name(),
            rs.len(),
            format!(
                "{}/{}/{}",
                fmt_ms(alive.p50),
                fmt_ms(alive.p99),
                fmt_ms(alive.max)
            ),
            format!(
                "{}/{}/{}",
                fmt_ms(write.p50),
                fmt_ms(write.p99),
                fmt_ms(write.max)
            ),
            format!("{}/{}", fmt_ms(heal.p50), fmt_ms(heal.max)),
        );
        let mut o = Map::new();
        o.insert("n".into(), json!(rs.len()));
        dist_json("alive", &alive, &mut o);
        dist_json("write", &write, &mut o);
        dist_json("heal", &heal, &mut o);
        by_fault.insert(f.name().into(), Value::Object(o));
    }
    let (mut requests, mut by_kind) = (BTreeMap::<&str, usize>::new(), Map::new());
    {
        let l = w.ledger.lock().unwrap();
        for (kind, label) in [
            (Kind::Submit, "submit"),
            (Kind::Kill, "kill"),
            (Kind::Scale, "scale"),
        ] {
            let mut k = BTreeMap::<&str, usize>::new();
            for q in l.reqs.iter().filter(|q| q.kind == kind) {
                *k.entry(q.outcome.label()).or_default() += 1;
                *requests.entry(q.outcome.label()).or_default() += 1;
            }
            by_kind.insert(label.into(), json!(k));
        }
    }
    let violations = shared.violations();
    let (errors, _) = hearth_tests::logs::scan(&dir);
    println!(
        "\nseed {} rounds {} in {:.0} s: requests acked {} refused {} uncertain {}; \
         {} violations; {} ERROR lines in the logs; {} terms led, {} /proc samples \
         (at most {} live processes), {} leader /json samples",
        opts.seed,
        results.len(),
        elapsed.as_secs_f64(),
        requests.get("acked").unwrap_or(&0),
        requests.get("refused").unwrap_or(&0),
        requests.get("uncertain").unwrap_or(&0),
        violations.len(),
        errors,
        shared.claims.lock().unwrap().len(),
        shared
            .proc_samples
            .load(std::sync::atomic::Ordering::SeqCst),
        shared.max_procs.load(std::sync::atomic::Ordering::SeqCst),
        shared
            .json_samples
            .load(std::sync::atomic::Ordering::SeqCst),
    );
    for v in &violations {
        println!(
            "VIOLATION round {} at {} ms [{}]: {}",
            v.round, v.at_ms, v.check, v.detail
        );
    }
    let failed = !violations.is_empty() || results.len() < opts.rounds;
    if opts.keep || failed {
        println!("files kept in {}", dir.display());
    }
    if opts.json {
        let report = json!({
            "seed": opts.seed,
            "rounds": results.len(),
            "rounds_asked": opts.rounds,
            "masters": opts.masters,
            "elapsed_s": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
            "dir": dir.display().to_string(),
            "violations": violations.iter().map(|v| v.to_json()).collect::<Vec<_>>(),
            "by_fault": by_fault,
            "requests": {
                "acked": requests.get("acked").unwrap_or(&0),
                "refused": requests.get("refused").unwrap_or(&0),
                "uncertain": requests.get("uncertain").unwrap_or(&0),
                "by_kind": by_kind,
            },
            "log_errors": errors,
            "checked": {
                "terms_with_a_leader": shared.claims.lock().unwrap().len(),
                "proc_samples": shared.proc_samples.load(std::sync::atomic::Ordering::SeqCst),
                "max_live_processes": shared.max_procs.load(std::sync::atomic::Ordering::SeqCst),
                "leader_json_samples": shared.json_samples.load(std::sync::atomic::Ordering::SeqCst),
            },
        });
        println!("{report}");
    }
    drop(w);
    drop(ch);
    if failed {
        std::process::exit(1);
    }
    if !opts.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
