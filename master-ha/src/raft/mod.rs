//! `--recovery-mode raft`: the masters replicate every command through openraft
//! (hearth-raft-store on RocksDB), the elected leader acts, the others stand by.
//!
//! - [`open`] opens the store, starts Raft, checks `--peers` against the stored
//!   membership, and bootstraps a fresh cluster (every master with an empty directory
//!   initializes with the same peer list, which is safe; one that finds a peer already
//!   past term 0 joins instead and is copied from the leader).
//! - [`lead`] watches Raft's metrics. When this master becomes leader it waits until its
//!   state machine holds every entry of earlier terms (an entry of its own term applied,
//!   then the whole local log) and a quorum has acknowledged this process as leader (a
//!   master restarted into a stale term never gets that and stands by), builds a [`Master`] over a copy of that state with the
//!   Raft term as its fencing token and a [`RaftJournal`], and runs the recovery protocol
//!   (`take_over`). When it stops leading (a higher term, or it steps down) that master
//!   is dropped: its pending proposals fail, its worker queues close.
//! - The lease: a leader that has not heard from a quorum within the election timeout
//!   neither accepts writes nor sends anything to a worker ([`RaftHandle::lease_ok`];
//!   openraft 0.9 has no CheckQuorum). Each peer's acceptance is dated by when its
//!   AppendEntries was sent ([`net::Acks`]), and the quorum is computed when the lease
//!   is checked, so a freeze anywhere in between only makes the lease end sooner.

pub mod admin;
pub mod journal;
pub mod net;
pub mod ports;

use crate::acting::Node;
use crate::node::{Lease, Master};
use hearth_proto::convert::{Member, MemberRole};
use hearth_proto::pb::master_service_client::MasterServiceClient;
use hearth_proto::pb::GetStateRequest;
use hearth_raft_store::openraft::{self, ServerState};
use hearth_raft_store::{BasicNode, NodeId, Raft, StateReader};
pub use journal::RaftJournal;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

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
}

impl RaftOptions {
    /// openraft's configuration from these options (validated).
    pub fn config(&self) -> anyhow::Result<openraft::Config> {
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
            ..Default::default()
        };
        config.validate().map_err(|e| {
            anyhow::anyhow!(
                "Raft timings: {e} (need heartbeat < election-timeout-min < election-timeout-max)"
            )
        })
    }
}

/// A running Raft member and what the master reads from it.
pub struct RaftHandle {
    pub id: NodeId,
    pub raft: Raft,
    pub reader: StateReader,
    /// When each peer last accepted this master as leader (by the network layer).
    acks: net::Acks,
    lease_for: Duration,
    /// When a leader's AppendEntries last arrived here.
    pub heard: Arc<Mutex<Option<Instant>>>,
    opts: RaftOptions,
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
        if crate::drill::isolated() {
            return false;
        }
        let m = self.raft.metrics();
        let m = m.borrow();
        if m.state != ServerState::Leader || m.current_leader != Some(self.id) {
            return false;
        }
        let now = Instant::now();
        let leader = *m.vote.leader_id();
        let acked = |id: NodeId| {
            if id == self.id {
                Some(now)
            } else {
                self.acks.acked(id, &leader)
            }
        };
        m.membership_config
            .membership()
            .get_joint_config()
            .iter()
            .all(|voters| {
                quorum_acked(voters.iter().map(|id| acked(*id)))
                    .is_some_and(|t| now.saturating_duration_since(t) < self.lease_for)
            })
    }
}

