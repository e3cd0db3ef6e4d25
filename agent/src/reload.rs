//! SIGHUP (`systemctl reload airlock`): the config file is read again and
//! what can change without a restart is applied — the `[capture]` selection
//! (comm, uid, ports, follow_children, follow_depth), `proxy.intercept`,
//! `[identity]`, `[policy]` — then the policies are reloaded, and the CA
//! is read again (after `airlock ca rotate`: the new one mints, and the
//! published files are rebuilt). A file that
//! fails to load is rejected (`FILE:LINE:COL: reason`, logged and audited)
//! and nothing changes. Changed settings that need a restart (listeners,
//! the audit trail, the capture cgroup and fail mode, upstream roots and
//! the upstream proxy, approvals and the admin socket, masking, model hosts) are named
//! in the record and the log.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use crate::audit::AuditLog;
use crate::capture::Selectors;
use crate::config::Config;
use crate::core::record::AgentRecord;
use crate::core::{lock, write_lock};
use crate::gate::Gate;
use crate::host::InterceptList;
use crate::identity::Identifier;
use crate::policy::{LivePolicy, Reloaded};
use crate::tls::{CertificateAuthority, LeafCache, UpstreamTls};

/// Everything a reload may touch.
#[derive(Debug)]
pub(crate) struct Reloader {
    /// The file to read again; none (in-process use): policies only.
    pub path: Option<PathBuf>,
    pub current: Mutex<Config>,
    pub gate: Arc<Gate>,
    pub selectors: Arc<Mutex<Selectors>>,
    pub intercept: Arc<RwLock<InterceptList>>,
    pub tls: Arc<UpstreamTls>,
    pub leaves: Arc<LeafCache>,
    pub audit: AuditLog,
}

impl Reloader {
    /// Re-reads the config (if there is a file) and the policies, applies
    /// what changed, and audits the outcome. Blocking file reads: call it
    /// from a blocking context.
    pub(crate) fn reload(&self) {
        if let Some(path) = &self.path {
            match Config::load(path) {
                Ok(new) => self.apply(new),
                Err(e) => {
                    tracing::error!(error = %e, "new config rejected; the running one stays");
                    let mut record = AgentRecord::new("config_rejected", None);
                    record.detail = Some(e.to_string());
                    self.write(&record);
                    return;
                }
            }
        }
        let outcome = self.gate.policy().reload();
        report_policy(&outcome, &self.audit);
        self.reload_ca();
    }

    /// Switches to the CA now in `tls.ca_dir` if it changed (a rotation
    /// started or finished); one that fails to load changes nothing.
    fn reload_ca(&self) {
        let (dir, public) = {
            let c = lock(&self.current);
            (c.tls.ca_dir.clone(), c.tls.public_dir.clone())
        };
        let running = self.leaves.ca();
        let ca = match CertificateAuthority::load(&dir) {
            Ok(ca) => ca,
            Err(e) => {
                tracing::error!(error = %e, "the CA could not be read again; the running one stays");
                let mut record = AgentRecord::new("ca_rejected", None);
                record.detail = Some(e.to_string());
                self.write(&record);
                return;
            }
        };
        if ca.fingerprint() == running.fingerprint() && ca.rotating() == running.rotating() {
            return;
        }
        let detail = format!(
            "minting with {}; {}",
            ca.fingerprint(),
            if ca.rotating() {
                "the previous CA is still trusted (rotation under way)"
            } else {
                "only it is trusted"
            }
        );
        // Clients must be able to trust it before it mints.
        if let Err(e) = crate::tls::publish(&public, &ca) {
            tracing::error!(error = %e, "the new CA could not be published; the running one stays");
            let mut record = AgentRecord::new("ca_rejected", None);
            record.detail = Some(e.to_string());
            self.write(&record);
            return;
        }
        self.leaves.replace_ca(ca);
        tracing::info!("{detail}");
        let mut record = AgentRecord::new("ca_reload", None);
        record.detail = Some(detail);
        self.write(&record);
    }

