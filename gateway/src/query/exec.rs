//! Running an authorised query: each dataset is registered as a view over its source
//! that shows only the columns the consumer may see, masks the masked ones and keeps
//! only the rows its grants allow; DataFusion pushes filters and projections through
//! the view into the source.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::catalog::default_table_source::provider_as_source;
use datafusion::catalog::view::ViewTable;
use datafusion::common::Column;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::execution::context::{SessionContext, SessionState};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{
    ColumnarValue, LogicalPlan, LogicalPlanBuilder, ScalarUDF, Volatility, create_udf,
};
use datafusion::prelude::{Expr, cast, lit};
use futures::{FutureExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tracing::Instrument as _;
use yiwang_catalog::model::{Dataset, Masking};
use yiwang_policies::ReadPlan;

use super::QueryLimits;
use super::output::{Encoder, OutputFormat};
use super::plan::{Statement, plan_error, register};
use crate::api::ApiError;
use crate::node::Node;

const MASK_UDF: &str = "yiwang_mask";

/// A masking rule's name in SQL: its catalog (serde) name, e.g. `id_card`.
fn rule_name(m: Masking) -> String {
    serde_json::to_value(m)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn rule_from(name: &str) -> Option<Masking> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// `yiwang_mask(value, rule)`: the policy's masking as a SQL function.
fn mask_udf() -> ScalarUDF {
    create_udf(
        MASK_UDF,
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let rule = match &args[1] {
                ColumnarValue::Scalar(s) => s.to_string(),
                ColumnarValue::Array(_) => {
                    return Err(DataFusionError::Execution(
                        "mask rule must be a literal".into(),
                    ));
                }
            };
            let rule = rule_from(&rule)
                .ok_or_else(|| DataFusionError::Execution(format!("unknown mask rule {rule}")))?;
            let values = args[0].clone().into_array(1)?;
            let strings = values
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| DataFusionError::Execution("mask expects text".into()))?;
            let masked: StringArray = strings
                .iter()
                .map(|v| {
                    v.and_then(|s| {
                        match yiwang_policies::masking::mask(
                            &serde_json::Value::String(s.to_string()),
                            rule,
                        ) {
                            serde_json::Value::String(m) => Some(m),
                            _ => None,
                        }
                    })
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(masked) as ArrayRef))
        }),
    )
}

fn column(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}

/// The view a consumer queries instead of the raw source table.
fn view_for(
    ctx: &SessionContext,
    dataset: &Dataset,
    raw: Arc<dyn TableProvider>,
    plan: &ReadPlan,
) -> Result<Arc<dyn TableProvider>, ApiError> {
    let udf = Arc::new(mask_udf());
    let raw_name = format!("{}__source", dataset.id);
    let mut builder = LogicalPlanBuilder::scan(raw_name.as_str(), provider_as_source(raw), None)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(rows) = &plan.row_filter {
        builder = builder
            .filter(yiwang_adapters::filter_to_expr_typed(rows, &dataset.fields))
            .map_err(|e| ApiError::internal(format!("grant row filter: {e}")))?;
    }
    let columns: Vec<Expr> = plan
        .columns
        .iter()
        .map(|c| {
            let name = c.field.name.as_str();
            match c.mask {
                None => column(name),
                Some(rule) => udf
                    .call(vec![
                        cast(column(name), DataType::Utf8),
                        lit(rule_name(rule)),
                    ])
                    .alias(name),
            }
        })
        .collect();
    let logical = builder
        .project(columns)
        .and_then(|b| b.build())
        .map_err(|e| ApiError::internal(format!("view of {}: {e}", dataset.id)))?;
    let _ = ctx;
    Ok(Arc::new(ViewTable::new(logical, None)))
}

/// One message from a running query.
pub enum Chunk {
    /// The next bytes of the answer, with the rows they hold.
    Data { bytes: Bytes, rows: u64 },
    /// The answer is complete: its rows, and the rows each source sent (by source id),
    /// after pushdown.
    End {
        rows: u64,
        source_rows: BTreeMap<String, u64>,
    },
    /// The query failed; nothing follows.
    Failed(ApiError),
}

