//! Wiring the stages together: bind, open the audit log, attach capture,
//! serve until shutdown, then detach and drain.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::audit::{AuditError, AuditLog};
use crate::capture::{Capture, CaptureError, OrigDstTable, Targets};
use crate::config::Config;
use crate::core::addrs::ListenAddr;
use crate::core::record::AgentRecord;
use crate::gate::Gate;
use crate::identity::Identifier;
use crate::policy::{LivePolicy, PolicyError, PolicySource};
use crate::proxy::{Listeners, Proxy, ProxyError};
use crate::tls::{CertificateAuthority, ClientTls, LeafCache, TlsError, UpstreamTls};

/// How long in-flight connections may finish after shutdown is asked.
pub(crate) const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stop waits for the fleet and the syslog receiver to take
/// the last records, together (the systemd unit's stop timeout leaves
/// room for both drains).
const FLEET_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Egress(#[from] crate::egress::EgressError),
    #[error("policy: {0}")]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Mask(#[from] crate::mask::MaskError),
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    /// `[approval]` could not be set up (its webhook key).
    #[error("{0}")]
    Approval(String),
}

/// The addresses airlock actually bound (tests bind port 0 and read these).
#[derive(Clone, Copy, Debug)]
pub struct BoundAddrs {
    pub listen: ListenAddr,
    pub listen6: Option<ListenAddr>,
}

/// A built, attached, not yet serving airlock.
#[derive(Debug)]
pub struct App {
    addrs: BoundAddrs,
    listeners: Listeners,
    capture: Capture,
    audit: AuditLog,
    config: Config,
    client_tls: ClientTls,
    /// The CA's leaves, for a reload to switch CA after a rotation.
    leaves: Arc<LeafCache>,
    upstream_tls: Arc<UpstreamTls>,
    gate: Arc<Gate>,
    masker: crate::mask::Masker,
    approvals: Arc<crate::approval::Approvals>,
    admin: crate::admin::AdminServer,
    intercept: Arc<std::sync::RwLock<crate::host::InterceptList>>,
    telemetry: Arc<crate::telemetry::Telemetry>,
    /// Ships the trail to `[fleet]`, when set.
    shipper: Option<crate::fleet::Shipper>,
    /// Streams the trail to `[export.syslog]`, when set.
    exporter: Option<crate::export::Exporter>,
    /// Read again on SIGHUP (none: only the policies are reloaded).
    config_file: Option<std::path::PathBuf>,
}

/// How airlock reaches upstreams: verified against the system roots and
/// `tls.upstream_roots`, through `proxy.upstream_proxy` where it applies.
pub fn upstream_tls(config: &Config) -> Result<UpstreamTls, AppError> {
    Ok(UpstreamTls::new(&config.tls.upstream_roots)?
        .with_route(crate::egress::Route::from_config(&config.proxy)?))
}

