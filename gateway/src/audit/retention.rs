//! Retention: which sealed segments may be deleted, and the cut to anchor first.
//!
//! A sealed segment may go when every record in it is older than the retention period,
//! which is known once the *next* segment's first record is older. The node publishes
//! the cut — the first retained record's seq and the hash it links to — through Raft
//! with its anchor, and deletes the files only once that is committed: a verifier then
//! accepts a trail that starts at the cut, and still flags anything else missing.

use std::path::Path;

use anyhow::Result;
use yiwang_catalog::model::AuditCut;

use super::segments::{self, Segment};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPlan {
    /// Sealed segments to delete, oldest first.
    pub delete: Vec<Segment>,
    /// Where the retained trail will start.
    pub cut: AuditCut,
}

/// The segments of the log in `dir` whose records are all older than `before` (a
/// catalog timestamp), or `None` if there are none. The newest segment is never
/// deleted.
pub fn plan_retention(dir: &Path, before: &str) -> Result<Option<RetentionPlan>> {
    let segs = segments::list(dir)?;
    let mut plan: Option<RetentionPlan> = None;
    for i in 1..segs.len() {
        let Some(first) = segments::first_record(&segs[i].path)? else {
            break;
        };
        if first.record.time.as_str() >= before {
            break;
        }
        plan = Some(RetentionPlan {
            delete: segs[..i].to_vec(),
            cut: AuditCut {
                seq: first.record.seq,
                prev_hash: first.record.prev_hash.clone(),
                time: first.record.time.clone(),
            },
        });
    }
    Ok(plan)
}
