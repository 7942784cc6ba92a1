//! The workload every round runs under: a submitter registering small cluster-mode
//! sleeping apps with unique names, and a mutator killing and scaling apps it was told
//! exist. Every request is recorded with its outcome: acknowledged, refused (the leader
//! said no, or no leader was ever reached for a submission, which is never retried once
//! it may have arrived), or uncertain (it may or may not have taken effect).

use crate::rng::Rng;
use crate::shared::Shared;
use hearth_client::{ClientError, MasterClient, SleepingApp};
use hearth_core::AppId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Acked,
    Refused(String),
    Uncertain(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Acked => "acked",
            Outcome::Refused(_) => "refused",
            Outcome::Uncertain(_) => "uncertain",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Submit,
    Kill,
    Scale,
}

/// One request and what came of it.
#[derive(Clone, Debug)]
pub struct Req {
    pub kind: Kind,
    pub round: usize,
    pub start: Instant,
    pub end: Instant,
    pub outcome: Outcome,
    /// Submit: the app's name.
    pub name: String,
    /// The app's id (submit: when acknowledged).
    pub app: Option<String>,
    /// Scale: the executor target.
    pub target: u32,
}

#[derive(Default)]
pub struct Ledger {
    pub reqs: Vec<Req>,
    /// Every name ever submitted, with the app's cores (one per executor).
    pub names: BTreeMap<String, u32>,
    /// Acknowledged apps, oldest first: (id, name).
    pub acked: Vec<(String, String)>,
    /// Apps whose kill was acknowledged.
    pub killed: BTreeSet<String>,
}

impl Ledger {
    pub fn max_cores(&self, name: &str) -> Option<u32> {
        self.names.get(name).copied()
    }

    /// The first acknowledged write that was sent at or after `t0`: when it was answered.
    pub fn first_ack_after(&self, t0: Instant) -> Option<Instant> {
        (self.reqs.iter())
            .filter(|r| r.outcome == Outcome::Acked && r.start >= t0)
            .map(|r| r.end)
            .min()
    }
}

pub struct Workload {
    pub ledger: Arc<Mutex<Ledger>>,
    paused: Arc<AtomicBool>,
    inflight: Arc<AtomicUsize>,
    rt: tokio::runtime::Runtime,
}

/// What the workload's pace is: a submission every ~`submit_every`, a kill or scale every
/// ~`mutate_every` (each 0.5–1.5 times that).
pub struct Pace {
    pub submit_every: Duration,
    pub mutate_every: Duration,
}

fn client(addrs: &[String]) -> MasterClient {
    let mut c = MasterClient::new(addrs.to_vec());
    c.attempt_timeout = Duration::from_secs(2);
    c.deadline = Duration::from_secs(10);
    c
}

impl Workload {
    pub fn start(shared: Arc<Shared>, seed: u64, rng: &mut Rng, pace: Pace) -> Workload {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let w = Workload {
            ledger: Arc::new(Mutex::new(Ledger::default())),
            paused: Arc::new(AtomicBool::new(false)),
            inflight: Arc::new(AtomicUsize::new(0)),
            rt,
        };
        let counter = Arc::new(AtomicU64::new(0));
        let ctx = Ctx {
            shared: shared.clone(),
            ledger: w.ledger.clone(),
            paused: w.paused.clone(),
            inflight: w.inflight.clone(),
        };
        let (c, mut r) = (ctx.clone(), rng.fork());
        let every = pace.submit_every;
        w.rt.spawn(async move {
            let client = client(&c.shared.addr);
            while !c.shared.stopped() {
                if c.begin().await {
                    let k = counter.fetch_add(1, Ordering::SeqCst);
                    submit(&c, &client, &mut r, format!("chaos-{seed}-{k}")).await;
                    c.inflight.fetch_sub(1, Ordering::SeqCst);
                }
                tokio::time::sleep(jitter(&mut r, every)).await;
            }
        });
        let (c, mut r) = (ctx, rng.fork());
        let every = pace.mutate_every;
        w.rt.spawn(async move {
            let client = client(&c.shared.addr);
            while !c.shared.stopped() {
                if c.begin().await {
                    mutate(&c, &client, &mut r).await;
                    c.inflight.fetch_sub(1, Ordering::SeqCst);
                }
                tokio::time::sleep(jitter(&mut r, every)).await;
            }
        });
        w
    }

