//! Searching and summarising a node's audit log (`GET /v1/audit`, `GET
//! /v1/audit/summary`); the API merges the answers of all nodes.
//!
//! Records are ordered by their position `(time, node, seq)`: a node's record times
//! never go backwards, so its records in seq order are in position order, and a
//! cluster-wide page is a merge of each node's next records after its own place in the
//! cursor ([`Cursor`]: the last seq delivered per node). Paging by node and seq, not by
//! time, means a record a node writes while a page is being put together is never
//! skipped: it comes on a later page.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::segments;
use super::{AuditDecision, StoredRecord};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Records at or after this time (RFC 3339 or a date).
    pub from: Option<String>,
    /// Records before this time (RFC 3339 or a date).
    pub to: Option<String>,
    pub principal: Option<String>,
    /// Records where this department is the consumer or the provider.
    pub dept: Option<String>,
    /// Records where this department is the consumer (the caller's department).
    pub consumer: Option<String>,
    /// Records where this department provides a dataset read.
    pub provider: Option<String>,
    pub dataset: Option<String>,
    /// Records that name this field.
    pub field: Option<String>,
    pub decision: Option<AuditDecision>,
    /// Records whose purpose contains this text.
    pub purpose: Option<String>,
    pub action: Option<String>,
    pub request_id: Option<String>,
    /// Records written by this node.
    pub node: Option<u64>,
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A record's place in the cluster-wide order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub time: String,
    pub node: u64,
    pub seq: u64,
}

impl Pos {
    pub fn of(r: &StoredRecord) -> Pos {
        Pos {
            time: r.record.time.clone(),
            node: r.record.node,
            seq: r.record.seq,
        }
    }
}

/// Where a cluster-wide listing stands: the last seq delivered of each node
/// (`<node>-<seq>` pairs joined with `.`, e.g. `1-57.2-33`). Nodes not named start from
/// their first record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor(pub BTreeMap<u64, u64>);

impl Cursor {
    pub fn parse(s: &str) -> Option<Cursor> {
        let mut map = BTreeMap::new();
        for pair in s.split('.') {
            let (node, seq) = pair.split_once('-')?;
            map.insert(node.parse().ok()?, seq.parse().ok()?);
        }
        Some(Cursor(map))
    }

    pub fn after(&self, node: u64) -> u64 {
        self.0.get(&node).copied().unwrap_or(0)
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs: Vec<String> = self.0.iter().map(|(n, s)| format!("{n}-{s}")).collect();
        f.write_str(&pairs.join("."))
    }
}

fn matches(q: &AuditQuery, scope: Option<&str>, r: &StoredRecord) -> bool {
    let e = &r.record.event;
    let provides = |dept: &str| {
        e.provider_dept.as_deref() == Some(dept) || e.providers.iter().any(|p| p == dept)
    };
    let touches = |dept: &str| e.dept == dept || provides(dept);
    scope.is_none_or(touches)
        && q.dept.as_deref().is_none_or(touches)
        && q.consumer.as_deref().is_none_or(|c| e.dept == c)
        && q.provider.as_deref().is_none_or(provides)
        && q.from
            .as_deref()
            .is_none_or(|f| r.record.time.as_str() >= f)
        && q.to.as_deref().is_none_or(|t| r.record.time.as_str() < t)
        && q.principal.as_deref().is_none_or(|p| e.principal == p)
        && q.dataset
            .as_deref()
            .is_none_or(|d| e.dataset.as_deref() == Some(d) || e.datasets.iter().any(|x| x == d))
        && q.field
            .as_deref()
            .is_none_or(|f| e.fields.iter().any(|x| x == f))
        && q.decision.is_none_or(|d| e.decision == Some(d))
        && q.purpose.as_deref().is_none_or(|p| e.purpose.contains(p))
        && q.action.as_deref().is_none_or(|a| e.action == a)
        && q.request_id.as_deref().is_none_or(|id| e.request_id == id)
        && q.node.is_none_or(|n| r.record.node == n)
}

