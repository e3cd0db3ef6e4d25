use http::Method;

use super::*;
use crate::core::{KubeRef, KubeVerb};

const ARM: &str = "management.azure.com";
const SUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000000";
const BLOB: &str = "acct1.blob.core.windows.net";
const VAULT: &str = "myvault.vault.azure.net";
const AKS: &str = "aks1-dns-12345678.hcp.westeurope.azmk8s.io";
const FUNC: &str = "func1.azurewebsites.net";

/// Classifies `method host path?query`.
fn op(host: &str, method: &str, target: &str) -> Operation {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    classify(host, &method, path, query)
}

fn name(host: &str, method: &str, target: &str) -> String {
    op(host, method, target).name
}

fn arm(method: &str, path: &str) -> String {
    name(ARM, method, &format!("{path}?api-version=2023-01-01"))
}

#[test]
fn arm_resource_group_read_list_and_delete() {
    let delete = op(
        ARM,
        "DELETE",
        &format!("{SUB}/resourcegroups/rg1?api-version=2021-04-01"),
    );
    assert_eq!(delete.service, Service::Arm);
    assert_eq!(
        delete.name,
        "Microsoft.Resources/subscriptions/resourceGroups/delete"
    );
    assert_eq!(
        delete.subscription.as_deref(),
        Some("00000000-0000-0000-0000-000000000000")
    );
    assert_eq!(delete.resource_group.as_deref(), Some("rg1"));
    assert_eq!(delete.resource, Some(format!("{SUB}/resourcegroups/rg1")));

    // Case and spelling tricks change nothing.
    for path in [
        format!("{SUB}/resourceGroups/rg1"),
        format!("{SUB}/ResourceGroups/rg1/"),
        "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000//RESOURCEGROUPS/rg1//".to_owned(),
    ] {
        assert_eq!(
            arm("DELETE", &path),
            "Microsoft.Resources/subscriptions/resourceGroups/delete",
            "{path}"
        );
        assert_eq!(
            arm("delete", &path),
            "Microsoft.Resources/subscriptions/resourceGroups/delete"
        );
    }
    assert_eq!(
        arm("GET", &format!("{SUB}/resourcegroups")),
        "Microsoft.Resources/subscriptions/resourceGroups/read"
    );
    assert_eq!(
        arm("PUT", &format!("{SUB}/resourcegroups/rg1")),
        "Microsoft.Resources/subscriptions/resourceGroups/write"
    );
    assert_eq!(
        arm("GET", "/subscriptions"),
        "Microsoft.Resources/subscriptions/read"
    );
    assert_eq!(
        arm("GET", &format!("{SUB}/resourceGroups/rg1/resources")),
        "Microsoft.Resources/subscriptions/resourceGroups/resources/read"
    );
    assert_eq!(
        arm("POST", &format!("{SUB}/resourceGroups/rg1/moveResources")),
        "Microsoft.Resources/subscriptions/resourceGroups/moveResources/action"
    );
    let list = op(ARM, "GET", &format!("{SUB}/resourcegroups"));
    assert_eq!(list.resource.as_deref(), Some(SUB));
    assert_eq!(list.resource_group, None);
}

#[test]
fn arm_resources_by_method() {
    let acct =
        format!("{SUB}/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/acct1");
    assert_eq!(arm("GET", &acct), "Microsoft.Storage/storageAccounts/read");
    assert_eq!(arm("HEAD", &acct), "Microsoft.Storage/storageAccounts/read");
    assert_eq!(arm("PUT", &acct), "Microsoft.Storage/storageAccounts/write");
    assert_eq!(
        arm("PATCH", &acct),
        "Microsoft.Storage/storageAccounts/write"
    );
    assert_eq!(
        arm("DELETE", &acct),
        "Microsoft.Storage/storageAccounts/delete"
    );
    // A list is a read of the type.
    assert_eq!(
        arm(
            "GET",
            &format!("{SUB}/providers/Microsoft.Storage/storageAccounts")
        ),
        "Microsoft.Storage/storageAccounts/read"
    );
    // Nested child resources join their types.
    assert_eq!(
        arm("PUT", &format!("{acct}/blobServices/default/containers/c1")),
        "Microsoft.Storage/storageAccounts/blobServices/containers/write"
    );
    let o = op(ARM, "GET", &format!("{acct}?api-version=2023-01-01"));
    assert_eq!(o.resource, Some(acct));
    assert_eq!(o.resource_group.as_deref(), Some("rg1"));
}

#[test]
fn arm_actions() {
    let rg = format!("{SUB}/resourceGroups/rg1/providers");
    let listkeys = op(
        ARM,
        "POST",
        &format!("{rg}/Microsoft.Storage/storageAccounts/acct1/listKeys?api-version=2023-01-01"),
    );
    assert_eq!(
        listkeys.name,
        "Microsoft.Storage/storageAccounts/listKeys/action"
    );
    assert_eq!(
        listkeys.resource,
        Some(format!("{rg}/Microsoft.Storage/storageAccounts/acct1"))
    );
    assert_eq!(
        arm(
            "POST",
            &format!("{rg}/Microsoft.Web/sites/func1/config/appsettings/list")
        ),
        "Microsoft.Web/sites/config/list/action"
    );
    assert_eq!(
        arm(
            "PUT",
            &format!("{rg}/Microsoft.Web/sites/func1/config/appsettings")
        ),
        "Microsoft.Web/sites/config/write"
    );
    assert_eq!(
        arm(
            "POST",
            &format!("{rg}/Microsoft.Web/sites/func1/host/default/listkeys")
        ),
        "Microsoft.Web/sites/host/listkeys/action"
    );
    assert_eq!(
        arm(
            "POST",
            &format!(
                "{rg}/Microsoft.ContainerService/managedClusters/aks1/listClusterAdminCredential"
            )
        ),
        "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action"
    );
    assert_eq!(
        arm(
            "POST",
            &format!(
                "{rg}/Microsoft.ContainerService/managedClusters/aks1/listClusterUserCredential"
            )
        ),
        "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
    );
    assert_eq!(
        arm(
            "POST",
            &format!("{rg}/Microsoft.Compute/virtualMachines/vm1/runCommand")
        ),
        "Microsoft.Compute/virtualMachines/runCommand/action"
    );
    // A POST to a named resource is still an action.
    assert_eq!(
        arm(
            "POST",
            &format!("{rg}/Microsoft.Compute/virtualMachines/vm1")
        ),
        "Microsoft.Compute/virtualMachines/action"
    );
    // A GET of an action-shaped path is a read, never the action.
    assert_eq!(
        arm(
            "GET",
            &format!("{rg}/Microsoft.Storage/storageAccounts/acct1/listKeys")
        ),
        "Microsoft.Storage/storageAccounts/listKeys/read"
    );
}

