//! Failover drills: `hearth drill`, which injects a fault round after round into a
//! running cluster and measures from outside how it recovers, through the `Drill` gRPC
//! service that masters and workers serve with `--enable-drills` ([`service`]). The
//! measuring is hearth-client's failover engine ([`hearth_client::failover`]).
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
use hearth_client::failover::{
    self, CountedOn, Distribution, MasterView, Placement, Polling, Tally, Target, Timings, Watch,
};
use hearth_client::{ClientError, MasterClient, SleepingApp};
use hearth_core::AppId;
use hearth_proto::convert::StatusView;
use hearth_proto::pb::drill_client::DrillClient;
use hearth_proto::pb::{DrillRequest, DrillResponse};
use std::collections::BTreeMap;
use std::time::Duration;

mod service;
pub use service::DrillFlags;

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

/// Between two views of one master while a round is watched.
const POLL_EVERY: Duration = Duration::from_millis(5);
/// Between two looks while waiting for the probe's executors or for the cluster to heal.
const HEAL_EVERY: Duration = Duration::from_millis(20);
/// How long the drill's apps sleep (they are killed long before).
const SLEEP_SECS: u64 = 100_000;

/// Milliseconds to one decimal, or null.
fn ms(d: Option<Duration>) -> serde_json::Value {
    d.map_or(serde_json::Value::Null, |d| {
        serde_json::json!((d.as_secs_f64() * 1e4).round() / 10.0)
    })
}

async fn inject(
    addr: &str,
    token: &str,
    action: &str,
    d: Duration,
) -> Result<DrillResponse, Failure> {
    let endpoint = crate::secret::credential()
        .endpoint(addr)
        .map_err(Failure::Usage)?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5));
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| Failure::Request(format!("cannot reach {addr} for a drill: {e}")))?;
    let answer = DrillClient::new(hearth_proto::auth::authed(
        channel,
        &crate::secret::credential(),
    ))
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

/// A master's own view, as a round reads it.
async fn round_view(master: String) -> Option<MasterView> {
    failover::view(&master, &crate::secret::credential())
        .await
        .map(|s| MasterView::from(&s))
}

/// The app a round submits right after the fault: the client retries until a leader
/// takes it, and looks it up by name when the answer is uncertain (a blind retry could
/// register it twice).
async fn submit_round_app(masters: Vec<String>, name: String) -> Result<AppId, ClientError> {
    let c = MasterClient::new(masters).with_credential(crate::secret::credential());
    // Supervised: a leader that accepted it just before the fault may have placed its
    // driver without getting to launch it; the next leader then relaunches it
    // (unsupervised, it would end in ERROR, as in Spark).
    let (desc, driver) = SleepingApp::cluster()
        .named(&name)
        .supervised()
        .sleeping(SLEEP_SECS)
        .describe();
    let (app, _) = failover::submit_or_find(&c, &desc, driver.as_ref(), None).await?;
    Ok(app)
}

/// A drill under way: what every round needs, and what the rounds found.
struct DrillRun {
    a: DrillArgs,
    client: MasterClient,
    /// Every master's address, as each names itself when it leads.
    masters: Vec<String>,
    token: String,
    /// The probe: a cluster-mode app that runs through every round, one executor per
    /// worker (at most 4), so kill-worker finds an executor away from the probe's driver.
    expected: usize,
    probe: AppId,
    probe_execs: Vec<u32>,
    /// Probes started so far (each has its own name, so an uncertain registration can be
    /// looked up).
    probes: u32,
    /// Every app acknowledged so far, by name.
    acked: BTreeMap<String, AppId>,
    tally: Tally,
    failed: Vec<String>,
    rounds: Vec<Timings>,
}

pub async fn run(a: DrillArgs, master: Option<String>) -> Outcome {
    let mut drill = DrillRun::prepare(a, master).await?;
    for round in 1..=drill.a.rounds {
        if !drill.round(round).await? {
            break;
        }
    }
    let _ = drill.client.kill_app(&drill.probe).await;
    drill.report()
}

impl DrillRun {
    fn leader_scenario(&self) -> bool {
        self.a.scenario != Scenario::KillWorker
    }

