//! `[model]`: which hosts serve AI model APIs, and how much of a
//! conversation the record keeps.

use serde::{Deserialize, Serialize};

/// GitHub Copilot's API hosts (also in the default `proxy.intercept`).
pub(super) const DEFAULT_MODEL_HOSTS: &[&str] =
    &["*.githubcopilot.com", "copilot-proxy.githubusercontent.com"];
/// Characters of prompt and of output kept (masked) in a model record.
pub(super) const DEFAULT_MODEL_TEXT_BYTES: usize = 16 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Hosts (exact, or `*.domain`) whose `/chat/completions`,
    /// `/completions` and `/responses` endpoints are model calls; add
    /// `*.openai.azure.com` for Azure OpenAI (and to `proxy.intercept`).
    pub hosts: Vec<String>,
    /// Bytes of the prompt and of the output kept, masked, per record.
    pub text_bytes: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            hosts: DEFAULT_MODEL_HOSTS
                .iter()
                .map(|h| (*h).to_owned())
                .collect(),
            text_bytes: DEFAULT_MODEL_TEXT_BYTES,
        }
    }
}

impl ModelConfig {
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        crate::host::InterceptList::parse(&self.hosts)
            .map(drop)
            .map_err(|e| ("model.hosts", e))
    }
}
