//! `cargo xtask bench`: airlock against the physical limit (no proxy) and
//! against peer proxies, in one run, as ratios. Upstream: nginx (TLS,
//! HTTP/1.1 + h2) on loopback; load: wrk, run either directly or inside a
//! cgroup airlock captures. Configurations:
//!
//! - airlock, full pipeline: capture, TLS interception both ways, a bearer
//!   JWT validated against a test issuer, policy, masking, per-request
//!   audit — with `audit.durability` `fsync` and `written`; then with the
//!   audit write off the request path (`queued`), with masking off and
//!   with the audit off, to show what each stage costs;
//! - nginx as a re-encrypting reverse proxy (the best-of-breed L7 TLS
//!   proxy);
//! - mitmproxy in reverse mode (full mode only; installed into a venv).
//!
//! Plus airlock's memory per idle TLS connection, the cost of its eBPF
//! programs to a connect() they do not select, new TLS connections with its
//! minted-leaf cache warm and cold, its masking throughput on one core, and
//! the latency it adds to a streamed model answer.
//!
//! `--smoke` runs everything that needs no download once, for a second, and
//! asserts that it works (no errors, identity verified), never how fast.
//! `--only NAME` measures small requests (`--scenario large|new`: 8 MiB
//! bodies, new connections) through one airlock configuration and nothing
//! else: the loop to profile in (`perf record -p` on the airlock
//! whose config file is `airlock-NAME.toml`); `--only connect`,
//! `--only handshakes` and `--only mitmproxy`, one of those alone.

mod airlock;
mod handshakes;
mod jwt;
mod kthreads;
mod masking;
mod mitm;
mod openloop;
mod probes;
mod report;
mod stream;
mod sys;
mod upstream;
mod wrk;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};

use self::airlock::{Airlock, Settings, Trail, check_trail};
pub(crate) use self::openloop::run as openload;
use self::report::{Report, Row};
use self::sys::{Cgroup, Guard, free_port};
pub(crate) use self::wrk::SCENARIOS;
use self::wrk::{Figures, Scenario, wrk};

/// How much of everything to run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub(crate) smoke: bool,
    /// One airlock configuration, one scenario (`--only NAME`).
    pub(crate) only: Option<&'static str>,
    /// The scenario `--only` measures (`--scenario KEY`; small requests
    /// unless said).
    pub(crate) scenario: &'static Scenario,
    /// Runs of each measurement; the median is reported, the spread shown.
    pub(crate) runs: usize,
    pub(crate) seconds: u32,
    pub(crate) idle_conns: usize,
    pub(crate) connects: usize,
    pub(crate) connect_rounds: usize,
    /// New TLS connections per sample, leaf cache warm and cold (one
    /// sample per run).
    pub(crate) handshakes: usize,
}

impl Plan {
    pub(crate) const FULL: Self = Self {
        smoke: false,
        only: None,
        scenario: wrk::SMALL,
        runs: 3,
        seconds: 5,
        idle_conns: 1000,
        connects: 20_000,
        connect_rounds: 3,
        handshakes: 400,
    };
    pub(crate) const SMOKE: Self = Self {
        smoke: true,
        only: None,
        scenario: wrk::SMALL,
        runs: 1,
        seconds: 1,
        idle_conns: 1000,
        connects: 2_000,
        connect_rounds: 1,
        handshakes: 30,
    };
}

/// `--only connect`: the connect() probe alone.
pub(crate) const CONNECT: &str = "connect";
/// `--only handshakes`: new TLS connections, leaf cache warm and cold.
pub(crate) const HANDSHAKES: &str = "handshakes";
/// `--only idle`: idle intercepted connections' memory alone.
pub(crate) const IDLE: &str = "idle";
/// `--only model`: the model call (50 KB prompt, streamed answer) alone.
pub(crate) const MODEL: &str = "model";
/// `--only mitmproxy`: mitmproxy alone.
pub(crate) const MITMPROXY: &str = "mitmproxy";

/// One airlock configuration the bench measures.
pub(crate) struct AirlockConfig {
    /// Its files' name, and `--only`'s.
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    /// `audit.durability`.
    durability: &'static str,
    /// Response masking (the shipped policies), or everything passed.
    masking: bool,
    /// Body excerpts in the records (`audit.body_excerpt_bytes`), or none.
    excerpts: bool,
}

