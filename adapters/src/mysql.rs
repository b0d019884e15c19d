//! MySQL and MariaDB sources, on mysql_async (rustls with ring for TLS) and its pool.
//!
//! Sessions are read-only (`SET SESSION TRANSACTION READ ONLY`). Every statement
//! carries the source's time limit to the server — `SET STATEMENT
//! max_statement_time=… FOR …` on MariaDB, the `MAX_EXECUTION_TIME(…)` hint on MySQL,
//! detected once per source — and the client enforces it too: on expiry it kills the
//! statement (`KILL QUERY`) from another connection and closes its own. Connecting
//! gives up after [`CONNECT_TIMEOUT`].
//!
//! Values arrive in the binary protocol, typed by the server: DECIMAL as text (parsed
//! into a float or an integer), BIT(1) as one byte, dates and times as parts.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, Row, Value};
use yiwang_catalog::model::{Field, FieldType};

use crate::arrow::{BatchBuilder, Cell, date_of, datetime_of};
use crate::error::AdapterError;
use crate::exec::{BatchSender, BatchStream, ScanContext, spawn_scan};
use crate::provider::{SqlBackend, SqlQuery, SqlTable, check_fields, checked_table};
use crate::pushdown::{Dialect, MYSQL_EXACT_COLLATION, Param};
use crate::records;
use crate::source::{ReadRequest, ReadResult, Source};

/// How long getting a connection may take before the source counts as down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an idle pooled connection is kept.
const IDLE_CONNECTION_TTL: Duration = Duration::from_secs(60);

/// A MySQL or MariaDB database.
pub struct MysqlSource {
    inner: Arc<Inner>,
    /// See [`MysqlSource::with_aggregate_pushdown`].
    aggregate_pushdown: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Mysql,
    Mariadb,
}

struct Inner {
    id: String,
    pool: Pool,
    timeout_ms: u64,
    flavor: OnceLock<Flavor>,
}

