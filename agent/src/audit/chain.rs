//! The hash chain: `hash = SHA-256(prev || canonical(record without hash))`,
//! where canonical is the record as compact JSON with keys sorted. Sealing
//! (writer) and checking (verify) share these functions.

use serde_json::{Map, Value};

/// `prev` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Canonical form: compact JSON, keys sorted at every level. serde_json's
/// `Map` is a `BTreeMap` (the `preserve_order` feature is not enabled; a
/// test guards that), so plain serialisation already sorts every level.
pub fn canonical(record: &Map<String, Value>) -> String {
    serde_json::to_string(record).expect("JSON values serialise")
}

/// The hash of a record (which must already carry `prev`, and no `hash`).
pub fn hash(prev: &str, record: &Map<String, Value>) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev.as_bytes());
    ctx.update(canonical(record).as_bytes());
    hex(ctx.finish().as_ref())
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Adds `seq`, `prev` and `hash` to `record`; returns the line to append
/// (with its newline) and the new head of the chain. The record is
/// serialised once: the line is the canonical text with `hash` appended
/// (readers do not depend on key order).
pub fn seal(mut record: Map<String, Value>, seq: u64, prev: &str) -> (Vec<u8>, String) {
    record.insert("seq".into(), seq.into());
    record.insert("prev".into(), prev.into());
    let text = canonical(&record);
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev.as_bytes());
    ctx.update(text.as_bytes());
    let h = hex(ctx.finish().as_ref());
    let mut line = Vec::with_capacity(text.len() + 80);
    line.extend_from_slice(&text.as_bytes()[..text.len() - 1]);
    line.extend_from_slice(b",\"hash\":\"");
    line.extend_from_slice(h.as_bytes());
    line.extend_from_slice(b"\"}\n");
    (line, h)
}

/// Where a chain breaks.
#[derive(Debug, PartialEq, Eq)]
pub struct Break {
    /// 1-based line within the file.
    pub line: usize,
    pub reason: String,
}

/// The chain state carried from one file to the next.
#[derive(Debug, Clone)]
pub struct Head {
    pub hash: String,
    pub seq: u64,
}

/// Checks one file's text, continuing from `head` (None: the first file,
/// which may start anywhere). Returns the new head, or the first break.
pub fn verify_text(text: &str, head: Option<Head>) -> Result<Option<Head>, Break> {
    let mut head = head;
    let complete = text.ends_with('\n') || text.is_empty();
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let fail = |reason: String| Err(Break { line: n, reason });
        if i + 1 == lines.len() && !complete {
            return fail("truncated: the last line is incomplete".into());
        }
        let Ok(Value::Object(mut record)) = serde_json::from_str::<Value>(line) else {
            return fail("not a JSON record (edited or truncated mid-line)".into());
        };
        let (Some(Value::String(claimed)), Some(Value::String(prev)), Some(seq)) = (
            record.remove("hash"),
            record.get("prev").cloned(),
            record.get("seq").and_then(Value::as_u64),
        ) else {
            return fail("missing hash, prev or seq".into());
        };
        if hash(&prev, &record) != claimed {
            return fail("hash mismatch: the record was edited".into());
        }
        if let Some(h) = &head {
            if prev != h.hash {
                return fail(format!(
                    "prev does not match the record before (a record was deleted or reordered; seq {seq} after {})",
                    h.seq
                ));
            }
            if seq != h.seq + 1 {
                return fail(format!(
                    "seq {seq} after {}: a record is missing or out of order",
                    h.seq
                ));
            }
        }
        head = Some(Head { hash: claimed, seq });
    }
    Ok(head)
}

#[cfg(test)]
mod tests;
