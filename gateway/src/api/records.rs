//! `GET /v1/datasets/{id}/records`: department data, read at request time from the
//! providing department's source, under policy, masked, and audited before it leaves.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;
use tracing::Instrument as _;
use yiwang_adapters::{ReadRequest, ReadResult};
use yiwang_catalog::filter::{self, Expr};
use yiwang_catalog::model::{DatasetStatus, FieldType};
use yiwang_catalog::validate;
use yiwang_policies::masking::mask;
use yiwang_policies::{Column, ReadPlan};

use super::{ApiError, Audited, Caller, Query};
use crate::node::Node;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordParams {
    /// Comma-separated field names; default: every field the consumer may see.
    pub fields: Option<String>,
    /// Filter expression (see docs/filter-language.md).
    pub filter: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    /// `json` | `ndjson` | `csv`, overriding the Accept header.
    pub format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
    Csv,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// Picks the output format from `?format=` or the Accept header (JSON by default).
pub fn negotiate(param: Option<&str>, headers: &HeaderMap) -> Result<Format, ApiError> {
    if let Some(p) = param {
        return match p {
            "json" => Ok(Format::Json),
            "ndjson" => Ok(Format::Ndjson),
            "csv" => Ok(Format::Csv),
            other => Err(ApiError::bad_request(
                "invalid_query",
                format!("format must be json, ndjson or csv, not '{other}'"),
            )),
        };
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in accept.split(',') {
        match part.split(';').next().unwrap_or("").trim() {
            "application/x-ndjson" | "application/ndjson" => return Ok(Format::Ndjson),
            "text/csv" => return Ok(Format::Csv),
            "application/json" | "*/*" | "application/*" | "" => return Ok(Format::Json),
            _ => {}
        }
    }
    if accept.trim().is_empty() {
        return Ok(Format::Json);
    }
    Err(ApiError::new(
        axum::http::StatusCode::NOT_ACCEPTABLE,
        "not_acceptable",
        format!(
            "cannot produce '{accept}'; use application/json, application/x-ndjson or text/csv"
        ),
    ))
}

/// The purpose of a data read, from `X-Purpose` (percent-decoded, so clients can send
/// Chinese text in a header).
pub fn purpose(headers: &HeaderMap) -> Result<String, ApiError> {
    let raw = headers.get("x-purpose").ok_or_else(|| {
        ApiError::bad_request(
            "missing_purpose",
            "every data read needs a purpose: set the X-Purpose header",
        )
    })?;
    let text = match raw.to_str() {
        Ok(s) => percent_decode(s),
        Err(_) => String::from_utf8(raw.as_bytes().to_vec())
            .map_err(|_| ApiError::bad_request("invalid_purpose", "X-Purpose is not UTF-8"))?,
    };
    validate::purpose(&text)
        .map_err(|e| ApiError::bad_request("invalid_purpose", e.to_string()))?;
    Ok(text)
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes: Vec<u8> = form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_else(|_| s.to_string())
}

/// Parses the consumer's filter and checks it only touches columns the consumer may
/// see unmasked: filtering on a hidden or masked column would leak its values.
pub fn consumer_filter(text: &str, plan: &ReadPlan) -> Result<Expr, ApiError> {
    let expr = filter::parse(text)
        .map_err(|e| ApiError::bad_request("invalid_filter", format!("invalid filter: {e}")))?;
    let visible: Vec<_> = plan
        .columns
        .iter()
        .filter(|c| c.mask.is_none())
        .map(|c| c.field.clone())
        .collect();
    for name in expr.fields() {
        if !visible.iter().any(|f| f.name == name) {
            let masked = plan.columns.iter().any(|c| c.field.name == name);
            return Err(ApiError::bad_request(
                "invalid_filter",
                if masked {
                    format!(
                        "invalid filter: field '{name}' is masked for you and cannot be filtered on"
                    )
                } else {
                    format!(
                        "invalid filter: field '{name}' is not a field of this dataset you may read"
                    )
                },
            ));
        }
    }
    filter::validate(&expr, &visible)
        .map_err(|e| ApiError::bad_request("invalid_filter", e.to_string()))?;
    Ok(expr)
}

pub async fn read(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<RecordParams>, ApiError>,
) -> Result<Response, ApiError> {
    let mut audit = Audited::new(&caller, "records.read");
    audit.dataset_id(&id);
    let result = async {
        let Query(p) = params?;
        audit.event.purpose = purpose(&headers)?;
        let format = negotiate(p.format.as_deref(), &headers)?;
        let dataset = super::datasets::find(&node, &id)?;
        audit.dataset(&dataset);
        if dataset.status == DatasetStatus::Retired {
            return Err(ApiError::new(
                axum::http::StatusCode::GONE,
                "retired",
                format!("dataset '{id}' is retired"),
            ));
        }
        let requested: Option<Vec<String>> = p.fields.as_deref().map(|f| {
            f.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        });
        let now = yiwang_catalog::clock::now();
        // The full plan says what the consumer may see at all (filters may use any of
        // it); the requested plan narrows the columns returned.
        let full = node
            .policy
            .plan_read(&caller.principal, &dataset, None, &now)
            .await?;
        let plan = match &requested {
            Some(r) if !r.is_empty() => {
                node.policy
                    .plan_read(&caller.principal, &dataset, Some(r), &now)
                    .await?
            }
            _ => full.clone(),
        };
        audit.decision(&plan.decision);
        audit.event.fields = plan.columns.iter().map(|c| c.field.name.clone()).collect();
        let mut filter = match p.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            Some(text) => Some(consumer_filter(text, &full)?),
            None => None,
        };
        if let Some(rows) = plan.row_filter.clone() {
            filter = Some(match filter {
                Some(f) => f.and(rows),
                None => rows,
            });
        }
        let limits = &node.config.limits;
        let limit = p.limit.unwrap_or(limits.default_rows);
        if limit == 0 || limit > limits.max_rows {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit must be between 1 and {}", limits.max_rows),
            ));
        }
        let source_ref = dataset.source.clone().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "no_source",
                format!(
                    "dataset '{id}' has no records source: it is catalogued for discovery only"
                ),
            )
        })?;
        let source = node.sources.require(&source_ref.id)?;
        let span = tracing::debug_span!(
            "source.read",
            source = %source_ref.id,
            source.kind = source.kind(),
            table = %source_ref.table,
            rows = tracing::field::Empty,
        );
        let page = source
            .read(ReadRequest {
                table: source_ref.table.clone(),
                columns: plan.columns.iter().map(|c| c.field.clone()).collect(),
                filter,
                limit,
                cursor: p.cursor.clone(),
            })
            .instrument(span.clone())
            .await
            .inspect_err(|_| {
                node.metrics
                    .source_errors
                    .get_or_create(&crate::metrics::SourceLabels {
                        source: source_ref.id.clone(),
                    })
                    .inc();
            })?;
        span.record("rows", page.rows.len());
        let body = render(format, &plan.columns, &page)?;
        audit.event.rows = page.rows.len() as u64;
        audit.event.bytes = body.len() as u64;
        Ok((format, page.next_cursor, body, plan))
    }
    .await;
    let ((format, next_cursor, body, plan), completion) = audit.finish_data(&node, result).await?;
    let mut resp = Response::new(completion.body(Body::from(body)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Some(c) = next_cursor.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert("x-next-cursor", c);
    }
    let masked = plan.masked_fields().join(",");
    if let Ok(v) = HeaderValue::from_str(&masked)
        && !masked.is_empty()
    {
        h.insert("x-masked-fields", v);
    }
    Ok(resp)
}

