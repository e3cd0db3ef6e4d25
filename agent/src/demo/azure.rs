//! A loopback stand-in for Azure Resource Manager, shaped like the real API
//! (paths, `api-version`, `value` arrays, ARM error bodies). Plain HTTP
//! until TLS interception lands.

use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub(super) const SUBSCRIPTION: &str = "0b1f6471-1bf0-4dda-aec3-cb9272f09590";

/// Largest request head the fake accepts.
const MAX_HEAD: usize = 16 * 1024;

/// Binds 127.0.0.1 on a free port and serves until the task set is dropped.
pub(super) async fn start(tasks: &mut JoinSet<()>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tasks.spawn(async move {
        let mut conns = JoinSet::new();
        while let Ok((s, _)) = listener.accept().await {
            while conns.try_join_next().is_some() {}
            conns.spawn(answer(s));
        }
    });
    Ok(addr)
}

async fn answer(mut s: TcpStream) {
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
