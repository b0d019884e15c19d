//! The audit trail: one append-only file per node, a SHA-256 hash chain over its
//! records, written with group commit.
//!
//! A request that reads data or changes state hands its record to [`AuditLog::append`]
//! and waits: the writer thread collects every record that arrives while it is busy,
//! writes them, `fdatasync`s once, and only then answers each waiter. The handler
//! sends its response body after that answer, so no data leaves without a durable
//! record, and one fsync serves many requests under load.
//!
//! Each line is a JSON object: the record's fields, `prev_hash` (the previous record's
//! hash, or 64 zeros) and `hash` = SHA-256 of the line's JSON without `hash`.
//! Modifying, removing or reordering a line breaks the chain; the chain head is also
//! published through Raft ([`yiwang_catalog::model::AuditAnchor`]) so that truncation is
//! detected too.

mod query;
mod verify;
mod writer;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use query::{AuditQuery, Page, search};
pub use verify::{VerifyReport, verify_file};
pub use writer::AuditLog;

/// The hash that precedes the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Outcome of the audited request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditDecision {
    Allow,
    Deny,
    /// Refused before a policy decision (bad input, unknown dataset, source down).
    Error,
}

impl AuditDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditDecision::Allow => "allow",
            AuditDecision::Deny => "deny",
            AuditDecision::Error => "error",
        }
    }
}

/// What a handler knows about its request. The writer adds sequence, node, time and
/// the chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub request_id: String,
    pub principal: String,
    /// Department of the principal (the consumer, for reads).
    pub dept: String,
    /// What was attempted, e.g. `records.read`, `dataset.register`, `access.approve`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Department owning the dataset (the provider, for reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_dept: Option<String>,
    #[serde(default)]
    pub fields: Vec<String>,
    /// Every dataset a cross-department query read (`dataset` names single reads).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<String>,
    /// Departments owning `datasets`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    #[serde(default)]
    pub purpose: String,
    pub decision: Option<AuditDecision>,
    /// Why: the rule that allowed it, the denial reason or the error.
    #[serde(default)]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    pub rows: u64,
    pub bytes: u64,
    /// HTTP status of the response.
    pub status: u16,
}

/// One line of the audit file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub node: u64,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
}

/// A stored line: the record and its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    #[serde(flatten)]
    pub record: AuditRecord,
    pub hash: String,
}

impl AuditRecord {
    /// SHA-256 over the record's canonical JSON (serde's field order, no `hash`).
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("audit records serialize");
        hex::encode(Sha256::digest(&json))
    }
}
