//! Chain verification, shared by `GET /v1/audit/verify` (each node checks its own log)
//! and `yiwang audit verify --path` (offline).

use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use yiwang_catalog::model::AuditAnchor;

use super::segments::{self, Segment};
use super::{ChainHead, GENESIS, StoredRecord};

/// Most problems listed in one report; the count is always complete.
const MAX_LISTED: usize = 20;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VerifyReport {
    pub node: Option<u64>,
    /// The folder (or file) checked.
    pub path: String,
    pub ok: bool,
    pub segments: usize,
    pub records: u64,
    /// The first record present (0 if none).
    pub first_seq: u64,
    pub head_seq: u64,
    pub head_hash: String,
    /// The Raft-published anchor this log was checked against, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<AuditAnchor>,
    pub problem_count: u64,
    /// The first problems, each naming the segment, line and what is wrong.
    pub problems: Vec<String>,
}

/// A position the log must contain with this hash: the published anchor, or the
/// running writer's head.
struct Checkpoint {
    what: &'static str,
    seq: u64,
    hash: String,
    seen: bool,
}

/// Verifies a node's audit log — a segment folder, or one segment file: every line is
/// canonical JSON whose hash matches, sequence numbers are consecutive within and
/// across segments, each segment is named after its first record, each record links to
/// the previous hash, the trail starts at record 1 or at the anchored retention cut, and
/// it reaches the anchor (when given) and the running writer's head (`live`, when the
/// node is running) with their hashes.
///
/// With `live`, the newest segment is being written: a last line without its newline is
/// a write in progress, not damage, and is left out.
pub fn verify_path(
    path: &Path,
    anchor: Option<&AuditAnchor>,
    live: Option<&ChainHead>,
) -> Result<VerifyReport> {
    let segs = if path.is_dir() {
        segments::list(path)?
    } else {
        let first_seq = segments::list(path.parent().unwrap_or(Path::new(".")))?
            .into_iter()
            .find(|s| s.path == path)
            .map_or(0, |s| s.first_seq);
        std::fs::metadata(path)?;
        vec![Segment {
            path: path.to_path_buf(),
            first_seq,
        }]
    };
    let mut report = VerifyReport {
        node: None,
        path: path.display().to_string(),
        ok: true,
        segments: segs.len(),
        records: 0,
        first_seq: 0,
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
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    if let Some(a) = anchor.filter(|a| a.seq > 0) {
        checkpoints.push(Checkpoint {
            what: "the anchor published through Raft",
            seq: a.seq,
            hash: a.hash.clone(),
            seen: false,
        });
    }
    if let Some(h) = live.filter(|h| h.seq > 0) {
        checkpoints.push(Checkpoint {
            what: "the running node's chain head",
            seq: h.seq,
            hash: h.hash.clone(),
            seen: false,
        });
    }
    let cut = anchor.and_then(|a| a.cut.as_ref());
    let last_segment = segs.len().saturating_sub(1);
    let mut current_segment = usize::MAX;
    let mut started = false;
    segments::for_each_line(&segs, |i, lineno, bytes, complete| {
        let seg = &segs[i];
        let name = seg.path.file_name().map_or_else(
            || seg.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let at = format!("{name} line {lineno}");
        if !complete {
            if live.is_none() || i != last_segment {
                problem(
                    &mut report,
                    format!("{at}: incomplete last line (truncated)"),
                );
            }
            return Ok(true);
        }
        let new_segment = i != current_segment;
        current_segment = i;
        let Ok(line) = std::str::from_utf8(bytes) else {
            problem(&mut report, format!("{at}: not UTF-8 (modified)"));
            return Ok(true);
        };
        let stored: StoredRecord = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(e) => {
                problem(&mut report, format!("{at}: not an audit record ({e})"));
                return Ok(true);
            }
        };
        report.records += 1;
        let r = &stored.record;
        report.node.get_or_insert(r.node);
        if new_segment && seg.first_seq != 0 && seg.first_seq != r.seq {
            problem(
                &mut report,
                format!(
                    "{at}: the segment is named for seq {} but starts with seq {} (records removed or reordered)",
                    seg.first_seq, r.seq
                ),
            );
        }
        if serde_json::to_string(&stored).ok().as_deref() != Some(line) {
            problem(
                &mut report,
                format!(
                    "{at} (seq {}): modified (not the canonical form written)",
                    r.seq
                ),
            );
        }
        if r.hash() != stored.hash {
            problem(
                &mut report,
                format!(
                    "{at} (seq {}): content does not match its hash (modified)",
                    r.seq
                ),
            );
        }
        if !started {
            started = true;
            report.first_seq = r.seq;
            match cut {
                _ if r.seq == 1 => {
                    if r.prev_hash != GENESIS {
                        problem(
                            &mut report,
                            format!("{at} (seq 1): the first record does not start the chain"),
                        );
                    }
                }
                Some(c) if r.seq == c.seq => {
                    if r.prev_hash != c.prev_hash {
                        problem(
                            &mut report,
                            format!(
                                "{at} (seq {}): does not link to the hash of the anchored retention cut",
                                r.seq
                            ),
                        );
                    }
                }
                // Older segments than the cut still present (deletion interrupted):
                // the record at the cut is checked when reached.
                Some(c) if r.seq < c.seq => {}
                Some(c) => problem(
                    &mut report,
                    format!(
                        "{at}: the trail starts at seq {} but the anchored retention cut is at seq {} (records {}..{} removed)",
                        r.seq,
                        c.seq,
                        c.seq,
                        r.seq.saturating_sub(1)
                    ),
                ),
                None => problem(
                    &mut report,
                    format!(
                        "{at}: the trail starts at seq {} without an anchored retention cut (records 1..{} removed)",
                        r.seq,
                        r.seq.saturating_sub(1)
                    ),
                ),
            }
        } else {
            if Some(r.seq) != report.head_seq.checked_add(1) {
                let msg = format!(
                    "{at}: seq {} follows seq {} (records removed or reordered)",
                    r.seq, report.head_seq
                );
                problem(&mut report, msg);
            }
            if r.prev_hash != report.head_hash {
                problem(
                    &mut report,
                    format!(
                        "{at} (seq {}): prev_hash does not link to the record before it",
                        r.seq
                    ),
                );
            }
            if let Some(c) = cut
                && c.seq == r.seq
                && c.prev_hash != r.prev_hash
            {
                problem(
                    &mut report,
                    format!(
                        "{at} (seq {}): does not link to the hash of the anchored retention cut",
                        r.seq
                    ),
                );
            }
        }
        for cp in checkpoints.iter_mut().filter(|c| c.seq == r.seq) {
            cp.seen = true;
            if cp.hash != stored.hash {
                problem(
                    &mut report,
                    format!("{at} (seq {}): hash differs from {}", r.seq, cp.what),
                );
            }
        }
        report.head_seq = r.seq;
        report.head_hash = stored.hash;
        Ok(true)
    })?;
    for cp in checkpoints.iter().filter(|c| !c.seen) {
        let when = anchor
            .filter(|_| cp.what.contains("anchor"))
            .map(|a| format!(" (published {})", a.at))
            .unwrap_or_default();
        let msg = format!(
            "{}{when} names seq {}, which the log does not contain (truncated: it ends at seq {})",
            cp.what, cp.seq, report.head_seq
        );
        problem(&mut report, msg);
    }
    report.ok = report.problem_count == 0;
    Ok(report)
}
