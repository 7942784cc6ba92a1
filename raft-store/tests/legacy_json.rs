//! Data dirs written before the compact encoding: every value JSON. They open, read and
//! keep working, and a log may hold old JSON entries followed by new compact ones.
//!
//! The old values are written here the way the old build wrote them: `serde_json::to_vec`
//! of the same openraft and hearth types, under the same column families and keys.

mod common;

use common::{log_id, normal, scenario};
use hearth_core::Command;
use hearth_raft_store::codec::{Format, COMPACT};
use hearth_raft_store::state_machine::{SNAPSHOT_FORMAT, SNAPSHOT_VERSION};
use hearth_raft_store::{open, Entry, NodeId};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{
    BasicNode, EntryPayload, Membership, RaftLogReader, SnapshotMeta, StoredMembership,
};
use openraft::{RaftSnapshotBuilder, Vote};
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, DB};
use std::collections::BTreeMap;
use std::path::Path;
use tempfile::TempDir;

/// The old build's layout (raft-store/src/db.rs).
const CFS: [&str; 3] = ["log", "meta", "sm"];

fn raw_db(dir: &Path) -> DB {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let cfs = CFS
        .into_iter()
        .map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
    DB::open_cf_descriptors(&opts, dir, cfs).expect("open the raw RocksDB")
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON")
}

/// The raw bytes of log entry `index`.
fn raw_entry(dir: &Path, index: u64) -> Vec<u8> {
    let db = raw_db(dir);
    let log = db.cf_handle("log").expect("cf log");
    db.get_cf(log, index.to_be_bytes())
        .expect("read")
        .expect("the entry is there")
}

fn raw_meta(dir: &Path, key: &[u8]) -> Vec<u8> {
    let db = raw_db(dir);
    let meta = db.cf_handle("meta").expect("cf meta");
    db.get_cf(meta, key)
        .expect("read")
        .expect("the value is there")
}

/// Writes what an old master left: a snapshot of the first two commands at index 2
/// (the log purged up to it), the next `json_entries` commands as JSON log entries, a
/// vote and a committed mark.
fn write_old_dir(dir: &Path, cmds: &[Command], json_entries: usize) {
    let db = raw_db(dir);
    let (log, meta, sm) = (
        db.cf_handle("log").unwrap(),
        db.cf_handle("meta").unwrap(),
        db.cf_handle("sm").unwrap(),
    );
    let mut state = hearth_core::ClusterState::default();
    for c in &cmds[..2] {
        hearth_core::apply(&mut state, c).expect("applies");
    }
    let snap_at = log_id(1, 2);
    let voters: BTreeMap<NodeId, BasicNode> = [(1, BasicNode::new("127.0.0.1:7077"))].into();
    let snap_meta = SnapshotMeta {
        last_log_id: Some(snap_at),
        last_membership: StoredMembership::new(
            Some(log_id(1, 1)),
            Membership::new(vec![[1].into()], voters),
        ),
        snapshot_id: "old-1-2".into(),
    };
    let doc = serde_json::json!({
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "state": state,
    });
    let mut batch = WriteBatch::default();
    batch.put_cf(sm, b"snapshot_meta", json(&snap_meta));
    batch.put_cf(sm, b"snapshot_data", json(&doc));
    batch.put_cf(meta, b"last_purged_log_id", json(&snap_at));
    batch.put_cf(meta, b"vote", json(&Vote::<NodeId>::new_committed(1, 1)));
    for (i, c) in cmds[2..2 + json_entries].iter().enumerate() {
        let index = i as u64 + 3;
        batch.put_cf(log, index.to_be_bytes(), json(&normal(1, index, c.clone())));
    }
    batch.put_cf(meta, b"committed", json(&log_id(1, 3)));
    db.write(batch).expect("write the old values");
}

