//! New TLS connections with airlock's minted-leaf cache warm and cold: the
//! same client opens connections one at a time (handshake, one GET, close)
//! directly, through airlock to one server name (its leaf minted once),
//! and through airlock to a new name every time (a leaf minted for each).

use std::path::Path;

use anyhow::{Context, bail};

use super::airlock::{Airlock, Settings, check_trail};
use super::jwt::Issuer;
use super::sys::{Cgroup, python};

/// Names the upstream's certificate covers (`*.bench.test`) and airlock
/// intercepts, so each can be a new server name.
pub(crate) const DOMAIN: &str = "bench.test";

/// `port n mode prefix token`: `n` connections to 127.0.0.1:`port`, each
/// sending `GET /small.json` with the bearer token and reading to the
/// close. `warm`: always `prefix.bench.test`; `cold`: `prefix-I.bench.test`,
/// a new name each time. One connection first, untimed. Prints
/// connections per second; fails on anything but a 200.
const SCRIPT: &str = r#"
import socket, ssl, sys, time
port, n, mode, prefix, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
def once(host):
    t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname=host)
    t.sendall(f"GET /small.json HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := t.recv(65536):
        data += chunk
    t.close()
    if not data.startswith(b"HTTP/1.1 200"):
        sys.exit(f"{host}: {data[:300]!r}")
def name(i):
    return f"{prefix}-{i}.bench.test" if mode == "cold" else f"{prefix}.bench.test"
once(name("first"))
start = time.perf_counter()
for i in range(n):
    once(name(i))
print(n / (time.perf_counter() - start))
"#;

/// Connections per second, one sample per round.
#[derive(Debug, Default)]
pub(crate) struct Handshakes {
    pub(crate) per_sample: usize,
    pub(crate) direct: Vec<f64>,
    /// Through airlock, one server name: its leaf is cached.
    pub(crate) warm: Vec<f64>,
    /// Through airlock, a new server name per connection.
    pub(crate) cold: Vec<f64>,
}

/// Measures `rounds` rounds of `n` connections each way, with a fresh
/// airlock (full pipeline, `written`) for the ones through it.
pub(crate) fn measure(
    bin: &Path,
    work: &Path,
    cgroup: &Cgroup,
    port: u16,
    issuer: &Issuer,
    token: &str,
    (n, rounds): (usize, usize),
) -> anyhow::Result<Handshakes> {
    let settings = Settings::full("written", Some(issuer));
    let mut out = Handshakes {
        per_sample: n,
        ..Handshakes::default()
    };
    let airlock = Airlock::start(bin, work, "handshakes", cgroup, &[port], &settings)?;
    let audit = airlock.audit.clone();
    let through = (|| -> anyhow::Result<()> {
        for round in 0..rounds {
            let run =
                |cgroup, mode, prefix: &str| connections(cgroup, port, n, mode, prefix, token);
            out.direct
                .push(run(None, "warm", &format!("direct{round}"))?);
            out.warm
                .push(run(Some(cgroup), "warm", &format!("warm{round}"))?);
            out.cold
                .push(run(Some(cgroup), "cold", &format!("cold{round}"))?);
        }
        Ok(())
    })();
    airlock.stop()?;
    through?;
    // Every connection through airlock was intercepted (not passed
    // through), its request recorded with the token verified.
    let recorded = check_trail(&audit)?.requests;
    let expected = rounds * 2 * (n + 1);
    if recorded != expected {
        bail!("handshakes: {recorded} requests recorded through airlock, {expected} sent");
    }
    Ok(out)
}

fn connections(
    cgroup: Option<&Cgroup>,
    port: u16,
    n: usize,
    mode: &str,
    prefix: &str,
    token: &str,
) -> anyhow::Result<f64> {
    let out = python(cgroup, SCRIPT)
        .args([&port.to_string(), &n.to_string(), mode, prefix, token])
        .output()
        .context("running the handshake script")?;
    if !out.status.success() {
        bail!(
            "handshake script ({mode}, {}): {}: {}",
            if cgroup.is_some() {
                "airlock"
            } else {
                "direct"
            },
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("handshake script output")
}
