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

use crate::masters::{parse_masters, ClientError};
use hearth_proto::convert::MemberRole;
use hearth_proto::pb;
use hearth_proto::pb::raft_admin_client::RaftAdminClient;
use hearth_proto::status::{leader_hint, LEADER_KEY};
use hearth_proto::ConvertError;
use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
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

/// How a request is routed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Reads: a lost answer is asked again.
    Read,
    /// Changes: a lost answer is reported, never sent again.
    Change,
}

/// A client for the masters' `RaftAdmin` service.
pub struct AdminClient {
    masters: Vec<String>,
    channels: Mutex<HashMap<String, Channel>>,
    preferred: Mutex<Option<String>>,
    /// Time allowed to find a master that answers (the leader, for leader-only calls).
    pub deadline: Duration,
}

impl AdminClient {
    pub fn new(masters: Vec<String>) -> Self {
        AdminClient {
            masters,
            channels: Mutex::new(HashMap::new()),
            preferred: Mutex::new(None),
            deadline: Duration::from_secs(30),
        }
    }

    /// From a master URL (`hearth://h1:7077,h2:7077`).
    pub fn from_url(url: &str) -> Result<Self, ClientError> {
        Ok(Self::new(parse_masters(url)?))
    }

    /// The members as the leader sees them (with replication progress); with
    /// `from_leader` false, as the first master that answers sees them.
    pub async fn members(&self, from_leader: bool) -> Result<RaftMembers, ClientError> {
        let r = self
            .call(
                "members",
                Retry::Read,
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
            .call(&what, Retry::Change, timeout, |mut c| {
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
            .call(&what, Retry::Change, timeout, |mut c| async move {
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
            .call(
                "transfer-leader",
                Retry::Change,
                timeout,
                |mut c| async move {
                    c.transfer_leader(pb::TransferLeaderRequest {
                        to,
                        timeout_ms: millis(timeout),
                    })
                    .await
                },
            )
            .await?;
        if let Some(leader) = self.masters.iter().find(|m| **m == r.leader_address) {
            self.prefer(leader.clone());
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
            move |mut c: RaftAdminClient<Channel>| async move {
                c.snapshot(pb::SnapshotRequest {
                    from_leader,
                    timeout_ms: millis(timeout),
                })
                .await
            }
        };
        let r = match on {
            None => {
                self.call("snapshot", Retry::Read, timeout, ask(true))
                    .await?
            }
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
                    masters: vec![m.address.clone()],
                    channels: Mutex::new(HashMap::new()),
                    preferred: Mutex::new(None),
                    deadline: self.deadline,
                };
                one.call("snapshot", Retry::Read, timeout, ask(false))
                    .await?
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

    fn channel(&self, addr: &str) -> Result<Channel, Status> {
        let mut channels = self.channels.lock().expect("channels lock");
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| Status::invalid_argument(format!("bad master address {addr}: {e}")))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }

    fn prefer(&self, addr: String) {
        *self.preferred.lock().expect("preferred lock") = Some(addr);
    }

    /// Sends one request to the master that must answer it: the preferred one (the last
    /// to answer, or the leader a hint named) first, then the list in order. `work` is
    /// how long the master may take to do it; `what` names it in errors.
    async fn call<T, F, Fut>(
        &self,
        what: &str,
        retry: Retry,
        work: Duration,
        call: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(RaftAdminClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let start = Instant::now();
        let attempt = work + Duration::from_secs(5);
        let mut next = 0usize;
        let mut backoff = Duration::from_millis(25);
        let mut tried: Vec<String> = Vec::new();
        let mut last;
        loop {
            let preferred = self.preferred.lock().expect("preferred lock").take();
            let addr = match preferred {
                Some(a) => a,
                None => {
                    let a = self.masters[next % self.masters.len()].clone();
                    next += 1;
                    a
                }
            };
            if !tried.contains(&addr) {
                tried.push(addr.clone());
            }
            let outcome = match self.channel(&addr) {
                Ok(ch) => tokio::time::timeout(attempt, call(RaftAdminClient::new(ch)))
                    .await
                    .unwrap_or_else(|_| Err(Status::deadline_exceeded(NO_ANSWER))),
                Err(s) => Err(s),
            };
            let status = match outcome {
                Ok(resp) => {
                    self.prefer(addr);
                    return Ok(resp.into_inner());
                }
                Err(s) => s,
            };
            last = format!("{addr}: {}", status.message());
            match status.code() {
                Code::Unavailable
                    if status.metadata().contains_key(LEADER_KEY)
                        || status.message().starts_with("not the leader") =>
                {
                    if let Some(leader) = leader_hint(&status).filter(|l| *l != addr) {
                        tracing::debug!(from = %addr, to = %leader, "following the leader hint");
                        self.prefer(leader);
                        continue;
                    }
                }
                // Not reached (connection refused, ...): the request never left.
                Code::Unavailable => {
                    self.channels.lock().expect("channels lock").remove(&addr);
                }
                Code::Unimplemented => {
                    return Err(ClientError::Refused(Status::unimplemented(format!(
                        "{addr} does not serve Raft administration: `hearth cluster` needs \
                         masters started with --recovery-mode raft ({})",
                        status.message()
                    ))))
                }
                // No answer: the request may have reached the master and taken effect.
                Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
                    if status.message() == NO_ANSWER || status.code() != Code::DeadlineExceeded =>
                {
                    if retry == Retry::Change {
                        return Err(ClientError::Unknown {
                            what: what.to_owned(),
                            status: Status::new(
                                status.code(),
                                format!(
                                    "{addr}: {}; check `hearth cluster members`",
                                    status.message()
                                ),
                            ),
                        });
                    }
                    self.channels.lock().expect("channels lock").remove(&addr);
                }
                _ => return Err(ClientError::Refused(status)),
            }
            if start.elapsed() >= self.deadline {
                return Err(ClientError::NoLeader {
                    waited: start.elapsed(),
                    tried: tried.join(", "),
                    last,
                });
            }
            // After a full round of the list without an answer, back off a little.
            if next.is_multiple_of(self.masters.len()) {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    }
}

/// The message of a request this client gave up waiting for.
const NO_ANSWER: &str = "no answer in time";

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}
