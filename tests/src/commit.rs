//! The commit benchmark `bench-failover` and `bench-scale` share: submissions committed
//! through a fresh group of 3 Raft masters (every append fsynced, no workers) by one
//! client, then by each number of concurrent clients asked for, with throughput and
//! latency, and where the machine's CPU went during each phase (the leader, the
//! followers, the benchmark's own clients: CPU time per commit from `/proc`).

use crate::cluster::RaftCluster;
use crate::procs::{machine_ticks, ticks_per_s, usage};
use crate::stats::dist_line;
use crate::wait::Wait;
use anyhow::{anyhow, Context, Result};
use hearth_client::failover::stats::ms;
use hearth_client::{MasterClient, SleepingApp};
use hearth_proto::auth::{Credential, Secret};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One phase of the commit benchmark.
const PHASE: Duration = Duration::from_secs(300);
/// Starting the group.
const SETUP: Duration = Duration::from_secs(60);

/// What to run.
#[derive(Clone, Debug)]
pub struct CommitBench {
    /// Submissions by the one client, and in all by each concurrent group.
    pub submissions: u64,
    /// How often to look for the leader while starting.
    pub poll: Duration,
    /// The numbers of concurrent clients, after the one client.
    pub concurrent: Vec<u64>,
    /// Flags every master gets; `--secret-file F` makes the clients send that secret.
    pub flags: Vec<String>,
    /// Progress lines go to stderr (stdout is kept for one JSON object).
    pub quiet: bool,
}

