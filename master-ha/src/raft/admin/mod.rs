//! `RaftAdmin`, the Raft administration service (`hearth cluster ...`), over a master's
//! [`RaftHandle`].
//!
//! Owns: answering who the members are (with the leader's replication progress), the
//! membership changes (`AddMaster`: learner, caught up, then voter; `RemoveMaster`), the
//! leadership transfer, and building a snapshot on request.
//!
//! # Leadership transfer
//! openraft 0.9 has none, and its followers refuse any vote while they heard from the
//! leader within their leader lease (election-timeout-max). So the leader (1) waits until
//! the target holds its whole log, (2) grants the target its own vote for the next term
//! through its local `Raft::vote` (granted only if the target's log is at least its own;
//! it makes this master a follower at once, so nothing more is appended that the target
//! would lack), (3) asks the target to `Campaign`: the target starts an election at once
//! and again every half election timeout until it wins (at once with three voters; once
//! the other followers' leases have run out with more), and (4) answers when its own
//! metrics show the target leading. Writes pause from (2) until the target has taken over.
//!
//! Must not: change the cluster state (apps, workers, drivers: that is `MasterService`
//! through the acting master), bypass Raft (every membership change is an openraft
//! `change_membership`, committed by a quorum), or wait without a deadline: every wait
//! here is on Raft's metrics, bounded by the request's timeout, and a timeout is answered
//! with what happened so far and what to do next.

use super::RaftHandle;
use hearth_proto::pb::raft_admin_client::RaftAdminClient;
use hearth_proto::pb::raft_admin_server::{RaftAdmin, RaftAdminServer};
use hearth_proto::pb::{
    AddMasterRequest, CampaignRequest, CampaignResponse, MembersRequest, MembersResponse,
    RaftMember, RemoveMasterRequest, SnapshotRequest, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse,
};
use hearth_proto::status::not_leader;
use hearth_raft_store::openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use hearth_raft_store::openraft::{self, ChangeMembers, Membership, ServerState};
use hearth_raft_store::{BasicNode, NodeId, TypeConfig};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

type Metrics = openraft::RaftMetrics<NodeId, BasicNode>;
type WriteError = RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>;
type WriteResponse = openraft::raft::ClientWriteResponse<TypeConfig>;

/// How long a new master may take to catch up and become a voter, by default.
const ADD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a removal may take to commit, by default.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a leadership transfer (and the target's campaign) may take, by default.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long building a snapshot may take, by default.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(30);
/// The least time left for promoting a caught-up learner, however long it took.
const MIN_COMMIT_TIME: Duration = Duration::from_secs(5);

/// The `RaftAdmin` gRPC service of one Raft master.
pub struct AdminServer {
    h: Arc<RaftHandle>,
}

impl AdminServer {
    pub fn service(h: Arc<RaftHandle>) -> RaftAdminServer<AdminServer> {
        RaftAdminServer::new(AdminServer { h })
    }
}

fn timeout_or(ms: u64, default: Duration) -> Duration {
    if ms == 0 {
        default
    } else {
        Duration::from_millis(ms)
    }
}

fn leads(m: &Metrics, id: NodeId) -> bool {
    m.state == ServerState::Leader && m.current_leader == Some(id)
}

fn address_of(m: &Metrics, id: NodeId) -> Option<String> {
    m.membership_config
        .membership()
        .get_node(&id)
        .map(|n| n.addr.clone())
}

/// The highest log index the leader knows to be on `id` (leader's metrics only).
fn matched(m: &Metrics, id: NodeId) -> Option<u64> {
    match m.replication.as_ref()?.get(&id) {
        Some(progress) => progress.as_ref().map(|l| l.index),
        // The leader's own entry, when openraft does not list it.
        None if id == m.id => m.last_log_index,
        None => None,
    }
}

/// `1=host:port,2=host:port`: every node of a membership, as --peers spells it.
fn peer_list(membership: &Membership<NodeId, BasicNode>) -> String {
    membership
        .nodes()
        .map(|(id, n)| format!("{id}={}", n.addr))
        .collect::<Vec<_>>()
        .join(",")
}

fn voter_list(membership: &Membership<NodeId, BasicNode>) -> String {
    membership
        .voter_ids()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a group of `voters` survives, for the operator.
fn tolerance(voters: usize) -> String {
    let f = voters.saturating_sub(1) / 2;
    match f {
        0 => format!("{voters} voter(s): losing any one stops the group"),
        f => format!("{voters} voters: the group keeps working with {f} of them down"),
    }
}

fn check_address(addr: &str) -> Result<(), Status> {
    let ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "{addr:?} is not host:port; give the new master's gRPC address exactly as in its --peers entry"
        )))
    }
}

