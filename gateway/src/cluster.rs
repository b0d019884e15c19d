//! Operations that only the Raft leader can perform, and their forwarding.
//!
//! Any node serves every request. A write, a linearizable read barrier or a membership
//! change that arrives at a follower is forwarded, as a [`LeaderOp`], to the leader's
//! `/raft/forward` endpoint over mutual TLS with this node's certificate; the leader
//! runs it and answers with the log index, and the follower waits until its own state
//! has applied that index before it answers the client. So a client sees its own write
//! on whichever node it asks next, and reads are linearizable on every node.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::http::StatusCode;
use openraft::error::{ChangeMembershipError, CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::node::Node;

/// What a follower asks the leader to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LeaderOp {
    /// Commit a catalog command.
    Write { command: serde_json::Value },
    /// Confirm leadership with a quorum and return the index a linearizable read must
    /// wait for.
    ReadIndex,
    /// Add a node as a learner; returns once it has caught up.
    AddLearner { id: u64, addr: String },
    /// Promote learners to voters (joint consensus).
    AddVoters { ids: BTreeSet<u64> },
    /// Remove a node: demote it if it votes, then drop it from the membership.
    Remove { id: u64 },
}

/// The leader's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum LeaderReply {
    /// The log index that holds the result, and the apply result.
    Written {
        index: u64,
        data: serde_json::Value,
    },
    ReadIndex {
        index: u64,
    },
    Membership {
        index: u64,
    },
}

/// An error carried back from the leader as an HTTP error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// Why a local attempt did not produce an answer.
enum Attempt {
    /// Not the leader; the leader if known.
    NotLeader(Option<BasicNode>),
    /// Worth another try within the patience window (e.g. a quorum not confirmed in
    /// time under load); the error is reported if patience runs out.
    Retry(ApiError),
    Failed(ApiError),
}

fn membership_error(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> Attempt {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            Attempt::NotLeader(f.leader_node)
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
            let message = match &c {
                ChangeMembershipError::LearnerNotFound(l) => {
                    format!(
                        "node {} is not a learner yet: add it with `yiwang cluster add-learner` first",
                        l.node_id
                    )
                }
                ChangeMembershipError::EmptyMembership(_) => {
                    "the change would leave the cluster without voters".into()
                }
                ChangeMembershipError::InProgress(_) => {
                    "another membership change is in progress; retry when it completes".into()
                }
            };
            Attempt::Failed(ApiError::new(StatusCode::CONFLICT, "conflict", message))
        }
        other => Attempt::Failed(ApiError::unavailable(format!("raft: {other}"))),
    }
}

