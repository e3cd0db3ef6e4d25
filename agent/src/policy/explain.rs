//! `airlock policy explain`: one request run through the same identity,
//! classification and policy code as the proxy, with the answer spelled
//! out — which rule, from which file and line, and why.

use serde::Serialize;

use super::{Policy, Subject};
use crate::core::Decision;
use crate::core::Identity;
use crate::core::Operation;
use crate::core::ProcessInfo;
use crate::identity::Identifier;

/// A request described on the command line.
#[derive(Debug)]
pub struct Question<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// The `Authorization` header value, if any.
    pub authorization: Option<String>,
    pub process: ProcessInfo,
}

/// Everything `explain` prints.
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub method: String,
    pub host: String,
    pub path: String,
    pub operation: Operation,
    pub identity: Identity,
    pub decision: Decision,
    /// `file:line` of the rule that decided, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("{0:?} is not an http(s) URL with a host")]
    Url(String),
    #[error("{0:?} is not an HTTP method")]
    Method(String),
    #[error("the Authorization value is not a valid header value")]
    Header,
}

pub async fn explain(
    q: Question<'_>,
    policy: &Policy,
    identifier: &Identifier,
) -> Result<Explanation, ExplainError> {
    let uri: http::Uri = q.url.parse().map_err(|_| ExplainError::Url(q.url.into()))?;
    let host = uri
        .host()
        .ok_or_else(|| ExplainError::Url(q.url.into()))?
        .to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    let method: http::Method = q
        .method
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| ExplainError::Method(q.method.into()))?;
    let mut headers = http::HeaderMap::new();
    if let Some(a) = &q.authorization {
        let v = http::HeaderValue::from_str(a).map_err(|_| ExplainError::Header)?;
        headers.insert(http::header::AUTHORIZATION, v);
    }
    let identity = identifier.identify(&headers, uri.query()).await;
    let path = crate::operation::normalize_path(uri.path());
    let operation = crate::operation::classify(&host, &method, &path, uri.query());
    let decision = policy.decide(&Subject {
        identity: &identity,
        process: &q.process,
        method: method.as_str(),
        host: &host,
        port,
        path: &path,
        operation: &operation.name,
        secrets: &[],
    });
    let origin = decision
        .rule
        .as_deref()
        .and_then(|r| policy.origin(r))
        .map(str::to_owned);
    Ok(Explanation {
        method: method.to_string(),
        host,
        path: path.into_owned(),
        operation,
        identity,
        decision,
        origin,
    })
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = &self.identity;
        writeln!(
            f,
            "request:   {} https://{}{}",
            self.method, self.host, self.path
        )?;
        writeln!(f, "operation: {}", self.operation.name)?;
        let who = [
            id.upn.as_deref(),
            id.app_id.as_deref().filter(|_| id.upn.is_none()),
            id.account.as_deref(),
            id.issuer.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        let status = match (&id.error, id.verified) {
            (Some(e), _) => format!("INVALID: {e}"),
            (None, true) => "verified".to_owned(),
            (None, false) => "not verified".to_owned(),
        };
        let who = if who.is_empty() {
            who
        } else {
            format!(" {who}")
        };
        writeln!(f, "identity:  {}{who} ({status})", id.kind.as_str())?;
        match (&self.decision.rule, &self.origin) {
            (Some(rule), Some(origin)) => writeln!(
                f,
                "decision:  {} (rule {rule:?}, {origin})",
                self.decision.action.as_str()
            )?,
            _ => writeln!(f, "decision:  {} (default)", self.decision.action.as_str())?,
        }
        write!(f, "reason:    {}", self.decision.reason)
    }
}
