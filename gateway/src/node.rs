//! A running node: Raft, the catalog state machine, the derived views (policy
//! enforcer, search index — its task is in `indexer.rs`), department sources and the
//! audit log, wired together.
//!
//! Wiring order follows openraft's examples: config → log store → state machine →
//! network → `Raft::new`; then the views that follow the applied state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::sync::watch;
use yiwang_adapters::Sources;
use yiwang_catalog::search::SearchIndex;
use yiwang_catalog::{CatalogHandles, CatalogStore, Command, Outcome, SharedState, ViewEvent};
use yiwang_policies::PolicyEngine;
use yiwang_raft_store::{LogStore, Proposer, Raft, StateMachineStore, network::Network, open_db};

use crate::api::ApiError;
use crate::audit::AuditLog;
use crate::cluster::{LeaderOp, LeaderReply};
use crate::config::NodeConfig;
use crate::indexer::{RebuildReport, RebuildRequest, SearchFeed, run_search};
use crate::metrics::Metrics;

/// Everything a request handler may need; shared as `Arc<Node>`.
pub struct Node {
    pub config: NodeConfig,
    pub raft: Raft,
    /// Batches this node's proposals while it leads (see `yiwang_raft_store::proposer`).
    pub proposer: Proposer,
    /// Batches the writes this node forwards while it follows (`cluster::run_forwarder`).
    pub(crate) forwarder: tokio::sync::mpsc::UnboundedSender<crate::cluster::Forwarded>,
    /// The highest log index for which a heartbeat was sent to tell followers that it
    /// committed (`serve_forward`).
    pub(crate) heartbeat_sent_for: std::sync::atomic::AtomicU64,
    pub state: SharedState,
    pub policy: Arc<PolicyEngine>,
    pub search: Arc<SearchIndex>,
    pub sources: Sources,
    pub audit: AuditLog,
    /// HTTPS client with this node's certificate, for Raft RPC and forwarding.
    pub peer: reqwest::Client,
    /// Certificate, key, CA and revocation lists of the listener and of `peer`.
    pub tls: Arc<crate::tls::NodeTls>,
    /// Linearizable reads waiting for the next leadership confirmation.
    reads: std::sync::Mutex<ReadRounds>,
    /// While leader: when a quorum last confirmed this node's leadership (see
    /// [`Node::leased_read_index`]).
    lease: std::sync::Mutex<Option<ReadLease>>,
    /// Start-up work (the demo seed) still running: not ready until it is done.
    pub starting: std::sync::atomic::AtomicBool,
    pub metrics: Metrics,
    /// Last log index the policy enforcer reflects.
    pub policy_applied: watch::Receiver<u64>,
    /// Last log index the search index reflects (commits are batched).
    pub search_applied: watch::Receiver<u64>,
    /// Request-rate limits per principal and department (`[limits]`).
    pub rate_limits: crate::api::ratelimit::RateLimits,
    /// Plans of repeated cross-department queries (`query.plan_cache_entries`).
    pub query_plans: crate::query::PlanCache,
    /// Asks the search indexer to rebuild the index from the catalog state.
    search_rebuild: tokio::sync::mpsc::UnboundedSender<RebuildRequest>,
    /// Last log index applied to the catalog state.
    pub applied: watch::Receiver<u64>,
}

/// Reads waiting for a leadership confirmation, and whether a round is running.
#[derive(Default)]
struct ReadRounds {
    running: bool,
    waiting: Vec<tokio::sync::oneshot::Sender<Result<u64, ApiError>>>,
}

/// A quorum confirmed this node as leader of `term` no earlier than `since`.
#[derive(Debug, Clone, Copy)]
struct ReadLease {
    term: u64,
    since: tokio::time::Instant,
}

/// How long a write waits for the policy view to catch up before answering anyway.
const VIEW_WAIT: Duration = Duration::from_secs(5);

