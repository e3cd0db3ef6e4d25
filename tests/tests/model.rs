//! Model traffic end to end: a Copilot-shaped chat/completions endpoint on
//! loopback HTTPS (HTTP/1.1 and HTTP/2), real curl in a captured cgroup. Secrets in the prompt
//! never leave the host; the stream reaches the client byte for byte; one
//! `kind: "model"` record tells who asked what and what came back.

use airlock_tests::{Intercepted, finish, privileged};
use serde_json::{Value, json};

const COPILOT: &str = "api.githubcopilot.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_leave_masked_and_streams_are_reassembled() {
    if !privileged("prompts_leave_masked_and_streams_are_reassembled") {
        return;
    }
    use base64::Engine;
    let Intercepted {
        cg, up, airlock, ..
    } = Intercepted::start("model", &[COPILOT], |_| {}).await;
    let curl = |headers: Vec<String>, body: String, version: &str| {
        let mut cmd = airlock.client(&cg, "curl");
        cmd.args(["-sS", "-N", "--max-time", "20", version, "--resolve"])
            .arg(format!("{COPILOT}:{}:127.0.0.1", up.port()))
            .args([
                "-H",
                "content-type: application/json",
                "-H",
                "authorization: Bearer tid=abc;exp=1;sku=copilot",
            ]);
        for h in headers {
            cmd.arg("-H").arg(h);
        }
        cmd.arg("--data-binary")
            .arg(body)
            .arg(format!("https://{COPILOT}:{}/chat/completions", up.port()));
        finish(cmd)
    };

    // 1. The prompt carries a storage connection string: the upstream (the
    //    model provider) receives it masked, framing intact.
    let secret = "c2VjcmV0LWtleS12YWx1ZS1mb3ItdGhlLW1vZGVs";
    let prompt = json!({"model": "gpt-4o", "stream": false, "messages": [
        {"role": "user", "content": format!("why does DefaultEndpointsProtocol=https;AccountName=a;AccountKey={secret}; fail?")}
    ]});
    let out = curl(
        vec!["x-test-echo: 1".into()],
        prompt.to_string(),
        "--http1.1",
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let received: Value =
        serde_json::from_str(&out.stdout).expect("the forwarded prompt is still JSON");
    let content = received["messages"][0]["content"].as_str().unwrap();
    assert!(
        !content.contains(secret) && content.contains("AccountKey=airlock:masked:"),
        "{content}"
    );

    // 2. A streamed answer reaches the client byte for byte and is
    //    reassembled into the record, over HTTP/1.1 (chunked) and HTTP/2
    //    (DATA frames).
    let events = [
        json!({"id":"c1","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}),
        json!({"id":"c1","choices":[{"index":0,"delta":{"content":"Use a managed identity:\n"}}]}),
        json!({"id":"c1","choices":[{"index":0,"delta":{"content":"az storage blob list --auth-mode login"}}]}),
        json!({"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}),
    ];
    let mut stream: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    stream.push_str("data: [DONE]\n\n");
    let answer = base64::engine::general_purpose::STANDARD.encode(&stream);
    let ask = json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "how do I list blobs?"}]});
    for (n, (version, alpn)) in [("--http1.1", "http/1.1"), ("--http2", "h2")]
        .into_iter()
        .enumerate()
    {
        let out = curl(
            vec![format!("x-test-respond: {answer}")],
            ask.to_string(),
            version,
        )
        .await;
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            out.stdout, stream,
            "the stream reached the client unchanged ({alpn})"
        );
        let exchanges = airlock.exchanges(2 + n).await;
        assert_eq!(exchanges[1 + n]["tls"]["alpn"], alpn);
        let models = airlock.records_of("model", 2 + n).await;
        let rec = &models[1 + n];
        assert_eq!(rec["operation"], "model.chat.completions");
        assert_eq!(rec["model"], "gpt-4o-2024-08-06");
        assert_eq!(rec["process"]["comm"], "curl");
        assert_eq!(rec["process"]["user"], "nobody", "uid 65534, by name");
        assert_eq!(
            rec["prompt"]["messages"][0]["content"],
            "how do I list blobs?"
        );
        assert_eq!(rec["prompt"]["params"]["stream"], true);
        assert_eq!(
            rec["output"]["text"],
            "Use a managed identity:\naz storage blob list --auth-mode login",
            "{alpn}"
        );
        assert_eq!(rec["output"]["usage"]["total_tokens"], 42);
        assert_eq!(rec["output"]["finish_reason"], "stop");
        assert_eq!(
            rec["identity"]["kind"], "bearer",
            "the Copilot token: kind and fingerprint only"
        );
    }
    let models = airlock.records_of("model", 3).await;
    let first = &models[0];
    assert_eq!(
        first["prompt"]["messages"][0]["content"]
            .as_str()
            .map(|c| c.contains(secret)),
        Some(false)
    );
    let text = std::fs::read_to_string(&airlock.audit_path).unwrap();
    assert!(
        !text.contains(secret) && !text.contains("tid=abc;exp=1"),
        "a secret in the audit trail"
    );
}

