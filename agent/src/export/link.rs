//! A connection to the receiver, whatever carries it, and what it can
//! prove: RELP answers each message, a TCP stream proves nothing but its
//! own failure, a datagram is gone once sent.

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};

use super::ExportError;
use super::datagram::Datagram;
use super::relp::Relp;
use super::stream::Stream;
use crate::config::{SyslogConfig, SyslogTarget};

/// A byte stream: plain TCP or TLS over it.
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
pub(super) type Reader = ReadHalf<Box<dyn Io>>;
pub(super) type Writer = WriteHalf<Box<dyn Io>>;

/// How long a connect, a write or an awaited answer may take: past it the
/// receiver is treated as gone (a full TCP window would hold a write for
/// ever).
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Bounds `io` by [`IO_TIMEOUT`].
pub(super) async fn io_timeout<T, E>(
    what: &'static str,
    io: impl Future<Output = Result<T, E>>,
) -> Result<T, ExportError>
where
    ExportError: From<E>,
{
    match tokio::time::timeout(IO_TIMEOUT, io).await {
        Ok(r) => r.map_err(ExportError::from),
        Err(_) => Err(ExportError::Timeout {
            what,
            secs: IO_TIMEOUT.as_secs(),
        }),
    }
}

/// When a message sent counts as delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Proof {
    /// When the receiver answers it (RELP).
    Answered,
    /// When the connection has stayed up this long after it was written
    /// (TCP: nothing better exists; see docs/audit.md).
    Settled(Duration),
    /// Once sent (datagrams: nothing comes back).
    Sent,
}

/// What became of one message handed to [`Link::send`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Sent {
    /// On its way; [`Proof`] says when it counts.
    Pending,
    /// A datagram the network refused: lost (best effort).
    Dropped,
}

pub(super) enum Link {
    Relp(Relp),
    Stream(Stream),
    Datagram(Datagram),
}

impl Link {
    pub(super) async fn connect(
        config: &SyslogConfig,
        target: &SyslogTarget,
    ) -> Result<Self, ExportError> {
        Ok(match target {
            SyslogTarget::Relp(hp) => {
                let io: Box<dyn Io> = Box::new(super::stream::dial(hp).await?);
                let (r, w) = tokio::io::split(io);
                Self::Relp(Relp::open(r, w).await?)
            }
            SyslogTarget::Tcp(hp) => {
                Self::Stream(Stream::new(Box::new(super::stream::dial(hp).await?)))
            }
            SyslogTarget::Tls(hp) => {
                let tcp = super::stream::dial(hp).await?;
                let tls = super::stream::handshake(tcp, hp, config.tls_roots.clone()).await?;
                Self::Stream(Stream::new(Box::new(tls)))
            }
            SyslogTarget::Udp(hp) => Self::Datagram(Datagram::udp(hp).await?),
            SyslogTarget::Unix(path) => Self::Datagram(Datagram::unix(path)?),
        })
    }

    pub(super) fn proof(&self) -> Proof {
        match self {
            Self::Relp(_) => Proof::Answered,
            Self::Stream(_) => Proof::Settled(super::stream::SETTLE),
            Self::Datagram(_) => Proof::Sent,
        }
    }

    pub(super) async fn send(&mut self, key: u64, message: &[u8]) -> Result<Sent, ExportError> {
        match self {
            Self::Relp(r) => r.send(key, message).await.map(|()| Sent::Pending),
            Self::Stream(s) => s.send(message).await.map(|()| Sent::Pending),
            Self::Datagram(d) => d.send(message).await,
        }
    }

    /// Waits for the receiver's next word: a message answered (its key,
    /// and whether it was taken), or an error when the connection fails.
    /// Cancel-safe.
    pub(super) async fn answer(&mut self) -> Result<(u64, bool), ExportError> {
        match self {
            Self::Relp(r) => r.answer().await,
            Self::Stream(s) => Err(s.closed().await),
            Self::Datagram(_) => std::future::pending().await,
        }
    }

    /// Ends the connection cleanly: for RELP, after every answer came; for
    /// a stream, once the receiver has read to the end of it.
    pub(super) async fn close(self) -> Result<(), ExportError> {
        match self {
            Self::Relp(r) => r.close().await,
            Self::Stream(s) => s.close().await,
            Self::Datagram(_) => Ok(()),
        }
    }
}
