//! What this worker runs and ran: one entry per executor `(app, id)` or driver id, kept
//! after the process ends so that a retried launch is recognised as a duplicate.
//!
//! The table is the worker's own observation: the registration report is built from it
//! ([`Table::snapshot`]), launches are made idempotent by it ([`Table::insert`]) and kills
//! are routed through it ([`Table::kill`]).

use hearth_core::{AppId, DriverId, ExecutorId, ExecutorState, ReportedExecutor};
use std::collections::BTreeMap;
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

#[derive(Default)]
pub(crate) struct Table {
    entries: Mutex<BTreeMap<ProcId, Entry>>,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ProcId, Entry>> {
        // A panic while holding this lock leaves a consistent map (every change is a
        // single insert or field write), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new process as LAUNCHING and returns the receiver its runner watches for
    /// kill requests, or `None` if this id is already known (running or ran): a
    /// duplicate launch that must start nothing.
    pub fn insert(&self, id: ProcId) -> Option<watch::Receiver<Option<KillReason>>> {
        let mut entries = self.lock();
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
        Some(rx)
    }

    pub fn set_running(&self, id: &ProcId) {
        if let Some(e) = self.lock().get_mut(id) {
            if e.phase == Phase::Launching {
                e.phase = Phase::Running;
            }
        }
    }

    pub fn set_ended(&self, id: &ProcId) {
        if let Some(e) = self.lock().get_mut(id) {
            e.phase = Phase::Ended;
        }
    }

    /// Asks the runner of `id` to stop it. An id never launched is remembered as ended,
    /// so a launch that arrives after its kill (reordered or retried) starts nothing.
    pub fn kill(&self, id: &ProcId, reason: KillReason) -> KillAck {
        let mut entries = self.lock();
        let Some(e) = entries.get_mut(id) else {
            let (kill, _) = watch::channel(Some(reason));
            entries.insert(
                id.clone(),
                Entry {
                    phase: Phase::Ended,
                    kill,
                },
            );
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
        for e in self.lock().values() {
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
        for (id, e) in self.lock().iter() {
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
