//! When a master campaigns: hearth's pre-vote (openraft 0.9 has none).
//!
//! openraft's own election timer is off (`enable_elect = false`, see
//! [`RaftOptions::config`](super::RaftOptions::config)); [`run`] decides instead. A voter
//! that has not heard from a leader for the voters' lease plus a spread asks every voter
//! for a pre-vote, and calls the election only once a majority of every voter set
//! granted it. A voter grants ([`grant`]) only if it has not heard from a leader within
//! the election timeout itself and the asker's log is at least as up to date as its own.
//!
//! Why: openraft's timer made a master that was frozen (SIGSTOP), cut off or starved
//! campaign at a higher term as soon as it ran again; the healthy leader stepped down on
//! seeing that term, and the requests it had in flight ended "may or may not have taken
//! effect". With the pre-vote, such a master asks, the others still hear the leader and
//! refuse, and it goes back to following without touching any term.
//!
//! The decisions are pure ([`grant`], [`wait`]); [`run`] and [`answer`] carry them out.
//! A leadership transfer (`hearth cluster transfer-leader`) campaigns without a pre-vote:
//! the leader asked for it.

use super::RaftHandle;
use hearth_proto::pb;
use hearth_raft_store::openraft::storage::RaftLogStorage;
use hearth_raft_store::openraft::ServerState;
use hearth_raft_store::NodeId;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A log position as the pre-vote compares it: by term, then index (an empty log is
/// `None`, below every entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPos {
    pub term: u64,
    pub index: u64,
}

/// What a master knows when asked for its pre-vote.
#[derive(Clone, Copy, Debug)]
pub struct Here {
    pub term: u64,
    pub last_log: Option<LogPos>,
    /// It leads and a quorum acknowledged it within the election timeout (the lease).
    pub leads: bool,
    /// How long since a leader's AppendEntries was last accepted here (since this
    /// process started, if none was).
    pub heard: Duration,
}

/// The pre-vote rule: `Ok` grants the asker (at `term`, its log ending at `last_log`)
/// this master's pre-vote; `Err` says why not.
pub fn grant(
    term: u64,
    last_log: Option<LogPos>,
    here: &Here,
    election_min: Duration,
) -> Result<(), String> {
    if here.leads {
        return Err(format!(
            "this master leads term {} and a quorum acknowledges it",
            here.term
        ));
    }
    if here.heard < election_min {
        return Err(format!(
            "this master heard from a leader {} ms ago",
            here.heard.as_millis()
        ));
    }
    if term.saturating_add(1) < here.term {
        return Err(format!(
            "its term {term} is behind this master's {}",
            here.term
        ));
    }
    if last_log < here.last_log {
        return Err(format!(
            "its log ends at {last_log:?}, this master's at {:?}",
            here.last_log
        ));
    }
    Ok(())
}

/// How long after it last heard from a leader a voter campaigns. openraft's voters
/// refuse a vote for `election_max` after their leader's last message (its leader
/// lease), so nothing sooner can win; after that, a spread so the voters do not all
/// campaign at once: when the leader's process is gone (its port refuses connections:
/// `refused`) a short one by id, a fraction of a heartbeat; otherwise a random one
/// (`random` in [0, 1)) over the election window `election_max - election_min`.
pub fn wait(
    election_min: Duration,
    election_max: Duration,
    heartbeat: Duration,
    id: NodeId,
    refused: bool,
    random: f64,
) -> Duration {
    let spread = if refused {
        heartbeat * ((id % 5) as u32) / 5
    } else {
        (election_max - election_min).mul_f64(random.clamp(0.0, 1.0))
    };
    election_max + spread
}

/// Whether the granted voters (this master included) are a majority of every voter set
/// of a (possibly joint) membership.
pub fn majority<'a>(
    voter_sets: impl IntoIterator<Item = &'a BTreeSet<NodeId>>,
    granted: &BTreeSet<NodeId>,
) -> bool {
    voter_sets
        .into_iter()
        .all(|set| set.iter().filter(|id| granted.contains(id)).count() * 2 > set.len())
}

