//! Limits an agent cannot exhaust, each flooded from the captured cgroup
//! as an unprivileged user while another client is still served (or is
//! served again once the flood is closed): connections open at once,
//! silence after the TLS handshake, memory for bodies read whole.

use std::time::Duration;

use airlock_tests::agent::{AGENT_UID, as_user, curl_as};
use airlock_tests::{Intercepted, finish, privileged};

const ARM: &str = "management.azure.com";

/// curl as the agent to `https://ARM{path}` through airlock, trusting `ca`.
fn curl(env: &Intercepted, ca: &std::path::Path, path: &str) -> tokio::process::Command {
    let mut cmd = curl_as(&env.cg, AGENT_UID);
    cmd.arg("--resolve")
        .arg(format!("{ARM}:{}:127.0.0.1", env.up.port()))
        .arg("--cacert")
        .arg(ca)
        .arg(format!("https://{ARM}:{}{path}", env.up.port()));
    cmd
}

/// The status curl printed last (000 when the connection failed).
fn status(out: &airlock_tests::Finished) -> u16 {
    out.stdout
        .rsplit_once('\n')
        .map_or(out.stdout.as_str(), |(_, s)| s)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_refused_and_silent_ones_closed() {
    if !privileged("connections_past_the_limit_are_refused_and_silent_ones_closed") {
        return;
    }
    let env = Intercepted::start("limits-conns", &[ARM], |c| {
        c.proxy.max_connections = 3;
        c.proxy.handshake_timeout_ms = 1500;
        c.proxy.first_request_timeout_ms = 500;
    })
    .await;
    let ca = env.airlock.ca_cert();
    let port = env.up.port();

    // Three connections that say nothing hold every slot.
    let mut holders = Vec::new();
    for _ in 0..3 {
        let mut hold = as_user(&env.cg, AGENT_UID, "bash");
        hold.arg("-c")
            .arg(format!("exec 3<>/dev/tcp/127.0.0.1/{port}; sleep 4"))
            .kill_on_drop(true);
        holders.push(hold.spawn().unwrap());
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = env.up.requests();
    let out = finish(curl(&env, &ca, "/info")).await;
    assert_eq!(status(&out), 0, "refused while the slots are held: {out:?}");
    assert_eq!(env.up.requests(), before);

    // The silent ones are closed at the handshake timeout; then a client
    // is served again.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let out = finish(curl(&env, &ca, "/info")).await;
    assert_eq!(status(&out), 200, "{out:?}");
    let silent = env.airlock.connections(3).await;
    assert!(
        silent
            .iter()
            .filter(|r| r["error"]
                .as_str()
                .is_some_and(|e| e.contains("handshake timeout")))
            .count()
            >= 3,
        "{silent:#?}"
    );

    // A TLS handshake, then silence: closed after the first-request
    // timeout and recorded; the client meanwhile is served.
    let mut quiet = as_user(&env.cg, AGENT_UID, "bash");
    quiet
        .arg("-c")
        .arg(format!(
            "sleep 3 | openssl s_client -quiet -connect 127.0.0.1:{port} -servername {ARM} -CAfile {} >/dev/null 2>&1",
            ca.display()
        ))
        .kill_on_drop(true);
    let quiet = quiet.spawn().unwrap();
    let out = finish(curl(&env, &ca, "/info")).await;
    assert_eq!(status(&out), 200, "{out:?}");
    let closed = env
        .airlock
        .connections(4)
        .await
        .into_iter()
        .find(|r| {
            r["error"]
                .as_str()
                .is_some_and(|e| e.contains("first_request_timeout_ms"))
        })
        .expect("a record of the silent TLS client");
    assert_eq!(closed["sni"], ARM);
    assert_eq!(closed["process"]["uid"], AGENT_UID);
    drop(quiet);
    drop(holders);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_read_whole_share_one_memory_budget() {
    if !privileged("bodies_read_whole_share_one_memory_budget") {
        return;
    }
    let env = Intercepted::start("limits-bodies", &[ARM], |c| {
        c.proxy.body_buffer_bytes = 64 * 1024;
    })
    .await;
    let ca = env.airlock.ca_cert();
    let upload = |bytes: usize, rate: Option<&str>| {
        let file = airlock_tests::agent::public(env.tmp.path()).join(format!("body-{bytes}"));
        std::fs::write(&file, "a".repeat(bytes)).unwrap();
        airlock_tests::agent::readable(&file);
        let mut cmd = curl(&env, &ca, "/count");
        cmd.args([
            "-X",
            "PUT",
            "-H",
            "content-type: text/plain",
            "--data-binary",
        ])
        .arg(format!("@{}", file.display()));
        if let Some(r) = rate {
            cmd.args(["--limit-rate", r]);
        }
        finish(cmd)
    };
    // One slow upload holds 60 KiB of the budget for about three seconds.
    let slow = tokio::spawn(upload(60 * 1024, Some("20K")));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let bodies = env.up.bodies();
    let out = upload(10 * 1024, None).await;
    assert_eq!(status(&out), 503, "{out:?}");
    assert!(out.stdout.contains("Overloaded"), "{out:?}");
    // A request that reads nothing whole is served meanwhile.
    let out = finish(curl(&env, &ca, "/info")).await;
    assert_eq!(status(&out), 200, "{out:?}");
    let out = slow.await.unwrap();
    assert_eq!(status(&out), 200, "{out:?}");
    // The budget came back.
    let out = upload(10 * 1024, None).await;
    assert_eq!(status(&out), 200, "{out:?}");
    assert_eq!(env.up.bodies(), bodies + 2, "the refused body never left");
    let refused = env
        .airlock
        .exchanges(4)
        .await
        .into_iter()
        .find(|r| r["response"]["status"] == 503)
        .expect("the refusal is recorded");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .starts_with("Overloaded: "),
        "{refused}"
    );
}
