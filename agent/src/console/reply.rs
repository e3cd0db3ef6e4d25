//! What every answer of the console is made of: the session cookie (its
//! name, reading it, setting it), pages and plain answers, the binary's
//! own script and style, and the security headers every answer carries.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use super::html;
use super::session::SESSION_TTL;

/// The session cookie's name.
pub(super) const COOKIE: &str = "airlock_console";
/// Every answer: nothing but the console's own script and style, never
/// framed, never cached.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(super) const APP_JS: &str = include_str!("assets/app.js");
pub(super) const APP_CSS: &str = include_str!("assets/app.css");

pub(super) type Body = BoxBody<Bytes, Infallible>;

/// The session cookie's value, if the request has one.
pub(super) fn session_cookie(req: &Request<Incoming>) -> Option<String> {
    cookie(req, COOKIE)
}

/// Cookie `name`'s value, if the request has it.
pub(super) fn cookie(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
}

/// `Set-Cookie` for a new session `cookie`: never readable by script,
/// sent only to this console and only from its own pages.
pub(super) fn session_set_cookie(cookie: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={cookie}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_TTL.as_secs()
    ))
    .ok()
}

pub(super) fn asset(content_type: &'static str, text: &'static str) -> Response<Body> {
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
pub(super) fn secure(mut r: Response<Body>) -> Response<Body> {
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
