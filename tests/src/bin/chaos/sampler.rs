//! The samplers, every ~100 ms for the whole run: each master's `WhoLeads` and
//! `/readyz` (one thread per master, so a frozen one does not slow the others), the
//! leader's `/json` (every `json_every`: it lists every app, so it is the costly read),
//! and the launched processes in `/proc`. Each records what it sees in [`Shared`] and
//! every broken promise as a violation.

use crate::shared::{AppLimit, Sample, Shared};
use crate::workload::Ledger;
use hearth_proto::pb;
use hearth_tests::cluster::http_get_within;
use hearth_tests::procs;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const EVERY: Duration = Duration::from_millis(100);

/// How long an excess of executor processes over the app's limit may last: a killed
/// executor is given the workers' `--kill-grace` (2 s) to exit.
const PROC_EXCESS_GRACE: Duration = Duration::from_secs(3);

fn pace(asked: Instant, every: Duration) {
    if let Some(rest) = every.checked_sub(asked.elapsed()) {
        std::thread::sleep(rest);
    }
}

/// One thread per master: `WhoLeads` (term, leader, whether it acts) and `/readyz`.
pub fn masters(shared: Arc<Shared>) -> Vec<JoinHandle<()>> {
    (0..shared.addr.len())
        .map(|i| {
            let shared = shared.clone();
            std::thread::spawn(move || poll_master(&shared, i))
        })
        .collect()
}

fn poll_master(shared: &Shared, i: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let me = shared.addr[i].clone();
    let client = rt.block_on(async {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{me}"))
            .expect("endpoint")
            .connect_timeout(Duration::from_millis(300))
            .tcp_nodelay(true)
            .connect_lazy();
        pb::master_service_client::MasterServiceClient::new(ch)
    });
    let readyz = format!("http://127.0.0.1:{}/readyz", shared.http[i]);
    while !shared.stopped() {
        let asked = Instant::now();
        let who = rt.block_on(async {
            let mut c = client.clone();
            tokio::time::timeout(
                Duration::from_millis(700),
                c.who_leads(pb::WhoLeadsRequest {}),
            )
            .await
        });
        let sample = match who {
            Ok(Ok(answer)) => {
                let a = answer.into_inner();
                let leader = a.leader.filter(|l| !l.is_empty());
                let leads = a.leads && leader.as_deref() == Some(me.as_str());
                let alive = leads
                    && http_get_within(&readyz, Duration::from_millis(700))
                        .is_some_and(|(code, _)| code == 200);
                Some(Sample {
                    asked,
                    term: a.term,
                    leader,
                    leads,
                    alive,
                })
            }
            _ => None,
        };
        if let Some(s) = &sample {
            record(shared, i, s);
        }
        shared.latest.lock().unwrap()[i] = sample;
        pace(asked, EVERY);
    }
}

fn record(shared: &Shared, i: usize, s: &Sample) {
    if s.leads {
        let mut claims = shared.claims.lock().unwrap();
        let who = claims.entry(s.term).or_default();
        if !who.contains(&i) {
            who.push(i);
        }
        if who.len() > 1 {
            let names: Vec<String> = who.iter().map(|m| format!("m{}", m + 1)).collect();
            shared.violation_once(
                format!("term-{}", s.term),
                "one-leader-per-term",
                format!(
                    "{} all claimed to lead term {}",
                    names.join(" and "),
                    s.term
                ),
            );
        }
    }
    if s.alive && !shared.impaired(i) {
        let mut m = shared.meas.lock().unwrap();
        if m.t0.is_some_and(|t0| s.asked >= t0) && m.alive_at.is_none() {
            m.alive_at = Some(Instant::now());
        }
    }
}

/// The leader's `/json` every `every`: no active app RUNs more executors than its cores
/// and its executor limit allow; remembers each active app's limit for the `/proc` check.
pub fn leader_json(
    shared: Arc<Shared>,
    ledger: Arc<Mutex<Ledger>>,
    every: Duration,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !shared.stopped() {
            let asked = Instant::now();
            if let Some(l) = shared.alive_leader(asked - Duration::from_secs(1), EVERY * 10) {
                let url = format!("http://127.0.0.1:{}/json", shared.http[l]);
                let j = http_get_within(&url, Duration::from_secs(3))
                    .filter(|(code, _)| *code == 200)
                    .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok());
                if let Some(j) = j {
                    check_limits(&shared, &ledger, l, &j);
                }
            }
            pace(asked, every);
        }
    })
}