#[test]
fn arm_key_vault_purge_and_role_assignments() {
    let purge = op(
        ARM,
        "POST",
        &format!(
            "{SUB}/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/kv1/purge?api-version=2022-07-01"
        ),
    );
    assert_eq!(
        purge.name,
        "Microsoft.KeyVault/locations/deletedVaults/purge/action"
    );
    assert_eq!(purge.resource_group, None);
    assert_eq!(
        purge.resource,
        Some(format!(
            "{SUB}/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/kv1"
        ))
    );

    let id = "b2c3d4e5-0000-0000-0000-000000000001";
    for scope in [
        SUB.to_owned(),
        format!("{SUB}/resourceGroups/rg1"),
        // An extension resource: the role assignment's own namespace wins.
        format!("{SUB}/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1"),
        "/providers/Microsoft.Management/managementGroups/mg1".to_owned(),
    ] {
        let path = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{id}");
        assert_eq!(
            arm("PUT", &path),
            "Microsoft.Authorization/roleAssignments/write",
            "{path}"
        );
        assert_eq!(
            arm("DELETE", &path),
            "Microsoft.Authorization/roleAssignments/delete"
        );
        assert_eq!(
            op(ARM, "PUT", &path).resource.as_deref(),
            Some(path.as_str())
        );
    }
    assert_eq!(
        arm(
            "PUT",
            &format!("{SUB}/providers/Microsoft.Authorization/roleDefinitions/{id}")
        ),
        "Microsoft.Authorization/roleDefinitions/write"
    );
}

#[test]
fn arm_provider_registration_batch_and_fallbacks() {
    assert_eq!(
        arm(
            "POST",
            &format!("{SUB}/providers/Microsoft.Storage/register")
        ),
        "Microsoft.Storage/register/action"
    );
    assert_eq!(
        arm("GET", &format!("{SUB}/providers/Microsoft.Storage")),
        "Microsoft.Resources/subscriptions/providers/read"
    );
    assert_eq!(arm("POST", "/batch"), "Microsoft.Resources/batch/action");
    assert_eq!(name(ARM, "GET", "/"), "arm.request");
    assert_eq!(
        name(ARM, "OPTIONS", &format!("{SUB}/resourcegroups/rg1")),
        "arm.request"
    );
    // Regional ARM endpoints and a port or trailing dot on the host.
    for host in [
        "westeurope.management.azure.com",
        "management.azure.com:443",
        "Management.Azure.com.",
    ] {
        assert_eq!(
            name(host, "DELETE", &format!("{SUB}/resourcegroups/rg1")),
            "Microsoft.Resources/subscriptions/resourceGroups/delete"
        );
    }
    assert_eq!(
        op("evilmanagement.azure.com", "GET", "/subscriptions").service,
        Service::Unknown
    );
}

#[test]
fn blob_service_and_container_operations() {
    let cases = [
        ("GET", "/?comp=list", "storage.container.list"),
        (
            "GET",
            "/?restype=service&comp=properties",
            "storage.service.get_properties",
        ),
        (
            "PUT",
            "/?restype=service&comp=properties",
            "storage.service.set_properties",
        ),
        (
            "GET",
            "/?restype=service&comp=stats",
            "storage.service.get_stats",
        ),
        (
            "GET",
            "/?restype=account&comp=properties",
            "storage.service.get_account_info",
        ),
        (
            "POST",
            "/?restype=service&comp=userdelegationkey",
            "storage.service.get_user_delegation_key",
        ),
        ("POST", "/?comp=batch", "storage.service.batch"),
        (
            "GET",
            "/?comp=blobs&where=%22tag%22%3D%27v%27",
            "storage.blob.find_by_tags",
        ),
        ("GET", "/", "storage.service.request"),
        ("PUT", "/c1?restype=container", "storage.container.create"),
        (
            "DELETE",
            "/c1?restype=container",
            "storage.container.delete",
        ),
        (
            "GET",
            "/c1?restype=container",
            "storage.container.get_properties",
        ),
        (
            "GET",
            "/c1?restype=container&comp=list&prefix=a/&maxresults=10",
            "storage.blob.list",
        ),
        (
            "GET",
            "/c1?restype=container&comp=metadata",
            "storage.container.get_metadata",
        ),
        (
            "PUT",
            "/c1?restype=container&comp=metadata",
            "storage.container.set_metadata",
        ),
        (
            "GET",
            "/c1?restype=container&comp=acl",
            "storage.container.get_acl",
        ),
        (
            "PUT",
            "/c1?restype=container&comp=acl",
            "storage.container.set_acl",
        ),
        (
            "PUT",
            "/c1?comp=lease&restype=container",
            "storage.container.lease",
        ),
        (
            "PUT",
            "/c1?restype=container&comp=undelete",
            "storage.container.restore",
        ),
        (
            "PUT",
            "/c1?restype=container&comp=rename",
            "storage.container.rename",
        ),
        (
            "POST",
            "/c1?restype=container&comp=batch",
            "storage.container.batch",
        ),
        (
            "POST",
            "/c1?restype=container&comp=bogus",
            "storage.container.request",
        ),
        // Trailing slash and case in parameter names and values.
        (
            "DELETE",
            "/c1/?RESTYPE=Container",
            "storage.container.delete",
        ),
    ];
    for (method, target, expected) in cases {
        assert_eq!(name(BLOB, method, target), expected, "{method} {target}");
    }
    let o = op(BLOB, "DELETE", "/c1?restype=container");
    assert_eq!(
        (o.service, o.account.as_deref()),
        (Service::Storage, Some("acct1"))
    );
    assert_eq!((o.container.as_deref(), o.blob), (Some("c1"), None));
}

