//! Failover drills: the `Drill` gRPC service that masters and workers serve with
//! `--enable-drills` (crash, freeze, isolate — authenticated by a shared token), and
//! `hearth drill`, which injects a fault round after round into a running cluster and
//! measures from outside how it recovers.
//!
//! A round: the leader (or, for kill-worker, a worker running one of the probe app's
//! executors but not its driver) is faulted; a new app is submitted at once; every master
//! is polled until one of the survivors leads, is ALIVE, has placed the new app's
//! executor (kill-worker: replaced the probe's lost executor) and has every worker back.
//! Then the round's checks: every app acknowledged so far is still there once (nothing
//! lost, nothing doubled), and the probe app kept its executors (leader scenarios) or got
//! exactly the lost one replaced (kill-worker). Between rounds the cluster heals: the
//! faulted process is back (a supervisor — systemd, `hearth local` — restarts a crashed
//! one) and every master answers.
//!
//! Must not: run without the token check, or inject anything before every target has
//! confirmed it accepts drills (a refused drill changes nothing).

use crate::units::parse_duration;
use crate::{Failure, Outcome};
use clap::{Args, ValueEnum};
use hearth_client::MasterClient;
use hearth_core::{
    AppDescription, AppId, DriverDescription, ExecutorState, MasterRole, ProcessSpec,
};
use hearth_master::drill::Isolation;
use hearth_proto::convert::StatusView;
use hearth_proto::pb::drill_client::DrillClient;
use hearth_proto::pb::drill_server::{Drill, DrillServer};
use hearth_proto::pb::{DrillRequest, DrillResponse};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

/// `--enable-drills` and its token, on `hearth master` and `hearth worker`.
#[derive(Args, Clone, Debug)]
pub struct DrillFlags {
    /// Accept failover drills (crash, freeze, isolate) from `hearth drill`. Needs a
    /// shared token (--drill-token or, better, HEARTH_DRILL_TOKEN).
    #[arg(long, env = "HEARTH_ENABLE_DRILLS")]
    pub enable_drills: bool,
    /// The token drill requests must carry.
    #[arg(long, env = "HEARTH_DRILL_TOKEN", hide_env_values = true)]
    pub drill_token: Option<String>,
}

impl DrillFlags {
    /// The drill service to serve, if drills are enabled. `isolate` is the master's
    /// isolation switch (workers support only crash and freeze).
    pub fn routes(
        &self,
        isolate: Option<Isolation>,
    ) -> Result<Option<tonic::service::Routes>, Failure> {
        if !self.enable_drills {
            return Ok(None);
        }
        let token = self
            .drill_token
            .clone()
            .filter(|t| t.len() >= 8)
            .ok_or_else(|| {
                Failure::Usage(
                    "--enable-drills needs a token of at least 8 characters (HEARTH_DRILL_TOKEN or --drill-token)"
                        .into(),
                )
            })?;
        tracing::warn!("failover drills enabled: holders of the drill token can crash, freeze or isolate this process");
        Ok(Some(tonic::service::Routes::new(DrillServer::new(
            DrillService { token, isolate },
        ))))
    }
}

struct DrillService {
    token: String,
    isolate: Option<Isolation>,
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Sends `sig` to this process after `delay`, so the answer leaves first.
fn signal_self_soon(sig: i32, delay: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        // SAFETY: kill(2) on our own pid.
        unsafe { libc::kill(libc::getpid(), sig) };
    });
}

