//! The `airlock` binary as an operator runs it: config files, signals,
//! errors a person can act on.

use airlock_tests::daemon::{
    DaemonConfig, airlock_bin, free_ports, records, signal, terminate, wait_for,
};
use airlock_tests::{
    Fetched, Talking, TempDir, TestCgroup, Upstream, WAIT, curl_in, finish, privileged,
};
use serde_json::Value;

/// Writes `body` as the daemon's config; a config that sets up a daemon
/// (it has `[audit]`) gets this test's own admin socket and masking key,
/// so concurrent daemons never share them.
fn write_config(dir: &TempDir, body: &str) -> std::path::PathBuf {
    let path = dir.path().join("airlock.toml");
    let mut text = body.to_owned();
    if body.contains("[audit]") && !body.contains("[admin]") {
        text.push_str(&airlock_tests::daemon::private_state(dir.path()));
    }
    std::fs::write(&path, text).unwrap();
    path
}

const ARM: &str = "management.azure.com";
/// `[proxy]` for the daemons whose upstream speaks plain HTTP.
const PLAIN: &str = "non_tls = \"relay\"\n";

/// A TLS upstream posing as Resource Manager, and a daemon config (in its
/// own directory) capturing the upstream's port in its own cgroup.
struct ArmSetup {
    cg: TestCgroup,
    dir: TempDir,
    up: airlock_tests::TlsUpstream,
    config: std::path::PathBuf,
    audit: std::path::PathBuf,
}

impl ArmSetup {
    async fn new(tag: &str) -> Self {
        let cg = TestCgroup::new(tag);
        let dir = TempDir::new(tag);
        let pki = airlock_tests::TestPki::new(&format!("{tag} upstream CA"));
        let up = airlock_tests::TlsUpstream::start(
            pki.server_config(&[ARM], &[b"http/1.1"]),
            &["127.0.0.1:0".parse().unwrap()],
        )
        .await;
        let config = airlock_tests::daemon::write_tls_config(
            dir.path(),
            cg.path(),
            up.port(),
            &pki.write_ca(dir.path()),
        );
        let audit = dir.path().join("audit.jsonl");
        Self {
            cg,
            dir,
            up,
            config,
            audit,
        }
    }

    /// Adds a policy directory holding `rules` (reloaded on SIGHUP only);
    /// returns its file.
    fn policy(&self, rules: &str) -> std::path::PathBuf {
        let policies = self.dir.path().join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        let file = policies.join("10-rules.toml");
        std::fs::write(&file, rules).unwrap();
        let mut text = std::fs::read_to_string(&self.config).unwrap();
        text.push_str(&format!("[policy]\ndir = {policies:?}\npoll_ms = 0\n"));
        std::fs::write(&self.config, text).unwrap();
        file
    }

    /// Captures `port` as a proxy port too (`capture.proxy_ports`).
    fn proxy_port(&self, port: u16) {
        let text = std::fs::read_to_string(&self.config).unwrap().replacen(
            "[capture]\n",
            &format!("[capture]\nproxy_ports = [{port}]\n"),
            1,
        );
        std::fs::write(&self.config, text).unwrap();
    }

    /// Starts the daemon where its resolver (`/etc/hosts`, in a mount
    /// namespace of its own: there is no DNS here) gives 127.0.0.1 for
    /// `names`, as it resolves a `CONNECT` authority; waits for its
    /// `start` record.
    async fn start_resolving(&self, names: &[&str]) -> tokio::process::Child {
        let hosts = self.dir.path().join("hosts");
        std::fs::write(&hosts, format!("127.0.0.1 localhost {}\n", names.join(" "))).unwrap();
        let stderr = self.dir.path().join("stderr");
        let daemon = run_in_own_mounts("mount --bind \"$2\" /etc/hosts &&", &self.config, &hosts)
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let started = wait_for(&self.audit, |r| r.iter().any(|r| r["event"] == "start")).await;
        assert!(
            started.iter().any(|r| r["event"] == "start"),
            "{}",
            std::fs::read_to_string(&stderr).unwrap()
        );
        daemon
    }

    /// Starts the daemon and waits for its `start` record.
    async fn start(&self) -> airlock_tests::daemon::Daemon {
        let daemon = airlock_tests::daemon::spawn(&self.config);
        let started = wait_for(&self.audit, |r| r.iter().any(|r| r["event"] == "start")).await;
        assert!(
            started.iter().any(|r| r["event"] == "start"),
            "daemon did not start"
        );
        daemon
    }

    /// curl from the cgroup to `https://{ARM}{path}`, as the agent
    /// (`nobody`, with `airlock ca env`'s variables).
    fn curl(&self, args: &[&str], path: &str) -> tokio::process::Command {
        let mut cmd =
            airlock_tests::agent::client(&self.cg, &self.dir.path().join("public"), "curl");
        cmd.args(["-s", "--max-time", "20"])
            .args(args)
            .arg("--resolve")
            .arg(format!("{ARM}:{}:127.0.0.1", self.up.port()))
            .arg(format!("https://{ARM}:{}{path}", self.up.port()));
        cmd
    }
}

/// A plain-HTTP upstream, and the test's own cgroup and directory: the
/// usual setup of the tests of the daemon itself.
struct PlainSetup {
    cg: TestCgroup,
    dir: TempDir,
    up: Upstream,
    audit: std::path::PathBuf,
    /// Fixed for the test: a restarted daemon binds the same ports.
    listen: (u16, u16),
}

impl PlainSetup {
    async fn new(tag: &str) -> Self {
        let dir = TempDir::new(tag);
        let audit = dir.path().join("audit.jsonl");
        Self {
            cg: TestCgroup::new(tag),
            dir,
            up: Upstream::on("127.0.0.1").await,
            audit,
            listen: free_ports(),
        }
    }

    /// The config text capturing the upstream's port, plain TCP relayed,
    /// with `capture` lines added to `[capture]`.
    fn text(&self, capture: &str) -> String {
        DaemonConfig {
            port: self.up.port(),
            listen: self.listen,
            capture,
            proxy: PLAIN,
            ..DaemonConfig::default()
        }
        .text(self.dir.path(), self.cg.path())
    }

