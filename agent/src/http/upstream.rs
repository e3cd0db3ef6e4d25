//! The upstream side: TCP + verified TLS to the original destination (plain
//! TCP only to an instance metadata service, which speaks nothing else), and
//! an HTTP client connection over it — started on the first request, so an
//! idle client costs no HTTP client state — re-dialled when the upstream
//! closes it (HTTP/1.1 keep-alive ends, HTTP/2 GOAWAY), and parked in the
//! [`UpstreamPool`] when its client is done with it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::pool::{Parked, PoolKey, UpstreamPool};
use super::{Body, Proto};
use crate::egress::Route;

#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("cannot connect to {dst}: {source}")]
    Connect {
        dst: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to {0} timed out")]
    Timeout(SocketAddr),
    #[error("TLS with {name} failed: {source}")]
    Tls {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP with the upstream failed: {0}")]
    Http(#[from] hyper::Error),
}

impl UpstreamError {
    /// Stable code for the JSON error body and the audit record.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "UpstreamUnreachable",
            Self::Timeout(_) => "UpstreamTimeout",
            Self::Tls { .. } => "UpstreamTlsFailed",
            Self::Http(_) => "UpstreamProtocolError",
        }
    }
}

/// How to (re)connect to the upstream.
#[derive(Clone, Debug)]
pub(crate) struct Dialer {
    pub dst: SocketAddr,
    pub name: ServerName<'static>,
    /// TLS verified against the configured roots; `None` only for an
    /// instance metadata service (plain HTTP on a link-local address).
    pub config: Option<Arc<ClientConfig>>,
    pub connect_timeout: Duration,
    /// How TLS upstreams are reached (`proxy.upstream_proxy`).
    pub route: Arc<Route>,
}

