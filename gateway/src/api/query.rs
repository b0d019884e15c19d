//! `POST /v1/query`: cross-department SQL under policy (see `crate::query`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;
use yiwang_catalog::validate;

use super::{ApiError, Audited, Caller, JsonBody, Progress};
use crate::metrics::SourceLabels;
use crate::node::Node;
use crate::query::{self, Answer, Chunk, OutputFormat, Running, Touched};

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
        let running =
            query::run(&node, &caller.principal, &input.sql, format, &mut touched).await?;
        let answer = Answer::collect(running, node.config.query.buffer_kb << 10).await?;
        Ok((format, answer))
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
    if let Ok((_, answer)) = &result {
        audit.event.reason = touched.reasons.join("; ");
        // A streamed answer's rows and bytes are in its completion record.
        if let Answer::Whole { body, rows, .. } = answer {
            audit.event.rows = *rows;
            audit.event.bytes = body.len() as u64;
        }
    }
    let ((format, answer), completion) = audit.finish_data(&node, result).await?;
    let mut resp = match answer {
        Answer::Whole {
            body,
            rows,
            source_rows,
        } => {
            count_source_rows(&node, &source_rows);
            let mut resp = Response::new(completion.body(Body::from(body)));
            let h = resp.headers_mut();
            h.insert("x-row-count", HeaderValue::from(rows));
            if let Ok(v) = HeaderValue::from_str(&source_rows_text(&source_rows)) {
                h.insert("x-source-rows", v);
            }
            resp
        }
        Answer::Streamed { head, rows, rest } => {
            let progress = Progress::default();
            progress.add_rows(rows);
            let body = Body::from_stream(rest_of_answer(node, head, rest, progress.clone()));
            Response::new(completion.streamed_body(body, progress))
        }
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(resp)
}

/// A streamed answer's body: the chunks already taken, then the rest as the query
/// computes it. An error on the way ends the body with an error, so the transfer
/// fails (HTTP/2 resets the stream, HTTP/1.1 closes the connection before the last
/// chunk) and a cut-off answer cannot pass for a whole one; the completion record and
/// the node's log say why.
fn rest_of_answer(
    node: Arc<Node>,
    head: Vec<Bytes>,
    rest: Running,
    progress: Progress,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let head = futures::stream::iter(head.into_iter().map(Ok::<Bytes, std::io::Error>));
    let rest = futures::stream::unfold(Some(rest), move |running| {
        let (node, progress) = (node.clone(), progress.clone());
        async move {
            let mut running = running?;
            match running.next().await {
                Chunk::Data { bytes, rows } => {
                    progress.add_rows(rows);
                    Some((Ok(bytes), Some(running)))
                }
                Chunk::End { source_rows, .. } => {
                    count_source_rows(&node, &source_rows);
                    None
                }
                Chunk::Failed(e) => {
                    tracing::warn!(
                        code = e.code,
                        "a streamed query answer was cut off: {}",
                        e.message
                    );
                    let err = std::io::Error::other(format!("{}: {}", e.code, e.message));
                    progress.fail(e);
                    Some((Err(err), None))
                }
            }
        }
    });
    futures::StreamExt::chain(head, rest)
}

fn count_source_rows(node: &Node, source_rows: &BTreeMap<String, u64>) {
    for (source, rows) in source_rows {
        node.metrics
            .source_rows
            .get_or_create(&SourceLabels {
                source: source.clone(),
            })
            .inc_by(*rows);
    }
}

fn source_rows_text(source_rows: &BTreeMap<String, u64>) -> String {
    source_rows
        .iter()
        .map(|(s, n)| format!("{s}={n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
