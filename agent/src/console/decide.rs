//! `POST /approve` and `/deny`: a decision from the console's own page —
//! its session, its origin, its CSRF token — handed to the console's
//! source ([`super::source`]: the admin socket as the user who runs the
//! console, or the fleet's database for the person signed in), and its
//! outcome, with who decided, kept for the next page. `POST /logout`, from
//! the same page under the same checks, ends the session.

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::reply::{Body, notice, respond};
use super::server::{Shared, signed_out};
use super::session::Session;
use super::source::Decision;

/// A decision's form: an id, a reason, a window, a scope, the token.
const MAX_FORM: usize = 16 * 1024;

/// `POST /approve` and `/deny`: a signed-in session's form, from this
/// console's own page (Origin, Sec-Fetch-Site) with its CSRF token,
/// handed to the source, which decides whether this user may. The
/// outcome is shown on the page it redirects to.
pub(super) async fn decide(
    shared: &Shared,
    cookie: Option<String>,
    req: Request<Incoming>,
    approve: bool,
) -> Response<Body> {
    let (cookie, session, fields) = match page_form(shared, cookie, req).await {
        Ok(f) => f,
        Err(refused) => return refused,
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let Some(id) = field("id") else {
        return notice(
            StatusCode::BAD_REQUEST,
            "Refused",
            "The form names no request.",
        );
    };
    let decision = Decision {
        id,
        approve,
        window: field("for"),
        scope: field("scope"),
        reason: field("reason"),
    };
    let flash = shared
        .source
        .decide(decision, session.person.as_ref())
        .await;
    let user = session.person.as_ref().map(|p| p.name.as_str());
    tracing::info!(id, approve, user, ok = flash.ok, outcome = %flash.text, "console: decision");
    shared.sessions.flash(&cookie, flash);
    let mut r = respond(StatusCode::SEE_OTHER, "text/plain", String::new());
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/"));
    r
}

/// `POST /logout`: the session ends, here and in the browser (its cookie
/// is cleared). A forged sign-out is refused like a forged decision.
pub(super) async fn sign_out(
    shared: &Shared,
    cookie: Option<String>,
    req: Request<Incoming>,
) -> Response<Body> {
    let (cookie, session, _) = match page_form(shared, cookie, req).await {
        Ok(f) => f,
        Err(refused) => return refused,
    };
    shared.sessions.close(&cookie);
    let user = session.person.as_ref().map(|p| p.name.as_str());
    tracing::info!(user, "console: signed out");
    let again = if shared.signin.is_some() {
        "Signed out. Sign in again at /login."
    } else {
        "Signed out. The sign-in link worked once: start airlock console again for a new one."
    };
    let mut r = notice(StatusCode::OK, "Signed out", again);
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "airlock_console=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    r
}

/// A form posted by a live session from this console's own page, with
/// the session's CSRF token: the session's cookie, the session and the
/// form's fields; else the answer refusing it.
async fn page_form(
    shared: &Shared,
    cookie: Option<String>,
    req: Request<Incoming>,
) -> Result<(String, Session, Vec<(String, String)>), Response<Body>> {
    let Some((cookie, session)) = cookie.and_then(|c| shared.sessions.peek(&c).map(|s| (c, s)))
    else {
        return Err(signed_out(shared));
    };
    if let Err(why) = same_origin(req.headers(), &shared.origin) {
        return Err(notice(StatusCode::FORBIDDEN, "Refused", &why));
    }
    let Ok(body) = Limited::new(req.into_body(), MAX_FORM).collect().await else {
        return Err(notice(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Refused",
            "The form is too large.",
        ));
    };
    let fields = form(&body.to_bytes());
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map_or("", |(_, v)| v.trim());
    if !shared.sessions.csrf_ok(&cookie, csrf) {
        return Err(notice(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form's CSRF token is missing or wrong: nothing was done.",
        ));
    }
    Ok((cookie, session, fields))
}

/// A decision must come from this console's own page: a browser names
/// the page's origin (`Origin`) and says the request is same-origin
/// (`Sec-Fetch-Site`); a client that sends neither still needs the CSRF
/// token.
fn same_origin(headers: &HeaderMap, origin: &str) -> Result<(), String> {
    // Present but not text is not "absent".
    let h = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(unreadable)"))
    };
    if let Some(o) = h("origin")
        && o != origin
    {
        return Err(format!(
            "A decision from {o} is refused: only this console's own page ({origin}) may decide."
        ));
    }
    if let Some(site) = h("sec-fetch-site")
        && site != "same-origin"
    {
        return Err(format!(
            "A decision from a {site} page is refused: only this console's own page may decide."
        ));
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` pairs.
pub(super) fn form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                crate::core::percent_decode(k),
                crate::core::percent_decode(v),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_consoles_own_page_may_decide() {
        let origin = "http://127.0.0.1:8765";
        let headers = |pairs: &[(&'static str, &[u8])]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_bytes(v).unwrap());
            }
            h
        };
        // A browser on the page; a client that says nothing (curl: the
        // CSRF token still decides).
        let page = headers(&[
            ("origin", b"http://127.0.0.1:8765"),
            ("sec-fetch-site", b"same-origin"),
        ]);
        assert!(same_origin(&page, origin).is_ok());
        assert!(same_origin(&HeaderMap::new(), origin).is_ok());
        for bad in [
            headers(&[("origin", b"http://evil.example")]),
            headers(&[("origin", b"null")]),
            headers(&[("origin", b"http://localhost:8765")]),
            headers(&[("sec-fetch-site", b"cross-site")]),
            headers(&[("sec-fetch-site", b"same-site")]),
            headers(&[("origin", b"http://127.0.0.1:8765\xff")]),
            headers(&[
                ("origin", b"http://127.0.0.1:8765"),
                ("sec-fetch-site", b"none"),
            ]),
        ] {
            assert!(same_origin(&bad, origin).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn forms_decode_as_browsers_encode() {
        let f = form(b"csrf=ab12&id=r-1&reason=not+during+the+freeze%21&for=&x");
        assert_eq!(
            f,
            [
                ("csrf".into(), "ab12".into()),
                ("id".into(), "r-1".into()),
                ("reason".into(), "not during the freeze!".into()),
                ("for".into(), String::new()),
                ("x".into(), String::new()),
            ]
        );
    }
}
