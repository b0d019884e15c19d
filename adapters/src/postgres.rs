//! PostgreSQL sources, on tokio-postgres with a deadpool connection pool.
//!
//! Sessions are read-only (`default_transaction_read_only`) and carry a server-side
//! `statement_timeout` equal to the source's time limit, so even a query whose client
//! went away stops at the source. The client also enforces the limit: on expiry it
//! cancels the running statement (`CancelToken::cancel_query`) and drops the
//! connection. Connecting gives up after [`CONNECT_TIMEOUT`].
//!
//! The SELECT list casts every column to the type its field reads (`::text`, `::int8`,
//! `::float8` — NUMERIC too —, `::bool`, `::date`, `::timestamp`), so every source
//! table decodes the same way, and pushed filters compare exactly those values.
//!
//! TLS to PostgreSQL is not supported yet: a URL asking for `sslmode=require` is a
//! configuration error rather than a silent downgrade.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use futures::future::BoxFuture;
use futures::{StreamExt, pin_mut};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use yiwang_catalog::model::{Field, FieldType};

use crate::arrow::{BatchBuilder, Cell, date_of, datetime_of, days_of, micros_of};
use crate::error::AdapterError;
use crate::exec::{BatchSender, BatchStream, ScanContext, spawn_scan};
use crate::provider::{SqlBackend, SqlQuery, SqlTable, check_fields};
use crate::pushdown::{Dialect, Param};
use crate::records;
use crate::source::{ReadRequest, ReadResult, Source};
use crate::sql::is_identifier;

/// How long connecting to the server may take before the source counts as down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Prepared statements kept per connection before the cache starts over.
const STATEMENT_CACHE_SIZE: usize = 256;

/// A PostgreSQL database.
pub struct PostgresSource {
    inner: Arc<Inner>,
    /// See [`PostgresSource::with_aggregate_pushdown`].
    aggregate_pushdown: bool,
}

struct Inner {
    id: String,
    pool: Pool,
    timeout_ms: u64,
    schema: Option<String>,
}

impl PostgresSource {
    /// `url` is `postgres://user@host:port/db` without a password; `password` comes
    /// from the node configuration. Nothing connects until the first query.
    pub fn new(
        id: impl Into<String>,
        url: &str,
        password: Option<String>,
        pool_size: usize,
        timeout_ms: u64,
        schema: Option<String>,
    ) -> Result<Self, AdapterError> {
        let id = id.into();
        // The parser's messages may quote the URL; ours never does.
        let mut cfg = tokio_postgres::Config::from_str(url).map_err(|_| {
            AdapterError::Config(format!("source '{id}': url is not a PostgreSQL URL"))
        })?;
        if cfg.get_password().is_some() {
            return Err(AdapterError::Config(format!(
                "source '{id}': put the password in 'password' or 'password_file', not in the url"
            )));
        }
        if cfg.get_ssl_mode() == SslMode::Require {
            return Err(AdapterError::Config(format!(
                "source '{id}': TLS to PostgreSQL is not supported yet (sslmode=require)"
            )));
        }
        if let Some(schema) = &schema
            && !is_identifier(schema)
        {
            return Err(AdapterError::Config(format!(
                "source '{id}': schema '{schema}' is not of the form [A-Za-z_][A-Za-z0-9_]*"
            )));
        }
        if let Some(password) = password {
            cfg.password(password);
        }
        cfg.ssl_mode(SslMode::Disable)
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("yiwang")
            .options(format!(
                "-c statement_timeout={timeout_ms} -c default_transaction_read_only=on"
            ));
        let manager = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(Duration::from_millis(timeout_ms)))
            .build()
            .map_err(|e| AdapterError::Config(format!("source '{id}': {e}")))?;
        Ok(PostgresSource {
            inner: Arc::new(Inner {
                id,
                pool,
                timeout_ms,
                schema,
            }),
            aggregate_pushdown: true,
        })
    }

    /// Whether `GROUP BY` and aggregates over this source's tables may run at the
    /// source (the default) or always in the gateway; the `aggregate_pushdown` key.
    pub fn with_aggregate_pushdown(mut self, on: bool) -> Self {
        self.aggregate_pushdown = on;
        self
    }
}

impl Source for PostgresSource {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn read(&self, req: ReadRequest) -> BoxFuture<'static, Result<ReadResult, AdapterError>> {
        records::read_with(self, &self.inner.id, req)
    }

    fn list_columns(
        &self,
        table: &str,
    ) -> BoxFuture<'static, Result<Vec<(String, FieldType)>, AdapterError>> {
        let inner = Arc::clone(&self.inner);
        let table = table.to_string();
        Box::pin(async move { inner.list_columns(&table).await })
    }

    fn table_provider(
        &self,
        table: &str,
        fields: &[Field],
    ) -> Result<Arc<dyn datafusion::catalog::TableProvider>, AdapterError> {
        check_fields(fields)?;
        let (schema, name) = self.inner.qualified(table)?;
        let table_sql = match schema {
            Some(schema) => format!("\"{schema}\".\"{name}\""),
            None => format!("\"{name}\""),
        };
        let backend = Arc::new(Backend(Arc::clone(&self.inner)));
        Ok(Arc::new(
            SqlTable::new(backend, table_sql, fields, Vec::new())?
                .with_aggregates(self.aggregate_pushdown),
        ))
    }
}

