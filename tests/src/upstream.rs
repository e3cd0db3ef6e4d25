//! A loopback HTTP/1.1 server standing in for the real destination. It
//! answers every request with where it was reached and from where, which
//! tells a test whether a connection came directly or through airlock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Serves until dropped.
#[derive(Debug)]
pub struct Upstream {
    addrs: Vec<SocketAddr>,
    accepted: Arc<AtomicUsize>,
    _tasks: JoinSet<()>,
}

impl Upstream {
    /// Listens on every address given; a port of 0 in the first address is
    /// resolved and reused for the others (one port across several IPs).
    pub async fn bind(addrs: &[SocketAddr]) -> Self {
        let mut tasks = JoinSet::new();
        let mut bound = Vec::new();
        let accepted = Arc::new(AtomicUsize::new(0));
        for l in bind_all(addrs).await {
            bound.push(l.local_addr().unwrap());
            tasks.spawn(serve(l, accepted.clone()));
        }
        Self {
            addrs: bound,
            accepted,
            _tasks: tasks,
        }
    }

    /// One listener on a free port of `ip`.
    pub async fn on(ip: &str) -> Self {
        Self::bind(&[SocketAddr::new(ip.parse().unwrap(), 0)]).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn port(&self) -> u16 {
        self.addrs[0].port()
    }

    /// Connections accepted so far, on every address.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Binds every address; a port of 0 in the first is resolved and reused for
/// the others (one port across several IPs).
pub async fn bind_all(addrs: &[SocketAddr]) -> Vec<TcpListener> {
    let mut listeners: Vec<TcpListener> = Vec::new();
    for addr in addrs {
        let mut addr = *addr;
        if let Some(first) = listeners.first()
            && addr.port() == 0
        {
            addr.set_port(first.local_addr().unwrap().port());
        }
        listeners.push(
            TcpListener::bind(addr)
                .await
                .unwrap_or_else(|e| panic!("upstream bind {addr}: {e}")),
        );
    }
    listeners
}

async fn serve(l: TcpListener, accepted: Arc<AtomicUsize>) {
    let mut conns = JoinSet::new();
    while let Ok((s, peer)) = l.accept().await {
        accepted.fetch_add(1, Ordering::SeqCst);
        while conns.try_join_next().is_some() {}
        conns.spawn(answer(s, peer));
    }
}

async fn answer(mut s: TcpStream, peer: SocketAddr) {
    let local = s.local_addr().unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body =
        serde_json::json!({ "local": local.to_string(), "peer": peer.to_string() }).to_string();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body.as_bytes()).await;
    let _ = s.shutdown().await;
}
