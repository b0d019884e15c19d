//! The group-commit writer thread.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use tokio::sync::oneshot;

use super::{AuditEvent, AuditRecord, GENESIS, StoredRecord};

type Reply = oneshot::Sender<Result<AuditRecord, String>>;

/// Where the chain stands: the last sequence number and hash written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

/// Handle to a node's audit log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<(AuditEvent, Reply)>,
    path: PathBuf,
    head: Arc<Mutex<ChainHead>>,
    metrics: crate::metrics::Metrics,
}

impl AuditLog {
    /// Opens (or creates) the audit file of `node` in `dir` and starts the writer.
    pub fn open(dir: &Path, node: u64, metrics: crate::metrics::Metrics) -> Result<AuditLog> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("node-{node}.log"));
        let head = recover(&path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let (tx, rx) = mpsc::channel();
        let head = Arc::new(Mutex::new(head));
        let len = file.metadata()?.len();
        let writer = Writer {
            file,
            len,
            node,
            head: head.clone(),
            metrics: metrics.clone(),
        };
        std::thread::Builder::new()
            .name(format!("audit-writer-{node}"))
            .spawn(move || writer.run(rx))
            .context("cannot start audit writer")?;
        Ok(AuditLog {
            tx,
            path,
            head,
            metrics,
        })
    }

    /// Appends a record and returns once it is on disk.
    pub async fn append(&self, event: AuditEvent) -> Result<AuditRecord> {
        let started = Instant::now();
        let (reply, wait) = oneshot::channel();
        self.tx
            .send((event, reply))
            .map_err(|_| anyhow!("audit writer has stopped"))?;
        let record = wait
            .await
            .map_err(|_| anyhow!("audit writer has stopped"))?
            .map_err(|e| anyhow!("audit write failed: {e}"))?;
        self.metrics
            .audit_wait
            .observe(started.elapsed().as_secs_f64());
        Ok(record)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn head(&self) -> ChainHead {
        self.head.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Reads the chain head from an existing file. A torn last line (a crash in the middle
/// of a write) is cut off: its request was never answered, since answers wait for the
/// fsync that follows a complete write.
fn recover(path: &Path) -> Result<ChainHead> {
    let mut head = ChainHead {
        seq: 0,
        hash: GENESIS.to_string(),
    };
    let Ok(file) = File::open(path) else {
        return Ok(head);
    };
    let mut reader = BufReader::new(file);
    let mut good_len: u64 = 0;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            break;
        }
        if !line.ends_with('\n') {
            break;
        }
        match serde_json::from_str::<StoredRecord>(line.trim_end()) {
            Ok(r) => {
                head = ChainHead {
                    seq: r.record.seq,
                    hash: r.hash,
                };
                good_len += n as u64;
            }
            Err(e) => {
                return Err(anyhow!(
                    "audit log {} is damaged after record {} ({e}); run `yiwang audit verify --file {}`",
                    path.display(),
                    head.seq,
                    path.display()
                ));
            }
        }
    }
    let len = std::fs::metadata(path)?.len();
    if len > good_len {
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
    /// File length after the last good batch.
    len: u64,
    node: u64,
    head: Arc<Mutex<ChainHead>>,
    metrics: crate::metrics::Metrics,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<(AuditEvent, Reply)>) {
        // Block for the first record, then take everything else already queued: that
        // batch shares one write and one fsync.
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
                if batch.len() >= 4096 {
                    break;
                }
            }
            self.write_batch(batch);
        }
    }

    fn write_batch(&mut self, batch: Vec<(AuditEvent, Reply)>) {
        let mut head = self.head.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut buf = Vec::with_capacity(batch.len() * 512);
        let mut records = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for (event, reply) in batch {
            let record = AuditRecord {
                seq: head.seq + 1,
                node: self.node,
                time: yiwang_catalog::clock::now(),
                event,
                prev_hash: head.hash.clone(),
            };
            let hash = record.hash();
            let stored = StoredRecord { record, hash };
            serde_json::to_writer(&mut buf, &stored).expect("audit records serialize");
            buf.push(b'\n');
            head = ChainHead {
                seq: stored.record.seq,
                hash: stored.hash.clone(),
            };
            records.push(stored.record);
            replies.push(reply);
        }
        let fsync_started = Instant::now();
        let result = self
            .file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data());
        self.metrics
            .audit_fsync
            .observe(fsync_started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                self.len += buf.len() as u64;
                *self.head.lock().unwrap_or_else(|e| e.into_inner()) = head;
                self.metrics.audit_records.inc_by(records.len() as u64);
                for (record, reply) in records.into_iter().zip(replies) {
                    let _ = reply.send(Ok(record));
                }
            }
            Err(e) => {
                // Roll the file back to the last good record so the chain stays whole;
                // every waiter gets the error and answers 500 without sending data.
                tracing::error!("audit write failed: {e}");
                if let Err(e) = self.rollback() {
                    tracing::error!("audit rollback failed: {e}");
                }
                for reply in replies {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }

    /// Cuts the file back to its length before the failed batch.
    fn rollback(&mut self) -> std::io::Result<()> {
        self.file.set_len(self.len)?;
        self.file.seek(SeekFrom::End(0))?;
        self.file.sync_all()
    }
}
