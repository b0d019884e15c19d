//! A running node: Raft, the catalog state machine, the derived views (policy
//! enforcer, search index), department sources and the audit log, wired together.
//!
//! Wiring order follows openraft's examples: config → log store → state machine →
//! network → `Raft::new`; then the views that follow the applied state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::watch;
use yiwang_adapters::Sources;
use yiwang_catalog::search::{IndexDoc, SearchIndex};
use yiwang_catalog::{
    CatalogHandles, CatalogStore, Change, Command, Outcome, SharedState, ViewEvent,
};
use yiwang_policies::PolicyEngine;
use yiwang_raft_store::{LogStore, Raft, StateMachineStore, network::Network, open_db};

use crate::api::ApiError;
use crate::audit::AuditLog;
use crate::config::NodeConfig;
use crate::metrics::Metrics;

/// Everything a request handler may need; shared as `Arc<Node>`.
pub struct Node {
    pub config: NodeConfig,
    pub raft: Raft,
    pub state: SharedState,
    pub policy: Arc<PolicyEngine>,
    pub search: Arc<SearchIndex>,
    pub sources: Sources,
    pub audit: AuditLog,
    pub metrics: Metrics,
    /// Last log index the policy enforcer reflects.
    pub policy_applied: watch::Receiver<u64>,
    /// Last log index the search index reflects (commits are batched).
    pub search_applied: watch::Receiver<u64>,
    /// Last log index applied to the catalog state.
    pub applied: watch::Receiver<u64>,
}

/// How long a write waits for the policy view to catch up before answering anyway.
const VIEW_WAIT: Duration = Duration::from_secs(5);

impl Node {
    /// Opens storage, starts Raft and the background tasks. With `bootstrap`, a new node
    /// initialises itself as a one-voter cluster.
    pub async fn start(config: NodeConfig) -> Result<Arc<Node>> {
        let data = &config.data_dir;
        std::fs::create_dir_all(data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        let metrics = Metrics::new();

        let raft_config = openraft::Config {
            cluster_name: "yiwang".into(),
            heartbeat_interval: config.raft.heartbeat_ms,
            election_timeout_min: config.raft.election_timeout_min_ms,
            election_timeout_max: config.raft.election_timeout_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.raft.snapshot_logs),
            max_in_snapshot_log_to_keep: config.raft.keep_logs,
            ..Default::default()
        }
        .validate()
        .map_err(|e| anyhow!("raft config: {e}"))?;

        let log_store = LogStore::open(open_db(&data.join("raft-log.redb"))?)?;
        let (catalog, handles) = CatalogStore::new();
        let sm_store = StateMachineStore::open(open_db(&data.join("state.redb"))?, catalog)?;
        let CatalogHandles {
            state,
            events,
            applied,
        } = handles;

        let peer_client =
            crate::tls::http_client(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            Network::new(peer_client),
            log_store,
            sm_store,
        )
        .await
        .map_err(|e| anyhow!("cannot start raft: {e}"))?;

        if config.bootstrap && !raft.is_initialized().await.map_err(|e| anyhow!("{e}"))? {
            let mut members = BTreeMap::new();
            members.insert(
                config.node_id,
                openraft::BasicNode {
                    addr: config.advertise_addr(),
                },
            );
            raft.initialize(members)
                .await
                .map_err(|e| anyhow!("cannot initialise cluster: {e}"))?;
            tracing::info!(
                "initialised a new one-node cluster (node {})",
                config.node_id
            );
        }

        let search = Arc::new(SearchIndex::open(&data.join("search"))?);
        let policy = Arc::new(
            PolicyEngine::new(state.clone())
                .await
                .map_err(|e| anyhow!("{e}"))?,
        );
        let sources = Sources::from_config(&config.sources, &config.base_dir)
            .map_err(|e| anyhow!("sources: {e}"))?;
        let audit = AuditLog::open(&data.join("audit"), config.node_id, metrics.clone())?;

        let (policy_tx, policy_applied) = watch::channel(0);
        let (search_tx, search_applied) = watch::channel(0);
        tokio::spawn(run_views(
            events,
            state.clone(),
            policy.clone(),
            search.clone(),
            policy_tx,
            search_tx,
            metrics.clone(),
        ));

        let node = Arc::new(Node {
            config,
            raft,
            state,
            policy,
            search,
            sources,
            audit,
            metrics,
            policy_applied,
            search_applied,
            applied,
        });
        tokio::spawn(publish_anchors(node.clone()));
        Ok(node)
    }

