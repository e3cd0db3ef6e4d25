//! A loopback HTTPS server standing in for an Azure endpoint: HTTP/1.1 and
//! HTTP/2 (by ALPN), streaming uploads and downloads, slow responses,
//! scripted answers (sent whole or cut into pieces) and a WebSocket echo.
//! Every answer says which connection and protocol carried it, which tells
//! a test what a proxy in between did.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

mod ws;

use crate::body::PatternBody;
use crate::pki::{H2, HTTP11};

/// What Azure front doors offer: HTTP/2 first, then HTTP/1.1.
pub const DEFAULT_ALPN: &[&[u8]] = &[H2, HTTP11];

type Resp = Response<BoxBody<Bytes, Infallible>>;

/// Serves until dropped.
#[derive(Debug)]
pub struct TlsUpstream {
    addrs: Vec<SocketAddr>,
    accepted: Arc<AtomicUsize>,
    requests: Arc<AtomicU64>,
    bodies: Arc<AtomicU64>,
    hang_up: Arc<std::sync::atomic::AtomicBool>,
    seen: Seen,
    _tasks: JoinSet<()>,
}

/// `METHOD path?query` of every request received, in order.
type Seen = Arc<std::sync::Mutex<Vec<String>>>;

/// Shared by every connection of one upstream.
#[derive(Clone)]
struct Shared {
    acceptor: TlsAcceptor,
    accepted: Arc<AtomicUsize>,
    requests: Arc<AtomicU64>,
    bodies: Arc<AtomicU64>,
    seen: Seen,
    slow: Arc<SlowGauge>,
    /// Close the next connection right after its TLS handshake.
    hang_up: Arc<std::sync::atomic::AtomicBool>,
}

/// `/slow` requests in flight, and the most seen at once: concurrency
/// shown by counting, not by timing.
#[derive(Debug, Default)]
struct SlowGauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

/// What a request handler knows about its connection.
#[derive(Debug, Clone)]
struct Conn {
    id: usize,
    alpn: Option<String>,
    requests: Arc<AtomicU64>,
    bodies: Arc<AtomicU64>,
    seen: Seen,
    slow: Arc<SlowGauge>,
    /// A WebSocket request hands its upgrade to the connection task, which
    /// runs the echo once hyper releases the socket (and is aborted with it).
    upgrades: mpsc::UnboundedSender<hyper::upgrade::OnUpgrade>,
}

impl TlsUpstream {
    /// Listens on every address given, presenting `config`'s certificate and
    /// ALPN list; a port of 0 in the first address is resolved and reused for
    /// the others (one port across several IPs).
    pub async fn start(config: Arc<rustls::ServerConfig>, addrs: &[SocketAddr]) -> Self {
        let shared = Shared {
            acceptor: TlsAcceptor::from(config),
            accepted: Arc::default(),
            requests: Arc::default(),
            bodies: Arc::default(),
            seen: Arc::default(),
            slow: Arc::default(),
            hang_up: Arc::default(),
        };
        let mut tasks = JoinSet::new();
        let mut bound = Vec::new();
        for l in crate::upstream::bind_all(addrs).await {
            bound.push(l.local_addr().unwrap());
            tasks.spawn(serve(l, shared.clone()));
        }
        Self {
            addrs: bound,
            accepted: shared.accepted,
            requests: shared.requests,
            bodies: shared.bodies,
            hang_up: shared.hang_up,
            seen: shared.seen,
            _tasks: tasks,
        }
    }

