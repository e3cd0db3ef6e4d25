//! What the writer thread publishes about itself for `airlock status` and
//! the metrics: the chain head on disk and counters. Updated once per
//! committed batch, so it costs nothing per record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

use super::chain::Head;
use crate::core::lock;

/// Shared between the writer thread and every [`super::AuditLog`] clone.
#[derive(Debug, Default)]
pub(super) struct Published {
    head: Mutex<Option<Head>>,
    /// The trail's id (`origin.trail` of its records), set once at open.
    trail: OnceLock<String>,
    records: AtomicU64,
    bytes: AtomicU64,
    fsyncs: AtomicU64,
    failures: AtomicU64,
    rotations: AtomicU64,
}

impl Published {
    /// A batch of `records` sealed lines (`bytes` long) reached the file.
    pub(super) fn committed(&self, head: &Head, records: u64, bytes: u64) {
        *lock(&self.head) = Some(head.clone());
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn synced(&self) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn rotated(&self) {
        self.rotations.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn named(&self, trail: &str) {
        let _ = self.trail.set(trail.to_owned());
    }

    pub(super) fn resumed(&self, head: &Head) {
        *lock(&self.head) = Some(head.clone());
    }

    pub(super) fn snapshot(&self, healthy: bool) -> AuditStats {
        let head = lock(&self.head).clone();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AuditStats {
            healthy,
            seq: head.as_ref().map_or(0, |h| h.seq),
            head: head.map(|h| h.hash),
            trail: self.trail.get().cloned(),
            records: load(&self.records),
            bytes: load(&self.bytes),
            fsyncs: load(&self.fsyncs),
            write_failures: load(&self.failures),
            rotations: load(&self.rotations),
        }
    }
}

/// The audit log as `airlock status` shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct AuditStats {
    /// False while writes fail (requests are refused then, by default).
    pub healthy: bool,
    /// Sequence number and hash of the last record on disk: the chain head
    /// an auditor can compare with `airlock audit verify`.
    pub seq: u64,
    pub head: Option<String>,
    /// The trail's id, as its records' `origin.trail` says it.
    pub trail: Option<String>,
    /// Since airlock started.
    pub records: u64,
    pub bytes: u64,
    pub fsyncs: u64,
    pub write_failures: u64,
    pub rotations: u64,
}
