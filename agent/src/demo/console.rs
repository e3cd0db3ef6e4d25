//! The demo's approver at the approval console (`airlock console`): a
//! browser's requests, made by the demo itself — the one-time sign-in
//! link for a session cookie, the page showing the held request, a
//! decision posted from it with the page's CSRF token and origin, and the
//! timeline showing how it ended.

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// A signed-in session at one console.
pub(super) struct Browser {
    origin: String,
    host: String,
    cookie: String,
}

/// One answer: status, `Set-Cookie`, body.
struct Answer {
    status: StatusCode,
    cookie: Option<String>,
    body: String,
}

impl Browser {
    /// Opens the printed link: the session cookie it sets.
    pub(super) async fn sign_in(login_url: &str) -> Result<Self, String> {
        let rest = login_url
            .strip_prefix("http://")
            .ok_or("not an http:// link")?;
        let (host, path) = rest.split_once('/').ok_or("no path in the link")?;
        let mut b = Self {
            origin: format!("http://{host}"),
            host: host.to_owned(),
            cookie: String::new(),
        };
        let answer = b.send(Method::GET, &format!("/{path}"), None).await?;
        b.cookie = answer
            .cookie
            .and_then(|c| c.split(';').next().map(str::to_owned))
            .ok_or_else(|| format!("sign-in answered {} without a session", answer.status))?;
        Ok(b)
    }

    /// The page, once it shows request `id` (the list is live: it is
    /// there within a moment of being held).
    pub(super) async fn page_with(&self, id: &str) -> Result<String, String> {
        for _ in 0..100 {
            let page = self.send(Method::GET, "/", None).await?.body;
            if page.contains(id) {
                return Ok(page);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(format!("{id} never showed on the console's page"))
    }

    /// Denies `id` from `page`'s form; the page after, with the outcome.
    pub(super) async fn deny(&self, page: &str, id: &str, reason: &str) -> Result<String, String> {
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or("no CSRF token on the page")?;
        let form = format!("csrf={csrf}&id={id}&reason={}", reason.replace(' ', "+"));
        let answer = self.send(Method::POST, "/deny", Some(form)).await?;
        if answer.status != StatusCode::SEE_OTHER {
            return Err(format!("the decision was answered {}", answer.status));
        }
        Ok(self.send(Method::GET, "/", None).await?.body)
    }

    /// The timeline filtered by `query`, once it shows `want` (the
    /// exchange's response record is written as its answer ends).
    pub(super) async fn timeline(&self, query: &str, want: &str) -> Result<String, String> {
        let mut page = String::new();
        for _ in 0..100 {
            let answer = self
                .send(Method::GET, &format!("/timeline?{query}"), None)
                .await?;
            if answer.status != StatusCode::OK {
                return Err(format!("the timeline was answered {}", answer.status));
            }
            page = answer.body;
            if page.contains(want) {
                return Ok(page);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(format!("the timeline never showed {want:?}: {page}"))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        form: Option<String>,
    ) -> Result<Answer, String> {
        let stream = tokio::net::TcpStream::connect(&self.host)
            .await
            .map_err(|e| format!("console {}: {e}", self.host))?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host);
        if !self.cookie.is_empty() {
            req = req.header(header::COOKIE, &self.cookie);
        }
        if form.is_some() {
            // What a browser sends with the page's own form.
            req = req
                .header(header::ORIGIN, &self.origin)
                .header("sec-fetch-site", "same-origin")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let req = req
            .body(Full::new(Bytes::from(form.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let cookie = resp
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Answer {
            status,
            cookie,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}
