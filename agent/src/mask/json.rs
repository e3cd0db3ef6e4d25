//! Structure-aware masking of the responses that exist to hand out
//! secrets: for each such operation, the JSON paths that carry them.
//! Path syntax: members separated by `.`, `*` any member, `[]` every array
//! element. A matched string (or array of strings) is replaced; a matched
//! object is left to a deeper path (`properties.*` masks app settings given
//! as strings, `properties.*.value` those given as `{value, type}`).

use std::sync::LazyLock;

use serde_json::Value;

use super::{Masker, kubeconfig};
use crate::core::Findings;
use crate::core::Glob;

/// How to mask one operation's response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Plan {
    pub paths: &'static [&'static str],
    pub detector: &'static str,
    /// Newline-delimited JSON events (Kubernetes `watch`), each masked.
    pub lines: bool,
}

/// (operation glob, plan): the first match wins.
const PLANS: &[(&str, Plan)] = &[
    (
        "Microsoft.Storage/storageAccounts/listKeys/action",
        p(&["keys[].value"], "storage-account-key"),
    ),
    (
        "Microsoft.Storage/storageAccounts/regenerateKey/action",
        p(&["keys[].value"], "storage-account-key"),
    ),
    (
        "Microsoft.Storage/storageAccounts/ListAccountSas/action",
        p(&["accountSasToken"], "sas-token"),
    ),
    (
        "Microsoft.Storage/storageAccounts/ListServiceSas/action",
        p(&["serviceSasToken"], "sas-token"),
    ),
    // appsettings/list and connectionstrings/list share the action name;
    // their values are all under `properties` (strings, or {value, type}).
    (
        "Microsoft.Web/sites*/config/list/action",
        p(&["properties.*", "properties.*.value"], "app-setting"),
    ),
    (
        "Microsoft.Web/sites*/host/listkeys/action",
        p(
            &["masterKey", "functionKeys.*", "systemKeys.*"],
            "function-key",
        ),
    ),
    (
        "Microsoft.Web/sites*/functions/listkeys/action",
        p(&["*"], "function-key"),
    ),
    (
        "Microsoft.Web/sites*/functions/listsecrets/action",
        p(&["key", "trigger_url"], "function-key"),
    ),
    (
        "functions.keys.list",
        p(&["keys[].value", "value"], "function-key"),
    ),
    ("keyvault.secrets.get", p(&["value"], "key-vault-secret")),
    ("keyvault.secrets.set", p(&["value"], "key-vault-secret")),
    (
        "keyvault.secrets.recover",
        p(&["value"], "key-vault-secret"),
    ),
    (
        "Microsoft.ContainerService/managedClusters/listCluster*Credential/action",
        p(&["kubeconfigs[].value"], "kubeconfig"),
    ),
    ("k8s.secrets.get", p(SECRET_OR_TABLE, "kubernetes-secret")),
    (
        "k8s.secrets.create",
        p(&["data.*", "stringData.*"], "kubernetes-secret"),
    ),
    (
        "k8s.secrets.update",
        p(&["data.*", "stringData.*"], "kubernetes-secret"),
    ),
    (
        "k8s.secrets.patch",
        p(&["data.*", "stringData.*"], "kubernetes-secret"),
    ),
    (
        "k8s.secrets.list",
        p(
            &[
                "items[].data.*",
                "items[].stringData.*",
                "rows[].object.data.*",
                "rows[].object.stringData.*",
            ],
            "kubernetes-secret",
        ),
    ),
    (
        "k8s.secrets.watch",
        Plan {
            paths: &["object.data.*", "object.stringData.*"],
            detector: "kubernetes-secret",
            lines: true,
        },
    ),
    (
        "Microsoft.DocumentDB/databaseAccounts/*/action",
        p(
            &[
                "primaryMasterKey",
                "secondaryMasterKey",
                "primaryReadonlyMasterKey",
                "secondaryReadonlyMasterKey",
                "connectionStrings[].connectionString",
            ],
            "cosmos-key",
        ),
    ),
    (
        "Microsoft.ServiceBus/*/listKeys/action",
        p(BUS_KEYS, "shared-access-key"),
    ),
    (
        "Microsoft.EventHub/*/listKeys/action",
        p(BUS_KEYS, "shared-access-key"),
    ),
    (
        "Microsoft.Relay/*/listKeys/action",
        p(BUS_KEYS, "shared-access-key"),
    ),
    // A new application or service principal secret, shown once.
    (
        "graph.*.addPassword.create",
        p(&["secretText"], "client-secret"),
    ),
];