/// Opens the store in `opts.dir`, starts Raft, and bootstraps or rejoins the group.
pub async fn open(opts: &RaftOptions) -> anyhow::Result<Arc<RaftHandle>> {
    if !opts.peers.contains_key(&opts.id) {
        anyhow::bail!(
            "--id {} is not in --peers ({}); every master lists itself among the peers",
            opts.id,
            peer_list(&opts.peers)
        );
    }
    let (log, sm) = hearth_raft_store::open(&opts.dir).await?;
    let reader = sm.reader();
    let config = Arc::new(opts.config()?);
    let network = net::Network::new(opts.via.clone());
    let acks = network.acks();
    let raft = Raft::new(opts.id, config, network, log, sm)
        .await
        .map_err(|e| anyhow::anyhow!("starting Raft: {e}"))?;
    // The metrics show the state loaded from disk (its membership) only from openraft's
    // first report, shortly after `Raft::new` returns; before it they are empty, which
    // would look like a fresh directory.
    let reported = tokio::time::timeout(Duration::from_secs(10), raft.metrics().changed()).await;
    if !matches!(reported, Ok(Ok(()))) {
        let _ = raft.shutdown().await;
        anyhow::bail!(
            "Raft on {} did not start within 10 s; see the log above",
            opts.dir.display()
        );
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
        anyhow::bail!(
            "--peers ({}) disagrees with the membership stored in {} ({}). \
             Start this master with the stored list; membership is changed with \
             `hearth cluster add-master` / `remove-master`, never by editing --peers",
            peer_list(&opts.peers),
            opts.dir.display(),
            peer_list(&stored)
        );
    } else {
        tracing::info!(members = %peer_list(&stored), "rejoining the Raft group from disk");
    }
    Ok(Arc::new(RaftHandle {
        id: opts.id,
        raft,
        reader,
        acks,
        lease_for: opts.election_min,
        heard: Arc::new(Mutex::new(None)),
        opts: opts.clone(),
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

/// The latest instant by which a majority of `acks` (one per voter: when it last
/// accepted this leader, if it has) had acknowledged: the majority's oldest, when the
/// newest acknowledgements are taken first.
fn quorum_acked(acks: impl Iterator<Item = Option<Instant>>) -> Option<Instant> {
    let acks: Vec<Option<Instant>> = acks.collect();
    let need = acks.len() / 2 + 1;
    let mut seen: Vec<Instant> = acks.into_iter().flatten().collect();
    seen.sort_unstable_by(|a, b| b.cmp(a));
    seen.get(need - 1).copied()
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
async fn bootstrap(raft: &Raft, opts: &RaftOptions) -> anyhow::Result<()> {
    for (id, addr) in opts.peers.iter().filter(|(id, _)| **id != opts.id) {
        if let Some(term) = peer_term(addr).await {
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
        Err(e) => anyhow::bail!("initializing the Raft group: {e}"),
    }
    Ok(())
}

/// A peer's Raft term, if it answers within a short time.
async fn peer_term(addr: &str) -> Option<u64> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect_timeout(Duration::from_millis(300));
    let ask = async {
        let mut client = MasterServiceClient::new(endpoint.connect().await.ok()?);
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

/// Calls an election as soon as the voters' leader lease allows when the leader's
/// process is gone (its port refuses connections), instead of waiting out a random
/// election timeout on top of the lease. A leader that is only slow, frozen or cut off
/// still accepts connections (or its proxy does) and is left to the normal timeout.
pub async fn watch_leader(h: Arc<RaftHandle>, mut stop: watch::Receiver<bool>) {
    let every = h.opts.heartbeat;
    // Masters do not all campaign at the same instant: spread them by id.
    let jitter = every * ((h.id % 5) as u32) / 5;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let (leader, addr) = {
            let m = h.raft.metrics();
            let m = m.borrow();
            match m.current_leader {
                Some(l) if l != h.id && m.state == ServerState::Follower => {
                    let addr = h.opts.via.get(&l).cloned().or_else(|| {
                        m.membership_config
                            .membership()
                            .get_node(&l)
                            .map(|n| n.addr.clone())
                    });
                    match addr {
                        Some(a) => (l, a),
                        None => continue,
                    }
                }
                _ => continue,
            }
        };
        let refused = matches!(
            tokio::time::timeout(every, tokio::net::TcpStream::connect(&addr)).await,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
        );
        if !refused || crate::drill::isolated() {
            continue;
        }
        let Some(heard) = *h.heard.lock().expect("heard lock") else {
            continue;
        };
        // The voters' lease runs for the maximum election timeout after the last
        // heartbeat they got (about when this one got it).
        let at = heard + h.opts.election_max + jitter;
        tokio::time::sleep_until(at.into()).await;
        let still = *h.heard.lock().expect("heard lock") == Some(heard);
        let same = h.raft.metrics().borrow().current_leader == Some(leader);
        if still && same {
            tracing::info!(
                leader,
                %addr,
                "the leader's process is gone (connection refused): calling an election now"
            );
            let _ = h.raft.trigger().elect().await;
        }
    }
}

/// This master's leadership in one term.
struct Leading {
    term: u64,
    master: Arc<Master>,
    depose: Box<dyn Fn() + Send + Sync>,
    stop: watch::Sender<bool>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

/// Follows Raft's leadership until `stop` is set: takes over on becoming leader, steps
/// down when it stops leading.
pub async fn lead(node: Arc<Node>, h: Arc<RaftHandle>, mut stop: watch::Receiver<bool>) {
    let mut metrics = h.raft.metrics();
    let mut leading: Option<Leading> = None;
    // When this master first failed to take over in the current term.
    let mut failing_since: Option<(u64, Instant)> = None;
    loop {
        let m = metrics.borrow_and_update().clone();
        let leads = m.state == ServerState::Leader && m.current_leader == Some(h.id);
        if leading
            .as_ref()
            .is_some_and(|l| !leads || l.term != m.current_term)
        {
            step_down(&node, leading.take().expect("leading"), &m);
        }
        if leads && leading.is_none() {
            let started = Instant::now();
            match take_over(&node, &h, m.current_term).await {
                Ok(l) => {
                    tracing::info!(
                        term = l.term,
                        took_ms = started.elapsed().as_millis() as u64,
                        "leading"
                    );
                    leading = Some(l);
                    failing_since = None;
                }
                Err(e) => {
                    // Right after an election openraft may not confirm the leadership
                    // yet (its first entry is not committed): retry at once, and say so
                    // only if it lasts.
                    let since = match failing_since {
                        Some((term, t)) if term == m.current_term => t,
                        _ => failing_since.insert((m.current_term, Instant::now())).1,
                    };
                    if since.elapsed() > Duration::from_secs(1) {
                        tracing::warn!(term = m.current_term, error = %e, "could not take over; retrying");
                    } else {
                        tracing::debug!(term = m.current_term, error = %e, "not confirmed as leader yet; retrying");
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            continue;
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { break },
            _ = stop.changed() => break,
        }
    }
    if let Some(l) = leading.take() {
        let m = h.metrics();
        step_down(&node, l, &m);
    }
}

async fn take_over(node: &Arc<Node>, h: &Arc<RaftHandle>, term: u64) -> anyhow::Result<Leading> {
    // Every entry of earlier terms is committed and applied once an entry of this term
    // (openraft's first, blank entry) is: a quorum took it from this leader...
    //
    // A master restarted soon after it led comes back as leader of its old term
    // (openraft restores a committed vote for itself) with that term's entries already
    // applied from disk, possibly after the others moved on to a later term. So also
    // wait for a quorum to have acknowledged this process as leader
    // (`millis_since_quorum_ack`, empty until then): a quorum that moved on never does,
    // and this master steps down instead of briefly acting for a stale term. For a
    // freshly elected leader the blank entry's commit already brought those
    // acknowledgements, so this costs nothing.
    let m = h
        .raft
        .wait(Some(Duration::from_secs(5)))
        .metrics(
            |m| {
                m.current_term != term
                    || m.state != ServerState::Leader
                    || (m.last_applied.is_some_and(|l| l.leader_id.term == term)
                        && m.millis_since_quorum_ack.is_some())
            },
            "this term's first entry applied and a quorum's acknowledgement",
        )
        .await
        .map_err(|e| anyhow::anyhow!("waiting for this term's first entry: {e}"))?;
    if m.current_term != term || m.state != ServerState::Leader {
        tracing::info!(
            term,
            now_term = m.current_term,
            "did not take over: no longer the leader of this term (a quorum has moved on)"
        );
        anyhow::bail!("no longer leading in term {term}");
    }
    // ...and so is everything in this master's own log (a retake within one term).
    let last = h.metrics().last_log_index.unwrap_or(0);
    let mut reader = h.reader.clone();
    tokio::time::timeout(Duration::from_secs(5), reader.wait_applied(last))
        .await
        .map_err(|_| anyhow::anyhow!("the state machine did not reach log index {last}"))?;
    let (_, state) = h.reader.cloned();
    let journal = RaftJournal::start(h.raft.clone());
    let depose = Box::new(journal.deposer());
    let lease: Lease = {
        let h = h.clone();
        Arc::new(move || h.lease_ok() && h.current_term() == term)
    };
    let master = Arc::new(Master::leading(
        node.config.clone(),
        Box::new(journal),
        (state, 0),
        node.advertised().to_owned(),
        term,
        lease,
    ));
    if let Err(e) = master.take_over().await {
        depose();
        master.dispatcher().close_all();
        anyhow::bail!("{e}");
    }
    let (stop, stop_rx) = watch::channel(false);
    let loops = crate::loops::spawn(master.clone(), stop_rx);
    node.set_acting(Some(master.clone()));
    master.announce().await;
    Ok(Leading {
        term,
        master,
        depose,
        stop,
        loops,
    })
}

fn step_down(node: &Node, l: Leading, m: &openraft::RaftMetrics<NodeId, BasicNode>) {
    node.set_acting(None);
    (l.depose)();
    let _ = l.stop.send(true);
    for task in &l.loops {
        task.abort();
    }
    l.master.dispatcher().close_all();
    tracing::warn!(
        term = l.term,
        now_term = m.current_term,
        leader = ?m.current_leader,
        "no longer leading: stopped commanding workers and accepting writes"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let acks = net::Acks::default();
        let t0 = Instant::now();
        let term = |t: u64| openraft::LeaderId::new(t, 1);
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
}
