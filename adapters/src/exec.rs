//! The DataFusion execution plan of every source scan that is not a file.
//!
//! A [`SourceExec`] is a leaf: one partition whose batches come from a source through a
//! [`BatchStream`]. Its `EXPLAIN` line shows what is sent to the source (the SQL text,
//! or the HTTP request), so tests and operators can see what was pushed down. It records
//! DataFusion's baseline metrics (`output_rows`) and `rows_read`, the rows that left the
//! source.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions,
};
use futures::stream::{BoxStream, StreamExt};
use tokio::sync::mpsc;

use crate::error::AdapterError;

/// Batches from a source; errors are the adapter's own, so callers can tell an
/// outage from a bad query.
pub(crate) type BatchStream = BoxStream<'static, Result<RecordBatch, AdapterError>>;

/// What a scan gets when it starts.
pub(crate) struct ScanContext {
    /// Rows per batch (DataFusion's `batch_size`, 8192 by default).
    pub batch_size: usize,
    /// Add every row read from the source.
    pub rows_read: Count,
}

type Producer = dyn Fn(ScanContext) -> BatchStream + Send + Sync;

/// A scan of one source table.
pub(crate) struct SourceExec {
    name: &'static str,
    source_id: String,
    /// The request sent to the source, shown by `EXPLAIN`.
    request: String,
    schema: SchemaRef,
    producer: Arc<Producer>,
    metrics: ExecutionPlanMetricsSet,
    properties: Arc<PlanProperties>,
}

impl SourceExec {
    /// `name` is the plan node's name (`SqlExec`, `HttpJsonExec`); `produce` starts
    /// the scan each time the plan is executed.
    pub(crate) fn new(
        name: &'static str,
        source_id: &str,
        request: String,
        schema: SchemaRef,
        produce: impl Fn(ScanContext) -> BatchStream + Send + Sync + 'static,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        SourceExec {
            name,
            source_id: source_id.to_string(),
            request,
            schema,
            producer: Arc::new(produce),
            metrics: ExecutionPlanMetricsSet::new(),
            properties: Arc::new(properties),
        }
    }
}

impl fmt::Debug for SourceExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(self.name)
            .field("source", &self.source_id)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl DisplayAs for SourceExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "{}: source={}, request={}",
                self.name, self.source_id, self.request
            ),
            DisplayFormatType::TreeRender => {
                writeln!(f, "source={}", self.source_id)?;
                write!(f, "request={}", self.request)
            }
        }
    }
}

impl ExecutionPlan for SourceExec {
    fn name(&self) -> &str {
        self.name
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return Err(DataFusionError::Internal(format!(
                "{} has no children",
                self.name
            )));
        }
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "{} has one partition, not {}",
                self.name,
                partition + 1
            )));
        }
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let rows_read = MetricBuilder::new(&self.metrics).counter("rows_read", partition);
        let batches = (self.producer)(ScanContext {
            batch_size: context.session_config().batch_size(),
            rows_read,
        });
        let stream = batches.map(move |item| match item {
            Ok(batch) => {
                baseline.record_output(batch.num_rows());
                Ok(batch)
            }
            // The adapter's error travels inside DataFusion's, so the gateway can
            // report "source 'x' is unavailable: …" (see `crate::adapter_error`).
            Err(err) => Err(DataFusionError::External(Box::new(err))),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Rows that left each source during the execution of `plan`, by source id: what the
/// source sent after the pushed-down filters, projections and limits. Scans of files
/// (DataFusion's own readers) are not counted.
pub fn rows_read_by_source(plan: &Arc<dyn ExecutionPlan>) -> BTreeMap<String, u64> {
    fn walk(plan: &Arc<dyn ExecutionPlan>, out: &mut BTreeMap<String, u64>) {
        if let Some(scan) = plan.downcast_ref::<SourceExec>() {
            let rows = scan
                .metrics
                .clone_inner()
                .sum_by_name("rows_read")
                .map_or(0, |v| v.as_usize() as u64);
            *out.entry(scan.source_id.clone()).or_default() += rows;
        }
        for child in plan.children() {
            walk(child, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(plan, &mut out);
    out
}

/// The sending half given to a scan task.
#[derive(Clone)]
pub(crate) struct BatchSender(mpsc::Sender<Result<RecordBatch, AdapterError>>);

impl BatchSender {
    /// Hands over a batch; `false` once nobody reads any more, and the scan should stop.
    pub(crate) async fn send(&self, batch: RecordBatch) -> bool {
        self.0.send(Ok(batch)).await.is_ok()
    }

    /// [`BatchSender::send`] from a blocking thread (SQLite).
    pub(crate) fn blocking_send(&self, batch: RecordBatch) -> bool {
        self.0.blocking_send(Ok(batch)).is_ok()
    }

    /// Ends the stream with an error, from a blocking thread.
    pub(crate) fn blocking_fail(&self, err: AdapterError) {
        let _ = self.0.blocking_send(Err(err));
    }
}

/// Aborts the scan task when the stream is dropped (a query that stopped early, or
/// a cancelled request), which returns its connection.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

/// Runs `scan` as a task that sends batches, and returns them as a stream. At most two
/// batches wait in between, so a slow reader slows the source down instead of filling
/// memory. An error returned by `scan` ends the stream; a panic does too, as an error,
/// never as a silently short result.
pub(crate) fn spawn_scan<F, Fut>(source_id: &str, scan: F) -> BatchStream
where
    F: FnOnce(BatchSender) -> Fut,
    Fut: Future<Output = Result<(), AdapterError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(2);
    let errors = tx.clone();
    let task = scan(BatchSender(tx));
    let handle = tokio::spawn(async move {
        if let Err(err) = task.await {
            let _ = errors.send(Err(err)).await;
        }
    });
    let source_id = source_id.to_string();
    futures::stream::unfold(
        (rx, AbortOnDrop(Some(handle)), source_id),
        |(mut rx, mut task, source_id)| async move {
            if let Some(item) = rx.recv().await {
                return Some((item, (rx, task, source_id)));
            }
            let handle = task.0.take()?;
            match handle.await {
                Err(join) if join.is_panic() => {
                    let err = AdapterError::Source {
                        source_id: source_id.clone(),
                        message: "the scan task panicked".to_string(),
                    };
                    Some((Err(err), (rx, task, source_id)))
                }
                _ => None,
            }
        },
    )
    .boxed()
}
