//! The demo's approvers at the approval console (`airlock console`): a
//! browser's requests, made by the demo itself — the one-time sign-in
//! link for a session cookie (single-host mode), or the OpenID Connect
//! sign-in at the demo's Entra ID (fleet mode: the issuer's leg by real
//! curl, trusting the demo's CA); the page showing the held request, a
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

/// The session cookie's name.
const SESSION: &str = "airlock_console";

/// One answer: status, `Location`, the cookies it sets (`name=value`),
/// body.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    cookies: Vec<String>,
    body: String,
}

impl Answer {
    fn cookie(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.cookies
            .iter()
            .find(|c| c.starts_with(&prefix) && c.len() > prefix.len())
            .cloned()
    }
}

impl Browser {
    /// Opens the printed link: the session cookie it sets.
    pub(super) async fn sign_in(login_url: &str) -> Result<Self, String> {
        let (mut b, path) = Self::at(login_url)?;
        let answer = b.send(Method::GET, &path, None).await?;
        b.cookie = answer
            .cookie(SESSION)
            .ok_or_else(|| format!("sign-in answered {} without a session", answer.status))?;
        Ok(b)
    }

    /// Fleet mode: `login_url` (the console's `/login`) sends the browser
    /// to the issuer, which signs its user in and sends it back with a
    /// code; the console's `/callback` opens the session. The issuer's leg
    /// is real curl over TLS, trusting `issuer_ca`.
    pub(super) async fn sign_in_with_issuer(
        login_url: &str,
        issuer_ca: &std::path::Path,
    ) -> Result<Self, String> {
        let (mut b, path) = Self::at(login_url)?;
        let start = b.send(Method::GET, &path, None).await?;
        let to_issuer = start
            .location
            .clone()
            .ok_or_else(|| format!("/login answered {} without a redirect", start.status))?;
        let attempt = start
            .cookie("airlock_console_signin")
            .ok_or("/login set no sign-in cookie")?;
        let out = tokio::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{redirect_url}",
                "--cacert",
            ])
            .arg(issuer_ca)
            .arg(&to_issuer)
            .output()
            .await
            .map_err(|e| format!("curl: {e}"))?;
        let back = String::from_utf8_lossy(&out.stdout).into_owned();
        let callback = back
            .strip_prefix(&b.origin)
            .filter(|p| p.starts_with("/callback?"))
            .ok_or_else(|| {
                format!(
                    "the issuer sent the browser to {back:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })?
            .to_owned();
        b.cookie = attempt;
        let answer = b.send(Method::GET, &callback, None).await?;
        b.cookie = answer.cookie(SESSION).ok_or_else(|| {
            format!(
                "the callback answered {} without a session: {}",
                answer.status, answer.body
            )
        })?;
        Ok(b)
    }

    /// A browser at the console `url` is on, and `url`'s path.
    fn at(url: &str) -> Result<(Self, String), String> {
        let rest = url.strip_prefix("http://").ok_or("not an http:// link")?;
        let (host, path) = rest.split_once('/').ok_or("no path in the link")?;
        let b = Self {
            origin: format!("http://{host}"),
            host: host.to_owned(),
            cookie: String::new(),
        };
        Ok((b, format!("/{path}")))
    }

    /// The page, once it shows request `id` (the list is live: it is
    /// there within a moment of being held — or, in fleet mode, of its
    /// host publishing it).
    pub(super) async fn page_with(&self, id: &str) -> Result<String, String> {
        for _ in 0..200 {
            let page = self.send(Method::GET, "/", None).await?.body;
            if page.contains(id) {
                return Ok(page);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(format!("{id} never showed on the console's page"))
    }

    /// Approves (or denies) `id` from `page`'s form: what the page after
    /// says of it (`ID: approved …`, `ID: denied by …`).
    pub(super) async fn decide(
        &self,
        page: &str,
        id: &str,
        approve: bool,
        reason: &str,
    ) -> Result<String, String> {
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or("no CSRF token on the page")?;
        let form = format!("csrf={csrf}&id={id}&reason={}", reason.replace(' ', "+"));
        let to = if approve { "/approve" } else { "/deny" };
        let answer = self.send(Method::POST, to, Some(form)).await?;
        if answer.status != StatusCode::SEE_OTHER {
            return Err(format!("the decision was answered {}", answer.status));
        }
        let after = self.send(Method::GET, "/", None).await?.body;
        let said = format!("{id}: {} ", if approve { "approved" } else { "denied" });
        after
            .split(&said)
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .map(|rest| format!("{said}{rest}"))
            .ok_or_else(|| format!("the page after the decision does not say {said}…"))
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
        let headers = resp.headers();
        let cookies = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|c| c.split(';').next().map(str::to_owned))
            .collect();
        let location = headers
            .get(header::LOCATION)
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
            location,
            cookies,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}
