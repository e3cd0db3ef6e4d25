//! What was asked of the model: model name, parameters, and the messages,
//! masked and capped, with the SHA-256 of the whole request body. The cap
//! is spent newest first, so the last turn (what the user and the tools
//! just said) is always what stays; the system prompt, often most of the
//! request (the Copilot CLI's is ~40 KB), is summarised apart.

use serde::Serialize;
use serde_json::Value;

use crate::mask::Masker;

/// Request parameters worth recording (never the messages themselves).
const PARAMS: &[&str] = &[
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "n",
    "stream",
    "tool_choice",
    "reasoning_effort",
];

#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Prompt {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, Value>,
    pub messages: Vec<Message>,
    /// The system (or developer) prompt and `instructions`, summarised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// Tools offered to the model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// The request body as sent (after outbound masking).
    pub bytes: u64,
    pub sha256: String,
    /// Some message text was cut at the cap.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Message {
    pub role: String,
    pub content: String,
}

/// The system prompt, which repeats on every call: its size, the SHA-256
/// of its masked text (equal prompts, equal digests), and how it begins.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SystemPrompt {
    pub bytes: u64,
    pub sha256: String,
    pub head: String,
}

/// Bytes of the system prompt's beginning kept in `system.head`.
const SYSTEM_HEAD: usize = 256;

/// Roles whose messages are the system prompt.
const SYSTEM_ROLES: &[&str] = &["system", "developer"];

impl Prompt {
    /// Reads a chat/completions/responses request body; text is masked and
    /// at most `cap` bytes of it kept in all.
    pub(crate) fn parse(body: &[u8], masker: &Masker, cap: usize) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, body);
        let mut p = Prompt {
            bytes: body.len() as u64,
            sha256: crate::core::hex(digest.as_ref()),
            ..Prompt::default()
        };
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return p;
        };
        p.model = v["model"].as_str().map(str::to_owned);
        for k in PARAMS {
            if let Some(x) = v.get(*k) {
                p.params.insert((*k).to_owned(), x.clone());
            }
        }
        p.tools = v["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["function"]["name"].as_str().or(t["name"].as_str()))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let mut said: Vec<(String, String)> = Vec::new();
        let mut system: Vec<String> = Vec::new();
        let mut add = |role: &str, text: &str| {
            let (masked, _) = masker.mask_text(text);
            if SYSTEM_ROLES.contains(&role) {
                system.push(masked);
            } else {
                said.push((role.to_owned(), masked));
            }
        };
        // chat/completions: messages; responses: input (+ instructions);
        // completions: prompt.
        if let Some(msgs) = v["messages"].as_array().or(v["input"].as_array()) {
            for m in msgs {
                add(m["role"].as_str().unwrap_or("?"), &text_of(&m["content"]));
            }
        } else if let Some(input) = v["input"].as_str() {
            add("user", input);
        }
        if let Some(instructions) = v["instructions"].as_str() {
            add("system", instructions);
        }
        if let Some(prompt) = v["prompt"].as_str() {
            add("user", prompt);
        }
        if !system.is_empty() {
            let text = system.join("\n");
            let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
            p.system = Some(SystemPrompt {
                bytes: text.len() as u64,
                sha256: crate::core::hex(digest.as_ref()),
                head: crate::core::truncate(&text, SYSTEM_HEAD).to_owned(),
            });
        }
        // Newest first: the last turn is kept before anything older.
        let mut budget = cap;
        let mut kept = vec![0; said.len()];
        for (i, (_, text)) in said.iter().enumerate().rev() {
            kept[i] = crate::core::truncate(text, budget).len();
            budget -= kept[i];
        }
        for ((role, mut text), keep) in said.into_iter().zip(kept) {
            p.truncated |= keep < text.len();
            text.truncate(keep);
            p.messages.push(Message {
                role,
                content: text,
            });
        }
        p
    }
}

/// A message's text: a string, or the text parts of a content array.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}
