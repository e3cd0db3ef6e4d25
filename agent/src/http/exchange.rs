//! One request/response exchange as the audit trail sees it: its
//! connection's `session` record (once per connection), a `request` record
//! made durable before forwarding, then a `response` record with what only
//! the end tells (however it ends). Both share the exchange id.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::audit::{AuditError, AuditLog};
use crate::config::OnAuditFailure;
use crate::core::GithubInfo;
use crate::core::ProcessInfo;
use crate::core::addrs::Endpoint;
use crate::core::lock;
use crate::core::record::{
    BodyInfo, ConnEnds, HttpRecord, Phase, RecordKind, RequestInfo, ResponseInfo, SessionRecord,
    TlsInfo, Told,
};
use crate::gate::{Asked, Gate, Verdict};
use crate::redact::{redact_headers, redact_query};

/// What every exchange on one connection shares.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    pub process: Arc<ProcessInfo>,
    pub src: Endpoint,
    pub dst: Endpoint,
    /// The proxy port the client dialled, when it came through `CONNECT`.
    pub proxy: Option<Endpoint>,
    pub sni: Option<String>,
    pub alpn: Option<String>,
    pub audit: AuditLog,
    pub on_audit_failure: OnAuditFailure,
    pub gate: Arc<Gate>,
    pub masker: crate::mask::Masker,
    pub approvals: Arc<crate::approval::Approvals>,
    /// `audit.body_excerpt_bytes`.
    pub excerpt_bytes: usize,
    /// `masking.scan_before_forward_bytes`.
    pub scan_before_forward: usize,
    /// `proxy.tunnel_idle_ms`, for upgraded connections; None: never.
    pub tunnel_idle: Option<Duration>,
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// A plain HTTP connection to an instance metadata service.
    pub imds: bool,
    /// `proxy.body_buffer_bytes`, shared by every connection.
    pub body_budget: Arc<super::BodyBudget>,
    /// `proxy.response_idle_ms`; None: never.
    pub response_idle: Option<Duration>,
    /// The id of this connection's `session` record, once written.
    pub session: OnceLock<Arc<str>>,
}

impl ConnCtx {
    /// The id of this connection's `session` record, written now if no
    /// exchange wrote it yet: queued before the exchange's own records, so
    /// it is in the trail (and durable) before them.
    fn session(&self) -> Arc<str> {
        self.session.get_or_init(|| self.write_session()).clone()
    }

    fn write_session(&self) -> Arc<str> {
        let record = SessionRecord {
            kind: RecordKind::Session,
            ends: ConnEnds::new(self.process.clone(), self.src, self.dst, self.proxy),
            tls: TlsInfo {
                sni: self.sni.clone(),
                alpn: self.alpn.clone(),
            },
        };
        let id = self.audit.new_id();
        // If it cannot be written, neither can the records naming it: the
        // exchange's own write fails (and with it, forwarding).
        if let Err(e) = self.audit.write_as(&id, &record) {
            tracing::debug!(error = %e, "session record not written");
        }
        id.into()
    }
}

/// What airlock saw in one body beyond its size and digest.
#[derive(Clone, Debug, Default)]
pub(super) struct Seen {
    pub excerpt: Option<String>,
    pub findings: Option<crate::core::Findings>,
}

#[derive(Debug)]
pub(super) struct Exchange {
    ctx: Arc<ConnCtx>,
    id: String,
    started: Instant,
    request: RequestInfo,
    verdict: OnceLock<Verdict>,
    /// A GitHub run whose assertion this token request carries: the token
    /// in the response is linked to it.
    link_to: OnceLock<GithubInfo>,
    status: AtomicU16,
    pub(super) request_bytes: AtomicU64,
    pub(super) response_bytes: AtomicU64,
    request_sha256: Mutex<Option<String>>,
    response_sha256: Mutex<Option<String>>,
    upgraded: AtomicBool,
    /// Request and response bodies: excerpt and findings.
    seen: [Mutex<Seen>; 2],
    /// A model call's prompt, and then its reassembled output.
    prompt: OnceLock<crate::model::Prompt>,
    /// How a hold for approval ended.
    approval: OnceLock<crate::core::Outcome>,
    /// The requests an envelope carries, judged.
    inner: OnceLock<Vec<crate::core::record::InnerInfo>>,
    /// The credentials the request carries (never recorded): an upstream
    /// echoing one back cannot put it in an excerpt.
    own_credentials: Vec<String>,
    /// Policy refused the request once its streamed body was scanned.
    refused: OnceLock<crate::core::Decision>,
    /// What the request record said, once it is written.
    told: OnceLock<Told>,
    output: OnceLock<crate::model::Output>,
    error: Mutex<Option<String>>,
    done: AtomicBool,
    /// Bodies in flight: `REQUEST_OPEN | RESPONSE_OPEN`, plus
    /// `RESPONSE_SEEN` once a response body exists.
    bodies: std::sync::atomic::AtomicU8,
}

