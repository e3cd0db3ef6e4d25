//! Syslog for the SIEM: a daemon under real capture streams its trail to a
//! real rsyslogd (Debian's, started by the test) while an agent's curl
//! calls go through it; the receiver is killed mid-stream and started
//! again, and every exchange and event of the local trail (as `airlock
//! audit export` joins it) arrives at least once — over RELP, and over
//! TLS verified against the test CA; a record over the cap arrives cut,
//! as valid JSON.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use airlock_tests::daemon::{
    Daemon, airlock_bin, exported, small_trail, spawn, terminate, wait_for,
};
use airlock_tests::rsyslog::{Input, Received};
use airlock_tests::{Rsyslog, TempDir, TestCgroup, TestPki, TlsUpstream, finish, privileged};
use serde_json::Value;

const NAME: &str = "syslog.airlock-test.azure.com";

/// A daemon exporting to `target`, its agent's cgroup and upstream.
struct Host {
    dir: TempDir,
    cg: TestCgroup,
    up: TlsUpstream,
    config: PathBuf,
}

impl Host {
    async fn new(tag: &str, pki: &TestPki, syslog: &str) -> Self {
        let extra = format!("[export.syslog]\n{syslog}");
        let (dir, cg, up, config) = small_trail(tag, pki, &[NAME], &extra).await;
        Self {
            dir,
            cg,
            up,
            config,
        }
    }

    fn audit(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    async fn start(&self) -> Daemon {
        let daemon = spawn(&self.config);
        wait_for(&self.audit(), |r| r.iter().any(|r| r["event"] == "start")).await;
        daemon
    }

    /// `n` requests from the agent (`nobody`), on one connection.
    async fn load(&self, n: usize, tag: &str) {
        let mut cmd = self.curl();
        for i in 0..n {
            cmd.args(["-o", "/dev/null"])
                .arg(format!("https://{NAME}:{}/info?{tag}={i}", self.up.port()));
        }
        let out = finish(cmd).await;
        let ok = out.stdout.lines().filter(|l| *l == "200").count();
        assert_eq!(ok, n, "{out:?}");
    }

    fn curl(&self) -> tokio::process::Command {
        let public = self.dir.path().join("public");
        let mut cmd = airlock_tests::agent::client(&self.cg, &public, "curl");
        cmd.args(["-sS", "--max-time", "60", "-w", "%{http_code}\n"])
            .args(["--resolve", &format!("{NAME}:{}:127.0.0.1", self.up.port())]);
        cmd
    }

    fn status(&self) -> Value {
        let out = Command::new(airlock_bin())
            .args(["status", "--json", "--config"])
            .arg(&self.config)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("status JSON: {out:?}"))
    }
}

/// Waits until every exchange and event of the local trail has arrived
/// (by trail and seq, duplicates allowed); what arrived.
async fn all_arrive(rsyslog: &Rsyslog, audit: &Path) -> Vec<Received> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let local = exported(audit);
        let want: BTreeSet<(String, u64)> = local
            .iter()
            .map(|r| {
                let trail = r["origin"]["trail"].as_str().unwrap().to_owned();
                (trail, r["seq"].as_u64().unwrap())
            })
            .collect();
        let got = rsyslog.received();
        let have: BTreeSet<(String, u64)> = got.iter().map(|m| (m.trail.clone(), m.seq)).collect();
        let missing: Vec<_> = want.difference(&have).collect();
        if missing.is_empty() {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} messages never arrived, first {:?}",
            missing.len(),
            want.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `n` requests while the receiver is killed and, a second later,
/// started again.
async fn load_through_a_crash(host: &Host, rsyslog: &mut Rsyslog, n: usize) {
    let traffic = host.load(n, "during");
    let outage = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        rsyslog.kill();
        tokio::time::sleep(Duration::from_secs(1)).await;
        rsyslog.resume();
    };
    tokio::join!(traffic, outage);
}