#[tonic::async_trait]
impl Drill for DrillService {
    async fn inject(&self, req: Request<DrillRequest>) -> Result<Response<DrillResponse>, Status> {
        let r = req.into_inner();
        if !same(&r.token, &self.token) {
            tracing::warn!(action = %r.action, "drill refused: wrong token");
            return Err(Status::permission_denied("wrong drill token"));
        }
        let pid = std::process::id();
        let d = Duration::from_millis(r.duration_ms);
        let message = match r.action.as_str() {
            "check" => "drills enabled".to_owned(),
            "crash" => {
                tracing::warn!("drill: crashing (SIGKILL) now");
                signal_self_soon(libc::SIGKILL, Duration::from_millis(50));
                "crashing (SIGKILL)".to_owned()
            }
            "freeze" => {
                if d.is_zero() || d > Duration::from_secs(600) {
                    return Err(Status::invalid_argument(
                        "freeze needs a duration of 1 ms to 600 s",
                    ));
                }
                // Something outside this process must wake it: a detached shell.
                let thaw = format!("sleep {:.3}; kill -CONT {pid}", d.as_secs_f64());
                std::process::Command::new("sh")
                    .args(["-c", &thaw])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .map_err(|e| Status::internal(format!("cannot start the thaw timer: {e}")))?;
                tracing::warn!(for_ms = d.as_millis() as u64, "drill: freezing (SIGSTOP)");
                signal_self_soon(libc::SIGSTOP, Duration::from_millis(50));
                format!("freezing for {d:?}")
            }
            "isolate" => {
                let isolate = self.isolate.as_ref().ok_or_else(|| {
                    Status::unimplemented("workers take crash and freeze drills, not isolate")
                })?;
                if d.is_zero() || d > Duration::from_secs(600) {
                    return Err(Status::invalid_argument(
                        "isolate needs a duration of 1 ms to 600 s",
                    ));
                }
                isolate.isolate(d);
                format!("isolated for {d:?}")
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown drill action {other:?}: crash, freeze, isolate or check"
                )))
            }
        };
        Ok(Response::new(DrillResponse { pid, message }))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// SIGKILL the leader (a supervisor must restart it for the next round).
    KillLeader,
    /// Freeze the leader (SIGSTOP) for --fault-for.
    PauseLeader,
    /// Cut the leader off from its peers, workers and clients for --fault-for.
    PartitionLeader,
    /// SIGKILL the worker running the probe app's executor.
    KillWorker,
}

#[derive(Args)]
pub struct DrillArgs {
    /// The fault to inject.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Rounds to run.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Print one JSON object with every figure instead of a table.
    #[arg(long)]
    json: bool,
    /// The drill token the masters and workers were started with.
    #[arg(long, env = "HEARTH_DRILL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How long pause-leader and partition-leader last.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    fault_for: Duration,
    /// A round that has not recovered within this fails the drill.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    round_timeout: Duration,
}

/// The figures of one measure over the rounds.
#[derive(Default)]
struct Measure(Vec<Duration>);

impl Measure {
    fn quantile(&self, q: f64) -> Option<Duration> {
        let mut v = self.0.clone();
        v.sort();
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).copied()
    }
}

fn ms(d: Option<Duration>) -> serde_json::Value {
    d.map_or(serde_json::Value::Null, |d| {
        serde_json::json!((d.as_secs_f64() * 1e4).round() / 10.0)
    })
}

/// One master's own view, or `None` if it does not answer one request within 300 ms
/// (no retries: a dead master must show as dead even if it is back a moment later).
async fn view(addr: &str) -> Option<StatusView> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect_timeout(Duration::from_millis(200))
        .timeout(Duration::from_millis(300));
    let ask = async {
        let mut c = hearth_proto::pb::master_service_client::MasterServiceClient::new(
            endpoint.connect().await.ok()?,
        )
        .max_decoding_message_size(64 << 20);
        let resp = c
            .get_state(hearth_proto::pb::GetStateRequest {})
            .await
            .ok()?;
        StatusView::try_from(resp.into_inner()).ok()
    };
    tokio::time::timeout(Duration::from_millis(400), ask)
        .await
        .ok()
        .flatten()
}

