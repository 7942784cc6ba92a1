//! The RocksDB directory: column families, key encoding, and the two write paths (synced
//! and not).
//!
//! Values are written in the compact form of [`crate::codec`] (a `0x01` marker byte, then
//! postcard) and read in it or as JSON, which every value written before it was:
//! openraft's `Entry`, `Vote`, `LogId` and `SnapshotMeta`. A directory may hold both, even
//! one log of old JSON entries followed by compact ones. The one bulky value, the
//! snapshot's `ClusterState`, is stored as the raw bytes openraft ships between nodes
//! (`state_machine::SnapshotDoc`), so it is never encoded twice.

use crate::codec::{self, CodecError};
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

/// Raft log entries: key = log index as 8 big-endian bytes (so keys sort by index),
/// value = `Entry<TypeConfig>` (compact or JSON, see [`crate::codec`]).
pub(crate) const CF_LOG: &str = "log";
/// Log-side metadata: [`KEY_VOTE`], [`KEY_COMMITTED`], [`KEY_LAST_PURGED`].
pub(crate) const CF_META: &str = "meta";
/// State-machine side: [`KEY_SNAPSHOT_META`] and [`KEY_SNAPSHOT_DATA`].
pub(crate) const CF_SM: &str = "sm";

pub(crate) const KEY_VOTE: &[u8] = b"vote";
pub(crate) const KEY_COMMITTED: &[u8] = b"committed";
pub(crate) const KEY_LAST_PURGED: &[u8] = b"last_purged_log_id";
/// `SnapshotMeta` (compact or JSON): the snapshot's last applied log id, membership and id.
pub(crate) const KEY_SNAPSHOT_META: &[u8] = b"snapshot_meta";
/// The snapshot document (see `state_machine::SnapshotDoc`), as shipped to followers.
pub(crate) const KEY_SNAPSHOT_DATA: &[u8] = b"snapshot_data";

/// Opens (creating if needed) the store directory with its three column families.
pub(crate) fn open_db(dir: &Path) -> Result<Arc<DB>, rocksdb::Error> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let cfs = [CF_LOG, CF_META, CF_SM]
        .into_iter()
        .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
    DB::open_cf_descriptors(&opts, dir, cfs).map(Arc::new)
}

/// Looks up a column family that `open_db` always creates.
pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> &'a ColumnFamily {
    db.cf_handle(name)
        .unwrap_or_else(|| panic!("column family {name:?} is created by open_db"))
}

/// Write options that return only once the write-ahead log is fsynced.
pub(crate) fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

/// Applies `batch` atomically and durably.
pub(crate) fn write_synced(db: &DB, batch: WriteBatch) -> Result<(), rocksdb::Error> {
    db.write_opt(batch, &synced())
}

/// A log index as a key that sorts numerically.
pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The index a log key encodes, or `None` for a key that is not 8 bytes.
pub(crate) fn key_index(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}

/// Error raised while reading and decoding a stored value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("value under {key:?} is not valid for its type: {source}")]
    Decode { key: String, source: CodecError },
}

/// Reads and decodes a value (compact or JSON), `None` when absent.
pub(crate) fn get_value<T: DeserializeOwned>(
    db: &DB,
    cf_name: &str,
    key: &[u8],
) -> Result<Option<T>, ReadError> {
    match db.get_pinned_cf(cf(db, cf_name), key)? {
        None => Ok(None),
        Some(bytes) => codec::decode(&bytes)
            .map(Some)
            .map_err(|source| ReadError::Decode {
                key: String::from_utf8_lossy(key).into_owned(),
                source,
            }),
    }
}

/// Encodes a value for a write batch, in the compact form.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    codec::encode(value)
}