fn exchanges(received: &[Received]) -> Vec<&Value> {
    received
        .iter()
        .map(|m| &m.record)
        .filter(|r| r["kind"] == "http")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relp_delivers_every_exchange_across_a_receiver_crash() {
    if !privileged("relp_delivers_every_exchange_across_a_receiver_crash") {
        return;
    }
    let dir = TempDir::new("syslog-relp");
    let pki = TestPki::new("syslog test CA");
    let mut rsyslog = Rsyslog::start(dir.path(), Input::Relp, &pki);
    let host = Host::new(
        "syslog-relp-host",
        &pki,
        &format!("target = {:?}\n", rsyslog.target()),
    )
    .await;
    let mut daemon = host.start().await;
    host.load(20, "before").await;
    all_arrive(&rsyslog, &host.audit()).await;

    // Killed: messages it did not answer go again; those it answered are
    // on disk (its queue is direct, docs/audit.md).
    load_through_a_crash(&host, &mut rsyslog, 150).await;
    host.load(10, "after").await;
    let received = all_arrive(&rsyslog, &host.audit()).await;
    let http = exchanges(&received);
    assert!(http.len() >= 180, "{} exchanges", http.len());
    for r in &http {
        // Joined: the session's process, the request, the response.
        assert_eq!(r["process"]["comm"], "curl", "{r}");
        assert_eq!(r["request"]["method"], "GET", "{r}");
        assert_eq!(r["response"]["status"], 200, "{r}");
        assert!(r.get("session_missing").is_none(), "{r}");
    }
    let status = host.status();
    let syslog = &status["export"]["syslog"];
    assert_eq!(syslog["connected"], true, "{status}");
    assert_eq!(syslog["target"], rsyslog.target().as_str());

    // Stopped, the daemon delivers its last records, the stop record too.
    terminate(&mut daemon).await;
    let received = all_arrive(&rsyslog, &host.audit()).await;
    assert!(
        received
            .iter()
            .any(|m| m.record["kind"] == "agent" && m.record["event"] == "stop")
    );
    assert!(
        airlock::trail(&host.audit()).len() > 1,
        "the trail rotated during the test"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_resends_after_a_crash_and_caps_messages() {
    if !privileged("tls_is_verified_resends_after_a_crash_and_caps_messages") {
        return;
    }
    let dir = TempDir::new("syslog-tls");
    let pki = TestPki::new("syslog test CA");
    let mut rsyslog = Rsyslog::start(dir.path(), Input::Tls, &pki);
    let host = Host::new(
        "syslog-tls-host",
        &pki,
        &format!(
            "target = {:?}\ntls_roots = {:?}\nmax_message_bytes = 4096\n",
            rsyslog.target(),
            rsyslog.ca()
        ),
    )
    .await;
    let mut daemon = host.start().await;
    host.load(10, "before").await;
    all_arrive(&rsyslog, &host.audit()).await;

    // Killed: what it had read and not written is lost with it, and
    // resent from the last seconds of the stream.
    load_through_a_crash(&host, &mut rsyslog, 100).await;
    // A body whose excerpt alone is over the cap.
    let mut post = host.curl();
    post.args(["-o", "/dev/null", "-H", "content-type: text/plain"])
        .args(["--data-binary", &"a".repeat(6000)])
        .arg(format!("https://{NAME}:{}/count", host.up.port()));
    let out = finish(post).await;
    assert_eq!(out.stdout.trim(), "200", "{out:?}");
    let received = all_arrive(&rsyslog, &host.audit()).await;
    let http = exchanges(&received);
    assert!(http.len() >= 111, "{} exchanges", http.len());
    let big = http
        .iter()
        .find(|r| r["request"]["method"] == "POST")
        .expect("the POST arrived");
    assert_eq!(big["truncated"], true, "{big}");
    assert!(big["request"]["body"].get("excerpt").is_none(), "{big}");
    assert_eq!(big["request"]["body"]["bytes"], 6000, "{big}");
    assert_eq!(big["response"]["status"], 200, "{big}");
    assert_eq!(big["process"]["comm"], "curl", "{big}");
    let status = host.status();
    assert!(
        status["export"]["syslog"]["truncated"].as_u64() >= Some(1),
        "{status}"
    );
    terminate(&mut daemon).await;
}
