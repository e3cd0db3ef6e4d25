//! The upstream side: TCP + verified TLS to the original destination, and
//! an HTTP client connection over it, re-dialled when the upstream closes
//! it (HTTP/1.1 keep-alive ends, HTTP/2 GOAWAY).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{Body, Proto};

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
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
    pub fn code(&self) -> &'static str {
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
pub struct Dialer {
    pub dst: SocketAddr,
    pub name: ServerName<'static>,
    pub config: Arc<ClientConfig>,
    pub connect_timeout: Duration,
}

impl Dialer {
    /// TCP then TLS, verified against the configured roots.
    pub async fn tls(&self) -> Result<TlsStream<TcpStream>, UpstreamError> {
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.dst))
            .await
            .map_err(|_| UpstreamError::Timeout(self.dst))?
            .map_err(|source| UpstreamError::Connect {
                dst: self.dst,
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        tokio::time::timeout(
            self.connect_timeout,
            TlsConnector::from(self.config.clone()).connect(self.name.clone(), tcp),
        )
        .await
        .map_err(|_| UpstreamError::Timeout(self.dst))?
        .map_err(|source| UpstreamError::Tls {
            name: self.name.to_str().into_owned(),
            source,
        })
    }
}

#[derive(Debug)]
enum Sender {
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
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Incoming>, hyper::Error>> + Send>>;

/// The HTTP client side of one relayed connection.
#[derive(Debug)]
pub struct UpstreamConn {
    dialer: Dialer,
    proto: Proto,
    sender: tokio::sync::Mutex<Option<Sender>>,
}

impl UpstreamConn {
    /// Starts HTTP over an established TLS stream.
    pub async fn start(
        dialer: Dialer,
        stream: TlsStream<TcpStream>,
        proto: Proto,
    ) -> Result<Self, UpstreamError> {
        let sender = handshake(stream, proto).await?;
        Ok(Self {
            dialer,
            proto,
            sender: tokio::sync::Mutex::new(Some(sender)),
        })
    }

    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// Sends one request, re-dialling first if the connection is gone.
    pub async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>, UpstreamError> {
        let response: ResponseFuture = {
            let mut guard = self.sender.lock().await;
            if guard.as_ref().is_none_or(Sender::is_closed) {
                let stream = self.dialer.tls().await?;
                *guard = Some(handshake(stream, self.proto).await?);
            }
            match guard.as_mut().expect("set above") {
                Sender::Http1(s) => {
                    s.ready().await?;
                    Box::pin(s.send_request(req))
                }
                Sender::Http2(s) => {
                    s.ready().await?;
                    Box::pin(s.send_request(req))
                }
            }
        };
        Ok(response.await?)
    }
}

async fn handshake(stream: TlsStream<TcpStream>, proto: Proto) -> Result<Sender, UpstreamError> {
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