    /// Writes [`PlainSetup::text`] as the daemon's config; its path.
    fn config(&self, capture: &str) -> std::path::PathBuf {
        write_config(&self.dir, &self.text(capture))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_never_captures_itself_and_detaches_on_sigterm() {
    if !privileged("daemon_never_captures_itself_and_detaches_on_sigterm") {
        return;
    }
    let setup = PlainSetup::new("daemon").await;
    let (cg, dir, up, audit) = (&setup.cg, &setup.dir, &setup.up, &setup.audit);
    // airlock runs inside the captured cgroup and matches the comm
    // selector itself: its own upstream connections must still go direct,
    // or the relay would loop back into itself.
    let config = setup.config("comm = [\"curl\", \"airlock\"]\n");
    let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let mut cmd = cg.command(airlock_bin());
    cmd.args(["run", "--config"])
        .arg(&config)
        .stderr(stderr)
        .kill_on_drop(true);
    let mut daemon = cmd.spawn().unwrap();
    let started = wait_for(audit, |r| r.iter().any(|r| r["event"] == "start")).await;
    assert!(
        started.iter().any(|r| r["event"] == "start"),
        "daemon did not start: {}",
        std::fs::read_to_string(dir.path().join("stderr")).unwrap()
    );

    let url = format!("http://{}/", up.addr());
    let got = Fetched::parse(&finish(curl_in(cg, "curl", &url)).await);
    assert!(got.proxied(), "curl not captured by the daemon: {got:?}");
    let conns = wait_for(audit, |r| r.iter().any(|r| r["kind"] == "connection")).await;
    let conn: Vec<&Value> = conns.iter().filter(|r| r["kind"] == "connection").collect();
    assert_eq!(conn.len(), 1, "{conns:#?}");
    assert_eq!(conn[0]["process"]["comm"], "curl");
    assert!(conn[0]["error"].is_null(), "{:?}", conn[0]);

    let status = terminate(&mut daemon).await;
    assert!(
        status.success(),
        "airlock exited with {status} after SIGTERM"
    );
    let all = records(audit);
    assert_eq!(all.last().unwrap()["event"], "stop", "{all:#?}");

    let after = Fetched::parse(&finish(curl_in(cg, "curl", &url)).await);
    assert!(
        !after.proxied(),
        "programs still attached after the daemon stopped"
    );
}

#[tokio::test]
async fn config_check_reports_file_line_and_reason() {
    let dir = TempDir::new("check");
    let bad = write_config(&dir, "[capture]\nports = [443]\nfollow_childs = true\n");
    let mut cmd = tokio::process::Command::new(airlock_bin());
    cmd.args(["config", "check"]).arg(&bad);
    let out = finish(cmd).await;
    assert!(!out.status.success());
    let want = format!("{}:3:", bad.display());
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    assert!(out.stderr.contains("follow_childs"), "{}", out.stderr);

    let good = write_config(&dir, "[capture]\ncomm = [\"node\"]\n");
    let mut cmd = tokio::process::Command::new(airlock_bin());
    cmd.args(["config", "check"]).arg(&good);
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    for want in [
        "[capture]",
        "\"node\"",
        "follow_children = true",
        "[proxy]",
        "listen = \"127.0.0.1:15443\"",
        "[audit]",
    ] {
        assert!(
            out.stdout.contains(want),
            "missing {want:?} in:\n{}",
            out.stdout
        );
    }

    // The unit's ExecStartPre on a fresh install (no file at the default
    // path): the built-in defaults check out, as `run` uses them.
    if !std::path::Path::new("/etc/airlock/airlock.toml").exists() {
        let mut cmd = tokio::process::Command::new(airlock_bin());
        cmd.args(["config", "check", "/etc/airlock/airlock.toml"]);
        let out = finish(cmd).await;
        assert!(out.status.success(), "{out:?}");
        assert!(
            out.stderr.contains("using the built-in defaults"),
            "{}",
            out.stderr
        );
        assert!(out.stdout.contains("[capture]"), "{}", out.stdout);
    }
}

#[tokio::test]
async fn version_is_printed() {
    let mut cmd = tokio::process::Command::new(airlock_bin());
    cmd.arg("--version");
    let out = finish(cmd).await;
    assert!(out.status.success());
    assert_eq!(
        out.stdout.trim(),
        format!("airlock {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_in_use_is_a_clear_error() {
    if !privileged("port_in_use_is_a_clear_error") {
        return;
    }
    let dir = TempDir::new("inuse");
    let cg = TestCgroup::new("inuse");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = write_config(
        &dir,
        &format!(
            "[capture]\ncgroup = {:?}\n[proxy]\nlisten = \"127.0.0.1:{port}\"\n[tls]\nca_dir = {:?}\npublic_dir = {:?}\n[audit]\npath = {:?}\n",
            cg.path(),
            dir.path().join("ca"),
            dir.path().join("public"),
            dir.path().join("audit.jsonl")
        ),
    );
    let mut cmd = tokio::process::Command::new(airlock_bin());
    cmd.args(["run", "--config"]).arg(&config);
    let out = finish(cmd).await;
    assert!(!out.status.success());
    assert!(
        out.stderr.contains(&format!(
            "cannot listen on 127.0.0.1:{port}: address in use"
        )),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprivileged_user_gets_a_clear_error() {
    if !privileged("unprivileged_user_gets_a_clear_error") {
        return;
    }
    let dir = TempDir::new("unpriv");
    let config = write_config(&dir, "");
    // World-readable so uid 65534 can read the binary's directory chain.
    let mut cmd = tokio::process::Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ])
    .arg(airlock_bin())
    .args(["run", "--config"])
    .arg(&config);
    let _ = std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    );
    let out = finish(cmd).await;
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("not permitted to load eBPF programs"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("CAP_BPF"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_shows_the_capture_path_and_cleans_up() {
    if !privileged("demo_shows_the_capture_path_and_cleans_up") {
        return;
    }
    let dir = TempDir::new("demo");
    // The published CA must be reachable by `nobody` for the demo's
    // `ca check` line.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let audit = dir.path().join("demo-audit.jsonl");
    let mut cmd = tokio::process::Command::new(airlock_bin());
    cmd.args(["demo", "--audit"]).arg(&audit);
    let out = finish(cmd).await;
    assert!(out.status.success(), "{out:?}");
    let row = |step: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(step))
            .unwrap_or_else(|| panic!("no row {step:?} in:\n{}", out.stdout))
            .to_owned()
    };
    let expect = [
        ("az login (token for ARM)", "entra.token", "allow     200"),
        (
            "az group list ",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "allow     200    -",
        ),
        (
            "az storage blob list",
            "storage.blob.list",
            "allow     200    -",
        ),
        (
            "az storage account keys list",
            "Microsoft.Storage/storageAccounts/listKeys/action",
            "allow     200    2 storage-account-key",
        ),
        (
            "az keyvault secret show",
            "keyvault.secrets.get",
            "allow     200    1 key-vault-secret",
        ),
        (
            "kubectl get secret",
            "k8s.secrets.get",
            "allow     200    2 kubernetes-secret",
        ),
        (
            "az group delete",
            "Microsoft.Resources/subscriptions/resourceGroups/delete",
            // Decided at the fleet's console, by a person signed in with
            // OpenID Connect (PostgreSQL is installed with the tests).
            "approve   202    -  [resource-group-delete: approved by lead@contoso.example via role demo_approver, from the fleet]",
        ),
        (
            "kubectl exec",
            "k8s.pods.exec",
            "approve   403    -  [kubernetes-pod-access: denied by root]",
        ),
        (
            "az group list (expired token)",
            "(invalid)",
            "deny      403    -  [invalid-token]",
        ),
        (
            "az storage blob upload --auth-mode key",
            "storage.blob.put",
            "[storage-shared-key]",
        ),
        (
            "az storage blob upload ~/.ssh",
            "storage.blob.put",
            "deny      403    1 private-key  [key-material-upload]",
        ),
    ];
    for (step, op, outcome) in expect {
        let r = row(step);
        assert!(
            r.contains(" curl ") && r.contains(op) && r.contains(outcome),
            "{r}"
        );
    }
    assert!(
        row("az group list ").contains("dev@contoso.example "),
        "verified user shown"
    );
    assert!(
        out.stdout.contains("refused: QUIC must use TCP"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("airlock audit verify: OK"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("approval console (airlock console): signed in with its one-time link; the held kubectl exec was on the live page and denied from its form")
            && out.stdout.contains(": denied by root (uid 0): no interactive shells in production\"")
            && out.stdout.contains("its timeline (operation k8s.pods.exec: 1 session) shows it held, denied and answered 403"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("fleet console (airlock console, console.issuer): lead@contoso.example signed in at the simulated Entra ID (authorization code + PKCE")
            && out.stdout.contains("approved on ")
            && out.stdout.contains(" by lead@contoso.example (database role demo_approver)\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("RFC 5424 messages, one per exchange or event, e.g.\n  <13"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "shipped to PostgreSQL (role demo_runner, TLS verified); airlock audit verify --fleet"
        ) && out
            .stdout
            .contains("chain intact\nairlock audit search --fleet --decision deny: "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("airlock ca check --user nobody (only `airlock ca env`'s lines): curl (OpenSSL) trusts it"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("tls_client_refused: closed after the handshake, no request"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "`airlock run`, once attached, keeps only CAP_NET_ADMIN, CAP_SYS_PTRACE, CAP_BPF"
        ),
        "{}",
        out.stdout
    );

    let all = records(&audit);
    let requests: Vec<&Value> = all
        .iter()
        .filter(|r| r["kind"] == "http" && r["phase"] == "request")
        .collect();
    assert!(requests.len() >= 13, "{}", requests.len());
    // The agent sent bearer tokens and a client secret: neither the
    // headers nor the command lines in the trail carry them.
    let arm = requests
        .iter()
        .find(|r| r["request"]["host"] == "management.azure.com")
        .unwrap();
    assert_eq!(
        arm["request"]["headers"]["authorization"],
        "Bearer [REDACTED]"
    );
    assert_eq!(arm["identity"]["verified"], true);
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(
        !text.contains("eyJ0eXAiOiJKV1Qi")
            && !text.contains("demo~Q8d")
            && !text.contains("b3BlbnNzaC1rZXktdjEA"),
        "a credential reached the audit trail"
    );
    // The demo's cgroup is gone.
    let name = format!("airlock-demo-{}", out.pid);
    let root = airlock::cgroup2_mount().unwrap();
    assert!(!root.join(name).exists(), "demo cgroup left behind");
}

#[tokio::test]
async fn ca_commands_create_export_and_explain_the_ca() {
    let dir = TempDir::new("ca-cli");
    let ca_dir = dir.path().join("ca");
    let public = dir.path().join("public");
    let config = write_config(
        &dir,
        &format!(
            "[tls]\nca_dir = {ca_dir:?}\npublic_dir = {public:?}\n[proxy]\nintercept = [\"*.azure.com\"]\n"
        ),
    );
    let ca = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(airlock_bin());
        cmd.arg("ca").args(args).arg("--config").arg(&config);
        finish(cmd)
    };
    let missing = ca(&["export"]).await;
    assert!(!missing.status.success());
    assert!(
        missing.stderr.contains("airlock ca init"),
        "{}",
        missing.stderr
    );

    let init = ca(&["init"]).await;
    assert!(init.status.success(), "{init:?}");
    assert!(
        init.stdout.contains("CA created") && init.stdout.contains("SHA-256 fingerprint"),
        "{}",
        init.stdout
    );
    let mode = |p: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(ca_dir.join(p)).unwrap().permissions(),
        ) & 0o777
    };
    assert_eq!(mode("ca.key"), 0o600);
    let again = ca(&["init"]).await;
    assert!(again.stdout.contains("CA exists"), "{}", again.stdout);
    let fp = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("SHA-256"))
            .map(str::to_owned)
    };
    assert_eq!(
        fp(&init.stdout),
        fp(&again.stdout),
        "init without --force keeps the CA"
    );

    let export = ca(&["export"]).await;
    assert_eq!(
        export.stdout,
        std::fs::read_to_string(ca_dir.join("ca.crt")).unwrap()
    );
    assert!(export.stdout.starts_with("-----BEGIN CERTIFICATE-----"));

    // Published for every user; the key stays private.
    let mode_of = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode_of(&ca_dir), 0o700);
    assert_eq!(mode_of(&public), 0o755);
    assert_eq!(mode_of(&public.join("ca.crt")), 0o644);
    assert_eq!(mode_of(&public.join("bundle.pem")), 0o644);
    assert_eq!(
        std::fs::read_to_string(public.join("ca.crt")).unwrap(),
        export.stdout
    );
    let env = ca(&["env"]).await;
    let (cert, bundle) = (public.join("ca.crt"), public.join("bundle.pem"));
    assert_eq!(
        env.stdout,
        format!(
            "NODE_EXTRA_CA_CERTS={}\nREQUESTS_CA_BUNDLE={b}\nSSL_CERT_FILE={b}\nCURL_CA_BUNDLE={b}\n",
            cert.display(),
            b = bundle.display()
        )
    );
    let published = std::fs::read_to_string(&bundle).unwrap();
    assert!(
        published.ends_with(&export.stdout) && published.len() > export.stdout.len(),
        "the bundle: the system roots, then airlock's CA"
    );

    // A rotation: the new CA is the one exported; both are published until
    // it is finished; one rotation at a time.
    let rotate = ca(&["rotate"]).await;
    assert!(rotate.status.success(), "{rotate:?}");
    let new = ca(&["export"]).await.stdout;
    assert_ne!(new, export.stdout);
    let trusted = std::fs::read_to_string(&cert).unwrap();
    assert!(trusted.contains(&new) && trusted.contains(&export.stdout));
    let both = std::fs::read_to_string(&bundle).unwrap();
    assert!(both.contains(&new) && both.contains(&export.stdout));
    let twice = ca(&["rotate"]).await;
    assert!(!twice.status.success());
    assert!(twice.stderr.contains("--finish"), "{}", twice.stderr);
    let finish = ca(&["rotate", "--finish"]).await;
    assert!(finish.status.success(), "{finish:?}");
    assert_eq!(std::fs::read_to_string(&cert).unwrap(), new);
    assert!(
        !std::fs::read_to_string(&bundle)
            .unwrap()
            .contains(&export.stdout)
    );
    let nothing = ca(&["rotate", "--finish"]).await;
    assert!(!nothing.status.success());
    assert!(nothing.stderr.contains("no rotation"), "{}", nothing.stderr);

    let forced = ca(&["init", "--force"]).await;
    assert_ne!(
        fp(&again.stdout),
        fp(&forced.stdout),
        "--force replaces the CA"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_policy_and_a_broken_one_is_refused() {
    if !privileged("sighup_reloads_the_policy_and_a_broken_one_is_refused") {
        return;
    }
    let arm = ArmSetup::new("sighup").await;
    let rules = arm.policy("[defaults]\naction = \"allow\"\n");
    let audit = arm.audit.clone();
    let daemon = arm.start().await;
    let status = || async {
        finish(arm.curl(&["-o", "/dev/null", "-w", "%{http_code}"], "/subscriptions"))
            .await
            .stdout
    };
    assert_eq!(status().await, "200");
    let hup = |pid: u32| assert!(signal(pid, "HUP"));

    std::fs::write(
        &rules,
        "[defaults]\naction = \"allow\"\n[[rule]]\nname = \"freeze\"\naction = \"deny\"\nreason = \"change freeze\"\n",
    )
    .unwrap();
    assert_eq!(
        status().await,
        "200",
        "no reload before SIGHUP (polling is off)"
    );
    hup(daemon.id().unwrap());
    wait_for(&audit, |r| r.iter().any(|r| r["event"] == "policy_reload")).await;
    assert_eq!(status().await, "403");

    std::fs::write(
        &rules,
        "[[rule]]\nname = \"freeze\"\naction = \"sometimes\"\nreason = \"x\"\n",
    )
    .unwrap();
    hup(daemon.id().unwrap());
    let recs = wait_for(&audit, |r| {
        r.iter().any(|r| r["event"] == "policy_rejected")
    })
    .await;
    let rejected = recs
        .iter()
        .find(|r| r["event"] == "policy_rejected")
        .expect("rejection audited");
    assert!(
        rejected["detail"]
            .as_str()
            .unwrap()
            .contains("10-rules.toml:3:"),
        "{rejected}"
    );
    assert_eq!(status().await, "403", "the previous policy stays live");

    // The same file, checked by hand, names file, line and reason.
    let check = std::process::Command::new(airlock_bin())
        .args(["policy", "check"])
        .arg(rules.parent().unwrap())
        .output()
        .unwrap();
    assert!(!check.status.success());
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("10-rules.toml:3:") && stderr.contains("sometimes"),
        "{stderr}"
    );
}

/// Least privilege: once attached, every thread of the daemon holds
/// CAP_BPF, CAP_NET_ADMIN and CAP_SYS_PTRACE and nothing else, its bounding
/// set is the same (no exec could regain more), and a seccomp filter denies
/// the calls it never makes; it still serves a non-root agent and records
/// its program. Without CAP_DAC_OVERRIDE it reads files as their owner
/// would: a policy file made unreadable is refused at a reload with why,
/// and the live policy stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_daemon_keeps_only_what_it_needs() {
    if !privileged("the_running_daemon_keeps_only_what_it_needs") {
        return;
    }
    let arm = ArmSetup::new("privs").await;
    let rules = arm.policy("[defaults]\naction = \"allow\"\n");
    let daemon = arm.start().await;
    let pid = daemon.id().unwrap();

    let kept: u64 = 1 << 39 | 1 << 19 | 1 << 12; // BPF, SYS_PTRACE, NET_ADMIN
    let field = |status: &str, name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let caps = |status: &str, name: &str| u64::from_str_radix(&field(status, name), 16).unwrap();
    let mut threads = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let Ok(status) = std::fs::read_to_string(task.unwrap().path().join("status")) else {
            continue;
        };
        threads += 1;
        let name = field(&status, "Name");
        for set in ["CapEff", "CapPrm", "CapBnd"] {
            assert_eq!(caps(&status, set), kept, "{name}: {set}");
        }
        assert_eq!(caps(&status, "CapAmb"), 0, "{name}");
        assert_eq!(field(&status, "NoNewPrivs"), "1", "{name}");
        assert_eq!(field(&status, "Seccomp"), "2", "{name}");
    }
    assert!(threads >= 3, "{threads} threads");

    // A non-root agent is served, and its program is recorded: reading
    // another user's /proc/PID/exe is what CAP_SYS_PTRACE is kept for.
    let call = || arm.curl(&["-o", "/dev/null", "-w", "%{http_code}"], "/subscriptions");
    assert!(finish(call()).await.stdout.ends_with("200"));
    let exchanges = airlock_tests::daemon::wait_for_exchanges(&arm.audit, 1).await;
    let request = &exchanges[0];
    assert_eq!(request["process"]["uid"], 65534, "{request}");
    assert_eq!(request["process"]["exe"], "/usr/bin/curl", "{request}");

    // Status says the same, with what each capability is for.
    let out = std::process::Command::new(airlock_bin())
        .args(["status", "--json", "--socket"])
        .arg(arm.dir.path().join("admin.sock"))
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let privileges = &status["privileges"];
    assert_eq!(
        privileges["capabilities"],
        serde_json::json!(["CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF"]),
        "{privileges:#}"
    );
    assert_eq!(privileges["bounding"], privileges["capabilities"]);
    assert_eq!(privileges["seccomp"], true);
    let denied = privileges["denied_syscalls"].as_array().unwrap();
    for call in ["execve", "ptrace", "mount", "init_module", "setns"] {
        assert!(denied.contains(&Value::from(call)), "{call}: {denied:?}");
    }
    assert_eq!(privileges["kept_for"].as_array().unwrap().len(), 3);

    // Root without CAP_DAC_OVERRIDE cannot read a file mode 000: the new
    // rules are refused with why, and the old ones stay live.
    std::fs::write(
        &rules,
        "[defaults]\naction = \"deny\"\nreason = \"unreadable anyway\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&rules, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    assert!(signal(pid, "HUP"));
    let recs = wait_for(&arm.audit, |r| {
        r.iter().any(|r| r["event"] == "policy_rejected")
    })
    .await;
    let rejected = recs
        .iter()
        .find(|r| r["event"] == "policy_rejected")
        .expect("rejection audited");
    let detail = rejected["detail"].as_str().unwrap();
    assert!(
        detail.contains("10-rules.toml") && detail.contains("ermission denied"),
        "{rejected}"
    );
    assert!(
        finish(call()).await.stdout.ends_with("200"),
        "the old policy stays live"
    );
}

/// `airlock run --config config` in a mount namespace of its own, once
/// `prepare` (shell, `$2` is `arg`) changed what it sees there.
fn run_in_own_mounts(
    prepare: &str,
    config: &std::path::Path,
    arg: &std::path::Path,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(format!(
            "{prepare} exec \"$0\" run --log-level error --config \"$1\""
        ))
        .arg(airlock_bin())
        .arg(config)
        .arg(arg)
        .kill_on_drop(true);
    cmd
}

/// `airlock run` where `/sys/fs/bpf` is not mounted.
fn run_without_bpffs(config: &std::path::Path) -> tokio::process::Command {
    run_in_own_mounts(
        "umount /sys/fs/bpf 2>/dev/null;",
        config,
        std::path::Path::new(""),
    )
}

/// A host where bpffs is not mounted: with `fail_mode = "closed"` airlock
/// mounts one at /sys/fs/bpf (as systemd does at boot) and pins there; a
/// `pin_dir` elsewhere that is not on a bpffs stops the start with the fix
/// named, nothing attached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_bpffs_airlock_mounts_it_or_names_the_fix() {
    if !privileged("without_bpffs_airlock_mounts_it_or_names_the_fix") {
        return;
    }
    let setup = PlainSetup::new("nobpffs").await;
    let (cg, dir, up, audit) = (&setup.cg, &setup.dir, &setup.up, &setup.audit);
    let config = |capture: &str| setup.config(capture);
    let url = format!("http://{}/", up.addr());
    let fetch = || finish(curl_in(cg, "curl", &url));

    let elsewhere = format!("pin_dir = {:?}\n", dir.path().join("pins"));
    let out = tokio::time::timeout(WAIT, run_without_bpffs(&config(&elsewhere)).output())
        .await
        .expect("airlock exits")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("is not on a bpffs") && stderr.contains("mount -t bpf bpf /sys/fs/bpf"),
        "{stderr}"
    );
    let direct = Fetched::parse(&fetch().await);
    assert!(!direct.proxied(), "nothing attached: {direct:?}");

    let mut daemon = run_without_bpffs(&config("")).spawn().unwrap();
    let started = wait_for(audit, |r| r.iter().any(|r| r["event"] == "start")).await;
    assert!(
        started.iter().any(|r| r["event"] == "start"),
        "did not start"
    );
    let pid = daemon.id().unwrap();
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(" /sys/fs/bpf ") && l.contains(" - bpf ")),
        "{mounts}"
    );
    assert!(Fetched::parse(&fetch().await).proxied());
    terminate(&mut daemon).await;
}

