//! The report: one table of absolute figures and ratios against direct,
//! the probes, and each target of the issue with whether it is met.

use std::fmt::Write as _;
use std::time::Duration;

use super::Plan;
use super::airlock::Trail;
use super::handshakes::Handshakes;
use super::masking::MaskRate;
use super::openloop::OpenLoop;
use super::probes::{ConnectCost, Idle, median as median_of};
use super::stream::Streamed;
use super::wrk::{BIG, Figures, NEW, SMALL, Scenario, median};

/// One scenario under one configuration, with its direct runs.
pub(crate) struct Row {
    pub(crate) scenario: &'static Scenario,
    pub(crate) config: String,
    pub(crate) direct: Vec<Figures>,
    pub(crate) measured: Vec<Figures>,
}

impl Row {
    pub(crate) fn direct(&self) -> (f64, f64) {
        median(&self.direct, |f| self.scenario.throughput(f))
    }
    pub(crate) fn measured(&self) -> (f64, f64) {
        median(&self.measured, |f| self.scenario.throughput(f))
    }
    fn ratio(&self) -> f64 {
        self.measured().0 / self.direct().0
    }
    /// The proxy's CPU per request (µs), the median over the runs.
    pub(crate) fn cpu_us(&self) -> Option<f64> {
        let per: Vec<f64> = self
            .measured
            .iter()
            .filter_map(|f| Some(f.cpu?.as_secs_f64() * 1e6 / f.requests.max(1) as f64))
            .collect();
        (!per.is_empty()).then(|| median_of(&per).0)
    }
    fn latency(v: &[Figures]) -> (f64, f64) {
        (median(v, |f| f.p50_ms).0, median(v, |f| f.p99_ms).0)
    }
}

pub(crate) struct Report {
    plan: Plan,
    pub(crate) rows: Vec<Row>,
    pub(crate) trails: Vec<(&'static str, Trail)>,
    /// nginx re-encrypting: its CPU time and requests over its scenarios.
    pub(crate) nginx: Option<Trail>,
    pub(crate) idle: Option<Idle>,
    pub(crate) connect: Option<ConnectCost>,
    pub(crate) handshakes: Option<Handshakes>,
    pub(crate) masking: Vec<MaskRate>,
    pub(crate) stream: Option<Streamed>,
    /// Small requests at half the default's saturated rate, open loop.
    pub(crate) open_loop: Option<OpenLoop>,
    /// Why mitmproxy runs in reverse mode (what its local mode said).
    pub(crate) mitm_mode: Option<String>,
    pub(crate) notes: Vec<String>,
    elapsed: Duration,
    machine: String,
}

/// Targets from the issues. Small keep-alive requests: the default
/// configuration at nginx's ratio in the same run, `fsync` at this much of
/// it; airlock's CPU per request at most this many times nginx's.
const VS_NGINX_FSYNC: f64 = 0.75;
const CPU_VS_NGINX: f64 = 1.2;
const NEW_CONN_RATIO: f64 = 0.85;
const P99_RATIO: f64 = 3.0;
const BIG_RATIO: f64 = 0.5;
const VS_MITMPROXY: f64 = 40.0;
const IDLE_KIB: f64 = 20.0;
/// MB/s per core on 1 MiB JSON bodies.
const MASK_MB_S: f64 = 500.0;

impl Report {
    pub(crate) fn new(plan: Plan) -> Self {
        Self {
            plan,
            rows: Vec::new(),
            trails: Vec::new(),
            nginx: None,
            idle: None,
            connect: None,
            handshakes: None,
            masking: Vec::new(),
            stream: None,
            open_loop: None,
            mitm_mode: None,
            notes: Vec::new(),
            elapsed: Duration::ZERO,
            machine: String::new(),
        }
    }

    pub(crate) fn finish(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
        self.machine = super::sys::machine();
    }

    fn row(&self, scenario: &Scenario, config_prefix: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.scenario.name == scenario.name && r.config.starts_with(config_prefix))
    }

