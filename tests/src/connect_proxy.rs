//! A loopback stand-in for a corporate HTTP proxy airlock must go through
//! (`proxy.upstream_proxy`): it answers `CONNECT host:port` by dialling the
//! address its own table gives the name (there is no DNS here), and remembers
//! every authority it was asked for. With a password it requires
//! `Proxy-Authorization: Basic` (407 otherwise), as corporate proxies do.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug)]
pub struct ConnectProxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ConnectProxy {
    /// Serves on 127.0.0.1; `names` maps each host it may reach to an
    /// address; `basic` is the `user:password` it requires, if any.
    pub async fn start(names: &[(&str, SocketAddr)], basic: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let names: Arc<HashMap<String, SocketAddr>> =
            Arc::new(names.iter().map(|(n, a)| ((*n).to_owned(), *a)).collect());
        let expected = basic.map(|b| {
            use base64::Engine as _;
            format!(
                "proxy-authorization: basic {}",
                base64::engine::general_purpose::STANDARD.encode(b)
            )
            .to_ascii_lowercase()
        });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let (names, seen, expected) = (names.clone(), seen.clone(), expected.clone());
                    tokio::spawn(serve(client, names, seen, expected));
                }
            }
        });
        Self { port, seen, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every `CONNECT` authority asked for so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut client: TcpStream,
    names: Arc<HashMap<String, SocketAddr>>,
    seen: Arc<Mutex<Vec<String>>>,
    expected: Option<String>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let Some(authority) = head
        .strip_prefix("CONNECT ")
        .and_then(|r| r.split(' ').next())
        .map(str::to_owned)
    else {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            .await;
        return;
    };
    seen.lock().unwrap().push(authority.clone());
    if let Some(expected) = expected
        && !head.to_ascii_lowercase().lines().any(|l| l == expected)
    {
        let _ = client
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            .await;
        return;
    }
    let host = authority.rsplit_once(':').map_or("", |(h, _)| h);
    let Some(addr) = names.get(host) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    let Ok(mut upstream) = TcpStream::connect(addr).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}
