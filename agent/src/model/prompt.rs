//! What was asked of the model: model name, parameters, and the messages,
//! masked and capped, with the SHA-256 of the whole request body.

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
        let mut budget = cap;
        let mut push = |p: &mut Prompt, role: &str, text: &str| {
            let (masked, _) = masker.mask_text(text);
            let kept = crate::core::truncate(&masked, budget);
            budget -= kept.len();
            p.truncated |= kept.len() < masked.len();
            p.messages.push(Message {
                role: role.to_owned(),
                content: kept.to_owned(),
            });
        };
        // chat/completions: messages; responses: input (+ instructions);
        // completions: prompt.
        if let Some(msgs) = v["messages"].as_array().or(v["input"].as_array()) {
            for m in msgs {
                push(
                    &mut p,
                    m["role"].as_str().unwrap_or("?"),
                    &text_of(&m["content"]),
                );
            }
        } else if let Some(input) = v["input"].as_str() {
            push(&mut p, "user", input);
        }
        if let Some(instructions) = v["instructions"].as_str() {
            push(&mut p, "system", instructions);
        }
        if let Some(prompt) = v["prompt"].as_str() {
            push(&mut p, "user", prompt);
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
