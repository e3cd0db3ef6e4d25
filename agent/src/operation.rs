//! Names each intercepted HTTP request as an operation a person recognises
//! ("delete resource group", "read a secret", "exec into a pod"), for the
//! audit record (`request.operation`) and for policy rules that glob against
//! [`Operation::name`]. Pure: host, method, path and query in, a name out; no
//! I/O, and no input makes it panic.
//!
//! Paths are read as sent: nothing is percent-decoded (Azure does not treat
//! `%2F` as a separator either), empty segments and trailing slashes are
//! ignored, and the fixed keywords of each API (`subscriptions`, `comp`,
//! `secrets`, `namespaces`…) are compared ignoring ASCII case. A request whose
//! shape a service's table does not cover still gets its service and a
//! `….request` name, so a policy can treat "unrecognised" as its own case.
//!
//! # Naming conventions
//!
//! - **ARM** (`management.azure.com`, `*.management.azure.com`): the Azure
//!   RBAC action string. After the provider namespace, path segments
//!   alternate type and name; the types are joined with `/` and the method
//!   gives the suffix: GET/HEAD `read`, PUT/PATCH `write`, DELETE `delete`.
//!   A POST whose last segment is a lone type is that action:
//!   `…/storageAccounts/{a}/listKeys` →
//!   `Microsoft.Storage/storageAccounts/listKeys/action`. A POST to a named
//!   resource is `{types}/action`. Paths with no provider namespace
//!   (`/subscriptions/{s}/resourcegroups/{rg}`) are `Microsoft.Resources`;
//!   a nested `providers/{ns}` (extension resources such as role assignments
//!   on a resource) starts a new namespace. `subscriptions`,
//!   `resourceGroups` and `providers` are spelled canonically; every other
//!   segment keeps the case it was sent in, and because ARM ignores case,
//!   rules must compare these names ignoring ASCII case. A `/batch` request
//!   is named for its envelope only (`Microsoft.Resources/batch/action`);
//!   the requests inside its body are not classified here. Anything without
//!   a type is `arm.request`.
//! - **Storage** (`{account}.{blob,dfs,file,queue,table}.core.windows.net`,
//!   and the `*.storage.azure.net` DNS-zone endpoints):
//!   `storage.{scope}.{operation}`. The blob service is named after its REST
//!   operations from method, path depth, `restype` and `comp`:
//!   `storage.service.*` (account level: `get_properties`, `set_properties`,
//!   `get_stats`, `get_account_info`, `get_user_delegation_key`, `batch`),
//!   `storage.container.*` (`list`, `create`, `delete`, `get_properties`,
//!   `get_metadata`, `set_metadata`, `get_acl`, `set_acl`, `lease`,
//!   `restore`, `rename`, `batch`) and `storage.blob.*` (`list`, `get`,
//!   `get_properties`, `put`, `delete`, `put_block`, `put_block_list`,
//!   `get_block_list`, `put_page`, `get_page_ranges`, `append_block`,
//!   `get_metadata`, `set_metadata`, `set_properties`, `lease`, `snapshot`,
//!   `get_tags`, `set_tags`, `find_by_tags`, `set_tier`, `abort_copy`,
//!   `undelete`, `set_immutability_policy`, `delete_immutability_policy`,
//!   `set_legal_hold`, `incremental_copy`, `set_expiry`, `query`). A
//!   one-segment path without `restype=container` is a blob in `$root`, as
//!   Azure reads it. The other services are named from the method:
//!   `storage.{queue,table,file,dfs}.{list,read,write,delete}` (`list` for
//!   `comp=list`, `resource=filesystem` and `GET /Tables`). Unrecognised:
//!   `storage.{service,container,blob,queue,…}.request`.
//! - **Key Vault** (`*.vault.azure.net`): `keyvault.{secrets,keys,
//!   certificates}.{operation}`: `list`, `get`, `set` (secret PUT), `import`
//!   (key PUT, certificate import), `create`, `update` (PATCH), `delete`,
//!   `list_versions`, `backup`, `restore`; on `/deleted…` collections
//!   `list_deleted`, `get_deleted`, `purge` (DELETE) and `recover`; keys
//!   also `encrypt`, `decrypt`, `sign`, `verify`, `wrapkey`, `unwrapkey`,
//!   `release`, `rotate`, `get_rotation_policy`, `set_rotation_policy`;
//!   certificates also `get_policy`, `update_policy`, `get_operation`,
//!   `update_operation`, `delete_operation`, `merge`, `get_contacts`,
//!   `set_contacts`, `delete_contacts`, `list_issuers`, `get_issuer`,
//!   `set_issuer`, `update_issuer`, `delete_issuer`. Otherwise
//!   `keyvault.{collection}.request` or `keyvault.request`.
//! - **Functions / App Service** (`*.azurewebsites.net`): `functions.keys.
//!   {list,set,delete}` for `/admin/host/keys`, `/admin/host/systemkeys` and
//!   `/admin/functions/{f}/keys` (GET lists, PUT/POST set, DELETE deletes);
//!   `functions.host.status`; `functions.invoke` for `/api/{f}` and the admin
//!   invoke `POST /admin/functions/{f}`; otherwise `functions.request`. On
//!   the Kudu host (`*.scm.azurewebsites.net`), `/api/` is Kudu's own API,
//!   not a function: `functions.scm.{command,zipdeploy,wardeploy,publish,
//!   deployments,vfs,zip,settings,processes,functions}` or
//!   `functions.scm.request`.
//! - **Kubernetes** (`*.azmk8s.io`, or any host whose path is
//!   `/api/{version}/…` or `/apis/{group}/{version}/…`):
//!   `k8s.[{group}.]{resource}.{verb}` with the API server's verbs (`get`,
//!   `list`, `watch`, `create`, `update`, `patch`, `delete`,
//!   `deletecollection`), core resources without a group:
//!   `k8s.secrets.get`, `k8s.apps.deployments.patch`. A subresource comes
//!   between resource and verb (`k8s.pods.status.patch`,
//!   `k8s.serviceaccounts.token.create`), except the connect and streaming
//!   ones (`exec`, `attach`, `portforward`, `proxy`, `log`), which name no
//!   verb because GET-with-upgrade and POST do the same thing:
//!   `k8s.pods.exec`. Paths with no resource under `/api` or `/apis` are
//!   `k8s.discovery`; anything else `k8s.request`.
//! - **Entra ID** (`login.microsoftonline.com`, `login.windows.net`,
//!   `sts.windows.net`): `entra.token` (POST `/{tenant}/oauth2[/v2.0]/token`),
//!   `entra.device_code` (POST `…/devicecode`), `entra.authorize`,
//!   `entra.discovery` (`.well-known/…`, `discovery/…`), else
//!   `entra.request`.
//! - **GitHub** (`api.github.com`): `github.copilot.token` (GET
//!   `/copilot_internal/v2/token`, where an OAuth token becomes a Copilot
//!   session token), `github.user` (GET `/user`), else `github.read` (GET,
//!   HEAD) or `github.write`.
//! - **Instance metadata** (the addresses in `capture.imds`, whatever the
//!   `Host`): `imds.token` (`/metadata/identity/oauth2/token`, App
//!   Service's `/msi/token`; `audience` is its `resource`),
//!   `imds.identity`, `imds.instance`, `imds.attested`,
//!   `imds.scheduled_events`, else `imds.request`.
//! - **Anything else**: `http.{method}` in lower case, e.g. `http.get`.

