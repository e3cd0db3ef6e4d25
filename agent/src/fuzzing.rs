//! Entry points for fuzzing every parser airlock owns (the fuzz targets and
//! their corpus replays): each hands arbitrary input to one parser the way
//! the data path does, and returns what a property check needs in plain
//! types. No input may make one panic, hang or grow without bound. The
//! parsers themselves stay `pub(crate)`; this is their only public door.

mod targets;

pub use targets::{TARGETS, Target, run};

use std::path::PathBuf;

use bytes::Bytes;
use serde_json::Value;

use crate::http::decode::{Coding, Decoder};
use crate::mask::Masker;

/// Most decoded bytes [`decode`] hands back: a decompression bomb is cut
/// here, as the data path cuts it by streaming in bounded steps.
pub const MAX_DECODED: usize = 4 << 20;

/// A connection's first bytes: the server name and ALPN offer of a
/// complete TLS ClientHello; `None` for anything else (not TLS, malformed,
/// incomplete).
pub fn client_hello(data: &[u8]) -> Option<(Option<String>, Vec<Vec<u8>>)> {
    match crate::proxy::hello::parse(data) {
        Ok(Some(crate::proxy::hello::Sniffed::Tls(h))) => Some((h.sni, h.alpn)),
        _ => None,
    }
}

/// What a client sent to a proxy port (`capture.proxy_ports`), as airlock
/// reads its request head: `Ok((Some(host), port))` for `CONNECT`,
/// `Ok((None, 0))` for a plain absolute-form request; `Err`: why refused.
pub fn proxy_request(head: &[u8]) -> Result<(Option<String>, u16), String> {
    match crate::proxy::connect::parse(head)? {
        crate::proxy::connect::Ask::Connect { host, port } => Ok((Some(host), port)),
        crate::proxy::connect::Ask::Plain { line } => {
            // Recorded: never the query, which may hold a credential.
            assert!(!line.contains('?'), "{line}");
            Ok((None, 0))
        }
    }
}

/// `proxy.upstream_proxy`, parsed: (user, host, port); `Err`: why refused.
pub fn upstream_proxy_url(url: &str) -> Result<(Option<String>, String, u16), String> {
    crate::config::ProxyUrl::parse(url).map(|p| (p.user, p.host, p.port))
}

/// `proxy.intercept` entries, then whether `host` matches them; `Err`:
/// why the list is refused.
pub fn intercept(entries: &[&str], host: &str) -> Result<bool, String> {
    crate::host::InterceptList::parse(entries).map(|l| l.matches(host))
}

/// The operation a request is named as; `None` for a method that is not
/// an HTTP token.
pub fn operation(host: &str, method: &str, path: &str, query: Option<&str>) -> Option<String> {
    let method = http::Method::from_bytes(method.as_bytes()).ok()?;
    Some(crate::operation::classify(host, &method, path, query).name)
}

/// Whether a request path gets past the shape check (else 400).
pub fn path_accepted(path: &str) -> bool {
    crate::http::shape::path(path).is_ok()
}

/// A request path with unreserved percent-escapes decoded, as rules see it.
pub fn normalize_path(path: &str) -> String {
    crate::operation::normalize_path(path).into_owned()
}

/// The identity the claims of a compact JWS describe, unverified (what the
/// trail shows of a token no issuer vouches for); `None`: not a JWS.
pub fn jwt(token: &str) -> Option<Value> {
    let (_header, claims) = crate::identity::jwt::split(token)?;
    identity_json(&crate::identity::jwt::from_claims(&claims))
}

/// The identity an `Authorization` header of another scheme (SharedKey,
/// SharedKeyLite) names.
pub fn shared_key(authorization: &str) -> Option<Value> {
    let (scheme, rest) = authorization.split_once(' ')?;
    identity_json(&crate::identity::storage::shared_key(scheme, rest)?)
}

/// The identity a query string's shared access signature describes.
pub fn sas(query: &str) -> Option<Value> {
    identity_json(&crate::identity::storage::sas(query)?)
}

/// One field of an `application/x-www-form-urlencoded` body.
pub fn form_field(form: &[u8], name: &str) -> Option<String> {
    crate::identity::form_field(form, name)
}

/// The signing keys airlock would use from a JWKS document; `None`: not one.
pub fn jwks(document: &[u8]) -> Option<usize> {
    crate::identity::jwks::usable_keys(document)
}

/// Where each detector finds a secret in `text`: (start, end, detector).
pub fn detect(text: &[u8]) -> Vec<(usize, usize, &'static str)> {
    crate::mask::detect::find(text)
        .into_iter()
        .map(|f| (f.start, f.end, f.detector))
        .collect()
}