fn fatal(e: impl std::fmt::Display) -> Status {
    Status::internal(format!(
        "this master's Raft has stopped ({e}); its log says why, restart it"
    ))
}

/// Runs `fut` until `deadline`, mapping a timeout to `on_timeout`'s status.
async fn until<T>(
    deadline: Instant,
    fut: impl Future<Output = T>,
    on_timeout: impl FnOnce() -> Status,
) -> Result<T, Status> {
    tokio::time::timeout_at(deadline, fut)
        .await
        .map_err(|_| on_timeout())
}

fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

impl AdminServer {
    fn metrics(&self) -> Metrics {
        self.h.metrics()
    }

    /// The not-leader answer, with the leader's address when another master leads.
    fn not_leader(&self, m: &Metrics) -> Status {
        let hint = m
            .current_leader
            .filter(|l| *l != self.h.id)
            .and_then(|l| address_of(m, l));
        not_leader(hint.as_deref())
    }

    /// This master's metrics if it leads, else the not-leader answer. A leader that is
    /// no longer a voter (it removed itself) is about to step down and answers as a
    /// non-leader: openraft 0.9 must not be handed another membership change by it.
    fn leader(&self) -> Result<Metrics, Status> {
        let m = self.metrics();
        let voter = m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == self.h.id);
        if leads(&m, self.h.id) && voter {
            Ok(m)
        } else {
            Err(self.not_leader(&m))
        }
    }

    /// Waits (until `deadline`) for the metrics to satisfy `cond`; `None` on timeout.
    async fn wait_for(
        &self,
        deadline: Instant,
        what: &str,
        cond: impl Fn(&Metrics) -> bool + Send + Sync,
    ) -> Result<Option<Metrics>, Status> {
        match self
            .h
            .raft
            .wait(Some(left(deadline)))
            .metrics(|m| cond(m), what)
            .await
        {
            Ok(m) => Ok(Some(m)),
            Err(openraft::metrics::WaitError::Timeout(..)) => Ok(None),
            Err(e @ openraft::metrics::WaitError::ShuttingDown) => Err(fatal(e)),
        }
    }

    /// The answer to a failed membership change.
    fn write_error(&self, what: &str, e: WriteError) -> Status {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                let hint = f.leader_node.map(|n| n.addr).filter(|a| {
                    address_of(&self.metrics(), self.h.id).as_deref() != Some(a.as_str())
                });
                not_leader(hint.as_deref())
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(
                ChangeMembershipError::InProgress(p),
            )) => Status::failed_precondition(format!(
                "{what}: another membership change is still in progress ({p}); \
                 wait until `hearth cluster members` no longer shows a joint membership, then retry"
            )),
            RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
                Status::failed_precondition(format!("{what}: {c}"))
            }
            RaftError::Fatal(f) => fatal(f),
        }
    }

    /// Commits one membership change before `deadline`, then waits until this master's
    /// metrics show it (so the answer lists the new membership).
    async fn change(
        &self,
        what: &str,
        changes: ChangeMembers<NodeId, BasicNode>,
        deadline: Instant,
    ) -> Result<WriteResponse, Status> {
        let resp = until(
            deadline,
            self.h.raft.change_membership(changes, false),
            || {
                Status::deadline_exceeded(format!(
                    "{what}: proposed but not committed in time (a quorum of the old and the \
                     new voters must be reachable); it may still take effect: check \
                     `hearth cluster members` before retrying"
                ))
            },
        )
        .await?
        .map_err(|e| self.write_error(what, e))?;
        let at = Some(resp.log_id);
        let shown = Instant::now() + MIN_COMMIT_TIME;
        self.wait_for(shown, "the new membership in the metrics", |m| {
            m.membership_config.log_id() >= &at
        })
        .await?;
        Ok(resp)
    }

    /// Every member with its role as `m` (this master's view) shows it.
    fn members_response(&self, m: &Metrics, message: String) -> MembersResponse {
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let leading = leads(m, self.h.id);
        let members = membership
            .nodes()
            .map(|(id, node)| {
                let voter = voters.contains(id);
                let progress = if leading { matched(m, *id) } else { None };
                let role = super::member_role(m, *id, &voters, leading);
                RaftMember {
                    id: *id,
                    address: node.addr.clone(),
                    role: role.as_str().to_owned(),
                    voter,
                    matched_index: progress,
                }
            })
            .collect();
        MembersResponse {
            answered_by: self.h.id,
            term: m.current_term,
            leader_id: m.current_leader,
            leader_address: m.current_leader.and_then(|l| address_of(m, l)),
            last_log_index: m.last_log_index,
            last_applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            members,
            joint: membership.get_joint_config().len() > 1,
            message,
        }
    }

    async fn add_master(
        &self,
        id: NodeId,
        addr: String,
        wait: Duration,
    ) -> Result<MembersResponse, Status> {
        check_address(&addr)?;
        let m = self.leader()?;
        let deadline = Instant::now() + wait;
        let membership = m.membership_config.membership();
        if let Some((other, _)) = membership
            .nodes()
            .find(|(other, n)| **other != id && n.addr == addr)
        {
            return Err(Status::failed_precondition(format!(
                "{addr} is already the address of master {other}; each master needs its own address"
            )));
        }
        if let Some(node) = membership.get_node(&id) {
            if node.addr != addr {
                return Err(Status::failed_precondition(format!(
                    "master {id} is already a member at {}; to move it, run \
                     `hearth cluster remove-master {id}` first, then add it at {addr} \
                     (started on an empty directory)",
                    node.addr
                )));
            }
            if membership.voter_ids().any(|v| v == id) {
                let msg = format!("master {id} ({addr}) is already a voter; nothing changed");
                return Ok(self.members_response(&m, msg));
            }
            // A learner already (an earlier add that did not finish): catch up, promote.
        }
        let added = until(
            deadline,
            self.h
                .raft
                .add_learner(id, BasicNode { addr: addr.clone() }, false),
            || Status::deadline_exceeded(format!(
                "adding master {id} as a learner was not committed in time; check `hearth cluster members` and retry"
            )),
        )
        .await?
        .map_err(|e| self.write_error(&format!("adding master {id} as a learner"), e))?;
        let want = added.log_id.index;
        let me = self.h.id;
        let caught_up = self
            .wait_for(deadline, "the new learner to catch up", |m| {
                !leads(m, me)
                    || m.membership_config.membership().get_node(&id).is_none()
                    || matched(m, id).is_some_and(|i| i >= want)
            })
            .await?;
        let Some(m) = caught_up else {
            let peers = peer_list(self.metrics().membership_config.membership());
            return Err(Status::deadline_exceeded(format!(
                "master {id} ({addr}) was added as a learner but did not catch up within {wait:?}. \
                 Is it running, on an empty directory, with --id {id} --peers {peers}? \
                 It stays a learner (it does not vote): run add-master again once it runs, \
                 or `hearth cluster remove-master {id}` to undo"
            )));
        };
        if !leads(&m, me) {
            // Nothing is lost: the learner stays; the client re-sends to the new leader,
            // which finds it a learner and promotes it.
            return Err(self.not_leader(&m));
        }
        if m.membership_config.membership().get_node(&id).is_none() {
            return Err(Status::aborted(format!(
                "master {id} was removed while it was catching up (a concurrent remove-master); nothing to promote"
            )));
        }
        let promote_by = deadline.max(Instant::now() + MIN_COMMIT_TIME);
        let what = format!("making master {id} a voter");
        self.change(&what, ChangeMembers::AddVoterIds([id].into()), promote_by)
            .await?;
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let msg = format!(
            "master {id} ({addr}) caught up and is now a voter; voters: {} ({}). \
             From now on start every master with --peers {}",
            voter_list(membership),
            tolerance(membership.voter_ids().count()),
            peer_list(membership)
        );
        tracing::info!(id, %addr, "raft admin: added a master");
        Ok(self.members_response(&m, msg))
    }

    async fn remove_master(&self, id: NodeId, wait: Duration) -> Result<MembersResponse, Status> {
        let m = self.leader()?;
        let deadline = Instant::now() + wait;
        let membership = m.membership_config.membership();
        let Some(node) = membership.get_node(&id) else {
            return Err(Status::not_found(format!(
                "master {id} is not a member of the group (members: {})",
                peer_list(membership)
            )));
        };
        let addr = node.addr.clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let what = format!("removing master {id}");
        if voters.contains(&id) {
            if voters.len() == 1 {
                return Err(Status::failed_precondition(format!(
                    "master {id} is the last voter; a group needs at least one. \
                     Add another master first (`hearth cluster add-master`)"
                )));
            }
            self.change(&what, ChangeMembers::RemoveVoters([id].into()), deadline)
                .await?;
        } else {
            self.change(&what, ChangeMembers::RemoveNodes([id].into()), deadline)
                .await?;
        }
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let rest = format!(
            "voters: {} ({}). Stop master {id} now; from now on start the others with --peers {}",
            voter_list(membership),
            tolerance(membership.voter_ids().count()),
            peer_list(membership)
        );
        let msg = if id == self.h.id {
            format!(
                "master {id} ({addr}), the leader that answers, is removed: it steps down and \
                 the remaining voters elect a new leader within a few election timeouts; {rest}"
            )
        } else {
            format!("master {id} ({addr}) is removed; {rest}")
        };
        tracing::info!(id, %addr, "raft admin: removed a master");
        Ok(self.members_response(&m, msg))
    }

    async fn transfer(
        &self,
        to: Option<NodeId>,
        wait: Duration,
    ) -> Result<TransferLeaderResponse, Status> {
        let m = self.leader()?;
        let me = self.h.id;
        let deadline = Instant::now() + wait;
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let target = match to {
            Some(t) if t == me => {
                return Ok(TransferLeaderResponse {
                    leader_id: me,
                    leader_address: address_of(&m, me).unwrap_or_default(),
                    term: m.current_term,
                    previous_leader_id: me,
                    message: format!("master {me} already leads; nothing changed"),
                })
            }
            Some(t) if voters.contains(&t) => t,
            Some(t) if membership.get_node(&t).is_some() => {
                return Err(Status::failed_precondition(format!(
                    "master {t} is a learner and cannot lead; voters: {}",
                    voter_list(membership)
                )))
            }
            Some(t) => {
                return Err(Status::not_found(format!(
                    "master {t} is not a member; voters: {}",
                    voter_list(membership)
                )))
            }
            None => {
                if voters.len() == 1 {
                    return Err(Status::failed_precondition(format!(
                        "master {me} is the only voter; there is no one to hand leadership to. \
                         Add a master first (`hearth cluster add-master`)"
                    )));
                }
                // The most caught-up reachable follower (the lowest id on a tie), once
                // one has acknowledged this leader (not at once after an election).
                let reached =
                    |m: &Metrics| voters.iter().any(|v| *v != me && matched(m, *v).is_some());
                let m = match self
                    .wait_for(deadline, "a follower to acknowledge the leader", |m| {
                        !leads(m, me) || reached(m)
                    })
                    .await?
                {
                    Some(m) if !leads(&m, me) => return Err(self.not_leader(&m)),
                    Some(m) => m,
                    None => m.clone(),
                };
                voters
                    .iter()
                    .filter(|v| **v != me)
                    .filter_map(|v| matched(&m, *v).map(|i| (i, *v)))
                    .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
                    .map(|(_, v)| v)
                    .ok_or_else(|| {
                        Status::failed_precondition(format!(
                            "no follower has acknowledged any log entry from master {me}; \
                             check that the other voters ({}) run and reach it",
                            voter_list(membership)
                        ))
                    })?
            }
        };
        let addr = address_of(&m, target).unwrap_or_default();
        // The target must hold everything this leader has before it campaigns, or the
        // voters refuse it (a shorter log) and another master wins.
        let want = m.last_log_index.unwrap_or(0);
        let synced = self
            .wait_for(deadline, "the transfer target to catch up", |m| {
                !leads(m, me) || matched(m, target).is_some_and(|i| i >= want)
            })
            .await?;
        let Some(synced) = synced else {
            let why = format!(
                "master {target} ({addr}) did not catch up with the leader's log (index {want}) \
                 within {wait:?}; is it running? Nothing changed, master {me} still leads"
            );
            return Err(Status::deadline_exceeded(why));
        };
        if !leads(&synced, me) {
            return Err(self.not_leader(&synced));
        }
        // This leader votes for the target in the next term: that makes it a follower
        // at once, so it appends nothing more that the target would lack (openraft 0.9
        // cannot pause a leader), and it is one vote the target's campaign already has.
        // It grants it only if the target's log is at least its own, and not within its
        // own lease (election-timeout-max after it was elected): retried until then.
        let cfg = self.h.raft.config();
        let every = Duration::from_millis(cfg.heartbeat_interval);
        let (term, their_log) = loop {
            let m = self.metrics();
            if !leads(&m, me) {
                return Err(self.not_leader(&m));
            }
            let their_log = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&target).copied().flatten());
            let vote = openraft::Vote::new(m.current_term + 1, target);
            let resp = self
                .h
                .raft
                .vote(openraft::raft::VoteRequest::new(vote, their_log))
                .await
                .map_err(fatal)?;
            if resp.vote_granted {
                break (m.current_term, their_log);
            }
            if Instant::now() >= deadline {
                return Err(Status::deadline_exceeded(format!(
                    "master {target} ({addr}) never held this leader's whole log within {wait:?} \
                     (writes kept coming); nothing changed, master {me} still leads. Retry when \
                     the cluster is quieter, or with a longer --timeout"
                )));
            }
            let round = (Instant::now() + every).min(deadline);
            self.wait_for(round, "the target to catch up", |m| !leads(m, me))
                .await?;
        };
        tracing::info!(
            from = me,
            to = target,
            term,
            "raft admin: handing leadership over"
        );
        let campaign = CampaignRequest {
            leader_id: me,
            term,
            min_log_index: their_log.map_or(0, |l| l.index),
            timeout_ms: left(deadline).as_millis() as u64,
        };
        let asked = until(
            deadline + Duration::from_secs(2),
            campaign_at(&addr, campaign),
            || Status::deadline_exceeded("no answer"),
        )
        .await
        .and_then(|r| r);
        let settled = self
            .wait_for(deadline + Duration::from_secs(1), "the new leader", |m| {
                m.current_leader == Some(target)
            })
            .await?;
        match (asked, settled) {
            // Its answer may have been lost; what counts is that this master sees it lead.
            (_, Some(m)) => Ok(TransferLeaderResponse {
                leader_id: target,
                leader_address: addr.clone(),
                term: m.current_term,
                previous_leader_id: me,
                message: format!(
                    "leadership moved from master {me} to master {target} ({addr}) in term {}",
                    m.current_term
                ),
            }),
            (asked, _) => {
                let why = match asked {
                    Ok(r) => format!(
                        "it reports leading in term {} but master {me} has not heard from it",
                        r.into_inner().term
                    ),
                    Err(s) => s.message().to_owned(),
                };
                let m = self.metrics();
                let now = match m.current_leader {
                    Some(l) if l == me && leads(&m, me) => format!("master {me} still leads"),
                    Some(l) => format!(
                        "master {l} ({}) leads now",
                        address_of(&m, l).unwrap_or_default()
                    ),
                    None => "no leader is elected yet; one will be within a few election timeouts"
                        .into(),
                };
                Err(Status::aborted(format!(
                    "master {target} ({addr}) did not take over: {why}. {now}; \
                     check `hearth cluster members` and run transfer-leader again if needed"
                )))
            }
        }
    }

    async fn campaign(&self, req: CampaignRequest) -> Result<CampaignResponse, Status> {
        let me = self.h.id;
        let wait = timeout_or(req.timeout_ms, TRANSFER_TIMEOUT);
        let deadline = Instant::now() + wait;
        let m = self.metrics();
        if leads(&m, me) {
            return Ok(CampaignResponse {
                term: m.current_term,
            });
        }
        if !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == me)
        {
            return Err(Status::failed_precondition(format!(
                "master {me} is not a voter and cannot lead"
            )));
        }
        if let Some(other) = m
            .current_leader
            .filter(|l| *l != me && *l != req.leader_id && m.current_term > req.term)
        {
            return Err(Status::failed_precondition(format!(
                "master {other} leads in term {}, after the asking leader's term {}: \
                 leadership already changed",
                m.current_term, req.term
            )));
        }
        let want = req.min_log_index;
        let synced = self
            .wait_for(deadline, "this master's log to catch up", |m| {
                m.last_log_index.unwrap_or(0) >= want
            })
            .await?;
        if synced.is_none() {
            return Err(Status::deadline_exceeded(format!(
                "master {me}'s log did not reach index {want} within {wait:?}"
            )));
        }
        // The asking leader has voted for this master in the next term and stepped down.
        // The other voters refuse a vote while they heard from it within their leader
        // lease (election-timeout-max): in a group of three, its vote and this master's
        // own are a majority at once; in a larger group a campaign repeated every half
        // election timeout wins once the leases have run out, before any follower's own
        // election (lease + election timeout) starts.
        let cfg = self.h.raft.config();
        let every = Duration::from_millis(cfg.heartbeat_interval.max(cfg.election_timeout_min / 2));
        let asker = req.leader_id;
        loop {
            let m = self.metrics();
            if leads(&m, me) {
                tracing::info!(
                    term = m.current_term,
                    "raft admin: took over leadership on request"
                );
                return Ok(CampaignResponse {
                    term: m.current_term,
                });
            }
            if let Some(other) = m.current_leader.filter(|l| *l != me && *l != asker) {
                return Err(Status::aborted(format!(
                    "master {other} won an election first (term {})",
                    m.current_term
                )));
            }
            if Instant::now() >= deadline {
                return Err(Status::deadline_exceeded(format!(
                    "master {me} did not win an election within {wait:?} (term {})",
                    m.current_term
                )));
            }
            self.h.raft.trigger().elect().await.map_err(fatal)?;
            let round = (Instant::now() + every).min(deadline);
            self.wait_for(round, "winning the election", |m| leads(m, me))
                .await?;
        }
    }

    async fn snapshot(
        &self,
        from_leader: bool,
        wait: Duration,
    ) -> Result<SnapshotResponse, Status> {
        let m = if from_leader {
            self.leader()?
        } else {
            self.metrics()
        };
        let deadline = Instant::now() + wait;
        let before = m.snapshot;
        let previous_index = before.map(|l| l.index);
        let applied = m.last_applied.map(|l| l.index);
        let answer = |l: Option<openraft::LogId<NodeId>>, built| SnapshotResponse {
            answered_by: self.h.id,
            index: l.map_or(0, |l| l.index),
            term: l.map_or(0, |l| l.leader_id.term),
            previous_index,
            built,
        };
        let Some(target) = applied.filter(|a| Some(*a) > previous_index) else {
            return Ok(answer(before, false));
        };
        let mut rx = self.h.raft.metrics();
        let mut seen = previous_index;
        self.h.raft.trigger().snapshot().await.map_err(fatal)?;
        loop {
            let snap = rx.borrow_and_update().snapshot;
            let index = snap.map(|l| l.index);
            if index >= Some(target) {
                tracing::info!(index = target, "raft admin: built a snapshot on request");
                return Ok(answer(snap, true));
            }
            if index > seen {
                // A build that was already running finished short of `target`: again.
                seen = index;
                self.h.raft.trigger().snapshot().await.map_err(fatal)?;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(fatal("shut down")),
                Err(_) => {
                    return Err(Status::deadline_exceeded(format!(
                        "the snapshot up to log index {target} was not written within {wait:?}; \
                         check this master's log and its disk"
                    )))
                }
            }
        }
    }
}

