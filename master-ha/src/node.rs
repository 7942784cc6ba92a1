//! [`Node`]: what a master process answers with. In recovery modes none and filesystem it
//! always leads through one [`Master`]. In Raft mode a new [`Master`] is made each time
//! this process becomes leader (from the replicated state) and dropped when it stops; in
//! between it is a standby that answers writes with the leader's address and reads from
//! its replica of the state.

use crate::master::{status_of, Master, MasterConfig, ProposeError};
use crate::raft::RaftHandle;
use hearth_core::{MasterRole, WorkerRegistration};
use hearth_proto::convert::StatusView;
use hearth_proto::status::{not_leader, rejection_status};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;
use tonic::Status;

pub struct Node {
    pub config: MasterConfig,
    advertised: String,
    acting: RwLock<Option<Arc<Master>>>,
    /// Bumped whenever `acting` changes: what `WatchLeader` waits on.
    acting_changed: watch::Sender<u64>,
    /// Workers with a `WatchLeader` call waiting here: how many calls each, and the
    /// registration offered with the newest.
    watchers: Mutex<HashMap<String, Watcher>>,
    /// Numbers the `WatchLeader` calls.
    watch_calls: AtomicU64,
    raft: Option<Arc<RaftHandle>>,
}

#[derive(Default)]
struct Watcher {
    calls: usize,
    /// The registration offered with the newest call that offered one.
    offer: Option<Offer>,
}

struct Offer {
    /// The call that offered it.
    call: u64,
    reg: WorkerRegistration,
    /// Its [`report_fingerprint`](hearth_core::recovery::report_fingerprint).
    print: u64,
}

/// A worker's `WatchLeader` call waiting on this master: counted, and its offer held,
/// while it lives.
pub struct Watching<'a> {
    node: &'a Node,
    worker: String,
    call: u64,
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        let mut w = self.node.watchers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(watcher) = w.get_mut(&self.worker) {
            watcher.calls -= 1;
            if watcher.offer.as_ref().is_some_and(|o| o.call == self.call) {
                watcher.offer = None;
            }
            if watcher.calls == 0 {
                w.remove(&self.worker);
            }
        }
    }
}

impl Node {
    /// A node that always leads through `master` (recovery modes none and filesystem).
    pub fn single(master: Arc<Master>) -> Self {
        Node {
            config: master.config.clone(),
            advertised: master.advertised().to_owned(),
            acting: RwLock::new(Some(master)),
            acting_changed: watch::Sender::new(0),
            watchers: Mutex::default(),
            watch_calls: AtomicU64::new(0),
            raft: None,
        }
    }

    /// A Raft master, standby until the supervisor makes it lead.
    pub fn raft(config: MasterConfig, advertised: String, handle: Arc<RaftHandle>) -> Self {
        Node {
            config,
            advertised,
            acting: RwLock::new(None),
            acting_changed: watch::Sender::new(0),
            watchers: Mutex::default(),
            watch_calls: AtomicU64::new(0),
            raft: Some(handle),
        }
    }

    pub fn advertised(&self) -> &str {
        &self.advertised
    }

    pub fn raft_handle(&self) -> Option<&Arc<RaftHandle>> {
        self.raft.as_ref()
    }

    pub(crate) fn set_acting(&self, master: Option<Arc<Master>>) {
        *self.acting.write().expect("acting lock") = master;
        self.acting_changed.send_modify(|n| *n += 1);
    }

    /// Notified whenever this process starts or stops acting as master.
    pub fn acting_changes(&self) -> watch::Receiver<u64> {
        self.acting_changed.subscribe()
    }