    pub(crate) fn markdown(&self) -> String {
        let mut t = String::from("# airlock benchmark\n\n");
        if self.plan.smoke {
            t.push_str(
                "**Smoke run**: one run of 1 s per measurement. It checks that the harness \
                 works; its timings mean nothing.\n\n",
            );
        }
        t.push_str(&self.table());
        self.method(&mut t);
        self.probes(&mut t);
        for note in &self.notes {
            let _ = writeln!(t, "- {note}");
        }
        if !self.plan.smoke {
            t.push_str("\n## Targets\n\n");
            for line in self.targets() {
                let _ = writeln!(t, "- {line}");
            }
        }
        let _ = writeln!(
            t,
            "\nMachine: {}. Bench wall time: {:.0} s.",
            self.machine,
            self.elapsed.as_secs_f64()
        );
        t
    }

    fn table(&self) -> String {
        let mut t = String::from(
            "| scenario | configuration | direct | through it | ratio | its CPU per request | its p50 / p99 ms | direct p50 / p99 ms |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let (d, ds) = r.direct();
            let (m, ms) = r.measured();
            let (mp50, mp99) = Row::latency(&r.measured);
            let (dp50, dp99) = Row::latency(&r.direct);
            let _ = writeln!(
                t,
                "| {} | {} | {d:.0} (±{ds:.0}) | {m:.0} (±{ms:.0}) | {:.2}× | {} | {mp50:.2} / {mp99:.2} | {dp50:.2} / {dp99:.2} |",
                r.scenario.name,
                r.config,
                r.ratio(),
                r.cpu_us().map_or("–".into(), |us| format!("{us:.1} µs"))
            );
        }
        t
    }

    fn method(&self, t: &mut String) {
        let trails: Vec<String> = self
            .trails
            .iter()
            .map(|(d, tr)| {
                let cpu = tr.cpu_per_request().as_secs_f64() * 1e6;
                if tr.records == 0 {
                    return format!(
                        "`{d}`: no trail, {} requests (wrk's count), airlock CPU {cpu:.1} µs per \
                         request (over all its scenarios)",
                        tr.requests
                    );
                }
                format!(
                    "`{d}`: {} records, {} requests (rotated files included), all with \
                     `identity.verified == true`, airlock CPU {cpu:.1} µs per request (over all \
                     its scenarios)",
                    tr.records, tr.requests,
                )
            })
            .collect();
        let _ = write!(
            t,
            "\nMedians of {} run(s) of {} s each (± half the spread), each interleaved with the same \
             load sent direct. Upstream: nginx (1 worker), TLS, on loopback; load: wrk (HTTP/1.1 \
             keep-alive unless noted) with a bearer JWT (ES256), inside the capture cgroup for \
             airlock. airlock: release build, full pipeline (capture, TLS interception both ways, \
             the JWT validated against a test issuer whose JWKS airlock fetched over TLS, shipped \
             policies, response masking, per-request audit); `queued`: the same with each \
             request record queued for the writer instead of waited for; masking off: the \
             same as `fsync` with one policy rule that allows everything with \
             `response = \"pass\"`; audit off: `audit.durability = \"off\"`, no record \
             serialised or written; audit trails: {}. nginx reverse proxy: its own \
             instance (one worker per core), TLS in, `proxy_ssl_verify on` out, upstream \
             keep-alive. mitmproxy: `mitmdump --mode reverse:` with the upstream verified \
             against the bench CA, default options ({}).\n\n",
            self.plan.runs,
            self.plan.seconds,
            trails.join("; "),
            self.mitm_mode.as_deref().unwrap_or("not run")
        );
    }