impl Node {
    /// Opens storage, starts Raft and the background tasks. With `bootstrap`, a new node
    /// initialises itself as a one-voter cluster.
    pub async fn start(config: NodeConfig) -> Result<Arc<Node>> {
        config.check()?;
        let data = &config.data_dir;
        std::fs::create_dir_all(data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        let metrics = Metrics::new();
        metrics.init_known_labels(config.sources.keys());

        let raft_config = openraft::Config {
            cluster_name: "yiwang".into(),
            heartbeat_interval: config.raft.heartbeat_ms,
            election_timeout_min: config.raft.election_timeout_min_ms,
            election_timeout_max: config.raft.election_timeout_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.raft.snapshot_logs),
            max_in_snapshot_log_to_keep: config.raft.keep_logs,
            // openraft bounds each AppendEntries by the heartbeat interval: keep messages
            // small enough to cross within it even when entries carry bulk imports.
            max_payload_entries: config.raft.max_payload_entries,
            // openraft's default (200 ms) is shorter than installing a catalog of a few
            // thousand datasets takes: the leader would give up and send it again forever.
            install_snapshot_timeout: config.raft.snapshot_timeout_ms,
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

        let tls = crate::tls::NodeTls::load(config.tls.files())?;
        let peer = crate::tls::peer_client(&tls, config.raft.bind_ip)?;
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            Network::new(peer.clone()),
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
            PolicyEngine::new(state.clone(), config.admins.clone())
                .await
                .map_err(|e| anyhow!("{e}"))?,
        );
        let sources = Sources::from_config(&config.sources, &config.base_dir)
            .map_err(|e| anyhow!("sources: {e}"))?;
        let audit = AuditLog::open(
            &crate::audit::AuditOptions {
                dir: config.audit_dir(),
                node: config.node_id,
                segment_bytes: config.audit.segment_kb << 10,
                sync: config.audit.sync,
            },
            metrics.clone(),
        )?;

        let (policy_tx, policy_applied) = watch::channel(0);
        let (search_tx, search_applied) = watch::channel(0);
        let (search_rebuild, rebuild_requests) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(run_views(
            events,
            state.clone(),
            policy.clone(),
            SearchFeed {
                index: search.clone(),
                applied: search_tx,
                rebuilds: rebuild_requests,
            },
            policy_tx,
            metrics.clone(),
        ));

        let seeding = config.demo_seed.is_some() || config.start_not_ready;
        let config_limits = config.limits.clone();
        let plan_cache_entries = config.query.plan_cache_entries;
        let (forwarder, forward_queue) = tokio::sync::mpsc::unbounded_channel();
        let node = Arc::new(Node {
            config,
            proposer: Proposer::start(raft.clone()),
            forwarder,
            heartbeat_sent_for: std::sync::atomic::AtomicU64::new(0),
            raft,
            state,
            policy,
            search,
            sources,
            audit,
            peer,
            tls,
            reads: std::sync::Mutex::new(ReadRounds::default()),
            lease: std::sync::Mutex::new(None),
            starting: std::sync::atomic::AtomicBool::new(seeding),
            metrics,
            policy_applied,
            search_applied,
            search_rebuild,
            rate_limits: crate::api::ratelimit::RateLimits::new(&config_limits),
            query_plans: crate::query::PlanCache::new(plan_cache_entries),
            applied,
        });
        tokio::spawn(crate::cluster::run_forwarder(
            Arc::downgrade(&node),
            forward_queue,
        ));
        tokio::spawn(publish_anchors(node.clone()));
        Ok(node)
    }

