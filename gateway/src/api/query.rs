//! `POST /v1/query`: cross-department SQL under policy (see `crate::query`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;
use yiwang_catalog::validate;

use super::{ApiError, Audited, Caller, JsonBody};
use crate::metrics::SourceLabels;
use crate::node::Node;
use crate::query::{self, OutputFormat, Touched};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryInput {
    pub sql: String,
    /// Why the data is read (audited; required).
    pub purpose: String,
    /// `json` | `ndjson` | `csv` | `arrow`, overriding the Accept header.
    pub format: Option<OutputFormat>,
}

pub async fn query(
    State(node): State<Arc<Node>>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<JsonBody<QueryInput>, ApiError>,
) -> Result<Response, ApiError> {
    let mut audit = Audited::new(&caller, "query.run");
    let mut touched = Touched::default();
    let result = async {
        let JsonBody(input) = body?;
        audit.event.purpose = input.purpose.clone();
        validate::purpose(&input.purpose)
            .map_err(|e| ApiError::bad_request("missing_purpose", e.to_string()))?;
        let format = match input.format {
            Some(f) => f,
            None => OutputFormat::from_accept(
                headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
            )?,
        };
        let results = query::run(&node, &caller.principal, &input.sql, &mut touched).await?;
        let bytes = query::encode(format, &results)?;
        for (source, rows) in &results.source_rows {
            node.metrics
                .source_rows
                .get_or_create(&SourceLabels {
                    source: source.clone(),
                })
                .inc_by(*rows);
        }
        let source_rows = results
            .source_rows
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect::<Vec<_>>()
            .join(", ");
        Ok((format, results.rows, bytes, source_rows))
    }
    .await;
    audit.event.datasets = touched.datasets.clone();
    audit.event.providers = touched.providers.clone();
    audit.event.fields = touched.fields.clone();
    if let [one] = touched.datasets.as_slice() {
        audit.event.dataset = Some(one.clone());
    }
    if let [one] = touched.providers.as_slice() {
        audit.event.provider_dept = Some(one.clone());
    }
    audit.event.grant = (!touched.grants.is_empty()).then(|| touched.grants.join(","));
    if let Ok((_, rows, bytes, _)) = &result {
        audit.event.rows = *rows;
        audit.event.bytes = bytes.len() as u64;
        audit.event.reason = touched.reasons.join("; ");
    }
    let ((format, rows, bytes, source_rows), completion) = audit.finish_data(&node, result).await?;
    let mut resp = Response::new(completion.body(Body::from(bytes)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&rows.to_string()) {
        h.insert("x-row-count", v);
    }
    if let Ok(v) = HeaderValue::from_str(&source_rows) {
        h.insert("x-source-rows", v);
    }
    Ok(resp)
}
