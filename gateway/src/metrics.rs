//! Prometheus metrics, served on the admin listener at `/metrics`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route template (`/v1/datasets/{id}`), never the raw path, to bound cardinality.
    pub route: String,
    pub status: u16,
    /// The caller's department (`_node` for another node, `_none` without a usable
    /// certificate): a bounded set, the registered departments.
    pub dept: String,
}

/// Latency histograms leave the department out: 16 buckets for every department,
/// route and status would be too many series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub action: String,
    pub decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// leader, follower, candidate, learner or shutdown.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// The source id of node.toml (a bounded set).
    pub source: String,
}

/// All metrics of a node; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<LatencyLabels, Histogram>,
    pub decisions: Family<DecisionLabels, Counter>,
    pub audit_records: Counter,
    pub audit_fsync: Histogram,
    pub audit_wait: Histogram,
    pub audit_failures: Counter,
    pub audit_commits: Counter,
    pub raft_term: Gauge,
    pub raft_leader: Gauge,
    pub raft_last_applied: Gauge,
    pub raft_last_log: Gauge,
    pub search_docs: Gauge,
    pub tls_handshake_failures: Counter,
    pub source_rows: Family<SourceLabels, Counter>,
    pub rate_limited: Counter,
    pub audit_queue: Gauge,
    pub raft_state: Family<StateLabels, Gauge>,
    pub raft_apply_lag: Gauge,
    pub raft_peer_lag: Family<PeerLabels, Gauge>,
    pub raft_quorum_ack_ms: Gauge,
    pub source_errors: Family<SourceLabels, Counter>,
    pub tls_reloads: Family<ResultLabels, Counter>,
    pub query_plans: Family<ResultLabels, Counter>,
    pub tls_not_after: Gauge,
    pub tls_revoked: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("yiwang");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0002, 2.0, 16))
        });
        let decisions = Family::<DecisionLabels, Counter>::default();
        let audit_records = Counter::default();
        let audit_fsync = Histogram::new(exponential_buckets(0.00005, 2.0, 16));
        let audit_wait = Histogram::new(exponential_buckets(0.00005, 2.0, 16));
        let audit_failures = Counter::default();
        let audit_commits = Counter::default();
        let raft_term = Gauge::default();
        let raft_leader = Gauge::default();
        let raft_last_applied = Gauge::default();
        let raft_last_log = Gauge::default();
        let search_docs = Gauge::default();
        let tls_handshake_failures = Counter::default();
        let source_rows = Family::<SourceLabels, Counter>::default();
        r.register("http_requests", "HTTP requests answered", requests.clone());
        r.register(
            "http_request_seconds",
            "HTTP request latency",
            request_seconds.clone(),
        );
        r.register(
            "policy_decisions",
            "Audited decisions by action and outcome",
            decisions.clone(),
        );
        r.register(
            "audit_records",
            "Audit records written durably",
            audit_records.clone(),
        );
        r.register(
            "audit_fsync_seconds",
            "Time of one audit group commit (write + fdatasync)",
            audit_fsync.clone(),
        );
        r.register(
            "audit_wait_seconds",
            "Time a request waits for its audit record",
            audit_wait.clone(),
        );
        r.register(
            "audit_write_failures",
            "Audit writes that failed (their requests were refused with 503)",
            audit_failures.clone(),
        );
        r.register(
            "audit_commits",
            "Audit group commits (one write and fdatasync each, however many records)",
            audit_commits.clone(),
        );
        r.register("raft_term", "Current Raft term", raft_term.clone());
        r.register(
            "raft_leader",
            "Id of the current leader (0 when unknown)",
            raft_leader.clone(),
        );
        r.register(
            "raft_last_applied",
            "Last log index applied to the catalog",
            raft_last_applied.clone(),
        );
        r.register(
            "raft_last_log_index",
            "Last log index in this node's log",
            raft_last_log.clone(),
        );
        r.register(
            "search_documents",
            "Datasets in the search index",
            search_docs.clone(),
        );
        r.register(
            "tls_handshake_failures",
            "TLS handshakes that failed (e.g. no client certificate)",
            tls_handshake_failures.clone(),
        );
        let rate_limited = Counter::default();
        r.register(
            "rate_limited",
            "Requests refused with 429 for exceeding a principal's or department's rate",
            rate_limited.clone(),
        );
        r.register(
            "source_rows_read",
            "Rows sources sent to cross-department queries, after pushdown",
            source_rows.clone(),
        );
        let audit_queue = Gauge::default();
        r.register(
            "audit_queue_depth",
            "Audit records waiting for the writer (requests waiting for their record, and completion records)",
            audit_queue.clone(),
        );
        let raft_state = Family::<StateLabels, Gauge>::default();
        r.register(
            "raft_state",
            "1 for this node's current Raft role, 0 for the others",
            raft_state.clone(),
        );
        let raft_apply_lag = Gauge::default();
        r.register(
            "raft_apply_lag",
            "Entries in this node's log not yet applied to its catalog",
            raft_apply_lag.clone(),
        );
        let raft_peer_lag = Family::<PeerLabels, Gauge>::default();
        r.register(
            "raft_replication_lag",
            "On the leader: entries each member has not yet matched",
            raft_peer_lag.clone(),
        );
        let raft_quorum_ack_ms = Gauge::default();
        r.register(
            "raft_millis_since_quorum_ack",
            "On the leader: milliseconds since a quorum last acknowledged it (-1 elsewhere)",
            raft_quorum_ack_ms.clone(),
        );
        let source_errors = Family::<SourceLabels, Counter>::default();
        r.register(
            "source_errors",
            "Reads of a department source that failed (source down, timeout, bad answer)",
            source_errors.clone(),
        );
        let tls_reloads = Family::<ResultLabels, Counter>::default();
        r.register(
            "tls_reloads",
            "Reloads of the TLS files (certificate, key, CA, revocation lists) by result",
            tls_reloads.clone(),
        );
        let query_plans = Family::<ResultLabels, Counter>::default();
        r.register(
            "query_plans",
            "Authorised cross-department queries by plan: cached (a kept plan) or planned",
            query_plans.clone(),
        );
        let tls_not_after = Gauge::default();
        r.register(
            "tls_certificate_not_after_seconds",
            "End of validity of the node certificate in use (Unix time)",
            tls_not_after.clone(),
        );
        let tls_revoked = Gauge::default();
        r.register(
            "tls_revoked_certificates",
            "Certificates listed as revoked in the revocation lists in use",
            tls_revoked.clone(),
        );
        Metrics {
            registry: Arc::new(r),
            tls_reloads,
            query_plans,
            tls_not_after,
            tls_revoked,
            audit_queue,
            raft_state,
            raft_apply_lag,
            raft_peer_lag,
            raft_quorum_ack_ms,
            source_errors,
            requests,
            request_seconds,
            decisions,
            audit_records,
            audit_fsync,
            audit_wait,
            audit_failures,
            audit_commits,
            raft_term,
            raft_leader,
            raft_last_applied,
            raft_last_log,
            search_docs,
            tls_handshake_failures,
            source_rows,
            rate_limited,
        }
    }

    /// Creates the series whose labels are known at start (the configured sources, the
    /// reload results) at 0, so that they are exported, and can be graphed and alerted
    /// on, before the first event.
    pub fn init_known_labels<'a>(&self, sources: impl Iterator<Item = &'a String>) {
        for source in sources {
            let labels = SourceLabels {
                source: source.clone(),
            };
            let _ = self.source_errors.get_or_create(&labels);
            let _ = self.source_rows.get_or_create(&labels);
        }
        for result in ["ok", "failed"] {
            let _ = self.tls_reloads.get_or_create(&ResultLabels {
                result: result.into(),
            });
        }
        for result in ["cached", "planned"] {
            let _ = self.query_plans.get_or_create(&ResultLabels {
                result: result.into(),
            });
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
