//! The periodic fsync of records nobody waited on (`durability = "written"`
//! and `"queued"`, and response records in every mode), on a thread of its
//! own. Done by the writer, each fsync of 50 ms of records held it for
//! milliseconds, and every request waiting for its record to be written
//! waited behind it: that was the p99 of `written` (3.3 ms on 2 cores).

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::super::stats::Published;
use crate::core::lock;

/// Owns the syncing thread; stopping it (drop) syncs once more.
#[derive(Debug)]
pub(super) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    /// A handle on the file being written (replaced at rotation).
    file: Mutex<File>,
    /// Written since the last fsync began.
    dirty: AtomicBool,
    stop: AtomicBool,
    published: Arc<Published>,
    path: PathBuf,
}

impl Syncer {
    /// Starts fsyncing `file` (a handle of the writer's own) every
    /// `interval` while something was written.
    pub(super) fn start(
        file: File,
        path: PathBuf,
        published: Arc<Published>,
        interval: Duration,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            file: Mutex::new(file),
            dirty: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            published,
            path,
        });
        let run = shared.clone();
        let thread = std::thread::Builder::new()
            .name("airlock-fsync".into())
            .spawn(move || {
                crate::confine::enter_thread();
                while !run.stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(interval);
                    run.sync();
                }
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Records were written and not fsynced.
    pub(super) fn written(&self) {
        self.shared.dirty.store(true, Ordering::Release);
    }

    /// The writer fsynced everything it wrote itself.
    pub(super) fn synced(&self) {
        self.shared.dirty.store(false, Ordering::Release);
    }

    /// The writer rotated: sync the new file from now on.
    pub(super) fn replace(&self, file: File) {
        *lock(&self.shared.file) = file;
    }
}

impl Shared {
    fn sync(&self) {
        // Cleared before the fsync: what is written during it sets it again.
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let file = lock(&self.file);
        match file.sync_data() {
            Ok(()) => self.published.synced(),
            Err(e) => {
                self.dirty.store(true, Ordering::Release);
                tracing::error!(path = %self.path.display(), error = %e, "audit fsync failed");
            }
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
        self.shared.sync();
    }
}
