//! Detectors: secrets recognised by their shape in any text, each found
//! from a cheap anchor (memchr) and checked byte by byte — no regex engine,
//! and the longest secret ([`MAX_SECRET`]) bounds the streaming look-ahead.
//! Every detector is documented, with an example and a counter-example, in
//! docs/masking.md.

use memchr::memmem;

/// A `memmem` searcher built once per needle: building one on every scan
/// (every header value, every body window) showed up in profiles.
macro_rules! finder {
    ($needle:expr) => {{
        static FINDER: std::sync::LazyLock<memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memmem::Finder::new($needle));
        &*FINDER
    }};
}

/// No detector matches more than this many bytes; a stream is held back by
/// at most this much.
pub(crate) const MAX_SECRET: usize = 8 * 1024;

/// One secret found: `bytes[start..end]` is replaced, `detector` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub start: usize,
    pub end: usize,
    pub detector: &'static str,
}

fn b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

fn b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// Every secret in `text`, in order, non-overlapping.
pub(crate) fn find(text: &[u8]) -> Vec<Found> {
    let mut all = Vec::new();
    storage_keys(text, &mut all);
    after_marker(
        text,
        finder!(b"AccountKey="),
        "storage-connection-string",
        &mut all,
    );
    after_marker(
        text,
        finder!(b"SharedAccessKey="),
        "shared-access-key",
        &mut all,
    );
    after_marker(text, finder!(b"sig="), "sas-signature", &mut all);
    client_secrets(text, &mut all);
    jwts(text, &mut all);
    bearer(text, &mut all);
    pem(text, &mut all);
    prefixed(
        text,
        &[
            finder!(b"ghp_"),
            finder!(b"gho_"),
            finder!(b"ghs_"),
            finder!(b"ghu_"),
            finder!(b"ghr_"),
        ],
        36,
        36,
        b64url_alnum,
        "github-token",
        &mut all,
    );
    prefixed(
        text,
        &[finder!(b"github_pat_")],
        60,
        100,
        b64url,
        "github-token",
        &mut all,
    );
    prefixed(
        text,
        &[finder!(b"AKIA"), finder!(b"ASIA")],
        16,
        16,
        upper_alnum,
        "aws-access-key",
        &mut all,
    );
    secret_named(text, &mut all);
    named_pairs(text, &mut all);
    // Earliest first; where two overlap, the longer wins, and on a tie a
    // named shape wins over the generic secret-named value.
    all.sort_by_key(|f| {
        (
            f.start,
            std::cmp::Reverse(f.end),
            f.detector == "secret-named-value",
        )
    });
    let mut out: Vec<Found> = Vec::with_capacity(all.len());
    for f in all {
        match out.last_mut() {
            Some(last) if f.start < last.end => last.end = last.end.max(f.end),
            _ => out.push(f),
        }
    }
    out
}

