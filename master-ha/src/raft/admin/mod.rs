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

mod transfer;

use super::RaftHandle;
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

    /// Refuses an address that another master has or a move of `id`; answers at once
    /// when `id` is a voter already. `None`: go on (a learner already, from an earlier
    /// add that did not finish, is caught up and promoted).
    fn already_added(
        &self,
        m: &Metrics,
        id: NodeId,
        addr: &str,
    ) -> Result<Option<MembersResponse>, Status> {
        let membership = m.membership_config.membership();
        if let Some((other, _)) = membership
            .nodes()
            .find(|(other, n)| **other != id && n.addr == addr)
        {
            return Err(Status::failed_precondition(format!(
                "{addr} is already the address of master {other}; each master needs its own address"
            )));
        }
        let Some(node) = membership.get_node(&id) else {
            return Ok(None);
        };
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
            return Ok(Some(self.members_response(m, msg)));
        }
        Ok(None)
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
        if let Some(done) = self.already_added(&m, id, &addr)? {
            return Ok(done);
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
        // Judged on metrics that show the membership with the learner or a later one:
        // openraft may answer `add_learner` before its metrics do (it runs on Raft's own
        // threads), and the membership before the add lacks the learner too.
        let caught_up = self
            .wait_for(deadline, "the new learner to catch up", |m| {
                let membership = &m.membership_config;
                !leads(m, me)
                    || (membership
                        .log_id()
                        .as_ref()
                        .is_some_and(|l| l.index >= want)
                        && (membership.membership().get_node(&id).is_none()
                            || matched(m, id).is_some_and(|i| i >= want)))
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