/// A response body of `operation` masked as it streams to the client, fed
/// in chunks of `chunk` bytes: the bytes the client gets and how many
/// secrets were masked. `None`: such a response is relayed unmasked.
pub fn mask_response(
    operation: &str,
    content_type: Option<&str>,
    body: &[u8],
    chunk: usize,
) -> Option<(Vec<u8>, u32)> {
    let mut m = Masker::ephemeral().response(operation, content_type)?;
    let mut out = Vec::with_capacity(body.len());
    for piece in body.chunks(chunk.max(1)) {
        out.extend_from_slice(&m.push(&Bytes::copy_from_slice(piece)));
    }
    out.extend_from_slice(&m.finish());
    Some((out, m.findings().count))
}

/// A kubeconfig (YAML) with its credentials masked, and how many.
pub fn kubeconfig(text: &str) -> (String, u32) {
    let mut findings = crate::core::Findings::default();
    let out = crate::mask::kubeconfig::mask_yaml(text, &Masker::ephemeral(), &mut findings);
    (out, findings.count)
}

/// A model's answer (SSE or JSON) reassembled from `chunks`: its text and
/// how many tool calls it made.
pub fn model_answer(chunks: &[&[u8]]) -> (String, usize) {
    let mut r = crate::model::Reassembler::new(1 << 20);
    for c in chunks {
        r.feed(c);
    }
    let out = r.finish(&Masker::ephemeral(), 64 << 10);
    (out.text, out.tool_calls.len())
}

/// `body` decoded from `Content-Encoding: encoding` (gzip, deflate, br),
/// at most [`MAX_DECODED`] bytes of it; `Err`: why it cannot be.
pub fn decode(encoding: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut d = Decoder::new(Some(encoding))
        .map_err(|e| e.to_string())?
        .ok_or("identity coding")?;
    let mut out = Vec::new();
    d.input(body).map_err(|e| e.to_string())?;
    while let Some(piece) = d.output().map_err(|e| e.to_string())? {
        out.extend_from_slice(&piece);
        if out.len() >= MAX_DECODED {
            out.truncate(MAX_DECODED);
            return Ok(out);
        }
    }
    out.extend_from_slice(&d.end().map_err(|e| e.to_string())?);
    out.truncate(MAX_DECODED);
    Ok(out)
}

/// A query string as the trail records it.
pub fn redact_query(query: &str) -> String {
    crate::redact::redact_query(query)
}

/// A command line as the trail records it.
pub fn redact_cmdline(cmdline: &str) -> String {
    crate::redact::redact_cmdline(cmdline)
}

/// Request headers (`name: value` lines) as the trail records them.
pub fn redact_headers(lines: &str) -> Vec<(String, String)> {
    let mut headers = http::HeaderMap::new();
    for line in lines.lines() {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.trim().as_bytes()),
                http::HeaderValue::from_str(value.trim()),
            )
        {
            headers.append(n, v);
        }
    }
    crate::redact::redact_headers(&headers)
        .into_iter()
        .collect()
}

/// An audit file's bytes checked as a chain from genesis: the sequence
/// number of its last record, or the 1-based line where it breaks.
pub fn audit_chain(bytes: &[u8]) -> Result<Option<u64>, usize> {
    crate::audit::chain::verify_bytes(bytes, None)
        .map(|head| head.map(|h| h.seq))
        .map_err(|b| b.line)
}

/// `/proc/PID/stat`: the parent pid.
pub fn proc_stat_ppid(stat: &str) -> Option<u32> {
    crate::capture::process::parse_stat(stat).map(|s| s.ppid)
}

/// `/proc/PID/cmdline` (NUL-separated) as the trail records it.
pub fn proc_cmdline(raw: &[u8]) -> String {
    crate::capture::process::render_cmdline(raw)
}

/// `/proc/self/mountinfo`: where cgroup v2 is mounted.
pub fn mountinfo_cgroup2(text: &str) -> Option<PathBuf> {
    crate::capture::cgroup::find_cgroup2(text)
}

/// `/etc/passwd` and `/etc/group` text: the name of `uid`, and whether it
/// is in `group`.
pub fn users(passwd: &str, group_file: &str, uid: u32, group: &str) -> (Option<String>, bool) {
    let db = crate::users::UserDb::parse(passwd, group_file);
    (db.user_name(uid), db.in_group(uid, group))
}

/// One policy file's text: how many rules it compiles to, or the error
/// (with its line) that rejects it.
pub fn policy(text: &str) -> Result<usize, String> {
    crate::policy::compile("fuzz.toml", text).map_err(|e| e.to_string())
}

/// A config file's text: accepted, or the error (with its line).
pub fn config(text: &str) -> Result<(), String> {
    crate::config::Config::parse(text, std::path::Path::new("fuzz.toml"))
        .map(drop)
        .map_err(|e| e.to_string())
}

fn identity_json(identity: &crate::core::Identity) -> Option<Value> {
    serde_json::to_value(identity).ok()
}

#[cfg(test)]
mod tests;
