//! A stand-in for the instance metadata service: plain HTTP on a loopback
//! port (in place of 169.254.169.254:80), answering a managed identity's
//! token request as IMDS does — `Metadata: true` required, the token JSON
//! with its string-valued times — with a token of the demo's issuer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::entra::Signer;

/// Binds 127.0.0.1 on a free port and serves until the task set is dropped.
pub(super) async fn start(
    tasks: &mut JoinSet<()>,
    signer: Arc<Signer>,
) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tasks.spawn(async move {
        let mut conns = JoinSet::new();
        while let Ok((s, _)) = listener.accept().await {
            while conns.try_join_next().is_some() {}
            let signer = signer.clone();
            conns.spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let answer = answer(&req, &signer);
                    async move { Ok::<_, Infallible>(answer) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn answer(req: &Request<Incoming>, signer: &Signer) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: serde_json::Value| {
        let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
        *r.status_mut() = status;
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json; charset=utf-8"),
        );
        r
    };
    let bad = |why: &str| {
        reply(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_request", "error_description": why }),
        )
    };
    if req.headers().get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return bad("Required metadata header not specified");
    }
    if req.uri().path() != "/metadata/identity/oauth2/token" {
        return reply(StatusCode::NOT_FOUND, json!({ "error": "Not found" }));
    }
    let resource = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|p| p.strip_prefix("resource="))
            .map(|r| r.replace("%3A", ":").replace("%2F", "/"))
    });
    let Some(resource) = resource else {
        return bad("Required query variable 'resource' is missing");
    };
    let audience = resource.trim_end_matches('/');
    reply(
        StatusCode::OK,
        json!({
            "access_token": signer.token(audience, 0, Duration::from_secs(86_400)),
            "client_id": "b2f1c8d4-5e6a-4f70-9c3d-2a1b0e9f8d7c",
            "expires_in": "86399",
            "expires_on": "0",
            "ext_expires_in": "86399",
            "not_before": "0",
            "resource": resource,
            "token_type": "Bearer",
        }),
    )
}
