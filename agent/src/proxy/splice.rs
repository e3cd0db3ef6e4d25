//! Relaying bytes untouched to the original destination (plain TCP, and TLS
//! for hosts that are not intercepted).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::core::addrs::OrigDstAddr;

/// Copies both ways until both sides close (or nothing crosses for
/// `idle`), adding to `counts` (client → upstream, upstream → client) as
/// bytes pass; returns the error that ended it, if any.
pub(super) async fn splice<C>(
    client: C,
    dst: OrigDstAddr,
    connect_timeout: Duration,
    idle: Option<Duration>,
    counts: &Counts,
) -> Option<String>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let upstream = match tokio::time::timeout(connect_timeout, TcpStream::connect(dst.0)).await {
        Err(_) => return Some(format!("connect to {dst} timed out")),
        Ok(Err(e)) => return Some(format!("connect to {dst}: {e}")),
        Ok(Ok(s)) => s,
    };
    let _ = upstream.set_nodelay(true);
    crate::pipe::pipe(client, upstream, &counts.out, &counts.back, idle)
        .await
        .map(|e| format!("relay: {e}"))
}

/// Bytes of a spliced connection so far, each way.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub out: AtomicU64,
    pub back: AtomicU64,
}
