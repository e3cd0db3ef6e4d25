//! The upstream every configuration reaches (nginx, TLS, on loopback) and
//! the peer L7 proxy (a second nginx that terminates and re-encrypts).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use super::sys::{run, wait_port};

pub(crate) const BIG_BYTES: usize = 8 * 1024 * 1024;

/// A throwaway CA and a leaf for 127.0.0.1 and `*.bench.test` (ECDSA
/// P-256); every client of the upstream (airlock, nginx-as-proxy,
/// mitmproxy) is told to trust the CA.
pub(crate) fn certificates(work: &Path) -> anyhow::Result<()> {
    let sh = format!(
        "set -e; cd {0}; \
         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 -subj '/CN=bench upstream CA' 2>/dev/null; \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr -subj '/CN=127.0.0.1' 2>/dev/null; \
         printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:*.{1}\\n' > san.ext; \
         openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out leaf.crt 2>/dev/null",
        work.display(),
        super::handshakes::DOMAIN
    );
    run(Command::new("sh").arg("-c").arg(sh))
}

/// The bodies served: an Azure-shaped JSON list and an 8 MiB file.
pub(crate) fn content(work: &Path) -> anyhow::Result<()> {
    std::fs::write(work.join("small.json"), small_json())?;
    std::fs::write(work.join("big.bin"), vec![b'x'; BIG_BYTES])?;
    Ok(())
}

/// The upstream: one worker, static files from `work` (bodies, and the
/// issuer's JWKS and discovery document).
pub(crate) fn start_upstream(work: &Path, port: u16) -> anyhow::Result<Child> {
    let w = work.display();
    let servers = format!(
        "server {{ listen 127.0.0.1:{port} ssl http2; ssl_certificate {w}/leaf.crt; ssl_certificate_key {w}/leaf.key;\n\
           root {w}; location / {{ }} }}\n"
    );
    start(work, "upstream", 1, &servers, port)
}

/// nginx as a re-encrypting reverse proxy in front of the upstream: TLS in,
/// verified TLS out, keep-alive upstream connections. Its own instance, so
/// it gets its own workers (as many as cores, like airlock's runtime) and
/// the upstream's single worker is the same in every configuration.
pub(crate) fn start_proxy(work: &Path, port: u16, upstream: u16) -> anyhow::Result<Child> {
    let w = work.display();
    let servers = format!(
        "upstream bench_upstream {{ server 127.0.0.1:{upstream}; keepalive 64; }}\n\
         server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {w}/leaf.crt; ssl_certificate_key {w}/leaf.key;\n\
           location / {{ proxy_pass https://bench_upstream; proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
             proxy_ssl_verify on; proxy_ssl_trusted_certificate {w}/ca.crt; proxy_ssl_name localhost;\n\
             proxy_ssl_session_reuse on; proxy_buffering on; }} }}\n"
    );
    start(work, "proxy", 0, &servers, port)
}

/// Writes `{name}.conf` and runs nginx in the foreground; `workers` 0 means
/// one per core.
fn start(
    work: &Path,
    name: &str,
    workers: usize,
    servers: &str,
    port: u16,
) -> anyhow::Result<Child> {
    let w = work.display();
    let workers = if workers == 0 {
        "auto".to_owned()
    } else {
        workers.to_string()
    };
    let conf = format!(
        "daemon off; worker_processes {workers}; worker_rlimit_nofile 16384; pid {w}/{name}.pid; error_log {w}/{name}.err warn;\n\
         events {{ worker_connections 8192; }}\n\
         http {{ access_log off; keepalive_requests 1000000; default_type application/json;\n{servers}}}\n"
    );
    let path = work.join(format!("{name}.conf"));
    std::fs::write(&path, conf)?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&path)
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting nginx ({name})"))?;
    wait_port(port, &format!("nginx ({name})"), Duration::from_secs(5))?;
    Ok(child)
}

fn small_json() -> String {
    let items: Vec<String> = (0..8)
        .map(|i| format!("{{\"id\":\"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-{i}\",\"name\":\"rg-{i}\",\"type\":\"Microsoft.Resources/resourceGroups\",\"location\":\"westeurope\",\"properties\":{{\"provisioningState\":\"Succeeded\"}}}}"))
        .collect();
    format!("{{\"value\":[{}]}}", items.join(","))
}
