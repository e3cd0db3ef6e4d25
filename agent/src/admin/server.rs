//! The admin API's server: HTTP/1.1 + JSON on a Unix socket
//! (docs/admin-api.md). Owns binding the socket safely (0660, optional group, a stale socket
//! replaced but a live one never), the caller from the kernel for every
//! request (uid, and whether it is a process airlock captures: such a
//! caller decides nothing), routing, and the JSON error shape.
//! Status and metrics are composed by [`super::report`]; `/metrics` alone may
//! also be served on TCP (`admin.metrics_listen`) for a Prometheus scraper.

use std::convert::Infallible;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use tokio::net::{UnixListener, UnixStream};

use super::peer::Peer;
use super::{AdminError, report};
use crate::approval::{ApprovalError, Approvals, Caller, Release};
use crate::capture::Membership;
use crate::config::AdminConfig;
use crate::core::Outcome;
use crate::telemetry::Telemetry;
use crate::users::UserDb;

/// Request bodies are a reason and a duration; anything larger is not one.
const MAX_BODY: usize = 64 * 1024;
/// Socket mode: owner and group read/write (connect needs write).
const SOCKET_MODE: u32 = 0o660;
/// Mode of a socket directory airlock creates.
const DIR_MODE: u32 = 0o750;

/// The bound admin socket. Its `run` future serves until dropped; the
/// socket file is removed when the server goes.
#[derive(Debug)]
pub(crate) struct AdminServer {
    listener: UnixListener,
    /// `admin.metrics_listen`: `GET /metrics` only, no uid, no decisions.
    metrics: Option<tokio::net::TcpListener>,
    path: PathBuf,
    approvals: Arc<Approvals>,
    telemetry: Arc<Telemetry>,
}

/// What the routes read and act on.
#[derive(Debug)]
struct Api {
    approvals: Arc<Approvals>,
    telemetry: Arc<Telemetry>,
    /// Who airlock captures; `None` without capture (unit tests).
    membership: Option<Membership>,
}

impl AdminServer {
    /// Binds the admin socket (and `admin.metrics_listen`); serve it with
    /// [`AdminServer::run`].
    pub(crate) async fn bind(
        approvals: Arc<Approvals>,
        config: &AdminConfig,
        telemetry: Arc<Telemetry>,
    ) -> Result<Self, AdminError> {
        let path = config.socket.clone();
        let err = |op| {
            let path = path.clone();
            move |source| AdminError::Socket { path, op, source }
        };
        let gid = match &config.group {
            None => None,
            Some(g) => {
                let db = UserDb::system();
                Some(
                    db.group_id(g)
                        .ok_or_else(|| AdminError::NoGroup(g.clone()))?,
                )
            }
        };
        if let Some(dir) = path.parent()
            && !dir.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(err("create its directory"))?;
            // Members of the group must be able to reach the socket.
            if gid.is_some() {
                std::os::unix::fs::chown(dir, None, gid).map_err(err("chown its directory"))?;
            }
        }
        let metrics =
            match config.metrics_listen {
                None => None,
                Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(
                    |source| AdminError::Socket {
                        path: PathBuf::from(addr.to_string()),
                        op: "bind admin.metrics_listen",
                        source,
                    },
                )?),
            };
        clear_stale(&path).await?;
        let listener = UnixListener::bind(&path).map_err(err("bind"))?;
        // From here on the file is ours: remove it on any failure below.
        let server = Self {
            listener,
            metrics,
            path: path.clone(),
            approvals,
            telemetry,
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(SOCKET_MODE))
            .map_err(err("chmod"))?;
        if gid.is_some() {
            std::os::unix::fs::chown(&path, None, gid).map_err(err("chown"))?;
        }
        Ok(server)
    }

    /// Serves connections until this future is dropped (which also ends
    /// the connections being served). Decisions from processes in
    /// `membership` are refused.
    pub(crate) async fn run(self, membership: Option<Membership>) {
        if membership.as_ref().is_some_and(|m| !m.tells_agent_apart()) {
            tracing::warn!("{UNTOLD}");
        }
        let api = Arc::new(Api {
            approvals: self.approvals.clone(),
            telemetry: self.telemetry.clone(),
            membership,
        });
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        conns.spawn(serve(api.clone(), stream));
                    }
                    Err(e) => backoff("admin socket", &e).await,
                },
                accepted = accept_tcp(self.metrics.as_ref()) => match accepted {
                    Ok(stream) => {
                        conns.spawn(serve_metrics(api.clone(), stream));
                    }
                    Err(e) => backoff("admin.metrics_listen", &e).await,
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes a socket file left by a previous run. A socket something still
/// answers on belongs to a running airlock; anything that is not a socket
/// is not ours to delete.
async fn clear_stale(path: &Path) -> Result<(), AdminError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(AdminError::Socket {
                path: path.to_owned(),
                op: "stat",
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(AdminError::Socket {
            path: path.to_owned(),
            op: "replace",
            source: std::io::Error::other("it exists and is not a socket"),
        });
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(AdminError::AlreadyRunning(path.to_owned()));
    }
    std::fs::remove_file(path).map_err(|source| AdminError::Socket {
        path: path.to_owned(),
        op: "remove the stale socket",
        source,
    })
}

/// EMFILE and the like: back off instead of spinning.
async fn backoff(what: &str, e: &std::io::Error) {
    tracing::warn!(error = %e, "{what}: accept failed");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

/// The next TCP metrics connection; never, without a metrics listener.
async fn accept_tcp(
    listener: Option<&tokio::net::TcpListener>,
) -> std::io::Result<tokio::net::TcpStream> {
    match listener {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

/// A scraper's connection: `GET /metrics`, nothing else (no caller
/// identity on TCP, so nothing that reads held requests or decides).
async fn serve_metrics(api: Arc<Api>, stream: tokio::net::TcpStream) {
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let api = api.clone();
        async move {
            Ok::<_, Infallible>(match (req.method(), req.uri().path()) {
                (&Method::GET, "/metrics") => respond(
                    StatusCode::OK,
                    METRICS_TYPE,
                    report::metrics(&api.telemetry, &api.approvals),
                ),
                _ => respond(
                    StatusCode::NOT_FOUND,
                    "application/json",
                    error_body("not_found", "only GET /metrics is served here").to_string(),
                ),
            })
        }
    });
    // A scraper sends its request at once; a TCP peer that does not is
    // not kept.
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(10))
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %e, "metrics connection ended");
    }
}

