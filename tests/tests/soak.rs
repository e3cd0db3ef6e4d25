//! Soak: many captured processes (as `nobody`) send mixed traffic for a
//! while — allowed reads, denied deletes, writes held for a human who
//! approves some and denies the others — then the books must balance
//! exactly: every request the upstream received has exactly one request
//! record and a response record that says it went through, and every
//! other request record was refused (never received). Memory and
//! descriptors end where they started, and the kernel maps are drained.
//! `AIRLOCK_SOAK_SECONDS` (default 20) sets how long traffic runs;
//! `cargo xtask soak --minutes N` runs it for longer.

use std::collections::HashMap;
use std::time::Duration;

use airlock::AdminClient;
use airlock_tests::agent::{AGENT_UID, as_user};
use airlock_tests::{Intercepted, TempDir, privileged};
use serde_json::Value;

const ARM: &str = "management.azure.com";
/// Captured processes sending at once.
const WORKERS: usize = 6;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// `METHOD path?query` of a request record.
fn request_line(r: &Value) -> String {
    let q = &r["request"];
    let query = q["query"]
        .as_str()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    format!(
        "{} {}{query}",
        q["method"].as_str().unwrap(),
        q["path"].as_str().unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_traffic_reconciles_exactly_and_leaks_nothing() {
    if !privileged("mixed_traffic_reconciles_exactly_and_leaks_nothing") {
        return;
    }
    let seconds: u64 = std::env::var("AIRLOCK_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let policies = TempDir::new("soak-policies");
    std::fs::write(
        policies.path().join("10-soak.toml"),
        "[defaults]\naction = \"allow\"\nreason = \"allowed\"\n\n\
         [[rule]]\nname = \"no-deletes\"\naction = \"deny\"\nreason = \"no deletes\"\nrequest.method = \"DELETE\"\n\n\
         [[rule]]\nname = \"hold-writes\"\naction = \"approve\"\nreason = \"writes need a human\"\nrequest.method = \"PUT\"\n",
    )
    .unwrap();
    let dir = policies.path().to_owned();
    let env = Intercepted::start("soak", &[ARM], move |c| {
        c.approval.approvers = vec!["root".into()];
        c.approval.timeout = "5s".into();
        // Idle upstream connections are not kept: descriptors must drain.
        c.proxy.upstream_idle_ms = 0;
        c.policy.dir = Some(dir);
    })
    .await;
    let ca = env.airlock.ca_cert();
    let port = env.up.port();
    let fds_before = open_fds();

    // The workers: each a shell as nobody in the cgroup, looping until the
    // time is up; every request names its worker and turn.
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let curl = format!(
            "curl -s -o /dev/null --max-time 20 --cacert {ca} --resolve {ARM}:{port}:127.0.0.1",
            ca = ca.display()
        );
        let base = format!("https://{ARM}:{port}");
        let script = format!(
            "end=$((SECONDS+{seconds})); i=0; while [ $SECONDS -lt $end ]; do i=$((i+1)); \
             {curl} \"{base}/info?w={w}&i=$i\" \"{base}/info?w={w}&i=$i&again=1\"; \
             {curl} -X DELETE \"{base}/rg?w={w}&i=$i\"; \
             if [ $((i % 4)) -eq 0 ]; then {curl} -X PUT \"{base}/hold?w={w}&i=$i\"; fi; \
             done"
        );
        let mut sh = as_user(&env.cg, AGENT_UID, "bash");
        sh.arg("-c")
            .arg(script)
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        workers.push(sh.spawn().unwrap());
    }
    // The approver: even turns approved, odd denied.
    let client = AdminClient::new(env.airlock.admin_socket());
    let approver = tokio::spawn(async move {
        loop {
            for h in client.list().await.unwrap_or_default() {
                let (Some(id), Some(url)) = (h["id"].as_str(), h["url"].as_str()) else {
                    continue;
                };
                let turn: u64 = url
                    .rsplit_once("i=")
                    .and_then(|(_, i)| i.parse().ok())
                    .unwrap_or(1);
                // Already decided or expired meanwhile: nothing to do.
                let _ = if turn.is_multiple_of(8) {
                    client.approve(id, None, None, Some("soak")).await
                } else {
                    client.deny(id, "soak").await
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    // Memory after a warm-up, and at the end.
    tokio::time::sleep(Duration::from_secs(seconds / 4 + 1)).await;
    let rss_warm = rss_kib();
    for mut w in workers {
        let status = w.wait().await.unwrap();
        assert!(status.success(), "a worker failed: {status:?}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    approver.abort();
    let rss_end = rss_kib();

    // The books: what the upstream received against the trail.
    let received = env.up.seen();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in &received {
        *counts.entry(r.as_str()).or_default() += 1;
    }
    assert!(
        counts.values().all(|n| *n == 1),
        "a request reached the upstream twice"
    );
    // Ten minutes of traffic fill more than one file: the whole trail.
    let records = env.airlock.trail_records();
    let requests: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "http" && r["phase"] == "request")
        .collect();
    let responses: HashMap<&str, &Value> = records
        .iter()
        .filter(|r| r["kind"] == "http" && r["phase"] == "response")
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    let mut by_line: HashMap<String, usize> = HashMap::new();
    let (mut forwarded, mut refused) = (0, 0);
    for r in &requests {
        let line = request_line(r);
        *by_line.entry(line.clone()).or_default() += 1;
        let response = responses
            .get(r["id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("no response record for {line}"));
        let by_airlock = response["error"].as_str().is_some_and(|e| {
            ["PolicyDenied:", "ApprovalDenied:", "ApprovalExpired:"]
                .iter()
                .any(|c| e.starts_with(c))
        });
        if counts.contains_key(line.as_str()) {
            assert!(!by_airlock, "{line} was refused, yet received");
            forwarded += 1;
        } else {
            assert!(
                by_airlock,
                "{line} was neither received nor refused: {response}"
            );
            refused += 1;
        }
    }
    for line in counts.keys() {
        assert_eq!(
            by_line.get(*line),
            Some(&1),
            "{line} was received with no (or more than one) request record"
        );
    }
    assert!(
        forwarded > 0 && refused > 0,
        "{forwarded} forwarded, {refused} refused"
    );
    let approved = records
        .iter()
        .filter(|r| r["kind"] == "approval" && r["event"] == "approved")
        .count();
    assert!(approved > 0, "no hold was approved");

    // Nothing left behind.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while (env.airlock.map_entries() != (0, 0) || open_fds() > fds_before + 2)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(env.airlock.map_entries(), (0, 0), "kernel maps not drained");
    assert!(
        open_fds() <= fds_before + 2,
        "descriptors: {} before, {} after",
        fds_before,
        open_fds()
    );
    assert!(
        rss_end < rss_warm + 32 * 1024,
        "memory grew from {rss_warm} KiB to {rss_end} KiB"
    );
    eprintln!(
        "soak: {seconds} s, {} requests ({forwarded} forwarded, {refused} refused), {approved} approved; RSS {rss_warm} → {rss_end} KiB; {} descriptors",
        requests.len(),
        open_fds()
    );
}
