//! Secrets out of what the agent receives and of everything airlock
//! records. Known operations are masked by structure (the JSON paths that
//! carry keys: `listKeys`, Key Vault secrets, Kubernetes Secrets, app
//! settings, kubeconfigs…); every text body, header and query is also
//! scanned by shape ([`detect`]). A secret is replaced, syntax intact, by
//! `airlock:masked:{detector}:{8 hex}` — the suffix a keyed fingerprint
//! (HMAC-SHA256 with a per-host key), so one secret can be followed across
//! records without being revealed. docs/masking.md has the details.

use crate::core::{Findings, truncate};

pub(crate) mod detect;
mod json;
pub(crate) mod kubeconfig;
mod stream;
#[cfg(test)]
mod tests;

pub(crate) use detect::MAX_SECRET;
pub(crate) use stream::{Mode, StreamMasker};

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use ring::hmac;

#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("masking key {}: {why}", path.display())]
    Key {
        path: std::path::PathBuf,
        why: String,
    },
}

/// Masks with one host's key. Cheap to clone.
#[derive(Clone)]
pub struct Masker {
    key: Arc<hmac::Key>,
}

impl std::fmt::Debug for Masker {
    // The key stays out of any output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker").finish_non_exhaustive()
    }
}

impl Masker {
    /// The 32-byte key at `path`, created 0600 if missing; an existing key
    /// readable by group or others is refused (it would let them link
    /// fingerprints back to guessed secrets).
    pub fn load_or_create(path: &Path) -> Result<Self, MaskError> {
        let err = |why: String| MaskError::Key {
            path: path.to_owned(),
            why,
        };
        let mut bytes = [0u8; 32];
        match std::fs::File::open(path) {
            Ok(mut f) => {
                let mode = f
                    .metadata()
                    .map_err(|e| err(e.to_string()))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(err(format!(
                        "mode {:o} lets others read it; chmod 600",
                        mode & 0o777
                    )));
                }
                f.read_exact(&mut bytes)
                    .map_err(|e| err(format!("not a 32-byte key: {e}")))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                    .map_err(|_| err("no randomness".into()))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| err(e.to_string()))?;
                f.write_all(&bytes).map_err(|e| err(e.to_string()))?;
                f.sync_all().map_err(|e| err(e.to_string()))?;
            }
            Err(e) => return Err(err(e.to_string())),
        }
        Ok(Self::from_bytes(&bytes))
    }

    /// A key that lives in memory only (tests, the demo).
    pub fn ephemeral() -> Self {
        let mut bytes = [0u8; 32];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            key: Arc::new(hmac::Key::new(hmac::HMAC_SHA256, bytes)),
        }
    }

    /// The replacement for `secret`: `airlock:masked:{detector}:{8 hex}`.
    pub fn token(&self, detector: &str, secret: &[u8]) -> String {
        let tag = hmac::sign(&self.key, secret);
        let hex = crate::core::hex(&tag.as_ref()[..4]);
        format!("airlock:masked:{detector}:{hex}")
    }

    /// `text` with every detected secret replaced; unchanged (and not
    /// copied) when there is none — the common case for header values and
    /// queries, masked on every request.
    pub fn mask_owned(&self, text: String) -> String {
        let found = detect::find(text.as_bytes());
        if found.is_empty() {
            return text;
        }
        let out = self.mask_found(text.as_bytes(), &found, &mut Findings::default());
        String::from_utf8_lossy(&out).into_owned()
    }

    /// `text` with every detected secret replaced.
    pub fn mask_text(&self, text: &str) -> (String, Findings) {
        let mut findings = Findings::default();
        let out = self.mask_found(
            text.as_bytes(),
            &detect::find(text.as_bytes()),
            &mut findings,
        );
        (String::from_utf8_lossy(&out).into_owned(), findings)
    }

    /// The first `max` bytes of a body for the audit record, masked: the
    /// detectors look [`MAX_SECRET`] further, so no secret is cut in half
    /// unseen. None for an empty body or `max == 0`.
    pub fn excerpt(&self, body: &[u8], max: usize) -> Option<String> {
        if max == 0 || body.is_empty() {
            return None;
        }
        let head = &body[..body.len().min(max + MAX_SECRET)];
        let (masked, _) = self.mask_text(&String::from_utf8_lossy(head));
        Some(truncate(&masked, max).to_owned())
    }
}