#[test]
fn blob_operations() {
    let cases = [
        ("GET", "/c1/dir/file.txt", "storage.blob.get"),
        ("HEAD", "/c1/dir/file.txt", "storage.blob.get_properties"),
        ("PUT", "/c1/dir/file.txt", "storage.blob.put"),
        ("DELETE", "/c1/dir/file.txt", "storage.blob.delete"),
        (
            "PUT",
            "/c1/b?comp=block&blockid=QUFBQQ%3D%3D",
            "storage.blob.put_block",
        ),
        ("PUT", "/c1/b?comp=blocklist", "storage.blob.put_block_list"),
        (
            "GET",
            "/c1/b?comp=blocklist&blocklisttype=all",
            "storage.blob.get_block_list",
        ),
        ("PUT", "/c1/b?comp=page", "storage.blob.put_page"),
        ("GET", "/c1/b?comp=pagelist", "storage.blob.get_page_ranges"),
        ("PUT", "/c1/b?comp=appendblock", "storage.blob.append_block"),
        ("GET", "/c1/b?comp=metadata", "storage.blob.get_metadata"),
        ("PUT", "/c1/b?comp=metadata", "storage.blob.set_metadata"),
        (
            "PUT",
            "/c1/b?comp=properties",
            "storage.blob.set_properties",
        ),
        ("PUT", "/c1/b?comp=lease", "storage.blob.lease"),
        ("PUT", "/c1/b?comp=snapshot", "storage.blob.snapshot"),
        ("GET", "/c1/b?comp=tags", "storage.blob.get_tags"),
        ("PUT", "/c1/b?comp=tags", "storage.blob.set_tags"),
        ("PUT", "/c1/b?comp=tier", "storage.blob.set_tier"),
        (
            "PUT",
            "/c1/b?comp=copy&copyid=abc",
            "storage.blob.abort_copy",
        ),
        ("PUT", "/c1/b?comp=undelete", "storage.blob.undelete"),
        (
            "PUT",
            "/c1/b?comp=immutabilityPolicies",
            "storage.blob.set_immutability_policy",
        ),
        (
            "DELETE",
            "/c1/b?comp=immutabilityPolicies",
            "storage.blob.delete_immutability_policy",
        ),
        ("PUT", "/c1/b?comp=legalhold", "storage.blob.set_legal_hold"),
        (
            "PUT",
            "/c1/b?comp=incrementalcopy",
            "storage.blob.incremental_copy",
        ),
        ("PUT", "/c1/b?comp=expiry", "storage.blob.set_expiry"),
        ("POST", "/c1/b?comp=query", "storage.blob.query"),
        (
            "GET",
            "/c1/b?snapshot=2024-01-01T00:00:00.0000000Z",
            "storage.blob.get",
        ),
        ("PUT", "/c1/b?comp=bogus", "storage.blob.request"),
        // A repeated `comp` with two meanings is not named after either.
        (
            "PUT",
            "/c1/b?comp=metadata&comp=block",
            "storage.blob.request",
        ),
        (
            "PUT",
            "/c1/b?comp=block&comp=BLOCK",
            "storage.blob.put_block",
        ),
    ];
    for (method, target, expected) in cases {
        assert_eq!(name(BLOB, method, target), expected, "{method} {target}");
    }
    let o = op(BLOB, "GET", "/c1//dir/file%2Fname.txt");
    assert_eq!(o.container.as_deref(), Some("c1"));
    assert_eq!(o.blob.as_deref(), Some("dir/file%2Fname.txt"));
    // One segment without restype=container is a blob in the root container.
    let root = op(BLOB, "DELETE", "/photo.jpg");
    assert_eq!(root.name, "storage.blob.delete");
    assert_eq!(
        (root.container.as_deref(), root.blob.as_deref()),
        (Some("$root"), Some("photo.jpg"))
    );
}

