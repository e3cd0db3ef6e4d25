//! One accepted connection, from the kernel's record to the path it takes:
//! plain TCP relay, TLS splice, or interception.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;

use super::hello::{self, ClientHelloInfo, Sniffed};
use super::prefixed::PrefixedIo;
use super::{connect, metadata, mitm, splice};
use crate::audit::AuditLog;
use crate::capture::{Captured, OrigDstTable};
use crate::core::addrs::{ClientAddr, Endpoint, OrigDstAddr};
use crate::core::read_lock;
use crate::core::record::{ConnEnds, ConnectionRecord, RecordKind};
use crate::core::{Decision, ProcessInfo};
use crate::host::InterceptList;
use crate::journal::Throttle;
use crate::telemetry::ConnPath;
use crate::tls::{ClientTls, UpstreamTls};

/// Everything connection tasks share.
#[derive(Debug)]
pub(crate) struct Proxy {
    pub table: Arc<OrigDstTable>,
    /// What /proc said about the processes connecting lately.
    pub processes: crate::capture::ProcessCache,
    pub audit: AuditLog,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    /// `proxy.first_request_timeout_ms`.
    pub first_request_timeout: Duration,
    /// `proxy.max_connections`.
    pub max_connections: usize,
    /// `proxy.body_buffer_bytes`.
    pub body_budget: Arc<crate::http::BodyBudget>,
    /// `proxy.response_idle_ms`; None: never.
    pub response_idle: Option<Duration>,
    /// `proxy.tunnel_idle_ms`; None: never.
    pub tunnel_idle: Option<Duration>,
    /// `proxy.intercept_without_sni`: TLS that names no server is
    /// decrypted, whatever its destination address.
    pub intercept_without_sni: bool,
    /// `proxy.non_tls`: whether plain TCP is relayed or refused.
    pub non_tls: crate::config::NonTls,
    /// `capture.imds`: destinations served as plain HTTP.
    pub imds: Vec<SocketAddr>,
    /// `capture.proxy_ports`: connections to them speak to a proxy.
    pub proxy_ports: Vec<u16>,
    /// Replaced on a config reload.
    pub intercept: Arc<std::sync::RwLock<InterceptList>>,
    pub on_audit_failure: crate::config::OnAuditFailure,
    pub client_tls: ClientTls,
    pub upstream_tls: Arc<UpstreamTls>,
    /// Upstream connections kept between client connections.
    pub pool: Arc<crate::http::UpstreamPool>,
    pub gate: Arc<crate::gate::Gate>,
    pub masker: crate::mask::Masker,
    pub approvals: Arc<crate::approval::Approvals>,
    pub excerpt_bytes: usize,
    pub scan_before_forward: usize,
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// Becomes true when airlock stops: intercepted connections finish
    /// what is in flight and close.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// What is known about a connection once it is accepted and attributed.
#[derive(Clone, Debug)]
pub(super) struct Conn {
    pub process: Arc<ProcessInfo>,
    pub peer: ClientAddr,
    /// Where the client is going: what it dialled, or, through a proxy
    /// port, the `CONNECT` authority resolved.
    pub orig_dst: OrigDstAddr,
    /// Through a proxy port: the proxy it dialled, and the authority (the
    /// name) it asked for.
    pub via: Option<Via>,
    pub started: Instant,
}

/// A tunnel a client asked a proxy port for.
#[derive(Clone, Debug)]
pub(super) struct Via {
    pub proxy: SocketAddr,
    pub authority: String,
}

impl Conn {
    /// The process and both addresses, as records name them.
    pub(super) fn ends(&self) -> ConnEnds {
        ConnEnds::new(
            self.process.clone(),
            Endpoint::from(self.peer.0),
            Endpoint::from(self.orig_dst.0),
            self.via.as_ref().map(|v| Endpoint::from(v.proxy)),
        )
    }

    /// A connection-level record (`connection`, `tls_passthrough`).
    pub(super) fn record(
        &self,
        kind: RecordKind,
        sni: Option<String>,
        bytes: (u64, u64),
        error: Option<String>,
    ) -> ConnectionRecord {
        ConnectionRecord {
            kind,
            ends: self.ends(),
            sni,
            relayed_to: None,
            decision: None,
            proxied_request: None,
            bytes_out: bytes.0,
            bytes_in: bytes.1,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error,
        }
    }
}

/// The record of a spliced connection, written when it ends — also if
/// the task is aborted (shutdown after the drain timeout), with the bytes
/// counted so far.
struct Spliced<'a> {
    proxy: &'a Proxy,
    conn: &'a Conn,
    kind: RecordKind,
    sni: Option<String>,
    counts: splice::Counts,
    /// Where it was relayed, when that is not the original destination.
    relayed_to: Option<Endpoint>,
    decision: Option<Decision>,
    proxied_request: Option<String>,
    /// `None` while running; `Some(error)` once ended.
    ended: Option<Option<String>>,
}