/// Files airlock cannot read stop the start with the file and the reason
/// (it reads as their owner would: root without CAP_DAC_OVERRIDE), and
/// nothing is attached: the captured cgroup goes direct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_policy_or_ca_directory_stops_the_start_with_why() {
    if !privileged("an_unreadable_policy_or_ca_directory_stops_the_start_with_why") {
        return;
    }
    let setup = PlainSetup::new("unreadable").await;
    let (cg, dir, up) = (&setup.cg, &setup.dir, &setup.up);
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("10-rules.toml"),
        "[defaults]\naction = \"allow\"\n",
    )
    .unwrap();
    let mut text = setup.text("");
    text.push_str(&format!("[policy]\ndir = {policies:?}\n"));
    let config = write_config(dir, &text);
    let fails = || async {
        let out = tokio::time::timeout(
            WAIT,
            tokio::process::Command::new(airlock_bin())
                .args(["run", "--log-level", "error", "--config"])
                .arg(&config)
                .output(),
        )
        .await
        .expect("airlock exits")
        .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    };

    mode(&policies, 0o000);
    let stderr = fails().await;
    assert!(
        stderr.contains(&policies.display().to_string()) && stderr.contains("ermission denied"),
        "{stderr}"
    );
    mode(&policies, 0o700);

    let ca = dir.path().join("ca");
    std::fs::create_dir_all(&ca).unwrap();
    mode(&ca, 0o000);
    let stderr = fails().await;
    assert!(
        stderr.contains(&ca.display().to_string()) && stderr.contains("ermission denied"),
        "{stderr}"
    );
    let url = format!("http://{}/", up.addr());
    let direct = Fetched::parse(&finish(curl_in(cg, "curl", &url)).await);
    assert!(!direct.proxied(), "nothing attached: {direct:?}");
    mode(&ca, 0o700);
}

