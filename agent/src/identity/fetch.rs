//! Small HTTPS exchanges: GET of JSON documents (OIDC discovery, JWKS),
//! POST of JSON notifications (approval webhooks) and of OAuth token
//! requests (the fleet console's sign-in), verified against the
//! same roots as upstreams, bounded in time and size.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::tls::{ALPN_HTTP11, UpstreamTls};

/// A whole fetch (connect, TLS, request, body) must finish within this.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Key sets are a few KiB; anything far bigger is not one.
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("{url}: not an https:// URL with a host")]
    BadUrl { url: String },
    #[error("{url}: {why}")]
    Failed { url: String, why: String },
    #[error("{url}: timed out after {}s", FETCH_TIMEOUT.as_secs())]
    Timeout { url: String },
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: not JSON: {why}")]
    NotJson { url: String, why: String },
}

/// Speaks HTTPS/1.1 to one URL per call, a new connection each time.
#[derive(Debug)]
pub(crate) struct Fetcher {
    tls: Arc<UpstreamTls>,
}

impl Fetcher {
    pub(crate) fn new(tls: Arc<UpstreamTls>) -> Self {
        Self { tls }
    }

    /// GETs `url` and parses its body as JSON of type `T`.
    pub(crate) async fn json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, FetchError> {
        let body =
            tokio::time::timeout(FETCH_TIMEOUT, self.send(http::Method::GET, url, None, &[]))
                .await
                .map_err(|_| FetchError::Timeout { url: url.into() })??;
        serde_json::from_slice(&body).map_err(|e| FetchError::NotJson {
            url: url.into(),
            why: e.to_string(),
        })
    }

    /// POSTs `body` (JSON, already serialised) to `url` with `headers`
    /// besides the usual ones; any 2xx is success.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        body: Bytes,
        headers: &[(&'static str, String)],
    ) -> Result<(), FetchError> {
        tokio::time::timeout(
            FETCH_TIMEOUT,
            self.send(http::Method::POST, url, Some(body), headers),
        )
        .await
        .map_err(|_| FetchError::Timeout { url: url.into() })?
        .map(drop)
    }

    /// POSTs `form` (`application/x-www-form-urlencoded`, already
    /// encoded) to `url`: the status and the JSON answer, whatever the
    /// status (an OAuth token endpoint says why in a 400's body).
    pub(crate) async fn post_form(
        &self,
        url: &str,
        form: String,
    ) -> Result<(u16, serde_json::Value), FetchError> {
        let headers = [(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        )];
        let (status, body) = tokio::time::timeout(
            FETCH_TIMEOUT,
            self.exchange(http::Method::POST, url, Some(Bytes::from(form)), &headers),
        )
        .await
        .map_err(|_| FetchError::Timeout { url: url.into() })??;
        let v = serde_json::from_slice(&body).map_err(|e| FetchError::NotJson {
            url: url.into(),
            why: e.to_string(),
        })?;
        Ok((status.as_u16(), v))
    }

    /// One request (`body`: JSON; `headers` added); the response body when
    /// the status is 2xx.
    async fn send(
        &self,
        method: http::Method,
        url: &str,
        body: Option<Bytes>,
        headers: &[(&'static str, String)],
    ) -> Result<Bytes, FetchError> {
        let (status, body) = self.exchange(method, url, body, headers).await?;
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.into(),
                status: status.as_u16(),
            });
        }
        Ok(body)
    }

    /// One request (`body`: JSON unless `headers` name another
    /// `content-type`); the status and the body, bounded.
    async fn exchange(
        &self,
        method: http::Method,
        url: &str,
        body: Option<Bytes>,
        headers: &[(&'static str, String)],
    ) -> Result<(http::StatusCode, Bytes), FetchError> {
        let failed = |why: String| FetchError::Failed {
            url: url.into(),
            why,
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|_| FetchError::BadUrl { url: url.into() })?;
        let (Some("https"), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return Err(FetchError::BadUrl { url: url.into() });
        };
        let port = uri.port_u16().unwrap_or(443);
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let name = ServerName::try_from(host.clone()).map_err(|e| failed(e.to_string()))?;
        let config = self
            .tls
            .config(&[ALPN_HTTP11.to_vec()])
            .map_err(|e| failed(e.to_string()))?;
        let tcp = self
            .tls
            .route()
            .connect(&host, port, None)
            .await
            .map_err(|e| failed(format!("connect: {e}")))?;
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| failed(format!("TLS: {e}")))?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| failed(e.to_string()))?;
        let conn = tokio::spawn(conn);
        let authority = uri.authority().map_or(host.as_str(), |a| a.as_str());
        let mut request = http::Request::builder()
            .method(method)
            .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(http::header::HOST, authority)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("airlock/", env!("CARGO_PKG_VERSION")),
            );
        if body.is_some() && !headers.iter().any(|(n, _)| *n == "content-type") {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| failed(e.to_string()))?;
        let response = send
            .send_request(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| failed(format!("body: {e}")))?
            .to_bytes();
        conn.abort();
        Ok((status, body))
    }
}
