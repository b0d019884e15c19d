//! SQLite as a DataFusion table: the generic SQL provider over this source's pool.

use std::sync::Arc;

use rusqlite::types::{Value, ValueRef};
use yiwang_catalog::model::Field;

use super::Inner;
use crate::arrow::{BatchBuilder, Cell, format_date, format_datetime};
use crate::error::AdapterError;
use crate::exec::{BatchSender, BatchStream, ScanContext, spawn_scan};
use crate::provider::{SqlBackend, SqlQuery};
use crate::pushdown::{Affinity, Dialect, Param};

/// Pragma lookups made while planning wait at most this long for a locked database.
const PLANNING_BUSY_TIMEOUT_MS: u64 = 100;

pub(super) struct SqliteBackend(pub(super) Arc<Inner>);

impl SqlBackend for SqliteBackend {
    fn source_id(&self) -> &str {
        &self.0.id
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn fetch(&self, query: SqlQuery, ctx: ScanContext) -> BatchStream {
        let inner = Arc::clone(&self.0);
        spawn_scan(&self.0.id, move |tx| async move {
            let source_id = inner.id.clone();
            inner
                .run(move |conn| scan(conn, &source_id, &query, &ctx, &tx))
                .await
        })
    }
}

/// Runs the statement and sends its rows in batches. Conversion errors end the stream
/// with that error; SQLite errors are returned (and classified by `Inner::run`).
fn scan(
    conn: &rusqlite::Connection,
    source_id: &str,
    query: &SqlQuery,
    ctx: &ScanContext,
    tx: &BatchSender,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(&query.sql)?;
    let params = query.params.iter().map(value_of);
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut builder = BatchBuilder::new(source_id, &query.fields, Arc::clone(&query.schema));
    while let Some(row) = rows.next()? {
        for (i, field) in query.fields.iter().enumerate() {
            let pushed = match row.get_ref(i)? {
                ValueRef::Null => builder.push(i, Cell::Null),
                ValueRef::Integer(n) => builder.push(i, Cell::Int(n)),
                ValueRef::Real(x) => builder.push(i, Cell::Float(x)),
                ValueRef::Text(bytes) => match simdutf8::basic::from_utf8(bytes) {
                    Ok(s) => builder.push(i, Cell::Text(s)),
                    Err(_) => Err(bad_value(source_id, field, "text that is not UTF-8")),
                },
                ValueRef::Blob(_) => Err(bad_value(source_id, field, "a blob")),
            };
            if let Err(err) = pushed {
                tx.blocking_fail(err);
                return Ok(());
            }
        }
        builder.end_row();
        if builder.len() >= ctx.batch_size && !send(&mut builder, ctx, tx) {
            return Ok(());
        }
    }
    if !builder.is_empty() {
        send(&mut builder, ctx, tx);
    }
    Ok(())
}

/// Sends what the builder holds; `false` when the scan should stop.
fn send(builder: &mut BatchBuilder, ctx: &ScanContext, tx: &BatchSender) -> bool {
    ctx.rows_read.add(builder.len());
    match builder.finish() {
        Ok(batch) => tx.blocking_send(batch),
        Err(err) => {
            tx.blocking_fail(err);
            false
        }
    }
}

fn bad_value(source_id: &str, field: &Field, what: &str) -> AdapterError {
    AdapterError::Source {
        source_id: source_id.to_string(),
        message: format!(
            "column '{}' holds {what} that is not a valid {}",
            field.name,
            field.field_type.as_str()
        ),
    }
}

/// SQLite has no date type: dates and times are bound as the text they are stored as,
/// booleans as 0/1.
fn value_of(p: &Param) -> Value {
    match p {
        Param::Text(s) => Value::Text(s.clone()),
        Param::Int(n) => Value::Integer(*n),
        Param::Float(x) => Value::Real(*x),
        Param::Bool(b) => Value::Integer(i64::from(*b)),
        Param::Date(d) => Value::Text(format_date(*d).unwrap_or_default()),
        Param::Timestamp(t) => Value::Text(format_datetime(*t).unwrap_or_default()),
    }
}

impl Inner {
    /// The affinity of each field's column, read from the table's declared types.
    /// Everything is `None` (nothing pushed) when the database cannot be read now:
    /// the scan then reports why.
    pub(super) fn affinities(&self, table: &str, fields: &[Field]) -> Vec<Option<Affinity>> {
        let declared = self.checkout().and_then(|conn| {
            let result = conn
                .busy_timeout(std::time::Duration::from_millis(PLANNING_BUSY_TIMEOUT_MS))
                .and_then(|()| {
                    let mut stmt =
                        conn.prepare_cached("SELECT name, type FROM pragma_table_info(?1)")?;
                    let rows = stmt.query_map([table], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                    })?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(|e| self.classify(e));
            self.checkin(conn);
            result
        });
        match declared {
            Ok(columns) => fields
                .iter()
                .map(|f| {
                    columns
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(&f.name))
                        .map(|(_, t)| Affinity::of_declared(t))
                })
                .collect(),
            Err(err) => {
                tracing::debug!(source = %self.id, error = %err, "no pushdown: cannot read column types");
                vec![None; fields.len()]
            }
        }
    }
}