/// Python's requests (REQUESTS_CA_BUNDLE) to `https://{name}:{port}/subscriptions`,
/// the name resolved to loopback (no DNS here); prints the status.
const REQUESTS_GET: &str = r#"
import socket, sys, requests
name, port = sys.argv[1], int(sys.argv[2])
real = socket.getaddrinfo
socket.getaddrinfo = lambda host, *a, **k: real("127.0.0.1" if host == name else host, *a, **k)
print(requests.get(f"https://{name}:{port}/subscriptions", timeout=20).status_code)
"#;

/// Node's https (NODE_EXTRA_CA_CERTS), the same request; prints the status.
const NODE_GET: &str = r#"
const [name, port] = process.argv.slice(1);
require("https").get({ hostname: name, port, path: "/subscriptions",
  lookup: (h, o, cb) => o.all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : cb(null, "127.0.0.1", 4) },
  (res) => { console.log(res.statusCode); res.resume(); })
  .on("error", (e) => { console.log("error " + e.code); });
"#;

/// A developer's agent runs as its own user with exactly the lines
/// `airlock ca env` prints — curl, Python requests and Node all trust
/// airlock through the published files, no `--cacert` — and keeps working
/// across a CA rotation (the daemon switches at a reload, the published
/// files trust both until it is finished); a client that trusts only the
/// old CA is refused once the new one mints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_root_agent_trusts_what_ca_env_prints_across_a_rotation() {
    if !privileged("a_non_root_agent_trusts_what_ca_env_prints_across_a_rotation") {
        return;
    }
    let arm = ArmSetup::new("caenv").await;
    arm.policy("[defaults]\naction = \"allow\"\n");
    // The agent's user reaches the published directory, nothing else.
    std::fs::set_permissions(
        arm.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let daemon = arm.start().await;
    let pid = daemon.id().unwrap();
    let airlock = |args: &[&str]| {
        let out = std::process::Command::new(airlock_bin())
            .args(args)
            .arg("--config")
            .arg(&arm.config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let env: Vec<(String, String)> = airlock(&["ca", "env"])
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let port = arm.up.port().to_string();
    let clients = || {
        let mut curl =
            airlock_tests::agent::as_user(&arm.cg, airlock_tests::agent::AGENT_UID, "curl");
        curl.args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--resolve")
        .arg(format!("{ARM}:{port}:127.0.0.1"))
        .arg(format!("https://{ARM}:{port}/subscriptions"));
        let mut python =
            airlock_tests::agent::as_user(&arm.cg, airlock_tests::agent::AGENT_UID, "python3");
        python.args(["-c", REQUESTS_GET, ARM, &port]);
        let mut node =
            airlock_tests::agent::as_user(&arm.cg, airlock_tests::agent::AGENT_UID, "node");
        node.args(["-e", NODE_GET, ARM, &port]);
        [("curl", curl), ("python requests", python), ("node", node)].map(|(name, mut cmd)| {
            cmd.env_clear()
                .env("PATH", "/usr/bin:/bin")
                .envs(env.iter().cloned());
            (name, cmd)
        })
    };
    let all_served = |when: &'static str| async move {
        for (name, cmd) in clients() {
            let out = finish(cmd).await;
            assert_eq!(out.stdout.trim(), "200", "{name} {when}: {out:?}");
        }
    };
    all_served("before the rotation").await;
    let old_ca = arm.dir.path().join("old-ca.pem");
    std::fs::copy(arm.dir.path().join("public/ca.crt"), &old_ca).unwrap();
    airlock_tests::agent::readable(&old_ca);

    let reloads = |n: usize| {
        wait_for(&arm.audit, move |r| {
            r.iter().filter(|r| r["event"] == "ca_reload").count() >= n
        })
    };
    airlock(&["ca", "rotate"]);
    assert!(signal(pid, "HUP"));
    reloads(1).await;
    all_served("during the rotation").await;
    let mut pinned =
        airlock_tests::agent::as_user(&arm.cg, airlock_tests::agent::AGENT_UID, "curl");
    pinned
        .args(["-sS", "--max-time", "20", "-o", "/dev/null", "--cacert"])
        .arg(&old_ca)
        .arg("--resolve")
        .arg(format!("{ARM}:{port}:127.0.0.1"))
        .arg(format!("https://{ARM}:{port}/subscriptions"));
    let refused = finish(pinned).await;
    assert!(!refused.status.success(), "the new CA mints: {refused:?}");
    let status: Value = serde_json::from_str(
        &std::process::Command::new(airlock_bin())
            .args(["status", "--json", "--socket"])
            .arg(arm.dir.path().join("admin.sock"))
            .output()
            .map(|o| String::from_utf8(o.stdout).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status["ca"]["rotating"], true, "{status:#}");

    airlock(&["ca", "rotate", "--finish"]);
    assert!(signal(pid, "HUP"));
    reloads(2).await;
    all_served("after the rotation").await;
    let recs = records(&arm.audit);
    let refusals = recs
        .iter()
        .filter(|r| r["kind"] == "tls_client_refused")
        .count();
    assert_eq!(refusals, 1, "only the client pinned to the old CA");
}

/// `airlock ca check --user nobody`: each runtime present fetches a page,
/// as that user with only `ca env`'s lines, from a server whose certificate
/// the CA signed; what refuses is named with what to set, and the exit
/// status says whether all trust. With the published files out of the
/// user's reach, the same runtimes refuse: it probes as the user.
#[tokio::test]
async fn ca_check_probes_each_runtime_as_the_user() {
    if !privileged("ca_check_probes_each_runtime_as_the_user") {
        return;
    }
    let dir = TempDir::new("cacheck");
    let config = write_config(
        &dir,
        &format!(
            "[tls]\nca_dir = {:?}\npublic_dir = {:?}\n",
            dir.path().join("ca"),
            dir.path().join("public")
        ),
    );
    let ca = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(airlock_bin());
        cmd.arg("ca").args(args).arg("--config").arg(&config);
        finish(cmd)
    };
    assert!(ca(&["init"]).await.status.success());
    let mode = |m: u32| {
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(m))
            .unwrap();
    };
    let line = |out: &str, runtime: &str| {
        out.lines()
            .find(|l| l.starts_with(runtime))
            .unwrap_or_else(|| panic!("no {runtime} line: {out}"))
            .to_owned()
    };

    mode(0o755);
    let out = ca(&["check", "--user", "nobody"]).await;
    assert!(out.stdout.contains("as nobody (uid 65534)"), "{out:?}");
    for runtime in ["curl", "python3 (ssl)", "python3 requests", "node"] {
        assert!(
            line(&out.stdout, runtime).ends_with("trusts airlock"),
            "{runtime}: {}",
            out.stdout
        );
    }
    let java = line(&out.stdout, "java");
    if !java.ends_with("not installed") {
        // Java keeps its own store: the CA is not in it here.
        assert!(java.contains("DOES NOT TRUST"), "{java}");
        assert!(out.stdout.contains("JAVA_TOOL_OPTIONS"), "{}", out.stdout);
    }
    assert_eq!(
        out.status.success(),
        !out.stdout.contains("DOES NOT TRUST"),
        "{out:?}"
    );

    mode(0o700);
    let out = ca(&["check", "--user", "nobody"]).await;
    assert!(!out.status.success());
    for runtime in ["curl", "python3 (ssl)", "node"] {
        assert!(
            line(&out.stdout, runtime).contains("DOES NOT TRUST"),
            "{runtime}: {}",
            out.stdout
        );
    }
    assert!(
        out.stderr.contains("do not trust airlock's CA as nobody"),
        "{}",
        out.stderr
    );
}

