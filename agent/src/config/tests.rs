use std::path::{Path, PathBuf};

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/airlock/test.toml"))
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn empty_file_gives_working_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.capture.ports, vec![443]);
    assert_eq!(c.capture.imds[0].to_string(), "169.254.169.254:80");
    assert!(c.capture.follow_children);
    assert_eq!(c.proxy.listen.to_string(), "127.0.0.1:15443");
    assert_eq!(c.proxy.listen6.unwrap().to_string(), "[::1]:15443");
    assert_eq!(c.audit.path, Path::new("/var/log/airlock/audit.jsonl"));
}

#[test]
fn issue_example_parses() {
    let c = parse(
        r#"
[capture]
cgroup = "/sys/fs/cgroup/unified/ci-runner"
comm = ["node", "az", "kubectl", "curl"]
uid = [1001]
follow_children = true
ports = [443]
[proxy]
listen = "127.0.0.1:15443"
[audit]
path = "/var/log/airlock/audit.jsonl"
"#,
    )
    .unwrap();
    assert_eq!(c.capture.comm, ["node", "az", "kubectl", "curl"]);
    assert_eq!(c.capture.uid, [1001]);
}

#[test]
fn unknown_key_names_key_file_and_line() {
    let e = error("[capture]\nports = [443]\ncomms = [\"curl\"]\n");
    assert!(e.starts_with("/etc/airlock/test.toml:3:"), "{e}");
    assert!(e.contains("comms"), "{e}");
}

#[test]
fn unknown_section_is_an_error() {
    let e = error("[capture]\n[proxi]\nlisten = \"127.0.0.1:1\"\n");
    assert!(e.starts_with("/etc/airlock/test.toml:2:"), "{e}");
    assert!(e.contains("proxi"), "{e}");
}

#[test]
fn wrong_type_names_line() {
    let e = error("[proxy]\n\nlisten = 15443\n");
    assert!(e.starts_with("/etc/airlock/test.toml:3:"), "{e}");
}

#[test]
fn semantic_errors_name_key_and_line() {
    let e = error("[capture]\nfollow_children = false\ncomm = [\"a-name-longer-than-15\"]\n");
    assert!(e.starts_with("/etc/airlock/test.toml:3:"), "{e}");
    assert!(e.contains("capture.comm"), "{e}");

    let e = error("[capture]\nports = []\n");
    assert!(e.contains("capture.ports"), "{e}");

    let e = error("[proxy]\nlisten = \"0.0.0.0:15443\"\n");
    assert!(e.starts_with("/etc/airlock/test.toml:2:"), "{e}");

    let e = error("[proxy]\nlisten = \"[::1]:15443\"\n");
    assert!(e.contains("IPv4"), "{e}");

    let e = error("[capture]\nimds = [\"0.0.0.0:80\"]\n");
    assert!(e.starts_with("/etc/airlock/test.toml:2:"), "{e}");
    assert!(e.contains("capture.imds"), "{e}");
    let e = error("[capture]\nimds = [\"169.254.169.254\"]\n");
    assert!(e.starts_with("/etc/airlock/test.toml:2:"), "{e}");
    assert_eq!(
        parse("[capture]\nimds = []\n").unwrap().capture.imds,
        vec![]
    );

    let e = error("[capture]\ncgroup = \"relative/dir\"\n");
    assert!(e.contains("absolute"), "{e}");
    let e = error("[capture]\ncgroup = [\"/ok\", \"relative/*\"]\n");
    assert!(e.contains("relative/* must be an absolute path"), "{e}");
}

#[test]
fn capture_cgroups_are_one_path_or_a_list() {
    let one = parse("[capture]\ncgroup = \"/sys/fs/cgroup/ci\"\n").unwrap();
    assert_eq!(one.capture.cgroup, vec![PathBuf::from("/sys/fs/cgroup/ci")]);
    let many = parse("[capture]\ncgroup = [\"/ci\", \"/system.slice/docker-*.scope\"]\n").unwrap();
    assert_eq!(many.capture.cgroup.len(), 2);
    assert_eq!(parse(&many.to_toml()).unwrap(), many);
}

#[test]
fn the_containers_listener_is_an_address_they_can_reach() {
    let ok = parse("[proxy]\nlisten_containers = \"172.17.0.1:15443\"\n").unwrap();
    assert_eq!(
        ok.proxy.listen_containers,
        Some("172.17.0.1:15443".parse().unwrap())
    );
    for bad in ["127.0.0.1:15443", "0.0.0.0:15443", "[fd00::1]:15443"] {
        let e = error(&format!("[proxy]\nlisten_containers = \"{bad}\"\n"));
        assert!(e.contains("proxy.listen_containers"), "{bad}: {e}");
        assert!(e.contains("not loopback"), "{bad}: {e}");
    }
}

#[test]
fn effective_config_round_trips() {
    let c = parse("[capture]\ncomm = [\"curl\"]\nuid = [0]\n").unwrap();
    let again = parse(&c.to_toml()).unwrap();
    assert_eq!(c, again);
}

