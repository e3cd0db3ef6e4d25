//! Decrypted HTTP between client and upstream: hyper on both sides with the
//! same protocol (ALPN is mirrored), bodies streamed both ways, upgrades
//! relayed after the 101, one audit record per request.

mod body;
mod budget;
pub(crate) mod decode;
mod exchange;
mod forward;
mod headers;
mod idle;
mod inspect;
mod pool;
mod release;
mod scan;
pub(crate) mod shape;
mod tap;
mod upstream;

pub(crate) use budget::BodyBudget;
pub(crate) use exchange::ConnCtx;
pub(crate) use forward::serve;
pub(crate) use forward::stopped;
pub(crate) use pool::{PoolKey, UpstreamPool};
pub(crate) use upstream::{Dialer, Home, UpstreamConn, UpstreamError};

use bytes::Bytes;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type on both sides of the relay.
pub(crate) type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// The HTTP version spoken on a connection (the same on both sides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    Http1,
    Http2,
}

impl Proto {
    /// From the negotiated ALPN: `h2` is HTTP/2, anything else HTTP/1.1.
    pub(crate) fn from_alpn(alpn: Option<&[u8]>) -> Self {
        if alpn == Some(crate::tls::ALPN_H2) {
            Self::Http2
        } else {
            Self::Http1
        }
    }
}
