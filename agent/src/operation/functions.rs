//! Function apps (`*.azurewebsites.net`) and their Kudu site (`*.scm.…`).

use super::{Http, lowered, segments};
use crate::core::{Operation, Service};

/// Kudu APIs under `/api/` on the scm host, named as themselves.
const KUDU_APIS: &[&str] = &[
    "command",
    "zipdeploy",
    "wardeploy",
    "publish",
    "deployments",
    "vfs",
    "zip",
    "settings",
    "processes",
    "functions",
];

pub(super) fn classify(scm: bool, verb: Http, path: &str) -> Operation {
    let segs = segments(path);
    let lower = lowered(&segs);
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    if scm {
        let api = match lower.as_slice() {
            ["api", api, ..] => KUDU_APIS.iter().find(|k| *k == api).copied(),
            _ => None,
        };
        let name = format!("functions.scm.{}", api.unwrap_or("request"));
        return Operation::new(Service::Functions, name);
    }

    let keys = match verb {
        Http::Get | Http::Head => "functions.keys.list",
        Http::Put | Http::Post => "functions.keys.set",
        Http::Delete => "functions.keys.delete",
        _ => "functions.request",
    };
    let (name, function) = match lower.as_slice() {
        ["admin", "host", "keys" | "systemkeys", ..] => (keys, None),
        ["admin", "host", "status"] => ("functions.host.status", None),
        ["admin", "functions", _, "keys", ..] => (keys, segs.get(2)),
        ["admin", "functions", _] if verb == Http::Post => ("functions.invoke", segs.get(2)),
        ["admin", "functions", _, ..] => ("functions.request", segs.get(2)),
        ["api", _, ..] => ("functions.invoke", segs.get(1)),
        _ => ("functions.request", None),
    };
    Operation {
        function: function.map(|f| f.to_string()),
        ..Operation::new(Service::Functions, name)
    }
}
