//! Locks that outlive a panic elsewhere.

use std::sync::{Mutex, MutexGuard};

/// Locks `m` even if a thread panicked while holding it: every value
/// airlock keeps under a mutex (caches, counters, registries) stays valid
/// between statements, and one failed request must not wedge the rest.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
