//! What masking found: `masked` in the audit record, and what policy's
//! exfiltration rules (`request.secrets`) are asked about.

use std::collections::BTreeMap;

use serde::Serialize;

/// What was masked in one body, header set or query: `masked` in the
/// audit record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Findings {
    pub count: u32,
    pub detectors: BTreeMap<&'static str, u32>,
}

impl Findings {
    pub fn add(&mut self, detector: &'static str) {
        self.count += 1;
        *self.detectors.entry(detector).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Findings) {
        self.count += other.count;
        for (d, n) in &other.detectors {
            *self.detectors.entry(d).or_default() += n;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A private key or a storage account key: what must not be uploaded.
    pub fn has_key_material(&self) -> bool {
        self.detectors.contains_key("private-key")
            || self.detectors.contains_key("storage-account-key")
    }
}
