//! `GET /v1/audit`, `/v1/audit/summary` and `/v1/audit/verify`, for auditors. Reading the
//! audit trail is itself audited.
//!
//! Every node keeps its own audit log, so the node asked fans out to all members over
//! mutual TLS (`POST /raft/audit`, node certificates only), each member searches,
//! summarises or verifies its own log, and the answers are merged: records by time,
//! summaries by department pair. A member that does not answer is listed with the
//! error and makes the answer `complete: false` rather than failing it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use yiwang_catalog::model::Role;
use yiwang_policies::Action;

use super::context::PeerNode;
use super::{ApiError, Audited, Caller, Query};
use crate::audit::{self, AuditQuery, Cursor, PairSummary, Pos, StoredRecord};
use crate::node::Node;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// The node-only route members answer each other's audit questions on.
pub const PATH_PEER_AUDIT: &str = "/raft/audit";
/// How long a member may take to search or verify its log.
const PEER_TIMEOUT: Duration = Duration::from_secs(60);

/// One question to one member about its own audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PeerAudit {
    Search {
        query: AuditQuery,
        scope: Option<String>,
        /// The last seq of this node already delivered.
        after: u64,
        limit: usize,
    },
    Summary {
        query: AuditQuery,
        scope: Option<String>,
    },
    Verify,
}

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

/// Checks and normalises the query parameters shared by search and summary.
fn checked_query(query: Result<Query<AuditQuery>, ApiError>) -> Result<AuditQuery, ApiError> {
    let Query(mut q) = query?;
    q.from = normalize_time("from", q.from)?;
    q.to = normalize_time("to", q.to)?;
    Ok(q)
}

/// Answers a question about this node's own log.
async fn local(node: &Node, op: PeerAudit) -> Result<Value, String> {
    let dir = node.audit.dir().to_path_buf();
    let log = node.audit.clone();
    let state = node.state.clone();
    let id = node.config.node_id;
    tokio::task::spawn_blocking(move || -> anyhow::Result<Value> {
        // Retention deletes no segment while we read, and any it deleted before is
        // under a cut the state already holds (it is applied before files go).
        let _segments = log.reading();
        Ok(match op {
            PeerAudit::Search {
                query,
                scope,
                after,
                limit,
            } => {
                serde_json::to_value(audit::search(&dir, &query, scope.as_deref(), after, limit)?)?
            }
            PeerAudit::Summary { query, scope } => {
                serde_json::to_value(audit::summarize(&dir, &query, scope.as_deref())?)?
            }
            PeerAudit::Verify => {
                // The head first: the log read after it must reach it.
                let head = log.head();
                let anchor = state.read().anchors.get(&id).cloned();
                let mut report = audit::verify_path(&dir, anchor.as_ref(), Some(&head))?;
                report.node.get_or_insert(id);
                serde_json::to_value(report)?
            }
        })
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("{e:#}"))
}

/// One member's answer.
struct Answer {
    node: u64,
    result: Result<Value, String>,
}

/// Asks every member (this node locally) the question `op` makes for it, and waits
/// for all answers.
async fn fan_out(node: &Node, op: impl Fn(u64) -> PeerAudit) -> Vec<Answer> {
    let me = node.config.node_id;
    let mut members: BTreeMap<u64, String> = node
        .membership()
        .nodes()
        .map(|(id, n)| (*id, n.addr.clone()))
        .collect();
    members.entry(me).or_default();
    let asks = members.into_iter().map(|(id, addr)| {
        let op = op(id);
        async move {
            let result = if id == me {
                local(node, op).await
            } else {
                ask_peer(node, &addr, &op).await
            };
            Answer { node: id, result }
        }
    });
    futures::future::join_all(asks).await
}

async fn ask_peer(node: &Node, addr: &str, op: &PeerAudit) -> Result<Value, String> {
    let url = format!("https://{addr}{PATH_PEER_AUDIT}");
    let mut trace = reqwest::header::HeaderMap::new();
    crate::telemetry::inject_current(&mut trace);
    let resp = node
        .peer
        .post(&url)
        .headers(trace)
        .json(op)
        .timeout(PEER_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("node at {addr} did not answer: {e}"))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("unreadable answer from the node at {addr}: {e}"))?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!(
            "node at {addr} answered {status}: {}",
            body["error"]["message"].as_str().unwrap_or("")
        ))
    }
}

/// The list each member that answered sent back (members that did not answer are
/// reported by [`node_list`]).
fn decode<T: serde::de::DeserializeOwned>(answers: &[Answer]) -> Result<Vec<Vec<T>>, ApiError> {
    answers
        .iter()
        .filter_map(|a| a.result.as_ref().ok().map(|v| (a.node, v)))
        .map(|(node, v)| {
            Vec::<T>::deserialize(v)
                .map_err(|e| ApiError::internal(format!("bad answer from node {node}: {e}")))
        })
        .collect()
}

