//! Leadership transfer (`hearth cluster transfer-leader`) and the target's side of it
//! (`Campaign`); the protocol is described in the parent module.

use super::{
    address_of, fatal, leads, left, matched, timeout_or, until, voter_list, AdminServer, Metrics,
    TRANSFER_TIMEOUT,
};
use hearth_proto::auth::{authed, Credential};
use hearth_proto::pb::raft_admin_client::RaftAdminClient;
use hearth_proto::pb::{CampaignRequest, CampaignResponse, TransferLeaderResponse};
use hearth_raft_store::openraft;
use hearth_raft_store::NodeId;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::time::Instant;
use tonic::{Response, Status};

/// Where the transfer goes: `Ok(None)` when this master is the target already.
type Target = Result<Option<NodeId>, Status>;

impl AdminServer {
    pub(super) async fn transfer(
        &self,
        to: Option<NodeId>,
        wait: Duration,
    ) -> Result<TransferLeaderResponse, Status> {
        let m = self.leader()?;
        let me = self.h.id;
        let deadline = Instant::now() + wait;
        let Some(target) = self.pick_target(&m, to, deadline).await? else {
            return Ok(TransferLeaderResponse {
                leader_id: me,
                leader_address: address_of(&m, me).unwrap_or_default(),
                term: m.current_term,
                previous_leader_id: me,
                message: format!("master {me} already leads; nothing changed"),
            });
        };
        let addr = address_of(&m, target).unwrap_or_default();
        self.await_target_log(&m, target, &addr, deadline, wait)
            .await?;
        let (term, their_log) = self.vote_for(target, &addr, deadline, wait).await?;
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
        self.see_campaign(target, &addr, campaign, deadline).await
    }

    /// The named voter, or (none named) the most caught-up reachable follower — the
    /// lowest id on a tie — once one has acknowledged this leader.
    async fn pick_target(&self, m: &Metrics, to: Option<NodeId>, deadline: Instant) -> Target {
        let me = self.h.id;
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        match to {
            Some(t) if t == me => Ok(None),
            Some(t) if voters.contains(&t) => Ok(Some(t)),
            Some(t) if membership.get_node(&t).is_some() => {
                Err(Status::failed_precondition(format!(
                    "master {t} is a learner and cannot lead; voters: {}",
                    voter_list(membership)
                )))
            }
            Some(t) => Err(Status::not_found(format!(
                "master {t} is not a member; voters: {}",
                voter_list(membership)
            ))),
            None if voters.len() == 1 => Err(Status::failed_precondition(format!(
                "master {me} is the only voter; there is no one to hand leadership to. \
                 Add a master first (`hearth cluster add-master`)"
            ))),
            None => self.most_caught_up(m, &voters, deadline).await.map(Some),
        }
    }

    async fn most_caught_up(
        &self,
        m: &Metrics,
        voters: &BTreeSet<NodeId>,
        deadline: Instant,
    ) -> Result<NodeId, Status> {
        let me = self.h.id;
        let reached = |m: &Metrics| voters.iter().any(|v| *v != me && matched(m, *v).is_some());
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
                    voter_list(m.membership_config.membership())
                ))
            })
    }

    /// The target must hold everything this leader has before it campaigns, or the
    /// voters refuse it (a shorter log) and another master wins.
    async fn await_target_log(
        &self,
        m: &Metrics,
        target: NodeId,
        addr: &str,
        deadline: Instant,
        wait: Duration,
    ) -> Result<(), Status> {
        let me = self.h.id;
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
        Ok(())
    }

    /// This leader votes for the target in the next term: that makes it a follower at
    /// once, so it appends nothing more that the target would lack (openraft 0.9 cannot
    /// pause a leader), and it is one vote the target's campaign already has. It grants
    /// it only if the target's log is at least its own, and not within its own lease
    /// (election-timeout-max after it was elected): retried until then. Returns the
    /// term it led and the target's last log id as it knew it.
    async fn vote_for(
        &self,
        target: NodeId,
        addr: &str,
        deadline: Instant,
        wait: Duration,
    ) -> Result<(u64, Option<openraft::LogId<NodeId>>), Status> {
        let me = self.h.id;
        let every = Duration::from_millis(self.h.raft.config().heartbeat_interval);
        loop {
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
                return Ok((m.current_term, their_log));
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
        }
    }

    /// Asks the target to campaign and answers with what this master then sees: its
    /// answer may be lost; what counts is that this master sees it lead.
    async fn see_campaign(
        &self,
        target: NodeId,
        addr: &str,
        campaign: CampaignRequest,
        deadline: Instant,
    ) -> Result<TransferLeaderResponse, Status> {
        let me = self.h.id;
        let asked = until(
            deadline + Duration::from_secs(2),
            campaign_at(addr, campaign, &self.h.opts.credential),
            || Status::deadline_exceeded("no answer"),
        )
        .await
        .and_then(|r| r);
        let settled = self
            .wait_for(deadline + Duration::from_secs(1), "the new leader", |m| {
                m.current_leader == Some(target)
            })
            .await?;
        if let Some(m) = settled {
            return Ok(TransferLeaderResponse {
                leader_id: target,
                leader_address: addr.to_owned(),
                term: m.current_term,
                previous_leader_id: me,
                message: format!(
                    "leadership moved from master {me} to master {target} ({addr}) in term {}",
                    m.current_term
                ),
            });
        }
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
            None => "no leader is elected yet; one will be within a few election timeouts".into(),
        };
        Err(Status::aborted(format!(
            "master {target} ({addr}) did not take over: {why}. {now}; \
             check `hearth cluster members` and run transfer-leader again if needed"
        )))
    }

    pub(super) async fn campaign(&self, req: CampaignRequest) -> Result<CampaignResponse, Status> {
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
        let voted_for = m.vote.leader_id().voted_for();
        campaign_allowed(&req, m.current_leader, m.current_term, voted_for, me)
            .map_err(Status::failed_precondition)?;
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
}

