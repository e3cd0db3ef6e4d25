//! Fleet mode's sign-in, over HTTP: `GET /login` starts an attempt (a
//! fresh `state`, `nonce` and PKCE verifier, [`super::oidc`]) bound to
//! this browser by a short-lived cookie, and sends the browser to the
//! issuer; `GET /callback` takes the attempt back (once), checks `state`,
//! has the code exchanged and the ID token checked, and opens a session
//! for the person it names. Any failure is a page saying why, and no
//! session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use ring::rand::SystemRandom;

use super::html::escape;
use super::oidc::{Attempt, Provider};
use super::reply::{Body, cookie, notice, respond, session_set_cookie};
use super::server::Shared;
use super::session::{hash, random};
use crate::core::lock;

/// The cookie that binds an attempt to the browser that started it. Lax,
/// not Strict: the browser comes back from the issuer's site, and a
/// Strict cookie would not be sent then.
const ATTEMPT_COOKIE: &str = "airlock_console_signin";
/// How long a sign-in at the issuer may take.
const ATTEMPT_TTL: Duration = Duration::from_secs(10 * 60);
/// Attempts under way at once: anyone who reaches the console may start
/// one, so they are bounded.
const MAX_ATTEMPTS: usize = 1024;

/// The issuer and the attempts under way.
#[derive(Debug)]
pub(super) struct SignIn {
    provider: Provider,
    rng: SystemRandom,
    /// By the SHA-256 of the attempt cookie's value.
    attempts: Mutex<HashMap<[u8; 32], (Attempt, Instant)>>,
}

impl SignIn {
    pub(super) fn new(provider: Provider) -> Self {
        Self {
            provider,
            rng: SystemRandom::new(),
            attempts: Mutex::default(),
        }
    }

    pub(super) fn issuer(&self) -> &str {
        self.provider.issuer()
    }

    /// `GET /login`: to the issuer, with a new attempt.
    pub(super) fn start(&self) -> Response<Body> {
        let (attempt, key) = match Attempt::new(&self.rng).and_then(|a| Ok((a, random(&self.rng)?)))
        {
            Ok(x) => x,
            Err(e) => {
                return notice(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "No sign-in",
                    &e.to_string(),
                );
            }
        };
        {
            let mut open = lock(&self.attempts);
            let now = Instant::now();
            open.retain(|_, (_, until)| *until > now);
            if open.len() >= MAX_ATTEMPTS {
                return notice(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many sign-ins",
                    "Too many sign-ins are under way; try again in a few minutes.",
                );
            }
            open.insert(hash(&key), (attempt.clone(), now + ATTEMPT_TTL));
        }
        let mut r = respond(StatusCode::SEE_OTHER, "text/plain", String::new());
        let h = r.headers_mut();
        if let Ok(to) = HeaderValue::from_str(&self.provider.authorize_url(&attempt)) {
            h.insert(header::LOCATION, to);
        }
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{ATTEMPT_COOKIE}={key}; HttpOnly; Secure; SameSite=Lax; Path=/callback; Max-Age={}",
            ATTEMPT_TTL.as_secs()
        )) {
            h.insert(header::SET_COOKIE, v);
        }
        r
    }

    /// `GET /callback?code=…&state=…` (or `?error=…`): a session, or a
    /// page saying why not. The attempt is spent either way.
    pub(super) async fn callback(
        &self,
        shared: &Shared,
        req: &Request<Incoming>,
    ) -> Response<Body> {
        let attempt = cookie(req, ATTEMPT_COOKIE).and_then(|key| {
            lock(&self.attempts)
                .remove(&hash(&key))
                .filter(|(_, until)| *until > Instant::now())
                .map(|(a, _)| a)
        });
        let query = super::decide::form(req.uri().query().unwrap_or("").as_bytes());
        let q = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let outcome = match (q("error"), attempt) {
            (Some(error), _) => Err(format!(
                "The issuer said: {error}{}",
                q("error_description")
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )),
            (None, None) => Err(
                "This sign-in was not started in this browser, was used already, or took longer than 10 minutes.".to_owned(),
            ),
            (None, Some(attempt)) => match (q("state"), q("code")) {
                (Some(state), Some(code)) if attempt.state_is(state) => {
                    self.provider.sign_in(code, &attempt).await
                }
                (Some(_), Some(_)) => Err(
                    "The answer's state is not this sign-in's: it was not started here.".to_owned(),
                ),
                _ => Err("The issuer's answer has no code or no state.".to_owned()),
            },
        };
        let mut r = match outcome.and_then(|person| {
            let name = person.name.clone();
            shared
                .sessions
                .open(Some(person))
                .map(|cookie| (name, cookie))
                .map_err(|e| e.to_string())
        }) {
            Ok((name, cookie)) => {
                tracing::info!(user = %name, "console: signed in");
                let mut r = respond(StatusCode::OK, "text/html; charset=utf-8", onward(&name));
                if let Some(v) = session_set_cookie(&cookie) {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
                r
            }
            Err(why) => {
                tracing::warn!(why = %why, "console: sign-in failed");
                notice(
                    StatusCode::FORBIDDEN,
                    "Sign-in failed",
                    &format!("{why} No session was opened; sign in again at /login."),
                )
            }
        };
        r.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_static(
                "airlock_console_signin=; HttpOnly; Secure; SameSite=Lax; Path=/callback; Max-Age=0",
            ),
        );
        r
    }
}

/// The page after a sign-in: on to `/` by a navigation of the console's
/// own page, so the browser sends the new (Strict) session cookie — a
/// redirect would still count as the issuer's navigation, and the cookie
/// would not be sent.
fn onward(name: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0;url=/\"><title>Signed in</title>\
         <link rel=\"stylesheet\" href=\"/app.css\"></head>\n<body><main class=\"notice\">\
         <h1>Signed in</h1><p>Signed in as {}. <a href=\"/\">Continue</a></p></main></body></html>\n",
        escape(name)
    )
}