/// A loopback stand-in for a corporate proxy: it answers every plain
/// request with 200 `corporate proxy` (a CONNECT would get the same, which
/// no client could use); returns its port.
async fn corporate_proxy() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\nconnection: close\r\n\r\ncorporate proxy")
                    .await;
            });
        }
    });
    port
}

/// Python requests through HTTPS_PROXY to `https://{name}:{port}/subscriptions`.
const REQUESTS_VIA_PROXY: &str = r#"
import sys, requests
print(requests.get(f"https://{sys.argv[1]}:{sys.argv[2]}/subscriptions", timeout=20).status_code)
"#;

/// Node: CONNECT through the proxy in HTTPS_PROXY, then TLS to the name.
const NODE_VIA_PROXY: &str = r#"
const [name, port] = process.argv.slice(1);
const proxy = new URL(process.env.HTTPS_PROXY);
require("http").request({ host: proxy.hostname, port: proxy.port, method: "CONNECT", path: `${name}:${port}` })
  .on("connect", (res, socket) => {
    require("https").get({ host: name, port, path: "/subscriptions", createConnection: () =>
      require("tls").connect({ socket, servername: name }) },
      (r) => { console.log(r.statusCode); r.resume(); socket.end(); })
      .on("error", (e) => console.log("error " + e.message));
  }).on("error", (e) => console.log("error " + e.message)).end();
"#;

/// CONNECT to one name, then TLS naming another: domain fronting through
/// the proxy. Prints how it ended.
const FRONTED_CONNECT: &str = r#"
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(f"CONNECT harmless.example:{sys.argv[2]} HTTP/1.1\r\nHost: harmless.example\r\n\r\n".encode())
print(s.recv(100).split(b"\r\n")[0].decode())
try:
    ssl.create_default_context().wrap_socket(s, server_hostname="management.azure.com")
    print("handshake completed")
except (ssl.SSLError, OSError) as e:
    print("refused")
"#;

/// Clients configured with `HTTPS_PROXY` (curl, Python requests, Node) dial
/// the proxy's port, which airlock captures (`capture.proxy_ports`): it
/// answers the CONNECT itself and judges the tunnel as a direct connection
/// to the authority (policy applies, the record names the proxy). A TLS
/// name other than the authority is refused; a plain `GET http://…` goes
/// to the proxy it was sent to, recorded without its query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_behind_a_corporate_proxy_are_judged_as_if_direct() {
    if !privileged("clients_behind_a_corporate_proxy_are_judged_as_if_direct") {
        return;
    }
    let arm = ArmSetup::new("proxyports").await;
    arm.policy(
        "[defaults]\naction = \"allow\"\n[[rule]]\nname = \"no-deletes\"\naction = \"deny\"\nreason = \"no deletes\"\nrequest.method = [\"DELETE\"]\n",
    );
    let proxy = corporate_proxy().await;
    arm.proxy_port(proxy);
    let mut daemon = arm
        .start_resolving(&["management.azure.com", "harmless.example"])
        .await;

    std::fs::set_permissions(
        arm.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let proxy_url = format!("http://127.0.0.1:{proxy}");
    let port = arm.up.port().to_string();
    let url = format!("https://{ARM}:{port}/subscriptions");
    let agent = |program: &str| {
        let mut cmd =
            airlock_tests::agent::as_user(&arm.cg, airlock_tests::agent::AGENT_UID, program);
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HTTPS_PROXY", &proxy_url)
            .env("https_proxy", &proxy_url)
            .env("http_proxy", &proxy_url)
            .env("NODE_EXTRA_CA_CERTS", arm.dir.path().join("public/ca.crt"))
            .env(
                "REQUESTS_CA_BUNDLE",
                arm.dir.path().join("public/bundle.pem"),
            )
            .env("CURL_CA_BUNDLE", arm.dir.path().join("public/bundle.pem"));
        cmd
    };
    let curl = |method: &str| {
        let mut cmd = agent("curl");
        cmd.args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            method,
        ])
        .arg(&url);
        cmd
    };
    let got = finish(curl("GET")).await;
    assert_eq!(got.stdout, "200", "{got:?} {:#?}", records(&arm.audit));
    let before = arm.up.requests();
    assert_eq!(finish(curl("DELETE")).await.stdout, "403", "policy applies");
    assert_eq!(arm.up.requests(), before, "a denied request never left");
    let mut python = agent("python3");
    python.args(["-c", REQUESTS_VIA_PROXY, ARM, &port]);
    assert_eq!(finish(python).await.stdout.trim(), "200");
    let mut node = agent("node");
    node.args(["-e", NODE_VIA_PROXY, ARM, &port]);
    assert_eq!(finish(node).await.stdout.trim(), "200");

    let exchanges = airlock_tests::daemon::wait_for_exchanges(&arm.audit, 4).await;
    assert_eq!(exchanges.len(), 4, "{exchanges:?}");
    for r in &exchanges {
        assert_eq!(r["proxy"]["port"], proxy, "{r}");
        assert_eq!(r["dst"]["port"], arm.up.port(), "{r}");
        assert_eq!(r["tls"]["sni"], ARM, "{r}");
        assert_eq!(r["process"]["uid"], 65534, "{r}");
    }

    let mut fronted = agent("python3");
    fronted.args(["-c", FRONTED_CONNECT, &proxy.to_string(), &port]);
    let out = finish(fronted).await;
    assert_eq!(
        out.stdout.trim(),
        "HTTP/1.1 200 Connection established\nrefused",
        "{out:?}"
    );
    let refusal = wait_for(&arm.audit, |r| {
        r.iter().any(|r| {
            r["error"]
                .as_str()
                .is_some_and(|e| e.contains("is not the CONNECT authority"))
        })
    })
    .await;
    assert!(refusal.iter().any(|r| r["proxy"]["port"] == proxy));

    // The instance metadata service through the proxy, to skip its
    // judgement: a tunnel carrying plain HTTP is refused as on any port.
    let mut imds = agent("curl");
    imds.args(["-sS", "--max-time", "20", "-p", "-H", "Metadata: true"])
        .arg("http://169.254.169.254/metadata/identity/oauth2/token?resource=https://management.azure.com/");
    let out = finish(imds).await;
    assert!(!out.status.success(), "{out:?}");
    let refused = wait_for(&arm.audit, |r| {
        r.iter().any(|r| {
            r["dst"]["ip"] == "169.254.169.254"
                && r["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("not TLS"))
        })
    })
    .await;
    assert!(
        refused
            .iter()
            .any(|r| r["dst"]["ip"] == "169.254.169.254" && r["proxy"]["port"] == proxy),
        "{refused:#?}"
    );

    let mut plain = agent("curl");
    plain.args([
        "-sS",
        "--max-time",
        "20",
        "http://example.test/page?sig=secret",
    ]);
    assert_eq!(finish(plain).await.stdout, "corporate proxy");
    let relayed = wait_for(&arm.audit, |r| {
        r.iter().any(|r| r["proxied_request"].is_string())
    })
    .await;
    let rec = relayed
        .iter()
        .find(|r| r["proxied_request"].is_string())
        .unwrap();
    assert_eq!(
        rec["proxied_request"], "GET http://example.test/page",
        "{rec}"
    );
    assert!(!rec.to_string().contains("secret"));

    terminate(&mut daemon).await;
}

