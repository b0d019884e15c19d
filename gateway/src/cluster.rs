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
    /// Commit several commands, each with its own outcome: a follower's concurrent
    /// writes travel to the leader together (see [`run_forwarder`]).
    Writes { commands: Vec<serde_json::Value> },
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
    /// The outcome of each command of a [`LeaderOp::Writes`], in order.
    WrittenEach {
        results: Vec<Result<Written, ForwardError>>,
    },
    Membership {
        index: u64,
    },
}

/// One committed command of a [`LeaderReply::WrittenEach`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Written {
    pub index: u64,
    pub data: serde_json::Value,
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
                let forwarded = match &op {
                    LeaderOp::Write { command } => {
                        self.forward_write(leader, command.clone()).await
                    }
                    op => self.forward(&leader, op).await,
                };
                match forwarded {
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
                if let Some(not_leader) = self.not_leader() {
                    return Err(not_leader);
                }
                self.write_local(command.clone())
                    .await
                    .map(|w| LeaderReply::Written {
                        index: w.index,
                        data: w.data,
                    })
            }
            LeaderOp::Writes { commands } => {
                // Not the leader: say so once, so the follower asks the right node.
                if let Some(Attempt::NotLeader(l)) = self.not_leader() {
                    return Err(Attempt::NotLeader(l));
                }
                let writes = commands.iter().map(|c| self.write_local(c.clone()));
                let results = futures::future::join_all(writes).await;
                Ok(LeaderReply::WrittenEach {
                    results: results
                        .into_iter()
                        .map(|r| r.map_err(forward_error))
                        .collect(),
                })
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

    /// Proposes one command on this node, the leader, through the proposer: concurrent
    /// writes share one Raft entry.
    async fn write_local(&self, command: serde_json::Value) -> Result<Written, Attempt> {
        let write = tokio::time::timeout(COMMIT_TIMEOUT, self.proposer.propose(command));
        match write.await {
            Ok(Ok(c)) => Ok(Written {
                index: c.index,
                data: c.response,
            }),
            Ok(Err(e)) => Err(membership_error(e)),
            Err(_) => Err(Attempt::Failed(ApiError::unavailable(format!(
                "the write was not committed within {COMMIT_TIMEOUT:?}: this node may be cut off from the cluster's majority; its outcome is unknown"
            )))),
        }
    }

    /// `Some(NotLeader)` when another node leads (or none is known).
    fn not_leader(&self) -> Option<Attempt> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.current_leader == Some(self.config.node_id) {
            return None;
        }
        let leader = m
            .current_leader
            .and_then(|id| m.membership_config.membership().get_node(&id).cloned());
        Some(Attempt::NotLeader(leader))
    }

    /// Forwards a write to `leader` together with the other writes this node forwards
    /// at the same moment (one `/raft/forward` request for all of them).
    async fn forward_write(
        &self,
        leader: BasicNode,
        command: serde_json::Value,
    ) -> Result<LeaderReply, Option<ApiError>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let item = Forwarded {
            leader,
            command,
            reply,
        };
        if self.forwarder.send(item).is_err() {
            return Err(Some(ApiError::unavailable(
                "the write forwarder has stopped",
            )));
        }
        rx.await.unwrap_or_else(|_| {
            Err(Some(ApiError::unavailable(
                "the write forwarder has stopped",
            )))
        })
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
        if status == StatusCode::BAD_REQUEST {
            // The leader could not read the request (e.g. an operation it predates).
            let text = resp.text().await.unwrap_or_default();
            return Err(Some(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                format!(
                    "the leader at {} refused the forwarded request: {text}",
                    leader.addr
                ),
            )));
        }
        let body: Result<Result<LeaderReply, ForwardError>, _> = resp.json().await;
        match body {
            Ok(Ok(reply)) => Ok(reply),
            // The node we asked is no longer the leader: ask again.
            Ok(Err(e)) => Err(forward_reply_error(e)),
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
                // one now rather than at the next heartbeat — once per index, however
                // many forwarded commands share the entry.
                let index = match &reply {
                    LeaderReply::Written { index, .. } | LeaderReply::Membership { index } => {
                        Some(*index)
                    }
                    LeaderReply::WrittenEach { results } => results
                        .iter()
                        .filter_map(|r| r.as_ref().ok())
                        .map(|w| w.index)
                        .max(),
                    LeaderReply::ReadIndex { .. } => None,
                };
                if let Some(index) = index
                    && self
                        .heartbeat_sent_for
                        .fetch_max(index, std::sync::atomic::Ordering::AcqRel)
                        < index
                {
                    let _ = self.raft.trigger().heartbeat().await;
                }
                Ok(reply)
            }
            Err(a) => Err(forward_error(a)),
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

