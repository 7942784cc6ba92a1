//! The leadership supervisor (Raft mode): follows Raft's metrics and makes this process
//! the acting master while it leads, a standby otherwise.
//!
//! - When this master becomes leader of a term, it waits until its state machine holds
//!   every entry of earlier terms (an entry of its own term applied, then the whole local
//!   log) and a quorum has acknowledged this process as leader — a master restarted into
//!   a stale term never gets that and stands by — then builds a [`Master`] over a copy of
//!   that state, with the Raft term as its fencing token and a [`RaftJournal`], and runs
//!   the recovery protocol ([`Master::take_over`]).
//! - When it stops leading (a higher term, or it steps down) that master is dropped: its
//!   pending proposals fail ("may or may not have taken effect"), its worker queues close.
//!
//! The decisions are pure functions of what Raft reports ([`decide`], [`readiness`]),
//! tested without Raft; [`lead`] carries them out.

use crate::journal::RaftJournal;
use crate::lease::Lease;
use crate::master::Master;
use crate::node::Node;
use crate::raft::RaftHandle;
use hearth_raft_store::openraft::{RaftMetrics, ServerState};
use hearth_raft_store::{BasicNode, NodeId};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;

type Metrics = RaftMetrics<NodeId, BasicNode>;

/// What to do after Raft's metrics changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Drop the acting master (it no longer leads, or leads another term).
    pub step_down: bool,
    /// Build an acting master for this term.
    pub take_over: Option<u64>,
}

/// The supervisor's rule. `acting`: the term this process acts as master in, if any;
/// `leads`: Raft says this process is the leader of `term`.
pub(crate) fn decide(acting: Option<u64>, leads: bool, term: u64) -> Decision {
    let step_down = acting.is_some_and(|t| !leads || t != term);
    let acting = if step_down { None } else { acting };
    Decision {
        step_down,
        take_over: (leads && acting.is_none()).then_some(term),
    }
}

/// Whether a leader of `term` may take over yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// An entry of this term is applied (so every earlier entry is committed and applied
    /// here) and a quorum has acknowledged this process as leader.
    Ready,
    /// This process no longer leads `term`.
    Moved,
    NotYet,
}

