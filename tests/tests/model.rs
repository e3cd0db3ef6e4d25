//! Model traffic end to end: a Copilot-shaped chat/completions endpoint on
//! loopback HTTPS, real curl in a captured cgroup. Secrets in the prompt
//! never leave the host; the stream reaches the client byte for byte; one
//! `kind: "model"` record tells who asked what and what came back.

use airlock_tests::pki::TestPki;
use airlock_tests::tls_upstream::TlsUpstream;
use airlock_tests::{Running, TempDir, TestCgroup, finish, privileged};
use serde_json::{Value, json};

const COPILOT: &str = "api.githubcopilot.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_leave_masked_and_streams_are_reassembled() {
    if !privileged("prompts_leave_masked_and_streams_are_reassembled") {
        return;
    }
    use base64::Engine;
    let tmp = TempDir::new("model");
    let pki = TestPki::new("model test upstream CA");
    let up = TlsUpstream::start(
        pki.server_config(&[COPILOT], &[b"h2", b"http/1.1"]),
        &["127.0.0.1:0".parse().unwrap()],
    )
    .await;
    let roots = pki.write_ca(tmp.path());
    let cg = TestCgroup::new("model");
    let airlock = Running::start_with(Running::capture(&cg, &[up.port()]), |c| {
        c.tls.upstream_roots = vec![roots];
    })
    .await;
    let curl = |headers: Vec<String>, body: String| {
        let mut cmd = cg.command("curl");
        cmd.args(["-sS", "-N", "--max-time", "20", "--resolve"])
            .arg(format!("{COPILOT}:{}:127.0.0.1", up.port()))
            .arg("--cacert")
            .arg(airlock.ca_cert())
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
    let out = curl(vec!["x-test-echo: 1".into()], prompt.to_string()).await;
    assert!(out.status.success(), "{out:?}");
    let received: Value =
        serde_json::from_str(&out.stdout).expect("the forwarded prompt is still JSON");
    let content = received["messages"][0]["content"].as_str().unwrap();
    assert!(
        !content.contains(secret) && content.contains("AccountKey=airlock:masked:"),
        "{content}"
    );

    // 2. A streamed answer reaches the client byte for byte and is
    //    reassembled into the record.
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
    let out = curl(vec![format!("x-test-respond: {answer}")], ask.to_string()).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        out.stdout, stream,
        "the stream reached the client unchanged"
    );

    let models = airlock.records_of("model", 2).await;
    let rec = models.last().unwrap();
    assert_eq!(rec["operation"], "model.chat.completions");
    assert_eq!(rec["model"], "gpt-4o-2024-08-06");
    assert_eq!(rec["process"]["comm"], "curl");
    assert_eq!(
        rec["prompt"]["messages"][0]["content"],
        "how do I list blobs?"
    );
    assert_eq!(rec["prompt"]["params"]["stream"], true);
    assert_eq!(
        rec["output"]["text"],
        "Use a managed identity:\naz storage blob list --auth-mode login"
    );
    assert_eq!(rec["output"]["usage"]["total_tokens"], 42);
    assert_eq!(rec["output"]["finish_reason"], "stop");
    assert_eq!(
        rec["identity"]["kind"], "bearer",
        "the Copilot token: kind and fingerprint only"
    );
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