/// Prometheus text format 0.0.4.
const METRICS_TYPE: &str = "text/plain; version=0.0.4";

/// Said at start and in `status` when capture spans the whole host and
/// selects by uid or nothing.
pub(super) const UNTOLD: &str = "capture spans the whole host (the cgroup2 root) and selects no process by name: airlock cannot tell the agent from its developer, so an agent running as an approver could approve its own requests; select the agent's programs (capture.comm with follow_children) or give it a cgroup of its own";

/// One connection: every request on it acts as the peer process.
async fn serve(api: Arc<Api>, stream: UnixStream) {
    let Some(peer) = Peer::of(&stream) else {
        tracing::warn!("admin socket: no peer credentials; closing");
        return;
    };
    let peer = Arc::new(peer);
    let service = hyper::service::service_fn(move |req| {
        let (api, peer) = (api.clone(), peer.clone());
        async move { Ok::<_, Infallible>(handle(&api, &peer, req).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %e, "admin connection ended");
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    /// Window grant (`"30m"`); absent: this request only.
    #[serde(rename = "for")]
    window: Option<String>,
    /// What the grant covers (`/subscriptions/…`, `namespace/NAME`, a
    /// resource path); absent: the held request's own resource.
    scope: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyBody {
    reason: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    reason: Option<String>,
}

/// What a route answers.
enum Reply {
    Json(StatusCode, serde_json::Value),
    Text(String),
}

/// Who is asking: the peer's uid, and why it is a captured process if it
/// is one (/proc: call from a blocking task). A peer that changed while
/// it was read (gone, its pid reused) is treated as captured.
fn caller(api: &Api, peer: &Peer) -> Caller {
    let captured = api.membership.as_ref().and_then(|membership| {
        let Some(pid) = peer.pid else {
            return Some("the kernel names no process for the caller".to_owned());
        };
        let why = membership.why_captured(pid);
        if peer.unchanged() {
            why
        } else {
            Some("the calling process exited while it was checked".to_owned())
        }
    });
    Caller {
        uid: peer.uid,
        captured,
    }
}

async fn handle(api: &Arc<Api>, peer: &Arc<Peer>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error(&ApprovalError::BadRequest(format!(
                "request body: {e} (at most {MAX_BODY} bytes)"
            )));
        }
    };
    let uid = peer.uid;
    let reply = if method == Method::POST || path.starts_with("/v1/processes/") {
        // Decisions read /proc (is the caller captured?) and ask NSS who
        // the caller is (a directory server may be slow), and a process's
        // membership is read in /proc: off the async workers.
        let (api, peer, method, path) = (api.clone(), peer.clone(), method.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
            route(&api, &caller(&api, &peer), &method, &segments, &body)
        })
        .await
        .unwrap_or_else(|e| {
            Err(ApprovalError::BadRequest(format!(
                "the decision failed: {e}"
            )))
        })
    } else {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        route(api, &Caller::uid(uid), &method, &segments, &body)
    };
    match reply {
        Ok(Reply::Json(status, v)) => respond(status, "application/json", v.to_string()),
        Ok(Reply::Text(t)) => respond(StatusCode::OK, METRICS_TYPE, t),
        Err(e) => {
            tracing::info!(%method, %path, uid, error = %e, "admin API request refused");
            error(&e)
        }
    }
}

fn route(
    api: &Api,
    caller: &Caller,
    method: &Method,
    segments: &[&str],
    body: &[u8],
) -> Result<Reply, ApprovalError> {
    let ok = |v| Ok(Reply::Json(StatusCode::OK, v));
    let a = &*api.approvals;
    match (method, segments) {
        (&Method::GET, ["v1", "status"]) => {
            let mut v = report::status(&api.telemetry, a);
            if let Some(m) = &api.membership {
                let apart = m.tells_agent_apart();
                v["approvals"]["captured_approvers_refused"] = json!(apart);
                if !apart {
                    v["approvals"]["warning"] = json!(UNTOLD);
                }
            }
            ok(v)
        }
        (&Method::GET, ["metrics"]) => Ok(Reply::Text(report::metrics(&api.telemetry, a))),
        (&Method::GET, ["v1", "approvals"]) => ok(json!({ "approvals": a.list() })),
        (&Method::GET, ["v1", "approvals", id]) => ok(json!(a.get(id)?)),
        (&Method::POST, ["v1", "approvals", id, "approve"]) => {
            let b: ApproveBody = parse(body)?;
            let window = b
                .window
                .as_deref()
                .map(|w| {
                    humantime::parse_duration(w).map_err(|e| {
                        ApprovalError::BadRequest(format!("for: {w:?} is not a duration: {e}"))
                    })
                })
                .transpose()?;
            let release = Release {
                window,
                scope: b.scope,
                reason: b.reason,
            };
            let outcome = a.approve(id, caller, release)?;
            let uid = caller.uid;
            let grant = match &outcome {
                Outcome::Approved { grant: Some(g), .. } => {
                    a.grants().into_iter().find(|v| v.id == *g)
                }
                _ => None,
            };
            tracing::info!(id, uid, grant = ?grant.as_ref().map(|g| &g.id), "approved");
            let mut v = json!(outcome);
            v["id"] = json!(id);
            v["grant"] = json!(grant);
            ok(v)
        }
        (&Method::POST, ["v1", "approvals", id, "deny"]) => {
            let b: DenyBody = parse(body)?;
            let outcome = a.deny(id, caller, &b.reason)?;
            tracing::info!(id, uid = caller.uid, "denied");
            let mut v = json!(outcome);
            v["id"] = json!(id);
            ok(v)
        }
        (&Method::GET, ["v1", "processes", pid]) => process(api, pid),
        (&Method::GET, ["v1", "grants"]) => ok(json!({ "grants": a.grants() })),
        (&Method::POST, ["v1", "grants", id, "revoke"]) => {
            let b: RevokeBody = parse(body)?;
            let grant = a.revoke(id, caller, b.reason)?;
            tracing::info!(grant = id, uid = caller.uid, "grant revoked");
            ok(json!({ "id": id, "outcome": "revoked", "grant": grant }))
        }
        (_, ["v1", "status"] | ["metrics"] | ["v1", "approvals" | "grants" | "processes", ..]) => {
            Ok(Reply::Json(
                StatusCode::METHOD_NOT_ALLOWED,
                error_body(
                    "method_not_allowed",
                    &format!("{method} is not allowed here"),
                ),
            ))
        }
        _ => Ok(Reply::Json(
            StatusCode::NOT_FOUND,
            error_body("not_found", "no such endpoint"),
        )),
    }
}

/// `GET /v1/processes/{pid}`: whether airlock captures process `pid`,
/// by the check decisions get ([`Membership::why_captured`]), for
/// `airlock console` to refuse the agent's own connections. A process
/// that is not there is 404: an asker must not take "gone" for "not
/// captured".
fn process(api: &Api, pid: &str) -> Result<Reply, ApprovalError> {
    let pid: u32 = pid
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ApprovalError::BadRequest(format!("{pid:?} is not a process id")))?;
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Ok(Reply::Json(
            StatusCode::NOT_FOUND,
            error_body("not_found", &format!("no process {pid}")),
        ));
    }
    let (why, apart) = match &api.membership {
        Some(m) => (m.why_captured(pid), m.tells_agent_apart()),
        // Without capture (unit tests) nothing is captured, and nothing
        // could tell.
        None => (None, false),
    };
    Ok(Reply::Json(
        StatusCode::OK,
        json!({ "pid": pid, "captured": why.is_some(), "why": why, "tells_agent_apart": apart }),
    ))
}

/// A JSON body; an empty one is `{}` (every field optional or reported
/// missing).
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApprovalError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApprovalError::BadRequest(format!("body: {e}")))
}

fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "error": { "code": code, "message": message } })
}

fn error(e: &ApprovalError) -> Response<Full<Bytes>> {
    let (status, code) = e.http();
    respond(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "application/json",
        error_body(code, &e.to_string()).to_string(),
    )
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_str(content_type).expect("static content type"),
    );
    r
}