    /// Refuses what cannot be drilled, injecting nothing; then starts the probe.
    async fn prepare(a: DrillArgs, master: Option<String>) -> Result<DrillRun, Failure> {
        let client = crate::admin::client(master)?;
        let token = a.token.clone().ok_or_else(|| {
            Failure::Usage("no drill token: pass --token or set HEARTH_DRILL_TOKEN".into())
        })?;
        if a.rounds == 0 {
            return Err(Failure::Usage("--rounds must be at least 1".into()));
        }
        let (masters, workers) = preflight(&a, &client, &token).await?;
        let mut drill = DrillRun {
            masters: if masters.is_empty() {
                client.masters().to_vec()
            } else {
                masters
            },
            a,
            client,
            token,
            expected: workers.clamp(1, 4),
            probe: AppId::from(""),
            probe_execs: Vec::new(),
            probes: 0,
            acked: BTreeMap::new(),
            tally: Tally::default(),
            failed: Vec::new(),
            rounds: Vec::new(),
        };
        drill.start_probe().await?;
        Ok(drill)
    }

    /// Registers a fresh probe app and waits (up to the round timeout) for its executors.
    async fn start_probe(&mut self) -> Result<(), Failure> {
        self.probes += 1;
        let name = format!("drill-probe-{}-{}", std::process::id(), self.probes);
        let (desc, driver) = SleepingApp::cluster()
            .named(&name)
            .executors(self.expected as u32)
            .sleeping(SLEEP_SECS)
            .describe();
        let (probe, _) =
            failover::submit_or_find(&self.client, &desc, driver.as_ref(), None).await?;
        let (client, expected, within) = (&self.client, self.expected, self.a.round_timeout);
        let running = failover::poll_until(within, HEAL_EVERY, || async {
            match client.state().await {
                Ok(s) => {
                    let e = MasterView::from(&s).running(&probe);
                    (e.len() == expected).then_some(Ok(e))
                }
                Err(e) => Some(Err(e)),
            }
        })
        .await;
        self.probe_execs = running.ok_or_else(|| {
            Failure::Request(format!(
                "the probe app's {expected} executor(s) did not start within {within:?}"
            ))
        })??;
        self.probe = probe;
        Ok(())
    }

    /// One round; `false` when the drill cannot go on (the reason is in `failed`).
    async fn round(&mut self, round: u32) -> Result<bool, Failure> {
        let Some((old, before)) =
            failover::alive_leader(&self.masters, &crate::secret::credential()).await
        else {
            self.failed
                .push(format!("round {round}: no ALIVE leader before the fault"));
            return Ok(false);
        };
        let Some((target, action)) = self.target(round, &old, &before).await? else {
            return Ok(false);
        };
        let name = format!("drill-{round}-{}", std::process::id());
        let watch = self.watch(&old, &before, &name);
        let workers = watch.workers;
        let polling = Polling {
            masters: self.masters.clone(),
            every: POLL_EVERY,
            within: self.a.round_timeout,
        };
        let fault = self.fault(&target, action);
        let submit = submit_round_app(self.masters.clone(), name.clone());
        let r = failover::run_round(watch, &polling, fault, submit, round_view).await?;
        let new_app = match r.app() {
            Some(Ok(id)) => {
                self.acked.insert(name, id.clone());
                Some(id.clone())
            }
            Some(Err(e)) => {
                self.failed.push(format!("round {round}: {e}"));
                None
            }
            None => None,
        };
        if !r.done() {
            let within = self.a.round_timeout;
            self.failed
                .push(format!("round {round}: not recovered within {within:?}"));
        }
        let healed = self.heal(round, workers).await?;
        self.check(round, &healed);
        if let Some(app) = &new_app {
            let _ = self.client.kill_app(app).await;
        }
        self.rounds.push(r.timings());
        Ok(true)
    }

    /// What this round's fault hits and the drill action that does it; `None` when no
    /// process can be faulted (the reason is in `failed`).
    async fn target(
        &mut self,
        round: u32,
        old: &str,
        before: &StatusView,
    ) -> Result<Option<(String, &'static str)>, Failure> {
        let action = match self.a.scenario {
            Scenario::KillLeader => "crash",
            Scenario::PauseLeader => "freeze",
            Scenario::PartitionLeader => "isolate",
            Scenario::KillWorker => {
                if let Some(w) = probe_worker(before, &self.probe) {
                    return Ok(Some((w, "crash")));
                }
                return self.fresh_probe_worker(round).await;
            }
        };
        Ok(Some((old.to_owned(), action)))
    }