/// The airlock configurations measured. The first two are the full
/// pipeline; `queued` takes the audit write off the request path, "no
/// excerpts" leaves the body excerpts out of the records, "masking off"
/// relays responses unmasked and "audit off" writes no records, to show
/// each stage's cost.
pub(crate) const AIRLOCK_CONFIGS: &[AirlockConfig] = &[
    AirlockConfig {
        name: "fsync",
        label: "airlock, `fsync`",
        durability: "fsync",
        masking: true,
        excerpts: true,
    },
    AirlockConfig {
        name: "written",
        label: "airlock, `written` (the default)",
        durability: "written",
        masking: true,
        excerpts: true,
    },
    AirlockConfig {
        name: "queued",
        label: "airlock, `queued` (audit not waited for)",
        durability: "queued",
        masking: true,
        excerpts: true,
    },
    AirlockConfig {
        name: "noexcerpt",
        label: "airlock, `written`, no body excerpts",
        durability: "written",
        masking: true,
        excerpts: false,
    },
    AirlockConfig {
        name: "nomask",
        label: "airlock, masking off (`fsync`)",
        durability: "fsync",
        masking: false,
        excerpts: true,
    },
    AirlockConfig {
        name: "off",
        label: "airlock, audit off",
        durability: "off",
        masking: true,
        excerpts: true,
    },
];

/// Everything one bench needs to reach the upstream.
struct Setup<'a> {
    work: &'a Path,
    /// The open-loop load generator (`xtask openload`, release build).
    load: &'a Path,
    port: u16,
    token: &'a str,
    plan: Plan,
}

pub(crate) fn bench(airlock_bin: &Path, load: &Path, plan: Plan) -> anyhow::Result<()> {
    let started = Instant::now();
    let target = airlock_bin
        .parent()
        .and_then(Path::parent)
        .context("target dir")?;
    let bench_dir = target.join("bench");
    // The smoke and focused runs keep their files apart so they never
    // clobber a full report.
    let work = if plan.smoke {
        target.join("bench-smoke")
    } else if plan.only.is_some() {
        target.join("bench-only")
    } else {
        bench_dir.clone()
    };
    clean(&work)?;
    let port = free_port()?;
    upstream::certificates(&work)?;
    upstream::content(&work)?;
    let issuer = jwt::Issuer::new(port)?;
    issuer.publish(&work)?;
    let token = issuer.token()?;
    let _upstream = Guard(upstream::start_upstream(&work, port)?);
    let cgroup = Cgroup::create()?;
    let setup = Setup {
        work: &work,
        load,
        port,
        token: &token,
        plan,
    };
    let mut report = Report::new(plan);

    let configs = AIRLOCK_CONFIGS
        .iter()
        .filter(|c| plan.only.is_none_or(|only| only == c.name));
    // A focused run measures one scenario.
    let scenarios = if plan.only.is_some() {
        std::slice::from_ref(plan.scenario)
    } else {
        SCENARIOS
    };
    for &AirlockConfig {
        name,
        label,
        durability,
        masking,
        excerpts,
    } in configs
    {
        let settings = Settings {
            masking,
            excerpts,
            ..Settings::full(durability, Some(&issuer))
        };
        let airlock = Airlock::start(airlock_bin, &work, name, &cgroup, &[port], &settings)?;
        let audit = airlock.audit.clone();
        let rows = measure(&setup, scenarios, label, Some(&cgroup), port, airlock.pid());
        // The default's latency at a steady half of its saturated rate,
        // while it runs (any configuration's, in a focused run).
        let open = match &rows {
            Ok(rows) if name == "written" || plan.only.is_some() => rows
                .iter()
                .find(|r| r.scenario.key == wrk::SMALL.key)
                .map(|r| {
                    let ca = airlock.ca_dir.join("ca.crt");
                    open_loop(&setup, label, &ca, &cgroup, r.measured().0 / 2.0)
                })
                .transpose(),
            _ => Ok(None),
        };
        let cpu = airlock.stop()?;
        let rows = rows?;
        if let Some(open) = open? {
            report.open_loop = Some(open);
        }
        let trail = if durability == "off" {
            // No trail to count or check: wrk says how many requests went through.
            Trail {
                cpu,
                requests: rows
                    .iter()
                    .flat_map(|r| &r.measured)
                    .map(|f| f.requests as usize)
                    .sum(),
                ..Trail::default()
            }
        } else {
            Trail {
                cpu,
                ..check_trail(&audit)?
            }
        };
        report.rows.extend(rows);
        eprintln!(
            "xtask bench: [{label}]: airlock CPU {:.1} µs per request",
            trail.cpu_per_request().as_secs_f64() * 1e6
        );
        report.trails.push((name, trail));
    }
    let idle = || {
        probes::idle(
            airlock_bin,
            &work,
            &cgroup,
            port,
            &issuer,
            &token,
            plan.idle_conns,
        )
    };
    if let Some(only) = plan.only {
        match only {
            CONNECT => report.connect = Some(connect_cost(airlock_bin, &work, &cgroup, plan)?),
            HANDSHAKES => {
                report.handshakes = Some(handshakes(&setup, airlock_bin, &cgroup, &issuer)?);
            }
            MITMPROXY => mitmproxy(&setup, &bench_dir, &mut report),
            MODEL => report.stream = Some(stream::measure(airlock_bin, &work, &cgroup, plan)?),
            IDLE => report.idle = Some(idle()?),
            // An airlock configuration: measured above.
            _ => {}
        }
        return write_report(&mut report, started, &work, plan);
    }

    let proxy_port = free_port()?;
    let proxy = Guard(upstream::start_proxy(&work, proxy_port, port)?);
    let before = airlock::tree_cpu_time(proxy.0.id())?;
    let rows = measure(
        &setup,
        SCENARIOS,
        "nginx reverse proxy",
        None,
        proxy_port,
        proxy.0.id(),
    )?;
    // Measured as airlock's is: all its processes, over its scenarios.
    report.nginx = Some(airlock::Trail {
        cpu: airlock::tree_cpu_time(proxy.0.id())?.saturating_sub(before),
        requests: rows
            .iter()
            .flat_map(|r| &r.measured)
            .map(|f| f.requests as usize)
            .sum(),
        ..airlock::Trail::default()
    });
    report.rows.extend(rows);
    // The yardstick for airlock's open-loop tail: nginx at the same rate.
    if let Some(o) = &mut report.open_loop {
        eprintln!("xtask bench: open-loop load through nginx");
        let bench_ca = work.join("ca.crt");
        for _ in 0..plan.runs {
            o.nginx.push(openloop::measure(
                load,
                None,
                proxy_port,
                wrk::SMALL.path,
                &token,
                &[bench_ca.as_path()],
                o.rate,
                plan.seconds,
            )?);
        }
    }
    drop(proxy);

    if !plan.smoke {
        mitmproxy(&setup, &bench_dir, &mut report);
    }

    eprintln!(
        "xtask bench: {} idle TLS connections through airlock",
        plan.idle_conns
    );
    report.idle = Some(idle()?);
    report.connect = Some(connect_cost(airlock_bin, &work, &cgroup, plan)?);
    report.handshakes = Some(handshakes(&setup, airlock_bin, &cgroup, &issuer)?);

    eprintln!("xtask bench: a streamed model answer, direct and through airlock");
    report.stream = Some(stream::measure(airlock_bin, &work, &cgroup, plan)?);
    eprintln!("xtask bench: masking throughput on 1 MiB bodies");
    report.masking = masking::masking(airlock_bin, plan)?;
    write_report(&mut report, started, &work, plan)
}

