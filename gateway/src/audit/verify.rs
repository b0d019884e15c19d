//! Chain verification, shared by `GET /v1/audit/verify` and `yiwang audit verify --file`.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use yiwang_catalog::model::AuditAnchor;

use super::{GENESIS, StoredRecord};

/// Most problems listed in one report; the count is always complete.
const MAX_LISTED: usize = 20;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VerifyReport {
    pub node: Option<u64>,
    pub file: String,
    pub ok: bool,
    pub records: u64,
    pub head_seq: u64,
    pub head_hash: String,
    /// The Raft-published anchor this file was checked against, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<AuditAnchor>,
    pub problem_count: u64,
    /// The first problems, each naming the line and what is wrong.
    pub problems: Vec<String>,
}

/// Verifies an audit file: every line is canonical JSON whose hash matches, sequence
/// numbers are consecutive, each record links to the previous hash, and the file
/// reaches the anchor (when given) with the anchored hash.
///
/// With `live`, the file is being written: a last line without its newline is a write
/// in progress, not damage, and is left out.
pub fn verify_file(path: &Path, anchor: Option<&AuditAnchor>, live: bool) -> Result<VerifyReport> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut report = VerifyReport {
        node: None,
        file: path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        ok: true,
        records: 0,
        head_seq: 0,
        head_hash: GENESIS.to_string(),
        anchor: anchor.cloned(),
        problem_count: 0,
        problems: Vec::new(),
    };
    let problem = |report: &mut VerifyReport, msg: String| {
        report.problem_count += 1;
        if report.problems.len() < MAX_LISTED {
            report.problems.push(msg);
        }
    };
    let mut anchor_seen = false;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut lineno = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 || (live && buf.last() != Some(&b'\n')) {
            break;
        }
        lineno += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        let line = match std::str::from_utf8(&buf) {
            Ok(l) => l.to_string(),
            Err(_) => {
                problem(&mut report, format!("line {lineno}: not UTF-8 (modified)"));
                continue;
            }
        };
        let stored: StoredRecord = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                problem(
                    &mut report,
                    format!("line {lineno}: not an audit record ({e})"),
                );
                continue;
            }
        };
        report.records += 1;
        let r = &stored.record;
        report.node.get_or_insert(r.node);
        if serde_json::to_string(&stored).ok().as_deref() != Some(line.as_str()) {
            problem(
                &mut report,
                format!(
                    "line {lineno} (seq {}): modified (not the canonical form written)",
                    r.seq
                ),
            );
        }
        if r.hash() != stored.hash {
            problem(
                &mut report,
                format!(
                    "line {lineno} (seq {}): content does not match its hash (modified)",
                    r.seq
                ),
            );
        }
        if r.seq != report.head_seq + 1 {
            let msg = format!(
                "line {lineno}: seq {} follows seq {} (records removed or reordered)",
                r.seq, report.head_seq
            );
            problem(&mut report, msg);
        }
        if r.prev_hash != report.head_hash {
            problem(
                &mut report,
                format!(
                    "line {lineno} (seq {}): prev_hash does not link to the record before it",
                    r.seq
                ),
            );
        }
        if let Some(a) = anchor
            && a.seq == r.seq
        {
            anchor_seen = true;
            if a.hash != stored.hash {
                problem(
                    &mut report,
                    format!(
                        "line {lineno} (seq {}): hash differs from the published anchor",
                        r.seq
                    ),
                );
            }
        }
        report.head_seq = r.seq;
        report.head_hash = stored.hash;
    }
    if let Some(a) = anchor
        && !anchor_seen
        && a.seq > 0
    {
        problem(
            &mut report,
            format!(
                "the anchor published at {} names seq {}, which the file does not contain (truncated)",
                a.at, a.seq
            ),
        );
    }
    report.ok = report.problem_count == 0;
    Ok(report)
}
