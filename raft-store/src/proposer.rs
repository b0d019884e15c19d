//! Proposal batching on the leader: concurrent commands share one Raft entry.
//!
//! Each Raft entry costs the same whatever it carries: an fsynced log append on the
//! leader (openraft 0.9 awaits it inside its core loop, one entry after the other), an
//! AppendEntries round trip and an fsync on each follower, and a state-machine
//! transaction on every node. Under concurrent writes that fixed cost, not the
//! commands, bounded the catalog's write rate. The [`Proposer`] therefore keeps at most
//! [`IN_FLIGHT`] entry of its own in flight; commands that arrive meanwhile wait and
//! leave together, as one [batch](encode_batch) entry, when it completes (group
//! commit). A lone command is proposed at once, as before, so an idle cluster adds no
//! latency; batches grow only as fast as commands queue up.
//!
//! The state machine applies a batch's commands in order, in the transaction of the
//! entry, exactly as it would apply them as consecutive entries; each command gets its
//! own response, and all share the entry's log index.

use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::{Node, NodeId, Raft};

/// Entries of batched commands in flight at once. One gives the largest batches: in an
/// A/B on three local nodes (2026-12-02), registrations at 16 clients ran 10–15%
/// faster than with two, and as fast at 256.
pub const IN_FLIGHT: usize = 1;
/// At most this many commands share an entry.
pub const MAX_COMMANDS: usize = 256;
/// A batch stops growing at this many bytes of encoded commands, so AppendEntries stay
/// small enough to cross within openraft's per-message budget (the heartbeat interval).
pub const MAX_BYTES: usize = 256 << 10;

/// The key of a batch entry: `{"batch": [command, …]}`. No application command has it
/// as its only key (the catalog's commands are tagged with `"op"`).
const BATCH_KEY: &str = "batch";

/// Wraps commands into one batch entry.
pub fn encode_batch(commands: Vec<serde_json::Value>) -> serde_json::Value {
    let mut m = serde_json::Map::with_capacity(1);
    m.insert(BATCH_KEY.into(), serde_json::Value::Array(commands));
    serde_json::Value::Object(m)
}

/// The commands of a batch entry, or `Err(command)` for a plain one.
pub fn decode_batch(entry: serde_json::Value) -> Result<Vec<serde_json::Value>, serde_json::Value> {
    match entry {
        serde_json::Value::Object(mut m)
            if m.len() == 1 && matches!(m.get(BATCH_KEY), Some(serde_json::Value::Array(_))) =>
        {
            match m.remove(BATCH_KEY) {
                Some(serde_json::Value::Array(commands)) => Ok(commands),
                _ => unreachable!("checked above"),
            }
        }
        other => Err(other),
    }
}

/// Why a proposal was not committed: openraft's own error (not the leader, fatal, …),
/// shared by every command of the entry.
pub type ProposeError = RaftError<NodeId, ClientWriteError<NodeId, Node>>;

/// A committed command: the log index of its entry and the state machine's response.
#[derive(Debug, Clone)]
pub struct Committed {
    pub index: u64,
    pub response: serde_json::Value,
}

struct Pending {
    command: serde_json::Value,
    bytes: usize,
    reply: oneshot::Sender<Result<Committed, ProposeError>>,
}

/// Batches the commands proposed on this node (see the module documentation).
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::UnboundedSender<Pending>,
}

impl Proposer {
    /// Starts the batching task for `raft` (on the current tokio runtime).
    pub fn start(raft: Raft) -> Proposer {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Proposer { queue }
    }

    /// Proposes `command` and waits until it is committed and applied on this node (the
    /// leader). A node that is not the leader answers `ForwardToLeader`, as
    /// `Raft::client_write` does.
    pub async fn propose(&self, command: serde_json::Value) -> Result<Committed, ProposeError> {
        let bytes = encoded_len(&command);
        let (reply, rx) = oneshot::channel();
        let stopped = || RaftError::Fatal(openraft::error::Fatal::Stopped);
        self.queue
            .send(Pending {
                command,
                bytes,
                reply,
            })
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

/// The length of a value's JSON encoding, without allocating it.
fn encoded_len(v: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    // A command taken from the queue that did not fit the previous batch.
    let mut carry: Option<Pending> = None;
    loop {
        // Wait for a free slot first: commands keep queueing while entries are in flight,
        // and all of them leave together once one completes.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carry.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while batch.len() < MAX_COMMANDS {
            match rx.try_recv() {
                Ok(p) if bytes + p.bytes > MAX_BYTES => {
                    carry = Some(p);
                    break;
                }
                Ok(p) => {
                    bytes += p.bytes;
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            write(&raft, batch).await;
            drop(slot);
        });
    }
}

/// Proposes one entry for `batch` and answers each of its commands.
async fn write(raft: &Raft, mut batch: Vec<Pending>) {
    if batch.len() == 1 {
        let Some(p) = batch.pop() else { return };
        let result = raft.client_write(p.command).await.map(|r| Committed {
            index: r.log_id.index,
            response: r.data,
        });
        let _ = p.reply.send(result);
        return;
    }
    let (commands, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|p| (p.command, p.reply)).unzip();
    let n = replies.len();
    match raft.client_write(encode_batch(commands)).await {
        Ok(r) => {
            let index = r.log_id.index;
            let responses = match r.data {
                serde_json::Value::Array(a) if a.len() == n => a,
                other => {
                    // The state machine answers a batch with one response per command;
                    // anything else is a bug, reported to every caller.
                    let msg = format!("batch of {n} commands answered with {other}");
                    tracing::error!("{msg}");
                    vec![serde_json::json!({ "error": msg }); n]
                }
            };
            for (reply, response) in replies.into_iter().zip(responses) {
                let _ = reply.send(Ok(Committed { index, response }));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trip_and_plain_commands() {
        let cmds = vec![
            serde_json::json!({"type": "a"}),
            serde_json::json!({"type": "b"}),
        ];
        let entry = encode_batch(cmds.clone());
        assert_eq!(decode_batch(entry), Ok(cmds));
        // A command that merely has a `batch` field among others is not a batch.
        let plain = serde_json::json!({"type": "x", "batch": []});
        assert_eq!(decode_batch(plain.clone()), Err(plain));
        let odd = serde_json::json!({"batch": "not a list"});
        assert_eq!(decode_batch(odd.clone()), Err(odd));
    }

    #[test]
    fn encoded_len_matches_serialisation() {
        let v =
            serde_json::json!({"type": "register", "name": "危险化学品企业", "n": [1, 2.5, null]});
        assert_eq!(encoded_len(&v), serde_json::to_vec(&v).unwrap().len());
    }
}
