//! SQLite sources, the embedded default.
//!
//! The database is opened read-only (`SQLITE_OPEN_READ_ONLY` and `PRAGMA query_only`),
//! so the gateway can never change a department's data. Queries run on tokio's
//! blocking pool; a semaphore bounds how many run at once per source, and idle
//! connections are kept for reuse. Each query has a deadline, enforced inside SQLite
//! by a progress handler, so a dropped request cannot leave a runaway query behind.
//!
//! Records requests page by rowid (keyset paging, stable while the table grows); the
//! DataFusion table ([`Source::table_provider`]) is the generic SQL provider, with
//! pushdown decided per column by its SQLite type affinity (see `pushdown.rs`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::future::BoxFuture;
use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use serde_json::Value as Json;
use tokio::sync::Semaphore;
use yiwang_catalog::model::{Field, FieldType};

use crate::cursor;
use crate::error::AdapterError;
use crate::provider::{SqlTable, check_fields, checked_table};
use crate::source::{ReadRequest, ReadResult, Source};
use crate::sql::{self, Statement};

mod scan;

/// Connections per source when the configuration does not say.
pub const DEFAULT_POOL_SIZE: usize = 4;
/// Time limit of one query when the configuration does not say.
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// Most rows one read may ask for; a page is held in memory.
pub const MAX_LIMIT: usize = 10_000;

/// SQLite calls the progress handler every this many virtual-machine instructions;
/// small enough to stop within about a millisecond, large enough to cost nothing.
const PROGRESS_INTERVAL: i32 = 1000;

/// A read-only SQLite database file.
pub struct SqliteSource {
    inner: Arc<Inner>,
    /// See [`SqliteSource::with_aggregate_pushdown`].
    aggregate_pushdown: bool,
}

