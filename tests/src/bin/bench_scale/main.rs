//! Scale benchmark (issue 15): 3 real `hearth master --recovery-mode raft` processes
//! (every append fsynced, the product's default Raft timings) against N simulated
//! workers in this process ([`sim`]) holding E executors of M cluster-mode apps.
//!
//! In order:
//! 1. the masters start; the leader's RSS with nothing registered (*baseline*);
//! 2. the workers register (in waves of 500) and heartbeat: the leader's RSS and CPU over
//!    `--window-s` (*workers only*);
//! 3. M apps are registered at once through `hearth_client::MasterClient` (cluster mode:
//!    each driver is placed on a simulated worker, which reports it RUNNING, then its
//!    executors are placed); *placements/s* = E / (first submission → the leader has
//!    acknowledged E executor RUNNING reports);
//! 4. the leader's RSS and CPU over another window (*steady state*, heartbeats only),
//!    and the followers' RSS;
//! 5. `/json` and `GetState` on the leader: the fastest of 3, time and size, whole and
//!    paged (`/json?limit=100`, `?limit=100&executors=0`, `GetState` of the RUNNING
//!    entries, limit 100), the web UI's overview (`/`); the real `hearth status` (its default page, and `--all`),
//!    wall time of the fastest of 3; a snapshot
//!    built on the leader (`RaftAdmin.Snapshot`), timed, and the leader's Raft directory
//!    size;
//! 6. `--rounds` failovers ([`failover`]);
//! 7. the commit benchmark shared with `bench-failover` ([`hearth_tests::commit`]) on a
//!    fresh group: 1 client, then 256.
//!
//! Run (release; the `hearth` binary next to this one is the one measured):
//!
//! ```text
//! cargo build --release -p hearth-tests --bin bench-scale -p hearth --bin hearth
//! cargo run --release -p hearth-tests --bin bench-scale -- --workers 5000 --executors 100000 --json
//! ```
//!
//! `--help` lists every flag. The masters, this process and its simulated workers share
//! the machine: the load average is recorded with each figure.

use anyhow::{anyhow, ensure, Context, Result};
use hearth_client::{MasterClient, SleepingApp};
use hearth_tests::cluster::RaftCluster;
use hearth_tests::harness::bin;
use hearth_tests::stats::dist_line;
use hearth_tests::wait::Wait;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod control;
mod failover;
mod opts;
mod probe;
mod sim;

use failover::{ms, RoundFigures};
use opts::Opts;
use probe::Steady;
use sim::{Fleet, FleetConfig};

/// Starting things, anything not measured.
const SETUP: Duration = Duration::from_secs(120);
/// Workers started at once.
const WAVE: usize = 500;

/// The group under test and the fleet of simulated workers.
pub struct Scale {
    opts: Opts,
    c: RaftCluster,
    fleet: Fleet,
    rt: tokio::runtime::Runtime,
    /// The ALIVE leader's index.
    leader: usize,
    worker_timeout: Duration,
    /// Every figure, as the JSON prints them.
    out: serde_json::Map<String, Value>,
}