    /// Proposes a command through Raft and returns its outcome once the policy view
    /// reflects it, so a grant approved by one request is honoured by the next.
    pub async fn propose(&self, cmd: Command) -> Result<Outcome, ApiError> {
        let resp = self
            .raft
            .client_write(cmd_value(&cmd)?)
            .await
            .map_err(|e| match e {
                RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                    ApiError::unavailable(match f.leader_node {
                        Some(n) => {
                            format!("this node is not the leader; send writes to {}", n.addr)
                        }
                        None => "no leader is elected yet; retry shortly".into(),
                    })
                }
                other => ApiError::internal(format!("raft write failed: {other}")),
            })?;
        let index = resp.log_id.index;
        self.wait_policy(index).await;
        let result: yiwang_catalog::ApplyResult = serde_json::from_value(resp.data)
            .map_err(|e| ApiError::internal(format!("unreadable apply result: {e}")))?;
        Ok(result?)
    }

    async fn wait_policy(&self, index: u64) {
        let mut rx = self.policy_applied.clone();
        if tokio::time::timeout(VIEW_WAIT, rx.wait_for(|i| *i >= index))
            .await
            .is_err()
        {
            tracing::warn!("policy view did not reach index {index} within {VIEW_WAIT:?}");
        }
    }

    /// Linearizable read barrier: returns once this node's state includes every write
    /// committed before the call (a no-op for `stale` reads).
    pub async fn read_barrier(&self, stale: bool) -> Result<(), ApiError> {
        if stale {
            return Ok(());
        }
        let read_log = self.raft.ensure_linearizable().await.map_err(|e| {
            ApiError::unavailable(format!(
                "cannot serve a linearizable read here: {e}; add ?consistency=stale to read locally"
            ))
        })?;
        if let Some(l) = read_log {
            let mut rx = self.applied.clone();
            let _ = tokio::time::timeout(VIEW_WAIT, rx.wait_for(|i| *i >= l.index)).await;
            self.wait_policy(l.index).await;
        }
        Ok(())
    }

    /// Ready to serve: a leader is known and the views caught up with the applied state.
    pub fn readiness(&self) -> Result<(), String> {
        let m = self.raft.metrics().borrow().clone();
        if m.current_leader.is_none() {
            return Err("no leader elected".into());
        }
        let applied = m.last_applied.map_or(0, |l| l.index);
        if *self.policy_applied.borrow() < applied {
            return Err("policy view is catching up".into());
        }
        if *self.search_applied.borrow() < applied {
            return Err("search index is catching up".into());
        }
        Ok(())
    }

    /// Waits until this node is ready or `timeout` passes.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.readiness() {
                Ok(()) => return Ok(()),
                Err(why) if tokio::time::Instant::now() >= deadline => {
                    return Err(anyhow!("node not ready after {timeout:?}: {why}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// `GET /v1/cluster`: leader, term and members with their progress.
    pub fn cluster_status(&self) -> serde_json::Value {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
        let replication = m.replication.clone().unwrap_or_default();
        let members: Vec<serde_json::Value> = membership
            .nodes()
            .map(|(id, n)| {
                let matched = if *id == m.id {
                    m.last_log_index
                } else {
                    replication.get(id).and_then(|l| l.map(|l| l.index))
                };
                serde_json::json!({
                    "id": id,
                    "addr": n.addr,
                    "role": if voters.contains(id) { "voter" } else { "learner" },
                    "last_log_index": matched,
                    "applied_index": if *id == m.id { m.last_applied.map(|l| l.index) } else { None },
                })
            })
            .collect();
        serde_json::json!({
            "leader": m.current_leader,
            "term": m.current_term,
            "node": m.id,
            "state": format!("{:?}", m.state),
            "last_log_index": m.last_log_index,
            "applied_index": m.last_applied.map(|l| l.index),
            "members": members,
        })
    }

    /// Copies Raft's view into the metrics gauges (called at scrape time).
    pub fn refresh_metrics(&self) {
        let m = self.raft.metrics().borrow().clone();
        self.metrics.raft_term.set(m.current_term as i64);
        self.metrics
            .raft_leader
            .set(m.current_leader.unwrap_or(0) as i64);
        self.metrics
            .raft_last_applied
            .set(m.last_applied.map_or(0, |l| l.index) as i64);
        self.metrics
            .raft_last_log
            .set(m.last_log_index.unwrap_or(0) as i64);
        self.metrics.search_docs.set(self.search.num_docs() as i64);
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
    }
}

fn cmd_value(cmd: &Command) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(cmd).map_err(|e| ApiError::internal(format!("cannot encode command: {e}")))
}

/// Keeps the policy enforcer and the search index in step with the applied catalog.
/// Policy changes are applied at once (writes wait for them); search changes are
/// batched and committed when the queue is empty or every 250 ms under load, which
/// keeps a committed change searchable well within a second.
async fn run_views(
    mut events: tokio::sync::mpsc::UnboundedReceiver<ViewEvent>,
    state: SharedState,
    policy: Arc<PolicyEngine>,
    search: Arc<SearchIndex>,
    policy_tx: watch::Sender<u64>,
    search_tx: watch::Sender<u64>,
    metrics: Metrics,
) {
    const SEARCH_COMMIT_EVERY: Duration = Duration::from_millis(250);
    let mut staged: Vec<Change> = Vec::new();
    let mut staged_index = 0u64;
    let mut last_commit = tokio::time::Instant::now();
    while let Some(event) = events.recv().await {
        match event {
            ViewEvent::Reset { index } => {
                if let Err(e) = policy.reload().await {
                    tracing::error!("policy reload failed: {e}");
                }
                policy_tx.send_replace(index);
                staged.clear();
                let s2 = search.clone();
                let st = state.clone();
                let rebuilt =
                    tokio::task::spawn_blocking(move || rebuild_search_if_stale(&s2, &st, index))
                        .await;
                match rebuilt {
                    Ok(Ok(n)) => {
                        if let Some(n) = n {
                            tracing::info!("search index rebuilt from catalog state: {n} datasets");
                        }
                    }
                    Ok(Err(e)) => tracing::error!("search index rebuild failed: {e}"),
                    Err(e) => tracing::error!("search index rebuild panicked: {e}"),
                }
                search_tx.send_replace(index);
                last_commit = tokio::time::Instant::now();
            }
            ViewEvent::Changed { index, changes } => {
                if let Err(e) = policy.apply(&changes).await {
                    tracing::error!("policy update failed, reloading: {e}");
                    let _ = policy.reload().await;
                }
                policy_tx.send_replace(index);
                staged.extend(
                    changes
                        .into_iter()
                        .filter(|c| matches!(c, Change::Dataset(_) | Change::Department(_))),
                );
                staged_index = index;
            }
        }
        let idle = events.is_empty();
        if staged_index > *search_tx.borrow()
            && (idle || last_commit.elapsed() >= SEARCH_COMMIT_EVERY)
        {
            let batch = std::mem::take(&mut staged);
            let s2 = search.clone();
            let st = state.clone();
            let index = staged_index;
            match tokio::task::spawn_blocking(move || index_changes(&s2, &st, &batch, index)).await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("search index update failed: {e}"),
                Err(e) => tracing::error!("search index update panicked: {e}"),
            }
            search_tx.send_replace(index);
            metrics.search_docs.set(search.num_docs() as i64);
            last_commit = tokio::time::Instant::now();
        }
    }
}

