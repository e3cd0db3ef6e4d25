//! Syslog over a TCP stream, plain (RFC 6587) or TLS (RFC 5425): each
//! message framed by octet counting (`LEN SP MSG`), so a message may hold
//! any byte, newlines included. The receiver never answers; all a stream
//! proves is its own end: an EOF or a reset says the receiver is gone,
//! and what was written shortly before may be lost with it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ExportError;
use super::link::{Io, Reader, Writer, io_timeout};
use crate::config::HostPort;

/// A message counts as delivered once the connection has stayed up this
/// long after it was written: a receiver that died or reset the
/// connection meanwhile is seen (EOF, reset, a failed write) and
/// everything younger is sent again.
pub(super) const SETTLE: Duration = Duration::from_secs(5);

/// Appends `message` framed by octet counting.
pub(super) fn frame(message: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(message.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(message);
}

/// Connects to `hp` (every address its name resolves to, in turn).
pub(super) async fn dial(hp: &HostPort) -> Result<TcpStream, ExportError> {
    let tcp = io_timeout("connect", TcpStream::connect((hp.host.as_str(), hp.port)))
        .await
        .map_err(|e| ExportError::Connect {
            to: format!("{}:{}", hp.host, hp.port),
            why: e.to_string(),
        })?;
    // Messages go as they are made, not when a segment fills.
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// TLS over `tcp`, the receiver's chain and name verified against
/// `roots` alone when given, else the system's roots.
pub(super) async fn handshake(
    tcp: TcpStream,
    hp: &HostPort,
    roots: Option<PathBuf>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ExportError> {
    let name = ServerName::try_from(hp.host.clone())
        .map_err(|_| ExportError::ServerName(hp.host.clone()))?;
    // Read at each connect, off the async threads: a renewed CA file is
    // picked up.
    let config = tokio::task::spawn_blocking(move || {
        let roots = match roots {
            Some(path) => {
                let mut store = rustls::RootCertStore::empty();
                crate::tls::add_pem_roots(&mut store, &path)?;
                store
            }
            None => crate::tls::system_roots(),
        };
        crate::tls::verifying_config(Arc::new(roots))
    })
    .await
    .map_err(|e| ExportError::Io(std::io::Error::other(e)))??;
    io_timeout(
        "TLS handshake",
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|e| ExportError::Connect {
        to: format!("{}:{}", hp.host, hp.port),
        why: format!("TLS handshake: {e}"),
    })
}

pub(super) struct Stream {
    reader: Reader,
    writer: Writer,
}

impl Stream {
    pub(super) fn new(io: Box<dyn Io>) -> Self {
        let (reader, writer) = tokio::io::split(io);
        Self { reader, writer }
    }

    pub(super) async fn send(&mut self, message: &[u8]) -> Result<(), ExportError> {
        let mut out = Vec::with_capacity(message.len() + 8);
        frame(message, &mut out);
        io_timeout("write", self.writer.write_all(&out)).await
    }

    /// Waits until the receiver ends the connection (it sends nothing
    /// otherwise; anything it does send is ignored). Cancel-safe.
    pub(super) async fn closed(&mut self) -> ExportError {
        let mut scrap = [0u8; 512];
        loop {
            match self.reader.read(&mut scrap).await {
                Ok(0) => return ExportError::Closed,
                Ok(_) => {}
                Err(e) => return ExportError::Io(e),
            }
        }
    }

    /// Says the end (FIN, or TLS close_notify first) and waits for the
    /// receiver's: it has then read everything written.
    pub(super) async fn close(mut self) -> Result<(), ExportError> {
        io_timeout("close", self.writer.shutdown()).await?;
        match tokio::time::timeout(SETTLE, self.closed()).await {
            Ok(ExportError::Closed) => Ok(()),
            Ok(e) => Err(e),
            Err(_) => Err(ExportError::Timeout {
                what: "the receiver's end of the stream",
                secs: SETTLE.as_secs(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_octet_counted() {
        let mut out = Vec::new();
        frame(b"<14>1 - - airlock - - - a\nb", &mut out);
        frame("é".as_bytes(), &mut out);
        assert_eq!(out, "27 <14>1 - - airlock - - - a\nb2 é".as_bytes());
    }
}
