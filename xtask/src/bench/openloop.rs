//! Latency under an open-loop load: requests sent at a constant rate
//! whatever the answers, each one's latency counted from when it was due,
//! not from when it could be sent (what wrk2 does). wrk waits for each
//! answer before its connection sends again, so a stall shows in its
//! figures as fewer requests, not as slow ones (coordinated omission); a
//! user calling at a steady rate sees the stall.
//!
//! The load runs in a child process (this binary, `xtask openload`), so it
//! can be started inside the capture cgroup as wrk is. It speaks HTTP/1.1
//! over TLS on keep-alive connections, verifying the server against the
//! CA files it is given (the bench's and airlock's).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::sys::Cgroup;

/// Keep-alive connections the load is spread over (as wrk's `-c16`).
const CONNS: usize = 16;
/// Sent before anything is counted: handshakes, caches, pools.
const WARM_UP: Duration = Duration::from_secs(1);
/// Where the child finds the bearer token (not its command line, which
/// every process can read).
const TOKEN_VAR: &str = "AIRLOCK_BENCH_TOKEN";

/// What one open-loop run measured.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Latencies {
    /// Requests counted (after the warm-up).
    pub(crate) counted: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
}

/// Open-loop runs at one rate, directly and through airlock.
#[derive(Debug)]
pub(crate) struct OpenLoop {
    /// The airlock configuration's label.
    pub(crate) config: &'static str,
    pub(crate) rate: f64,
    pub(crate) direct: Vec<Latencies>,
    pub(crate) through: Vec<Latencies>,
    /// nginx re-encrypting at the same rate (full runs only).
    pub(crate) nginx: Vec<Latencies>,
    /// The kernel's own threads over the runs through airlock.
    pub(crate) kernel: Vec<super::kthreads::KernelLoad>,
}

impl OpenLoop {
    /// Medians of p50, p99 and p99.9 (ms) over the runs.
    pub(crate) fn medians(runs: &[Latencies]) -> (f64, f64, f64) {
        let median = |f: fn(&Latencies) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        (
            median(|l| l.p50_ms),
            median(|l| l.p99_ms),
            median(|l| l.p999_ms),
        )
    }
}

/// Runs the load (`load`: this binary, built for speed) against
/// `https://127.0.0.1:{port}{path}` for `seconds` (after the warm-up),
/// inside `cgroup` when given. Any failed request (an error, a non-2xx
/// answer) fails the run.
#[allow(clippy::too_many_arguments)]
pub(crate) fn measure(
    load: &Path,
    cgroup: Option<&Cgroup>,
    port: u16,
    path: &str,
    token: &str,
    cas: &[&Path],
    rate: f64,
    seconds: u32,
) -> anyhow::Result<Latencies> {
    let enter = cgroup.map(Cgroup::enter).unwrap_or_default();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{enter}exec \"$0\" openload \"$@\""))
        .arg(load)
        .args([
            port.to_string(),
            path.to_owned(),
            format!("{rate}"),
            seconds.to_string(),
        ])
        .args(cas)
        .env(TOKEN_VAR, token)
        .output()
        .context("running the open-loop load")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "open-loop load failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let value = |key: &str| -> anyhow::Result<f64> {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {key} in the load's output: {text}"))
    };
    Ok(Latencies {
        counted: value("counted")? as usize,
        p50_ms: value("p50_us")? / 1000.0,
        p99_ms: value("p99_us")? / 1000.0,
        p999_ms: value("p999_us")? / 1000.0,
    })
}

