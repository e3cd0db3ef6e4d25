//! The audit trail under stress: a full disk fails closed, kill -9 loses
//! nothing that was forwarded, and the chain verifies afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_tests::daemon::{airlock_bin, records, spawn, wait_for, write_tls_config};
use airlock_tests::pki::TestPki;
use airlock_tests::tls_upstream::TlsUpstream;
use airlock_tests::{Running, TempDir, TestCgroup, finish, privileged};
use serde_json::Value;

const NAME: &str = "audit.airlock-test.azure.com";

/// A tmpfs of `kib` KiB mounted by this test, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, kib: u32) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "airlock-test",
                dir.to_str().unwrap(),
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs at {}", dir.display());
        Self(dir.to_owned())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn upstream_config(pki: &TestPki) -> std::sync::Arc<rustls::ServerConfig> {
    pki.server_config(&[NAME], &[b"http/1.1"])
}

/// One curl as the agent (`nobody`, `airlock ca env`'s variables for the
/// files published in `public`), `n` sequential requests on one keep-alive
/// connection; prints each status code on its own line.
fn curl_many(cg: &TestCgroup, port: u16, public: &Path, n: usize) -> tokio::process::Command {
    let mut cmd = airlock_tests::agent::client(cg, public, "curl");
    cmd.args(["-sS", "--max-time", "60", "-w", "%{http_code}\n"])
        .args(["--resolve", &format!("{NAME}:{port}:127.0.0.1")])
        // A fat header makes each record big, so the disk fills quickly.
        .args(["-H", &format!("x-padding: {}", "p".repeat(1500))]);
    for i in 0..n {
        // -o applies to one URL: each needs its own.
        cmd.args(["-o", "/dev/null"])
            .arg(format!("https://{NAME}:{port}/info?n={i}"));
    }
    cmd
}

fn request_records(all: &[Value]) -> usize {
    all.iter()
        .filter(|r| r["kind"] == "http" && r["phase"] == "request")
        .count()
}

