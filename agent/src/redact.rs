//! What must never reach the audit trail or the logs in clear: credentials
//! in headers, query strings and command lines. (Secrets in bodies are the
//! masking stage's work.)

use std::collections::BTreeMap;

use http::HeaderMap;

/// Headers whose whole value is a credential.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];
/// Name fragments that make any header a credential: `x-ms-copy-source-
/// authorization`, `x-ms-encryption-key`, `api-key` (Azure OpenAI),
/// `ocp-apim-subscription-key`, `x-api-key`, `x-goog-api-key`, tokens.
const SECRET_FRAGMENTS: &[&str] = &["auth", "signature", "key", "token", "secret", "password"];
/// Fragments that make a query parameter a credential (SAS `sig`, OAuth
/// `code`/tokens, `X-Amz-Signature`, `X-Amz-Security-Token`,
/// `X-Goog-Credential`, `api_key`, passwords), matched case-insensitively.
const SECRET_PARAM_FRAGMENTS: &[&str] = &[
    "sig",
    "token",
    "key",
    "secret",
    "password",
    "credential",
    "auth",
    "assertion",
];
/// Whole parameter names that are credentials without a telling fragment.
const SECRET_PARAMS: &[&str] = &["code"];

/// Kubernetes clients that cannot set headers on a WebSocket (browsers,
/// some exec clients) send their bearer token as a subprotocol:
/// `base64url.bearer.authorization.k8s.io.<token, base64url>`.
pub(crate) const K8S_WEBSOCKET_BEARER: &str = "base64url.bearer.authorization.k8s.io.";

/// How a redacted value reads: its kind of secret is kept, its value not.
pub(crate) const REDACTED: &str = "[REDACTED]";

fn secret_header(name: &str) -> bool {
    SECRET_HEADERS.contains(&name) || SECRET_FRAGMENTS.iter().any(|f| name.contains(f))
}

/// Headers for the audit record: lower-case names, repeated values joined,
/// credentials replaced. `Authorization` keeps its scheme (`Bearer`,
/// `SharedKey account:`), which says what kind of credential it was.
pub(crate) fn redact_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str();
        let value = String::from_utf8_lossy(value.as_bytes());
        let shown = if name == "sec-websocket-protocol" {
            redact_subprotocols(&value)
        } else if secret_header(name) {
            match (name, value.split_once(' ')) {
                // Only a scheme's name is kept: what comes before the
                // first space may be the credential itself
                // (`Authorization: <token> x`).
                ("authorization" | "proxy-authorization", Some((scheme, _)))
                    if is_scheme(scheme) =>
                {
                    format!("{scheme} {REDACTED}")
                }
                _ => REDACTED.to_owned(),
            }
        } else {
            value.into_owned()
        };
        out.entry(name.to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&shown);
            })
            .or_insert(shown);
    }
    out
}

/// An HTTP authentication scheme's name (`Bearer`, `SharedKey`, `PoP`):
/// a short word of letters, never a credential.
fn is_scheme(word: &str) -> bool {
    (1..=16).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_alphabetic())
}