    /// A replacement placed while the killed worker was still away can leave every probe
    /// executor beside the probe's driver: killing that worker would take the driver too.
    /// Starts a fresh probe, spread over the workers, and takes this round's view again.
    async fn fresh_probe_worker(
        &mut self,
        round: u32,
    ) -> Result<Option<(String, &'static str)>, Failure> {
        eprintln!(
            "round {round}: every probe executor runs beside the probe's driver; starting a fresh probe"
        );
        let _ = self.client.kill_app(&self.probe).await;
        self.start_probe().await?;
        let why = match failover::alive_leader(&self.masters, &crate::secret::credential()).await {
            Some((_, s)) => match probe_worker(&s, &self.probe) {
                Some(w) => return Ok(Some((w, "crash"))),
                None => "no worker runs a probe executor without its driver",
            },
            None => "no ALIVE leader before the fault",
        };
        self.failed.push(format!("round {round}: {why}"));
        Ok(None)
    }

    /// What the round watches for: a leader scenario for a new leader and the new app's
    /// placement, kill-worker for the probe's lost executor replaced; every worker back.
    fn watch(&self, old: &str, before: &StatusView, name: &str) -> Watch {
        let leader = self.leader_scenario();
        Watch {
            target: if leader {
                Target::Leader
            } else {
                Target::Worker
            },
            old_leader: old.to_owned(),
            // A frozen or cut-off leader may still claim to lead when it comes back,
            // before it learns of the new term: only the others count.
            ignore: matches!(
                self.a.scenario,
                Scenario::PauseLeader | Scenario::PartitionLeader
            )
            .then(|| old.to_owned()),
            workers: MasterView::from(before).alive_workers,
            placement: if leader {
                Placement::NewApp(name.to_owned())
            } else {
                Placement::Replaced {
                    app: self.probe.clone(),
                    before: self.probe_execs.clone(),
                    expected: self.expected,
                }
            },
            counted_on: CountedOn::Alive,
        }
    }

    /// Injects `action` into `target`; a crash is waited for until the process is really
    /// gone: a supervisor may restart it within milliseconds, and the restarted process
    /// may lead again (same id, same term, its log intact); it counts as a new leader once
    /// the old one is dead.
    async fn fault(&self, target: &str, action: &str) -> Result<(), Failure> {
        inject(target, &self.token, action, self.a.fault_for).await?;
        if action == "crash" {
            let gone = || async {
                failover::view(target, &crate::secret::credential())
                    .await
                    .is_none()
                    .then_some(())
            };
            let wait = Duration::from_millis(2);
            failover::poll_until(self.a.round_timeout, wait, gone).await;
        }
        Ok(())
    }

    /// Waits until the cluster has healed: every master answers, one ALIVE leader, every
    /// worker back, and the probe has its executors (kill-worker: the lost one replaced).
    async fn heal(&self, round: u32, workers: usize) -> Result<MasterView, Failure> {
        let leader = self.leader_scenario();
        let healed = failover::poll_until(self.a.round_timeout, HEAL_EVERY, || async {
            if !failover::all_answer(&self.masters, &crate::secret::credential()).await {
                return None;
            }
            let v = MasterView::from(
                &failover::alive_leader(&self.masters, &crate::secret::credential())
                    .await?
                    .1,
            );
            let probe_now = v.running(&self.probe);
            let replaced = leader || probe_now != self.probe_execs;
            (v.alive_workers >= workers && probe_now.len() == self.expected && replaced)
                .then_some(v)
        })
        .await;
        healed.ok_or_else(|| Failure::Request(format!(
            "round {round}: the cluster did not heal within {:?} (a crashed process must be restarted by a supervisor such as systemd or `hearth local`)",
            self.a.round_timeout
        )))
    }

    /// The round's checks: every app acknowledged so far still there, once; the probe
    /// kept its executors (kill-worker: got the lost one replaced, and no more).
    fn check(&mut self, round: u32, healed: &MasterView) {
        self.tally += Tally::of_apps(healed, &self.acked);
        let now = healed.running(&self.probe);
        if now.len() > self.expected {
            self.tally.doubled += 1;
        }
        if self.leader_scenario() && now != self.probe_execs {
            self.tally.lost += 1;
            self.failed.push(format!(
                "round {round}: the probe's executors changed from {:?} to {now:?}",
                self.probe_execs
            ));
        }
        self.probe_execs = now;
    }

