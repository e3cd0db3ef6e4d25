//! `[masking]`: the key behind masked-secret fingerprints.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where the fingerprint key lives (the state directory).
pub(super) const DEFAULT_MASKING_KEY: &str = "/var/lib/airlock/masking.key";
/// Largest request body read whole to look for secrets before it is
/// forwarded (bigger ones are scanned as they stream).
pub(super) const DEFAULT_SCAN_BEFORE_FORWARD: usize = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskingConfig {
    /// 32-byte HMAC key (created 0600) keying the `airlock:masked:…:xxxx`
    /// fingerprints, so one secret can be followed across records.
    pub key_file: PathBuf,
    /// Request bodies up to this size are read whole and scanned before
    /// forwarding, so policy can refuse an upload that carries a key.
    pub scan_before_forward_bytes: usize,
}

impl Default for MaskingConfig {
    fn default() -> Self {
        Self {
            key_file: PathBuf::from(DEFAULT_MASKING_KEY),
            scan_before_forward_bytes: DEFAULT_SCAN_BEFORE_FORWARD,
        }
    }
}

impl MaskingConfig {
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.key_file.is_absolute() {
            return Err(("masking.key_file", "must be an absolute path".to_owned()));
        }
        Ok(())
    }
}
