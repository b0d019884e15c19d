//! The group-commit writer thread.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::segments::{self, Segment};
use super::{AuditEvent, AuditRecord, GENESIS, StoredRecord};

/// `None` for records nobody waits for (completion records).
type Reply = Option<oneshot::Sender<Result<AuditRecord, String>>>;

/// What the writer thread is asked to do. Records go by value, as before there was a
/// `Flush`: boxing them would cost an allocation per record for a message sent once per
/// stop.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Record(AuditEvent, Reply),
    /// Make everything written so far durable, and answer with the durable head.
    Flush(oneshot::Sender<Result<ChainHead, String>>),
}

/// How long a record nobody waits for (a completion record) may stay written but not
/// yet fsynced, when no waited record comes to share its fsync.
const DEFERRED_SYNC: Duration = Duration::from_millis(20);

/// How records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Group commit: every record that arrives while the writer is busy shares the next
    /// write and `fdatasync` (the default). Records nobody waits for (completion
    /// records, written after their response) are written at once but fsynced with the
    /// next record somebody waits for, or within 20 ms.
    #[default]
    Group,
    /// One `fdatasync` per record (for comparison in benchmarks).
    Each,
    /// No `fdatasync` at all: records can be lost in a power failure. Benchmarks only;
    /// never use it in production.
    None,
}

/// Where the chain stands: the last sequence number and hash written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

/// How to open a node's audit log.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The configured audit folder; the log lives in `node-<id>/` inside it.
    pub dir: PathBuf,
    pub node: u64,
    /// Seal a segment and start the next once it holds this many bytes.
    pub segment_bytes: u64,
    pub sync: SyncMode,
}

