//! Kernel → userspace events (ring buffer): logged with tracing and
//! counted for the metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airlock_ebpf::{Event, EventKind};
use aya::maps::{MapData, RingBuf};

use crate::core::addrs::from_mapped_bytes;
use crate::journal::Throttle;

use crate::core::ProcessInfo;

/// Kernel events seen since airlock started, by kind. Events the ring
/// buffer had no room for are not seen (the programs never block a
/// connect to report one).
#[derive(Debug, Default)]
pub(crate) struct EventCounts {
    pub redirects: AtomicU64,
    pub udp_refused: AtomicU64,
    pub v6_refused: AtomicU64,
    /// Children that could not be tracked (the tracking map was full).
    pub untracked: AtomicU64,
    /// Connects from other network namespaces refused: no listener for
    /// containers, or an IPv6 destination.
    pub netns_refused: AtomicU64,
}

impl EventCounts {
    fn count(&self, kind: &EventKind) {
        let c = match kind {
            EventKind::Redirect => &self.redirects,
            EventKind::UdpRefused => &self.udp_refused,
            EventKind::V6Refused => &self.v6_refused,
            EventKind::Untracked => &self.untracked,
            EventKind::NetnsRefused => &self.netns_refused,
            EventKind::Cgroup | EventKind::Unknown(_) => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads the capture programs' ring buffer.
pub(crate) struct EventReader {
    ring: RingBuf<MapData>,
    counts: Arc<EventCounts>,
    /// Told of each new cgroup (capture cgroups may have appeared).
    cgroups: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for EventReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReader").finish_non_exhaustive()
    }
}

impl EventReader {
    pub(super) fn new(
        ring: RingBuf<MapData>,
        counts: Arc<EventCounts>,
        cgroups: Arc<tokio::sync::Notify>,
    ) -> Self {
        Self {
            ring,
            counts,
            cgroups,
        }
    }

    /// Logs every event until the task is dropped. Redirects are debug
    /// (the proxy logs the connection itself); refusals are warnings, since
    /// a client just had a connection fail because of airlock.
    pub(crate) async fn run(self) {
        let mut fd = match airlock_ebpf::async_ring_buf(self.ring) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::error!(error = %e, "cannot poll the event ring buffer; kernel events will not be logged");
                return;
            }
        };
        loop {
            let mut guard = match fd.readable_mut().await {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!(error = %e, "event ring buffer poll failed");
                    return;
                }
            };
            let ring = guard.get_inner_mut();
            let mut batch = Vec::new();
            // Redirects are only logged at debug level: otherwise they are
            // counted and not looked up in /proc (the proxy enriches the
            // connection itself: doing it here too doubled the /proc reads
            // of every new connection).
            let redirects_logged = tracing::enabled!(tracing::Level::DEBUG);
            while let Some(item) = ring.next() {
                if let Some(ev) = Event::decode(&item) {
                    if ev.kind == EventKind::Cgroup {
                        self.cgroups.notify_one();
                        continue;
                    }
                    self.counts.count(&ev.kind);
                    if redirects_logged || !matches!(ev.kind, EventKind::Redirect) {
                        batch.push(ev);
                    }
                }
            }
            guard.clear_ready();
            if !batch.is_empty() {
                // /proc reads block: keep them off the async workers.
                let _ = tokio::task::spawn_blocking(move || batch.iter().for_each(log)).await;
            }
        }
    }
}

/// Refusals a captured process can cause at will (a connect loop): at most
/// a line a second of each kind, with how many were held back, and no
/// /proc reads for those held back. Counted in metrics whatever.
static UDP_REFUSED: Throttle = Throttle::new(Duration::from_secs(1));
static V6_REFUSED: Throttle = Throttle::new(Duration::from_secs(1));
static NETNS_REFUSED: Throttle = Throttle::new(Duration::from_secs(1));

fn log(ev: &Event) {
    let throttle = match ev.kind {
        EventKind::UdpRefused => Some(&UDP_REFUSED),
        EventKind::V6Refused => Some(&V6_REFUSED),
        EventKind::NetnsRefused => Some(&NETNS_REFUSED),
        _ => None,
    };
    let held = match throttle.map(Throttle::admit) {
        Some(None) => return,
        Some(Some(held)) => held,
        None => 0,
    };
    let dst = SocketAddr::new(from_mapped_bytes(ev.orig.addr), ev.orig.port);
    let mut p = ProcessInfo::from_kernel(&ev.orig);
    p.enrich();
    let exe = p.exe.as_deref().unwrap_or("");
    match ev.kind {
        EventKind::Redirect => {
            tracing::debug!(pid = p.pid, uid = p.uid, comm = %p.comm, exe, %dst, "connect redirected")
        }
        EventKind::UdpRefused => {
            tracing::warn!(pid = p.pid, uid = p.uid, comm = %p.comm, exe, %dst, held, "UDP to a captured port refused (QUIC must use TCP)")
        }
        EventKind::V6Refused => {
            tracing::warn!(pid = p.pid, uid = p.uid, comm = %p.comm, exe, %dst, held, "IPv6 connect refused: no IPv6 listener")
        }
        EventKind::Untracked => {
            tracing::error!(pid = p.pid, parent = %p.comm, "capture.max_tracked processes are tracked already: this child of a captured process could not be tracked, so every process in the capture cgroup is captured from now on (fail closed) until airlock restarts; raise capture.max_tracked")
        }
        EventKind::NetnsRefused => {
            tracing::warn!(pid = p.pid, uid = p.uid, comm = %p.comm, exe, %dst, netns = ev.orig.netns, held, "connect from another network namespace (a container) refused: set proxy.listen_containers to an address of this host it reaches (its listener is IPv4)")
        }
        EventKind::Cgroup | EventKind::Unknown(_) => {}
    }
}
