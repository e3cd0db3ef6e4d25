//! The resource a request acts on, written as a path, and the scopes a
//! window grant may be given for: a grant covers a request when its scope's
//! segments begin the request's resource path (ASCII case ignored, as Azure
//! ignores it). Resource Manager ids are global (`/subscriptions/…`, any
//! regional endpoint); a Kubernetes object is `k8s://{cluster host}/
//! namespaces/{ns}/{resource}/{name}`, so a namespace scope covers every
//! API group's objects in it; anything else is `https://{host}{path}`.

use crate::core::Operation;

/// The resource `op`, sent to `host` at `path` (normalised, no query),
/// acts on.
pub(crate) fn resource_path(op: &Operation, host: &str, path: &str) -> String {
    let host = host.to_ascii_lowercase();
    if let Some(k) = &op.kubernetes {
        let mut out = format!("k8s://{host}");
        if let Some(ns) = &k.namespace {
            out.push_str(&format!("/namespaces/{ns}"));
        }
        out.push('/');
        out.push_str(&k.resource);
        if let Some(name) = &k.name {
            out.push('/');
            out.push_str(name);
        }
        return out;
    }
    if op.service == crate::core::Service::Arm {
        let id = op.resource.as_deref().unwrap_or(path);
        return id.trim_end_matches('/').to_owned();
    }
    format!("https://{host}{}", path.trim_end_matches('/'))
}

/// The scope an approver gave (`--scope`) for a held request whose
/// resource is `resource`: a Resource Manager scope (`/subscriptions/{s}`,
/// `…/resourceGroups/{rg}`, a resource id), `namespace/{ns}` on the held
/// request's cluster, or a resource path as [`resource_path`] writes it.
/// It must cover the held request itself.
pub(crate) fn parse_scope(given: &str, resource: &str) -> Result<String, String> {
    let given = given.trim().trim_end_matches('/');
    let scope = if let Some(ns) = given.strip_prefix("namespace/") {
        let cluster = resource
            .strip_prefix("k8s://")
            .and_then(|r| r.split('/').next())
            .ok_or_else(|| {
                format!("{given:?}: a namespace scope is for a Kubernetes request; this one acts on {resource:?}")
            })?;
        if ns.is_empty() || ns.contains('/') {
            return Err(format!("{given:?} is not namespace/NAME"));
        }
        format!("k8s://{cluster}/namespaces/{ns}")
    } else if given.starts_with('/') || given.contains("://") {
        given.to_owned()
    } else {
        return Err(format!(
            "{given:?} is not a scope: give /subscriptions/…, namespace/NAME, or a resource as the held request shows it"
        ));
    };
    if !covers(&scope, resource) {
        return Err(format!(
            "scope {scope:?} does not cover the held request's resource {resource:?}"
        ));
    }
    Ok(scope)
}

/// Whether `scope` covers `resource`: its segments begin the resource's.
pub(crate) fn covers(scope: &str, resource: &str) -> bool {
    let segments = |s: &str| {
        s.split('/')
            .filter(|p| !p.is_empty())
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
    };
    let (scope, resource) = (segments(scope), segments(resource));
    !scope.is_empty() && resource.starts_with(&scope)
}