impl Masker {
    /// The audit excerpt of a request body of `operation`: one whose
    /// purpose is to carry a secret (see `json::request_plan`) is masked
    /// along its structure first, then by the detectors; `None` when such a
    /// body is not JSON airlock can read (nothing of it is kept rather than
    /// the secret).
    pub(crate) fn request_excerpt(
        &self,
        operation: &str,
        body: &[u8],
        max: usize,
    ) -> Option<String> {
        let Some(plan) = json::request_plan(operation) else {
            return self.excerpt(body, max);
        };
        let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
        json::apply(&mut value, &plan, self, &mut Findings::default());
        self.excerpt(value.to_string().as_bytes(), max)
    }
}

/// Whether request bodies of `operation` carry a secret by design, so
/// their excerpt needs the whole body (see [`Masker::request_excerpt`]).
pub(crate) fn secret_bearing_request(operation: &str) -> bool {
    json::request_plan(operation).is_some()
}

/// As [`Masker::excerpt`], for bytes a masking [`StreamMasker`] already
/// produced: only cut to `max` (scanning them again found nothing new and
/// cost a measurable share of each small response).
///
/// Takes the bytes: text that is valid UTF-8 (nearly all) becomes the
/// excerpt without a copy.
pub(crate) fn masked_excerpt(mut body: Vec<u8>, max: usize) -> Option<String> {
    if max == 0 || body.is_empty() {
        return None;
    }
    // Up to 3 bytes more, so a character cut at `max` is not turned into
    // U+FFFD before the cut drops it.
    body.truncate(max + 3);
    let mut text = String::from_utf8(body)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    let end = truncate(&text, max).len();
    text.truncate(end);
    Some(text)
}

impl Masker {
    /// `bytes` with `found` replaced by tokens.
    fn mask_found(
        &self,
        bytes: &[u8],
        found: &[detect::Found],
        findings: &mut Findings,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        for f in found {
            out.extend_from_slice(&bytes[at..f.start]);
            out.extend_from_slice(self.token(f.detector, &bytes[f.start..f.end]).as_bytes());
            findings.add(f.detector);
            at = f.end;
        }
        out.extend_from_slice(&bytes[at..]);
        out
    }

    /// A masker for a response body of `operation` (see [`json::plan`] for
    /// the structure-aware ones), or `None` when the content type cannot
    /// carry text secrets.
    pub fn response(&self, operation: &str, content_type: Option<&str>) -> Option<StreamMasker> {
        let plan = json::plan(operation);
        if plan.is_none() && !textual(content_type) {
            return None;
        }
        let masker = StreamMasker::new(self.clone(), plan, Mode::Mask);
        let sse = content_type.is_some_and(|c| c.trim_start().starts_with("text/event-stream"));
        Some(if sse { masker.per_event() } else { masker })
    }

    /// A masker for the answer of a batch whose inner requests are
    /// `operations`: each inner response masked as if it had come alone.
    /// `None` when none of them hands out secrets by design.
    pub(crate) fn batch_response(&self, operations: &[String]) -> Option<StreamMasker> {
        let mut plans: Vec<json::Plan> = Vec::new();
        for plan in operations.iter().filter_map(|op| json::plan(op)) {
            if !plans.contains(&plan) {
                plans.push(plan);
            }
        }
        (!plans.is_empty()).then(|| StreamMasker::new(self.clone(), None, Mode::Mask).batch(plans))
    }

    /// A masker for a text request body (a model prompt).
    pub fn request(&self, content_type: Option<&str>, mode: Mode) -> Option<StreamMasker> {
        textual(content_type).then(|| StreamMasker::new(self.clone(), None, mode))
    }

    /// A scanner for a request body, whatever its label: what leaves is
    /// judged by its bytes (an upload labelled `application/octet-stream`
    /// carries a key as well as one labelled text).
    pub(crate) fn scanner(&self) -> StreamMasker {
        StreamMasker::new(self.clone(), None, Mode::Scan)
    }
}

/// `text` with every detected secret replaced by `[REDACTED]` — for places
/// without a masker at hand (command lines, read before any request).
pub(crate) fn redact(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in detect::find(bytes) {
        out.push_str(&String::from_utf8_lossy(&bytes[at..f.start]));
        out.push_str(crate::redact::REDACTED);
        at = f.end;
    }
    out.push_str(&String::from_utf8_lossy(&bytes[at..]));
    out
}

/// Whether `operation`'s responses are masked by structure (they exist to
/// hand out secrets).
pub(crate) fn structured(operation: &str) -> bool {
    json::plan(operation).is_some()
}

/// Content types scanned: text of any kind, JSON, XML, forms, YAML, and no
/// type at all. Images, media, archives and octet streams are not (base64
/// payloads and binary data carry no text secrets airlock could see).
pub(crate) fn textual(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("yaml")
        || ct.contains("javascript")
        || ct == "application/x-www-form-urlencoded"
        || ct == "application/x-ndjson"
        || ct.is_empty()
}
