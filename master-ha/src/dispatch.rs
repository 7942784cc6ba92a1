//! Delivery of the leader's actions to workers: one queue and one task per worker, so a
//! worker receives its launches and kills in commit order; each request is stamped with
//! the leader's fence (term) and retried with backoff until the worker answers or the
//! worker is dropped (lost or forgotten). Launches are idempotent on the worker, so a
//! retry after a lost answer never starts a second process. A worker's connection is
//! closed after [`IDLE`] without a command and opened again for the next one.
//!
//! A worker's refusal is an observed fact, not only a log line ([`feedback`]): a launch
//! it refuses (or cannot carry out) is reported to the master as the process FAILED
//! (a driver: ERROR), so it is rescheduled; a worker that refuses this leader itself (it
//! obeyed a newer term, or it is another worker at that address now) is declared lost,
//! so nothing more is placed there. If this master was deposed, those proposals fail.

use crate::lease::Lease;
use hearth_core::{Action, AppId, Command, DriverId, DriverState, ExecutorState, Millis, WorkerId};
use hearth_proto::auth::{authed, AuthChannel, Credential};
use hearth_proto::convert::{Fence, WorkerCommand};
use hearth_proto::pb::worker_control_client::WorkerControlClient;
use hearth_proto::pb::WorkerAck;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tonic::transport::Channel;
use tracing::Instrument;

/// A command and the journal position that must be durable before it is sent.
type Queued = (u64, WorkerCommand);

struct Link {
    addr: String,
    tx: mpsc::UnboundedSender<Queued>,
}

/// A command a worker refused, for [`feedback`].
#[derive(Clone, Debug)]
pub struct Refused {
    pub worker: WorkerId,
    pub cmd: WorkerCommand,
    pub why: String,
    /// The worker refuses this leader itself, not only this command.
    pub refuses_leader: bool,
}

/// What the master commits after a refusal: the refused launch's process FAILED (a
/// driver: ERROR), and the worker lost when it refuses this leader itself.
pub fn feedback(r: &Refused, at: Millis) -> Vec<Command> {
    let message = format!("the worker refused to start it: {}", r.why);
    let mut out = Vec::new();
    match &r.cmd {
        WorkerCommand::LaunchExecutor(l) => out.push(Command::ExecutorStateChanged {
            worker: r.worker.clone(),
            app: AppId(l.app_id.clone()),
            executor: l.executor_id,
            state: ExecutorState::Failed,
            exit_code: None,
            message,
            at,
        }),
        WorkerCommand::LaunchDriver(l) => out.push(Command::DriverStateChanged {
            worker: r.worker.clone(),
            driver: DriverId(l.driver_id.clone()),
            state: DriverState::Error,
            driver_url: None,
            exit_code: None,
            message,
            at,
        }),
        WorkerCommand::KillExecutor(_) | WorkerCommand::KillDriver(_) => {}
    }
    if r.refuses_leader {
        out.push(Command::WorkerLost {
            worker: r.worker.clone(),
            reason: format!("it refuses this leader's commands: {}", r.why),
            at,
        });
    }
    out
}

pub struct Dispatcher {
    fence: Fence,
    /// The highest journal position known durable: nothing is sent to a worker that a
    /// restart of this master would not remember having decided.
    durable: watch::Receiver<u64>,
    links: Mutex<HashMap<WorkerId, Link>>,
    /// Nothing is sent while this master's lease is not held (Raft: no quorum heard
    /// within the election timeout): a cut-off leader commands no one.
    lease: Lease,
    /// The master's span (its term), for the delivery tasks' log lines.
    span: tracing::Span,
    /// The cluster secret, sent with every command.
    credential: Credential,
    /// Where refusals go (the master commits their [`feedback`]).
    refusals: mpsc::UnboundedSender<Refused>,
}

impl Dispatcher {
    pub fn new(
        fence: Fence,
        durable: watch::Receiver<u64>,
        lease: Lease,
        span: tracing::Span,
        credential: Credential,
        refusals: mpsc::UnboundedSender<Refused>,
    ) -> Self {
        Dispatcher {
            refusals,
            credential,
            fence,
            durable,
            lease,
            span,
            links: Mutex::new(HashMap::new()),
        }
    }

    /// Queues `action` for the worker at `addr` (a worker that moved gets a new link),
    /// to be sent once journal position `lsn` is durable.
    pub fn send(&self, worker: &WorkerId, addr: &str, action: &Action, lsn: u64) {
        let cmd = (lsn, WorkerCommand::new(action, self.fence));
        let mut links = self.links.lock().expect("links lock");
        let usable = links
            .get(worker)
            .is_some_and(|l| l.addr == addr && !l.tx.is_closed());
        if !usable {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = deliver(
                worker.clone(),
                addr.to_owned(),
                rx,
                self.durable.clone(),
                self.lease.clone(),
                self.credential.clone(),
                (self.refusals.clone(), self.fence.term),
            );
            tokio::spawn(task.instrument(self.span.clone()));
            links.insert(
                worker.clone(),
                Link {
                    addr: addr.to_owned(),
                    tx,
                },
            );
        }
        let _ = links[worker].tx.send(cmd);
    }