/// Calls `f` with every record of the log in `dir` after seq `after` and in
/// `[from, to)`, in order, skipping segments that cannot hold any. `f` returns `false`
/// to stop.
fn scan(
    dir: &Path,
    q: &AuditQuery,
    after: u64,
    mut f: impl FnMut(StoredRecord) -> bool,
) -> Result<()> {
    let segs = segments::list(dir)?;
    // Segment i holds records from its first record's position up to the next
    // segment's first; skip those that end before the range.
    let mut start = 0;
    for i in 0..segs.len().saturating_sub(1) {
        let next = &segs[i + 1];
        let before_cursor = next.first_seq <= after.saturating_add(1);
        let before_from = match q.from.as_deref() {
            Some(f) => {
                segments::first_record(&next.path)?.is_some_and(|r| r.record.time.as_str() < f)
            }
            None => false,
        };
        if before_cursor || before_from {
            start = i + 1;
        } else {
            break;
        }
    }
    let segs = &segs[start..];
    segments::for_each_line(segs, |_, _, line, complete| {
        if !complete {
            return Ok(true);
        }
        let Ok(r) = serde_json::from_slice::<StoredRecord>(line) else {
            return Ok(true);
        };
        if q.to.as_deref().is_some_and(|t| r.record.time.as_str() >= t) {
            return Ok(false);
        }
        if r.record.seq <= after {
            return Ok(true);
        }
        Ok(f(r))
    })
}

/// Up to `limit` records of the log in `dir` matching `q`, after seq `after`, oldest
/// first; `scope` limits a department auditor to records where that department is
/// consumer or provider. `from`/`to` must already be normalised to the catalog's
/// timestamp form.
pub fn search(
    dir: &Path,
    q: &AuditQuery,
    scope: Option<&str>,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredRecord>> {
    let mut records = Vec::new();
    scan(dir, q, after, |r| {
        if matches(q, scope, &r) {
            records.push(r);
        }
        records.len() < limit
    })?;
    Ok(records)
}

/// Who read whom: request records (not completions) per consumer and provider
/// department.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairSummary {
    pub consumer: String,
    pub provider: String,
    pub requests: u64,
    pub allowed: u64,
    pub denied: u64,
    pub errors: u64,
    /// Rows and bytes answered to allowed requests.
    pub rows: u64,
    pub bytes: u64,
    /// The consumer's principals that made the requests.
    pub principals: BTreeSet<String>,
}

impl PairSummary {
    /// Adds another node's counts for the same pair.
    pub fn merge(&mut self, o: PairSummary) {
        self.requests += o.requests;
        self.allowed += o.allowed;
        self.denied += o.denied;
        self.errors += o.errors;
        self.rows += o.rows;
        self.bytes += o.bytes;
        self.principals.extend(o.principals);
    }
}

/// Per consumer/provider pair summary of the records of `dir` matching `q` (see
/// [`search`]). Records without a provider (catalog changes) are not counted.
pub fn summarize(dir: &Path, q: &AuditQuery, scope: Option<&str>) -> Result<Vec<PairSummary>> {
    let mut pairs: BTreeMap<(String, String), PairSummary> = BTreeMap::new();
    scan(dir, q, 0, |r| {
        let e = &r.record.event;
        if e.completes.is_some() || !matches(q, scope, &r) {
            return true;
        }
        let mut providers: Vec<&str> = e.providers.iter().map(String::as_str).collect();
        if let Some(p) = e.provider_dept.as_deref()
            && !providers.contains(&p)
        {
            providers.push(p);
        }
        for p in providers {
            let s = pairs
                .entry((e.dept.clone(), p.to_string()))
                .or_insert_with(|| PairSummary {
                    consumer: e.dept.clone(),
                    provider: p.to_string(),
                    ..Default::default()
                });
            s.requests += 1;
            match e.decision {
                Some(AuditDecision::Allow) => {
                    s.allowed += 1;
                    s.rows += e.rows;
                    s.bytes += e.bytes;
                }
                Some(AuditDecision::Deny) => s.denied += 1,
                _ => s.errors += 1,
            }
            s.principals.insert(e.principal.clone());
        }
        true
    })?;
    Ok(pairs.into_values().collect())
}