fn verify(files: &[PathBuf]) -> std::process::Output {
    let mut cmd = Command::new(airlock_bin());
    cmd.args(["audit", "verify"]).args(files);
    cmd.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_fails_closed_with_503_and_forwards_nothing_unaudited() {
    if !privileged("full_disk_fails_closed_with_503_and_forwards_nothing_unaudited") {
        return;
    }
    let tmp = TempDir::new("fulldisk");
    let disk = SmallDisk::mount(&tmp.path().join("disk"), 96);
    let pki = TestPki::new("full disk upstream CA");
    let roots = pki.write_ca(tmp.path());
    let up = TlsUpstream::start(upstream_config(&pki), &["127.0.0.1:0".parse().unwrap()]).await;
    let cg = TestCgroup::new("fulldisk");
    let audit = disk.0.join("audit.jsonl");
    let airlock = Running::start_with(Running::capture(&cg, &[up.port()]), |c| {
        c.tls.upstream_roots = vec![roots];
        c.audit.path = audit.clone();
    })
    .await;

    let out = finish(curl_many(&cg, up.port(), airlock.public_dir(), 150)).await;
    let codes: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(codes.len(), 150, "{out:?}");
    let first_503 = codes.iter().position(|c| *c == "503").unwrap_or_else(|| {
        panic!(
            "no 503: {codes:?} {:?} {}",
            std::fs::metadata(&audit).map(|m| m.len()),
            out.stderr
        )
    });
    assert!(first_503 > 0, "some requests fit before the disk filled");
    assert!(
        codes[first_503..].iter().all(|c| *c == "503"),
        "nothing is forwarded once the log fails: {codes:?}"
    );

    // Every request the upstream saw has a durable request record.
    let on_disk = records(&audit);
    assert!(
        request_records(&on_disk) as u64 >= up.requests(),
        "{} records, {} forwarded",
        request_records(&on_disk),
        up.requests()
    );
    assert_eq!(
        up.requests() as usize,
        first_503,
        "exactly the audited requests were forwarded"
    );
    let v = verify(std::slice::from_ref(&audit));
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    drop(airlock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_then_restart_keeps_the_chain_and_every_forwarded_request() {
    if !privileged("kill_9_under_load_then_restart_keeps_the_chain_and_every_forwarded_request") {
        return;
    }
    let dir = TempDir::new("kill9");
    let cg = TestCgroup::new("kill9");
    let pki = TestPki::new("kill -9 upstream CA");
    let up = TlsUpstream::start(upstream_config(&pki), &["127.0.0.1:0".parse().unwrap()]).await;
    let config = write_tls_config(dir.path(), cg.path(), up.port(), &pki.write_ca(dir.path()));
    let audit = dir.path().join("audit.jsonl");
    let start = || spawn(&config);
    let started =
        |n: usize| move |r: &[Value]| r.iter().filter(|r| r["event"] == "start").count() >= n;

    let mut daemon = start();
    wait_for(&audit, started(1)).await;
    let public = dir.path().join("public");
    // Load from four clients, then kill -9 in the middle of it.
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..4 {
        load.spawn(finish(curl_many(&cg, up.port(), &public, 400)));
    }
    let deadline = tokio::time::Instant::now() + airlock_tests::WAIT;
    while up.requests() < 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "load never reached the upstream"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    load.join_all().await;
    let forwarded = up.requests();

    // Restart: the chain continues and a new request is recorded.
    let daemon = start();
    wait_for(&audit, started(2)).await;
    let out = finish(curl_many(&cg, up.port(), &public, 1)).await;
    assert_eq!(out.stdout.trim(), "200", "{out:?}");
    wait_for(&audit, |r| {
        r.iter().any(|r| {
            r["kind"] == "http"
                && r["phase"] == "response"
                && r["request"]["query"] == "n=0"
                && r["seq"].as_u64() > Some(1)
        })
    })
    .await;
    // Stopped as an operator would, so its programs are unpinned.
    drop(daemon);

    let all = records(&audit);
    assert!(
        request_records(&all) as u64 > forwarded,
        "{} request records, {forwarded} forwarded before the kill",
        request_records(&all)
    );
    let v = verify(std::slice::from_ref(&audit));
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("OK: "));

    // And an edit is named by line, with a failing exit status.
    let text = std::fs::read_to_string(&audit).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replacen("\"GET\"", "\"PUT\"", 1);
    std::fs::write(&audit, lines.join("\n") + "\n").unwrap();
    let v = verify(std::slice::from_ref(&audit));
    assert!(!v.status.success());
    let err = String::from_utf8_lossy(&v.stderr);
    assert!(err.contains("audit.jsonl:3: hash mismatch"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_said_once_and_export_joins_it_across_rotation() {
    if !privileged("a_connection_is_said_once_and_export_joins_it_across_rotation") {
        return;
    }
    let tmp = TempDir::new("lean");
    let pki = TestPki::new("lean trail upstream CA");
    let roots = pki.write_ca(tmp.path());
    let up = TlsUpstream::start(upstream_config(&pki), &["127.0.0.1:0".parse().unwrap()]).await;
    let cg = TestCgroup::new("lean");
    // Kept after airlock stops (its own directory goes with it).
    let audit = tmp.path().join("audit.jsonl");
    let airlock = Running::start_with(Running::capture(&cg, &[up.port()]), |c| {
        c.tls.upstream_roots = vec![roots];
        c.audit.path = audit.clone();
        // Small files: the connection's session record is in an earlier
        // file than most of its exchanges.
        c.audit.rotate_bytes = 4096;
    })
    .await;
    // Twelve requests on one keep-alive connection, by one curl.
    let out = finish(curl_many(&cg, up.port(), airlock.public_dir(), 12)).await;
    assert_eq!(
        out.stdout.lines().filter(|l| *l == "200").count(),
        12,
        "{out:?}"
    );
    airlock.exchanges(12).await;
    airlock.stop().await;

    let files = airlock::trail(&audit);
    assert!(files.len() >= 3, "rotated: {files:?}");
    let raw: Vec<Value> = files.iter().flat_map(|f| records(f)).collect();
    let sessions: Vec<&Value> = raw.iter().filter(|r| r["kind"] == "session").collect();
    assert_eq!(sessions.len(), 1, "one connection, one session record");
    let session = sessions[0];
    assert_eq!(session["process"]["pid"], out.pid, "{session}");
    assert_eq!(session["tls"]["sni"], NAME);
    let http: Vec<&Value> = raw.iter().filter(|r| r["kind"] == "http").collect();
    assert_eq!(http.len(), 24);
    for r in &http {
        assert_eq!(r["session"], session["id"], "{r}");
        assert!(
            r.get("process").is_none() && r.get("tls").is_none(),
            "said once: {r}"
        );
    }
    for r in http.iter().filter(|r| r["phase"] == "response") {
        assert!(
            r.get("identity").is_none() && r["request"].get("method").is_none(),
            "a response record says only what is new: {r}"
        );
    }
    let last = records(files.last().unwrap());
    assert!(
        last.iter().all(|r| r["kind"] != "session") && last.iter().any(|r| r["kind"] == "http"),
        "the last file's exchanges name a session written in an earlier file"
    );

    // `airlock audit export`, as a tool outside airlock reads the trail.
    let exported = Command::new(airlock_bin())
        .args(["audit", "export"])
        .args(&files)
        .output()
        .unwrap();
    assert!(exported.status.success(), "{exported:?}");
    let joined: Vec<Value> = String::from_utf8(exported.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let exchanges: Vec<&Value> = joined.iter().filter(|r| r["kind"] == "http").collect();
    assert_eq!(exchanges.len(), 12, "one object per exchange");
    assert!(joined.iter().all(|r| r["kind"] != "session"));
    for (i, r) in exchanges.iter().enumerate() {
        assert_eq!(r["phase"], "response");
        assert_eq!(r["process"]["pid"], out.pid, "{r}");
        assert_eq!(r["process"]["uid"], 65534);
        assert_eq!(r["src"], session["src"]);
        assert_eq!(r["tls"]["sni"], NAME);
        assert_eq!(r["request"]["method"], "GET");
        assert_eq!(r["request"]["query"], format!("n={i}"));
        assert!(r["request"]["headers"]["x-padding"].is_string(), "{r}");
        assert_eq!(r["request"]["body"]["bytes"], 0);
        assert_eq!(r["response"]["status"], 200);
        assert_eq!(r["decision"]["action"], "allow");
        assert!(r.get("session_missing").is_none(), "{r}");
    }
    // Every item says where it was written, under one trail across the
    // rotations: what a fleet store or a SIEM receiving it keys on.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let trail = &joined[0]["origin"]["trail"];
    assert_eq!(trail.as_str().map(str::len), Some(32), "{}", joined[0]);
    // The host's machine id only as airlock's app-specific id, as systemd
    // would derive it, never the id itself.
    let machine_id = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    let expected = if machine_id.trim().is_empty() {
        Value::Null
    } else {
        let out = Command::new("systemd-id128")
            .args([
                "machine-id",
                "--app-specific=49315033707944d19cc4a56f5c1826f4",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        Value::from(String::from_utf8(out.stdout).unwrap().trim())
    };
    assert_ne!(joined[0]["origin"]["machine_id"], machine_id.trim());
    for r in &joined {
        assert_eq!(r["origin"]["machine_id"], expected, "{r}");
        assert_eq!(r["origin"]["trail"], *trail, "{r}");
        assert_eq!(r["origin"]["host"], host.trim(), "{r}");
        assert_eq!(r["schema"], 1, "{r}");
    }
    assert!(
        joined.iter().any(|r| r["event"] == "start") && joined.iter().any(|r| r["event"] == "stop"),
        "other records pass through"
    );
    // Without the file holding the session, an exchange says what it lacks.
    let orphaned = Command::new(airlock_bin())
        .args(["audit", "export"])
        .arg(files.last().unwrap())
        .output()
        .unwrap();
    let orphaned = String::from_utf8(orphaned.stdout).unwrap();
    let first: Value = orphaned
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["kind"] == "http")
        .unwrap();
    assert_eq!(first["session_missing"], true, "{first}");
}
