//! [`StateMachineStore`]: the applied `ClusterState` in memory, its snapshots in RocksDB.
//!
//! The state, its last applied log id and its membership live together behind one lock,
//! so a reader or a snapshot always sees the three consistent with each other. Snapshots
//! are stored in column family `sm`: `snapshot_meta` (`SnapshotMeta`, [`crate::codec`]) and
//! `snapshot_data` (the [`SnapshotDoc`] bytes openraft ships between nodes), written in
//! one synced batch.

use crate::codec;
use crate::db::{self, CF_SM, KEY_SNAPSHOT_DATA, KEY_SNAPSHOT_META};
use crate::{Entry, LogId, NodeId, Response, StorageError, StoreError, TypeConfig};
use hearth_core::ClusterState;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, EntryPayload, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageIOError, StoredMembership,
};
use rocksdb::{WriteBatch, DB};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The `format` of a [`SnapshotDoc`].
pub const SNAPSHOT_FORMAT: &str = "hearth-raft-snapshot";
/// The `version` this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// The bytes of a Raft snapshot: this document, as JSON or in the compact form of
/// [`crate::codec`]. The log id and membership it covers travel beside it in openraft's
/// `SnapshotMeta`.
///
/// [`SnapshotDoc::encode`] still writes JSON although [`SnapshotDoc::decode`] reads both:
/// these bytes go as they are to followers (`InstallSnapshot`), and a master of a build
/// from before the compact form reads only JSON and would fail to install a compact
/// snapshot (a storage error: its Raft stops). Once every master reads both (this
/// build), a later one can write [`SnapshotDoc::encode_compact`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDoc {
    pub format: String,
    pub version: u32,
    pub state: ClusterState,
}

impl SnapshotDoc {
    /// Encodes `state` as snapshot bytes (JSON, readable by every build).
    pub fn encode(state: &ClusterState) -> Result<Vec<u8>, codec::CodecError> {
        codec::encode_json(&SnapshotDocRef::new(state))
    }

    /// Encodes `state` as compact snapshot bytes, which only builds with
    /// [`crate::codec`] read.
    pub fn encode_compact(state: &ClusterState) -> Result<Vec<u8>, codec::CodecError> {
        codec::encode(&SnapshotDocRef::new(state))
    }

    /// Decodes and checks snapshot bytes, JSON or compact.
    pub fn decode(bytes: &[u8]) -> Result<ClusterState, String> {
        let doc: SnapshotDoc =
            codec::decode(bytes).map_err(|e| format!("not a snapshot document: {e}"))?;
        if doc.format != SNAPSHOT_FORMAT || doc.version != SNAPSHOT_VERSION {
            return Err(format!(
                "snapshot is {:?} version {}, this build reads {SNAPSHOT_FORMAT:?} version {SNAPSHOT_VERSION}",
                doc.format, doc.version
            ));
        }
        Ok(doc.state)
    }
}

/// Borrowing twin of [`SnapshotDoc`], so encoding does not clone the state.
#[derive(Serialize)]
struct SnapshotDocRef<'a> {
    format: &'a str,
    version: u32,
    state: &'a ClusterState,
}

impl<'a> SnapshotDocRef<'a> {
    fn new(state: &'a ClusterState) -> Self {
        SnapshotDocRef {
            format: SNAPSHOT_FORMAT,
            version: SNAPSHOT_VERSION,
            state,
        }
    }
}

/// What the state machine holds: always updated together.
#[derive(Clone, Debug, Default)]
struct SmData {
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, BasicNode>,
    state: ClusterState,
}

/// The state-machine half of the store. Clones share everything (openraft uses a clone
/// as the snapshot builder).
#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<DB>,
    shared: Arc<RwLock<SmData>>,
    /// The last applied log id, for readers waiting for their write to be applied.
    applied_tx: Arc<watch::Sender<Option<LogId>>>,
    /// Serialises snapshot writes so a slow build never overwrites a newer snapshot.
    snapshot_write: Arc<Mutex<()>>,
}

