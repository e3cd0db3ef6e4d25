//! Connections to an explicit proxy's port (`capture.proxy_ports`: a
//! client with `HTTPS_PROXY`): airlock is the proxy. A `CONNECT` is
//! answered here and its tunnel treated exactly as a direct connection to
//! the authority it names (interception, the server name checked against
//! that authority, identity, policy, masking, records). A plain request in
//! absolute form (`GET http://…`) is relayed to the proxy the client
//! dialled and recorded; anything else on the port is handled as on any
//! captured port.

use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::connection::{Conn, Proxy, Via};
use crate::core::addrs::OrigDstAddr;
use crate::telemetry::ConnPath;

/// The longest request head a proxy client may send.
const MAX_HEAD: usize = 8 * 1024;

/// What the client asked the proxy for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ask {
    /// `CONNECT host:port`.
    Connect { host: String, port: u16 },
    /// `METHOD http://host…`: a plain request for the proxy to forward.
    Plain { line: String },
}

pub(super) async fn serve(proxy: &Proxy, conn: Conn, mut client: TcpStream) {
    let mut buf = BytesMut::with_capacity(1024);
    let head =
        tokio::time::timeout(proxy.handshake_timeout, read_head(&mut client, &mut buf)).await;
    let end = match head {
        Ok(Ok(Some(end))) => end,
        // TLS (or anything not HTTP) straight to the port: as elsewhere.
        Ok(Ok(None)) => return proxy.serve_stream(conn, client, buf).await,
        Ok(Err(why)) => return refuse(proxy, &conn, &mut client, 400, why).await,
        Err(_) => {
            let why = "no complete proxy request within the handshake timeout".to_owned();
            return refuse(proxy, &conn, &mut client, 408, why).await;
        }
    };
    let ask = match parse(&buf[..end]) {
        Ok(ask) => ask,
        Err(why) => return refuse(proxy, &conn, &mut client, 400, why).await,
    };
    match ask {
        Ask::Connect { host, port } => {
            let to = match resolve(&host, port, proxy.connect_timeout).await {
                Ok(to) => to,
                Err(why) => return refuse(proxy, &conn, &mut client, 502, why).await,
            };
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            buf.advance(end);
            let tunnel = Conn {
                orig_dst: OrigDstAddr(to),
                via: Some(Via {
                    proxy: conn.orig_dst.0,
                    authority: host,
                }),
                ..conn
            };
            Box::pin(proxy.serve_stream(tunnel, client, buf)).await;
        }
        Ask::Plain { line } => {
            // Relayed to the proxy it was meant for, head included.
            proxy.telemetry.traffic.connection(ConnPath::Tcp);
            let client = super::prefixed::PrefixedIo::new(buf.freeze(), client);
            proxy.relay_plain_request(&conn, client, line).await;
        }
    }
}

/// Reads until the end of the request head; its length, or none when the
/// client does not speak HTTP (its first byte is not a token character).
async fn read_head(client: &mut TcpStream, buf: &mut BytesMut) -> Result<Option<usize>, String> {
    loop {
        if buf.first().is_some_and(|b| !b.is_ascii_alphabetic()) {
            return Ok(None);
        }
        if let Some(at) = memchr::memmem::find(buf, b"\r\n\r\n") {
            return Ok(Some(at + 4));
        }
        if buf.len() >= MAX_HEAD {
            return Err(format!("a proxy request head over {MAX_HEAD} bytes"));
        }
        buf.reserve(1024);
        match client.read_buf(buf).await {
            Ok(0) | Err(_) => {
                return Err("the client closed before its proxy request was complete".into());
            }
            Ok(_) => {}
        }
    }
}

