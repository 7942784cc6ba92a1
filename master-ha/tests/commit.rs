//! `Master::commit` and dispatch, in process with a fake journal (whose fsyncs the test
//! releases by hand) and a fake worker (a real `WorkerControl` gRPC server that records
//! what it is told): the journal gets commands in commit order, nobody is answered and
//! no worker is commanded before the command is durable, and a worker's commands arrive
//! in commit order even when the first attempts fail.

mod common;

use common::wait;
use hearth_core::{ClusterState, Command, Millis};
use hearth_master::journal::{Journal, JournalError, Synced};
use hearth_master::{Master, MasterConfig};
use hearth_proto::pb;
use hearth_proto::pb::worker_control_server::{WorkerControl, WorkerControlServer};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

/// A journal that keeps what it is given and makes it "durable" only up to the
/// sequence number the test releases.
#[derive(Clone)]
struct HeldJournal {
    appended: Arc<Mutex<Vec<Command>>>,
    released: watch::Sender<u64>,
    /// The highest sequence number anyone waits for.
    asked: watch::Sender<u64>,
}

impl HeldJournal {
    fn new() -> Self {
        HeldJournal {
            appended: Arc::default(),
            released: watch::channel(0).0,
            asked: watch::channel(0).0,
        }
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.appended
            .lock()
            .unwrap()
            .iter()
            .map(Command::kind)
            .collect()
    }

    fn release_all(&self) {
        self.released.send_replace(u64::MAX);
    }

    fn hold(&self) {
        let n = self.appended.lock().unwrap().len() as u64;
        self.released.send_replace(n);
    }

    /// Waits until someone waits for a sequence number above what is released.
    async fn until_waited_on(&self) {
        let mut asked = self.asked.subscribe();
        let released = *self.released.borrow();
        asked.wait_for(|a| *a > released).await.expect("journal");
    }
}

impl Journal for HeldJournal {
    fn append(&self, cmd: &Command) -> Result<u64, JournalError> {
        let mut appended = self.appended.lock().unwrap();
        appended.push(cmd.clone());
        Ok(appended.len() as u64)
    }

    fn sync(&self, lsn: u64) -> Synced<'_> {
        self.asked.send_modify(|a| *a = (*a).max(lsn));
        let mut released = self.released.subscribe();
        Box::pin(async move {
            released.wait_for(|r| *r >= lsn).await.expect("journal");
            Ok(())
        })
    }

    fn maybe_snapshot(&self, _: &ClusterState, _: u64) -> Result<(), JournalError> {
        Ok(())
    }
}

/// A worker that records the launches it is sent, refusing the first `refuse` calls
/// with UNAVAILABLE (as a worker that is restarting would).
#[derive(Clone, Default)]
struct RecordingWorker {
    calls: Arc<Mutex<Vec<String>>>,
    refuse: Arc<Mutex<u32>>,
    /// Answers every call as a worker that has obeyed this newer term.
    fenced: Arc<Mutex<Option<u64>>>,
    /// MasterChanged calls received; the first `refuse_announcements` answered UNAVAILABLE.
    announcements: Arc<Mutex<u32>>,
    refuse_announcements: Arc<Mutex<u32>>,
}

impl RecordingWorker {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, what: String) -> Result<Response<pb::WorkerAck>, Status> {
        if let Some(highest) = *self.fenced.lock().unwrap() {
            self.calls.lock().unwrap().push(format!("{what} (stale)"));
            return Ok(Response::new(pb::WorkerAck {
                refused: Some(format!(
                    "stale term < {highest}: this worker has obeyed a newer leader"
                )),
                highest_term: highest,
                duplicate: false,
            }));
        }
        let mut refuse = self.refuse.lock().unwrap();
        if *refuse > 0 {
            *refuse -= 1;
            self.calls.lock().unwrap().push(format!("{what} (refused)"));
            return Err(Status::unavailable("restarting"));
        }
        self.calls.lock().unwrap().push(what);
        Ok(Response::new(pb::WorkerAck::default()))
    }
}

