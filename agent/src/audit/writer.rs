//! The writer thread, and the envelope (`ts`, `id`, `seq`) every record gets.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Records queued for the writer before callers are refused; a backlog
/// this deep means the disk is not keeping up.
const QUEUE_DEPTH: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {}: cannot {op}: {source}", path.display())]
    Open {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("audit log is not writable (an earlier write failed); refusing to go on unrecorded")]
    Failed,
    #[error("audit queue is full: the disk is not keeping up")]
    Backlog,
    #[error("serialising an audit record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Appends records to the audit file. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    tx: mpsc::SyncSender<Msg>,
    seq: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
    boot: u64,
    path: PathBuf,
}

/// What the writer thread is sent.
#[derive(Debug)]
enum Msg {
    Line(Vec<u8>),
    /// Reply once everything before it is on disk.
    Sync(tokio::sync::oneshot::Sender<()>),
}

/// Envelope fields first, then the record's own.
#[derive(Serialize)]
struct Envelope<'a, R> {
    ts: String,
    id: String,
    seq: u64,
    #[serde(flatten)]
    record: &'a R,
}

impl AuditLog {
    /// Opens (creating 0600, with a 0700 directory) `path` for appending and
    /// starts the writer thread.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let err = |op| {
            move |source| AuditError::Open {
                path: path.to_owned(),
                op,
                source,
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err("create its directory"))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(err("open"))?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_DEPTH);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        let shown = path.to_owned();
        std::thread::Builder::new()
            .name("airlock-audit".into())
            .spawn(move || write_loop(file, rx, flag, shown))
            .map_err(err("start its writer thread"))?;
        let boot = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Self {
            tx,
            seq: Arc::new(AtomicU64::new(0)),
            failed,
            boot,
            path: path.to_owned(),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until every record queued so far is written and synced.
    pub async fn sync(&self) -> Result<(), AuditError> {
        let (done, wait) = tokio::sync::oneshot::channel();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || tx.send(Msg::Sync(done)))
            .await
            .map_err(|_| AuditError::Failed)?
            .map_err(|_| AuditError::Failed)?;
        wait.await.map_err(|_| AuditError::Failed)?;
        self.check()
    }

    /// Err once a write has failed: callers refuse work they could not record.
    pub fn check(&self) -> Result<(), AuditError> {
        if self.failed.load(Ordering::Acquire) {
            Err(AuditError::Failed)
        } else {
            Ok(())
        }
    }

    /// Queues one record; errors when the log cannot take it, so callers
    /// can fail closed.
    pub fn write<R: Serialize>(&self, record: &R) -> Result<(), AuditError> {
        self.check()?;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let envelope = Envelope {
            ts: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
            id: format!("{:x}-{seq:x}", self.boot),
            seq,
            record,
        };
        let mut line = serde_json::to_vec(&envelope)?;
        line.push(b'\n');
        self.tx.try_send(Msg::Line(line)).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => AuditError::Backlog,
            mpsc::TrySendError::Disconnected(_) => AuditError::Failed,
        })
    }
}

/// Writes batches as they come; a failed write marks the log failed so new
/// records are refused rather than silently lost.
fn write_loop(mut file: File, rx: mpsc::Receiver<Msg>, failed: Arc<AtomicBool>, path: PathBuf) {
    let mut buf = Vec::new();
    let mut waiting = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        // Group commit: take everything already queued in one write.
        while let Some(msg) = next {
            match msg {
                Msg::Line(line) => buf.extend_from_slice(&line),
                Msg::Sync(done) => waiting.push(done),
            }
            next = rx.try_recv().ok();
        }
        let mut result = file.write_all(&buf);
        if !waiting.is_empty() {
            result = result.and_then(|()| file.sync_data());
        }
        buf.clear();
        if let Err(e) = result {
            tracing::error!(path = %path.display(), error = %e, "audit write failed; refusing further records");
            failed.store(true, Ordering::Release);
            return;
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
    if let Err(e) = file.sync_all() {
        tracing::warn!(path = %path.display(), error = %e, "audit fsync at close failed");
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[derive(Serialize)]
    struct Probe {
        kind: &'static str,
        n: u32,
    }

    #[test]
    fn writes_enveloped_lines_with_0600() {
        let dir = std::env::temp_dir().join(format!("airlock-audit-{}", std::process::id()));
        let path = dir.join("sub/audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for n in 0..3 {
            log.write(&Probe { kind: "agent", n }).unwrap();
        }
        drop(log);
        let mut text = String::new();
        for _ in 0..200 {
            text = std::fs::read_to_string(&path).unwrap();
            if text.lines().count() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2]["seq"], 3);
        assert_eq!(lines[1]["n"], 1);
        assert!(lines[0]["ts"].as_str().unwrap().ends_with('Z'));
        assert_ne!(lines[0]["id"], lines[1]["id"]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