impl<'a> Spliced<'a> {
    fn new(proxy: &'a Proxy, conn: &'a Conn, kind: RecordKind, sni: Option<String>) -> Self {
        Self {
            proxy,
            conn,
            kind,
            sni,
            counts: splice::Counts::default(),
            relayed_to: None,
            decision: None,
            proxied_request: None,
            ended: None,
        }
    }

    fn ended(&mut self, error: Option<String>) {
        self.ended = Some(error);
    }
}

impl Drop for Spliced<'_> {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let error = match self.ended.take() {
            Some(e) => e,
            None => Some("aborted: airlock stopped while the connection was open".into()),
        };
        let bytes = (
            self.counts.out.load(Relaxed),
            self.counts.back.load(Relaxed),
        );
        let mut rec = self.conn.record(self.kind, self.sni.take(), bytes, error);
        rec.relayed_to = self.relayed_to.take();
        rec.decision = self.decision.take();
        rec.proxied_request = self.proxied_request.take();
        self.proxy.write(&rec);
    }
}

impl Proxy {
    /// Handles one accepted connection to the end.
    pub(crate) async fn handle(&self, client: TcpStream, peer: ClientAddr) {
        let traffic = &self.telemetry.traffic;
        let _open = traffic.open();
        if traffic.open_connections() > self.max_connections as u64 {
            // Its kernel record is taken all the same: handed out once.
            let _ = self.table.take(peer);
            traffic.connection(ConnPath::OverLimit);
            // A client can cause this at will: at most a line a second.
            static OVER_LIMIT: Throttle = Throttle::new(Duration::from_secs(1));
            if let Some(held) = OVER_LIMIT.admit() {
                tracing::warn!(%peer, max = self.max_connections, held, "connection refused: proxy.max_connections are open");
            }
            return;
        }
        let Some(captured) = self.table.take(peer) else {
            traffic.connection(ConnPath::Refused);
            // Not redirected by our programs (someone dialled the listener
            // directly): we do not know where it was going, so it goes nowhere.
            // A client can cause this at will: at most a line a second.
            static UNRECORDED: Throttle = Throttle::new(Duration::from_secs(1));
            if let Some(held) = UNRECORDED.admit() {
                tracing::warn!(%peer, held, "connection without a capture record refused");
            }
            return;
        };
        let Captured {
            orig_dst,
            mut process,
        } = captured;
        if let Err(e) = self.audit.check()
            && self.on_audit_failure == crate::config::OnAuditFailure::Deny
        {
            // Fail closed: nothing is forwarded that cannot be recorded.
            traffic.connection(ConnPath::Refused);
            tracing::error!(%peer, dst = %orig_dst, error = %e, "connection refused");
            return;
        }
        process = self.processes.enrich(process).await;
        let conn = Conn {
            process: Arc::new(process),
            peer,
            orig_dst,
            via: None,
            started: Instant::now(),
        };
        let _ = client.set_nodelay(true);
        if self.is_imds(orig_dst) {
            return Box::pin(metadata::serve(self, &conn, client)).await;
        }
        if self.proxy_ports.contains(&orig_dst.0.port()) {
            return Box::pin(connect::serve(self, conn, client)).await;
        }
        self.serve_stream(conn, client, BytesMut::new()).await;
    }