use crate::core::{Operation, Service};

mod arm;
mod entra;
pub(crate) mod envelope;
mod functions;
pub(crate) mod github;
pub(crate) mod graph;
pub(crate) mod imds;
mod keyvault;
mod kube;
pub(crate) mod scope;
mod storage;
#[cfg(test)]
mod tests;

/// `path` with percent-escapes of unreserved characters (letters, digits,
/// `-._~`) decoded. RFC 3986 §6.2.2.2 makes them equivalent, and servers
/// treat them so: `/%73ubscriptions/…` must not slip past a rule about
/// `/subscriptions/…`. Other escapes (`%2F` above all) stay as sent.
pub(crate) fn normalize_path(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains('%') {
        return std::borrow::Cow::Borrowed(path);
    }
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (hex(b.get(i + 1)), hex(b.get(i + 2)))
        {
            let c = char::from((h * 16 + l) as u8);
            if c.is_ascii_alphanumeric() || "-._~".contains(c) {
                out.push(c);
                i += 3;
                continue;
            }
        }
        // Copy one UTF-8 character (the path is a str, so boundaries hold).
        let ch = path[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    std::borrow::Cow::Owned(out)
}

/// Names the request `method host path?query`. `host` may carry a port and
/// a trailing dot; `path` is the raw request path.
pub(crate) fn classify(
    host: &str,
    method: &http::Method,
    path: &str,
    query: Option<&str>,
) -> Operation {
    let host = normalise_host(host);
    let verb = Http::of(method);
    if [
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
    ]
    .contains(&host.as_str())
    {
        return entra::classify(verb, path);
    }
    if host == "graph.microsoft.com" {
        return graph::classify(verb, path);
    }
    if host == "api.github.com" {
        return github::classify(verb, path);
    }
    if host == "management.azure.com" || subdomain(&host, "management.azure.com").is_some() {
        return arm::classify(verb, path);
    }
    if let Some((account, kind)) = storage::endpoint(&host) {
        return storage::classify(account, kind, verb, path, query);
    }
    if let Some(prefix) = subdomain(&host, "vault.azure.net") {
        return keyvault::classify(first_label(prefix), verb, path);
    }
    if let Some(prefix) = subdomain(&host, "azurewebsites.net") {
        return functions::classify(prefix.ends_with(".scm"), verb, path);
    }
    if subdomain(&host, "azmk8s.io").is_some() || kube::is_api_path(path) {
        return kube::classify(verb, path, query);
    }
    Operation::new(
        Service::Unknown,
        format!("http.{}", method.as_str().to_ascii_lowercase()),
    )
}

/// The request method as the classifiers compare it. Case is ignored: a
/// front end that accepted `delete` as DELETE must not let it pass unnamed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Http {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    /// Table storage's merge-entity method.
    Merge,
    Other,
}

