//! Sniffing the client's first bytes: plain TCP or TLS, and for TLS the
//! ClientHello's SNI and ALPN. What is read is kept for replay, so nothing
//! is lost whichever way the connection then goes.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest ClientHello accepted (several records; post-quantum key shares
/// make them a few KiB).
pub(super) const MAX_HELLO: usize = 64 * 1024;
const RECORD_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;

/// What the first bytes were.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Sniffed {
    NotTls,
    Tls(ClientHelloInfo),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClientHelloInfo {
    pub sni: Option<String>,
    /// Offered protocols, in the client's order.
    pub alpn: Vec<Vec<u8>>,
}

impl ClientHelloInfo {
    /// The server the client names: its SNI, unless that is an IP literal,
    /// which RFC 6066 forbids there (rustls ignores it too): such a client
    /// names no server, like one that sends no SNI.
    pub(super) fn server_name(&self) -> Option<&str> {
        self.sni
            .as_deref()
            .filter(|s| s.parse::<std::net::IpAddr>().is_err())
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum HelloError {
    #[error("client closed before sending anything")]
    Closed,
    #[error("client closed in the middle of its ClientHello")]
    Truncated,
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
    #[error("ClientHello larger than {MAX_HELLO} bytes")]
    TooLarge,
    #[error("reading the ClientHello: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads from `io` into `buf` until the first bytes decide the protocol.
pub(super) async fn sniff<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
) -> Result<Sniffed, HelloError> {
    loop {
        match parse(buf)? {
            Some(s) => return Ok(s),
            None if buf.len() >= MAX_HELLO => return Err(HelloError::TooLarge),
            None => {
                buf.reserve(4096);
                if io.read_buf(buf).await? == 0 {
                    return Err(if buf.is_empty() {
                        HelloError::Closed
                    } else {
                        HelloError::Truncated
                    });
                }
            }
        }
    }
}

/// `Ok(None)`: need more bytes.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<Sniffed>, HelloError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != RECORD_HANDSHAKE {
        return Ok(Some(Sniffed::NotTls));
    }
    // Reassemble the handshake message from consecutive records.
    let mut handshake = Vec::new();
    let mut at = 0;
    loop {
        let Some(header) = buf.get(at..at + 5) else {
            return Ok(None);
        };
        if header[0] != RECORD_HANDSHAKE {
            return Err(HelloError::Malformed(
                "handshake interrupted by another record type",
            ));
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let Some(fragment) = buf.get(at + 5..at + 5 + len) else {
            return Ok(None);
        };
        handshake.extend_from_slice(fragment);
        at += 5 + len;
        if handshake.len() >= 4 {
            if handshake[0] != HANDSHAKE_CLIENT_HELLO {
                return Err(HelloError::Malformed(
                    "first handshake message is not a ClientHello",
                ));
            }
            let body_len = usize::from(handshake[1]) << 16
                | usize::from(handshake[2]) << 8
                | usize::from(handshake[3]);
            if handshake.len() >= 4 + body_len {
                return client_hello(&handshake[4..4 + body_len]).map(|h| Some(Sniffed::Tls(h)));
            }
        }
    }
}

/// A bounds-checked reader over the ClientHello body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HelloError> {
        if self.0.len() < n {
            return Err(HelloError::Malformed("length runs past the end"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<usize, HelloError> {
        Ok(usize::from(self.take(1)?[0]))
    }
    fn u16(&mut self) -> Result<usize, HelloError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn vec8(&mut self) -> Result<&'a [u8], HelloError> {
        let n = self.u8()?;
        self.take(n)
    }
    fn vec16(&mut self) -> Result<&'a [u8], HelloError> {
        let n = self.u16()?;
        self.take(n)
    }
}

fn client_hello(body: &[u8]) -> Result<ClientHelloInfo, HelloError> {
    let mut r = Reader(body);
    r.take(2 + 32)?; // legacy_version, random
    r.vec8()?; // session id
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    let mut info = ClientHelloInfo::default();
    if r.0.is_empty() {
        return Ok(info); // no extensions at all
    }
    let mut exts = Reader(r.vec16()?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let mut data = Reader(exts.vec16()?);
        match kind as u16 {
            EXT_SERVER_NAME => {
                let mut names = Reader(data.vec16()?);
                while !names.0.is_empty() {
                    let name_type = names.u8()?;
                    let name = names.vec16()?;
                    if name_type == 0 && info.sni.is_none() {
                        let name = std::str::from_utf8(name)
                            .map_err(|_| HelloError::Malformed("SNI is not text"))?;
                        // A host name (RFC 6066), or the IP literal some
                        // clients send anyway: nothing else reaches the
                        // intercept list, the resolver or a log line.
                        let host = name.parse::<std::net::IpAddr>().is_ok()
                            || rustls_pki_types::DnsName::try_from(name).is_ok();
                        if !host {
                            return Err(HelloError::Malformed("SNI is not a host name"));
                        }
                        info.sni = Some(name.to_ascii_lowercase());
                    }
                }
            }
            EXT_ALPN => {
                let mut protos = Reader(data.vec16()?);
                while !protos.0.is_empty() {
                    info.alpn.push(protos.vec8()?.to_vec());
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests;

/// A real ClientHello, as rustls writes it (tests of the parser and its
/// fuzzing entry point).
#[cfg(test)]
pub(crate) fn real_hello(sni: &str, alpn: &[&[u8]]) -> Vec<u8> {
    let mut config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls_pki_types::ServerName::try_from(sni.to_owned()).unwrap();
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}
