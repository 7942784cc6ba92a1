//! [`AdminClient`]: Raft administration (`RaftAdmin`) from outside the masters, for
//! `hearth cluster ...` and tests.
//!
//! Owns: finding the master that must answer (the leader for membership changes,
//! transfers and, by default, members and snapshots: a master that does not lead answers
//! with the `x-hearth-leader` hint, which is followed; an unreachable master is skipped
//! for the next of the list), and decoding the answers into typed values.
//!
//! Must not: retry a membership change or a transfer whose answer was lost (it may have
//! taken effect; the caller is told to check `hearth cluster members`), or retry a
//! refusal: both go back to the caller as they are.

use crate::masters::{parse_masters, ClientError, Idempotency, MasterClient};
use hearth_proto::auth::AuthChannel;
use hearth_proto::convert::MemberRole;
use hearth_proto::pb;
use hearth_proto::pb::raft_admin_client::RaftAdminClient;
use hearth_proto::{ConvertError, MAX_MESSAGE};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;
use tonic::{Code, Status};

/// One master of the Raft group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftMember {
    pub id: u64,
    /// Its gRPC address, `host:port`, as in `--peers`.
    pub address: String,
    pub role: MemberRole,
    /// Votes and counts for commits (a learner does not).
    pub voter: bool,
    /// The leader's view only: the highest log index known to be on this member.
    pub matched_index: Option<u64>,
}

/// The group as one master sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftMembers {
    pub answered_by: u64,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub leader_address: Option<String>,
    pub last_log_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub members: Vec<RaftMember>,
    /// A membership change is half done.
    pub joint: bool,
    /// After a change: what changed and what to do next.
    pub message: String,
}

impl RaftMembers {
    pub fn voters(&self) -> impl Iterator<Item = &RaftMember> {
        self.members.iter().filter(|m| m.voter)
    }

    pub fn member(&self, id: u64) -> Option<&RaftMember> {
        self.members.iter().find(|m| m.id == id)
    }
}