/// Whether a `Campaign` may be obeyed by master `me`, which follows `leader` in `term`
/// and voted for `voted_for`: only the current leader asks (it exists for a leadership
/// transfer), so the request must name the leader this master follows in that term; or
/// this master is already campaigning for the next term (a retry of the same request).
/// Anyone else (even with the secret) could otherwise move leadership at will.
pub(crate) fn campaign_allowed(
    req: &CampaignRequest,
    leader: Option<NodeId>,
    term: u64,
    voted_for: Option<NodeId>,
    me: NodeId,
) -> Result<(), String> {
    let from_leader = leader == Some(req.leader_id) && term == req.term;
    let campaigning = term == req.term.saturating_add(1) && voted_for == Some(me);
    if from_leader || campaigning {
        return Ok(());
    }
    Err(format!(
        "master {} asked for a campaign in term {}, but this master follows {} in term {term}: \
         only the current leader may ask (`hearth cluster transfer-leader`)",
        req.leader_id,
        req.term,
        leader.map_or_else(|| "no leader".to_owned(), |l| format!("master {l}")),
    ))
}

/// Asks the master at `addr` to campaign.
async fn campaign_at(
    addr: &str,
    req: CampaignRequest,
    credential: &Credential,
) -> Result<Response<CampaignResponse>, Status> {
    let endpoint = credential
        .endpoint(addr)
        .map_err(Status::invalid_argument)?
        .connect_timeout(Duration::from_millis(500));
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("cannot reach {addr}: {e}")))?;
    RaftAdminClient::new(authed(channel, credential))
        .campaign(req)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(leader_id: NodeId, term: u64) -> CampaignRequest {
        CampaignRequest {
            leader_id,
            term,
            ..Default::default()
        }
    }

    #[test]
    fn only_the_current_leader_may_ask_for_a_campaign() {
        // The leader (1, term 4) asks master 2, which follows it.
        assert_eq!(campaign_allowed(&ask(1, 4), Some(1), 4, Some(1), 2), Ok(()));
        // A retry once master 2 campaigns in term 5.
        assert_eq!(campaign_allowed(&ask(1, 4), None, 5, Some(2), 2), Ok(()));
        // A stranger, a follower, or a deposed leader asking.
        assert_eq!(
            campaign_allowed(&ask(3, 4), Some(1), 4, Some(1), 2),
            Err("master 3 asked for a campaign in term 4, but this master follows master 1 in term 4: only the current leader may ask (`hearth cluster transfer-leader`)".into())
        );
        assert!(campaign_allowed(&ask(1, 3), Some(1), 4, Some(1), 2).is_err());
        assert!(campaign_allowed(&ask(1, 4), None, 5, Some(3), 2).is_err());
        assert!(campaign_allowed(&ask(1, 4), None, 7, Some(2), 2).is_err());
    }
}
