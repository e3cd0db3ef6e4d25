//! Masking a body as it streams. Detector masking holds back at most
//! [`MAX_SECRET`] bytes, so a secret split across chunks at any byte is
//! still whole in the window that masks it. Structure-aware plans hold the
//! (small) document whole, up to [`STRUCTURED_CAP`]; a larger one falls
//! back to detectors and says so (`structure-too-large`), never passing the
//! rest unscanned.

use bytes::Bytes;

use super::Masker;
use super::detect::{self, MAX_SECRET};
use super::json::{self, Plan};
use crate::core::Findings;

/// Largest document (or watch event) masked by structure.
pub(super) const STRUCTURED_CAP: usize = 4 * 1024 * 1024;

/// What the masker does with what it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Replace secrets in the output.
    Mask,
    /// Only count them: the output is the input, undelayed.
    Scan,
}

#[derive(Debug)]
pub struct StreamMasker {
    masker: Masker,
    plan: Option<Plan>,
    mode: Mode,
    /// Bytes not yet emitted: the look-ahead window, or the document.
    held: Vec<u8>,
    findings: Findings,
    /// Server-sent events: masked event by event, never held back longer
    /// than the event (a model's tokens must flow as they come).
    events: bool,
    /// A batch's answer: its inner responses masked along these plans.
    batch: Vec<Plan>,
}

impl StreamMasker {
    pub(super) fn new(masker: Masker, plan: Option<Plan>, mode: Mode) -> Self {
        Self {
            masker,
            plan,
            mode,
            held: Vec::new(),
            findings: Findings::default(),
            events: false,
            batch: Vec::new(),
        }
    }

    /// Masks a batch's answer, holding it whole like a structured document.
    pub(super) fn batch(mut self, plans: Vec<Plan>) -> Self {
        self.plan = plans.first().copied();
        self.batch = plans;
        self
    }

    /// Masks whole server-sent events (`\n\n`-terminated) as they complete.
    pub(super) fn per_event(mut self) -> Self {
        self.events = true;
        self
    }

    /// Whether the output can differ from the input (masking, not scanning).
    pub fn changes_bytes(&self) -> bool {
        self.mode == Mode::Mask
    }

    pub fn findings(&self) -> &Findings {
        &self.findings
    }

    /// Takes the next chunk; returns what can be sent on now.
    pub fn push(&mut self, chunk: &Bytes) -> Bytes {
        self.held.extend_from_slice(chunk);
        match self.plan {
            Some(plan) if plan.lines => self.lines(false),
            Some(_) if self.held.len() <= STRUCTURED_CAP => Bytes::new(),
            Some(_) => {
                // Too big to hold: from here on, detectors only.
                self.plan = None;
                self.findings.add("structure-too-large");
                self.detect(false)
            }
            None if self.mode == Mode::Scan => {
                self.detect(false);
                chunk.clone()
            }
            None if self.events => self.complete_events(),
            None => self.detect(false),
        }
    }

    /// Everything up to the last complete event, masked; an event longer
    /// than the look-ahead falls back to ordinary streaming.
    fn complete_events(&mut self) -> Bytes {
        let Some(end) = memchr::memmem::rfind(&self.held, b"\n\n").map(|i| i + 2) else {
            return if self.held.len() > MAX_SECRET {
                self.detect(false)
            } else {
                Bytes::new()
            };
        };
        let found = detect::find(&self.held[..end]);
        let out = apply(
            &self.masker,
            self.mode,
            &mut self.findings,
            &self.held[..end],
            &found,
        );
        self.held.drain(..end);
        Bytes::from(out)
    }

    /// The end of the body: everything still held, masked.
    pub fn finish(&mut self) -> Bytes {
        match self.plan {
            Some(plan) if plan.lines => self.lines(true),
            Some(plan) => {
                let doc = std::mem::take(&mut self.held);
                self.held = self.structured(&doc, &plan);
                self.detect(true)
            }
            None if self.mode == Mode::Scan => {
                self.detect(true);
                Bytes::new()
            }
            None => self.detect(true),
        }
    }

    /// One JSON document masked along `plan`; not JSON: returned as is, for
    /// the detectors.
    fn structured(&mut self, doc: &[u8], plan: &Plan) -> Vec<u8> {
        match serde_json::from_slice::<serde_json::Value>(doc) {
            Ok(mut value) if !self.batch.is_empty() => {
                json::apply_batch(&mut value, &self.batch, &self.masker, &mut self.findings);
                serde_json::to_vec(&value).unwrap_or_else(|_| doc.to_vec())
            }
            Ok(mut value) => {
                json::apply(&mut value, plan, &self.masker, &mut self.findings);
                serde_json::to_vec(&value).unwrap_or_else(|_| doc.to_vec())
            }
            Err(_) => doc.to_vec(),
        }
    }

    /// Newline-delimited events: each complete line masked by structure.
    fn lines(&mut self, end: bool) -> Bytes {
        let Some(plan) = self.plan else {
            return Bytes::new();
        };
        let cut = if end {
            self.held.len()
        } else {
            match self.held.iter().rposition(|&c| c == b'\n') {
                Some(i) => i + 1,
                None if self.held.len() > STRUCTURED_CAP => {
                    self.findings.add("structure-too-large");
                    self.plan = None;
                    return self.detect(false);
                }
                None => return Bytes::new(),
            }
        };
        let ready: Vec<u8> = self.held.drain(..cut).collect();
        let mut out = Vec::with_capacity(ready.len());
        for line in ready.split_inclusive(|&c| c == b'\n') {
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            let masked = self.structured(body, &plan);
            let found = detect::find(&masked);
            out.extend(apply(
                &self.masker,
                self.mode,
                &mut self.findings,
                &masked,
                &found,
            ));
            if line.ends_with(b"\n") {
                out.push(b'\n');
            }
        }
        Bytes::from(out)
    }

    /// Detector pass over what is held: everything when `end`, else all but
    /// the last [`MAX_SECRET`] bytes (extended past any secret that starts
    /// before that point).
    fn detect(&mut self, end: bool) -> Bytes {
        let len = self.held.len();
        let mut upto = if end {
            len
        } else {
            len.saturating_sub(MAX_SECRET)
        };
        if upto == 0 {
            return Bytes::new();
        }
        let found: Vec<detect::Found> = detect::find(&self.held)
            .into_iter()
            .filter(|f| f.start < upto)
            .collect();
        if let Some(last) = found.last() {
            upto = upto.max(last.end);
        }
        let out = apply(
            &self.masker,
            self.mode,
            &mut self.findings,
            &self.held[..upto],
            &found,
        );
        self.held.drain(..upto);
        Bytes::from(out)
    }
}

/// `bytes` with `found` masked (or only counted, in [`Mode::Scan`]).
fn apply(
    masker: &Masker,
    mode: Mode,
    findings: &mut Findings,
    bytes: &[u8],
    found: &[detect::Found],
) -> Vec<u8> {
    match mode {
        Mode::Mask => masker.mask_found(bytes, found, findings),
        // Scanning passes the input on itself; nothing to build.
        Mode::Scan => {
            for f in found {
                findings.add(f.detector);
            }
            Vec::new()
        }
    }
}
