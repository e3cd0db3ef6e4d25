//! Requests that carry other requests, opened so each can be named and
//! judged: ARM `POST /batch` (`requests[]`), Storage blob batch
//! (`comp=batch`, `multipart/mixed` of HTTP requests), and a Complete-mode
//! ARM deployment, which deletes every resource its template omits. Pure:
//! a body in, the requests inside out, or why it cannot be read.

use serde_json::Value;

/// ARM's batch endpoint, as [`super::classify`] names it.
const ARM_BATCH: &str = "Microsoft.Resources/batch/action";
const STORAGE_BATCHES: [&str; 2] = ["storage.service.batch", "storage.container.batch"];
const DEPLOYMENT_WRITE: &str = "Microsoft.Resources/deployments/write";
const GRAPH_BATCH: &str = super::graph::BATCH;
/// What a Complete-mode deployment also does: delete what its template
/// does not name. airlock's own name (there is no RBAC action for it).
pub(crate) const COMPLETE_DEPLOYMENT: &str = "arm.deployments.complete";

/// One request inside an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Inner {
    /// A request to classify like any other.
    Request {
        method: String,
        host: String,
        path: String,
        query: Option<String>,
    },
    /// An effect with a name of its own.
    Named(&'static str),
}

/// Whether requests of `operation` may carry others: their bodies are read
/// whole before they are forwarded, and opened.
pub(crate) fn is_envelope(operation: &str) -> bool {
    operation == ARM_BATCH
        || operation == GRAPH_BATCH
        || operation == DEPLOYMENT_WRITE
        || STORAGE_BATCHES.contains(&operation)
}

/// The requests inside `body`, an `operation` request to `host`; `Err`:
/// why the envelope cannot be read (it is then not forwarded).
pub(crate) fn open(
    operation: &str,
    host: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<Inner>, String> {
    match operation {
        ARM_BATCH => json_batch(host, body, "httpMethod", "ARM"),
        GRAPH_BATCH => json_batch(host, body, "method", "Graph"),
        DEPLOYMENT_WRITE => Ok(complete_mode(body)
            .then_some(Inner::Named(COMPLETE_DEPLOYMENT))
            .into_iter()
            .collect()),
        op if STORAGE_BATCHES.contains(&op) => storage_batch(host, content_type, body),
        _ => Ok(Vec::new()),
    }
}

/// `{"requests": [{"httpMethod": "DELETE", "url": "/subscriptions/…"}]}`
/// (ARM; a `url` may be absolute), or `{"requests": [{"id": "1", "method":
/// "POST", "url": "/applications/…"}]}` (Graph: relative to the version).
fn json_batch(host: &str, body: &[u8], method: &str, what: &str) -> Result<Vec<Inner>, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("{what} batch is not JSON: {e}"))?;
    let requests = doc
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{what} batch has no requests[]"))?;
    requests
        .iter()
        .map(|r| {
            let m = r
                .get(method)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("a {what} batch request has no {method}"))?;
            let url = r
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("a {what} batch request has no url"))?;
            // Graph's `users/x` is `/users/x`.
            let url = if url.contains("://") || url.starts_with('/') {
                url.to_owned()
            } else {
                format!("/{url}")
            };
            request(m, host, &url)
        })
        .collect()
}

/// `properties.mode` of a deployment, compared as ARM does (any case).
fn complete_mode(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|d| d.pointer("/properties/mode")?.as_str().map(str::to_owned))
        .is_some_and(|m| m.eq_ignore_ascii_case("complete"))
}

/// `multipart/mixed; boundary=…`, each part an `application/http` request:
/// `DELETE /container/blob?… HTTP/1.1`, headers, a blank line.
fn storage_batch(
    host: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<Inner>, String> {
    let boundary = content_type
        .and_then(|c| {
            c.split(';')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v.trim_matches('"').to_owned())
        })
        .filter(|b| !b.is_empty())
        .ok_or("a Storage batch needs multipart/mixed with a boundary")?;
    let text = std::str::from_utf8(body).map_err(|_| "a Storage batch is not text")?;
    let delimiter = format!("--{boundary}");
    let mut inner = Vec::new();
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        // The part's own headers, then the HTTP request it carries.
        let (_, http) = split_headers(part).ok_or("a Storage batch part has no body")?;
        let line = http
            .trim_start_matches(['\r', '\n'])
            .lines()
            .next()
            .unwrap_or("");
        let mut words = line.split(' ');
        let (Some(method), Some(target), Some(version)) =
            (words.next(), words.next(), words.next())
        else {
            return Err(format!(
                "a Storage batch part is not an HTTP request: {line:?}"
            ));
        };
        if !version.starts_with("HTTP/") {
            return Err(format!(
                "a Storage batch part is not an HTTP request: {line:?}"
            ));
        }
        inner.push(request(method, host, target)?);
    }
    if inner.is_empty() {
        return Err("a Storage batch carries no request".into());
    }
    Ok(inner)
}

