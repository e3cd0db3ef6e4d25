//! `cargo xtask …`: the project's entry points for people and CI.
//!
//! - `test`: install missing system packages (root, apt), check formatting
//!   and lints, build, and run every test (privileged ones included).
//!   Then, as root, the benchmark's smoke run (`bench --smoke`).
//! - `demo`: install missing packages, build, and run `airlock demo`.
//! - `bench [--smoke]`: the benchmark (see `bench.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

mod bench;
mod fuzz;
mod package;
mod soak;

/// Debian packages the build and the tests need, keyed by what shows the
/// package is there: a command on PATH, or a file.
const PACKAGES: &[(&str, Probe)] = &[
    ("clang", Probe::Command("clang")),
    ("libbpf-dev", Probe::File("/usr/include/bpf/bpf_helpers.h")),
    ("curl", Probe::Command("curl")),
    ("python3", Probe::Command("python3")),
    // Real clients with nothing but `airlock ca env`'s lines: requests
    // (REQUESTS_CA_BUNDLE) in the system Python, and Node.
    (
        "python3-requests",
        Probe::File("/usr/lib/python3/dist-packages/requests/__init__.py"),
    ),
    ("nodejs", Probe::Command("node")),
    // RSA keys for the test OIDC issuer (ring cannot generate them).
    ("openssl", Probe::Command("openssl")),
    // The container networks of the tests and the demo (network
    // namespaces, veth pairs, bridges).
    ("iproute2", Probe::Command("ip")),
    // `systemd-analyze verify` of packaging/airlock.service.
    ("systemd", Probe::Command("systemd-analyze")),
    // The fleet's database: a real PostgreSQL server and psql, started
    // by the tests and the demo in their own directories.
    ("postgresql", Probe::File("/usr/lib/postgresql")),
    // The SIEM's receiver: rsyslogd with RELP and TLS (GnuTLS) inputs,
    // run by the tests in their own directories.
    ("rsyslog", Probe::Command("rsyslogd")),
    (
        "rsyslog-relp",
        Probe::File("/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so"),
    ),
    (
        "rsyslog-gnutls",
        Probe::File("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"),
    ),
    // The approval console's tests: a real browser, headless, driven over
    // WebDriver.
    ("chromium", Probe::File("/usr/lib/chromium/chromium")),
    ("chromium-driver", Probe::Command("chromedriver")),
    // The smoke bench at the end of `test`: upstream and load generator.
    ("nginx-light", Probe::Command("nginx")),
    ("wrk", Probe::Command("wrk")),
];

/// What the benchmark adds: an upstream and a load generator.
/// `cargo xtask package`: splitting debug info, building the .deb.
const PACKAGE_TOOLS: &[(&str, Probe)] = &[
    ("binutils", Probe::Command("objcopy")),
    ("dpkg", Probe::Command("dpkg-deb")),
];

const BENCH_PACKAGES: &[(&str, Probe)] = &[
    ("clang", Probe::Command("clang")),
    ("libbpf-dev", Probe::File("/usr/include/bpf/bpf_helpers.h")),
    ("nginx-light", Probe::Command("nginx")),
    ("wrk", Probe::Command("wrk")),
    ("openssl", Probe::Command("openssl")),
];

#[derive(Debug)]
enum Probe {
    Command(&'static str),
    File(&'static str),
}

impl Probe {
    fn present(&self) -> bool {
        match self {
            Self::File(f) => Path::new(f).exists(),
            Self::Command(c) => std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(c).is_file())),
        }
    }
}

