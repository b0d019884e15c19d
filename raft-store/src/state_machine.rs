//! The Raft state machine on redb, generic over the replicated application.
//!
//! Each batch of committed entries is applied in one redb write transaction that also
//! records the last applied log id and membership, so the application's tables and
//! Raft's bookkeeping never disagree. Those commits skip the fsync
//! (`Durability::None`): the log already holds every committed entry durably, and after
//! a crash redb falls back to its last durable commit, from which openraft re-applies.
//! A durable commit is forced every [`DURABLE_EVERY`] entries, and before a snapshot is
//! recorded (the log is purged only up to a snapshot, so the state must be durable at
//! least that far).

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, StorageIOError, StoredMembership,
};
use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use tokio::sync::Mutex;

use crate::{Entry, LogId, Node, NodeId, StateMachineApp, StorageError, TypeConfig};

const SM_META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sm_meta");
/// The current snapshot, in a table of its own: redb keeps values inline in B-tree
/// leaves, so a multi-megabyte snapshot next to `last_applied` (rewritten by every
/// apply) would make each apply copy the whole snapshot.
const SNAPSHOT: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sm_snapshot");
const KEY_APPLIED: &str = "last_applied";
const KEY_MEMBERSHIP: &str = "membership";
const KEY_SNAPSHOT_META: &str = "snapshot_meta";
const KEY_SNAPSHOT_DATA: &str = "snapshot_data";

/// Entries applied between two durable (fsynced) state commits.
pub const DURABLE_EVERY: u64 = 1024;

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    StorageIOError::new(
        ErrorSubject::StateMachine,
        verb,
        openraft::AnyError::error(e.to_string()),
    )
    .into()
}

fn snap_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::new(
        ErrorSubject::Snapshot(None),
        ErrorVerb::Write,
        openraft::AnyError::error(e.to_string()),
    )
    .into()
}

/// Runs blocking storage work without stalling other tasks on a multi-threaded runtime
/// (on a current-thread runtime, such as some tests use, it simply runs inline).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

struct Inner<A> {
    db: Database,
    app: A,
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, Node>,
    /// Entries applied since the last durable commit.
    since_durable: u64,
    snapshot_seq: u64,
}

/// State machine storage; cheap to clone (the clone is also the snapshot builder).
pub struct StateMachineStore<A> {
    inner: Arc<Mutex<Inner<A>>>,
}

impl<A> Clone for StateMachineStore<A> {
    fn clone(&self) -> Self {
        StateMachineStore {
            inner: self.inner.clone(),
        }
    }
}

fn get_json<T: serde::de::DeserializeOwned>(
    table: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> anyhow::Result<Option<T>> {
    match table.get(key)? {
        Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
        None => Ok(None),
    }
}

impl<A: StateMachineApp> StateMachineStore<A> {
    /// Opens the state database and loads the application's state from it.
    pub fn open(db: Database, mut app: A) -> anyhow::Result<StateMachineStore<A>> {
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(SM_META)?;
            let mut snapshot = txn.open_table(SNAPSHOT)?;
            // Earlier versions kept the snapshot in `sm_meta`: move it to its own table.
            for key in [KEY_SNAPSHOT_META, KEY_SNAPSHOT_DATA] {
                if let Some(value) = meta.remove(key)? {
                    snapshot.insert(key, value.value())?;
                }
            }
        }
        txn.commit()?;
        let txn = db.begin_read()?;
        let (last_applied, membership) = {
            let table = txn.open_table(SM_META)?;
            let applied: Option<LogId> = get_json(&table, KEY_APPLIED)?;
            let membership: Option<StoredMembership<NodeId, Node>> =
                get_json(&table, KEY_MEMBERSHIP)?;
            (applied, membership.unwrap_or_default())
        };
        app.load(&txn)?;
        drop(txn);
        if let Some(applied) = last_applied {
            app.committed(applied.index);
        }
        Ok(StateMachineStore {
            inner: Arc::new(Mutex::new(Inner {
                db,
                app,
                last_applied,
                membership,
                since_durable: 0,
                snapshot_seq: 0,
            })),
        })
    }

    /// Runs `f` with shared access to the application (for reads that must not race an
    /// apply). Most reads go through the application's own shared view instead.
    pub async fn with_app<R>(&self, f: impl FnOnce(&A) -> R) -> R {
        let inner = self.inner.lock().await;
        f(&inner.app)
    }

    /// Log id of the last applied entry.
    pub async fn last_applied(&self) -> Option<LogId> {
        self.inner.lock().await.last_applied
    }
}