/// Handle to a node's audit log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    dir: PathBuf,
    head: Arc<Mutex<ChainHead>>,
    problem: Arc<Mutex<Option<String>>>,
    /// Readers (search, verify) hold it shared while they scan; retention holds it
    /// exclusively while it deletes segments, so that a reader never sees segments gone
    /// under a cut it has not seen.
    segments: Arc<std::sync::RwLock<()>>,
    metrics: crate::metrics::Metrics,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AuditLog {
    /// Opens (or creates) the node's audit log and starts the writer.
    pub fn open(opts: &AuditOptions, metrics: crate::metrics::Metrics) -> Result<AuditLog> {
        let dir = segments::node_dir(&opts.dir, opts.node);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        migrate_single_file(&opts.dir, opts.node, &dir)?;
        let (head, last_time, segment) = recover(&dir)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&segment)
            .with_context(|| format!("cannot open {}", segment.display()))?;
        sync_dir(&dir)?;
        let (tx, rx) = mpsc::channel();
        let written = head.clone();
        let head = Arc::new(Mutex::new(head));
        let problem = Arc::new(Mutex::new(None));
        let len = file.metadata()?.len();
        let writer = Writer {
            file,
            len,
            synced_len: len,
            written,
            unsynced: 0,
            unsynced_since: None,
            dir: dir.clone(),
            opts: opts.clone(),
            last_time,
            head: head.clone(),
            problem: problem.clone(),
            poisoned: None,
            metrics: metrics.clone(),
        };
        std::thread::Builder::new()
            .name(format!("audit-writer-{}", opts.node))
            .spawn(move || writer.run(rx))
            .context("cannot start audit writer")?;
        if opts.sync == SyncMode::None {
            tracing::warn!(
                "audit.sync = \"none\": audit records are not fsynced and can be lost in a \
                 power failure; use it for benchmarks only"
            );
        }
        Ok(AuditLog {
            tx,
            dir,
            head,
            problem,
            segments: Arc::default(),
            metrics,
        })
    }

    /// Appends a record and returns once it is on disk.
    #[tracing::instrument(name = "audit.append", level = "debug", skip_all, fields(audit.seq = tracing::field::Empty))]
    pub async fn append(&self, event: AuditEvent) -> Result<AuditRecord> {
        let started = Instant::now();
        let (reply, wait) = oneshot::channel();
        self.metrics.audit_queue.inc();
        if self.tx.send(Msg::Record(event, Some(reply))).is_err() {
            self.metrics.audit_queue.dec();
            bail!("audit writer has stopped");
        }
        let record = wait
            .await
            .map_err(|_| anyhow!("audit writer has stopped"))?
            .map_err(|e| anyhow!("{e}"))?;
        tracing::Span::current().record("audit.seq", record.seq);
        self.metrics
            .audit_wait
            .observe(started.elapsed().as_secs_f64());
        Ok(record)
    }

    /// Queues a record without waiting for it (completion records, written after the
    /// response). A failure to write it is logged and counted.
    pub fn append_detached(&self, event: AuditEvent) {
        self.metrics.audit_queue.inc();
        if self.tx.send(Msg::Record(event, None)).is_err() {
            self.metrics.audit_queue.dec();
            tracing::error!("audit writer has stopped; a completion record is lost");
            self.metrics.audit_failures.inc();
        }
    }

    /// Makes every record written so far durable (completion records may wait up to
    /// 20 ms for an fsync otherwise) and returns the durable head: before a node's last
    /// anchor, so that the anchor covers its last records.
    pub async fn flush(&self) -> Result<ChainHead> {
        let (reply, wait) = oneshot::channel();
        self.tx
            .send(Msg::Flush(reply))
            .map_err(|_| anyhow!("audit writer has stopped"))?;
        wait.await
            .map_err(|_| anyhow!("audit writer has stopped"))?
            .map_err(|e| anyhow!("{e}"))
    }

    /// The node's segment folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last durable record: what anchors publish. Completion records written
    /// after it may not be durable yet.
    pub fn head(&self) -> ChainHead {
        lock(&self.head).clone()
    }

    /// Held while reading segments (see [`AuditLog::deleting`]).
    pub fn reading(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.segments.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Held while retention deletes segments: no reader is scanning meanwhile.
    pub fn deleting(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.segments.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the log cannot be written right now (the last write failed), if so.
    pub fn problem(&self) -> Option<String> {
        lock(&self.problem).clone()
    }
}

/// Before segments, a node's log was one file `node-<id>.log` in the audit folder: it
/// becomes the first segment.
fn migrate_single_file(audit_dir: &Path, node: u64, dir: &Path) -> Result<()> {
    let old = audit_dir.join(format!("node-{node}.log"));
    if !old.exists() || !segments::list(dir)?.is_empty() {
        return Ok(());
    }
    let new = dir.join(segments::segment_name(1));
    std::fs::rename(&old, &new)
        .with_context(|| format!("cannot move {} to {}", old.display(), new.display()))?;
    tracing::info!("audit log {} moved to {}", old.display(), new.display());
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// Finds the chain head: the last record of the newest segment that has one. A torn
/// last line (a crash in the middle of a write) is cut off: its request was never
/// answered, since answers wait for the fsync that follows a complete write. Returns
/// the head, the time of the last record and the segment to append to.
fn recover(dir: &Path) -> Result<(ChainHead, String, PathBuf)> {
    let segs = segments::list(dir)?;
    let Some(last) = segs.last() else {
        return Ok((
            ChainHead {
                seq: 0,
                hash: GENESIS.to_string(),
            },
            String::new(),
            dir.join(segments::segment_name(1)),
        ));
    };
    let mut found = None;
    for seg in segs.iter().rev() {
        if let Some(h) = scan_segment(seg, std::ptr::eq(seg, last))? {
            found = Some(h);
            break;
        }
    }
    let (head, time) = found.unwrap_or_else(|| {
        (
            ChainHead {
                seq: last.first_seq.saturating_sub(1),
                hash: GENESIS.to_string(),
            },
            String::new(),
        )
    });
    // A segment is named after its first record: an empty newest segment must be the
    // one that follows the head.
    if head.seq + 1 < last.first_seq || (head.seq >= last.first_seq && is_empty(&last.path)?) {
        bail!(
            "audit log {} is damaged: its newest segment {} does not follow record {}; \
             run `yiwang audit verify --path {}`",
            dir.display(),
            last.path.display(),
            head.seq,
            dir.display()
        );
    }
    Ok((head, time, last.path.clone()))
}

fn is_empty(path: &Path) -> Result<bool> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len()
        == 0)
}

/// The last record of a segment (and its time); cuts a torn last line when `newest`.
fn scan_segment(seg: &Segment, newest: bool) -> Result<Option<(ChainHead, String)>> {
    let path = &seg.path;
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut good_len: u64 = 0;
    let mut head = None;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        match serde_json::from_str::<StoredRecord>(line.trim_end()) {
            Ok(r) => {
                head = Some((
                    ChainHead {
                        seq: r.record.seq,
                        hash: r.hash,
                    },
                    r.record.time,
                ));
                good_len += n as u64;
            }
            Err(e) => {
                bail!(
                    "audit log {} is damaged after {} bytes ({e}); run `yiwang audit verify --path {}`",
                    path.display(),
                    good_len,
                    path.display()
                );
            }
        }
    }
    let len = std::fs::metadata(path)?.len();
    if len > good_len {
        if !newest {
            bail!(
                "sealed audit segment {} ends in an incomplete line",
                path.display()
            );
        }
        tracing::warn!(
            "audit log {}: cutting a torn last line ({} bytes) left by a crash",
            path.display(),
            len - good_len
        );
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(good_len)?;
        f.sync_all()?;
    }
    Ok(head)
}

