//! What this worker runs and ran: one entry per executor `(app, id)` or driver id, kept
//! after the process ends so that a retried launch is recognised as a duplicate.
//!
//! The table is the worker's own observation: the registration report is built from it
//! ([`Table::snapshot`]), launches are made idempotent by it ([`Table::insert`]) and kills
//! are routed through it ([`Table::kill`]).
//!
//! Ended entries are kept for the last [`Table::DEFAULT_KEEP_FINISHED`] (by default)
//! processes that ended, then forgotten oldest first; live ones are never forgotten. A
//! launch is refused as a duplicate while its id is live or among those last ended ones:
//! a retried launch (the master's queue retries until answered, so a retry follows the
//! first delivery by seconds) is recognised unless that many other processes ended on
//! this worker in between. Nothing about ended ids survives a worker restart, and need
//! not: a restarted worker has a new id, and commands addressed to the old one are
//! refused.

use hearth_core::{AppId, DriverId, ExecutorId, ExecutorState, ReportedExecutor};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use tokio::sync::watch;

/// A process the master can name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ProcId {
    Executor { app: AppId, executor: ExecutorId },
    Driver(DriverId),
}

impl fmt::Display for ProcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcId::Executor { app, executor } => write!(f, "executor {app}/{executor}"),
            ProcId::Driver(d) => write!(f, "driver {d}"),
        }
    }
}

/// Why a process is being stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KillReason {
    /// The master asked (reported as KILLED).
    Master,
    /// The worker is shutting down (not reported: the master learns from the worker's
    /// absence, as after a crash).
    Shutdown,
}

/// Where a process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Accepted, not yet started.
    Launching,
    /// Its command was started.
    Running,
    /// Gone (or never started: a kill that came before its launch).
    Ended,
}

struct Entry {
    phase: Phase,
    kill: watch::Sender<Option<KillReason>>,
}

/// What a kill request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KillAck {
    /// The process is being stopped now.
    Stopping,
    /// Nothing to do: unknown, already ended, or already being stopped.
    Duplicate,
}

pub(crate) struct Table {
    inner: Mutex<Inner>,
    keep_finished: usize,
    /// Bumped whenever what [`Table::snapshot`] reports changes.
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<ProcId, Entry>,
    /// Ended entries, oldest first.
    finished: VecDeque<ProcId>,
}

impl Inner {
    /// Marks `id` (present) ended and forgets the oldest ended entries beyond `keep`.
    fn ended(&mut self, id: &ProcId, keep: usize) {
        self.finished.push_back(id.clone());
        while self.finished.len() > keep {
            let Some(old) = self.finished.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&old)
                .is_some_and(|e| e.phase == Phase::Ended)
            {
                self.entries.remove(&old);
            }
        }
    }
}

impl Default for Table {
    fn default() -> Self {
        Table::new(Table::DEFAULT_KEEP_FINISHED)
    }
}

impl Table {
    /// Ended entries kept for idempotency.
    pub const DEFAULT_KEEP_FINISHED: usize = 1000;

    /// A table remembering the last `keep_finished` (at least 1) ended processes.
    pub fn new(keep_finished: usize) -> Table {
        Table {
            inner: Mutex::new(Inner::default()),
            keep_finished: keep_finished.max(1),
            changed: watch::Sender::new(0),
        }
    }

    /// Notified whenever what [`Table::snapshot`] reports changes (a process launched,
    /// running, or ended).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves a consistent map (every change is a
        // single insert or field write), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new process as LAUNCHING and returns the receiver its runner watches for
    /// kill requests, or `None` if this id is already known (running or ran): a
    /// duplicate launch that must start nothing.
    pub fn insert(&self, id: ProcId) -> Option<watch::Receiver<Option<KillReason>>> {
        let mut inner = self.lock();
        let entries = &mut inner.entries;
        if entries.contains_key(&id) {
            return None;
        }
        let (kill, rx) = watch::channel(None);
        entries.insert(
            id,
            Entry {
                phase: Phase::Launching,
                kill,
            },
        );
        drop(inner);
        self.bump();
        Some(rx)
    }

    pub fn set_running(&self, id: &ProcId) {
        let mut inner = self.lock();
        if let Some(e) = inner.entries.get_mut(id) {
            if e.phase == Phase::Launching {
                e.phase = Phase::Running;
                drop(inner);
                self.bump();
            }
        }
    }