async fn inject(
    addr: &str,
    token: &str,
    action: &str,
    d: Duration,
) -> Result<DrillResponse, Failure> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| Failure::Usage(format!("bad address {addr}: {e}")))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5));
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| Failure::Request(format!("cannot reach {addr} for a drill: {e}")))?;
    let answer = DrillClient::new(channel)
        .inject(DrillRequest {
            token: token.to_owned(),
            action: action.to_owned(),
            duration_ms: d.as_millis() as u64,
        })
        .await;
    match answer {
        Ok(r) => Ok(r.into_inner()),
        Err(s) if s.code() == tonic::Code::Unimplemented && action != "isolate" => {
            Err(Failure::Request(format!(
                "drills are not enabled on {addr}: start its masters and workers with --enable-drills and a token (HEARTH_DRILL_TOKEN)"
            )))
        }
        Err(s) if s.code() == tonic::Code::PermissionDenied => Err(Failure::Request(format!(
            "{addr} refused the drill: wrong token (give the token the cluster was started with, HEARTH_DRILL_TOKEN or --token)"
        ))),
        Err(s) => Err(Failure::Request(format!("{addr} refused the drill: {}", s.message()))),
    }
}

/// A cluster-mode app whose driver and executors sleep. `supervise`: its driver is
/// relaunched if lost.
fn sleeper(name: &str, cores: u32, supervise: bool) -> (AppDescription, DriverDescription) {
    let cmd = ProcessSpec {
        argv: vec!["sh".into(), "-c".into(), "exec sleep 100000".into()],
        env: Default::default(),
    };
    (
        AppDescription {
            name: name.into(),
            cores_per_executor: Some(1),
            memory_per_executor_mb: 64,
            max_cores: Some(cores),
            initial_executor_limit: None,
            command: cmd.clone(),
        },
        DriverDescription {
            cores: 1,
            memory_mb: 64,
            supervise,
            command: cmd,
        },
    )
}

