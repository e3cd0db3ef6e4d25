//! Relaying bytes untouched to the original destination (plain TCP, and TLS
//! for hosts that are not intercepted).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::addrs::OrigDstAddr;

/// Copies both ways until both sides close; returns (client → upstream,
/// upstream → client) bytes and the error that ended it, if any.
pub(super) async fn splice<C>(
    client: C,
    dst: OrigDstAddr,
    connect_timeout: Duration,
) -> ((u64, u64), Option<String>)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let upstream = match tokio::time::timeout(connect_timeout, TcpStream::connect(dst.0)).await {
        Err(_) => return ((0, 0), Some(format!("connect to {dst} timed out"))),
        Ok(Err(e)) => return ((0, 0), Some(format!("connect to {dst}: {e}"))),
        Ok(Ok(s)) => s,
    };
    let _ = upstream.set_nodelay(true);
    let piped = crate::pipe::pipe(client, upstream).await;
    (
        (piped.forward, piped.backward),
        piped.error.map(|e| format!("relay: {e}")),
    )
}
