//! NDJSON bulk imports, shared by datasets and departments: one object a line, as the
//! single-item POST takes it. Lines that fail to parse or validate change nothing and
//! are reported with their error; valid lines are committed in batches through Raft.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ApiError, context::parse_json};

/// The result of one line.
#[derive(Debug, Serialize)]
pub struct LineResult {
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct BulkReport {
    pub created: usize,
    pub failed: usize,
    pub results: Vec<LineResult>,
}

fn error_json(e: &ApiError) -> serde_json::Value {
    serde_json::json!({"code": e.code, "message": e.message})
}

/// Runs an import. `check` validates and authorises one parsed line (returning its id);
/// `commit` proposes a batch and returns each item's outcome (its id, or the error).
pub async fn import<T, C, F, Fut>(
    body: &[u8],
    batch: usize,
    check: C,
    mut commit: F,
) -> Result<BulkReport, ApiError>
where
    T: DeserializeOwned,
    C: Fn(&T) -> Result<String, ApiError>,
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Result<Vec<Result<String, ApiError>>, ApiError>>,
{
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("body is not UTF-8: {e}")))?;
    let mut results: Vec<LineResult> = Vec::new();
    let mut pending: Vec<(usize, T)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = parse_json::<T>(line.as_bytes()).and_then(|item| check(&item).map(|_| item));
        match parsed {
            Ok(item) => pending.push((line_no, item)),
            Err(e) => results.push(LineResult {
                line: line_no,
                id: None,
                status: "failed",
                error: Some(error_json(&e)),
            }),
        }
    }
    if results.is_empty() && pending.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "body has no NDJSON lines",
        ));
    }
    while !pending.is_empty() {
        let rest = pending.split_off(pending.len().min(batch));
        let chunk = std::mem::replace(&mut pending, rest);
        let (lines, items): (Vec<usize>, Vec<T>) = chunk.into_iter().unzip();
        let outcomes = commit(items).await?;
        for (line, outcome) in lines.into_iter().zip(outcomes) {
            results.push(match outcome {
                Ok(id) => LineResult {
                    line,
                    id: Some(id),
                    status: "created",
                    error: None,
                },
                Err(e) => LineResult {
                    line,
                    id: None,
                    status: "failed",
                    error: Some(error_json(&e)),
                },
            });
        }
    }
    results.sort_by_key(|r| r.line);
    let created = results.iter().filter(|r| r.status == "created").count();
    Ok(BulkReport {
        created,
        failed: results.len() - created,
        results,
    })
}