/// A read-only view of the applied state for the master (reads, `/json`, the scheduler).
#[derive(Clone)]
pub struct StateReader {
    shared: Arc<RwLock<SmData>>,
    applied_rx: watch::Receiver<Option<LogId>>,
}

fn read_lock(l: &RwLock<SmData>) -> RwLockReadGuard<'_, SmData> {
    // `apply` never panics (hearth-core's promise), so a poisoned lock still holds a
    // consistent state.
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write_lock(l: &RwLock<SmData>) -> RwLockWriteGuard<'_, SmData> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl StateReader {
    /// Runs `f` on the applied state under the read lock (keep it short).
    pub fn read<T>(&self, f: impl FnOnce(&ClusterState) -> T) -> T {
        f(&read_lock(&self.shared).state)
    }

    /// A copy of the applied state and the log id it reflects.
    pub fn cloned(&self) -> (Option<LogId>, ClusterState) {
        let g = read_lock(&self.shared);
        (g.last_applied, g.state.clone())
    }

    /// The last applied log id.
    pub fn last_applied(&self) -> Option<LogId> {
        *self.applied_rx.borrow()
    }

    /// The membership the applied state carries.
    pub fn membership(&self) -> StoredMembership<NodeId, BasicNode> {
        read_lock(&self.shared).membership.clone()
    }

    /// Waits until the entry at `index` (or a later one) is applied. Returns `false` if
    /// the state machine was dropped first.
    pub async fn wait_applied(&mut self, index: u64) -> bool {
        self.applied_rx
            .wait_for(|applied| applied.is_some_and(|id| id.index >= index))
            .await
            .is_ok()
    }

    /// A channel that changes on every applied batch and installed snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Option<LogId>> {
        self.applied_rx.clone()
    }
}

fn snapshot_err(meta: Option<&SnapshotMeta<NodeId, BasicNode>>, e: impl ToString) -> StorageError {
    let sig = meta.map(|m| m.signature());
    StorageIOError::write_snapshot(sig, AnyError::error(e.to_string())).into()
}

impl StateMachineStore {
    /// Loads the last snapshot from `db` (empty state if there is none).
    pub(crate) fn load(db: Arc<DB>, dir: &Path) -> Result<Self, StoreError> {
        let corrupt = |what, reason: String| StoreError::Corrupt {
            dir: dir.to_path_buf(),
            what,
            reason,
        };
        let mut applied = SmData::default();
        if let Some((meta, data)) = read_snapshot(&db).map_err(|e| corrupt("snapshot", e))? {
            applied.state = SnapshotDoc::decode(&data).map_err(|e| corrupt("snapshot", e))?;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership;
        }
        let (applied_tx, _) = watch::channel(applied.last_applied);
        Ok(StateMachineStore {
            db,
            shared: Arc::new(RwLock::new(applied)),
            applied_tx: Arc::new(applied_tx),
            snapshot_write: Arc::new(Mutex::new(())),
        })
    }

    /// A read-only view of the applied state.
    pub fn reader(&self) -> StateReader {
        StateReader {
            shared: self.shared.clone(),
            applied_rx: self.applied_tx.subscribe(),
        }
    }

    /// Stores a snapshot, synced before it returns. A built snapshot (`replace_newer`
    /// false) does not replace a stored one that covers more of the log; an installed
    /// one always does, since it becomes the state machine.
    fn persist_snapshot(
        &self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        data: &[u8],
        replace_newer: bool,
    ) -> Result<bool, StorageError> {
        let _guard = self
            .snapshot_write
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !replace_newer {
            let stored: Option<SnapshotMeta<NodeId, BasicNode>> =
                db::get_value(&self.db, CF_SM, KEY_SNAPSHOT_META)
                    .map_err(|e| snapshot_err(Some(meta), e))?;
            if stored.is_some_and(|s| s.last_log_id > meta.last_log_id) {
                return Ok(false);
            }
        }
        write_snapshot(&self.db, meta, data).map_err(|e| snapshot_err(Some(meta), e))?;
        Ok(true)
    }
}

