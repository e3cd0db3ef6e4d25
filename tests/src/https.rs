//! An in-process HTTPS client (hyper over tokio-rustls) that speaks whatever
//! protocol ALPN settles on, plus readers for its responses.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Request, Response, Uri};
use http_body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::WAIT;
use crate::pki::H2;

/// One client connection; the protocol is HTTP/2 if ALPN chose h2, else
/// HTTP/1.1. An HTTP/2 connection hands out more handles for concurrent
/// streams ([`HttpsConn::stream`]).
#[derive(Debug)]
pub enum HttpsConn<B> {
    H1(http1::SendRequest<B>),
    H2(http2::SendRequest<B>),
}

impl<B> HttpsConn<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    /// Dials `connect` and does TLS with SNI `host` (a name or an IP).
    pub async fn open(config: Arc<rustls::ClientConfig>, connect: SocketAddr, host: &str) -> Self {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned()).expect("server name");
        let tcp = TcpStream::connect(connect)
            .await
            .unwrap_or_else(|e| panic!("connect {connect}: {e}"));
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .unwrap_or_else(|e| panic!("TLS to {connect} as {host}: {e}"));
        let h2 = tls.get_ref().1.alpn_protocol() == Some(H2);
        let io = TokioIo::new(tls);
        // Each connection task ends once every sender is dropped and the
        // last response body is done.
        if h2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .expect("h2 handshake");
            tokio::spawn(conn);
            Self::H2(sender)
        } else {
            let (sender, conn) = http1::handshake(io).await.expect("http/1.1 handshake");
            tokio::spawn(conn.with_upgrades());
            Self::H1(sender)
        }
    }

    /// Another handle on this HTTP/2 connection, to send a concurrent stream.
    /// Panics on HTTP/1.1, which carries one request at a time.
    pub fn stream(&self) -> Self {
        match self {
            Self::H2(sender) => Self::H2(sender.clone()),
            Self::H1(_) => panic!("HTTP/1.1 has no concurrent streams"),
        }
    }

    /// Sends `req`, whose URI must be absolute (`https://name:port/path`).
    pub async fn send(&mut self, mut req: Request<B>) -> Response<Incoming> {
        let uri = req.uri().clone();
        let result = match self {
            // HTTP/2 carries scheme and authority as pseudo-headers, from the URI.
            Self::H2(sender) => tokio::time::timeout(WAIT, sender.send_request(req)).await,
            Self::H1(sender) => {
                // HTTP/1.1 wants origin-form plus a Host header.
                let authority = uri.authority().expect("absolute https URI");
                let host = HeaderValue::from_str(authority.as_str()).unwrap();
                req.headers_mut().entry(HOST).or_insert(host);
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                *req.uri_mut() = Uri::try_from(path).unwrap();
                sender.ready().await.expect("http/1.1 connection usable");
                tokio::time::timeout(WAIT, sender.send_request(req)).await
            }
        };
        let result = result.unwrap_or_else(|_| panic!("{uri}: no response within {WAIT:?}"));
        result.unwrap_or_else(|e| panic!("request {uri}: {e}"))
    }
}

/// Sends `req` (absolute URI) over a new TLS connection to `connect`, with
/// SNI = the URI's host. Panics on any failure.
pub async fn send<B>(
    config: Arc<rustls::ClientConfig>,
    connect: SocketAddr,
    req: Request<B>,
) -> Response<Incoming>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let host = req.uri().host().expect("absolute https URI").to_owned();
    HttpsConn::open(config, connect, &host)
        .await
        .send(req)
        .await
}

/// A GET of `url` with an empty body.
pub async fn get(
    config: Arc<rustls::ClientConfig>,
    connect: SocketAddr,
    url: &str,
) -> Response<Incoming> {
    let req = Request::get(url)
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    send(config, connect, req).await
}

/// The whole body, parsed as JSON.
pub async fn json(resp: Response<Incoming>) -> Value {
    let body = resp.into_body().collect().await.expect("read body");
    let body = body.to_bytes();
    serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("body {:?}: {e}", String::from_utf8_lossy(&body)))
}

/// Reads the body frame by frame; returns its length after checking every
/// byte against [`crate::body::pattern_byte`].
pub async fn pattern_len(resp: Response<Incoming>) -> u64 {
    let mut body = resp.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.unwrap_or_else(|e| panic!("body after {n} bytes: {e}"));
        for &b in frame.data_ref().map_or(&[][..], |d| &d[..]) {
            assert_eq!(b, crate::body::pattern_byte(n), "byte {n} of the pattern");
            n += 1;
        }
    }
    n
}
