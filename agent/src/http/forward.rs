//! Serving the client's decrypted connection: each request is forwarded to
//! the upstream connection and its response streamed back.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::body::{Counted, Side};
use super::exchange::{ConnCtx, Exchange};
use super::headers::{is_upgrade, strip_hop_by_hop};
use super::inspect::{self, Refusal};
use super::release::ReleaseWhenIdle;
use super::{Body, Proto, UpstreamConn, UpstreamError};
use crate::config::OnAuditFailure;
use crate::core::{Action, Decision};
use crate::gate::Asked;

/// A client must finish sending request headers within this (slowloris).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// HTTP/2 pings on idle connections, so dead peers are noticed.
const HTTP2_KEEPALIVE: Option<std::time::Duration> = Some(std::time::Duration::from_secs(60));

/// Drives a served client connection until it ends, or until airlock is
/// stopping: then asks it to finish gracefully and waits for that. A macro,
/// not a function: hyper's HTTP/1.1 and HTTP/2 connections share no trait
/// for `graceful_shutdown`, and a generic function taking it as a closure
/// makes the spawned connection future lose `Send`.
macro_rules! until_stopped {
    ($conn:expr, $stopping:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => r,
            () = stopped($stopping) => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    }};
}

/// Serves HTTP on `client` until it closes, or until `stopping` says
/// airlock is stopping: then requests in flight finish and the connection
/// closes gracefully (HTTP/1.1 after the current exchange, HTTP/2 with a
/// GOAWAY). `upstream` is the connection to forward to, or why there is
/// none (then every request gets a 502 that says so).
pub(crate) async fn serve<IO>(
    client: IO,
    proto: Proto,
    upstream: Result<UpstreamConn, UpstreamError>,
    ctx: Arc<ConnCtx>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let upstream = Arc::new(upstream);
    let held = upstream.clone();
    let service = service_fn(move |req| {
        let upstream = upstream.clone();
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(forward(req, proto, &upstream, ctx).await) }
    });
    let result = match proto {
        Proto::Http1 => {
            let io = TokioIo::new(ReleaseWhenIdle::new(client, held));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(io, service)
                .with_upgrades();
            until_stopped!(conn, &mut stopping)
        }
        Proto::Http2 => {
            let io = TokioIo::new(client);
            let conn = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .keep_alive_interval(HTTP2_KEEPALIVE)
                .serve_connection(io, service);
            until_stopped!(conn, &mut stopping)
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "client HTTP connection ended");
    }
}

/// Resolves once airlock is stopping (or whoever would say so is gone).
pub(crate) async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard `wait_for` returns is not held: it is not `Send`.
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