/// Applies masking and serialises a page.
fn render(format: Format, columns: &[Column], page: &ReadResult) -> Result<Vec<u8>, ApiError> {
    let masked_row = |row: &Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        row.iter()
            .zip(columns)
            .map(|(v, c)| match c.mask {
                Some(rule) => mask(v, rule),
                None => v.clone(),
            })
            .collect()
    };
    let json_err = |e: serde_json::Error| ApiError::internal(e.to_string());
    // Rows are written as JSON objects straight from the values, with the column names
    // escaped once: no map per row (this is most of a bulk export's CPU time).
    let keys: Vec<Vec<u8>> = page
        .columns
        .iter()
        .map(serde_json::to_vec)
        .collect::<Result<_, _>>()
        .map_err(json_err)?;
    let write_object = |out: &mut Vec<u8>, row: &Vec<serde_json::Value>| {
        out.push(b'{');
        for (i, ((v, c), key)) in row.iter().zip(columns).zip(&keys).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            out.push(b':');
            match c.mask {
                Some(rule) => serde_json::to_writer(&mut *out, &mask(v, rule)),
                None => serde_json::to_writer(&mut *out, v),
            }
            .map_err(json_err)?;
        }
        out.push(b'}');
        Ok::<(), ApiError>(())
    };
    let mut out = Vec::with_capacity(page.rows.len() * 128);
    match format {
        Format::Json => {
            out.extend_from_slice(b"{\"columns\":");
            serde_json::to_writer(&mut out, &page.columns).map_err(json_err)?;
            out.extend_from_slice(b",\"rows\":[");
            for (i, r) in page.rows.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_object(&mut out, r)?;
            }
            out.extend_from_slice(b"],\"next_cursor\":");
            serde_json::to_writer(&mut out, &page.next_cursor).map_err(json_err)?;
            out.push(b'}');
        }
        Format::Ndjson => {
            for r in &page.rows {
                write_object(&mut out, r)?;
                out.push(b'\n');
            }
        }
        Format::Csv => {
            write_csv_row(
                &mut out,
                page.columns
                    .iter()
                    .map(|c| std::borrow::Cow::Borrowed(c.as_str())),
            );
            for r in &page.rows {
                let row = masked_row(r);
                write_csv_row(
                    &mut out,
                    row.iter()
                        .zip(columns)
                        .map(|(v, c)| csv_cell(v, c.field.field_type)),
                );
            }
        }
    }
    Ok(out)
}

fn csv_cell(v: &serde_json::Value, _t: FieldType) -> std::borrow::Cow<'_, str> {
    match v {
        serde_json::Value::Null => "".into(),
        serde_json::Value::String(s) => s.as_str().into(),
        other => other.to_string().into(),
    }
}

/// RFC 4180: quote cells containing separators, quotes or line breaks.
fn write_csv_row<'a>(out: &mut Vec<u8>, cells: impl Iterator<Item = std::borrow::Cow<'a, str>>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if cell.contains([',', '"', '\n', '\r']) {
            out.push(b'"');
            out.extend_from_slice(cell.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(cell.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}
