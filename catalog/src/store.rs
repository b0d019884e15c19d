//! The catalog as a Raft state machine: [`CatalogState`] in memory, mirrored row by row
//! into redb tables of the node's state database, with a feed of changes for the
//! derived views (search index, policy enforcer).

use std::sync::{Arc, RwLock, RwLockReadGuard};

use redb::{ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};
use yiwang_raft_store::StateMachineApp;

use crate::command::{ApplyResult, Command};
use crate::error::CatalogError;
use crate::state::{CatalogState, Change};

type Table = TableDefinition<'static, &'static str, &'static [u8]>;
const DEPARTMENTS: Table = TableDefinition::new("departments");
const DATASETS: Table = TableDefinition::new("datasets");
const ROLES: Table = TableDefinition::new("roles");
const REQUESTS: Table = TableDefinition::new("requests");
const GRANTS: Table = TableDefinition::new("grants");
const ANCHORS: Table = TableDefinition::new("anchors");
/// Single values of the catalog, by name (`synonyms`).
const SETTINGS: Table = TableDefinition::new("settings");
const ALL_TABLES: [Table; 7] = [
    DEPARTMENTS,
    DATASETS,
    ROLES,
    REQUESTS,
    GRANTS,
    ANCHORS,
    SETTINGS,
];
const SYNONYMS_KEY: &str = "synonyms";

/// The catalog state shared between the state machine (the only writer) and readers.
#[derive(Clone, Default)]
pub struct SharedState(Arc<RwLock<CatalogState>>);

impl SharedState {
    /// A read view. Keep it short: `apply` waits for readers.
    pub fn read(&self) -> RwLockReadGuard<'_, CatalogState> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the whole state. Only for tests and tools that hold no Raft node: on a
    /// node, the state machine is the only writer.
    pub fn replace(&self, state: CatalogState) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = state;
    }
}

/// What the derived views must catch up with.
#[derive(Debug, Clone, PartialEq)]
pub enum ViewEvent {
    /// Rows changed by the entries up to `index`.
    Changed { index: u64, changes: Vec<Change> },
    /// The whole state was replaced (snapshot installed, or startup): rebuild views.
    Reset { index: u64 },
}

/// The catalog state machine plugged into Raft.
pub struct CatalogStore {
    state: SharedState,
    pending: Vec<Change>,
    events: mpsc::UnboundedSender<ViewEvent>,
    applied: watch::Sender<u64>,
    /// A reset is due: set on load and restore, sent with the next `committed`.
    reset_due: bool,
}

/// Handles for the rest of the node: the state to read and the feeds to follow.
pub struct CatalogHandles {
    pub state: SharedState,
    pub events: mpsc::UnboundedReceiver<ViewEvent>,
    /// The last log index applied to the state.
    pub applied: watch::Receiver<u64>,
}