/// The real GitHub Copilot CLI (from npm, installed by `cargo xtask test`)
/// as a non-root developer runs it, behind a proxy, pointed at a loopback
/// model (`COPILOT_OFFLINE`, a custom provider on a Copilot model host)
/// that asks its `bash` tool to list subscriptions: the model calls are
/// recorded with the last turn kept and the ~40 KB system prompt
/// summarised, and the Azure call its tool made is judged and recorded
/// as the tool's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copilot_cli_and_the_azure_calls_its_tools_make_are_recorded() {
    if !privileged("the_copilot_cli_and_the_azure_calls_its_tools_make_are_recorded") {
        return;
    }
    let Some(cli) = std::env::var_os("AIRLOCK_COPILOT_CLI") else {
        assert!(
            std::env::var("AIRLOCK_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
            "the Copilot CLI is installed by `cargo xtask test` (AIRLOCK_COPILOT_CLI)"
        );
        eprintln!("skipped: no AIRLOCK_COPILOT_CLI (run through cargo xtask test)");
        return;
    };
    const MODEL_HOST: &str = "api.individual.githubcopilot.com";
    let arm = ArmSetup::new("copilotcli").await;
    arm.policy("[defaults]\naction = \"allow\"\n");
    let pki = airlock_tests::TestPki::new("copilot model stand-in CA");
    let model = airlock_tests::TlsUpstream::start(
        pki.server_config(&[MODEL_HOST], &[b"http/1.1"]),
        &["127.0.0.1:0".parse().unwrap()],
    )
    .await;
    // Not beside the Resource Manager stand-in's CA: same file name.
    let model_dir = arm.dir.path().join("model");
    std::fs::create_dir_all(&model_dir).unwrap();
    let model_ca = pki.write_ca(&model_dir);
    let proxy = corporate_proxy().await;
    arm.proxy_port(proxy);
    let text = std::fs::read_to_string(&arm.config).unwrap().replacen(
        "upstream_roots = [",
        &format!("upstream_roots = [{model_ca:?}, "),
        1,
    );
    std::fs::write(&arm.config, text).unwrap();
    let mut daemon = arm.start_resolving(&[ARM, MODEL_HOST]).await;

    // The developer: nobody, a home of its own, `ca env`'s lines, a proxy.
    std::fs::set_permissions(
        arm.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let home = arm.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    let env_out = std::process::Command::new(airlock_bin())
        .args(["ca", "env", "--config"])
        .arg(&arm.config)
        .output()
        .unwrap();
    let proxy_url = format!("http://127.0.0.1:{proxy}");
    let list = format!(
        "curl -sS --max-time 20 https://{ARM}:{}/subscriptions",
        arm.up.port()
    );
    use base64::Engine as _;
    let mut copilot =
        airlock_tests::agent::as_user(&arm.cg, airlock_tests::agent::AGENT_UID, "node");
    copilot
        .arg(&cli)
        .args(["-p", "list my subscriptions", "--allow-all-tools", "-s"])
        .current_dir(&home)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("COPILOT_OFFLINE", "true")
        .env("COPILOT_AUTO_UPDATE", "false")
        .env("NO_COLOR", "1")
        .env("COPILOT_MODEL", "gpt-4o")
        .env(
            "COPILOT_PROVIDER_BASE_URL",
            format!("https://{MODEL_HOST}:{}/v1", model.port()),
        )
        .env(
            "COPILOT_PROVIDER_HEADERS",
            format!(
                "x-test-tool-command: {}",
                base64::engine::general_purpose::STANDARD.encode(&list)
            ),
        )
        .env("HTTPS_PROXY", &proxy_url)
        .env("https_proxy", &proxy_url);
    for line in String::from_utf8(env_out.stdout).unwrap().lines() {
        let (k, v) = line.split_once('=').unwrap();
        copilot.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), finish(copilot))
        .await
        .expect("the CLI finishes");
    assert!(out.stdout.contains("done:"), "{out:?}");

    let recs = airlock_tests::daemon::wait_for_exported(&arm.audit, |r| {
        r.iter().filter(|r| r["kind"] == "model").count() >= 2
            && r.iter().any(|r| {
                r["kind"] == "http" && r["request"]["host"] == ARM && r["phase"] == "response"
            })
    })
    .await;
    let models: Vec<&Value> = recs.iter().filter(|r| r["kind"] == "model").collect();
    assert!(models.len() >= 2, "{recs:#?}");
    let first = models[0];
    assert_eq!(first["process"]["uid"], 65534, "{first}");
    assert!(
        first["process"]["exe"]
            .as_str()
            .unwrap_or_default()
            .contains("copilot"),
        "the native executable under node: {first}"
    );
    assert!(
        first["prompt"]["system"]["bytes"].as_u64().unwrap_or(0) > 20_000,
        "{first}"
    );
    let said = first["prompt"]["messages"].as_array().unwrap();
    let last = said.last().unwrap();
    assert_eq!(last["role"], "user", "{first}");
    assert!(
        last["content"]
            .as_str()
            .unwrap()
            .ends_with("list my subscriptions"),
        "the user's message is kept: {first}"
    );
    assert_eq!(first["output"]["tool_calls"][0]["name"], "bash", "{first}");
    let azure = recs
        .iter()
        .find(|r| r["kind"] == "http" && r["request"]["host"] == ARM && r["phase"] == "response")
        .unwrap();
    assert_eq!(azure["process"]["comm"], "curl", "{azure}");
    assert_eq!(azure["process"]["uid"], 65534);
    assert_eq!(
        azure["request"]["operation"]["name"], "Microsoft.Resources/subscriptions/read",
        "{azure}"
    );
    assert_eq!(
        azure["proxy"]["port"], proxy,
        "the tool's curl went through the proxy port"
    );
    terminate(&mut daemon).await;
}

#[tokio::test]
async fn policy_explain_names_the_deciding_rule() {
    let out = std::process::Command::new(airlock_bin())
        .args(["policy", "explain", "--config", "/nonexistent/airlock.toml", "-X", "DELETE", "--url"])
        .arg("https://management.azure.com/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourcegroups/rg1?api-version=2021-04-01")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("/nonexistent/airlock.toml"),
        "a named config must exist: {stderr}"
    );

    let dir = TempDir::new("explain");
    let config = write_config(&dir, "");
    let out = std::process::Command::new(airlock_bin())
        .args(["policy", "explain", "--json", "--config"])
        .arg(&config)
        .args(["-X", "DELETE", "--url"])
        .arg("https://management.azure.com/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourcegroups/rg1?api-version=2021-04-01")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"]["action"], "approve");
    assert_eq!(v["decision"]["rule"], "resource-group-delete");
    assert_eq!(
        v["operation"]["name"],
        "Microsoft.Resources/subscriptions/resourceGroups/delete"
    );
    assert_eq!(v["origin"], "20-high-risk.toml:4");
}