    fn apply(&self, mut new: Config) {
        let mut current = lock(&self.current);
        let mut applied = Vec::new();
        let mut restart = Vec::new();
        // The proxy serves the metadata addresses it started with; the
        // kernel must capture exactly those until a restart.
        if new.capture.imds != current.capture.imds {
            restart.push("capture.imds");
            new.capture.imds = current.capture.imds.clone();
        }
        // Likewise the proxy ports it answers CONNECT on.
        if new.capture.proxy_ports != current.capture.proxy_ports {
            restart.push("capture.proxy_ports");
            new.capture.proxy_ports = current.capture.proxy_ports.clone();
        }
        let selection_changed = {
            let (a, b) = (&current.capture, &new.capture);
            (&a.comm, &a.uid, &a.ports, a.follow_children, a.follow_depth)
                != (&b.comm, &b.uid, &b.ports, b.follow_children, b.follow_depth)
        };
        if selection_changed {
            let mut selectors = lock(&self.selectors);
            match selectors.apply(&new.capture) {
                Ok(()) => applied.push("capture selection"),
                Err(e) => tracing::error!(error = %e, "capture selection not updated"),
            }
        }
        if current.proxy.intercept != new.proxy.intercept {
            *write_lock(&self.intercept) = new.intercept();
            applied.push("proxy.intercept");
            tracing::warn!(
                "proxy.intercept changed: names outside the CA's constraints need `airlock ca init --force`"
            );
        }
        if current.identity != new.identity {
            let links = self.gate.identifier().links().clone();
            self.gate
                .set_identifier(Identifier::new(&new.identity, self.tls.clone(), links));
            applied.push("identity");
        }
        if current.policy.dir != new.policy.dir {
            let source = crate::policy::PolicySource::configured(&new.policy);
            report_policy(&self.gate.policy().set_source(source), &self.audit);
            applied.push("policy.dir");
        }
        let (a, b) = (&current, &new);
        for (name, same) in [
            ("capture.cgroup", a.capture.cgroup == b.capture.cgroup),
            (
                "capture.fail_mode",
                a.capture.fail_mode == b.capture.fail_mode,
            ),
            ("capture.pin_dir", a.capture.pin_dir == b.capture.pin_dir),
            (
                "capture.max_tracked",
                a.capture.max_tracked == b.capture.max_tracked,
            ),
            (
                "proxy.listen",
                a.proxy.listen == b.proxy.listen && a.proxy.listen6 == b.proxy.listen6,
            ),
            (
                "proxy timeouts",
                a.proxy.connect_timeout_ms == b.proxy.connect_timeout_ms
                    && a.proxy.handshake_timeout_ms == b.proxy.handshake_timeout_ms
                    && a.proxy.first_request_timeout_ms == b.proxy.first_request_timeout_ms
                    && a.proxy.response_idle_ms == b.proxy.response_idle_ms
                    && a.proxy.upstream_idle_ms == b.proxy.upstream_idle_ms
                    && a.proxy.tunnel_idle_ms == b.proxy.tunnel_idle_ms,
            ),
            (
                "proxy limits",
                a.proxy.max_connections == b.proxy.max_connections
                    && a.proxy.body_buffer_bytes == b.proxy.body_buffer_bytes,
            ),
            (
                "proxy.intercept_without_sni",
                a.proxy.intercept_without_sni == b.proxy.intercept_without_sni,
            ),
            ("proxy.non_tls", a.proxy.non_tls == b.proxy.non_tls),
            (
                "proxy.upstream_proxy",
                a.proxy.upstream_proxy == b.proxy.upstream_proxy
                    && a.proxy.upstream_proxy_password_file == b.proxy.upstream_proxy_password_file
                    && a.proxy.no_proxy == b.proxy.no_proxy,
            ),
            ("tls", a.tls == b.tls),
            ("audit", a.audit == b.audit),
            ("policy.poll_ms", a.policy.poll_ms == b.policy.poll_ms),
            ("approval", a.approval == b.approval),
            ("admin", a.admin == b.admin),
            ("masking", a.masking == b.masking),
            ("model", a.model == b.model),
            ("fleet", a.fleet == b.fleet),
            ("export", a.export == b.export),
        ] {
            if !same {
                restart.push(name);
            }
        }
        if !restart.is_empty() {
            tracing::warn!(
                ?restart,
                "changed settings that take effect at the next restart"
            );
        }
        tracing::info!(?applied, "config reloaded");
        let mut record = AgentRecord::new("config_reload", None);
        record.detail = Some(format!(
            "applied: {}; needs a restart: {}",
            list(&applied),
            list(&restart)
        ));
        self.write(&record);
        // What needs a restart keeps its running value, so the next reload
        // compares against what is really in force.
        let mut kept = new;
        kept.capture.cgroup = current.capture.cgroup.clone();
        kept.capture.fail_mode = current.capture.fail_mode;
        kept.capture.pin_dir = current.capture.pin_dir.clone();
        kept.capture.max_tracked = current.capture.max_tracked;
        kept.proxy.listen = current.proxy.listen;
        kept.proxy.listen6 = current.proxy.listen6;
        kept.proxy.connect_timeout_ms = current.proxy.connect_timeout_ms;
        kept.proxy.handshake_timeout_ms = current.proxy.handshake_timeout_ms;
        kept.proxy.upstream_idle_ms = current.proxy.upstream_idle_ms;
        kept.proxy.tunnel_idle_ms = current.proxy.tunnel_idle_ms;
        kept.proxy.first_request_timeout_ms = current.proxy.first_request_timeout_ms;
        kept.proxy.response_idle_ms = current.proxy.response_idle_ms;
        kept.proxy.max_connections = current.proxy.max_connections;
        kept.proxy.body_buffer_bytes = current.proxy.body_buffer_bytes;
        kept.proxy.intercept_without_sni = current.proxy.intercept_without_sni;
        kept.proxy.non_tls = current.proxy.non_tls;
        kept.proxy.upstream_proxy = current.proxy.upstream_proxy.clone();
        kept.proxy.upstream_proxy_password_file =
            current.proxy.upstream_proxy_password_file.clone();
        kept.proxy.no_proxy = current.proxy.no_proxy.clone();
        kept.tls = current.tls.clone();
        kept.audit = current.audit.clone();
        kept.policy.poll_ms = current.policy.poll_ms;
        kept.approval = current.approval.clone();
        kept.admin = current.admin.clone();
        kept.masking = current.masking.clone();
        kept.model = current.model.clone();
        kept.fleet = current.fleet.clone();
        kept.export = current.export.clone();
        *current = kept;
    }