    fn probes(&self, t: &mut String) {
        if let Some(o) = &self.open_loop {
            let (d50, d99, d999) = OpenLoop::medians(&o.direct);
            let (a50, a99, a999) = OpenLoop::medians(&o.through);
            let _ = writeln!(
                t,
                "- Open-loop latency, small requests at a constant {:.0} req/s (half of its \
                 saturated rate above), 16 keep-alive connections, each request \
                 timed from when it was due (a stall counts against every request it delays), \
                 median of {} runs of {} s after 1 s of warm-up ({} requests counted in the \
                 last run through airlock): **direct p50 {d50:.2} / p99 \
                 {d99:.2} / p99.9 {d999:.2} ms; through {} p50 {a50:.2} / p99 \
                 {a99:.2} / p99.9 {a999:.2} ms — p99 {:.1}× direct's**.",
                o.rate,
                o.direct.len(),
                self.plan.seconds,
                o.through.last().map_or(0, |l| l.counted),
                o.config,
                a99 / d99
            );
            if !o.kernel.is_empty() {
                let held: Vec<String> = o
                    .kernel
                    .iter()
                    .take(4)
                    .map(|k| format!("{} {:.1} ms in {} runs", k.name, k.ms, k.runs))
                    .collect();
                let _ = writeln!(
                    t,
                    "  The kernel's own threads during the runs through airlock (a CPU they hold \
                     stalls what is queued on it; 1 ms or more): {}.",
                    held.join(", ")
                );
            }
            if !o.nginx.is_empty() {
                let (n50, n99, n999) = OpenLoop::medians(&o.nginx);
                let _ = writeln!(
                    t,
                    "  nginx re-encrypting at the same rate: p50 {n50:.2} / p99 {n99:.2} / p99.9 \
                     {n999:.2} ms — p99 {:.1}× direct's.",
                    n99 / d99
                );
            }
        }
        if let Some(s) = &self.stream {
            let med = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| {
                median_of(&v.iter().map(f).collect::<Vec<_>>()).0
            };
            let (df, tf) = (med(&s.direct, |x| x.0), med(&s.through, |x| x.0));
            let (dt, tt) = (med(&s.direct, |x| x.1), med(&s.through, |x| x.1));
            let cpu = median_of(
                &s.cpu
                    .iter()
                    .map(|c| c.as_secs_f64() * 1000.0)
                    .collect::<Vec<_>>(),
            )
            .0;
            let _ = writeln!(
                t,
                "- A model call: a {:.0} KB prompt (40 KB of it system prompt, 61 messages, 4 \
                 tools) answered by {} server-sent events {} ms apart (HTTP/1.1 chunked); airlock \
                 treats the host as a model API: prompt read whole, masked and summarised, every \
                 event masked and relayed as it comes, output reassembled on the side. Median of \
                 {}: **first event {df:.1} ms direct, {tf:.1} ms through airlock ({:+.1} ms \
                 added); whole stream {dt:.0} ms direct, {tt:.0} ms through airlock ({:+.1} ms); \
                 airlock CPU {cpu:.2} ms per call** (its threads' run time around each call, \
                 from `/proc/PID/task/*/schedstat`); the client received identical bytes both \
                 ways.",
                s.prompt_bytes as f64 / 1000.0,
                s.events,
                s.gap_ms,
                s.direct.len(),
                tf - df,
                tt - dt
            );
        }
        let stages: Vec<String> = [
            "`fsync`",
            "`written`",
            "`queued`",
            "masking off",
            "audit off",
        ]
        .iter()
        .filter_map(|label| {
            let r = self
                .rows
                .iter()
                .find(|r| r.scenario.name == SMALL.name && r.config.contains(label))?;
            Some(format!("{label} {:.2}×", r.ratio()))
        })
        .collect();
        if !stages.is_empty() {
            let _ = writeln!(
                t,
                "- What each stage costs, small requests against direct: {} (durability is the \
                 difference between `fsync`/`written` and `queued`; masking, between `fsync` \
                 and masking off; the rest of the audit, between `queued` and audit off).",
                stages.join(", ")
            );
        }
        if !self.masking.is_empty() {
            let cases: Vec<String> = self
                .masking
                .iter()
                .map(|r| match r.mb_s {
                    Some(mb) => format!("{} {mb:.0} MB/s ({} found per body)", r.case, r.findings),
                    None => format!("{} not scanned (no cost)", r.case),
                })
                .collect();
            let _ = writeln!(
                t,
                "- Masking, one core, 1 MiB bodies in 16 KiB chunks through the response masker \
                 (detectors and look-ahead; the `mask_throughput` example): **{}**.",
                cases.join("; ")
            );
        }
        if let Some(idle) = &self.idle {
            let _ = writeln!(
                t,
                "- Idle connections: airlock's VmRSS {} KiB after warm-up, {} KiB holding {} \
                 idle intercepted TLS connections: **{:.1} KiB per connection** (open file \
                 descriptors {} → {}); after one request on each (keep-alive, idle again) \
                 {} KiB: **{:.1} KiB per connection** ({} descriptors).",
                idle.before_kib,
                idle.after_kib,
                idle.conns,
                idle.per_conn_kib(),
                idle.fds.0,
                idle.fds.1,
                idle.after_use_kib,
                idle.per_used_conn_kib(),
                idle.fds.2
            );
        }
        if let Some(c) = &self.connect {
            let (off, off_s) = median_of(&c.without);
            let (on, on_s) = median_of(&c.with);
            let _ = writeln!(
                t,
                "- connect() + accept() + close() of a process airlock does not select \
                 (python3; airlock selects `wrk`), {} per sample, median of {}: \
                 **{off:.2} µs (±{off_s:.2}) without airlock, {on:.2} µs (±{on_s:.2}) with its \
                 programs attached: {:+.2} µs ({:+.1}%)**.",
                c.connects,
                c.with.len(),
                on - off,
                (on - off) / off * 100.0
            );
        }
        if let Some(h) = &self.handshakes {
            let (direct, direct_s) = median_of(&h.direct);
            let (warm, warm_s) = median_of(&h.warm);
            let (cold, cold_s) = median_of(&h.cold);
            let _ = writeln!(
                t,
                "- New TLS connections one at a time (python3: handshake, `GET /small.json` with \
                 the bearer token, close; {} per sample, median of {}): **direct {direct:.0}/s \
                 (±{direct_s:.0}); through airlock to one server name, its leaf minted once \
                 (cache warm), {warm:.0}/s (±{warm_s:.0}, {:.2}×); to a new name each time, a \
                 leaf minted per connection (cache cold), {cold:.0}/s (±{cold_s:.0}, {:.2}×)**: \
                 minting adds {:.2} ms to a connection.",
                h.per_sample,
                h.direct.len(),
                warm / direct,
                cold / direct,
                1000.0 / cold - 1000.0 / warm
            );
        }
    }

