//! The admin API's client, for `airlock approvals …`: HTTP/1.1 over the
//! Unix socket (hyper client), JSON in and out, errors as
//! [`AdminError::Api`], and the terminal tables the CLI prints.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::UnixStream;

use super::AdminError;

/// Longest answer read (a long held list with body excerpts).
const MAX_RESPONSE: usize = 16 << 20;

/// Talks to a running airlock's admin socket.
#[derive(Clone, Debug)]
pub struct AdminClient {
    socket: PathBuf,
}

impl AdminClient {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub async fn status(&self) -> Result<Value, AdminError> {
        self.json(Method::GET, "/v1/status", None).await
    }

    /// The held requests.
    pub async fn list(&self) -> Result<Vec<Value>, AdminError> {
        let v = self.json(Method::GET, "/v1/approvals", None).await?;
        Ok(array(v, "approvals"))
    }

    pub async fn show(&self, id: &str) -> Result<Value, AdminError> {
        self.json(Method::GET, &format!("/v1/approvals/{}", segment(id)), None)
            .await
    }

    /// Approves once, or for `window` (`"30m"`).
    /// Releases held request `id`; with `window`, a grant over `scope`
    /// (default: the held request's own resource).
    pub async fn approve(
        &self,
        id: &str,
        window: Option<&str>,
        scope: Option<&str>,
        reason: Option<&str>,
    ) -> Result<Value, AdminError> {
        let body = json!({ "for": window, "scope": scope, "reason": reason });
        let body = strip_nulls(body);
        self.json(
            Method::POST,
            &format!("/v1/approvals/{}/approve", segment(id)),
            Some(body),
        )
        .await
    }

    pub async fn deny(&self, id: &str, reason: &str) -> Result<Value, AdminError> {
        self.json(
            Method::POST,
            &format!("/v1/approvals/{}/deny", segment(id)),
            Some(json!({ "reason": reason })),
        )
        .await
    }

    /// Whether airlock captures process `pid` (`captured`, `why`,
    /// `tells_agent_apart`); a process that is gone is an error (404).
    pub async fn process(&self, pid: u32) -> Result<Value, AdminError> {
        self.json(Method::GET, &format!("/v1/processes/{pid}"), None)
            .await
    }

    pub async fn grants(&self) -> Result<Vec<Value>, AdminError> {
        let v = self.json(Method::GET, "/v1/grants", None).await?;
        Ok(array(v, "grants"))
    }

    pub async fn revoke(&self, grant: &str, reason: Option<&str>) -> Result<Value, AdminError> {
        self.json(
            Method::POST,
            &format!("/v1/grants/{}/revoke", segment(grant)),
            Some(strip_nulls(json!({ "reason": reason }))),
        )
        .await
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> Result<String, AdminError> {
        let (_, body) = self.call(Method::GET, "/metrics", None).await?;
        String::from_utf8(body.to_vec()).map_err(|e| self.failed(e))
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, AdminError> {
        let (_, body) = self.call(method, path, body).await?;
        serde_json::from_slice(&body).map_err(|e| self.failed(format!("answer is not JSON: {e}")))
    }

    /// One request on a fresh connection; a non-2xx answer becomes
    /// [`AdminError::Api`] with the server's code and message.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(http::StatusCode, Bytes), AdminError> {
        let stream = UnixStream::connect(&self.socket).await.map_err(|e| {
            self.failed(format!(
                "connect: {e} (is airlock running, and may you use its socket?)"
            ))
        })?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.failed(e))?;
        let conn = tokio::spawn(conn);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "airlock");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .map_err(|e| self.failed(e))?;
        let response = send
            .send_request(request)
            .await
            .map_err(|e| self.failed(e))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| self.failed(e))?
            .to_bytes();
        conn.abort();
        if status.is_success() {
            return Ok((status, bytes));
        }
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let field = |k: &str| v["error"][k].as_str().map(str::to_owned);
        Err(AdminError::Api {
            status: status.as_u16(),
            code: field("code").unwrap_or_else(|| status.as_u16().to_string()),
            message: field("message").unwrap_or_else(|| String::from_utf8_lossy(&bytes).into()),
        })
    }

    fn failed(&self, why: impl std::fmt::Display) -> AdminError {
        AdminError::Client {
            path: self.socket.clone(),
            why: why.to_string(),
        }
    }
}

/// An id as one path segment: ids are `[0-9a-f-]`, so anything else is
/// percent-escaped rather than allowed to change the path.
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn strip_nulls(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|_, x| !x.is_null());
    }
    v
}

