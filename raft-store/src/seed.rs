//! Seeding a fresh Raft directory from a FILESYSTEM export document.
//!
//! The exported `ClusterState` becomes the store's snapshot at log id `LogId::default()`
//! (term 0, index 0 — where openraft's own `initialize` puts the first membership entry),
//! together with the initial membership, and the log is marked purged up to that id. So
//! the seed is part of the Raft history: a node that joins later, or a peer that starts
//! empty, receives it as a snapshot from the leader instead of replaying an empty log.
//!
//! A seeded node must **not** be `initialize`d: it already has a membership, and starts an
//! election among the seeded voters by itself. Seed every voter from the same export, or
//! seed one and start it first: its empty peers see a seeded peer, join instead of
//! initializing a group of their own (which would sit at the seed's log position, so the
//! seed would never be sent), grant it their vote and get the snapshot. A seeded master
//! started after its peers already run without the seed refuses to start (the master's
//! `raft::fresh_start` / `raft::seeded_start` rules).

use crate::db::{self, CF_META, KEY_LAST_PURGED};
use crate::state_machine::{put_snapshot, SnapshotDoc};
use crate::{BasicNode, LogId, NodeId, StoreError};
use openraft::{Membership, SnapshotMeta, StoredMembership};
use rocksdb::WriteBatch;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Makes `dir` (absent or empty) a Raft store whose state machine starts from the
/// `hearth recovery export` document `export_file`, with `voters` (id → gRPC address) as
/// the initial membership. Returns the export's LSN (for the operator's log line).
pub fn seed_from_export(
    dir: &Path,
    export_file: &Path,
    voters: &BTreeMap<NodeId, BasicNode>,
) -> Result<u64, StoreError> {
    let (lsn, state) = hearth_recovery::offline::read_export(export_file)?;
    let write_err = |what, reason: String| StoreError::Write {
        dir: dir.to_path_buf(),
        what,
        reason,
    };
    if voters.is_empty() {
        return Err(write_err("the seed", "no voters given".to_owned()));
    }
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(StoreError::NotFresh {
                    dir: dir.to_path_buf(),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err("the directory", e.to_string())),
    }
    let db = db::open_db(dir).map_err(|source| StoreError::Open {
        dir: dir.to_path_buf(),
        source,
    })?;

    let seed_id = LogId::default();
    let ids: BTreeSet<NodeId> = voters.keys().copied().collect();
    let membership = Membership::new(vec![ids], voters.clone());
    let meta = SnapshotMeta {
        last_log_id: Some(seed_id),
        last_membership: StoredMembership::new(Some(seed_id), membership),
        snapshot_id: format!("seed-lsn-{lsn}"),
    };
    let data = SnapshotDoc::encode(&state).map_err(|e| write_err("the seed", e.to_string()))?;

    // The purge mark and the snapshot in one synced batch: all seeded or nothing.
    let mut batch = WriteBatch::default();
    let purged = db::encode(&seed_id).map_err(|e| write_err("the seed", e.to_string()))?;
    batch.put_cf(db::cf(&db, CF_META), KEY_LAST_PURGED, purged);
    put_snapshot(&db, &mut batch, &meta, &data).map_err(|e| write_err("the seed", e))?;
    db::write_synced(&db, batch).map_err(|e| write_err("the seed", e.to_string()))?;
    tracing::info!(dir = %dir.display(), lsn, "seeded a raft store from an export");
    Ok(lsn)
}
