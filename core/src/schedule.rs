//! The scheduler: which waiting driver and which executor goes on which worker.
//!
//! ## Problem
//! Given the state (workers with free cores and memory, waiting drivers, active apps with
//! what they have and what they may still get) and a [`Policy`], return placements such that:
//! - only ALIVE workers receive anything (never DEAD, DECOMMISSIONED or UNKNOWN), and only
//!   when the master itself is ALIVE;
//! - no worker is over-committed, counting everything placed in the same pass;
//! - drivers go first, in submission order: round-robin over the alive workers shuffled by
//!   `seed` (`spread_out_drivers`), else first fit in worker-id order; at most
//!   `max_drivers` placed drivers;
//! - then executors, apps FIFO by registration. An app gets executors only while its
//!   driver is reachable, its remaining cores (its cap, else the policy's default cap,
//!   minus what it holds) cover one executor, and it is under its executor target.
//!   Candidate workers are those that fit one executor, ordered by
//!   [`WorkerSelection`]; cores are handed out one executor's worth at a time, one step
//!   per worker per round (`spread_out_apps`) or filling a worker before the next.
//!   Without `cores_per_executor` an app gets one executor per worker holding every core
//!   assigned to it there (Spark's rule).
//!
//! ## Post-conditions (checked by property tests)
//! No over-commit; no placement on a non-ALIVE worker; stability: once the placements are
//! applied, scheduling again with any seed places nothing new.

use crate::ids::{AppId, DriverId, ExecutorId, WorkerId};
use crate::rng::shuffle;
use crate::state::{AppInfo, AppState, ClusterState, DriverState, MasterRole, WorkerState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How candidate workers are ordered for executors (Spark's `workerSelectionPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerSelection {
    #[default]
    CoresFreeDesc,
    CoresFreeAsc,
    MemoryFreeDesc,
    MemoryFreeAsc,
    WorkerId,
}

/// The leader's scheduling settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Spread an app's executors over as many workers as possible (default) rather than
    /// filling one worker first.
    pub spread_out_apps: bool,
    /// Place drivers round-robin over shuffled workers (default) rather than first fit.
    pub spread_out_drivers: bool,
    pub worker_selection: WorkerSelection,
    /// Core cap for apps that set none (`spark.deploy.defaultCores`); `None` = unlimited.
    pub default_cores: Option<u32>,
    /// At most this many placed drivers at once; `None` = unlimited.
    pub max_drivers: Option<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            spread_out_apps: true,
            spread_out_drivers: true,
            worker_selection: WorkerSelection::CoresFreeDesc,
            default_cores: None,
            max_drivers: None,
        }
    }
}

/// One scheduling decision, recorded by [`Command::Place`](crate::Command::Place).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Placement {
    Driver {
        driver: DriverId,
        worker: WorkerId,
    },
    Executor {
        app: AppId,
        executor: ExecutorId,
        worker: WorkerId,
        cores: u32,
        memory_mb: u64,
    },
}

/// A worker's free resources during one pass.
struct Slot<'s> {
    id: &'s WorkerId,
    cores_free: u32,
    memory_free: u64,
}

/// Computes placements for everything that can be placed now. Pure: the same state,
/// policy and seed always give the same answer.
pub fn schedule(state: &ClusterState, policy: &Policy, seed: u64) -> Vec<Placement> {
    if state.role != MasterRole::Alive {
        return Vec::new();
    }
    let mut slots: Vec<Slot<'_>> = state
        .workers
        .values()
        .filter(|w| w.state == WorkerState::Alive)
        .map(|w| Slot {
            id: &w.id,
            cores_free: w.cores_free(),
            memory_free: w.memory_free_mb(),
        })
        .collect();
    let mut out = Vec::new();
    if slots.is_empty() {
        return out;
    }
    schedule_drivers(state, policy, seed, &mut slots, &mut out);
    let mut apps: Vec<&AppInfo> = state
        .apps
        .values()
        .filter(|a| {
            matches!(a.state, AppState::Waiting | AppState::Running) && a.driver_url.is_some()
        })
        .collect();
    apps.sort_by_key(|a| a.seq);
    let mut ranking = Ranking::new(policy.worker_selection, &slots);
    let mut scratch = Scratch::default();
    for app in apps {
        schedule_app(
            app,
            policy,
            &mut slots,
            &mut ranking,
            &mut scratch,
            &mut out,
        );
    }
    out
}