    /// Stops delivering to a worker (its pending commands are dropped).
    pub fn remove(&self, worker: &WorkerId) {
        self.links.lock().expect("links lock").remove(worker);
    }

    pub fn close_all(&self) {
        self.links.lock().expect("links lock").clear();
    }
}

/// How long a worker's delivery connection stays open without a command to carry.
const IDLE: Duration = Duration::from_secs(10);

/// Pauses before each new attempt to announce a leader to a worker that was not reached
/// (its connection failed or it did not answer within a second): about 6 s in all.
const ANNOUNCE_RETRIES_MS: [u64; 5] = [200, 400, 800, 1600, 3200];

/// Tells every worker at `addrs` that a new leader (`req`) took over, in parallel, so
/// they register with it at once rather than at their next heartbeat. A worker not
/// reached is tried again ([`ANNOUNCE_RETRIES_MS`]): one announcement lost among 5,000
/// kept a new leader RECOVERING for 13.6 s, until that worker's next heartbeat
/// (bench-scale). A worker that answers, even with a refusal (it obeyed a newer term), is
/// not asked again.
pub fn announce(
    addrs: Vec<String>,
    req: hearth_proto::pb::MasterChangedRequest,
    credential: &Credential,
) {
    for addr in addrs {
        let req = req.clone();
        let credential = credential.clone();
        tokio::spawn(
            async move {
                let Ok(endpoint) = credential.endpoint(&addr) else {
                    return;
                };
                let endpoint = endpoint
                    .connect_timeout(Duration::from_millis(300))
                    .tcp_nodelay(true);
                let mut client = worker_client(endpoint.connect_lazy(), &credential);
                let mut pauses = ANNOUNCE_RETRIES_MS.iter();
                loop {
                    let sent = tokio::time::timeout(
                        Duration::from_secs(1),
                        client.master_changed(req.clone()),
                    )
                    .await;
                    if answered(&sent) {
                        return;
                    }
                    let Some(pause) = pauses.next() else {
                        tracing::debug!(%addr, "could not announce the new leader to a worker");
                        return;
                    };
                    tokio::time::sleep(Duration::from_millis(*pause)).await;
                }
            }
            .in_current_span(),
        );
    }
}

/// Whether an announcement's outcome came from the worker itself (an answer, or a
/// refusal of its own), not from a connection that failed or a call that timed out.
fn answered<T>(sent: &Result<Result<T, tonic::Status>, tokio::time::error::Elapsed>) -> bool {
    match sent {
        Ok(Ok(_)) => true,
        Ok(Err(s)) => !matches!(
            s.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ),
        Err(_) => false,
    }
}

/// A `WorkerControl` client over `ch` with hearth's message limit and the secret.
fn worker_client(ch: Channel, credential: &Credential) -> WorkerControlClient<AuthChannel> {
    WorkerControlClient::new(authed(ch, credential))
        .max_decoding_message_size(hearth_proto::MAX_MESSAGE)
        .max_encoding_message_size(hearth_proto::MAX_MESSAGE)
}

async fn call(
    client: &mut WorkerControlClient<AuthChannel>,
    cmd: WorkerCommand,
) -> Result<WorkerAck, tonic::Status> {
    let ack = match cmd {
        WorkerCommand::LaunchExecutor(r) => client.launch_executor(r).await?,
        WorkerCommand::KillExecutor(r) => client.kill_executor(r).await?,
        WorkerCommand::LaunchDriver(r) => client.launch_driver(r).await?,
        WorkerCommand::KillDriver(r) => client.kill_driver(r).await?,
    };
    Ok(ack.into_inner())
}

/// A worker's error answer that no retry can change.
fn never_possible(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument
            | tonic::Code::FailedPrecondition
            | tonic::Code::Unauthenticated
            | tonic::Code::PermissionDenied
    )
}

fn describe(cmd: &WorkerCommand) -> String {
    match cmd {
        WorkerCommand::LaunchExecutor(r) => format!("launch {}/{}", r.app_id, r.executor_id),
        WorkerCommand::KillExecutor(r) => format!("kill {}/{}", r.app_id, r.executor_id),
        WorkerCommand::LaunchDriver(r) => format!("launch {}", r.driver_id),
        WorkerCommand::KillDriver(r) => format!("kill {}", r.driver_id),
    }
}