/// A query running in a task of its own, which encodes its answer batch by batch and
/// hands it over in [`Chunk`]s as they are taken: a result is never held in memory as a
/// whole. Dropping this stops the query, and with it the queries at the sources.
pub struct Running {
    rx: mpsc::Receiver<Chunk>,
    deadline: tokio::time::Instant,
    timeout_ms: u64,
    timed_out: Arc<AtomicBool>,
    _task: AbortOnDrop<()>,
    _watchdog: AbortOnDrop<()>,
}

impl Running {
    /// The next chunk. After [`Chunk::End`] or [`Chunk::Failed`] there is none.
    pub async fn next(&mut self) -> Chunk {
        // The deadline is watched here and by the watchdog task, not inside the
        // query's task: a long computation between two await points would hold a timer
        // there back.
        match tokio::time::timeout_at(self.deadline, self.rx.recv()).await {
            Ok(Some(chunk)) => chunk,
            Err(_) => Chunk::Failed(self.timeout_error()),
            Ok(None) if self.timed_out.load(Ordering::Acquire) => {
                Chunk::Failed(self.timeout_error())
            }
            Ok(None) => Chunk::Failed(ApiError::internal("the query stopped before its end")),
        }
    }

    fn timeout_error(&self) -> ApiError {
        ApiError::new(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            "query_timeout",
            format!(
                "the query did not finish within {} ms; narrow it or aggregate at the source",
                self.timeout_ms
            ),
        )
    }
}

/// Encoded batches waiting to be taken: enough to keep the network busy while the
/// next batch is computed, few enough that a slow client holds the query back instead
/// of filling the node's memory.
const CHUNKS_AHEAD: usize = 4;

/// Plans `statement` with each dataset served through its view, and optimises it: an
/// optimised plan, and whether it may be kept for later queries (see
/// [`super::plan::repeatable`]).
pub async fn plan(
    node: &Node,
    ctx: &SessionContext,
    statement: &Statement,
    datasets: &BTreeMap<String, Dataset>,
    plans: &BTreeMap<String, ReadPlan>,
) -> Result<(LogicalPlan, bool), ApiError> {
    ctx.register_udf(mask_udf());
    register(ctx, datasets, |d| {
        let source_ref = d.source.as_ref().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "no_source",
                format!(
                    "dataset '{}' has no records source: it is catalogued for discovery only",
                    d.id
                ),
            )
        })?;
        let source = node.sources.require(&source_ref.id)?;
        let raw = source.table_provider(&source_ref.table, &d.fields)?;
        view_for(ctx, d, raw, &plans[&d.id])
    })?;
    let state = ctx.state();
    let plan = state
        .statement_to_plan(statement.ast.clone())
        .await
        .map_err(plan_error)?;
    super::plan::sql_options()
        .verify_plan(&plan)
        .map_err(plan_error)?;
    let repeatable = super::plan::repeatable(&plan);
    // A panic inside the engine is an error answer, as during execution.
    let optimized =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state.optimize(&plan)))
            .map_err(|panic| {
                ApiError::internal(format!(
                    "the query engine failed on this query and it was stopped: {}",
                    panic_message(panic.as_ref())
                ))
            })?
            .map_err(exec_error)?;
    Ok((optimized, repeatable))
}