#[test]
fn other_storage_services() {
    let cases = [
        (
            "acct1.queue.core.windows.net",
            "GET",
            "/?comp=list",
            "storage.queue.list",
        ),
        (
            "acct1.queue.core.windows.net",
            "PUT",
            "/q1",
            "storage.queue.write",
        ),
        (
            "acct1.queue.core.windows.net",
            "POST",
            "/q1/messages",
            "storage.queue.write",
        ),
        (
            "acct1.queue.core.windows.net",
            "GET",
            "/q1/messages?numofmessages=5",
            "storage.queue.read",
        ),
        (
            "acct1.queue.core.windows.net",
            "DELETE",
            "/q1",
            "storage.queue.delete",
        ),
        (
            "acct1.table.core.windows.net",
            "GET",
            "/Tables",
            "storage.table.list",
        ),
        (
            "acct1.table.core.windows.net",
            "GET",
            "/t1(PartitionKey='p',RowKey='r')",
            "storage.table.read",
        ),
        (
            "acct1.table.core.windows.net",
            "MERGE",
            "/t1(PartitionKey='p',RowKey='r')",
            "storage.table.write",
        ),
        (
            "acct1.table.core.windows.net",
            "DELETE",
            "/Tables('t1')",
            "storage.table.delete",
        ),
        (
            "acct1.file.core.windows.net",
            "GET",
            "/share1/dir?restype=directory&comp=list",
            "storage.file.list",
        ),
        (
            "acct1.file.core.windows.net",
            "GET",
            "/share1/dir/f.txt",
            "storage.file.read",
        ),
        (
            "acct1.file.core.windows.net",
            "PUT",
            "/share1/dir/f.txt?comp=range",
            "storage.file.write",
        ),
        (
            "acct1.file.core.windows.net",
            "DELETE",
            "/share1?restype=share",
            "storage.file.delete",
        ),
        (
            "acct1.dfs.core.windows.net",
            "GET",
            "/fs1?resource=filesystem&recursive=true",
            "storage.dfs.list",
        ),
        (
            "acct1.dfs.core.windows.net",
            "PATCH",
            "/fs1/a/b.parquet?action=append&position=0",
            "storage.dfs.write",
        ),
        (
            "acct1.dfs.core.windows.net",
            "DELETE",
            "/fs1/a?recursive=true",
            "storage.dfs.delete",
        ),
        (
            "acct1.dfs.core.windows.net",
            "OPTIONS",
            "/fs1/a",
            "storage.dfs.request",
        ),
        (
            "acct1.z01.blob.storage.azure.net",
            "GET",
            "/c1/b",
            "storage.blob.get",
        ),
        (
            "acct1-secondary.blob.core.windows.net",
            "GET",
            "/?comp=list",
            "storage.container.list",
        ),
    ];
    for (host, method, target, expected) in cases {
        assert_eq!(
            name(host, method, target),
            expected,
            "{host} {method} {target}"
        );
    }
    let t = op(
        "acct1.table.core.windows.net",
        "GET",
        "/t1(PartitionKey='p',RowKey='r')",
    );
    assert_eq!(t.container.as_deref(), Some("t1"));
    let f = op("acct1.file.core.windows.net", "GET", "/share1/dir/f.txt");
    assert_eq!(
        (f.container.as_deref(), f.blob.as_deref()),
        (Some("share1"), Some("dir/f.txt"))
    );
    assert_eq!(
        op("acct1.web.core.windows.net", "GET", "/").service,
        Service::Unknown
    );
    assert_eq!(
        op("blob.core.windows.net", "GET", "/").service,
        Service::Unknown
    );
    assert_eq!(
        op(".blob.core.windows.net", "GET", "/").service,
        Service::Unknown
    );
}

#[test]
fn key_vault_secrets() {
    let v = "api-version=7.4";
    let cases = [
        ("GET", "/secrets", "keyvault.secrets.list"),
        ("GET", "/secrets/db-password", "keyvault.secrets.get"),
        ("GET", "/secrets/db-password/", "keyvault.secrets.get"),
        (
            "GET",
            "/secrets/db-password/0123456789abcdef0123456789abcdef",
            "keyvault.secrets.get",
        ),
        ("GET", "/Secrets/db-password", "keyvault.secrets.get"),
        ("PUT", "/secrets/db-password", "keyvault.secrets.set"),
        (
            "PATCH",
            "/secrets/db-password/0123456789abcdef0123456789abcdef",
            "keyvault.secrets.update",
        ),
        ("DELETE", "/secrets/db-password", "keyvault.secrets.delete"),
        (
            "GET",
            "/secrets/db-password/versions",
            "keyvault.secrets.list_versions",
        ),
        (
            "POST",
            "/secrets/db-password/backup",
            "keyvault.secrets.backup",
        ),
        ("POST", "/secrets/restore", "keyvault.secrets.restore"),
        ("GET", "/deletedsecrets", "keyvault.secrets.list_deleted"),
        (
            "GET",
            "/deletedsecrets/db-password",
            "keyvault.secrets.get_deleted",
        ),
        (
            "DELETE",
            "/deletedsecrets/db-password",
            "keyvault.secrets.purge",
        ),
        (
            "DELETE",
            "/DeletedSecrets/db-password/",
            "keyvault.secrets.purge",
        ),
        (
            "POST",
            "/deletedsecrets/db-password/recover",
            "keyvault.secrets.recover",
        ),
        ("POST", "/secrets/db-password", "keyvault.secrets.request"),
        ("GET", "/", "keyvault.request"),
        ("GET", "/storage", "keyvault.request"),
    ];
    for (method, path, expected) in cases {
        assert_eq!(
            name(VAULT, method, &format!("{path}?{v}")),
            expected,
            "{method} {path}"
        );
    }
    let o = op(VAULT, "GET", "/secrets/db-password?api-version=7.4");
    assert_eq!(o.service, Service::KeyVault);
    assert_eq!(
        (o.vault.as_deref(), o.object.as_deref()),
        (Some("myvault"), Some("db-password"))
    );
    assert_eq!(op(VAULT, "GET", "/secrets").object, None);
    assert_eq!(op(VAULT, "POST", "/secrets/restore").object, None);
    assert_eq!(
        op(VAULT, "DELETE", "/deletedsecrets/db-password")
            .object
            .as_deref(),
        Some("db-password")
    );
}