    /// One listener on a free port of `ip`.
    pub async fn on(config: Arc<rustls::ServerConfig>, ip: &str) -> Self {
        Self::start(config, &[SocketAddr::new(ip.parse().unwrap(), 0)]).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn port(&self) -> u16 {
        self.addrs[0].port()
    }

    /// HTTP requests received so far, on any connection (a WebSocket
    /// handshake counts once; its messages do not).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// `METHOD path?query` of every request received so far, in order.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Request bodies `/count` read to a clean end: what a server would
    /// have committed.
    pub fn bodies(&self) -> u64 {
        self.bodies.load(Ordering::SeqCst)
    }

    /// TLS connections whose handshake completed so far (a client that
    /// rejects the certificate is not counted). Also the last `conn` id.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The next connection is closed (TLS close_notify, then FIN) right
    /// after its handshake, as an upstream's idle timeout would.
    pub fn hang_up_next(&self) {
        self.hang_up.store(true, Ordering::SeqCst);
    }
}

async fn serve(l: TcpListener, shared: Shared) {
    let mut conns = JoinSet::new();
    while let Ok((s, _)) = l.accept().await {
        while conns.try_join_next().is_some() {}
        conns.spawn(connection(s, shared.clone()));
    }
}

async fn connection(tcp: TcpStream, shared: Shared) {
    let Ok(tls) = shared.acceptor.accept(tcp).await else {
        return;
    };
    let id = shared.accepted.fetch_add(1, Ordering::SeqCst) + 1;
    if shared.hang_up.swap(false, Ordering::SeqCst) {
        let mut tls = tls;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
        return;
    }
    let alpn = tls.get_ref().1.alpn_protocol();
    let alpn = alpn.map(|p| String::from_utf8_lossy(p).into_owned());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = Conn {
        id,
        alpn,
        requests: shared.requests,
        bodies: shared.bodies,
        seen: shared.seen,
        slow: shared.slow,
        upgrades: tx,
    };
    // auto: HTTP/2 when the client sends the h2 preface (as ALPN h2 implies),
    // HTTP/1.1 otherwise; with upgrades so /ws can take over the socket.
    let builder = auto::Builder::new(TokioExecutor::new());
    let svc = service_fn(move |req| route(req, conn.clone()));
    let _ = builder
        .serve_connection_with_upgrades(TokioIo::new(tls), svc)
        .await;
    // The connection future ends once an upgrade has taken the socket.
    while let Ok(on) = rx.try_recv() {
        ws::echo(on).await;
    }
}

async fn route(mut req: Request<Incoming>, conn: Conn) -> Result<Resp, Infallible> {
    // Counted on arrival, so a request still in flight already shows.
    let n = conn.requests.fetch_add(1, Ordering::SeqCst);
    conn.seen.lock().unwrap().push(format!(
        "{} {}",
        req.method(),
        req.uri().path_and_query().map_or("", |p| p.as_str())
    ));
    let path = req.uri().path().to_owned();
    if req.headers().contains_key("x-test-echo") {
        // What arrived, body and all: a test sees what airlock forwarded.
        let ct = req.headers().get(CONTENT_TYPE).cloned();
        let body = whole(req.into_body()).await;
        let mut resp = Response::new(Full::new(body).boxed());
        if let Some(ct) = ct {
            resp.headers_mut().insert(CONTENT_TYPE, ct);
        }
        return Ok(resp);
    }
    if let Some(command) = req.headers().get("x-test-tool-command").cloned() {
        let body = whole(req.into_body()).await;
        return Ok(agent_turn(&command, &body));
    }
    if let Some(answer) = req.headers().get("x-test-respond") {
        let content_type = req
            .headers()
            .get("x-test-content-type")
            .or(req.headers().get(CONTENT_TYPE));
        let cuts = req.headers().get("x-test-cuts").map(cuts);
        let mut resp = scripted(answer.as_bytes(), content_type, cuts);
        // An upstream that compresses whatever the client asked for.
        if let Some(encoding) = req.headers().get("x-test-content-encoding") {
            resp.headers_mut()
                .insert(http::header::CONTENT_ENCODING, encoding.clone());
        }
        return Ok(resp);
    }
    let mut resp = match (req.method(), path.as_str()) {
        (&Method::POST | &Method::PUT, "/count") => count(req.into_body(), &conn.bodies).await,
        (&Method::GET, "/ws") => ws::upgrade(&mut req, &conn),
        (&Method::GET, "/slow") => {
            let now = conn.slow.now.fetch_add(1, Ordering::SeqCst) + 1;
            conn.slow.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(query_ms(&req))).await;
            let mut body = info(&req, &conn);
            body["in_flight_peak"] = conn.slow.peak.load(Ordering::SeqCst).into();
            conn.slow.now.fetch_sub(1, Ordering::SeqCst);
            json(StatusCode::OK, body)
        }
        (&Method::GET, p) if p.starts_with("/bytes/") => bytes(&p["/bytes/".len()..]),
        (&Method::GET, p) if p.starts_with("/truncated/") => truncated(&p["/truncated/".len()..]),
        (&Method::GET, p) if p.starts_with("/stall/") => stall(&p["/stall/".len()..]),
        (&Method::GET, _) => json(StatusCode::OK, info(&req, &conn)),
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "unsupported method"),
    };
    let id = format!("{:08x}-0000-4000-8000-{n:012x}", conn.id);
    resp.headers_mut()
        .insert("x-ms-request-id", HeaderValue::from_str(&id).unwrap());
    Ok(resp)
}

