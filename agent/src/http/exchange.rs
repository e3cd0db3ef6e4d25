//! One request/response exchange as the audit trail sees it: filled in as
//! the exchange proceeds, written once when it ends (however it ends).

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::addrs::Endpoint;
use crate::audit::{AuditLog, HttpRecord, RecordKind, RequestInfo, ResponseInfo, TlsInfo};
use crate::capture::ProcessInfo;

/// What every exchange on one connection shares.
#[derive(Debug)]
pub struct ConnCtx {
    pub process: Arc<ProcessInfo>,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub sni: Option<String>,
    pub alpn: Option<String>,
    pub audit: AuditLog,
}

#[derive(Debug)]
pub(super) struct Exchange {
    ctx: Arc<ConnCtx>,
    started: Instant,
    method: String,
    host: String,
    path: String,
    status: AtomicU16,
    pub(super) request_bytes: AtomicU64,
    pub(super) response_bytes: AtomicU64,
    upgraded: AtomicBool,
    error: Mutex<Option<String>>,
    done: AtomicBool,
}

impl Exchange {
    pub(super) fn new<B>(ctx: Arc<ConnCtx>, req: &http::Request<B>) -> Arc<Self> {
        let host = req
            .uri()
            .host()
            .map(str::to_owned)
            .or_else(|| {
                let h = req.headers().get(http::header::HOST)?.to_str().ok()?;
                Some(
                    h.rsplit_once(':')
                        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
                        .map_or(h, |(h, _)| h)
                        .to_owned(),
                )
            })
            .or_else(|| ctx.sni.clone())
            .unwrap_or_else(|| ctx.dst.ip.to_string());
        Arc::new(Self {
            started: Instant::now(),
            method: req.method().to_string(),
            host,
            path: req
                .uri()
                .path_and_query()
                .map_or_else(|| "/".to_owned(), ToString::to_string),
            status: AtomicU16::new(0),
            request_bytes: AtomicU64::new(0),
            response_bytes: AtomicU64::new(0),
            upgraded: AtomicBool::new(false),
            error: Mutex::new(None),
            done: AtomicBool::new(false),
            ctx,
        })
    }

    /// The request's host (authority without port, else Host, else SNI).
    pub(super) fn host(&self) -> &str {
        &self.host
    }

    pub(super) fn set_status(&self, status: http::StatusCode) {
        self.status.store(status.as_u16(), Ordering::Relaxed);
    }

    pub(super) fn set_upgraded(&self) {
        self.upgraded.store(true, Ordering::Relaxed);
    }

    /// Records why the exchange failed; the first reason wins.
    pub(super) fn set_error(&self, why: impl Into<String>) {
        let mut e = self.error.lock().unwrap_or_else(|p| p.into_inner());
        e.get_or_insert_with(|| why.into());
    }

    /// Writes the audit record; later calls do nothing.
    pub(super) fn finish(&self) {
        if self.done.swap(true, Ordering::AcqRel) {
            return;
        }
        let record = HttpRecord {
            kind: RecordKind::Http,
            process: self.ctx.process.clone(),
            src: self.ctx.src,
            dst: self.ctx.dst,
            tls: TlsInfo {
                sni: self.ctx.sni.clone(),
                alpn: self.ctx.alpn.clone(),
            },
            request: RequestInfo {
                method: self.method.clone(),
                host: self.host.clone(),
                port: self.ctx.dst.port,
                path: self.path.clone(),
                bytes: self.request_bytes.load(Ordering::Relaxed),
            },
            response: ResponseInfo {
                status: self.status.load(Ordering::Relaxed),
                bytes: self.response_bytes.load(Ordering::Relaxed),
            },
            upgraded: self.upgraded.load(Ordering::Relaxed),
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error: self.error.lock().unwrap_or_else(|p| p.into_inner()).take(),
        };
        tracing::info!(pid = record.process.pid, comm = %record.process.comm, method = %record.request.method,
            host = %record.request.host, path = %record.request.path, status = record.response.status, "http");
        if let Err(e) = self.ctx.audit.write(&record) {
            tracing::error!(error = %e, "audit record lost");
        }
    }
}
