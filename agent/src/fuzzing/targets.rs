//! The fuzz targets' bodies, by name: `fuzz/fuzz_targets/*.rs` call
//! [`run`] with their name, and the corpus replay test calls it for every
//! file committed under `fuzz/corpus/{name}/`, on stable. A target splits
//! its input into the fields a parser takes, runs it, and checks the
//! properties that must hold whatever the input: no panic, and for the
//! masking targets, a planted secret never survives and JSON stays JSON.

use super::*;

/// A target's body: any bytes in, a panic on a broken property.
pub type Target = fn(&[u8]);

/// Every target, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("client_hello", client_hello_target),
    ("names", names_target),
    ("credentials", credentials_target),
    ("jwks", jwks_target),
    ("masking", masking_target),
    ("kubeconfig", kubeconfig_target),
    ("model_stream", model_stream_target),
    ("decode", decode_target),
    ("redaction", redaction_target),
    ("audit_chain", audit_chain_target),
    ("host_files", host_files_target),
    ("policy_config", policy_config_target),
    ("proxy_requests", proxy_requests_target),
];

/// Runs target `name` on `data`; `false` if there is no such target.
pub fn run(name: &str, data: &[u8]) -> bool {
    match TARGETS.iter().find(|(n, _)| *n == name) {
        Some((_, f)) => {
            f(data);
            true
        }
        None => false,
    }
}

/// A storage account key, as the masking targets plant it.
const PLANTED: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// `data` cut into `n` fields at NUL bytes (missing ones empty), as text.
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> = data
        .splitn(n, |b| *b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    out.resize(n, String::new());
    out
}

fn client_hello_target(data: &[u8]) {
    if let Some((sni, _alpn)) = client_hello(data) {
        // A name handed on is a name a TLS stack could send.
        assert!(sni.is_none_or(|s| !s.is_empty() && !s.contains('\0')));
    }
}

fn names_target(data: &[u8]) {
    let f = fields(data, 5);
    let entries: Vec<&str> = f[0].split(',').collect();
    let _ = intercept(&entries, &f[1]);
    let query = (!f[4].is_empty()).then_some(f[4].as_str());
    let _ = operation(&f[1], &f[2], &f[3], query);
    // A path the shape check lets through reads the same however many
    // times it is decoded: rules and servers see one path.
    if path_accepted(&f[3]) {
        let normal = normalize_path(&f[3]);
        assert_eq!(normalize_path(&normal), normal, "normalising is idempotent");
    }
}

fn proxy_requests_target(data: &[u8]) {
    if let Ok((Some(host), port)) = proxy_request(data) {
        // An authority handed on is one a resolver can be asked about.
        assert!(port != 0 && !host.is_empty());
        assert!(!host.contains(['/', ' ', '\r', '\n', '@']), "{host:?}");
    }
    if let Ok((user, host, port)) = upstream_proxy_url(&String::from_utf8_lossy(data)) {
        assert!(port != 0 && !host.is_empty());
        assert!(
            user.is_none_or(|u| !u.contains(':')),
            "no password in the URL"
        );
    }
}

fn credentials_target(data: &[u8]) {
    let f = fields(data, 3);
    let _ = jwt(&f[0]);
    let _ = shared_key(&f[1]);
    let _ = sas(&f[2]);
    let _ = form_field(data, "client_assertion");
}

fn jwks_target(data: &[u8]) {
    let _ = jwks(data);
}

fn masking_target(data: &[u8]) {
    let (chunk, rest) = data.split_first().map_or((1, data), |(c, r)| (*c, r));
    let chunk = usize::from(chunk) + 1;
    let text = String::from_utf8_lossy(rest);
    // Detectors: every span is inside the text.
    for (start, end, _) in detect(rest) {
        assert!(start < end && end <= rest.len());
    }
    // A key in a listKeys answer, whatever surrounds it: masked, and the
    // answer is still JSON.
    let body = serde_json::json!({ "keys": [
        { "keyName": text, "permissions": "FULL", "value": PLANTED },
    ] })
    .to_string();
    let (out, count) = mask_response(
        "Microsoft.Storage/storageAccounts/listKeys/action",
        Some("application/json"),
        body.as_bytes(),
        chunk,
    )
    .expect("listKeys answers are masked");
    assert!(count >= 1);
    assert!(!contains(&out, PLANTED.as_bytes()), "the key survived");
    assert!(
        serde_json::from_slice::<serde_json::Value>(&out).is_ok(),
        "masked JSON is no longer JSON"
    );
    // In plain text, on a line of its own.
    let plain = format!("{text}\n{PLANTED}\n{text}");
    if let Some((out, _)) = mask_response(
        "keyvault.secrets.get",
        Some("text/plain"),
        plain.as_bytes(),
        chunk,
    ) {
        assert!(
            !contains(&out, PLANTED.as_bytes()),
            "the key survived in text"
        );
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn kubeconfig_target(data: &[u8]) {
    let _ = kubeconfig(&String::from_utf8_lossy(data));
}

fn model_stream_target(data: &[u8]) {
    let (cut, rest) = data.split_first().map_or((0, data), |(c, r)| (*c, r));
    let at = usize::from(cut).min(rest.len());
    let (text, tools) = model_answer(&[&rest[..at], &rest[at..]]);
    let (whole, whole_tools) = model_answer(&[rest]);
    assert_eq!(
        (text, tools),
        (whole, whole_tools),
        "split anywhere, same answer"
    );
}

fn decode_target(data: &[u8]) {
    for coding in ["gzip", "deflate", "br"] {
        if let Ok(out) = decode(coding, data) {
            assert!(out.len() <= MAX_DECODED);
        }
    }
}

fn redaction_target(data: &[u8]) {
    let f = fields(data, 3);
    let _ = redact_query(&f[0]);
    let _ = redact_cmdline(&f[1]);
    for (name, value) in redact_headers(&f[2]) {
        if name.eq_ignore_ascii_case("authorization") {
            // Each value: `[REDACTED]`, or a scheme's name and `[REDACTED]`.
            for one in value.split(", ") {
                let scheme = one.strip_suffix("[REDACTED]").map(str::trim_end);
                assert!(
                    scheme.is_some_and(
                        |s| s.len() <= 16 && s.bytes().all(|b| b.is_ascii_alphabetic())
                    ),
                    "{value}"
                );
            }
        }
    }
}

fn audit_chain_target(data: &[u8]) {
    let _ = audit_chain(data);
}

fn host_files_target(data: &[u8]) {
    let f = fields(data, 3);
    let _ = proc_stat_ppid(&f[0]);
    let _ = proc_cmdline(data);
    let _ = mountinfo_cgroup2(&f[1]);
    let _ = users(&f[1], &f[2], 1000, "sre");
}

fn policy_config_target(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = policy(&text);
    let _ = config(&text);
}
