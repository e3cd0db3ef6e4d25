//! `[policy]`: where the rules come from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How often the policy directory is checked for changes, milliseconds.
pub(super) const DEFAULT_POLICY_POLL_MS: u64 = 2000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Directory of `*.toml` policy files. None: the policies shipped in
    /// airlock's `policies/` (embedded in the binary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Poll `dir` for changes (SIGHUP reloads too); 0 turns polling off.
    pub poll_ms: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            dir: None,
            poll_ms: DEFAULT_POLICY_POLL_MS,
        }
    }
}
