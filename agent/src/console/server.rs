//! The console's HTTP server on loopback: who may connect (the user who
//! started it, from a process airlock does not capture: asked of the
//! daemon for every connection), sign-in, the page, routing to the live
//! list ([`super::events`]) and decisions ([`super::decide`]), and the
//! headers every answer carries.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::html::{self, Held, Viewer};
use super::session::{SESSION_TTL, Sessions};
use super::watch::Snapshot;
use super::{ConsoleError, decide, events, peer};
use crate::admin::AdminClient;
use crate::config::Config;

/// The session cookie's name.
const COOKIE: &str = "airlock_console";
/// Every answer: nothing but the console's own script and style, never
/// framed, never cached.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

pub(super) type Body = BoxBody<Bytes, Infallible>;

/// A bound console; [`Console::run`] serves it.
#[derive(Debug)]
pub struct Console {
    listener: TcpListener,
    login_url: String,
    warning: Option<String>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub sessions: Sessions,
    pub client: AdminClient,
    pub viewer: Viewer,
    /// `127.0.0.1:8765`: the only `Host` served (a DNS-rebound name is not).
    pub host: String,
    /// `http://127.0.0.1:8765`: the only `Origin` a decision may come from.
    pub origin: String,
    pub held: watch::Receiver<Arc<Snapshot>>,
    /// The trail's current file (`audit.path`): the timeline reads it and
    /// its rotated files.
    pub trail: std::path::PathBuf,
}

impl Console {
    /// Asks the daemon (its admin socket must answer), binds
    /// `console.listen` and makes the login link.
    pub async fn bind(config: &Config) -> Result<Self, ConsoleError> {
        let client = AdminClient::new(&config.admin.socket);
        let status = client.status().await?;
        let warning = status["approvals"]["warning"].as_str().map(str::to_owned);
        let first = super::watch::with_parents(Held::List(client.list().await?)).await;
        let addr = config.console.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ConsoleError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ConsoleError::Bind { addr, source })?;
        let (sessions, token) = Sessions::new()?;
        let uid = crate::capture::process::real_uid(std::process::id()).ok_or(ConsoleError::Me)?;
        let viewer = Viewer {
            user: crate::users::name_of(uid).unwrap_or_else(|| format!("uid {uid}")),
            uid,
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default(),
        };
        let host = addr.to_string();
        let origin = format!("http://{host}");
        Ok(Self {
            listener,
            login_url: format!("{origin}/login?token={token}"),
            warning,
            shared: Arc::new(Shared {
                sessions,
                held: super::watch::spawn(client.clone(), first),
                client,
                viewer,
                host,
                origin,
                trail: config.audit.path.clone(),
            }),
        })
    }

    /// The one-time sign-in link.
    pub fn login_url(&self) -> &str {
        &self.login_url
    }

    /// The daemon's warning that it cannot tell the agent from its
    /// developer, when it gives one: then the console cannot either.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut conns = tokio::task::JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        conns.spawn(serve(self.shared.clone(), stream, peer));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "console: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    }
}

/// One connection: admitted or refused once, for every request on it.
async fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let refused = admit(&shared, local, peer).await.err().map(Arc::new);
    if let Some(why) = &refused {
        tracing::warn!(%peer, why = %why, "console: connection refused");
    }
    let service = hyper::service::service_fn(move |req| {
        let (shared, refused) = (shared.clone(), refused.clone());
        async move {
            Ok::<_, Infallible>(secure(match refused {
                Some(why) => notice(StatusCode::FORBIDDEN, "Refused", &why),
                None => handle(&shared, req).await,
            }))
        }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %e, "console connection ended");
    }
}

/// Whether the process at the other end may use the console: it runs as
/// the user who started it, and the daemon says it is not captured. What
/// cannot be established is refused.
async fn admit(shared: &Shared, local: SocketAddr, peer: SocketAddr) -> Result<(), String> {
    let found = tokio::task::spawn_blocking(move || peer::find(local, peer))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| "the connecting process cannot be found".to_owned())?;
    if found.uid != shared.viewer.uid {
        return Err(format!(
            "the connecting process runs as uid {}; this console serves only uid {}, who started it",
            found.uid, shared.viewer.uid
        ));
    }
    if found.pids.is_empty() {
        return Err("the connecting process cannot be identified".to_owned());
    }
    for pid in found.pids {
        match shared.client.process(pid).await {
            Ok(v) if v["captured"] == false => {}
            Ok(v) => {
                return Err(format!(
                    "the connecting process (pid {pid}) is one airlock captures: {}",
                    v["why"].as_str().unwrap_or("the daemon says so")
                ));
            }
            Err(e) => {
                return Err(format!(
                    "airlock cannot say whether the connecting process (pid {pid}) is captured: {e}"
                ));
            }
        }
    }
    Ok(())
}