struct Writer {
    file: File,
    /// Segment length after the last good batch.
    len: u64,
    /// Segment length that is durable: `len` minus records written but not fsynced.
    synced_len: u64,
    /// The chain's end, including records written but not fsynced yet; the durable
    /// end is published in `head`.
    written: ChainHead,
    /// Records written but not fsynced (only records nobody waits for), and since when.
    unsynced: u64,
    unsynced_since: Option<Instant>,
    dir: PathBuf,
    opts: AuditOptions,
    /// Time of the last record: record times never go backwards, even if the clock does,
    /// so that a node's records in seq order are also in time order.
    last_time: String,
    head: Arc<Mutex<ChainHead>>,
    problem: Arc<Mutex<Option<String>>>,
    /// Set when a failed batch could not be rolled back: the segment may end in part of
    /// a batch nobody was told about, so nothing more is written until a restart
    /// (whose recovery cuts an incomplete tail) or an operator looks.
    poisoned: Option<String>,
    metrics: crate::metrics::Metrics,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        // Block for the first message, then take everything else already queued: that
        // batch shares one write and one fsync. While records wait for a deferred fsync,
        // block no longer than until it is due.
        loop {
            let first = match self.unsynced_since {
                Some(since) => {
                    let due = (since + DEFERRED_SYNC).saturating_duration_since(Instant::now());
                    match rx.recv_timeout(due) {
                        Ok(m) => m,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            self.sync_deferred();
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                },
            };
            let mut batch = Vec::new();
            let mut flushes = Vec::new();
            let mut next = Some(first);
            while let Some(m) = next {
                match m {
                    Msg::Record(event, reply) => batch.push((event, reply)),
                    Msg::Flush(reply) => flushes.push(reply),
                }
                next = if batch.len() < 4096 {
                    rx.try_recv().ok()
                } else {
                    None
                };
            }
            self.metrics.audit_queue.dec_by(batch.len() as i64);
            if self.opts.sync == SyncMode::Each {
                for one in batch {
                    self.write_batch(vec![one], true);
                }
            } else if !batch.is_empty() {
                let waited = !flushes.is_empty() || batch.iter().any(|(_, r)| r.is_some());
                self.write_batch(batch, waited);
            }
            if !flushes.is_empty() {
                self.sync_deferred();
                let answer = match &*lock(&self.problem) {
                    Some(why) => Err(why.clone()),
                    None => Ok(lock(&self.head).clone()),
                };
                for reply in flushes {
                    let _ = reply.send(answer.clone());
                }
            }
        }
        self.sync_deferred();
    }

