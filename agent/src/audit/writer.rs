//! The writer thread: seals records into the hash chain in file order,
//! group-commits them (one fsync for every record waiting on durability),
//! rotates by size, and resumes the chain after a restart or crash.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use tokio::sync::oneshot;

use super::access::Access;
use super::chain::{self, GENESIS, Head};
use super::checkpoint::Signer;
use super::files;
use super::hold::{Holds, RetentionHold};
use super::origin::{Origin, TrailId};
use super::queue::{PushError, Queue, Taken};
use super::recover::{Recovered, resume};
use super::stats::{AuditStats, Published};
use crate::config::{AuditConfig, Durability, WRITTEN_SYNC_INTERVAL_MS};
use syncer::Syncer;

/// Records queued for the writer before callers are refused; a backlog
/// this deep means the disk is not keeping up.
const QUEUE_DEPTH: usize = 16 * 1024;
/// Records queued without anyone waiting that wake the writer anyway. Small
/// enough that the writer's turns stay short: at 512, each turn held a core
/// for milliseconds and showed as the proxy's p99 on a 2-core host.
const WAKE_AT: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {}: cannot {op}: {source}", path.display())]
    Open {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the audit log cannot be written (disk full or not writable)")]
    Failed,
    #[error("audit queue is full: the disk is not keeping up")]
    Backlog,
    #[error("serialising an audit record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Appends records to the audit file. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct AuditLog {
    tx: Arc<Sender>,
    healthy: Arc<AtomicBool>,
    /// Records that could not be queued or written; the writer seals a
    /// `records_lost` record with the count, so verification sees the gap.
    lost: Arc<AtomicU64>,
    ids: Arc<AtomicU64>,
    boot: u64,
    path: PathBuf,
    published: Arc<Published>,
    /// `durability = "queued"`: "durable" writes do not wait.
    queued: bool,
    /// `durability = "off"`: only [`AuditLog::write_agent`] writes.
    off: bool,
    /// Readers copying the trail elsewhere ([`AuditLog::hold_retention`]).
    holds: Holds,
}

/// The queue's sending side; when the last [`AuditLog`] clone goes, the
/// queue closes and the writer drains it and ends.
#[derive(Debug)]
struct Sender(Arc<Queue<Msg>>);

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[derive(Debug)]
enum Msg {
    Record {
        /// The record serialised, `ts` and `id` included.
        body: Vec<u8>,
        /// Answered once the record is on disk (true) or failed (false).
        durable: Option<oneshot::Sender<bool>>,
    },
    /// Answered once everything before it is on disk.
    /// With `true`, also seal a signed checkpoint (at close), so the trail
    /// does not end in records no signature covers.
    Sync(oneshot::Sender<bool>, bool),
}