    /// Stops sending new requests and waits (at most `within`) for those in flight.
    pub fn pause(&self, within: Duration) -> bool {
        self.paused.store(true, Ordering::SeqCst);
        let start = Instant::now();
        while self.inflight.load(Ordering::SeqCst) > 0 {
            if start.elapsed() > within {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

fn jitter(r: &mut Rng, every: Duration) -> Duration {
    let ms = every.as_millis() as u64;
    r.millis(ms / 2, ms + ms / 2)
}

#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    ledger: Arc<Mutex<Ledger>>,
    paused: Arc<AtomicBool>,
    inflight: Arc<AtomicUsize>,
}

impl Ctx {
    /// Counts a request in flight unless the workload is paused.
    async fn begin(&self) -> bool {
        if self.paused.load(Ordering::SeqCst) {
            return false;
        }
        self.inflight.fetch_add(1, Ordering::SeqCst);
        if self.paused.load(Ordering::SeqCst) {
            self.inflight.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    fn record(&self, req: Req) {
        self.ledger.lock().unwrap().reqs.push(req);
    }
}

async fn submit(c: &Ctx, client: &MasterClient, r: &mut Rng, name: String) {
    let executors = r.between(1, 2) as u32;
    let app = SleepingApp::cluster()
        .named(&name)
        .executors(executors)
        .sleeping(r.between(8, 40));
    let (desc, driver) = app.describe();
    c.ledger
        .lock()
        .unwrap()
        .names
        .insert(name.clone(), executors);
    let round = c.shared.round();
    let start = Instant::now();
    let res = client.register_app(&desc, driver.as_ref(), None).await;
    let end = Instant::now();
    let (outcome, id) = match res {
        Ok((id, _)) => (Outcome::Acked, Some(id.0)),
        Err(e @ ClientError::Unknown { .. }) => (Outcome::Uncertain(e.to_string()), None),
        Err(e) => (Outcome::Refused(e.to_string()), None),
    };
    if let Some(id) = &id {
        c.ledger
            .lock()
            .unwrap()
            .acked
            .push((id.clone(), name.clone()));
    }
    c.record(Req {
        kind: Kind::Submit,
        round,
        start,
        end,
        outcome,
        name,
        app: id,
        target: 0,
    });
}

/// A kill or a scale of one of the 20 newest acknowledged apps not yet killed.
async fn mutate(c: &Ctx, client: &MasterClient, r: &mut Rng) {
    let target = {
        let l = c.ledger.lock().unwrap();
        let live: Vec<&(String, String)> = (l.acked.iter().rev())
            .filter(|(id, _)| !l.killed.contains(id))
            .take(20)
            .collect();
        if live.is_empty() {
            return;
        }
        (*r.pick(&live)).clone()
    };
    let (id, name) = target;
    let app = AppId::from(id.as_str());
    let round = c.shared.round();
    let kill = r.below(2) == 0;
    let n = r.between(0, 2) as u32;
    let start = Instant::now();
    let res = if kill {
        client.kill_app(&app).await.map(|_| ())
    } else {
        client.scale_app(&app, n).await
    };
    let end = Instant::now();
    // Kills and scales are retried by the client (they are idempotent), so a lost
    // answer followed by no leader may still have taken effect: only the leader's
    // refusal is a sure "no".
    let outcome = match res {
        Ok(()) => Outcome::Acked,
        Err(e @ ClientError::Refused(_)) => Outcome::Refused(e.to_string()),
        Err(e) => Outcome::Uncertain(e.to_string()),
    };
    if kill && outcome == Outcome::Acked {
        c.ledger.lock().unwrap().killed.insert(id.clone());
    }
    c.record(Req {
        kind: if kill { Kind::Kill } else { Kind::Scale },
        round,
        start,
        end,
        outcome,
        name,
        app: Some(id),
        target: n,
    });
}