/// A WebSocket subprotocol list with a Kubernetes bearer token in it
/// (`base64url.bearer.authorization.k8s.io.<token>`) keeps the prefix,
/// loses the token.
fn redact_subprotocols(value: &str) -> String {
    let prefix = K8S_WEBSOCKET_BEARER;
    value
        .split(',')
        .map(|p| match p.trim().strip_prefix(prefix) {
            Some(_) => format!("{prefix}{REDACTED}"),
            None => p.trim().to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `text` holds `credential` (one [`credentials`] found): its first
/// 8 bytes are searched for (a searcher that is cheap to build) and each
/// place compared whole, instead of building a searcher over the whole
/// token — often 500 bytes or more — for every excerpt.
pub(crate) fn holds(text: &str, credential: &str) -> bool {
    let (t, c) = (text.as_bytes(), credential.as_bytes());
    let head = &c[..c.len().min(8)];
    !c.is_empty() && memchr::memmem::find_iter(t, head).any(|at| t[at..].starts_with(c))
}

/// Where `text` ends in the first 8 bytes or more of `credential` (the
/// longest such tail), so that an excerpt cut inside an echoed credential
/// keeps no part of it. Only a place holding the credential's first byte
/// can start one: those are found with `memchr`, not tried one by one.
pub(crate) fn cut_tail(text: &str, credential: &str) -> Option<usize> {
    const MIN: usize = 8;
    let first = *credential.as_bytes().first()?;
    let shortest = text.len().checked_sub(MIN - 1)?;
    let longest = text.len().saturating_sub(credential.len() - 1);
    let tail = text.as_bytes().get(longest..shortest)?;
    memchr::memchr_iter(first, tail)
        .map(|i| longest + i)
        .find(|&at| text.is_char_boundary(at) && credential.starts_with(&text[at..]))
}

/// The credentials themselves that a request carries (bearer tokens,
/// signatures, a SAS `sig`), so that an upstream echoing one back (an
/// error message quoting the token it refused) cannot put it in the
/// trail's excerpts, however short or shapeless it is. Kept in memory for
/// the exchange only; values under 8 bytes are too common to hunt for.
pub(crate) fn credentials(headers: &HeaderMap, query: Option<&str>) -> Vec<String> {
    const MIN: usize = 8;
    let mut out = Vec::new();
    let mut keep = |v: &str| {
        let v = v.trim();
        if v.len() >= MIN && !out.iter().any(|o| o == v) {
            out.push(v.to_owned());
        }
    };
    for name in [
        "authorization",
        "proxy-authorization",
        "x-ms-authorization-auxiliary",
        "x-ms-copy-source-authorization",
    ] {
        for value in headers.get_all(name).iter().filter_map(|v| v.to_str().ok()) {
            for one in value.split(',') {
                // `Bearer x`, `SharedKey account:signature`.
                let credential = one.trim().split_once(' ').map_or(one, |(_, c)| c);
                keep(credential.rsplit(':').next().unwrap_or(credential));
                keep(credential);
            }
        }
    }
    for value in headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for token in value
            .split(',')
            .filter_map(|p| p.trim().strip_prefix(K8S_WEBSOCKET_BEARER))
        {
            keep(token);
        }
    }
    for pair in query.unwrap_or_default().split('&') {
        if let Some((k, v)) = pair.split_once('=')
            && secret_param(k)
        {
            keep(v);
            keep(&crate::core::percent_decode(v));
        }
    }
    out
}

fn secret_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_PARAMS.contains(&lower.as_str())
        || SECRET_PARAM_FRAGMENTS.iter().any(|f| lower.contains(f))
}

/// The query string with credential parameters' values replaced.
pub(crate) fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if secret_param(k) => format!("{k}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Command-line options whose next argument (or `=value`) is a secret:
/// curl's, and the Azure CLI's, kubectl's, func's and docker's that take a
/// secret value rather than a file.
const SECRET_OPTIONS: &[&str] = &[
    "-p",
    "--password",
    "--pass",
    "--secret",
    "--client-secret",
    "--token",
    "--access-token",
    "--sas-token",
    "--account-key",
    "--connection-string",
    "-u",
    "--user",
    "--oauth2-bearer",
    // az keyvault secret set --value; az login --federated-token; …
    "--value",
    "--federated-token",
    "--client-assertion",
    "--admin-password",
    "--registry-password",
    "--docker-registry-server-password",
    "--certificate-password",
    "--encryption-key",
    "--primary-key",
    "--secondary-key",
    "--shared-access-key",
    "--access-key",
    "--key",
    "--api-key",
    "--auth-token",
    "--storage-account-key",
];

/// Options followed by `NAME=value` words whose values may be secrets
/// (`az webapp config appsettings set --settings A=… B=…`, `kubectl create
/// secret generic --from-literal=k=…`): each value is hidden, the names
/// kept, until the next option.
const SECRET_PAIR_OPTIONS: &[&str] = &[
    "--settings",
    "--slot-settings",
    "--from-literal",
    "--secrets",
    "--env",
    "--environment-variables",
    "--secure-environment-variables",
    "--parameters",
];

/// Programs whose `-p` takes no secret: the Copilot CLI's is the prompt
/// (recorded, and masked by shape like any argument), the others' a
/// port, a parent directory or a mode. For any other program `-p` is
/// taken for a password (`az login -p`, `docker login -p`, `sshpass -p`).
const P_IS_NO_SECRET: &[&str] = &[
    "copilot", "mkdir", "ssh", "psql", "pg_dump", "tar", "cp", "install",
];

/// Interpreters whose script, not themselves, is the program.
const INTERPRETERS: &[&str] = &["node", "nodejs", "python", "python3", "sh", "bash"];

/// The program a command line runs: its first word's file name, or for an
/// interpreter, the script's (`node …/@github/copilot/index.js` is
/// `copilot`: a package directory names it better than `index.js`).
fn program(cmdline: &str) -> &str {
    let mut words = cmdline.split(' ').filter(|w| !w.is_empty());
    let first = words.next().map_or("", program_name);
    if INTERPRETERS.contains(&first) {
        return words
            .find(|w| !w.starts_with('-'))
            .map_or(first, program_name);
    }
    first
}

/// A program path's name: the file without `.js`/`.py`, or its
/// directory's for an `index`/`main`/`cli` entry point.
fn program_name(path: &str) -> &str {
    let path = path.trim_end_matches('/');
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.trim_end_matches(".js").trim_end_matches(".py");
    match stem {
        "index" | "main" | "cli" => path.rsplit('/').nth(1).unwrap_or(stem),
        _ => stem,
    }
}

/// A process command line with credentials replaced: values of secret
/// options, `Authorization:`/`Bearer` values, and secret query parameters
/// inside URLs.
pub(crate) fn redact_cmdline(cmdline: &str) -> String {
    let mut out = Vec::new();
    let mut hide_next = false;
    let mut hide_values = false;
    let p_is_secret = !P_IS_NO_SECRET.contains(&program(cmdline));
    let secret_option = |opt: &str| SECRET_OPTIONS.contains(&opt) && (opt != "-p" || p_is_secret);
    for word in cmdline.split(' ') {
        let lower = word.to_ascii_lowercase();
        if hide_values {
            match word.split_once('=') {
                _ if word.starts_with('-') => hide_values = false,
                Some((name, _)) => {
                    out.push(format!("{name}={REDACTED}"));
                    continue;
                }
                None => {}
            }
        }
        if let Some((opt, pair)) = word.split_once('=')
            && SECRET_PAIR_OPTIONS.contains(&opt.to_ascii_lowercase().as_str())
        {
            // `--from-literal=name=value`
            let name = pair.split_once('=').map_or(pair, |(n, _)| n);
            out.push(format!("{opt}={name}={REDACTED}"));
            continue;
        }
        if SECRET_PAIR_OPTIONS.contains(&lower.as_str()) {
            hide_values = true;
            out.push(word.to_owned());
            continue;
        }
        if hide_next {
            // `Authorization: Bearer x`: a known scheme stays, the
            // credential after it goes; an unknown first word (`token
            // ghp_…`) could be the credential's label or the credential:
            // both go.
            if ["bearer", "basic", "sharedkey", "sharedkeylite", "token"].contains(&lower.as_str())
            {
                out.push(word.to_owned());
            } else {
                out.push(REDACTED.to_owned());
                hide_next = false;
            }
            continue;
        }
        if let Some((opt, _)) = word.split_once('=')
            && secret_option(opt.to_ascii_lowercase().as_str())
        {
            out.push(format!("{opt}={REDACTED}"));
            continue;
        }
        if secret_option(lower.as_str()) || lower == "bearer" || lower.ends_with("authorization:") {
            hide_next = true;
            out.push(word.to_owned());
            continue;
        }
        out.push(redact_word(word));
    }
    out.join(" ")
}

/// One argument: JWTs anywhere in it, URL passwords, and the values of
/// secret-named `name=value` pairs (`client_assertion=…` in a form,
/// `--data=client_secret=…`, `?sig=…`).
fn redact_word(word: &str) -> String {
    let word = redact_jwts(word);
    let word = redact_userinfo(&word);
    if let Some((base, query)) = word.split_once('?') {
        return format!("{base}?{}", redact_pairs(query));
    }
    redact_pairs(&word)
}

fn redact_pairs(s: &str) -> String {
    s.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if secret_param(k.trim_start_matches('-')) => format!("{k}={REDACTED}"),
            Some((k, v)) => format!("{k}={}", redact_pairs(v)),
            None => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `scheme://user:password@host` keeps the user, loses the password.
fn redact_userinfo(word: &str) -> String {
    let Some(start) = word.find("://").map(|i| i + 3) else {
        return word.to_owned();
    };
    let authority_end = word[start..]
        .find(['/', '?', '#'])
        .map_or(word.len(), |i| start + i);
    match word[start..authority_end].rfind('@') {
        Some(at) => match word[start..start + at].split_once(':') {
            Some((user, _)) => {
                format!("{}{user}:{REDACTED}{}", &word[..start], &word[start + at..])
            }
            None => word.to_owned(),
        },
        None => word.to_owned(),
    }
}

/// Compact JWS/JWT (`eyJ….eyJ….sig`) wherever it appears in `s`.
fn redact_jwts(s: &str) -> String {
    let b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("eyJ") {
        out.push_str(&rest[..i]);
        let candidate = &rest[i..];
        let len = candidate
            .find(|c: char| !(b64(c) || c == '.'))
            .unwrap_or(candidate.len());
        if candidate[..len].matches('.').count() >= 2 {
            out.push_str(REDACTED);
        } else {
            out.push_str(&candidate[..len]);
        }
        rest = &candidate[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::*;

    #[test]
    fn credentials_in_headers_never_stay() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer eyJhbGciOi.secret.sig"),
            ("cookie", "session=abc"),
            ("x-ms-copy-source-authorization", "Bearer zzz"),
            ("x-ms-encryption-key", "c2VjcmV0"),
            ("x-ms-version", "2023-11-03"),
            ("api-key", "aoai-secret"),
            ("ocp-apim-subscription-key", "apim-secret"),
            ("accept", "a"),
            ("accept", "b"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let r = redact_headers(&h);
        assert_eq!(r["authorization"], "Bearer [REDACTED]");
        assert_eq!(r["cookie"], REDACTED);
        assert_eq!(r["x-ms-copy-source-authorization"], REDACTED);
        assert_eq!(r["x-ms-encryption-key"], REDACTED);
        assert_eq!(r["x-ms-version"], "2023-11-03");
        assert_eq!(r["api-key"], REDACTED);
        assert_eq!(r["ocp-apim-subscription-key"], REDACTED);
        assert_eq!(r["accept"], "a, b");
        assert!(!format!("{r:?}").contains("secret"));
        // What stands before the first space is kept only if it is a
        // scheme's name: a token followed by a space is not one.
        let mut h = HeaderMap::new();
        h.append(
            HeaderName::from_static("authorization"),
            HeaderValue::from_static("c2VjcmV0LXRva2Vu-0123456789 x"),
        );
        assert_eq!(redact_headers(&h)["authorization"], REDACTED);
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("sec-websocket-protocol"),
            HeaderValue::from_static(
                "v4.channel.k8s.io, base64url.bearer.authorization.k8s.io.a3ViZS10b2tlbg",
            ),
        );
        assert_eq!(
            redact_headers(&h)["sec-websocket-protocol"],
            "v4.channel.k8s.io, base64url.bearer.authorization.k8s.io.[REDACTED]"
        );
    }

    #[test]
    fn a_credential_is_found_where_its_first_bytes_recur() {
        let token = "eyJhbGciOiJFUzI1NiJ9.payload.signature";
        assert!(holds(&format!("error: {token} is expired"), token));
        // Its first 8 bytes alone, or cut short, are not the credential.
        assert!(!holds("eyJhbGciOi and eyJhbGciOiJFUzI1NiJ9.payl", token));
        assert!(holds(&format!("eyJhbGciOiJFUzI1NiJ9.x {token}"), token));
        assert!(!holds("", token) && !holds("anything", ""));
    }

    #[test]
    fn an_excerpt_ending_inside_a_credential_is_cut_where_it_begins() {
        let token = "eyJhbGciOiJFUzI1NiJ9.payload.signature";
        let text = |tail: &str| format!("{{\"error\":\"é eyJ {tail}");
        // The longest tail that begins the token, 8 bytes or more.
        for n in [8, 9, 20, token.len() - 1] {
            let t = text(&token[..n]);
            assert_eq!(cut_tail(&t, token), Some(t.len() - n), "{n} bytes");
        }
        // Shorter than 8 bytes, or not the token's beginning: kept.
        assert_eq!(cut_tail(&text(&token[..7]), token), None);
        assert_eq!(cut_tail(&text(&token[1..20]), token), None);
        // The earliest place wins when the token's start recurs in it.
        let recurring = "abcdabcdabcdabcdXYZ";
        assert_eq!(cut_tail("... abcdabcdabcd", recurring), Some(4));
        assert_eq!(cut_tail("short", token), None);
        assert_eq!(cut_tail("anything at all", ""), None);
    }

    #[test]
    fn a_requests_own_credentials_are_known_to_hide_them_from_echoes() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer tok-s3cr3t-9"),
            (
                "x-ms-authorization-auxiliary",
                "Bearer aux-token-1, Bearer aux-token-2",
            ),
            (
                "x-ms-copy-source-authorization",
                "SharedKey acct:c2lnbmF0dXJl",
            ),
            ("x-ms-version", "2023-11-03"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let got = credentials(&h, Some("sv=1&sig=a%2Bb%3D%3Dcdefgh&comp=list"));
        for want in [
            "tok-s3cr3t-9",
            "aux-token-1",
            "aux-token-2",
            "c2lnbmF0dXJl",
            "a%2Bb%3D%3Dcdefgh",
            "a+b==cdefgh",
        ] {
            assert!(got.iter().any(|g| g == want), "{want} missing from {got:?}");
        }
        assert!(!got.iter().any(|g| g.contains("2023-11-03")), "{got:?}");
        assert!(credentials(&HeaderMap::new(), Some("sig=short")).is_empty());
    }

    #[test]
    fn a_p_is_a_password_unless_the_program_says_otherwise() {
        for (c, want) in [
            (
                "az login -u app -p s3cret",
                "az login -u [REDACTED] -p [REDACTED]",
            ),
            (
                "sshpass -p s3cret ssh host",
                "sshpass -p [REDACTED] ssh host",
            ),
            ("copilot -p deploy", "copilot -p deploy"),
            (
                "node /usr/lib/node_modules/@github/copilot/index.js -p deploy",
                "node /usr/lib/node_modules/@github/copilot/index.js -p deploy",
            ),
            ("mkdir -p /tmp/x", "mkdir -p /tmp/x"),
            ("/usr/bin/ssh -p 2222 host", "/usr/bin/ssh -p 2222 host"),
            (
                "python3 -m something -p s3cret",
                "python3 -m something -p [REDACTED]",
            ),
        ] {
            assert_eq!(redact_cmdline(c), want, "{c}");
        }
    }

    #[test]
    fn the_azure_cli_and_kubectl_lose_the_secrets_they_take() {
        for (c, want) in [
            (
                "az keyvault secret set --vault-name kv --name db --value s3cr3t-value",
                "az keyvault secret set --vault-name kv --name db --value [REDACTED]",
            ),
            (
                "az login --service-principal -u app --federated-token eyJ.x --tenant t",
                "az login --service-principal -u [REDACTED] --federated-token [REDACTED] --tenant t",
            ),
            (
                "az storage blob upload --account-name a --account-key a2V5 --sas-token=sv&sig=x -f f",
                "az storage blob upload --account-name a --account-key [REDACTED] --sas-token=[REDACTED] -f f",
            ),
            (
                "az webapp config appsettings set -g rg -n app --settings DB=Server=x;Password=pw FLAG=1 -o none",
                "az webapp config appsettings set -g rg -n app --settings DB=[REDACTED] FLAG=[REDACTED] -o none",
            ),
            (
                "kubectl create secret generic s --from-literal=password=pw --from-literal user=u",
                "kubectl create secret generic s --from-literal=password=[REDACTED] --from-literal user=[REDACTED]",
            ),
            (
                "az vm create -n vm --admin-password=Pa55w0rd! --image ubuntu",
                "az vm create -n vm --admin-password=[REDACTED] --image ubuntu",
            ),
        ] {
            assert_eq!(redact_cmdline(c), want, "{c}");
        }
    }

    #[test]
    fn command_lines_lose_their_secrets() {
        let c = "curl -H Authorization: Bearer eyJ0eXAi.abc.def https://acct.blob.core.windows.net/c?sv=1&sig=AbC --user bob:pw --password=hunter2 -X GET";
        let r = redact_cmdline(c);
        assert_eq!(
            r,
            "curl -H Authorization: Bearer [REDACTED] https://acct.blob.core.windows.net/c?sv=1&sig=[REDACTED] --user [REDACTED] --password=[REDACTED] -X GET"
        );
        assert_eq!(
            redact_cmdline("az group list -o table"),
            "az group list -o table"
        );
    }

    #[test]
    fn forms_jwts_and_url_passwords_in_arguments_are_redacted() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        let r = redact_cmdline(&format!(
            "curl --data-urlencode client_assertion={jwt} -d grant_type=client_credentials&client_secret=s3cr3t --data=password=pw https://bob:hunter2@example.com/x X-Token:{jwt}"
        ));
        assert_eq!(
            r,
            "curl --data-urlencode client_assertion=[REDACTED] -d grant_type=client_credentials&client_secret=[REDACTED] --data=password=[REDACTED] https://bob:[REDACTED]@example.com/x X-Token:[REDACTED]"
        );
        assert_eq!(
            redact_cmdline("kubectl get pods -n a=b"),
            "kubectl get pods -n a=b"
        );
        assert_eq!(redact_cmdline("echo eyJnotajwt"), "echo eyJnotajwt");
    }

    #[test]
    fn sas_signature_is_redacted_and_the_rest_kept() {
        let q =
            "sv=2022-11-02&ss=b&sp=rl&se=2026-12-01T00:00:00Z&sig=AbC%2Bdef%3D&restype=container";
        assert_eq!(
            redact_query(q),
            "sv=2022-11-02&ss=b&sp=rl&se=2026-12-01T00:00:00Z&sig=[REDACTED]&restype=container"
        );
        assert_eq!(
            redact_query("api-version=2023-01-01"),
            "api-version=2023-01-01"
        );
    }
}
