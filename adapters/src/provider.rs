//! One DataFusion table provider for every SQL source (SQLite, PostgreSQL, MySQL),
//! parameterised by a small [`SqlBackend`]: its dialect and how it runs a statement.
//!
//! `scan` builds `SELECT <projected columns> FROM <table> WHERE <pushed filters>
//! LIMIT <n>` with bound parameters (see [`crate::pushdown`] for what is pushed and
//! why), and returns a [`SourceExec`] showing that statement in `EXPLAIN`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use yiwang_catalog::model::Field;

use crate::arrow::arrow_schema;
use crate::error::AdapterError;
use crate::exec::{BatchStream, ScanContext, SourceExec};
use crate::pushdown::{Affinity, Columns, Dialect, Param};
use crate::sql::is_identifier;

/// A statement for a backend to run.
pub(crate) struct SqlQuery {
    pub sql: String,
    pub params: Vec<Param>,
    /// The selected fields, in SELECT order (none for `SELECT 1`).
    pub fields: Vec<Field>,
    /// [`arrow_schema`] of `fields`.
    pub schema: SchemaRef,
}

/// What the generic provider needs from a SQL source.
pub(crate) trait SqlBackend: Send + Sync + 'static {
    fn source_id(&self) -> &str;

    fn dialect(&self) -> Dialect;

    /// Runs `query` within the source's time limit, converting rows into batches of
    /// `ctx.batch_size` rows and counting them in `ctx.rows_read`.
    fn fetch(&self, query: SqlQuery, ctx: ScanContext) -> BatchStream;
}

/// A table of a SQL source, typed by the dataset's fields.
#[derive(Clone)]
pub(crate) struct SqlTable {
    backend: Arc<dyn SqlBackend>,
    /// The quoted (and possibly schema-qualified) table name.
    table_sql: String,
    columns: Columns,
    schema: SchemaRef,
    /// Whether `GROUP BY` and aggregates over this table may run at the source
    /// ([`crate::aggregate::AggregatePushdown`]); the source's `aggregate_pushdown`.
    aggregates: bool,
}

impl SqlTable {
    /// `table_sql` is the table as the dialect writes it, built from validated names.
    /// `affinity` is SQLite's per-field column affinity (empty for other dialects).
    pub(crate) fn new(
        backend: Arc<dyn SqlBackend>,
        table_sql: String,
        fields: &[Field],
        affinity: Vec<Option<Affinity>>,
    ) -> Result<Self, AdapterError> {
        check_fields(fields)?;
        let dialect = backend.dialect();
        Ok(SqlTable {
            backend,
            table_sql,
            columns: Columns::new(dialect, fields.to_vec(), affinity),
            schema: arrow_schema(fields),
            aggregates: true,
        })
    }

    /// Keeps aggregates over this table in DataFusion when `on` is false.
    pub(crate) fn with_aggregates(mut self, on: bool) -> Self {
        self.aggregates = on;
        self
    }

    pub(crate) fn aggregates(&self) -> bool {
        self.aggregates
    }

    pub(crate) fn columns(&self) -> &Columns {
        &self.columns
    }

    pub(crate) fn table_sql(&self) -> &str {
        &self.table_sql
    }

    /// The scan running `sql` at the source, its rows read as `fields`.
    pub(crate) fn source_exec(
        &self,
        sql: String,
        params: Vec<Param>,
        fields: Vec<Field>,
        schema: SchemaRef,
    ) -> SourceExec {
        let backend = Arc::clone(&self.backend);
        SourceExec::new(
            "SqlExec",
            self.backend.source_id(),
            sql.clone(),
            Arc::clone(&schema),
            move |ctx| {
                let query = SqlQuery {
                    sql: sql.clone(),
                    params: params.clone(),
                    fields: fields.clone(),
                    schema: Arc::clone(&schema),
                };
                backend.fetch(query, ctx)
            },
        )
    }
}

/// Field names reach SQL as quoted identifiers, so they must be plain names, and one
/// name cannot be two columns.
pub(crate) fn check_fields(fields: &[Field]) -> Result<(), AdapterError> {
    for (i, field) in fields.iter().enumerate() {
        if !is_identifier(&field.name) {
            return Err(AdapterError::InvalidRequest(format!(
                "column name '{}' is not of the form [A-Za-z_][A-Za-z0-9_]*",
                field.name
            )));
        }
        if fields[..i].iter().any(|f| f.name == field.name) {
            return Err(AdapterError::InvalidRequest(format!(
                "column '{}' is listed twice",
                field.name
            )));
        }
    }
    Ok(())
}

/// `[A-Za-z_][A-Za-z0-9_]*`, quoted with `quote`.
pub(crate) fn checked_table(table: &str, quote: char) -> Result<String, AdapterError> {
    if !is_identifier(table) {
        return Err(AdapterError::InvalidRequest(format!(
            "table name '{table}' is not of the form [A-Za-z_][A-Za-z0-9_]*"
        )));
    }
    Ok(format!("{quote}{table}{quote}"))
}

impl fmt::Debug for SqlTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlTable")
            .field("source", &self.backend.source_id())
            .field("table", &self.table_sql)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TableProvider for SqlTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters.iter().map(|f| self.columns.pushdown(f)).collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let all: Vec<usize>;
        let projection = match projection {
            Some(p) => p.as_slice(),
            None => {
                all = (0..self.columns.fields().len()).collect();
                &all
            }
        };
        let select = self
            .columns
            .select(&self.table_sql, projection, filters, limit);
        let fields: Vec<Field> = projection
            .iter()
            .map(|&i| self.columns.fields()[i].clone())
            .collect();
        let schema = arrow_schema(&fields);
        let exec = self.source_exec(select.sql, select.params, fields, schema);
        Ok(Arc::new(exec))
    }
}