fn doc_for(state: &yiwang_catalog::CatalogState, id: &str) -> Option<IndexDoc> {
    let d = state.datasets.get(id)?;
    if d.status != yiwang_catalog::model::DatasetStatus::Active {
        return None;
    }
    let dept_name = state
        .departments
        .get(&d.dept)
        .map_or("", |x| x.name.as_str());
    Some(IndexDoc::from_dataset(d, dept_name))
}

fn index_changes(
    search: &SearchIndex,
    state: &SharedState,
    changes: &[Change],
    index: u64,
) -> Result<()> {
    let docs: Vec<Result<IndexDoc, String>> = {
        let s = state.read();
        let mut ids: Vec<String> = Vec::new();
        for c in changes {
            match c {
                Change::Dataset(id) => ids.push(id.clone()),
                // A renamed department changes dept_name in all its documents.
                Change::Department(code) => ids.extend(
                    s.datasets
                        .values()
                        .filter(|d| &d.dept == code)
                        .map(|d| d.id.clone()),
                ),
                _ => {}
            }
        }
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .map(|id| doc_for(&s, &id).ok_or(id))
            .collect()
    };
    for doc in docs {
        match doc {
            Ok(d) => search.upsert(&d)?,
            Err(id) => search.delete(&id)?,
        }
    }
    search.commit(index)
}

/// Rebuilds the index when it does not reflect `index` (fresh, lost, or stale).
fn rebuild_search_if_stale(
    search: &SearchIndex,
    state: &SharedState,
    index: u64,
) -> Result<Option<usize>> {
    if !search.opened_fresh() && search.applied_marker() == Some(index) {
        return Ok(None);
    }
    let docs: Vec<IndexDoc> = {
        let s = state.read();
        s.datasets.keys().filter_map(|id| doc_for(&s, id)).collect()
    };
    Ok(Some(search.rebuild(docs.into_iter(), index)?))
}

/// Publishes this node's audit chain head through Raft from time to time, so that a
/// truncated audit file is detected by `verify` even if its tail was removed cleanly.
async fn publish_anchors(node: Arc<Node>) {
    let every = Duration::from_secs(node.config.audit.anchor_interval_s.max(1));
    let mut published = 0u64;
    loop {
        tokio::time::sleep(every).await;
        let head = node.audit.head();
        if head.seq == published {
            continue;
        }
        let cmd = Command::PublishAnchor {
            anchor: yiwang_catalog::model::AuditAnchor {
                node_id: node.config.node_id,
                seq: head.seq,
                hash: head.hash,
                at: yiwang_catalog::clock::now(),
            },
        };
        match node.propose(cmd).await {
            Ok(_) => published = head.seq,
            Err(e) => tracing::debug!("audit anchor not published yet: {}", e.message),
        }
    }
}
