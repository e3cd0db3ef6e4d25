//! Bodies far larger than memory budgets stream through the real daemon:
//! its peak memory stays bounded whatever the body size.

use airlock_tests::daemon::{spawn, wait_for, write_tls_config};
use airlock_tests::pki::TestPki;
use airlock_tests::tls_upstream::TlsUpstream;
use airlock_tests::{TempDir, TestCgroup, finish_within, privileged};

const SIZE: u64 = 100 * 1024 * 1024;
/// Far below SIZE: a buffered body could not fit. What the daemon holds
/// before any transfer (its code, its caches: a debug build's tens of MiB,
/// which move as the binary grows) is not counted.
const GROWTH_LIMIT_KIB: u64 = 48 * 1024;
const NAME: &str = "blob.airlock-test.azure.com";
/// Each transfer's hang guard, as curl's own `--max-time`: a debug build
/// on a busy 2-core machine takes its time; speed is the bench's to show.
const TRANSFER: std::time::Duration = std::time::Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_mib_each_way_with_bounded_daemon_memory() {
    if !privileged("hundred_mib_each_way_with_bounded_daemon_memory") {
        return;
    }
    let dir = TempDir::new("memory");
    let cg = TestCgroup::new("memory");
    let pki = TestPki::new("memory test upstream CA");
    let up = TlsUpstream::start(
        pki.server_config(&[NAME], &[b"h2", b"http/1.1"]),
        &["127.0.0.1:0".parse().unwrap()],
    )
    .await;
    let config = write_tls_config(dir.path(), cg.path(), up.port(), &pki.write_ca(dir.path()));
    let audit = dir.path().join("audit.jsonl");
    let daemon = spawn(&config);
    wait_for(&audit, |r| r.iter().any(|r| r["event"] == "start")).await;
    let before_kib = rss_kib(daemon.id().unwrap(), "VmRSS:");
    // The agent: nobody, trusting airlock through `airlock ca env`'s variables.
    let public = dir.path().join("public");
    let url = format!("https://{NAME}:{}", up.port());
    let resolve = format!("{NAME}:{}:127.0.0.1", up.port());

    for http in ["--http1.1", "--http2"] {
        let script = format!(
            "head -c {SIZE} /dev/zero | curl -sS {http} --max-time 120 --resolve {resolve} -T - -X POST {url}/count",
        );
        let mut upload = airlock_tests::agent::client(&cg, &public, "sh");
        upload.arg("-c").arg(&script);
        let out = finish_within(upload, TRANSFER).await;
        assert!(out.status.success(), "{out:?}");
        let body: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(body["bytes"], SIZE, "{http}");

        let mut download = airlock_tests::agent::client(&cg, &public, "curl");
        download
            .args([
                "-sS",
                http,
                "--max-time",
                "120",
                "-o",
                "/dev/null",
                "-w",
                "%{size_download}",
            ])
            .args(["--resolve", &resolve])
            .arg(format!("{url}/bytes/{SIZE}"));
        let out = finish_within(download, TRANSFER).await;
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout.trim(), SIZE.to_string(), "{http}");
    }

    let peak_kib = rss_kib(daemon.id().unwrap(), "VmHWM:");
    eprintln!("airlock RSS: {before_kib} KiB before, peak {peak_kib} KiB");
    assert!(
        peak_kib.saturating_sub(before_kib) < GROWTH_LIMIT_KIB,
        "airlock grew from {before_kib} KiB to a peak of {peak_kib} KiB moving {SIZE} B bodies"
    );
    let http = airlock_tests::daemon::wait_for_exchanges(&audit, 4).await;
    assert_eq!(http.len(), 4);
    assert_eq!(http[0]["request"]["body"]["bytes"], SIZE);
    // The digest is of the whole body as sent: SIZE zero bytes.
    assert_eq!(
        http[0]["request"]["body"]["sha256"],
        "20492a4d0d84f8beb1767f6616229f85d44c2827b64bdbfb260ee12fa1109e0e"
    );
    assert_eq!(http[1]["response"]["bytes"], SIZE);
    assert_eq!(http[3]["tls"]["alpn"], "h2");
    // Dropped: stopped as an operator would, so nothing stays pinned.
    drop(daemon);
}

/// A `/proc/PID/status` memory line (`VmRSS:`, `VmHWM:`), in KiB.
fn rss_kib(pid: u32, line: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