#[test]
fn missing_file_names_it() {
    let e = Config::load(Path::new("/nonexistent/airlock.toml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/airlock.toml"), "{e}");
}

#[test]
fn intercept_defaults_and_validation() {
    let c = parse("").unwrap();
    assert!(c.intercept().matches("management.azure.com"));
    assert!(c.intercept().matches("acct.blob.core.windows.net"));
    assert!(!c.intercept().matches("github.com"));
    assert_eq!(c.tls.ca_dir, Path::new("/var/lib/airlock/ca"));
    let e = error("[proxy]\nintercept = [\"*.azure.com\", \"bad*glob\"]\n");
    assert!(e.starts_with("/etc/airlock/test.toml:2:"), "{e}");
    assert!(e.contains("proxy.intercept"), "{e}");
    let e = error("[tls]\nca_dir = \"ca\"\n");
    assert!(e.contains("tls.ca_dir"), "{e}");
}

/// The shipped example parses, and names every key airlock has (set, or
/// commented out where the default is "none").
#[test]
fn the_example_config_documents_every_key() {
    let text = include_str!("../../../packaging/airlock.toml.example");
    Config::parse(text, Path::new("airlock.toml.example")).expect("example parses");
    let mut full = Config::default();
    full.capture.cgroup = vec!["/x".into()];
    full.audit.group = Some("g".into());
    full.audit.checkpoint_key = Some("/k".into());
    full.policy.dir = Some("/p".into());
    full.fleet.postgres = Some("postgresql://r@h/d".into());
    full.fleet.password_file = Some("/pw".into());
    full.export.syslog = Some(crate::config::SyslogConfig {
        target: "tcp+tls://siem".into(),
        tls_roots: Some("/ca.pem".into()),
        max_message_bytes: 65536,
        facility: "local0".into(),
    });
    full.identity.issuers = vec![crate::config::IssuerConfig {
        issuer: "https://i".into(),
        audiences: vec!["a".into()],
        jwks_uri: Some("https://j".into()),
    }];
    let keys: toml::Table = toml::from_str(&full.to_toml()).unwrap();
    for (section, table) in &keys {
        let header = format!("[{section}]");
        assert!(text.contains(&header), "example lacks {header}");
        let entries = match table {
            toml::Value::Table(t) => t.clone(),
            _ => continue,
        };
        for (key, value) in entries {
            let nested = match &value {
                toml::Value::Array(a) => a.first().and_then(|v| v.as_table()).cloned(),
                // A table of its own (`[export.syslog]`), shown commented
                // out when it is off by default.
                toml::Value::Table(t) => {
                    let header = format!("[{section}.{key}]");
                    assert!(text.contains(&header), "example lacks {header}");
                    Some(t.clone())
                }
                _ => None,
            };
            let names: Vec<String> = match nested {
                Some(t) => t.keys().cloned().collect(),
                None => vec![key.clone()],
            };
            for name in names {
                let set = format!("\n{name} = ");
                let commented = format!("\n# {name} = ");
                assert!(
                    text.contains(&set) || text.contains(&commented),
                    "example lacks {section}.{name}"
                );
            }
        }
    }
}

#[test]
fn syslog_export_errors_name_the_nested_key_and_its_line() {
    let e = error("[export]\n[export.syslog]\nfacility = \"local0\"\ntarget = \"http://siem\"\n");
    assert!(e.starts_with("/etc/airlock/test.toml:4:"), "{e}");
    assert!(e.contains("export.syslog.target: http:// is not"), "{e}");
    let e = error("[export.syslog]\ntarget = \"udp://siem\"\n\nmax_message_bytes = 100\n");
    assert!(e.starts_with("/etc/airlock/test.toml:4:"), "{e}");
    assert!(e.contains("export.syslog.max_message_bytes"), "{e}");
    let e = error("[export.syslog]\ntarget = \"udp://siem\"\ntls_roots = \"/ca.pem\"\n");
    assert!(e.starts_with("/etc/airlock/test.toml:3:"), "{e}");
    let e = error("[export.syslog]\nfacility = \"local0\"\n");
    assert!(e.contains("missing field `target`"), "{e}");
    let c = parse("[export.syslog]\ntarget = \"relp://127.0.0.1:2514\"\n").unwrap();
    let s = c.export.syslog.unwrap();
    assert_eq!(
        (s.max_message_bytes, s.facility.as_str()),
        (65536, "local0")
    );
}