/// The shipped unit file, pointed at the built binary, passes
/// `systemd-analyze verify` without a single warning.
#[tokio::test]
async fn the_systemd_unit_verifies() {
    let unit =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/airlock.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains("Type=notify") && text.contains("ProtectSystem=strict"));
    let dir = TempDir::new("unit");
    let copy = dir.path().join("airlock.service");
    let bin = airlock_bin();
    std::fs::write(
        &copy,
        text.replace("/usr/local/bin/airlock", bin.to_str().unwrap()),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (package systemd; cargo xtask test installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

/// `Type=notify`: READY=1 arrives only once airlock captures and serves;
/// STOPPING=1 when SIGTERM starts the drain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_notified_once_capture_works() {
    if !privileged("readiness_is_notified_once_capture_works") {
        return;
    }
    let setup = PlainSetup::new("notify").await;
    let (cg, dir, up, audit) = (&setup.cg, &setup.dir, &setup.up, &setup.audit);
    let config = setup.config("");
    let socket_path = dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    // Standard error is "the journal": a file whose device and inode
    // JOURNAL_STREAM names, as systemd sets them.
    let log = dir.path().join("stderr.log");
    let stderr = std::fs::File::create(&log).unwrap();
    let meta = stderr.metadata().unwrap();
    let stream = format!(
        "{}:{}",
        std::os::unix::fs::MetadataExt::dev(&meta),
        std::os::unix::fs::MetadataExt::ino(&meta)
    );
    let mut daemon = tokio::process::Command::new(airlock_bin())
        .args(["run", "--log-level", "info", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .env("JOURNAL_STREAM", &stream)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let next = || async {
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(WAIT, socket.recv(&mut buf))
            .await
            .expect("a notification within the wait")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next().await, "READY=1");
    // Ready means ready: the very next connect is captured.
    let got = Fetched::parse(&finish(curl_in(cg, "curl", &format!("http://{}/", up.addr()))).await);
    assert!(got.proxied(), "not captured right after READY=1");
    assert!(records(audit).iter().any(|r| r["event"] == "start"));

    // Watchdog pings at half WATCHDOG_USEC, with what `systemctl status`
    // shows.
    for _ in 0..3 {
        let state = next().await;
        assert!(
            state.starts_with("WATCHDOG=1\nSTATUS=capturing ")
                && state.ends_with("connections open, audit writable"),
            "{state}"
        );
    }

    assert!(signal(daemon.id().unwrap(), "TERM"));
    loop {
        let state = next().await;
        if state == "STOPPING=1" {
            break;
        }
        assert!(state.starts_with("WATCHDOG=1"), "{state}");
    }
    let status = tokio::time::timeout(WAIT, daemon.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    // Every line carries its priority for the journal, no colour codes.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().any(|l| l.starts_with("<6>")), "{text}");
    assert!(
        text.lines()
            .all(|l| l.starts_with('<') && !l.contains('\x1b')),
        "{text}"
    );
}

/// `fail_mode = "closed"` (the default): a crashed airlock leaves its
/// programs pinned, so captured processes cannot connect at all (not even
/// directly); the next airlock takes over; a graceful stop lets go.
/// `fail_mode = "open"`: a crash lets traffic go direct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_survives_a_crash_and_a_restart_takes_over() {
    if !privileged("fail_closed_survives_a_crash_and_a_restart_takes_over") {
        return;
    }
    let setup = PlainSetup::new("failmode").await;
    let (cg, up, audit) = (&setup.cg, &setup.up, &setup.audit);
    let config = |mode: &str| setup.config(&format!("fail_mode = \"{mode}\"\n"));
    let url = format!("http://{}/", up.addr());
    let kill = |sig: &str, pid: u32| assert!(signal(pid, sig));
    let fetch = || finish(curl_in(cg, "curl", &url));
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(cg.path()).unwrap());
    let pins = std::path::Path::new("/sys/fs/bpf/airlock").join(inode.to_string());

    let mut first = started(&config("closed"), audit).await;
    assert!(Fetched::parse(&fetch().await).proxied());
    let first_pid = first.id().unwrap();
    assert!(
        pins.join(first_pid.to_string())
            .join(format!("airlock_connect4@{inode}"))
            .exists(),
        "links pinned, each named after its cgroup"
    );
    kill("KILL", first_pid);
    first.wait().await.unwrap();
    let crashed = fetch().await;
    assert!(
        !crashed.status.success(),
        "with airlock dead, the connect must fail: {crashed:?}"
    );
    assert!(
        crashed.stderr.contains("Failed to connect") || crashed.stderr.contains("Couldn't connect"),
        "{}",
        crashed.stderr
    );

    let mut second = started(&config("closed"), audit).await;
    assert!(
        Fetched::parse(&fetch().await).proxied(),
        "the restarted airlock serves"
    );
    assert!(
        !pins.join(first_pid.to_string()).exists(),
        "the dead process's pins are retired"
    );
    kill("TERM", second.id().unwrap());
    assert!(second.wait().await.unwrap().success());
    assert!(
        !Fetched::parse(&fetch().await).proxied(),
        "a graceful stop lets go"
    );
    assert!(!pins.exists(), "nothing left pinned");

    let mut open = started(&config("open"), audit).await;
    assert!(Fetched::parse(&fetch().await).proxied());
    let start_record = records(audit)
        .into_iter()
        .rfind(|r| r["event"] == "start")
        .unwrap();
    assert!(
        start_record["weakened"].to_string().contains("fail_mode"),
        "{start_record}"
    );
    kill("KILL", open.id().unwrap());
    open.wait().await.unwrap();
    assert!(
        !Fetched::parse(&fetch().await).proxied(),
        "fail open: direct after a crash"
    );
}

/// With `fail_mode = "closed"`, what follow_children tracked survives a
/// crash and the restart that takes over: a double-forked process that
/// connects only afterwards — when nothing in /proc says where it came
/// from — is still captured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_descendants_survive_a_restart() {
    if !privileged("tracked_descendants_survive_a_restart") {
        return;
    }
    let setup = PlainSetup::new("retrack").await;
    let (cg, dir, up, audit) = (&setup.cg, &setup.dir, &setup.up, &setup.audit);
    let agent = dir.alias("fakeagent", "/bin/sh");
    let config = setup.config("comm = [\"fakeagent\"]\nfollow_children = true\n");
    let mut first = started(&config, audit).await;
    // The agent double-forks a process that waits, then connects; the
    // agent and the middle shell exit at once, so it is re-parented.
    let out = dir.path().join("late.out");
    let curl = airlock_tests::curl::curl_to_file(&format!("http://{}", up.addr()), &out);
    let script = format!(r#"sh -c "sleep 4; {curl}" </dev/null >/dev/null 2>&1 &"#);
    let mut cmd = cg.command(&agent);
    cmd.arg("-c").arg(&script);
    // Its output goes elsewhere, so the agent is waited for, not it.
    assert!(finish(cmd).await.status.success());
    assert!(!out.exists(), "it connects only after the restart");
    assert!(signal(first.id().unwrap(), "KILL"));
    first.wait().await.unwrap();
    let mut second = started(&config, audit).await;
    let got = Fetched::from_file(&out).await;
    assert!(
        got.proxied(),
        "tracked before the restart, captured after it: {got:?}"
    );
    assert!(signal(second.id().unwrap(), "TERM"));
    assert!(second.wait().await.unwrap().success());
}

/// The daemon on `config`, once it has written a new start record.
async fn started(
    config: &std::path::Path,
    audit: &std::path::Path,
) -> airlock_tests::daemon::Daemon {
    let starts = |r: &[Value]| r.iter().filter(|r| r["event"] == "start").count();
    let before = starts(&records(audit));
    let daemon = airlock_tests::daemon::spawn(config);
    let after = wait_for(audit, |r| starts(r) > before).await;
    assert!(starts(&after) > before, "daemon did not start");
    daemon
}

/// SIGHUP re-reads the config: the capture selection changes live, a
/// setting that needs a restart is named, and a broken file changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_new_capture_selection_and_refuses_a_broken_config() {
    if !privileged("sighup_applies_a_new_capture_selection_and_refuses_a_broken_config") {
        return;
    }
    let cg = TestCgroup::new("reload");
    let dir = TempDir::new("reload");
    let (one, two) = (
        Upstream::on("127.0.0.1").await,
        Upstream::on("127.0.0.1").await,
    );
    let audit = dir.path().join("audit.jsonl");
    let listen = free_ports();
    let body = |port: u16, handshake_ms: u32| {
        DaemonConfig {
            port,
            listen,
            proxy: &format!("handshake_timeout_ms = {handshake_ms}\n{PLAIN}"),
            ..DaemonConfig::default()
        }
        .text(dir.path(), cg.path())
    };
    let config = write_config(&dir, &body(one.port(), 10_000));
    let daemon = started(&config, &audit).await;
    let proxied = |port: u16| {
        let url = format!("http://127.0.0.1:{port}/");
        let cg = &cg;
        async move { Fetched::parse(&finish(curl_in(cg, "curl", &url)).await).proxied() }
    };
    assert!(proxied(one.port()).await && !proxied(two.port()).await);
    let hup = || assert!(signal(daemon.id().unwrap(), "HUP"));
    let reloads = |event: &'static str| {
        let audit = audit.clone();
        async move {
            wait_for(&audit, |r| r.iter().any(|r| r["event"] == event))
                .await
                .into_iter()
                .find(|r| r["event"] == event)
                .unwrap_or_else(|| panic!("no {event} record"))
        }
    };

    write_config(&dir, &body(two.port(), 5_000));
    hup();
    let record = reloads("config_reload").await;
    let detail = record["detail"].as_str().unwrap();
    assert!(
        detail.contains("applied: capture selection")
            && detail.contains("needs a restart: proxy timeouts"),
        "{detail}"
    );
    assert!(proxied(two.port()).await, "the new port is captured");
    assert!(!proxied(one.port()).await, "the old one no longer is");

    write_config(&dir, "[capture]\nports = [\"https\"]\n");
    hup();
    let record = reloads("config_rejected").await;
    let detail = record["detail"].as_str().unwrap();
    assert!(detail.contains("airlock.toml:2:"), "{detail}");
    assert!(proxied(two.port()).await, "the running config stays");
}

