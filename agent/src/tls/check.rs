//! `airlock ca check`: which of the runtimes on this host trust airlock's
//! CA when run as a given user with exactly the lines `airlock ca env`
//! prints, and what to set for those that do not. Each runtime present is
//! asked to fetch a page from a loopback server whose certificate the CA
//! signed for an intercepted name, as the agent's tools would be.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{CertificateAuthority, ClientTls, LeafCache, PublicFiles, TlsError};
use crate::host::{HostPattern, InterceptList};

/// How long one runtime may take (Java compiles its probe first).
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// One runtime's answer.
#[derive(Debug)]
pub struct Probe {
    pub runtime: &'static str,
    /// Its version, as it reports it; none when it is not installed.
    pub version: Option<String>,
    pub outcome: Outcome,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Trusts,
    /// It does not: why, and what to set.
    Refuses {
        why: String,
        fix: String,
    },
    NotInstalled,
    /// Present, but airlock has no probe for it: what it reads.
    NotProbed(String),
}

/// Who the runtimes run as.
#[derive(Debug, Clone)]
pub struct ProbeUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl ProbeUser {
    /// A user by name or uid, through NSS (`id`), so directory users
    /// (LDAP, SSSD) resolve as they log in.
    pub fn resolve(name: &str) -> Result<Self, TlsError> {
        let id = |flag: &str| -> Result<u32, TlsError> {
            let out = Command::new("id")
                .args([flag, name])
                .output()
                .map_err(|source| TlsError::Io {
                    path: PathBuf::from("id"),
                    op: "run",
                    source,
                })?;
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .map_err(|_| TlsError::Check(format!("no user {name:?}")))
        };
        Ok(Self {
            name: name.to_owned(),
            uid: id("-u")?,
            gid: id("-g")?,
        })
    }
}

/// The name the probe server answers for: one the CA may sign and the
/// daemon intercepts (Resource Manager when it is intercepted).
fn probe_name(intercept: &InterceptList) -> Option<String> {
    const ARM: &str = "management.azure.com";
    if intercept.matches(ARM) {
        return Some(ARM.to_owned());
    }
    intercept.patterns().iter().find_map(|p| match p {
        HostPattern::Exact(d) => Some(d.clone()),
        HostPattern::Suffix(d) => Some(format!("airlock-check.{d}")),
        HostPattern::Ip(_) => None,
    })
}

/// Runs every probe as `user` with `env` (the lines of `airlock ca env`)
/// against a loopback server presenting a leaf `ca` signed.
pub async fn check(
    ca: CertificateAuthority,
    intercept: &InterceptList,
    public: &PublicFiles,
    user: &ProbeUser,
) -> Result<(String, Vec<Probe>), TlsError> {
    let name = probe_name(intercept)
        .ok_or_else(|| TlsError::Check("proxy.intercept names no host to probe with".into()))?;
    let leaves = Arc::new(LeafCache::new(Arc::new(ca), 1)?);
    let config = ClientTls::new(leaves)?
        .config(Some(&name), &name, None)
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| TlsError::Io {
            path: PathBuf::from("127.0.0.1:0"),
            op: "listen on",
            source,
        })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let server = tokio::spawn(serve(listener, tokio_rustls::TlsAcceptor::from(config)));
    let work = ProbeDir::new(&name)?;
    let env = super::trust::env_pairs(public);
    let url = format!("https://{name}:{port}/");
    let mut probes = Vec::new();
    for runtime in RUNTIMES {
        let probe = tokio::task::spawn_blocking({
            let (user, env, target, dir) = (
                user.clone(),
                env.clone(),
                Target {
                    url: url.clone(),
                    name: name.clone(),
                    port,
                },
                work.0.clone(),
            );
            let public = public.dir.clone();
            move || runtime.probe(&user, &env, &target, &dir, &public)
        })
        .await
        .map_err(|e| TlsError::Check(e.to_string()))?;
        probes.push(probe);
    }
    server.abort();
    Ok((name, probes))
}