    /// Prints the figures (a table, or one JSON object); an error unless every round held.
    fn report(&self) -> Outcome {
        let measure = |f: fn(&Timings) -> Option<Duration>| {
            Distribution::of(self.rounds.iter().filter_map(f))
        };
        let measures: [(&str, Distribution); 4] = [
            ("to_new_leader", measure(|t| t.leading)),
            ("to_alive", measure(|t| t.alive)),
            ("to_first_placement", measure(|t| t.placed)),
            ("to_workers_back", measure(|t| t.workers_back)),
        ];
        let Tally { lost, doubled } = self.tally;
        let ok = self.failed.is_empty()
            && self.tally.is_clean()
            && self.rounds.len() == self.a.rounds as usize;
        if self.a.json {
            self.print_json(&measures, ok);
        } else {
            self.print_table(&measures);
        }
        if ok {
            Ok(())
        } else {
            Err(Failure::Request(format!(
                "the drill did not hold: {} failure(s), {lost} lost, {doubled} doubled",
                self.failed.len()
            )))
        }
    }

    fn print_json(&self, measures: &[(&str, Distribution)], ok: bool) {
        let mut m = serde_json::Map::new();
        for (name, d) in measures {
            m.insert(
                format!("{name}_ms"),
                serde_json::json!({"n": d.n, "p50": ms(d.p50), "p99": ms(d.p99), "max": ms(d.max)}),
            );
        }
        let doc = serde_json::json!({
            "scenario": format!("{:?}", self.a.scenario),
            "rounds": self.rounds.len(),
            "measures": m,
            "lost": self.tally.lost,
            "doubled": self.tally.doubled,
            "failures": self.failed,
            "ok": ok,
        });
        println!("{doc}");
    }

    fn print_table(&self, measures: &[(&str, Distribution)]) {
        println!(
            "scenario {:?}, {} rounds",
            self.a.scenario,
            self.rounds.len()
        );
        println!(
            "{:<22} {:>5} {:>10} {:>10} {:>10}",
            "measure", "n", "p50 ms", "p99 ms", "max ms"
        );
        let f = |d: Option<Duration>| {
            d.map_or("-".to_owned(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
        };
        for (name, d) in measures {
            println!(
                "{:<22} {:>5} {:>10} {:>10} {:>10}",
                name,
                d.n,
                f(d.p50),
                f(d.p99),
                f(d.max)
            );
        }
        let Tally { lost, doubled } = self.tally;
        println!("lost {lost}, doubled {doubled}");
        for f in &self.failed {
            println!("FAILED {f}");
        }
    }
}

/// Refuses, injecting nothing, a leader drill on fewer than 3 masters, a cluster without
/// the workers the probe needs, and any process that does not accept drills with this
/// token (all are checked first, so a refusal leaves the cluster untouched). Returns every
/// master's address and the ALIVE workers.
async fn preflight(
    a: &DrillArgs,
    client: &MasterClient,
    token: &str,
) -> Result<(Vec<String>, usize), Failure> {
    let leader_scenario = a.scenario != Scenario::KillWorker;
    let state = client.state().await?;
    if leader_scenario && state.masters.len() < 3 {
        return Err(Failure::Request(format!(
            "this cluster has {} master(s): a leader drill needs at least 3 (Raft) so a majority survives; nothing was injected",
            state.masters.len()
        )));
    }
    let alive_workers = MasterView::from(&state).alive_workers;
    if alive_workers == 0 || (a.scenario == Scenario::KillWorker && alive_workers < 2) {
        return Err(Failure::Request(
            "a drill needs an ALIVE worker for its probe app (kill-worker needs two, one to take over); nothing was injected"
                .into(),
        ));
    }
    let masters: Vec<String> = state.masters.iter().map(|m| m.address.clone()).collect();
    for m in &masters {
        inject(m, token, "check", Duration::ZERO).await?;
    }
    if !leader_scenario {
        for w in &state.workers {
            let addr = w.info.identity.addr();
            inject(&addr, token, "check", Duration::ZERO).await?;
        }
    }
    Ok((masters, alive_workers))
}
