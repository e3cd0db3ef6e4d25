//! Interception: TLS to the upstream first (verified; its ALPN choice is
//! what the client gets), then TLS to the client with a minted leaf, then
//! HTTP relayed between the two.

use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::connection::{Conn, Proxy};
use super::hello::ClientHelloInfo;
use super::prefixed::PrefixedIo;
use crate::core::record::{RecordKind, TlsRefusedRecord};
use crate::http::{Dialer, Home, PoolKey, Proto, UpstreamConn};
use crate::journal::Throttle;
use crate::tls::{ALPN_H2, ALPN_HTTP11};

/// The first read's buffer: a request line and headers usually fit.
const FIRST_READ: usize = 4096;
/// How long a client may be silent after its handshake before its upstream
/// connection is let go of. A client that came to ask sends its request
/// with (TLS 1.3) or straight after the handshake's last flight; one
/// silent for this long is holding a connection open for later.
const RELEASE_AFTER: Duration = Duration::from_millis(100);

const CA_HINT: &str = "the client does not trust airlock's CA: run `airlock ca install`, and for Node/Python/az add the lines from `airlock ca env` to the agent's environment";

pub(super) async fn intercept(
    proxy: &Proxy,
    conn: &Conn,
    client: PrefixedIo<TcpStream>,
    hello: ClientHelloInfo,
) {
    let ip = conn.orig_dst.0.ip().to_canonical();
    // Only protocols airlock can relay are offered upstream.
    let offer: Vec<Vec<u8>> = hello
        .alpn
        .iter()
        .filter(|p| p.as_slice() == ALPN_H2 || p.as_slice() == ALPN_HTTP11)
        .cloned()
        .collect();
    let name = match hello
        .sni
        .as_deref()
        .map(|s| ServerName::try_from(s.to_owned()))
    {
        Some(Ok(n)) => n,
        _ => ServerName::IpAddress(ip.into()),
    };
    let config = match proxy.upstream_tls.config(&offer) {
        Ok(c) => c,
        Err(e) => return setup_failed(proxy, conn, hello.sni, &e),
    };
    let home = Home {
        pool: proxy.pool.clone(),
        key: PoolKey {
            dst: conn.orig_dst.0,
            name: name.clone(),
            offer,
        },
    };
    let dialer = Dialer {
        dst: conn.orig_dst.0,
        name,
        config: Some(config),
        connect_timeout: proxy.connect_timeout,
        route: proxy.upstream_tls.route().clone(),
    };
    let traffic = &proxy.telemetry.traffic;
    // Futures that run once (handshakes) or long (the HTTP service) are
    // boxed: a connection's task is then as small as its idle state, not
    // as large as the largest of them (9 KiB unboxed).
    let upstream = if let Some(parked) = proxy.pool.take(&home.key) {
        traffic.upstream_connection(true);
        (parked.alpn.clone(), Ok(UpstreamConn::resume(parked, home)))
    } else {
        match Box::pin(dialer.connect()).await {
            Ok(stream) => {
                traffic.upstream_connection(false);
                let alpn = stream.alpn();
                // Later re-dials offer only what was agreed (nothing, if
                // nothing was), so a re-dial cannot switch HTTP versions.
                let mut redial = dialer.clone();
                let agreed: &[Vec<u8>] = alpn.as_slice();
                if let Ok(c) = proxy.upstream_tls.config(agreed) {
                    redial.config = Some(c);
                }
                (alpn, Ok(UpstreamConn::start(redial, stream, home)))
            }
            Err(e) => {
                tracing::warn!(pid = conn.process.pid, sni = ?hello.sni, dst = %conn.orig_dst, error = %e, "upstream failed; answering the client with 502");
                // Still complete the client's handshake so it can be told why.
                let alpn = [ALPN_HTTP11, ALPN_H2]
                    .into_iter()
                    .find(|p| home.key.offer.iter().any(|o| o == p))
                    .map(<[u8]>::to_vec);
                (alpn, Err(e))
            }
        }
    };
    let (alpn, upstream) = upstream;
    // A client that names no server is served by destination address.
    let server_config = match Box::pin(proxy.client_tls.config(
        hello.server_name(),
        &ip.to_string(),
        alpn.as_deref(),
    ))
    .await
    {
        Ok(c) => c,
        Err(e) => return setup_failed(proxy, conn, hello.sni, &e),
    };
    let client = match tokio::time::timeout(
        proxy.handshake_timeout,
        Box::pin(TlsAcceptor::from(server_config).accept(client)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if refuses_certificate(&e) => {
            return refused(proxy, conn, hello.sni, e.to_string());
        }
        Ok(Err(e)) => return unfinished(proxy, conn, hello.sni, &e.to_string()),
        Err(_) => return unfinished(proxy, conn, hello.sni, "timed out"),
    };
    let alpn = alpn.map(|a| String::from_utf8_lossy(&a).into_owned());
    let ctx = proxy.conn_ctx(conn, hello.sni, alpn, false);
    let proto = Proto::from_alpn(client.get_ref().1.alpn_protocol());
    let mut stopping = proxy.stopping.clone();
    let first = tokio::select! {
        first = first_bytes(client, upstream.as_ref().ok(), proxy.first_request_timeout) => first,
        // Nothing asked yet, nothing to finish: close.
        () = crate::http::stopped(&mut stopping) => return,
    };
    let client = match first {
        First::Sent(client) => client,
        First::Silent => {
            // A handshake and then silence holds a connection (and its
            // descriptors) for nothing: close it.
            let why = format!(
                "no request within {} ms of the TLS handshake (proxy.first_request_timeout_ms)",
                proxy.first_request_timeout.as_millis()
            );
            tracing::debug!(pid = conn.process.pid, comm = %conn.process.comm, dst = %conn.orig_dst, "{why}");
            proxy.write(&conn.record(RecordKind::Connection, ctx.sni.clone(), (0, 0), Some(why)));
            return;
        }
        First::Closed(how) => {
            // .NET on Linux checks the certificate only once the TLS 1.3
            // handshake is over, then closes without an alert: for a
            // client that came to make requests, this is a refusal.
            let error = format!(
                "the client closed the connection after the TLS handshake without sending a request ({how}): clients that check the certificate only after the handshake (.NET) do this when they do not trust airlock's CA"
            );
            return refused(proxy, conn, ctx.sni.clone(), error);
        }
        First::Failed(e) => {
            let error = format!("reading the client's first request: {e}");
            proxy.write(&conn.record(RecordKind::Connection, ctx.sni.clone(), (0, 0), Some(error)));
            return;
        }
    };
    Box::pin(crate::http::serve(client, proto, upstream, ctx, stopping)).await;
}

/// The client's side of an intercepted connection.
type ClientTls = TlsStream<PrefixedIo<TcpStream>>;

/// How an intercepted client began after its handshake.
enum First<S> {
    /// It sent something: the stream, replaying what was read.
    Sent(PrefixedIo<S>),
    /// Nothing within `proxy.first_request_timeout_ms`.
    Silent,
    /// It closed (or reset) the connection without a byte of request.
    Closed(String),
    /// The TLS layer failed after the handshake.
    Failed(std::io::Error),
}

/// The first plaintext the client sends. An idle client costs no buffer
/// and no HTTP server state (hyper's connection and buffers, about 24 KiB)
/// until it sends: the buffer is made once its socket is readable, or at
/// once if rustls already holds what it sent with its handshake. A client
/// still silent after `RELEASE_AFTER` lets go of its upstream connection
/// (`UpstreamConn::release`): the request it sends later takes one again.
async fn first_bytes(
    mut client: ClientTls,
    upstream: Option<&UpstreamConn>,
    wait: Duration,
) -> First<ClientTls> {
    let now = tokio::time::Instant::now();
    let deadline = now + wait;
    if client.get_ref().1.wants_read() {
        let socket = client.get_ref().0.get_ref();
        let soon = deadline.min(now + RELEASE_AFTER);
        if tokio::time::timeout_at(soon, socket.readable())
            .await
            .is_err()
        {
            if let Some(upstream) = upstream {
                upstream.release();
            }
            if tokio::time::timeout_at(deadline, socket.readable())
                .await
                .is_err()
            {
                return First::Silent;
            }
        }
    }
    let mut first = bytes::BytesMut::with_capacity(FIRST_READ);
    match tokio::time::timeout_at(deadline, client.read_buf(&mut first)).await {
        Err(_) => First::Silent,
        Ok(Ok(0)) => First::Closed("closed".into()),
        Ok(Ok(_)) => First::Sent(PrefixedIo::new(first.freeze(), client)),
        Ok(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            ) =>
        {
            First::Closed(e.to_string())
        }
        Ok(Err(e)) => First::Failed(e),
    }
}

/// airlock could not set up its side (a local TLS configuration error).
fn setup_failed(proxy: &Proxy, conn: &Conn, sni: Option<String>, e: &crate::tls::TlsError) {
    tracing::error!(dst = %conn.orig_dst, error = %e, "cannot intercept");
    proxy.write(&conn.record(RecordKind::Connection, sni, (0, 0), Some(e.to_string())));
}

/// Whether a failed handshake is the client refusing airlock's certificate.
/// A client that cannot validate a certificate must abort with an alert
/// saying so (RFC 8446 §4.4.2.4, §6.2); one that only closes or resets the
/// connection (a load generator stopping, a process killed mid-handshake)
/// or cannot negotiate at all has not judged the certificate.
fn refuses_certificate(e: &std::io::Error) -> bool {
    use rustls::AlertDescription as A;
    matches!(
        e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::AlertReceived(
            A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::BadCertificateStatusResponse
        ))
    )
}

/// The client's handshake ended some other way: a `connection` record with
/// why, no CA hint.
fn unfinished(proxy: &Proxy, conn: &Conn, sni: Option<String>, why: &str) {
    let error = format!("TLS handshake with the client not completed: {why}");
    tracing::debug!(pid = conn.process.pid, comm = %conn.process.comm, sni = ?sni, %error, "connection ended");
    proxy.write(&conn.record(RecordKind::Connection, sni, (0, 0), Some(error)));
}

fn refused(proxy: &Proxy, conn: &Conn, sni: Option<String>, error: String) {
    proxy.telemetry.traffic.client_refused();
    // A client can cause this at will: at most a line a second.
    static REFUSED: Throttle = Throttle::new(Duration::from_secs(1));
    if let Some(held) = REFUSED.admit() {
        tracing::warn!(pid = conn.process.pid, comm = %conn.process.comm, sni = ?sni, error = %error, hint = CA_HINT, held, "client refused airlock's certificate");
    }
    proxy.write(&TlsRefusedRecord {
        kind: RecordKind::TlsClientRefused,
        ends: conn.ends(),
        sni,
        error,
        hint: CA_HINT,
    });
}
