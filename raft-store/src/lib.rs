//! Raft for yiwang: the openraft type configuration, durable log and state-machine
//! storage on redb, snapshots, and the Raft RPC client and server handlers.
//!
//! This crate knows nothing of the catalog: the replicated application plugs in through
//! [`StateMachineApp`], and commands travel as JSON values. That keeps the Raft
//! machinery testable on its own (openraft's storage conformance suite runs against it).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
// openraft's traits fix `StorageError` as the error type; it is large, and not ours to box.
#![allow(clippy::result_large_err)]

use std::io::Cursor;

mod app;
mod log_store;
pub mod network;
pub mod proposer;
mod state_machine;

pub use app::StateMachineApp;
pub use log_store::LogStore;
pub use openraft;
pub use proposer::Proposer;
pub use state_machine::StateMachineStore;

/// Node ids are small integers assigned by the operator (`node_id` in node.toml).
pub type NodeId = u64;

/// A node as the cluster membership records it: its API address (`host:port`).
pub type Node = openraft::BasicNode;

openraft::declare_raft_types!(
    /// The Raft type configuration of yiwang: commands and responses are JSON values
    /// whose meaning belongs to the application (the catalog).
    pub TypeConfig:
        D = serde_json::Value,
        R = serde_json::Value,
        NodeId = NodeId,
        Node = Node,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type RaftMetrics = openraft::RaftMetrics<NodeId, Node>;

/// Opens a redb database, creating it (and its parent folder) when absent.
pub fn open_db(path: &std::path::Path) -> anyhow::Result<redb::Database> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let db = redb::Database::create(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    Ok(db)
}