/// Registers the probe app and waits (up to `within`) for its `expected` executors.
async fn start_probe(
    client: &MasterClient,
    expected: usize,
    within: Duration,
) -> Result<(AppId, Vec<u32>), Failure> {
    let (desc, driver) = sleeper("drill-probe", expected as u32, false);
    let (probe, _) = client.register_app(&desc, Some(&driver), None).await?;
    let start = Instant::now();
    loop {
        let s = client.state().await?;
        let e = running_executors(&s, &probe);
        if e.len() == expected {
            return Ok((probe, e));
        }
        if start.elapsed() > within {
            return Err(Failure::Request(format!(
                "the probe app's {expected} executor(s) did not start within {within:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The address of a worker running one of the probe's executors but not its driver.
fn probe_worker(s: &StatusView, probe: &AppId) -> Option<String> {
    let app = s.active_apps.iter().find(|x| &x.id == probe)?;
    let driver_on = s
        .active_drivers
        .iter()
        .find(|d| Some(&d.id) == app.driver.as_ref())
        .and_then(|d| d.worker.clone());
    let on = app
        .executors
        .values()
        .map(|e| e.worker.clone())
        .find(|w| Some(w) != driver_on.as_ref())?;
    let w = s.workers.iter().find(|w| w.info.identity.id == on)?;
    Some(w.info.identity.addr())
}

/// The master that leads and is ALIVE, by its own account, among `masters`.
async fn alive_leader(masters: &[String], except: Option<&str>) -> Option<(String, StatusView)> {
    for m in masters.iter().filter(|m| Some(m.as_str()) != except) {
        if let Some(s) = view(m).await {
            if s.status == MasterRole::Alive && s.leader.as_deref() == Some(m) {
                return Some((m.clone(), s));
            }
        }
    }
    None
}

fn running_executors(s: &StatusView, app: &AppId) -> Vec<u32> {
    s.active_apps
        .iter()
        .filter(|a| &a.id == app)
        .flat_map(|a| a.executors.values())
        .filter(|e| e.state == ExecutorState::Running)
        .map(|e| e.id)
        .collect()
}

struct Round {
    to_leader: Option<Duration>,
    to_alive: Option<Duration>,
    to_placement: Option<Duration>,
    to_workers: Option<Duration>,
}

pub async fn run(a: DrillArgs, master: Option<String>) -> Outcome {
    let client = crate::admin::client(master)?;
    let masters = client.masters().to_vec();
    let token = a.token.clone().ok_or_else(|| {
        Failure::Usage("no drill token: pass --token or set HEARTH_DRILL_TOKEN".into())
    })?;
    if a.rounds == 0 {
        return Err(Failure::Usage("--rounds must be at least 1".into()));
    }
    let leader_scenario = a.scenario != Scenario::KillWorker;
    let state = client.state().await?;
    if leader_scenario && state.masters.len() < 3 {
        return Err(Failure::Request(format!(
            "this cluster has {} master(s): a leader drill needs at least 3 (Raft) so a majority survives; nothing was injected",
            state.masters.len()
        )));
    }
    let alive_workers = state
        .workers
        .iter()
        .filter(|w| w.info.state == hearth_core::WorkerState::Alive)
        .count();
    if alive_workers == 0 || (a.scenario == Scenario::KillWorker && alive_workers < 2) {
        return Err(Failure::Request(
            "a drill needs an ALIVE worker for its probe app (kill-worker needs two, one to take over); nothing was injected"
                .into(),
        ));
    }
    // Every process a round may fault must accept drills with this token: check all
    // first, so a refusal leaves the cluster untouched.
    let all_masters: Vec<String> = state.masters.iter().map(|m| m.address.clone()).collect();
    for m in &all_masters {
        inject(m, &token, "check", Duration::ZERO).await?;
    }
    if !leader_scenario {
        for w in &state.workers {
            inject(&w.info.identity.addr(), &token, "check", Duration::ZERO).await?;
        }
    }
    let masters = if all_masters.is_empty() {
        masters
    } else {
        all_masters
    };

    // The probe: a cluster-mode app that runs through every round, one executor per
    // worker (at most 4), so kill-worker finds an executor away from the probe's driver.
    let expected = alive_workers.clamp(1, 4);
    let deadline = |t: Instant| t.elapsed() < a.round_timeout;
    let (mut probe, mut probe_execs) = start_probe(&client, expected, a.round_timeout).await?;

    let mut rounds: Vec<Round> = Vec::new();
    let mut acked: BTreeMap<String, AppId> = BTreeMap::new();
    let (mut lost, mut doubled, mut failed) = (0usize, 0usize, Vec::<String>::new());
    for round in 1..=a.rounds {
        let (old, before) = match alive_leader(&masters, None).await {
            Some(l) => l,
            None => {
                failed.push(format!("round {round}: no ALIVE leader before the fault"));
                break;
            }
        };
        let workers_before = before
            .workers
            .iter()
            .filter(|w| w.info.state == hearth_core::WorkerState::Alive)
            .count();
        let (target, action) = match a.scenario {
            Scenario::KillLeader => (old.clone(), "crash"),
            Scenario::PauseLeader => (old.clone(), "freeze"),
            Scenario::PartitionLeader => (old.clone(), "isolate"),
            Scenario::KillWorker => match probe_worker(&before, &probe) {
                Some(w) => (w, "crash"),
                None => {
                    // A replacement placed while the killed worker was still away can
                    // leave every probe executor beside the probe's driver: killing that
                    // worker would take the driver too. Start a fresh probe, spread over
                    // the workers, and take this round's view again.
                    eprintln!(
                        "round {round}: every probe executor runs beside the probe's driver; starting a fresh probe"
                    );
                    let _ = client.kill_app(&probe).await;
                    (probe, probe_execs) = start_probe(&client, expected, a.round_timeout).await?;
                    match alive_leader(&masters, None).await {
                        Some((_, s)) => match probe_worker(&s, &probe) {
                            Some(w) => (w, "crash"),
                            None => {
                                failed.push(format!(
                                    "round {round}: no worker runs a probe executor without its driver"
                                ));
                                break;
                            }
                        },
                        None => {
                            failed.push(format!("round {round}: no ALIVE leader before the fault"));
                            break;
                        }
                    }
                }
            },
        };
        let t0 = Instant::now();
        inject(&target, &token, action, a.fault_for).await?;
        if action == "crash" {
            // Wait until it is really gone: a supervisor may restart it within
            // milliseconds, and the restarted process may lead again (same id, same
            // term, its log intact); it counts as a new leader once the old one is dead.
            while view(&target).await.is_some() && deadline(t0) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        // A new app right away: the client retries until a leader takes it.
        let name = format!("drill-{round}-{}", std::process::id());
        let submit = {
            let url = masters.clone();
            let name = name.clone();
            tokio::spawn(async move {
                let c = MasterClient::new(url);
                // Supervised: a leader that accepted it just before the fault may have
                // placed its driver without getting to launch it; the next leader then
                // relaunches it (unsupervised, it would end in ERROR, as in Spark).
                let (desc, driver) = sleeper(&name, 1, true);
                // What a careful client does with an uncertain answer: look before it
                // submits again (a blind retry could register the app twice).
                loop {
                    match c.register_app(&desc, Some(&driver), None).await {
                        Err(hearth_client::ClientError::Unknown { .. }) => {
                            let s = c.state().await?;
                            if let Some(app) = s
                                .active_apps
                                .iter()
                                .chain(&s.completed_apps)
                                .find(|x| x.desc.name == name)
                            {
                                return Ok((app.id.clone(), app.driver.clone()));
                            }
                        }
                        other => return other,
                    }
                }
            })
        };
        let mut r = Round {
            to_leader: None,
            to_alive: None,
            to_placement: None,
            to_workers: None,
        };
        let mut submit = Some(submit);
        let mut new_app: Option<AppId> = None;
        // A frozen or cut-off leader may still claim to lead when it comes back, before
        // it learns of the new term: only the others count.
        let except = matches!(
            a.scenario,
            Scenario::PauseLeader | Scenario::PartitionLeader
        )
        .then_some(old.as_str());
        let done = |r: &Round, submitted: bool| {
            submitted
                && r.to_placement.is_some()
                && r.to_workers.is_some()
                && (!leader_scenario || r.to_alive.is_some())
        };
        while deadline(t0) && !done(&r, submit.is_none()) {
            if submit.as_ref().is_some_and(|h| h.is_finished()) {
                match submit.take().expect("submit").await {
                    Ok(Ok((id, _))) => {
                        acked.insert(name.clone(), id.clone());
                        new_app = Some(id);
                    }
                    Ok(Err(e)) => failed.push(format!("round {round}: the submission failed: {e}")),
                    Err(e) => failed.push(format!("round {round}: the submitter panicked: {e}")),
                }
            }
            if leader_scenario && r.to_alive.is_none() {
                for m in masters.iter().filter(|m| Some(m.as_str()) != except) {
                    let Some(s) = view(m).await else { continue };
                    if s.leader.as_deref() != Some(m.as_str()) || s.status == MasterRole::Standby {
                        continue;
                    }
                    r.to_leader.get_or_insert(t0.elapsed());
                    if s.status == MasterRole::Alive {
                        r.to_alive.get_or_insert(t0.elapsed());
                    }
                }
            } else if let Some((_, s)) = alive_leader(&masters, except).await {
                let placed = match a.scenario {
                    // The probe's executor replaced on another worker.
                    Scenario::KillWorker => {
                        let e = running_executors(&s, &probe);
                        e.len() == expected && e != probe_execs
                    }
                    _ => new_app
                        .as_ref()
                        .is_some_and(|app| !running_executors(&s, app).is_empty()),
                };
                if placed {
                    r.to_placement.get_or_insert(t0.elapsed());
                }
                let back = s
                    .workers
                    .iter()
                    .filter(|w| w.info.state == hearth_core::WorkerState::Alive)
                    .count();
                if back >= workers_before {
                    r.to_workers.get_or_insert(t0.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if !done(&r, submit.is_none()) {
            failed.push(format!(
                "round {round}: not recovered within {:?}",
                a.round_timeout
            ));
        }
        // Heal: every master answers again, one ALIVE leader, every worker back.
        let healed = Instant::now();
        let s = loop {
            let all = all_answer(&masters).await;
            if let (true, Some((_, s))) = (all, alive_leader(&masters, None).await) {
                let back = s
                    .workers
                    .iter()
                    .filter(|w| w.info.state == hearth_core::WorkerState::Alive)
                    .count();
                let probe_now = running_executors(&s, &probe);
                let replaced = leader_scenario || probe_now != probe_execs;
                if back >= workers_before && probe_now.len() == expected && replaced {
                    break s;
                }
            }
            if healed.elapsed() > a.round_timeout {
                return Err(Failure::Request(format!(
                    "round {round}: the cluster did not heal within {:?} (a crashed process must be restarted by a supervisor such as systemd or `hearth local`)",
                    a.round_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // Checks: acknowledged apps all there, once; the probe kept (or replaced) its
        // one executor.
        let mut names: BTreeMap<&str, Vec<&AppId>> = BTreeMap::new();
        for x in s.active_apps.iter().chain(&s.completed_apps) {
            names.entry(x.desc.name.as_str()).or_default().push(&x.id);
        }
        for (name, id) in &acked {
            match names.get(name.as_str()) {
                None => lost += 1,
                Some(ids) if ids.len() > 1 => doubled += 1,
                Some(ids) if ids[0] != id => lost += 1,
                Some(_) => {}
            }
        }
        let now_execs = running_executors(&s, &probe);
        if now_execs.len() > expected {
            doubled += 1;
        }
        if leader_scenario && now_execs != probe_execs {
            lost += 1;
            failed.push(format!(
                "round {round}: the probe's executors changed from {probe_execs:?} to {now_execs:?}"
            ));
        }
        probe_execs = now_execs;
        if let Some(app) = &new_app {
            let _ = client.kill_app(app).await;
        }
        rounds.push(r);
    }
    let _ = client.kill_app(&probe).await;

    let measures: [(&str, Measure); 4] = [
        (
            "to_new_leader",
            Measure(rounds.iter().filter_map(|r| r.to_leader).collect()),
        ),
        (
            "to_alive",
            Measure(rounds.iter().filter_map(|r| r.to_alive).collect()),
        ),
        (
            "to_first_placement",
            Measure(rounds.iter().filter_map(|r| r.to_placement).collect()),
        ),
        (
            "to_workers_back",
            Measure(rounds.iter().filter_map(|r| r.to_workers).collect()),
        ),
    ];
    let ok = failed.is_empty() && lost == 0 && doubled == 0 && rounds.len() == a.rounds as usize;
    if a.json {
        let mut m = serde_json::Map::new();
        for (name, v) in &measures {
            m.insert(
                format!("{name}_ms"),
                serde_json::json!({"n": v.0.len(), "p50": ms(v.quantile(0.5)), "p99": ms(v.quantile(0.99)), "max": ms(v.quantile(1.0))}),
            );
        }
        let doc = serde_json::json!({
            "scenario": format!("{:?}", a.scenario),
            "rounds": rounds.len(),
            "measures": m,
            "lost": lost,
            "doubled": doubled,
            "failures": failed,
            "ok": ok,
        });
        println!("{doc}");
    } else {
        println!("scenario {:?}, {} rounds", a.scenario, rounds.len());
        println!(
            "{:<22} {:>5} {:>10} {:>10} {:>10}",
            "measure", "n", "p50 ms", "p99 ms", "max ms"
        );
        for (name, v) in &measures {
            let f = |d: Option<Duration>| {
                d.map_or("-".to_owned(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
            };
            println!(
                "{:<22} {:>5} {:>10} {:>10} {:>10}",
                name,
                v.0.len(),
                f(v.quantile(0.5)),
                f(v.quantile(0.99)),
                f(v.quantile(1.0))
            );
        }
        println!("lost {lost}, doubled {doubled}");
        for f in &failed {
            println!("FAILED {f}");
        }
    }
    if ok {
        Ok(())
    } else {
        Err(Failure::Request(format!(
            "the drill did not hold: {} failure(s), {lost} lost, {doubled} doubled",
            failed.len()
        )))
    }
}

/// Whether every master answers `GetState` now.
async fn all_answer(masters: &[String]) -> bool {
    for m in masters {
        if view(m).await.is_none() {
            return false;
        }
    }
    true
}
