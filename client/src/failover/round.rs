//! One failover round as a state machine: views of the masters (each with the instant it
//! was seen) and the answer to the submission made at the fault go in; the first time
//! each recovery step was seen, measured from the fault, comes out. No IO and no clock:
//! the instants are the caller's, so a test feeds an exact sequence and checks the exact
//! timings.

use super::view::MasterView;
use hearth_core::{AppId, MasterRole};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Which process the fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The leader: the round waits for another leader (or the same one, restarted) to
    /// lead and be ALIVE.
    Leader,
    /// A worker: the leader stays; the round waits for the placement and the workers.
    Worker,
}

/// Whose views count for the placement and the workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountedOn {
    /// A master that leads by its own account, whatever its recovery step (what
    /// `bench-failover` reports: the earliest a person could see it).
    Acting,
    /// A master that leads and is ALIVE (what `hearth drill` reports: what a client can
    /// use).
    Alive,
}

/// What counts as the round's first new placement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// The app submitted at the fault, known by its name (its id may not be known yet):
    /// one of its executors RUNNING.
    NewApp(String),
    /// An app's executors replaced: `expected` RUNNING and not the ones of `before` (the
    /// executor on a killed worker started again elsewhere).
    Replaced {
        app: AppId,
        before: Vec<u32>,
        expected: usize,
    },
}

/// What a round watches for, fixed before the fault.
#[derive(Clone, Debug)]
pub struct Watch {
    pub target: Target,
    /// The leader before the fault: a view naming any other leader is an election.
    pub old_leader: String,
    /// A master whose views do not count: a frozen or cut-off leader may still claim to
    /// lead when it comes back, before it learns of the new term.
    pub ignore: Option<String>,
    /// Workers ALIVE before the fault: they are all back once the leader counts as many.
    pub workers: usize,
    pub placement: Placement,
    pub counted_on: CountedOn,
}

/// The first time each step was seen, from the fault. `None`: not seen (yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    /// A master names a leader other than the old one (any status).
    pub elected: Option<Duration>,
    /// A master leads by its own account (not STANDBY).
    pub leading: Option<Duration>,
    /// A master leads and is ALIVE.
    pub alive: Option<Duration>,
    /// The first new placement ([`Placement`]).
    pub placed: Option<Duration>,
    /// Every worker of before the fault ALIVE on the leader.
    pub workers_back: Option<Duration>,
    /// The submission made at the fault answered (either way).
    pub submitted: Option<Duration>,
}

/// One round: feed it [`observe`](Round::observe) and [`submitted`](Round::submitted),
/// read [`timings`](Round::timings) and [`done`](Round::done).
#[derive(Clone, Debug)]
pub struct Round {
    watch: Watch,
    t0: Instant,
    timings: Timings,
    /// The master whose view last counted as the leader's.
    leader: Option<String>,
    /// The submission's answer: the app's id, or why it failed.
    app: Option<Result<AppId, String>>,
    /// Each master's last view in a line, for a person reading why a round failed.
    last: BTreeMap<String, String>,
}

/// Keeps the earliest: views may arrive out of order from concurrent pollers.
fn first(slot: &mut Option<Duration>, t: Duration) {
    if slot.is_none_or(|s| t < s) {
        *slot = Some(t);
    }
}

impl Round {
    /// A round whose fault was injected at `t0`.
    pub fn new(watch: Watch, t0: Instant) -> Self {
        Round {
            watch,
            t0,
            timings: Timings::default(),
            leader: None,
            app: None,
            last: BTreeMap::new(),
        }
    }

    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    /// `master`'s own view, as seen at `at`.
    pub fn observe(&mut self, master: &str, at: Instant, v: &MasterView) {
        if self.watch.ignore.as_deref() == Some(master) {
            return;
        }
        let t = at.saturating_duration_since(self.t0);
        self.last.insert(master.to_owned(), v.summary());
        let acting = v.leader.as_deref() == Some(master) && v.role != MasterRole::Standby;
        if self.watch.target == Target::Leader {
            if v.leader
                .as_ref()
                .is_some_and(|l| *l != self.watch.old_leader)
            {
                first(&mut self.timings.elected, t);
            }
            if acting {
                first(&mut self.timings.leading, t);
                if v.role == MasterRole::Alive {
                    first(&mut self.timings.alive, t);
                }
            }
        }
        let counts = match self.watch.counted_on {
            CountedOn::Acting => acting,
            CountedOn::Alive => acting && v.role == MasterRole::Alive,
        };
        if !counts {
            return;
        }
        self.leader = Some(master.to_owned());
        if self.placed(v) {
            first(&mut self.timings.placed, t);
        }
        if v.alive_workers >= self.watch.workers {
            first(&mut self.timings.workers_back, t);
        }
    }

    fn placed(&self, v: &MasterView) -> bool {
        match &self.watch.placement {
            Placement::NewApp(name) => v
                .active_apps()
                .any(|a| a.name == *name && !a.running.is_empty()),
            Placement::Replaced {
                app,
                before,
                expected,
            } => {
                let now = v.running(app);
                now.len() == *expected && now != *before
            }
        }
    }

    /// The submission made at the fault answered at `at`: the app's id, or why not.
    pub fn submitted(&mut self, at: Instant, answer: Result<AppId, String>) {
        self.timings.submitted = Some(at.saturating_duration_since(self.t0));
        self.app = Some(answer);
    }

    /// Every step the round watches has been seen in the masters' views.
    pub fn seen_all(&self) -> bool {
        self.missing()
            .iter()
            .all(|m| *m == "the submission's answer")
    }

    /// Seen all, and the submission answered: nothing more to wait for.
    pub fn done(&self) -> bool {
        self.missing().is_empty()
    }

    /// What has not been seen yet, in words.
    pub fn missing(&self) -> Vec<&'static str> {
        let t = &self.timings;
        let leader = self.watch.target == Target::Leader;
        [
            (leader && t.leading.is_none(), "a new leader"),
            (leader && t.alive.is_none(), "an ALIVE leader"),
            (t.placed.is_none(), "the first new placement"),
            (t.workers_back.is_none(), "every worker back"),
            (self.app.is_none(), "the submission's answer"),
        ]
        .into_iter()
        .filter_map(|(missing, what)| missing.then_some(what))
        .collect()
    }

    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// The master whose view last counted as the leader's.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// The submission's answer, once it came.
    pub fn app(&self) -> Option<&Result<AppId, String>> {
        self.app.as_ref()
    }

    /// Each master's last view in a line.
    pub fn last_views(&self) -> &BTreeMap<String, String> {
        &self.last
    }
}