fn commands_of(entries: &[Entry]) -> Vec<Command> {
    entries
        .iter()
        .flat_map(|e| match &e.payload {
            EntryPayload::Normal(r) => r.commands.clone(),
            other => panic!("expected a normal entry, got {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_json_data_dir_opens_and_a_mixed_log_reads_back_in_order() -> anyhow::Result<()> {
    let dir = TempDir::new()?;
    let (cmds, want) = scenario();
    let json_entries = 2;
    write_old_dir(dir.path(), &cmds, json_entries);
    let last_json = 2 + json_entries as u64;
    assert_eq!(
        raw_entry(dir.path(), last_json)[0],
        b'{',
        "the old entries are JSON"
    );

    // The old values read back.
    {
        let (mut log, mut sm) = open(dir.path()).await?;
        assert_eq!(log.read_vote().await?, Some(Vote::new_committed(1, 1)));
        assert_eq!(log.read_committed().await?, Some(log_id(1, 3)));
        let state = log.get_log_state().await?;
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 2)));
        assert_eq!(state.last_log_id, Some(log_id(1, last_json)));
        let old = log.try_get_log_entries(3..=last_json).await?;
        assert_eq!(commands_of(&old), cmds[2..2 + json_entries]);
        let (applied, membership) = sm.applied_state().await?;
        assert_eq!(applied, Some(log_id(1, 2)), "the JSON snapshot is loaded");
        assert_eq!(membership.voter_ids().collect::<Vec<_>>(), vec![1]);

        // New writes go compact, after the JSON ones.
        let new: Vec<Entry> = cmds[2 + json_entries..]
            .iter()
            .enumerate()
            .map(|(i, c)| normal(2, last_json + 1 + i as u64, c.clone()))
            .collect();
        log.blocking_append(new).await?;
        log.save_vote(&Vote::new_committed(2, 1)).await?;
        log.save_committed(Some(log_id(2, cmds.len() as u64)))
            .await?;
    }
    let last = cmds.len() as u64; // command k is at index k + 1
    assert_eq!(
        raw_entry(dir.path(), last_json)[0],
        b'{',
        "old entries stay as they were"
    );
    assert_eq!(
        raw_entry(dir.path(), last_json + 1)[0],
        COMPACT,
        "new entries are compact"
    );
    assert_eq!(raw_entry(dir.path(), last)[0], COMPACT);
    assert_eq!(Format::of(&raw_meta(dir.path(), b"vote")), Format::Compact);
    assert_eq!(
        Format::of(&raw_meta(dir.path(), b"committed")),
        Format::Compact
    );
    assert_eq!(
        Format::of(&raw_meta(dir.path(), b"last_purged_log_id")),
        Format::Json
    );

    // After a restart the mixed log reads back whole and in order, and applying it on the
    // JSON snapshot gives the state the commands give.
    let (mut log, mut sm) = open(dir.path()).await?;
    assert_eq!(log.read_vote().await?, Some(Vote::new_committed(2, 1)));
    assert_eq!(
        log.read_committed().await?,
        Some(log_id(2, cmds.len() as u64))
    );
    assert_eq!(
        log.get_log_state().await?.last_log_id,
        Some(log_id(2, last))
    );
    let entries = log.try_get_log_entries(3..).await?;
    assert_eq!(
        entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
        (3..=last).collect::<Vec<_>>()
    );
    assert_eq!(commands_of(&entries), cmds[2..]);
    sm.apply(entries).await?;
    assert_eq!(sm.reader().cloned().1, want);

    // Purging past the JSON entries and snapshotting rewrite the marks compact.
    log.purge(log_id(1, last_json)).await?;
    assert_eq!(
        log.try_get_log_entries(3..).await?.len(),
        cmds.len() - 2 - json_entries
    );
    let built = sm.get_snapshot_builder().await.build_snapshot().await?;
    drop((log, sm));
    assert_eq!(
        Format::of(&raw_meta(dir.path(), b"last_purged_log_id")),
        Format::Compact
    );
    let (_log, mut sm) = open(dir.path()).await?;
    assert_eq!(sm.reader().cloned().1, want);
    let current = sm.get_current_snapshot().await?.expect("a snapshot");
    assert_eq!(current.meta, built.meta);
    Ok(())
}

#[tokio::test]
async fn a_compact_snapshot_document_is_read_too() -> anyhow::Result<()> {
    // What a later build (writing compact snapshots) would leave or send: this one
    // installs it and loads it after a restart.
    let (a, b) = (TempDir::new()?, TempDir::new()?);
    let (cmds, want) = scenario();
    let (_la, mut sm_a) = open(a.path()).await?;
    let entries: Vec<Entry> = cmds
        .iter()
        .enumerate()
        .map(|(i, c)| normal(1, i as u64 + 1, c.clone()))
        .collect();
    sm_a.apply(entries).await?;
    let built = sm_a.get_snapshot_builder().await.build_snapshot().await?;
    let json_bytes = built.snapshot.into_inner();
    assert_eq!(
        Format::of(&json_bytes),
        Format::Json,
        "this build still writes JSON"
    );
    let compact = hearth_raft_store::SnapshotDoc::encode_compact(&want)?;
    {
        let (_lb, mut sm_b) = open(b.path()).await?;
        let mut data = sm_b.begin_receiving_snapshot().await?;
        *data.get_mut() = compact;
        sm_b.install_snapshot(&built.meta, data).await?;
        assert_eq!(sm_b.reader().cloned().1, want);
    }
    let (_lb, sm_b) = open(b.path()).await?;
    assert_eq!(sm_b.reader().cloned().1, want);
    Ok(())
}
