//! The upstream's WebSocket endpoint: the HTTP/1.1 upgrade handshake, then
//! an echo on the socket hyper hands over.

use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Message, Role};

use super::{Conn, Resp, error};

/// Accepts a WebSocket handshake (HTTP/1.1 only); the echo runs on the
/// connection task once the 101 has been written.
pub(super) fn upgrade(req: &mut Request<Incoming>, conn: &Conn) -> Resp {
    let wants = req.headers().get(http::header::UPGRADE);
    let wants = wants.is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let key = req.headers().get(http::header::SEC_WEBSOCKET_KEY).cloned();
    let (true, Version::HTTP_11, Some(key)) = (wants, req.version(), key) else {
        return error(
            StatusCode::BAD_REQUEST,
            "websocket upgrade over HTTP/1.1 required",
        );
    };
    let _ = conn.upgrades.send(hyper::upgrade::on(req));
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::CONNECTION, "upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header(
            http::header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .body(Empty::new().boxed())
        .unwrap()
}

/// Echoes text (prefixed "echo:") and binary messages until the peer closes.
pub(super) async fn echo(on: OnUpgrade) {
    let Ok(upgraded) = on.await else {
        return;
    };
    let io = TokioIo::new(upgraded);
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    while let Some(Ok(msg)) = ws.next().await {
        let reply = match msg {
            Message::Text(t) => Message::text(format!("echo:{}", t.as_str())),
            Message::Binary(b) => Message::Binary(b),
            // Pings and the closing handshake are answered by tungstenite on
            // the next read, so keep reading until the stream ends.
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
    // End TLS with close_notify, as a real server does: clients may treat a
    // bare EOF as truncation.
    let _ = ws.get_mut().shutdown().await;
}