/// How a leader reports a failed attempt to the follower that forwarded it.
fn forward_error(a: Attempt) -> ForwardError {
    match a {
        Attempt::NotLeader(_) => ForwardError {
            status: 503,
            code: "not_leader".into(),
            message: "this node is no longer the leader".into(),
        },
        Attempt::Failed(e) | Attempt::Retry(e) => ForwardError {
            status: e.status.as_u16(),
            code: e.code.into(),
            message: e.message,
        },
    }
}

/// A write waiting to be forwarded to the leader.
pub(crate) struct Forwarded {
    leader: BasicNode,
    command: serde_json::Value,
    reply: tokio::sync::oneshot::Sender<Result<LeaderReply, Option<ApiError>>>,
}

/// Forwarded writes in one `/raft/forward` request at most.
const FORWARD_BATCH: usize = 64;
/// `/raft/forward` requests of batched writes in flight at once, per node.
const FORWARDS_IN_FLIGHT: usize = 2;

/// Forwards this follower's writes to the leader, batching those that queue up while
/// earlier ones are in flight: one request, TLS record and JSON body for many writes,
/// and the leader proposes them together. The same idea as the leader's proposer,
/// one hop earlier.
pub(crate) async fn run_forwarder(
    node: std::sync::Weak<Node>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<Forwarded>,
) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(FORWARDS_IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < FORWARD_BATCH {
            match queue.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        let Some(node) = node.upgrade() else { return };
        tokio::spawn(async move {
            // Nearly always one leader; group in case it changed between two writes.
            let mut groups: Vec<(BasicNode, Vec<Forwarded>)> = Vec::new();
            for f in batch {
                match groups.iter_mut().find(|(l, _)| l.addr == f.leader.addr) {
                    Some((_, g)) => g.push(f),
                    None => groups.push((f.leader.clone(), vec![f])),
                }
            }
            for (leader, group) in groups {
                node.forward_group(&leader, group).await;
            }
            drop(slot);
        });
    }
}

impl Node {
    /// Sends a group of writes to `leader` and answers each.
    async fn forward_group(&self, leader: &BasicNode, mut group: Vec<Forwarded>) {
        if group.len() == 1 {
            let Some(f) = group.pop() else { return };
            let op = LeaderOp::Write { command: f.command };
            let _ = f.reply.send(self.forward(leader, &op).await);
            return;
        }
        let (commands, replies): (Vec<_>, Vec<_>) =
            group.into_iter().map(|f| (f.command, f.reply)).unzip();
        let n = commands.len();
        let op = LeaderOp::Writes { commands };
        match self.forward(leader, &op).await {
            Ok(LeaderReply::WrittenEach { results }) if results.len() == n => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let answer = match result {
                        Ok(w) => Ok(LeaderReply::Written {
                            index: w.index,
                            data: w.data,
                        }),
                        Err(e) => Err(forward_reply_error(e)),
                    };
                    let _ = reply.send(answer);
                }
            }
            // A leader of an earlier version (during a rolling upgrade) does not know
            // `writes`: forward them one by one.
            Err(Some(e)) if e.status == StatusCode::BAD_REQUEST => {
                let LeaderOp::Writes { commands } = op else {
                    return;
                };
                for (command, reply) in commands.into_iter().zip(replies) {
                    let op = LeaderOp::Write { command };
                    let _ = reply.send(self.forward(leader, &op).await);
                }
            }
            Ok(other) => {
                let e = ApiError::internal(format!(
                    "the leader answered {n} forwarded writes with {other:?}"
                ));
                for reply in replies {
                    let _ = reply.send(Err(Some(e.clone())));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The leader's answer to one forwarded command as `forward` reports it: `None` when
/// the node asked was not the leader (ask again).
fn forward_reply_error(e: ForwardError) -> Option<ApiError> {
    if e.code == "not_leader" {
        return None;
    }
    Some(ApiError::new(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY),
        leak(e.code),
        e.message,
    ))
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
