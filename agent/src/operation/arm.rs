//! Azure Resource Manager: requests named by their RBAC action string.

use super::{Http, segments};
use crate::core::{Operation, Service};

/// The namespace of paths that name no provider (`/subscriptions/{s}`,
/// `…/resourceGroups/{rg}`), as RBAC spells their actions.
const RESOURCES: &str = "Microsoft.Resources";

pub(super) fn classify(verb: Http, path: &str) -> Operation {
    let segs = segments(path);
    let mut namespace = RESOURCES;
    let mut types: Vec<&str> = Vec::new();
    let mut action = None;
    // How many segments the resource id spans: up to the last name.
    let mut id_len = 0;
    let mut i = 0;
    while let Some(&seg) = segs.get(i) {
        // `providers/{ns}` followed by more starts a namespace (again, for
        // extension resources such as role assignments on a resource).
        // Without anything after it, it is an ordinary type/name pair: the
        // resource provider registration itself.
        if seg.eq_ignore_ascii_case("providers") && i + 2 < segs.len() {
            namespace = segs[i + 1];
            types.clear();
            i += 2;
        } else if i + 1 < segs.len() {
            types.push(canonical(seg));
            id_len = i + 2;
            i += 2;
        } else {
            // A type with no name: a collection, or the action of a POST.
            if verb == Http::Post {
                action = Some(seg);
            } else {
                types.push(canonical(seg));
            }
            i += 1;
        }
    }

    let suffix = match (action, verb) {
        (Some(action), _) => Some(format!("{action}/action")),
        (None, Http::Get | Http::Head) => Some("read".into()),
        (None, Http::Put | Http::Patch) => Some("write".into()),
        (None, Http::Delete) => Some("delete".into()),
        (None, Http::Post) => Some("action".into()),
        (None, Http::Merge | Http::Other) => None,
    };
    let name = match suffix {
        Some(suffix) if !types.is_empty() || action.is_some() => {
            let mut parts = vec![namespace];
            parts.extend(&types);
            parts.push(&suffix);
            parts.join("/")
        }
        _ => "arm.request".to_owned(),
    };

    let keyword = |i: usize, word: &str| segs.get(i).is_some_and(|s| s.eq_ignore_ascii_case(word));
    let subscription = if keyword(0, "subscriptions") {
        segs.get(1)
    } else {
        None
    };
    let resource_group = if subscription.is_some() && keyword(2, "resourceGroups") {
        segs.get(3)
    } else {
        None
    };
    Operation {
        subscription: subscription.map(|s| s.to_string()),
        resource_group: resource_group.map(|s| s.to_string()),
        resource: (id_len > 0).then(|| format!("/{}", segs[..id_len].join("/"))),
        ..Operation::new(Service::Arm, name)
    }
}

/// The RBAC spelling of ARM's fixed segments, whatever case was sent.
fn canonical(segment: &str) -> &str {
    ["subscriptions", "resourceGroups", "providers"]
        .into_iter()
        .find(|k| segment.eq_ignore_ascii_case(k))
        .unwrap_or(segment)
}
