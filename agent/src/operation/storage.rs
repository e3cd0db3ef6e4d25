//! Azure Storage data plane: blob operations by their REST names, the other
//! services by what the method does.

use super::{Http, first_label, query_param, segments};
use crate::core::{Operation, Service};

/// Which storage service an endpoint serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Blob,
    Dfs,
    File,
    Queue,
    Table,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Blob => "blob",
            Self::Dfs => "dfs",
            Self::File => "file",
            Self::Queue => "queue",
            Self::Table => "table",
        }
    }
}

/// The account and service of `{account}[.{zone}].{service}.core.windows.net`
/// or `….{service}.storage.azure.net`.
pub(super) fn endpoint(host: &str) -> Option<(&str, Kind)> {
    let front = super::subdomain(host, "core.windows.net")
        .or_else(|| super::subdomain(host, "storage.azure.net"))?;
    let (account, service) = front.rsplit_once('.')?;
    let kind = [Kind::Blob, Kind::Dfs, Kind::File, Kind::Queue, Kind::Table]
        .into_iter()
        .find(|k| k.as_str() == service)?;
    let account = first_label(account);
    (!account.is_empty()).then_some((account, kind))
}

pub(super) fn classify(
    account: &str,
    kind: Kind,
    verb: Http,
    path: &str,
    query: Option<&str>,
) -> Operation {
    let segs = segments(path);
    let (name, container, blob) = match kind {
        Kind::Blob => blob_operation(&segs, verb, query),
        _ => other_operation(kind, &segs, verb, query),
    };
    Operation {
        account: Some(account.to_owned()),
        container,
        blob,
        ..Operation::new(Service::Storage, name)
    }
}

/// An operation's name, container and blob.
type Named = (String, Option<String>, Option<String>);

fn blob_operation(segs: &[&str], verb: Http, query: Option<&str>) -> Named {
    let comp = query_param(query, "comp").map(str::to_ascii_lowercase);
    let comp = comp.as_deref();
    let restype = query_param(query, "restype").map(str::to_ascii_lowercase);
    let restype = restype.as_deref();
    use Http::{Delete, Get, Head, Post, Put};

    let Some((&first, rest)) = segs.split_first() else {
        let op = match (verb, comp, restype) {
            (Get, Some("list"), _) => "container.list",
            (Get | Head, Some("properties"), Some("service")) => "service.get_properties",
            (Put, Some("properties"), Some("service")) => "service.set_properties",
            (Get, Some("stats"), _) => "service.get_stats",
            (Get | Head, Some("properties"), Some("account")) => "service.get_account_info",
            (Post, Some("userdelegationkey"), _) => "service.get_user_delegation_key",
            (Post, Some("batch"), _) => "service.batch",
            (Get, Some("blobs"), _) => "blob.find_by_tags",
            _ => "service.request",
        };
        return (format!("storage.{op}"), None, None);
    };

    if rest.is_empty() && restype == Some("container") {
        let op = match (verb, comp) {
            (Put, None) => "container.create",
            (Delete, None) => "container.delete",
            (Get | Head, None) => "container.get_properties",
            (Get, Some("list")) => "blob.list",
            (Get | Head, Some("metadata")) => "container.get_metadata",
            (Put, Some("metadata")) => "container.set_metadata",
            (Get | Head, Some("acl")) => "container.get_acl",
            (Put, Some("acl")) => "container.set_acl",
            (Put, Some("lease")) => "container.lease",
            (Put, Some("undelete")) => "container.restore",
            (Put, Some("rename")) => "container.rename",
            (Post, Some("batch")) => "container.batch",
            (Get, Some("blobs")) => "blob.find_by_tags",
            _ => "container.request",
        };
        return (format!("storage.{op}"), Some(first.to_owned()), None);
    }

    // A single segment without `restype=container` is a blob in the root
    // container, which is how the service reads it.
    let (container, blob) = if rest.is_empty() {
        ("$root".to_owned(), first.to_owned())
    } else {
        (first.to_owned(), rest.join("/"))
    };
    let op = match (verb, comp) {
        (Get, None) => "get",
        (Head, None) => "get_properties",
        (Put, None) => "put",
        (Delete, None) => "delete",
        (Put, Some("block")) => "put_block",
        (Put, Some("blocklist")) => "put_block_list",
        (Get, Some("blocklist")) => "get_block_list",
        (Put, Some("page")) => "put_page",
        (Get, Some("pagelist")) => "get_page_ranges",
        (Put, Some("appendblock")) => "append_block",
        (Get | Head, Some("metadata")) => "get_metadata",
        (Put, Some("metadata")) => "set_metadata",
        (Put, Some("properties")) => "set_properties",
        (Put, Some("lease")) => "lease",
        (Put, Some("snapshot")) => "snapshot",
        (Get, Some("tags")) => "get_tags",
        (Put, Some("tags")) => "set_tags",
        (Put, Some("tier")) => "set_tier",
        (Put, Some("copy")) => "abort_copy",
        (Put, Some("undelete")) => "undelete",
        (Put, Some("immutabilitypolicies")) => "set_immutability_policy",
        (Delete, Some("immutabilitypolicies")) => "delete_immutability_policy",
        (Put, Some("legalhold")) => "set_legal_hold",
        (Put, Some("incrementalcopy")) => "incremental_copy",
        (Put, Some("expiry")) => "set_expiry",
        (Post, Some("query")) => "query",
        _ => "request",
    };
    (format!("storage.blob.{op}"), Some(container), Some(blob))
}

/// Queue, table, file and Data Lake requests: `list`, `read`, `write` or
/// `delete` by method, which is what a policy about them needs.
fn other_operation(kind: Kind, segs: &[&str], verb: Http, query: Option<&str>) -> Named {
    let comp = query_param(query, "comp");
    let listing = comp.is_some_and(|c| c.eq_ignore_ascii_case("list"))
        || query_param(query, "resource").is_some_and(|r| r.eq_ignore_ascii_case("filesystem"))
        || (kind == Kind::Table && matches!(segs, [t] if t.eq_ignore_ascii_case("Tables")));
    let op = match verb {
        Http::Get if listing => "list",
        Http::Get | Http::Head => "read",
        Http::Put | Http::Post | Http::Patch | Http::Merge => "write",
        Http::Delete => "delete",
        Http::Other => "request",
    };
    let container = segs.first().map(|c| match kind {
        // `/mytable(PartitionKey='p',RowKey='r')` addresses table `mytable`.
        Kind::Table => c.split('(').next().unwrap_or(c).to_owned(),
        _ => c.to_string(),
    });
    let blob = match kind {
        Kind::File | Kind::Dfs if segs.len() > 1 => Some(segs[1..].join("/")),
        _ => None,
    };
    (format!("storage.{}.{op}", kind.as_str()), container, blob)
}
