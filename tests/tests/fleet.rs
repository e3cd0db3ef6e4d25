//! The fleet: two hosts ship their trails into one real PostgreSQL
//! (Debian's, started by the test, TLS verified), through a database
//! outage; every local record arrives exactly once, each chain verifies
//! there, searches find each host's exchanges, and a host's database role
//! cannot read or write another host's trail.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_tests::daemon::{Daemon, airlock_bin, records, small_trail, terminate, wait_for};
use airlock_tests::held::ARM;
use airlock_tests::postgres::OWNER;
use airlock_tests::{Postgres, TempDir, TestCgroup, TestPki, TlsUpstream, finish, privileged};
use serde_json::Value;

const NAME: &str = "fleet.airlock-test.azure.com";

/// One host: a daemon under its own host name (a UTS namespace of its
/// own), shipping as database role `role`, capturing `cg`.
struct Host {
    dir: TempDir,
    cg: TestCgroup,
    up: TlsUpstream,
    config: PathBuf,
    name: &'static str,
}

impl Host {
    async fn new(name: &'static str, pki: &TestPki, pg: &Postgres, role: &str) -> Self {
        // The host's own approver, for when the fleet is away.
        let extra = format!(
            "{}[approval]\napprovers = [\"root\"]\n",
            pg.fleet_section(role)
        );
        let (dir, cg, up, config) = small_trail(name, pki, &[NAME, ARM], &extra).await;
        Self {
            dir,
            cg,
            up,
            config,
            name,
        }
    }

