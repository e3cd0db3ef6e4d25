//! Prompts summarised and streams reassembled, split anywhere.

use serde_json::json;

use super::*;
use crate::mask::Masker;

fn sse(events: &[serde_json::Value]) -> String {
    let mut s: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    s.push_str("data: [DONE]\n\n");
    s
}

fn chat_stream() -> String {
    sse(&[
        json!({"id":"c1","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}),
        json!({"id":"c1","choices":[{"index":0,"delta":{"content":"fn main() {\n"}}]}),
        json!({"id":"c1","choices":[{"index":0,"delta":{"content":"    println!(\"hi\");\n}"}}]}),
        json!({"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t1","type":"function","function":{"name":"run_in_terminal","arguments":"{\"cmd\":"}}]}}]}),
        json!({"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"cargo test\"}"}}]},"finish_reason":"tool_calls"}]}),
        json!({"id":"c1","choices":[],"usage":{"prompt_tokens":120,"completion_tokens":17,"total_tokens":137}}),
    ])
}

#[test]
fn a_stream_split_anywhere_reassembles_the_same() {
    let m = Masker::ephemeral();
    let stream = chat_stream();
    let whole = {
        let mut r = Reassembler::new(1 << 20);
        r.feed(stream.as_bytes());
        r.finish(&m, 1 << 20)
    };
    assert_eq!(whole.text, "fn main() {\n    println!(\"hi\");\n}");
    assert_eq!(whole.tool_calls[0].name, "run_in_terminal");
    assert_eq!(whole.tool_calls[0].arguments, "{\"cmd\":\"cargo test\"}");
    assert_eq!(whole.usage.as_ref().unwrap()["total_tokens"], 137);
    assert_eq!(whole.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(whole.model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(whole.events, 6);
    for split in 1..stream.len() {
        let mut r = Reassembler::new(1 << 20);
        r.feed(&stream.as_bytes()[..split]);
        r.feed(&stream.as_bytes()[split..]);
        let out = r.finish(&m, 1 << 20);
        assert_eq!(
            (out.text.as_str(), out.sha256.as_str()),
            (whole.text.as_str(), whole.sha256.as_str()),
            "split at {split}"
        );
    }
}

#[test]
fn a_long_answer_costs_the_cap_in_memory_and_is_still_counted_whole() {
    let m = Masker::ephemeral();
    let stream = chat_stream();
    let whole = {
        let mut r = Reassembler::new(1 << 20);
        r.feed(stream.as_bytes());
        r.finish(&m, 1 << 20)
    };
    // Ten bytes assembled: the rest is counted and hashed, not kept.
    let mut r = Reassembler::new(10);
    r.feed(stream.as_bytes());
    let out = r.finish(&m, 1 << 20);
    assert_eq!(out.text, "fn main() ");
    assert!(out.truncated);
    assert_eq!(
        (out.bytes, out.sha256.as_str()),
        (whole.bytes, whole.sha256.as_str())
    );
    assert_eq!(
        out.tool_calls[0].arguments, "{\"cmd\":\"ca",
        "arguments are capped too"
    );
    // A flood of tool calls keeps a bounded number of them.
    let mut r = Reassembler::new(10);
    for i in 0..1000 {
        let event = json!({"choices":[{"delta":{"tool_calls":[{"index":i,"function":{"name":"t","arguments":"x"}}]}}]});
        r.feed(format!("data: {event}\n\n").as_bytes());
    }
    assert_eq!(r.finish(&m, 100).tool_calls.len(), 128);
}

/// Found by the `model_stream` fuzz target: an empty (or blank) first
/// frame made a JSON answer read as SSE, and lost it.
#[test]
fn an_empty_or_blank_first_frame_decides_nothing() {
    let m = Masker::ephemeral();
    let json = br#"{"model":"gpt-4o","choices":[{"message":{"content":"ok"}}]}"#;
    for first in [&b""[..], b"\n", b"  \r\n"] {
        let mut r = Reassembler::new(1 << 20);
        r.feed(first);
        r.feed(json);
        assert_eq!(r.finish(&m, 100).text, "ok", "{first:?}");
    }
}

#[test]
fn plain_json_and_responses_api_and_errors() {
    let m = Masker::ephemeral();
    let mut r = Reassembler::new(1 << 20);
    r.feed(br#"{"model":"gpt-4o","choices":[{"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"total_tokens":3}}"#);
    let out = r.finish(&m, 100);
    assert_eq!((out.text.as_str(), out.events), ("ok", 0));

    let mut r = Reassembler::new(1 << 20);
    r.feed(b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"He\"}\n\n");
    r.feed(b"data: {\"type\":\"response.output_text.delta\",\"delta\":\"llo\"}\n\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"total_tokens\":9}}}\n\n");
    let out = r.finish(&m, 100);
    assert_eq!(out.text, "Hello");
    assert_eq!(out.usage.unwrap()["total_tokens"], 9);

    let mut r = Reassembler::new(1 << 20);
    r.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\ndata: {\"error\":{\"message\":\"upstream overloaded\"}}\n\n");
    let out = r.finish(&m, 100);
    assert_eq!(
        (out.text.as_str(), out.error.as_deref()),
        ("par", Some("upstream overloaded"))
    );
}

#[test]
fn emitted_secrets_are_masked_in_the_record_and_text_is_capped() {
    let m = Masker::ephemeral();
    let key = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";
    let mut r = Reassembler::new(1 << 20);
    r.feed(sse(&[json!({"choices":[{"delta":{"content":format!("token = \"{key}\"\n{}", "x".repeat(100))}}]})]).as_bytes());
    let out = r.finish(&m, 40);
    assert!(!out.text.contains(key) && out.text.contains("airlock:masked:github-token:"));
    assert!(out.truncated && out.text.len() <= 40);
}

#[test]
fn prompts_are_masked_capped_and_hashed_whole() {
    let m = Masker::ephemeral();
    let body = json!({
        "model": "gpt-4o", "temperature": 0.1, "stream": true,
        "tools": [{"type": "function", "function": {"name": "run_in_terminal"}}],
        "messages": [
            {"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": [{"type": "text", "text": "deploy with AccountKey=c2VjcmV0LWtleS12YWx1ZQ== please"}]}
        ]
    })
    .to_string();
    let p = Prompt::parse(body.as_bytes(), &m, 1 << 20);
    assert_eq!(p.model.as_deref(), Some("gpt-4o"));
    assert_eq!(p.params["temperature"], 0.1);
    assert_eq!(p.tools, ["run_in_terminal"]);
    assert_eq!(p.messages.len(), 1, "the system prompt is summarised apart");
    assert_eq!(p.system.as_ref().unwrap().head, "You are a coding agent.");
    assert!(
        !p.messages[0].content.contains("c2VjcmV0")
            && p.messages[0].content.contains("airlock:masked:")
    );
    assert_eq!(p.bytes, body.len() as u64);
    let capped = Prompt::parse(body.as_bytes(), &m, 10);
    assert!(
        capped.truncated
            && capped
                .messages
                .iter()
                .map(|x| x.content.len())
                .sum::<usize>()
                <= 10
    );
}

#[test]
fn the_last_turn_is_kept_whatever_the_system_prompt_and_history_cost() {
    // The Copilot CLI's shape: ~40 KB of system prompt, a long history,
    // then the user's message and a tool's answer.
    let m = Masker::ephemeral();
    let system = "You are the GitHub Copilot CLI. ".repeat(1300);
    let history: Vec<_> = (0..20)
        .flat_map(|i| {
            [
                json!({"role": "user", "content": format!("step {i}: {}", "x".repeat(900))}),
                json!({"role": "assistant", "content": "y".repeat(900)}),
            ]
        })
        .collect();
    let mut messages = vec![json!({"role": "system", "content": system})];
    messages.extend(history);
    messages.push(json!({"role": "user", "content": "delete the staging resource group"}));
    messages.push(json!({"role": "tool", "content": "az group list: rg-staging, rg-prod"}));
    let body = json!({"model": "claude-sonnet-4", "messages": messages}).to_string();
    assert!(body.len() > 50_000);
    let p = Prompt::parse(body.as_bytes(), &m, 16 * 1024);
    let last = &p.messages[p.messages.len() - 2..];
    assert_eq!(last[0].content, "delete the staging resource group");
    assert_eq!(last[1].content, "az group list: rg-staging, rg-prod");
    assert!(p.truncated);
    assert!(p.messages.iter().map(|x| x.content.len()).sum::<usize>() <= 16 * 1024);
    let sys = p.system.unwrap();
    assert_eq!(sys.bytes as usize, system.len());
    assert!(sys.head.starts_with("You are the GitHub Copilot CLI.") && sys.head.len() <= 256);
    assert!(!p.messages.iter().any(|x| x.role == "system"));
}

#[test]
fn model_hosts_and_endpoints() {
    let hosts = ModelHosts::new(&crate::config::ModelConfig::default());
    let name = |h: &str, p: &str| hosts.classify(h, p).map(|o| o.name);
    assert_eq!(
        name("api.githubcopilot.com", "/chat/completions").as_deref(),
        Some("model.chat.completions")
    );
    assert_eq!(
        name("api.business.githubcopilot.com", "/v1/chat/completions").as_deref(),
        Some("model.chat.completions")
    );
    assert_eq!(
        name(
            "copilot-proxy.githubusercontent.com",
            "/v1/engines/x/completions"
        )
        .as_deref(),
        Some("model.completions")
    );
    assert_eq!(
        name("api.githubcopilot.com", "/responses").as_deref(),
        Some("model.responses")
    );
    assert_eq!(name("api.githubcopilot.com", "/models"), None);
    assert_eq!(
        name(
            "example.openai.azure.com",
            "/openai/deployments/d/chat/completions"
        ),
        None,
        "not configured"
    );
}