impl AuditLog {
    /// Opens (creating 0600, with a 0700 directory) the configured file,
    /// resumes the chain from the last complete record, and starts the
    /// writer thread.
    pub(crate) fn open(config: &AuditConfig) -> Result<Self, AuditError> {
        let path = config.path.clone();
        let err = |op| {
            let path = path.clone();
            move |source| AuditError::Open { path, op, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(if config.group.is_some() { 0o750 } else { 0o700 })
                .create(dir)
                .map_err(err("create its directory"))?;
        }
        let access = Access::for_config(config).map_err(err("resolve audit.group"))?;
        let signer = config
            .checkpoint_key
            .as_deref()
            .map(Signer::load_or_create)
            .transpose()
            .map_err(err("load audit.checkpoint_key"))?;
        if let (Some(dir), Some(gid)) = (path.parent(), access.gid) {
            std::os::unix::fs::chown(dir, None, Some(gid)).map_err(err("chown its directory"))?;
        }
        let mut file = access.open(&path).map_err(err("open"))?;
        let (last, recovered) = resume(&path, &mut file).map_err(err("read its last record"))?;
        // The chain goes on under its own trail id; a new chain (or one
        // written before records carried `origin`) gets a new one.
        let trail = last
            .as_ref()
            .and_then(|l| l.trail.clone())
            .unwrap_or_else(TrailId::new);
        let origin = Origin::here(trail);
        let head = last.map(|l| l.head);
        let len = file.metadata().map_err(err("stat"))?.len();
        let file_for_syncer = file.try_clone().map_err(err("open"))?;
        let healthy = Arc::new(AtomicBool::new(true));
        let lost = Arc::new(AtomicU64::new(0));
        let queue = Arc::new(Queue::new(QUEUE_DEPTH, WAKE_AT));
        let rx = queue.clone();
        let published = Arc::new(Published::default());
        // No reader yet: nothing waits for one.
        let holds = Holds::default();
        published.named(origin.trail.as_str());
        if let Some(h) = &head {
            published.resumed(h);
        }
        let mut writer = Writer {
            file,
            path: path.clone(),
            len,
            head: head.unwrap_or(Head {
                hash: GENESIS.into(),
                seq: 0,
            }),
            rotate_bytes: config.rotate_bytes,
            retain_bytes: config.retain_bytes,
            access,
            signer,
            checkpoint_every: config.checkpoint_every,
            since_checkpoint: 0,
            healthy: healthy.clone(),
            sync_each: config.durability == Durability::Fsync,
            lost: lost.clone(),
            recovered,
            syncer: Syncer::start(
                file_for_syncer,
                path.clone(),
                published.clone(),
                std::time::Duration::from_millis(config.fsync_interval_ms),
            )
            .map_err(err("start its fsync thread"))?,
            published: published.clone(),
            envelope: origin.envelope(),
            holds: holds.clone(),
        };
        std::thread::Builder::new()
            .name("airlock-audit".into())
            .spawn(move || {
                crate::confine::enter_thread();
                writer.run(rx)
            })
            .map_err(err("start its writer thread"))?;
        let boot = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(Self {
            tx: Arc::new(Sender(queue)),
            healthy,
            lost,
            ids: Arc::new(AtomicU64::new(0)),
            boot,
            path,
            published,
            queued: config.durability == Durability::Queued,
            off: config.durability == Durability::Off,
            holds,
        })
    }

    /// A reader that copies the trail elsewhere holds back retention from
    /// now on: rotated files are removed only through the seq it releases
    /// (the slowest reader's). Taken before anything is written.
    pub(crate) fn hold_retention(&self) -> RetentionHold {
        self.holds.take()
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The chain head on disk and the writer's counters.
    pub(crate) fn stats(&self) -> AuditStats {
        self.published
            .snapshot(self.healthy.load(Ordering::Acquire))
    }

    /// A new record id, unique across restarts (start time + counter).
    pub(crate) fn new_id(&self) -> String {
        format!(
            "{:x}-{:x}",
            self.boot,
            self.ids.fetch_add(1, Ordering::Relaxed) + 1
        )
    }

    /// Err while the last write failed: callers refuse work they could not
    /// record (fail closed). Clears once a write succeeds again.
    pub(crate) fn check(&self) -> Result<(), AuditError> {
        if self.healthy.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(AuditError::Failed)
        }
    }

    /// Queues a record with a fresh id; returns the id.
    pub(crate) fn write<R: Serialize>(&self, record: &R) -> Result<String, AuditError> {
        let id = self.new_id();
        self.send(&id, record, None)?;
        Ok(id)
    }

    /// As [`AuditLog::write`], for airlock's own `agent` records (start,
    /// stop, reloads): written even with `durability = "off"`, so the trail
    /// says when it was turned off and on again.
    pub(crate) fn write_agent<R: Serialize>(&self, record: &R) -> Result<String, AuditError> {
        let id = self.new_id();
        self.push(envelope(&id, record)?, None)?;
        Ok(id)
    }

    /// Queues a record under `id` and waits until it is on disk (with
    /// `durability = "queued"`: only while the log is healthy, without
    /// waiting).
    pub(crate) async fn write_durable<R: Serialize>(
        &self,
        id: &str,
        record: &R,
    ) -> Result<(), AuditError> {
        if self.queued || self.off {
            self.check()?;
            return self.send(id, record, None);
        }
        let (done, wait) = oneshot::channel();
        self.send(id, record, Some(done))?;
        match wait.await {
            Ok(true) => Ok(()),
            _ => Err(AuditError::Failed),
        }
    }

    /// Queues a record under `id` without waiting.
    pub(crate) fn write_as<R: Serialize>(&self, id: &str, record: &R) -> Result<(), AuditError> {
        self.send(id, record, None)
    }

    /// Waits until every record queued so far is written and synced.
    pub(crate) async fn sync(&self) -> Result<(), AuditError> {
        self.sync_inner(false).await
    }

    /// As [`AuditLog::sync`], sealing a final signed checkpoint first when
    /// checkpoints are on: call when stopping.
    pub(crate) async fn close(&self) -> Result<(), AuditError> {
        self.sync_inner(true).await
    }

    async fn sync_inner(&self, checkpoint: bool) -> Result<(), AuditError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .0
            .push(Msg::Sync(done, checkpoint), true)
            .map_err(|_| AuditError::Backlog)?;
        match wait.await {
            Ok(true) => Ok(()),
            _ => Err(AuditError::Failed),
        }
    }

