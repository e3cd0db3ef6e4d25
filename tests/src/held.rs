//! The request the shipped policy holds for a human — the agent's `az
//! group delete` — and what the approval tests do with it: send it as the
//! captured agent, find it held, read its answer.

use std::time::Duration;

use airlock::AdminClient;
use serde_json::Value;

use crate::tls_upstream::TlsUpstream;
use crate::{Finished, Running, TestCgroup, WAIT, finish};

/// Azure Resource Manager: the shipped policy holds a resource group's
/// deletion there.
pub const ARM: &str = "management.azure.com";
pub const RG: &str = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourcegroups/rg-old?api-version=2021-04-01";

/// The agent's `az group delete`: curl as `nobody` in the capture cgroup,
/// with `airlock ca env`'s variables; the status on a last line of its own.
pub async fn delete(cg: &TestCgroup, up: &TlsUpstream, airlock: &Running) -> Finished {
    let mut cmd = airlock.client(cg, "curl");
    cmd.args([
        "-sS",
        "--max-time",
        "30",
        "-X",
        "DELETE",
        "-w",
        "\n%{http_code}",
        "--resolve",
    ])
    .arg(format!("{ARM}:{}:127.0.0.1", up.port()))
    .arg(format!("https://{ARM}:{}{RG}", up.port()));
    finish(cmd).await
}

/// [`delete`] from a host whose published files are in `public_dir`,
/// left running: its status, once it is answered (a fleet's host, whose
/// daemon is a process of its own).
pub fn delete_from(
    cg: &TestCgroup,
    public_dir: &std::path::Path,
    up: &TlsUpstream,
) -> tokio::task::JoinHandle<String> {
    delete_from_with(cg, public_dir, up, &[])
}

/// [`delete_from`] with more of curl's arguments (a credential).
pub fn delete_from_with(
    cg: &TestCgroup,
    public_dir: &std::path::Path,
    up: &TlsUpstream,
    extra: &[&str],
) -> tokio::task::JoinHandle<String> {
    let mut cmd = crate::agent::client(cg, public_dir, "curl");
    cmd.args(extra)
        .args([
            "-sS",
            "--max-time",
            "60",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["-X", "DELETE", "--resolve"])
        .arg(format!("{ARM}:{}:127.0.0.1", up.port()))
        .arg(format!("https://{ARM}:{}{RG}", up.port()));
    tokio::spawn(async move { finish(cmd).await.stdout })
}

/// The id of the next request held (not in `seen`), once the daemon lists
/// it.
pub async fn held(client: &AdminClient, seen: &[String]) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = client.list().await.expect("admin API answers");
        if let Some(id) = list
            .iter()
            .filter_map(|h| h["id"].as_str())
            .find(|id| !seen.iter().any(|s| s == id))
        {
            return id.to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing was held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The status and JSON body of [`delete`]'s answer.
pub fn status_and_body(out: &Finished) -> (u16, Value) {
    let (body, status) = out.stdout.rsplit_once('\n').expect("status line");
    (
        status.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}