const BENCH_USAGE: &str =
    "usage: cargo xtask bench [--smoke | --only NAME [--scenario small|large|new]]";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match task.as_str() {
        "test" | "ci" => test(&rest),
        "demo" => demo(&rest),
        "fuzz" => fuzz::fuzz(&root, &rest),
        "soak" => soak::soak(&rest),
        // The bench's open-loop load, run by the bench in a child process.
        "openload" => bench::openload(&rest),
        "package" => match rest.as_slice() {
            [] => {
                ensure_packages(PACKAGE_TOOLS)?;
                package::package(&build_release()?).map(drop)
            }
            [flag] if flag == "--check" => package_check(),
            _ => bail!("usage: cargo xtask package [--check]"),
        },
        "bench" => {
            let plan = match rest.as_slice() {
                [] => bench::Plan::FULL,
                [flag] if flag == "--smoke" => bench::Plan::SMOKE,
                [flag, name, more @ ..] if flag == "--only" => bench::Plan {
                    scenario: match more {
                        [] => &bench::SCENARIOS[0],
                        [f, key] if f == "--scenario" => bench::SCENARIOS
                            .iter()
                            .find(|s| s.key == key)
                            .with_context(|| format!("no scenario {key:?} (small, large, new)"))?,
                        _ => bail!(BENCH_USAGE),
                    },
                    only: Some(
                        bench::AIRLOCK_CONFIGS
                            .iter()
                            .map(|c| c.name)
                            .chain([
                                bench::CONNECT,
                                bench::HANDSHAKES,
                                bench::MODEL,
                                bench::IDLE,
                                bench::MITMPROXY,
                            ])
                            .find(|c| c == name)
                            .with_context(|| format!("no airlock configuration {name:?}"))?,
                    ),
                    ..bench::Plan::FULL
                },
                _ => bail!(BENCH_USAGE),
            };
            ensure_packages(BENCH_PACKAGES)?;
            // Another build of airlock (an earlier commit's) measured by
            // this harness, for a before/after in the same session.
            let binary = match std::env::var_os("AIRLOCK_BENCH_BINARY") {
                Some(other) => PathBuf::from(other),
                None => build_release()?,
            };
            bench::bench(&binary, &build_load()?, plan)
        }
        _ => {
            eprintln!("usage: cargo xtask <test|ci|demo|bench|fuzz|soak|package> [args]");
            bail!("unknown task {task:?}")
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    ensure_packages(PACKAGES)?;
    run(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
    run(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(Command::new("cargo").args(["build", "--package", "airlock", "--bin", "airlock"]))?;
    let bin = target_dir().join("debug/airlock");
    let mut cmd = Command::new("cargo");
    cmd.args(["test", "--workspace"])
        .args(extra)
        .env("AIRLOCK_BIN", bin)
        .env("AIRLOCK_COPILOT_CLI", copilot_cli()?);
    let (passed, failed) = run_counting(&mut cmd)?;
    // One closing line for the whole run (cargo prints one per test binary).
    println!("tests: {passed} passed, {failed} failed");
    if passed == 0 {
        bail!("no test ran");
    }
    package_check()?;
    smoke_bench()
}

/// The GitHub Copilot CLI the tests drive (its npm loader), installed from
/// npm into the target directory when missing: the tests themselves stay
/// on loopback. Pinned, so its request shapes do not change under them.
fn copilot_cli() -> anyhow::Result<PathBuf> {
    const PACKAGE: &str = "@github/copilot@1.0.102";
    let prefix = target_dir().join("copilot-cli");
    let loader = prefix.join("node_modules/@github/copilot/npm-loader.js");
    if !loader.exists() {
        ensure_packages(&[("npm", Probe::Command("npm"))])?;
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(PACKAGE))?;
    }
    Ok(loader)
}

/// Builds the package and installs, runs and purges it (root).
fn package_check() -> anyhow::Result<()> {
    if !is_root() {
        println!("package check: skipped (not root)");
        return Ok(());
    }
    ensure_packages(PACKAGE_TOOLS)?;
    package::check(&package::package(&build_release()?)?)
}

/// The benchmark's smoke run: does the harness still work end to end
/// (every configuration, no errors, identity verified)? It needs root for
/// the capture cgroup, like the privileged tests, and skips without it
/// unless CI requires privileged runs.
fn smoke_bench() -> anyhow::Result<()> {
    if !is_root() {
        if std::env::var_os("AIRLOCK_REQUIRE_PRIVILEGED").is_some_and(|v| v == "1") {
            bail!("the smoke bench needs root (AIRLOCK_REQUIRE_PRIVILEGED=1)");
        }
        println!("bench smoke: skipped (not root)");
        return Ok(());
    }
    bench::bench(&build_release()?, &build_load()?, bench::Plan::SMOKE)
}

/// Runs `cargo test`, passing its output through, and adds up its
/// `test result:` lines.
fn run_counting(cmd: &mut Command) -> anyhow::Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: {cmd:?}");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count(rest, " passed");
            failed += count(rest, " failed");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok((passed, failed))
}

/// The number before `label` in "ok. 5 passed; 0 failed; …".
fn count(summary: &str, label: &str) -> u64 {
    summary
        .split(';')
        .find_map(|part| part.trim().strip_suffix(label.trim_start()))
        .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

fn demo(extra: &[String]) -> anyhow::Result<()> {
    ensure_packages(PACKAGES)?;
    run(Command::new(build_release()?).arg("demo").args(extra))
}

/// Builds the release `airlock` binary and returns its path.
fn build_release() -> anyhow::Result<PathBuf> {
    run(Command::new("cargo").args([
        "build",
        "--release",
        "--package",
        "airlock",
        "--bin",
        "airlock",
        // The masking throughput probe (see bench/masking.rs).
        "--example",
        "mask_throughput",
    ]))?;
    Ok(target_dir().join("release/airlock"))
}

/// This binary built for speed, for the bench's open-loop load (a debug
/// build would spend the cores the measurement shares).
fn build_load() -> anyhow::Result<PathBuf> {
    run(Command::new("cargo").args(["build", "--release", "--package", "xtask"]))?;
    Ok(target_dir().join("release/xtask"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Installs missing packages with apt-get when root; otherwise says what
/// to install.
fn ensure_packages(packages: &[(&str, Probe)]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, probe)| !probe.present())
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing packages: {} (run as root, or: sudo apt-get install -y {0})",
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}