fn main() {
    let opts = match Opts::parse(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{}", opts::help());
            return;
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    hearth_tests::harness::bins_next_to_me();
    let hearth = bin("hearth");
    let dir = std::env::temp_dir().join(format!("hearth-bench-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let nofile = probe::raise_nofile();
    eprintln!(
        "bench-scale: {} ({} open files allowed); directory {}",
        hearth.display(),
        nofile,
        dir.display()
    );
    match run(&opts, &dir) {
        Ok(out) => {
            let (errors, _) = hearth_tests::logs::scan_with(&dir, |l| eprintln!("{l}"));
            let mut out = out;
            out["log_errors"] = errors.into();
            if opts.json {
                println!("{}", serde_json::to_string(&out).expect("JSON"));
            } else {
                print!("{}", table(&out));
            }
            if let Some(e) = out.get("failover_error") {
                eprintln!("error: {e}");
                eprintln!("test files kept in {}", dir.display());
                std::process::exit(1);
            }
            if opts.keep {
                eprintln!("test files kept in {}", dir.display());
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            eprintln!("test files kept in {}", dir.display());
            std::process::exit(1);
        }
    }
}

fn run(opts: &Opts, dir: &Path) -> Result<Value> {
    let mut s = Scale::start(opts, &dir.join("scale"))?;
    s.register_workers()?;
    s.steady("workers only", "workers")?;
    s.place()?;
    s.steady("steady state", "leader")?;
    s.status()?;
    s.snapshot()?;
    s.failovers()?;
    if !s.out.contains_key("failover_error") {
        s.finish()?;
    }
    let mut out = Value::Object(std::mem::take(&mut s.out));
    drop(s);
    if opts.submissions > 0 {
        let d = dir.join("commit");
        std::fs::create_dir_all(&d)?;
        let bench = hearth_tests::commit::CommitBench {
            submissions: opts.submissions,
            poll: Duration::from_millis(20),
            concurrent: vec![256],
            flags: opts.master_args.clone(),
            quiet: true,
        };
        let load = probe::load();
        let c = hearth_tests::commit::commit(&d, &bench)?;
        out["commits_per_s_1"] = c["clients_1"]["per_s"].clone();
        out["commit_p50_ms_1"] = c["clients_1"]["latency"]["p50_ms"].clone();
        out["commits_per_s_256"] = c["clients_256"]["per_s"].clone();
        out["commit_p50_ms_256"] = c["clients_256"]["latency"]["p50_ms"].clone();
        // Where the machine's CPU went per commit at 256 clients (hearth_tests::commit).
        out["commit_leader_cpu_us_256"] = c["clients_256"]["cpu"]["leader_us"].clone();
        out["commit_clients_cpu_us_256"] = c["clients_256"]["cpu"]["clients_us"].clone();
        out["load_commit"] = load.into();
        out["commit"] = c;
    }
    Ok(out)
}

impl Scale {
    fn say(&self, line: String) {
        eprintln!("{line}");
    }

    fn set(&mut self, key: &str, v: impl Into<Value>) {
        self.out.insert(key.to_owned(), v.into());
    }

    fn pid(&self, i: usize) -> Result<u32> {
        let m = self.c.masters[i].as_ref();
        m.map(|m| m.proc.pid())
            .ok_or_else(|| anyhow!("master {} is not running", i + 1))
    }

    /// The masters, the ALIVE leader and its baseline RSS, and the fleet (not started).
    fn start(opts: &Opts, dir: &Path) -> Result<Scale> {
        std::fs::create_dir_all(dir)?;
        let worker_timeout = duration(&opts.worker_timeout).with_context(|| {
            format!("--worker-timeout {}: say 60s or 500ms", opts.worker_timeout)
        })?;
        let mut flags = vec!["--worker-timeout".to_owned(), opts.worker_timeout.clone()];
        flags.extend(opts.master_args.iter().cloned());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let c = RaftCluster::start(dir, 3, &flags);
        let leader = Wait::new("an ALIVE leader", SETUP)
            .every(Duration::from_millis(20))
            .until(|| (0..3).find(|i| probe::ready(c.http[*i])))?;
        let rt = tokio::runtime::Runtime::new()?;
        let cores = opts.worker_cores();
        let cfg = FleetConfig {
            workers: opts.workers,
            cores,
            memory_mb: u64::from(cores) * 64,
            clients: opts.clients,
            masters: c.advertised.clone(),
            watch: opts.watch,
        };
        let fleet = rt.block_on(Fleet::new(&cfg))?;
        let mut s = Scale {
            opts: opts.clone(),
            c,
            fleet,
            rt,
            leader,
            worker_timeout,
            out: serde_json::Map::new(),
        };
        let base = probe::usage(s.pid(leader)?).map_or(0.0, |u| u.rss_kb as f64 / 1024.0);
        s.say(format!(
            "3 masters (raft, fsync, --worker-timeout {}{}); master {} leads, RSS {base:.1} MB; \
             {} simulated workers x {cores} cores sharing {} clients; {} apps, {} executors; load {:.1}",
            opts.worker_timeout,
            if opts.master_args.is_empty() { String::new() } else { format!(" {}", opts.master_args.join(" ")) },
            leader + 1,
            opts.workers,
            opts.clients,
            opts.apps,
            opts.executors,
            probe::load(),
        ));
        for (k, v) in [
            ("bench", json!("scale")),
            ("hearth", json!(bin("hearth").display().to_string())),
            ("workers", json!(opts.workers)),
            ("executors", json!(opts.executors)),
            ("apps", json!(opts.apps)),
            ("rounds", json!(opts.rounds)),
            ("clients", json!(opts.clients)),
            ("worker_cores", json!(cores)),
            (
                "worker_timeout_ms",
                json!(worker_timeout.as_millis() as u64),
            ),
            ("master_args", json!(opts.master_args)),
            ("baseline_rss_mb", json!(round1(base))),
            ("load_start", json!(probe::load())),
        ] {
            s.set(k, v);
        }
        Ok(s)
    }

    /// Starts the workers in waves and waits until the leader counts them all ALIVE.
    fn register_workers(&mut self) -> Result<()> {
        let n = self.opts.workers;
        let t = Instant::now();
        for start in (0..n).step_by(WAVE) {
            let end = (start + WAVE).min(n);
            let _rt = self.rt.enter();
            self.fleet.start(start..end);
            let regs = &self.fleet.counters.registrations;
            Wait::new(format!("workers {start}..{end} registered"), SETUP)
                .every(Duration::from_millis(20))
                .until(|| (regs.load(Ordering::Relaxed) >= end as u64).then_some(()))?;
        }
        let took = t.elapsed();
        let http = self.c.http[self.leader];
        Wait::new(format!("the leader counting {n} ALIVE workers"), SETUP)
            .every(Duration::from_millis(100))
            .until(|| {
                (probe::gauge(http, "hearth_alive_workers") == Some(n as f64)).then_some(())
            })?;
        self.say(format!(
            "{n} workers registered in {:.0} ms ({:.0}/s)",
            ms(took),
            n as f64 / took.as_secs_f64()
        ));
        self.set("registration_ms", round1(ms(took)));
        Ok(())
    }

    /// The leader's RSS and CPU over a window (`key`_rss_mb, `key`_cpu_cores), and the
    /// followers' RSS.
    fn steady(&mut self, what: &str, key: &str) -> Result<Steady> {
        let st = probe::steady(self.pid(self.leader)?, self.opts.window)?;
        let followers = (0..3)
            .filter(|i| *i != self.leader)
            .filter_map(|i| probe::usage(self.pid(i).ok()?))
            .map(|u| u.rss_kb as f64 / 1024.0)
            .fold(0.0, f64::max);
        let load = probe::load();
        self.say(format!(
            "{what}: leader RSS {:.1} MB, CPU {:.3} cores over {:?}; followers' RSS up to {followers:.1} MB; load {load:.1}",
            st.rss_mb, st.cpu_cores, self.opts.window
        ));
        self.set(&format!("{key}_rss_mb"), round1(st.rss_mb));
        self.set(&format!("{key}_cpu_cores"), round3(st.cpu_cores));
        self.set(&format!("{key}_follower_rss_mb"), round1(followers));
        self.set(&format!("load_{key}"), load);
        Ok(st)
    }

    /// Registers every app at once and waits until every executor is RUNNING.
    fn place(&mut self) -> Result<()> {
        let (apps, e) = (self.opts.apps, self.opts.executors);
        let client = Arc::new(MasterClient::new(self.c.advertised.clone()));
        let descs: Vec<_> = (0..apps)
            .map(|i| {
                SleepingApp::cluster()
                    .named(&format!("scale-{i}"))
                    .executors(self.opts.executors_of(i))
                    .memory_mb(16)
                    .describe()
            })
            .collect();
        let counters = Arc::clone(&self.fleet.counters);
        let t = Instant::now();
        let registered = self.rt.block_on(async {
            let limit = Arc::new(tokio::sync::Semaphore::new(32));
            let mut tasks = tokio::task::JoinSet::new();
            for (app, driver) in descs {
                let (client, limit) = (Arc::clone(&client), Arc::clone(&limit));
                tasks.spawn(async move {
                    let _slot = limit.acquire_owned().await?;
                    client.register_app(&app, driver.as_ref(), None).await?;
                    anyhow::Ok(())
                });
            }
            while let Some(r) = tasks.join_next().await {
                r??;
            }
            anyhow::Ok(t.elapsed())
        })?;
        // 10 ms a placement at worst (a storm of elections may stall it for long).
        let deadline = SETUP + Duration::from_millis(e * 10);
        let mut said = Instant::now();
        Wait::new(format!("{e} executors RUNNING"), deadline)
            .every(Duration::from_millis(5))
            .until(|| {
                let running = counters.executors_running.load(Ordering::Relaxed);
                if said.elapsed() >= Duration::from_secs(10) {
                    said = Instant::now();
                    eprintln!(
                        "  {running} executors RUNNING after {:.0} s; load {:.1}",
                        t.elapsed().as_secs_f64(),
                        probe::load()
                    );
                }
                (running >= e).then_some(())
            })?;
        let took = t.elapsed();
        let rate = e as f64 / took.as_secs_f64();
        let drivers = counters.drivers_running.load(Ordering::Relaxed);
        self.say(format!(
            "placements: {apps} apps registered in {:.0} ms; {e} executors RUNNING after {:.0} ms = {rate:.0}/s \
             ({drivers} drivers RUNNING); load {:.1}",
            ms(registered),
            ms(took),
            probe::load()
        ));
        self.set("placement_ms", round1(ms(took)));
        self.set("placements_per_s", rate.round());
        self.set("drivers_running", drivers);
        self.set("load_placement", probe::load());
        Ok(())
    }

    /// `/json` and `GetState` on the leader, whole and paged: time and size; the real
    /// `hearth status` against the leader (its default page, and `--all`): wall time.
    fn status(&mut self) -> Result<()> {
        let http = self.c.http[self.leader];
        let (json_t, json_b) = probe::json_status(http, "", 3)?;
        let (paged_t, paged_b) = probe::json_status(http, "?limit=100", 3)?;
        let (summary_t, summary_b) = probe::json_status(http, "?limit=100&executors=0", 3)?;
        let (ui_t, ui_b) = probe::fastest_get(http, "/", 3)?;
        let addr = self.c.advertised[self.leader].clone();
        let (gs_t, gs_b) = self
            .rt
            .block_on(probe::get_state(&addr, Default::default(), 3))?;
        let running = hearth_proto::pb::GetStateRequest {
            states: vec!["RUNNING".into()],
            offset: None,
            limit: Some(100),
        };
        let (gsf_t, gsf_b) = self.rt.block_on(probe::get_state(&addr, running, 3))?;
        self.say(format!(
            "status on the leader (fastest of 3): /json {:.1} ms, {json_b} bytes; /json?limit=100 {:.1} ms, \
             {paged_b} bytes; /json?limit=100&executors=0 {:.1} ms, {summary_b} bytes; GetState {:.1} ms, \
             {gs_b} bytes; GetState RUNNING limit 100 {:.1} ms, {gsf_b} bytes; the web UI's overview {:.1} ms, \
             {ui_b} bytes",
            ms(json_t),
            ms(paged_t),
            ms(summary_t),
            ms(gs_t),
            ms(gsf_t),
            ms(ui_t)
        ));
        let url = self.c.url();
        let (cli_t, cli_b) = probe::cli(&url, &["status"], 3)?;
        let (all_t, all_b) = probe::cli(&url, &["status", "--all"], 3)?;
        self.say(format!(
            "hearth status (fastest of 3, wall time): {:.1} ms, {cli_b} bytes; hearth status --all {:.1} ms, {all_b} bytes",
            ms(cli_t),
            ms(all_t)
        ));
        self.set("status_ms", round1(ms(json_t)));
        self.set("status_bytes", json_b);
        self.set("status_paged_ms", round1(ms(paged_t)));
        self.set("status_paged_bytes", paged_b);
        self.set("status_summary_ms", round1(ms(summary_t)));
        self.set("status_summary_bytes", summary_b);
        self.set("getstate_ms", round1(ms(gs_t)));
        self.set("getstate_bytes", gs_b);
        self.set("getstate_filtered_ms", round1(ms(gsf_t)));
        self.set("getstate_filtered_bytes", gsf_b);
        self.set("ui_overview_ms", round1(ms(ui_t)));
        self.set("ui_overview_bytes", ui_b);
        self.set("cli_status_ms", round1(ms(cli_t)));
        self.set("cli_status_bytes", cli_b);
        self.set("cli_status_all_ms", round1(ms(all_t)));
        self.set("cli_status_all_bytes", all_b);
        Ok(())
    }

    /// A snapshot built on the leader, timed, and the leader's Raft directory size.
    fn snapshot(&mut self) -> Result<()> {
        let admin = hearth_client::admin::AdminClient::new(self.c.advertised.clone());
        let t = Instant::now();
        let snap = self
            .rt
            .block_on(admin.snapshot(None, Duration::from_secs(120)))?;
        let took = t.elapsed();
        let size = probe::dir_size(&self.c.data_dir(self.leader));
        self.say(format!(
            "snapshot on the leader: index {} built in {:.1} ms (built: {}); its Raft directory {:.1} MB",
            snap.index,
            ms(took),
            snap.built,
            size as f64 / 1e6
        ));
        self.set("snapshot_ms", round1(ms(took)));
        self.set("snapshot_index", snap.index);
        self.set("raft_dir_mb", round1(size as f64 / 1e6));
        Ok(())
    }

    fn failovers(&mut self) -> Result<()> {
        let mut rounds: Vec<RoundFigures> = Vec::new();
        let load = probe::load();
        if self.opts.rounds > 0 {
            self.await_watches(0)?;
        }
        for r in 1..=self.opts.rounds {
            match self.round(r) {
                Ok(f) => rounds.push(f),
                // The group may never recover (no leader ALIVE): the figures so far are
                // still reported, with what failed.
                Err(e) => {
                    self.say(format!("round {r} failed: {e:#}"));
                    self.set("failover_error", format!("round {r}: {e:#}"));
                    break;
                }
            }
        }
        self.set("rounds_done", rounds.len());
        let pick = |f: fn(&RoundFigures) -> Duration| rounds.iter().map(f).collect::<Vec<_>>();
        for (key, label, values) in [
            (
                "failover",
                "SIGKILL -> ALIVE with every worker back",
                pick(|r| r.failover),
            ),
            (
                "alive",
                "SIGKILL -> a survivor ALIVE (/readyz)",
                pick(|r| r.alive),
            ),
            (
                "workers_back",
                "SIGKILL -> every worker registered again",
                pick(|r| r.back),
            ),
            (
                "rejoin",
                "restart -> the killed master in step",
                pick(|r| r.rejoin),
            ),
        ] {
            let (v, line) = dist_line(label, values);
            self.say(line);
            for p in ["p50_ms", "p99_ms", "max_ms"] {
                self.set(&format!("{key}_{p}"), v[p].clone());
            }
        }
        let n = self.opts.workers;
        let min_back = rounds.iter().map(|r| r.reregistered).min().unwrap_or(n);
        self.set("reregistered_min", min_back);
        self.set("reregistered_all", min_back == n);
        let announced: Vec<u64> = rounds.iter().map(|r| r.announced).collect();
        self.set("announced", announced);
        let watched: Vec<u64> = rounds.iter().map(|r| r.watched).collect();
        self.set("watch_answers", watched);
        let adopted: Vec<u64> = rounds.iter().map(|r| r.adopted).collect();
        self.set("adopted", adopted);
        self.set("workers_watch", self.opts.watch);
        let ms_of = |d: Duration| d.as_millis() as u64;
        let arrived: Vec<[u64; 2]> = (rounds.iter())
            .map(|r| [ms_of(r.announced_p50), ms_of(r.announced_last)])
            .collect();
        self.set("announced_p50_last_ms", arrived);
        let steps: Vec<u64> = rounds.iter().map(|r| r.term_step).collect();
        self.set("term_step_max", steps.iter().max().copied().unwrap_or(0));
        self.set("term_steps", steps);
        self.set(
            "leaders",
            rounds.iter().map(|r| r.leader + 1).collect::<Vec<_>>(),
        );
        self.set("load_failover", load.max(probe::load()));
        Ok(())
    }

    /// What the leader counts at the end, and the fleet's counters.
    fn finish(&mut self) -> Result<()> {
        let http = self.c.http[self.leader];
        let m = probe::metrics(http).ok_or_else(|| anyhow!("no /metrics from the leader"))?;
        let get = |k: &str| m.get(k).copied().unwrap_or(0.0) as u64;
        let (workers, running) = (get("hearth_alive_workers"), get("hearth_running_executors"));
        let c = &self.fleet.counters;
        let (launches, kills, refused) = (
            c.launches.load(Ordering::Relaxed),
            c.kills.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
        );
        self.say(format!(
            "at the end the leader counts {workers} ALIVE workers and {running} RUNNING executors; \
             the workers obeyed {launches} launches and {kills} kills and refused {refused} commands"
        ));
        let (rss, exec) = (self.out_f64("leader_rss_mb"), self.opts.executors as f64);
        let (w_rss, base) = (
            self.out_f64("workers_rss_mb"),
            self.out_f64("baseline_rss_mb"),
        );
        self.set("alive_workers_end", workers);
        self.set("executors_running_end", running);
        self.set("launches", launches);
        self.set("kills", kills);
        self.set("refused", refused);
        self.set(
            "rss_kb_per_worker",
            round1((w_rss - base) * 1024.0 / self.opts.workers as f64),
        );
        self.set(
            "rss_bytes_per_executor",
            ((rss - w_rss) * 1024.0 * 1024.0 / exec.max(1.0)).round(),
        );
        self.set("load_end", probe::load());
        ensure!(
            workers == self.opts.workers as u64,
            "the leader counts {workers} ALIVE workers, not {}",
            self.opts.workers
        );
        Ok(())
    }

    fn out_f64(&self, key: &str) -> f64 {
        self.out.get(key).and_then(Value::as_f64).unwrap_or(0.0)
    }
}

/// `60s`, `500ms`, `2m`.
fn duration(s: &str) -> Option<Duration> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(60 * n),
        _ => return None,
    })
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    hearth_tests::stats::round3(x)
}

/// The figures as a readable table.
fn table(o: &Value) -> String {
    let rows: &[(&str, &str)] = &[
        ("workers", "simulated workers"),
        ("executors", "executors"),
        ("apps", "apps"),
        ("registration_ms", "all workers registered (ms)"),
        ("baseline_rss_mb", "leader RSS, nothing registered (MB)"),
        ("workers_rss_mb", "leader RSS, workers only (MB)"),
        ("workers_cpu_cores", "leader CPU, workers only (cores)"),
        ("leader_rss_mb", "leader RSS, steady state (MB)"),
        ("leader_cpu_cores", "leader CPU, steady state (cores)"),
        ("leader_follower_rss_mb", "follower RSS, steady state (MB)"),
        ("rss_kb_per_worker", "RSS per worker (KiB)"),
        ("rss_bytes_per_executor", "RSS per executor (bytes)"),
        ("placements_per_s", "placements/s (submit -> all RUNNING)"),
        ("status_ms", "/json (ms)"),
        ("status_bytes", "/json (bytes)"),
        ("getstate_ms", "GetState (ms)"),
        ("getstate_bytes", "GetState (bytes)"),
        ("status_paged_ms", "/json?limit=100 (ms)"),
        ("status_paged_bytes", "/json?limit=100 (bytes)"),
        ("status_summary_ms", "/json?limit=100&executors=0 (ms)"),
        (
            "status_summary_bytes",
            "/json?limit=100&executors=0 (bytes)",
        ),
        ("getstate_filtered_ms", "GetState RUNNING, limit 100 (ms)"),
        (
            "getstate_filtered_bytes",
            "GetState RUNNING, limit 100 (bytes)",
        ),
        ("ui_overview_ms", "web UI overview `/` (ms)"),
        ("ui_overview_bytes", "web UI overview `/` (bytes)"),
        ("cli_status_ms", "hearth status, wall (ms)"),
        ("cli_status_bytes", "hearth status, stdout (bytes)"),
        ("cli_status_all_ms", "hearth status --all, wall (ms)"),
        (
            "cli_status_all_bytes",
            "hearth status --all, stdout (bytes)",
        ),
        ("snapshot_ms", "snapshot build on the leader (ms)"),
        ("raft_dir_mb", "leader's Raft directory (MB)"),
        ("failover_p50_ms", "failover p50 (ms)"),
        ("failover_p99_ms", "failover p99 (ms)"),
        ("alive_p50_ms", "SIGKILL -> ALIVE p50 (ms)"),
        ("workers_back_p50_ms", "SIGKILL -> workers back p50 (ms)"),
        ("rejoin_p50_ms", "restarted master in step p50 (ms)"),
        ("term_step_max", "largest term step in a failover"),
        ("reregistered_all", "every worker re-registered each round"),
        ("commits_per_s_1", "commits/s, 1 client"),
        ("commit_p50_ms_1", "commit p50, 1 client (ms)"),
        ("commits_per_s_256", "commits/s, 256 clients"),
        (
            "commit_leader_cpu_us_256",
            "leader CPU per commit, 256 clients (µs)",
        ),
        (
            "commit_clients_cpu_us_256",
            "clients' CPU per commit, 256 clients (µs)",
        ),
        ("log_errors", "ERROR lines in the masters' logs"),
    ];
    let mut s = String::new();
    for (k, label) in rows {
        if let Some(v) = o.get(*k) {
            s.push_str(&format!("{label:<44} {v}\n"));
        }
    }
    s
}
