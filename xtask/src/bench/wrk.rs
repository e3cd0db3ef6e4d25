//! The load: wrk, run directly or inside the capture cgroup, and what its
//! summary says.

use std::process::Command;

use anyhow::{Context, bail};

use super::sys::Cgroup;

/// One wrk measurement.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Figures {
    pub(crate) rps: f64,
    pub(crate) mb_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// Requests completed in the run.
    pub(crate) requests: u64,
    /// The proxy's CPU time (user + system, all its processes) during the
    /// run; none for a direct run.
    pub(crate) cpu: Option<std::time::Duration>,
}

#[derive(Debug)]
pub(crate) struct Scenario {
    /// What `--scenario` calls it.
    pub(crate) key: &'static str,
    pub(crate) name: &'static str,
    pub(crate) path: &'static str,
    pub(crate) args: &'static [&'static str],
    /// Throughput in MB/s rather than requests/s.
    pub(crate) bytes: bool,
}

pub(crate) const SMALL: &Scenario = &SCENARIOS[0];
pub(crate) const BIG: &Scenario = &SCENARIOS[1];
pub(crate) const NEW: &Scenario = &SCENARIOS[2];

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        key: "small",
        name: "small JSON, keep-alive, 16 conns (req/s)",
        path: "/small.json",
        args: &["-t1", "-c16"],
        bytes: false,
    },
    Scenario {
        key: "large",
        name: "8 MiB body, 2 conns (MB/s)",
        path: "/big.bin",
        args: &["-t1", "-c2"],
        bytes: true,
    },
    Scenario {
        key: "new",
        name: "new TLS connection per request, 8 conns (req/s)",
        path: "/small.json",
        args: &["-t1", "-c8", "-H", "Connection: close"],
        bytes: false,
    },
];

impl Scenario {
    /// The figure the table compares.
    pub(crate) fn throughput(&self, f: &Figures) -> f64 {
        if self.bytes { f.mb_s } else { f.rps }
    }
}

/// Median and half the range (the spread shown as ±).
pub(crate) fn median(v: &[Figures], f: impl Fn(&Figures) -> f64) -> (f64, f64) {
    let mut xs: Vec<f64> = v.iter().map(f).collect();
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], (xs[xs.len() - 1] - xs[0]) / 2.0)
}

/// Runs wrk for `seconds` against `url`, inside `cgroup` when given,
/// sending `token` as a bearer credential, and parses its summary. Socket
/// errors, timeouts and non-2xx responses are errors: a configuration
/// that fails requests is not measured, it is broken.
pub(crate) fn wrk(
    cgroup: Option<&Cgroup>,
    scenario: &Scenario,
    url: &str,
    token: &str,
    seconds: u32,
) -> anyhow::Result<Figures> {
    let enter = cgroup.map(Cgroup::enter).unwrap_or_default();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{enter}exec wrk \"$@\""))
        .arg("wrk")
        .args(scenario.args)
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args([
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "10s",
            "--latency",
            url,
        ])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains("Requests/sec") {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
    {
        bail!("wrk saw errors ({}):\n{text}", line.trim());
    }
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(str::trim)
    };
    let figures = Figures {
        rps: value("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        mb_s: value("Transfer/sec:").map(megabytes).unwrap_or(0.0),
        p50_ms: value("50%").map(millis).unwrap_or(0.0),
        p99_ms: value("99%").map(millis).unwrap_or(0.0),
        requests: text
            .lines()
            .find(|l| l.contains(" requests in "))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0),
        cpu: None,
    };
    if figures.rps <= 0.0 {
        bail!("wrk completed no request:\n{text}");
    }
    Ok(figures)
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
