//! The hash chain: `hash = SHA-256(prev || canonical(record without hash))`.
//! The canonical form is the record's bytes exactly as written, minus the
//! trailing `"hash"` member: the writer emits `{"seq":…,"prev":"…",<body>}`
//! and appends `,"hash":"…"` before the closing brace, so sealing needs no
//! re-serialisation and any change to a byte of a line breaks its hash.

use crate::core::hex;

use serde_json::Value;

/// `prev` of the very first record.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What follows the canonical text on every line: `,"hash":"<64 hex>"}`.
const HASH_MEMBER: &[u8] = b",\"hash\":\"";

/// SHA-256 of `prev || canonical`, hex.
pub(crate) fn hash(prev: &str, canonical: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev.as_bytes());
    ctx.update(canonical);
    hex(ctx.finish().as_ref())
}

/// Seals `body` (a serialised JSON object of the record's own members) as
/// record `seq` after `prev`, with `envelope` (members every record of the
/// trail carries: `schema`, `origin`) after them: appends the line (with
/// its newline) to `out` and returns the new head hash of the chain.
pub(crate) fn seal(
    out: &mut Vec<u8>,
    envelope: &[u8],
    body: &[u8],
    seq: u64,
    prev: &str,
) -> String {
    use std::io::Write;
    let members = body
        .strip_prefix(b"{")
        .and_then(|b| b.strip_suffix(b"}"))
        .unwrap_or(b"");
    let start = out.len();
    out.reserve(body.len() + envelope.len() + 160);
    let _ = write!(out, "{{\"seq\":{seq},\"prev\":\"{prev}\"");
    if !envelope.is_empty() {
        out.push(b',');
        out.extend_from_slice(envelope);
    }
    if !members.is_empty() {
        out.push(b',');
        out.extend_from_slice(members);
    }
    out.push(b'}');
    let h = hash(prev, &out[start..]);
    out.pop();
    out.extend_from_slice(HASH_MEMBER);
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(b"\"}\n");
    h
}

/// Where a chain breaks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Break {
    /// 1-based line within the file.
    pub line: usize,
    pub reason: String,
}

/// The chain state carried from one file to the next.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub hash: String,
    pub seq: u64,
}

/// Splits a line into its canonical text and its claimed hash.
fn split(line: &[u8]) -> Option<(Vec<u8>, &str)> {
    let at = line
        .windows(HASH_MEMBER.len())
        .rposition(|w| w == HASH_MEMBER)?;
    let claimed = line[at + HASH_MEMBER.len()..].strip_suffix(b"\"}")?;
    if claimed.len() != 64 || !claimed.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut canonical = line[..at].to_vec();
    canonical.push(b'}');
    Some((canonical, std::str::from_utf8(claimed).ok()?))
}

/// Checks one file's bytes, continuing from `head` (None: the first file,
/// which may start anywhere). Returns the new head, or the first break.
pub(crate) fn verify_bytes(bytes: &[u8], head: Option<Head>) -> Result<Option<Head>, Break> {
    let mut head = head;
    let complete = bytes.is_empty() || bytes.ends_with(b"\n");
    let lines: Vec<&[u8]> = bytes
        .strip_suffix(b"\n")
        .unwrap_or(bytes)
        .split(|b| *b == b'\n')
        .collect();
    if bytes.is_empty() {
        return Ok(head);
    }
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        if i + 1 == lines.len() && !complete {
            return Err(Break {
                line: n,
                reason: "truncated: the last line is incomplete".into(),
            });
        }
        head = Some(verify_line(line, head.as_ref()).map_err(|reason| Break { line: n, reason })?);
    }
    Ok(head)
}

/// Checks one sealed line (without its newline) as the record after
/// `head` (None: it may start anywhere). Returns its head, or why not.
pub(crate) fn verify_line(line: &[u8], head: Option<&Head>) -> Result<Head, String> {
    let Some((canonical, claimed)) = split(line) else {
        return Err(NOT_SEALED.into());
    };
    let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(&canonical) else {
        return Err(NOT_JSON.into());
    };
    let (Some(prev), Some(seq)) = (
        record.get("prev").and_then(Value::as_str),
        record.get("seq").and_then(Value::as_u64),
    ) else {
        return Err(NO_PREV_SEQ.into());
    };
    verify_sealed(&canonical, claimed, prev, seq, head)
}

/// As [`verify_line`], for a reader that has parsed the whole line into
/// `record` already (the same `prev` and `seq` as its canonical text's),
/// so the line is not parsed twice.
pub(crate) fn verify_parsed(
    line: &[u8],
    record: &Value,
    head: Option<&Head>,
) -> Result<Head, String> {
    let Some((canonical, claimed)) = split(line) else {
        return Err(NOT_SEALED.into());
    };
    let (Some(prev), Some(seq)) = (record["prev"].as_str(), record["seq"].as_u64()) else {
        return Err(NO_PREV_SEQ.into());
    };
    verify_sealed(&canonical, claimed, prev, seq, head)
}

const NOT_SEALED: &str = "not a sealed record (no hash: edited or truncated mid-line)";
pub(crate) const NOT_JSON: &str = "not a JSON record (edited or truncated mid-line)";
const NO_PREV_SEQ: &str = "missing prev or seq";

/// The hash and the link to `head` of a record whose parts are known.
fn verify_sealed(
    canonical: &[u8],
    claimed: &str,
    prev: &str,
    seq: u64,
    head: Option<&Head>,
) -> Result<Head, String> {
    if hash(prev, canonical) != claimed {
        return Err("hash mismatch: the record was edited".into());
    }
    if let Some(h) = head {
        if prev != h.hash {
            return Err(format!(
                "prev does not match the record before (a record was deleted or reordered; seq {seq} after {})",
                h.seq
            ));
        }
        if Some(seq) != h.seq.checked_add(1) {
            return Err(format!(
                "seq {seq} after {}: a record is missing or out of order",
                h.seq
            ));
        }
    }
    Ok(Head {
        hash: claimed.to_owned(),
        seq,
    })
}

#[cfg(test)]
mod tests;