impl CommitBench {
    fn say(&self, line: String) {
        if self.quiet {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    fn dist(&self, label: &str, values: Vec<Duration>) -> Value {
        let (v, line) = dist_line(label, values);
        self.say(line);
        v
    }
}

/// The processes of a commit phase whose CPU time is counted.
struct Meter {
    leader: u32,
    followers: Vec<u32>,
}

/// CPU clock ticks at one moment: the leader, the followers, this process (the
/// clients), the whole machine (busy, all).
struct Sample {
    leader: u64,
    followers: u64,
    clients: u64,
    machine: (u64, u64),
}

impl Meter {
    fn sample(&self) -> Sample {
        let ticks = |pid| usage(pid).map_or(0, |u| u.cpu_ticks);
        Sample {
            leader: ticks(self.leader),
            followers: self.followers.iter().map(|p| ticks(*p)).sum(),
            clients: ticks(std::process::id()),
            machine: machine_ticks().unwrap_or((0, 0)),
        }
    }

    /// CPU per commit of `commits` between samples `a` and `z`: microseconds of CPU time
    /// each process group used per commit, how busy the machine was, and what the
    /// masters alone would sustain if they had every CPU (their CPU per commit against
    /// the machine's CPUs: an estimate, for clients that run elsewhere). A process gone
    /// in between counts nothing.
    fn per_commit(a: &Sample, z: &Sample, commits: u64, b: &CommitBench, label: &str) -> Value {
        let us = |ticks: u64| ticks as f64 / ticks_per_s() * 1e6 / commits.max(1) as f64;
        let (leader, followers, clients) = (
            us(z.leader.saturating_sub(a.leader)),
            us(z.followers.saturating_sub(a.followers)),
            us(z.clients.saturating_sub(a.clients)),
        );
        let busy = z.machine.0.saturating_sub(a.machine.0);
        let all = z.machine.1.saturating_sub(a.machine.1);
        let busy = busy as f64 / all.max(1) as f64;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let masters_only = cpus as f64 * 1e6 / (leader + followers).max(1.0);
        b.say(format!(
            "  {label}: CPU per commit: leader {leader:.0} µs, followers {followers:.0} µs, \
             these clients {clients:.0} µs; the machine {:.0} % busy ({cpus} CPUs); \
             the masters alone on all {cpus}: ≈{masters_only:.0}/s",
            busy * 100.0
        ));
        json!({
            "leader_us": (leader * 10.0).round() / 10.0,
            "followers_us": (followers * 10.0).round() / 10.0,
            "clients_us": (clients * 10.0).round() / 10.0,
            "machine_busy": (busy * 1000.0).round() / 1000.0,
            "cpus": cpus,
            "masters_only_estimate_per_s": masters_only.round(),
        })
    }
}

async fn register(client: &MasterClient) -> Result<Duration> {
    let (app, _) = SleepingApp::client().named("bench").exiting().describe();
    let t = Instant::now();
    client
        .register_app(&app, None, Some("127.0.0.1:1"))
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
/// once; returns (wall time, every latency, the CPU sample taken as they began).
async fn concurrent(
    url: &str,
    credential: &Credential,
    clients: u64,
    per: u64,
    meter: &Meter,
) -> Result<(Duration, Vec<Duration>, Sample)> {
    let mut cs = Vec::new();
    for _ in 0..clients {
        let c = Arc::new(MasterClient::from_url(url)?.with_credential(credential.clone()));
        // Warm up: connect and find the leader, untimed.
        register(&c).await?;
        cs.push(c);
    }
    let cpu = meter.sample();
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
    Ok((start.elapsed(), lat, cpu))
}

/// Runs `b` in `dir`: `{"submissions", "clients_1": {"submissions", "per_s", "latency"},
/// "clients_<n>": ...}` with latencies as [`crate::stats::dist`] records them.
pub fn commit(dir: &Path, b: &CommitBench) -> Result<Value> {
    b.say(format!(
        "commit: 3 masters (default timings, every Raft append fsynced, directories in {}), \
         no workers; client-mode apps registered through hearth_client::MasterClient",
        dir.display()
    ));
    let flags: Vec<&str> = b.flags.iter().map(String::as_str).collect();
    let c = RaftCluster::start(dir, 3, &flags);
    let secret = flags
        .iter()
        .position(|f| *f == "--secret-file")
        .and_then(|i| flags.get(i + 1));
    let credential = match secret {
        Some(file) => Credential::new(Some(
            &Secret::read(Path::new(file)).map_err(|e| anyhow!(e))?,
        )),
        None => Credential::default(),
    };
    let tls = c
        .tls
        .as_ref()
        .map(hearth_proto::tls::Tls::read)
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let credential = credential.with_tls(tls.as_ref());
    let leader = Wait::new("an ALIVE leader", SETUP)
        .every(b.poll)
        .until(|| c.alive_leader(None))?;
    let url = c.url();
    b.say(format!("  leader: master {}", leader + 1));
    let pid = |i: usize| c.masters[i].as_ref().map(|m| m.proc.pid());
    let meter = Meter {
        leader: pid(leader).ok_or_else(|| anyhow!("the leader's process is gone"))?,
        followers: (0..c.masters.len())
            .filter(|i| *i != leader)
            .filter_map(pid)
            .collect(),
    };
    let submissions = b.submissions;
    let rt = tokio::runtime::Runtime::new()?;
    let out = rt.block_on(async {
        let client = MasterClient::from_url(&url)?.with_credential(credential.clone());
        for _ in 0..10 {
            register(&client).await?;
        }
        let cpu = meter.sample();
        let (seq, lat) = within("1 client's submissions", async {
            let start = Instant::now();
            let mut lat = Vec::with_capacity(submissions as usize);
            for _ in 0..submissions {
                lat.push(register(&client).await?);
            }
            Ok((start.elapsed(), lat))
        })
        .await?;
        let cpu_end = meter.sample();
        let rate = submissions as f64 / seq.as_secs_f64();
        b.say(format!(
            "  1 client: {submissions} submissions in {:.0} ms = {rate:.0}/s",
            ms(seq)
        ));
        let mut out = json!({
            "submissions": submissions,
            "clients_1": {
                "submissions": submissions,
                "per_s": rate.round(),
                "latency": b.dist("1 client: commit latency", lat),
                "cpu": Meter::per_commit(&cpu, &cpu_end, submissions, b, "1 client"),
            },
        });
        for &clients in &b.concurrent {
            let per = submissions.div_ceil(clients);
            let (took, lat, cpu) = within(
                &format!("{clients} clients' submissions"),
                concurrent(&url, &credential, clients, per, &meter),
            )
            .await?;
            let cpu_end = meter.sample();
            let n = per * clients;
            let rate = n as f64 / took.as_secs_f64();
            b.say(format!(
                "  {clients} clients: {n} submissions in {:.0} ms = {rate:.0}/s",
                ms(took)
            ));
            out[format!("clients_{clients}")] = json!({
                "submissions": n,
                "per_s": rate.round(),
                "latency": b.dist(&format!("{clients} clients: commit latency"), lat),
                "cpu": Meter::per_commit(&cpu, &cpu_end, n, b, &format!("{clients} clients")),
            });
        }
        anyhow::Ok(out)
    })?;
    drop(c);
    Ok(out)
}