impl MysqlSource {
    /// `url` is `mysql://user@host:port/db` without a password; `password` comes from
    /// the node configuration. Nothing connects until the first query.
    pub fn new(
        id: impl Into<String>,
        url: &str,
        password: Option<String>,
        pool_size: usize,
        timeout_ms: u64,
    ) -> Result<Self, AdapterError> {
        let id = id.into();
        // The parser's messages may quote the URL; ours never does.
        let opts = Opts::from_url(url)
            .map_err(|_| AdapterError::Config(format!("source '{id}': url is not a MySQL URL")))?;
        if opts.pass().is_some() {
            return Err(AdapterError::Config(format!(
                "source '{id}': put the password in 'password' or 'password_file', not in the url"
            )));
        }
        let constraints = PoolConstraints::new(0, pool_size.max(1))
            .ok_or_else(|| AdapterError::Config(format!("source '{id}': bad pool_size")))?;
        let opts = OptsBuilder::from_opts(opts)
            .pass(password)
            .init(vec!["SET SESSION TRANSACTION READ ONLY"])
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    // Keep idle connections (mysql_async closes at once every one
                    // above the lower bound, 0 here: a reconnect, login and statement
                    // preparation per query) ...
                    .with_inactive_connection_ttl(IDLE_CONNECTION_TTL)
                    .with_ttl_check_interval(IDLE_CONNECTION_TTL / 4)
                    // ... and their prepared statements: no COM_RESET_CONNECTION on
                    // the way back, which forgets them and runs the init statement
                    // again. Nothing here changes session state: time limits are
                    // per statement and the session is read-only.
                    .with_reset_connection(false),
            );
        Ok(MysqlSource {
            inner: Arc::new(Inner {
                id,
                pool: Pool::new(opts),
                timeout_ms,
                flavor: OnceLock::new(),
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

impl Source for MysqlSource {
    fn kind(&self) -> &'static str {
        "mysql"
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
        let table_sql = checked_table(table, '`')?;
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
        Dialect::Mysql
    }

    fn fetch(&self, query: SqlQuery, ctx: ScanContext) -> BatchStream {
        let inner = Arc::clone(&self.0);
        spawn_scan(&self.0.id, move |tx| async move {
            inner.scan(query, ctx, tx).await
        })
    }
}

/// `sql` with MySQL 8's NO PAD binary collation of utf8mb4 where the pushdown forms
/// name MariaDB's: the two compare alike, and neither server knows the other's name.
/// Only our own forms can hold the name after `COLLATE`: identifiers are quoted.
fn mysql_collation(sql: &str) -> String {
    sql.replace(
        &format!("COLLATE {MYSQL_EXACT_COLLATION}"),
        "COLLATE utf8mb4_0900_bin",
    )
}

impl Inner {
    async fn conn(&self) -> Result<Conn, AdapterError> {
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, self.pool.get_conn())
            .await
            .map_err(|_| {
                self.unavailable(format!(
                    "no connection within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| match self.classify(&e) {
                // Whatever fails while connecting means the source cannot be used now.
                AdapterError::Source { message, .. } => self.unavailable(message),
                other => other,
            })?;
        if self.flavor.get().is_none() {
            let version: Option<String> = conn
                .query_first("SELECT VERSION()")
                .await
                .map_err(|e| self.classify(&e))?;
            let flavor = if version.unwrap_or_default().contains("MariaDB") {
                Flavor::Mariadb
            } else {
                Flavor::Mysql
            };
            let _ = self.flavor.set(flavor);
        }
        Ok(conn)
    }

    /// The statement with the server-side time limit of this server's flavour.
    fn limited(&self, sql: &str) -> String {
        match self.flavor.get() {
            Some(Flavor::Mariadb) => format!(
                "SET STATEMENT max_statement_time={}.{:03} FOR {sql}",
                self.timeout_ms / 1000,
                self.timeout_ms % 1000
            ),
            Some(Flavor::Mysql) => {
                let sql = mysql_collation(sql);
                match sql.strip_prefix("SELECT ") {
                    Some(rest) => format!(
                        "SELECT /*+ MAX_EXECUTION_TIME({}) */ {rest}",
                        self.timeout_ms
                    ),
                    None => sql,
                }
            }
            None => sql.to_string(),
        }
    }

    async fn scan(
        &self,
        query: SqlQuery,
        ctx: ScanContext,
        tx: BatchSender,
    ) -> Result<(), AdapterError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.timeout_ms);
        let mut conn = tokio::time::timeout_at(deadline, self.conn())
            .await
            .map_err(|_| self.timeout())??;
        let connection_id = conn.id();
        let sql = self.limited(&query.sql);
        let params: Vec<Value> = query.params.iter().map(value_of).collect();
        let work = async {
            let mut result = conn
                .exec_iter(sql.as_str(), params)
                .await
                .map_err(|e| self.classify(&e))?;
            let mut builder = BatchBuilder::new(&self.id, &query.fields, query.schema.clone());
            while let Some(row) = result.next().await.map_err(|e| self.classify(&e))? {
                push_row(&mut builder, &self.id, &query.fields, &row)?;
                builder.end_row();
                if builder.len() >= ctx.batch_size && !send(&mut builder, &ctx, &tx).await? {
                    return Ok(());
                }
            }
            if !builder.is_empty() {
                send(&mut builder, &ctx, &tx).await?;
            }
            Ok(())
        };
        let outcome = tokio::time::timeout_at(deadline, work).await;
        match outcome {
            Ok(result) => result,
            Err(_) => {
                self.kill(connection_id, conn).await;
                Err(self.timeout())
            }
        }
    }

    /// Stops the statement running on connection `id` and closes `conn`, whose
    /// half-read result must not go back to the pool.
    async fn kill(&self, id: u32, conn: Conn) {
        let killed = async {
            let mut other = self.pool.get_conn().await?;
            other.query_drop(format!("KILL QUERY {id}")).await
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, killed).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(source = %self.id, error = %e, "cannot kill a timed-out query")
            }
            Err(_) => tracing::warn!(source = %self.id, "killing a timed-out query timed out"),
        }
        let _ = tokio::time::timeout(CONNECT_TIMEOUT, conn.disconnect()).await;
    }

    async fn list_columns(&self, table: &str) -> Result<Vec<(String, FieldType)>, AdapterError> {
        checked_table(table, '`')?;
        let sql = "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS \
                   WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION";
        let work = async {
            let mut conn = self.conn().await?;
            conn.exec::<(String, String, String), _, _>(sql, (table,))
                .await
                .map_err(|e| self.classify(&e))
        };
        let rows = tokio::time::timeout(Duration::from_millis(self.timeout_ms), work)
            .await
            .map_err(|_| self.timeout())??;
        if rows.is_empty() {
            return Err(AdapterError::NoSuchTable {
                source_id: self.id.clone(),
                table: table.to_string(),
            });
        }
        Ok(rows
            .into_iter()
            .map(|(name, data_type, column_type)| {
                let field_type = field_type_of(&data_type, &column_type);
                (name, field_type)
            })
            .collect())
    }

    fn classify(&self, e: &mysql_async::Error) -> AdapterError {
        match e {
            mysql_async::Error::Server(server) => match server.code {
                // 1969: MariaDB's max_statement_time; 3024: MySQL's max_execution_time;
                // 1317: interrupted (KILL QUERY).
                1969 | 3024 | 1317 => self.timeout(),
                // Access denied, unknown database, too many connections, host blocked
                // or not allowed, shutdown in progress, connection killed.
                1040 | 1044 | 1045 | 1049 | 1053 | 1129 | 1130 | 1203 | 1927 => {
                    self.unavailable(server.message.clone())
                }
                _ => AdapterError::Source {
                    source_id: self.id.clone(),
                    message: server.message.clone(),
                },
            },
            mysql_async::Error::Io(io) => self.unavailable(format!("cannot connect: {io}")),
            mysql_async::Error::Driver(driver) => {
                use mysql_async::DriverError as D;
                match driver {
                    D::ConnectionClosed
                    | D::PoolDisconnected
                    | D::CantParseServerVersion { .. }
                    | D::UnknownAuthPlugin { .. }
                    | D::MysqlOldPasswordDisabled
                    | D::NoClientSslFlagFromServer
                    | D::CleartextPluginDisabled
                    | D::NamedPipesDisabled
                    | D::InvalidParsecSalt => self.unavailable(driver.to_string()),
                    // Their messages would show the value.
                    D::FromValue { .. } | D::FromRow { .. } => AdapterError::Source {
                        source_id: self.id.clone(),
                        message: "a value has an unexpected type".to_string(),
                    },
                    other => AdapterError::Source {
                        source_id: self.id.clone(),
                        message: other.to_string(),
                    },
                }
            }
            mysql_async::Error::Other(other) => AdapterError::Source {
                source_id: self.id.clone(),
                message: other.to_string(),
            },
            mysql_async::Error::Url(_) => {
                AdapterError::Config(format!("source '{}': url is not a MySQL URL", self.id))
            }
        }
    }

    fn timeout(&self) -> AdapterError {
        AdapterError::Timeout {
            source_id: self.id.clone(),
            ms: self.timeout_ms,
        }
    }

    fn unavailable(&self, message: String) -> AdapterError {
        tracing::warn!(source = %self.id, error = %message, "mysql source unavailable");
        AdapterError::Unavailable {
            source_id: self.id.clone(),
            message,
        }
    }
}

async fn send(
    builder: &mut BatchBuilder,
    ctx: &ScanContext,
    tx: &BatchSender,
) -> Result<bool, AdapterError> {
    ctx.rows_read.add(builder.len());
    let batch = builder.finish()?;
    Ok(tx.send(batch).await)
}

fn push_row(
    builder: &mut BatchBuilder,
    source_id: &str,
    fields: &[Field],
    row: &Row,
) -> Result<(), AdapterError> {
    for (i, field) in fields.iter().enumerate() {
        let bad = |what: &str| AdapterError::Source {
            source_id: source_id.to_string(),
            message: format!(
                "column '{}' holds {what} that is not a valid {}",
                field.name,
                field.field_type.as_str()
            ),
        };
        let text;
        let cell = match row.as_ref(i).unwrap_or(&Value::NULL) {
            Value::NULL => Cell::Null,
            // BIT(1) arrives as one byte 0 or 1.
            Value::Bytes(b)
                if field.field_type == FieldType::Boolean && b.len() == 1 && b[0] <= 1 =>
            {
                Cell::Bool(b[0] == 1)
            }
            Value::Bytes(b) => {
                text =
                    simdutf8::basic::from_utf8(b).map_err(|_| bad("bytes that are not UTF-8"))?;
                Cell::Text(text)
            }
            Value::Int(n) => Cell::Int(*n),
            Value::UInt(n) => match i64::try_from(*n) {
                Ok(n) => Cell::Int(n),
                Err(_) if field.field_type == FieldType::String => {
                    let owned = n.to_string();
                    builder.push(i, Cell::Text(&owned))?;
                    continue;
                }
                Err(_) => return Err(bad("an unsigned integer out of range")),
            },
            Value::Float(x) => Cell::Float(f64::from(*x)),
            Value::Double(x) => Cell::Float(*x),
            Value::Date(y, m, d, h, mi, s, us) => {
                let date = time::Month::try_from(*m)
                    .ok()
                    .and_then(|m| time::Date::from_calendar_date(i32::from(*y), m, *d).ok())
                    .ok_or_else(|| bad("a zero or invalid date"))?;
                let days = crate::arrow::days_of(date);
                if (*h, *mi, *s, *us) == (0, 0, 0, 0) {
                    Cell::Date(days)
                } else {
                    let seconds = i64::from(*h) * 3600 + i64::from(*mi) * 60 + i64::from(*s);
                    Cell::Timestamp(
                        i64::from(days) * crate::arrow::MICROS_PER_DAY
                            + seconds * 1_000_000
                            + i64::from(*us),
                    )
                }
            }
            Value::Time(..) => return Err(bad("a time of day")),
        };
        builder.push(i, cell)?;
    }
    Ok(())
}

/// Each parameter as mysql_async binds it: booleans as 0/1, dates and times as
/// MySQL dates.
fn value_of(p: &Param) -> Value {
    match p {
        Param::Text(s) => Value::Bytes(s.clone().into_bytes()),
        Param::Int(n) => Value::Int(*n),
        Param::Float(x) => Value::Double(*x),
        Param::Bool(b) => Value::Int(i64::from(*b)),
        Param::Date(d) => match date_of(*d) {
            Some(date) => Value::Date(
                u16::try_from(date.year()).unwrap_or_default(),
                u8::from(date.month()),
                date.day(),
                0,
                0,
                0,
                0,
            ),
            None => Value::NULL,
        },
        Param::Timestamp(t) => match datetime_of(*t) {
            Some(t) => Value::Date(
                u16::try_from(t.year()).unwrap_or_default(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.microsecond(),
            ),
            None => Value::NULL,
        },
    }
}

/// A field type for `information_schema.COLUMNS` (`DATA_TYPE`, `COLUMN_TYPE`).
fn field_type_of(data_type: &str, column_type: &str) -> FieldType {
    let data_type = data_type.to_ascii_lowercase();
    let column_type = column_type.to_ascii_lowercase();
    if column_type.starts_with("tinyint(1)") || column_type == "bit(1)" {
        return FieldType::Boolean;
    }
    match data_type.as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
            FieldType::Integer
        }
        "decimal" | "numeric" | "float" | "double" | "real" => FieldType::Float,
        "date" => FieldType::Date,
        "datetime" | "timestamp" => FieldType::Datetime,
        _ => FieldType::String,
    }
}

#[cfg(test)]
mod tests {
    use super::mysql_collation;

    #[test]
    fn mysql_gets_its_own_name_for_the_exact_collation() {
        let sql = "SELECT CONVERT(`s` USING utf8mb4) COLLATE utf8mb4_nopad_bin, COUNT(*) \
                   FROM `utf8mb4_nopad_bin` GROUP BY CONVERT(`s` USING utf8mb4) COLLATE utf8mb4_nopad_bin";
        assert_eq!(
            mysql_collation(sql),
            "SELECT CONVERT(`s` USING utf8mb4) COLLATE utf8mb4_0900_bin, COUNT(*) \
             FROM `utf8mb4_nopad_bin` GROUP BY CONVERT(`s` USING utf8mb4) COLLATE utf8mb4_0900_bin"
        );
    }
}