impl CatalogStore {
    pub fn new() -> (CatalogStore, CatalogHandles) {
        let state = SharedState::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let (applied_tx, applied_rx) = watch::channel(0);
        (
            CatalogStore {
                state: state.clone(),
                pending: Vec::new(),
                events: tx,
                applied: applied_tx,
                reset_due: true,
            },
            CatalogHandles {
                state,
                events: rx,
                applied: applied_rx,
            },
        )
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, CatalogState> {
        self.state.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn put<T: Serialize>(
    txn: &redb::WriteTransaction,
    table: Table,
    key: &str,
    value: Option<&T>,
) -> anyhow::Result<()> {
    let mut t = txn.open_table(table)?;
    match value {
        Some(v) => {
            t.insert(key, serde_json::to_vec(v)?.as_slice())?;
        }
        None => {
            t.remove(key)?;
        }
    }
    Ok(())
}

fn load_table<T: DeserializeOwned>(
    txn: &redb::ReadTransaction,
    table: Table,
    mut f: impl FnMut(String, T),
) -> anyhow::Result<()> {
    let t = match txn.open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for row in t.iter()? {
        let (k, v) = row?;
        f(k.value().to_string(), serde_json::from_slice(v.value())?);
    }
    Ok(())
}

fn persist(txn: &redb::WriteTransaction, s: &CatalogState, change: &Change) -> anyhow::Result<()> {
    match change {
        Change::Department(k) => put(txn, DEPARTMENTS, k, s.departments.get(k)),
        Change::Dataset(k) => put(txn, DATASETS, k, s.datasets.get(k)),
        Change::Roles(k) => put(txn, ROLES, k, s.roles.get(k)),
        Change::Request(k) => put(txn, REQUESTS, k, s.requests.get(k)),
        Change::Grant(k) => put(txn, GRANTS, k, s.grants.get(k)),
        Change::Anchor(n) => put(txn, ANCHORS, &n.to_string(), s.anchors.get(n)),
        Change::Synonyms => put(txn, SETTINGS, SYNONYMS_KEY, Some(&s.synonyms)),
    }
}

impl StateMachineApp for CatalogStore {
    fn load(&mut self, txn: &redb::ReadTransaction) -> anyhow::Result<()> {
        let mut s = CatalogState::default();
        load_table(txn, DEPARTMENTS, |k, v| {
            s.departments.insert(k, v);
        })?;
        load_table(txn, DATASETS, |k, v| {
            s.datasets.insert(k, v);
        })?;
        load_table(txn, ROLES, |k, v| {
            s.roles.insert(k, v);
        })?;
        load_table(txn, REQUESTS, |k, v| {
            s.requests.insert(k, v);
        })?;
        load_table(txn, GRANTS, |k, v| {
            s.grants.insert(k, v);
        })?;
        load_table(txn, ANCHORS, |k: String, v| {
            if let Ok(n) = k.parse() {
                s.anchors.insert(n, v);
            }
        })?;
        let mut synonyms: Option<serde_json::Value> = None;
        load_table(txn, SETTINGS, |k: String, v: serde_json::Value| {
            if k == SYNONYMS_KEY {
                synonyms = Some(v);
            }
        })?;
        if let Some(v) = synonyms {
            s.synonyms = serde_json::from_value(v)
                .map_err(|e| anyhow::anyhow!("stored search synonyms are unreadable: {e}"))?;
        }
        *self.write_state() = s;
        self.reset_due = true;
        Ok(())
    }

    fn apply(
        &mut self,
        txn: &redb::WriteTransaction,
        _index: u64,
        command: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let result: ApplyResult = match serde_json::from_value::<Command>(command) {
            Ok(cmd) => {
                let mut state = self.write_state();
                let (result, changes) = state.apply(cmd);
                for c in &changes {
                    persist(txn, &state, c)?;
                }
                drop(state);
                self.pending.extend(changes);
                result
            }
            // A command this version cannot read is rejected the same way on every node.
            Err(e) => Err(CatalogError::invalid("command", e.to_string())),
        };
        Ok(serde_json::to_value(result)?)
    }

    fn committed(&mut self, last_applied: u64) {
        let event = if self.reset_due {
            self.reset_due = false;
            self.pending.clear();
            ViewEvent::Reset {
                index: last_applied,
            }
        } else {
            ViewEvent::Changed {
                index: last_applied,
                changes: std::mem::take(&mut self.pending),
            }
        };
        // The receiver lives as long as the node; a send error only happens at shutdown.
        let _ = self.events.send(event);
        self.applied.send_replace(last_applied);
    }

    fn snapshot(&self) -> anyhow::Result<Vec<u8>> {
        Ok(serde_json::to_vec(&*self.state.read())?)
    }

    fn restore(&mut self, txn: &redb::WriteTransaction, data: &[u8]) -> anyhow::Result<()> {
        let s: CatalogState = serde_json::from_slice(data)?;
        for table in ALL_TABLES {
            txn.delete_table(table)?;
        }
        for k in s.departments.keys() {
            persist(txn, &s, &Change::Department(k.clone()))?;
        }
        for k in s.datasets.keys() {
            persist(txn, &s, &Change::Dataset(k.clone()))?;
        }
        for k in s.roles.keys() {
            persist(txn, &s, &Change::Roles(k.clone()))?;
        }
        for k in s.requests.keys() {
            persist(txn, &s, &Change::Request(k.clone()))?;
        }
        for k in s.grants.keys() {
            persist(txn, &s, &Change::Grant(k.clone()))?;
        }
        for k in s.anchors.keys() {
            persist(txn, &s, &Change::Anchor(*k))?;
        }
        persist(txn, &s, &Change::Synonyms)?;
        *self.write_state() = s;
        self.pending.clear();
        self.reset_due = true;
        Ok(())
    }
}