fn b64url_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn upper_alnum(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// A storage account key: 64 random bytes, so 86 base64 characters and
/// `==` — 88 in all, standing alone (not part of a longer base64 run).
fn storage_keys(text: &[u8], out: &mut Vec<Found>) {
    for eq in finder!(b"==").find_iter(text) {
        let end = eq + 2;
        if eq < 86 || text.get(end).is_some_and(|&c| b64(c) || c == b'=') {
            continue;
        }
        let start = eq - 86;
        if text[start..eq].iter().all(|&c| b64(c))
            && (start == 0 || !b64(text[start - 1]))
            && looks_random(&text[start..eq])
        {
            out.push(Found {
                start,
                end,
                detector: "storage-account-key",
            });
        }
    }
}

/// The value after `finder`'s needle up to a delimiter (`;`, `&`, quote, space, `<`).
fn after_marker(
    text: &[u8],
    finder: &memmem::Finder<'static>,
    detector: &'static str,
    out: &mut Vec<Found>,
) {
    let marker = finder.needle();
    for at in finder.find_iter(text) {
        // `sig=` must be a parameter of its own, not `xsig=`.
        if marker == b"sig=" && at > 0 && text[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let start = at + marker.len();
        let len = text[start..]
            .iter()
            .take(MAX_SECRET)
            .position(|&c| {
                matches!(c, b';' | b'&' | b'"' | b'\'' | b'<' | b'\\') || c.is_ascii_whitespace()
            })
            .unwrap_or(text.len() - start);
        if len >= 8 {
            out.push(Found {
                start,
                end: start + len,
                detector,
            });
        }
    }
}

/// Entra ID client secrets: three characters, `8Q~` (the generation
/// marker), then 31–34 of `[A-Za-z0-9_.~-]`.
fn client_secrets(text: &[u8], out: &mut Vec<Found>) {
    let ok = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'~' | b'-');
    for q in finder!(b"Q~").find_iter(text) {
        if q < 4 || text[q - 1] != b'8' {
            continue;
        }
        let start = q - 4;
        if !text[start..q - 1].iter().all(|&c| ok(c)) || (start > 0 && ok(text[start - 1])) {
            continue;
        }
        let tail = text[q + 2..]
            .iter()
            .take(40)
            .take_while(|&&c| ok(c))
            .count();
        if (31..=34).contains(&tail) {
            out.push(Found {
                start,
                end: q + 2 + tail,
                detector: "entra-client-secret",
            });
        }
    }
}

/// Compact JWS/JWT: `eyJ…` `.` `eyJ…` `.` signature (base64url).
fn jwts(text: &[u8], out: &mut Vec<Found>) {
    for start in finder!(b"eyJ").find_iter(text) {
        if start > 0 && b64url(text[start - 1]) {
            continue;
        }
        let seg = |from: usize| {
            text[from..]
                .iter()
                .take(MAX_SECRET)
                .take_while(|&&c| b64url(c))
                .count()
        };
        let h = seg(start);
        let p_start = start + h + 1;
        if text.get(start + h) != Some(&b'.') || !text[p_start..].starts_with(b"eyJ") {
            continue;
        }
        let p = seg(p_start);
        let s_start = p_start + p + 1;
        if text.get(p_start + p) != Some(&b'.') {
            continue;
        }
        let s = seg(s_start);
        out.push(Found {
            start,
            end: s_start + s,
            detector: "jwt",
        });
    }
}

/// `Bearer <token>` in text (headers, logs, scripts): the token goes.
fn bearer(text: &[u8], out: &mut Vec<Found>) {
    for at in finder!(b"Bearer ").find_iter(text) {
        let start = at + 7;
        let len = text[start..]
            .iter()
            .take(MAX_SECRET)
            .take_while(|&&c| b64url(c) || matches!(c, b'.' | b'~' | b'+' | b'/' | b'='))
            .count();
        if len >= 16 {
            out.push(Found {
                start,
                end: start + len,
                detector: "bearer-token",
            });
        }
    }
}

/// PEM private keys, BEGIN to END; an END not within [`MAX_SECRET`] masks
/// what follows BEGIN up to that bound (never less).
fn pem(text: &[u8], out: &mut Vec<Found>) {
    for start in finder!(b"-----BEGIN ").find_iter(text) {
        let head_end = text[start + 11..]
            .iter()
            .take(64)
            .position(|&c| c == b'-')
            .map(|i| start + 11 + i);
        let Some(head_end) = head_end else { continue };
        if !text[start + 11..head_end].ends_with(b"PRIVATE KEY") {
            continue;
        }
        let limit = (start + MAX_SECRET).min(text.len());
        let end = memmem::find(&text[head_end..limit], b"-----END ")
            .and_then(|i| {
                let e = head_end + i;
                memmem::find(&text[e + 9..limit], b"-----").map(|j| e + 9 + j + 5)
            })
            .unwrap_or(limit);
        out.push(Found {
            start,
            end,
            detector: "private-key",
        });
    }
}

/// `prefix` then `min..=max` characters of `class`, standing alone.
fn prefixed(
    text: &[u8],
    prefixes: &[&memmem::Finder<'static>],
    min: usize,
    max: usize,
    class: fn(u8) -> bool,
    detector: &'static str,
    out: &mut Vec<Found>,
) {
    for finder in prefixes {
        let prefix = finder.needle();
        for start in finder.find_iter(text) {
            if start > 0 && text[start - 1].is_ascii_alphanumeric() {
                continue;
            }
            let body = start + prefix.len();
            let len = text[body..]
                .iter()
                .take(max + 1)
                .take_while(|&&c| class(c))
                .count();
            if (min..=max).contains(&len) {
                out.push(Found {
                    start,
                    end: body + len,
                    detector,
                });
            }
        }
    }
}

/// JSON members whose name says secret (`…password`, `…secret`, `…token`,
/// `…key`, `…connectionString`) and whose string value looks random (at
/// least 16 characters, ≥ 3.5 bits of entropy per character): the value.
/// Names with `public` in them (public keys, public tokens) are not secret.
const SUFFIXES: &[&str] = &[
    "password",
    "secret",
    "token",
    "key",
    "connectionstring",
    "credential",
    "assertion",
];

/// Whether a member or variable name says secret: it ends in one of
/// [`SUFFIXES`] and does not say `public`, ASCII case ignored. Compared in
/// place: called for every member name of every scanned JSON body.
fn secret_name(name: &[u8]) -> bool {
    let ends_with = |suffix: &str| {
        name.len() >= suffix.len()
            && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    SUFFIXES.iter().any(|s| ends_with(s))
        && !name.windows(6).any(|w| w.eq_ignore_ascii_case(b"public"))
}

/// `name=value` pairs (forms, query strings, env files, command lines)
/// whose name says secret (`client_secret=`, `client_assertion=`,
/// `DB_PASSWORD=`) and whose value is not trivially short or repetitive.
fn named_pairs(text: &[u8], out: &mut Vec<Found>) {
    let name_char = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.');
    for eq in memchr::memchr_iter(b'=', text) {
        let name_len = text[eq.saturating_sub(64)..eq]
            .iter()
            .rev()
            .take_while(|&&c| name_char(c))
            .count();
        if name_len == 0 || !secret_name(&text[eq - name_len..eq]) {
            continue;
        }
        let start = eq + 1;
        let len = text[start..]
            .iter()
            .take(MAX_SECRET)
            .position(|&c| {
                matches!(c, b'&' | b';' | b'"' | b'\'' | b'<' | b'\\') || c.is_ascii_whitespace()
            })
            .unwrap_or(text.len() - start);
        let value = &text[start..start + len];
        if len >= 8 && entropy(value) >= 3.0 && !value.starts_with(b"airlock:masked:") {
            out.push(Found {
                start,
                end: start + len,
                detector: "secret-named-value",
            });
        }
    }
}

fn secret_named(text: &[u8], out: &mut Vec<Found>) {
    for colon in finder!(b"\":").find_iter(text) {
        let Some(open) = text[colon.saturating_sub(64)..colon]
            .iter()
            .rposition(|&c| c == b'"')
        else {
            continue;
        };
        let name = &text[colon.saturating_sub(64) + open + 1..colon];
        if !secret_name(name) {
            continue;
        }
        let mut at = colon + 2;
        while text.get(at).is_some_and(|c| c.is_ascii_whitespace()) {
            at += 1;
        }
        if text.get(at) != Some(&b'"') {
            continue;
        }
        let start = at + 1;
        let Some(len) = text[start..]
            .iter()
            .take(MAX_SECRET)
            .position(|&c| c == b'"' || c == b'\\')
        else {
            continue;
        };
        let value = &text[start..start + len];
        if len >= 16 && entropy(value) >= 3.5 && !value.starts_with(b"airlock:masked:") {
            out.push(Found {
                start,
                end: start + len,
                detector: "secret-named-value",
            });
        }
    }
}

/// Base64 of random bytes mixes cases and digits; a run of one repeated
/// character or of a single case (padding in a test file, a hash rendered
/// oddly) is not a key.
pub(super) fn looks_random(s: &[u8]) -> bool {
    entropy(s) >= 4.0
}

/// Shannon entropy in bits per character.
pub(super) fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &c in s {
        counts[c as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::secret_name;

    #[test]
    fn secret_names_match_whatever_their_case() {
        for name in [
            "password",
            "DB_PASSWORD",
            "clientSecret",
            "client_assertion",
            "AccountKey",
            "x-API-Token",
            "StorageConnectionString",
        ] {
            assert!(secret_name(name.as_bytes()), "{name}");
        }
        for name in [
            "publicKey",
            "PUBLIC_TOKEN",
            "name",
            "keys",
            "",
            "tok\u{e9}n",
        ] {
            assert!(!secret_name(name.as_bytes()), "{name}");
        }
        // Bytes that are not UTF-8 neither match nor panic.
        assert!(secret_name(b"\xff\xfe_secret"));
        assert!(!secret_name(b"\xff\xfe"));
    }
}