    fn send<R: Serialize>(
        &self,
        id: &str,
        record: &R,
        durable: Option<oneshot::Sender<bool>>,
    ) -> Result<(), AuditError> {
        if self.off {
            return Ok(());
        }
        self.push(envelope(id, record)?, durable)
    }

    fn push(
        &self,
        body: Vec<u8>,
        durable: Option<oneshot::Sender<bool>>,
    ) -> Result<(), AuditError> {
        // Only a caller waiting for durability needs the writer now.
        let urgent = durable.is_some();
        self.tx
            .0
            .push(Msg::Record { body, durable }, urgent)
            .map_err(|e| {
                self.lost.fetch_add(1, Ordering::Relaxed);
                match e {
                    PushError::Full => AuditError::Backlog,
                    PushError::Closed => AuditError::Failed,
                }
            })
    }
}

/// A record serialised with what every record carries besides its own
/// members: `{"ts":…,"id":…,<the record's members>}` (the writer adds
/// `seq`, `prev` and `hash`). Written straight into one buffer: serde's
/// `flatten` would go through its slower map path for every member.
fn envelope<R: Serialize + ?Sized>(id: &str, record: &R) -> Result<Vec<u8>, AuditError> {
    // Most records fit: no re-allocation while serialising.
    let mut body = Vec::with_capacity(4096);
    let ts = humantime::format_rfc3339_nanos(SystemTime::now());
    write!(body, "{{\"ts\":\"{ts}\",\"id\":").map_err(serde_json::Error::io)?;
    serde_json::to_writer(&mut body, id)?;
    let members = body.len();
    serde_json::to_writer(&mut body, record)?;
    // The record's own `{` becomes the `,` after the envelope's members.
    match &body[members..] {
        b"{}" => {
            body.truncate(members);
            body.push(b'}');
        }
        [b'{', ..] => body[members] = b',',
        _ => {
            return Err(AuditError::Encode(serde::ser::Error::custom(
                "a record must be a JSON object",
            )));
        }
    }
    Ok(body)
}

struct Writer {
    file: File,
    path: PathBuf,
    len: u64,
    head: Head,
    rotate_bytes: u64,
    /// `audit.retain_bytes`; 0: keep everything.
    retain_bytes: u64,
    access: Access,
    signer: Option<Signer>,
    checkpoint_every: u64,
    /// Records sealed since the last checkpoint.
    since_checkpoint: u64,
    healthy: Arc<AtomicBool>,
    /// fsync before acknowledging durable records (`durability = "fsync"`).
    sync_each: bool,
    lost: Arc<AtomicU64>,
    /// A crash fragment moved aside at start, to be recorded first.
    recovered: Option<Recovered>,
    /// fsyncs what nobody waited on, every `audit.fsync_interval_ms`.
    syncer: Syncer,
    published: Arc<Published>,
    /// `"schema":…,"origin":{…}`: in every record of this trail.
    envelope: Vec<u8>,
    /// Retention removes no file holding a record past what they hold.
    holds: Holds,
}