/// A model that drives an agent (an OpenAI-shaped chat completion): until
/// a tool has answered, it asks the `bash` tool the request offers to run
/// `x-test-tool-command` (base64); then it says what the tool said.
fn agent_turn(command: &HeaderValue, body: &[u8]) -> Resp {
    use base64::Engine as _;
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let answered = messages.iter().rev().find(|m| m["role"] == "tool");
    let message = match answered {
        Some(tool) => json!({
            "role": "assistant",
            "content": format!("done: {}", tool["content"].as_str().unwrap_or_default()),
        }),
        None => {
            let command = base64::engine::general_purpose::STANDARD
                .decode(command.as_bytes())
                .map(|c| String::from_utf8_lossy(&c).into_owned())
                .unwrap_or_default();
            json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "bash",
                        "arguments": json!({"command": command, "description": "list subscriptions"}).to_string(),
                    },
                }],
            })
        }
    };
    let finish = if answered.is_some() {
        "stop"
    } else {
        "tool_calls"
    };
    json(
        StatusCode::OK,
        json!({
            "id": "chatcmpl-test", "object": "chat.completion", "model": request["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }),
    )
}

/// `x-test-respond: <base64>`: the decoded bytes are the response body,
/// with the request's content type (or `x-test-content-type`) — a test
/// decides what "Azure" answers without sending it in the request. With
/// `x-test-cuts: 5,17,…` the body is sent in pieces cut at those offsets.
fn scripted(b64: &[u8], content_type: Option<&HeaderValue>, cuts: Option<Vec<usize>>) -> Resp {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_else(|e| panic!("x-test-respond is not base64: {e}"));
    let body = match cuts {
        Some(cuts) => pieces(body, &cuts),
        None => Full::new(Bytes::from(body)).boxed(),
    };
    let mut resp = Response::new(body);
    if let Some(ct) = content_type {
        resp.headers_mut().insert(CONTENT_TYPE, ct.clone());
    }
    resp
}

/// Pause between the pieces of a cut body: long enough that each leaves
/// as its own write (and frame), so a proxy sees the cuts.
const PIECE_PAUSE: Duration = Duration::from_millis(15);

/// A request body read whole (empty if the client broke off).
async fn whole(body: Incoming) -> Bytes {
    body.collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// `x-test-cuts`: byte offsets, in any order.
fn cuts(v: &HeaderValue) -> Vec<usize> {
    let v = v.to_str().expect("x-test-cuts is ASCII");
    v.split(',')
        .map(|c| c.trim().parse().expect("x-test-cuts: offsets"))
        .collect()
}

/// `body` sent piece by piece, cut at `cuts`, with a pause before each.
fn pieces(body: Vec<u8>, cuts: &[usize]) -> BoxBody<Bytes, Infallible> {
    let body = Bytes::from(body);
    let mut bounds = vec![0, body.len()];
    bounds.extend(cuts.iter().copied().filter(|&c| c < body.len()));
    bounds.sort_unstable();
    bounds.dedup();
    let parts: Vec<Bytes> = bounds.windows(2).map(|w| body.slice(w[0]..w[1])).collect();
    let stream = futures_util::stream::iter(parts).then(|part| async move {
        tokio::time::sleep(PIECE_PAUSE).await;
        Ok::<_, Infallible>(http_body::Frame::data(part))
    });
    BodyExt::boxed(http_body_util::StreamBody::new(stream))
}

fn json(status: StatusCode, v: Value) -> Resp {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(v.to_string())).boxed())
        .unwrap()
}

fn error(status: StatusCode, msg: &str) -> Resp {
    json(status, json!({ "error": msg }))
}

/// The request as this server saw it.
fn info(req: &Request<Incoming>, conn: &Conn) -> Value {
    let mut headers = serde_json::Map::new();
    for (name, value) in req.headers() {
        let v = String::from_utf8_lossy(value.as_bytes());
        match headers.get_mut(name.as_str()) {
            // Repeated fields are reported the way HTTP would fold them.
            Some(Value::String(s)) => {
                s.push_str(", ");
                s.push_str(&v);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), v.into_owned().into());
            }
        }
    }
    // HTTP/1.1 names the host in a header; HTTP/2 in :authority (the URI).
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
    let host = host
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    json!({
        "conn": conn.id,
        "alpn": conn.alpn,
        "version": format!("{:?}", req.version()),
        "method": req.method().as_str(),
        "path": req.uri().path_and_query().map_or("/", |p| p.as_str()),
        "host": host,
        "headers": headers,
    })
}