/// Checks privileges and the capture cgroup, binds the listeners (a busy
/// port fails before anything is attached), opens the audit log, then
/// attaches capture pointing at the addresses actually bound.
pub async fn build(config: Config) -> Result<App, AppError> {
    crate::capture::preflight(&config.capture)?;
    match airlock_ebpf::raise_nofile_limit() {
        Ok(n) if (n as usize) < 2 * config.proxy.max_connections + 256 => {
            tracing::warn!(
                limit = n,
                max_connections = config.proxy.max_connections,
                "the open-file limit is below what proxy.max_connections needs (two per connection): raise LimitNOFILE or lower max_connections"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let policy = Arc::new(LivePolicy::new(PolicySource::configured(&config.policy))?);
    let masker = crate::mask::Masker::load_or_create(&config.masking.key_file)?;
    let listeners = Listeners::bind(&config.proxy).await?;
    let (listen, listen6) = listeners.addrs();
    let audit = AuditLog::open(&config.audit)?;
    // Made now, before anything is written: retention waits for shipping.
    let shipper = config
        .fleet
        .postgres
        .is_some()
        .then(|| crate::fleet::Shipper::new(config.fleet.clone(), audit.clone()));
    let exporter = config
        .export
        .syslog
        .clone()
        .map(|s| crate::export::Exporter::new(s, audit.clone()));
    let intercept = config.intercept();
    let ca = CertificateAuthority::load_or_create(&config.tls.ca_dir, &intercept)?;
    let uncovered = ca.uncovered(&intercept);
    if !uncovered.is_empty() {
        tracing::warn!(?uncovered, ca = %config.tls.ca_dir.display(),
            "intercepted names outside the CA's name constraints will be refused by clients: run `airlock ca init --force` and reinstall the CA");
    }
    // Published at every start: the system roots in the bundle change.
    let published = crate::tls::publish(&config.tls.public_dir, &ca)?.cert();
    let leaves = Arc::new(LeafCache::new(
        Arc::new(ca),
        crate::tls::DEFAULT_LEAF_CACHE,
    )?);
    let client_tls = ClientTls::new(leaves.clone())?;
    let upstream_tls = Arc::new(upstream_tls(&config)?);
    // With a fleet, holds are published there and decided from anywhere.
    let (board, decisions) = match &shipper {
        Some(s) => {
            let (board, decisions) =
                crate::fleet::Board::spawn(config.fleet.clone(), s.origin().clone());
            (Some(board), Some(decisions))
        }
        None => (None, None),
    };
    let approvals = crate::approval::Approvals::new(
        &config.approval,
        audit.clone(),
        upstream_tls.clone(),
        board,
    )
    .map_err(|e| AppError::Approval(e.to_string()))?;
    if let Some(decisions) = decisions {
        tokio::spawn(approvals.clone().follow_fleet(decisions));
    }
    // Bound now: a second airlock (a live socket) is an error before
    // anything is attached.
    let telemetry = Arc::new(crate::telemetry::Telemetry::default());
    let admin =
        crate::admin::AdminServer::bind(approvals.clone(), &config.admin, telemetry.clone())
            .await?;
    let gate = Arc::new(Gate::new(
        Identifier::new(&config.identity, upstream_tls.clone(), Default::default()),
        policy,
        crate::model::ModelHosts::new(&config.model),
    ));
    let targets = Targets {
        listen4: listen.0,
        listen6: listen6.map(|a| a.0),
        containers: listeners.containers().map(|a| a.0),
        self_tgid: std::process::id(),
        host_netns: listeners.netns_cookie(),
    };
    let capture = Capture::attach(&config.capture, &targets)?;
    let intercept = Arc::new(std::sync::RwLock::new(intercept));
    telemetry.attach(crate::telemetry::Sources {
        cgroup: capture.scope().describe(),
        cgroups: capture.attached_cgroups(),
        fail_closed: capture.fail_closed(),
        programs: capture.programs(),
        selectors: capture.selectors(),
        table: capture.table(),
        events: capture.event_counts(),
        listen: std::iter::once(listen.0)
            .chain(listen6.map(|a| a.0))
            .chain(listeners.containers().map(|a| a.0))
            .collect(),
        intercept: intercept.clone(),
        leaves: leaves.clone(),
        published,
        policy: gate.policy().clone(),
        audit: audit.clone(),
        fleet: shipper.as_ref().map(crate::fleet::Shipper::stats),
        syslog: exporter.as_ref().map(crate::export::Exporter::stats),
    });
    Ok(App {
        addrs: BoundAddrs { listen, listen6 },
        listeners,
        capture,
        audit,
        config,
        client_tls,
        leaves,
        upstream_tls,
        gate,
        masker,
        approvals,
        admin,
        intercept,
        telemetry,
        shipper,
        exporter,
        config_file: None,
    })
}

impl App {
    /// SIGHUP re-reads `path` and applies what can change live
    /// ([`crate::reload`]).
    pub fn with_config_file(mut self, path: std::path::PathBuf) -> Self {
        self.config_file = Some(path);
        self
    }

    pub fn addrs(&self) -> BoundAddrs {
        self.addrs
    }

    /// Kernel ids of the attached programs.
    pub fn program_ids(&self) -> Vec<u32> {
        self.capture.program_ids()
    }

    /// The table of captured connections (its entry counts show leaks).
    pub fn table(&self) -> Arc<OrigDstTable> {
        self.capture.table()
    }

    /// Serves until `shutdown` resolves, then detaches the programs (new
    /// connects go direct again), stops accepting, asks intercepted
    /// connections to close once their requests are done, and gives them
    /// [`DEFAULT_DRAIN_TIMEOUT`] to finish.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), AppError> {
        let cgroup = self.capture.scope().describe();
        let mut start = AgentRecord::new("start", Some(cgroup.clone()));
        start.weakened = self.config.weakened();
        for setting in &start.weakened {
            tracing::warn!(setting, "a security default is weakened");
        }
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .inspect_err(|e| tracing::warn!(error = %e, "no SIGHUP reloads"))
            .ok();
        self.audit.write_agent(&start)?;
        // On disk before READY: the trail's account of this run starts here.
        self.audit.sync().await?;
        // Not in `tasks`: at a stop it ships the last records before ending.
        let (stop_shipping, stopped) = tokio::sync::watch::channel(false);
        let shipping = self
            .shipper
            .take()
            .map(|s| tokio::spawn(s.run(stopped.clone())));
        let exporting = self.exporter.take().map(|e| tokio::spawn(e.run(stopped)));
        let mut tasks = JoinSet::new();
        self.gate.identifier().start_refresh();
        tasks.spawn(crate::reload::watch_policy(
            self.gate.policy().clone(),
            Duration::from_millis(self.config.policy.poll_ms),
            self.audit.clone(),
        ));
        let reloader = Arc::new(crate::reload::Reloader {
            path: self.config_file.clone(),
            current: std::sync::Mutex::new(self.config.clone()),
            gate: self.gate.clone(),
            selectors: self.capture.selectors(),
            intercept: self.intercept.clone(),
            tls: self.upstream_tls.clone(),
            leaves: self.leaves.clone(),
            audit: self.audit.clone(),
        });
        if let Some(hup) = hup {
            tasks.spawn(crate::reload::on_hup(reloader, hup));
        }
        tasks.spawn(self.admin.run(Some(self.capture.membership())));
        if let Some(events) = self.capture.take_events() {
            tasks.spawn(events.run());
        }
        if let Some(watch) = self.capture.watch() {
            tasks.spawn(watch);
        }
        let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
        let proxy = Arc::new(Proxy {
            table: self.capture.table(),
            processes: Default::default(),
            audit: self.audit.clone(),
            connect_timeout: Duration::from_millis(self.config.proxy.connect_timeout_ms),
            handshake_timeout: Duration::from_millis(self.config.proxy.handshake_timeout_ms),
            first_request_timeout: Duration::from_millis(
                self.config.proxy.first_request_timeout_ms,
            ),
            max_connections: self.config.proxy.max_connections,
            body_budget: crate::http::BodyBudget::new(self.config.proxy.body_buffer_bytes),
            response_idle: Some(Duration::from_millis(self.config.proxy.response_idle_ms))
                .filter(|d| !d.is_zero()),
            tunnel_idle: Some(Duration::from_millis(self.config.proxy.tunnel_idle_ms))
                .filter(|d| !d.is_zero()),
            intercept_without_sni: self.config.proxy.intercept_without_sni,
            non_tls: self.config.proxy.non_tls,
            imds: self.config.capture.imds.clone(),
            proxy_ports: self.config.capture.proxy_ports.clone(),
            intercept: self.intercept.clone(),
            on_audit_failure: self.config.audit.on_failure,
            client_tls: self.client_tls,
            upstream_tls: self.upstream_tls,
            pool: Arc::new(crate::http::UpstreamPool::new(Duration::from_millis(
                self.config.proxy.upstream_idle_ms,
            ))),
            gate: self.gate.clone(),
            masker: self.masker.clone(),
            approvals: self.approvals.clone(),
            excerpt_bytes: self.config.audit.body_excerpt_bytes,
            scan_before_forward: self.config.masking.scan_before_forward_bytes,
            telemetry: self.telemetry.clone(),
            stopping: stopping_rx,
        });
        let conns = Arc::new(Mutex::new(JoinSet::new()));
        self.listeners.serve(proxy, &mut tasks, conns.clone());
        tracing::info!(listen = %self.addrs.listen,
            listen6 = ?self.addrs.listen6.map(|a| a.0),
            audit = %self.audit.path().display(), "airlock ready");

        crate::notify::notify("READY=1");
        let (telemetry, audit, captured) =
            (self.telemetry.clone(), self.audit.clone(), cgroup.clone());
        tasks.spawn(crate::notify::heartbeat(move || {
            format!(
                "capturing {captured}: {} requests, {} connections open, audit {}",
                telemetry.traffic.requests(),
                telemetry.traffic.open_connections(),
                if audit.stats().healthy {
                    "writable"
                } else {
                    "NOT WRITABLE (requests refused)"
                }
            )
        }));

        shutdown.await;
        crate::notify::notify("STOPPING=1");
        tracing::info!("shutting down: detaching programs");
        drop(self.capture);
        tasks.shutdown().await;
        // Intercepted connections finish their requests and close, so idle
        // keep-alive clients do not hold the drain until its deadline.
        let _ = stopping.send(true);
        let mut conns = std::mem::take(&mut *conns.lock().await);
        let drained = tokio::time::timeout(DEFAULT_DRAIN_TIMEOUT, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                open = conns.len(),
                "closing connections still open after the drain timeout"
            );
            conns.shutdown().await;
        }
        self.audit
            .write_agent(&AgentRecord::new("stop", Some(cgroup)))?;
        self.audit.close().await?;
        // An ephemeral runner is gone after this: its last records, the
        // stop record among them, go now if the database and the syslog
        // receiver are there.
        let _ = stop_shipping.send(true);
        let drain = async {
            if let Some(shipping) = shipping
                && tokio::time::timeout(FLEET_DRAIN_TIMEOUT, shipping)
                    .await
                    .is_err()
            {
                tracing::warn!(
                    "fleet: records not shipped within the stop's deadline; the next start ships them"
                );
            }
        };
        let export = async {
            if let Some(exporting) = exporting
                && tokio::time::timeout(FLEET_DRAIN_TIMEOUT, exporting)
                    .await
                    .is_err()
            {
                tracing::warn!(
                    "syslog: records not delivered within the stop's deadline; the next start sends them"
                );
            }
        };
        tokio::join!(drain, export);
        tracing::info!("stopped");
        Ok(())
    }
}
