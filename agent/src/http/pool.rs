//! Idle upstream connections, kept when a client connection ends so the
//! next client connection to the same place skips the TCP and TLS
//! handshakes (and the upstream's certificate verification) — what nginx's
//! upstream `keepalive` and Envoy's connection pools do. Without it every
//! new client connection costs two TLS handshakes instead of one.
//!
//! A connection is only ever used by one client connection at a time, and
//! only for the destination, server name and ALPN offer it was made with:
//! the upstream's ALPN choice, decided when it was dialled, is what the
//! next client is offered, exactly as if it had been dialled for it. It
//! carries no credential of its own (each request carries its caller's),
//! so handing it from one process to the next discloses nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;

use super::upstream::{Dialer, Link};
use crate::core::lock;

/// Idle connections kept per destination, server name and offer.
const PER_KEY: usize = 32;
/// Idle connections kept in all.
const TOTAL: usize = 256;

/// What a pooled connection was made for; only an identical key reuses it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub dst: SocketAddr,
    pub name: ServerName<'static>,
    /// The protocols offered to the upstream (the client's, filtered).
    pub offer: Vec<Vec<u8>>,
}

/// An upstream connection between two client connections.
#[derive(Debug)]
pub(crate) struct Parked {
    pub(super) dialer: Dialer,
    /// What the upstream chose when it was dialled (and so the protocol).
    pub alpn: Option<Vec<u8>>,
    pub(super) link: Link,
}

#[derive(Debug)]
struct Idle {
    parked: Parked,
    since: Instant,
}

/// The idle connections, by key.
#[derive(Debug)]
pub(crate) struct UpstreamPool {
    idle_for: Duration,
    idle: Mutex<Idles>,
}

#[derive(Debug, Default)]
struct Idles {
    by_key: HashMap<PoolKey, Vec<Idle>>,
    count: usize,
}

impl UpstreamPool {
    /// A pool that keeps connections idle for at most `idle_for`; zero
    /// keeps none.
    pub(crate) fn new(idle_for: Duration) -> Self {
        Self {
            idle_for,
            idle: Mutex::new(Idles::default()),
        }
    }

    /// The most recently parked connection for `key` that is still open.
    pub(crate) fn take(&self, key: &PoolKey) -> Option<Parked> {
        let mut idles = self.lock();
        let list = idles.by_key.get_mut(key)?;
        let mut found = None;
        // Newest first: the oldest are the likeliest to have been closed.
        while let Some(mut idle) = list.pop() {
            if idle.since.elapsed() < self.idle_for && idle.parked.link.is_usable() {
                found = Some(idle.parked);
                break;
            }
        }
        if list.is_empty() {
            idles.by_key.remove(key);
        }
        idles.count = idles.by_key.values().map(Vec::len).sum();
        found
    }

    /// Keeps a connection its client is done with, if it can carry another
    /// request and there is room; otherwise it is closed (dropped).
    pub(super) fn put(&self, key: PoolKey, mut parked: Parked) {
        if self.idle_for.is_zero() || !parked.link.is_usable() {
            return;
        }
        let mut idles = self.lock();
        let idle_for = self.idle_for;
        // Expired and closed connections go first, so they never crowd
        // out a live one.
        idles.by_key.retain(|_, list| {
            list.retain_mut(|i| i.since.elapsed() < idle_for && i.parked.link.is_usable());
            !list.is_empty()
        });
        idles.count = idles.by_key.values().map(Vec::len).sum();
        if idles.count >= TOTAL {
            return;
        }
        let list = idles.by_key.entry(key).or_default();
        if list.len() >= PER_KEY {
            return;
        }
        list.push(Idle {
            parked,
            since: Instant::now(),
        });
        idles.count += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idles> {
        lock(&self.idle)
    }
}