/// Small requests at a constant `rate`, directly and through airlock
/// (`config`, whose CA is `ca`) from the capture cgroup, interleaved run by
/// run.
fn open_loop(
    setup: &Setup,
    config: &'static str,
    ca: &Path,
    cgroup: &Cgroup,
    rate: f64,
) -> anyhow::Result<openloop::OpenLoop> {
    eprintln!("xtask bench: open-loop load at {rate:.0} req/s, direct and through airlock");
    let bench_ca = setup.work.join("ca.crt");
    let cas = [bench_ca.as_path(), ca];
    let run = |cgroup: Option<&Cgroup>| {
        openloop::measure(
            setup.load,
            cgroup,
            setup.port,
            wrk::SMALL.path,
            setup.token,
            &cas,
            rate,
            setup.plan.seconds,
        )
    };
    let mut o = openloop::OpenLoop {
        config,
        rate,
        direct: Vec::new(),
        through: Vec::new(),
        nginx: Vec::new(),
        kernel: Vec::new(),
    };
    for _ in 0..setup.plan.runs {
        o.direct.push(run(None)?);
        let before = kthreads::Snapshot::take();
        o.through.push(run(Some(cgroup))?);
        // What held a CPU besides the load, airlock and nginx (1 ms or more).
        kthreads::add(
            &mut o.kernel,
            before.since(&kthreads::Snapshot::take(), 1.0),
        );
    }
    Ok(o)
}

