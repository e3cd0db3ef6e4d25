//! AKS `listCluster*Credential` hands out kubeconfigs as base64. The
//! kubeconfig is decoded, its secrets masked line by line (`token`,
//! `client-key-data`, `password`, auth-provider/exec secrets), and encoded
//! again, so it stays a kubeconfig the agent can read — without credentials.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::Masker;
use crate::core::Findings;

/// YAML keys whose values are credentials in a kubeconfig.
const SECRET_KEYS: &[&str] = &[
    "token",
    "client-key-data",
    "password",
    "client-secret",
    "access-token",
    "refresh-token",
    "id-token",
];

/// `b64` decoded, masked and re-encoded; not base64 (or not text): masked
/// whole, as nothing in it can be trusted to be harmless.
pub(super) fn mask_base64(b64: &str, masker: &Masker, f: &mut Findings) -> String {
    let Some(text) = STANDARD
        .decode(b64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        f.add("kubeconfig");
        return masker.token("kubeconfig", b64.as_bytes());
    };
    STANDARD.encode(mask_yaml(&text, masker, f))
}

/// `key: value` lines whose key is a credential get a masked value; the
/// rest of the document is kept byte for byte.
pub(crate) fn mask_yaml(text: &str, masker: &Masker, f: &mut Findings) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let key_start = body.len() - body.trim_start_matches([' ', '-']).len();
        let masked = body[key_start..].split_once(':').and_then(|(key, value)| {
            let key = key.trim().trim_matches('"');
            let value = value.trim();
            (SECRET_KEYS.contains(&key) && !value.is_empty()).then(|| {
                let bare = value.trim_matches(['"', '\'']);
                f.add("kubeconfig-credential");
                format!(
                    "{}{key}: {}",
                    &body[..key_start],
                    masker.token("kubeconfig-credential", bare.as_bytes())
                )
            })
        });
        out.push_str(masked.as_deref().unwrap_or(body));
        out.push_str(ending);
    }
    out
}