impl Http {
    fn of(method: &http::Method) -> Self {
        let m = method.as_str();
        [
            ("GET", Self::Get),
            ("HEAD", Self::Head),
            ("POST", Self::Post),
            ("PUT", Self::Put),
            ("PATCH", Self::Patch),
            ("DELETE", Self::Delete),
            ("MERGE", Self::Merge),
        ]
        .into_iter()
        .find(|(name, _)| m.eq_ignore_ascii_case(name))
        .map_or(Self::Other, |(_, verb)| verb)
    }
}

/// Lower case, without a port or a trailing dot.
fn normalise_host(host: &str) -> String {
    let host = match host.rsplit_once(':') {
        // Only a `name:port`; an IPv6 literal has colons of its own.
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The labels in front of `.{domain}`, if `host` is a proper subdomain of it.
fn subdomain<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let prefix = host.strip_suffix(domain)?.strip_suffix('.')?;
    (!prefix.is_empty()).then_some(prefix)
}

fn first_label(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// The path's non-empty segments, so `//` and a trailing `/` change nothing.
fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The segments in lower case, for matching keywords with slice patterns.
fn lowered(segments: &[&str]) -> Vec<String> {
    segments.iter().map(|s| s.to_ascii_lowercase()).collect()
}

/// The value of query parameter `name` (case ignored), raw. A parameter sent
/// twice with different values reads as empty, which names no operation, so
/// the request cannot be named after whichever copy a service might ignore.
pub(crate) fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    let mut found: Option<&str> = None;
    for (key, value) in query?
        .split('&')
        .map(|p| p.split_once('=').unwrap_or((p, "")))
    {
        if key.eq_ignore_ascii_case(name) {
            match found {
                Some(earlier) if !earlier.eq_ignore_ascii_case(value) => return Some(""),
                _ => found = Some(value),
            }
        }
    }
    found
}