impl Writer {
    fn run(&mut self, rx: Arc<Queue<Msg>>) {
        // Records nobody waits on are written at least this often.
        let interval = std::time::Duration::from_millis(WRITTEN_SYNC_INTERVAL_MS);
        // Both buffers keep their capacity from one batch to the next.
        let mut batch = Vec::new();
        let mut buf = Vec::new();
        loop {
            match rx.take(&mut batch, interval) {
                Taken::Some => self.commit(&mut batch, &mut buf),
                Taken::Timeout => {}
                Taken::Closed => break,
            }
        }
        if let Err(e) = self.file.sync_all() {
            tracing::warn!(path = %self.path.display(), error = %e, "audit fsync at close failed");
        }
    }

    /// Seals and writes a batch; fsyncs when anyone waits for durability.
    /// A failed write is cut back off the file, so the chain on disk stays
    /// whole, and everyone waiting is told.
    fn commit(&mut self, batch: &mut Vec<Msg>, buf: &mut Vec<u8>) {
        buf.clear();
        let mut head = self.head.clone();
        let mut waiting = Vec::new();
        let mut force_checkpoint = false;
        let mut notes = Vec::new();
        let recovered = self.recovered.take();
        if let Some(r) = &recovered {
            notes.push(serde_json::json!({
                "kind": "agent", "event": "recovered_partial_record",
                "bytes": r.bytes, "saved_to": r.saved_to.display().to_string(),
            }));
        }
        let lost = self.lost.swap(0, Ordering::AcqRel);
        if lost > 0 {
            notes.push(
                serde_json::json!({ "kind": "agent", "event": "records_lost", "count": lost }),
            );
        }
        let mut sealed = 0u64;
        for note in notes {
            seal_note(buf, &self.envelope, &mut head, &note);
        }
        for msg in batch.drain(..) {
            match msg {
                Msg::Record { body, durable } => {
                    let hash = chain::seal(buf, &self.envelope, &body, head.seq + 1, &head.hash);
                    sealed += 1;
                    head = Head {
                        hash,
                        seq: head.seq + 1,
                    };
                    waiting.extend(durable.map(|d| (d, false)));
                }
                // An explicit sync always reaches the disk.
                Msg::Sync(done, checkpoint) => {
                    force_checkpoint |= checkpoint;
                    waiting.push((done, true));
                }
            }
        }
        let due = self.since_checkpoint + sealed >= self.checkpoint_every;
        let checkpointed = match &self.signer {
            Some(signer) if due || (force_checkpoint && self.since_checkpoint + sealed > 0) => {
                let note = signer.checkpoint(&head);
                seal_note(buf, &self.envelope, &mut head, &note);
                true
            }
            _ => false,
        };
        let mut result = self.file.write_all(buf);
        let syncs = waiting.iter().any(|w| w.1) || (self.sync_each && !waiting.is_empty());
        if result.is_ok() && syncs {
            result = self.file.sync_data();
        }
        match result {
            Ok(()) => {
                self.since_checkpoint = if checkpointed {
                    0
                } else {
                    self.since_checkpoint + sealed
                };
                self.published.committed(&head, sealed, buf.len() as u64);
                if syncs {
                    self.published.synced();
                    self.syncer.synced();
                } else {
                    self.syncer.written();
                }
                self.len += buf.len() as u64;
                self.head = head;
                if !self.healthy.swap(true, Ordering::AcqRel) {
                    tracing::warn!(path = %self.path.display(), "audit log writable again");
                }
                // Rotated before anyone is told: whoever waited (a stop
                // closing the log, a restart after it) finds the rotation
                // done, never half done under a second writer.
                if self.len >= self.rotate_bytes {
                    self.rotate();
                }
                for (w, _) in waiting {
                    let _ = w.send(true);
                }
            }
            Err(e) => {
                self.published.failed();
                if self.healthy.swap(false, Ordering::AcqRel) {
                    tracing::error!(path = %self.path.display(), error = %e, "audit write failed: intercepted requests are refused until it works again");
                }
                let _ = self.file.set_len(self.len);
                // Said again with the next batch that gets through.
                self.recovered = recovered;
                // Durable waiters learn of it; the rest are counted as lost.
                let told = waiting.iter().filter(|w| !w.1).count() as u64;
                self.lost
                    .fetch_add(sealed.saturating_sub(told) + lost, Ordering::Relaxed);
                for (w, _) in waiting {
                    let _ = w.send(false);
                }
            }
        }
    }

