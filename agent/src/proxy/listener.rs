//! Binding the IPv4/IPv6 listeners and the accept loop.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::ProxyConfig;
use crate::core::addrs::{ClientAddr, ListenAddr};

use super::Proxy;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on {addr}: address in use (is another airlock running?)")]
    InUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The bound listeners.
#[derive(Debug)]
pub(crate) struct Listeners {
    v4: TcpListener,
    v6: Option<TcpListener>,
    /// `proxy.listen_containers`: for captured processes in other network
    /// namespaces.
    containers: Option<TcpListener>,
}

impl Listeners {
    /// Binds `proxy.listen` and, when configured and the host has IPv6,
    /// `proxy.listen6`.
    pub(crate) async fn bind(config: &ProxyConfig) -> Result<Self, ProxyError> {
        let v4 = bind(config.listen).await?;
        let v6 = match config.listen6 {
            None => None,
            Some(addr) => match bind(addr).await {
                Ok(l) => Some(l),
                Err(ProxyError::Bind { addr, source })
                    if source.kind() == std::io::ErrorKind::AddrNotAvailable =>
                {
                    tracing::warn!(%addr, "no IPv6 on this host: IPv6 connects of captured processes will be refused");
                    None
                }
                Err(e) => return Err(e),
            },
        };
        let containers = match config.listen_containers {
            Some(addr) => Some(bind_freely(addr).map_err(|source| bind_error(addr, source))?),
            None => None,
        };
        Ok(Self { v4, v6, containers })
    }

    /// The addresses actually bound (port 0 resolved).
    pub(crate) fn addrs(&self) -> (ListenAddr, Option<ListenAddr>) {
        (local(&self.v4), self.v6.as_ref().map(local))
    }

    /// The containers' listener as bound.
    pub(crate) fn containers(&self) -> Option<ListenAddr> {
        self.containers.as_ref().map(local)
    }

    /// The cookie of the network namespace the listeners are in (airlock's);
    /// 0 if the kernel cannot say (before Linux 5.14), when every
    /// namespace is taken for airlock's.
    pub(crate) fn netns_cookie(&self) -> u64 {
        use std::os::fd::AsFd;
        airlock_ebpf::netns_cookie(self.v4.as_fd()).unwrap_or_else(|e| {
            if self.containers.is_some() {
                tracing::warn!(error = %e, "the kernel cannot name network namespaces: proxy.listen_containers is not used");
            }
            0
        })
    }

    /// Accepts on every listener until the returned tasks are aborted; each
    /// connection is handed to `proxy` on its own task, tracked in `conns`.
    pub(crate) fn serve(
        self,
        proxy: Arc<Proxy>,
        tasks: &mut JoinSet<()>,
        conns: Arc<tokio::sync::Mutex<JoinSet<()>>>,
    ) {
        for listener in std::iter::once(self.v4)
            .chain(self.v6)
            .chain(self.containers)
        {
            let proxy = proxy.clone();
            let conns = conns.clone();
            tasks.spawn(accept_loop(listener, proxy, conns));
        }
    }
}

fn local(l: &TcpListener) -> ListenAddr {
    ListenAddr(l.local_addr().expect("bound listener has an address"))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ProxyError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| bind_error(addr, source))
}

fn bind_error(addr: SocketAddr, source: std::io::Error) -> ProxyError {
    if source.kind() == std::io::ErrorKind::AddrInUse {
        ProxyError::InUse { addr }
    } else {
        ProxyError::Bind { addr, source }
    }
}

/// Binds `addr` (IPv4) even if the host does not have it yet: a container
/// bridge (`docker0`) may come up after airlock.
fn bind_freely(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use std::os::fd::AsFd;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    airlock_ebpf::set_freebind(socket.as_fd())?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept_loop(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    conns: Arc<tokio::sync::Mutex<JoinSet<()>>>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let proxy = proxy.clone();
                let mut set = conns.lock().await;
                // Reap finished connections so the set stays small.
                while set.try_join_next().is_some() {}
                set.spawn(async move { proxy.handle(stream, ClientAddr(peer)).await });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
