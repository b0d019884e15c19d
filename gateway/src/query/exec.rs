//! Running an authorised query: each dataset is registered as a view over its source
//! that shows only the columns the consumer may see, masks the masked ones and keeps
//! only the rows its grants allow; DataFusion pushes filters and projections through
//! the view into the source.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::catalog::default_table_source::provider_as_source;
use datafusion::catalog::view::ViewTable;
use datafusion::common::Column;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, LogicalPlanBuilder, ScalarUDF, Volatility, create_udf,
};
use datafusion::prelude::{Expr, cast, lit};
use futures::StreamExt;
use tracing::Instrument as _;
use yiwang_catalog::model::{Dataset, Masking};
use yiwang_policies::ReadPlan;

use super::QueryLimits;
use super::plan::{Parsed, plan_error, register};
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

/// The result of a query, held in memory up to the row and memory limits.
pub struct Results {
    pub schema: datafusion::arrow::datatypes::SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: u64,
    /// Rows each source sent (by source id), after pushdown.
    pub source_rows: BTreeMap<String, u64>,
}

/// Executes `parsed` with each dataset served through its view.
pub async fn execute(
    node: &Node,
    ctx: &SessionContext,
    parsed: &Parsed,
    plans: &BTreeMap<String, ReadPlan>,
    limits: &QueryLimits,
) -> Result<Results, ApiError> {
    ctx.register_udf(mask_udf());
    register(ctx, &parsed.datasets, |d| {
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
        .statement_to_plan(parsed.statement.clone())
        .await
        .map_err(plan_error)?;
    super::plan::sql_options()
        .verify_plan(&plan)
        .map_err(plan_error)?;
    let df = datafusion::dataframe::DataFrame::new(state, plan);
    let timeout = Duration::from_millis(limits.timeout_ms);
    let max_rows = limits.max_rows;
    let run = async move {
        let schema = Arc::new(df.schema().as_arrow().clone());
        let physical = df.create_physical_plan().await.map_err(exec_error)?;
        let mut stream = datafusion::physical_plan::execute_stream(
            Arc::clone(&physical),
            Arc::new(df.task_ctx()),
        )
        .map_err(exec_error)?;
        let mut batches = Vec::new();
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(exec_error)?;
            rows += batch.num_rows() as u64;
            if rows > max_rows {
                return Err(ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "too_many_rows",
                    format!(
                        "the result has more than {max_rows} rows; aggregate, filter or add a LIMIT"
                    ),
                ));
            }
            batches.push(batch);
        }
        drop(stream);
        Ok(Results {
            schema,
            batches,
            rows,
            source_rows: yiwang_adapters::rows_read_by_source(&physical),
        })
    };
    // The query runs in a task of its own, so that a panic inside the engine becomes
    // an error answer (and an audit record) instead of a dropped connection. Aborting
    // the task — on timeout, or when the client goes away and this future is dropped —
    // drops the stream, which cancels DataFusion's tasks and, through the adapters, the
    // queries running at the sources.
    let span = tracing::debug_span!("query.execute");
    let mut task = AbortOnDrop(tokio::spawn(run.instrument(span)));
    match tokio::time::timeout(timeout, &mut task).await {
        Ok(Ok(r)) => r,
        Ok(Err(joined)) => Err(ApiError::internal(format!(
            "the query engine failed on this query and it was stopped: {}",
            panic_message(joined)
        ))),
        Err(_) => Err(ApiError::new(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            "query_timeout",
            format!(
                "the query did not finish within {} ms; narrow it or aggregate at the source",
                limits.timeout_ms
            ),
        )),
    }
}

/// A spawned task that is aborted when the handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into()),
        Err(e) => e.to_string(),
    }
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