    fn audit(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    fn start(&self) -> Daemon {
        let script = format!(
            "hostname {} && exec {} run --log-level error --config {}",
            self.name,
            airlock_bin().display(),
            self.config.display()
        );
        Daemon(
            tokio::process::Command::new("unshare")
                .args(["--uts", "--", "sh", "-c", &script])
                .kill_on_drop(true)
                .spawn()
                .expect("start airlock"),
        )
    }

    /// `n` requests from the agent (`nobody`), on one connection.
    async fn load(&self, n: usize, tag: &str) {
        let public = self.dir.path().join("public");
        let mut cmd = airlock_tests::agent::client(&self.cg, &public, "curl");
        cmd.args(["-sS", "--max-time", "60", "-w", "%{http_code}\n"])
            .args(["--resolve", &format!("{NAME}:{}:127.0.0.1", self.up.port())]);
        for i in 0..n {
            cmd.args(["-o", "/dev/null"])
                .arg(format!("https://{NAME}:{}/info?{tag}={i}", self.up.port()));
        }
        let out = finish(cmd).await;
        assert_eq!(
            out.stdout.lines().filter(|l| *l == "200").count(),
            n,
            "{out:?}"
        );
    }

    /// The agent's `az group delete`, waiting for its answer: the status.
    fn delete(&self) -> tokio::task::JoinHandle<String> {
        let public = self.dir.path().join("public");
        airlock_tests::held::delete_from(&self.cg, &public, &self.up)
    }

    fn local_lines(&self) -> Vec<String> {
        airlock::trail(&self.audit())
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn trail_id(&self) -> String {
        records(&self.audit())[0]["origin"]["trail"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Edits, in place, the last request record of `audit` (the current
/// file) as someone covering their tracks would: `GET` becomes `PUT`.
/// Returns its seq.
fn tamper(audit: &Path) -> u64 {
    use std::os::unix::fs::FileExt;
    let text = std::fs::read_to_string(audit).unwrap();
    let mut at = 0;
    let mut found = None;
    for line in text.split_inclusive('\n') {
        if line.contains("\"phase\":\"request\"") && line.contains("\"GET\"") {
            found = Some((at, line));
        }
        at += line.len();
    }
    let (start, line) = found.expect("a request record to edit");
    let offset = start + line.find("\"GET\"").unwrap() + 1;
    let f = std::fs::OpenOptions::new().write(true).open(audit).unwrap();
    // Same length, so nothing after it moves.
    f.write_all_at(b"PUT", offset as u64).unwrap();
    let record: Value = serde_json::from_str(line.trim_end()).unwrap();
    record["seq"].as_u64().unwrap()
}

fn airlock(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(airlock_bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits until the database holds every line of `host`'s trail.
async fn shipped(pg: &Postgres, host: &Host) -> usize {
    let trail = host.trail_id();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let local = host.local_lines().len();
        let there: usize = pg
            .value(
                OWNER,
                &format!("SELECT count(*) FROM airlock_records WHERE trail = '{trail}'"),
            )
            .parse()
            .unwrap();
        if there == local {
            return local;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: {there} of {local} records shipped",
            host.name
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_ship_every_record_once_through_an_outage_and_stay_in_their_lanes() {
    if !privileged("two_hosts_ship_every_record_once_through_an_outage_and_stay_in_their_lanes") {
        return;
    }
    let dir = TempDir::new("fleet");
    let pki = TestPki::new("fleet test CA");
    let mut pg = Postgres::start(dir.path(), &pki);

    // The owner creates the schema; a second run has nothing to do.
    let owner = dir.path().join("owner.toml");
    std::fs::write(&owner, pg.fleet_section(OWNER)).unwrap();
    let out = airlock(&owner, &["fleet", "migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("version 2 (was 0)"), "{}", text(&out));
    let out = airlock(&owner, &["fleet", "migrate"]);
    assert!(text(&out).contains("nothing to do"), "{}", text(&out));
    pg.role("runner_a", "airlock_host");
    pg.role("runner_b", "airlock_host");
    pg.role("auditor", "airlock_reader");
    let auditor = dir.path().join("auditor.toml");
    std::fs::write(&auditor, pg.fleet_section("auditor")).unwrap();

    let a = Host::new("runner-a", &pki, &pg, "runner_a").await;
    let b = Host::new("runner-b", &pki, &pg, "runner_b").await;
    let mut da = a.start();
    let mut db = b.start();
    for h in [&a, &b] {
        wait_for(&h.audit(), |r| r.iter().any(|r| r["event"] == "start")).await;
    }
    tokio::join!(a.load(30, "before"), b.load(20, "before"));
    shipped(&pg, &a).await;

    // The database goes down mid-stream; traffic goes on, unhindered.
    pg.crash();
    tokio::join!(a.load(200, "during"), b.load(100, "during"));
    let status = airlock(&a.config, &["status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["fleet"]["connected"], false, "{status}");
    assert!(
        status["fleet"]["lag_records"].as_u64() > Some(0),
        "{status}"
    );
    // Meanwhile a record not shipped yet is edited in runner-b's file:
    // the shipper finds the break as it ships it.
    let edited_seq = tamper(&b.audit());
    pg.resume();
    tokio::join!(a.load(10, "after"), b.load(10, "after"));
    shipped(&pg, &a).await;
    shipped(&pg, &b).await;
    let status = airlock(&a.config, &["status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["fleet"]["connected"], true, "{status}");
    assert_eq!(status["fleet"]["chain_breaks"], 0, "{status}");
    let status = airlock(&b.config, &["status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["fleet"]["chain_breaks"], 1, "{status}");
    let breaks = pg.value(
        OWNER,
        &format!(
            "SELECT seq || ' ' || reason FROM airlock_chain_breaks WHERE trail = '{}'",
            b.trail_id()
        ),
    );
    assert_eq!(
        breaks,
        format!("{edited_seq} hash mismatch: the record was edited")
    );

    // Stopped, each ships its last records (the stop record) before it ends.
    terminate(&mut da).await;
    terminate(&mut db).await;
    for h in [&a, &b] {
        let local = h.local_lines();
        assert!(local.last().unwrap().contains("\"event\":\"stop\""));
        let trail = h.trail_id();
        let there = pg.value(
            OWNER,
            &format!("SELECT string_agg(line, E'\\n' ORDER BY seq) FROM airlock_records WHERE trail = '{trail}'"),
        );
        assert!(
            there == local.join("\n"),
            "{}: the database holds exactly the local records, each once ({} lines there, {} here)",
            h.name,
            there.lines().count(),
            local.len()
        );
        assert!(
            airlock::trail(&h.audit()).len() > 1,
            "{}: the trail rotated during the test",
            h.name
        );
        // The shipped chain verifies, from any machine with the reader
        // role; runner-b's shows where its own file was edited.
        let out = airlock(
            &auditor,
            &["audit", "verify", "--fleet", "--origin", h.name],
        );
        if h.name == "runner-a" {
            assert!(out.status.success(), "{}", text(&out));
            assert!(
                text(&out).contains(&format!("OK: trail {trail} of {}", h.name)),
                "{}",
                text(&out)
            );
        } else {
            assert!(!out.status.success(), "{}", text(&out));
            assert!(
                text(&out).contains("BROKEN")
                    && text(&out).contains("hash mismatch")
                    && text(&out).contains("1 chain break(s) were found in the host's own file"),
                "{}",
                text(&out)
            );
        }
    }

    // Search: each host's exchanges, joined, found by host and filters.
    let out = airlock(
        &auditor,
        &[
            "audit", "search", "--fleet", "--origin", "runner-b", "--comm", "curl", "--status",
            "200", "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let found: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(found.len(), 130, "every exchange of runner-b, once");
    for r in &found {
        assert_eq!(r["origin"]["host"], "runner-b");
        assert_eq!(r["process"]["comm"], "curl", "joined with its session: {r}");
        assert_eq!(r["response"]["status"], 200);
    }
    // The copy is the host's file, edit included: the chain says so.
    let puts = found
        .iter()
        .filter(|r| r["request"]["method"] == "PUT")
        .count();
    assert_eq!(puts, 1);
    let out = airlock(&auditor, &["audit", "search", "--fleet", "--kind", "http"]);
    let table = text(&out);
    assert!(
        table.contains("\nrunner-a ") && table.contains("\nrunner-b "),
        "{table}"
    );
    let out = airlock(
        &auditor,
        &["audit", "search", "--fleet", "--origin", "runner-a"],
    );
    let table = text(&out);
    assert!(
        table.contains("\nrunner-a ") && !table.contains("\nrunner-b "),
        "{table}"
    );

    // Row-level security: a host's role sees and writes only its own trail.
    let (ta, tb) = (a.trail_id(), b.trail_id());
    let seen = pg.value(
        "runner_b",
        "SELECT count(DISTINCT trail) FROM airlock_records",
    );
    assert_eq!(seen, "1", "runner_b reads only its own trail");
    let seen = pg.value(
        "runner_b",
        &format!("SELECT count(*) FROM airlock_exchanges WHERE trail = '{ta}'"),
    );
    assert_eq!(seen, "0");
    let forged = pg.sql(
        "runner_b",
        &format!(r#"INSERT INTO airlock_records (trail, seq, line) VALUES ('{ta}', 999999, '{{"seq":999999}}')"#),
    );
    assert!(!forged.status.success());
    assert!(
        text(&forged).contains("row-level security"),
        "{}",
        text(&forged)
    );
    let moved = pg.value(
        "runner_b",
        &format!("UPDATE airlock_trails SET shipped_seq = 0 WHERE trail = '{ta}' RETURNING trail"),
    );
    assert_eq!(moved, "", "another host's trail cannot be touched");
    let stolen = pg.sql(
        "runner_b",
        "INSERT INTO airlock_trails (trail, owner, host) VALUES ('00000000000000000000000000000000', 'runner_a', 'runner-a')",
    );
    assert!(
        !stolen.status.success(),
        "a host cannot register a trail for another role"
    );
    let edited = pg.sql(
        "runner_b",
        &format!("UPDATE airlock_records SET line = line WHERE trail = '{tb}'"),
    );
    assert!(
        !edited.status.success(),
        "shipped records are never rewritten, even by their host"
    );
    let written = pg.sql(
        "auditor",
        &format!("DELETE FROM airlock_records WHERE trail = '{ta}'"),
    );
    assert!(!written.status.success(), "readers only read");

    // The server is verified: a database whose certificate another CA
    // signed is refused, and a URL that would not verify is refused at load.
    let other = TempDir::new("fleet-other-ca");
    let wrong_ca = TestPki::new("not the database's CA").write_ca(other.path());
    let wrong = other.path().join("wrong.toml");
    let url = pg.url("auditor").replace(
        &format!("sslrootcert={}", pg.ca().display()),
        &format!("sslrootcert={}", wrong_ca.display()),
    );
    std::fs::write(
        &wrong,
        format!(
            "[fleet]\npostgres = {url:?}\npassword_file = {:?}\n",
            pg.password_file()
        ),
    )
    .unwrap();
    let out = airlock(&wrong, &["audit", "search", "--fleet"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("TLS handshake"), "{}", text(&out));
    std::fs::write(
        &wrong,
        format!(
            "[fleet]\npostgres = \"{}&sslmode=require\"\n",
            pg.url("auditor")
        ),
    )
    .unwrap();
    let out = airlock(&wrong, &["audit", "search", "--fleet"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("wrong.toml:2")
            && text(&out).contains("sslmode=require does not verify"),
        "{}",
        text(&out)
    );

    // An edit in the database is found by the fleet's verify.
    let out = pg.sql(
        OWNER,
        &format!("UPDATE airlock_records SET line = replace(line, '\"GET\"', '\"PUT\"') WHERE trail = '{ta}' AND seq = (SELECT min(seq) FROM airlock_records WHERE trail = '{ta}' AND line LIKE '%\"GET\"%')"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = airlock(
        &auditor,
        &["audit", "verify", "--fleet", "--origin", "runner-a"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("BROKEN") && text(&out).contains("hash mismatch"),
        "{}",
        text(&out)
    );
}

/// The fleet's held list, as an approver on another machine sees it,
/// once it has `n` requests.
async fn fleet_held(approver: &Path, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + airlock_tests::WAIT;
    loop {
        let out = airlock(approver, &["approvals", "list", "--fleet", "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        let held: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        if held.len() >= n {
            return held;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not held in the fleet: {held:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_held_on_one_host_is_decided_from_another_and_hosts_cannot_decide() {
    if !privileged("a_request_held_on_one_host_is_decided_from_another_and_hosts_cannot_decide") {
        return;
    }
    let dir = TempDir::new("fleet-approve");
    let pki = TestPki::new("fleet approvals test CA");
    let mut pg = Postgres::start(dir.path(), &pki);
    let owner = dir.path().join("owner.toml");
    std::fs::write(&owner, pg.fleet_section(OWNER)).unwrap();
    let out = airlock(&owner, &["fleet", "migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    pg.role("runner_a", "airlock_host");
    pg.role("sre_alice", "airlock_approver");
    let approver = dir.path().join("approver.toml");
    std::fs::write(&approver, pg.fleet_section("sre_alice")).unwrap();

    let a = Host::new("runner-a", &pki, &pg, "runner_a").await;
    let _daemon = a.start();
    wait_for(&a.audit(), |r| r.iter().any(|r| r["event"] == "start")).await;

    // Held on runner-a; seen from the approver's machine with what they
    // need to decide.
    let first = a.delete();
    let held = fleet_held(&approver, 1).await;
    let h = &held[0];
    assert_eq!(h["host"], "runner-a", "{h}");
    assert_eq!(h["process"]["comm"], "curl", "{h}");
    assert!(h["remaining_s"].as_u64() > Some(0), "{h}");
    let id = h["id"].as_str().unwrap().to_owned();
    let table = text(&airlock(&approver, &["approvals", "list", "--fleet"]));
    assert!(table.contains("runner-a") && table.contains(&id), "{table}");

    // A host's role decides nothing, not even its own request's fate.
    let trail = a.trail_id();
    let forged = pg.sql(
        "runner_a",
        &format!("INSERT INTO airlock_decisions (trail, id, decision) VALUES ('{trail}', '{id}', 'approve')"),
    );
    assert!(!forged.status.success());
    assert!(
        text(&forged).contains("permission denied"),
        "{}",
        text(&forged)
    );
    assert_eq!(a.up.requests(), 0, "nothing forwarded while held");

    // Approved from the fleet: forwarded once, and the trail says who.
    let out = airlock(
        &approver,
        &[
            "approvals",
            "approve",
            &id,
            "--fleet",
            "--reason",
            "planned cleanup",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{id}: approved on runner-a")),
        "{}",
        text(&out)
    );
    // Forwarded: the answer is the upstream's (it has no DELETE: 405).
    assert_eq!(first.await.unwrap(), "405");
    assert_eq!(a.up.requests(), 1, "the upstream saw it exactly once");
    let approved = wait_for(&a.audit(), |r| {
        r.iter()
            .any(|r| r["kind"] == "approval" && r["event"] == "approved")
    })
    .await;
    let rec = approved
        .iter()
        .find(|r| r["kind"] == "approval" && r["event"] == "approved")
        .unwrap();
    assert_eq!(rec["request_id"], id.as_str());
    assert_eq!(rec["by"]["role"], "sre_alice", "{rec}");
    assert_eq!(rec["reason"], "planned cleanup");
    assert!(rec["by"]["host"].is_string(), "{rec}");
    let again = airlock(&approver, &["approvals", "approve", &id, "--fleet"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("no longer"), "{}", text(&again));

    // Denied from the fleet: 403 to the agent, nothing forwarded.
    let second = a.delete();
    let held = fleet_held(&approver, 1).await;
    let id = held[0]["id"].as_str().unwrap().to_owned();
    let out = airlock(
        &approver,
        &[
            "approvals",
            "deny",
            &id,
            "--fleet",
            "--reason",
            "not on a Friday",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{id}: denied on runner-a")),
        "{}",
        text(&out)
    );
    assert_eq!(second.await.unwrap(), "403");
    assert_eq!(a.up.requests(), 1, "the denied request was not forwarded");
    let fleet_up = || {
        let status: Value =
            serde_json::from_slice(&airlock(&a.config, &["status", "--json"]).stdout).unwrap();
        status["approvals"]["fleet"].as_bool()
    };
    assert_eq!(fleet_up(), Some(true));

    // The database goes away: the host says so, and its own approvers
    // decide meanwhile; nothing is approved by default.
    pg.crash();
    let deadline = tokio::time::Instant::now() + airlock_tests::WAIT;
    while fleet_up() != Some(false) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the host never noticed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let third = a.delete();
    let id = loop {
        let out = airlock(&a.config, &["approvals", "list", "--json"]);
        let held: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(h) = held.first() {
            break h["id"].as_str().unwrap().to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "not held locally");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        a.up.requests(),
        1,
        "held, not let through, with the fleet away"
    );
    let out = airlock(
        &a.config,
        &["approvals", "approve", &id, "--reason", "on call"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(third.await.unwrap(), "405");
    assert_eq!(a.up.requests(), 2);
}
