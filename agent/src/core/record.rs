//! The records written to the audit file and their field names (a contract:
//! tools outside airlock read them).

use serde::Serialize;

use crate::core::ProcessInfo;
use crate::core::addrs::Endpoint;

/// `kind` of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RecordKind {
    /// A captured connection relayed as TCP (not TLS).
    Connection,
    /// A TLS connection to a host that is not intercepted, spliced as is.
    TlsPassthrough,
    /// A client that rejected airlock's certificate (CA not trusted, or
    /// pinning).
    TlsClientRefused,
    /// One decrypted HTTP request and its response.
    Http,
    /// airlock itself started or stopped.
    Agent,
    /// One call to an AI model API, reassembled.
    Model,
    /// A step in a held request's approval, or in a grant's life
    /// (`crate::approval::ApprovalRecord`).
    Approval,
    /// One intercepted client connection: who, from where, to where, and
    /// its TLS — written once, before its first exchange, which names it.
    Session,
}

/// Who was on each end of a captured connection: `process`, `src` and
/// `dst` of every record about one.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ConnEnds {
    pub process: std::sync::Arc<ProcessInfo>,
    /// The client's address (its local port identifies the socket).
    pub src: Endpoint,
    /// The original destination; for a tunnel through a proxy port, the
    /// address airlock resolved the `CONNECT` authority to.
    pub dst: Endpoint,
    /// The explicit proxy the client dialled (`capture.proxy_ports`),
    /// whose `CONNECT` airlock answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Endpoint>,
    /// The CI job the process runs in (its `process.ci`, read from the
    /// job's runner): set by [`ConnEnds::new`] from `process`.
    #[serde(skip_serializing_if = "Option::is_none")]
    ci: Option<std::sync::Arc<crate::core::CiJob>>,
}

impl ConnEnds {
    pub(crate) fn new(
        process: std::sync::Arc<ProcessInfo>,
        src: Endpoint,
        dst: Endpoint,
        proxy: Option<Endpoint>,
    ) -> Self {
        Self {
            ci: process.ci.clone(),
            process,
            src,
            dst,
            proxy,
        }
    }
}

/// One captured TCP connection, written when it ends.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ConnectionRecord {
    pub kind: RecordKind,
    #[serde(flatten)]
    pub ends: ConnEnds,
    /// TLS server name the client sent, for TLS connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Where airlock relayed the connection, when not to `dst`: the address
    /// airlock resolved for `sni`, which did not include `dst`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relayed_to: Option<Endpoint>,
    /// What policy decided about a passed-through TLS connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<crate::core::Decision>,
    /// A plain request sent to a proxy port (`capture.proxy_ports`): its
    /// method and absolute URL, without the query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxied_request: Option<String>,
    /// Bytes client → upstream.
    pub bytes_out: u64,
    /// Bytes upstream → client.
    pub bytes_in: u64,
    pub duration_ms: u64,
    /// Why the relay failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// airlock's own lifecycle.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct AgentRecord {
    pub kind: RecordKind,
    /// `start`, `stop`, `policy_reload`, `policy_rejected`, `config_reload`,
    /// `config_rejected`.
    pub event: &'static str,
    pub version: &'static str,
    pub pid: u32,
    /// The cgroup the capture programs are attached to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Settings in force that weaken a security default, said out loud.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weakened: Vec<&'static str>,
    /// What changed, for the reloads; why not, for the rejections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AgentRecord {
    /// A record of this airlock process; `cgroup` is the capture cgroup.
    pub(crate) fn new(event: &'static str, cgroup: Option<String>) -> Self {
        Self {
            kind: RecordKind::Agent,
            event,
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            cgroup,
            weakened: Vec::new(),
            detail: None,
        }
    }
}

/// The context every exchange on one intercepted connection shares, said
/// once: `http` records name it in `session` (its `id`).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SessionRecord {
    pub kind: RecordKind,
    #[serde(flatten)]
    pub ends: ConnEnds,
    pub tls: TlsInfo,
}

/// `tls` of a session record.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TlsInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// The protocol negotiated on both sides (`h2`, `http/1.1`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
}

/// A body as seen on the wire.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct BodyInfo {
    pub bytes: u64,
    /// SHA-256 of the full body, when it was seen to its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The first `audit.body_excerpt_bytes` of a text body, secrets masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
}

/// `request` of an HTTP record.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RequestInfo {
    pub method: String,
    pub host: String,
    pub port: u16,
    /// Path without the query.
    pub path: String,
    /// What the request does, named as a person would (see
    /// [`crate::operation`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<std::sync::Arc<crate::core::Operation>>,
    /// Query string, secrets (`sig`, tokens, passwords) redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Request headers, lower-case names; credentials redacted. In the
    /// `request` phase only (the `response` record shares its id).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Absent in the `request` phase: the body has not been streamed yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<BodyInfo>,
    /// Secrets found in the body (exfiltration findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked: Option<crate::core::Findings>,
    /// The requests an envelope carries (an ARM or Storage batch, a
    /// Complete-mode deployment), each named and judged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inner: Vec<InnerInfo>,
}

