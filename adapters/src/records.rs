//! The records endpoint for source kinds without their own paging: one page read
//! through the source's DataFusion table.
//!
//! The filter becomes a DataFusion expression ([`crate::filter_to_expr_typed`]), so
//! pushdown is decided by the same rules as for cross-department queries. A page is
//! `LIMIT limit + 1 OFFSET offset` (the extra row tells whether there is a next page);
//! the cursor carries the offset, bound to the table and filter like the SQLite
//! cursor. Pages follow the source's scan order: a source whose order changes
//! between two requests (a table being written, a parallel scan) can shift rows
//! between pages, as with any offset paging.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::ident;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;
use yiwang_catalog::filter::{Expr as Filter, Literal};
use yiwang_catalog::model::{Field, FieldType, Sensitivity};

use crate::arrow::json_value;
use crate::cursor;
use crate::error::AdapterError;
use crate::filter::filter_to_expr_typed;
use crate::source::{ReadRequest, ReadResult, Source};
use crate::sqlite::MAX_LIMIT;

/// [`Source::read`] on top of [`Source::table_provider`].
pub(crate) fn read_with(
    source: &dyn Source,
    source_id: &str,
    req: ReadRequest,
) -> BoxFuture<'static, Result<ReadResult, AdapterError>> {
    let prepared = prepare(source, &req);
    let source_id = source_id.to_string();
    Box::pin(async move {
        let (provider, fields, offset) = prepared?;
        read(provider, &source_id, req, &fields, offset).await
    })
}

type Prepared = (Arc<dyn TableProvider>, Vec<Field>, usize);

fn prepare(source: &dyn Source, req: &ReadRequest) -> Result<Prepared, AdapterError> {
    if !(1..=MAX_LIMIT).contains(&req.limit) {
        return Err(AdapterError::InvalidRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if req.columns.is_empty() {
        return Err(AdapterError::InvalidRequest(
            "no columns requested".to_string(),
        ));
    }
    let key = cursor::query_key(&req.table, req.filter.as_ref());
    let offset = match req.cursor.as_deref() {
        Some(c) => usize::try_from(cursor::decode(c, &key)?)
            .map_err(|_| AdapterError::BadCursor("the cursor is malformed".to_string()))?,
        None => 0,
    };
    let fields = table_fields(req);
    let provider = source.table_provider(&req.table, &fields)?;
    Ok((provider, fields, offset))
}

/// The requested columns (each once), then the fields only the filter names. Their
/// types are not in the request: they are taken from the literals they are compared
/// with (strings, and fields only tested for null, are read as strings — the filter
/// language compares dates and times as strings anyway).
fn table_fields(req: &ReadRequest) -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    for column in &req.columns {
        if !fields.iter().any(|f| f.name == column.name) {
            fields.push(column.clone());
        }
    }
    let Some(filter) = &req.filter else {
        return fields;
    };
    for name in filter.fields() {
        if fields.iter().any(|f| f.name == name) {
            continue;
        }
        let mut literals = Vec::new();
        literals_of(filter, name, &mut literals);
        let field_type = if literals.iter().any(|l| matches!(l, Literal::Bool(_))) {
            FieldType::Boolean
        } else if literals.iter().any(|l| matches!(l, Literal::Float(_))) {
            FieldType::Float
        } else if literals.iter().any(|l| matches!(l, Literal::Integer(_))) {
            FieldType::Integer
        } else {
            FieldType::String
        };
        fields.push(Field {
            name: name.to_string(),
            title: name.to_string(),
            field_type,
            sensitivity: Sensitivity::Internal,
            masking: None,
        });
    }
    fields
}

fn literals_of<'a>(filter: &'a Filter, name: &str, out: &mut Vec<&'a Literal>) {
    match filter {
        Filter::And(l, r) | Filter::Or(l, r) => {
            literals_of(l, name, out);
            literals_of(r, name, out);
        }
        Filter::Not(inner) => literals_of(inner, name, out),
        Filter::Compare { field, value, .. } if field == name => out.push(value),
        Filter::In { field, values, .. } if field == name => out.extend(values),
        Filter::Between { field, low, high } if field == name => {
            out.push(low);
            out.push(high);
        }
        _ => {}
    }
}

async fn read(
    provider: Arc<dyn TableProvider>,
    source_id: &str,
    req: ReadRequest,
    fields: &[Field],
    offset: usize,
) -> Result<ReadResult, AdapterError> {
    let failed = |e: DataFusionError| from_datafusion(source_id, e);
    let ctx = SessionContext::new();
    let mut frame = ctx.read_table(provider).map_err(failed)?;
    if let Some(filter) = &req.filter {
        frame = frame
            .filter(filter_to_expr_typed(filter, fields))
            .map_err(failed)?;
    }
    let names: Vec<String> = req
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    frame = frame
        .select(names.iter().map(ident).collect::<Vec<_>>())
        .map_err(failed)?
        .limit(offset, Some(req.limit + 1))
        .map_err(failed)?;
    let batches = frame.collect().await.map_err(failed)?;
    let positions: Vec<usize> = req
        .columns
        .iter()
        .map(|c| names.iter().position(|n| *n == c.name).unwrap_or_default())
        .collect();
    let mut rows = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            rows.push(
                positions
                    .iter()
                    .map(|&i| json_value(batch.column(i).as_ref(), row))
                    .collect::<Vec<_>>(),
            );
        }
    }
    let next_cursor = if rows.len() > req.limit {
        rows.truncate(req.limit);
        let key = cursor::query_key(&req.table, req.filter.as_ref());
        let next = i64::try_from(offset + req.limit).unwrap_or(i64::MAX);
        Some(cursor::encode(next, &key))
    } else {
        None
    };
    Ok(ReadResult {
        columns: req.columns.iter().map(|c| c.name.clone()).collect(),
        rows,
        next_cursor,
    })
}

/// The adapter error a DataFusion error carries, if any: a scan wraps its
/// [`AdapterError`] (source unavailable, time limit, bad value) into DataFusion's
/// error, possibly several layers deep.
pub fn adapter_error(err: &DataFusionError) -> Option<AdapterError> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(c) = cause {
        if let Some(found) = c.downcast_ref::<AdapterError>() {
            return Some(found.clone());
        }
        cause = c.source();
    }
    None
}

/// An adapter error for a failed read: the one the scan raised, or a planning error
/// as a bad request, or anything else as a failure of the source.
fn from_datafusion(source_id: &str, err: DataFusionError) -> AdapterError {
    if let Some(found) = adapter_error(&err) {
        return found;
    }
    match err.find_root() {
        DataFusionError::Plan(m) => AdapterError::InvalidRequest(m.clone()),
        DataFusionError::SchemaError(e, _) => AdapterError::InvalidRequest(e.to_string()),
        root => AdapterError::Source {
            source_id: source_id.to_string(),
            message: root.to_string(),
        },
    }
}