impl RaftHandle {
    /// The last entry of this master's log.
    async fn last_log(&self) -> Option<LogPos> {
        let state = self.log.clone().get_log_state().await.ok()?;
        state.last_log_id.map(|l| LogPos {
            term: l.leader_id.term,
            index: l.index,
        })
    }

    /// What this master knows, for a pre-vote.
    async fn here(&self) -> Here {
        let heard = self
            .last_append
            .lock()
            .expect("last_append lock")
            .unwrap_or(self.started);
        Here {
            term: self.current_term(),
            last_log: self.last_log().await,
            leads: self.lease_ok(),
            heard: heard.elapsed(),
        }
    }
}

/// Answers a peer's pre-vote (the `RaftService.PreVote` handler's logic).
pub async fn answer(h: &RaftHandle, req: &pb::PreVoteRequest) -> pb::PreVoteResponse {
    let here = h.here().await;
    let last_log = req.last_log.as_ref().map(|l| LogPos {
        term: l.term,
        index: l.index,
    });
    let verdict = grant(req.term, last_log, &here, h.opts.election_min);
    match &verdict {
        Ok(()) => tracing::info!(
            candidate = req.candidate,
            term = req.term,
            "granted a pre-vote: no leader heard within the election timeout"
        ),
        Err(why) => {
            tracing::debug!(candidate = req.candidate, term = req.term, %why, "refused a pre-vote")
        }
    }
    pb::PreVoteResponse {
        granted: verdict.is_ok(),
        reason: verdict.err().unwrap_or_default(),
        term: here.term,
    }
}

/// Asks every other voter for its pre-vote at once (each at most `ttl`); the voters
/// that granted, this master included, and the first refusal's reason.
async fn canvass(
    h: &RaftHandle,
    voters: &BTreeSet<NodeId>,
    ttl: Duration,
) -> (BTreeSet<NodeId>, Option<String>) {
    let req = pb::PreVoteRequest {
        candidate: h.id,
        term: h.current_term(),
        last_log: h.last_log().await.map(|l| pb::LogPosition {
            term: l.term,
            index: l.index,
        }),
    };
    let addrs: Vec<(NodeId, String)> = {
        let m = h.raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        voters
            .iter()
            .filter(|id| **id != h.id)
            .filter_map(|id| {
                let addr = h
                    .opts
                    .via
                    .get(id)
                    .cloned()
                    .or_else(|| membership.get_node(id).map(|n| n.addr.clone()))?;
                Some((*id, addr))
            })
            .collect()
    };
    let mut asks = tokio::task::JoinSet::new();
    for (id, addr) in addrs {
        let network = h.network.clone();
        asks.spawn(async move { (id, network.pre_vote(&addr, req, ttl).await) });
    }
    let mut granted: BTreeSet<NodeId> = [h.id].into();
    let mut refused = None;
    while let Some(done) = asks.join_next().await {
        match done {
            Ok((id, Ok(a))) if a.granted => {
                granted.insert(id);
            }
            Ok((id, Ok(a))) => {
                refused.get_or_insert_with(|| format!("master {id}: {}", a.reason));
            }
            Ok((id, Err(e))) => {
                refused.get_or_insert_with(|| format!("master {id}: {e}"));
            }
            Err(_) => {}
        }
    }
    (granted, refused)
}