async fn deliver(
    worker: WorkerId,
    addr: String,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    mut durable: watch::Receiver<u64>,
    lease: Lease,
    credential: Credential,
    (refusals, term): (mpsc::UnboundedSender<Refused>, u64),
) {
    let refuse = |cmd: &WorkerCommand, why: String, refuses_leader: bool| {
        let _ = refusals.send(Refused {
            worker: worker.clone(),
            cmd: cmd.clone(),
            why,
            refuses_leader,
        });
    };
    let endpoint = match credential.endpoint(&addr) {
        Ok(e) => e
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true),
        Err(e) => {
            tracing::error!(%worker, %addr, error = %e, "worker address is not usable; its commands are dropped");
            return;
        }
    };
    let mut connected: Option<WorkerControlClient<AuthChannel>> = None;
    loop {
        let next = match tokio::time::timeout(IDLE, rx.recv()).await {
            Ok(Some(next)) => next,
            Ok(None) => return,
            Err(_idle) => {
                // Quiet for a while: close the connection (its buffers are tens of KB, a
                // leader of 5,000 workers held 5,000 of them); the next command opens one.
                connected = None;
                continue;
            }
        };
        let (lsn, cmd) = next;
        let client = connected
            .get_or_insert_with(|| worker_client(endpoint.clone().connect_lazy(), &credential));
        if durable.wait_for(|d| *d >= lsn).await.is_err() {
            return; // the master is gone
        }
        let what = describe(&cmd);
        let mut backoff = Duration::from_millis(20);
        let mut attempt = 1u32;
        loop {
            if !lease() {
                // Not a leader that a quorum confirms: wait (the master is deposed and
                // this queue dropped, or the quorum comes back).
                if rx.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let sent = tokio::time::timeout(Duration::from_secs(5), call(client, cmd.clone()))
                .await
                .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer within 5 s")));
            match sent {
                Ok(ack) => {
                    match ack.refused {
                        Some(why) => {
                            tracing::warn!(%worker, %what, %why, highest_term = ack.highest_term, "worker refused");
                            // It obeyed a newer leader, or another worker answers here.
                            let refuses_leader =
                                ack.highest_term > term || why.starts_with("addressed to worker");
                            refuse(&cmd, why, refuses_leader);
                        }
                        None => {
                            tracing::debug!(%worker, %what, duplicate = ack.duplicate, "delivered")
                        }
                    }
                    break;
                }
                Err(status) if never_possible(&status) => {
                    // The worker cannot carry it out (a malformed request) or does not
                    // let this master in: retrying would not change that.
                    tracing::warn!(%worker, %what, code = ?status.code(), error = %status.message(), "worker refused");
                    let refuses_leader = matches!(
                        status.code(),
                        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                    );
                    refuse(&cmd, status.message().to_owned(), refuses_leader);
                    break;
                }
                Err(status) => {
                    if rx.is_closed() {
                        tracing::info!(%worker, %what, "worker dropped; not retrying");
                        return;
                    }
                    tracing::warn!(%worker, %addr, %what, attempt, error = %status.message(), "delivery failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    attempt += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_proto::pb;

    fn refused(cmd: WorkerCommand, refuses_leader: bool) -> Refused {
        Refused {
            worker: WorkerId("w1".into()),
            cmd,
            why: "stale term 4 < 5".into(),
            refuses_leader,
        }
    }

    #[test]
    fn a_refused_launch_fails_and_a_worker_refusing_the_leader_is_lost() {
        let at = Millis(9);
        let launch = WorkerCommand::LaunchExecutor(pb::LaunchExecutorRequest {
            app_id: "app-1".into(),
            executor_id: 3,
            ..Default::default()
        });
        assert_eq!(
            feedback(&refused(launch, true), at),
            vec![
                Command::ExecutorStateChanged {
                    worker: WorkerId("w1".into()),
                    app: AppId("app-1".into()),
                    executor: 3,
                    state: ExecutorState::Failed,
                    exit_code: None,
                    message: "the worker refused to start it: stale term 4 < 5".into(),
                    at,
                },
                Command::WorkerLost {
                    worker: WorkerId("w1".into()),
                    reason: "it refuses this leader's commands: stale term 4 < 5".into(),
                    at,
                },
            ]
        );
        let driver = WorkerCommand::LaunchDriver(pb::LaunchDriverRequest {
            driver_id: "driver-1".into(),
            ..Default::default()
        });
        assert_eq!(
            feedback(&refused(driver, false), at),
            vec![Command::DriverStateChanged {
                worker: WorkerId("w1".into()),
                driver: DriverId("driver-1".into()),
                state: DriverState::Error,
                driver_url: None,
                exit_code: None,
                message: "the worker refused to start it: stale term 4 < 5".into(),
                at,
            }]
        );
        let kill = WorkerCommand::KillExecutor(pb::KillExecutorRequest::default());
        assert_eq!(feedback(&refused(kill, false), at), vec![]);
    }
}