/// Answers every request with 200 and closes.
async fn serve(listener: tokio::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor) {
    while let Ok((stream, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(stream).await else {
                return;
            };
            let mut buf = vec![0u8; 16 * 1024];
            let mut seen = 0;
            while seen < buf.len() {
                match tls.read(&mut buf[seen..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen += n,
                }
                if buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
            let _ = tls.shutdown().await;
        });
    }
}

/// A directory the probed user can read (the Java probe, a hosts file),
/// removed when dropped.
struct ProbeDir(PathBuf);

impl ProbeDir {
    fn new(name: &str) -> Result<Self, TlsError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("airlock-ca-check-{}", std::process::id()));
        let io = |op| {
            let path = dir.clone();
            move |source| TlsError::Io { path, op, source }
        };
        std::fs::create_dir_all(&dir).map_err(io("create"))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .map_err(io("chmod"))?;
        for (file, text) in [
            ("Probe.java", JAVA_PROBE.to_owned()),
            ("hosts", format!("127.0.0.1 {name}\n")),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, text).map_err(io("write"))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                .map_err(io("chmod"))?;
        }
        Ok(Self(dir))
    }
}

impl Drop for ProbeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fetches `args[0]`; prints the status, or `untrusted: why`.
const JAVA_PROBE: &str = r#"public class Probe {
  public static void main(String[] a) throws Exception {
    var c = (javax.net.ssl.HttpsURLConnection) new java.net.URI(a[0]).toURL().openConnection();
    c.setConnectTimeout(10000);
    c.setReadTimeout(10000);
    try { System.out.println(c.getResponseCode()); }
    catch (javax.net.ssl.SSLException e) { System.out.println("untrusted: " + e.getMessage()); }
  }
}
"#;

/// Python's `ssl` (OpenSSL's default paths, `SSL_CERT_FILE`).
const PYTHON_SSL: &str = r#"
import socket, ssl, sys
name, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context()
try:
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 10), server_hostname=name) as t:
        t.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        print(t.recv(64).split()[1].decode())
except ssl.SSLError as e:
    print("untrusted:", e)
"#;

/// Python's `requests` (`REQUESTS_CA_BUNDLE`, else certifi's roots).
const PYTHON_REQUESTS: &str = r#"
import socket, sys
try:
    import requests
except ImportError:
    print("missing"); sys.exit()
name, port = sys.argv[1], int(sys.argv[2])
real = socket.getaddrinfo
socket.getaddrinfo = lambda host, *a, **k: real("127.0.0.1" if host == name else host, *a, **k)
try:
    print(requests.get(f"https://{name}:{port}/", timeout=10).status_code)
except requests.exceptions.SSLError as e:
    print("untrusted:", e)
"#;

/// Node's `https` (`NODE_EXTRA_CA_CERTS`).
const NODE: &str = r#"
const [name, port] = process.argv.slice(1);
require("https").get({ hostname: name, port, path: "/",
  lookup: (h, o, cb) => o.all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : cb(null, "127.0.0.1", 4) },
  (res) => { console.log(res.statusCode); res.resume(); })
  .on("error", (e) => console.log("untrusted: " + e.code));
"#;

/// A runtime airlock knows how to probe, or at least to advise on.
struct Runtime {
    name: &'static str,
    program: &'static str,
    version: &'static [&'static str],
    /// Arguments after the program: `{url}`, `{name}`, `{port}`, `{dir}`
    /// are filled in; none: present but not probed.
    probe: Option<&'static [&'static str]>,
    /// What to set when it does not trust airlock (`{public}`: the
    /// published directory).
    fix: &'static str,
}