#[test]
fn approval_and_admin_sections() {
    let c = parse(
        "[approval]\napprovers = [\"alice\", \"group:sre\"]\ntimeout = \"10m\"\nallow_self = true\nwebhook_url = \"https://hooks.example.com/x\"\n[admin]\nsocket = \"/run/a/admin.sock\"\ngroup = \"airlock\"\n",
    )
    .unwrap();
    assert_eq!(c.approval.approvers, ["alice", "group:sre"]);
    assert_eq!(c.approval.timeout(), std::time::Duration::from_secs(600));
    assert!(c.approval.allow_self);
    assert_eq!(c.admin.group.as_deref(), Some("airlock"));
    let d = parse("").unwrap();
    assert_eq!(d.approval.timeout(), std::time::Duration::from_secs(300));
    assert_eq!(d.admin.socket, Path::new("/run/airlock/admin.sock"));
}

#[test]
fn approval_errors_name_key_and_line() {
    let e = error("[approval]\n\ntimeout = \"soon\"\n");
    assert!(e.starts_with("/etc/airlock/test.toml:3:"), "{e}");
    assert!(e.contains("approval.timeout"), "{e}");
    let e = error("[approval]\nwebhook_url = \"http://hooks.example.com/\"\n");
    assert!(e.starts_with("/etc/airlock/test.toml:2:"), "{e}");
    assert!(e.contains("https"), "{e}");
    let e = error("[approval]\napprovers = [\"alice\", \"group:\"]\n");
    assert!(e.starts_with("/etc/airlock/test.toml:2:"), "{e}");
    let e = error("[approval]\napprovers = [\"\"]\n");
    assert!(e.contains("approval.approvers"), "{e}");
    let e = error("[admin]\nsocket = \"admin.sock\"\n");
    assert!(e.starts_with("/etc/airlock/test.toml:2:"), "{e}");
}

#[test]
fn weakened_settings_are_each_named() {
    assert!(
        parse("").unwrap().weakened().is_empty(),
        "defaults weaken nothing"
    );
    let all = parse(
        "[capture]\nfail_mode = \"open\"\n[proxy]\nintercept_without_sni = false\n\
         [audit]\ndurability = \"queued\"\non_failure = \"allow\"\n\
         [approval]\nallow_self = true\n",
    )
    .unwrap()
    .weakened();
    let keys: Vec<&str> = all.iter().map(|w| w.split(' ').next().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "capture.fail_mode",
            "proxy.intercept_without_sni",
            "audit.durability",
            "audit.on_failure",
            "approval.allow_self"
        ]
    );
    // With the agent selected by name, a captured process decides nothing:
    // allow_self no longer lets the agent approve itself.
    let named = parse("[capture]\ncomm = [\"copilot\"]\n[approval]\nallow_self = true\n")
        .unwrap()
        .weakened();
    assert!(named.is_empty(), "{named:?}");
    let hooks = parse("[approval]\nwebhook_url = \"https://hooks.example.com/a\"\n")
        .unwrap()
        .weakened();
    assert!(
        hooks[0].starts_with("approval.webhook_url without"),
        "{hooks:?}"
    );
    let off = parse("[audit]\ndurability = \"off\"\n").unwrap().weakened();
    assert!(off[0].starts_with("audit.durability = \"off\""), "{off:?}");
    assert!(
        parse("[audit]\ndurability = \"written\"\n")
            .unwrap()
            .weakened()
            .is_empty()
    );
}

#[test]
fn the_consoles_fleet_mode_is_checked_at_load_with_file_and_line() {
    let e = error(
        "[console]\nlisten = \"127.0.0.1:8765\"\nissuer = \"https://login.example/t/v2.0\"\nclient_id = \"app\"\nclient_secret_file = \"/etc/airlock/secret\"\n",
    );
    assert!(e.starts_with("/etc/airlock/test.toml:3:"), "{e}");
    assert!(e.contains("[fleet] postgres"), "{e}");
    let e = error(
        "[console]\nissuer = \"https://login.example/t/v2.0\"\nclient_secret_file = \"/etc/airlock/secret\"\n[fleet]\npostgres = \"postgresql://sre@db/airlock\"\n",
    );
    assert!(e.contains("console.client_id"), "{e}");
    let e = error(
        "[fleet]\npostgres = \"postgresql://sre@db/airlock\"\n[console]\nlisten = \"192.0.2.7:8443\"\nissuer = \"https://login.example/t/v2.0\"\nclient_id = \"app\"\nclient_secret_file = \"/etc/airlock/secret\"\n",
    );
    assert!(e.starts_with("/etc/airlock/test.toml:4:"), "{e}");
    assert!(e.contains("console.tls_cert"), "{e}");
    let c = parse("[fleet]\npostgres = \"postgresql://sre@db/airlock\"\n[console]\nlisten = \"192.0.2.7:8443\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\nissuer = \"https://login.example/t/v2.0\"\nclient_id = \"app\"\nclient_secret_file = \"/etc/airlock/secret\"\n").unwrap();
    assert!(c.console.fleet());
    // Single-host mode stays on loopback, certificate or not.
    let e = error(
        "[console]\nlisten = \"192.0.2.7:8443\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n",
    );
    assert!(e.starts_with("/etc/airlock/test.toml:2:"), "{e}");
}