fn query_ms(req: &Request<Incoming>) -> u64 {
    let query = req.uri().query().unwrap_or("");
    let ms = query.split('&').find_map(|kv| kv.strip_prefix("ms="));
    ms.and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Counts the upload frame by frame, so a proxy that buffers would be the
/// only thing holding it whole.
/// Reads the body to its end; a body that ends cleanly is counted in
/// `bodies` (what a server would commit).
async fn count(mut body: Incoming, bodies: &AtomicU64) -> Resp {
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => n += f.data_ref().map_or(0, |d| d.len() as u64),
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("after {n} bytes: {e}")),
        }
    }
    bodies.fetch_add(1, Ordering::SeqCst);
    json(StatusCode::OK, json!({ "bytes": n }))
}

/// `/truncated/{n}`: a response that promises `2n` bytes, sends `n` and
/// ends: the connection is cut mid-body, as an upstream that resets.
fn truncated(len: &str) -> Resp {
    half_then(len, Duration::from_millis(200), true)
}

/// `/stall/{n}`: `n` bytes of a longer body, then silence for a minute.
fn stall(len: &str) -> Resp {
    half_then(len, Duration::from_secs(60), false)
}

/// `n` bytes, then a `pause` before the body ends; with `promise`, a
/// `Content-Length` of twice as many (so the end comes too early). A
/// stream, so the body promises no length of its own.
fn half_then(len: &str, pause: Duration, promise: bool) -> Resp {
    let Ok(len) = len.parse::<usize>() else {
        return error(StatusCode::BAD_REQUEST, "length must be a number");
    };
    let parts = [Bytes::from(vec![b'a'; len]), Bytes::new()];
    let stream = futures_util::stream::iter(parts).then(move |part| async move {
        if part.is_empty() {
            tokio::time::sleep(pause).await;
        }
        Ok::<_, Infallible>(http_body::Frame::data(part))
    });
    let mut resp = Response::builder().header(CONTENT_TYPE, "application/octet-stream");
    if promise {
        resp = resp.header(CONTENT_LENGTH, 2 * len);
    }
    resp.body(BodyExt::boxed(http_body_util::StreamBody::new(stream)))
        .unwrap()
}

fn bytes(len: &str) -> Resp {
    let Ok(len) = len.parse::<u64>() else {
        return error(StatusCode::BAD_REQUEST, "length must be a number");
    };
    Response::builder()
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, len)
        .body(PatternBody::new(len).boxed())
        .unwrap()
}