struct Backend(Arc<Inner>);

impl SqlBackend for Backend {
    fn source_id(&self) -> &str {
        &self.0.id
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn fetch(&self, query: SqlQuery, ctx: ScanContext) -> BatchStream {
        let inner = Arc::clone(&self.0);
        spawn_scan(&self.0.id, move |tx| async move {
            inner.scan(query, ctx, tx).await
        })
    }
}

/// A statement's failure: from the server, or from converting a value.
enum Failure {
    Pg(tokio_postgres::Error),
    Adapter(AdapterError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Pg(e)
    }
}

impl Inner {
    /// `schema.table` or `table` (then in the configured schema, if any), each part a
    /// plain name.
    fn qualified(&self, table: &str) -> Result<(Option<String>, String), AdapterError> {
        let (schema, name) = match table.split_once('.') {
            Some((schema, name)) => (Some(schema.to_string()), name),
            None => (self.schema.clone(), table),
        };
        if !is_identifier(name) || !schema.as_deref().is_none_or(is_identifier) {
            return Err(AdapterError::InvalidRequest(format!(
                "table name '{table}' is not of the form [schema.]name with names of [A-Za-z_][A-Za-z0-9_]*"
            )));
        }
        Ok((schema, name.to_string()))
    }

    async fn client(&self) -> Result<Object, AdapterError> {
        self.pool.get().await.map_err(|e| match e {
            // Every connection is busy with other queries for the whole time limit.
            PoolError::Timeout(TimeoutType::Wait) => self.timeout(),
            PoolError::Timeout(_) => self.unavailable(format!(
                "no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            )),
            PoolError::Backend(e) => {
                // Whatever fails while connecting (refused, unknown host, bad password,
                // missing database) means the source cannot be used now.
                let err = self.classify(&e);
                match err {
                    AdapterError::Source { message, .. } => self.unavailable(message),
                    other => other,
                }
            }
            other => self.unavailable(other.to_string()),
        })
    }

    /// Runs the query, cancelling it at the server if the time limit passes first.
    async fn scan(
        &self,
        query: SqlQuery,
        ctx: ScanContext,
        tx: BatchSender,
    ) -> Result<(), AdapterError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.timeout_ms);
        let client = tokio::time::timeout_at(deadline, self.client())
            .await
            .map_err(|_| self.timeout())??;
        let work = stream_rows(&client, &self.id, &query, &ctx, &tx);
        match tokio::time::timeout_at(deadline, work).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Failure::Adapter(err))) => Err(err),
            Ok(Err(Failure::Pg(err))) => Err(self.classify(&err)),
            Err(_) => {
                self.cancel(client).await;
                Err(self.timeout())
            }
        }
    }

    /// Cancels the statement running on `client` and closes the connection, so no
    /// half-read result goes back to the pool.
    async fn cancel(&self, client: Object) {
        let token = client.cancel_token();
        match tokio::time::timeout(CONNECT_TIMEOUT, token.cancel_query(NoTls)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(source = %self.id, error = %e, "cannot cancel a timed-out query")
            }
            Err(_) => tracing::warn!(source = %self.id, "cancelling a timed-out query timed out"),
        }
        drop(Object::take(client));
    }

    async fn list_columns(&self, table: &str) -> Result<Vec<(String, FieldType)>, AdapterError> {
        let (schema, name) = self.qualified(table)?;
        let sql = "SELECT column_name::text, data_type::text FROM information_schema.columns \
                   WHERE table_schema = coalesce($1::text, current_schema()) AND table_name = $2::text \
                   ORDER BY ordinal_position";
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.timeout_ms);
        let work = async {
            let client = self.client().await?;
            client
                .query(sql, &[&schema, &name])
                .await
                .map_err(|e| self.classify(&e))
        };
        let rows = tokio::time::timeout_at(deadline, work)
            .await
            .map_err(|_| self.timeout())??;
        if rows.is_empty() {
            return Err(AdapterError::NoSuchTable {
                source_id: self.id.clone(),
                table: table.to_string(),
            });
        }
        rows.iter()
            .map(|row| {
                let column: String = row.try_get(0).map_err(|e| self.classify(&e))?;
                let declared: String = row.try_get(1).map_err(|e| self.classify(&e))?;
                Ok((column, field_type_of(&declared)))
            })
            .collect()
    }

    fn classify(&self, e: &tokio_postgres::Error) -> AdapterError {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            if *code == SqlState::QUERY_CANCELED {
                return self.timeout();
            }
            let class = &code.code()[..2];
            // 08 connection exception, 28 authorization, 53 insufficient resources,
            // 57P0x shutdown/cannot connect now, 3D000 no such database.
            let down = matches!(class, "08" | "28" | "53")
                || code.code().starts_with("57P0")
                || *code == SqlState::INVALID_CATALOG_NAME;
            let message = db.message().to_string();
            return if down {
                self.unavailable(message)
            } else {
                AdapterError::Source {
                    source_id: self.id.clone(),
                    message,
                }
            };
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(c) = cause {
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                return self.unavailable(format!("cannot connect: {io}"));
            }
            cause = c.source();
        }
        if e.is_closed() {
            return self.unavailable("the connection was closed".to_string());
        }
        // tokio-postgres's own messages hold no connection details.
        let message = e.to_string();
        if message.starts_with("error connecting") || message.contains("timeout") {
            return self.unavailable(message);
        }
        AdapterError::Source {
            source_id: self.id.clone(),
            message,
        }
    }

    fn timeout(&self) -> AdapterError {
        AdapterError::Timeout {
            source_id: self.id.clone(),
            ms: self.timeout_ms,
        }
    }

    fn unavailable(&self, message: String) -> AdapterError {
        tracing::warn!(source = %self.id, error = %message, "postgres source unavailable");
        AdapterError::Unavailable {
            source_id: self.id.clone(),
            message,
        }
    }
}

