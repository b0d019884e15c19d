//! `/raft/*`: Raft RPC from other nodes. Only node certificates get through
//! ([`PeerNode`]); the handlers are raft-store's.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::IntoResponse;
use yiwang_raft_store::network;

use super::ApiError;
use super::context::PeerNode;
use crate::node::Node;

fn reply(r: Result<Vec<u8>, serde_json::Error>) -> Result<impl IntoResponse, ApiError> {
    let body =
        r.map_err(|e| ApiError::bad_request("invalid_json", format!("bad raft message: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

pub async fn append(
    State(node): State<Arc<Node>>,
    peer: PeerNode,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    let body = super::context::body_bytes(req, &node).await?;
    tracing::trace!(from = peer.0, bytes = body.len(), "raft append");
    reply(network::handle_append(&node.raft, &body).await)
}

pub async fn vote(
    State(node): State<Arc<Node>>,
    peer: PeerNode,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    let body = super::context::body_bytes(req, &node).await?;
    tracing::trace!(from = peer.0, bytes = body.len(), "raft vote");
    reply(network::handle_vote(&node.raft, &body).await)
}

pub async fn snapshot(
    State(node): State<Arc<Node>>,
    peer: PeerNode,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    let body = super::context::body_bytes(req, &node).await?;
    tracing::trace!(from = peer.0, bytes = body.len(), "raft snapshot");
    reply(network::handle_snapshot(&node.raft, &body).await)
}

/// A follower forwarding a write, read barrier or membership change to this (leader) node.
pub async fn forward(
    State(node): State<Arc<Node>>,
    peer: PeerNode,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    let body = super::context::body_bytes(req, &node).await?;
    let op: crate::cluster::LeaderOp = super::context::parse_json(&body)?;
    tracing::debug!(from = peer.0, "forwarded {op:?}");
    // Read barriers from followers share the leader's confirmation rounds too.
    let result = match op {
        crate::cluster::LeaderOp::ReadIndex => node
            .read_index()
            .await
            .map(|index| crate::cluster::LeaderReply::ReadIndex { index })
            .map_err(|e| crate::cluster::ForwardError {
                status: e.status.as_u16(),
                code: e.code.into(),
                message: e.message,
            }),
        op => node.serve_forward(op).await,
    };
    Ok(axum::Json(result))
}

/// This node's Raft view, for `GET /v1/cluster` on other nodes.
pub async fn status(
    State(node): State<Arc<Node>>,
    _peer: PeerNode,
) -> axum::Json<serde_json::Value> {
    axum::Json(node.local_status())
}
