//! airlock built and served in-process, on free ports, with its audit log
//! in a temp dir.

use std::path::PathBuf;
use std::sync::Arc;

use airlock::OrigDstTable;
use airlock::{AppError, BoundAddrs};
use airlock::{CaptureConfig, Config};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{TempDir, WAIT};

#[derive(Debug)]
pub struct Running {
    pub addrs: BoundAddrs,
    pub program_ids: Vec<u32>,
    pub audit_path: PathBuf,
    pub ca_dir: PathBuf,
    public_dir: PathBuf,
    admin_socket: PathBuf,
    table: Arc<OrigDstTable>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), AppError>>,
    _dir: TempDir,
}

impl Running {
    /// Starts airlock with `capture`, listeners on 127.0.0.1:0 and [::1]:0.
    pub async fn start(capture: CaptureConfig) -> Self {
        Self::start_with(capture, |_| {}).await
    }

    /// As [`Running::start`], relaying plain TCP (`proxy.non_tls =
    /// "relay"`): for the tests of capture itself, whose upstreams speak
    /// plain HTTP.
    pub async fn start_plain(capture: CaptureConfig) -> Self {
        Self::start_with(capture, |c| c.proxy.non_tls = airlock::NonTls::Relay).await
    }

    /// As [`Running::start`], with `adjust` applied to the config last.
    pub async fn start_with(capture: CaptureConfig, adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = TempDir::new("run");
        // Reachable by the agent's uid, as /var/lib/airlock is: it reads
        // the published CA under it (the CA key, the trail and the admin
        // socket keep their own modes).
        crate::agent::public(dir.path());
        let mut config = Config {
            capture,
            ..Config::default()
        };
        config.proxy.listen = "127.0.0.1:0".parse().unwrap();
        config.proxy.listen6 = Some("[::1]:0".parse().unwrap());
        config.audit.path = dir.path().join("audit.jsonl");
        config.tls.ca_dir = dir.path().join("ca");
        config.tls.public_dir = dir.path().join("public");
        config.masking.key_file = dir.path().join("masking.key");
        config.admin.socket = dir.path().join("admin.sock");
        adjust(&mut config);
        let app = airlock::build(config.clone())
            .await
            .unwrap_or_else(|e| panic!("airlock build: {e}"));
        let (stop, stopped) = oneshot::channel();
        let addrs = app.addrs();
        let program_ids = app.program_ids();
        let table = app.table();
        let task = tokio::spawn(app.run(async {
            let _ = stopped.await;
        }));
        Self {
            addrs,
            program_ids,
            audit_path: config.audit.path,
            ca_dir: config.tls.ca_dir,
            public_dir: config.tls.public_dir,
            admin_socket: config.admin.socket,
            table,
            stop,
            task,
            _dir: dir,
        }
    }

    /// The admin API's socket.
    pub fn admin_socket(&self) -> PathBuf {
        self.admin_socket.clone()
    }

    /// airlock's CA certificate (PEM) as published for clients to trust
    /// (`tls.public_dir`, readable by every user).
    pub fn ca_cert(&self) -> PathBuf {
        airlock::PublicFiles::new(&self.public_dir).cert()
    }

    /// `tls.public_dir`: what `airlock ca env` points clients at.
    pub fn public_dir(&self) -> &std::path::Path {
        &self.public_dir
    }

    /// `program` in `cg` as the agent runs it: as `nobody`, trusting
    /// airlock with exactly the environment `airlock ca env` prints.
    pub fn client(&self, cg: &crate::TestCgroup, program: &str) -> tokio::process::Command {
        crate::agent::client(cg, &self.public_dir, program)
    }

    /// Records of one `kind`, waiting until there are at least `n`.
    pub async fn records_of(&self, kind: &str, n: usize) -> Vec<Value> {
        self.wait_for(n, |r| r["kind"] == kind).await
    }

    /// The records `keep` selects, once there are at least `n` (or at the
    /// deadline, whatever there is).
    async fn wait_for(&self, n: usize, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
        let all = crate::daemon::wait_for(&self.audit_path, |r| {
            r.iter().filter(|r| keep(r)).count() >= n
        })
        .await;
        all.into_iter().filter(|r| keep(r)).collect()
    }

    /// Capture config for `cgroup` capturing `ports`, everything else default.
    pub fn capture(cgroup: &crate::TestCgroup, ports: &[u16]) -> CaptureConfig {
        CaptureConfig {
            cgroup: vec![cgroup.path().to_owned()],
            ports: ports.to_vec(),
            ..CaptureConfig::default()
        }
    }

    /// Every audit record written so far.
    pub fn records(&self) -> Vec<Value> {
        crate::daemon::records(&self.audit_path)
    }

    /// Every record of the whole trail: the rotated files, oldest first,
    /// then the current one.
    pub fn trail_records(&self) -> Vec<Value> {
        airlock::trail(&self.audit_path)
            .iter()
            .flat_map(|file| crate::daemon::records(file))
            .collect()
    }

    /// Completed HTTP exchanges, each joined with its session and request
    /// record as `airlock audit export` prints it, waiting until there are
    /// at least `n`.
    pub async fn exchanges(&self, n: usize) -> Vec<Value> {
        crate::daemon::wait_for_exchanges(&self.audit_path, n).await
    }

    /// Connection records, waiting until there are at least `n`.
    pub async fn connections(&self, n: usize) -> Vec<Value> {
        self.records_of("connection", n).await
    }

    /// Processes the kernel tracks for `follow_children`.
    pub fn tracked_processes(&self) -> usize {
        self.table.tracked_processes()
    }

    /// (by-cookie, by-peer) entries in the kernel maps.
    pub fn map_entries(&self) -> (usize, usize) {
        self.table.entries()
    }

    /// Stops airlock and returns once its programs are detached.
    pub async fn stop(self) -> Vec<Value> {
        let _ = self.stop.send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("airlock stops in time")
            .expect("airlock task")
            .expect("airlock run");
        crate::daemon::records(&self.audit_path)
    }
}
