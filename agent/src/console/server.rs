//! The console's HTTP server (HTTPS with `console.tls_cert`): who may
//! connect (single-host: the user who started it, from a process airlock
//! does not capture, asked of the daemon for every connection; fleet mode
//! on loopback: never a captured process), sign-in (the printed link, or
//! the issuer: [`super::signin`]), the page, and routing to the live list
//! ([`super::events`]), the timeline ([`super::timeline`]) and the page's
//! forms ([`super::decide`]); what every answer is made of is
//! [`super::reply`]'s.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::admit::{Gate, admit};
use super::html::{self, Viewer};
use super::reply::{
    APP_CSS, APP_JS, Body, asset, notice, respond, secure, session_cookie, session_set_cookie,
};
use super::session::{Session, Sessions};
use super::signin::SignIn;
use super::source::Source;
use super::watch::Snapshot;
use super::{ConsoleError, decide, events};
use crate::admin::AdminClient;
use crate::config::Config;

/// A bound console; [`Console::run`] serves it.
#[derive(Debug)]
pub struct Console {
    listener: TcpListener,
    login_url: String,
    warning: Option<String>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub sessions: Sessions,
    pub source: Source,
    pub gate: Gate,
    /// Single-host mode's viewer (the console's own user).
    pub viewer: Viewer,
    /// Fleet mode's sign-in.
    pub signin: Option<SignIn>,
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
    /// Single-host mode: asks the daemon (its admin socket must answer),
    /// binds `console.listen` and makes the login link. Fleet mode: reads
    /// the fleet's holds and the issuer's discovery document, and binds.
    pub async fn bind(config: &Config) -> Result<Self, ConsoleError> {
        let tls = super::tls::server_config(&config.console)?;
        let addr = config.console.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ConsoleError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ConsoleError::Bind { addr, source })?;
        let (host, origin) = origin(config.console.url.as_deref(), addr, tls.is_some());
        let client = AdminClient::new(&config.admin.socket);
        let (source, gate, sessions, login_url, signin, warning, viewer);
        if config.console.fleet() {
            source = Source::Fleet {
                fleet: config.fleet.clone(),
                approvers: crate::approval::Approvers::new(&config.approval.approvers),
                allow_self: config.approval.allow_self,
            };
            // On loopback beside a daemon, its captured processes are
            // known and kept out; anywhere else, sign-in alone decides.
            gate = match addr.ip().is_loopback() && client.status().await.is_ok() {
                true => Gate::Uncaptured(client),
                false => Gate::SignIn,
            };
            sessions = Sessions::signed_in_elsewhere();
            login_url = format!("{origin}/login");
            signin = Some(SignIn::new(
                super::oidc::Provider::discover(config, &origin).await?,
            ));
            (warning, viewer) = (
                None,
                Viewer {
                    user: String::new(),
                    detail: String::new(),
                    refusal: None,
                    timeline: false,
                },
            );
        } else {
            let status = client.status().await?;
            warning = status["approvals"]["warning"].as_str().map(str::to_owned);
            let (store, token) = Sessions::new()?;
            sessions = store;
            login_url = format!("{origin}/login?token={token}");
            let uid =
                crate::capture::process::real_uid(std::process::id()).ok_or(ConsoleError::Me)?;
            let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default();
            viewer = Viewer {
                user: crate::users::name_of(uid).unwrap_or_else(|| format!("uid {uid}")),
                detail: format!("uid {uid} on {host_name}"),
                refusal: None,
                timeline: true,
            };
            signin = None;
            source = Source::Host(client.clone());
            gate = Gate::Owner { uid, client };
        }
        let first = source.first().await?;
        Ok(Self {
            listener,
            login_url,
            warning,
            tls,
            shared: Arc::new(Shared {
                sessions,
                held: source.watch(first),
                source,
                gate,
                viewer,
                signin,
                host,
                origin,
                trail: config.audit.path.clone(),
            }),
        })
    }

    /// Where to sign in: the one-time link (single-host mode), or the
    /// console's `/login` (fleet mode).
    pub fn login_url(&self) -> &str {
        &self.login_url
    }

    /// Fleet mode: approvers sign in with the issuer.
    pub fn signs_in_with_issuer(&self) -> bool {
        self.shared.signin.is_some()
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
                        conns.spawn(serve(self.shared.clone(), self.tls.clone(), stream, peer));
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
async fn serve(
    shared: Arc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
    stream: TcpStream,
    peer: SocketAddr,
) {
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
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    let served = match tls {
        None => http.serve_connection(TokioIo::new(stream), service).await,
        Some(tls) => {
            let stream = match tokio::time::timeout(
                Duration::from_secs(10),
                tokio_rustls::TlsAcceptor::from(tls).accept(stream),
            )
            .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "console: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            http.serve_connection(TokioIo::new(stream), service).await
        }
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, "console connection ended");
    }
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
        (Method::GET, "/login") => match &shared.signin {
            Some(signin) => signin.start(),
            None => login(shared, req.uri().query().unwrap_or("")),
        },
        (Method::GET, "/callback") => match &shared.signin {
            Some(signin) => signin.callback(shared, &req).await,
            None => notice(StatusCode::NOT_FOUND, "Not found", "There is no such page."),
        },
        (Method::GET, "/") => match cookie.and_then(|c| shared.sessions.take(&c)) {
            Some(s) => {
                let snap = shared.held.borrow().clone();
                let flash = s.flash.as_ref().map(|f| (f.ok, f.text.as_str()));
                let aged = snap.at.elapsed().as_secs();
                let viewer = viewer(shared, &s);
                let page = html::index(&viewer, &snap.held, &s.csrf, flash, aged);
                respond(StatusCode::OK, "text/html; charset=utf-8", page)
            }
            None => signed_out(shared),
        },
        (Method::GET, "/timeline") => match cookie.and_then(|c| shared.sessions.peek(&c)) {
            Some(s) => super::timeline::serve(shared, &s, req.uri().query().unwrap_or("")).await,
            None => signed_out(shared),
        },
        (Method::GET, "/events") => match cookie {
            Some(c) if shared.sessions.peek(&c).is_some() => events::stream(shared, c),
            _ => signed_out(shared),
        },
        (Method::POST, "/approve") => decide::decide(shared, cookie, req, true).await,
        (Method::POST, "/deny") => decide::decide(shared, cookie, req, false).await,
        (Method::POST, "/logout") => decide::sign_out(shared, cookie, req).await,
        (
            _,
            "/" | "/login" | "/callback" | "/events" | "/timeline" | "/approve" | "/deny"
            | "/logout" | "/app.js" | "/app.css",
        ) => notice(
            StatusCode::METHOD_NOT_ALLOWED,
            "Not allowed",
            "That method is not served here.",
        ),
        _ => notice(StatusCode::NOT_FOUND, "Not found", "There is no such page."),
    }
}