    fn write(&self, record: &AgentRecord) {
        if let Err(e) = self.audit.write_agent(record) {
            tracing::error!(error = %e, "audit record of a reload lost");
        }
    }
}

fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "nothing".to_owned()
    } else {
        items.join(", ")
    }
}

/// Logs and audits a policy reload (a rejected one leaves the previous
/// policy live).
pub(crate) fn report_policy(outcome: &Reloaded, audit: &AuditLog) {
    let mut record = AgentRecord::new("policy_reload", None);
    match outcome {
        Reloaded::Applied {
            rules,
            files,
            version,
        } => {
            tracing::info!(rules, ?files, version, "policy reloaded");
            record.detail = Some(format!(
                "version {version}: {rules} rules from {}",
                files.join(", ")
            ));
        }
        Reloaded::Rejected(e) => {
            tracing::error!(error = %e, "new policy rejected; the previous one stays live");
            record.event = "policy_rejected";
            record.detail = Some(e.to_string());
        }
    }
    if let Err(e) = audit.write_agent(&record) {
        tracing::error!(error = %e, "audit record of a policy reload lost");
    }
}

/// Reloads on every SIGHUP until the task is dropped. `hup` is registered
/// by the caller before readiness is announced, so a SIGHUP never finds the
/// process without a handler (which would end it).
pub(crate) async fn on_hup(reloader: Arc<Reloader>, mut hup: tokio::signal::unix::Signal) {
    while hup.recv().await.is_some() {
        let r = reloader.clone();
        let _ = tokio::task::spawn_blocking(move || r.reload()).await;
    }
}

/// Reloads the policies when their directory changes (every `poll`).
pub(crate) async fn watch_policy(
    policy: Arc<LivePolicy>,
    poll: std::time::Duration,
    audit: AuditLog,
) {
    policy
        .watch(poll, move |outcome| report_policy(outcome, &audit))
        .await;
}