fn check_limits(shared: &Shared, ledger: &Mutex<Ledger>, l: usize, j: &Value) {
    if j["status"] != "ALIVE" {
        return;
    }
    shared.json_samples.fetch_add(1, Ordering::SeqCst);
    let mut apps = BTreeMap::new();
    let ledger = ledger.lock().unwrap();
    for a in j["activeapps"].as_array().into_iter().flatten() {
        let id = a["id"].as_str().unwrap_or("").to_owned();
        let name = a["name"].as_str().unwrap_or("").to_owned();
        let running = (a["executors"].as_array().into_iter().flatten())
            .filter(|e| e["state"] == "RUNNING")
            .count() as u32;
        let limit = a["executorlimit"].as_u64().map(|l| l as u32);
        let cores = ledger.max_cores(&name);
        let cap = match (limit, cores) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(cap) = cap {
            if running > cap {
                shared.violation_once(
                    format!("state-limit-{id}"),
                    "executor-limit",
                    format!(
                        "leader m{} shows {id} ({name}) with {running} RUNNING executors, \
                         limit {limit:?}, cores {cores:?}",
                        l + 1
                    ),
                );
            }
        }
        apps.insert(id, AppLimit { name, limit: cap });
    }
    *shared.apps.lock().unwrap() = apps;
}

/// This run's launched processes (not their guards): those whose `HEARTH_MASTERS`
/// names this cluster's first master.
pub fn ours(shared: &Shared) -> Vec<procs::ProcInfo> {
    let addr = &shared.addr[0];
    procs::all()
        .into_iter()
        .filter(|p| {
            p.env("HEARTH_MASTERS")
                .is_some_and(|m| m.contains(addr.as_str()))
        })
        .filter(|p| p.env("HEARTH_APP_ID").is_some())
        .collect()
}

/// `/proc` every 100 ms: never two live processes for one executor or one driver; an
/// app's executor processes over its limit for longer than a kill takes.
pub fn processes(shared: Arc<Shared>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut excess_since: BTreeMap<String, Instant> = BTreeMap::new();
        while !shared.stopped() {
            let asked = Instant::now();
            let mut executors: BTreeMap<(String, String), Vec<u32>> = BTreeMap::new();
            let mut drivers: BTreeMap<String, Vec<u32>> = BTreeMap::new();
            let mut per_app: BTreeMap<String, u32> = BTreeMap::new();
            let live: Vec<procs::ProcInfo> = ours(&shared)
                .into_iter()
                .filter(|p| !p.is_guard())
                .collect();
            shared.max_procs.fetch_max(live.len(), Ordering::SeqCst);
            shared.proc_samples.fetch_add(1, Ordering::SeqCst);
            for p in live {
                let app = p.env("HEARTH_APP_ID").unwrap_or("").to_owned();
                if let Some(e) = p.env("HEARTH_EXECUTOR_ID") {
                    executors
                        .entry((app.clone(), e.to_owned()))
                        .or_default()
                        .push(p.pid);
                    *per_app.entry(app).or_default() += 1;
                } else if let Some(d) = p.env("HEARTH_DRIVER_ID") {
                    drivers.entry(d.to_owned()).or_default().push(p.pid);
                }
            }
            for ((app, e), pids) in &executors {
                if pids.len() > 1 {
                    shared.violation_once(
                        format!("dup-exec-{app}-{e}"),
                        "one-process-per-executor",
                        format!("executor {e} of {app} runs as pids {pids:?}"),
                    );
                }
            }
            for (d, pids) in &drivers {
                if pids.len() > 1 {
                    shared.violation_once(
                        format!("dup-driver-{d}"),
                        "one-process-per-driver",
                        format!("driver {d} runs as pids {pids:?}"),
                    );
                }
            }
            let limits = shared.apps.lock().unwrap().clone();
            let now = Instant::now();
            excess_since.retain(|app, _| per_app.contains_key(app));
            for (app, n) in &per_app {
                let cap = limits.get(app).and_then(|a| a.limit);
                match cap {
                    Some(cap) if *n > cap => {
                        let since = *excess_since.entry(app.clone()).or_insert(now);
                        if now - since >= PROC_EXCESS_GRACE {
                            shared.violation_once(
                                format!("proc-limit-{app}"),
                                "executor-limit-processes",
                                format!(
                                    "{app} ({}) has had {n} executor processes for {:?}, \
                                     its limit is {cap}",
                                    limits[app].name,
                                    now - since
                                ),
                            );
                        }
                    }
                    _ => {
                        excess_since.remove(app);
                    }
                }
            }
            pace(asked, EVERY);
        }
    })
}