async fn stream_rows(
    client: &Object,
    source_id: &str,
    query: &SqlQuery,
    ctx: &ScanContext,
    tx: &BatchSender,
) -> Result<(), Failure> {
    // Statements differ by projection and filters: keep the per-connection cache small.
    if client.statement_cache.size() >= STATEMENT_CACHE_SIZE {
        client.statement_cache.clear();
    }
    let stmt = client.prepare_cached(&query.sql).await?;
    let params: Vec<Box<dyn ToSql + Sync + Send>> = query
        .params
        .iter()
        .map(to_sql)
        .collect::<Result<_, _>>()
        .map_err(|message| Failure::Adapter(AdapterError::InvalidRequest(message)))?;
    let rows = client.query_raw(&stmt, params).await?;
    pin_mut!(rows);
    let mut builder = BatchBuilder::new(source_id, &query.fields, query.schema.clone());
    while let Some(row) = rows.next().await {
        let row = row?;
        for (i, field) in query.fields.iter().enumerate() {
            push(&mut builder, &row, i, field.field_type)?;
        }
        builder.end_row();
        if builder.len() >= ctx.batch_size && !send(&mut builder, ctx, tx).await? {
            return Ok(());
        }
    }
    if !builder.is_empty() {
        send(&mut builder, ctx, tx).await?;
    }
    Ok(())
}

async fn send(
    builder: &mut BatchBuilder,
    ctx: &ScanContext,
    tx: &BatchSender,
) -> Result<bool, Failure> {
    ctx.rows_read.add(builder.len());
    let batch = builder.finish().map_err(Failure::Adapter)?;
    Ok(tx.send(batch).await)
}

/// Decodes column `i`, which the SELECT list cast to the field's type.
fn push(builder: &mut BatchBuilder, row: &Row, i: usize, t: FieldType) -> Result<(), Failure> {
    let cell = match t {
        FieldType::String => row.try_get::<_, Option<&str>>(i)?.map(Cell::Text),
        FieldType::Integer => row.try_get::<_, Option<i64>>(i)?.map(Cell::Int),
        FieldType::Float => row.try_get::<_, Option<f64>>(i)?.map(Cell::Float),
        FieldType::Boolean => row.try_get::<_, Option<bool>>(i)?.map(Cell::Bool),
        FieldType::Date => row
            .try_get::<_, Option<time::Date>>(i)?
            .map(|d| Cell::Date(days_of(d))),
        FieldType::Datetime => row
            .try_get::<_, Option<time::PrimitiveDateTime>>(i)?
            .map(|t| Cell::Timestamp(micros_of(t))),
    };
    builder
        .push(i, cell.unwrap_or(Cell::Null))
        .map_err(Failure::Adapter)
}

/// Each parameter in the type its placeholder is cast to (`$n::int8`, …).
fn to_sql(p: &Param) -> Result<Box<dyn ToSql + Sync + Send>, String> {
    Ok(match p {
        Param::Text(s) => Box::new(s.clone()),
        Param::Int(n) => Box::new(*n),
        Param::Float(x) => Box::new(*x),
        Param::Bool(b) => Box::new(*b),
        Param::Date(d) => Box::new(date_of(*d).ok_or("date out of range")?),
        Param::Timestamp(t) => Box::new(datetime_of(*t).ok_or("time out of range")?),
    })
}

/// A field type for an `information_schema.columns.data_type`.
fn field_type_of(declared: &str) -> FieldType {
    match declared {
        "smallint" | "integer" | "bigint" => FieldType::Integer,
        "real" | "double precision" | "numeric" => FieldType::Float,
        "boolean" => FieldType::Boolean,
        "date" => FieldType::Date,
        t if t.starts_with("timestamp") => FieldType::Datetime,
        _ => FieldType::String,
    }
}
