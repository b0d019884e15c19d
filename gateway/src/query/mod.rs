//! Cross-department SQL: one question over several departments' sources, answered
//! without copying their data, under each provider's policy.
//!
//! 1. Parse: tables are `"<dept-code>"."<dataset-id>"` of active catalog datasets; only
//!    queries (no DDL, DML or statements).
//! 2. Plan against schema-only tables to learn which columns of which dataset the query
//!    uses anywhere (select list, filters, joins, grouping, ordering, subqueries).
//! 3. Authorise every dataset and every used column with the policy engine: a dataset
//!    the consumer may not read is a 403 naming it, a column outside its grant a 403
//!    naming the column. Masked columns stay masked wherever they are used, so filtering
//!    or joining on them reveals nothing; grant row filters apply to every read.
//! 4. Execute over views of the sources (masking and row filters built in) with limits
//!    on rows, time and memory.

mod cache;
mod exec;
mod output;
mod plan;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use datafusion::execution::context::{SessionConfig, SessionContext, SessionState};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use serde::{Deserialize, Serialize};
use yiwang_policies::{Principal, ReadPlan};

pub use cache::PlanCache;
pub use exec::{Chunk, Running};
pub use output::OutputFormat;

use crate::api::ApiError;
use crate::node::Node;

/// Limits of one query (`[query]` in node.toml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLimits {
    /// Most rows a result may have.
    pub max_rows: u64,
    /// Wall-clock limit of one query, sources included.
    pub timeout_ms: u64,
    /// Memory DataFusion may use for one query (joins, aggregates, sorts).
    pub memory_mb: usize,
    /// Longest accepted SQL text.
    pub max_sql_bytes: usize,
    /// Answers up to this size are sent whole: with a Content-Length, the row count in
    /// a header, and any error as an error status. Larger answers are streamed as they
    /// are computed.
    pub buffer_kb: usize,
    /// SQL texts whose plans are kept for repeated queries (0: none).
    pub plan_cache_entries: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_rows: 100_000,
            timeout_ms: 30_000,
            memory_mb: 256,
            max_sql_bytes: 64 * 1024,
            buffer_kb: 8 * 1024,
            plan_cache_entries: 256,
        }
    }
}

/// What was touched, for the audit record.
#[derive(Debug, Clone, Default)]
pub struct Touched {
    pub datasets: Vec<String>,
    pub providers: Vec<String>,
    /// `<dataset-id>.<field>` for every column used.
    pub fields: Vec<String>,
    /// The rules and grants that allowed it.
    pub reasons: Vec<String>,
    pub grants: Vec<String>,
}

/// The memory of one query: a pool of `query.memory_mb` of its own.
fn runtime(limits: &QueryLimits) -> Result<Arc<RuntimeEnv>, ApiError> {
    RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory_mb << 20, 1.0)
        .build_arc()
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn session_config() -> SessionConfig {
    // One partition per operator: the sources stream concurrently anyway (each scan
    // has its own task), and without repartitioning the plans stay small and clear of
    // DataFusion 55's RepartitionExec panic ("partition not used yet") on some
    // multi-way joins.
    SessionConfig::new()
        .with_target_partitions(1)
        .with_information_schema(false)
}

/// A session to plan one query in: its tables are registered in it.
fn session(limits: &QueryLimits) -> Result<SessionContext, ApiError> {
    let ctx = SessionContext::new_with_config_rt(session_config(), runtime(limits)?);
    // GROUP BY over one SQL source table runs at the source.
    ctx.add_optimizer_rule(Arc::new(yiwang_adapters::AggregatePushdown));
    Ok(ctx)
}

/// The state a kept (optimised) plan is made physical with. A session per query is
/// dear — DataFusion registers its few hundred functions in each — and a kept plan
/// needs no tables registered, so it is shared; each query still runs with a memory
/// pool of its own.
fn shared_state() -> Arc<SessionState> {
    static STATE: OnceLock<Arc<SessionState>> = OnceLock::new();
    Arc::clone(
        STATE.get_or_init(|| Arc::new(SessionContext::new_with_config(session_config()).state())),
    )
}

/// A query's answer, as far as it is known before the response starts.
pub enum Answer {
    /// The whole answer, no larger than `query.buffer_kb`.
    Whole {
        body: Vec<u8>,
        rows: u64,
        source_rows: BTreeMap<String, u64>,
    },
    /// A larger answer: its first chunks, with the rows they hold; the rest follows
    /// from `rest`.
    Streamed {
        head: Vec<Bytes>,
        rows: u64,
        rest: Running,
    },
}

