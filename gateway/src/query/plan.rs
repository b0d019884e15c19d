//! Parsing a cross-department query and finding what it touches, before any data is
//! read.
//!
//! The SQL is parsed once. Its table references must be `"<dept-code>"."<dataset-id>"`
//! of catalog datasets. The statement is then planned against schema-only tables (no
//! data, no pushdown) and optimised: projection pushdown leaves on each table scan
//! exactly the columns the query needs anywhere — select list, filters, joins, group
//! by, order by, subqueries — which is what the policy must authorise.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::common::tree_node::{TreeNode as _, TreeNodeRecursion};
use datafusion::datasource::empty::EmptyTable;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::sql::parser::Statement as DfStatement;
use yiwang_catalog::model::{Dataset, DatasetStatus};

use crate::api::ApiError;
use crate::node::Node;

/// A parsed query and the tables it names, as `(department code, dataset id)`: what
/// depends on the SQL text alone.
#[derive(Debug)]
pub struct Statement {
    pub ast: DfStatement,
    pub tables: Vec<(String, String)>,
}

/// What the query reads of each dataset.
pub type Usage = BTreeMap<String, BTreeSet<String>>;

/// No DDL, no DML, no `SET`: a query only reads.
pub fn sql_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

fn bad_sql(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_sql", message)
}

/// Maps planning errors (syntax, unknown column, type errors, forbidden statements) to a
/// 400 that keeps DataFusion's explanation.
pub fn plan_error(e: datafusion::error::DataFusionError) -> ApiError {
    let text = e.strip_backtrace();
    if text.contains("DDL not supported")
        || text.contains("DML not supported")
        || text.contains("Statement not supported")
    {
        return ApiError::bad_request(
            "statement_not_allowed",
            format!("only queries (SELECT, WITH …) are allowed: {text}"),
        );
    }
    if text.contains("only supports a single SQL statement") {
        return bad_sql("send one statement per request");
    }
    bad_sql(text)
}

/// Parses `sql`: one query (no DDL, DML or other statements) whose tables are named
/// `"<dept-code>"."<dataset-id>"`.
pub fn parse(ctx: &SessionContext, sql: &str) -> Result<Statement, ApiError> {
    let state = ctx.state();
    let ast = state
        .sql_to_statement(sql, &datafusion::config::Dialect::Generic)
        .map_err(plan_error)?;
    if !matches!(&ast, DfStatement::Statement(s) if matches!(**s, datafusion::sql::sqlparser::ast::Statement::Query(_)))
    {
        return Err(ApiError::bad_request(
            "statement_not_allowed",
            "only queries (SELECT, WITH …) are allowed",
        ));
    }
    let refs = state.resolve_table_references(&ast).map_err(plan_error)?;
    if refs.is_empty() {
        return Err(bad_sql(
            "the query reads no dataset; name tables as \"<dept-code>\".\"<dataset-id>\"",
        ));
    }
    let mut tables = Vec::with_capacity(refs.len());
    for r in refs {
        match &r {
            TableReference::Partial { schema, table } => {
                tables.push((schema.to_string(), table.to_string()))
            }
            TableReference::Full {
                catalog: c,
                schema,
                table,
            } => {
                return Err(bad_sql(format!(
                    "table {c}.{schema}.{table}: name tables as \"<dept-code>\".\"<dataset-id>\" without a catalog"
                )));
            }
            TableReference::Bare { table } => {
                return Err(bad_sql(format!(
                    "table \"{table}\": name tables as \"<dept-code>\".\"<dataset-id>\" (quoted, with the department)"
                )));
            }
        }
    }
    Ok(Statement { ast, tables })
}

/// The catalog's active datasets for `tables`, by id.
pub fn resolve(
    node: &Node,
    tables: &[(String, String)],
) -> Result<BTreeMap<String, Dataset>, ApiError> {
    let catalog = node.state.read();
    let mut datasets = BTreeMap::new();
    for (dept, id) in tables {
        let d = catalog
            .datasets
            .get(id)
            .filter(|d| &d.dept == dept)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "table \"{dept}\".\"{id}\" is not a dataset of the catalog (identifiers are case-sensitive when quoted)"
                ))
            })?;
        if d.status == DatasetStatus::Retired {
            return Err(ApiError::new(
                axum::http::StatusCode::GONE,
                "retired",
                format!("dataset '{id}' is retired"),
            ));
        }
        datasets.insert(id.clone(), d.clone());
    }
    Ok(datasets)
}

/// Registers `datasets[*]` under their departments in `ctx` using `make`.
pub fn register<F>(
    ctx: &SessionContext,
    datasets: &BTreeMap<String, Dataset>,
    mut make: F,
) -> Result<(), ApiError>
where
    F: FnMut(&Dataset) -> Result<Arc<dyn datafusion::catalog::TableProvider>, ApiError>,
{
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| ApiError::internal("no default catalog"))?;
    for d in datasets.values() {
        if catalog.schema(&d.dept).is_none() {
            catalog
                .register_schema(&d.dept, Arc::new(MemorySchemaProvider::new()))
                .map_err(|e| ApiError::internal(e.to_string()))?;
        }
        let name = TableReference::partial(d.dept.as_str(), d.id.as_str());
        // Replaces the schema-only table the usage planning registered.
        ctx.deregister_table(name.clone())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        ctx.register_table(name, make(d)?)
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    Ok(())
}

/// Plans the statement against schema-only tables and returns, per dataset, the columns
/// it uses anywhere.
pub async fn usage(
    ctx: &SessionContext,
    statement: &Statement,
    datasets: &BTreeMap<String, Dataset>,
) -> Result<Usage, ApiError> {
    register(ctx, datasets, |d| {
        Ok(Arc::new(EmptyTable::new(yiwang_adapters::arrow_schema(
            &d.fields,
        ))))
    })?;
    let state = ctx.state();
    let plan = state
        .statement_to_plan(statement.ast.clone())
        .await
        .map_err(plan_error)?;
    sql_options().verify_plan(&plan).map_err(plan_error)?;
    let optimized = state.optimize(&plan).map_err(plan_error)?;
    let mut usage: Usage = BTreeMap::new();
    optimized
        .apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                let id = scan.table_name.table().to_string();
                let schema = scan.source.schema();
                let used = usage.entry(id).or_default();
                match &scan.projection {
                    Some(cols) => used.extend(cols.iter().map(|i| schema.field(*i).name().clone())),
                    None => used.extend(schema.fields().iter().map(|f| f.name().clone())),
                }
                for f in &scan.filters {
                    used.extend(f.column_refs().into_iter().map(|c| c.name.clone()));
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .map_err(plan_error)?;
    Ok(usage)
}

/// Whether `plan` gives the same answer whenever it runs over the same data: no
/// function whose value depends on the moment or on chance (`now()`, `current_date`,
/// `random()`). The optimiser folds such values into the plan, so only repeatable
/// plans may be kept for later queries.
pub fn repeatable(plan: &LogicalPlan) -> bool {
    let mut repeatable = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(f) = e
                    && f.func.signature().volatility != Volatility::Immutable
                {
                    repeatable = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    repeatable
}