impl TryFrom<pb::MembersResponse> for RaftMembers {
    type Error = ConvertError;
    fn try_from(r: pb::MembersResponse) -> Result<Self, ConvertError> {
        let members = r
            .members
            .into_iter()
            .map(|m| {
                let role =
                    MemberRole::from_str(&m.role).map_err(|_| ConvertError::UnknownState {
                        field: "RaftMember.role",
                        value: m.role.clone(),
                        expected: MemberRole::ALL
                            .iter()
                            .map(|r| r.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
                Ok(RaftMember {
                    id: m.id,
                    address: m.address,
                    role,
                    voter: m.voter,
                    matched_index: m.matched_index,
                })
            })
            .collect::<Result<_, ConvertError>>()?;
        Ok(RaftMembers {
            answered_by: r.answered_by,
            term: r.term,
            leader_id: r.leader_id,
            leader_address: r.leader_address,
            last_log_index: r.last_log_index,
            last_applied_index: r.last_applied_index,
            snapshot_index: r.snapshot_index,
            members,
            joint: r.joint,
            message: r.message,
        })
    }
}

/// A finished leadership transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub leader_id: u64,
    pub leader_address: String,
    pub term: u64,
    pub previous_leader_id: u64,
    pub message: String,
}

/// A snapshot built (or found up to date) on one master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub answered_by: u64,
    /// The last log index the snapshot covers, and that entry's term.
    pub index: u64,
    pub term: u64,
    pub previous_index: Option<u64>,
    /// False: nothing was applied since the last snapshot; `index` is that one's.
    pub built: bool,
}

/// How a request is routed: reads are asked again after a lost answer, changes never.
use Idempotency::{AtMostOnce as Change, Idempotent as Read};

/// A `RaftAdmin` client over `ch` with hearth's message limit.
fn admin_client(ch: AuthChannel) -> RaftAdminClient<AuthChannel> {
    RaftAdminClient::new(ch)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

/// A client for the masters' `RaftAdmin` service, routed by [`MasterClient`]'s leader
/// following.
pub struct AdminClient {
    masters: MasterClient,
    /// Time allowed to find a master that answers (the leader, for leader-only calls).
    pub deadline: Duration,
}

impl AdminClient {
    pub fn new(masters: Vec<String>) -> Self {
        AdminClient {
            masters: MasterClient::new(masters),
            deadline: Duration::from_secs(30),
        }
    }

    /// From a master URL (`hearth://h1:7077,h2:7077`).
    /// Sends `credential` (the cluster secret) on every call.
    pub fn with_credential(mut self, credential: crate::Credential) -> Self {
        self.masters = self.masters.with_credential(credential);
        self
    }

    pub fn from_url(url: &str) -> Result<Self, ClientError> {
        Ok(Self::new(parse_masters(url)?))
    }

    /// The members as the leader sees them (with replication progress); with
    /// `from_leader` false, as the first master that answers sees them.
    pub async fn members(&self, from_leader: bool) -> Result<RaftMembers, ClientError> {
        let r = self
            .call(
                "members",
                Read,
                Duration::from_secs(5),
                |mut c| async move { c.members(pb::MembersRequest { from_leader }).await },
            )
            .await?;
        Ok(r.try_into()?)
    }

    /// Adds master `id` at `address` (already running on an empty directory) as a
    /// learner, waits until it caught up, makes it a voter.
    pub async fn add_master(
        &self,
        id: u64,
        address: &str,
        timeout: Duration,
    ) -> Result<RaftMembers, ClientError> {
        let what = format!("add-master {id}");
        let r = self
            .call(&what, Change, timeout, |mut c| {
                let req = pb::AddMasterRequest {
                    id,
                    address: address.to_owned(),
                    timeout_ms: millis(timeout),
                };
                async move { c.add_master(req).await }
            })
            .await?;
        Ok(r.try_into()?)
    }

    /// Removes master `id` from the group.
    pub async fn remove_master(
        &self,
        id: u64,
        timeout: Duration,
    ) -> Result<RaftMembers, ClientError> {
        let what = format!("remove-master {id}");
        let r = self
            .call(&what, Change, timeout, |mut c| async move {
                c.remove_master(pb::RemoveMasterRequest {
                    id,
                    timeout_ms: millis(timeout),
                })
                .await
            })
            .await?;
        Ok(r.try_into()?)
    }

    /// Hands leadership to `to` (else the most caught-up follower).
    pub async fn transfer_leader(
        &self,
        to: Option<u64>,
        timeout: Duration,
    ) -> Result<Transfer, ClientError> {
        let r = self
            .call("transfer-leader", Change, timeout, |mut c| async move {
                c.transfer_leader(pb::TransferLeaderRequest {
                    to,
                    timeout_ms: millis(timeout),
                })
                .await
            })
            .await?;
        if self.masters.masters().contains(&r.leader_address) {
            self.masters.prefer(r.leader_address.clone());
        }
        Ok(Transfer {
            leader_id: r.leader_id,
            leader_address: r.leader_address,
            term: r.term,
            previous_leader_id: r.previous_leader_id,
            message: r.message,
        })
    }

    /// Builds a snapshot on master `on` (else the leader).
    pub async fn snapshot(
        &self,
        on: Option<u64>,
        timeout: Duration,
    ) -> Result<SnapshotInfo, ClientError> {
        let ask = |from_leader| {
            move |mut c: RaftAdminClient<AuthChannel>| async move {
                c.snapshot(pb::SnapshotRequest {
                    from_leader,
                    timeout_ms: millis(timeout),
                })
                .await
            }
        };
        let r = match on {
            None => self.call("snapshot", Read, timeout, ask(true)).await?,
            Some(id) => {
                let members = self.members(false).await?;
                let Some(m) = members.member(id) else {
                    return Err(ClientError::Refused(Status::not_found(format!(
                        "master {id} is not a member (members: {})",
                        members
                            .members
                            .iter()
                            .map(|m| format!("{}={}", m.id, m.address))
                            .collect::<Vec<_>>()
                            .join(",")
                    ))));
                };
                let one = AdminClient {
                    masters: MasterClient::new(vec![m.address.clone()])
                        .with_credential(self.masters.credential().clone()),
                    deadline: self.deadline,
                };
                one.call("snapshot", Read, timeout, ask(false)).await?
            }
        };
        Ok(SnapshotInfo {
            answered_by: r.answered_by,
            index: r.index,
            term: r.term,
            previous_index: r.previous_index,
            built: r.built,
        })
    }

    /// Sends one request to the master that must answer it (see [`MasterClient::call`]).
    /// `work` is how long the master may take to do it; `what` names it in errors.
    async fn call<T, F, Fut>(
        &self,
        what: &str,
        retry: Idempotency,
        work: Duration,
        call: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(RaftAdminClient<AuthChannel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let limits = (work + Duration::from_secs(5), self.deadline);
        let answer = self
            .masters
            .call_service(what, retry, limits, admin_client, call)
            .await;
        answer.map_err(|e| match e {
            ClientError::Refused(s) if s.code() == Code::Unimplemented => {
                ClientError::Refused(Status::unimplemented(format!(
                    "a master does not serve Raft administration: `hearth cluster` needs \
                     masters started with --recovery-mode raft ({})",
                    s.message()
                )))
            }
            ClientError::Unknown { what, status } => ClientError::Unknown {
                what,
                status: Status::new(
                    status.code(),
                    format!("{}; check `hearth cluster members`", status.message()),
                ),
            },
            other => other,
        })
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}
