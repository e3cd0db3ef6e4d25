//! `ws-client <wss-url> <ca-pem-path> <message>...`: a real WebSocket-over-TLS
//! client for tests. Sends each message as text and prints each reply on its
//! own line. `WS_CONNECT=ip:port` overrides where it dials (test host names
//! do not resolve); SNI and the Host header still come from the URL.

use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use http::Uri;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: ws-client <wss-url> <ca-pem-path> <message>...");
        return ExitCode::FAILURE;
    }
    match run(&args[0], &args[1], &args[2..]).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ws-client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Trusts only the CA file: a test must never pass because of the host's
/// trust store.
fn tls_config(ca: &str) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // WebSocket upgrades are an HTTP/1.1 mechanism.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

async fn run(url: &str, ca: &str, messages: &[String]) -> Result<()> {
    let uri: Uri = url.parse()?;
    let host = uri.host().ok_or("URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(443);
    let tcp = match std::env::var("WS_CONNECT") {
        Ok(addr) => TcpStream::connect(addr.parse::<SocketAddr>()?).await?,
        Err(_) => TcpStream::connect((host, port)).await?,
    };
    let name = ServerName::try_from(host.to_owned())?;
    let tls = TlsConnector::from(tls_config(ca)?)
        .connect(name, tcp)
        .await?;
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await?;
    for msg in messages {
        ws.send(Message::text(msg.as_str())).await?;
        let reply = loop {
            match ws.next().await.ok_or("closed before a reply")?? {
                Message::Text(t) => break t.as_str().to_owned(),
                Message::Binary(b) => break String::from_utf8_lossy(&b).into_owned(),
                Message::Close(c) => return Err(format!("closed by server: {c:?}").into()),
                _ => continue,
            }
        };
        println!("{reply}");
    }
    ws.close(None).await?;
    // Read until the server's Close arrives, so the closing handshake
    // completes. Every reply is already printed: how the transport ends after
    // that (close_notify or bare EOF) is not this client's business.
    while let Some(Ok(_)) = ws.next().await {}
    Ok(())
}
