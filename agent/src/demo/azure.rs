//! A loopback stand-in for Azure Resource Manager, shaped like the real API
//! (paths, `api-version`, `value` arrays, ARM error bodies), served over
//! TLS with a demo CA that airlock is told to trust.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

pub(super) const SUBSCRIPTION: &str = "0b1f6471-1bf0-4dda-aec3-cb9272f09590";
/// The name clients dial (resolved to loopback with curl's `--resolve`).
pub(super) const HOST: &str = "management.azure.com";

/// Largest request head the fake accepts.
const MAX_HEAD: usize = 16 * 1024;

/// Binds 127.0.0.1 on a free port and serves HTTPS for [`HOST`] until the
/// task set is dropped; returns the address and the demo CA's PEM file
/// (written into `dir`), which airlock must trust upstream.
pub(super) async fn start(
    tasks: &mut JoinSet<()>,
    dir: &Path,
) -> Result<(SocketAddr, PathBuf), String> {
    let (acceptor, ca_pem) = tls(&[HOST]).map_err(|e| format!("demo certificates: {e}"))?;
    let ca_path = dir.join("demo-azure-ca.pem");
    std::fs::write(&ca_path, ca_pem).map_err(|e| format!("{}: {e}", ca_path.display()))?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tasks.spawn(async move {
        let mut conns = JoinSet::new();
        while let Ok((s, _)) = listener.accept().await {
            while conns.try_join_next().is_some() {}
            let acceptor = acceptor.clone();
            conns.spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    answer(tls).await;
                }
            });
        }
    });
    Ok((addr, ca_path))
}

/// A throwaway CA and a leaf for `names`, as a TLS acceptor (HTTP/1.1).
fn tls(names: &[&str]) -> Result<(TlsAcceptor, String), Box<dyn std::error::Error>> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "airlock demo: simulated Azure CA",
    );
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate()?;
    let leaf = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?
        .signed_by(&leaf_key, &issuer)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), ca_cert.pem()))
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = route(method, target);
    let body = body.to_string();
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n\
         x-ms-request-id: 5c2d7a0e-0000-4000-8000-{:012x}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len(),
        body.len()
    );
    let _ = s.write_all(response.as_bytes()).await;
    let _ = s.shutdown().await;
}

fn route(method: &str, target: &str) -> (u16, Value) {
    let path = target.split('?').next().unwrap_or("");
    let sub = format!("/subscriptions/{SUBSCRIPTION}");
    match (method, path.strip_prefix(&sub)) {
        ("GET", Some("/resourcegroups" | "/resourceGroups")) => (
            200,
            json!({ "value": [
                { "id": format!("{sub}/resourceGroups/rg-copilot-demo"), "name": "rg-copilot-demo",
                  "type": "Microsoft.Resources/resourceGroups", "location": "westeurope",
                  "properties": { "provisioningState": "Succeeded" } }
            ]}),
        ),
        ("GET", Some("/providers/Microsoft.Storage/storageAccounts")) => (
            200,
            json!({ "value": [
                { "id": format!("{sub}/resourceGroups/rg-copilot-demo/providers/Microsoft.Storage/storageAccounts/stcopilotdemo"),
                  "name": "stcopilotdemo", "type": "Microsoft.Storage/storageAccounts",
                  "location": "westeurope", "kind": "StorageV2", "sku": { "name": "Standard_LRS" } }
            ]}),
        ),
        _ => (
            404,
            json!({ "error": { "code": "InvalidResourceType",
                "message": format!("The resource type could not be found for '{path}'.") } }),
        ),
    }
}
