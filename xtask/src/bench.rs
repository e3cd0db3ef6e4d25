//! `cargo xtask bench`: airlock against the physical limit (no proxy), in
//! one run, as ratios. Upstream: nginx (TLS, HTTP/1.1 + h2) on loopback;
//! load: wrk, run either directly or inside a cgroup airlock captures.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Runs of each measurement; the median is reported, the spread shown.
const RUNS: usize = 3;
const SECONDS: &str = "5";
const BIG_BYTES: usize = 8 * 1024 * 1024;

/// One wrk measurement.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    rps: f64,
    mb_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

struct Scenario {
    name: &'static str,
    path: &'static str,
    args: &'static [&'static str],
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "small JSON, keep-alive (req/s)",
        path: "/small.json",
        args: &["-t1", "-c16"],
    },
    Scenario {
        name: "8 MiB body (MB/s)",
        path: "/big.bin",
        args: &["-t1", "-c2"],
    },
    Scenario {
        name: "new TLS connection per request (req/s)",
        path: "/small.json",
        args: &["-t1", "-c8", "-H", "Connection: close"],
    },
];

pub(crate) fn bench(airlock_bin: &Path) -> anyhow::Result<()> {
    let target = airlock_bin
        .parent()
        .and_then(Path::parent)
        .context("target dir")?;
    let work = target.join("bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let port = free_port()?;
    certificates(&work)?;
    std::fs::write(work.join("small.json"), small_json())?;
    std::fs::write(work.join("big.bin"), vec![b'x'; BIG_BYTES])?;
    let mut nginx = Guard(start_nginx(&work, port)?);
    let cgroup = Cgroup::create()?;

    let mut report = String::from(
        "| scenario | airlock `audit.durability` | direct | airlock | ratio | airlock p50 / p99 ms | direct p50 / p99 ms |\n|---|---|---|---|---|---|---|\n",
    );
    let mut records = 0;
    for durability in ["fsync", "written"] {
        let audit = work.join(format!("audit-{durability}.jsonl"));
        let mut airlock = Guard(start_airlock(
            airlock_bin,
            &work,
            &cgroup.0,
            port,
            durability,
            &audit,
        )?);
        wait_ready(&audit)?;
        for s in SCENARIOS {
            let url = format!("https://127.0.0.1:{port}{}", s.path);
            let mut direct = Vec::new();
            let mut proxied = Vec::new();
            for _ in 0..RUNS {
                direct.push(wrk(None, s.args, &url)?);
                proxied.push(wrk(Some(&cgroup.0), s.args, &url)?);
            }
            let pick = |v: &[Figures]| {
                if s.path == "/big.bin" {
                    median(v, |f| f.mb_s)
                } else {
                    median(v, |f| f.rps)
                }
            };
            let (d, dspread) = pick(&direct);
            let (a, aspread) = pick(&proxied);
            let lat = |v: &[Figures]| (median(v, |f| f.p50_ms).0, median(v, |f| f.p99_ms).0);
            let (ap50, ap99) = lat(&proxied);
            let (dp50, dp99) = lat(&direct);
            writeln!(
                report,
                "| {} | {durability} | {d:.0} (±{dspread:.0}) | {a:.0} (±{aspread:.0}) | {:.2}× | {ap50:.2} / {ap99:.2} | {dp50:.2} / {dp99:.2} |",
                s.name,
                a / d
            )?;
            eprintln!(
                "xtask bench: {} [{durability}]: direct {d:.0}, airlock {a:.0}",
                s.name
            );
        }
        let _ = Command::new("kill")
            .args(["-TERM", &airlock.0.id().to_string()])
            .status();
        let _ = airlock.0.wait();
        records += std::fs::read_to_string(&audit)
            .map(|t| t.lines().count())
            .unwrap_or(0);
    }
    let _ = nginx.0.kill();
    let text = format!(
        "# airlock benchmark\n\n{}\nMedians of {RUNS} runs of {SECONDS} s each (± half the spread). Upstream: nginx, TLS, on loopback; \
         load: wrk (HTTP/1.1 keep-alive unless noted), inside the capture cgroup for airlock. airlock: release build, full \
         pipeline (capture, TLS interception both ways, per-request audit; {records} audit records written).\n\nMachine: {}\n",
        report,
        machine()
    );
    std::fs::write(work.join("report.md"), &text)?;
    println!("{text}");
    println!("written to {}", work.join("report.md").display());
    Ok(())
}

fn median(v: &[Figures], f: impl Fn(&Figures) -> f64) -> (f64, f64) {
    let mut xs: Vec<f64> = v.iter().map(f).collect();
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], (xs[xs.len() - 1] - xs[0]) / 2.0)
}