impl Answer {
    /// Takes chunks of `running` until its end, or until more than `limit` bytes are
    /// held. An error before that is the answer.
    pub async fn collect(mut running: Running, limit: usize) -> Result<Answer, ApiError> {
        let mut head = Vec::new();
        let (mut held, mut rows) = (0, 0);
        loop {
            match running.next().await {
                Chunk::Data { bytes, rows: n } => {
                    held += bytes.len();
                    rows += n;
                    head.push(bytes);
                    if held > limit {
                        return Ok(Answer::Streamed {
                            head,
                            rows,
                            rest: running,
                        });
                    }
                }
                Chunk::End { rows, source_rows } => {
                    return Ok(Answer::Whole {
                        body: head.concat(),
                        rows,
                        source_rows,
                    });
                }
                Chunk::Failed(e) => return Err(e),
            }
        }
    }
}

/// Authorises `sql` for `who` and starts it, answering in `format`; `touched` is
/// filled in as soon as it is known, so a refused query is audited with what it tried
/// to read.
pub async fn run(
    node: &Node,
    who: &Principal,
    sql: &str,
    format: OutputFormat,
    touched: &mut Touched,
) -> Result<Running, ApiError> {
    let limits = &node.config.query;
    if sql.trim().is_empty() {
        return Err(ApiError::bad_request("invalid_sql", "sql is empty"));
    }
    if sql.len() > limits.max_sql_bytes {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("sql is longer than {} bytes", limits.max_sql_bytes),
        ));
    }
    // Made when something must be planned; a query whose plan is kept needs none.
    let made = OnceLock::new();
    let ctx = || -> Result<&SessionContext, ApiError> {
        if let Some(ctx) = made.get() {
            return Ok(ctx);
        }
        let ctx = session(limits)?;
        Ok(made.get_or_init(|| ctx))
    };
    let entry = node.query_plans.entry(sql, || plan::parse(ctx()?, sql))?;
    let datasets = plan::resolve(node, &entry.statement.tables)?;
    touched.datasets = datasets.keys().cloned().collect();
    touched.providers = datasets.values().map(|d| d.dept.clone()).collect();
    touched.providers.sort();
    touched.providers.dedup();
    let usage = match entry.usage(&datasets) {
        Some(usage) => usage,
        None => {
            let usage = plan::usage(ctx()?, &entry.statement, &datasets).await?;
            entry.keep_usage(&datasets, &usage);
            usage
        }
    };
    touched.fields = usage
        .iter()
        .flat_map(|(id, cols)| cols.iter().map(move |c| format!("{id}.{c}")))
        .collect();

    let now = yiwang_catalog::clock::now();
    let mut plans: BTreeMap<String, ReadPlan> = BTreeMap::new();
    for (id, d) in &datasets {
        // Plan with the columns the query uses, so a conditional read is served under
        // a grant that covers them all.
        let used: Vec<String> = usage
            .get(id)
            .map(|u| u.iter().cloned().collect())
            .unwrap_or_default();
        let requested = (!used.is_empty()).then_some(used.as_slice());
        let plan = node
            .policy
            .plan_read(who, d, requested, &now)
            .await
            .map_err(|e| match e {
                yiwang_policies::PolicyError::Denied(m) if m.contains(id.as_str()) => {
                    ApiError::forbidden(m)
                }
                yiwang_policies::PolicyError::Denied(m) => {
                    ApiError::forbidden(format!("dataset '{id}': {m}"))
                }
                other => other.into(),
            })?;
        for c in usage.get(id).into_iter().flatten() {
            if !plan.columns.iter().any(|p| &p.field.name == c) {
                return Err(ApiError::forbidden(format!(
                    "column '{c}' of dataset '{id}' is not covered by the grant of {}; request access to it",
                    who.dept
                )));
            }
        }
        if let Some(rule) = &plan.decision.rule {
            touched.reasons.push(format!("{id}: {rule}"));
        }
        if let Some(g) = &plan.decision.grant {
            touched.grants.push(g.clone());
        }
        plans.insert(id.clone(), plan);
    }
    // The plan over the views this consumer gets; made in the same session as the
    // usage (with the views in place of the schema-only tables) unless it is kept.
    let (logical, cached) = match entry.plan(&datasets, &plans) {
        Some(logical) => (logical, true),
        None => {
            let (logical, repeatable) =
                exec::plan(node, ctx()?, &entry.statement, &datasets, &plans).await?;
            if repeatable {
                entry.keep_plan(&datasets, &plans, &logical);
            }
            (logical, false)
        }
    };
    node.metrics
        .query_plans
        .get_or_create(&crate::metrics::ResultLabels {
            result: if cached { "cached" } else { "planned" }.into(),
        })
        .inc();
    let (state, runtime) = match made.get() {
        Some(ctx) => (Arc::new(ctx.state()), ctx.runtime_env()),
        None => (shared_state(), runtime(limits)?),
    };
    exec::execute(state, runtime, logical, limits, format).await
}
