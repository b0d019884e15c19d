//! Aggregate pushdown: a `GROUP BY` over one SQL source table is computed by the
//! source, so only the groups leave it.
//!
//! [`AggregatePushdown`] is a DataFusion logical optimizer rule. It runs after
//! DataFusion's own passes have pushed filters and projections into the table scans,
//! and replaces
//!
//! ```text
//! Aggregate: groupBy=[keys], aggr=[count(*), sum(c), …]
//!   (Projection of plain columns | SubqueryAlias)*
//!     TableScan: <SQL source table>, filters=[all pushed exactly], no fetch
//! ```
//!
//! by a scan of a [`GroupedTable`] that runs `SELECT keys, aggregates FROM table WHERE
//! filters GROUP BY keys` at the source, under a projection that gives every column
//! the aggregate's own name. Anything else is left to DataFusion: a key or argument
//! that is an expression (a masked column is one: the policy's view masks it in a
//! projection), a filter left above the scan (a grant's row filter the source cannot
//! apply exactly), `DISTINCT`, `FILTER (WHERE …)`, ordered aggregates, grouping sets,
//! or a key or function the dialect cannot compute exactly like DataFusion (see
//! [`crate::pushdown`]'s `grouping` module for the forms).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field as ArrowField, Schema, SchemaRef};
use datafusion::catalog::default_table_source::{provider_as_source, source_as_provider};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, TableReference};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown, TableType,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;
use yiwang_catalog::model::{Field, Sensitivity};

use crate::arrow::arrow_type;
use crate::provider::SqlTable;
use crate::pushdown::{Aggregate, Item};

/// The optimizer rule; add it with `SessionContext::add_optimizer_rule`.
#[derive(Debug, Default)]
pub struct AggregatePushdown;

impl OptimizerRule for AggregatePushdown {
    fn name(&self) -> &str {
        "yiwang_aggregate_pushdown"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        match grouped_scan(&plan)? {
            Some(new) => Ok(Transformed::yes(new)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// The replacement of `plan`, when it is an aggregate the source can compute.
fn grouped_scan(plan: &LogicalPlan) -> DfResult<Option<LogicalPlan>> {
    let LogicalPlan::Aggregate(agg) = plan else {
        return Ok(None);
    };
    let Some(scan) = scan_below(&agg.input) else {
        return Ok(None);
    };
    if scan.fetch.is_some() {
        return Ok(None);
    }
    let Ok(provider) = source_as_provider(&scan.source) else {
        return Ok(None);
    };
    let Some(table) = provider
        .downcast_ref::<SqlTable>()
        .filter(|t| t.aggregates())
    else {
        return Ok(None);
    };
    let columns = table.columns();
    // Every filter on the scan must be applied exactly by the source.
    if scan
        .filters
        .iter()
        .any(|f| columns.pushdown(f) != TableProviderFilterPushDown::Exact)
    {
        return Ok(None);
    }
    let field_of = |e: &Expr| -> Option<usize> {
        let Expr::Column(c) = e else { return None };
        source_field(&agg.input, c)
    };
    let mut keys = Vec::new();
    for key in &agg.group_expr {
        let Some(item) = field_of(key).and_then(|i| columns.group_key(i)) else {
            return Ok(None);
        };
        keys.push(item);
    }
    let mut aggregates = Vec::new();
    for e in &agg.aggr_expr {
        let Some(item) = aggregate_of(e, &field_of).and_then(|a| columns.aggregate(a)) else {
            return Ok(None);
        };
        aggregates.push(item);
    }
    // The source's values must be read as exactly the types DataFusion planned.
    let out = agg.schema.as_ref();
    let items: Vec<Item> = keys.iter().cloned().chain(aggregates).collect();
    let mut fields = Vec::with_capacity(items.len());
    let mut arrow_fields = Vec::with_capacity(items.len());
    for (item, (_, f)) in items.iter().zip(out.iter()) {
        if f.data_type() != &arrow_type(item.field_type) {
            return Ok(None);
        }
        fields.push(Field {
            name: f.name().clone(),
            title: f.name().clone(),
            field_type: item.field_type,
            sensitivity: Sensitivity::Public,
            masking: None,
        });
        arrow_fields.push(ArrowField::new(
            f.name(),
            f.data_type().clone(),
            f.is_nullable(),
        ));
    }
    let grouped = GroupedTable {
        table: table.clone(),
        items: items.iter().map(|i| i.sql.clone()).collect(),
        keys: keys.into_iter().map(|k| k.sql).collect(),
        filters: scan.filters.clone(),
        fields,
        schema: Arc::new(Schema::new(arrow_fields)),
    };
    // Fails only if a filter stopped translating, which cannot happen: then DataFusion
    // keeps its own aggregate.
    if grouped.statement(None, None).is_none() {
        return Ok(None);
    }
    let name = TableReference::bare(format!("{}__grouped", scan.table_name.table()));
    let scan_schema = Arc::clone(&grouped.schema);
    let names: Vec<Expr> = out
        .iter()
        .zip(scan_schema.fields())
        .map(|((qualifier, f), s)| {
            Expr::Column(Column::new(Some(name.clone()), s.name()))
                .alias_qualified(qualifier.cloned(), f.name())
        })
        .collect();
    let new = LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(grouped)), None)?
        .project(names)?
        .build()?;
    Ok(Some(new))
}

/// The table scan under plain projections and aliases, if that is all there is.
fn scan_below(plan: &LogicalPlan) -> Option<&datafusion::logical_expr::TableScan> {
    match plan {
        LogicalPlan::TableScan(scan) => Some(scan),
        LogicalPlan::SubqueryAlias(a) => scan_below(&a.input),
        LogicalPlan::Projection(p) => scan_below(&p.input),
        _ => None,
    }
}

/// The index, among the source table's fields, of the field that column `c` of
/// `plan`'s output is, through plain column projections and aliases.
fn source_field(plan: &LogicalPlan, c: &Column) -> Option<usize> {
    let at = plan.schema().index_of_column(c).ok()?;
    match plan {
        LogicalPlan::TableScan(scan) => match &scan.projection {
            Some(p) => p.get(at).copied(),
            None => Some(at),
        },
        LogicalPlan::SubqueryAlias(a) => {
            let (q, f) = a.input.schema().qualified_field(at);
            source_field(&a.input, &Column::new(q.cloned(), f.name()))
        }
        LogicalPlan::Projection(p) => match unalias(&p.expr[at]) {
            Expr::Column(inner) => source_field(&p.input, inner),
            _ => None,
        },
        _ => None,
    }
}

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unalias(&a.expr),
        other => other,
    }
}