#[tonic::async_trait]
impl WorkerControl for RecordingWorker {
    async fn launch_executor(
        &self,
        r: Request<pb::LaunchExecutorRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        let r = r.into_inner();
        self.record(format!("launch {} at term {}", r.executor_id, r.term))
    }
    async fn kill_executor(
        &self,
        r: Request<pb::KillExecutorRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        self.record(format!("kill {}", r.into_inner().executor_id))
    }
    async fn launch_driver(
        &self,
        r: Request<pb::LaunchDriverRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        self.record(format!("launch {}", r.into_inner().driver_id))
    }
    async fn kill_driver(
        &self,
        r: Request<pb::WorkerKillDriverRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        self.record(format!("kill {}", r.into_inner().driver_id))
    }
    async fn master_changed(
        &self,
        _: Request<pb::MasterChangedRequest>,
    ) -> Result<Response<pb::WorkerAck>, Status> {
        *self.announcements.lock().unwrap() += 1;
        if let Some(highest) = *self.fenced.lock().unwrap() {
            return Err(Status::failed_precondition(format!(
                "stale term < {highest}"
            )));
        }
        let mut refuse = self.refuse_announcements.lock().unwrap();
        if *refuse > 0 {
            *refuse -= 1;
            return Err(Status::unavailable("restarting"));
        }
        Ok(Response::new(pb::WorkerAck::default()))
    }
    async fn read_log(
        &self,
        _: Request<pb::ReadLogRequest>,
    ) -> Result<Response<pb::ReadLogResponse>, Status> {
        Err(Status::not_found("a recording worker keeps no output"))
    }
}

/// Serves `worker` on an ephemeral loopback port; returns the port.
async fn serve(worker: RecordingWorker) -> u16 {
    let listener = common::listen(0);
    let port = listener.local_addr().unwrap().port();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(WorkerControlServer::new(worker))
            .serve_with_incoming(incoming),
    );
    port
}

/// A master over an empty state with `journal`, taken over (ALIVE).
async fn alive_master(journal: &HeldJournal) -> Arc<Master> {
    let master = Arc::new(Master::new(
        MasterConfig::default(),
        Box::new(journal.clone()),
        (ClusterState::default(), 0),
        "127.0.0.1:7077".into(),
    ));
    journal.release_all();
    master.take_over(&[]).await.expect("take over");
    master
}

fn register_worker(port: u16) -> Command {
    pb::RegisterWorkerRequest {
        worker_id: "worker-1".into(),
        host: "127.0.0.1".into(),
        port: port.into(),
        cores: 4,
        memory_mb: 4096,
        ..Default::default()
    }
    .into_command(Millis(1_000))
    .expect("a valid registration")
}

fn register_app(executors: u32) -> Command {
    Command::RegisterApp {
        desc: hearth_core::AppDescription {
            max_cores: Some(executors),
            ..common::app("ordered")
        },
        driver: None,
        driver_url: Some("127.0.0.1:1".into()),
        at: Millis(2_000),
    }
}