#[test]
fn key_vault_keys_and_certificates() {
    let ver = "0123456789abcdef0123456789abcdef";
    let cases = [
        ("POST", format!("/keys/k1/{ver}/sign"), "keyvault.keys.sign"),
        ("POST", "/keys/k1//sign".to_owned(), "keyvault.keys.sign"),
        (
            "POST",
            format!("/keys/k1/{ver}/verify"),
            "keyvault.keys.verify",
        ),
        (
            "POST",
            format!("/keys/k1/{ver}/decrypt"),
            "keyvault.keys.decrypt",
        ),
        (
            "POST",
            format!("/keys/k1/{ver}/unwrapKey"),
            "keyvault.keys.unwrapkey",
        ),
        (
            "POST",
            format!("/keys/k1/{ver}/release"),
            "keyvault.keys.release",
        ),
        ("POST", "/keys/k1/create".to_owned(), "keyvault.keys.create"),
        ("PUT", "/keys/k1".to_owned(), "keyvault.keys.import"),
        ("GET", format!("/keys/k1/{ver}"), "keyvault.keys.get"),
        ("POST", "/keys/k1/rotate".to_owned(), "keyvault.keys.rotate"),
        (
            "PUT",
            "/keys/k1/rotationpolicy".to_owned(),
            "keyvault.keys.set_rotation_policy",
        ),
        (
            "GET",
            "/keys/k1/rotationpolicy".to_owned(),
            "keyvault.keys.get_rotation_policy",
        ),
        ("DELETE", "/keys/k1".to_owned(), "keyvault.keys.delete"),
        (
            "DELETE",
            "/deletedkeys/k1".to_owned(),
            "keyvault.keys.purge",
        ),
        (
            "POST",
            "/deletedkeys/k1/recover".to_owned(),
            "keyvault.keys.recover",
        ),
        (
            "GET",
            "/certificates".to_owned(),
            "keyvault.certificates.list",
        ),
        (
            "GET",
            "/certificates/c1".to_owned(),
            "keyvault.certificates.get",
        ),
        (
            "POST",
            "/certificates/c1/create".to_owned(),
            "keyvault.certificates.create",
        ),
        (
            "POST",
            "/certificates/c1/import".to_owned(),
            "keyvault.certificates.import",
        ),
        (
            "GET",
            "/certificates/c1/pending".to_owned(),
            "keyvault.certificates.get_operation",
        ),
        (
            "POST",
            "/certificates/c1/pending/merge".to_owned(),
            "keyvault.certificates.merge",
        ),
        (
            "PATCH",
            "/certificates/c1/policy".to_owned(),
            "keyvault.certificates.update_policy",
        ),
        (
            "PUT",
            "/certificates/contacts".to_owned(),
            "keyvault.certificates.set_contacts",
        ),
        (
            "GET",
            "/certificates/issuers".to_owned(),
            "keyvault.certificates.list_issuers",
        ),
        (
            "PUT",
            "/certificates/issuers/digicert".to_owned(),
            "keyvault.certificates.set_issuer",
        ),
        (
            "DELETE",
            "/deletedcertificates/c1".to_owned(),
            "keyvault.certificates.purge",
        ),
        // A secret is never "signed": the key operations belong to keys.
        (
            "POST",
            format!("/secrets/s1/{ver}/sign"),
            "keyvault.secrets.request",
        ),
    ];
    for (method, path, expected) in cases {
        assert_eq!(
            name(VAULT, method, &format!("{path}?api-version=7.4")),
            expected,
            "{method} {path}"
        );
    }
    assert_eq!(
        op(VAULT, "POST", "/keys/k1//sign").object.as_deref(),
        Some("k1")
    );
    assert_eq!(
        op(VAULT, "PUT", "/certificates/issuers/digicert")
            .object
            .as_deref(),
        Some("digicert")
    );
    assert_eq!(op(VAULT, "GET", "/certificates/contacts").object, None);
}

#[test]
fn functions() {
    let cases = [
        ("GET", "/admin/host/keys", "functions.keys.list", None),
        ("PUT", "/admin/host/keys/mykey", "functions.keys.set", None),
        ("POST", "/admin/host/keys/mykey", "functions.keys.set", None),
        (
            "DELETE",
            "/admin/host/keys/mykey",
            "functions.keys.delete",
            None,
        ),
        (
            "GET",
            "/admin/host/systemkeys/durabletask_extension",
            "functions.keys.list",
            None,
        ),
        (
            "GET",
            "/admin/functions/HttpTrigger1/keys",
            "functions.keys.list",
            Some("HttpTrigger1"),
        ),
        (
            "PUT",
            "/admin/functions/HttpTrigger1/keys/k",
            "functions.keys.set",
            Some("HttpTrigger1"),
        ),
        (
            "DELETE",
            "/Admin/Functions/HttpTrigger1/Keys/k",
            "functions.keys.delete",
            Some("HttpTrigger1"),
        ),
        ("GET", "/admin/host/status", "functions.host.status", None),
        (
            "GET",
            "/api/HttpTrigger1?code=xyz",
            "functions.invoke",
            Some("HttpTrigger1"),
        ),
        ("POST", "/api/orders/42", "functions.invoke", Some("orders")),
        (
            "POST",
            "/admin/functions/QueueTrigger1",
            "functions.invoke",
            Some("QueueTrigger1"),
        ),
        (
            "GET",
            "/admin/functions/QueueTrigger1",
            "functions.request",
            Some("QueueTrigger1"),
        ),
        ("GET", "/", "functions.request", None),
        ("GET", "/admin/vfs/host.json", "functions.request", None),
    ];
    for (method, target, expected, function) in cases {
        let o = op(FUNC, method, target);
        assert_eq!(o.service, Service::Functions);
        assert_eq!(
            (o.name.as_str(), o.function.as_deref()),
            (expected, function),
            "{method} {target}"
        );
    }
    // Kudu's `/api/` is its own API, never a function invocation.
    let scm = "func1.scm.azurewebsites.net";
    assert_eq!(name(scm, "POST", "/api/command"), "functions.scm.command");
    assert_eq!(
        name(scm, "POST", "/api/zipdeploy?isAsync=true"),
        "functions.scm.zipdeploy"
    );
    assert_eq!(
        name(scm, "PUT", "/api/vfs/site/wwwroot/run.csx"),
        "functions.scm.vfs"
    );
    assert_eq!(name(scm, "GET", "/api/unknown"), "functions.scm.request");
    assert_eq!(op(scm, "POST", "/api/command").function, None);
}

fn kube(method: &str, target: &str) -> Operation {
    op(AKS, method, target)
}

