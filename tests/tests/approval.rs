//! Just-in-time approval end to end: real curl in a captured cgroup sends
//! a resource group DELETE, which the shipped policy holds; a human (this
//! test, through the admin socket) approves one, denies another, and lets a
//! third time out. Only the approved one reaches the upstream.

use airlock::AdminClient;
use airlock_tests::held::{ARM, delete, held, status_and_body};
use airlock_tests::{Intercepted, finish, privileged};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_delete_is_forwarded_only_when_approved() {
    if !privileged("a_held_delete_is_forwarded_only_when_approved") {
        return;
    }
    let Intercepted {
        cg, up, airlock, ..
    } = Intercepted::start("approve", &[ARM], |c| {
        // The agent runs as nobody; the developer approving is root.
        c.approval.approvers = vec!["root".into()];
        c.approval.timeout = "3s".into();
    })
    .await;
    let client = AdminClient::new(airlock.admin_socket());
    let mut seen = Vec::new();

    // Approved: the request waits, then goes through — once.
    let before = up.requests();
    let (out, id) = tokio::join!(delete(&cg, &up, &airlock), async {
        let id = held(&client, &seen).await;
        let shown = client.show(&id).await.unwrap();
        assert_eq!(
            shown["operation"], "Microsoft.Resources/subscriptions/resourceGroups/delete",
            "{shown}"
        );
        assert_eq!(shown["process"]["comm"], "curl");
        client
            .approve(&id, None, None, Some("planned cleanup"))
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
    let (out, id) = tokio::join!(delete(&cg, &up, &airlock), async {
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
    let out = delete(&cg, &up, &airlock).await;
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

/// A role assignment, as `az role assignment create` PUTs it.
const ROLE_ASSIGNMENT: &str = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/providers/Microsoft.Authorization/roleAssignments/5b3c9e1a-0000-4000-8000-00000000abcd?api-version=2022-04-01";
const OWNER: &str = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_cannot_approve_itself_and_approvers_see_what_they_approve() {
    if !privileged("the_agent_cannot_approve_itself_and_approvers_see_what_they_approve") {
        return;
    }
    let Intercepted {
        cg, up, airlock, ..
    } = Intercepted::start("self-approve", &[ARM], |c| {
        // root is the approver, and the agent's attempt to approve comes
        // from root too (from inside its cgroup): only where the call
        // comes from tells them apart.
        c.approval.approvers = vec!["root".into()];
        c.approval.allow_self = true;
        c.approval.max_held_per_identity = 1;
    })
    .await;
    let client = AdminClient::new(airlock.admin_socket());
    let body = serde_json::json!({ "properties": {
        "roleDefinitionId": OWNER,
        "principalId": "7e57d0e5-0000-4000-8000-00000000beef" } })
    .to_string();
    let mut put = airlock.client(&cg, "curl");
    put.args([
        "-sS",
        "--max-time",
        "30",
        "-X",
        "PUT",
        "-w",
        "\n%{http_code}",
    ])
    .args([
        "-H",
        "content-type: application/json",
        "--data-binary",
        &body,
    ])
    .arg("--resolve")
    .arg(format!("{ARM}:{}:127.0.0.1", up.port()))
    .arg(format!("https://{ARM}:{}{ROLE_ASSIGNMENT}", up.port()));
    let before = up.requests();
    let agent = tokio::spawn(finish(put));
    let id = held(&client, &[]).await;

    // The approver sees the role being granted, and where it goes.
    let shown = client.show(&id).await.unwrap();
    assert_eq!(
        shown["operation"],
        "Microsoft.Authorization/roleAssignments/write"
    );
    assert_eq!(shown["target_host"], ARM);
    assert!(
        shown["body_excerpt"].as_str().unwrap().contains(OWNER),
        "{shown}"
    );
    assert!(
        shown["resource"]
            .as_str()
            .unwrap()
            .ends_with("/roleAssignments/5b3c9e1a-0000-4000-8000-00000000abcd"),
        "{shown}"
    );

    // The agent, from inside its cgroup, tries to approve itself over the
    // admin socket: refused, whatever its uid; the request stays held.
    let mut approve = cg.command("curl");
    approve
        .args(["-sS", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(airlock.admin_socket())
        .args([
            "-X",
            "POST",
            "-d",
            r#"{"for":"1h","scope":"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590"}"#,
        ])
        .arg(format!("http://airlock/v1/approvals/{id}/approve"));
    let out = finish(approve).await;
    let (status, answer) = status_and_body(&out);
    assert_eq!(status, 403, "{out:?}");
    assert_eq!(answer["error"]["code"], "captured_approver", "{answer}");
    assert!(client.show(&id).await.is_ok(), "still held");
    assert_eq!(up.requests(), before);

    // A second hold for the same identity is past approval.max_held_per_identity:
    // refused at once, 429, never held or forwarded.
    let out = delete(&cg, &up, &airlock).await;
    let (status, answer) = status_and_body(&out);
    assert_eq!(status, 429, "{out:?}");
    assert_eq!(answer["error"]["code"], "TooManyHeld");
    assert_eq!(up.requests(), before);

    // The approver, outside the cgroup, decides.
    client
        .approve(&id, None, None, Some("onboarding"))
        .await
        .unwrap();
    let out = agent.await.unwrap();
    let (_, answer) = status_and_body(&out);
    assert_ne!(answer["error"]["source"], "airlock", "{out:?}");
    assert_eq!(up.requests(), before + 1, "forwarded once approved");
    let records = airlock.records_of("approval", 4).await;
    let refused = records
        .iter()
        .find(|r| r["event"] == "refused")
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("capture cgroup"),
        "{refused}"
    );
    assert!(
        records.iter().any(|r| r["event"] == "overflow"),
        "{records:#?}"
    );
}

/// The admin socket is 0660 and owned by `admin.group`: a caller outside
/// the group cannot even connect; one in it can read (and, not being an
/// approver, decides nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_socket_refuses_callers_outside_its_group() {
    if !privileged("the_admin_socket_refuses_callers_outside_its_group") {
        return;
    }
    let Intercepted { cg, airlock, .. } = Intercepted::start("admin-group", &[ARM], |c| {
        c.admin.group = Some("root".into());
    })
    .await;
    let socket = airlock.admin_socket();
    let status_as = |groups: &str| {
        let mut cmd = cg.command("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534"]);
        if groups.is_empty() {
            cmd.arg("--clear-groups");
        } else {
            cmd.arg(format!("--groups={groups}"));
        }
        cmd.args(["curl", "-sS", "-w", "\n%{http_code}", "--unix-socket"])
            .arg(&socket)
            .arg("http://airlock/v1/status");
        finish(cmd)
    };
    let outside = status_as("").await;
    assert!(!outside.status.success(), "{outside:?}");
    assert!(
        outside.stderr.contains("Permission denied") || outside.stderr.contains("Couldn't connect"),
        "{outside:?}"
    );
    let inside = status_as("0").await;
    let (status, body) = status_and_body(&inside);
    assert_eq!(status, 200, "{inside:?}");
    assert!(body["approvals"].is_object(), "{body}");
}