/// (operation glob, plan) for request bodies that carry a secret by
/// design — the value being set — masked in the audit excerpt only (the
/// upstream gets the request as sent). The first match wins.
const REQUEST_PLANS: &[(&str, Plan)] = &[
    ("keyvault.secrets.set", p(&["value"], "key-vault-secret")),
    (
        "keyvault.keys.import",
        p(
            &[
                "key.d", "key.p", "key.q", "key.dp", "key.dq", "key.qi", "key.k",
            ],
            "private-key",
        ),
    ),
    (
        "keyvault.certificates.import",
        p(&["value", "pwd"], "certificate"),
    ),
    (
        "Microsoft.KeyVault/vaults/secrets/write",
        p(&["properties.value"], "key-vault-secret"),
    ),
    (
        "k8s.secrets.*",
        p(&["data.*", "stringData.*"], "kubernetes-secret"),
    ),
    // App settings and connection strings PUT (strings, or {value, type}).
    (
        "Microsoft.Web/sites*/config/write",
        p(&["properties.*", "properties.*.value"], "app-setting"),
    ),
    // Which parameters are `securestring` only the template says; every
    // parameter value is kept out of the trail.
    (
        "Microsoft.Resources/deployments/*",
        p(&["properties.parameters.*.value"], "deployment-parameter"),
    ),
    (
        "Microsoft.Compute/virtualMachines/write",
        p(
            &[
                "properties.osProfile.adminPassword",
                "properties.osProfile.customData",
            ],
            "vm-admin-password",
        ),
    ),
    (
        "Microsoft.ContainerService/managedClusters/write",
        p(
            &[
                "properties.servicePrincipalProfile.secret",
                "properties.windowsProfile.adminPassword",
            ],
            "cluster-secret",
        ),
    ),
];

/// A Secret, or a Kubernetes Table (`Accept: …;as=Table`) whose rows carry
/// whole Secrets with `includeObject=Object`.
const SECRET_OR_TABLE: &[&str] = &[
    "data.*",
    "stringData.*",
    "rows[].object.data.*",
    "rows[].object.stringData.*",
];

const BUS_KEYS: &[&str] = &[
    "primaryKey",
    "secondaryKey",
    "primaryConnectionString",
    "secondaryConnectionString",
    "aliasPrimaryConnectionString",
    "aliasSecondaryConnectionString",
];

const fn p(paths: &'static [&'static str], detector: &'static str) -> Plan {
    Plan {
        paths,
        detector,
        lines: false,
    }
}

/// The structure-aware plan for `operation`, if it hands out secrets.
pub(super) fn plan(operation: &str) -> Option<Plan> {
    static COMPILED: LazyLock<Vec<(Glob, Plan)>> = LazyLock::new(|| compile(PLANS));
    first_match(&COMPILED, operation)
}

/// The plan for a request body of `operation` whose purpose is to carry a
/// secret (a secret being set, a Kubernetes Secret created).
pub(super) fn request_plan(operation: &str) -> Option<Plan> {
    static COMPILED: LazyLock<Vec<(Glob, Plan)>> = LazyLock::new(|| compile(REQUEST_PLANS));
    first_match(&COMPILED, operation)
}

/// The tables' globs, compiled once: every request asks them (several
/// times), and compiling allocates.
fn compile(table: &[(&str, Plan)]) -> Vec<(Glob, Plan)> {
    table
        .iter()
        .map(|(glob, plan)| (Glob::new(glob, true), *plan))
        .collect()
}

fn first_match(table: &[(Glob, Plan)], operation: &str) -> Option<Plan> {
    table
        .iter()
        .find(|(glob, _)| glob.matches(operation))
        .map(|(_, plan)| *plan)
}

/// A batch's answer (ARM `responses[].content`, Graph `responses[].body`):
/// each inner response masked along every plan of the batch's inner
/// operations — a superset of its own plan, since answers need not come in
/// the requests' order.
pub(super) fn apply_batch(
    value: &mut Value,
    plans: &[Plan],
    masker: &Masker,
    findings: &mut Findings,
) {
    let Some(responses) = value.get_mut("responses").and_then(Value::as_array_mut) else {
        return;
    };
    for response in responses {
        for key in ["content", "body"] {
            if let Some(inner) = response.get_mut(key) {
                for plan in plans {
                    apply(inner, plan, masker, findings);
                }
            }
        }
    }
}

/// Masks `value` along `plan`'s paths.
pub(super) fn apply(value: &mut Value, plan: &Plan, masker: &Masker, findings: &mut Findings) {
    for path in plan.paths {
        let segs: Vec<&str> = path.split('.').collect();
        walk(value, &segs, plan.detector, masker, findings);
    }
}

fn walk(v: &mut Value, segs: &[&str], detector: &'static str, masker: &Masker, f: &mut Findings) {
    let Some((seg, rest)) = segs.split_first() else {
        replace_all(v, detector, masker, f);
        return;
    };
    let (name, each) = match seg.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (*seg, false),
    };
    let Value::Object(map) = v else { return };
    let targets: Vec<&mut Value> = if name == "*" {
        map.values_mut().collect()
    } else {
        map.get_mut(name).into_iter().collect()
    };
    for t in targets {
        match (each, t) {
            (true, Value::Array(items)) => {
                for item in items {
                    walk(item, rest, detector, masker, f);
                }
            }
            (false, t) => walk(t, rest, detector, masker, f),
            _ => {}
        }
    }
}

/// The string (or strings) at the end of a path replaced; a kubeconfig is
/// rewritten, not replaced.
fn replace_all(v: &mut Value, detector: &'static str, masker: &Masker, f: &mut Findings) {
    match v {
        Value::String(s) if s.starts_with("airlock:masked:") || s.is_empty() => {}
        Value::String(s) if detector == "kubeconfig" => {
            *s = kubeconfig::mask_base64(s, masker, f);
        }
        Value::String(s) => {
            *s = masker.token(detector, s.as_bytes());
            f.add(detector);
        }
        Value::Array(items) => items
            .iter_mut()
            .filter(|i| i.is_string())
            .for_each(|i| replace_all(i, detector, masker, f)),
        _ => {}
    }
}