    /// Writes `batch`; fsyncs it (with any deferred records before it) when `durable`,
    /// which records somebody waits for need, and otherwise defers the fsync.
    fn write_batch(&mut self, batch: Vec<(AuditEvent, Reply)>, durable: bool) {
        if let Some(why) = &self.poisoned {
            self.metrics.audit_failures.inc();
            for (_, reply) in batch {
                match reply {
                    Some(reply) => {
                        let _ = reply.send(Err(why.clone()));
                    }
                    None => tracing::error!("a completion record is lost: {why}"),
                }
            }
            return;
        }
        let mut head = self.written.clone();
        let mut buf = Vec::with_capacity(batch.len() * 512);
        let mut records = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        let now = yiwang_catalog::clock::now();
        let time = if now > self.last_time {
            now
        } else {
            self.last_time.clone()
        };
        for (event, reply) in batch {
            let record = AuditRecord {
                seq: head.seq + 1,
                node: self.opts.node,
                time: time.clone(),
                event,
                prev_hash: head.hash.clone(),
            };
            let (line, hash) = record.to_line();
            buf.extend_from_slice(&line);
            buf.push(b'\n');
            head = ChainHead {
                seq: record.seq,
                hash,
            };
            records.push(record);
            replies.push(reply);
        }
        let fsync = durable && self.opts.sync != SyncMode::None;
        let started = Instant::now();
        let result = match self.file.write_all(&buf) {
            Err(e) => Err((e, false)),
            Ok(()) if fsync => self.file.sync_data().map_err(|e| (e, true)),
            Ok(()) => Ok(()),
        };
        if fsync || self.opts.sync == SyncMode::None {
            self.metrics
                .audit_fsync
                .observe(started.elapsed().as_secs_f64());
        }
        match result {
            Ok(()) => {
                self.len += buf.len() as u64;
                self.last_time = time;
                self.written = head;
                self.metrics.audit_records.inc_by(records.len() as u64);
                if fsync || self.opts.sync == SyncMode::None {
                    self.metrics.audit_commits.inc();
                    self.publish();
                } else {
                    self.unsynced += records.len() as u64;
                    self.unsynced_since.get_or_insert(started);
                }
                for (record, reply) in records.into_iter().zip(replies) {
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(record));
                    }
                }
                *lock(&self.problem) = None;
                if self.unsynced == 0 && self.len >= self.opts.segment_bytes {
                    self.rotate();
                }
            }
            Err((e, in_fsync)) => {
                let why = format!("cannot write the audit log in {}: {e}", self.dir.display());
                let why = self.fail(why, in_fsync);
                for reply in replies {
                    match reply {
                        Some(reply) => {
                            let _ = reply.send(Err(why.clone()));
                        }
                        None => tracing::error!("a completion record is lost: {why}"),
                    }
                }
            }
        }
    }

    /// Everything written is durable now: publish the head.
    fn publish(&mut self) {
        self.synced_len = self.len;
        self.unsynced = 0;
        self.unsynced_since = None;
        *lock(&self.head) = self.written.clone();
    }

    /// Fsyncs records written without one (nobody waited for them), if any.
    fn sync_deferred(&mut self) {
        if self.unsynced == 0 || self.poisoned.is_some() {
            return;
        }
        let started = Instant::now();
        let result = self.file.sync_data();
        self.metrics
            .audit_fsync
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                self.metrics.audit_commits.inc();
                self.publish();
                if self.len >= self.opts.segment_bytes {
                    self.rotate();
                }
            }
            Err(e) => {
                let why = format!("cannot write the audit log in {}: {e}", self.dir.display());
                self.fail(why, true);
            }
        }
    }

    /// After a failed write or fsync: rolls the segment back so the chain stays whole,
    /// records the problem (data requests get 503 until a write succeeds again) and
    /// returns the reason to give every waiter. After a failed fsync nothing since the
    /// last good one can be trusted to be on disk, so the deferred records go too.
    fn fail(&mut self, mut why: String, in_fsync: bool) -> String {
        tracing::error!("{why}");
        self.metrics.audit_failures.inc();
        let keep = if in_fsync { self.synced_len } else { self.len };
        if keep < self.len {
            let lost = self.unsynced;
            why = format!("{why}; {lost} completion records not yet fsynced are lost");
            tracing::error!("{lost} completion records not yet fsynced are lost");
            self.metrics.audit_failures.inc_by(lost);
        }
        match self.rollback(keep) {
            Ok(()) => {
                if keep < self.len {
                    self.written = lock(&self.head).clone();
                }
                self.len = keep;
                // What remains was synced by the rollback.
                self.publish();
            }
            Err(e) => {
                why = format!(
                    "{why}; rolling the failed batch back failed too ({e}): the audit log \
                     takes no more records until the node restarts"
                );
                tracing::error!("{why}");
                self.poisoned = Some(why.clone());
                self.unsynced = 0;
                self.unsynced_since = None;
            }
        }
        *lock(&self.problem) = Some(why.clone());
        why
    }

    /// Seals the current segment and starts the next. On failure the current segment
    /// stays open and grows; the next batch tries again.
    fn rotate(&mut self) {
        let next = self.written.seq + 1;
        let path = self.dir.join(segments::segment_name(next));
        let opened = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .and_then(|f| {
                self.file.sync_all()?;
                Ok(f)
            })
            .map_err(anyhow::Error::from)
            .and_then(|f| sync_dir(&self.dir).map(|_| f));
        match opened {
            Ok(f) => {
                tracing::info!("audit segment {} started", path.display());
                self.file = f;
                self.len = 0;
                self.synced_len = 0;
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                tracing::warn!(
                    "cannot start audit segment {} (the current one grows meanwhile): {e}",
                    path.display()
                );
            }
        }
    }

    /// Cuts the segment back to `len` bytes.
    fn rollback(&mut self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)?;
        self.file.seek(SeekFrom::End(0))?;
        self.file.sync_all()
    }
}