async fn forward(
    mut req: Request<Incoming>,
    proto: Proto,
    upstream: &Result<UpstreamConn, UpstreamError>,
    ctx: Arc<ConnCtx>,
) -> Response<Body> {
    let upgrade = proto == Proto::Http1 && is_upgrade(req.headers());
    // What the upstream will receive is what is judged: hop-by-hop headers,
    // and any header `Connection` names (`Connection: authorization`), go
    // before identity and policy look.
    strip_hop_by_hop(req.headers_mut(), upgrade);
    let exchange = Exchange::new(ctx, &req);
    if let Err(m) = super::shape::check(&req, exchange.ctx().sni.as_deref(), exchange.ctx().dst) {
        return refuse(&exchange, m.status, m.code, &m.message);
    }
    let mut verdict = exchange.assess(&req).await;
    // A refusal needs no body: it is said before one is read.
    if verdict.decision.action == Action::Deny {
        return refuse_recorded(&exchange, verdict).await;
    }
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    let (mut parts, body) = req.into_parts();
    let asked = Asked {
        method: &parts.method,
        host: exchange.host(),
        port: exchange.port(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        imds: exchange.ctx().imds,
    };
    let (body, new_length) =
        match inspect::request_body(body, &parts.headers, asked, &exchange, &mut verdict).await {
            Ok(found) => found,
            Err(Refusal::Unreadable(why)) => {
                exchange.set_verdict(verdict);
                return refuse(&exchange, StatusCode::BAD_REQUEST, "BadRequestBody", &why);
            }
            Err(Refusal::Overloaded(why)) => {
                exchange.set_verdict(verdict);
                return refuse(
                    &exchange,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Overloaded",
                    &why,
                );
            }
        };
    // What the body carries (secrets, the requests an envelope holds) may
    // have made the decision stricter. A held request's record is written
    // when the hold starts.
    let recorded = match verdict.decision.action {
        Action::Allow => false,
        Action::Deny => return refuse_recorded(&exchange, verdict).await,
        Action::Approve => {
            if let Err(refusal) = hold(&exchange, &parts.method, parts.uri.path(), &verdict).await {
                return refusal;
            }
            true
        }
    };
    let upstream = match upstream {
        Ok(u) => u,
        Err(e) => return refuse(&exchange, StatusCode::BAD_GATEWAY, e.code(), &e.to_string()),
    };
    if let Some(length) = new_length {
        parts
            .headers
            .insert(http::header::CONTENT_LENGTH, length.into());
    }
    inspect::ask_identity_encoding(&mut parts.headers);
    if verdict.decision.response == crate::core::ResponseMasking::Mask {
        inspect::ask_maskable(&mut parts.headers, &verdict.operation.name);
    }
    let verdict = Arc::new(verdict);
    exchange.set_verdict((*verdict).clone());
    match proto {
        Proto::Http1 => parts.version = Version::HTTP_11,
        Proto::Http2 => {
            parts.version = Version::HTTP_2;
            parts.uri = absolute_uri(&parts.uri, &exchange);
        }
    }
    // The request is on disk before anything reaches the upstream.
    let on_disk = if recorded {
        Ok(())
    } else {
        exchange.record_request().await
    };
    if let Err(e) = on_disk {
        match exchange.on_audit_failure() {
            OnAuditFailure::Deny => {
                return refuse(
                    &exchange,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "AuditUnavailable",
                    &format!("{e}: the request was not forwarded"),
                );
            }
            OnAuditFailure::Allow => {
                tracing::warn!(id = exchange.id(), error = %e, "forwarding unaudited (audit.on_failure = \"allow\")")
            }
        }
    }
    let idle = exchange.ctx().response_idle;
    let sent = upstream.send(Request::from_parts(parts, body));
    let sent = match idle {
        Some(limit) => match tokio::time::timeout(limit, sent).await {
            Ok(sent) => sent,
            Err(_) => {
                // The request may be half-sent or being answered: this
                // connection carries nothing more.
                upstream.discard().await;
                return refuse(
                    &exchange,
                    StatusCode::GATEWAY_TIMEOUT,
                    "UpstreamTimeout",
                    &super::idle::silence(limit),
                );
            }
        },
        None => sent.await,
    };
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => {
            if let Some(decision) = exchange.refused_midstream().cloned() {
                // The upstream saw a request that never ended; its
                // connection carries nothing more.
                upstream.discard().await;
                return refuse_by_policy(&exchange, &decision);
            }
            return refuse(&exchange, StatusCode::BAD_GATEWAY, e.code(), &e.to_string());
        }
    };
    exchange.set_status(response.status());

    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        exchange.set_upgraded();
        tokio::spawn(tunnel(client_upgrade, upstream_upgrade, exchange));
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, empty());
    }
    let (mut parts, body) = response.into_parts();
    let body = super::idle::Idle::new(body, idle);
    strip_hop_by_hop(&mut parts.headers, false);
    match inspect::response_body(body, parts.status, &mut parts.headers, &exchange, &verdict) {
        Ok(body) => Response::from_parts(parts, body),
        Err(why) => refuse(
            &exchange,
            StatusCode::BAD_GATEWAY,
            "UnmaskableResponse",
            &why,
        ),
    }
}

/// A token request's form: a `client_assertion` in it becomes the
/// request's identity, and a GitHub run it names is linked to the token
/// the response will carry.
pub(super) async fn token_form(
    form: &[u8],
    exchange: &Arc<Exchange>,
    verdict: &mut crate::gate::Verdict,
) {
    if let Some(assertion) = crate::identity::client_assertion(form) {
        let who = exchange.gate().identifier().bearer(&assertion).await;
        if let Some(mut run) = who.github.clone() {
            run.via = who.fingerprint.clone();
            exchange.link_response_to(run);
        }
        verdict.identity = Arc::new(who);
    } else if verdict.identity.app_id.is_none()
        && let Some(client) = crate::identity::form_field(form, "client_id")
    {
        // A client secret or code grant: the application is who asks.
        let mut who = (*verdict.identity).clone();
        who.app_id = Some(client);
        verdict.identity = Arc::new(who);
    }
}

/// After a 101, the connection is a byte pipe (WebSocket, SPDY for
/// `kubectl exec`): relay it and record the bytes when it closes.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    exchange: Arc<Exchange>,
) {
    match tokio::try_join!(client, upstream) {
        Ok((c, u)) => {
            let (up, down) = (&exchange.request_bytes, &exchange.response_bytes);
            let idle = exchange.ctx().tunnel_idle;
            let relayed = crate::pipe::pipe(TokioIo::new(c), TokioIo::new(u), up, down, idle);
            if let Some(e) = relayed.await {
                exchange.set_error(format!("upgraded connection: {e}"));
            }
        }
        Err(e) => exchange.set_error(format!("upgrade failed: {e}")),
    }
    exchange.finish();
}

