//! Searching the audit trail (`GET /v1/audit`, `yiwang audit search|export`).

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::{AuditDecision, StoredRecord};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Records at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Records before this time (RFC 3339).
    pub to: Option<String>,
    pub principal: Option<String>,
    /// Records where this department is the consumer or the provider.
    pub dept: Option<String>,
    pub dataset: Option<String>,
    pub decision: Option<AuditDecision>,
    pub action: Option<String>,
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<u64>,
}

/// One page of matching records, oldest first.
pub struct Page {
    pub records: Vec<StoredRecord>,
    pub next_cursor: Option<u64>,
}

fn matches(q: &AuditQuery, scope: Option<&str>, r: &StoredRecord) -> bool {
    let e = &r.record.event;
    let touches = |dept: &str| {
        e.dept == dept
            || e.provider_dept.as_deref() == Some(dept)
            || e.providers.iter().any(|p| p == dept)
    };
    scope.is_none_or(touches)
        && q.dept.as_deref().is_none_or(touches)
        && q.from
            .as_deref()
            .is_none_or(|f| r.record.time.as_str() >= f)
        && q.to.as_deref().is_none_or(|t| r.record.time.as_str() < t)
        && q.principal.as_deref().is_none_or(|p| e.principal == p)
        && q.dataset
            .as_deref()
            .is_none_or(|d| e.dataset.as_deref() == Some(d) || e.datasets.iter().any(|x| x == d))
        && q.decision.is_none_or(|d| e.decision == Some(d))
        && q.action.as_deref().is_none_or(|a| e.action == a)
}

/// Scans `path` for records matching `q`; `scope` limits a department auditor to
/// records where that department is consumer or provider. `from`/`to` must already be
/// normalised to the catalog's timestamp form.
pub fn search(path: &Path, q: &AuditQuery, scope: Option<&str>, limit: usize) -> Result<Page> {
    let mut records = Vec::new();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Page {
                records,
                next_cursor: None,
            });
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    let after = q.cursor.unwrap_or(0);
    for line in BufReader::new(file).lines() {
        let line = line?;
        let Ok(r) = serde_json::from_str::<StoredRecord>(&line) else {
            continue;
        };
        if r.record.seq <= after || !matches(q, scope, &r) {
            continue;
        }
        if records.len() == limit {
            let next = records.last().map(|l: &StoredRecord| l.record.seq);
            return Ok(Page {
                records,
                next_cursor: next,
            });
        }
        records.push(r);
    }
    Ok(Page {
        records,
        next_cursor: None,
    })
}