struct Inner {
    id: String,
    path: PathBuf,
    timeout_ms: u64,
    pool_size: usize,
    /// One permit per connection that may be in use at once.
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteSource {
    /// Nothing is opened until the first read: a missing file is an
    /// [`AdapterError::Unavailable`] then, and the next read tries again.
    pub fn new(id: impl Into<String>, path: PathBuf, pool_size: usize, timeout_ms: u64) -> Self {
        let pool_size = pool_size.max(1);
        SqliteSource {
            inner: Arc::new(Inner {
                id: id.into(),
                path,
                timeout_ms,
                pool_size,
                permits: Arc::new(Semaphore::new(pool_size)),
                idle: Mutex::new(Vec::new()),
            }),
            aggregate_pushdown: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether `GROUP BY` and aggregates over this source's tables may run at the
    /// source (the default) or always in the gateway; the `aggregate_pushdown` key.
    pub fn with_aggregate_pushdown(mut self, on: bool) -> Self {
        self.aggregate_pushdown = on;
        self
    }
}

impl Source for SqliteSource {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn read(&self, req: ReadRequest) -> BoxFuture<'static, Result<ReadResult, AdapterError>> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { inner.read(req).await })
    }

    fn list_columns(
        &self,
        table: &str,
    ) -> BoxFuture<'static, Result<Vec<(String, FieldType)>, AdapterError>> {
        let inner = Arc::clone(&self.inner);
        let table = table.to_string();
        Box::pin(async move { inner.list_columns(table).await })
    }

    /// Reads the table's declared column types (a pragma, microseconds) to decide
    /// what can be pushed down; nothing else is opened until the scan runs.
    fn table_provider(
        &self,
        table: &str,
        fields: &[Field],
    ) -> Result<Arc<dyn datafusion::catalog::TableProvider>, AdapterError> {
        let table_sql = checked_table(table, '"')?;
        check_fields(fields)?;
        let affinity = self.inner.affinities(table, fields);
        let backend = Arc::new(scan::SqliteBackend(Arc::clone(&self.inner)));
        Ok(Arc::new(
            SqlTable::new(backend, table_sql, fields, affinity)?
                .with_aggregates(self.aggregate_pushdown),
        ))
    }
}

impl Inner {
    async fn read(self: Arc<Self>, req: ReadRequest) -> Result<ReadResult, AdapterError> {
        if !(1..=MAX_LIMIT).contains(&req.limit) {
            return Err(AdapterError::InvalidRequest(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let key = cursor::query_key(&req.table, req.filter.as_ref());
        let after = req
            .cursor
            .as_deref()
            .map(|c| cursor::decode(c, &key))
            .transpose()?;
        // One row more than asked tells whether there is a next page.
        let stmt = sql::select_page(
            &req.table,
            &req.columns,
            req.filter.as_ref(),
            after,
            req.limit + 1,
        )?;
        let names = req.columns.iter().map(|c| c.name.clone()).collect();
        let columns = req.columns;
        let limit = req.limit;
        let (keys, mut rows) = self
            .run(move |conn| query_page(conn, &stmt, &columns))
            .await?;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            Some(cursor::encode(keys[limit - 1], &key))
        } else {
            None
        };
        Ok(ReadResult {
            columns: names,
            rows,
            next_cursor,
        })
    }

    async fn list_columns(
        self: Arc<Self>,
        table: String,
    ) -> Result<Vec<(String, FieldType)>, AdapterError> {
        if !sql::is_identifier(&table) {
            return Err(AdapterError::InvalidRequest(format!(
                "table name '{table}' is not of the form [A-Za-z_][A-Za-z0-9_]*"
            )));
        }
        let source_id = self.id.clone();
        let columns = self
            .run({
                let table = table.clone();
                move |conn| {
                    let mut stmt =
                        conn.prepare_cached("SELECT name, type FROM pragma_table_info(?1)")?;
                    let rows = stmt.query_map([&table], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                    })?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                }
            })
            .await?;
        if columns.is_empty() {
            return Err(AdapterError::NoSuchTable {
                source_id,
                table: table.to_string(),
            });
        }
        Ok(columns
            .into_iter()
            .map(|(name, declared)| {
                let field_type = field_type_of(&declared);
                (name, field_type)
            })
            .collect())
    }

    /// Runs `work` on a pooled connection on the blocking pool, within this source's
    /// time limit (waiting for a connection included).
    async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, AdapterError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let deadline = Instant::now() + Duration::from_millis(self.timeout_ms);
        let permit = tokio::time::timeout_at(
            tokio::time::Instant::from_std(deadline),
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await
        .map_err(|_| self.timeout())?
        // The semaphore is never closed.
        .map_err(|_| self.timeout())?;
        let inner = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            // Held until the query is over, even if the caller stopped waiting.
            let _permit = permit;
            let conn = inner.checkout()?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            conn.progress_handler(PROGRESS_INTERVAL, Some(move || Instant::now() >= deadline));
            let result = conn.busy_timeout(remaining).and_then(|()| work(&conn));
            conn.progress_handler(PROGRESS_INTERVAL, None::<fn() -> bool>);
            match result {
                Ok(value) => {
                    inner.checkin(conn);
                    Ok(value)
                }
                Err(err) => {
                    let err = inner.classify(err);
                    // A connection to a file that went bad is not worth keeping.
                    if !matches!(err, AdapterError::Unavailable { .. }) {
                        inner.checkin(conn);
                    }
                    Err(err)
                }
            }
        })
        .await
        .map_err(|join_err| AdapterError::Source {
            source_id: self.id.clone(),
            message: format!("query task failed: {join_err}"),
        })?
    }

