//! `GET /v1/audit` and `GET /v1/audit/verify`, for auditors. Reading the audit trail is
//! itself audited.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use yiwang_catalog::model::Role;
use yiwang_policies::Action;

use super::{ApiError, Audited, Caller, Query};
use crate::audit::{self, AuditQuery};
use crate::node::Node;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The records an auditor may see: all (`None`) for city-wide auditors, their own
/// department's for department auditors.
async fn audit_scope(node: &Node, caller: &Caller) -> Result<Option<String>, ApiError> {
    if node.state.read().has_role(caller.id(), Role::Auditor) {
        return Ok(None);
    }
    node.policy
        .require(&caller.principal, Action::Audit, None, caller.dept())
        .await?;
    Ok(Some(caller.dept().to_string()))
}

fn normalize_time(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    v.map(|t| {
        yiwang_catalog::clock::normalize(&t).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("{name} must be an RFC 3339 time or a date (YYYY-MM-DD), not '{t}'"),
            )
        })
    })
    .transpose()
}

pub async fn search(
    State(node): State<Arc<Node>>,
    caller: Caller,
    query: Result<Query<AuditQuery>, ApiError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut record = Audited::new(&caller, "audit.search");
    let result = async {
        let scope = audit_scope(&node, &caller).await?;
        let Query(mut q) = query?;
        q.from = normalize_time("from", q.from)?;
        q.to = normalize_time("to", q.to)?;
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let path = node.audit.path().to_path_buf();
        let page =
            tokio::task::spawn_blocking(move || audit::search(&path, &q, scope.as_deref(), limit))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
                .map_err(|e| ApiError::internal(format!("cannot read the audit trail: {e}")))?;
        Ok(page)
    }
    .await;
    if let Ok(page) = &result {
        record.event.rows = page.records.len() as u64;
    }
    let page = record.finish(&node, result).await?;
    Ok(Json(serde_json::json!({
        "records": page.records,
        "next_cursor": page.next_cursor,
    })))
}

pub async fn verify(
    State(node): State<Arc<Node>>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let record = Audited::new(&caller, "audit.verify");
    let result = async {
        audit_scope(&node, &caller).await?;
        let anchor = node.state.read().anchors.get(&node.config.node_id).cloned();
        let path = node.audit.path().to_path_buf();
        let report =
            tokio::task::spawn_blocking(move || audit::verify_file(&path, anchor.as_ref(), true))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
                .map_err(|e| ApiError::internal(format!("cannot verify the audit trail: {e}")))?;
        Ok(report)
    }
    .await;
    let report = record.finish(&node, result).await?;
    Ok(Json(serde_json::json!({
        "ok": report.ok,
        "nodes": [report],
    })))
}