    /// Each target of the issue, with the figure and whether it is met.
    fn targets(&self) -> Vec<String> {
        let met = |ok: bool| if ok { "met" } else { "**missed**" };
        let mut out = Vec::new();
        let nginx = self.row(SMALL, "nginx reverse proxy").map(Row::ratio);
        for (durability, of_nginx) in [("written", 1.0), ("fsync", VS_NGINX_FSYNC)] {
            let cfg = format!("airlock, `{durability}`");
            if let Some(r) = self.row(SMALL, &cfg) {
                let ratio = r.ratio();
                out.push(match nginx {
                    Some(n) => format!(
                        "small keep-alive requests ≥ {of_nginx}× nginx's ratio ({:.2}×) \
                         ({durability}): {ratio:.2}× — {}",
                        n * of_nginx,
                        met(ratio >= n * of_nginx)
                    ),
                    None => format!(
                        "small keep-alive requests ({durability}): {ratio:.2}× direct — against \
                         nginx not evaluated (nginx not measured)"
                    ),
                });
                if let Some(o) = self
                    .open_loop
                    .as_ref()
                    .filter(|o| o.config.starts_with(&cfg))
                {
                    let p99 = OpenLoop::medians(&o.through).1 / OpenLoop::medians(&o.direct).1;
                    out.push(format!(
                        "small-request p99 at a constant half of the saturated rate ({:.0} \
                         req/s, open loop) ≤ {P99_RATIO}× direct's ({durability}): {p99:.1}× — {}",
                        o.rate,
                        met(p99 <= P99_RATIO)
                    ));
                }
                if let Some(m) = self.row(SMALL, "mitmproxy") {
                    let x = r.measured().0 / m.measured().0;
                    out.push(format!(
                        "≥ {VS_MITMPROXY}× mitmproxy on small requests ({durability}): {x:.1}× — {}",
                        met(x >= VS_MITMPROXY)
                    ));
                }
            }
            if let Some(r) = self.row(BIG, &cfg) {
                let ratio = r.ratio();
                out.push(format!(
                    "8 MiB bodies ≥ {BIG_RATIO}× direct ({durability}): {ratio:.2}× — {}",
                    met(ratio >= BIG_RATIO)
                ));
            }
            if let Some(r) = self.row(NEW, &cfg) {
                let ratio = r.ratio();
                out.push(format!(
                    "new TLS connection per request ≥ {NEW_CONN_RATIO}× direct ({durability}): \
                     {ratio:.2}× — {}",
                    met(ratio >= NEW_CONN_RATIO)
                ));
            }
        }
        let cpu = |config: &str| self.row(SMALL, config).and_then(Row::cpu_us);
        if let (Some(a), Some(n)) = (cpu("airlock, `written`"), cpu("nginx reverse proxy")) {
            out.push(format!(
                "airlock's CPU per small request ≤ {CPU_VS_NGINX}× nginx's (written; each over \
                 its small-request runs): {a:.1} µs against nginx's {n:.1} µs ({:.1}×) — {}",
                a / n,
                met(a <= CPU_VS_NGINX * n)
            ));
        }
        if self.row(SMALL, "mitmproxy").is_none() {
            out.push(format!(
                "≥ {VS_MITMPROXY}× mitmproxy: not evaluated (mitmproxy not measured)"
            ));
        }
        if let Some(idle) = &self.idle {
            let kib = idle.per_conn_kib();
            out.push(format!(
                "idle connection memory ≤ {IDLE_KIB} KiB each: {kib:.1} KiB — {}",
                met(kib <= IDLE_KIB)
            ));
        }
        for r in &self.masking {
            match r.mb_s {
                Some(mb) if r.case.starts_with("json") => out.push(format!(
                    "masking ≥ {MASK_MB_S} MB/s per core on 1 MiB JSON ({}): {mb:.0} MB/s — {}",
                    r.case,
                    met(mb >= MASK_MB_S)
                )),
                None => out.push(format!(
                    "no cost on bodies that cannot carry text secrets ({}): not scanned — met",
                    r.case
                )),
                Some(_) => {}
            }
        }
        if let Some(c) = &self.connect {
            let (off, off_s) = median_of(&c.without);
            let (on, on_s) = median_of(&c.with);
            // Within noise: the difference is no larger than the runs' own
            // spread.
            let noise = off_s.max(on_s);
            out.push(format!(
                "non-selected connect() overhead within noise: {:+.2} µs against ±{noise:.2} µs — {}",
                on - off,
                met((on - off).abs() <= noise)
            ));
        }
        out
    }

