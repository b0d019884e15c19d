//! Backup and restore of the catalog.
//!
//! `yiwang backup --out FILE` asks a running cluster for a consistent copy of the
//! catalog (`GET /v1/cluster/backup`, after a linearizable read barrier). `yiwang
//! restore --from FILE --data-dir DIR` writes it into the empty data directory of a new
//! node, which then starts a new cluster with `bootstrap = true` and the restored
//! catalog; further nodes join it as usual and receive it by snapshot.
//!
//! The audit trail is per node and is not part of the catalog; archive the audit files
//! (`DATA/audit/node-<id>/`) alongside backups.

use std::path::Path;

use anyhow::{Context, Result, bail};
use yiwang_catalog::{CatalogState, CatalogStore};
use yiwang_raft_store::{StateMachineApp, open_db};

/// Version of the backup file format.
pub const FORMAT: &str = "yiwang-catalog-backup/1";

/// Restores a backup file into a new node's data directory.
pub fn restore(file: &Path, data_dir: &Path) -> Result<CatalogState> {
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a backup (bad JSON)", file.display()))?;
    if v["format"] != FORMAT {
        bail!(
            "{} is not a yiwang catalog backup (format {})",
            file.display(),
            v["format"]
        );
    }
    let mut state: CatalogState = serde_json::from_value(v["state"].clone())
        .context("the backup's catalog state is unreadable")?;
    // Audit anchors name the old cluster's per-node audit chains, which do not come
    // along; the new nodes start new chains.
    state.anchors.clear();
    if data_dir.join("state.redb").exists() || data_dir.join("raft-log.redb").exists() {
        bail!(
            "{} already holds a node's data; restore needs an empty data directory",
            data_dir.display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let db = open_db(&data_dir.join("state.redb"))?;
    let (mut store, _handles) = CatalogStore::new();
    let mut txn = db.begin_write()?;
    txn.set_durability(redb::Durability::Immediate)?;
    store.restore(&txn, &serde_json::to_vec(&state)?)?;
    txn.commit()?;
    Ok(state)
}
