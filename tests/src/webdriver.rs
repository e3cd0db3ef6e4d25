//! A real browser for the console's tests: Debian's Chromium, headless,
//! driven through chromedriver over the W3C WebDriver protocol (JSON over
//! HTTP, spoken here with hyper). Its profile is fresh per browser, and
//! the flags keep it off the network (no background fetches, updates or
//! sync) so it only talks to loopback.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::TempDir;

/// Chromium as Debian installs it (the `chromium` package), without its
/// shell wrapper.
pub const CHROMIUM: &str = "/usr/lib/chromium/chromium";
/// chromedriver (`chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// W3C's name for an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session; chromedriver (and the browser) are killed
/// when it is dropped.
#[derive(Debug)]
pub struct Browser {
    _driver: tokio::process::Child,
    port: u16,
    session: String,
    _profile: TempDir,
}

/// An element on the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a browser, as `uid` when given (its HOME and
    /// profile are then that user's own).
    pub async fn start(uid: Option<u32>) -> Self {
        Self::start_trusting(uid, &[]).await
    }

    /// [`Browser::start`], trusting the HTTPS servers whose keys are
    /// `spki_pins` (see [`crate::TestPki::pinned_server_config`]).
    pub async fn start_trusting(uid: Option<u32>, spki_pins: &[&str]) -> Self {
        let profile = TempDir::new("chromium");
        if let Some(uid) = uid {
            std::os::unix::fs::chown(profile.path(), Some(uid), Some(uid)).unwrap();
        }
        std::fs::set_permissions(profile.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let port = crate::daemon::free_port("127.0.0.1");
        let mut cmd = match uid {
            Some(uid) => {
                let mut c = tokio::process::Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .args(["--clear-groups", CHROMEDRIVER]);
                c
            }
            None => tokio::process::Command::new(CHROMEDRIVER),
        };
        cmd.arg(format!("--port={port}"))
            .env("HOME", profile.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let driver = cmd.spawn().unwrap_or_else(|e| {
            panic!("{CHROMEDRIVER}: {e} (cargo xtask test installs chromium-driver)")
        });
        let mut browser = Self {
            _driver: driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        browser.wait_ready().await;
        let dir = browser._profile.path().join("profile");
        let v = browser
            .call(
                Method::POST,
                "/session",
                Some(json!({ "capabilities": { "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": { "binary": CHROMIUM, "args": args(&dir, spki_pins) },
                } } })),
            )
            .await
            .unwrap_or_else(|e| panic!("new browser session: {e}"));
        browser.session = v["sessionId"].as_str().expect("session id").to_owned();
        browser
    }

    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        loop {
            if let Ok(v) = self.call(Method::GET, "/status", None).await
                && v["ready"] == true
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn goto(&self, url: &str) {
        self.session_call(Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    /// The first element `css` selects, if there is one now.
    pub async fn find(&self, css: &str) -> Option<Element> {
        let v = self
            .session_call(
                Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .ok()?;
        v[ELEMENT].as_str().map(|id| Element(id.to_owned()))
    }

    /// The element `css` selects, waiting up to `within` for it.
    pub async fn wait_for(&self, css: &str, within: Duration) -> Element {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(e) = self.find(css).await {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{css} did not appear within {within:?} on {}: {}",
                self.session_call(Method::GET, "/url", None)
                    .await
                    .unwrap_or_default(),
                self.session_call(Method::GET, "/source", None)
                    .await
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The page's visible text.
    pub async fn page_text(&self) -> String {
        match self.find("body").await {
            Some(body) => self.text(&body).await.unwrap_or_default(),
            None => String::new(),
        }
    }

    /// An element's visible text; an error (`stale element reference`)
    /// when it is no longer on the page, as after a reload.
    pub async fn text(&self, e: &Element) -> Result<String, String> {
        let v = self
            .session_call(Method::GET, &format!("/element/{}/text", e.0), None)
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// An element's property (`value` of an input).
    pub async fn property(&self, e: &Element, name: &str) -> Option<String> {
        let v = self
            .session_call(
                Method::GET,
                &format!("/element/{}/property/{name}", e.0),
                None,
            )
            .await
            .ok()?;
        v.as_str().map(str::to_owned)
    }

    pub async fn click(&self, e: &Element) {
        self.session_call(
            Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        )
        .await
        .unwrap_or_else(|err| panic!("click: {err}"));
    }

    pub async fn type_into(&self, e: &Element, text: &str) {
        self.session_call(
            Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await
        .unwrap_or_else(|err| panic!("type: {err}"));
    }

    /// The page as PNG.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self
            .session_call(Method::GET, "/screenshot", None)
            .await
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .expect("PNG")
    }

    /// Saves a screenshot as `dir/name` when `dir` is given.
    pub async fn save_screenshot(&self, dir: Option<&Path>, name: &str) {
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(name), self.screenshot().await).unwrap();
        }
    }

    /// The cookies the browser holds for the current page.
    pub async fn cookies(&self) -> Vec<Value> {
        match self.session_call(Method::GET, "/cookie", None).await {
            Ok(Value::Array(a)) => a,
            other => panic!("cookies: {other:?}"),
        }
    }

    async fn session_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    /// One WebDriver command: its `value`, or its error as text.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|e| e.to_string())?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, format!("127.0.0.1:{}", self.port))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(crate::WAIT, send.send_request(request))
            .await
            .map_err(|_| format!("no answer to {path}"))?
            .map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(v["value"].to_string())
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the browser (chromedriver's child) before chromedriver is
        // killed; a best effort, on a thread of its own (no runtime here).
        if self.session.is_empty() {
            return;
        }
        let (port, session) = (self.port, self.session.clone());
        let _ = std::thread::spawn(move || {
            use std::io::{Read, Write};
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = write!(
                    s,
                    "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = s.read(&mut [0u8; 512]);
            }
        })
        .join();
    }
}

/// Headless, unsandboxed (tests run as root), and quiet on the network:
/// without the background-networking flags Chromium dials out at start,
/// which this machine's closed network refuses. A test server's pinned
/// key is trusted when given.
fn args(profile: &Path, spki_pins: &[&str]) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1100,860",
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .chain([format!("--user-data-dir={}", profile.display())])
    .chain((!spki_pins.is_empty()).then(|| {
        format!(
            "--ignore-certificate-errors-spki-list={}",
            spki_pins.join(",")
        )
    }))
    .collect()
}
