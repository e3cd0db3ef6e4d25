//! The proxy's view of the by-peer map: given an accepted connection's peer
//! address, take (look up and delete) what the eBPF side recorded for it.

use std::net::SocketAddr;
use std::sync::Mutex;

use airlock_ebpf::{AddrKey, Orig};
use aya::maps::{HashMap, MapData, MapError};

use crate::core::addrs::{ClientAddr, OrigDstAddr, from_mapped_bytes, to_mapped_bytes};

use crate::core::ProcessInfo;
use crate::core::lock;

/// What the kernel recorded about one redirected connection.
#[derive(Clone, Debug)]
pub struct Captured {
    pub orig_dst: OrigDstAddr,
    pub process: ProcessInfo,
}

impl Captured {
    fn from_orig(orig: &Orig) -> Self {
        Self {
            orig_dst: OrigDstAddr(SocketAddr::new(from_mapped_bytes(orig.addr), orig.port)),
            process: ProcessInfo::from_kernel(orig),
        }
    }
}

/// Lookups are single bpf() syscalls (no I/O wait), so a plain mutex is
/// fine on async threads.
#[derive(Debug)]
pub struct OrigDstTable {
    by_peer: Mutex<HashMap<MapData, AddrKey, Orig>>,
    by_cookie: HashMap<MapData, u64, Orig>,
    tracked: HashMap<MapData, u32, airlock_ebpf::Tracked>,
}

impl OrigDstTable {
    pub(super) fn new(
        by_peer: HashMap<MapData, AddrKey, Orig>,
        by_cookie: HashMap<MapData, u64, Orig>,
        tracked: HashMap<MapData, u32, airlock_ebpf::Tracked>,
    ) -> Self {
        Self {
            by_peer: Mutex::new(by_peer),
            by_cookie,
            tracked,
        }
    }

    /// Takes the record of the connection whose client is `peer`: each
    /// entry is handed out once, so the map does not grow with traffic.
    pub fn take(&self, peer: ClientAddr) -> Option<Captured> {
        let key = addr_key(peer.0);
        let mut map = lock(&self.by_peer);
        let orig = match map.get(&key, 0) {
            Ok(orig) => orig,
            Err(MapError::KeyNotFound) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "by-peer map lookup failed");
                return None;
            }
        };
        if let Err(e) = map.remove(&key) {
            tracing::debug!(error = %e, "by-peer entry already gone");
        }
        Some(Captured::from_orig(&orig))
    }

    /// Entries live in the (by-cookie, by-peer) maps: sockets currently
    /// tracked, and handed over but not yet accepted. Both drain to zero
    /// once connections close.
    pub fn entries(&self) -> (usize, usize) {
        let by_peer = lock(&self.by_peer);
        (self.by_cookie.keys().count(), by_peer.keys().count())
    }
}

impl OrigDstTable {
    /// Processes tracked for `follow_children` (descendants of a match
    /// that are alive); an entry goes when the process's last thread exits.
    pub fn tracked_processes(&self) -> usize {
        self.tracked.keys().count()
    }

    /// Whether process `tgid` is tracked as a descendant of a match.
    pub(crate) fn is_tracked(&self, tgid: u32) -> bool {
        self.tracked.get(&tgid, 0).is_ok()
    }
}

/// `addr` as the programs key it (IPv4 as `::ffff:a.b.c.d`).
pub(super) fn addr_key(addr: SocketAddr) -> AddrKey {
    AddrKey {
        addr: to_mapped_bytes(addr.ip()),
        port: addr.port(),
        _pad: 0,
    }
}
