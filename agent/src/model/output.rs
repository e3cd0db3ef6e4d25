//! What the model emitted, reassembled from the response as it is relayed:
//! server-sent events (`data: {…}` lines, split anywhere across chunks) or
//! a plain JSON body. Chat completions deltas, tool-call fragments, the
//! Responses API's `response.output_text.delta` events, usage and finish
//! reason.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::core::truncate;
use crate::mask::Masker;

/// Longest single SSE line or JSON body looked at (a model's stream is
/// many small events; a line bigger than this is skipped, not buffered).
const MAX_LINE: usize = 1 << 20;

/// Tool calls kept per answer (a model emits a handful).
const MAX_TOOLS: usize = 128;

/// The reassembly, fed with the bytes the client receives.
pub(crate) struct Reassembler {
    /// An incomplete line, or the whole body when it is not SSE.
    pending: Vec<u8>,
    sse: Option<bool>,
    /// The text, up to `cap` bytes; `total` and `digest` cover all of it.
    text: String,
    cap: usize,
    total: u64,
    digest: ring::digest::Context,
    tools: BTreeMap<u64, ToolCall>,
    usage: Option<Value>,
    model: Option<String>,
    finish_reason: Option<String>,
    events: u64,
    /// A stream that said `error` (or an `error` member in an event).
    error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct ToolCall {
    pub name: String,
    pub arguments: String,
}

/// `output` of a model record.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Output {
    /// The assistant's text (masked, capped): the code the model emitted.
    pub text: String,
    /// Bytes of the whole reassembled text, and its SHA-256.
    pub bytes: u64,
    pub sha256: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Server-sent events seen (0: a plain JSON response).
    pub events: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The model named in the response.
    #[serde(skip)]
    pub model: Option<String>,
}

impl std::fmt::Debug for Reassembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reassembler")
            .field("total", &self.total)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// Appends `more` to `to`, keeping `to` within `cap` bytes (cut at a
/// character boundary).
fn push_capped(to: &mut String, more: &str, cap: usize) {
    let room = cap.saturating_sub(to.len());
    to.push_str(truncate(more, room));
}

impl Reassembler {
    /// A reassembly keeping at most `cap` bytes of text (and of each tool
    /// call's arguments).
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            pending: Vec::new(),
            sse: None,
            text: String::new(),
            cap,
            total: 0,
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            tools: BTreeMap::new(),
            usage: None,
            model: None,
            finish_reason: None,
            events: 0,
            error: None,
        }
    }

    /// More of the answer's text: counted and hashed whole, kept up to
    /// the cap.
    fn push_text(&mut self, t: &str) {
        self.total += t.len() as u64;
        self.digest.update(t.as_bytes());
        push_capped(&mut self.text, t, self.cap);
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        // SSE or a JSON body: told by the first byte that is not white
        // space, however the body is cut (an empty or blank first frame
        // decides nothing).
        let sse = match self.sse {
            Some(sse) => sse,
            None => match bytes.iter().find(|c| !c.is_ascii_whitespace()) {
                Some(first) => *self.sse.insert(*first != b'{'),
                None => return,
            },
        };
        if self.pending.len() < MAX_LINE {
            self.pending
                .extend_from_slice(&bytes[..bytes.len().min(MAX_LINE)]);
        }
        if !sse {
            return;
        }
        while let Some(nl) = self.pending.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            self.line(&line);
        }
    }

    fn line(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let Some(data) = line.trim_end().strip_prefix("data:") else {
            return;
        };
        let data = data.trim();
        if data.is_empty() || data == "[DONE]" {
            return;
        }
        self.events += 1;
        if let Ok(v) = serde_json::from_str::<Value>(data) {
            self.event(&v);
        }
    }

    fn event(&mut self, v: &Value) {
        if let Some(m) = v["model"].as_str().or(v["response"]["model"].as_str()) {
            self.model = Some(m.to_owned());
        }
        if let Some(e) = v["error"].as_object() {
            self.error = Some(
                e.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_owned(),
            );
        }
        // Responses API events.
        match v["type"].as_str() {
            Some("response.output_text.delta") => {
                self.push_text(v["delta"].as_str().unwrap_or(""));
                return;
            }
            Some("response.completed") => {
                self.usage = v["response"]["usage"]
                    .as_object()
                    .map(|u| Value::Object(u.clone()));
                return;
            }
            _ => {}
        }
        if !v["usage"].is_null() {
            self.usage = Some(v["usage"].clone());
        }
        for choice in v["choices"].as_array().into_iter().flatten() {
            let delta = if choice["delta"].is_object() {
                &choice["delta"]
            } else {
                &choice["message"]
            };
            if let Some(t) = delta["content"].as_str().or(choice["text"].as_str()) {
                self.push_text(t);
            }
            for (i, call) in delta["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let index = call["index"].as_u64().unwrap_or(i as u64);
                if self.tools.len() >= MAX_TOOLS && !self.tools.contains_key(&index) {
                    continue;
                }
                let cap = self.cap;
                let entry = self.tools.entry(index).or_default();
                if let Some(n) = call["function"]["name"].as_str() {
                    push_capped(&mut entry.name, n, 256);
                }
                if let Some(a) = call["function"]["arguments"].as_str() {
                    push_capped(&mut entry.arguments, a, cap);
                }
            }
            if let Some(r) = choice["finish_reason"].as_str() {
                self.finish_reason = Some(r.to_owned());
            }
        }
    }

    /// The reassembled output, text and tool arguments masked, at most
    /// `cap` bytes of text kept.
    pub(crate) fn finish(mut self, masker: &Masker, cap: usize) -> Output {
        if self.sse == Some(false) {
            if let Ok(v) = serde_json::from_slice::<Value>(&self.pending) {
                self.event(&v);
            }
        } else if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.line(&rest);
        }
        let digest = self.digest.finish();
        let (masked, _) = masker.mask_text(&self.text);
        let kept = truncate(&masked, cap);
        Output {
            truncated: kept.len() < masked.len() || (self.text.len() as u64) < self.total,
            text: kept.to_owned(),
            bytes: self.total,
            sha256: crate::core::hex(digest.as_ref()),
            tool_calls: self
                .tools
                .into_values()
                .map(|t| ToolCall {
                    name: t.name,
                    arguments: truncate(&masker.mask_text(&t.arguments).0, cap).to_owned(),
                })
                .collect(),
            usage: self.usage,
            finish_reason: self.finish_reason,
            events: self.events,
            error: self.error,
            model: self.model,
        }
    }
}