#[test]
fn kubernetes_verbs_and_names() {
    let cases = [
        (
            "GET",
            "/api/v1/namespaces/default/pods/web-0",
            "k8s.pods.get",
        ),
        ("GET", "/api/v1/namespaces/default/pods", "k8s.pods.list"),
        ("GET", "/api/v1/pods?limit=500", "k8s.pods.list"),
        (
            "GET",
            "/api/v1/namespaces/default/pods?watch=true&resourceVersion=1",
            "k8s.pods.watch",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods?watch=1",
            "k8s.pods.watch",
        ),
        (
            "GET",
            "/api/v1/watch/namespaces/default/pods",
            "k8s.pods.watch",
        ),
        ("POST", "/api/v1/namespaces/default/pods", "k8s.pods.create"),
        (
            "PUT",
            "/api/v1/namespaces/default/configmaps/cm1",
            "k8s.configmaps.update",
        ),
        (
            "DELETE",
            "/api/v1/namespaces/default/pods/web-0",
            "k8s.pods.delete",
        ),
        (
            "DELETE",
            "/api/v1/namespaces/default/pods",
            "k8s.pods.deletecollection",
        ),
        (
            "GET",
            "/api/v1/namespaces/prod/secrets/db",
            "k8s.secrets.get",
        ),
        ("GET", "/api/v1/secrets", "k8s.secrets.list"),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/default/deployments/web",
            "k8s.apps.deployments.patch",
        ),
        (
            "PUT",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
            "k8s.apps.deployments.scale.update",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/pods/web-0/status",
            "k8s.pods.status.patch",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/serviceaccounts/sa/token",
            "k8s.serviceaccounts.token.create",
        ),
        (
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            "k8s.rbac.authorization.k8s.io.clusterrolebindings.create",
        ),
        (
            "GET",
            "/api/v1/nodes/node-1/proxy/metrics",
            "k8s.nodes.proxy",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods/web-0/log?follow=true",
            "k8s.pods.log",
        ),
        ("GET", "/api", "k8s.discovery"),
        ("GET", "/apis/apps/v1", "k8s.discovery"),
        ("GET", "/version", "k8s.request"),
        ("OPTIONS", "/api/v1/pods", "k8s.request"),
    ];
    for (method, target, expected) in cases {
        assert_eq!(kube(method, target).name, expected, "{method} {target}");
    }
    let o = kube("PATCH", "/apis/apps/v1/namespaces/default/deployments/web");
    assert_eq!(o.service, Service::Kubernetes);
    assert_eq!(
        o.kubernetes,
        Some(KubeRef {
            verb: KubeVerb::Patch,
            api_group: Some("apps".into()),
            resource: "deployments".into(),
            namespace: Some("default".into()),
            name: Some("web".into()),
            subresource: None,
        })
    );
}

#[test]
fn kubernetes_exec_attach_portforward() {
    let pod = "/api/v1/namespaces/default/pods/web-0";
    let exec = "command=sh&command=-c&stdin=true&stdout=true&tty=true";
    for method in ["POST", "GET"] {
        let o = kube(method, &format!("{pod}/exec?{exec}"));
        assert_eq!(o.name, "k8s.pods.exec", "{method}");
        let k = o.kubernetes.unwrap();
        assert_eq!(k.subresource.as_deref(), Some("exec"));
        assert_eq!(
            (k.namespace.as_deref(), k.name.as_deref()),
            (Some("default"), Some("web-0"))
        );
        assert_eq!(
            kube(method, &format!("{pod}/attach?stdin=true")).name,
            "k8s.pods.attach"
        );
        assert_eq!(
            kube(method, &format!("{pod}/portforward?ports=8080")).name,
            "k8s.pods.portforward"
        );
        assert_eq!(kube(method, &format!("{pod}//exec/")).name, "k8s.pods.exec");
        assert_eq!(kube(method, &format!("{pod}/Exec")).name, "k8s.pods.exec");
    }
    assert_eq!(
        kube("GET", &format!("{pod}/exec")).kubernetes.unwrap().verb,
        KubeVerb::Get
    );
    assert_eq!(
        kube("POST", &format!("{pod}/exec"))
            .kubernetes
            .unwrap()
            .verb,
        KubeVerb::Create
    );
}

#[test]
fn kubernetes_namespaces() {
    let delete = kube("DELETE", "/api/v1/namespaces/prod");
    assert_eq!(delete.name, "k8s.namespaces.delete");
    let k = delete.kubernetes.unwrap();
    assert_eq!(
        (k.resource.as_str(), k.name.as_deref()),
        ("namespaces", Some("prod"))
    );
    assert_eq!(
        kube("GET", "/api/v1/namespaces").name,
        "k8s.namespaces.list"
    );
    assert_eq!(
        kube("POST", "/api/v1/namespaces").name,
        "k8s.namespaces.create"
    );
    assert_eq!(
        kube("PUT", "/api/v1/namespaces/prod/finalize").name,
        "k8s.namespaces.finalize.update"
    );
    assert_eq!(
        kube("GET", "/api/v1/namespaces/prod/status").name,
        "k8s.namespaces.status.get"
    );
}

#[test]
fn kubernetes_api_shape_on_any_host() {
    for host in [
        "10.0.0.1:6443",
        "kubernetes.default.svc",
        "my-cluster.example.com",
    ] {
        assert_eq!(
            name(
                host,
                "POST",
                "/api/v1/namespaces/default/pods/web-0/exec?command=sh"
            ),
            "k8s.pods.exec",
            "{host}"
        );
        assert_eq!(
            name(host, "DELETE", "/apis/apps/v1/namespaces/x/deployments/d"),
            "k8s.apps.deployments.delete"
        );
    }
    // Not the API shape: left unknown off a cluster host.
    assert_eq!(
        op("example.com", "GET", "/api/users").service,
        Service::Unknown
    );
    assert_eq!(op("example.com", "GET", "/apis").service, Service::Unknown);
    // A storage container called `api` is still storage.
    assert_eq!(name(BLOB, "GET", "/api/v1/pods"), "storage.blob.get");
}

