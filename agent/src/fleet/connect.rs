//! One connection to the fleet's PostgreSQL: the role's password read from
//! `fleet.password_file` (or `PGPASSWORD`) at each connect, so a rotated
//! password is picked up; TLS by airlock's rustls, plugged into the
//! driver's `MakeTlsConnect`, verifying the server's chain and name; the
//! connection itself driven on a task of its own.
//!
//! PostgreSQL is dialled directly, not through `proxy.upstream_proxy`: it
//! is not HTTP, and a fleet database sits on the operator's network.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, NoTls, TlsConnect};

use super::FleetError;
use crate::config::{FleetConfig, PgTls};

/// Notifications (`LISTEN`) a connection received, in order; closed when
/// the connection ends.
pub(super) type Notices = mpsc::UnboundedReceiver<tokio_postgres::Notification>;

/// Connects as `[fleet]` says.
pub(super) async fn connect(fleet: &FleetConfig) -> Result<tokio_postgres::Client, FleetError> {
    connect_listening(fleet).await.map(|(client, _)| client)
}

/// Connects, and hands over what the server notifies.
pub(super) async fn connect_listening(
    fleet: &FleetConfig,
) -> Result<(tokio_postgres::Client, Notices), FleetError> {
    let target = fleet
        .target()
        .map_err(FleetError::Config)?
        .ok_or(FleetError::NotConfigured)?;
    let file = fleet.password_file.clone();
    let tls = target.tls.clone();
    // Files: read off the async threads.
    let (password, tls) = tokio::task::spawn_blocking(move || {
        Ok::<_, FleetError>((password(file)?, rustls_config(&tls)?))
    })
    .await
    .map_err(|e| FleetError::Db(e.to_string()))??;
    let mut config = target.config;
    if let Some(p) = password {
        config.password(p);
    }
    Ok(match tls {
        None => {
            let (client, conn) = config.connect(NoTls).await?;
            (client, drive(conn))
        }
        Some(tls) => {
            let (client, conn) = config.connect(Rustls(tls)).await?;
            (client, drive(conn))
        }
    })
}

/// Drives the connection on a task of its own, passing notifications on.
fn drive<S, T>(mut conn: tokio_postgres::Connection<S, T>) -> Notices
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                    // Nobody listening: the connection still serves its
                    // client.
                    let _ = tx.send(n);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %FleetError::from(e), "fleet database connection ended");
                    return;
                }
                None => return,
            }
        }
    });
    rx
}

/// The password's first line from `file`, else `PGPASSWORD`, else none
/// (trust or certificate authentication on the server's side).
fn password(file: Option<std::path::PathBuf>) -> Result<Option<String>, FleetError> {
    match file {
        Some(path) => std::fs::read_to_string(&path)
            .map(|t| Some(t.lines().next().unwrap_or("").to_owned()))
            .map_err(|error| FleetError::Password { path, error }),
        None => Ok(std::env::var("PGPASSWORD").ok()),
    }
}

/// The verifying client config `verify-full` takes: `sslrootcert` alone
/// when given (as libpq trusts only it), else the system's roots.
fn rustls_config(tls: &PgTls) -> Result<Option<Arc<ClientConfig>>, FleetError> {
    let PgTls::VerifyFull { roots: file } = tls else {
        return Ok(None);
    };
    let roots = match file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            crate::tls::add_pem_roots(&mut roots, path)?;
            roots
        }
        None => crate::tls::system_roots(),
    };
    Ok(Some(Arc::new(crate::tls::verifying_config(Arc::new(
        roots,
    ))?)))
}

/// `MakeTlsConnect` over rustls.
struct Rustls(Arc<ClientConfig>);

impl<S> MakeTlsConnect<S> for Rustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = Handshake;
    type Error = rustls_pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Handshake, Self::Error> {
        Ok(Handshake {
            config: self.0.clone(),
            name: ServerName::try_from(domain.to_owned())?,
        })
    }
}

/// One handshake, to the server `name` (as the URL names it).
struct Handshake {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for Handshake
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map(TlsStream)
        })
    }
}

struct TlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for TlsStream<S> {
    /// None: SCRAM's channel binding needs the certificate's own hash
    /// algorithm, which rustls does not expose; the server is verified by
    /// its certificate instead.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