impl Node {
    /// Runs `op` on the leader — here, or forwarded — and returns its answer. While no
    /// leader is known (an election), it retries for up to a few election timeouts.
    pub async fn on_leader(&self, op: LeaderOp) -> Result<LeaderReply, ApiError> {
        let patience = Duration::from_millis(self.config.raft.election_timeout_max_ms * 4)
            .max(Duration::from_secs(5));
        let deadline = tokio::time::Instant::now() + patience;
        let mut last_error: Option<ApiError> = None;
        loop {
            let leader = match self.run_local(&op).await {
                Ok(reply) => return Ok(reply),
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Retry(e)) => {
                    last_error = Some(e);
                    None
                }
                Err(Attempt::NotLeader(leader)) => leader,
            };
            if let Some(leader) = leader {
                match self.forward(&leader, &op).await {
                    Ok(reply) => return Ok(reply),
                    Err(Some(e)) => return Err(e),
                    // Not delivered (connection refused, leader gone): try again.
                    Err(None) => {}
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(last_error.unwrap_or_else(|| {
                    ApiError::unavailable(format!(
                        "no reachable leader within {patience:?}; the cluster may have lost its quorum"
                    ))
                }));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The cluster's membership as this node knows it (voters, learners, addresses).
    pub fn membership(&self) -> openraft::Membership<u64, BasicNode> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .clone()
    }

    /// Refuses a learner whose address is another member's, or at which another node
    /// answers: Raft would then send a node its own messages under a second id (found
    /// by schemathesis: adding this node's own address as a new learner panicked the
    /// Raft core).
    async fn check_new_member(&self, id: u64, addr: &str) -> Result<(), ApiError> {
        let conflict = |msg: String| ApiError::new(StatusCode::CONFLICT, "conflict", msg);
        for (member, node) in self.membership().nodes() {
            if *member != id && node.addr == addr {
                return Err(conflict(format!(
                    "{addr} is the address of node {member}; a node is added with its own address"
                )));
            }
        }
        if id == self.config.node_id || addr == self.config.advertise_addr() {
            return Err(conflict(format!(
                "node {} at {} is this node, already a member",
                self.config.node_id,
                self.config.advertise_addr()
            )));
        }
        // Whoever answers at the address must be node `id` (an unreachable node is
        // allowed: it may not be started yet; it will have to be this one to join).
        let url = format!("https://{addr}/raft/status");
        if let Ok(Ok(resp)) = tokio::time::timeout(
            Duration::from_secs(2),
            self.peer.get(&url).timeout(Duration::from_secs(2)).send(),
        )
        .await
            && let Ok(status) = resp.json::<serde_json::Value>().await
            && let Some(there) = status["node"].as_u64()
            && there != id
        {
            return Err(conflict(format!(
                "node {there} answers at {addr}, not node {id}"
            )));
        }
        Ok(())
    }

    /// Runs `op` if this node is the leader.
    async fn run_local(&self, op: &LeaderOp) -> Result<LeaderReply, Attempt> {
        match op {
            LeaderOp::Write { command } => {
                // Through the proposer: concurrent writes share one Raft entry.
                let write =
                    tokio::time::timeout(COMMIT_TIMEOUT, self.proposer.propose(command.clone()));
                match write.await {
                    Ok(Ok(c)) => Ok(LeaderReply::Written {
                        index: c.index,
                        data: c.response,
                    }),
                    Ok(Err(e)) => Err(membership_error(e)),
                    Err(_) => Err(Attempt::Failed(ApiError::unavailable(format!(
                        "the write was not committed within {COMMIT_TIMEOUT:?}: this node may be cut off from the cluster's majority; its outcome is unknown"
                    )))),
                }
            }
            LeaderOp::ReadIndex => {
                if let Some(index) = self.leased_read_index() {
                    return Ok(LeaderReply::ReadIndex { index });
                }
                let term = self.raft.metrics().borrow().current_term;
                let started = tokio::time::Instant::now();
                self.confirmed_read_index(term, started).await
            }
            LeaderOp::AddLearner { id, addr } => {
                if let Err(e) = self.check_new_member(*id, addr).await {
                    return Err(Attempt::Failed(e));
                }
                let node = BasicNode { addr: addr.clone() };
                match self.raft.add_learner(*id, node, true).await {
                    Ok(resp) => Ok(LeaderReply::Membership {
                        index: resp.log_id.index,
                    }),
                    Err(e) => Err(membership_error(e)),
                }
            }
            LeaderOp::AddVoters { ids } => {
                // A learner that has not caught up (or cannot be reached) would count
                // in the quorum from the moment it is a voter: promoting it can leave the
                // cluster unable to commit. Wait a little for it to catch up, else refuse.
                let waited_until = tokio::time::Instant::now() + PROMOTE_WAIT;
                loop {
                    match self.learners_behind(ids) {
                        None => break,
                        Some(_) if tokio::time::Instant::now() < waited_until => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Some(why) => {
                            return Err(Attempt::Failed(ApiError::new(
                                StatusCode::CONFLICT,
                                "conflict",
                                format!(
                                    "{why} after {PROMOTE_WAIT:?}; promoting it now could leave the cluster without a quorum — wait until it has caught up"
                                ),
                            )));
                        }
                    }
                }
                match self
                    .raft
                    .change_membership(ChangeMembers::AddVoterIds(ids.clone()), false)
                    .await
                {
                    Ok(resp) => Ok(LeaderReply::Membership {
                        index: resp.log_id.index,
                    }),
                    Err(e) => Err(membership_error(e)),
                }
            }
            LeaderOp::Remove { id } => {
                let m = self.membership();
                if !m.nodes().any(|(n, _)| n == id) {
                    return Err(Attempt::Failed(ApiError::not_found(format!(
                        "node {id} is not a member"
                    ))));
                }
                let mut index = 0;
                if m.voter_ids().any(|v| v == *id) {
                    let set: BTreeSet<u64> = [*id].into();
                    match self
                        .raft
                        .change_membership(ChangeMembers::RemoveVoters(set), true)
                        .await
                    {
                        Ok(resp) => index = resp.log_id.index,
                        Err(e) => return Err(membership_error(e)),
                    }
                }
                let set: BTreeSet<u64> = [*id].into();
                match self
                    .raft
                    .change_membership(ChangeMembers::RemoveNodes(set), false)
                    .await
                {
                    Ok(resp) => Ok(LeaderReply::Membership {
                        index: resp.log_id.index.max(index),
                    }),
                    Err(e) => Err(membership_error(e)),
                }
            }
        }
    }

    /// The read index from a quorum round started at `started` in `term`; a successful
    /// round renews the read lease.
    async fn confirmed_read_index(
        &self,
        term: u64,
        started: tokio::time::Instant,
    ) -> Result<LeaderReply, Attempt> {
        match self.confirm_leadership().await {
            Ok((read, _applied)) => {
                self.renew_lease(term, started);
                Ok(LeaderReply::ReadIndex {
                    index: read.map_or(0, |l| l.index),
                })
            }
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(Attempt::NotLeader(f.leader_node))
            }
            Err(e) => Err(Attempt::Retry(ApiError::unavailable(format!(
                "cannot confirm leadership for a linearizable read: {e}; add ?consistency=stale to read locally"
            )))),
        }
    }

    /// Confirms leadership with a quorum (bounded in time: a leader cut off from its
    /// majority must not hang readers).
    async fn confirm_leadership(
        &self,
    ) -> Result<
        (Option<openraft::LogId<u64>>, Option<openraft::LogId<u64>>),
        RaftError<u64, CheckIsLeaderError<u64, BasicNode>>,
    > {
        let patience = Duration::from_millis(self.config.raft.election_timeout_max_ms * 2)
            .max(Duration::from_secs(2));
        match tokio::time::timeout(patience, self.raft.get_read_log_id()).await {
            Ok(r) => r,
            Err(_) => Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(
                openraft::error::QuorumNotEnough {
                    cluster: format!("no quorum confirmed leadership within {patience:?}"),
                    got: BTreeSet::new(),
                },
            ))),
        }
    }

    /// Why one of `ids` (a learner) may not be promoted yet: it has received none of the
    /// log or is more than [`PROMOTE_MAX_LAG`] entries behind; `None` when all may.
    fn learners_behind(&self, ids: &BTreeSet<u64>) -> Option<String> {
        let metrics = self.raft.metrics().borrow().clone();
        let last = metrics.last_log_index.unwrap_or(0);
        let members = metrics.membership_config.membership().clone();
        for id in ids {
            if !members.learner_ids().any(|l| l == *id) {
                continue; // openraft names unknown ids itself
            }
            let matched = metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(id).cloned())
                .flatten()
                .map(|l| l.index);
            match matched.map(|m| last.saturating_sub(m)) {
                None => {
                    return Some(format!(
                        "learner {id} has not received any of the log (is it reachable?)"
                    ));
                }
                Some(behind) if behind > PROMOTE_MAX_LAG => {
                    return Some(format!(
                        "learner {id} is {behind} entries behind the leader"
                    ));
                }
                Some(_) => {}
            }
        }
        None
    }

    /// Sends `op` to the leader. `Err(None)` means it was certainly not delivered.
    async fn forward(
        &self,
        leader: &BasicNode,
        op: &LeaderOp,
    ) -> Result<LeaderReply, Option<ApiError>> {
        let url = format!("https://{}{}", leader.addr, PATH_FORWARD);
        let mut trace = reqwest::header::HeaderMap::new();
        crate::telemetry::inject_current(&mut trace);
        let resp = match self
            .peer
            .post(&url)
            .headers(trace)
            .json(op)
            .timeout(FORWARD_TIMEOUT)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Err(None),
            Err(e) => {
                return Err(Some(ApiError::unavailable(format!(
                    "the leader at {} did not answer: {e}; the outcome is unknown",
                    leader.addr
                ))));
            }
        };
        let status = resp.status();
        let body: Result<Result<LeaderReply, ForwardError>, _> = resp.json().await;
        match body {
            Ok(Ok(reply)) => Ok(reply),
            // The node we asked is no longer the leader: ask again.
            Ok(Err(e)) if e.code == "not_leader" => Err(None),
            Ok(Err(e)) => Err(Some(ApiError::new(
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY),
                leak(e.code),
                e.message,
            ))),
            Err(e) => Err(Some(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                format!(
                    "unreadable answer ({status}) from the leader at {}: {e}",
                    leader.addr
                ),
            ))),
        }
    }

    /// Server side of `/raft/forward`: run here, or say who the leader is.
    pub async fn serve_forward(&self, op: LeaderOp) -> Result<LeaderReply, ForwardError> {
        match self.run_local(&op).await {
            Ok(reply) => {
                // The follower that forwarded this waits until it has applied the entry,
                // and followers learn the commit index from the next AppendEntries: send
                // one now rather than at the next heartbeat.
                if matches!(
                    reply,
                    LeaderReply::Written { .. } | LeaderReply::Membership { .. }
                ) {
                    let _ = self.raft.trigger().heartbeat().await;
                }
                Ok(reply)
            }
            Err(Attempt::NotLeader(_)) => Err(ForwardError {
                status: 503,
                code: "not_leader".into(),
                message: "this node is no longer the leader".into(),
            }),
            Err(Attempt::Failed(e) | Attempt::Retry(e)) => Err(ForwardError {
                status: e.status.as_u16(),
                code: e.code.into(),
                message: e.message,
            }),
        }
    }

    /// Initialises a new cluster with this node as its only voter.
    pub async fn init_cluster(&self) -> Result<(), ApiError> {
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "this node already belongs to a cluster",
            ));
        }
        let mut members = BTreeMap::new();
        members.insert(
            self.config.node_id,
            BasicNode {
                addr: self.config.advertise_addr(),
            },
        );
        self.raft.initialize(members).await.map_err(|e| {
            ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("cannot initialise: {e}"),
            )
        })
    }
}

/// The forwarding endpoint, under the node-only `/raft/` prefix.
pub const PATH_FORWARD: &str = "/raft/forward";
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a leader waits for a write to commit before answering 503.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A learner further behind the leader's log than this is not promoted to voter.
const PROMOTE_MAX_LAG: u64 = 1000;

/// How long a promotion waits for its learners to catch up before it is refused.
const PROMOTE_WAIT: Duration = Duration::from_secs(10);

/// Error codes come back as strings; the API error type wants a static code. The set
/// of codes is small and fixed, so map the known ones and fall back to a generic code.
fn leak(code: String) -> &'static str {
    const KNOWN: [&str; 10] = [
        "invalid_input",
        "not_found",
        "conflict",
        "forbidden",
        "unavailable",
        "internal",
        "invalid_json",
        "payload_too_large",
        "bad_gateway",
        "not_leader",
    ];
    KNOWN
        .into_iter()
        .find(|k| *k == code)
        .unwrap_or("upstream_error")
}