    /// Moves the full file aside (named after its last seq, so names sort
    /// in chain order) and starts a new one; the chain continues into it.
    fn rotate(&mut self) {
        let aside = files::rotated_name(&self.path, self.head.seq);
        let result = self
            .file
            .sync_all()
            .and_then(|()| std::fs::rename(&self.path, &aside))
            .and_then(|()| self.access.open(&self.path))
            .and_then(|f| Ok((f.try_clone()?, f)));
        match result {
            Ok((for_syncer, f)) => {
                self.syncer.replace(for_syncer);
                self.file = f;
                self.len = 0;
                self.published.rotated();
                tracing::info!(rotated = %aside.display(), "audit log rotated");
                self.retain();
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "audit rotation failed; continuing in the same file")
            }
        }
    }
}

impl Writer {
    /// Keeps the trail within `audit.retain_bytes`: removes the oldest
    /// rotated files (never the current one), each only once a
    /// `retention` record naming it — its last seq and hash, where the
    /// chain now starts — is written and synced, so what remains still
    /// verifies and says why it starts there.
    fn retain(&mut self) {
        if self.retain_bytes == 0 {
            return;
        }
        let size = |p: &std::path::Path| p.metadata().map_or(0, |m| m.len());
        let rotated = files::rotated(&self.path);
        let mut total: u64 = rotated.iter().map(|p| size(p)).sum::<u64>() + self.len;
        for old in rotated {
            if total <= self.retain_bytes {
                break;
            }
            let bytes = size(&old);
            let last = match super::recover::last_record(&old) {
                Ok(Some(last)) => last.head,
                other => {
                    tracing::error!(file = %old.display(), error = ?other.err(), "audit retention: cannot read the file's last record; it is kept");
                    return;
                }
            };
            if last.seq > self.holds.through() {
                tracing::warn!(file = %old.display(), last_seq = last.seq, "audit retention: the file is not shipped to the fleet or the SIEM yet; it is kept");
                return;
            }
            let note = serde_json::json!({
                "kind": "agent", "event": "retention",
                "file": old.display().to_string(), "last_seq": last.seq,
                "last_hash": last.hash, "bytes": bytes,
            });
            let mut buf = Vec::new();
            let mut head = self.head.clone();
            seal_note(&mut buf, &self.envelope, &mut head, &note);
            if let Err(e) = self
                .file
                .write_all(&buf)
                .and_then(|()| self.file.sync_data())
            {
                let _ = self.file.set_len(self.len);
                tracing::error!(error = %e, "audit retention: the record could not be written; nothing is removed");
                return;
            }
            self.len += buf.len() as u64;
            self.published.committed(&head, 1, buf.len() as u64);
            self.head = head;
            if let Err(e) = std::fs::remove_file(&old) {
                tracing::error!(file = %old.display(), error = %e, "audit retention: cannot remove the file");
                return;
            }
            tracing::info!(file = %old.display(), last_seq = last.seq, bytes, "audit retention: oldest file removed");
            total -= bytes;
        }
    }
}

/// Seals one of the writer's own records (recovery, losses, checkpoints).
fn seal_note(buf: &mut Vec<u8>, origin: &[u8], head: &mut Head, note: &serde_json::Value) {
    let body = envelope(&format!("writer-{}", head.seq + 1), note).expect("JSON values serialise");
    let hash = chain::seal(buf, origin, &body, head.seq + 1, &head.hash);
    *head = Head {
        hash,
        seq: head.seq + 1,
    };
}

mod syncer;
#[cfg(test)]
mod tests;
