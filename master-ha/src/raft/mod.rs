//! `--recovery-mode raft`: the masters replicate every command through openraft
//! (hearth-raft-store on RocksDB); the elected leader acts (see
//! [`leadership`](crate::leadership)), the others stand by.
//!
//! - [`open`] opens the store, starts Raft, checks `--peers` against the stored
//!   membership, and bootstraps a fresh cluster (every master with an empty directory
//!   initializes with the same peer list, which is safe; one that finds a peer already
//!   past term 0 joins instead and is copied from the leader).
//! - [`RaftHandle`]: what the master reads from Raft: the leader's address, the members,
//!   and the lease ([`RaftHandle::lease_ok`], computed by [`crate::lease`]).
//! - [`elect`]: when this master campaigns. openraft's own election timer is off; a
//!   voter campaigns only after a majority granted its pre-vote, so a master that was
//!   frozen or cut off cannot depose a leader the others still hear, and one whose
//!   leader's process is gone campaigns as soon as the voters' lease allows.
//! - [`net`]: the tonic network between masters; [`admin`]: `hearth cluster`.
//! - [`runtime`]: Raft's own threads, so heartbeats and votes never queue behind the
//!   master's work.

pub mod admin;
pub mod elect;
pub mod net;
pub mod runtime;

use crate::drill::Isolation;
use crate::error::MasterError;
use crate::lease::{self, Acks};
use hearth_proto::auth::{authed, Credential};
use hearth_proto::convert::{Member, MemberRole};
use hearth_proto::pb;
use hearth_proto::pb::master_service_client::MasterServiceClient;
use hearth_proto::pb::raft_admin_client::RaftAdminClient;
use hearth_proto::pb::GetStateRequest;
use hearth_raft_store::openraft::{self, ServerState};
use hearth_raft_store::{BasicNode, NodeId, Raft, StateReader};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a Raft master is set up (`hearth master --recovery-mode raft ...`).
#[derive(Clone, Debug)]
pub struct RaftOptions {
    pub id: NodeId,
    /// Every voter's id and gRPC address (`--peers`), this master included.
    pub peers: BTreeMap<NodeId, String>,
    pub dir: PathBuf,
    pub heartbeat: Duration,
    pub election_min: Duration,
    pub election_max: Duration,
    /// A snapshot is built after this many log entries.
    pub snapshot_every: u64,
    /// Peers reached through another address than their `--peers` one (`--peer-via`).
    pub via: BTreeMap<NodeId, String>,
    /// The cluster secret, sent to every peer.
    pub credential: Credential,
}

impl RaftOptions {
    /// openraft's configuration from these options (validated).
    pub fn config(&self) -> Result<openraft::Config, MasterError> {
        let config = openraft::Config {
            cluster_name: "hearth".into(),
            heartbeat_interval: self.heartbeat.as_millis() as u64,
            election_timeout_min: self.election_min.as_millis() as u64,
            election_timeout_max: self.election_max.as_millis() as u64,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            // Entries kept after a snapshot for followers that lag a little: one snapshot
            // interval, at most 1,000; a follower further behind gets the snapshot.
            max_in_snapshot_log_to_keep: self.snapshot_every.min(1000),
            install_snapshot_timeout: 10_000,
            // Elections are called by `elect::run`, after a pre-vote.
            enable_elect: false,
            ..Default::default()
        };
        config.validate().map_err(|e| {
            MasterError::Config(format!(
                "Raft timings: {e} (need heartbeat < election-timeout-min < election-timeout-max)"
            ))
        })
    }
}

/// A running Raft member and what the master reads from it.
pub struct RaftHandle {
    pub id: NodeId,
    pub raft: Raft,
    pub reader: StateReader,
    /// When each peer last accepted this master as leader (by the network layer).
    acks: Acks,
    lease_for: Duration,
    /// When a leader's AppendEntries last arrived here.
    pub last_append: Arc<Mutex<Option<Instant>>>,
    /// This master's isolate-drill switch.
    pub isolation: Isolation,
    opts: RaftOptions,
    /// The log (read for its last entry by the pre-vote).
    log: hearth_raft_store::LogStore,
    /// The Raft network (its channels carry the pre-vote too).
    network: net::Network,
    /// When this process started Raft: "heard from a leader" before any AppendEntries.
    started: Instant,
    /// Raft's own threads ([`runtime`]).
    rt: tokio::runtime::Handle,
}

impl RaftHandle {
    fn metrics(&self) -> openraft::RaftMetrics<NodeId, BasicNode> {
        self.raft.metrics().borrow().clone()
    }