#[tokio::test]
async fn commands_are_journaled_in_commit_order_and_acted_on_only_once_durable() {
    let journal = HeldJournal::new();
    let master = alive_master(&journal).await;
    let worker = RecordingWorker::default();
    let port = serve(worker.clone()).await;

    // A registration is not answered before its fsync...
    journal.hold();
    let proposing = tokio::spawn({
        let master = master.clone();
        async move { master.propose(register_worker(port)).await }
    });
    journal.until_waited_on().await;
    assert!(!proposing.is_finished(), "answered before durable");
    journal.release_all();
    proposing.await.unwrap().expect("registered");
    // ...and its worker counts as heard from by the master that committed it.
    let view = master.status().await.expect("leading");
    assert!(view.workers[0].last_heartbeat.is_some(), "{view:?}");

    master.propose(register_app(3)).await.expect("app");

    // The scheduler's placements: committed, then sent only once durable.
    journal.hold();
    let scheduling = tokio::spawn({
        let master = master.clone();
        async move { master.schedule_once().await }
    });
    journal.until_waited_on().await;
    tokio::time::sleep(Duration::from_millis(300)).await; // a window to send in, if it would
    assert_eq!(worker.calls(), Vec::<String>::new(), "sent before durable");
    journal.release_all();
    assert_eq!(scheduling.await.unwrap(), 3);
    let term = master.term();
    let sent = wait("three launches", || async {
        Some(worker.calls()).filter(|c| c.len() == 3)
    })
    .await;
    assert_eq!(
        sent,
        (0..3)
            .map(|e| format!("launch {e} at term {term}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        journal.kinds(),
        // Nothing to recover in an empty state: ALIVE at once.
        ["BeginRecovery", "RegisterWorker", "RegisterApp", "Place"]
    );
}

#[tokio::test]
async fn a_workers_commands_arrive_in_commit_order_when_the_first_attempts_fail() {
    let journal = HeldJournal::new();
    let master = alive_master(&journal).await;
    let worker = RecordingWorker::default();
    *worker.refuse.lock().unwrap() = 2;
    let port = serve(worker.clone()).await;
    master.propose(register_worker(port)).await.expect("worker");
    master.propose(register_app(2)).await.expect("app");
    assert_eq!(master.schedule_once().await, 2);
    let term = master.term();
    let sent = wait("both launches delivered", || async {
        Some(worker.calls()).filter(|c| c.len() == 4)
    })
    .await;
    assert_eq!(
        sent,
        [
            format!("launch 0 at term {term} (refused)"),
            format!("launch 0 at term {term} (refused)"),
            format!("launch 0 at term {term}"),
            format!("launch 1 at term {term}"),
        ]
    );
}

/// A worker's refusal used to be only logged: the leader believed the executor
/// launched, and went on placing work on a worker that refuses it. It is now committed as
/// what it means: the refused launch FAILED (so it is rescheduled), and a worker that
/// refuses this leader itself (it obeyed a newer term) lost.
#[tokio::test]
async fn a_workers_refusal_is_committed_as_a_failed_launch_and_a_lost_worker() {
    let journal = HeldJournal::new();
    let master = alive_master(&journal).await;
    let _feedback = hearth_master::loops::feedback(master.clone());
    let worker = RecordingWorker::default();
    *worker.fenced.lock().unwrap() = Some(master.term() + 1);
    let port = serve(worker.clone()).await;
    master.propose(register_worker(port)).await.expect("worker");
    master.propose(register_app(1)).await.expect("app");
    assert_eq!(master.schedule_once().await, 1);
    wait("the refusal committed", || async {
        journal.kinds().contains(&"WorkerLost").then_some(())
    })
    .await;
    assert_eq!(
        journal.kinds(),
        [
            "BeginRecovery",
            "RegisterWorker",
            "RegisterApp",
            "Place",
            "ExecutorStateChanged",
            "WorkerLost"
        ]
    );
    let view = master.status().await.expect("leading");
    assert_eq!(view.workers[0].info.state, hearth_core::WorkerState::Dead);
    let app = &view.active_apps[0];
    assert!(app.executors.is_empty(), "{app:?}");
    assert_eq!(app.retry_count, 1);
}

/// A lease the test turns: held, or held for `n` more checks and lapsed after them. It
/// counts the checks it answered "lapsed".
#[derive(Clone)]
struct TurnedLease {
    checks_left: Arc<std::sync::atomic::AtomicI64>,
    refused: Arc<std::sync::atomic::AtomicU64>,
}

impl TurnedLease {
    const HELD: i64 = -1;

    fn new() -> Self {
        TurnedLease {
            checks_left: Arc::new(Self::HELD.into()),
            refused: Arc::default(),
        }
    }

    fn set(&self, checks_left: i64) {
        use std::sync::atomic::Ordering::SeqCst;
        self.checks_left.store(checks_left, SeqCst);
    }

    /// Checks answered "lapsed" so far.
    fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn lease(&self) -> hearth_master::lease::Lease {
        let turned = self.clone();
        Arc::new(move || {
            use std::sync::atomic::Ordering::SeqCst;
            let held = turned
                .checks_left
                .fetch_update(SeqCst, SeqCst, |n| (n > 0).then(|| n - 1))
                .map_or_else(|n| n == Self::HELD, |_| true);
            if !held {
                turned.refused.fetch_add(1, SeqCst);
            }
            held
        })
    }

    /// A master leading in term 7 under this lease, with `journal`, taken over (ALIVE).
    async fn master(&self, journal: &HeldJournal) -> Arc<Master> {
        let master = Arc::new(Master::leading(
            MasterConfig::default(),
            Box::new(journal.clone()),
            (ClusterState::default(), 0),
            "127.0.0.1:7077".into(),
            7,
            self.lease(),
        ));
        journal.release_all();
        master.take_over(&[]).await.expect("take over");
        master
    }
}

/// HA hole 2: the scheduling pass a commit kicks while the lease has lapsed (a follower's
/// fsync slower than the lease) runs again once the lease is back, although no other
/// commit comes to kick it.
#[tokio::test]
async fn a_pass_skipped_while_the_lease_lapsed_runs_once_the_lease_is_back() {
    let journal = HeldJournal::new();
    let turned = TurnedLease::new();
    let master = turned.master(&journal).await;
    let worker = RecordingWorker::default();
    let port = serve(worker.clone()).await;
    master.propose(register_worker(port)).await.expect("worker");

    // The registration's own lease check passes; the scheduling pass it kicks (started
    // only now, so it makes the next check) finds the lease lapsed and places nothing.
    turned.set(1);
    master.propose(register_app(1)).await.expect("app");
    let (_stop, stop_rx) = watch::channel(false);
    let loops = hearth_master::loops::spawn(master.clone(), stop_rx);
    wait("the pass finding the lease lapsed", || async {
        (turned.refused() > 0).then_some(())
    })
    .await;
    assert_eq!(worker.calls(), Vec::<String>::new());
    turned.set(TurnedLease::HELD);
    let placed = tokio::time::timeout(
        Duration::from_secs(2),
        wait("the executor launched", || async {
            Some(worker.calls()).filter(|c| !c.is_empty())
        }),
    )
    .await
    .expect("the skipped pass ran again within 2 s of the lease's return");
    assert_eq!(placed, ["launch 0 at term 7"]);
    for l in loops {
        l.abort();
    }
}

/// HA hole 1: a client-mode submission whose commit completes while the lease lapses
/// (a follower's fsync slower than the lease) is answered by the master that committed
/// it, not refused as "not the leader" by a second look at which master acts, which the
/// client reads as "nothing applied" and retries into a second app.
#[tokio::test]
async fn a_submission_committed_as_the_lease_lapses_is_applied_once() {
    let journal = HeldJournal::new();
    let turned = TurnedLease::new();
    let master = turned.master(&journal).await;
    let listener = common::listen(0);
    let addr = listener.local_addr().unwrap().to_string();
    let node = Arc::new(hearth_master::Node::single(master.clone()));
    tokio::spawn(hearth_master::service::serve(
        node,
        listener,
        std::future::pending(),
    ));

    journal.hold();
    let submitting = tokio::spawn(async move {
        let client = hearth_client::MasterClient::new(vec![addr]);
        let desc = common::app("once");
        client.register_app(&desc, None, Some("127.0.0.1:1")).await
    });
    journal.until_waited_on().await;
    turned.set(0); // lapses while the commit is being made durable...
    journal.release_all();
    tokio::time::sleep(Duration::from_millis(50)).await;
    turned.set(TurnedLease::HELD); // ...and is back 50 ms later
    let answered = submitting.await.unwrap();
    assert!(answered.is_ok(), "{answered:?}");
    let apps = master.status().await.expect("leading").active_apps;
    assert_eq!(apps.len(), 1, "{apps:?}");
}

/// HA hole 7: a read answers only with what is durable. While a registration waits for
/// its fsync (or Raft commit), a status read waits too, and then shows it.
#[tokio::test]
async fn a_read_never_shows_a_write_that_is_not_durable_yet() {
    let journal = HeldJournal::new();
    let master = alive_master(&journal).await;
    journal.hold();
    let proposing = tokio::spawn({
        let master = master.clone();
        async move { master.propose(register_app(1)).await }
    });
    journal.until_waited_on().await;
    let reading = tokio::spawn({
        let master = master.clone();
        async move { master.status().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await; // a window to answer in, if it would
    assert!(
        !reading.is_finished(),
        "a read answered while the registration was not durable"
    );
    journal.release_all();
    let view = reading.await.unwrap().expect("leading");
    assert_eq!(view.active_apps.len(), 1);
    proposing.await.unwrap().expect("registered");
}

#[tokio::test]
async fn a_new_leader_is_announced_again_to_a_worker_that_did_not_take_it() {
    // Two failed attempts (the worker was restarting), then it answers: three calls, and
    // none after the answer.
    let worker = RecordingWorker::default();
    *worker.refuse_announcements.lock().unwrap() = 2;
    let port = serve(worker.clone()).await;
    let req = pb::MasterChangedRequest {
        term: 7,
        ..Default::default()
    };
    hearth_master::dispatch::announce(
        vec![format!("127.0.0.1:{port}")],
        req.clone(),
        &hearth_proto::auth::Credential::default(),
    );
    let announced = || *worker.announcements.lock().unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while announced() < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("announced three times within 10 s");
    // A window in which a fourth call would come (the next pause would be 800 ms) if the
    // answer did not stop the retries.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(announced(), 3);

    // A worker that refuses for its own reasons (a newer term: FAILED_PRECONDITION, not a
    // transport failure) is asked once.
    let refusing = RecordingWorker::default();
    *refusing.fenced.lock().unwrap() = Some(9);
    let port = serve(refusing.clone()).await;
    hearth_master::dispatch::announce(
        vec![format!("127.0.0.1:{port}")],
        req,
        &hearth_proto::auth::Credential::default(),
    );
    tokio::time::timeout(Duration::from_secs(5), async {
        while *refusing.announcements.lock().unwrap() < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("announced once");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(*refusing.announcements.lock().unwrap(), 1);
}
