//! A loopback stand-in for Azure's instance metadata service: plain
//! HTTP/1.1, the managed-identity token endpoint shaped as IMDS answers
//! (`Metadata: true` required, `resource` required, the token JSON with its
//! string-valued times), and `/metadata/instance`. It counts the requests
//! it receives, so a test can tell one never arrived.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Serves until dropped.
#[derive(Debug)]
pub struct FakeImds {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    _tasks: JoinSet<()>,
}

impl FakeImds {
    /// Listens on a free port of `ip` (a loopback address standing in for
    /// 169.254.169.254).
    pub async fn on(ip: &str) -> Self {
        let listener = TcpListener::bind(SocketAddr::new(ip.parse().unwrap(), 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        let counted = requests.clone();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((s, _)) = listener.accept().await {
                while conns.try_join_next().is_some() {}
                let counted = counted.clone();
                conns.spawn(async move {
                    let service = service_fn(move |req| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        async move { Ok::<_, Infallible>(answer(&req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            _tasks: tasks,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

/// The access token IMDS would issue for `resource`: a JWT (unsigned here;
/// its shape is what matters to masking).
pub fn token_for(resource: &str) -> String {
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(json!({ "typ": "JWT", "alg": "RS256", "kid": "imds-test" })),
        part(
            json!({ "aud": resource, "idtyp": "app", "oid": "5d1b2f1e-0000-4000-8000-00000000c0de" })
        ),
        URL_SAFE_NO_PAD.encode([7u8; 64])
    )
}

fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| v.replace("%3A", ":").replace("%2F", "/"))
    })
}

fn answer(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: Value| {
        Response::builder()
            .status(status)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Server", "IMDS/150.870.65.1544")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };
    if req.headers().get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_request", "error_description": "Required metadata header not specified" }),
        );
    }
    match req.uri().path() {
        "/metadata/identity/oauth2/token" => {
            let Some(resource) = query_param(req, "resource") else {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": "invalid_request", "error_description": "Required query variable 'resource' is missing" }),
                );
            };
            let client_id = query_param(req, "client_id")
                .unwrap_or_else(|| "0f6c5a2e-0000-4000-8000-0000000000aa".into());
            reply(
                StatusCode::OK,
                json!({
                    "access_token": token_for(&resource),
                    "client_id": client_id,
                    "expires_in": "86399",
                    "expires_on": "1796601600",
                    "ext_expires_in": "86399",
                    "not_before": "1796515200",
                    "resource": resource,
                    "token_type": "Bearer",
                }),
            )
        }
        "/metadata/instance" => reply(
            StatusCode::OK,
            json!({ "compute": { "name": "build-host-1", "location": "westeurope", "vmId": "e1b0c7d5-0000-4000-8000-000000000001" } }),
        ),
        _ => reply(StatusCode::NOT_FOUND, json!({ "error": "Not found" })),
    }
}