fn handshakes(
    setup: &Setup,
    airlock_bin: &Path,
    cgroup: &Cgroup,
    issuer: &jwt::Issuer,
) -> anyhow::Result<handshakes::Handshakes> {
    eprintln!("xtask bench: new TLS connections, minted-leaf cache warm and cold");
    handshakes::measure(
        airlock_bin,
        setup.work,
        cgroup,
        setup.port,
        issuer,
        setup.token,
        (setup.plan.handshakes, setup.plan.runs),
    )
}

fn connect_cost(
    airlock_bin: &Path,
    work: &Path,
    cgroup: &Cgroup,
    plan: Plan,
) -> anyhow::Result<probes::ConnectCost> {
    eprintln!("xtask bench: connect() of a process airlock does not select");
    probes::connect_cost(
        airlock_bin,
        work,
        cgroup,
        plan.connects,
        plan.connect_rounds,
    )
}

fn write_report(
    report: &mut Report,
    started: Instant,
    work: &Path,
    plan: Plan,
) -> anyhow::Result<()> {
    report.finish(started.elapsed());
    let text = report.markdown();
    std::fs::write(work.join("report.md"), &text)?;
    println!("{text}");
    println!("written to {}", work.join("report.md").display());
    if plan.smoke {
        println!("{}", report.smoke_summary());
    }
    Ok(())
}

/// Empties the work directory but keeps the mitmproxy venv (a download).
fn clean(work: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(work)?;
    for entry in std::fs::read_dir(work)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n == "venv") {
            continue;
        }
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Every scenario against `port` (inside `cgroup` when given), interleaved
/// run by run with the same scenario sent straight to the upstream; the
/// CPU time of `proxy` (a process and its children) over each run.
fn measure(
    setup: &Setup,
    scenarios: &'static [Scenario],
    config: &str,
    cgroup: Option<&Cgroup>,
    port: u16,
    proxy: u32,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for s in scenarios {
        let row = measure_one(setup, s, config, cgroup, port, proxy)
            .with_context(|| format!("{config}: {}", s.name))?;
        eprintln!(
            "xtask bench: {} [{config}]: direct {:.0}, {:.0}",
            s.name,
            row.direct().0,
            row.measured().0
        );
        rows.push(row);
    }
    Ok(rows)
}

fn measure_one(
    setup: &Setup,
    scenario: &'static Scenario,
    config: &str,
    cgroup: Option<&Cgroup>,
    port: u16,
    proxy: u32,
) -> anyhow::Result<Row> {
    let url = |p: u16| format!("https://127.0.0.1:{p}{}", scenario.path);
    let seconds = setup.plan.seconds;
    let mut direct: Vec<Figures> = Vec::new();
    let mut measured: Vec<Figures> = Vec::new();
    for _ in 0..setup.plan.runs {
        direct.push(wrk(None, scenario, &url(setup.port), setup.token, seconds)?);
        let before = airlock::tree_cpu_time(proxy)?;
        let mut figures = wrk(cgroup, scenario, &url(port), setup.token, seconds)?;
        figures.cpu = Some(airlock::tree_cpu_time(proxy)?.saturating_sub(before));
        measured.push(figures);
    }
    Ok(Row {
        scenario,
        config: config.to_owned(),
        direct,
        measured,
    })
}

/// mitmproxy, if it can be installed; otherwise the report says why not.
/// Its failures are noted, not fatal: it is the comparison, not the subject.
fn mitmproxy(setup: &Setup, bench_dir: &Path, report: &mut Report) {
    let result = (|| -> anyhow::Result<Vec<Row>> {
        let mitmdump = mitm::install(bench_dir).map_err(anyhow::Error::msg)?;
        report.mitm_mode = Some(mitm::local_mode(&mitmdump, setup.work));
        let port = free_port()?;
        let mitm = Guard(mitm::start(&mitmdump, setup.work, port, setup.port)?);
        let mut rows = Vec::new();
        for s in SCENARIOS {
            match measure_one(
                setup,
                s,
                "mitmproxy (reverse mode)",
                None,
                port,
                mitm.0.id(),
            ) {
                Ok(row) => rows.push(row),
                Err(e) => report
                    .notes
                    .push(format!("mitmproxy, {}: not measured ({e:#})", s.name)),
            }
        }
        if rows.is_empty() {
            bail!("every scenario failed");
        }
        Ok(rows)
    })();
    match result {
        Ok(rows) => report.rows.extend(rows),
        Err(e) => {
            let first = format!("{e:#}");
            let first = first.lines().next().unwrap_or_default();
            report
                .notes
                .push(format!("mitmproxy: not measured ({first})"));
        }
    }
}