/// Asks the master at `addr` to campaign.
async fn campaign_at(
    addr: &str,
    req: CampaignRequest,
) -> Result<Response<CampaignResponse>, Status> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| Status::invalid_argument(format!("bad address {addr}: {e}")))?
        .connect_timeout(Duration::from_millis(500));
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("cannot reach {addr}: {e}")))?;
    RaftAdminClient::new(channel).campaign(req).await
}

#[tonic::async_trait]
impl RaftAdmin for AdminServer {
    async fn members(
        &self,
        req: Request<MembersRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        let m = if req.into_inner().from_leader {
            self.leader()?
        } else {
            self.metrics()
        };
        Ok(Response::new(self.members_response(&m, String::new())))
    }

    async fn add_master(
        &self,
        req: Request<AddMasterRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        let r = req.into_inner();
        let wait = timeout_or(r.timeout_ms, ADD_TIMEOUT);
        self.add_master(r.id, r.address.trim().to_owned(), wait)
            .await
            .map(Response::new)
    }

    async fn remove_master(
        &self,
        req: Request<RemoveMasterRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        let r = req.into_inner();
        let wait = timeout_or(r.timeout_ms, REMOVE_TIMEOUT);
        self.remove_master(r.id, wait).await.map(Response::new)
    }

    async fn transfer_leader(
        &self,
        req: Request<TransferLeaderRequest>,
    ) -> Result<Response<TransferLeaderResponse>, Status> {
        let r = req.into_inner();
        let wait = timeout_or(r.timeout_ms, TRANSFER_TIMEOUT);
        self.transfer(r.to, wait).await.map(Response::new)
    }