/// Whether the leader `h` follows has its port closed (its process is gone).
async fn leader_refuses(h: &RaftHandle) -> bool {
    let addr = {
        let m = h.raft.metrics();
        let m = m.borrow();
        match m.current_leader {
            Some(l) if l != h.id => h.opts.via.get(&l).cloned().or_else(|| {
                m.membership_config
                    .membership()
                    .get_node(&l)
                    .map(|n| n.addr.clone())
            }),
            _ => None,
        }
    };
    let Some(addr) = addr else { return false };
    matches!(
        tokio::time::timeout(h.opts.heartbeat, tokio::net::TcpStream::connect(&addr)).await,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// Decides when this master campaigns, until `stop` is set: a voter that has not heard
/// from a leader for [`wait`] canvasses the voters and calls an election once a
/// majority granted its pre-vote; a single voter calls it at once.
pub async fn run(h: Arc<RaftHandle>, mut stop: watch::Receiver<bool>) {
    let every = h.opts.heartbeat;
    let mut last_try: Option<Instant> = None;
    let mut random = rand_fraction(h.id);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if h.isolation.active() {
            continue;
        }
        let (voter_sets, voters, state) = {
            let m = h.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            let sets: Vec<BTreeSet<NodeId>> = membership.get_joint_config().clone();
            let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
            (sets, voters, m.state)
        };
        if state == ServerState::Leader || !voters.contains(&h.id) {
            continue;
        }
        if voters.len() == 1 {
            // The only voter: nobody to ask, nobody to disrupt.
            if state != ServerState::Candidate {
                let _ = h.raft.trigger().elect().await;
            }
            continue;
        }
        let heard_at = || {
            h.last_append
                .lock()
                .expect("last_append lock")
                .unwrap_or(h.started)
        };
        let heard = heard_at();
        let o = &h.opts;
        if heard.elapsed() + every < o.election_max {
            continue; // the leader was heard recently: nothing can be due this tick
        }
        let refused = leader_refuses(&h).await;
        let after = wait(o.election_min, o.election_max, every, h.id, refused, random);
        let due = last_try.map_or(heard, |t| t.max(heard)) + after;
        let now = Instant::now();
        if due > now {
            if due - now >= every {
                continue;
            }
            // Due within this tick: wake at the due time, not up to a heartbeat later.
            tokio::time::sleep_until(due.into()).await;
            if heard_at() != heard {
                continue;
            }
        }
        last_try = Some(Instant::now());
        random = rand_fraction(h.id);
        let term = h.current_term();
        let (granted, why) = canvass(&h, &voters, o.election_min).await;
        // While it canvassed, another master may have won (this one voted for it, or
        // heard from it): campaigning now would depose it.
        let moved = h.current_term() != term || heard_at() != heard;
        if moved {
            tracing::debug!("a leader appeared during the pre-vote: not campaigning");
        } else if majority(&voter_sets, &granted) {
            tracing::info!(
                granted = ?granted,
                leader_gone = refused,
                "no leader heard within the election timeout and a majority agrees: calling an election"
            );
            let _ = h.raft.trigger().elect().await;
        } else {
            tracing::debug!(granted = ?granted, refused = ?why, "pre-vote lost: not campaigning");
        }
    }
}

/// A number in [0, 1) that differs between masters and between calls.
fn rand_fraction(id: NodeId) -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(id);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_millis(150);
    const MAX: Duration = Duration::from_millis(250);
    const BEAT: Duration = Duration::from_millis(50);

    fn pos(term: u64, index: u64) -> Option<LogPos> {
        Some(LogPos { term, index })
    }

    fn follower(heard_ms: u64) -> Here {
        Here {
            term: 4,
            last_log: pos(4, 20),
            leads: false,
            heard: Duration::from_millis(heard_ms),
        }
    }

    #[test]
    fn a_voter_that_still_hears_its_leader_refuses_a_pre_vote() {
        // A follower resumed from SIGSTOP asks; the others heard the leader 40 ms ago.
        assert_eq!(
            grant(4, pos(4, 20), &follower(40), MIN),
            Err("this master heard from a leader 40 ms ago".into())
        );
        let leader = Here {
            leads: true,
            heard: Duration::from_secs(3600),
            ..follower(0)
        };
        assert_eq!(
            grant(4, pos(4, 20), &leader, MIN),
            Err("this master leads term 4 and a quorum acknowledges it".into())
        );
    }

    #[test]
    fn a_voter_that_lost_its_leader_grants_an_up_to_date_asker() {
        assert_eq!(grant(4, pos(4, 20), &follower(150), MIN), Ok(()));
        assert_eq!(grant(4, pos(4, 21), &follower(400), MIN), Ok(()));
        assert_eq!(
            grant(3, pos(4, 20), &follower(400), MIN),
            Ok(()),
            "term + 1 reaches 4"
        );
        // A leader whose lease lapsed (cut off from its quorum) grants too.
        let lapsed = Here {
            leads: false,
            ..follower(10_000)
        };
        assert_eq!(grant(4, pos(5, 1), &lapsed, MIN), Ok(()));
        // A fresh master (empty log, never heard a leader) grants a fresh asker.
        let fresh = Here {
            term: 0,
            last_log: None,
            leads: false,
            heard: MIN,
        };
        assert_eq!(grant(0, None, &fresh, MIN), Ok(()));
    }

    #[test]
    fn a_behind_asker_is_refused() {
        assert_eq!(
            grant(4, pos(4, 19), &follower(400), MIN),
            Err(format!(
                "its log ends at {:?}, this master's at {:?}",
                pos(4, 19),
                pos(4, 20)
            ))
        );
        assert_eq!(
            grant(4, pos(3, 90), &follower(400), MIN),
            Err(format!(
                "its log ends at {:?}, this master's at {:?}",
                pos(3, 90),
                pos(4, 20)
            )),
            "a later term wins over a longer log"
        );
        assert_eq!(
            grant(2, pos(4, 20), &follower(400), MIN),
            Err("its term 2 is behind this master's 4".into())
        );
        assert!(grant(4, None, &follower(400), MIN).is_err());
    }

    #[test]
    fn a_voter_campaigns_after_the_lease_with_a_spread() {
        // The leader's process is gone: a short spread by id, within a heartbeat.
        assert_eq!(wait(MIN, MAX, BEAT, 1, true, 0.9), MAX + BEAT / 5);
        assert_eq!(wait(MIN, MAX, BEAT, 5, true, 0.9), MAX);
        assert_eq!(wait(MIN, MAX, BEAT, 4, true, 0.0), MAX + BEAT * 4 / 5);
        // Frozen or cut off: random over the election window.
        assert_eq!(wait(MIN, MAX, BEAT, 1, false, 0.0), MAX);
        assert_eq!(wait(MIN, MAX, BEAT, 1, false, 0.5), MAX + (MAX - MIN) / 2);
        assert_eq!(wait(MIN, MAX, BEAT, 1, false, 7.0), MAX + (MAX - MIN));
    }

    #[test]
    fn a_majority_of_every_voter_set() {
        let three: BTreeSet<NodeId> = [1, 2, 3].into();
        assert!(majority([&three], &[1, 2].into()));
        assert!(!majority([&three], &[1].into()));
        assert!(
            !majority([&three], &[1, 9].into()),
            "a stranger does not count"
        );
        let four: BTreeSet<NodeId> = [1, 2, 3, 4].into();
        assert!(!majority([&four], &[1, 2].into()), "half is not a majority");
        // Joint: {1,2,3} -> {3,4,5}: both sets need a majority.
        let new: BTreeSet<NodeId> = [3, 4, 5].into();
        assert!(!majority([&three, &new], &[1, 2, 3].into()));
        assert!(majority([&three, &new], &[2, 3, 4].into()));
        let one: BTreeSet<NodeId> = [1].into();
        assert!(majority([&one], &[1].into()));
    }

    #[test]
    fn random_fractions_stay_in_range() {
        for _ in 0..1000 {
            let r = rand_fraction(3);
            assert!((0.0..1.0).contains(&r), "{r}");
        }
    }
}
