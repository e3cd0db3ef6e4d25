//! Microsoft Graph (`graph.microsoft.com`): the directory's control plane,
//! where an agent can give an application a new secret (`addPassword`) or
//! a principal a directory role. Named `graph.{path}.{verb}`: the path's
//! collection, navigation and action segments (keys left out: every
//! second segment, `me` standing for `users/{me}`, `$ref` named `ref`),
//! the verb from the method (`read`, `create`, `update`, `write`,
//! `delete`):
//! `POST /v1.0/applications/{id}/addPassword` →
//! `graph.applications.addPassword.create`;
//! `POST /v1.0/roleManagement/directory/roleAssignments` →
//! `graph.roleManagement.roleAssignments.create`. `POST /$batch` is
//! `graph.batch` (its requests are opened: `super::envelope`).

use super::{Http, segments};
use crate::core::{Operation, Service};

/// Graph's JSON batch endpoint.
pub(crate) const BATCH: &str = "graph.batch";

pub(super) fn classify(verb: Http, path: &str) -> Operation {
    let segs = segments(path);
    // `/v1.0/…`, `/beta/…`: the version is not part of the name.
    let rest = match segs.split_first() {
        Some((v, rest)) if v.eq_ignore_ascii_case("v1.0") || v.eq_ignore_ascii_case("beta") => rest,
        _ => &segs[..],
    };
    if matches!(rest, [b] if b.eq_ignore_ascii_case("$batch")) && verb == Http::Post {
        return Operation::new(Service::Graph, BATCH);
    }
    let mut names: Vec<&str> = Vec::new();
    let mut expanded: Vec<&str> = Vec::with_capacity(rest.len() + 1);
    for (i, seg) in rest.iter().enumerate() {
        // `/me` is `/users/{me}`.
        if i == 0 && seg.eq_ignore_ascii_case("me") {
            expanded.extend(["users", "me"]);
        } else {
            expanded.push(seg);
        }
    }
    // Names and keys alternate; `$ref`, `$value`, `$count` are always names.
    let mut name_next = true;
    for seg in &expanded {
        if let Some(system) = seg.strip_prefix('$') {
            names.push(system);
            name_next = true;
        } else if name_next {
            // Functions (`delta()`) are named without their arguments.
            names.push(seg.split('(').next().unwrap_or(seg));
            name_next = false;
        } else {
            name_next = true;
        }
    }
    let verb = match verb {
        Http::Get | Http::Head => "read",
        Http::Post => "create",
        Http::Patch | Http::Merge => "update",
        Http::Put => "write",
        Http::Delete => "delete",
        Http::Other => "request",
    };
    let name = if names.is_empty() {
        format!("graph.{verb}")
    } else {
        format!("graph.{}.{verb}", names.join("."))
    };
    Operation::new(Service::Graph, name)
}