/// Starts the optimised `plan` (from [`plan`]): made physical with `state`, run with
/// the memory of `runtime`, answering in `format`. Errors found while planning come
/// back here; later ones as [`Chunk::Failed`].
pub async fn execute(
    state: Arc<SessionState>,
    runtime: Arc<RuntimeEnv>,
    plan: LogicalPlan,
    limits: &QueryLimits,
    format: OutputFormat,
) -> Result<Running, ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(limits.timeout_ms);
    let timeout_ms = limits.timeout_ms;
    let max_rows = limits.max_rows;
    let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
    let produce = {
        let tx = tx.clone();
        async move {
            let schema = Arc::new(plan.schema().as_arrow().clone());
            // Already optimised: straight to the physical plan.
            let physical = state
                .query_planner()
                .create_physical_plan(&plan, state.as_ref())
                .await
                .map_err(exec_error)?;
            let mut stream = datafusion::physical_plan::execute_stream(
                Arc::clone(&physical),
                Arc::new(TaskContext::from(state.as_ref()).with_runtime(runtime)),
            )
            .map_err(exec_error)?;
            let (mut encoder, head) = Encoder::start(format, schema)?;
            let send = |bytes: Vec<u8>, rows: u64| {
                let tx = &tx;
                async move {
                    if bytes.is_empty() {
                        return true;
                    }
                    let bytes = Bytes::from(bytes);
                    tx.send(Chunk::Data { bytes, rows }).await.is_ok()
                }
            };
            if !send(head, 0).await {
                return Ok(None);
            }
            let mut rows = 0u64;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(exec_error)?;
                let n = batch.num_rows() as u64;
                rows += n;
                if rows > max_rows {
                    return Err(ApiError::new(
                        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                        "too_many_rows",
                        format!(
                            "the result has more than {max_rows} rows; aggregate, filter or add a LIMIT"
                        ),
                    ));
                }
                // A client that went away stops the query.
                if !send(encoder.batch(&batch)?, n).await {
                    return Ok(None);
                }
            }
            drop(stream);
            if !send(encoder.finish(rows)?, 0).await {
                return Ok(None);
            }
            Ok(Some(Chunk::End {
                rows,
                source_rows: yiwang_adapters::rows_read_by_source(&physical),
            }))
        }
    };
    // The query runs in a task of its own, so that a panic inside the engine becomes
    // an error answer (and an audit record) instead of a dropped connection. Past the
    // deadline, or when the answer is dropped (the client went away), the task is
    // stopped, which drops the stream, which cancels DataFusion's tasks and, through
    // the adapters, the queries running at the sources.
    let span = tracing::debug_span!("query.execute");
    let task = tokio::spawn(
        async move {
            let last = match std::panic::AssertUnwindSafe(produce).catch_unwind().await {
                Ok(Ok(Some(end))) => end,
                // Nobody is listening any more.
                Ok(Ok(None)) => return,
                Ok(Err(e)) => Chunk::Failed(e),
                Err(panic) => Chunk::Failed(ApiError::internal(format!(
                    "the query engine failed on this query and it was stopped: {}",
                    panic_message(panic.as_ref())
                ))),
            };
            let _ = tx.send(last).await;
        }
        .instrument(span),
    );
    // Stops the query at its deadline even while nobody waits for its next chunk (a
    // client that does not read a streamed answer).
    let timed_out = Arc::new(AtomicBool::new(false));
    let watchdog = tokio::spawn({
        let (timed_out, task) = (Arc::clone(&timed_out), task.abort_handle());
        async move {
            tokio::time::sleep_until(deadline).await;
            timed_out.store(true, Ordering::Release);
            task.abort();
        }
    });
    Ok(Running {
        rx,
        deadline,
        timeout_ms,
        timed_out,
        _task: AbortOnDrop(task),
        _watchdog: AbortOnDrop(watchdog),
    })
}

/// A spawned task that is aborted when the handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// Maps execution errors: memory limit, source failures (carried as adapter errors),
/// anything else.
fn exec_error(e: DataFusionError) -> ApiError {
    if let DataFusionError::ResourcesExhausted(msg) = &e {
        return ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "memory_limit",
            format!("the query needs more memory than allowed: {msg}; aggregate or filter more"),
        );
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = cur {
        if let Some(a) = err.downcast_ref::<yiwang_adapters::AdapterError>() {
            return a.clone().into();
        }
        if let Some(DataFusionError::ResourcesExhausted(msg)) =
            err.downcast_ref::<DataFusionError>()
        {
            return ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "memory_limit",
                format!("the query needs more memory than allowed: {msg}"),
            );
        }
        cur = err.source();
    }
    let text = e.strip_backtrace();
    ApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "query_failed",
        format!("the query failed: {text}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_udf_masks_like_the_records_endpoint() {
        let udf = mask_udf();
        let input = ColumnarValue::Array(Arc::new(StringArray::from(vec![
            Some("320602198001011234"),
            None,
        ])));
        let out = udf
            .invoke_with_args(datafusion::logical_expr::ScalarFunctionArgs {
                args: vec![input, ColumnarValue::Scalar("id_card".into())],
                arg_fields: vec![],
                number_rows: 2,
                return_field: Arc::new(datafusion::arrow::datatypes::Field::new(
                    "x",
                    DataType::Utf8,
                    true,
                )),
                config_options: Arc::new(Default::default()),
            })
            .unwrap()
            .into_array(2)
            .unwrap();
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(out.value(0), "320602********1234");
        assert!(out.is_null(1));
    }
}
