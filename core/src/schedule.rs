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
    schedule_up_to(state, policy, seed, usize::MAX)
}

/// How many placements the leader commits in one pass, i.e. in one Raft entry. Every
/// master receives, fsyncs, decodes and applies a pass as one piece; an entry for 100,000
/// executors (megabytes) kept a follower busy past the election timeout, and the
/// followers deposed the leader (issue 15, 5,000 workers). 1,000 placements are ~100 KB
/// and a few milliseconds to apply; the leader runs the next pass as soon as this one is
/// committed, so a large demand is placed at the same rate, in steps.
pub const PLACEMENTS_PER_PASS: usize = 1_000;

/// [`schedule`], stopping at `limit` placements: the first `limit` of what [`schedule`]
/// returns (so each is still valid: nothing over-committed). Whatever is left is placed
/// by the next pass, over the state with these applied.
pub fn schedule_up_to(
    state: &ClusterState,
    policy: &Policy,
    seed: u64,
    limit: usize,
) -> Vec<Placement> {
    if state.role != MasterRole::Alive || limit == 0 {
        return Vec::new();
    }
    let mut slots: Vec<Slot<'_>> = state
        .workers
        .values()
        .filter(|w| w.state == WorkerState::Alive)
        .map(|w| Slot {
            id: &w.identity.id,
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
        if out.len() >= limit {
            break;
        }
        schedule_app(
            app,
            policy,
            &mut slots,
            &mut ranking,
            &mut scratch,
            &mut out,
        );
    }
    out.truncate(limit);
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
    /// The app's candidate workers (slot indices), in policy order.
    usable: Vec<usize>,
    /// Per candidate (same positions as `usable`): cores and executors assigned.
    assigned_cores: Vec<u32>,
    assigned_execs: Vec<u32>,
}

/// Places one app's executors: assign cores to candidate workers, then emit placements.
fn schedule_app(
    app: &AppInfo,
    policy: &Policy,
    slots: &mut [Slot<'_>],
    ranking: &mut Ranking,
    s: &mut Scratch,
    out: &mut Vec<Placement>,
) {
    let Some(demand) = Demand::of(app, policy) else {
        return;
    };
    // Each candidate that receives anything receives at least one executor, and in either
    // spread mode receivers are a prefix of the candidates in policy order; so only the
    // first `max_receivers` candidates matter.
    s.usable.clear();
    s.usable.extend(
        ranking
            .order
            .iter()
            .map(|&(_, i)| i)
            .filter(|&i| demand.fits(&slots[i]))
            .take(demand.max_receivers()),
    );
    if s.usable.is_empty() {
        return;
    }
    assign_cores(&demand, policy.spread_out_apps, slots, s);
    emit_placements(app, &demand, slots, ranking, s, out);
}

/// What one app may still get in this pass.
struct Demand {
    /// `cores_per_executor`; `None`: one executor per worker holding every core assigned
    /// to the app there.
    per_exec: Option<u32>,
    /// Cores handed out at a time: one executor's worth (1 without `cores_per_executor`).
    min_cores: u32,
    /// Memory of each executor, in MiB.
    mem: u64,
    /// Cores it may still get: its cap (else the policy's default cap) minus what it holds.
    cores_left: u32,
    /// Executors it holds.
    existing: u64,
    /// Executors it may hold (its dynamic-allocation target).
    limit: u64,
}

impl Demand {
    /// `None` when the app can take no executor now (its cap or its target reached).
    fn of(app: &AppInfo, policy: &Policy) -> Option<Self> {
        let per_exec = app.desc.cores_per_executor;
        let min_cores = per_exec.unwrap_or(1);
        let cap = app.desc.max_cores.or(policy.default_cores);
        let cores_left = match cap {
            Some(c) => c.saturating_sub(app.cores_granted()),
            None => u32::MAX,
        };
        let existing = app.executors.len() as u64;
        let limit = app.executor_limit.map_or(u64::MAX, u64::from);
        if cores_left < min_cores || existing >= limit {
            return None;
        }
        Some(Demand {
            per_exec,
            min_cores,
            mem: app.desc.memory_per_executor_mb,
            cores_left,
            existing,
            limit,
        })
    }

    fn one_per_worker(&self) -> bool {
        self.per_exec.is_none()
    }

    /// The worker has room for one executor.
    fn fits(&self, slot: &Slot<'_>) -> bool {
        slot.cores_free >= self.min_cores && slot.memory_free >= self.mem
    }

    /// At most this many workers can receive an executor.
    fn max_receivers(&self) -> usize {
        let most = u64::from(self.cores_left / self.min_cores).min(self.limit - self.existing);
        usize::try_from(most).unwrap_or(usize::MAX)
    }
}

/// Assign cores: how many cores (and so executors) go to each candidate in `s.usable`,
/// into `s.assigned_cores` and `s.assigned_execs`. Spark's rules: cores go one
/// executor's worth at a time, one step per worker per round (`spread_out`) or filling a
/// worker before the next, while the app has cores left, the worker has room and the app
/// is under its executor target.
fn assign_cores(demand: &Demand, spread_out: bool, slots: &[Slot<'_>], s: &mut Scratch) {
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
    let mut a = Assignment {
        demand,
        slots,
        usable: &s.usable,
        cores: &mut s.assigned_cores,
        execs: &mut s.assigned_execs,
        to_assign: demand
            .cores_left
            .min(u32::try_from(free_sum).unwrap_or(u32::MAX)),
        total_execs: demand.existing,
    };
    let mut free: Vec<usize> = (0..n).filter(|&p| a.can_launch(p)).collect();
    while !free.is_empty() {
        for &pos in &free {
            while a.can_launch(pos) {
                a.launch(pos);
                if spread_out {
                    break;
                }
            }
        }
        free.retain(|&p| a.can_launch(p));
    }
}

/// An assignment in progress over one app's candidates.
struct Assignment<'a, 's> {
    demand: &'a Demand,
    slots: &'a [Slot<'s>],
    usable: &'a [usize],
    /// Per candidate: cores and executors assigned so far.
    cores: &'a mut [u32],
    execs: &'a mut [u32],
    /// Cores still to hand out.
    to_assign: u32,
    /// The app's executors, existing and assigned.
    total_execs: u64,
}

impl Assignment<'_, '_> {
    /// Whether candidate `pos` can take one more step (Spark's `canLaunchExecutorForApp`).
    fn can_launch(&self, pos: usize) -> bool {
        let d = self.demand;
        let slot = &self.slots[self.usable[pos]];
        let keep = self.to_assign >= d.min_cores;
        let enough_cores = slot.cores_free - self.cores[pos] >= d.min_cores;
        let new_exec = !d.one_per_worker() || self.execs[pos] == 0;
        if new_exec {
            let enough_mem = slot.memory_free - u64::from(self.execs[pos]) * d.mem >= d.mem;
            keep && enough_cores && enough_mem && self.total_execs < d.limit
        } else {
            keep && enough_cores
        }
    }

    /// Gives candidate `pos` one step: a new executor's cores, or (one executor per
    /// worker) one more core for its executor there.
    fn launch(&mut self, pos: usize) {
        let d = self.demand;
        self.to_assign -= d.min_cores;
        self.cores[pos] += d.min_cores;
        if d.one_per_worker() {
            if self.execs[pos] == 0 {
                self.total_execs += 1;
            }
            self.execs[pos] = 1;
        } else {
            self.execs[pos] += 1;
            self.total_execs += 1;
        }
    }
}

/// Emit placements: turns the cores assigned to each candidate into executors, numbered
/// on from the app's next id in candidate order, and takes them off the slots (keeping
/// the ranking in step).
fn emit_placements(
    app: &AppInfo,
    demand: &Demand,
    slots: &mut [Slot<'_>],
    ranking: &mut Ranking,
    s: &Scratch,
    out: &mut Vec<Placement>,
) {
    let mem = demand.mem;
    let mut next_id = app.next_executor_id;
    for (&i, &cores) in s.usable.iter().zip(&s.assigned_cores) {
        if cores == 0 {
            continue;
        }
        let (count, cores_each) = match demand.per_exec {
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
