//! Model traffic: calls to AI model APIs (GitHub Copilot, OpenAI-compatible
//! `/chat/completions`, `/completions`, `/responses`) recognised by host
//! and path, their prompts summarised (masked, capped, hashed whole) and
//! their output — usually a server-sent-event stream — reassembled on the
//! side as it is relayed, into one `kind: "model"` record per call: who
//! prompted, what the model emitted, what it asked tools to do.

mod output;
mod prompt;
#[cfg(test)]
mod tests;

pub(crate) use output::{Output, Reassembler};
pub(crate) use prompt::Prompt;

use serde::Serialize;

use crate::config::ModelConfig;
use crate::core::{Operation, Service};
use crate::host::InterceptList;

/// Which hosts serve model APIs.
#[derive(Debug)]
pub(crate) struct ModelHosts {
    hosts: InterceptList,
    text_bytes: usize,
    stream_text_bytes: usize,
}

impl ModelHosts {
    pub(crate) fn new(config: &ModelConfig) -> Self {
        Self {
            hosts: InterceptList::parse(&config.hosts).expect("validated at load"),
            text_bytes: config.text_bytes,
            stream_text_bytes: config.stream_text_bytes,
        }
    }

    /// The operation, when `host` + `path` is a model call:
    /// `model.chat.completions`, `model.completions` or `model.responses`.
    pub(crate) fn classify(&self, host: &str, path: &str) -> Option<Operation> {
        if !self.hosts.matches(host) {
            return None;
        }
        let path = path.trim_end_matches('/');
        let name = if path.ends_with("/chat/completions") {
            "model.chat.completions"
        } else if path.ends_with("/completions") {
            "model.completions"
        } else if path.ends_with("/responses") {
            "model.responses"
        } else {
            return None;
        };
        Some(Operation::new(Service::Model, name))
    }

    /// Bytes of prompt and output text a record keeps.
    pub(crate) fn text_bytes(&self) -> usize {
        self.text_bytes
    }

    /// A reassembly for one streamed answer, its memory bounded by
    /// `model.stream_text_bytes`.
    pub(crate) fn reassembler(&self) -> Reassembler {
        Reassembler::new(self.stream_text_bytes)
    }
}

/// `kind: "model"`: one model call, written when its response ends.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ModelRecord {
    pub kind: crate::core::record::RecordKind,
    /// The `http` exchange's id (its records carry the wire details).
    pub exchange: String,
    pub process: std::sync::Arc<crate::core::ProcessInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<std::sync::Arc<crate::core::Identity>>,
    pub host: String,
    pub operation: String,
    pub prompt: Prompt,
    /// Secrets masked out of the prompt before it left the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked: Option<crate::core::Findings>,
    pub output: Output,
    /// The model as the response names it (else as requested).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub status: u16,
    pub duration_ms: u64,
}
