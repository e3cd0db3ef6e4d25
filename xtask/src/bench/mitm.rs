//! mitmproxy as the peer interception proxy. Its transparent local-capture
//! mode is tried first; where mitmdump refuses it (the newest mitmproxy pip
//! installs for a python3.11 is 11.0, whose local mode is Windows and macOS
//! only), it runs as a reverse proxy in front of the upstream (TLS
//! in, verified TLS out): the same two TLS legs and HTTP relay, without the
//! redirect. The report says which, in mitmdump's own words.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use super::sys::wait_port;

/// Installs mitmproxy into `{bench}/venv` (kept between runs) and returns
/// `mitmdump`'s path, or why it could not.
pub(crate) fn install(bench: &Path) -> Result<PathBuf, String> {
    let venv = bench.join("venv");
    let mitmdump = venv.join("bin/mitmdump");
    if mitmdump.is_file() {
        return Ok(mitmdump);
    }
    let step = |cmd: &mut Command, what: &str| -> Result<(), String> {
        eprintln!("xtask bench: {what}");
        let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Err(format!("{what} failed: {}", last.trim()))
    };
    step(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "creating a python venv",
    )?;
    step(
        Command::new(venv.join("bin/pip")).args(["install", "-q", "--timeout", "30", "mitmproxy"]),
        "pip install mitmproxy",
    )?;
    if mitmdump.is_file() {
        Ok(mitmdump)
    } else {
        Err("pip installed no mitmdump".into())
    }
}

/// `mitmdump` in reverse mode on `port`, verifying the upstream against the
/// bench CA; quiet, so logging does not weigh on its figures.
pub(crate) fn start(
    mitmdump: &Path,
    work: &Path,
    port: u16,
    upstream: u16,
) -> anyhow::Result<Child> {
    let child = Command::new(mitmdump)
        .arg("--mode")
        .arg(format!("reverse:https://127.0.0.1:{upstream}"))
        .args([
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            &port.to_string(),
            "-q",
        ])
        .arg("--set")
        .arg(format!("confdir={}", work.join("mitmproxy").display()))
        .arg("--set")
        .arg(format!(
            "ssl_verify_upstream_trusted_ca={}",
            work.join("ca.crt").display()
        ))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("mitmdump.err"))?)
        .spawn()
        .context("starting mitmdump")?;
    wait_port(port, "mitmdump", Duration::from_secs(30))?;
    Ok(child)
}

/// Why the bench measures mitmproxy in reverse mode: what mitmdump says
/// when asked to capture `wrk` in local mode (given 10 s to refuse).
pub(crate) fn local_mode(mitmdump: &Path, work: &Path) -> String {
    let version = Command::new(mitmdump)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            // "Mitmproxy: 11.0.2"
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let first = text.lines().next()?.trim();
            Some(format!(
                "mitmproxy {}",
                first.strip_prefix("Mitmproxy:")?.trim()
            ))
        })
        .unwrap_or_else(|| "mitmproxy".into());
    let spawned = Command::new(mitmdump)
        .args(["--mode", "local:wrk", "--listen-port", "0", "--set"])
        .arg(format!("confdir={}", work.join("mitmproxy").display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return format!("local mode not tried: {e}"),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.wait_with_output().map(|o| {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                text
            });
            let said = out.unwrap_or_default();
            // "[00:49:06.709] OS proxy mode is only available on …"
            let why = said
                .lines()
                .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest).trim())
                .find(|l| !l.is_empty() && !l.starts_with("Error logged during startup"))
                .unwrap_or("it exited");
            return format!("local capture mode refused by {version}: \"{why}\"");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    format!("{version} started in local capture mode, but the bench measures reverse mode")
}
