//! [`LogStore`]: the Raft log, the vote and the committed/purged marks in RocksDB.
//!
//! Layout: column family `log`, key = 8-byte big-endian index, value = `Entry`;
//! column family `meta`, keys `vote`, `committed`, `last_purged_log_id`. Values are
//! written compact and read compact or JSON ([`crate::codec`]).

use crate::codec;
use crate::db::{self, CF_LOG, CF_META, KEY_COMMITTED, KEY_LAST_PURGED, KEY_VOTE};
use crate::{Entry, LogId, NodeId, StorageError, TypeConfig};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};
use openraft::{LogIdOptionExt, Vote};
use rocksdb::{Direction, IteratorMode, WriteBatch, DB};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// The log half of the store. Cheap to clone (an `Arc` to the shared RocksDB); openraft
/// uses a clone as its log reader.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
}

/// A key after every 8-byte log key: the exclusive end of "to the end of the log".
const PAST_LAST_KEY: [u8; 9] = [0xff; 9];

fn io_err(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: impl ToString) -> StorageError {
    StorageIOError::new(subject, verb, AnyError::error(e.to_string())).into()
}

fn read_logs_err(e: impl ToString) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn write_logs_err(e: impl ToString) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Write, e)
}

impl LogStore {
    pub(crate) fn new(db: Arc<DB>) -> Self {
        LogStore { db }
    }

    fn last_purged(&self) -> Result<Option<LogId>, StorageError> {
        db::get_value(&self.db, CF_META, KEY_LAST_PURGED)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, e))
    }

    /// The entry with the highest index still in the log, if any.
    fn last_entry_id(&self) -> Result<Option<LogId>, StorageError> {
        let mut it = self
            .db
            .iterator_cf(db::cf(&self.db, CF_LOG), IteratorMode::End);
        match it.next() {
            None => Ok(None),
            Some(item) => {
                let (_, value) = item.map_err(read_logs_err)?;
                let entry: Entry = codec::decode(&value).map_err(read_logs_err)?;
                Ok(Some(entry.log_id))
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => match i.checked_add(1) {
                Some(i) => i,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => 0,
        };
        let start_key = db::index_key(start);
        let mode = IteratorMode::From(&start_key, Direction::Forward);
        let mut entries = Vec::new();
        for item in self.db.iterator_cf(db::cf(&self.db, CF_LOG), mode) {
            let (key, value) = item.map_err(read_logs_err)?;
            let index = db::key_index(&key)
                .ok_or_else(|| read_logs_err(format!("log key {key:?} is not 8 bytes")))?;
            if !range.contains(&index) {
                break;
            }
            let entry: Entry = codec::decode(&value).map_err(|e| {
                read_logs_err(format!("log entry {index} is not a valid entry: {e}"))
            })?;
            if entry.log_id.index != index {
                return Err(read_logs_err(format!(
                    "log key {index} holds entry {}",
                    entry.log_id
                )));
            }
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = self.last_purged()?;
        // An empty log after a purge ends where the purge did.
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let err = |e: String| io_err(ErrorSubject::Vote, ErrorVerb::Write, e);
        let mut batch = WriteBatch::default();
        let bytes = db::encode(vote).map_err(|e| err(e.to_string()))?;
        batch.put_cf(db::cf(&self.db, CF_META), KEY_VOTE, bytes);
        db::write_synced(&self.db, batch).map_err(|e| err(e.to_string()))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        db::get_value(&self.db, CF_META, KEY_VOTE)
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Read, e))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let err = |e: String| io_err(ErrorSubject::Store, ErrorVerb::Write, e);
        let meta = db::cf(&self.db, CF_META);
        // Not synced on purpose (see the crate docs): a lost committed mark is harmless.
        match committed {
            Some(id) => {
                let bytes = db::encode(&id).map_err(|e| err(e.to_string()))?;
                self.db.put_cf(meta, KEY_COMMITTED, bytes)
            }
            None => self.db.delete_cf(meta, KEY_COMMITTED),
        }
        .map_err(|e| err(e.to_string()))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        db::get_value(&self.db, CF_META, KEY_COMMITTED)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, e))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let log = db::cf(&self.db, CF_LOG);
        let mut batch = WriteBatch::default();
        for entry in entries {
            let bytes = db::encode(&entry)
                .map_err(|e| StorageIOError::write_log_entry(entry.log_id, AnyError::new(&e)))?;
            batch.put_cf(log, db::index_key(entry.log_id.index), bytes);
        }
        match db::write_synced(&self.db, batch) {
            Ok(()) => {
                // Only now are the entries durable: tell openraft.
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_logs_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "truncate the raft log from here on");
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            db::cf(&self.db, CF_LOG),
            &db::index_key(log_id.index)[..],
            &PAST_LAST_KEY[..],
        );
        db::write_synced(&self.db, batch).map_err(write_logs_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "purge the raft log up to here");
        // The purge mark and the deletion go in one atomic batch, so a crash cannot leave
        // a log whose first entry is not right after the mark.
        let mut batch = WriteBatch::default();
        let bytes = db::encode(&log_id).map_err(write_logs_err)?;
        batch.put_cf(db::cf(&self.db, CF_META), KEY_LAST_PURGED, bytes);
        let end = Some(log_id).next_index();
        batch.delete_range_cf(
            db::cf(&self.db, CF_LOG),
            db::index_key(0),
            db::index_key(end),
        );
        db::write_synced(&self.db, batch).map_err(write_logs_err)
    }
}
