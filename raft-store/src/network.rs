//! Raft RPC between nodes: JSON over HTTPS with node certificates.
//!
//! The client side implements openraft's network traits on a `reqwest::Client` that the
//! gateway builds with the node's own certificate (mutual TLS); the server side is three
//! handler functions the gateway mounts under `/raft/*` behind a check that the caller
//! is a node. A peer that cannot be reached is reported as `Unreachable`, which makes
//! openraft back off for that peer without holding up the others.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Node, NodeId, Raft, TypeConfig};

/// Paths of the three RPCs under the API listener.
pub const PATH_APPEND: &str = "/raft/append";
pub const PATH_VOTE: &str = "/raft/vote";
pub const PATH_SNAPSHOT: &str = "/raft/snapshot";

/// Builds connections to peers; one shared HTTP client (with its connection pool).
#[derive(Clone)]
pub struct Network {
    client: reqwest::Client,
}

impl Network {
    /// `client` must present this node's certificate and trust the cluster CA.
    pub fn new(client: reqwest::Client) -> Network {
        Network { client }
    }
}

/// A connection to one peer.
pub struct Connection {
    client: reqwest::Client,
    target: NodeId,
    base: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Connection {
        Connection {
            client: self.client.clone(),
            target,
            base: format!("https://{}", node.addr),
        }
    }
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, Node, E>>;

impl Connection {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("{}{}", self.base, path);
        let resp = self
            .client
            .post(&url)
            .timeout(timeout)
            .json(req)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() || e.is_timeout() {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                }
            })?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            let err = std::io::Error::other(format!("{url}: {status}: {body}"));
            return Err(RPCError::Network(NetworkError::new(&err)));
        }
        let result: Result<Resp, E> = resp
            .json()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        self.call(PATH_APPEND, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.call(PATH_SNAPSHOT, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        self.call(PATH_VOTE, &rpc, option.hard_ttl()).await
    }
}

/// Server side of `/raft/append`: the JSON result (`{"Ok":…}` or `{"Err":…}`).
pub async fn handle_append(raft: &Raft, body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let req: AppendEntriesRequest<TypeConfig> = serde_json::from_slice(body)?;
    serde_json::to_vec(&raft.append_entries(req).await)
}

/// Server side of `/raft/vote`.
pub async fn handle_vote(raft: &Raft, body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let req: VoteRequest<NodeId> = serde_json::from_slice(body)?;
    serde_json::to_vec(&raft.vote(req).await)
}

/// Server side of `/raft/snapshot` (one chunk of a snapshot).
pub async fn handle_snapshot(raft: &Raft, body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let req: InstallSnapshotRequest<TypeConfig> = serde_json::from_slice(body)?;
    serde_json::to_vec(&raft.install_snapshot(req).await)
}
