//! Byte pipes between two streams (spliced TLS, plain TCP, upgraded HTTP),
//! counting what flows even when a side breaks off: the audit record needs
//! the bytes most when the connection ended badly.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Buffer per direction while data flows.
const CHUNK: usize = 16 * 1024;

/// Bytes moved each way, and the first error (if any) that ended it.
#[derive(Debug, Default)]
pub struct Piped {
    /// a → b
    pub forward: u64,
    /// b → a
    pub backward: u64,
    pub error: Option<io::Error>,
}

/// Copies a → b and b → a until both directions end, passing each
/// direction's EOF on as a write shutdown (half-close is kept). A peer that
/// vanishes without a TLS close_notify counts as an ordinary end.
pub async fn pipe<A, B>(a: A, b: B) -> Piped
where
    A: AsyncRead + AsyncWrite,
    B: AsyncRead + AsyncWrite,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let (fwd, back) = (AtomicU64::new(0), AtomicU64::new(0));
    let (r1, r2) = tokio::join!(
        one_way(&mut ar, &mut bw, &fwd),
        one_way(&mut br, &mut aw, &back)
    );
    Piped {
        forward: fwd.load(Ordering::Relaxed),
        backward: back.load(Ordering::Relaxed),
        error: r1.err().or(r2.err()),
    }
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
        let relay = tokio::spawn(pipe(a, b));
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
        let p = relay.await.unwrap();
        assert_eq!((p.forward, p.backward), (7, 17));
        assert!(p.error.is_none());
    }
}