/// One request inside an envelope.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct InnerInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub operation: String,
    pub decision: crate::core::Decision,
}

/// `response` of an HTTP record.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ResponseInfo {
    pub status: u16,
    /// Body bytes sent to the client (after a 101: bytes upstream → client).
    pub bytes: u64,
    pub body: BodyInfo,
    /// Secrets masked before the body reached the client (or, for a token
    /// endpoint's response, only in the excerpt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked: Option<crate::core::Findings>,
}

/// Which of an exchange's two records this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Phase {
    /// Written and fsynced before the request is forwarded.
    Request,
    /// Written when the exchange ends: the complete story.
    Response,
}

/// One decrypted HTTP exchange, as airlock knows it when a record is
/// written; [`HttpRecord::line`] is what the trail gets.
#[derive(Clone, Debug)]
pub(crate) struct HttpRecord {
    pub phase: Phase,
    /// The id of its connection's `session` record.
    pub session: std::sync::Arc<str>,
    /// Who the credential says is calling (never the credential itself).
    pub identity: Option<std::sync::Arc<crate::core::Identity>>,
    pub request: RequestInfo,
    pub response: Option<ResponseInfo>,
    /// What policy decided.
    pub decision: Option<crate::core::Decision>,
    /// For a held request: how the hold ended.
    pub approval: Option<crate::core::Outcome>,
    /// The connection was upgraded (WebSocket, SPDY) and relayed as bytes.
    pub upgraded: bool,
    pub duration_ms: Option<u64>,
    /// Why airlock answered itself, or why the exchange broke off.
    pub error: Option<String>,
}

/// An `http` record as written. Both of an exchange's records share `id`:
/// the request record (before forwarding) says what was asked, by whom,
/// and the verdict; the response record says only what is new — the
/// response, the request body as it streamed, the approval, duration,
/// error, and the decision if it changed (a body refused midstream). An
/// exchange refused before any request record carries it all in its
/// response record. `audit export` joins them with their session.
#[derive(Debug, Serialize)]
pub(crate) struct HttpLine<'a> {
    pub kind: RecordKind,
    pub phase: Phase,
    pub session: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<&'a std::sync::Arc<crate::core::Identity>>,
    pub request: RequestView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<&'a ResponseInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<&'a crate::core::Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<&'a crate::core::Outcome>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub upgraded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

/// `request` of an [`HttpLine`]: whole, or what only its end tells.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum RequestView<'a> {
    Whole(&'a RequestInfo),
    End {
        #[serde(skip_serializing_if = "Option::is_none")]
        body: Option<&'a BodyInfo>,
        #[serde(skip_serializing_if = "Option::is_none")]
        masked: Option<&'a crate::core::Findings>,
    },
}

impl HttpRecord {
    /// What the trail gets: after a request record (`told`: the request,
    /// identity, decision and findings it said), a response record says
    /// only what is new.
    pub(crate) fn line(&self, told: Option<&Told>) -> HttpLine<'_> {
        let lean = self.phase == Phase::Response && told.is_some();
        HttpLine {
            kind: RecordKind::Http,
            phase: self.phase,
            session: &self.session,
            identity: if lean { None } else { self.identity.as_ref() },
            request: if lean {
                RequestView::End {
                    body: self.request.body.as_ref(),
                    masked: self
                        .request
                        .masked
                        .as_ref()
                        .filter(|m| told.is_none_or(|t| t.masked.as_ref() != Some(*m))),
                }
            } else {
                RequestView::Whole(&self.request)
            },
            response: self.response.as_ref(),
            decision: self
                .decision
                .as_ref()
                .filter(|d| !lean || told.is_none_or(|t| t.decision.as_ref() != Some(*d))),
            approval: self.approval.as_ref(),
            upgraded: self.upgraded,
            duration_ms: self.duration_ms,
            error: self.error.as_deref(),
        }
    }
}

/// What an exchange's request record said, so its response record does
/// not say it again.
#[derive(Clone, Debug, Default)]
pub(crate) struct Told {
    pub decision: Option<crate::core::Decision>,
    pub masked: Option<crate::core::Findings>,
}

/// A client that refused the minted certificate.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TlsRefusedRecord {
    pub kind: RecordKind,
    #[serde(flatten)]
    pub ends: ConnEnds,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    pub error: String,
    /// What the user should do about it.
    pub hint: &'static str,
}