/// `[{node, ok, error?}]` for the answers, and whether all came.
fn node_list(answers: &[Answer]) -> (Vec<Value>, bool) {
    let list = answers
        .iter()
        .map(|a| match &a.result {
            Ok(_) => json!({ "node": a.node, "ok": true }),
            Err(e) => json!({ "node": a.node, "ok": false, "error": e }),
        })
        .collect();
    (list, answers.iter().all(|a| a.result.is_ok()))
}

/// `POST /raft/audit`: another member asks about this node's log.
pub async fn peer(
    State(node): State<Arc<Node>>,
    peer: PeerNode,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let body = super::context::body_bytes(req, &node).await?;
    let op: PeerAudit = super::context::parse_json(&body)?;
    tracing::debug!(from = peer.0, "audit question {op:?}");
    local(&node, op)
        .await
        .map(Json)
        .map_err(|e| ApiError::internal(format!("cannot read the audit trail: {e}")))
}

pub async fn search(
    State(node): State<Arc<Node>>,
    caller: Caller,
    query: Result<Query<AuditQuery>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let mut record = Audited::new(&caller, "audit.search");
    let result = async {
        let scope = audit_scope(&node, &caller).await?;
        let q = checked_query(query)?;
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let mut cursor = match q.cursor.as_deref() {
            Some(c) => Cursor::parse(c).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("cursor '{c}' is not a next_cursor this API returned"),
                )
            })?,
            None => Cursor::default(),
        };
        let answers = fan_out(&node, |id| PeerAudit::Search {
            query: q.clone(),
            scope: scope.clone(),
            after: cursor.after(id),
            limit,
        })
        .await;
        let mut records: Vec<StoredRecord> = Vec::new();
        let mut more = false;
        for got in decode::<StoredRecord>(&answers)? {
            more |= got.len() >= limit;
            records.extend(got);
        }
        records.sort_by_cached_key(Pos::of);
        if records.len() > limit {
            records.truncate(limit);
            more = true;
        }
        for r in &records {
            let last = cursor.0.entry(r.record.node).or_default();
            *last = (*last).max(r.record.seq);
        }
        let next_cursor = more.then(|| cursor.to_string());
        let (nodes, complete) = node_list(&answers);
        Ok(json!({
            "records": records,
            "next_cursor": next_cursor,
            "complete": complete,
            "nodes": nodes,
        }))
    }
    .await;
    if let Ok(page) = &result {
        record.event.rows = page["records"].as_array().map_or(0, |r| r.len() as u64);
    }
    Ok(Json(record.finish(&node, result).await?))
}

pub async fn summary(
    State(node): State<Arc<Node>>,
    caller: Caller,
    query: Result<Query<AuditQuery>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let mut record = Audited::new(&caller, "audit.summary");
    let result = async {
        let scope = audit_scope(&node, &caller).await?;
        let q = checked_query(query)?;
        if q.limit.is_some() || q.cursor.is_some() {
            return Err(ApiError::bad_request(
                "invalid_query",
                "a summary has no pages: limit and cursor do not apply",
            ));
        }
        let (from, to) = (q.from.clone(), q.to.clone());
        let answers = fan_out(&node, |_| PeerAudit::Summary {
            query: q.clone(),
            scope: scope.clone(),
        })
        .await;
        let mut pairs: BTreeMap<(String, String), PairSummary> = BTreeMap::new();
        for p in decode::<PairSummary>(&answers)?.into_iter().flatten() {
            match pairs.entry((p.consumer.clone(), p.provider.clone())) {
                std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(p),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(p);
                }
            }
        }
        let (nodes, complete) = node_list(&answers);
        Ok(json!({
            "from": from,
            "to": to,
            "pairs": pairs.into_values().collect::<Vec<_>>(),
            "complete": complete,
            "nodes": nodes,
        }))
    }
    .await;
    if let Ok(s) = &result {
        record.event.rows = s["pairs"].as_array().map_or(0, |r| r.len() as u64);
    }
    Ok(Json(record.finish(&node, result).await?))
}

pub async fn verify(
    State(node): State<Arc<Node>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let record = Audited::new(&caller, "audit.verify");
    let result = async {
        audit_scope(&node, &caller).await?;
        let answers = fan_out(&node, |_| PeerAudit::Verify).await;
        let reports: Vec<Value> = answers
            .iter()
            .map(|a| match &a.result {
                Ok(v) => v.clone(),
                Err(e) => json!({
                    "node": a.node,
                    "ok": false,
                    "problem_count": 1,
                    "problems": [format!("not verified: {e}")],
                }),
            })
            .collect();
        let ok = reports.iter().all(|r| r["ok"] == true);
        Ok(json!({ "ok": ok, "nodes": reports }))
    }
    .await;
    Ok(Json(record.finish(&node, result).await?))
}
