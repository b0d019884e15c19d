//! The Raft log, vote and commit index on redb.
//!
//! Entries are stored under their index as JSON. Every append and every vote is
//! committed with `Durability::Immediate` (fsync) before openraft is told it is done:
//! Raft's safety rests on a node never forgetting a vote it cast or an entry it
//! acknowledged. The commit index has no transaction of its own: it rides along with
//! the next write.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, RaftLogReader, StorageIOError, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::{Entry, LogId, NodeId, StorageError, TypeConfig};

const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("raft_meta");

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";

/// Raft log storage on a redb database of its own (`raft-log.redb`).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    /// The commit index openraft last reported and no transaction has stored yet; the
    /// next append or metadata write stores it.
    committed: Arc<std::sync::Mutex<Option<Option<LogId>>>>,
}

fn io_err(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::error(e.to_string())).into()
}

fn read_err(e: impl std::fmt::Display) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn write_err(e: impl std::fmt::Display) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Write, e)
}

impl LogStore {
    /// Opens the log database, creating its tables when new.
    pub fn open(db: Database) -> anyhow::Result<LogStore> {
        let txn = db.begin_write()?;
        {
            txn.open_table(LOG)?;
            txn.open_table(META)?;
        }
        txn.commit()?;
        Ok(LogStore {
            db: Arc::new(db),
            committed: Arc::default(),
        })
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StorageError> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = txn.open_table(META).map_err(read_err)?;
        let Some(v) = table.get(key).map_err(read_err)? else {
            return Ok(None);
        };
        serde_json::from_slice(v.value())
            .map(Some)
            .map_err(read_err)
    }

    /// Writes one metadata value durably (fsync at commit).
    async fn put_meta<T: serde::Serialize>(
        &self,
        key: &'static str,
        value: &T,
    ) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(value).map_err(write_err)?;
        self.write_log(move |txn| {
            txn.open_table(META)?.insert(key, bytes.as_slice())?;
            Ok(())
        })
        .await
    }

    /// The encoded commit index waiting to be stored, if any (taken: the caller's
    /// transaction stores it).
    fn take_committed(&self) -> Result<Option<Vec<u8>>, StorageError> {
        let pending = self
            .committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        pending
            .map(|c| serde_json::to_vec(&c))
            .transpose()
            .map_err(write_err)
    }

    /// Runs a blocking write on the log database with an fsync at commit; it also stores
    /// a commit index waiting to be stored.
    async fn write_log<F>(&self, f: F) -> Result<(), StorageError>
    where
        F: FnOnce(&redb::WriteTransaction) -> anyhow::Result<()> + Send + 'static,
    {
        let db = self.db.clone();
        let committed = self.take_committed()?;
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            if let Some(c) = &committed {
                txn.open_table(META)?.insert(KEY_COMMITTED, c.as_slice())?;
            }
            f(&txn)?;
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(write_err)?
        .map_err(write_err)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => Some(e),
            Bound::Excluded(&e) => e.checked_sub(1),
            Bound::Unbounded => Some(u64::MAX),
        };
        let Some(end) = end else {
            return Ok(Vec::new());
        };
        if start > end {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = txn.open_table(LOG).map_err(read_err)?;
        let mut out = Vec::new();
        for item in table.range(start..=end).map_err(read_err)? {
            let (_, v) = item.map_err(read_err)?;
            out.push(serde_json::from_slice(v.value()).map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.get_meta(KEY_LAST_PURGED)?;
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = txn.open_table(LOG).map_err(read_err)?;
        let last = match table.last().map_err(read_err)? {
            Some((_, v)) => {
                let e: Entry = serde_json::from_slice(v.value()).map_err(read_err)?;
                Some(e.log_id)
            }
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.put_meta(KEY_VOTE, vote)
            .await
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_meta(KEY_VOTE)
    }

    /// The commit index is an optimisation (it lets a restarted node re-apply without
    /// waiting for a leader), so it gets no transaction of its own: it is kept in memory
    /// and stored by the next log write (an append, usually right behind it). Writing it
    /// at every commit cost a redb transaction per entry on every node.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        *self.committed.lock().unwrap_or_else(|e| e.into_inner()) = Some(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let pending = *self.committed.lock().unwrap_or_else(|e| e.into_inner());
        match pending {
            Some(c) => Ok(c),
            None => Ok(self.get_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten()),
        }
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut rows = Vec::new();
        for e in entries {
            rows.push((e.log_id.index, serde_json::to_vec(&e).map_err(write_err)?));
        }
        let result = self
            .write_log(move |txn| {
                let mut table = txn.open_table(LOG)?;
                for (index, bytes) in &rows {
                    table.insert(*index, bytes.as_slice())?;
                }
                Ok(())
            })
            .await;
        // Only report completion once the entries are on disk.
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let from = log_id.index;
        self.write_log(move |txn| {
            let mut table = txn.open_table(LOG)?;
            table.retain_in(from.., |_, _| false)?;
            Ok(())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let upto = log_id.index;
        let bytes = serde_json::to_vec(&Some(log_id)).map_err(write_err)?;
        self.write_log(move |txn| {
            txn.open_table(META)?
                .insert(KEY_LAST_PURGED, bytes.as_slice())?;
            let mut table = txn.open_table(LOG)?;
            table.retain_in(..=upto, |_, _| false)?;
            Ok(())
        })
        .await
    }
}
