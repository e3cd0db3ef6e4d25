//! Exports: the trail streamed to systems that are not airlock's own, as
//! it is written. Today a SIEM's syslog receiver (`[export.syslog]`):
//! RFC 5424 messages, one per joined exchange or other record, the record
//! as JSON ([`message`], cut to fit by [`cap`]), over RELP ([`relp`]), TCP
//! or TLS ([`stream`]) or datagrams ([`datagram`]) — [`link`] says what
//! each can prove — sent at least once by the [`exporter`], which follows
//! the files ([`reading`]) and keeps its place ([`cursor`]).

mod cap;
mod cursor;
mod datagram;
mod exporter;
mod link;
mod message;
mod reading;
mod relp;
mod stream;

pub(crate) use exporter::{ExportStats, Exporter};

use std::path::PathBuf;

/// What can go wrong between airlock and a receiver.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExportError {
    #[error("cannot reach {to}: {why}")]
    Connect { to: String, why: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0:?} is not a name TLS can verify")]
    ServerName(String),
    #[error("the receiver closed the connection")]
    Closed,
    #[error("{0}")]
    Protocol(String),
    #[error("{what}: nothing within {secs}s")]
    Timeout { what: &'static str, secs: u64 },
    #[error("the cursor {path}: {error}")]
    Cursor {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the local trail: {0}")]
    Trail(std::io::Error),
}
