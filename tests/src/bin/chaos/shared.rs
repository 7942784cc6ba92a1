//! What the main loop, the samplers and the workload share: the run's clock, the round,
//! which masters a fault impairs, the latest sample of each master and the violations.

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One broken promise, with when and where it was seen.
#[derive(Clone, Debug)]
pub struct Violation {
    pub round: usize,
    pub at_ms: u64,
    pub check: String,
    pub detail: String,
}

impl Violation {
    pub fn to_json(&self) -> Value {
        json!({"round": self.round, "at_ms": self.at_ms, "check": self.check, "detail": self.detail})
    }
}

/// One master's answer to the sampler: `WhoLeads` and `/readyz`.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When the sampler asked (answers to older questions are not evidence of now).
    pub asked: Instant,
    pub term: u64,
    pub leader: Option<String>,
    /// It acts as leader (has a `Master`), with `leader` naming itself.
    pub leads: bool,
    /// `/readyz` said ALIVE.
    pub alive: bool,
}

/// The current round's availability measure.
#[derive(Clone, Debug, Default)]
pub struct Meas {
    pub t0: Option<Instant>,
    /// First answer (asked after `t0`) of an ALIVE leader no fault impairs.
    pub alive_at: Option<Instant>,
}

/// Per app (by id), what the leader's `/json` last said: its name and the executors it
/// may run at most (the smaller of its cores and its executor limit).
#[derive(Clone, Debug)]
pub struct AppLimit {
    pub name: String,
    pub limit: Option<u32>,
}

pub struct Shared {
    pub start: Instant,
    pub round: AtomicUsize,
    pub stop: AtomicBool,
    /// Master i is killed, stopped or cut off from its peers now.
    pub impaired: Vec<AtomicBool>,
    /// Master i's gRPC address as its peers and clients know it.
    pub addr: Vec<String>,
    pub http: Vec<u16>,
    pub latest: Mutex<Vec<Option<Sample>>>,
    pub meas: Mutex<Meas>,
    pub apps: Mutex<BTreeMap<String, AppLimit>>,
    /// Term -> the masters seen claiming to lead in it.
    pub claims: Mutex<BTreeMap<u64, Vec<usize>>>,
    /// The most launched processes of this run the `/proc` sampler saw at once, and
    /// how many `/proc` samples and leader `/json` samples were checked: evidence the
    /// checks looked at something.
    pub max_procs: AtomicUsize,
    pub proc_samples: AtomicUsize,
    pub json_samples: AtomicUsize,
    violations: Mutex<Vec<Violation>>,
    reported: Mutex<HashSet<String>>,
}

impl Shared {
    pub fn new(addr: Vec<String>, http: Vec<u16>) -> Self {
        let n = addr.len();
        Shared {
            start: Instant::now(),
            round: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            impaired: (0..n).map(|_| AtomicBool::new(false)).collect(),
            addr,
            http,
            latest: Mutex::new(vec![None; n]),
            meas: Mutex::new(Meas::default()),
            apps: Mutex::new(BTreeMap::new()),
            claims: Mutex::new(BTreeMap::new()),
            max_procs: AtomicUsize::new(0),
            proc_samples: AtomicUsize::new(0),
            json_samples: AtomicUsize::new(0),
            violations: Mutex::new(Vec::new()),
            reported: Mutex::new(HashSet::new()),
        }
    }

    pub fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_millis() as u64
    }

    pub fn now_ms(&self) -> u64 {
        self.ms(Instant::now())
    }

    pub fn round(&self) -> usize {
        self.round.load(Ordering::SeqCst)
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn set_impaired(&self, i: usize, on: bool) {
        self.impaired[i].store(on, Ordering::SeqCst);
    }

    pub fn impaired(&self, i: usize) -> bool {
        self.impaired[i].load(Ordering::SeqCst)
    }

    /// Records a violation (printed at once on stderr).
    pub fn violation(&self, check: &str, detail: String) {
        let v = Violation {
            round: self.round(),
            at_ms: self.now_ms(),
            check: check.to_owned(),
            detail,
        };
        eprintln!(
            "VIOLATION round {} at {} ms [{}]: {}",
            v.round, v.at_ms, v.check, v.detail
        );
        self.violations.lock().unwrap().push(v);
    }

    /// [`violation`](Self::violation) once per `key` (a sampler sees the same fault
    /// every 100 ms).
    pub fn violation_once(&self, key: String, check: &str, detail: String) {
        if self.reported.lock().unwrap().insert(key) {
            self.violation(check, detail);
        }
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.violations.lock().unwrap().clone()
    }

    /// The ALIVE leader according to samples asked after `since` (no older than
    /// `fresh`), if exactly one master is one and it is not impaired.
    pub fn alive_leader(&self, since: Instant, fresh: Duration) -> Option<usize> {
        let latest = self.latest.lock().unwrap();
        let leaders: Vec<usize> = latest
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let s = s.as_ref()?;
                (s.asked >= since
                    && s.asked.elapsed() <= fresh
                    && s.leads
                    && s.alive
                    && !self.impaired(i))
                .then_some(i)
            })
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }
}
