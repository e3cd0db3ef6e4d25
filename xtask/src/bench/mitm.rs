//! mitmproxy as the peer interception proxy. Its transparent local-capture
//! mode needs a redirector that cannot attach on a hybrid-cgroup host, so
//! it runs as a reverse proxy in front of the upstream (TLS in, verified
//! TLS out): the same two TLS legs and HTTP relay, without the redirect.

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