    fn checkout(&self) -> Result<Connection, AdapterError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => self.open(),
        }
    }

    fn checkin(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.pool_size {
            idle.push(conn);
        }
    }

    fn open(&self) -> Result<Connection, AdapterError> {
        if !self.path.is_file() {
            tracing::warn!(source = %self.id, path = %self.path.display(), "sqlite database file is missing");
            return Err(self.unavailable("database file is missing"));
        }
        // NO_MUTEX: a connection is used by one thread at a time (it is out of the
        // pool while in use). No URI flag: the path is a plain file name.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)
            .and_then(|conn| {
                conn.execute_batch("PRAGMA query_only = ON")?;
                // Without this, SQLite reads a double-quoted name that is not a column
                // as a string literal: a missing column would come back as its own name
                // in every row, and a filter on it would compare against that name.
                conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DQS_DML, false)?;
                conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DQS_DDL, false)?;
                // Plans do not depend on the values bound to a statement, so a cached
                // statement is not prepared again at every run (with the STAT4 build
                // that was a third of a small page's CPU time).
                conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
                Ok(conn)
            })
            .map_err(|err| {
                tracing::warn!(source = %self.id, path = %self.path.display(), error = %err, "cannot open sqlite database");
                self.classify(err)
            })?;
        Ok(conn)
    }

    fn classify(&self, err: rusqlite::Error) -> AdapterError {
        let code = match &err {
            rusqlite::Error::SqliteFailure(e, _) => Some(e.code),
            _ => None,
        };
        match code {
            Some(ErrorCode::OperationInterrupted) => self.timeout(),
            Some(
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::CannotOpen
                | ErrorCode::NotADatabase
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::PermissionDenied
                | ErrorCode::SystemIoFailure,
            ) => self.unavailable(&err.to_string()),
            _ => AdapterError::Source {
                source_id: self.id.clone(),
                message: err.to_string(),
            },
        }
    }

    fn timeout(&self) -> AdapterError {
        AdapterError::Timeout {
            source_id: self.id.clone(),
            ms: self.timeout_ms,
        }
    }

    fn unavailable(&self, message: &str) -> AdapterError {
        AdapterError::Unavailable {
            source_id: self.id.clone(),
            message: message.to_string(),
        }
    }
}

/// Runs the page query; returns each row's rowid and its converted values.
fn query_page(
    conn: &Connection,
    stmt: &Statement,
    columns: &[Field],
) -> rusqlite::Result<(Vec<i64>, Vec<Vec<Json>>)> {
    let mut prepared = conn.prepare_cached(&stmt.sql)?;
    let mut rows = prepared.query(rusqlite::params_from_iter(stmt.params.iter()))?;
    let mut keys = Vec::new();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        keys.push(row.get::<_, i64>(0)?);
        let mut values = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            values.push(to_json(row.get_ref(i + 1)?, column.field_type));
        }
        out.push(values);
    }
    Ok((keys, out))
}

/// Converts one SQLite value; the field type only matters for booleans, which SQLite
/// stores as integers (or sometimes as text).
fn to_json(value: ValueRef<'_>, field_type: FieldType) -> Json {
    let boolean = field_type == FieldType::Boolean;
    match value {
        ValueRef::Null => Json::Null,
        ValueRef::Integer(n) if boolean => Json::Bool(n != 0),
        ValueRef::Integer(n) => Json::from(n),
        ValueRef::Real(x) if boolean => Json::Bool(x != 0.0),
        // Infinities have no JSON form.
        ValueRef::Real(x) => serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number),
        ValueRef::Text(bytes) => {
            // Valid UTF-8 (the usual case) is copied once; anything else is repaired.
            let text = match simdutf8::basic::from_utf8(bytes) {
                Ok(s) => s.to_owned(),
                Err(_) => String::from_utf8_lossy(bytes).into_owned(),
            };
            if boolean {
                match text.to_ascii_lowercase().as_str() {
                    "true" | "1" => return Json::Bool(true),
                    "false" | "0" => return Json::Bool(false),
                    _ => {}
                }
            }
            Json::String(text)
        }
        ValueRef::Blob(bytes) => Json::String(STANDARD.encode(bytes)),
    }
}

/// Maps a declared column type to a field type, after SQLite's affinity rules with
/// the common date, time and boolean spellings recognised first.
fn field_type_of(declared: &str) -> FieldType {
    let t = declared.to_ascii_uppercase();
    if t.contains("BOOL") {
        FieldType::Boolean
    } else if t.contains("DATETIME") || t.contains("TIMESTAMP") {
        FieldType::Datetime
    } else if t.contains("DATE") {
        FieldType::Date
    } else if t.contains("INT") {
        FieldType::Integer
    } else if ["REAL", "FLOA", "DOUB", "NUM", "DEC"]
        .iter()
        .any(|k| t.contains(k))
    {
        FieldType::Float
    } else {
        FieldType::String
    }
}

#[cfg(test)]
mod tests;
