//! `[model]`: which hosts serve AI model APIs, and how much of a
//! conversation the record keeps.

use serde::{Deserialize, Serialize};

/// GitHub Copilot's API hosts (also in the default `proxy.intercept`).
pub(super) const DEFAULT_MODEL_HOSTS: &[&str] =
    &["*.githubcopilot.com", "copilot-proxy.githubusercontent.com"];
/// Characters of prompt and of output kept (masked) in a model record.
pub(super) const DEFAULT_MODEL_TEXT_BYTES: usize = 16 * 1024;
/// Bytes of a streamed answer's text (and of each tool call's arguments)
/// assembled in memory while it is relayed; the rest is counted and
/// hashed, not kept.
pub(super) const DEFAULT_MODEL_STREAM_TEXT_BYTES: usize = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Hosts (exact, or `*.domain`) whose `/chat/completions`,
    /// `/completions` and `/responses` endpoints are model calls; add
    /// `*.openai.azure.com` for Azure OpenAI (and to `proxy.intercept`).
    pub hosts: Vec<String>,
    /// Bytes of the prompt and of the output kept, masked, per record.
    pub text_bytes: usize,
    /// Bytes of a streamed answer's text (and of each tool call's
    /// arguments) assembled while it is relayed; past it, the text is
    /// counted and hashed but not kept (`output.truncated`).
    pub stream_text_bytes: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            hosts: DEFAULT_MODEL_HOSTS
                .iter()
                .map(|h| (*h).to_owned())
                .collect(),
            text_bytes: DEFAULT_MODEL_TEXT_BYTES,
            stream_text_bytes: DEFAULT_MODEL_STREAM_TEXT_BYTES,
        }
    }
}

impl ModelConfig {
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.stream_text_bytes < self.text_bytes {
            return Err((
                "model.stream_text_bytes",
                format!(
                    "must be at least model.text_bytes ({}): the record keeps text from what was assembled",
                    self.text_bytes
                ),
            ));
        }
        crate::host::InterceptList::parse(&self.hosts)
            .map(drop)
            .map_err(|e| ("model.hosts", e))
    }
}