/// `count(*)`, `count(c)`, `sum(c)`, `min(c)`, `max(c)`, `avg(c)` over a source field,
/// without DISTINCT, FILTER, ORDER BY or null treatment.
fn aggregate_of(e: &Expr, field_of: &dyn Fn(&Expr) -> Option<usize>) -> Option<Aggregate> {
    let Expr::AggregateFunction(AggregateFunction { func, params }) = unalias(e) else {
        return None;
    };
    if params.distinct
        || params.filter.is_some()
        || !params.order_by.is_empty()
        || params.null_treatment.is_some()
    {
        return None;
    }
    let name = func.name();
    match params.args.as_slice() {
        [] if name == "count" => Some(Aggregate::CountAll),
        // `count(*)` is planned as `count(1)`.
        [Expr::Literal(v, _)] if name == "count" && !v.is_null() => Some(Aggregate::CountAll),
        [arg] => {
            let i = field_of(arg)?;
            Some(match name {
                "count" => Aggregate::Count(i),
                "sum" => Aggregate::Sum(i),
                "min" => Aggregate::Min(i),
                "max" => Aggregate::Max(i),
                "avg" => Aggregate::Avg(i),
                _ => return None,
            })
        }
        _ => None,
    }
}

/// The groups of one SQL source table, computed by the source.
pub(crate) struct GroupedTable {
    table: SqlTable,
    /// The SQL of every output column: the keys, then the aggregates.
    items: Vec<String>,
    /// The SQL of the group keys.
    keys: Vec<String>,
    filters: Vec<Expr>,
    /// The output columns, as the reader decodes them.
    fields: Vec<Field>,
    schema: SchemaRef,
}

impl GroupedTable {
    fn statement(
        &self,
        projection: Option<&[usize]>,
        limit: Option<usize>,
    ) -> Option<crate::pushdown::Grouped> {
        let all: Vec<usize>;
        let projection = match projection {
            Some(p) => p,
            None => {
                all = (0..self.items.len()).collect();
                &all
            }
        };
        let items: Vec<&str> = projection.iter().map(|&i| self.items[i].as_str()).collect();
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        self.table
            .columns()
            .grouped(self.table.table_sql(), &items, &keys, &self.filters, limit)
    }
}

impl fmt::Debug for GroupedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupedTable")
            .field("table", &self.table)
            .field("items", &self.items)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TableProvider for GroupedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let grouped = self
            .statement(projection.map(Vec::as_slice), limit)
            .ok_or_else(|| {
                datafusion::error::DataFusionError::Internal(
                    "a grouped scan's filters no longer translate".into(),
                )
            })?;
        let (fields, schema) = match projection {
            Some(p) => (
                p.iter()
                    .map(|&i| self.fields[i].clone())
                    .collect::<Vec<_>>(),
                Arc::new(self.schema.project(p)?),
            ),
            None => (self.fields.clone(), Arc::clone(&self.schema)),
        };
        Ok(Arc::new(self.table.source_exec(
            grouped.sql,
            grouped.params,
            fields,
            schema,
        )))
    }
}
