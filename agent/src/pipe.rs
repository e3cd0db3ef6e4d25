//! Byte pipes between two streams (spliced TLS, plain TCP, upgraded HTTP),
//! counting what flows even when a side breaks off: the audit record needs
//! the bytes most when the connection ended badly. A pipe nothing crosses
//! for its idle timeout is closed (Envoy's `tcp_proxy` idle timeout,
//! HAProxy's `timeout tunnel`): a peer that vanished without a FIN or RST
//! must not hold a connection, its task and two sockets for ever.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Buffer per direction while data flows.
const CHUNK: usize = 16 * 1024;

/// Copies a → b and b → a until both directions end, passing each
/// direction's EOF on as a write shutdown (half-close is kept), adding the
/// bytes to `forward` (a → b) and `backward` as they pass — the caller
/// still has the counts if this future is dropped mid-way. A peer that
/// vanishes without a TLS close_notify counts as an ordinary end. With
/// `idle`, the pipe is closed once no byte has crossed either way for that
/// long (an error of kind `TimedOut`). Returns the first error that ended
/// a direction.
pub(crate) async fn pipe<A, B>(
    a: A,
    b: B,
    forward: &AtomicU64,
    backward: &AtomicU64,
    idle: Option<Duration>,
) -> Option<io::Error>
where
    A: AsyncRead + AsyncWrite,
    B: AsyncRead + AsyncWrite,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let both = async {
        let (r1, r2) = tokio::join!(
            one_way(&mut ar, &mut bw, forward),
            one_way(&mut br, &mut aw, backward)
        );
        r1.err().or(r2.err())
    };
    let Some(idle) = idle else {
        return both.await;
    };
    tokio::select! {
        e = both => e,
        () = watch_idle(idle, forward, backward) => Some(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("nothing crossed either way for {} s", idle.as_secs_f64()),
        )),
    }
}

/// Resolves once the counts have not moved for `idle`. It looks four
/// times per period, so a pipe is closed between 1 and 1¼ periods after
/// its last byte; the data path pays nothing for it.
async fn watch_idle(idle: Duration, forward: &AtomicU64, backward: &AtomicU64) {
    let total = || forward.load(Ordering::Relaxed) + backward.load(Ordering::Relaxed);
    let tick = idle / 4;
    let mut seen = total();
    let mut quiet = Duration::ZERO;
    while quiet < idle {
        tokio::time::sleep(tick).await;
        let now = total();
        if now == seen {
            quiet += tick;
        } else {
            seen = now;
            quiet = Duration::ZERO;
        }
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
        let counts = std::sync::Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let c = counts.clone();
        let relay = tokio::spawn(async move { pipe(a, b, &c.0, &c.1, None).await });
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

    /// Both ends of a pipe with an idle timeout, and the pipe's task.
    fn idle_pipe(
        idle: Duration,
    ) -> (
        tokio::io::DuplexStream,
        tokio::io::DuplexStream,
        tokio::task::JoinHandle<Option<io::Error>>,
    ) {
        let (client, a) = tokio::io::duplex(1024);
        let (b, server) = tokio::io::duplex(1024);
        let relay = tokio::spawn(async move {
            let counts = (AtomicU64::new(0), AtomicU64::new(0));
            pipe(a, b, &counts.0, &counts.1, Some(idle)).await
        });
        (client, server, relay)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_pipe_is_closed_after_its_idle_timeout() {
        let idle = Duration::from_secs(3600);
        let (mut client, mut server, relay) = idle_pipe(idle);
        let started = tokio::time::Instant::now();
        let e = tokio::time::timeout(idle * 2, relay)
            .await
            .expect("still open long after its idle timeout")
            .unwrap()
            .expect("closed with an error");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let took = started.elapsed();
        assert!(took >= idle && took <= idle + idle / 4, "{took:?}");
        // Both peers see the end.
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0);
        assert_eq!(server.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_either_way_keep_a_pipe_open() {
        let idle = Duration::from_secs(60);
        let (mut client, mut server, relay) = idle_pipe(idle);
        // Ten minutes of a byte every 45 s, alternating directions.
        for i in 0..14 {
            tokio::time::sleep(Duration::from_secs(45)).await;
            let (from, to) = if i % 2 == 0 {
                (&mut client, &mut server)
            } else {
                (&mut server, &mut client)
            };
            from.write_all(b"x").await.unwrap();
            let mut byte = [0u8; 1];
            to.read_exact(&mut byte).await.unwrap();
            assert!(!relay.is_finished(), "closed after {i} exchanges");
        }
        let e = tokio::time::timeout(idle * 2, relay)
            .await
            .expect("still open long after its last byte")
            .unwrap()
            .expect("closed once silent");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