fn array(mut v: Value, key: &str) -> Vec<Value> {
    match v[key].take() {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

/// `1h02m`, `3m05s`, `42s`.
fn human(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// Who, as briefly as it can be said: UPN, GitHub actor@repo, else the
/// grant key.
fn who(v: &Value) -> String {
    let id = &v["identity"];
    if let Some(upn) = id["upn"].as_str() {
        return upn.to_owned();
    }
    if let Some(actor) = id["github"]["actor"].as_str() {
        let repo = id["github"]["repository"].as_str().unwrap_or("?");
        return format!("{actor}@{repo}");
    }
    v["identity_key"].as_str().unwrap_or("-").to_owned()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("-")
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// The held list as a table: ID, WAITING, OPERATION, IDENTITY, PROCESS,
/// RULE; with a `host` on the rows (the fleet's list), HOST first.
pub fn approvals_table(held: &[Value]) -> String {
    let fleet = held.iter().any(|v| v["host"].is_string());
    let rows = held
        .iter()
        .map(|v| {
            let p = &v["process"];
            let host = fleet.then(|| s(v, "host").to_owned());
            host.into_iter()
                .chain([
                    s(v, "id").to_owned(),
                    human(v["waiting_s"].as_u64().unwrap_or(0)),
                    s(v, "operation").to_owned(),
                    who(v),
                    format!(
                        "{}[{}] uid {}",
                        p["comm"].as_str().unwrap_or("?"),
                        p["pid"],
                        p["uid"]
                    ),
                    s(v, "rule").to_owned(),
                ])
                .collect()
        })
        .collect();
    let header = [
        "HOST",
        "ID",
        "WAITING",
        "OPERATION",
        "IDENTITY",
        "PROCESS",
        "RULE",
    ];
    table(&header[usize::from(!fleet)..], rows)
}

/// Live grants as a table.
pub fn grants_table(grants: &[Value]) -> String {
    let rows = grants
        .iter()
        .map(|g| {
            vec![
                s(g, "id").to_owned(),
                human(g["remaining_s"].as_u64().unwrap_or(0)),
                s(g, "operation").to_owned(),
                s(g, "scope").to_owned(),
                s(g, "identity_key").to_owned(),
                s(g, "rule").to_owned(),
                g["by"]["user"]
                    .as_str()
                    .map_or_else(|| format!("uid {}", g["by"]["uid"]), str::to_owned),
                g["uses"].to_string(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "REMAINING",
            "OPERATION",
            "SCOPE",
            "IDENTITY",
            "RULE",
            "BY",
            "USES",
        ],
        rows,
    )
}

/// One held request in full, for `approvals show`.
pub fn held_details(v: &Value) -> String {
    let p = &v["process"];
    let mut out = format!(
        "id:        {}\nwaiting:   {} ({} left)\noperation: {}\nrequest:   {} {}\ngoes to:   {}\nresource:  {}\nidentity:  {} ({})\nprocess:   {} pid {} uid {}\n",
        s(v, "id"),
        human(v["waiting_s"].as_u64().unwrap_or(0)),
        human(v["remaining_s"].as_u64().unwrap_or(0)),
        s(v, "operation"),
        s(v, "method"),
        s(v, "url"),
        s(v, "target_host"),
        s(v, "resource"),
        who(v),
        s(v, "identity_key"),
        p["comm"].as_str().unwrap_or("?"),
        p["pid"],
        p["uid"],
    );
    if let Some(exe) = p["exe"].as_str() {
        out.push_str(&format!("exe:       {exe}\n"));
    }
    if let Some(cmd) = p["cmdline"].as_str() {
        out.push_str(&format!("cmdline:   {cmd}\n"));
    }
    if let Some(gh) = v["identity"]["github"].as_object() {
        let f = |k: &str| gh.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
        out.push_str(&format!(
            "github:    {} in {} (run {})\n",
            f("actor"),
            f("repository"),
            f("run_id")
        ));
    }
    out.push_str(&format!(
        "rule:      {} — {}\n",
        s(v, "rule"),
        s(v, "reason")
    ));
    if let Some(b) = v["body_excerpt"].as_str() {
        out.push_str(&format!("body:\n{b}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_their_segment() {
        assert_eq!(segment("18a-2f"), "18a-2f");
        assert_eq!(segment("../x?y"), "..%2Fx%3Fy");
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(human(5), "5s");
        assert_eq!(human(185), "3m05s");
        assert_eq!(human(3720), "1h02m");
    }

    #[test]
    fn table_has_the_documented_columns() {
        let t = approvals_table(&[json!({
            "id": "a-1", "waiting_s": 61, "operation": "k8s.pods.exec", "rule": "r",
            "identity": { "upn": "dev@contoso.com" }, "identity_key": "oid:x",
            "process": { "comm": "kubectl", "pid": 42, "uid": 1000 }
        })]);
        let mut lines = t.lines();
        assert!(lines.next().unwrap().starts_with("ID   WAITING  OPERATION"));
        let row = lines.next().unwrap();
        for want in [
            "a-1",
            "1m01s",
            "k8s.pods.exec",
            "dev@contoso.com",
            "kubectl[42] uid 1000",
        ] {
            assert!(row.contains(want), "{row}");
        }
    }
}