    /// Counts `worker` as watching this master, and holds the registration it offers
    /// (the newest call's), until the guard is dropped.
    pub fn watching(&self, worker: &str, offer: Option<WorkerRegistration>) -> Watching<'_> {
        let call = self.watch_calls.fetch_add(1, Ordering::Relaxed);
        let offer = offer.map(|reg| {
            let print = hearth_core::recovery::report_fingerprint(&reg);
            Offer { call, reg, print }
        });
        let mut w = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        let watcher = w.entry(worker.to_owned()).or_default();
        watcher.calls += 1;
        if offer.is_some() {
            watcher.offer = offer;
        }
        Watching {
            node: self,
            worker: worker.to_owned(),
            call,
        }
    }

    /// How many workers watching here offered a registration that matches this master's
    /// replica (Raft mode; 0 otherwise): a take-over here now would register them at
    /// once, without a round trip each.
    pub fn adoptable_count(&self) -> usize {
        let Some(h) = &self.raft else { return 0 };
        h.reader.read(|s| {
            let w = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
            (w.values().filter_map(|watcher| watcher.offer.as_ref()))
                .filter(|o| {
                    hearth_core::recovery::expected_fingerprint(s, &o.reg.identity.id)
                        == Some(o.print)
                })
                .count()
        })
    }

    /// The registrations offered by the workers watching here now.
    pub fn offers(&self) -> Vec<WorkerRegistration> {
        let w = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        (w.values())
            .filter_map(|watcher| watcher.offer.as_ref().map(|o| o.reg.clone()))
            .collect()
    }

    /// How many workers have a `WatchLeader` call waiting here now.
    pub fn watching_count(&self) -> usize {
        self.watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The workers with a `WatchLeader` call waiting here now.
    pub fn watchers(&self) -> std::collections::HashSet<String> {
        let w = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        w.keys().cloned().collect()
    }

    /// The master acting now, if this process leads with a quorum behind it.
    pub fn current(&self) -> Option<Arc<Master>> {
        self.acting
            .read()
            .expect("acting lock")
            .clone()
            .filter(|m| m.holds_lease())
    }

    /// The acting master, or the not-leader answer (with the leader's address when known).
    pub fn acting(&self) -> Result<Arc<Master>, Status> {
        self.config.isolation.refuse()?;
        self.current().ok_or_else(|| self.not_leader())
    }

    /// The answer to a write this process cannot serve.
    pub fn not_leader(&self) -> Status {
        let hint = self
            .raft
            .as_ref()
            .and_then(|r| r.leader_addr())
            .filter(|a| *a != self.advertised);
        not_leader(hint.as_deref())
    }

    /// The status a failed proposal is answered with.
    pub fn propose_status(&self, e: ProposeError) -> Status {
        match e {
            ProposeError::Rejected(r) => rejection_status(&r),
            ProposeError::NotLeading {
                maybe_applied: false,
            } => self.not_leader(),
            // ABORTED: clients treat it as "may have been applied" and retry only what is
            // idempotent.
            e @ ProposeError::NotLeading {
                maybe_applied: true,
            } => Status::aborted(format!(
                "{e}; check with `hearth status` before repeating it"
            )),
        }
    }

    /// Waits until a read here sees every write acknowledged before it was asked (Raft:
    /// a quorum round trip confirming this master still leads). Other modes: at once.
    pub async fn read_barrier(&self) -> Result<(), Status> {
        match &self.raft {
            None => Ok(()),
            Some(h) => h
                .raft
                .ensure_linearizable()
                .await
                .map(|_| ())
                .map_err(|_| self.not_leader()),
        }
    }

    /// Everything `GetState` and `/json` show: the acting master's view, or a standby's
    /// replica with status STANDBY and the leader's address.
    pub async fn status(&self) -> StatusView {
        let leading = match self.current() {
            Some(m) => m.status().await,
            None => None,
        };
        let mut view = leading.unwrap_or_else(|| {
            // A standby, or a master deposed while its view waited to be durable: the
            // replica, which holds only committed commands.
            let mut view = match &self.raft {
                Some(h) => h.reader.read(|s| status_of(s, None)),
                None => status_of(&Default::default(), None),
            };
            view.status = MasterRole::Standby;
            view
        });
        if let Some(h) = &self.raft {
            view.leader = h.leader_addr();
            view.term = h.current_term();
            view.masters = h.members();
        }
        view
    }

    /// `f` of [`Node::status`], run on a blocking thread (and the view dropped there): a
    /// status of a big cluster takes hundreds of milliseconds to render (a `/json` of
    /// 100,000 executors is 7 MB), and on the runtime's worker threads that would hold up
    /// Raft's heartbeats long enough to depose this leader (bench-scale saw it).
    pub async fn render<T: Send + 'static>(
        &self,
        f: impl FnOnce(&StatusView) -> T + Send + 'static,
    ) -> T {
        let view = self.status().await;
        tokio::task::spawn_blocking(move || f(&view))
            .await
            .expect("rendering a status panicked")
    }

    /// This process's role: the acting master's recovery role, else STANDBY.
    pub async fn role(&self) -> MasterRole {
        match self.current() {
            Some(m) => m.role().await,
            None => MasterRole::Standby,
        }
    }
}