/// Adds a snapshot's meta and data to `batch`.
pub(crate) fn put_snapshot(
    db: &DB,
    batch: &mut WriteBatch,
    meta: &SnapshotMeta<NodeId, BasicNode>,
    data: &[u8],
) -> Result<(), String> {
    let sm = db::cf(db, CF_SM);
    batch.put_cf(
        sm,
        KEY_SNAPSHOT_META,
        db::encode(meta).map_err(|e| e.to_string())?,
    );
    batch.put_cf(sm, KEY_SNAPSHOT_DATA, data);
    Ok(())
}

/// Writes a snapshot's meta and data in one synced batch.
fn write_snapshot(
    db: &DB,
    meta: &SnapshotMeta<NodeId, BasicNode>,
    data: &[u8],
) -> Result<(), String> {
    let mut batch = WriteBatch::default();
    put_snapshot(db, &mut batch, meta, data)?;
    db::write_synced(db, batch).map_err(|e| e.to_string())
}

/// Reads the stored snapshot, if any.
/// A stored snapshot: its meta and its [`SnapshotDoc`] bytes.
type StoredSnapshot = (SnapshotMeta<NodeId, BasicNode>, Vec<u8>);

fn read_snapshot(db: &DB) -> Result<Option<StoredSnapshot>, String> {
    let meta = db::get_value(db, CF_SM, KEY_SNAPSHOT_META).map_err(|e| e.to_string())?;
    let data = db
        .get_cf(db::cf(db, CF_SM), KEY_SNAPSHOT_DATA)
        .map_err(|e| e.to_string())?;
    match (meta, data) {
        (Some(meta), Some(data)) => Ok(Some((meta, data))),
        (None, None) => Ok(None),
        _ => Err("snapshot meta and data are not both present".to_owned()),
    }
}

/// A snapshot id unique to this build: the last log id it covers and when it was made.
fn snapshot_id(last: Option<LogId>) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    match last {
        Some(id) => format!("{}-{}-{nanos}", id.leader_id, id.index),
        None => format!("empty-{nanos}"),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // A consistent copy: state, last applied and membership under one lock.
        let copy = read_lock(&self.shared).clone();
        let meta = SnapshotMeta {
            last_log_id: copy.last_applied,
            last_membership: copy.membership,
            snapshot_id: snapshot_id(copy.last_applied),
        };
        let data = SnapshotDoc::encode(&copy.state).map_err(|e| snapshot_err(Some(&meta), e))?;
        if !self.persist_snapshot(&meta, &data, false)? {
            tracing::info!(snapshot = %meta.snapshot_id, "a newer snapshot is stored; not replacing it");
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, BasicNode>), StorageError> {
        let g = read_lock(&self.shared);
        Ok((g.last_applied, g.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries = entries.into_iter();
        let mut responses = Vec::with_capacity(entries.size_hint().0);
        let last = {
            let mut g = write_lock(&self.shared);
            for entry in entries {
                g.last_applied = Some(entry.log_id);
                let results = match entry.payload {
                    EntryPayload::Blank => Vec::new(),
                    EntryPayload::Normal(req) => req
                        .commands
                        .iter()
                        .map(|c| hearth_core::apply(&mut g.state, c))
                        .collect(),
                    EntryPayload::Membership(m) => {
                        g.membership = StoredMembership::new(Some(entry.log_id), m);
                        Vec::new()
                    }
                };
                responses.push(Response { results });
            }
            g.last_applied
        };
        self.applied_tx.send_replace(last);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachineStore {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let state = SnapshotDoc::decode(&data).map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(meta.signature()),
                AnyError::error(e),
            ))
        })?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = data.len(), "installing a snapshot");
        // On disk first, then in memory: a crash in between restarts from this snapshot.
        self.persist_snapshot(meta, &data, true)?;
        {
            let mut g = write_lock(&self.shared);
            g.state = state;
            g.last_applied = meta.last_log_id;
            g.membership = meta.last_membership.clone();
        }
        self.applied_tx.send_replace(meta.last_log_id);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored = read_snapshot(&self.db).map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(None, AnyError::error(e)))
        })?;
        Ok(stored.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