impl Dialer {
    /// TCP, then TLS unless the upstream is a metadata service.
    pub(crate) async fn connect(&self) -> Result<Stream, UpstreamError> {
        let connect = async {
            match (&self.config, &self.name) {
                // A metadata service is link-local: never through a proxy.
                (None, _) => TcpStream::connect(self.dst).await,
                (Some(_), ServerName::DnsName(name)) => {
                    self.route
                        .connect(name.as_ref(), self.dst.port(), Some(self.dst))
                        .await
                }
                (Some(_), _) => {
                    let ip = self.dst.ip().to_canonical().to_string();
                    self.route
                        .connect(&ip, self.dst.port(), Some(self.dst))
                        .await
                }
            }
        };
        let tcp = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| UpstreamError::Timeout(self.dst))?
            .map_err(|source| UpstreamError::Connect {
                dst: self.dst,
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let Some(config) = &self.config else {
            return Ok(Stream::Plain(tcp));
        };
        let tls = tokio::time::timeout(
            self.connect_timeout,
            TlsConnector::from(config.clone()).connect(self.name.clone(), tcp),
        )
        .await
        .map_err(|_| UpstreamError::Timeout(self.dst))?
        .map_err(|source| UpstreamError::Tls {
            name: self.name.to_str().into_owned(),
            source,
        })?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// A connection to the upstream: TLS, or plain TCP to a metadata service.
#[derive(Debug)]
pub(crate) enum Stream {
    Tls(Box<TlsStream<TcpStream>>),
    Plain(TcpStream),
}

impl Stream {
    /// The protocol the upstream chose in its TLS handshake.
    pub(crate) fn alpn(&self) -> Option<Vec<u8>> {
        match self {
            Self::Tls(s) => s.get_ref().1.alpn_protocol().map(<[u8]>::to_vec),
            Self::Plain(_) => None,
        }
    }
}

/// Both variants are `Unpin`: each call goes to the one inside.
macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self.get_mut() {
            Stream::Tls($s) => {
                let $s = Pin::new($s.as_mut());
                $call
            }
            Stream::Plain($s) => {
                let $s = Pin::new($s);
                $call
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tls(s) => s.is_write_vectored(),
            Self::Plain(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

#[derive(Debug)]
pub(super) enum Sender {
    Http1(http1::SendRequest<Body>),
    Http2(http2::SendRequest<Body>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Self::Http1(s) => s.is_closed(),
            Self::Http2(s) => s.is_closed(),
        }
    }

    /// Open and idle: an HTTP/1.1 connection whose last response has not
    /// been read to its end cannot take the next request. Never waits.
    fn is_idle(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let ready = match self {
            Self::Http1(s) => s.poll_ready(&mut cx),
            Self::Http2(s) => s.poll_ready(&mut cx),
        };
        matches!(ready, std::task::Poll::Ready(Ok(())))
    }
}

type ResponseFuture = Pin<
    Box<
        dyn Future<
                Output = Result<
                    Response<Incoming>,
                    hyper::client::conn::TrySendError<Request<Body>>,
                >,
            > + Send,
    >,
>;

/// Where the HTTP client side of a relayed connection stands.
#[derive(Debug)]
pub(super) enum Link {
    /// TLS is up (its ALPN chose the protocol the client was offered); HTTP
    /// starts with the first request. hyper's client state (its request
    /// channel, buffers, connection task: about 24 KiB) waits until then.
    Fresh(Stream),
    Ready(Sender),
    /// Lost (a failed handshake): the next request dials again.
    Gone,
}

impl Link {
    /// Whether it can carry a request now, as far as can be told without
    /// waiting (a fresh stream is checked when it is first used).
    pub(super) fn is_usable(&mut self) -> bool {
        match self {
            Self::Fresh(_) => true,
            Self::Ready(s) => s.is_idle(),
            Self::Gone => false,
        }
    }
}

/// Where an upstream connection goes when its client is done with it.
#[derive(Debug)]
pub(crate) struct Home {
    pub pool: Arc<UpstreamPool>,
    pub key: PoolKey,
}

/// The HTTP client side of one relayed connection.
#[derive(Debug)]
pub(crate) struct UpstreamConn {
    dialer: Dialer,
    proto: Proto,
    /// What the upstream chose when the connection was first dialled.
    alpn: Option<Vec<u8>>,
    link: tokio::sync::Mutex<Link>,
    /// Taken when dropped, to park the connection there.
    home: Option<Home>,
}

impl UpstreamConn {
    /// HTTP over an established TLS stream, started on the first request;
    /// parked in `home` when dropped, if it can be used again.
    pub(crate) fn start(dialer: Dialer, stream: Stream, home: Home) -> Self {
        let alpn = stream.alpn();
        Self {
            dialer,
            proto: Proto::from_alpn(alpn.as_deref()),
            alpn,
            link: tokio::sync::Mutex::new(Link::Fresh(stream)),
            home: Some(home),
        }
    }

    /// HTTP/1.1 to a metadata service, dialled at the first request and
    /// never parked: each client connection has its own.
    pub(crate) fn metadata(dialer: Dialer) -> Self {
        Self {
            dialer,
            proto: Proto::Http1,
            alpn: None,
            link: tokio::sync::Mutex::new(Link::Gone),
            home: None,
        }
    }

    /// A connection taken from the pool, going back there when dropped.
    pub(crate) fn resume(parked: Parked, home: Home) -> Self {
        Self {
            dialer: parked.dialer,
            proto: Proto::from_alpn(parked.alpn.as_deref()),
            alpn: parked.alpn,
            link: tokio::sync::Mutex::new(parked.link),
            home: Some(home),
        }
    }

    /// Lets go of the upstream connection while the client is silent: it
    /// goes back to the pool (closed if the pool is full), and the next
    /// request takes one from there or dials. A client that holds its
    /// connection open without asking anything then holds no upstream
    /// socket, TLS session or buffers, as with nginx, which takes an
    /// upstream connection only when a request comes. A connection still
    /// carrying an exchange (a request being sent, a response not yet read
    /// to its end) is kept: returns false then, true once nothing is held.
    pub(crate) fn release(&self) -> bool {
        let Some(home) = &self.home else {
            return true;
        };
        let Ok(mut link) = self.link.try_lock() else {
            return false;
        };
        match &*link {
            Link::Gone => return true,
            Link::Ready(s) if s.is_closed() => return true,
            _ => {}
        }
        if !link.is_usable() {
            return false;
        }
        let taken = std::mem::replace(&mut *link, Link::Gone);
        drop(link);
        home.pool.put(home.key.clone(), self.parked(taken));
        true
    }

    fn parked(&self, link: Link) -> Parked {
        Parked {
            dialer: self.dialer.clone(),
            alpn: self.alpn.clone(),
            link,
        }
    }

    /// A pooled connection for this client, if one is idle: only one that
    /// speaks the protocol this client was given.
    fn pooled(&self) -> Link {
        self.home
            .as_ref()
            .and_then(|home| home.pool.take(&home.key))
            .filter(|parked| parked.alpn == self.alpn)
            .map_or(Link::Gone, |parked| parked.link)
    }

    /// Drops the connection: the next request dials a new one, and it is
    /// never parked for another client.
    pub(crate) async fn discard(&self) {
        *self.link.lock().await = Link::Gone;
    }

    /// Sends one request, re-dialling first if the connection is gone.
    /// A connection used before (by an earlier request, or by an earlier
    /// client while it was parked) may have been closed by the upstream
    /// meanwhile: if it fails before any of the request was written, the
    /// request goes out once more on a new connection. A request that was
    /// even partly written is never sent twice.
    pub(crate) async fn send(
        &self,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut req = req;
        let mut redial = false;
        loop {
            let (response, reused) = {
                let mut guard = self.link.lock().await;
                // Taken out while in use: if anything below fails, the link
                // stays `Gone` and the next request dials afresh.
                let link = match std::mem::replace(&mut *guard, Link::Gone) {
                    Link::Gone if !redial => self.pooled(),
                    link => link,
                };
                let reusable = match link {
                    _ if redial => None,
                    Link::Ready(s) if !s.is_closed() => Some(s),
                    Link::Fresh(mut stream) => {
                        if still_open(&mut stream) {
                            Some(handshake(stream, self.proto).await?)
                        } else {
                            None
                        }
                    }
                    _ => None,
                };
                let reused = reusable.is_some();
                let mut sender = match reusable {
                    Some(s) => s,
                    None => handshake(self.dialer.connect().await?, self.proto).await?,
                };
                let ready = match &mut sender {
                    Sender::Http1(s) => s.ready().await,
                    Sender::Http2(s) => s.ready().await,
                };
                match ready {
                    Ok(()) => {}
                    Err(_) if reused => {
                        redial = true;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
                let response: ResponseFuture = match &mut sender {
                    Sender::Http1(s) => Box::pin(s.try_send_request(req)),
                    Sender::Http2(s) => Box::pin(s.try_send_request(req)),
                };
                *guard = Link::Ready(sender);
                (response, reused)
            };
            match response.await {
                Ok(r) => return Ok(r),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => {
                        tracing::debug!(error = %e.error(), "upstream connection closed before the request was sent; dialling again");
                        req = unsent;
                        redial = true;
                    }
                    _ => return Err(e.into_error().into()),
                },
            }
        }
    }
}

impl Drop for UpstreamConn {
    fn drop(&mut self) {
        let Some(home) = self.home.take() else {
            return;
        };
        let link = std::mem::replace(self.link.get_mut(), Link::Gone);
        let parked = self.parked(link);
        home.pool.put(home.key, parked);
    }
}

/// Whether an established stream nobody has read from since its handshake
/// can still carry a request. One non-blocking read tells: TLS records
/// that arrived meanwhile are processed (a TLS 1.3 session ticket is
/// consumed inside rustls); end of stream (the upstream's close_notify or
/// FIN, as an idle timeout sends), an error, or bytes before any request
/// mean it cannot. Never waits.
fn still_open(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(stream).poll_read(&mut cx, &mut buf).is_pending()
}

async fn handshake(stream: Stream, proto: Proto) -> Result<Sender, UpstreamError> {
    let io = TokioIo::new(stream);
    Ok(match proto {
        Proto::Http1 => {
            let (sender, conn) = http1::Builder::new().handshake(io).await?;
            tokio::spawn(async move {
                if let Err(e) = conn.with_upgrades().await {
                    tracing::debug!(error = %e, "upstream HTTP/1.1 connection ended");
                }
            });
            Sender::Http1(sender)
        }
        Proto::Http2 => {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .handshake(io)
                .await?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "upstream HTTP/2 connection ended");
                }
            });
            Sender::Http2(sender)
        }
    })
}