    pub fn set_ended(&self, id: &ProcId) {
        let mut inner = self.lock();
        let Some(e) = inner.entries.get_mut(id) else {
            return;
        };
        if e.phase != Phase::Ended {
            e.phase = Phase::Ended;
            inner.ended(id, self.keep_finished);
            drop(inner);
            self.bump();
        }
    }

    /// Asks the runner of `id` to stop it. An id never launched is remembered as ended,
    /// so a launch that arrives after its kill (reordered or retried) starts nothing.
    pub fn kill(&self, id: &ProcId, reason: KillReason) -> KillAck {
        let mut inner = self.lock();
        let Some(e) = inner.entries.get_mut(id) else {
            let (kill, _) = watch::channel(Some(reason));
            inner.entries.insert(
                id.clone(),
                Entry {
                    phase: Phase::Ended,
                    kill,
                },
            );
            inner.ended(id, self.keep_finished);
            return KillAck::Duplicate;
        };
        if e.phase == Phase::Ended || e.kill.borrow().is_some() {
            return KillAck::Duplicate;
        }
        e.kill.send_replace(Some(reason));
        KillAck::Stopping
    }

    /// Asks every live process to stop (shutdown). Ones already being stopped by the
    /// master keep their reason.
    pub fn kill_all(&self, reason: KillReason) {
        for e in self.lock().entries.values() {
            if e.phase != Phase::Ended && e.kill.borrow().is_none() {
                e.kill.send_replace(Some(reason));
            }
        }
    }

    /// What runs now, as the registration reports it: executors LAUNCHING or RUNNING,
    /// and the ids of live drivers.
    pub fn snapshot(&self) -> (Vec<ReportedExecutor>, Vec<DriverId>) {
        let mut executors = Vec::new();
        let mut drivers = Vec::new();
        for (id, e) in self.lock().entries.iter() {
            let state = match e.phase {
                Phase::Launching => ExecutorState::Launching,
                Phase::Running => ExecutorState::Running,
                Phase::Ended => continue,
            };
            match id {
                ProcId::Executor { app, executor } => executors.push(ReportedExecutor {
                    app: app.clone(),
                    executor: *executor,
                    state,
                }),
                ProcId::Driver(d) => drivers.push(d.clone()),
            }
        }
        (executors, drivers)
    }

    /// The ids of live processes (LAUNCHING, RUNNING, or between two runs of a
    /// supervised driver).
    /// How many processes are (launching, running) now.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        let count = |p: Phase| inner.entries.values().filter(|e| e.phase == p).count();
        (count(Phase::Launching), count(Phase::Running))
    }

    pub fn live(&self) -> Vec<ProcId> {
        let inner = self.lock();
        let live = inner
            .entries
            .iter()
            .filter(|(_, e)| e.phase != Phase::Ended);
        live.map(|(id, _)| id.clone()).collect()
    }

    /// Runs `retire` if no live process uses directory `dir` of the work dir (`[top]` or
    /// `[app, executor]`), holding the table so that no launch is accepted meanwhile.
    /// A launch accepted before is live here; one accepted after creates its directory
    /// afresh. `None` when the directory is in use.
    pub fn retire_if_idle<R>(&self, dir: &[&str], retire: impl FnOnce() -> R) -> Option<R> {
        let inner = self.lock();
        let live = inner
            .entries
            .iter()
            .filter(|(_, e)| e.phase != Phase::Ended);
        let mut live = live.map(|(id, _)| id);
        if live.any(|id| uses(id, dir)) {
            return None;
        }
        Some(retire())
    }
}

