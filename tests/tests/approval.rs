//! Just-in-time approval end to end: real curl in a captured cgroup sends
//! a resource group DELETE, which the shipped policy holds; a human (this
//! test, through the admin socket) approves one, denies another, and lets a
//! third time out. Only the approved one reaches the upstream.

use std::time::Duration;

use airlock::AdminClient;
use airlock_tests::tls_upstream::TlsUpstream;
use airlock_tests::{Finished, Intercepted, TestCgroup, WAIT, finish, privileged};
use serde_json::Value;

const ARM: &str = "management.azure.com";
const RG: &str = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourcegroups/rg-old?api-version=2021-04-01";

async fn delete(cg: &TestCgroup, up: &TlsUpstream, ca: &std::path::Path) -> Finished {
    let mut cmd = cg.command("curl");
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
    .arg("--cacert")
    .arg(ca)
    .arg(format!("https://{ARM}:{}{RG}", up.port()));
    finish(cmd).await
}

/// The id of the next request held, once it shows up in the list.
async fn held(client: &AdminClient, seen: &[String]) -> String {
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
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn status_and_body(out: &Finished) -> (u16, Value) {
    let (body, status) = out.stdout.rsplit_once('\n').expect("status line");
    (
        status.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_delete_is_forwarded_only_when_approved() {
    if !privileged("a_held_delete_is_forwarded_only_when_approved") {
        return;
    }
    let Intercepted {
        cg, up, airlock, ..
    } = Intercepted::start("approve", &[ARM], |c| {
        // The test is both the agent's user and the approver (root).
        c.approval.approvers = vec!["root".into()];
        c.approval.allow_self = true;
        c.approval.timeout = "3s".into();
    })
    .await;
    let client = AdminClient::new(airlock.admin_socket());
    let ca = airlock.ca_cert();
    let mut seen = Vec::new();

    // Approved: the request waits, then goes through — once.
    let before = up.requests();
    let (out, id) = tokio::join!(delete(&cg, &up, &ca), async {
        let id = held(&client, &seen).await;
        let shown = client.show(&id).await.unwrap();
        assert_eq!(
            shown["operation"], "Microsoft.Resources/subscriptions/resourceGroups/delete",
            "{shown}"
        );
        assert_eq!(shown["process"]["comm"], "curl");
        client
            .approve(&id, None, Some("planned cleanup"))
            .await
            .unwrap();
        id
    });
    seen.push(id.clone());
    let (status, _) = status_and_body(&out);
    assert_ne!(status, 403, "approved, so forwarded: {out:?}");
    assert_eq!(
        up.requests(),
        before + 1,
        "the upstream saw it exactly once"
    );

    // Denied: 403 naming the outcome; never forwarded.
    let (out, id) = tokio::join!(delete(&cg, &up, &ca), async {
        let id = held(&client, &seen).await;
        client.deny(&id, "not during the freeze").await.unwrap();
        id
    });
    seen.push(id.clone());
    let (status, body) = status_and_body(&out);
    assert_eq!(status, 403, "{out:?}");
    assert_eq!(body["error"]["code"], "ApprovalDenied");
    assert_eq!(body["outcome"], "denied");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(up.requests(), before + 1);

    // Nobody decides: expired after approval.timeout, 403.
    let out = delete(&cg, &up, &ca).await;
    let (status, body) = status_and_body(&out);
    assert_eq!(
        (status, body["outcome"].as_str()),
        (403, Some("expired")),
        "{out:?}"
    );
    assert_eq!(up.requests(), before + 1);

    let records = airlock.records_of("approval", 6).await;
    let events: Vec<&str> = records.iter().filter_map(|r| r["event"].as_str()).collect();
    for e in ["requested", "approved", "denied", "expired"] {
        assert!(events.contains(&e), "no {e} record in {events:?}");
    }
    let exchanges = airlock.exchanges(3).await;
    assert_eq!(
        exchanges[0]["approval"]["outcome"], "approved",
        "{}",
        exchanges[0]
    );
    assert_eq!(exchanges[0]["decision"]["action"], "approve");
}