    /// A connection to where `conn` says, its first bytes already read in
    /// `first` (after a `CONNECT`, what the client sent beyond it): TLS is
    /// intercepted or spliced, anything else relayed or refused.
    pub(super) async fn serve_stream(
        &self,
        conn: Conn,
        mut client: TcpStream,
        mut first: BytesMut,
    ) {
        let traffic = &self.telemetry.traffic;
        let orig_dst = conn.orig_dst;
        let sniffed = match tokio::time::timeout(
            self.handshake_timeout,
            hello::sniff(&mut client, &mut first),
        )
        .await
        {
            Ok(Ok(s)) => s,
            // Silence is not a protocol: splicing it would let a client wait
            // out the timeout and then speak TLS undecrypted. Close it.
            Err(_) => {
                return self.reject(
                    &conn,
                    "no complete TLS ClientHello within the handshake timeout".into(),
                );
            }
            Ok(Err(hello::HelloError::Closed)) => return,
            Ok(Err(e)) => return self.reject(&conn, e.to_string()),
        };
        let client = PrefixedIo::new(first.freeze(), client);
        match sniffed {
            Sniffed::NotTls if self.non_tls == crate::config::NonTls::Deny => self.reject(
                &conn,
                "not TLS: plain TCP on a captured port is refused (proxy.non_tls = \"deny\")"
                    .into(),
            ),
            Sniffed::NotTls => {
                traffic.connection(ConnPath::Tcp);
                tracing::debug!(pid = conn.process.pid, comm = %conn.process.comm, dst = %orig_dst, "relaying TCP");
                // Boxed, as every long-lived path here: the connection's
                // task is as large as its largest state, and an idle
                // intercepted connection would otherwise carry a relay's.
                Box::pin(self.relay(
                    &conn,
                    client,
                    RecordKind::Connection,
                    None,
                    orig_dst.0,
                    None,
                ))
                .await;
            }
            Sniffed::Tls(hello) => {
                // Through a proxy: the name is the authority asked for, or
                // nothing is checked against what the tunnel reaches.
                if let (Some(via), Some(name)) = (&conn.via, hello.server_name())
                    && !name.eq_ignore_ascii_case(&via.authority)
                {
                    return self.reject(
                        &conn,
                        format!(
                            "the TLS server name {name:?} is not the CONNECT authority {:?}",
                            via.authority
                        ),
                    );
                }
                let intercepted = {
                    let intercept = read_lock(&self.intercept);
                    match hello.server_name() {
                        Some(name) => intercept.matches(name),
                        // Without a name there is nothing to tell an
                        // intercepted host from another by: splicing would
                        // let any client reach Azure unaudited by dialling
                        // its address (curl -k https://IP/ -H 'Host: …').
                        None => {
                            self.intercept_without_sni
                                || intercept.matches(&orig_dst.0.ip().to_canonical().to_string())
                        }
                    }
                };
                if intercepted {
                    traffic.connection(ConnPath::Intercepted);
                    // Boxed: see `mitm::intercept`.
                    Box::pin(mitm::intercept(self, &conn, client, hello)).await;
                } else {
                    Box::pin(self.pass_through(&conn, client, hello)).await;
                }
            }
        }
    }

    /// Whether `dst` is an instance metadata service (`capture.imds`).
    fn is_imds(&self, dst: OrigDstAddr) -> bool {
        let canonical = |a: SocketAddr| (a.ip().to_canonical(), a.port());
        self.imds.iter().any(|a| canonical(*a) == canonical(dst.0))
    }

    /// What every exchange on an inspected connection shares.
    pub(super) fn conn_ctx(
        &self,
        conn: &Conn,
        sni: Option<String>,
        alpn: Option<String>,
        imds: bool,
    ) -> Arc<crate::http::ConnCtx> {
        Arc::new(crate::http::ConnCtx {
            process: conn.process.clone(),
            src: Endpoint::from(conn.peer.0),
            dst: Endpoint::from(conn.orig_dst.0),
            proxy: conn.via.as_ref().map(|v| Endpoint::from(v.proxy)),
            sni,
            alpn,
            audit: self.audit.clone(),
            on_audit_failure: self.on_audit_failure,
            gate: self.gate.clone(),
            masker: self.masker.clone(),
            approvals: self.approvals.clone(),
            excerpt_bytes: self.excerpt_bytes,
            scan_before_forward: self.scan_before_forward,
            tunnel_idle: self.tunnel_idle,
            telemetry: self.telemetry.clone(),
            imds,
            body_budget: self.body_budget.clone(),
            response_idle: self.response_idle,
            session: Default::default(),
        })
    }

