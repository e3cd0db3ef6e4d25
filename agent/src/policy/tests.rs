//! The shipped policies, rule by rule, and the loader's errors.

use std::path::Path;

use super::*;
use crate::core::{CredentialKind, GithubInfo, SasInfo};

struct Req {
    identity: Identity,
    process: ProcessInfo,
    method: &'static str,
    host: &'static str,
    path: &'static str,
    operation: &'static str,
}

fn req(method: &'static str, operation: &'static str) -> Req {
    Req {
        identity: Identity {
            kind: CredentialKind::Jwt,
            verified: true,
            ..Identity::default()
        },
        process: ProcessInfo {
            comm: "az".into(),
            uid: 1000,
            ..ProcessInfo::default()
        },
        method,
        host: "management.azure.com",
        path: "/subscriptions/s/resourceGroups/rg",
        operation,
    }
}

fn decide(p: &Policy, r: &Req) -> Decision {
    p.decide(&Subject {
        identity: &r.identity,
        process: &r.process,
        method: r.method,
        host: r.host,
        port: 443,
        path: r.path,
        operation: r.operation,
        secrets: &[],
    })
}

fn shipped() -> Policy {
    embedded().expect("the shipped policies load")
}

#[test]
fn ordinary_calls_are_allowed_by_default() {
    let d = decide(&shipped(), &req("GET", "storage.blob.list"));
    assert_eq!((d.action, d.rule), (Action::Allow, None));
}

#[test]
fn invalid_jwt_is_denied_but_unverified_is_not() {
    let p = shipped();
    let mut r = req(
        "GET",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
    );
    r.identity.verified = false;
    assert_eq!(
        decide(&p, &r).action,
        Action::Allow,
        "no issuer configured: recorded, not denied"
    );
    r.identity.error = Some("token expired".into());
    let d = decide(&p, &r);
    assert_eq!(
        (d.action, d.rule.as_deref()),
        (Action::Deny, Some("invalid-token"))
    );
}

#[test]
fn shared_key_is_denied() {
    let mut r = req("GET", "storage.blob.get");
    r.identity = Identity {
        kind: CredentialKind::SharedKey,
        account: Some("acct".into()),
        ..Identity::default()
    };
    let d = decide(&shipped(), &r);
    assert_eq!(
        (d.action, d.rule.as_deref()),
        (Action::Deny, Some("storage-shared-key"))
    );
}

#[test]
fn sas_lifetime_limit() {
    let p = shipped();
    let mut r = req("GET", "storage.blob.get");
    let sas = |lifetime_s| Identity {
        kind: CredentialKind::Sas,
        sas: Some(SasInfo {
            lifetime_s,
            ..SasInfo::default()
        }),
        ..Identity::default()
    };
    r.identity = sas(Some(3600));
    assert_eq!(decide(&p, &r).action, Action::Allow);
    r.identity = sas(Some(24 * 3600));
    assert_eq!(
        decide(&p, &r).action,
        Action::Allow,
        "exactly 24 h is within the limit"
    );
    r.identity = sas(Some(24 * 3600 + 1));
    assert_eq!(decide(&p, &r).rule.as_deref(), Some("sas-long-lived"));
    r.identity = sas(None);
    assert_eq!(
        decide(&p, &r).rule.as_deref(),
        Some("sas-long-lived"),
        "no expiry"
    );
}

#[test]
fn high_risk_operations_need_approval() {
    let p = shipped();
    for (op, rule) in [
        (
            "Microsoft.Resources/subscriptions/resourceGroups/delete",
            "resource-group-delete",
        ),
        (
            "microsoft.resources/subscriptions/resourcegroups/delete",
            "resource-group-delete",
        ),
        (
            "Microsoft.Authorization/roleAssignments/write",
            "role-assignment-write",
        ),
        ("keyvault.secrets.purge", "key-vault-purge"),
        (
            "Microsoft.KeyVault/locations/deletedVaults/purge/action",
            "key-vault-purge",
        ),
        ("k8s.pods.exec", "kubernetes-pod-access"),
        ("k8s.pods.attach", "kubernetes-pod-access"),
        ("k8s.pods.portforward", "kubernetes-pod-access"),
        ("k8s.namespaces.delete", "kubernetes-namespace-delete"),
    ] {
        let d = decide(&p, &req("POST", op));
        assert_eq!(
            (d.action, d.rule.as_deref()),
            (Action::Approve, Some(rule)),
            "{op}"
        );
        assert_eq!(d.timeout, None, "approval.timeout applies");
    }
    for op in [
        "k8s.pods.get",
        "k8s.pods.log",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
    ] {
        assert_eq!(decide(&p, &req("GET", op)).action, Action::Allow, "{op}");
    }
}

