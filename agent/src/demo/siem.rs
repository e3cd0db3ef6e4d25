//! The demo's SIEM: a syslog receiver on loopback taking RFC 6587
//! octet-counted frames over TCP (`LEN SP MSG`), keeping the RFC 5424
//! messages airlock streams to it (`[export.syslog]`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::core::lock;

/// The running receiver and what it has taken.
#[derive(Debug)]
pub(super) struct Siem {
    pub(super) addr: SocketAddr,
    messages: Arc<Mutex<Vec<String>>>,
}

impl Siem {
    /// Every message received so far, in order.
    pub(super) fn messages(&self) -> Vec<String> {
        lock(&self.messages).clone()
    }
}

/// Listens on 127.0.0.1 until the task set is dropped.
pub(super) async fn start(tasks: &mut JoinSet<()>) -> Result<Siem, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let messages = Arc::new(Mutex::new(Vec::new()));
    let kept = messages.clone();
    tasks.spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16 * 1024];
                // Until the sender closes: then this side closes too,
                // which tells it everything was read.
                while let Ok(n) = conn.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some((message, used)) = frame(&buf) {
                        lock(&kept).push(message);
                        buf.drain(..used);
                    }
                }
            });
        }
    });
    Ok(Siem { addr, messages })
}

/// The first whole frame of `buf`: its message and the bytes it took.
fn frame(buf: &[u8]) -> Option<(String, usize)> {
    let space = buf.iter().position(|b| *b == b' ')?;
    let len: usize = std::str::from_utf8(&buf[..space]).ok()?.parse().ok()?;
    let end = space + 1 + len;
    let message = buf.get(space + 1..end)?;
    Some((String::from_utf8_lossy(message).into_owned(), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octet_counted_frames_are_taken_whole() {
        let buf = b"5 hello11 hello world3 ab";
        let (m, used) = frame(buf).unwrap();
        assert_eq!((m.as_str(), used), ("hello", 7));
        let (m, used2) = frame(&buf[used..]).unwrap();
        assert_eq!((m.as_str(), used2), ("hello world", 14));
        assert!(frame(&buf[used + used2..]).is_none(), "incomplete");
    }
}