async fn handle(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if host != Some(shared.host.as_str()) {
        return notice(
            StatusCode::MISDIRECTED_REQUEST,
            "Wrong address",
            &format!("This console answers at {} only.", shared.origin),
        );
    }
    let cookie = session_cookie(&req);
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    match (method, path.as_str()) {
        (Method::GET, "/app.js") => asset("text/javascript; charset=utf-8", APP_JS),
        (Method::GET, "/app.css") => asset("text/css; charset=utf-8", APP_CSS),
        (Method::GET, "/login") => login(shared, req.uri().query().unwrap_or("")),
        (Method::GET, "/") => match cookie.and_then(|c| shared.sessions.take(&c)) {
            Some(s) => {
                let snap = shared.held.borrow().clone();
                let flash = s.flash.as_ref().map(|f| (f.ok, f.text.as_str()));
                let aged = snap.at.elapsed().as_secs();
                let page = html::index(&shared.viewer, &snap.held, &s.csrf, flash, aged);
                respond(StatusCode::OK, "text/html; charset=utf-8", page)
            }
            None => signed_out(),
        },
        (Method::GET, "/timeline") => match cookie {
            Some(c) if shared.sessions.peek(&c).is_some() => {
                timeline(shared, req.uri().query().unwrap_or("")).await
            }
            _ => signed_out(),
        },
        (Method::GET, "/events") => match cookie {
            Some(c) if shared.sessions.peek(&c).is_some() => events::stream(shared, c),
            _ => signed_out(),
        },
        (Method::POST, "/approve") => decide::decide(shared, cookie, req, true).await,
        (Method::POST, "/deny") => decide::decide(shared, cookie, req, false).await,
        (
            _,
            "/" | "/login" | "/events" | "/timeline" | "/approve" | "/deny" | "/app.js"
            | "/app.css",
        ) => notice(
            StatusCode::METHOD_NOT_ALLOWED,
            "Not allowed",
            "That method is not served here.",
        ),
        _ => notice(StatusCode::NOT_FOUND, "Not found", "There is no such page."),
    }
}

/// `GET /timeline?…`: the trail, read as the console's user on a
/// blocking thread, grouped into agent sessions.
async fn timeline(shared: &Shared, query: &str) -> Response<Body> {
    let q = super::timeline::Query::parse(decide::form(query.as_bytes()));
    let current = shared.trail.clone();
    let read = tokio::task::spawn_blocking(move || {
        let t = super::timeline::read(&current, &q);
        (q, t)
    })
    .await;
    let Ok((q, t)) = read else {
        return notice(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No timeline",
            "Reading the trail failed.",
        );
    };
    let status = match &t {
        Ok(_) => StatusCode::OK,
        Err(super::timeline::TimelineError::Filter(_)) => StatusCode::BAD_REQUEST,
        Err(super::timeline::TimelineError::Read(e))
            if e.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            StatusCode::FORBIDDEN
        }
        Err(super::timeline::TimelineError::Read(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        Err(super::timeline::TimelineError::Missing(_)) => StatusCode::NOT_FOUND,
    };
    let page = super::timeline::page(&shared.viewer, &q, &t);
    respond(status, "text/html; charset=utf-8", page)
}

/// The session cookie's value, if the request has one.
fn session_cookie(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE).then(|| v.to_owned())
        })
}

/// `GET /login?token=…`: the printed link, spent once, opens a session.
fn login(shared: &Shared, query: &str) -> Response<Body> {
    let token = decide::form(query.as_bytes())
        .into_iter()
        .find_map(|(k, v)| (k == "token").then_some(v))
        .unwrap_or_default();
    match shared.sessions.login(&token) {
        Ok(Some(cookie)) => {
            let mut r = respond(StatusCode::SEE_OTHER, "text/plain", String::new());
            let h = r.headers_mut();
            h.insert(header::LOCATION, HeaderValue::from_static("/"));
            // Secure: browsers treat loopback as a secure context and keep
            // it over http://127.0.0.1; it never goes anywhere else.
            let set = format!(
                "{COOKIE}={cookie}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
                SESSION_TTL.as_secs()
            );
            if let Ok(v) = HeaderValue::from_str(&set) {
                h.insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(None) => notice(
            StatusCode::FORBIDDEN,
            "This sign-in link does not work",
            "It was used already, has expired (after 5 minutes), or is not the one airlock console printed. Start airlock console again for a new one.",
        ),
        Err(e) => notice(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No session",
            &e.to_string(),
        ),
    }
}

pub(super) fn signed_out() -> Response<Body> {
    notice(
        StatusCode::UNAUTHORIZED,
        "Not signed in",
        "Open the sign-in link airlock console printed (it works once, for 5 minutes).",
    )
}

fn asset(content_type: &'static str, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(super) fn notice(status: StatusCode, title: &str, text: &str) -> Response<Body> {
    respond(
        status,
        "text/html; charset=utf-8",
        html::notice(title, text),
    )
}

pub(super) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The headers every answer carries.
fn secure(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // No referrer leaves the console; `no-referrer` would also make
    // browsers send `Origin: null` with the page's own forms, and the
    // origin check needs the real one.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_carries_the_security_headers() {
        let r = secure(notice(StatusCode::NOT_FOUND, "x", "y"));
        let h = r.headers();
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert!(CSP.contains("default-src 'none'") && CSP.contains("frame-ancestors 'none'"));
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
    }

    #[test]
    fn the_script_and_style_are_the_binarys_own() {
        assert!(APP_JS.contains("new EventSource(\"/events\")"));
        assert!(!APP_JS.contains("http"), "no third-party assets");
        assert!(!APP_CSS.contains("url("), "no third-party assets");
    }
}