    /// TLS for a host that is not intercepted goes, byte for byte, only to
    /// the server its name says: to the original destination if airlock's
    /// own resolver gives that address for the name, else to an address
    /// it does give. A harmless name on a connection to an Azure address
    /// (domain fronting) thus reaches the harmless name's server. A name
    /// airlock cannot resolve goes nowhere. Without a name (only with
    /// `proxy.intercept_without_sni = false`) there is nothing to check.
    async fn pass_through<C>(&self, conn: &Conn, client: C, hello: ClientHelloInfo)
    where
        C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let decision = self
            .gate
            .policy()
            .current()
            .decide_connection(hello.server_name(), &conn.process);
        if decision.action != crate::core::Action::Allow {
            let why = format!("refused by policy: {}", decision.reason);
            return self.refuse_passthrough(conn, hello.sni, why, decision);
        }
        let to = match hello.server_name() {
            None => Ok(conn.orig_dst.0),
            // The upstream proxy connects to the name's own server.
            Some(name) if self.upstream_tls.route().proxies(name) => Ok(conn.orig_dst.0),
            Some(name) => splice::resolve(name, conn.orig_dst, self.connect_timeout).await,
        };
        let to = match to {
            Ok(to) => to,
            Err(why) => return self.refuse_passthrough(conn, hello.sni, why, decision),
        };
        self.telemetry.traffic.connection(ConnPath::Passthrough);
        tracing::debug!(pid = conn.process.pid, comm = %conn.process.comm, sni = ?hello.sni, dst = %conn.orig_dst, %to, "TLS passthrough");
        self.relay(
            conn,
            client,
            RecordKind::TlsPassthrough,
            hello.sni,
            to,
            Some(decision),
        )
        .await;
    }

    /// A passed-through connection closed before a byte was relayed, and
    /// recorded with `why` and what policy said.
    fn refuse_passthrough(
        &self,
        conn: &Conn,
        sni: Option<String>,
        why: String,
        decision: Decision,
    ) {
        self.telemetry.traffic.connection(ConnPath::Refused);
        // A client can cause this at will: at most a line a second.
        static PASSTHROUGH_REFUSED: Throttle = Throttle::new(Duration::from_secs(1));
        if let Some(held) = PASSTHROUGH_REFUSED.admit() {
            tracing::warn!(pid = conn.process.pid, comm = %conn.process.comm, sni = ?sni, dst = %conn.orig_dst, error = %why, held, "TLS passthrough refused");
        }
        let mut rec = conn.record(RecordKind::TlsPassthrough, sni, (0, 0), Some(why));
        rec.decision = Some(decision);
        self.write(&rec);
    }

    /// Splices `client` to `to` byte for byte, and records the connection
    /// (as `kind`) when it ends.
    async fn relay<C>(
        &self,
        conn: &Conn,
        client: C,
        kind: RecordKind,
        sni: Option<String>,
        to: SocketAddr,
        decision: Option<Decision>,
    ) where
        C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut rec = Spliced::new(self, conn, kind, sni.clone());
        rec.relayed_to = (to != conn.orig_dst.0).then(|| Endpoint::from(to));
        rec.decision = decision;
        // TLS to a named server takes airlock's route upstream; plain TCP
        // goes where it was going.
        let route = self.upstream_tls.route();
        let named = sni.as_deref().map(|name| (route.as_ref(), name));
        let error = Box::pin(splice::splice(
            client,
            to,
            named,
            self.connect_timeout,
            self.tunnel_idle,
            &rec.counts,
        ))
        .await;
        rec.ended(error);
    }

    /// A plain request to a proxy port, relayed to that proxy and recorded
    /// with its request line.
    pub(super) async fn relay_plain_request<C>(&self, conn: &Conn, client: C, line: String)
    where
        C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut rec = Spliced::new(self, conn, RecordKind::Connection, None);
        rec.proxied_request = Some(line);
        let error = Box::pin(splice::splice(
            client,
            conn.orig_dst.0,
            None,
            self.connect_timeout,
            self.tunnel_idle,
            &rec.counts,
        ))
        .await;
        rec.ended(error);
    }

    pub(super) fn reject(&self, conn: &Conn, why: String) {
        self.telemetry.traffic.connection(ConnPath::Refused);
        // A client can cause this at will: at most a line a second.
        static DROPPED: Throttle = Throttle::new(Duration::from_secs(1));
        if let Some(held) = DROPPED.admit() {
            tracing::warn!(pid = conn.process.pid, dst = %conn.orig_dst, error = %why, held, "connection dropped");
        }
        self.write(&conn.record(RecordKind::Connection, None, (0, 0), Some(why)));
    }

    pub(super) fn write<R: serde::Serialize>(&self, record: &R) {
        if let Err(e) = self.audit.write(record) {
            tracing::error!(error = %e, "audit record lost");
        }
    }
}
