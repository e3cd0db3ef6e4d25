//! A model call through airlock: what does it add? A python3 HTTPS server
//! (the bench's leaf certificate) answers `POST /chat/completions` with
//! server-sent events spaced a few milliseconds apart, as a model emits
//! tokens; a python3 client sends a Copilot-sized prompt (~50 KB, most of
//! it system prompt) and times the first event and the whole stream, once
//! directly and once from inside the capture cgroup, where airlock treats
//! 127.0.0.1 as a model host (prompt read whole, masked and summarised,
//! each event masked and relayed as it comes, output reassembled on the
//! side). airlock's CPU time is read around each call through it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use super::Plan;
use super::airlock::{Airlock, Settings};
use super::sys::{Cgroup, free_port, python};

/// First-event and whole-stream milliseconds, direct and through airlock
/// (the client received the same bytes both ways), and airlock's CPU time
/// per call.
#[derive(Debug)]
pub(crate) struct Streamed {
    pub(crate) events: usize,
    pub(crate) gap_ms: u64,
    /// Bytes of the request body (the prompt).
    pub(crate) prompt_bytes: usize,
    pub(crate) direct: Vec<(f64, f64)>,
    pub(crate) through: Vec<(f64, f64)>,
    /// airlock's CPU time for each call through it.
    pub(crate) cpu: Vec<Duration>,
}

/// The system prompt's size: the Copilot CLI sends about 40 KB of it on
/// every call, and the whole request is about 50 KB.
const SYSTEM_PROMPT_BYTES: usize = 40_000;

/// Serves SSE on 127.0.0.1:PORT over TLS: EVENTS events, GAP ms apart.
const SERVER: &str = r#"
import http.server, json, socket, ssl, sys, time
port, cert, key, events, gap = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]) / 1000
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def setup(self):
        # Events are small writes: no Nagle delay, as a model server streams.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for i in range(events):
            e = json.dumps({"id": "c1", "choices": [{"index": 0, "delta": {"content": "token %d " % i}}]})
            data = ("data: %s\n\n" % e).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data)); self.wfile.flush()
            time.sleep(gap)
        done = b"data: [DONE]\n\n"
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done)); self.wfile.flush()
s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print("ready", flush=True)
s.serve_forever()
"#;

/// Times one streamed answer to a Copilot-shaped prompt: prints first-event
/// ms, total ms, the SHA-256 of the body received, and the prompt's bytes.
const CLIENT: &str = r#"
import hashlib, http.client, json, socket, ssl, sys, time
port, system_bytes = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
rule = "You are the GitHub Copilot CLI, a terminal assistant. Follow the user's instructions; use tools when asked. "
history = [{"role": "user", "content": "list the resource groups in subscription %d with their tags, locations and the role assignments on each" % i} for i in range(30)]
history += [{"role": "assistant", "content": "Running az group list --subscription %d --query '[].{name:name, location:location, tags:tags}' and az role assignment list for each group." % i} for i in range(30)]
tools = [{"type": "function", "function": {"name": n, "description": "run %s" % n, "parameters": {"type": "object"}}} for n in ("bash", "view", "edit", "create")]
body = json.dumps({"model": "bench", "stream": True, "tools": tools, "messages":
    [{"role": "system", "content": (rule * (system_bytes // len(rule) + 1))[:system_bytes]}] + history +
    [{"role": "user", "content": "now delete rg-old, and show me the storage keys of acct1"}]})
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
t = time.perf_counter()
c.connect()
# Headers and body are separate writes: without this, Nagle holds the body.
c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.request("POST", "/chat/completions", body, {"content-type": "application/json", "authorization": "Bearer bench"})
r = c.getresponse()
first, got = None, b""
while True:
    chunk = r.read1(65536)
    if not chunk: break
    if first is None: first = time.perf_counter() - t
    got += chunk
total = time.perf_counter() - t
assert r.status == 200, r.status
print("%.3f %.3f %s %d" % (first * 1000, total * 1000, hashlib.sha256(got).hexdigest(), len(body)))
"#;

pub(crate) fn measure(
    bin: &Path,
    work: &Path,
    cgroup: &Cgroup,
    plan: Plan,
) -> anyhow::Result<Streamed> {
    let (events, gap_ms, runs) = if plan.smoke {
        (20, 2, 1)
    } else {
        (500, 2, plan.runs.max(5))
    };
    let port = free_port()?;
    let server = start_server(work, port, events, gap_ms)?;
    let _server = super::sys::Guard(server);
    let settings = Settings {
        model: true,
        ..Settings::full("fsync", None)
    };
    let airlock = Airlock::start(bin, work, "stream", cgroup, &[port], &settings)?;
    let mut result = Streamed {
        events,
        gap_ms,
        prompt_bytes: 0,
        direct: Vec::new(),
        through: Vec::new(),
        cpu: Vec::new(),
    };
    let mut digests = Vec::new();
    for _ in 0..runs {
        let (first, total, digest, bytes) = run_client(None, port)?;
        result.direct.push((first, total));
        digests.push(digest);
        result.prompt_bytes = bytes;
        let before = airlock.cpu()?;
        let (first, total, digest, _) = run_client(Some(cgroup), port)?;
        result.cpu.push(airlock.cpu()?.saturating_sub(before));
        result.through.push((first, total));
        digests.push(digest);
    }
    airlock.stop()?;
    digests.dedup();
    if digests.len() != 1 {
        bail!("the streamed answer differed through airlock: {digests:?}");
    }
    Ok(result)
}

fn start_server(work: &Path, port: u16, events: usize, gap_ms: u64) -> anyhow::Result<Child> {
    use std::io::BufRead;
    let mut child = Command::new("python3")
        .args(["-c", SERVER, &port.to_string()])
        .arg(work.join("leaf.crt"))
        .arg(work.join("leaf.key"))
        .args([events.to_string(), gap_ms.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the SSE server")?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    if line.trim() != "ready" {
        bail!("SSE server did not start: {line:?}");
    }
    // Let it reach accept().
    std::thread::sleep(Duration::from_millis(100));
    Ok(child)
}

fn run_client(cgroup: Option<&Cgroup>, port: u16) -> anyhow::Result<(f64, f64, String, usize)> {
    let out = python(cgroup, CLIENT)
        .arg(port.to_string())
        .arg(SYSTEM_PROMPT_BYTES.to_string())
        .output()
        .context("running the SSE client")?;
    if !out.status.success() {
        bail!(
            "SSE client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8(out.stdout)?;
    let mut parts = text.split_whitespace();
    let mut next = || parts.next().context("SSE client output");
    Ok((
        next()?.parse()?,
        next()?.parse()?,
        next()?.to_owned(),
        next()?.parse()?,
    ))
}