/// The child: `xtask openload PORT PATH RATE SECONDS CA…`, the token in
/// the environment. Prints `counted=N p50_us=… p99_us=… p999_us=…`.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let [port, path, rate, seconds, cas @ ..] = args else {
        bail!("usage: xtask openload PORT PATH RATE SECONDS CA…");
    };
    let port: u16 = port.parse().context("port")?;
    let rate: f64 = rate.parse().context("rate")?;
    let seconds: u64 = seconds.parse().context("seconds")?;
    let token = std::env::var(TOKEN_VAR).context(TOKEN_VAR)?;
    if rate <= 0.0 || cas.is_empty() {
        bail!("a positive rate and at least one CA file");
    }
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        for cert in CertificateDer::pem_file_iter(ca).with_context(|| ca.clone())? {
            roots.add(cert.with_context(|| ca.clone())?)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let start = Instant::now() + Duration::from_millis(50);
    let counted_from = start + WARM_UP;
    let load = Load {
        config: Arc::new(config),
        port,
        request: format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .into_bytes(),
        rate,
        start,
        counted_from,
        end: counted_from + Duration::from_secs(seconds),
    };
    let load = Arc::new(load);
    let threads: Vec<_> = (0..CONNS)
        .map(|i| {
            let load = load.clone();
            std::thread::spawn(move || load.connection(i))
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        let got = t
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))?;
        all.extend(got?);
    }
    if all.is_empty() {
        bail!("no request was counted");
    }
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    println!(
        "counted={} p50_us={} p99_us={} p999_us={}",
        all.len(),
        at(0.50),
        at(0.99),
        at(0.999)
    );
    Ok(())
}

struct Load {
    config: Arc<ClientConfig>,
    port: u16,
    request: Vec<u8>,
    rate: f64,
    start: Instant,
    counted_from: Instant,
    end: Instant,
}

type Tls = BufReader<StreamOwned<ClientConnection, TcpStream>>;

impl Load {
    /// Connection `i` sends requests `i`, `i + CONNS`, `i + 2·CONNS`, … of
    /// the schedule, each when it is due or, if the one before is still
    /// being answered, as soon as that answer is in. Returns the counted
    /// latencies in µs, from when each request was due.
    fn connection(&self, i: usize) -> anyhow::Result<Vec<u32>> {
        let mut latencies = Vec::new();
        let mut tls: Option<Tls> = None;
        for k in 0.. {
            let due = self.start + Duration::from_secs_f64((k * CONNS + i) as f64 / self.rate);
            if due >= self.end {
                break;
            }
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let stream = match &mut tls {
                Some(s) => s,
                None => tls.insert(self.connect()?),
            };
            let keep = exchange(stream, &self.request).with_context(|| format!("request {k}"))?;
            if due >= self.counted_from {
                latencies.push(u32::try_from(due.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            if !keep {
                tls = None;
            }
        }
        Ok(latencies)
    }

    fn connect(&self) -> anyhow::Result<Tls> {
        let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
        let conn = ClientConnection::new(self.config.clone(), name)?;
        Ok(BufReader::new(StreamOwned::new(conn, tcp)))
    }
}

/// Sends one request and reads its whole answer; whether the connection
/// can carry the next one. A non-2xx answer is an error.
fn exchange(stream: &mut Tls, request: &[u8]) -> anyhow::Result<bool> {
    stream.get_mut().write_all(request)?;
    let mut line = String::new();
    stream.read_line(&mut line)?;
    let status = line.split_whitespace().nth(1).unwrap_or_default();
    if !status.starts_with('2') {
        bail!("answered {:?}", line.trim_end());
    }
    let (mut length, mut chunked, mut keep) = (0usize, false, true);
    loop {
        line.clear();
        if stream.read_line(&mut line)? == 0 {
            bail!("the connection closed in the headers");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().context("Content-Length")?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            keep = !value.eq_ignore_ascii_case("close");
        }
    }
    if !chunked {
        skip(stream, length)?;
        return Ok(keep);
    }
    loop {
        line.clear();
        stream.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim_end().split(';').next().unwrap_or(""), 16)
            .context("chunk size")?;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            loop {
                line.clear();
                if stream.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                    return Ok(keep);
                }
            }
        }
        skip(stream, size + 2)?;
    }
}

fn skip(stream: &mut Tls, n: usize) -> anyhow::Result<()> {
    let copied = std::io::copy(&mut stream.by_ref().take(n as u64), &mut std::io::sink())?;
    if copied as usize != n {
        bail!("the connection closed in the body");
    }
    Ok(())
}