const RUNTIMES: &[Runtime] = &[
    Runtime {
        name: "curl (OpenSSL)",
        program: "curl",
        version: &["--version"],
        probe: Some(&[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
            "--resolve",
            "{name}:{port}:127.0.0.1",
            "{url}",
        ]),
        fix: "CURL_CA_BUNDLE (or SSL_CERT_FILE) from `airlock ca env`, or `sudo airlock ca install`",
    },
    Runtime {
        name: "python3 (ssl)",
        program: "python3",
        version: &["--version"],
        probe: Some(&["-c", PYTHON_SSL, "{name}", "{port}"]),
        fix: "SSL_CERT_FILE from `airlock ca env`, or `sudo airlock ca install`",
    },
    Runtime {
        name: "python3 requests",
        program: "python3",
        version: &[
            "-c",
            "try:\n import requests\n print('requests', requests.__version__)\nexcept ImportError:\n print('missing')",
        ],
        probe: Some(&["-c", PYTHON_REQUESTS, "{name}", "{port}"]),
        fix: "REQUESTS_CA_BUNDLE from `airlock ca env` (requests ignores the system store: it uses certifi)",
    },
    Runtime {
        name: "node",
        program: "node",
        version: &["--version"],
        probe: Some(&["-e", NODE, "{name}", "{port}"]),
        fix: "NODE_EXTRA_CA_CERTS from `airlock ca env`; Node 22.19+/24.6+ also reads the system store with NODE_USE_SYSTEM_CA=1 after `sudo airlock ca install`",
    },
    Runtime {
        name: "java",
        program: "java",
        version: &["-version"],
        probe: Some(&[
            "-Djdk.net.hosts.file={dir}/hosts",
            "{dir}/Probe.java",
            "{url}",
        ]),
        fix: "`sudo airlock ca install` (Debian's ca-certificates-java carries the system store into Java's), or a truststore: `sudo keytool -importcert -noprompt -alias airlock -file {public}/ca.crt -keystore {public}/airlock.p12 -storepass airlock` and JAVA_TOOL_OPTIONS=\"-Djavax.net.ssl.trustStore={public}/airlock.p12 -Djavax.net.ssl.trustStorePassword=airlock\"",
    },
    Runtime {
        name: ".NET",
        program: "dotnet",
        version: &["--version"],
        probe: None,
        fix: "reads OpenSSL's store on Linux: `sudo airlock ca install`, or SSL_CERT_FILE from `airlock ca env`; it refuses by closing after the handshake (recorded as tls_client_refused)",
    },
    Runtime {
        name: "go",
        program: "go",
        version: &["version"],
        probe: None,
        fix: "reads the system store and SSL_CERT_FILE: `sudo airlock ca install`, or SSL_CERT_FILE from `airlock ca env`",
    },
];

/// What a probe fetches.
struct Target {
    url: String,
    name: String,
    port: u16,
}

impl Runtime {
    fn probe(
        &self,
        user: &ProbeUser,
        env: &[(String, String)],
        target: &Target,
        dir: &Path,
        public: &Path,
    ) -> Probe {
        let fix = self.fix.replace("{public}", &public.display().to_string());
        let probe = |version, outcome| Probe {
            runtime: self.name,
            version,
            outcome,
        };
        let Some(version) = self.run(user, env, self.version) else {
            return probe(None, Outcome::NotInstalled);
        };
        // `curl 7.88.1 (x86_64…) …`, `openjdk version "17.0.15" 2025-04-15`:
        // the name and the number.
        let version = version
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .split_whitespace()
            .take_while(|w| !w.starts_with('('))
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        if version == "missing" || version.is_empty() {
            return probe(None, Outcome::NotInstalled);
        }
        let Some(args) = self.probe else {
            return probe(Some(version), Outcome::NotProbed(fix));
        };
        let dir = dir.display().to_string();
        let port = target.port.to_string();
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                a.replace("{url}", &target.url)
                    .replace("{name}", &target.name)
                    .replace("{port}", &port)
                    .replace("{dir}", &dir)
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let answer = self.run(user, env, &args).unwrap_or_default();
        let answer = answer.trim();
        let outcome = if answer == "200" {
            Outcome::Trusts
        } else {
            Outcome::Refuses {
                why: if answer.is_empty() {
                    "no answer".to_owned()
                } else {
                    crate::core::truncate(answer, 160).to_owned()
                },
                fix,
            }
        };
        probe(Some(version), outcome)
    }

    /// Runs the program as `user` with only `env` and a standard `PATH`;
    /// its output (stdout, else stderr), or none if it cannot start.
    fn run(&self, user: &ProbeUser, env: &[(String, String)], args: &[&str]) -> Option<String> {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", user.uid))
            .arg(format!("--regid={}", user.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(self.program)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", "/")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null());
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let out = wait_with_timeout(child, PROBE_TIMEOUT)?;
        // A program not found: setpriv's own failure.
        if out.status.code() == Some(127)
            || String::from_utf8_lossy(&out.stderr).contains("setpriv: failed to execute")
        {
            return None;
        }
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if stdout.trim().is_empty() {
            Some(String::from_utf8_lossy(&out.stderr).into_owned())
        } else {
            Some(stdout)
        }
    }
}

/// Waits for `child`, killing it past `limit`.
fn wait_with_timeout(
    mut child: std::process::Child,
    limit: Duration,
) -> Option<std::process::Output> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().ok(),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                return child.wait_with_output().ok();
            }
        }
    }
}