/// Whether process `id` runs in directory `dir` of the work dir (or below it).
pub(crate) fn uses(id: &ProcId, dir: &[&str]) -> bool {
    match (id, dir) {
        (ProcId::Driver(d), [top, ..]) => d.as_str() == *top,
        (ProcId::Executor { app, .. }, [top]) => app.as_str() == *top,
        (ProcId::Executor { app, executor }, [top, sub, ..]) => {
            app.as_str() == *top && executor.to_string() == *sub
        }
        (_, []) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(n: u32) -> ProcId {
        ProcId::Executor {
            app: AppId::from("app-1"),
            executor: n,
        }
    }

    #[test]
    fn every_change_of_the_snapshot_and_nothing_else_is_notified() {
        let t = Table::default();
        let mut changes = t.changes();
        let mut changed = || {
            let seen = changes.has_changed().expect("table alive");
            changes.borrow_and_update();
            seen
        };
        assert!(!changed());
        assert!(t.insert(exec(0)).is_some());
        assert!(changed(), "a launch");
        assert!(t.insert(exec(0)).is_none());
        assert!(!changed(), "a duplicate launch");
        t.set_running(&exec(0));
        assert!(changed(), "running");
        t.set_running(&exec(0));
        assert!(!changed(), "running again");
        assert_eq!(t.kill(&exec(0), KillReason::Master), KillAck::Stopping);
        assert!(!changed(), "asked to stop: still runs");
        t.set_ended(&exec(0));
        assert!(changed(), "ended");
        t.set_ended(&exec(0));
        assert_eq!(t.kill(&exec(7), KillReason::Master), KillAck::Duplicate);
        assert!(!changed(), "ended again, and a kill of an unknown id");
    }

    #[test]
    fn launches_are_idempotent_by_id_and_the_snapshot_shows_live_ones() {
        let t = Table::default();
        assert!(t.insert(exec(0)).is_some());
        assert!(t.insert(exec(0)).is_none());
        assert!(t.insert(exec(1)).is_some());
        assert!(t
            .insert(ProcId::Driver(DriverId::from("driver-1")))
            .is_some());
        t.set_running(&exec(1));
        t.set_ended(&exec(0));
        assert!(
            t.insert(exec(0)).is_none(),
            "an ended id is not launched again"
        );
        let (execs, drivers) = t.snapshot();
        assert_eq!(
            execs,
            vec![ReportedExecutor {
                app: AppId::from("app-1"),
                executor: 1,
                state: ExecutorState::Running
            }]
        );
        assert_eq!(drivers, vec![DriverId::from("driver-1")]);
    }

    #[test]
    fn only_the_last_ended_entries_are_kept_and_live_ones_never_forgotten() {
        let t = Table::new(3);
        let _live = t.insert(exec(100)).unwrap();
        for n in 0..5 {
            let _rx = t.insert(exec(n)).unwrap();
            t.set_ended(&exec(n));
        }
        t.kill(&exec(50), KillReason::Master); // a tombstone counts as ended
                                               // Ended: 0 1 2 3 4 50; kept: the last three.
        let known: Vec<u32> = (0..5)
            .chain([50, 100])
            .filter(|n| t.insert(exec(*n)).is_none())
            .collect();
        assert_eq!(known, [3, 4, 50, 100]);
        // 0, 1 and 2 were forgotten, and so accepted again just now (as new launches).
        assert_eq!(t.live(), [exec(0), exec(1), exec(2), exec(100)]);
        t.set_ended(&exec(1));
        t.set_ended(&exec(1)); // twice: counted once
        assert_eq!(t.lock().finished.len(), 3);
        assert_eq!(t.lock().entries.len(), 6);
    }

    #[test]
    fn a_directory_is_retired_only_when_no_live_process_uses_it() {
        let t = Table::default();
        let _a = t.insert(exec(1)).unwrap();
        let _d = t
            .insert(ProcId::Driver(DriverId::from("driver-1")))
            .unwrap();
        let _e = t.insert(exec(2)).unwrap();
        t.set_ended(&exec(2));
        assert_eq!(t.retire_if_idle(&["app-1"], || 7), None);
        assert_eq!(t.retire_if_idle(&["app-1", "1"], || 7), None);
        assert_eq!(t.retire_if_idle(&["app-1", "2"], || 7), Some(7));
        assert_eq!(t.retire_if_idle(&["driver-1"], || 7), None);
        assert_eq!(t.retire_if_idle(&["driver-2"], || 7), Some(7));
        assert_eq!(t.retire_if_idle(&["app-2"], || 7), Some(7));
        t.set_ended(&exec(1));
        assert_eq!(t.retire_if_idle(&["app-1"], || 7), Some(7));
    }

    #[test]
    fn kills_reach_the_runner_once_and_unknown_ids_are_tombstoned() {
        let t = Table::default();
        let rx = t.insert(exec(0)).unwrap();
        assert_eq!(t.kill(&exec(0), KillReason::Master), KillAck::Stopping);
        assert_eq!(*rx.borrow(), Some(KillReason::Master));
        assert_eq!(t.kill(&exec(0), KillReason::Master), KillAck::Duplicate);
        assert_eq!(t.kill(&exec(7), KillReason::Master), KillAck::Duplicate);
        assert!(t.insert(exec(7)).is_none(), "killed before launched");
        t.kill_all(KillReason::Shutdown);
        assert_eq!(*rx.borrow(), Some(KillReason::Master));
    }
}