/// Every entry of earlier terms is committed and applied once an entry of this term
/// (openraft's first, blank entry) is. A master restarted soon after it led comes back
/// as leader of its old term (openraft restores a committed vote for itself) with that
/// term's entries already applied from disk, possibly after the others moved on; so a
/// quorum's acknowledgement of this process (`millis_since_quorum_ack`, empty until
/// then) is needed too: a quorum that moved on never gives it. For a freshly elected
/// leader the blank entry's commit already brought it, so this costs nothing.
pub(crate) fn readiness(term: u64, m: &Metrics) -> Readiness {
    if m.current_term != term || m.state != ServerState::Leader {
        Readiness::Moved
    } else if m.last_applied.is_some_and(|l| l.leader_id.term == term)
        && m.millis_since_quorum_ack.is_some()
    {
        Readiness::Ready
    } else {
        Readiness::NotYet
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
    // The leader last seen, for `hearth_leader_changes_total`.
    let mut seen: Option<(u64, NodeId)> = None;
    loop {
        let m = metrics.borrow_and_update().clone();
        if let Some(now) = m.current_leader.map(|l| (m.current_term, l)) {
            if seen != Some(now) {
                if seen.is_some() {
                    crate::metrics::metrics().leader_changes.inc();
                }
                seen = Some(now);
            }
        }
        let leads = m.state == ServerState::Leader && m.current_leader == Some(h.id);
        let decision = decide(leading.as_ref().map(|l| l.term), leads, m.current_term);
        if decision.step_down {
            step_down(&node, leading.take().expect("leading"), &m);
        }
        if let Some(term) = decision.take_over {
            let started = Instant::now();
            match take_over(&node, &h, term).await {
                Ok(l) => {
                    let took = started.elapsed();
                    crate::metrics::metrics().take_over(took);
                    let took_ms = took.as_millis() as u64;
                    tracing::info!(term, took_ms, "leading");
                    leading = Some(l);
                    failing_since = None;
                }
                Err(e) => {
                    // Right after an election openraft may not confirm the leadership
                    // yet (its first entry is not committed): retry at once, and say so
                    // only if it lasts.
                    let since = match failing_since {
                        Some((t, at)) if t == term => at,
                        _ => failing_since.insert((term, Instant::now())).1,
                    };
                    if since.elapsed() > Duration::from_secs(1) {
                        tracing::warn!(term, error = %e, "could not take over; retrying");
                    } else {
                        tracing::debug!(term, error = %e, "not confirmed as leader yet; retrying");
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
        let m = h.raft.metrics().borrow().clone();
        step_down(&node, l, &m);
    }
}

/// Waits until this leader of `term` may act ([`readiness`]) and its state machine
/// holds its whole local log (a retake within one term).
async fn await_ready(h: &RaftHandle, term: u64) -> Result<(), String> {
    let m = h
        .raft
        .wait(Some(Duration::from_secs(5)))
        .metrics(
            |m| readiness(term, m) != Readiness::NotYet,
            "this term's first entry applied and a quorum's acknowledgement",
        )
        .await
        .map_err(|e| format!("waiting for this term's first entry: {e}"))?;
    if readiness(term, &m) == Readiness::Moved {
        tracing::info!(
            term,
            now_term = m.current_term,
            "did not take over: no longer the leader of this term (a quorum has moved on)"
        );
        return Err(format!("no longer leading in term {term}"));
    }
    let last = h.raft.metrics().borrow().last_log_index.unwrap_or(0);
    let mut reader = h.reader.clone();
    tokio::time::timeout(Duration::from_secs(5), reader.wait_applied(last))
        .await
        .map_err(|_| format!("the state machine did not reach log index {last}"))?;
    Ok(())
}

/// Builds the acting master of `term` over a copy of the replica and runs its recovery
/// protocol; it acts (answers writes, runs its loops) only once that is durable.
async fn take_over(node: &Arc<Node>, h: &Arc<RaftHandle>, term: u64) -> Result<Leading, String> {
    let started = Instant::now();
    await_ready(h, term).await?;
    let ready = started.elapsed();
    let (_, state) = h.reader.cloned();
    let copied = started.elapsed();
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
    // What the workers watching this master offered to register with, read before
    // acting (their watches end as soon as it acts): those that match the state are
    // registered by the take-over itself.
    let offers = node.offers();
    if let Err(e) = master.take_over(&offers).await {
        depose();
        master.dispatcher().close_all();
        return Err(e.to_string());
    }
    // Where a slow take-over spends its time (the "leading" line says how long in all).
    tracing::info!(
        term,
        ready_ms = ready.as_millis() as u64,
        copied_ms = (copied - ready).as_millis() as u64,
        recovery_begun_ms = (started.elapsed() - copied).as_millis() as u64,
        "the state is this leader's: its term applied, the replica copied, recovery begun"
    );
    let (stop, stop_rx) = watch::channel(false);
    let loops = crate::loops::spawn(master.clone(), stop_rx);
    // Who watches, read before acting: their watches end as soon as it acts.
    let watching = node.watchers();
    node.set_acting(Some(master.clone()));
    master
        .announce(&watching)
        .instrument(master.span().clone())
        .await;
    Ok(Leading {
        term,
        master,
        depose,
        stop,
        loops,
    })
}

fn step_down(node: &Node, l: Leading, m: &Metrics) {
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
    use hearth_raft_store::openraft::{CommittedLeaderId, LogId};

    fn decision(step_down: bool, take_over: Option<u64>) -> Decision {
        Decision {
            step_down,
            take_over,
        }
    }

    #[test]
    fn the_supervisor_acts_exactly_while_raft_says_it_leads_that_term() {
        // A standby that becomes leader of term 3 takes over.
        assert_eq!(decide(None, true, 3), decision(false, Some(3)));
        // A standby that does not lead does nothing.
        assert_eq!(decide(None, false, 3), decision(false, None));
        // Acting in term 3 while leading term 3: nothing to do.
        assert_eq!(decide(Some(3), true, 3), decision(false, None));
        // Deposed: step down, take nothing over.
        assert_eq!(decide(Some(3), false, 4), decision(true, None));
        // Leader again in a later term (re-elected): drop the old master, build a new one.
        assert_eq!(decide(Some(3), true, 5), decision(true, Some(5)));
    }

    fn metrics(term: u64, state: ServerState, applied_term: Option<u64>, acked: bool) -> Metrics {
        let mut m = Metrics::new_initial(1);
        m.current_term = term;
        m.state = state;
        m.last_applied = applied_term.map(|t| LogId::new(CommittedLeaderId::new(t, 1), 7));
        m.millis_since_quorum_ack = acked.then_some(3);
        m
    }

    #[test]
    fn a_leader_takes_over_once_its_term_is_applied_and_a_quorum_acknowledged_it() {
        use Readiness::*;
        use ServerState::{Follower, Leader};
        assert_eq!(readiness(4, &metrics(4, Leader, Some(4), true)), Ready);
        // Its first entry is not applied yet.
        assert_eq!(readiness(4, &metrics(4, Leader, Some(3), true)), NotYet);
        assert_eq!(readiness(4, &metrics(4, Leader, None, true)), NotYet);
        // Restarted into its old term: entries of that term applied from disk, but no
        // quorum has acknowledged this process.
        assert_eq!(readiness(4, &metrics(4, Leader, Some(4), false)), NotYet);
        // The group moved on, or this process no longer leads.
        assert_eq!(readiness(4, &metrics(5, Leader, Some(5), true)), Moved);
        assert_eq!(readiness(4, &metrics(4, Follower, Some(4), true)), Moved);
    }
}