    /// Raft's own threads: where peers' `RaftService` calls are answered.
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.rt.clone()
    }

    pub fn current_term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// The leader's gRPC address, if a leader is known.
    pub fn leader_addr(&self) -> Option<String> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
    }

    /// Every member of the group, with its role as this master sees it.
    pub fn members(&self) -> Vec<Member> {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| Member {
                id: *id,
                address: node.addr.clone(),
                role: member_role(&m, *id, &voters, m.state == ServerState::Leader),
            })
            .collect()
    }

    /// Whether this master leads and a quorum acknowledged it within the election
    /// timeout (always, for a one-voter group that leads).
    pub fn lease_ok(&self) -> bool {
        if self.isolation.active() {
            return false;
        }
        let m = self.raft.metrics();
        let m = m.borrow();
        if m.state != ServerState::Leader || m.current_leader != Some(self.id) {
            return false;
        }
        lease::held(
            self.id,
            m.vote.leader_id(),
            m.membership_config.membership().get_joint_config(),
            &self.acks,
            self.lease_for,
            Instant::now(),
        )
    }
}

/// Opens the store in `opts.dir`, starts Raft on `rt` (its tasks live there), and
/// bootstraps or rejoins the group.
pub async fn open(
    opts: &RaftOptions,
    isolation: Isolation,
    rt: tokio::runtime::Handle,
) -> Result<Arc<RaftHandle>, MasterError> {
    if !opts.peers.contains_key(&opts.id) {
        return Err(MasterError::Config(format!(
            "--id {} is not in --peers ({}); every master lists itself among the peers",
            opts.id,
            peer_list(&opts.peers)
        )));
    }
    let (log, sm) = hearth_raft_store::open(&opts.dir).await?;
    let reader = sm.reader();
    let config = Arc::new(opts.config()?);
    let network = net::Network::new(opts.via.clone(), isolation.clone(), opts.credential.clone());
    let acks = network.acks();
    // openraft spawns its core and replication tasks where `Raft::new` runs.
    let start = Raft::new(opts.id, config, network.clone(), log.clone(), sm);
    let raft = rt
        .spawn(tracing::Instrument::in_current_span(start))
        .await
        .map_err(|e| MasterError::Raft(format!("starting Raft: {e}")))?
        .map_err(|e| MasterError::Raft(format!("starting Raft: {e}")))?;
    // The metrics show the state loaded from disk (its membership) only from openraft's
    // first report, shortly after `Raft::new` returns; before it they are empty, which
    // would look like a fresh directory.
    let reported = tokio::time::timeout(Duration::from_secs(10), raft.metrics().changed()).await;
    if !matches!(reported, Ok(Ok(()))) {
        let _ = raft.shutdown().await;
        return Err(MasterError::Raft(format!(
            "Raft on {} did not start within 10 s; see the log above",
            opts.dir.display()
        )));
    }
    let stored: BTreeMap<NodeId, String> = {
        let m = raft.metrics();
        let m = m.borrow();
        m.membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect()
    };
    if stored.is_empty() {
        if let Err(e) = bootstrap(&raft, opts).await {
            let _ = raft.shutdown().await;
            return Err(e);
        }
    } else if stored != opts.peers {
        let _ = raft.shutdown().await;
        return Err(MasterError::Config(format!(
            "--peers ({}) disagrees with the membership stored in {} ({}). \
             Start this master with the stored list; membership is changed with \
             `hearth cluster add-master` / `remove-master`, never by editing --peers",
            peer_list(&opts.peers),
            opts.dir.display(),
            peer_list(&stored)
        )));
    } else {
        let (term, snapshot) = {
            let m = raft.metrics();
            let m = m.borrow();
            (m.current_term, m.snapshot)
        };
        // Seeded by `hearth recovery import` (the seed is a snapshot at the first log
        // position) and never started a term.
        if term == 0 && snapshot == Some(hearth_raft_store::LogId::default()) {
            let seeded: BTreeSet<String> = reader.read(|s| {
                let apps = s.apps.keys().map(|a| a.0.clone());
                let done = s.completed_apps.iter().map(|a| a.id.0.clone());
                let drivers = s.drivers.keys().map(|d| d.0.clone());
                let ended = s.completed_drivers.iter().map(|d| d.id.0.clone());
                apps.chain(done).chain(drivers).chain(ended).collect()
            });
            if let Err(why) = seeded_start(&seeded, &peer_views(opts).await) {
                let _ = raft.shutdown().await;
                return Err(MasterError::Config(why));
            }
        }
        tracing::info!(members = %peer_list(&stored), "rejoining the Raft group from disk");
    }
    Ok(Arc::new(RaftHandle {
        id: opts.id,
        raft,
        reader,
        acks,
        lease_for: opts.election_min,
        last_append: Arc::new(Mutex::new(None)),
        isolation,
        opts: opts.clone(),
        log,
        network,
        started: Instant::now(),
        rt,
    }))
}

