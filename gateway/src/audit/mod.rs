//! The audit trail: one append-only, segmented log per node, a SHA-256 hash chain over
//! its records, written with group commit.
//!
//! A request that reads data or changes state hands its record to [`AuditLog::append`]
//! and waits: the writer thread collects every record that arrives while it is busy,
//! writes them, `fdatasync`s once, and only then answers each waiter. The handler
//! sends its response body after that answer, so no data leaves without a durable
//! record, and one fsync serves many requests under load. A data response is followed
//! by a completion record (`completes` = the request record's seq) with the bytes
//! actually sent and the duration.
//!
//! The log lives in `<audit dir>/node-<id>/seg-<first seq>.log`; a segment is sealed
//! when it reaches `audit.segment_kb` and the next one starts. Each line is a JSON
//! object: the record's fields, `prev_hash` (the previous record's hash, or 64 zeros)
//! and `hash` = SHA-256 of the line's JSON without `hash`. Modifying, removing or
//! reordering a line breaks the chain; the chain head is also published through Raft
//! ([`yiwang_catalog::model::AuditAnchor`]) so that truncation is detected too, and so is
//! the start of the retained trail when retention deletes old segments.

mod query;
mod retention;
pub mod segments;
mod verify;
mod writer;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use query::{AuditQuery, Cursor, PairSummary, Pos, search, summarize};
pub use retention::{RetentionPlan, plan_retention};
pub use verify::{VerifyReport, verify_path};
pub use writer::{AuditLog, AuditOptions, ChainHead, SyncMode};

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
    /// On a completion record: the seq of the request record it completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completes: Option<u64>,
    /// On a completion record: milliseconds from the request's arrival to the last byte
    /// sent (or to the client going away).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
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

    /// The stored line (without its newline) and the record's hash, from one
    /// serialisation: the line is the record's JSON with `"hash"` added as its last key,
    /// which is exactly what serialising a [`StoredRecord`] gives.
    pub fn to_line(&self) -> (Vec<u8>, String) {
        let mut json = serde_json::to_vec(self).expect("audit records serialize");
        let hash = hex::encode(Sha256::digest(&json));
        json.pop(); // the closing brace
        json.extend_from_slice(b",\"hash\":\"");
        json.extend_from_slice(hash.as_bytes());
        json.extend_from_slice(b"\"}");
        (json, hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_the_stored_record() {
        let record = AuditRecord {
            seq: 7,
            node: 2,
            time: "2026-11-30T23:00:00.000Z".into(),
            event: AuditEvent {
                request_id: "r1".into(),
                principal: "spiffe://yiwang.local/dept/320600-DSJ/a".into(),
                dept: "320600-DSJ".into(),
                action: "records.read".into(),
                dataset: Some("320600-YJJ-00001".into()),
                fields: vec!["name".into(), "身份证号".into()],
                decision: Some(AuditDecision::Allow),
                completes: Some(6),
                ..Default::default()
            },
            prev_hash: GENESIS.into(),
        };
        let (line, hash) = record.to_line();
        let stored = StoredRecord {
            record: record.clone(),
            hash: hash.clone(),
        };
        assert_eq!(
            String::from_utf8(line).unwrap(),
            serde_json::to_string(&stored).unwrap()
        );
        assert_eq!(hash, record.hash());
    }

    fn event(i: usize) -> AuditEvent {
        AuditEvent {
            request_id: format!("r{i}"),
            principal: "spiffe://yiwang.local/dept/320600-DSJ/a".into(),
            dept: "320600-DSJ".into(),
            action: "records.read".into(),
            dataset: Some("320600-YJJ-00001".into()),
            provider_dept: Some("320600-YJJ".into()),
            purpose: format!("p{i}"),
            decision: Some(if i.is_multiple_of(3) {
                AuditDecision::Deny
            } else {
                AuditDecision::Allow
            }),
            rows: 2,
            status: 200,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn segments_rotate_verify_page_and_retain() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = AuditOptions {
            dir: tmp.path().to_path_buf(),
            node: 3,
            segment_bytes: 2048,
            sync: SyncMode::Group,
        };
        let log = AuditLog::open(&opts, crate::metrics::Metrics::new()).unwrap();
        // Concurrent writers share commits; then one at a time.
        let writers: Vec<_> = (0..30)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move { log.append(event(i)).await.unwrap() })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        for i in 30..60 {
            log.append(event(i)).await.unwrap();
        }
        let dir = log.dir().to_path_buf();
        let segs = segments::list(&dir).unwrap();
        assert!(segs.len() > 3, "{segs:?}");
        let head = log.head();
        assert_eq!(head.seq, 60);
        let report = verify_path(&dir, None, Some(&head)).unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!((report.records, report.segments), (60, segs.len()));

        // Paging by seq returns every match once, in order.
        let q = AuditQuery {
            decision: Some(AuditDecision::Allow),
            ..Default::default()
        };
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = search(&dir, &q, None, after, 7).unwrap();
            let Some(last) = page.last() else { break };
            after = last.record.seq;
            seen.extend(page.iter().map(|r| r.record.seq));
        }
        let expected: Vec<u64> = (1..=60u64).filter(|s| !(s - 1).is_multiple_of(3)).collect();
        assert_eq!(seen, expected);
        let pairs = summarize(&dir, &AuditQuery::default(), None).unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!((pairs[0].requests, pairs[0].denied), (60, 20));

        // Retention of everything before now deletes all sealed segments but the last,
        // and a log starting at the cut verifies only with the cut.
        let plan = plan_retention(&dir, "9999-01-01T00:00:00.000Z")
            .unwrap()
            .unwrap();
        // The newest segment stays, and so does one whose successor is still empty.
        assert!(plan.delete.len() >= segs.len() - 2, "{plan:?} {segs:?}");
        for s in &plan.delete {
            std::fs::remove_file(&s.path).unwrap();
        }
        let without = verify_path(&dir, None, Some(&head)).unwrap();
        assert!(!without.ok);
        assert!(without.problems[0].contains("without an anchored retention cut"));
        let anchor = yiwang_catalog::model::AuditAnchor {
            node_id: 3,
            seq: head.seq,
            hash: head.hash.clone(),
            at: yiwang_catalog::clock::now(),
            cut: Some(plan.cut.clone()),
        };
        let with = verify_path(&dir, Some(&anchor), Some(&head)).unwrap();
        assert!(with.ok, "{with:?}");
        assert_eq!(with.first_seq, plan.cut.seq);

        // Reopening finds the same head; the cursor format round-trips.
        drop(log);
        let again = AuditLog::open(&opts, crate::metrics::Metrics::new()).unwrap();
        assert_eq!(again.head(), head);
        let c = Cursor::parse("1-57.2-33").unwrap();
        assert_eq!((c.after(1), c.after(2), c.after(9)), (57, 33, 0));
        assert_eq!(c.to_string(), "1-57.2-33");
        assert!(Cursor::parse("12").is_none());
    }

    #[tokio::test]
    async fn completion_records_share_the_next_fsync() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = AuditOptions {
            dir: tmp.path().to_path_buf(),
            node: 1,
            segment_bytes: 1 << 20,
            sync: SyncMode::Group,
        };
        let metrics = crate::metrics::Metrics::new();
        let log = AuditLog::open(&opts, metrics.clone()).unwrap();
        assert_eq!(log.append(event(0)).await.unwrap().seq, 1);
        assert_eq!(metrics.audit_commits.get(), 1);
        // Twenty completion records, one every millisecond: each is written at once,
        // but they share fsyncs (one per 20 ms at most) instead of taking one each.
        for i in 1..=20 {
            log.append_detached(event(i));
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // A waited record's fsync covers every record before it.
        let r = log.append(event(21)).await.unwrap();
        assert_eq!(r.seq, 22);
        assert_eq!(log.head().seq, 22);
        let commits = metrics.audit_commits.get();
        assert!(commits <= 12, "{commits} fsyncs for 22 records");
        // Alone, a completion record is durable within the deferral, and flush()
        // makes it durable at once.
        log.append_detached(event(22));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while log.head().seq < 23 {
            assert!(std::time::Instant::now() < deadline, "never fsynced");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        log.append_detached(event(23));
        assert_eq!(log.flush().await.unwrap().seq, 24);
        let head = log.head();
        let report = verify_path(log.dir(), None, Some(&head)).unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records, 24);
    }
}
