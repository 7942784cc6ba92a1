//! Liveness decisions: which workers timed out, which DEAD workers to forget, which
//! client-mode apps lost their submitter.
//!
//! When each worker or app was last heard from is leader-local soft state, never
//! replicated: the leader passes it in, on its monotonic clock. Everything counts as heard
//! at `leader_since`, the moment this master began to lead, so a new leader gives everyone
//! a fresh grace period and never declares mass loss because it has not listened long
//! enough (peers.md #1).
//!
//! Every silence is measured on the monotonic clock ([`Now::mono`]); the wall clock
//! ([`Now::wall`]) only labels the commands. A wall clock stepped forward or back (NTP, an
//! operator) neither loses live workers nor keeps silent ones.

use crate::command::Command;
use crate::ids::{AppId, WorkerId};
use crate::state::{AppState, ClusterState, WorkerState};
use crate::time::{Millis, Now};
use std::collections::BTreeMap;

/// The timeouts the liveness checks use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivenessConfig {
    /// A worker unheard for longer is DEAD (Spark's `spark.worker.timeout`, 60 s).
    pub worker_timeout_ms: u64,
    /// A DEAD worker stays listed for this many further worker timeouts, plus one (Spark:
    /// 15): it is forgotten once unheard for `(dead_worker_persistence + 2)` worker
    /// timeouts (DEAD after the first), measured by the leader, whose grace period after
    /// taking over counts here too.
    pub dead_worker_persistence: u32,
    /// A client-mode app whose submitter is unheard for longer is FAILED.
    pub app_timeout_ms: u64,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        LivenessConfig {
            worker_timeout_ms: 60_000,
            dead_worker_persistence: 15,
            app_timeout_ms: 60_000,
        }
    }
}

/// When the leader last heard from each worker and client-mode app, on the leader's
/// monotonic clock ([`Now::mono`]), never the wall clock. Leader-local, never replicated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastHeard {
    /// When this master began to lead (monotonic); nothing is older than this. Also when
    /// its recovery began ([`next_step`](crate::recovery::next_step)).
    pub leader_since: Millis,
    pub workers: BTreeMap<WorkerId, Millis>,
    pub apps: BTreeMap<AppId, Millis>,
}

impl LastHeard {
    pub fn new(leader_since: Millis) -> Self {
        LastHeard {
            leader_since,
            ..Default::default()
        }
    }

    fn worker(&self, id: &WorkerId) -> Millis {
        self.workers
            .get(id)
            .copied()
            .unwrap_or_default()
            .max(self.leader_since)
    }

    fn app(&self, id: &AppId) -> Millis {
        self.apps
            .get(id)
            .copied()
            .unwrap_or_default()
            .max(self.leader_since)
    }
}

/// The commands the liveness rules call for at `now`, in a stable order: lost workers,
/// forgotten workers, then failed apps. Silences are `now.mono` against `heard`; the
/// commands are labelled `now.wall`.
pub fn liveness_commands(
    state: &ClusterState,
    heard: &LastHeard,
    now: Now,
    cfg: &LivenessConfig,
) -> Vec<Command> {
    let mut out = Vec::new();
    for w in state.workers.values() {
        let live = w.state.is_serving();
        let silent_ms = now.mono.since(heard.worker(&w.identity.id));
        if live && silent_ms > cfg.worker_timeout_ms {
            out.push(Command::WorkerLost {
                worker: w.identity.id.clone(),
                reason: format!(
                    "no heartbeat for {} ms (worker timeout {} ms)",
                    silent_ms, cfg.worker_timeout_ms
                ),
                at: now.wall,
            });
        }
    }
    // Not `dead_since`: that is a wall-clock label, possibly another leader's clock.
    let forget_after = cfg
        .worker_timeout_ms
        .saturating_mul(u64::from(cfg.dead_worker_persistence) + 2);
    for w in state.workers.values() {
        let silent_ms = now.mono.since(heard.worker(&w.identity.id));
        if w.state == WorkerState::Dead && silent_ms > forget_after {
            out.push(Command::ForgetWorker {
                worker: w.identity.id.clone(),
            });
        }
    }
    for a in state.apps.values() {
        let client_mode = a.driver.is_none();
        let silent_ms = now.mono.since(heard.app(&a.id));
        if client_mode && a.state != AppState::Unknown && silent_ms > cfg.app_timeout_ms {
            out.push(Command::FinishApp {
                app: a.id.clone(),
                state: AppState::Failed,
                reason: format!("its driver stopped heartbeating {silent_ms} ms ago"),
                at: now.wall,
            });
        }
    }
    out
}

/// Whether a master that says it leads in `term` from process `incarnation` (0: not
/// said) is a leader other than the one a worker registered with (`known_term`,
/// `registered_incarnation`): a newer term, or the same term from another process (a
/// leader killed and restarted within its term). Workers take `MasterChanged` and
/// `WatchLeader` answers by this rule; masters answer watches by it.
pub fn is_new_leader(
    term: u64,
    incarnation: u64,
    known_term: u64,
    registered_incarnation: u64,
) -> bool {
    term > known_term
        || (term == known_term && incarnation != 0 && incarnation != registered_incarnation)
}

#[cfg(test)]
mod new_leader_tests {
    use super::is_new_leader;

    #[test]
    fn a_new_leader_is_a_newer_term_or_another_process_in_the_same_term() {
        assert!(is_new_leader(5, 9, 4, 9));
        assert!(is_new_leader(5, 0, 4, 9));
        // The one registered with, or an older one.
        assert!(!is_new_leader(5, 9, 5, 9));
        assert!(!is_new_leader(4, 7, 5, 9));
        // Same term, another process: a leader restarted within its term.
        assert!(is_new_leader(5, 7, 5, 9));
        // Same term, the process not said: nothing to go by.
        assert!(!is_new_leader(5, 0, 5, 9));
    }
}
