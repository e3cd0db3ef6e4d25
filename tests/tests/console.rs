//! The approvers' web page (`airlock console`) in a real browser: headless
//! Chromium driven over WebDriver signs in with the printed link; real
//! curl in a captured cgroup sends a resource group DELETE, which the
//! shipped policy holds. The held request appears on the open page within
//! a second; approve forwards it once, deny answers the agent 403, a
//! grant from the page lets the next one through. A console run by a user
//! who is not an approver shows the request but its approval is refused
//! by the daemon; a decision without the page's CSRF token is refused; a
//! process airlock captures cannot use the console.
//! With AIRLOCK_CONSOLE_SCREENSHOTS=DIR, the views are saved there
//! (docs/console/*.png come from such a run).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use airlock::AdminClient;
use airlock_tests::held::{ARM, RG, delete, held, status_and_body};
use airlock_tests::{Browser, Intercepted, WAIT, console, finish, privileged};
use serde_json::Value;

/// The user of the console that may not decide: it can reach the admin
/// socket (`[admin] group`), but is not in `approval.approvers`.
const OUTSIDER: u32 = 1; // daemon
const OUTSIDER_GROUP: &str = "daemon";

/// curl at the console as root from outside the capture cgroup (so
/// admitted), with the session's cookie: its status and body.
async fn curl_console(
    mut cmd: tokio::process::Command,
    url: &str,
    extra: &[&str],
) -> (u16, String) {
    cmd.args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url);
    let out = finish(cmd).await;
    let (body, status) = out.stdout.rsplit_once('\n').expect("status line");
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvers_decide_in_the_browser_and_nobody_else_can() {
    if !privileged("approvers_decide_in_the_browser_and_nobody_else_can") {
        return;
    }
    let shots = std::env::var_os("AIRLOCK_CONSOLE_SCREENSHOTS").map(PathBuf::from);
    let shots = shots.as_deref();
    let Intercepted {
        cg,
        up,
        airlock,
        tmp,
    } = Intercepted::start("console", &[ARM], |c| {
        // The agent runs as nobody; root approves; the outsider may read.
        c.approval.approvers = vec!["root".into()];
        c.approval.timeout = "60s".into();
        c.admin.group = Some(OUTSIDER_GROUP.into());
    })
    .await;
    let client = AdminClient::new(airlock.admin_socket());
    let (config, _) = console::config(tmp.path(), "console.toml", &airlock);
    let root = console::start(&config, None).await;

    // Signed in with the printed link, once; the cookie is the session's.
    let browser = Browser::start(None).await;
    browser.goto(&root.login).await;
    let list = browser.wait_for("#held", WAIT).await;
    let live = browser.wait_for("#live", WAIT).await;
    let deadline = Instant::now() + WAIT;
    while browser.text(&live).await.unwrap() != "live" {
        assert!(Instant::now() < deadline, "the event stream never opened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        browser
            .text(&list)
            .await
            .unwrap()
            .contains("Nothing is held")
    );
    let cookies = browser.cookies().await;
    let cookie = cookies
        .iter()
        .find(|c| c["name"] == "airlock_console")
        .unwrap_or_else(|| {
            panic!("Chromium kept no session cookie on http://127.0.0.1: {cookies:?}")
        });
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["secure"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    let session = format!("airlock_console={}", cookie["value"].as_str().unwrap());
    let (status, body) = curl_console(tokio::process::Command::new("curl"), &root.login, &[]).await;
    assert_eq!(status, 403, "the link works once: {body}");

    // Held → on the open page within a second, without a reload; approve
    // forwards it exactly once, and the page says who approved.
    let before = up.requests();
    let mut seen = Vec::new();
    let (out, id) = tokio::join!(delete(&cg, &up, &airlock), async {
        let id = held(&client, &seen).await;
        let at = Instant::now();
        let card = format!("article[data-id=\"{id}\"]");
        browser.wait_for(&card, WAIT).await;
        let shown = at.elapsed();
        assert!(
            shown <= Duration::from_secs(1),
            "shown {shown:?} after it was held"
        );
        let text = browser
            .text(&list)
            .await
            .expect("the same page: the list was updated in place, not reloaded");
        for want in [
            "Microsoft.Resources/subscriptions/resourceGroups/delete",
            "DELETE https://management.azure.com",
            "rg-old",
            "curl",
            "nobody",
            // The caller's parents, read from /proc: this test started it.
            "started by console-",
        ] {
            assert!(text.contains(want), "{want} not shown: {text}");
        }
        browser.save_screenshot(shots, "pending.png").await;
        let said =
            console::decide(&browser, &id, "approve", &[("reason", "planned cleanup")]).await;
        assert!(
            said.contains(&format!("{id}: approved by root (uid 0)")),
            "{said}"
        );
        browser.save_screenshot(shots, "approved.png").await;
        id
    });
    seen.push(id);
    let (status, _) = status_and_body(&out);
    assert_ne!(status, 403, "approved, so forwarded: {out:?}");
    assert_eq!(
        up.requests(),
        before + 1,
        "the upstream saw it exactly once"
    );

    // Deny with a reason: the agent gets 403, nothing is forwarded.
    let (out, id) = tokio::join!(delete(&cg, &up, &airlock), async {
        let id = held(&client, &seen).await;
        let said = console::decide(
            &browser,
            &id,
            "deny",
            &[("reason", "not during the freeze")],
        )
        .await;
        assert!(
            said.contains(&format!(
                "{id}: denied by root (uid 0): not during the freeze"
            )),
            "{said}"
        );
        id
    });
    seen.push(id.clone());
    let (status, body) = status_and_body(&out);
    assert_eq!(status, 403, "{out:?}");
    assert_eq!(body["outcome"], "denied");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(up.requests(), before + 1);

    // A third request stays held for what follows.
    let agent = {
        let mut cmd = airlock.client(&cg, "curl");
        cmd.args([
            "-sS",
            "--max-time",
            "50",
            "-X",
            "DELETE",
            "-w",
            "\n%{http_code}",
        ])
        .arg("--resolve")
        .arg(format!("{ARM}:{}:127.0.0.1", up.port()))
        .arg(format!("https://{ARM}:{}{RG}", up.port()));
        tokio::spawn(finish(cmd))
    };
    let id = held(&client, &seen).await;
    let card = format!("article[data-id=\"{id}\"]");
    let csrf_input = browser
        .wait_for(&format!("{card} input[name=csrf]"), WAIT)
        .await;
    let csrf = browser.property(&csrf_input, "value").await.unwrap();
    assert_eq!(csrf.len(), 64);

    // Without the CSRF token (curl with the session's cookie), or from
    // another origin: refused, nothing decided or forwarded.
    let approve_url = format!("{}/approve", root.origin);
    let plain = || tokio::process::Command::new("curl");
    let (status, body) = curl_console(
        plain(),
        &approve_url,
        &[
            "-H",
            &format!("Cookie: {session}"),
            "--data",
            &format!("id={id}"),
        ],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF token is missing or wrong"), "{body}");
    let (status, body) = curl_console(
        plain(),
        &approve_url,
        &[
            "-H",
            &format!("Cookie: {session}"),
            "-H",
            "Origin: http://evil.example",
            "--data",
            &format!("csrf={csrf}&id={id}"),
        ],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("evil.example"), "{body}");
    let (status, body) = curl_console(
        plain(),
        &format!("{}/", root.origin),
        &[
            "-H",
            &format!("Cookie: {session}"),
            "-H",
            &format!(
                "Host: rebound.example:{}",
                root.origin.rsplit(':').next().unwrap()
            ),
        ],
    )
    .await;
    assert_eq!(
        status, 421,
        "only the console's own address is answered: {body}"
    );
    let (status, _) = curl_console(
        plain(),
        &approve_url,
        &[
            "-H",
            &format!("Cookie: {session}"),
            "--data",
            &format!("csrf={}&id={id}", "0".repeat(64)),
        ],
    )
    .await;
    assert_eq!(status, 403);
    assert!(client.show(&id).await.is_ok(), "still held");
    assert_eq!(up.requests(), before + 1);

    // A captured process — even one running as the console's own user,
    // with the session's cookie — gets a refusal and nothing else.
    let (status, body) = curl_console(
        cg.command("curl"),
        &format!("{}/", root.origin),
        &["-H", &format!("Cookie: {session}")],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("is one airlock captures"), "{body}");
    assert!(!body.contains(&id), "{body}");
    let (status, body) = curl_console(
        cg.command("curl"),
        &approve_url,
        &[
            "-H",
            &format!("Cookie: {session}"),
            "--data",
            &format!("csrf={csrf}&id={id}"),
        ],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(client.show(&id).await.is_ok(), "still held");

    // A console run by a user who may reach the socket but is not an
    // approver: it sees the request; the daemon refuses its approval.
    let (config, _) = console::config(tmp.path(), "outsider.toml", &airlock);
    let outsider = console::start(&config, Some(OUTSIDER)).await;
    let theirs = Browser::start(Some(OUTSIDER)).await;
    theirs.goto(&outsider.login).await;
    let said = console::decide(&theirs, &id, "approve", &[]).await;
    assert!(said.contains("not_approver"), "{said}");
    assert!(said.contains("daemon"), "{said}");
    theirs.save_screenshot(shots, "not-approver.png").await;
    assert!(client.show(&id).await.is_ok(), "still held");
    assert_eq!(up.requests(), before + 1);

    // The approver grants it for a window from the page (scope: its own
    // resource group): forwarded, and the page says what the grant covers;
    // the outsider's page loses the card live. The next such request goes
    // through under the grant, never held.
    let said = console::decide(&browser, &id, "approve", &[("for", "10m")]).await;
    assert!(
        said.contains(&format!("{id}: approved by root (uid 0); grant g-"))
            && said.contains(
                "over /subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourcegroups/rg-old"
            ),
        "{said}"
    );
    let out = agent.await.unwrap();
    assert_ne!(status_and_body(&out).0, 403, "{out:?}");
    assert_eq!(up.requests(), before + 2);
    let deadline = Instant::now() + WAIT;
    while theirs.find(&card).await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the decided request stayed on the other page"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = delete(&cg, &up, &airlock).await;
    assert_ne!(status_and_body(&out).0, 403, "{out:?}");
    assert_eq!(up.requests(), before + 3, "let through by the grant");
    let records = airlock.records_of("approval", 6).await;
    let refused: Vec<&Value> = records.iter().filter(|r| r["event"] == "refused").collect();
    assert!(
        refused.iter().any(|r| r["reason"]
            .as_str()
            .unwrap_or("")
            .contains("not in approval.approvers")),
        "{records:#?}"
    );
}

/// The agent of the timeline test: `fakeagent` (a shell, selected by that
/// name) asks the model, which answers with a tool call; then, as its tool,
/// lists resource groups and deletes one (held). Every call is made by a
/// curl it started.
fn agent_script(port: u16) -> String {
    use base64::Engine as _;
    let tool =
        base64::engine::general_purpose::STANDARD.encode("az group delete --name rg-old --yes");
    let copilot = "api.githubcopilot.com";
    let curl = |host: &str| format!("curl -sS --max-time 40 --resolve {host}:{port}:127.0.0.1");
    format!(
        "{model} -o /dev/null -H 'content-type: application/json' -H 'authorization: Bearer tid=abc;exp=1;sku=copilot' \
         -H 'x-test-tool-command: {tool}' \
         --data-binary '{{\"model\":\"gpt-4o\",\"messages\":[{{\"role\":\"user\",\"content\":\"clean up rg-old\"}}]}}' \
         https://{copilot}:{port}/chat/completions && \
         {arm} -o /dev/null 'https://{ARM}:{port}/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourcegroups?api-version=2021-04-01' && \
         {arm} -X DELETE -w '\\n%{{http_code}}' 'https://{ARM}:{port}{RG}'",
        model = curl(copilot),
        arm = curl(ARM),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_shows_an_agent_session_turn_by_turn() {
    if !privileged("the_timeline_shows_an_agent_session_turn_by_turn") {
        return;
    }
    let shots = std::env::var_os("AIRLOCK_CONSOLE_SCREENSHOTS").map(PathBuf::from);
    let Intercepted {
        cg,
        up,
        airlock,
        tmp,
    } = Intercepted::start("timeline", &[ARM, "api.githubcopilot.com"], |c| {
        c.capture.comm = vec!["fakeagent".into()];
        c.capture.follow_children = true;
        c.approval.approvers = vec!["root".into()];
        c.approval.timeout = "60s".into();
        c.admin.group = Some(OUTSIDER_GROUP.into());
    })
    .await;
    let client = AdminClient::new(airlock.admin_socket());
    let agent = airlock_tests::TempDir::new("timeline-agent");
    airlock_tests::agent::public(agent.path());
    let fake = agent.alias("fakeagent", "/bin/sh");
    let mut cmd = airlock.client(&cg, fake.to_str().unwrap());
    cmd.arg("-c").arg(agent_script(up.port()));
    let (out, ()) = tokio::join!(finish(cmd), async {
        let id = held(&client, &[]).await;
        client.deny(&id, "not today").await.expect("denied");
    });
    let (status, _) = status_and_body(&out);
    assert_eq!(status, 403, "{out:?}");

    // The approver's console shows it as one session: the model's turn
    // (the prompt, the tool call it emitted), then what its tool did.
    let (config, _) = console::config(tmp.path(), "console.toml", &airlock);
    let root = console::start(&config, None).await;
    let browser = Browser::start(None).await;
    browser.goto(&root.login).await;
    browser.wait_for("#held", WAIT).await;
    let link = browser.wait_for("nav a[href=\"/timeline\"]", WAIT).await;
    browser.click(&link).await;
    browser.wait_for("section.session", WAIT).await;
    let text = browser.page_text().await;
    let want_in_order = [
        format!("Agent session: pid {}", out.pid),
        "user: clean up rg-old".to_owned(),
        "tool call bash".to_owned(),
        "az group delete --name rg-old".to_owned(),
        "Microsoft.Resources/subscriptions/resourceGroups/read".to_owned(),
        // Its badges, then what it asked.
        "approve denied by root 403".to_owned(),
        "Microsoft.Resources/subscriptions/resourceGroups/delete".to_owned(),
    ];
    let mut from = 0;
    for want in &want_in_order {
        let at = text[from..]
            .find(want.as_str())
            .unwrap_or_else(|| panic!("{want:?} not shown after byte {from}: {text}"));
        from += at + want.len();
    }
    assert_eq!(
        text.matches("Agent session:").count(),
        1,
        "one session: {text}"
    );
    assert!(
        text.contains("1 model calls") && text.contains("1 held"),
        "{text}"
    );
    browser
        .save_screenshot(shots.as_deref(), "timeline.png")
        .await;

    // Filtered to the deletion: the rest of the session is not shown.
    browser
        .goto(&format!(
            "{}/timeline?operation=*resourceGroups%2Fdelete",
            root.origin
        ))
        .await;
    browser.wait_for("section.session", WAIT).await;
    let text = browser.page_text().await;
    assert!(text.contains("resourceGroups/delete"), "{text}");
    assert!(
        !text.contains("resourceGroups/read") && !text.contains("tool call"),
        "{text}"
    );
    browser
        .goto(&format!("{}/timeline?decision=sometimes", root.origin))
        .await;
    let error = browser.wait_for("p.error", WAIT).await;
    assert!(
        browser
            .text(&error)
            .await
            .unwrap()
            .contains("allow, deny or approve"),
        "a bad filter says why"
    );

    // A console user who may not read the trail (not root, not in
    // audit.group) is told so, not shown an empty timeline.
    let (config, _) = console::config(tmp.path(), "outsider.toml", &airlock);
    let outsider = console::start(&config, Some(OUTSIDER)).await;
    let theirs = Browser::start(Some(OUTSIDER)).await;
    theirs.goto(&outsider.login).await;
    theirs.wait_for("#held", WAIT).await;
    theirs.goto(&format!("{}/timeline", outsider.origin)).await;
    let error = theirs.wait_for("p.error", WAIT).await;
    let said = theirs.text(&error).await.unwrap();
    assert!(said.contains("cannot read the trail"), "{said}");
}
