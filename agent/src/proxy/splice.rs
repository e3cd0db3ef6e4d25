//! Relaying bytes untouched (plain TCP, and TLS for hosts that are not
//! intercepted), and where TLS for a host that is not intercepted may go.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::core::addrs::OrigDstAddr;
use crate::egress::Route;

/// Copies both ways until both sides close (or nothing crosses for
/// `idle`), adding to `counts` (client → upstream, upstream → client) as
/// bytes pass; returns the error that ended it, if any. `named`: the
/// upstream is the server of that name at `dst`, reached by `route`
/// (through `proxy.upstream_proxy` where it applies); else `dst` directly.
pub(super) async fn splice<C>(
    client: C,
    dst: SocketAddr,
    named: Option<(&Route, &str)>,
    connect_timeout: Duration,
    idle: Option<Duration>,
    counts: &Counts,
) -> Option<String>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let connect = async {
        match named {
            Some((route, name)) => route.connect(name, dst.port(), Some(dst)).await,
            None => TcpStream::connect(dst).await,
        }
    };
    let upstream = match tokio::time::timeout(connect_timeout, connect).await {
        Err(_) => return Some(format!("connect to {dst} timed out")),
        Ok(Err(e)) => return Some(format!("connect to {dst}: {e}")),
        Ok(Ok(s)) => s,
    };
    let _ = upstream.set_nodelay(true);
    crate::pipe::pipe(client, upstream, &counts.out, &counts.back, idle)
        .await
        .map(|e| format!("relay: {e}"))
}

/// Where TLS naming `name` may go: `orig` when airlock's resolver (the
/// system's: `/etc/hosts`, then DNS) gives that address for the name, else
/// the first address it gives (of `orig`'s family if it gives one), on
/// `orig`'s port. `Err`: why the name cannot be resolved.
pub(super) async fn resolve(
    name: &str,
    orig: OrigDstAddr,
    within: Duration,
) -> Result<SocketAddr, String> {
    let port = orig.0.port();
    let found: Vec<SocketAddr> =
        match tokio::time::timeout(within, tokio::net::lookup_host((name, port))).await {
            Err(_) => return Err(format!("resolving {name:?} timed out: not relayed")),
            Ok(Err(e)) => return Err(format!("{name:?} cannot be resolved ({e}): not relayed")),
            Ok(Ok(addrs)) => addrs.collect(),
        };
    let wanted = orig.0.ip().to_canonical();
    if found.iter().any(|a| a.ip().to_canonical() == wanted) {
        return Ok(orig.0);
    }
    found
        .iter()
        .find(|a| a.is_ipv4() == wanted.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("{name:?} resolves to no address: not relayed"))
}

/// Bytes of a spliced connection so far, each way.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub out: AtomicU64,
    pub back: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orig(addr: &str) -> OrigDstAddr {
        OrigDstAddr(addr.parse().unwrap())
    }

    #[tokio::test]
    async fn passthrough_goes_only_where_the_name_resolves() {
        let within = Duration::from_secs(5);
        // The name's own address: relayed as dialled.
        let to = resolve("localhost", orig("127.0.0.1:8443"), within).await;
        assert_eq!(to, Ok("127.0.0.1:8443".parse().unwrap()));
        // A harmless name on a connection to another address (fronting):
        // relayed to the name's address instead, on the same port.
        let to = resolve("localhost", orig("127.0.0.2:443"), within).await;
        assert_eq!(to, Ok("127.0.0.1:443".parse().unwrap()));
        // A name no resolver can answer for (a label over 63 octets fails
        // before any query is sent): refused, with why.
        let long = format!("{}.example", "a".repeat(64));
        let why = resolve(&long, orig("127.0.0.2:443"), within)
            .await
            .unwrap_err();
        assert!(why.contains("cannot be resolved"), "{why}");
    }
}