impl<A> Drop for Inner<A> {
    /// On a clean shutdown, make the last non-durable commits durable so the next start
    /// does not need to re-apply them from the log.
    fn drop(&mut self) {
        if self.since_durable == 0 {
            return;
        }
        let flush = || -> anyhow::Result<()> {
            let mut txn = self.db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            txn.commit()?;
            Ok(())
        };
        if let Err(e) = flush() {
            tracing::warn!("state machine flush at shutdown failed: {e}");
        }
    }
}

impl<A: StateMachineApp> Inner<A> {
    fn write_meta(&self, txn: &redb::WriteTransaction) -> anyhow::Result<()> {
        let mut table = txn.open_table(SM_META)?;
        table.insert(
            KEY_APPLIED,
            serde_json::to_vec(&self.last_applied)?.as_slice(),
        )?;
        table.insert(
            KEY_MEMBERSHIP,
            serde_json::to_vec(&self.membership)?.as_slice(),
        )?;
        Ok(())
    }

    fn apply_batch(&mut self, entries: Vec<Entry>) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut txn = self.db.begin_write()?;
        self.since_durable += entries.len() as u64;
        let durable = self.since_durable >= DURABLE_EVERY;
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })?;
        let mut responses = Vec::with_capacity(entries.len());
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => serde_json::Value::Null,
                EntryPayload::Normal(command) => match crate::proposer::decode_batch(command) {
                    // A batch's commands apply in order, as consecutive entries would.
                    Ok(commands) => serde_json::Value::Array(
                        commands
                            .into_iter()
                            .map(|c| self.app.apply(&txn, entry.log_id.index, c))
                            .collect::<anyhow::Result<_>>()?,
                    ),
                    Err(command) => self.app.apply(&txn, entry.log_id.index, command)?,
                },
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    serde_json::Value::Null
                }
            };
            responses.push(response);
        }
        self.write_meta(&txn)?;
        txn.commit()?;
        if durable {
            self.since_durable = 0;
        }
        if let Some(applied) = self.last_applied {
            self.app.committed(applied.index);
        }
        Ok(responses)
    }

    fn build_snapshot(&mut self) -> anyhow::Result<Snapshot<TypeConfig>> {
        let data = self.app.snapshot()?;
        self.snapshot_seq += 1;
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.snapshot_seq),
            None => format!("--{}", self.snapshot_seq),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        self.store_snapshot(&meta, &data, false)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }

    /// Records the current snapshot durably; with `install` the application state is
    /// replaced by the snapshot's in the same transaction.
    fn store_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        data: &[u8],
        install: bool,
    ) -> anyhow::Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        if install {
            self.app.restore(&txn, data)?;
            self.last_applied = meta.last_log_id;
            self.membership = meta.last_membership.clone();
            self.write_meta(&txn)?;
        }
        {
            let mut table = txn.open_table(SNAPSHOT)?;
            table.insert(KEY_SNAPSHOT_META, serde_json::to_vec(meta)?.as_slice())?;
            table.insert(KEY_SNAPSHOT_DATA, data)?;
        }
        txn.commit()?;
        self.since_durable = 0;
        if install && let Some(applied) = self.last_applied {
            self.app.committed(applied.index);
        }
        Ok(())
    }

    fn current_snapshot(&self) -> anyhow::Result<Option<Snapshot<TypeConfig>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOT)?;
        let Some(meta) = get_json::<SnapshotMeta<NodeId, Node>>(&table, KEY_SNAPSHOT_META)? else {
            return Ok(None);
        };
        let data = table
            .get(KEY_SNAPSHOT_DATA)?
            .map(|v| v.value().to_vec())
            .unwrap_or_default();
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

impl<A: StateMachineApp> RaftSnapshotBuilder<TypeConfig> for StateMachineStore<A> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let mut inner = self.inner.lock().await;
        blocking(|| inner.build_snapshot()).map_err(snap_err)
    }
}

impl<A: StateMachineApp> RaftStateMachine<TypeConfig> for StateMachineStore<A> {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, Node>), StorageError> {
        let inner = self.inner.lock().await;
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<serde_json::Value>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut inner = self.inner.lock().await;
        blocking(|| inner.apply_batch(entries)).map_err(|e| sm_err(ErrorVerb::Write, e))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut inner = self.inner.lock().await;
        blocking(|| inner.store_snapshot(meta, &data, true)).map_err(snap_err)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let inner = self.inner.lock().await;
        inner
            .current_snapshot()
            .map_err(|e| sm_err(ErrorVerb::Read, e))
    }
}
