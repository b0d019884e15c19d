//! The files of a node's audit log: `seg-<first seq, 20 digits>.log` in the node's
//! audit folder, oldest first. Every segment but the last is sealed (never written
//! again); retention deletes sealed segments from the front.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::StoredRecord;

/// The folder holding node `node`'s segments inside the configured audit folder.
pub fn node_dir(audit_dir: &Path, node: u64) -> PathBuf {
    audit_dir.join(format!("node-{node}"))
}

/// File name of the segment whose first record is `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("seg-{first_seq:020}.log")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub path: PathBuf,
    /// The seq its name says it starts with.
    pub first_seq: u64,
}

/// The segments in `dir`, oldest first; an absent folder has none. Other files are
/// ignored.
pub fn list(dir: &Path) -> Result<Vec<Segment>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name();
        let Some(first_seq) = name
            .to_str()
            .and_then(|n| n.strip_prefix("seg-"))
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        segments.push(Segment {
            path: entry.path(),
            first_seq,
        });
    }
    segments.sort_by_key(|s| s.first_seq);
    Ok(segments)
}

/// The first record of a segment, if it has a readable one (none if retention has just
/// deleted it).
pub fn first_record(path: &Path) -> Result<Option<StoredRecord>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    let mut line = String::new();
    BufReader::new(file)
        .read_line(&mut line)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !line.ends_with('\n') {
        return Ok(None);
    }
    Ok(serde_json::from_str(line.trim_end()).ok())
}

/// Calls `f` with every complete line (without its newline) of `segments`, in order,
/// with the segment's index and the line number within it (from 1). A line without its
/// newline is a write in progress (or torn by a crash): it is passed with `complete =
/// false` and the rest of that segment is not read, since what the writer appends
/// meanwhile would otherwise look like a line of its own. `f` returns `false` to stop.
pub fn for_each_line(
    segments: &[Segment],
    mut f: impl FnMut(usize, usize, &[u8], bool) -> Result<bool>,
) -> Result<()> {
    let mut buf = Vec::with_capacity(1024);
    for (i, seg) in segments.iter().enumerate() {
        let file = match File::open(&seg.path) {
            Ok(f) => f,
            // Deleted by retention while we were reading: its records are gone anyway.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", seg.path.display())),
        };
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut lineno = 0;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("cannot read {}", seg.path.display()))?;
            if n == 0 {
                break;
            }
            lineno += 1;
            let complete = buf.last() == Some(&b'\n');
            if complete {
                buf.pop();
            }
            if !f(i, lineno, &buf, complete)? {
                return Ok(());
            }
            if !complete {
                break;
            }
        }
    }
    Ok(())
}