/// The `Host` the console answers to and its origin: `url`'s, else the
/// bound address's. A default port is left out of `Host`, as browsers
/// leave it out.
fn origin(url: Option<&str>, bound: SocketAddr, https: bool) -> (String, String) {
    let scheme = if https { "https" } else { "http" };
    let parsed = url.and_then(|u| u.parse::<http::Uri>().ok());
    let Some(authority) = parsed.as_ref().and_then(|u| u.authority()) else {
        let host = bound.to_string();
        return (host.clone(), format!("{scheme}://{host}"));
    };
    let default = if https { 443 } else { 80 };
    let host = match authority.port_u16() {
        Some(p) if p == default => authority.host().to_owned(),
        _ => authority.as_str().to_owned(),
    };
    (host.clone(), format!("{scheme}://{host}"))
}

/// Who the page says is signed in: the console's user, or the session's
/// person and whether they may decide.
pub(super) fn viewer(shared: &Shared, session: &Session) -> Viewer {
    match (&shared.signin, &session.person) {
        (Some(signin), Some(p)) => {
            let refusal = shared.source.refusal(Some(p));
            Viewer {
                user: p.name.clone(),
                detail: format!("via {}", signin.issuer()),
                // Every host's trail (prompts included) is for approvers.
                timeline: refusal.is_none(),
                refusal,
            }
        }
        _ => shared.viewer.clone(),
    }
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
            if let Some(v) = session_set_cookie(&cookie) {
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

pub(super) fn signed_out(shared: &Shared) -> Response<Body> {
    let how = match shared.signin {
        Some(_) => "Sign in at /login.",
        None => "Open the sign-in link airlock console printed (it works once, for 5 minutes).",
    };
    notice(StatusCode::UNAUTHORIZED, "Not signed in", how)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_answers_at_its_url_or_its_address() {
        let bound: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        let o = |url| origin(url, bound, true);
        assert_eq!(
            o(Some("https://airlock.contoso.test:8443")),
            (
                "airlock.contoso.test:8443".into(),
                "https://airlock.contoso.test:8443".into()
            )
        );
        assert_eq!(
            o(Some("https://airlock.contoso.test:443/")),
            (
                "airlock.contoso.test".into(),
                "https://airlock.contoso.test".into()
            )
        );
        let local: SocketAddr = "127.0.0.1:8765".parse().unwrap();
        assert_eq!(
            origin(None, local, false),
            ("127.0.0.1:8765".into(), "http://127.0.0.1:8765".into())
        );
    }
}
