//! What the admin API says about the running airlock: the `status`
//! snapshot (capture, listeners, CA, policy, audit chain head, approvals)
//! and the Prometheus metrics, composed from their owners when asked.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::approval::Approvals;
use crate::audit::AuditStats;
use crate::core::lock;
use crate::core::read_lock;
use crate::telemetry::{Exposition, Sources, Telemetry};

/// `GET /v1/status`: everything an operator checks first.
pub(super) fn status(telemetry: &Telemetry, approvals: &Approvals) -> serde_json::Value {
    let mut v = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "started": humantime::format_rfc3339_seconds(telemetry.started_at()).to_string(),
        "uptime_s": telemetry.uptime().as_secs(),
        "approvals": approvals.status(),
        "traffic": {
            "requests": telemetry.traffic.requests(),
            "connections_open": telemetry.traffic.open_connections(),
            "tls_client_refused": telemetry.traffic.clients_refused(),
        },
    });
    if let Some(s) = telemetry.sources() {
        let selected = lock(&s.selectors).current().map(|c| {
            serde_json::json!({
                "comm": c.comm, "uid": c.uid, "ports": c.ports,
                "follow_children": c.follow_children, "follow_depth": c.follow_depth,
            })
        });
        let (sockets, handed_over) = s.table.entries();
        let policy = s.policy.current();
        v["capture"] = serde_json::json!({
            "cgroup": s.cgroup,
            "cgroups": s.cgroups.paths(),
            "fail_mode": if s.fail_closed { "closed" } else { "open" },
            "programs": s.programs.iter()
                .map(|(name, id)| serde_json::json!({ "name": name, "id": id }))
                .collect::<Vec<_>>(),
            "selection": selected,
            "tracked_processes": s.table.tracked_processes(),
            "tracked_sockets": sockets,
            "awaiting_accept": handed_over,
            "redirects": s.events.redirects.load(Ordering::Relaxed),
            // Children that could not be tracked: every process in the
            // cgroup is captured since (fail closed).
            "untracked_children": s.events.untracked.load(Ordering::Relaxed),
            "netns_refused": s.events.netns_refused.load(Ordering::Relaxed),
        });
        v["proxy"] = serde_json::json!({
            "listen": s.listen,
            "intercept": read_lock(&s.intercept)
                .patterns().iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        v["ca"] = serde_json::json!(s.ca());
        v["policy"] = serde_json::json!({
            "source": match s.policy.source() {
                crate::policy::PolicySource::Embedded => "embedded".to_owned(),
                crate::policy::PolicySource::Dir(d) => d.display().to_string(),
            },
            "version": policy.version(),
            "files": policy.files(),
            "rules": policy.rules().len(),
            "loaded": humantime::format_rfc3339_seconds(policy.loaded_at()).to_string(),
        });
        let stats = s.audit.stats();
        if let Some(fleet) = &s.fleet {
            v["fleet"] = fleet.status(stats.seq);
        }
        if let Some(syslog) = &s.syslog {
            v["export"] = serde_json::json!({ "syslog": syslog.status(stats.seq) });
        }
        let mut audit = serde_json::json!(stats);
        audit["path"] = serde_json::json!(s.audit.path());
        v["audit"] = audit;
    }
    v["privileges"] = match crate::confine::Privileges::read() {
        Ok(p) => serde_json::json!(p),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    v
}

/// `GET /metrics`.
pub(super) fn metrics(telemetry: &Telemetry, approvals: &Approvals) -> String {
    let mut out = Exposition::default();
    out.header(
        "airlock_build_info",
        "Always 1; the version is a label.",
        "gauge",
    );
    out.sample(
        "airlock_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    out.gauge(
        "airlock_start_time_seconds",
        "When this airlock started (Unix time).",
        telemetry
            .started_at()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    telemetry.traffic.write(&mut out);
    approvals_metrics(approvals, &mut out);
    if let Some(s) = telemetry.sources() {
        sources_metrics(s, &mut out);
    }
    out.finish()
}

fn sources_metrics(s: &Sources, out: &mut Exposition) {
    let e = &s.events;
    out.counter(
    "airlock_kernel_events_total",
    "Events from the capture programs: connects redirected to airlock; UDP, IPv6 and other network namespaces' connects refused.",
    &[
        (&[("event", "redirect")], e.redirects.load(Ordering::Relaxed)),
        (&[("event", "udp_refused")], e.udp_refused.load(Ordering::Relaxed)),
        (&[("event", "ipv6_refused")], e.v6_refused.load(Ordering::Relaxed)),
        (&[("event", "untracked")], e.untracked.load(Ordering::Relaxed)),
        (&[("event", "netns_refused")], e.netns_refused.load(Ordering::Relaxed)),
    ],
);
    let (sockets, handed_over) = s.table.entries();
    let name = "airlock_bpf_map_entries";
    out.header(
    name,
    "Entries in the capture maps now (sockets tracked, connections awaiting accept, processes followed); steady growth is a leak.",
    "gauge",
);
    for (map, n) in [
        ("by_cookie", sockets),
        ("by_peer", handed_over),
        ("tracked", s.table.tracked_processes()),
    ] {
        out.sample(name, &[("map", map)], n);
    }
    out.gauge(
        "airlock_bpf_programs",
        "Capture programs attached.",
        s.programs.len() as u64,
    );
    let a: AuditStats = s.audit.stats();
    out.gauge(
        "airlock_audit_healthy",
        "1 while the audit log is writable; 0 while writes fail (requests are refused then).",
        u64::from(a.healthy),
    );
    out.gauge(
        "airlock_audit_seq",
        "Sequence number of the last record on disk.",
        a.seq,
    );
    out.counter(
        "airlock_audit_records_total",
        "Records sealed into the chain and written.",
        &[(&[], a.records)],
    );
    out.counter(
        "airlock_audit_bytes_total",
        "Bytes written to the audit log.",
        &[(&[], a.bytes)],
    );
    out.counter(
        "airlock_audit_fsyncs_total",
        "fsync calls on the audit log.",
        &[(&[], a.fsyncs)],
    );
    out.counter(
        "airlock_audit_write_failures_total",
        "Batches that could not be written.",
        &[(&[], a.write_failures)],
    );
    if let Some(fleet) = &s.fleet {
        out.gauge(
            "airlock_fleet_connected",
            "1 while the fleet's PostgreSQL takes the trail.",
            u64::from(fleet.connected()),
        );
        out.gauge(
            "airlock_fleet_shipped_seq",
            "The last seq the fleet's database holds.",
            fleet.shipped_seq(),
        );
        out.gauge(
            "airlock_fleet_lag_records",
            "Records on disk the fleet's database does not hold yet.",
            fleet.lag(a.seq),
        );
        out.counter(
            "airlock_fleet_chain_breaks_total",
            "Places the local chain did not verify as it was shipped.",
            &[(&[], fleet.breaks())],
        );
    }
    if let Some(syslog) = &s.syslog {
        syslog_metrics(syslog, a.seq, out);
    }
    let policy = s.policy.current();
    out.header(
        "airlock_policy_info",
        "Always 1; the policy version (content digest) is a label.",
        "gauge",
    );
    out.sample("airlock_policy_info", &[("version", policy.version())], 1);
    out.gauge(
        "airlock_policy_rules",
        "Rules in the policy in force.",
        policy.rules().len() as u64,
    );
    if let Some(t) = s.ca().not_after
        && let Ok(d) = t.duration_since(SystemTime::UNIX_EPOCH)
    {
        out.gauge(
            "airlock_ca_not_after_seconds",
            "When the local CA expires (Unix time); clients refuse its leaves after.",
            d.as_secs(),
        );
    }
}

/// The syslog exporter's figures.
fn syslog_metrics(syslog: &crate::export::ExportStats, local_seq: u64, out: &mut Exposition) {
    out.gauge(
        "airlock_syslog_connected",
        "1 while the syslog receiver is connected.",
        u64::from(syslog.connected()),
    );
    out.gauge(
        "airlock_syslog_delivered_seq",
        "Every message through this seq is delivered to the syslog receiver.",
        syslog.delivered_seq(),
    );
    out.gauge(
        "airlock_syslog_lag_records",
        "Records on disk not yet delivered to the syslog receiver.",
        syslog.lag(local_seq),
    );
    out.counter(
        "airlock_syslog_messages_total",
        "Syslog messages made (each once, however often it is sent).",
        &[(&[], syslog.messages())],
    );
    out.counter(
        "airlock_syslog_truncated_total",
        "Syslog messages cut to export.syslog.max_message_bytes.",
        &[(&[], syslog.truncated())],
    );
    out.counter(
        "airlock_syslog_dropped_total",
        "Syslog messages lost for good: a UDP send refused, a RELP receiver's refusal.",
        &[(&[], syslog.dropped())],
    );
}

/// The approval figures: held now, how holds ended, grants in force.
fn approvals_metrics(approvals: &Approvals, out: &mut Exposition) {
    let status = approvals.status();
    out.gauge(
        "airlock_approvals_held",
        "Requests waiting for a human now.",
        status.held as u64,
    );
    let samples: Vec<([(&str, &str); 1], u64)> = approvals
        .outcome_totals()
        .into_iter()
        .map(|(outcome, n)| ([("outcome", outcome)], n))
        .collect();
    let samples: Vec<(&[(&str, &str)], u64)> = samples.iter().map(|(l, v)| (&l[..], *v)).collect();
    out.counter(
        "airlock_approvals_total",
        "Held requests by how they ended (used: let through by a grant).",
        &samples,
    );
    out.gauge(
        "airlock_grants_active",
        "Approval grants in force now.",
        status.grants as u64,
    );
}