/// A scratch directory holding `files`; removed on drop.
struct Dir(std::path::PathBuf);

impl Dir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir_with(files: &[(&str, &str)]) -> Dir {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = crate::scratch_dir(&format!("policy-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    Dir(dir)
}

fn load_err(files: &[(&str, &str)]) -> String {
    let d = dir_with(files);
    load_dir(d.path())
        .expect_err("must be rejected")
        .to_string()
}

#[test]
fn errors_name_file_line_and_reason() {
    let e = load_err(&[(
        "a.toml",
        "[[rule]]\nname = \"x\"\naction = \"maybe\"\nreason = \"r\"\n",
    )]);
    assert!(e.contains("a.toml:3:") && e.contains("maybe"), "{e}");
    let e = load_err(&[(
        "a.toml",
        "[[rule]]\nname = \"x\"\naction = \"deny\"\nreason = \"r\"\nrequest.verb = \"get\"\n",
    )]);
    assert!(
        e.contains("a.toml:") && e.contains("verb"),
        "unknown key: {e}"
    );
    let e = load_err(&[(
        "a.toml",
        "\n\n[[rule]]\nname = \"x\"\naction = \"deny\"\nreason = \"r\"\nidentity.kind = \"token\"\n",
    )]);
    assert!(e.contains("a.toml:3:") && e.contains("\"token\""), "{e}");
    let e = load_err(&[
        (
            "a.toml",
            "[[rule]]\nname = \"x\"\naction = \"deny\"\nreason = \"r\"\n",
        ),
        (
            "b.toml",
            "[[rule]]\nname = \"x\"\naction = \"allow\"\nreason = \"r\"\n",
        ),
    ]);
    assert!(
        e.contains("b.toml:1:") && e.contains("already defined at") && e.contains("a.toml:1"),
        "{e}"
    );
    let e = load_err(&[(
        "a.toml",
        "[[rule]]\nname = \"x\"\naction = \"deny\"\nreason = \"r\"\ntimeout = \"5m\"\n",
    )]);
    assert!(e.contains("timeout only applies"), "{e}");
    let e = load_err(&[
        ("a.toml", "[defaults]\naction = \"allow\"\n"),
        ("b.toml", "[defaults]\naction = \"deny\"\n"),
    ]);
    assert!(e.contains("b.toml:1:") && e.contains("already set"), "{e}");
    let empty = dir_with(&[]);
    assert!(matches!(load_dir(empty.path()), Err(PolicyError::Empty(_))));
    assert!(load_dir(Path::new("/nonexistent/airlock")).is_err());
}

#[test]
fn order_is_files_by_name_then_rules_in_order() {
    let d = dir_with(&[
        (
            "20-b.toml",
            "[[rule]]\nname = \"late\"\naction = \"allow\"\nreason = \"r\"\n",
        ),
        (
            "10-a.toml",
            "[[rule]]\nname = \"first\"\naction = \"deny\"\nreason = \"r\"\nrequest.method = \"GET\"\n\n[[rule]]\nname = \"second\"\naction = \"allow\"\nreason = \"r\"\n",
        ),
    ]);
    let p = load_dir(d.path()).unwrap();
    let names: Vec<_> = p.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["first", "second", "late"]);
    assert_eq!(decide(&p, &req("get", "x")).rule.as_deref(), Some("first"));
    assert_eq!(decide(&p, &req("PUT", "x")).rule.as_deref(), Some("second"));
    assert_eq!(
        p.origin("second").unwrap(),
        format!("{}:7", d.path().join("10-a.toml").display())
    );
    assert_eq!(p.default_action(), Action::Deny, "no [defaults]: deny");
}

#[test]
fn identity_and_process_conditions() {
    let d = dir_with(&[(
        "a.toml",
        r#"
[[rule]]
name = "ops-may-delete"
action = "allow"
reason = "platform team"
identity.groups = ["11111111-aaaa-*"]
identity.verified = true
request.method = "DELETE"

[[rule]]
name = "ci-repo"
action = "allow"
reason = "the deploy workflow"
identity.github_repository = "contoso/infra"
process.comm = ["az", "kubectl"]
process.uid = [1000, 1001]

[[rule]]
name = "no-deletes"
action = "deny"
reason = "deletes need the platform group"
request.method = "DELETE"
"#,
    )]);
    let p = load_dir(d.path()).unwrap();
    let mut r = req("DELETE", "x");
    assert_eq!(decide(&p, &r).rule.as_deref(), Some("no-deletes"));
    r.identity.groups = vec!["11111111-aaaa-bbbb".into()];
    assert_eq!(decide(&p, &r).rule.as_deref(), Some("ops-may-delete"));
    r.identity.groups_overage = true;
    assert_eq!(
        decide(&p, &r).rule.as_deref(),
        Some("no-deletes"),
        "overage is not membership"
    );
    r.identity.groups_overage = false;
    r.identity.verified = false;
    assert_eq!(
        decide(&p, &r).rule.as_deref(),
        Some("no-deletes"),
        "unverified groups are not trusted"
    );
    r.identity.github = Some(GithubInfo {
        repository: Some("contoso/infra".into()),
        ..GithubInfo::default()
    });
    assert_eq!(decide(&p, &r).rule.as_deref(), Some("ci-repo"));
    r.process.comm = "curl".into();
    assert_eq!(decide(&p, &r).rule.as_deref(), Some("no-deletes"));
}

#[test]
fn tls_sni_rules_judge_passed_through_connections_only() {
    // Block mode: only listed endpoints, whatever the program.
    let d = dir_with(&[(
        "10-egress.toml",
        "[defaults]\naction = \"deny\"\nreason = \"not an allowed endpoint\"\n\n\
         [[rule]]\nname = \"pypi\"\naction = \"allow\"\nreason = \"packages\"\ntls.sni = [\"pypi.org\", \"*.pythonhosted.org\"]\n\n\
         [[rule]]\nname = \"no-curl-to-github\"\naction = \"deny\"\nreason = \"r\"\ntls.sni = \"*github*\"\nprocess.comm = \"curl\"\n\n\
         [[rule]]\nname = \"github\"\naction = \"allow\"\nreason = \"r\"\ntls.sni = \"*.github.com\"\n",
    )]);
    let p = load_dir(d.path()).unwrap();
    let process = |comm: &str| ProcessInfo {
        comm: comm.into(),
        ..ProcessInfo::default()
    };
    let rule = |sni: Option<&str>, comm: &str| {
        let d = p.decide_connection(sni, &process(comm));
        (d.action, d.rule)
    };
    assert_eq!(
        rule(Some("PyPI.org"), "pip"),
        (Action::Allow, Some("pypi".into()))
    );
    assert_eq!(rule(Some("files.pythonhosted.org"), "pip").0, Action::Allow);
    assert_eq!(rule(Some("api.github.com"), "curl").0, Action::Deny);
    assert_eq!(rule(Some("api.github.com"), "git").0, Action::Allow);
    assert_eq!(rule(Some("evil.example"), "pip"), (Action::Deny, None));
    assert_eq!(rule(None, "pip"), (Action::Deny, None), "no name, no rule");
    // Connection rules never decide requests.
    assert_eq!(decide(&p, &req("GET", "x")).rule, None);

    // A connection carries no identity or request, and cannot wait.
    for (cond, why) in [
        ("identity.kind = \"jwt\"\n", "only tls and process"),
        ("request.method = \"GET\"\n", "only tls and process"),
    ] {
        let e = load_err(&[(
            "10-x.toml",
            &format!(
                "[[rule]]\nname = \"x\"\naction = \"deny\"\nreason = \"r\"\ntls.sni = \"a\"\n{cond}"
            ),
        )]);
        assert!(e.contains(why) && e.contains("10-x.toml:1"), "{e}");
    }
    let e = load_err(&[(
        "10-x.toml",
        "[[rule]]\nname = \"x\"\naction = \"approve\"\nreason = \"r\"\ntls.sni = \"a\"\n",
    )]);
    assert!(e.contains("allow or deny"), "{e}");
}