fn schedule_drivers(
    state: &ClusterState,
    policy: &Policy,
    seed: u64,
    slots: &mut [Slot<'_>],
    out: &mut Vec<Placement>,
) {
    let mut waiting: Vec<_> = state
        .drivers
        .values()
        .filter(|d| d.state == DriverState::Submitted && d.worker.is_none())
        .collect();
    if waiting.is_empty() {
        return;
    }
    waiting.sort_by_key(|d| d.seq);
    let mut placed = state
        .drivers
        .values()
        .filter(|d| d.worker.is_some())
        .count() as u64;
    let mut order: Vec<usize> = (0..slots.len()).collect();
    if policy.spread_out_drivers {
        shuffle(&mut order, seed);
    }
    let mut pos = 0;
    for d in waiting {
        if policy.max_drivers.is_some_and(|m| placed >= u64::from(m)) {
            break;
        }
        if !policy.spread_out_drivers {
            pos = 0;
        }
        for _ in 0..order.len() {
            let slot = &mut slots[order[pos]];
            pos = (pos + 1) % order.len();
            if slot.cores_free >= d.desc.cores && slot.memory_free >= d.desc.memory_mb {
                slot.cores_free -= d.desc.cores;
                slot.memory_free -= d.desc.memory_mb;
                out.push(Placement::Driver {
                    driver: d.id.clone(),
                    worker: slot.id.clone(),
                });
                placed += 1;
                break;
            }
        }
    }
}

/// The workers that can still take something, in the policy's order, kept up to date as
/// executors are handed out. Each app then looks only at the first few candidates instead
/// of filtering and sorting every worker.
struct Ranking {
    sel: WorkerSelection,
    order: BTreeSet<(i128, usize)>,
}

impl Ranking {
    fn new(sel: WorkerSelection, slots: &[Slot<'_>]) -> Self {
        let mut r = Ranking {
            sel,
            order: BTreeSet::new(),
        };
        for i in 0..slots.len() {
            r.insert(slots, i);
        }
        r
    }

    /// Ordering key: the policy's measure, ties broken by worker id (slot index).
    fn key(&self, slots: &[Slot<'_>], i: usize) -> (i128, usize) {
        let s = &slots[i];
        let k = match self.sel {
            WorkerSelection::CoresFreeDesc => -i128::from(s.cores_free),
            WorkerSelection::CoresFreeAsc => i128::from(s.cores_free),
            WorkerSelection::MemoryFreeDesc => -i128::from(s.memory_free),
            WorkerSelection::MemoryFreeAsc => i128::from(s.memory_free),
            WorkerSelection::WorkerId => 0,
        };
        (k, i)
    }

    /// A worker with no free core can take nothing and leaves the ranking.
    fn insert(&mut self, slots: &[Slot<'_>], i: usize) {
        if slots[i].cores_free > 0 {
            self.order.insert(self.key(slots, i));
        }
    }

    fn remove(&mut self, slots: &[Slot<'_>], i: usize) {
        self.order.remove(&self.key(slots, i));
    }
}

/// Buffers reused across apps in one pass.
#[derive(Default)]
struct Scratch {
    usable: Vec<usize>,
    assigned_cores: Vec<u32>,
    assigned_execs: Vec<u32>,
}

fn schedule_app(
    app: &AppInfo,
    policy: &Policy,
    slots: &mut [Slot<'_>],
    ranking: &mut Ranking,
    s: &mut Scratch,
    out: &mut Vec<Placement>,
) {
    let per_exec = app.desc.cores_per_executor;
    let min_cores = per_exec.unwrap_or(1);
    let one_per_worker = per_exec.is_none();
    let mem = app.desc.memory_per_executor_mb;
    let cap = app.desc.max_cores.or(policy.default_cores);
    let mut cores_left = match cap {
        Some(c) => c.saturating_sub(app.cores_granted()),
        None => u32::MAX,
    };
    let existing = app.executors.len() as u64;
    let limit = app.executor_limit.map_or(u64::MAX, u64::from);
    if cores_left < min_cores || existing >= limit {
        return;
    }
    // Each candidate that receives anything receives at least one executor, and in either
    // spread mode receivers are a prefix of the candidates in policy order; so only the
    // first `need` candidates matter.
    let need = (u64::from(cores_left / min_cores)).min(limit - existing);
    let need = usize::try_from(need).unwrap_or(usize::MAX);
    s.usable.clear();
    s.usable.extend(
        ranking
            .order
            .iter()
            .map(|&(_, i)| i)
            .filter(|&i| slots[i].cores_free >= min_cores && slots[i].memory_free >= mem)
            .take(need),
    );
    if s.usable.is_empty() {
        return;
    }
    let n = s.usable.len();
    s.assigned_cores.clear();
    s.assigned_cores.resize(n, 0);
    s.assigned_execs.clear();
    s.assigned_execs.resize(n, 0);
    let free_sum: u64 = s
        .usable
        .iter()
        .map(|&i| u64::from(slots[i].cores_free))
        .sum();
    cores_left = cores_left.min(u32::try_from(free_sum).unwrap_or(u32::MAX));
    let mut to_assign = cores_left;
    let mut total_execs = existing;

    let can_launch =
        |pos: usize, to_assign: u32, total_execs: u64, ac: &[u32], ae: &[u32]| -> bool {
            let slot = &slots[s.usable[pos]];
            let keep = to_assign >= min_cores;
            let enough_cores = slot.cores_free - ac[pos] >= min_cores;
            let new_exec = !one_per_worker || ae[pos] == 0;
            if new_exec {
                let enough_mem = slot.memory_free - u64::from(ae[pos]) * mem >= mem;
                keep && enough_cores && enough_mem && total_execs < limit
            } else {
                keep && enough_cores
            }
        };

    let mut free: Vec<usize> = (0..n)
        .filter(|&p| {
            can_launch(
                p,
                to_assign,
                total_execs,
                &s.assigned_cores,
                &s.assigned_execs,
            )
        })
        .collect();
    while !free.is_empty() {
        for &pos in &free {
            while can_launch(
                pos,
                to_assign,
                total_execs,
                &s.assigned_cores,
                &s.assigned_execs,
            ) {
                to_assign -= min_cores;
                s.assigned_cores[pos] += min_cores;
                if one_per_worker {
                    if s.assigned_execs[pos] == 0 {
                        total_execs += 1;
                    }
                    s.assigned_execs[pos] = 1;
                } else {
                    s.assigned_execs[pos] += 1;
                    total_execs += 1;
                }
                if policy.spread_out_apps {
                    break;
                }
            }
        }
        free.retain(|&p| {
            can_launch(
                p,
                to_assign,
                total_execs,
                &s.assigned_cores,
                &s.assigned_execs,
            )
        });
    }

    let mut next_id = app.next_executor_id;
    for pos in 0..n {
        let cores = s.assigned_cores[pos];
        if cores == 0 {
            continue;
        }
        let i = s.usable[pos];
        let (count, cores_each) = match per_exec {
            Some(c) => (cores / c, c),
            None => (1, cores),
        };
        for _ in 0..count {
            out.push(Placement::Executor {
                app: app.id.clone(),
                executor: next_id,
                worker: slots[i].id.clone(),
                cores: cores_each,
                memory_mb: mem,
            });
            next_id += 1;
        }
        ranking.remove(slots, i);
        slots[i].cores_free -= cores_each * count;
        slots[i].memory_free -= mem * u64::from(count);
        ranking.insert(slots, i);
    }
}
