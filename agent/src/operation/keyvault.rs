//! Key Vault data plane: secrets, keys and certificates.

use super::{Http, lowered, segments};
use crate::core::{Operation, Service};

/// Key operations addressed as `POST /keys/{name}[/{version}]/{op}`.
const KEY_OPERATIONS: &[&str] = &[
    "encrypt",
    "decrypt",
    "sign",
    "verify",
    "wrapkey",
    "unwrapkey",
    "release",
];

pub(super) fn classify(vault: &str, verb: Http, path: &str) -> Operation {
    let segs = segments(path);
    let lower = lowered(&segs);
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let (collection, deleted) = match lower.first() {
        Some(&"secrets") => ("secrets", false),
        Some(&"keys") => ("keys", false),
        Some(&"certificates") => ("certificates", false),
        Some(&"deletedsecrets") => ("secrets", true),
        Some(&"deletedkeys") => ("keys", true),
        Some(&"deletedcertificates") => ("certificates", true),
        _ => {
            return Operation {
                vault: Some(vault.to_owned()),
                ..Operation::new(Service::KeyVault, "keyvault.request")
            };
        }
    };
    let rest = &lower[1..];
    let op = if deleted {
        deleted_operation(verb, rest)
    } else {
        live_operation(collection, verb, rest)
    };
    // The object is the first segment after the collection, except for the
    // collection-wide certificate contacts and issuers (whose object is the
    // issuer) and for restore, whose object is in the body.
    let object = match rest {
        ["contacts" | "issuers", ..] if collection == "certificates" => segs.get(2),
        ["restore"] if verb == Http::Post => None,
        _ => segs.get(1),
    };
    Operation {
        vault: Some(vault.to_owned()),
        object: object.map(|o| o.to_string()),
        ..Operation::new(Service::KeyVault, format!("keyvault.{collection}.{op}"))
    }
}

/// `rest` is the lower-cased path after `/secrets`, `/keys` or
/// `/certificates`. Specific shapes come before the generic `{name}` ones
/// they would otherwise match.
fn live_operation<'a>(collection: &str, verb: Http, rest: &[&'a str]) -> &'a str {
    use Http::{Delete, Get, Patch, Post, Put};
    let certificates = collection == "certificates";
    let keys = collection == "keys";
    match (rest, verb) {
        ([], Get) => "list",
        (["restore"], Post) => "restore",
        (["contacts"], Get) if certificates => "get_contacts",
        (["contacts"], Put) if certificates => "set_contacts",
        (["contacts"], Delete) if certificates => "delete_contacts",
        (["issuers"], Get) if certificates => "list_issuers",
        (["issuers", _], Get) if certificates => "get_issuer",
        (["issuers", _], Put) if certificates => "set_issuer",
        (["issuers", _], Patch) if certificates => "update_issuer",
        (["issuers", _], Delete) if certificates => "delete_issuer",
        ([_, "create"], Post) if keys || certificates => "create",
        ([_, "import"], Post) if certificates => "import",
        ([_, "pending"], Get) if certificates => "get_operation",
        ([_, "pending"], Patch) if certificates => "update_operation",
        ([_, "pending"], Delete) if certificates => "delete_operation",
        ([_, "pending", "merge"], Post) if certificates => "merge",
        ([_, "policy"], Get) if certificates => "get_policy",
        ([_, "policy"], Patch) if certificates => "update_policy",
        ([_, "rotate"], Post) if keys => "rotate",
        ([_, "rotationpolicy"], Get) if keys => "get_rotation_policy",
        ([_, "rotationpolicy"], Put) if keys => "set_rotation_policy",
        // Versionless (`/keys/{n}/sign`, which is also what `/keys/{n}//sign`
        // reads as) or versioned; versions are hex, so never an operation.
        ([_, op] | [_, _, op], Post) if keys && KEY_OPERATIONS.contains(op) => op,
        ([_, "versions"], Get) => "list_versions",
        ([_, "backup"], Post) => "backup",
        ([_], Put) if keys => "import",
        ([_], Put) if collection == "secrets" => "set",
        ([_] | [_, _], Get) => "get",
        ([_] | [_, _], Patch) => "update",
        ([_], Delete) => "delete",
        _ => "request",
    }
}

/// After `/deletedsecrets`, `/deletedkeys` or `/deletedcertificates`.
fn deleted_operation(verb: Http, rest: &[&str]) -> &'static str {
    match (rest, verb) {
        ([], Http::Get) => "list_deleted",
        ([_], Http::Get) => "get_deleted",
        ([_], Http::Delete) => "purge",
        ([_, "recover"], Http::Post) => "recover",
        _ => "request",
    }
}