const REQUEST_OPEN: u8 = 1;
const RESPONSE_OPEN: u8 = 2;
const RESPONSE_SEEN: u8 = 4;

impl Exchange {
    pub(super) fn new<B>(ctx: Arc<ConnCtx>, req: &http::Request<B>) -> Arc<Self> {
        let host = req
            .uri()
            .host()
            .map(str::to_owned)
            .or_else(|| {
                let h = req.headers().get(http::header::HOST)?.to_str().ok()?;
                let bare = h
                    .rsplit_once(':')
                    .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()));
                Some(bare.map_or(h, |(h, _)| h).to_owned())
            })
            .or_else(|| ctx.sni.clone())
            .unwrap_or_else(|| ctx.dst.ip.to_string());
        let mut headers = redact_headers(req.headers());
        for value in headers.values_mut() {
            *value = ctx.masker.mask_owned(std::mem::take(value));
        }
        let request = RequestInfo {
            method: req.method().to_string(),
            host,
            port: ctx.dst.port,
            path: req.uri().path().to_owned(),
            operation: None,
            // Known credential fields first, then any secret by shape.
            query: req
                .uri()
                .query()
                .map(|q| ctx.masker.mask_owned(redact_query(q))),
            headers,
            body: None,
            masked: None,
            inner: Vec::new(),
        };
        Arc::new(Self {
            id: ctx.audit.new_id(),
            started: Instant::now(),
            request,
            verdict: OnceLock::new(),
            link_to: OnceLock::new(),
            status: AtomicU16::new(0),
            request_bytes: AtomicU64::new(0),
            response_bytes: AtomicU64::new(0),
            request_sha256: Mutex::new(None),
            response_sha256: Mutex::new(None),
            upgraded: AtomicBool::new(false),
            seen: Default::default(),
            prompt: OnceLock::new(),
            approval: OnceLock::new(),
            refused: OnceLock::new(),
            told: OnceLock::new(),
            own_credentials: crate::redact::credentials(req.headers(), req.uri().query()),
            inner: OnceLock::new(),
            output: OnceLock::new(),
            error: Mutex::new(None),
            done: AtomicBool::new(false),
            bodies: std::sync::atomic::AtomicU8::new(0),
            ctx,
        })
    }

    /// The request's host (authority without port, else Host, else SNI).
    pub(super) fn host(&self) -> &str {
        &self.request.host
    }

    /// The query as recorded (redacted and masked).
    pub(super) fn query(&self) -> Option<&str> {
        self.request.query.as_deref()
    }

    pub(super) fn is_head(&self) -> bool {
        self.request.method == "HEAD"
    }

    pub(super) fn port(&self) -> u16 {
        self.request.port
    }

    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// Identifies the caller, classifies the request and asks the policy.
    pub(super) async fn assess<B>(&self, req: &http::Request<B>) -> Verdict {
        let asked = Asked {
            method: req.method(),
            host: &self.request.host,
            port: self.request.port,
            path: req.uri().path(),
            query: req.uri().query(),
            headers: req.headers(),
            imds: self.ctx.imds,
        };
        self.ctx.gate.assess(asked, &self.ctx.process).await
    }

    /// The operations of the requests the envelope carries.
    pub(super) fn inner_operations(&self) -> Vec<String> {
        self.inner
            .get()
            .map(|i| i.iter().map(|i| i.operation.clone()).collect())
            .unwrap_or_default()
    }

    /// The requests the envelope carries, as they were judged.
    pub(super) fn set_inner(&self, inner: Vec<crate::core::record::InnerInfo>) {
        let _ = self.inner.set(inner);
    }

    /// Policy refused the request after it was handed on, when its body
    /// (scanned as it streamed) turned out to carry secrets.
    pub(super) fn refuse_midstream(&self, decision: crate::core::Decision) {
        let _ = self.refused.set(decision);
    }

    pub(super) fn refused_midstream(&self) -> Option<&crate::core::Decision> {
        self.refused.get()
    }

    /// The verdict both of the exchange's records carry (set once).
    pub(super) fn set_verdict(&self, verdict: Verdict) {
        let _ = self.verdict.set(verdict);
    }

    pub(super) fn gate(&self) -> &Gate {
        &self.ctx.gate
    }

    /// The token this request obtains is to be attributed to `run`.
    pub(super) fn link_response_to(&self, run: GithubInfo) {
        let _ = self.link_to.set(run);
    }

    /// A kept body passed whole: the token an Entra response issues is
    /// linked to the GitHub run that asked; a Copilot token to the OAuth
    /// token (and account) that asked; a `/user` answer names the account
    /// behind an OAuth token.
    pub(super) fn body_kept(&self, body: &[u8]) {
        use crate::operation::github;
        if self.status.load(Ordering::Relaxed) != 200 {
            return;
        }
        let identifier = self.ctx.gate.identifier();
        let links = identifier.links();
        if let Some(run) = self.link_to.get() {
            if links.issued(run.clone(), body) {
                tracing::info!(id = %self.id, repository = ?run.repository, run_id = ?run.run_id,
                    "Azure token linked to the GitHub run that obtained it");
            }
            return;
        }
        let Some(verdict) = self.verdict.get() else {
            return;
        };
        let Some(oauth) = verdict.identity.fingerprint.as_deref() else {
            return;
        };
        match verdict.operation.name.as_str() {
            github::COPILOT_TOKEN if links.copilot_issued(oauth, body) => {
                tracing::info!(id = %self.id, oauth,
                    "Copilot session token linked to the GitHub token that obtained it");
            }
            github::USER | github::COPILOT_USER => {
                links.account_seen(oauth, body);
            }
            _ => {}
        }
    }

    pub(super) fn ctx(&self) -> &ConnCtx {
        &self.ctx
    }

    pub(super) fn set_approval(&self, outcome: crate::core::Outcome) {
        let _ = self.approval.set(outcome);
    }

    pub(super) fn set_prompt(&self, prompt: crate::model::Prompt) {
        let _ = self.prompt.set(prompt);
    }

    pub(super) fn set_output(&self, output: crate::model::Output) {
        let _ = self.output.set(output);
    }

    pub(super) fn set_seen(&self, response: bool, mut seen: Seen) {
        if let Some(excerpt) = seen.excerpt.as_mut() {
            for credential in &self.own_credentials {
                let token = || {
                    self.ctx
                        .masker
                        .token("request-credential", credential.as_bytes())
                };
                if crate::redact::holds(excerpt, credential) {
                    *excerpt = excerpt.replace(credential.as_str(), &token());
                }
                // Cut by the excerpt's end: its first 8 bytes or more (the
                // longest such tail, so no part of it stays).
                if let Some(at) = crate::redact::cut_tail(excerpt, credential) {
                    excerpt.replace_range(at.., &token());
                }
            }
        }
        *lock(&self.seen[usize::from(response)]) = seen;
    }

    /// The request body's excerpt as the trail keeps it (masked), if the
    /// body was read before now.
    pub(super) fn request_excerpt(&self) -> Option<String> {
        lock(&self.seen[0]).excerpt.clone()
    }

    /// What was seen in the request's (false) or response's body: taken
    /// out for the response record, which is the last to need it.
    fn seen(&self, response: bool, take: bool) -> Seen {
        let mut seen = lock(&self.seen[usize::from(response)]);
        if take {
            std::mem::take(&mut *seen)
        } else {
            Seen {
                excerpt: None,
                findings: seen.findings.clone(),
            }
        }
    }

    pub(super) fn on_audit_failure(&self) -> OnAuditFailure {
        self.ctx.on_audit_failure
    }

    pub(super) fn set_status(&self, status: http::StatusCode) {
        self.status.store(status.as_u16(), Ordering::Relaxed);
    }

    pub(super) fn set_upgraded(&self) {
        self.upgraded.store(true, Ordering::Relaxed);
    }

    /// The SHA-256 of a body seen to its end.
    pub(super) fn set_sha256(&self, response: bool, hex: String) {
        let slot = if response {
            &self.response_sha256
        } else {
            &self.request_sha256
        };
        *lock(slot) = Some(hex);
    }

    pub(super) fn body_opened(&self, response: bool) {
        let bits = if response {
            RESPONSE_OPEN | RESPONSE_SEEN
        } else {
            REQUEST_OPEN
        };
        self.bodies.fetch_or(bits, Ordering::AcqRel);
    }

    /// The exchange is recorded once the response body and any request
    /// body still streaming have both ended.
    pub(super) fn body_closed(&self, response: bool) {
        let bit = if response {
            RESPONSE_OPEN
        } else {
            REQUEST_OPEN
        };
        let now = self.bodies.fetch_and(!bit, Ordering::AcqRel) & !bit;
        if now == RESPONSE_SEEN {
            self.finish();
        }
    }

    /// Records why the exchange failed, over any earlier reason.
    pub(super) fn replace_error(&self, why: String) {
        *lock(&self.error) = Some(why);
    }

    /// Records why the exchange failed; the first reason wins.
    pub(super) fn set_error(&self, why: impl Into<String>) {
        let mut e = lock(&self.error);
        e.get_or_insert_with(|| why.into());
    }

    /// Makes the request record durable: called before forwarding.
    pub(super) async fn record_request(&self) -> Result<(), AuditError> {
        let record = self.record(Phase::Request);
        self.ctx
            .audit
            .write_durable(&self.id, &record.line(None))
            .await?;
        let _ = self.told.set(Told {
            decision: record.decision,
            masked: record.request.masked,
        });
        Ok(())
    }

    /// Writes the response record; later calls do nothing.
    pub(super) fn finish(&self) {
        if self.done.swap(true, Ordering::AcqRel) {
            return;
        }
        let record = self.record(Phase::Response);
        self.ctx
            .telemetry
            .traffic
            .exchange(&record, self.started.elapsed());
        let r = &record.request;
        // The trail records every exchange: at the default level the log
        // (the journal, with its rate limit) does not repeat it.
        tracing::debug!(id = %self.id, pid = self.ctx.process.pid, comm = %self.ctx.process.comm, method = %r.method,
            host = %r.host, path = %r.path, status = self.status.load(Ordering::Relaxed), "http");
        if let Err(e) = self
            .ctx
            .audit
            .write_as(&self.id, &record.line(self.told.get()))
        {
            tracing::error!(id = %self.id, error = %e, "audit record lost");
        }
        if let Some(prompt) = self.prompt.get() {
            let output = self.output.get().cloned().unwrap_or_default();
            let model = crate::model::ModelRecord {
                kind: RecordKind::Model,
                exchange: self.id.clone(),
                process: self.ctx.process.clone(),
                identity: record.identity.clone(),
                host: self.request.host.clone(),
                operation: record
                    .request
                    .operation
                    .as_ref()
                    .map(|o| o.name.clone())
                    .unwrap_or_default(),
                model: output.model.clone().or_else(|| prompt.model.clone()),
                prompt: prompt.clone(),
                masked: record.request.masked.clone().filter(|f| !f.is_empty()),
                output,
                status: self.status.load(Ordering::Relaxed),
                duration_ms: record.duration_ms.unwrap_or(0),
            };
            if let Err(e) = self.ctx.audit.write(&model) {
                tracing::error!(id = %self.id, error = %e, "model record lost");
            }
        }
    }

    fn record(&self, phase: Phase) -> HttpRecord {
        let take = |m: &Mutex<Option<String>>| lock(m).clone();
        let done = phase == Phase::Response;
        let verdict = self.verdict.get();
        let r = &self.request;
        let mut request = RequestInfo {
            method: r.method.clone(),
            host: r.host.clone(),
            port: r.port,
            path: r.path.clone(),
            operation: verdict.map(|v| v.operation.clone()),
            query: r.query.clone(),
            // The headers are in the request record (same id); repeating
            // them would double what the writer serialises per request.
            headers: if done {
                std::collections::BTreeMap::new()
            } else {
                r.headers.clone()
            },
            body: None,
            masked: None,
            inner: self.inner.get().cloned().unwrap_or_default(),
        };
        // Findings are known before forwarding for scanned-whole bodies.
        let seen = self.seen(false, done);
        request.masked = seen.findings;
        if done {
            request.body = Some(BodyInfo {
                bytes: self.request_bytes.load(Ordering::Relaxed),
                sha256: take(&self.request_sha256),
                excerpt: seen.excerpt,
            });
        }
        let response = done.then(|| {
            let bytes = self.response_bytes.load(Ordering::Relaxed);
            let seen = self.seen(true, true);
            ResponseInfo {
                status: self.status.load(Ordering::Relaxed),
                bytes,
                body: BodyInfo {
                    bytes,
                    sha256: take(&self.response_sha256),
                    excerpt: seen.excerpt,
                },
                masked: seen.findings,
            }
        });
        HttpRecord {
            phase,
            session: self.ctx.session(),
            identity: verdict.map(|v| v.identity.clone()),
            request,
            response,
            decision: self
                .refused
                .get()
                .cloned()
                .or_else(|| verdict.map(|v| v.decision.clone())),
            approval: self.approval.get().cloned(),
            upgraded: self.upgraded.load(Ordering::Relaxed),
            duration_ms: done
                .then(|| u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)),
            error: if done { take(&self.error) } else { None },
        }
    }
}

impl Drop for Exchange {
    /// An exchange that never reached its end (an upgraded tunnel cut off at
    /// shutdown, a task aborted) is still recorded, with why.
    fn drop(&mut self) {
        if !self.done.load(Ordering::Acquire) {
            self.set_error("exchange ended without completing");
            self.finish();
        }
    }
}