#[test]
fn entra() {
    let hosts = [
        "login.microsoftonline.com",
        "login.windows.net",
        "sts.windows.net",
    ];
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    for host in hosts {
        let o = op(host, "POST", &format!("/{tenant}/oauth2/v2.0/token"));
        assert_eq!(
            (o.service, o.name.as_str()),
            (Service::Entra, "entra.token")
        );
        assert_eq!(o.tenant.as_deref(), Some(tenant));
        assert_eq!(
            name(host, "POST", "/organizations/oauth2/token"),
            "entra.token"
        );
    }
    let login = "login.microsoftonline.com";
    assert_eq!(
        name(login, "POST", "/common/oauth2/v2.0/devicecode"),
        "entra.device_code"
    );
    assert_eq!(
        name(login, "GET", "/common/oauth2/v2.0/authorize?client_id=x"),
        "entra.authorize"
    );
    assert_eq!(
        name(
            login,
            "GET",
            &format!("/{tenant}/v2.0/.well-known/openid-configuration")
        ),
        "entra.discovery"
    );
    assert_eq!(
        name(login, "GET", "/common/discovery/v2.0/keys"),
        "entra.discovery"
    );
    assert_eq!(
        name(login, "GET", "/common/discovery/keys"),
        "entra.discovery"
    );
    assert_eq!(
        name(login, "GET", "/common/discovery/instance?api-version=1.1"),
        "entra.discovery"
    );
    assert_eq!(
        op(login, "GET", "/.well-known/openid-configuration").tenant,
        None
    );
    assert_eq!(
        name(login, "GET", &format!("/{tenant}/oauth2/v2.0/token")),
        "entra.request"
    );
    assert_eq!(name(login, "GET", "/"), "entra.request");
}

#[test]
fn unknown_hosts_are_named_by_method() {
    let o = op("api.example.org", "GET", "/repos/x/y");
    assert_eq!((o.service, o.name.as_str()), (Service::Unknown, "http.get"));
    assert_eq!(name("example.com", "PROPFIND", "/"), "http.propfind");
}

#[test]
fn serialises_snake_case_and_skips_unset_fields() {
    let o = op(
        VAULT,
        "DELETE",
        "/deletedsecrets/db-password?api-version=7.4",
    );
    assert_eq!(
        serde_json::to_value(&o).unwrap(),
        serde_json::json!({
            "service": "key_vault",
            "name": "keyvault.secrets.purge",
            "vault": "myvault",
            "object": "db-password",
        })
    );
    let k = kube("DELETE", "/api/v1/namespaces/default/pods");
    assert_eq!(
        serde_json::to_value(&k).unwrap(),
        serde_json::json!({
            "service": "kubernetes",
            "name": "k8s.pods.deletecollection",
            "kubernetes": {"verb": "deletecollection", "resource": "pods", "namespace": "default"},
        })
    );
}

#[test]
fn never_panics_on_odd_input() {
    let long = "/a".repeat(10_000);
    let paths = [
        "",
        "/",
        "//////",
        "?",
        "%2F%2F",
        "/subscriptions",
        "/subscriptions/",
        "/providers/",
        "/providers/providers/providers",
        "/subscriptions/s/providers/Microsoft.X/providers/y",
        "/api",
        "/apis/",
        "/api/v1/namespaces/",
        "/api/v1/watch",
        "/api/v1/namespaces/ns",
        "/keys//",
        "/deletedsecrets//recover",
        "/admin/functions/",
        "/ünïcødé/名前/🔑",
        "/c1/\u{0}/\u{7f}",
        long.as_str(),
    ];
    let queries = [
        None,
        Some(""),
        Some("&&&"),
        Some("=&="),
        Some("comp"),
        Some("comp=&restype="),
        Some("watch=%74rue&watch"),
        Some("comp=ü&restype=名"),
    ];
    let hosts = [
        "",
        ".",
        ":",
        "[::1]:443",
        ".blob.core.windows.net",
        "blob.core.windows.net",
        "a..blob.core.windows.net",
        ARM,
        BLOB,
        "acct1.queue.core.windows.net",
        "acct1.table.core.windows.net",
        "acct1.dfs.core.windows.net",
        VAULT,
        FUNC,
        "func1.scm.azurewebsites.net",
        AKS,
        "login.microsoftonline.com",
        "ünïcødé.example",
        "example.com",
    ];
    let methods = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "MERGE", "OPTIONS", "X-WEIRD",
    ];
    for host in hosts {
        for method in methods {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            for path in paths {
                for query in queries {
                    let o = classify(host, &method, path, query);
                    assert!(!o.name.is_empty(), "{host} {method} {path} {query:?}");
                }
            }
        }
    }
}

#[test]
fn escaped_unreserved_characters_do_not_hide_an_operation() {
    let path = normalize_path("/%73ubscriptions/s/resource%47roups/rg%2Fx/%7E");
    assert_eq!(path, "/subscriptions/s/resourceGroups/rg%2Fx/~");
    let op = classify(
        "management.azure.com",
        &Method::DELETE,
        &normalize_path("/%73ubscriptions/s/%72esourcegroups/rg"),
        None,
    );
    assert_eq!(
        op.name,
        "Microsoft.Resources/subscriptions/resourceGroups/delete"
    );
    assert_eq!(normalize_path("/a%zz%4"), "/a%zz%4", "broken escapes stay");
    assert_eq!(normalize_path("/é%41"), "/éA");
}

#[test]
fn github_copilot_token_exchange_and_user_are_named() {
    assert_eq!(
        name("api.github.com", "GET", "/copilot_internal/v2/token"),
        "github.copilot.token"
    );
    assert_eq!(name("api.github.com", "GET", "/user"), "github.user");
    assert_eq!(
        name("api.github.com", "GET", "/copilot_internal/user"),
        "github.copilot.user"
    );
    assert_eq!(name("api.github.com", "GET", "/repos/o/r"), "github.read");
    assert_eq!(name("api.github.com", "POST", "/user"), "github.write");
    assert_eq!(
        op("api.github.com", "GET", "/user").service,
        Service::Github
    );
}