/// Runs wrk, inside `cgroup` when given, and parses its summary.
fn wrk(cgroup: Option<&Path>, args: &[&str], url: &str) -> anyhow::Result<Figures> {
    let mut cmd = Command::new("sh");
    let enter = match cgroup {
        Some(cg) => format!("echo $$ > {}/cgroup.procs && ", cg.display()),
        None => String::new(),
    };
    cmd.arg("-c")
        .arg(format!("{enter}exec wrk \"$@\""))
        .arg("wrk")
        .args(args)
        .args(["-d", SECONDS, "--latency", url]);
    let out = cmd.output().context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains("Requests/sec") {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
    {
        bail!("wrk saw errors ({line}):\n{text}");
    }
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(str::trim)
    };
    Ok(Figures {
        rps: value("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        mb_s: value("Transfer/sec:").map(megabytes).unwrap_or(0.0),
        p50_ms: value("50%").map(millis).unwrap_or(0.0),
        p99_ms: value("99%").map(millis).unwrap_or(0.0),
    })
}

fn megabytes(v: &str) -> f64 {
    let (n, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = n.parse().unwrap_or(0.0);
    match unit {
        "GB" => n * 1024.0,
        "KB" => n / 1024.0,
        "B" => n / 1024.0 / 1024.0,
        _ => n,
    }
}

fn millis(v: &str) -> f64 {
    let (n, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = n.parse().unwrap_or(0.0);
    match unit {
        "us" => n / 1000.0,
        "s" => n * 1000.0,
        _ => n,
    }
}

fn certificates(work: &Path) -> anyhow::Result<()> {
    let sh = format!(
        "set -e; cd {0}; \
         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 -subj '/CN=bench upstream CA' 2>/dev/null; \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr -subj '/CN=127.0.0.1' 2>/dev/null; \
         printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext; \
         openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out leaf.crt 2>/dev/null",
        work.display()
    );
    run(Command::new("sh").arg("-c").arg(sh))
}

fn start_nginx(work: &Path, port: u16) -> anyhow::Result<Child> {
    let conf = format!(
        "daemon off; worker_processes 1; pid {w}/nginx.pid; error_log {w}/nginx.err warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{ access_log off; keepalive_requests 1000000; default_type application/json;\n\
           server {{ listen 127.0.0.1:{port} ssl http2; ssl_certificate {w}/leaf.crt; ssl_certificate_key {w}/leaf.key;\n\
             root {w}; location / {{ }} }} }}\n",
        w = work.display()
    );
    std::fs::write(work.join("nginx.conf"), conf)?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(work.join("nginx.conf"))
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx")?;
    std::thread::sleep(Duration::from_millis(300));
    Ok(child)
}

fn start_airlock(
    bin: &Path,
    work: &Path,
    cgroup: &Path,
    port: u16,
    durability: &str,
    audit: &Path,
) -> anyhow::Result<Child> {
    let conf = format!(
        "[capture]\ncgroup = {:?}\nports = [{port}]\n[proxy]\nlisten = \"127.0.0.1:{}\"\nintercept = [\"127.0.0.1\"]\n\
         [tls]\nca_dir = {:?}\nupstream_roots = [{:?}]\n[audit]\npath = {:?}\ndurability = \"{durability}\"\n\
         [admin]\nsocket = {:?}\n[masking]\nkey_file = {:?}\n",
        cgroup,
        free_port()?,
        work.join("airlock-ca"),
        work.join("ca.crt"),
        audit,
        work.join("admin.sock"),
        work.join("masking.key")
    );
    std::fs::write(work.join("airlock.toml"), conf)?;
    Command::new(bin)
        .args(["run", "--log-level", "warn", "--config"])
        .arg(work.join("airlock.toml"))
        .spawn()
        .context("starting airlock")
}

fn wait_ready(audit: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::fs::read_to_string(audit).is_ok_and(|t| t.contains("\"start\"")) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("airlock did not start")
}

fn small_json() -> String {
    let items: Vec<String> = (0..8)
        .map(|i| format!("{{\"id\":\"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-{i}\",\"name\":\"rg-{i}\",\"type\":\"Microsoft.Resources/resourceGroups\",\"location\":\"westeurope\",\"properties\":{{\"provisioningState\":\"Succeeded\"}}}}"))
        .collect();
    format!("{{\"value\":[{}]}}", items.join(","))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({cpu}), Linux {}", kernel.trim())
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("{cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?}: {status}");
    }
    Ok(())
}

/// Kills the child when the bench ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The bench's capture cgroup, under the cgroup2 mount (findmnt finds it on
/// unified and hybrid hosts alike); removed at the end.
struct Cgroup(PathBuf);

impl Cgroup {
    fn create() -> anyhow::Result<Self> {
        let out = Command::new("findmnt")
            .args(["-n", "-t", "cgroup2", "-o", "TARGET"])
            .output()?;
        let mount = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_owned)
            .context("no cgroup2 mount")?;
        let dir = Path::new(&mount).join(format!("airlock-bench-{}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
