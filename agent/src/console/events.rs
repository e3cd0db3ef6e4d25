//! `GET /events`: the held list as server-sent events for one signed-in
//! page, sent at once and again whenever the list changes (the console's
//! one watch of the admin socket wakes it), with a comment when idle so
//! a gone browser is noticed. It ends with the page or its session.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::BodyExt;
use hyper::body::Frame;
use tokio::sync::mpsc;

use super::html;
use super::reply::Body;
use super::server::Shared;

/// A comment on an idle event stream, so a gone browser is noticed.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// `GET /events`: the held list as server-sent events (`event: held`, the
/// rendered list as data), sent at once and again whenever it changes.
pub(super) fn stream(shared: &Arc<Shared>, cookie: String) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let mut held = shared.held.clone();
    let shared = shared.clone();
    tokio::spawn(async move {
        loop {
            // A session that ended (expired) hears no more.
            let Some(session) = shared.sessions.peek(&cookie) else {
                return;
            };
            let snap = held.borrow_and_update().clone();
            let fragment =
                html::held_fragment(&snap.held, &session.csrf, snap.at.elapsed().as_secs());
            if tx.send(Bytes::from(sse("held", &fragment))).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    changed = held.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break;
                    }
                    () = tokio::time::sleep(KEEPALIVE) => {
                        if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    let mut r = Response::new(EventStream(rx).boxed());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r
}

/// One server-sent event; `data` may span lines (it has no `\r`).
fn sse(event: &str, data: &str) -> String {
    let mut out = format!("event: {event}\n");
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// An event stream's body: what the stream's task sends, until either
/// side goes.
struct EventStream(mpsc::Receiver<Bytes>);

impl hyper::body::Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_carries_every_line_of_its_data() {
        assert_eq!(
            sse("held", "<p>a\nb</p>"),
            "event: held\ndata: <p>a\ndata: b</p>\n\n"
        );
    }
}
