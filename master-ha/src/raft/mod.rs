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

pub mod admin;
pub mod elect;
pub mod net;

use crate::drill::Isolation;
use crate::error::MasterError;
use crate::lease::{self, Acks};
use hearth_proto::auth::{authed, Credential};
use hearth_proto::convert::{Member, MemberRole};
use hearth_proto::pb::master_service_client::MasterServiceClient;
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
}

impl RaftHandle {
    fn metrics(&self) -> openraft::RaftMetrics<NodeId, BasicNode> {
        self.raft.metrics().borrow().clone()
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

/// Opens the store in `opts.dir`, starts Raft, and bootstraps or rejoins the group.
pub async fn open(
    opts: &RaftOptions,
    isolation: Isolation,
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
    let raft = Raft::new(opts.id, config, network.clone(), log.clone(), sm)
        .await
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
        bootstrap(&raft, opts).await?;
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

/// A fresh directory: initialize with `--peers`, unless a peer is already past term 0
/// (a group exists: this master was added later or its directory was wiped), in which
/// case the leader copies its log or snapshot here.
async fn bootstrap(raft: &Raft, opts: &RaftOptions) -> Result<(), MasterError> {
    for (id, addr) in opts.peers.iter().filter(|(id, _)| **id != opts.id) {
        if let Some(term) = peer_term(addr, &opts.credential).await {
            if term > 0 {
                tracing::warn!(
                    peer = id, %addr, term, dir = %opts.dir.display(),
                    "this master's Raft directory is empty but the group already exists \
                     (a peer is at term {term}): joining it, the leader copies its state here. \
                     Expected when this master starts for the first time after the others; \
                     if it held data before, its directory was wiped or lost: check the disk"
                );
                return Ok(());
            }
        }
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

/// A peer's Raft term, if it answers within a short time.
async fn peer_term(addr: &str, credential: &Credential) -> Option<u64> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect_timeout(Duration::from_millis(300));
    let ask = async {
        let mut client =
            MasterServiceClient::new(authed(endpoint.connect().await.ok()?, credential));
        client
            .get_state(GetStateRequest::default())
            .await
            .ok()
            .map(|r| r.into_inner().term)
    };
    tokio::time::timeout(Duration::from_millis(800), ask)
        .await
        .ok()
        .flatten()
}
