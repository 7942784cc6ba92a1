//! The lease: whether this master may accept writes and command workers right now.
//!
//! In recovery modes none and filesystem a master always holds it. In Raft mode a leader
//! holds it while a quorum of every voter set has acknowledged it within the election
//! timeout (openraft 0.9 has no CheckQuorum, so a cut-off leader would otherwise go on
//! acting). Each peer's acknowledgement is dated by when the AppendEntries it answered
//! was *sent* ([`Acks`], recorded by the Raft network), and the quorum is computed when
//! the lease is checked, so a freeze anywhere in between only makes the lease end sooner.

use hearth_raft_store::openraft::LeaderId;
use hearth_raft_store::NodeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// May this master command workers and accept writes right now? Checked before every
/// write and every command sent to a worker.
pub type Lease = Arc<dyn Fn() -> bool + Send + Sync>;

/// The lease of a master that is the only one (recovery modes none and filesystem).
pub fn always() -> Lease {
    Arc::new(|| true)
}

/// When each peer last accepted this master as leader: the leader id (term and node)
/// its AppendEntries carried, and when that request was sent on this process's clock
/// (openraft's own rule for the leader clock). An acknowledgement is never dated later
/// than the request that earned it, even if this process was frozen in between.
#[derive(Clone, Default)]
pub struct Acks(Arc<Mutex<HashMap<NodeId, Accepted>>>);

/// Which leadership a peer accepted, and when the request it answered was sent.
type Accepted = (LeaderId<NodeId>, Instant);

impl Acks {
    /// `peer` accepted an AppendEntries from leader `leader`, sent at `sent`.
    pub fn record(&self, peer: NodeId, leader: LeaderId<NodeId>, sent: Instant) {
        let mut acks = self.0.lock().expect("acks lock");
        match acks.get_mut(&peer) {
            Some((l, t)) if *l == leader => *t = (*t).max(sent),
            // An answer for an older leadership arriving late changes nothing.
            Some((l, _)) if leader.partial_cmp(l) != Some(std::cmp::Ordering::Greater) => {}
            _ => {
                acks.insert(peer, (leader, sent));
            }
        }
    }

    /// When `peer` last accepted leader `leader`, if it has.
    pub fn acked(&self, peer: NodeId, leader: &LeaderId<NodeId>) -> Option<Instant> {
        let acks = self.0.lock().expect("acks lock");
        acks.get(&peer)
            .filter(|(l, _)| l == leader)
            .map(|(_, t)| *t)
    }
}

/// Whether leader `me` (leading as `leader`) holds the lease at `now`: in every voter
/// set of a (possibly joint) membership, a majority acknowledged it less than
/// `lease_for` ago. The leader counts as acknowledging itself at `now`.
pub fn held<'a>(
    me: NodeId,
    leader: &LeaderId<NodeId>,
    voter_sets: impl IntoIterator<Item = &'a std::collections::BTreeSet<NodeId>>,
    acks: &Acks,
    lease_for: Duration,
    now: Instant,
) -> bool {
    let acked = |id: NodeId| {
        if id == me {
            Some(now)
        } else {
            acks.acked(id, leader)
        }
    };
    voter_sets.into_iter().all(|voters| {
        quorum_acked(voters.iter().map(|id| acked(*id)))
            .is_some_and(|t| now.saturating_duration_since(t) < lease_for)
    })
}

/// The latest instant by which a majority of `acks` (one per voter: when it last
/// accepted this leader, if it has) had acknowledged: the majority's oldest, when the
/// newest acknowledgements are taken first.
pub fn quorum_acked(acks: impl Iterator<Item = Option<Instant>>) -> Option<Instant> {
    let acks: Vec<Option<Instant>> = acks.collect();
    let need = acks.len() / 2 + 1;
    let mut seen: Vec<Instant> = acks.into_iter().flatten().collect();
    seen.sort_unstable_by(|a, b| b.cmp(a));
    seen.get(need - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn a_quorum_acknowledged_when_its_oldest_member_did() {
        let t0 = Instant::now();
        let at = |ms: u64| Some(t0 + Duration::from_millis(ms));
        // Three voters (this leader at 100, peers at 40 and 70): a majority of two
        // acknowledged by 70.
        assert_eq!(quorum_acked([at(100), at(40), at(70)].into_iter()), at(70));
        // One peer never acknowledged: still a majority with the other.
        assert_eq!(quorum_acked([at(100), None, at(40)].into_iter()), at(40));
        assert_eq!(quorum_acked([at(100), None, None].into_iter()), None);
        // Five voters need three.
        let five = [at(100), at(90), None, at(10), at(50)];
        assert_eq!(quorum_acked(five.into_iter()), at(50));
        // A lone voter is its own quorum.
        assert_eq!(quorum_acked([at(5)].into_iter()), at(5));
    }

    #[test]
    fn an_acknowledgement_keeps_the_newest_leadership_and_send_time() {
        let acks = Acks::default();
        let t0 = Instant::now();
        let term = |t: u64| LeaderId::new(t, 1);
        acks.record(2, term(3), t0 + Duration::from_millis(10));
        acks.record(2, term(3), t0);
        assert_eq!(
            acks.acked(2, &term(3)),
            Some(t0 + Duration::from_millis(10))
        );
        // A late answer for an older term does not replace the newer one...
        acks.record(2, term(2), t0 + Duration::from_millis(50));
        assert_eq!(
            acks.acked(2, &term(3)),
            Some(t0 + Duration::from_millis(10))
        );
        assert_eq!(acks.acked(2, &term(2)), None);
        // ...and a newer term does.
        acks.record(2, term(4), t0 + Duration::from_millis(20));
        assert_eq!(acks.acked(2, &term(3)), None);
        assert_eq!(
            acks.acked(2, &term(4)),
            Some(t0 + Duration::from_millis(20))
        );
        assert_eq!(acks.acked(3, &term(4)), None);
    }

    #[test]
    fn the_lease_needs_a_recent_quorum_in_every_voter_set() {
        let t0 = Instant::now();
        let leader = LeaderId::new(5, 1);
        let acks = Acks::default();
        let lease = Duration::from_millis(150);
        let old: BTreeSet<NodeId> = [1, 2, 3].into();
        let joint: BTreeSet<NodeId> = [4, 5, 6].into();
        let now = t0 + Duration::from_millis(200);
        // Only this leader: no quorum of three.
        assert!(!held(1, &leader, [&old], &acks, lease, now));
        // Peer 2 acknowledged 100 ms before `now`: a quorum within the lease.
        acks.record(2, leader, t0 + Duration::from_millis(100));
        assert!(held(1, &leader, [&old], &acks, lease, now));
        // ...but not 150 ms or more before.
        assert!(!held(
            1,
            &leader,
            [&old],
            &acks,
            lease,
            t0 + Duration::from_millis(250)
        ));
        // A joint membership needs a quorum of the new voters as well.
        assert!(!held(1, &leader, [&old, &joint], &acks, lease, now));
        acks.record(4, leader, t0 + Duration::from_millis(120));
        acks.record(5, leader, t0 + Duration::from_millis(130));
        assert!(held(1, &leader, [&old, &joint], &acks, lease, now));
        // An acknowledgement of another leadership does not count.
        let other = LeaderId::new(6, 1);
        assert!(!held(1, &other, [&old], &acks, lease, now));
    }
}