/// The value of the sample `line_start` (a metric name with its labels, as
/// rendered) in a Prometheus text body.
fn sample(metrics: &str, line_start: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_metrics_reflect_real_traffic() {
    if !privileged("status_and_metrics_reflect_real_traffic") {
        return;
    }
    use base64::Engine;
    let arm = ArmSetup::new("status").await;
    let metrics_port = airlock_tests::daemon::free_port("127.0.0.1");
    let text = std::fs::read_to_string(&arm.config).unwrap().replace(
        "[admin]\n",
        &format!("[admin]\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n"),
    );
    std::fs::write(&arm.config, text).unwrap();
    let rules = arm.policy(
        "[defaults]\naction = \"allow\"\n[[rule]]\nname = \"no-delete\"\naction = \"deny\"\n\
         reason = \"deletes are not for agents\"\nrequest.method = [\"DELETE\"]\n",
    );
    let audit = &arm.audit;
    let socket = arm.dir.path().join("admin.sock");
    let _daemon = arm.start().await;

    // Two reads whose answer carries a GitHub token (masked on its way
    // back), one with an opaque bearer token, and one DELETE policy refuses.
    let leak = base64::engine::general_purpose::STANDARD.encode(format!(
        "{{\"token\":\"ghp_{}\"}}",
        "a1B2c3D4e5".repeat(4).get(..36).unwrap()
    ));
    let call = |args: &[&str]| {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        let cmd = arm.curl(&all, "/subscriptions");
        async move { finish(cmd).await.stdout }
    };
    let respond = format!("x-test-respond: {leak}");
    assert_eq!(call(&["-H", &respond]).await, "200");
    assert_eq!(
        call(&["-H", &respond, "-H", "Authorization: Bearer opaque-token-1"]).await,
        "200"
    );
    assert_eq!(call(&["-X", "DELETE"]).await, "403");
    wait_for(audit, |r| {
        r.iter()
            .filter(|r| r["kind"] == "http" && r["phase"] == "response")
            .count()
            == 3
    })
    .await;

    // Status: as JSON, and as the report an operator reads.
    let airlock = |args: &[&str]| {
        let out = std::process::Command::new(airlock_bin())
            .arg("status")
            .args(args)
            .arg("--socket")
            .arg(&socket)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let status: Value = serde_json::from_str(&airlock(&["--json"])).unwrap();
    assert_eq!(status["traffic"]["requests"], 3, "{status:#}");
    assert_eq!(
        status["capture"]["cgroup"],
        arm.cg.path().display().to_string()
    );
    assert_eq!(status["capture"]["fail_mode"], "closed");
    let programs: Vec<&str> = status["capture"]["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for want in ["connect4", "connect6", "sockops"] {
        assert!(programs.iter().any(|p| p.contains(want)), "{programs:?}");
    }
    assert_eq!(
        status["capture"]["selection"]["ports"],
        serde_json::json!([arm.up.port()])
    );
    assert!(
        status["capture"]["redirects"].as_u64().unwrap() >= 3,
        "{status:#}"
    );
    let fingerprint = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(arm.dir.path().join("ca/ca.crt"))
        .output()
        .unwrap();
    let fingerprint = String::from_utf8(fingerprint.stdout).unwrap();
    assert_eq!(
        fingerprint.trim().rsplit('=').next().unwrap(),
        status["ca"]["fingerprint"].as_str().unwrap()
    );
    let expires = humantime::parse_rfc3339(status["ca"]["not_after"].as_str().unwrap()).unwrap();
    assert!(expires > std::time::SystemTime::now() + std::time::Duration::from_secs(86400 * 300));
    let version = status["policy"]["version"].as_str().unwrap().to_owned();
    assert_eq!(version.len(), 12, "{status:#}");
    assert_eq!(status["policy"]["files"], serde_json::json!([rules]));
    assert_eq!(status["audit"]["path"], audit.display().to_string());
    assert_eq!(status["audit"]["healthy"], true);
    // The chain head it reports is a record on disk, with that hash.
    let seq = status["audit"]["seq"].as_u64().unwrap();
    let now = records(audit);
    let head = now
        .iter()
        .find(|r| r["seq"] == seq)
        .unwrap_or_else(|| panic!("no record with seq {seq}"));
    assert_eq!(head["hash"], status["audit"]["head"]);
    assert_eq!(status["approvals"]["held"], 0);
    let report = airlock(&[]);
    assert!(
        report.contains(&format!("policy    version {version} (")) && report.contains("rules: 1)"),
        "{report}"
    );
    assert!(report.contains("traffic   3 requests"), "{report}");

    // Metrics, scraped over TCP as Prometheus would, and on the socket.
    let mut scrape = tokio::process::Command::new("curl");
    scrape
        .args(["-s", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{metrics_port}/metrics"));
    let m = finish(scrape).await.stdout;
    // Three client connections: each started on an upstream connection
    // dialled for it or kept from the one before.
    let upstream = |how: &str| {
        sample(
            &m,
            &format!("airlock_upstream_connections_total{{how=\"{how}\"}}"),
        )
        .unwrap()
    };
    assert_eq!(upstream("dialled") + upstream("reused"), 3.0, "{m}");
    assert!(upstream("dialled") >= 1.0, "{m}");
    let total = |decision: &str, status: &str| -> f64 {
        m.lines()
            .filter(|l| l.starts_with("airlock_requests_total{"))
            .filter(|l| l.contains(&format!("decision=\"{decision}\",status=\"{status}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(total("allow", "200"), 2.0, "{m}");
    assert_eq!(total("deny", "403"), 1.0, "{m}");
    for (line, want) in [
        (
            "airlock_masked_secrets_total{direction=\"response\",detector=\"github-token\"}",
            2.0,
        ),
        (
            "airlock_credentials_total{kind=\"bearer\",result=\"unverified\"}",
            1.0,
        ),
        ("airlock_request_duration_seconds_count", 3.0),
        ("airlock_request_duration_seconds_bucket{le=\"+Inf\"}", 3.0),
        ("airlock_connections_total{path=\"intercepted\"}", 3.0),
        ("airlock_approvals_held", 0.0),
        ("airlock_audit_healthy", 1.0),
        (
            &format!("airlock_policy_info{{version=\"{version}\"}}"),
            1.0,
        ),
    ] {
        assert_eq!(sample(&m, line), Some(want), "{line} in\n{m}");
    }
    assert!(
        sample(&m, "airlock_kernel_events_total{event=\"redirect\"}").unwrap() >= 3.0,
        "{m}"
    );
    assert!(
        sample(&m, "airlock_bpf_map_entries{map=\"by_cookie\"}").is_some(),
        "{m}"
    );
    assert!(
        sample(&m, "airlock_body_bytes_total{direction=\"response\"}").unwrap() > 0.0,
        "{m}"
    );
    assert!(!m.contains("ghp_"), "a secret in the metrics:\n{m}");
    let socket_metrics = airlock(&["--metrics"]);
    assert!(
        socket_metrics.contains("# TYPE airlock_requests_total counter"),
        "{socket_metrics}"
    );
    // The TCP listener serves the metrics and nothing else.
    let mut other = tokio::process::Command::new("curl");
    other
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .arg(format!("http://127.0.0.1:{metrics_port}/v1/approvals"));
    assert_eq!(finish(other).await.stdout, "404");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_request_in_flight_finish() {
    if !privileged("sigterm_lets_a_request_in_flight_finish") {
        return;
    }
    let arm = ArmSetup::new("drain").await;
    let (audit, up) = (&arm.audit, &arm.up);
    let mut daemon = arm.start().await;
    let cmd = arm.curl(&["-w", "\n%{http_code}"], "/slow?ms=1500");
    let slow = tokio::spawn(finish(cmd));
    let deadline = tokio::time::Instant::now() + WAIT;
    while up.requests() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request never reached the upstream"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Stop while the upstream is still answering: the drain lets it end.
    assert!(signal(daemon.id().unwrap(), "TERM"));
    let got = slow.await.unwrap();
    assert!(got.stdout.ends_with("\n200"), "{got:?}");
    let exit = tokio::time::timeout(WAIT, daemon.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "airlock exited with {exit}");
    let all = records(audit);
    let response = all
        .iter()
        .position(|r| r["kind"] == "http" && r["phase"] == "response")
        .unwrap_or_else(|| panic!("no response record: {all:#?}"));
    assert_eq!(all[response]["response"]["status"], 200);
    assert!(all[response]["error"].is_null(), "{}", all[response]);
    assert_eq!(all.last().unwrap()["event"], "stop", "{all:#?}");
}

/// On SIGTERM, an idle keep-alive client is told the connection is done
/// (it is closed once nothing is in flight) instead of holding the drain
/// until its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_idle_keep_alive_connections() {
    if !privileged("sigterm_closes_idle_keep_alive_connections") {
        return;
    }
    let arm = ArmSetup::new("idle-stop").await;
    let mut daemon = arm.start().await;
    let script = format!(
        "import socket, ssl\n\
         ctx = ssl.create_default_context(cafile={ca:?})\n\
         ctx.set_alpn_protocols(['http/1.1'])\n\
         s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {port})), server_hostname={name:?})\n\
         s.sendall(b'GET /subscriptions HTTP/1.1\\r\\nHost: {name}\\r\\n\\r\\n')\n\
         buf = b''\n\
         while b'\\r\\n\\r\\n' not in buf: buf += s.recv(65536)\n\
         head, body = buf.split(b'\\r\\n\\r\\n', 1)\n\
         if b'chunked' in head.lower():\n    \
             while not body.endswith(b'0\\r\\n\\r\\n'): body += s.recv(65536)\n\
         else:\n    \
             n = int([l.split(b':')[1] for l in head.split(b'\\r\\n') if l.lower().startswith(b'content-length')][0])\n    \
             while len(body) < n: body += s.recv(65536)\n\
         print(head.split(b'\\r\\n')[0].decode(), flush=True)\n\
         while s.recv(65536): pass\n\
         print('closed', flush=True)\n",
        ca = arm.dir.path().join("ca/ca.crt").display().to_string(),
        port = arm.up.port(),
        name = ARM,
    );
    let mut cmd = arm.cg.command("python3");
    cmd.args(["-c", &script]);
    let mut client = Talking::spawn(cmd);
    assert_eq!(client.line().await, "HTTP/1.1 200 OK");
    // The connection is idle and kept alive; now stop airlock.
    let stopped = std::time::Instant::now();
    assert!(signal(daemon.id().unwrap(), "TERM"));
    // airlock closes the idle connection.
    assert_eq!(client.line().await, "closed");
    let exit = tokio::time::timeout(WAIT, daemon.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "airlock exited with {exit}");
    // Well inside the drain deadline (5 s), which only a request still
    // in flight may use.
    assert!(
        stopped.elapsed() < std::time::Duration::from_secs(4),
        "stopping took {:?}",
        stopped.elapsed()
    );
    assert_eq!(records(&arm.audit).last().unwrap()["event"], "stop");
}
