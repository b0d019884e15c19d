//! `/v1/cluster`: status for anyone, membership changes and backups for admins.
//! Membership changes run on the leader (forwarded from any node) through openraft's
//! joint consensus.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use yiwang_policies::Action;

use super::context::OptionalJsonBody;
use super::{ApiError, Audited, Caller, JsonBody};
use crate::cluster::{LeaderOp, LeaderReply};
use crate::node::Node;

/// Best effort: after a read barrier when the cluster has a quorum (so a member added a
/// moment ago is listed), from local state when it has not — status is most needed
/// exactly when something is wrong.
pub async fn status(State(node): State<Arc<Node>>, _caller: Caller) -> Json<serde_json::Value> {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), node.read_barrier(false)).await;
    Json(node.cluster_status().await)
}

async fn admin(node: &Node, caller: &Caller) -> Result<(), ApiError> {
    node.policy
        .require(&caller.principal, Action::Manage, None, "*")
        .await?;
    Ok(())
}

async fn membership(
    node: &Node,
    caller: &Caller,
    action: &str,
    op: Result<LeaderOp, ApiError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut audit = Audited::new(caller, action);
    let result = async {
        admin(node, caller).await?;
        let op = op?;
        audit.event.reason = format!("{op:?}");
        match node.on_leader(op).await? {
            LeaderReply::Membership { index } => {
                node.wait_applied(index).await;
                Ok(node.cluster_status().await)
            }
            other => Err(ApiError::internal(format!("unexpected reply {other:?}"))),
        }
    }
    .await;
    Ok(Json(audit.finish(node, result).await?))
}

pub async fn init(
    State(node): State<Arc<Node>>,
    caller: Caller,
    _body: Result<OptionalJsonBody<serde_json::Value>, ApiError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let audit = Audited::new(&caller, "cluster.init");
    let result = async {
        admin(&node, &caller).await?;
        node.init_cluster().await?;
        node.wait_ready(std::time::Duration::from_secs(10))
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        Ok(node.cluster_status().await)
    }
    .await;
    Ok(Json(audit.finish(&node, result).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnerInput {
    pub id: u64,
    /// `host:port` of the new node's API listener, as other nodes reach it.
    pub addr: String,
}

pub async fn add_learner(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: Result<JsonBody<LearnerInput>, ApiError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let op = body.and_then(|JsonBody(b)| {
        if b.id == 0 {
            return Err(ApiError::bad_request(
                "invalid_input",
                "invalid id: node ids start at 1",
            ));
        }
        if b.addr.parse::<std::net::SocketAddr>().is_err() && !b.addr.contains(':') {
            return Err(ApiError::bad_request(
                "invalid_input",
                format!("invalid addr: '{}' is not host:port", b.addr),
            ));
        }
        Ok(LeaderOp::AddLearner {
            id: b.id,
            addr: b.addr,
        })
    });
    membership(&node, &caller, "cluster.add_learner", op).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VotersInput {
    pub ids: BTreeSet<u64>,
}

pub async fn promote(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: Result<JsonBody<VotersInput>, ApiError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let op = body.and_then(|JsonBody(b)| {
        if b.ids.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_input",
                "invalid ids: name at least one learner",
            ));
        }
        Ok(LeaderOp::AddVoters { ids: b.ids })
    });
    membership(&node, &caller, "cluster.promote", op).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveInput {
    pub id: u64,
}

pub async fn remove(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: Result<JsonBody<RemoveInput>, ApiError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let op = body.map(|JsonBody(b)| LeaderOp::Remove { id: b.id });
    membership(&node, &caller, "cluster.remove", op).await
}

/// A consistent copy of the catalog: taken after a linearizable read barrier, so it
/// holds every write acknowledged before the request. With `?consistency=stale` it is
/// this node's own state, without a quorum (disaster recovery), and says so.
pub async fn backup(
    State(node): State<Arc<Node>>,
    consistency: Option<axum::Extension<super::context::ReadConsistency>>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let stale = consistency.is_some_and(|c| c.stale);
    let mut audit = Audited::new(&caller, "cluster.backup");
    let result = async {
        admin(&node, &caller).await?;
        // The index is read after the copy, so the copy holds everything up to at
        // least the barrier and the recorded index is never below what it holds.
        let state = node.state.read().clone();
        let applied = *node.applied.borrow();
        Ok(serde_json::json!({
            "format": crate::backup::FORMAT,
            "taken_at": yiwang_catalog::clock::now(),
            "node": node.config.node_id,
            "applied_index": applied,
            "consistency": if stale { "stale" } else { "linearizable" },
            "state": state,
        }))
    }
    .await;
    if let Ok(b) = &result {
        audit.event.reason = format!("backup at index {}", b["applied_index"]);
    }
    Ok(Json(audit.finish(&node, result).await?))
}