/// The request line of a head a client sent a proxy.
pub(crate) fn parse(head: &[u8]) -> Result<Ask, String> {
    let head = std::str::from_utf8(head)
        .map_err(|_| "a proxy request head that is not text".to_owned())?;
    let line = head.split("\r\n").next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "not an HTTP request line: {:?}",
            crate::core::truncate(line, 80)
        ));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(format!("unsupported HTTP version {version:?}"));
    }
    // A method is a token (RFC 9110 §5.6.2): it goes into the record.
    if method.is_empty()
        || method.len() > 32
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(format!(
            "not an HTTP method: {:?}",
            crate::core::truncate(method, 32)
        ));
    }
    if method == "CONNECT" {
        let (host, port) = split_authority(target).ok_or_else(|| {
            format!(
                "CONNECT needs host:port, not {:?}",
                crate::core::truncate(target, 80)
            )
        })?;
        return Ok(Ask::Connect { host, port });
    }
    let Some(rest) = target.strip_prefix("http://") else {
        return Err(format!(
            "a proxy takes CONNECT or an absolute http:// URL, not {:?}",
            crate::core::truncate(target, 80)
        ));
    };
    // Recorded without the query, which may carry a credential.
    let shown = rest.split(['?', '#']).next().unwrap_or_default();
    Ok(Ask::Plain {
        line: format!("{method} http://{}", crate::core::truncate(shown, 256)),
    })
}

/// `host:port`, `[v6]:port`; the host lowercased, a name checked for
/// the characters a DNS name may hold.
fn split_authority(target: &str) -> Option<(String, u16)> {
    let port = |p: &str| p.parse::<u16>().ok().filter(|&p| p != 0);
    if let Some(v6) = target.strip_prefix('[') {
        let (host, rest) = v6.split_once(']')?;
        let ip: std::net::Ipv6Addr = host.parse().ok()?;
        return Some((ip.to_string(), port(rest.strip_prefix(':')?)?));
    }
    let (host, p) = target.rsplit_once(':')?;
    let host = host.to_ascii_lowercase();
    let name_like = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    (!host.is_empty() && name_like).then_some((host, port(p)?))
}

/// The address the tunnel goes to: the literal, or what airlock's own
/// resolver says for the name.
async fn resolve(host: &str, port: u16, wait: std::time::Duration) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    match tokio::time::timeout(wait, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(mut addrs)) => addrs
            .next()
            .ok_or_else(|| format!("the CONNECT authority {host} has no address")),
        Ok(Err(e)) => Err(format!(
            "the CONNECT authority {host} does not resolve: {e}"
        )),
        Err(_) => Err(format!("resolving the CONNECT authority {host} timed out")),
    }
}

/// Answers the proxy request with `status` and a JSON body saying why, and
/// records it.
async fn refuse(proxy: &Proxy, conn: &Conn, client: &mut TcpStream, status: u16, why: String) {
    let reason = match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        _ => "Bad Gateway",
    };
    let body = serde_json::json!({ "error": { "source": "airlock", "code": "ProxyRequestRefused", "message": why } })
        .to_string();
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(answer.as_bytes()).await;
    proxy.reject(conn, why);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_requests_are_read_as_proxies_read_them() {
        let connect =
            |t: &str| parse(format!("CONNECT {t} HTTP/1.1\r\nHost: {t}\r\n\r\n").as_bytes());
        assert_eq!(
            connect("Management.Azure.com:443"),
            Ok(Ask::Connect {
                host: "management.azure.com".into(),
                port: 443
            })
        );
        assert_eq!(
            connect("[::1]:8443"),
            Ok(Ask::Connect {
                host: "::1".into(),
                port: 8443
            })
        );
        for bad in [
            "management.azure.com",
            "x:0",
            "x:99999",
            "[nope]:443",
            "a b:443",
            "",
            "h/p:443",
        ] {
            assert!(connect(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse(b"GET http://example.com/a?sig=secret HTTP/1.1\r\n\r\n"),
            Ok(Ask::Plain {
                line: "GET http://example.com/a".into()
            })
        );
        assert!(parse(b"GET /relative HTTP/1.1\r\n\r\n").is_err());
        assert!(parse(b"CONNECT x:443 HTTP/2\r\n\r\n").is_err());
        assert!(parse(b"CONNECT  x:443 HTTP/1.1\r\n\r\n").is_err());
        // Found by fuzzing: a method that is not a token carried a query
        // into the record.
        assert!(parse(b"?ET http://x/?sig=s HTTP/1.1\r\n\r\n").is_err());
    }
}