    async fn campaign(
        &self,
        req: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        self.campaign(req.into_inner()).await.map(Response::new)
    }

    async fn snapshot(
        &self,
        req: Request<SnapshotRequest>,
    ) -> Result<Response<SnapshotResponse>, Status> {
        let r = req.into_inner();
        let wait = timeout_or(r.timeout_ms, SNAPSHOT_TIMEOUT);
        self.snapshot(r.from_leader, wait).await.map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn tolerance_counts_failures_a_group_survives() {
        assert_eq!(tolerance(1), "1 voter(s): losing any one stops the group");
        assert_eq!(tolerance(2), "2 voter(s): losing any one stops the group");
        assert_eq!(
            tolerance(5),
            "5 voters: the group keeps working with 2 of them down"
        );
    }

    #[test]
    fn addresses_must_be_host_and_port() {
        assert!(check_address("127.0.0.1:7077").is_ok());
        assert!(check_address("h:0").is_err());
        assert!(check_address(":7077").is_err());
        assert!(check_address("h").is_err());
    }

    #[test]
    fn peer_lists_read_like_the_flag() {
        let nodes: BTreeMap<NodeId, BasicNode> = [
            (1, BasicNode { addr: "a:1".into() }),
            (2, BasicNode { addr: "b:2".into() }),
        ]
        .into();
        let m = Membership::new(vec![[1].into()], nodes);
        assert_eq!(peer_list(&m), "1=a:1,2=b:2");
        assert_eq!(voter_list(&m), "1");
    }
}