    /// Rebuilds this node's search index from its catalog state, online: searches are
    /// answered from the old index until the new one is committed.
    pub async fn rebuild_search(&self) -> Result<RebuildReport, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.search_rebuild
            .send(tx)
            .map_err(|_| ApiError::unavailable("the search indexer has stopped"))?;
        rx.await
            .map_err(|_| ApiError::unavailable("the search indexer has stopped"))?
            .map_err(|e| ApiError::internal(format!("search index rebuild failed: {e}")))
    }

    /// Proposes a command through Raft (forwarded to the leader when this node is a
    /// follower) and returns its outcome once this node has applied it and its policy
    /// view reflects it, so a grant approved by one request is honoured by the next, on
    /// whichever node.
    #[tracing::instrument(name = "raft.write", level = "debug", skip_all, fields(raft.index = tracing::field::Empty))]
    pub async fn propose(&self, cmd: Command) -> Result<Outcome, ApiError> {
        let command = serde_json::to_value(&cmd)
            .map_err(|e| ApiError::internal(format!("cannot encode command: {e}")))?;
        let (index, data) = match self.on_leader(LeaderOp::Write { command }).await? {
            LeaderReply::Written { index, data } => (index, data),
            other => return Err(ApiError::internal(format!("unexpected reply {other:?}"))),
        };
        tracing::Span::current().record("raft.index", index);
        // The outcome comes from the leader's apply and is final; a node slow to apply
        // it answers anyway (and logs it).
        self.wait_applied(index).await;
        let result: yiwang_catalog::ApplyResult = serde_json::from_value(data)
            .map_err(|e| ApiError::internal(format!("unreadable apply result: {e}")))?;
        Ok(result?)
    }

    /// Waits (bounded) until this node's state and policy view include `index`; `false`
    /// when they did not within [`VIEW_WAIT`].
    pub async fn wait_applied(&self, index: u64) -> bool {
        let mut applied = self.applied.clone();
        let mut policy = self.policy_applied.clone();
        let waited = tokio::time::timeout(VIEW_WAIT, async {
            let _ = applied.wait_for(|i| *i >= index).await;
            let _ = policy.wait_for(|i| *i >= index).await;
        })
        .await;
        if waited.is_err() {
            tracing::warn!("node did not apply index {index} within {VIEW_WAIT:?}");
        }
        waited.is_ok()
    }

    /// Linearizable read barrier: returns once this node's state includes every write
    /// committed before the call (for `stale` reads: once the policy view has caught up
    /// with the local state). On a follower the read index comes from the leader.
    ///
    /// Concurrent reads share leadership confirmations: a read joins the next round that
    /// starts after it arrived (never one already under way, which could miss a write
    /// acknowledged just before the read), so one quorum round serves every read that
    /// arrived while the previous round ran — like etcd's batched ReadIndex.
    pub async fn read_barrier(self: &Arc<Self>, stale: bool) -> Result<(), ApiError> {
        if stale {
            let applied = *self.applied.borrow();
            self.wait_applied(applied).await;
            return Ok(());
        }
        let index = self.read_index().await?;
        // A node that cannot catch up (the entries do not commit, or its views lag) must
        // not answer from older state as if it were current.
        if !self.wait_applied(index).await {
            return Err(ApiError::unavailable(format!(
                "this node has not applied log index {index} within {VIEW_WAIT:?}, so it cannot answer linearizably; retry, or add ?consistency=stale to read its local state"
            )));
        }
        Ok(())
    }

    /// The index a linearizable read must wait for, from a shared leadership round.
    pub async fn read_index(self: &Arc<Self>) -> Result<u64, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let start = {
            let mut r = self.reads.lock().unwrap_or_else(|e| e.into_inner());
            r.waiting.push(tx);
            !std::mem::replace(&mut r.running, true)
        };
        if start {
            tokio::spawn(self.clone().run_read_rounds());
        }
        rx.await
            .map_err(|_| ApiError::unavailable("read barrier dropped"))?
    }

    /// The read index a leader may use without a quorum round: while its lease holds,
    /// i.e. less than half the minimum election timeout after a round that confirmed its
    /// leadership started. Any new leader needs the vote of a node that acknowledged
    /// that round (quorums intersect), and such a node neither starts an election before
    /// the minimum election timeout has passed since, nor votes for another node within
    /// openraft's leader lease (the maximum election timeout). So no other leader can
    /// have committed anything meanwhile, and every write acknowledged before this read
    /// is in this leader's log: waiting for its last log index to apply makes the read
    /// linearizable. The half leaves room for clock-rate drift. Without the lease every
    /// linearizable request — including each write, which first passes the read
    /// barrier — cost a heartbeat round to the followers.
    pub(crate) fn leased_read_index(&self) -> Option<u64> {
        let lease = (*self.lease.lock().unwrap_or_else(|e| e.into_inner()))?;
        let duration = Duration::from_millis(self.config.raft.election_timeout_min_ms / 2);
        if lease.since.elapsed() >= duration {
            return None;
        }
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let leading = m.state == openraft::ServerState::Leader
            && m.current_leader == Some(self.config.node_id)
            && m.current_term == lease.term;
        leading.then(|| m.last_log_index.unwrap_or(0))
    }

    /// Records a leadership confirmation by a quorum round that started at `since`.
    pub(crate) fn renew_lease(&self, term: u64, since: tokio::time::Instant) {
        let mut lease = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        if lease.is_none_or(|l| l.term != term || l.since < since) {
            *lease = Some(ReadLease { term, since });
        }
    }

    /// Runs leadership confirmations while reads are waiting.
    async fn run_read_rounds(self: Arc<Self>) {
        loop {
            let batch = {
                let mut r = self.reads.lock().unwrap_or_else(|e| e.into_inner());
                if r.waiting.is_empty() {
                    r.running = false;
                    return;
                }
                std::mem::take(&mut r.waiting)
            };
            let result = match self.on_leader(LeaderOp::ReadIndex).await {
                Ok(LeaderReply::ReadIndex { index }) => Ok(index),
                Ok(other) => Err(ApiError::internal(format!("unexpected reply {other:?}"))),
                Err(e) => Err(e),
            };
            for w in batch {
                let _ = w.send(result.clone());
            }
        }
    }

    /// Ready to serve: a leader is known and the views caught up with the applied state.
    pub fn readiness(&self) -> Result<(), String> {
        if self.starting.load(std::sync::atomic::Ordering::Acquire) {
            return Err("start-up work (seeding) is still running".into());
        }
        if let Some(why) = self.audit.problem() {
            return Err(format!(
                "audit trail not writable, data requests are refused: {why}"
            ));
        }
        self.serving()
    }

    /// A leader is known and the views have caught up (readiness without start-up work).
    fn serving(&self) -> Result<(), String> {
        let m = self.raft.metrics().borrow().clone();
        if m.current_leader.is_none() {
            return Err("no leader elected".into());
        }
        let applied = m.last_applied.map_or(0, |l| l.index);
        if *self.policy_applied.borrow() < applied {
            return Err("policy view is catching up".into());
        }
        // The search index may trail by up to one commit interval; it is ready once it
        // has caught up with the state it started from.
        if *self.search_applied.borrow() == 0 && applied > 0 {
            return Err("search index is being built".into());
        }
        Ok(())
    }

    /// Waits until the search index includes everything applied so far (it trails by up
    /// to one commit interval).
    pub async fn wait_search(&self, timeout: Duration) -> Result<()> {
        let target = *self.applied.borrow();
        let mut rx = self.search_applied.clone();
        tokio::time::timeout(timeout, rx.wait_for(|i| *i >= target))
            .await
            .map_err(|_| anyhow!("search index did not reach index {target} within {timeout:?}"))?
            .map_err(|_| anyhow!("search view stopped"))?;
        Ok(())
    }

    /// Waits until this node is ready or `timeout` passes.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.wait_until(timeout, || self.readiness()).await
    }

    /// Waits until a leader is known and the views caught up, ignoring start-up work.
    pub async fn wait_serving(&self, timeout: Duration) -> Result<()> {
        self.wait_until(timeout, || self.serving()).await
    }

    async fn wait_until(
        &self,
        timeout: Duration,
        check: impl Fn() -> Result<(), String>,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match check() {
                Ok(()) => return Ok(()),
                Err(why) if tokio::time::Instant::now() >= deadline => {
                    return Err(anyhow!("node not ready after {timeout:?}: {why}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// This node's own Raft view (`GET /raft/status`, node-only).
    pub fn local_status(&self) -> serde_json::Value {
        let m = self.raft.metrics().borrow().clone();
        serde_json::json!({
            "id": m.id,
            "state": format!("{:?}", m.state),
            "term": m.current_term,
            "leader": m.current_leader,
            "last_log_index": m.last_log_index,
            "applied_index": m.last_applied.map(|l| l.index),
            "snapshot_index": m.snapshot.map(|l| l.index),
        })
    }

    /// `GET /v1/cluster`: leader, term and every member with its progress, as reported
    /// by the member itself (asked over mutual TLS with a short timeout; an unreachable
    /// member is shown as such), and its lag behind this node's log.
    pub async fn cluster_status(&self) -> serde_json::Value {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership().clone();
        let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
        let replication = m.replication.clone().unwrap_or_default();
        let last = m.last_log_index.unwrap_or(0);
        let members = membership.nodes().map(|(id, n)| {
            let (id, addr) = (*id, n.addr.clone());
            let role = if voters.contains(&id) { "voter" } else { "learner" };
            let matched = replication.get(&id).and_then(|l| l.map(|l| l.index));
            async move {
                let own = if id == m.id {
                    Some(self.local_status())
                } else {
                    let url = format!("https://{addr}/raft/status");
                    match self.peer.get(&url).timeout(Duration::from_millis(800)).send().await {
                        Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
                        _ => None,
                    }
                };
                let last_log = own.as_ref().and_then(|o| o["last_log_index"].as_u64()).or(matched);
                serde_json::json!({
                    "id": id,
                    "addr": addr,
                    "role": role,
                    "reachable": own.is_some(),
                    "state": own.as_ref().map(|o| o["state"].clone()),
                    "last_log_index": last_log,
                    "applied_index": own.as_ref().and_then(|o| o["applied_index"].as_u64()),
                    "matched_index": if id == m.id { m.last_log_index } else { matched },
                    "lag": last.saturating_sub(own.as_ref().and_then(|o| o["applied_index"].as_u64()).or(matched).unwrap_or(0)),
                })
            }
        });
        let members: Vec<serde_json::Value> = futures::future::join_all(members).await;
        serde_json::json!({
            "leader": m.current_leader,
            "term": m.current_term,
            "node": m.id,
            "state": format!("{:?}", m.state),
            "last_log_index": m.last_log_index,
            "applied_index": m.last_applied.map(|l| l.index),
            "snapshot_index": m.snapshot.map(|l| l.index),
            "members": members,
        })
    }

    /// Reloads the TLS files (on SIGHUP, or when the periodic check sees a change); a
    /// set that does not work is logged and counted, and the one in use stays.
    pub fn reload_tls(&self, trigger: TlsReload) -> bool {
        let (result, why) = match trigger {
            TlsReload::Signal => (self.tls.reload(), "SIGHUP"),
            TlsReload::IfChanged => match self.tls.reload_if_changed() {
                Some(r) => (r, "changed"),
                None => return false,
            },
        };
        match result {
            Ok(r) => {
                tracing::info!(
                    "TLS files reloaded ({why}): certificate valid until {}, {} revoked certificate(s) listed",
                    time::OffsetDateTime::from_unix_timestamp(r.not_after)
                        .map_or_else(|_| r.not_after.to_string(), yiwang_catalog::clock::format),
                    r.revoked
                );
                self.metrics
                    .tls_reloads
                    .get_or_create(&crate::metrics::ResultLabels {
                        result: "ok".into(),
                    })
                    .inc();
                true
            }
            Err(e) => {
                tracing::error!("TLS files not reloaded ({why}), keeping those in use: {e:#}");
                self.metrics
                    .tls_reloads
                    .get_or_create(&crate::metrics::ResultLabels {
                        result: "failed".into(),
                    })
                    .inc();
                false
            }
        }
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
        let tls = self.tls.status();
        self.metrics.tls_not_after.set(tls.not_after);
        self.metrics.tls_revoked.set(tls.revoked as i64);
        let last = m.last_log_index.unwrap_or(0);
        self.metrics
            .raft_apply_lag
            .set(last.saturating_sub(m.last_applied.map_or(0, |l| l.index)) as i64);
        let current = format!("{:?}", m.state).to_lowercase();
        for state in ["leader", "follower", "candidate", "learner", "shutdown"] {
            let labels = crate::metrics::StateLabels {
                state: state.to_string(),
            };
            self.metrics
                .raft_state
                .get_or_create(&labels)
                .set(i64::from(state == current));
        }
        self.metrics
            .raft_quorum_ack_ms
            .set(m.millis_since_quorum_ack.map_or(-1, |ms| ms as i64));
        self.metrics.raft_peer_lag.clear();
        if let Some(replication) = &m.replication {
            for (peer, matched) in replication.iter() {
                let labels = crate::metrics::PeerLabels {
                    peer: peer.to_string(),
                };
                let lag = last.saturating_sub(matched.map_or(0, |l| l.index));
                self.metrics
                    .raft_peer_lag
                    .get_or_create(&labels)
                    .set(lag as i64);
            }
        }
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
    }
}

/// What asks for the TLS files to be read again.
#[derive(Debug, Clone, Copy)]
pub enum TlsReload {
    /// SIGHUP: read them whatever their state.
    Signal,
    /// The periodic check: read them only if one changed since the last load.
    IfChanged,
}

/// Keeps the policy enforcer in step with the applied catalog, at once (writes wait for
/// it), and hands search work to its own task so a search commit never delays a policy
/// update.
async fn run_views(
    mut events: tokio::sync::mpsc::UnboundedReceiver<ViewEvent>,
    state: SharedState,
    policy: Arc<PolicyEngine>,
    search: SearchFeed,
    policy_tx: watch::Sender<u64>,
    metrics: Metrics,
) {
    let (to_search, search_events) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(run_search(search_events, state, search, metrics));
    while let Some(event) = events.recv().await {
        match &event {
            ViewEvent::Reset { index } => {
                if let Err(e) = policy.reload().await {
                    tracing::error!("policy reload failed: {e}");
                }
                policy_tx.send_replace(*index);
            }
            ViewEvent::Changed { index, changes } => {
                if let Err(e) = policy.apply(changes).await {
                    tracing::error!("policy update failed, reloading: {e}");
                    let _ = policy.reload().await;
                }
                policy_tx.send_replace(*index);
            }
        }
        let _ = to_search.send(event);
    }
}

/// Publishes this node's audit chain head through Raft every `audit.anchor_interval_s`
/// while it has new records, so that a truncated audit log is detected by `verify` even
/// if its tail was removed cleanly; and applies retention.
async fn publish_anchors(node: Arc<Node>) {
    let every = Duration::from_secs(node.config.audit.anchor_interval_s.max(1));
    let retention = node.config.audit_retention().ok().flatten();
    let mut published = 0u64;
    let mut warned = false;
    loop {
        tokio::time::sleep(every).await;
        if let Some(keep) = retention
            && let Err(e) = apply_retention(&node, keep).await
        {
            tracing::warn!("audit retention: {e}");
        }
        let head = node.audit.head();
        if head.seq == published {
            continue;
        }
        match node.anchor_audit_head().await {
            Ok(Anchored::Published | Anchored::Already) => published = head.seq,
            Ok(Anchored::Behind(anchored)) => {
                if !warned {
                    tracing::warn!(
                        "this node's audit log ends at seq {} but seq {anchored} was anchored: records were lost",
                        head.seq
                    );
                    warned = true;
                }
                published = head.seq;
            }
            Err(e) => tracing::debug!("audit anchor not published yet: {e}"),
        }
    }
}

/// What [`Node::anchor_audit_head`] did.
pub enum Anchored {
    Published,
    /// The head was anchored already.
    Already,
    /// The log ends below its anchor (its folder was lost): nothing proposed, since an
    /// anchor never moves back and proposing would only commit rejected entries.
    Behind(u64),
}

impl Node {
    /// Publishes this node's audit chain head through Raft unless it is anchored
    /// already. Called every `audit.anchor_interval_s`, and once more when the node
    /// stops, so that a tail removed after a clean stop is found too.
    pub async fn anchor_audit_head(&self) -> Result<Anchored, String> {
        let head = self.audit.head();
        let anchored = self
            .state
            .read()
            .anchors
            .get(&self.config.node_id)
            .map_or(0, |a| a.seq);
        if head.seq < anchored {
            return Ok(Anchored::Behind(anchored));
        }
        if head.seq == anchored {
            return Ok(Anchored::Already);
        }
        self.propose(anchor_command(self, None))
            .await
            .map(|_| Anchored::Published)
            .map_err(|e| e.message)
    }
}

fn anchor_command(node: &Node, cut: Option<yiwang_catalog::model::AuditCut>) -> Command {
    let head = node.audit.head();
    Command::PublishAnchor {
        anchor: yiwang_catalog::model::AuditAnchor {
            node_id: node.config.node_id,
            seq: head.seq,
            hash: head.hash,
            at: yiwang_catalog::clock::now(),
            cut,
        },
    }
}

/// Deletes sealed audit segments older than `keep`, after publishing where the retained
/// trail starts (the cut) through Raft: a verifier accepts that start and nothing else.
async fn apply_retention(node: &Arc<Node>, keep: Duration) -> Result<(), String> {
    let keep = time::Duration::try_from(keep).map_err(|e| e.to_string())?;
    let Some(before) = time::OffsetDateTime::now_utc().checked_sub(keep) else {
        return Ok(());
    };
    let before = yiwang_catalog::clock::format(before);
    let dir = node.audit.dir().to_path_buf();
    let plan = tokio::task::spawn_blocking(move || crate::audit::plan_retention(&dir, &before))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let Some(plan) = plan else { return Ok(()) };
    node.propose(anchor_command(node, Some(plan.cut.clone())))
        .await
        .map_err(|e| format!("cut not anchored, nothing deleted: {}", e.message))?;
    let log = node.audit.clone();
    let delete = plan.delete.clone();
    tokio::task::spawn_blocking(move || {
        let _no_readers = log.deleting();
        for seg in &delete {
            std::fs::remove_file(&seg.path)
                .map_err(|e| format!("cannot delete {}: {e}", seg.path.display()))?;
        }
        Ok::<_, String>(())
    })
    .await
    .map_err(|e| e.to_string())??;
    tracing::info!(
        "audit retention: deleted {} segment(s); the trail now starts at seq {} ({})",
        plan.delete.len(),
        plan.cut.seq,
        plan.cut.time
    );
    Ok(())
}