/// A part's header block and what follows its blank line.
fn split_headers(part: &str) -> Option<(&str, &str)> {
    part.split_once("\r\n\r\n")
        .or_else(|| part.split_once("\n\n"))
}

/// `url`: absolute (its own host) or a path on `host`.
fn request(method: &str, host: &str, url: &str) -> Result<Inner, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("an inner request's URL {url:?}: {e}"))?;
    Ok(Inner::Request {
        method: method.to_ascii_uppercase(),
        host: uri.host().unwrap_or(host).to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, host: &str, path: &str) -> Inner {
        Inner::Request {
            method: method.into(),
            host: host.into(),
            path: path.into(),
            query: Some("api-version=2021-04-01".into()),
        }
    }

    #[test]
    fn arm_batches_storage_batches_and_complete_deployments_are_opened() {
        let arm = "management.azure.com";
        let rg = "/subscriptions/s/resourceGroups/rg1";
        let body = format!(
            r#"{{"requests":[{{"httpMethod":"GET","url":"{rg}?api-version=2021-04-01"}},{{"httpMethod":"delete","name":"x","url":"https://{arm}{rg}?api-version=2021-04-01"}}]}}"#
        );
        assert_eq!(
            open(ARM_BATCH, arm, Some("application/json"), body.as_bytes()).unwrap(),
            [req("GET", arm, rg), req("DELETE", arm, rg)]
        );
        for bad in ["[]", "{}", r#"{"requests":[{"url":"/x"}]}"#, "not json"] {
            assert!(open(ARM_BATCH, arm, None, bad.as_bytes()).is_err(), "{bad}");
        }

        let blob = "acct1.blob.core.windows.net";
        let batch = "--batch_1\r\nContent-Type: application/http\r\nContent-ID: 0\r\n\r\nDELETE /c/b1 HTTP/1.1\r\nx-ms-date: now\r\n\r\n\r\n--batch_1\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nPUT /c/b2?comp=tier HTTP/1.1\r\nx-ms-access-tier: Cool\r\n\r\n\r\n--batch_1--\r\n";
        let inner = open(
            "storage.service.batch",
            blob,
            Some("multipart/mixed; boundary=batch_1"),
            batch.as_bytes(),
        )
        .unwrap();
        assert_eq!(inner.len(), 2);
        assert_eq!(
            inner[1],
            Inner::Request {
                method: "PUT".into(),
                host: blob.into(),
                path: "/c/b2".into(),
                query: Some("comp=tier".into()),
            }
        );
        assert!(
            open(
                "storage.service.batch",
                blob,
                Some("multipart/mixed"),
                batch.as_bytes()
            )
            .is_err()
        );
        assert!(
            open(
                "storage.container.batch",
                blob,
                Some("multipart/mixed; boundary=x"),
                b"--x\r\n\r\ngarbage\r\n--x--"
            )
            .is_err()
        );

        let deploy = |mode: &str| {
            open(
                DEPLOYMENT_WRITE,
                arm,
                None,
                format!(r#"{{"properties":{{"mode":"{mode}","template":{{}}}}}}"#).as_bytes(),
            )
            .unwrap()
        };
        assert_eq!(deploy("complete"), [Inner::Named(COMPLETE_DEPLOYMENT)]);
        assert!(deploy("Incremental").is_empty());
        assert!(is_envelope(ARM_BATCH) && !is_envelope("storage.blob.put"));

        let graph = "graph.microsoft.com";
        let batch = r#"{"requests":[{"id":"1","method":"GET","url":"/me"},{"id":"2","method":"POST","url":"applications/a1/addPassword","body":{}}]}"#;
        let inner = open(GRAPH_BATCH, graph, None, batch.as_bytes()).unwrap();
        assert_eq!(
            inner[1],
            Inner::Request {
                method: "POST".into(),
                host: graph.into(),
                path: "/applications/a1/addPassword".into(),
                query: None,
            }
        );
    }
}
