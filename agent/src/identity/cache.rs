//! Tokens already identified, by SHA-256 of the token, until they expire:
//! a busy agent reuses one token for hours, and re-checking its signature
//! on every request would be wasted work. Only successes are kept, so a
//! failure is always re-examined (and a key rotation can fix it).

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::SystemTime;

use lru::LruCache;

use crate::core::Identity;
use crate::core::lock;

#[derive(Debug)]
pub(super) struct TokenCache {
    entries: Mutex<LruCache<[u8; 32], (Identity, SystemTime)>>,
}

impl TokenCache {
    pub(super) fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    pub(super) fn get(&self, token: &str) -> Option<Identity> {
        let key = digest(token);
        let mut entries = lock(&self.entries);
        match entries.get(&key) {
            Some((id, until)) if SystemTime::now() < *until => Some(id.clone()),
            Some(_) => {
                entries.pop(&key);
                None
            }
            None => None,
        }
    }

    pub(super) fn put(&self, token: &str, id: Identity, until: SystemTime) {
        let mut entries = lock(&self.entries);
        entries.put(digest(token), (id, until));
    }
}

fn digest(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}
