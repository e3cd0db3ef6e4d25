//! Relaying one captured connection to its original destination as TCP,
//! and writing its audit record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::addrs::{ClientAddr, Endpoint};
use crate::audit::{AuditLog, ConnectionRecord, RecordKind};
use crate::capture::{Captured, OrigDstTable};

/// Everything a connection task needs.
#[derive(Debug)]
pub struct Relay {
    table: Arc<OrigDstTable>,
    audit: AuditLog,
    connect_timeout: Duration,
}

impl Relay {
    pub fn new(table: Arc<OrigDstTable>, audit: AuditLog, connect_timeout: Duration) -> Self {
        Self {
            table,
            audit,
            connect_timeout,
        }
    }

    /// Handles one accepted connection to the end.
    pub async fn handle(&self, mut client: TcpStream, peer: ClientAddr) {
        let Some(captured) = self.table.take(peer) else {
            // Not redirected by our programs (someone dialled the listener
            // directly): we do not know where it was going, so it goes nowhere.
            tracing::warn!(%peer, "connection without a capture record refused");
            return;
        };
        let Captured {
            orig_dst,
            mut process,
        } = captured;
        if let Err(e) = self.audit.check() {
            // Fail closed: nothing is forwarded that cannot be recorded.
            tracing::error!(%peer, dst = %orig_dst, error = %e, "connection refused");
            return;
        }
        process = tokio::task::spawn_blocking(move || {
            process.enrich();
            process
        })
        .await
        .unwrap_or_default();
        let started = Instant::now();
        tracing::info!(pid = process.pid, comm = %process.comm, dst = %orig_dst, "captured connection");

        let (bytes_out, bytes_in, error) = match tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect(orig_dst.0),
        )
        .await
        {
            Err(_) => (0, 0, Some(format!("connect to {orig_dst} timed out"))),
            Ok(Err(e)) => (0, 0, Some(format!("connect to {orig_dst}: {e}"))),
            Ok(Ok(mut upstream)) => {
                let _ = upstream.set_nodelay(true);
                let _ = client.set_nodelay(true);
                match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    Ok((out, inn)) => (out, inn, None),
                    // Byte counts of a reset connection are lost by
                    // copy_bidirectional; the error says what happened.
                    Err(e) => (0, 0, Some(format!("relay: {e}"))),
                }
            }
        };
        if let Some(e) = &error {
            tracing::warn!(pid = process.pid, dst = %orig_dst, error = %e, "relay failed");
        }
        let record = ConnectionRecord {
            kind: RecordKind::Connection,
            process,
            src: Endpoint::from(peer.0),
            dst: Endpoint::from(orig_dst.0),
            bytes_out,
            bytes_in,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error,
        };
        if let Err(e) = self.audit.write(&record) {
            tracing::error!(error = %e, dst = %orig_dst, "audit record lost");
        }
    }
}
