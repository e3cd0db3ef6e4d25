//! Byte pipes between two streams (spliced TLS, plain TCP, upgraded HTTP),
//! counting what flows even when a side breaks off: the audit record needs
//! the bytes most when the connection ended badly.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Buffer per direction while data flows.
const CHUNK: usize = 16 * 1024;

/// Copies a → b and b → a until both directions end, passing each
/// direction's EOF on as a write shutdown (half-close is kept), adding the
/// bytes to `forward` (a → b) and `backward` as they pass — the caller
/// still has the counts if this future is dropped mid-way. A peer that
/// vanishes without a TLS close_notify counts as an ordinary end. Returns
/// the first error that ended a direction.
pub async fn pipe<A, B>(a: A, b: B, forward: &AtomicU64, backward: &AtomicU64) -> Option<io::Error>
where
    A: AsyncRead + AsyncWrite,
    B: AsyncRead + AsyncWrite,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let (r1, r2) = tokio::join!(
        one_way(&mut ar, &mut bw, forward),
        one_way(&mut br, &mut aw, backward)
    );
    r1.err().or(r2.err())
}

async fn one_way<R, W>(r: &mut R, w: &mut W, count: &AtomicU64) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => {
                let _ = w.shutdown().await;
                return Err(e);
            }
        };
        if n == 0 {
            // The other side may already be gone; its own direction reports that.
            let _ = w.shutdown().await;
            return Ok(());
        }
        w.write_all(&buf[..n]).await?;
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_both_ways_and_keeps_half_close() {
        let (client, a) = tokio::io::duplex(1024);
        let (b, server) = tokio::io::duplex(1024);
        let counts = std::sync::Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let c = counts.clone();
        let relay = tokio::spawn(async move { pipe(a, b, &c.0, &c.1).await });
        let (mut cr, mut cw) = tokio::io::split(client);
        let (mut sr, mut sw) = tokio::io::split(server);
        cw.write_all(b"request").await.unwrap();
        cw.shutdown().await.unwrap();
        let mut got = Vec::new();
        sr.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"request");
        // The server still answers after the client's half-close.
        sw.write_all(b"a longer response").await.unwrap();
        sw.shutdown().await.unwrap();
        let mut back = Vec::new();
        cr.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"a longer response");
        assert!(relay.await.unwrap().is_none());
        let counted = (
            counts.0.load(Ordering::Relaxed),
            counts.1.load(Ordering::Relaxed),
        );
        assert_eq!(counted, (7, 17));
    }
}