/// Who is behind a Copilot session token: the editor exchanges the user's
/// GitHub OAuth token for it at `api.github.com`; airlock sees `/user` and
/// the exchange, and every model call made with the session token carries
/// the account. No token is stored in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copilot_calls_name_the_github_account_behind_them() {
    if !privileged("copilot_calls_name_the_github_account_behind_them") {
        return;
    }
    use base64::Engine;
    const GITHUB: &str = "api.github.com";
    // api.github.com is not intercepted by default: the linkage is opt-in.
    let Intercepted {
        cg, up, airlock, ..
    } = Intercepted::start("copilot-link", &[COPILOT, GITHUB], |c| {
        c.proxy.intercept.push(GITHUB.into());
    })
    .await;
    let oauth = format!("gho_{}", "A1b2C3d4E5".repeat(4).get(..36).unwrap());
    let session = "tid=9f3c;exp=1795900000;sku=copilot_for_business_seat;proxy-ep=proxy.business.githubcopilot.com;8kp=1:5d1e0f4c2b7a9d8e6f1a3c5b7d9e0f21";
    let call = |host: &str, method: &str, path: &str, auth: String, answer: String| {
        let mut cmd = airlock.client(&cg, "curl");
        cmd.args(["-sS", "--max-time", "20", "-X", method, "--resolve"])
            .arg(format!("{host}:{}:127.0.0.1", up.port()))
            .args(["-H", &format!("authorization: {auth}")])
            .args(["-H", "content-type: application/json"])
            .args([
                "-H",
                &format!(
                    "x-test-respond: {}",
                    base64::engine::general_purpose::STANDARD.encode(answer)
                ),
            ]);
        if method == "POST" {
            cmd.args([
                "--data-binary",
                r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
            ]);
        }
        cmd.arg(format!("https://{host}:{}{path}", up.port()));
        finish(cmd)
    };
    let user = call(
        GITHUB,
        "GET",
        "/user",
        format!("token {oauth}"),
        json!({"login": "octocat", "id": 583231}).to_string(),
    )
    .await;
    assert!(user.status.success(), "{user:?}");
    let issued =
        json!({"token": session, "expires_at": 4102444800u64, "refresh_in": 1500}).to_string();
    let got = call(
        GITHUB,
        "GET",
        "/copilot_internal/v2/token",
        format!("token {oauth}"),
        issued.clone(),
    )
    .await;
    assert_eq!(
        got.stdout, issued,
        "the editor gets its session token intact"
    );
    let answer = json!({"id": "c9", "model": "gpt-4o", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}}]});
    let chat = call(
        COPILOT,
        "POST",
        "/chat/completions",
        format!("Bearer {session}"),
        answer.to_string(),
    )
    .await;
    assert!(chat.status.success(), "{chat:?}");

    let exchanges = airlock.exchanges(3).await;
    let exchange = &exchanges[1];
    assert_eq!(
        exchange["request"]["operation"]["name"],
        "github.copilot.token"
    );
    let oauth_fingerprint = exchange["identity"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(oauth_fingerprint.starts_with("sha256:"), "{exchange}");
    let model = airlock.records_of("model", 1).await.pop().unwrap();
    assert_eq!(model["identity"]["kind"], "bearer");
    assert_eq!(model["identity"]["github"]["actor"], "octocat", "{model}");
    assert_eq!(
        model["identity"]["github"]["via"],
        oauth_fingerprint.as_str()
    );
    assert_eq!(model["process"]["user"], "nobody");

    // The Copilot CLI: no exchange; it asks `copilot_internal/user` and
    // sends its OAuth token to the model API as is.
    let cli = format!("gho_{}", "Z9y8X7w6V5".repeat(4).get(..36).unwrap());
    let me = call(
        GITHUB,
        "GET",
        "/copilot_internal/user",
        format!("Bearer {cli}"),
        json!({"login": "hubot", "endpoints": {"api": "https://api.individual.githubcopilot.com"}})
            .to_string(),
    )
    .await;
    assert!(me.status.success(), "{me:?}");
    let chat = call(
        COPILOT,
        "POST",
        "/chat/completions",
        format!("Bearer {cli}"),
        answer.to_string(),
    )
    .await;
    assert!(chat.status.success(), "{chat:?}");
    let models = airlock.records_of("model", 2).await;
    let model = &models[1];
    assert_eq!(model["identity"]["github"]["actor"], "hubot", "{model}");

    let trail = std::fs::read_to_string(&airlock.audit_path).unwrap();
    assert!(!trail.contains(&oauth), "the OAuth token in the trail");
    assert!(!trail.contains(&cli), "the CLI's OAuth token in the trail");
    assert!(
        !trail.contains("5d1e0f4c2b7a9d8e6f1a3c5b7d9e0f21"),
        "the session token in the trail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_cut_anywhere_reach_the_client_unchanged_and_are_reassembled() {
    if !privileged("http2_streams_cut_anywhere_reach_the_client_unchanged_and_are_reassembled") {
        return;
    }
    use base64::Engine;
    let Intercepted {
        cg, up, airlock, ..
    } = Intercepted::start("model-cuts", &[COPILOT], |_| {}).await;
    // Text with multi-byte characters, a tool call in fragments, and an
    // error event: the upstream gives up mid-answer (no `[DONE]`).
    let events = [
        json!({"id":"c2","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}),
        json!({"id":"c2","choices":[{"index":0,"delta":{"content":"Déployez avec "}}]}),
        json!({"id":"c2","choices":[{"index":0,"delta":{"content":"az deployment group create ✓"}}]}),
        json!({"id":"c2","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t1","type":"function","function":{"name":"run_in_terminal","arguments":"{\"cmd\":"}}]}}]}),
        json!({"id":"c2","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"az group list\"}"}}]}}]}),
        json!({"error":{"message":"upstream overloaded","type":"server_error"}}),
    ];
    let stream: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    let at = |needle: &str, offset: usize| stream.find(needle).expect(needle) + offset;
    // Each cut leaves as its own DATA frame: inside `data:`, inside a
    // UTF-8 character, between an event's two newlines, inside a JSON key.
    let cuts = [
        3,
        at("é", 1),
        at("✓", 2),
        at("}\n\n", 2),
        at("\"arguments\"", 5),
        at("data: {\"error", 6),
    ];
    let cuts = cuts.map(|c| c.to_string()).join(",");
    let ask = json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "deploy"}]});
    let mut cmd = airlock.client(&cg, "curl");
    cmd.args(["-sS", "-N", "--max-time", "20", "--http2", "--resolve"])
        .arg(format!("{COPILOT}:{}:127.0.0.1", up.port()))
        .args(["-H", "content-type: application/json"])
        .args(["-H", "authorization: Bearer tid=h2;exp=1;sku=copilot"])
        .args(["-H", "x-test-content-type: text/event-stream"])
        .arg("-H")
        .arg(format!(
            "x-test-respond: {}",
            base64::engine::general_purpose::STANDARD.encode(&stream)
        ))
        .arg("-H")
        .arg(format!("x-test-cuts: {cuts}"))
        .arg("--data-binary")
        .arg(ask.to_string())
        .arg(format!("https://{COPILOT}:{}/chat/completions", up.port()));
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, stream, "the client got the upstream's bytes");

    let rec = &airlock.records_of("model", 1).await[0];
    assert_eq!(
        rec["output"]["text"],
        "Déployez avec az deployment group create ✓"
    );
    assert_eq!(rec["output"]["tool_calls"][0]["name"], "run_in_terminal");
    assert_eq!(
        rec["output"]["tool_calls"][0]["arguments"],
        "{\"cmd\":\"az group list\"}"
    );
    assert_eq!(rec["output"]["error"], "upstream overloaded");
    assert_eq!(rec["output"]["events"], 6);
    assert_eq!(rec["model"], "gpt-4o-2024-08-06");
    let http = &airlock.exchanges(1).await[0];
    assert_eq!(http["tls"]["alpn"], "h2", "HTTP/2 on both sides");
    let digest = ring::digest::digest(&ring::digest::SHA256, stream.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        http["response"]["body"]["sha256"], hex,
        "the record is of exactly what the client received"
    );
}
