//! openraft's storage conformance suite against our redb log and state machine.

use std::collections::BTreeMap;

use openraft::testing::{StoreBuilder, Suite};
use redb::{ReadableTable, TableDefinition};
use yiwang_raft_store::{
    LogStore, StateMachineApp, StateMachineStore, StorageError, TypeConfig, open_db,
};

const KV: TableDefinition<'_, &str, &str> = TableDefinition::new("kv");

/// A minimal replicated key-value application: `{"set": [k, v]}`.
#[derive(Default)]
struct Kv {
    map: BTreeMap<String, String>,
}

impl StateMachineApp for Kv {
    fn load(&mut self, txn: &redb::ReadTransaction) -> anyhow::Result<()> {
        if let Ok(t) = txn.open_table(KV) {
            for row in t.iter()? {
                let (k, v) = row?;
                self.map.insert(k.value().into(), v.value().into());
            }
        }
        Ok(())
    }

    fn apply(
        &mut self,
        txn: &redb::WriteTransaction,
        _index: u64,
        command: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        if let Some([k, v]) = command
            .get("set")
            .and_then(|s| s.as_array())
            .map(|a| a.as_slice())
        {
            let (k, v) = (
                k.as_str().unwrap_or_default(),
                v.as_str().unwrap_or_default(),
            );
            txn.open_table(KV)?.insert(k, v)?;
            self.map.insert(k.into(), v.into());
        }
        Ok(serde_json::Value::Null)
    }

    fn committed(&mut self, _last_applied: u64) {}

    fn snapshot(&self) -> anyhow::Result<Vec<u8>> {
        Ok(serde_json::to_vec(&self.map)?)
    }

    fn restore(&mut self, txn: &redb::WriteTransaction, data: &[u8]) -> anyhow::Result<()> {
        self.map = serde_json::from_slice(data)?;
        txn.delete_table(KV)?;
        let mut t = txn.open_table(KV)?;
        for (k, v) in &self.map {
            t.insert(k.as_str(), v.as_str())?;
        }
        Ok(())
    }
}

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore<Kv>, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore<Kv>), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogStore::open(open_db(&dir.path().join("raft-log.redb")).expect("log db"))
            .expect("log");
        let sm = StateMachineStore::open(
            open_db(&dir.path().join("state.redb")).expect("sm db"),
            Kv::default(),
        )
        .expect("sm");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_conformance() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft storage suite failed: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_reopen() {
    use openraft::storage::{RaftLogStorage, RaftStateMachine};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("raft-log.redb");
    let sm_path = dir.path().join("state.redb");
    {
        let mut log = LogStore::open(open_db(&log_path).unwrap()).unwrap();
        let mut sm = StateMachineStore::open(open_db(&sm_path).unwrap(), Kv::default()).unwrap();
        log.save_vote(&Vote::new(3, 1)).await.unwrap();
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(3, 1), 1),
            payload: EntryPayload::Normal(serde_json::json!({"set": ["a", "甲"]})),
        };
        sm.apply(vec![entry]).await.unwrap();
    }
    let mut log = LogStore::open(open_db(&log_path).unwrap()).unwrap();
    let sm = StateMachineStore::open(open_db(&sm_path).unwrap(), Kv::default()).unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 1)));
    assert_eq!(sm.last_applied().await.map(|l| l.index), Some(1));
    assert_eq!(
        sm.with_app(|kv| kv.map.get("a").cloned()).await.as_deref(),
        Some("甲")
    );
}