/// HTTP/2 requests carry scheme and authority; make sure the upstream
/// request has both even if the client left `:authority` to `Host`.
fn absolute_uri(uri: &Uri, exchange: &Exchange) -> Uri {
    if uri.scheme().is_some() && uri.authority().is_some() {
        return uri.clone();
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("https://{}{path}", exchange.host())
        .parse()
        .unwrap_or_else(|_| uri.clone())
}

/// Holds the request for a human ([`crate::approval`]): its record is
/// written first (the approval records name it), then it waits. `Ok`: an
/// approver released it (or a grant did). Otherwise the answer to send —
/// and nothing is forwarded. If the client goes away, this future is
/// dropped and the hold ends as `abandoned`.
/// A request policy refuses: recorded (the refusal stands whether or not
/// that record could be written), then answered 403.
async fn refuse_recorded(
    exchange: &Arc<Exchange>,
    verdict: crate::gate::Verdict,
) -> Response<Body> {
    let decision = verdict.decision.clone();
    exchange.set_verdict(verdict);
    if let Err(e) = exchange.record_request().await {
        tracing::error!(id = exchange.id(), error = %e, "audit record of a refused request lost");
    }
    refuse_by_policy(exchange, &decision)
}

async fn hold(
    exchange: &Arc<Exchange>,
    method: &http::Method,
    path: &str,
    verdict: &crate::gate::Verdict,
) -> Result<(), Response<Body>> {
    let decision = verdict.decision.clone();
    exchange.set_verdict(verdict.clone());
    if let Err(e) = exchange.record_request().await {
        return Err(refuse(
            exchange,
            StatusCode::SERVICE_UNAVAILABLE,
            "AuditUnavailable",
            &format!("{e}: the request was not held or forwarded"),
        ));
    }
    let approvals = exchange.ctx().approvals.clone();
    // The query as the record has it: credentials redacted, secrets masked.
    let query = exchange
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let scheme = if exchange.ctx().imds { "http" } else { "https" };
    let held = crate::approval::HeldRequest {
        id: exchange.id().to_owned(),
        rule: decision.rule.clone().unwrap_or_default(),
        reason: decision.reason.clone(),
        operation: verdict.operation.name.clone(),
        method: method.to_string(),
        url: format!("{scheme}://{}{path}{query}", exchange.host()),
        target_host: exchange.host().to_owned(),
        resource: crate::operation::scope::resource_path(
            &verdict.operation,
            exchange.host(),
            &verdict.path,
        ),
        identity: verdict.identity.clone(),
        process: exchange.ctx().process.clone(),
        body_excerpt: exchange.request_excerpt(),
    };
    let outcome = approvals
        .hold(held, approvals.timeout(decision.timeout))
        .await;
    exchange.set_approval(outcome.clone());
    let extra = |outcome: &str| serde_json::json!({ "rule": decision.rule, "reason": decision.reason, "outcome": outcome });
    use crate::core::Outcome;
    match outcome {
        Outcome::Approved { .. } => Ok(()),
        Outcome::Denied { by, reason } => Err(refuse_with(
            exchange,
            StatusCode::FORBIDDEN,
            "ApprovalDenied",
            &format!(
                "denied by {}: {reason}",
                by.user
                    .clone()
                    .or_else(|| by.role.clone())
                    .or_else(|| by.uid.map(|u| format!("uid {u}")))
                    .unwrap_or_default()
            ),
            extra("denied"),
        )),
        Outcome::Expired => Err(refuse_with(
            exchange,
            StatusCode::FORBIDDEN,
            "ApprovalExpired",
            &format!("{}: nobody approved it in time", decision.reason),
            extra("expired"),
        )),
        Outcome::AuditUnavailable => Err(refuse(
            exchange,
            StatusCode::SERVICE_UNAVAILABLE,
            "AuditUnavailable",
            "the hold could not be audited: the request was not forwarded",
        )),
        Outcome::TooManyHeld { limit } => Err(refuse_with(
            exchange,
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyHeld",
            &format!("{}: not held for approval, {limit}", decision.reason),
            extra("too_many_held"),
        )),
    }
}

/// A 403 naming the rule and its reason; nothing was forwarded.
fn refuse_by_policy(exchange: &Arc<Exchange>, decision: &Decision) -> Response<Body> {
    let extra = serde_json::json!({ "rule": decision.rule, "reason": decision.reason });
    refuse_with(
        exchange,
        StatusCode::FORBIDDEN,
        "PolicyDenied",
        &decision.reason,
        extra,
    )
}

/// airlock answers itself: a JSON error naming the cause.
fn refuse(
    exchange: &Arc<Exchange>,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response<Body> {
    refuse_with(exchange, status, code, message, serde_json::json!({}))
}

/// The error body: `error` {code, message, source, audit_id}, the audit
/// `id`, and any `extra` members (a policy's `rule` and `reason`).
fn refuse_with(
    exchange: &Arc<Exchange>,
    status: StatusCode,
    code: &str,
    message: &str,
    mut extra: serde_json::Value,
) -> Response<Body> {
    exchange.set_status(status);
    // airlock's own answer is the reason that matters most.
    exchange.replace_error(format!("{code}: {message}"));
    extra["error"] = serde_json::json!({ "code": code, "message": message, "source": "airlock", "audit_id": exchange.id() });
    extra["id"] = exchange.id().into();
    let body = extra.to_string();
    let mut response = Response::new(
        Counted::new(
            Full::new(Bytes::from(body)).map_err(|e| match e {}),
            exchange.clone(),
            Side::Response,
        )
        .boxed(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        headers.insert("x-airlock-error", v);
    }
    response
}

fn empty() -> Body {
    http_body_util::Empty::<Bytes>::new()
        .map_err(|e| match e {})
        .boxed()
}