    /// The smoke run's verdict: what was exercised, and that it worked.
    pub(crate) fn smoke_summary(&self) -> String {
        let configs: std::collections::BTreeSet<&str> =
            self.rows.iter().map(|r| r.config.as_str()).collect();
        let verified: usize = self.trails.iter().map(|(_, t)| t.verified).sum();
        format!(
            "bench smoke: ok in {:.0} s — {} configurations × {} scenarios without errors; \
             {verified} requests recorded with a verified identity; {} idle TLS connections held \
             through airlock; {} connects timed with and without airlock; {} new TLS \
             connections through airlock, leaf cache warm and cold; masking run on {} body \
             kinds; a streamed model answer identical through airlock; {} requests at a \
             constant rate (open loop) through airlock without an error (no timing asserted)",
            self.elapsed.as_secs_f64(),
            configs.len(),
            super::wrk::SCENARIOS.len(),
            self.idle.as_ref().map_or(0, |i| i.conns),
            self.connect
                .as_ref()
                .map_or(0, |c| c.connects * c.with.len()),
            self.handshakes
                .as_ref()
                .map_or(0, |h| h.per_sample * (h.warm.len() + h.cold.len())),
            self.masking.len(),
            self.open_loop.as_ref().map_or(0, |o| o
                .through
                .iter()
                .map(|l| l.counted)
                .sum::<usize>()),
        )
    }
}