#[test]
fn microsoft_graph_credentials_and_roles_are_named() {
    let g = "graph.microsoft.com";
    for (method, path, want) in [
        (
            "POST",
            "/v1.0/applications/0c9a/addPassword",
            "graph.applications.addPassword.create",
        ),
        (
            "POST",
            "/beta/servicePrincipals/77/addKey",
            "graph.servicePrincipals.addKey.create",
        ),
        (
            "POST",
            "/v1.0/applications/0c9a/federatedIdentityCredentials",
            "graph.applications.federatedIdentityCredentials.create",
        ),
        (
            "POST",
            "/v1.0/roleManagement/directory/roleAssignments",
            "graph.roleManagement.roleAssignments.create",
        ),
        (
            "POST",
            "/v1.0/directoryRoles/r1/members/$ref",
            "graph.directoryRoles.members.ref.create",
        ),
        ("GET", "/v1.0/me/memberOf", "graph.users.memberOf.read"),
        ("GET", "/v1.0/users/delta()", "graph.users.read"),
        (
            "PATCH",
            "/v1.0/applications/0c9a",
            "graph.applications.update",
        ),
        ("POST", "/v1.0/$batch", "graph.batch"),
        ("GET", "/v1.0", "graph.read"),
    ] {
        assert_eq!(name(g, method, path), want, "{method} {path}");
    }
    assert_eq!(op(g, "GET", "/v1.0/me").service, Service::Graph);
    assert_eq!(
        name("login.microsoft.com", "POST", "/t1/oauth2/v2.0/token"),
        "entra.token"
    );
}

#[test]
fn metadata_requests_are_named_by_path_and_carry_their_audience() {
    use super::imds::{ManagedIdentity, asked_identity, classify};
    let token = "/metadata/identity/oauth2/token";
    let op = classify(
        token,
        Some("api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net"),
    );
    assert_eq!(
        (op.service, op.name.as_str()),
        (Service::Imds, "imds.token")
    );
    assert_eq!(op.audience.as_deref(), Some("https://vault.azure.net"));
    for (path, want) in [
        ("/metadata/identity/oauth2/token/", "imds.token"),
        ("/METADATA/Identity/OAuth2/Token", "imds.token"),
        ("/msi/token", "imds.token"),
        ("/metadata/identity/info", "imds.identity"),
        ("/metadata/instance/compute", "imds.instance"),
        ("/metadata/attested/document", "imds.attested"),
        ("/metadata/scheduledevents", "imds.scheduled_events"),
        ("/metadata/versions", "imds.request"),
        ("/", "imds.request"),
    ] {
        assert_eq!(classify(path, None).name, want, "{path}");
    }
    assert_eq!(
        classify("/metadata/instance", Some("resource=x")).audience,
        None
    );
    assert_eq!(asked_identity(None), ManagedIdentity::default());
    let user = asked_identity(Some(
        "resource=x&client_id=c1&object_id=&msi_res_id=%2Fsubscriptions%2Fs%2Fid1",
    ));
    assert_eq!(user.client_id.as_deref(), Some("c1"));
    assert_eq!(user.object_id, None, "an empty value names no identity");
    assert_eq!(user.resource_id.as_deref(), Some("/subscriptions/s/id1"));
    assert_eq!(
        asked_identity(Some("principal_id=p1&mi_res_id=r1")),
        ManagedIdentity {
            client_id: None,
            object_id: Some("p1".into()),
            resource_id: Some("r1".into()),
        }
    );
}

#[test]
fn grant_scopes_are_prefixes_of_resource_paths() {
    use super::scope::{covers, parse_scope, resource_path};
    let aks = "aks1-dns.hcp.westeurope.azmk8s.io";
    let exec = op(
        aks,
        "POST",
        "/api/v1/namespaces/payments/pods/api-7d9f/exec",
    );
    let pod = resource_path(&exec, aks, "/api/v1/namespaces/payments/pods/api-7d9f/exec");
    assert_eq!(
        pod,
        format!("k8s://{aks}/namespaces/payments/pods/api-7d9f")
    );
    let deploy = op(
        aks,
        "PATCH",
        "/apis/apps/v1/namespaces/payments/deployments/web",
    );
    let deploy = resource_path(
        &deploy,
        aks,
        "/apis/apps/v1/namespaces/payments/deployments/web",
    );
    let ns = parse_scope("namespace/payments", &pod).unwrap();
    assert_eq!(ns, format!("k8s://{aks}/namespaces/payments"));
    assert!(
        covers(&ns, &deploy),
        "a namespace covers every API group's objects"
    );
    assert!(!covers(
        &ns,
        &format!("k8s://{aks}/namespaces/payments-prod/pods/x")
    ));
    assert!(!covers(
        &ns,
        "k8s://other-dns.hcp.westeurope.azmk8s.io/namespaces/payments/pods/x"
    ));

    let arm = "management.azure.com";
    let path =
        "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/st1";
    let st = resource_path(&op(arm, "DELETE", path), arm, path);
    assert_eq!(st, path);
    assert!(covers("/subscriptions/S1/resourcegroups/RG1", &st));
    assert!(
        !covers("/subscriptions/s1/resourceGroups/rg", &st),
        "whole segments only"
    );
    assert!(!covers("/", &st));
    assert!(
        parse_scope("namespace/x", &st)
            .unwrap_err()
            .contains("Kubernetes")
    );
    assert_eq!(
        parse_scope("/subscriptions/s1/", &st).unwrap(),
        "/subscriptions/s1"
    );

    let blob = "acct1.blob.core.windows.net";
    let b = resource_path(
        &op(blob, "DELETE", "/logs/2026/a.txt"),
        blob,
        "/logs/2026/a.txt",
    );
    assert_eq!(b, format!("https://{blob}/logs/2026/a.txt"));
    assert!(covers(&format!("https://{blob}/logs"), &b));
    assert!(!covers(
        &format!("https://{blob}/logs"),
        "https://acct2.blob.core.windows.net/logs/a"
    ));
}
