//! The seam between Raft and the replicated application.

/// The application state replicated by Raft.
///
/// The state machine store calls these methods with a redb transaction of the state
/// database, so that the application's tables and Raft's own bookkeeping (last applied
/// log id, membership) change in one atomic commit: after a crash the application state
/// and the applied index always agree.
pub trait StateMachineApp: Send + Sync + 'static {
    /// Loads the in-memory view from the durable tables at startup.
    fn load(&mut self, txn: &redb::ReadTransaction) -> anyhow::Result<()>;

    /// Applies one committed command and returns its response.
    ///
    /// Business outcomes, including rejections such as "dataset already exists", are
    /// part of the returned value and must be deterministic. An `Err` means storage
    /// failure: Raft stops the node rather than diverge.
    fn apply(
        &mut self,
        txn: &redb::WriteTransaction,
        index: u64,
        command: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value>;

    /// Called after the transaction holding entries up to `last_applied` committed;
    /// derived views (search index, policy enforcer) are brought up to date from here.
    fn committed(&mut self, last_applied: u64);

    /// Serialises the whole state for a snapshot.
    fn snapshot(&self) -> anyhow::Result<Vec<u8>>;

    /// Replaces the whole state with a snapshot's, rewriting the tables in `txn`.
    fn restore(&mut self, txn: &redb::WriteTransaction, data: &[u8]) -> anyhow::Result<()>;
}