/// The role of member `id` as metrics `m` show it. Only a leader (`leading`) knows
/// whether a follower answers: one it has no replication progress for is unreachable.
pub(crate) fn member_role(
    m: &openraft::RaftMetrics<NodeId, BasicNode>,
    id: NodeId,
    voters: &BTreeSet<NodeId>,
    leading: bool,
) -> MemberRole {
    if Some(id) == m.current_leader {
        MemberRole::Leader
    } else if !voters.contains(&id) {
        MemberRole::Learner
    } else if leading
        && m.replication
            .as_ref()
            .is_some_and(|r| r.get(&id).is_some_and(|p| p.is_none()))
    {
        MemberRole::Unreachable
    } else {
        MemberRole::Follower
    }
}

fn peer_list(peers: &BTreeMap<NodeId, String>) -> String {
    peers
        .iter()
        .map(|(id, a)| format!("{id}={a}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A fresh directory: initialize with `--peers`, unless [`fresh_start`] says to join (a
/// group exists: this master was added later or its directory was wiped; or a peer
/// holds a seeded state), in which case the leader copies its log or snapshot here.
async fn bootstrap(raft: &Raft, opts: &RaftOptions) -> Result<(), MasterError> {
    let peers = peer_views(opts).await;
    if peers.iter().any(|(_, _, v)| v.term > 0) {
        if let Some((leader, term, members)) = leader_members(opts).await {
            if let Err(why) = amnesiac(opts.id, leader, term, &members) {
                return Err(MasterError::Config(why));
            }
        }
    }
    if let Fresh::Join(why) = fresh_start(&peers) {
        tracing::warn!(
            dir = %opts.dir.display(),
            "this master's Raft directory is empty and {why}: joining, the leader copies its state here. \
             Expected when this master starts for the first time after the others, or beside a seeded \
             master; if it held data before, its directory was wiped or lost: check the disk"
        );
        return Ok(());
    }
    let members: BTreeMap<NodeId, BasicNode> = opts
        .peers
        .iter()
        .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
        .collect();
    match raft.initialize(members).await {
        Ok(()) => tracing::info!(members = %peer_list(&opts.peers), "initialized a new Raft group"),
        Err(openraft::error::RaftError::APIError(
            openraft::error::InitializeError::NotAllowed(_),
        )) => {
            tracing::info!("the Raft group was already initialized")
        }
        Err(e) => {
            return Err(MasterError::Raft(format!(
                "initializing the Raft group: {e}"
            )))
        }
    }
    Ok(())
}

/// What a peer shows when this master starts: its Raft term, how many members its
/// membership has (none: an empty directory not yet part of a group), and the ids of
/// every app and driver in its state (active or completed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerView {
    pub term: u64,
    pub members: usize,
    pub history: BTreeSet<String>,
}

/// A peer's view, if it answers within a short time.
async fn peer_view(addr: &str, credential: &Credential) -> Option<PeerView> {
    let endpoint = credential
        .endpoint(addr)
        .ok()?
        .connect_timeout(Duration::from_millis(300));
    let ask = async {
        let mut client =
            MasterServiceClient::new(authed(endpoint.connect().await.ok()?, credential));
        let s = client
            .get_state(GetStateRequest::default())
            .await
            .ok()?
            .into_inner();
        let apps = s.active_apps.iter().chain(&s.completed_apps);
        let drivers = s.active_drivers.iter().chain(&s.completed_drivers);
        Some(PeerView {
            term: s.term,
            members: s.masters.len(),
            history: apps
                .map(|a| a.id.clone())
                .chain(drivers.map(|d| d.id.clone()))
                .collect(),
        })
    };
    tokio::time::timeout(Duration::from_millis(800), ask)
        .await
        .ok()
        .flatten()
}

/// The group's members as its leader sees them (with each one's replicated log
/// position), its id and term: asked of every peer, the leader answers.
async fn leader_members(opts: &RaftOptions) -> Option<(NodeId, u64, Vec<pb::RaftMember>)> {
    for addr in opts
        .peers
        .iter()
        .filter(|(id, _)| **id != opts.id)
        .map(|(_, a)| a)
    {
        let Ok(endpoint) = opts.credential.endpoint(addr) else {
            continue;
        };
        let endpoint = endpoint.connect_timeout(Duration::from_millis(300));
        let ask = async {
            let channel = endpoint.connect().await.ok()?;
            let mut client = RaftAdminClient::new(authed(channel, &opts.credential));
            let r = client
                .members(pb::MembersRequest { from_leader: true })
                .await
                .ok()?
                .into_inner();
            Some((r.answered_by, r.term, r.members))
        };
        if let Ok(Some(found)) = tokio::time::timeout(Duration::from_millis(800), ask).await {
            return Some(found);
        }
    }
    None
}

/// The rule for a master `me` whose Raft directory is empty while a group runs (HA hole
/// 4): if the group's leader (`leader` at `term`, its view `members`) counts `me` as a
/// voter it has already replicated entries to, the directory was wiped or lost. Such a
/// master must not rejoin under its old id: it would have forgotten its vote (and could
/// vote twice in a term) and the entries it acknowledged (an acknowledged write could
/// be lost). A voter the leader never replicated to (a master started for the first
/// time after the others) joins.
pub(crate) fn amnesiac(
    me: NodeId,
    leader: NodeId,
    term: u64,
    members: &[pb::RaftMember],
) -> Result<(), String> {
    let Some(m) = members.iter().find(|m| m.id == me && m.voter) else {
        return Ok(());
    };
    match m.matched_index {
        Some(index) if index > 0 => Err(format!(
            "this master's Raft directory is empty, but master {me} is a voter of the running \
             group and its leader (master {leader}, term {term}) replicated its log here up to \
             index {index}: the directory was wiped or lost. Rejoining as master {me} would \
             forget the votes it gave and the entries it acknowledged (a write acknowledged to \
             a client could be lost). To bring this host back: `hearth cluster remove-master \
             {me}`, then start it on an empty directory with a new --id (and --peers listing \
             the current members and the new id) and run `hearth cluster add-master NEW_ID \
             {address}`",
            address = m.address
        )),
        _ => Ok(()),
    }
}

/// Every peer's view (those that answer), by id and address.
async fn peer_views(opts: &RaftOptions) -> Vec<(NodeId, String, PeerView)> {
    let mut views = Vec::new();
    for (id, addr) in opts.peers.iter().filter(|(id, _)| **id != opts.id) {
        if let Some(v) = peer_view(addr, &opts.credential).await {
            views.push((*id, addr.clone(), v));
        }
    }
    views
}

/// What a master with an empty Raft directory does, from what its peers show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fresh {
    /// Nobody has started a group: initialize it with `--peers` (every master with an
    /// empty directory does the same, which is safe).
    Initialize,
    /// A group exists (a peer is past term 0), or a peer holds a state seeded from an
    /// export and will campaign with it: wait to be sent the state. The reason, for
    /// the log.
    Join(String),
}

/// The rule for an empty directory. Initializing beside a seeded peer would start a
/// second history at the same log position as the seed, and the leader would never
/// send the seed (HA hole 3): the replicas would differ.
pub(crate) fn fresh_start(peers: &[(NodeId, String, PeerView)]) -> Fresh {
    if let Some((id, addr, v)) = peers.iter().find(|(_, _, v)| v.term > 0) {
        return Fresh::Join(format!(
            "master {id} ({addr}) is at term {}: the group exists",
            v.term
        ));
    }
    if let Some((id, addr, v)) = peers
        .iter()
        .find(|(_, _, v)| v.members > 0 && !v.history.is_empty())
    {
        return Fresh::Join(format!(
            "master {id} ({addr}) holds a state seeded from an export ({} apps and drivers) and has not started a term: it will lead with it",
            v.history.len()
        ));
    }
    Fresh::Initialize
}

/// The rule for a master seeded from an export that has never started a term
/// (`seeded`: the app and driver ids of its seed): it refuses to start beside a group
/// that already runs without its seed, which would ignore it (its log position is the
/// group's first) and leave the replicas different.
pub(crate) fn seeded_start(
    seeded: &BTreeSet<String>,
    peers: &[(NodeId, String, PeerView)],
) -> Result<(), String> {
    let running = peers
        .iter()
        .find(|(_, _, v)| v.term > 0 && !seeded.is_empty() && v.history.is_disjoint(seeded));
    match running {
        None => Ok(()),
        Some((id, addr, v)) => Err(format!(
            "this master's directory was seeded from an export (`hearth recovery import`), \
             but the group already runs without that state: master {id} ({addr}) is at term {} \
             and knows none of the seed's {} apps and drivers. Starting would leave the masters \
             with different states. Either seed every master from the same export before \
             starting any (stop them, empty their directories, import into each), or empty \
             this directory so this master joins the running group and is sent its state",
            v.term,
            seeded.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: NodeId, term: u64, members: usize, history: &[&str]) -> (NodeId, String, PeerView) {
        let view = PeerView {
            term,
            members,
            history: history.iter().map(|s| s.to_string()).collect(),
        };
        (id, format!("h{id}:7077"), view)
    }

    #[test]
    fn an_empty_directory_initializes_only_when_nobody_started_or_was_seeded() {
        assert_eq!(fresh_start(&[]), Fresh::Initialize);
        // Peers as empty as this one, or initializing right now (no history yet).
        assert_eq!(
            fresh_start(&[peer(2, 0, 0, &[]), peer(3, 0, 3, &[])]),
            Fresh::Initialize
        );
        assert_eq!(
            fresh_start(&[peer(2, 0, 0, &[]), peer(3, 4, 3, &["app-1"])]),
            Fresh::Join("master 3 (h3:7077) is at term 4: the group exists".into())
        );
        // HA hole 3: a seeded peer that has not started a term leads with its seed.
        assert_eq!(
            fresh_start(&[peer(1, 0, 3, &["app-1", "driver-1"])]),
            Fresh::Join(
                "master 1 (h1:7077) holds a state seeded from an export (2 apps and drivers) and has not started a term: it will lead with it".into()
            )
        );
    }

    fn member(id: NodeId, voter: bool, matched: Option<u64>) -> pb::RaftMember {
        pb::RaftMember {
            id,
            address: format!("h{id}:7077"),
            role: "follower".into(),
            voter,
            matched_index: matched,
        }
    }

    #[test]
    fn an_empty_directory_of_a_voter_the_leader_replicated_to_is_refused() {
        let members = [
            member(1, true, Some(40)),
            member(2, true, Some(40)),
            member(3, true, Some(37)),
            member(4, true, None),
            member(5, false, Some(12)),
            member(6, true, Some(0)),
        ];
        let err = amnesiac(3, 1, 7, &members).unwrap_err();
        assert!(
            err.contains("master 3 is a voter of the running group and its leader (master 1, term 7) replicated its log here up to index 37"),
            "{err}"
        );
        assert!(err.contains("hearth cluster remove-master 3"), "{err}");
        assert!(err.contains("add-master NEW_ID h3:7077"), "{err}");
        // Never replicated to: a master started for the first time after the others.
        assert_eq!(amnesiac(4, 1, 7, &members), Ok(()));
        assert_eq!(amnesiac(6, 1, 7, &members), Ok(()));
        // A learner being added, or a master not in the group.
        assert_eq!(amnesiac(5, 1, 7, &members), Ok(()));
        assert_eq!(amnesiac(9, 1, 7, &members), Ok(()));
    }

    #[test]
    fn a_seeded_master_refuses_a_group_that_runs_without_its_seed() {
        let seed: BTreeSet<String> = ["app-1".to_string(), "driver-1".to_string()].into();
        assert_eq!(seeded_start(&seed, &[]), Ok(()));
        // Empty or seeded peers that have not started: they join it or campaign with it.
        assert_eq!(
            seeded_start(&seed, &[peer(2, 0, 0, &[]), peer(3, 0, 3, &["app-1"])]),
            Ok(())
        );
        // Every master seeded from the same export, this one started last.
        assert_eq!(
            seeded_start(&seed, &[peer(2, 3, 3, &["app-1", "app-9"])]),
            Ok(())
        );
        // HA hole 3: the others initialized empty and elected a leader first.
        let err = seeded_start(&seed, &[peer(2, 1, 3, &[]), peer(3, 1, 3, &[])]).unwrap_err();
        assert!(
            err.contains("master 2 (h2:7077) is at term 1 and knows none of the seed's 2 apps"),
            "{err}"
        );
        assert!(
            err.contains("seed every master from the same export"),
            "{err}"
        );
        // An empty seed has nothing to lose.
        assert_eq!(
            seeded_start(&BTreeSet::new(), &[peer(2, 1, 3, &[])]),
            Ok(())
        );
    }
}
