//! Entra ID (Azure AD) sign-in endpoints: where agents get their tokens.

use super::{Http, lowered, segments};
use crate::core::{Operation, Service};

pub(super) fn classify(verb: Http, path: &str) -> Operation {
    let segs = segments(path);
    let lower = lowered(&segs);
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let name = match (lower.as_slice(), verb) {
        ([_, "oauth2", "token"] | [_, "oauth2", "v2.0", "token"], Http::Post) => "entra.token",
        ([_, "oauth2", "devicecode"] | [_, "oauth2", "v2.0", "devicecode"], Http::Post) => {
            "entra.device_code"
        }
        ([_, "oauth2", "authorize"] | [_, "oauth2", "v2.0", "authorize"], _) => "entra.authorize",
        (segments, _) if segments.contains(&".well-known") || segments.contains(&"discovery") => {
            "entra.discovery"
        }
        _ => "entra.request",
    };
    // `/{tenant}/…`: the first segment, unless the path starts at a
    // tenant-less endpoint.
    let tenant = match lower.as_slice() {
        [".well-known" | "discovery", ..] | [] | [_] => None,
        _ => segs.first(),
    };
    Operation {
        tenant: tenant.map(|t| t.to_string()),
        ..Operation::new(Service::Entra, name)
    }
}
