//! `airlock demo`: the whole product on embedded defaults, on loopback — a
//! scripted "coding agent" (real curl and python processes in a throwaway
//! cgroup) calls simulated Azure; airlock captures, decrypts, identifies,
//! decides and audits every call, and the demo prints what it saw.

mod azure;
mod console;
mod entra;
mod fleet;
mod imds;
mod siem;
mod signin;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinSet;

use crate::capture::cgroup::OwnedCgroup;
use crate::config::{Config, IssuerConfig};

/// Longest a scripted step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    #[error(transparent)]
    Capture(#[from] crate::capture::CaptureError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("demo step {step:?} failed: {why}")]
    Step { step: &'static str, why: String },
}

/// What a step must come to, or the demo fails (it is a check, not a show).
#[derive(Clone, Copy, Debug)]
struct Expect {
    decision: &'static str,
    status: u16,
}

const ALLOW: Expect = Expect {
    decision: "allow",
    status: 200,
};

/// Runs the demo; the audit file is kept at `audit` (default: a fresh
/// directory under /tmp) and its path printed.
pub async fn run(audit: Option<PathBuf>) -> Result<(), DemoError> {
    let cgroup_name = format!("airlock-demo-{}", std::process::id());
    crate::capture::preflight(&Default::default())?;
    let own_dir = audit.is_none();
    let audit =
        audit.unwrap_or_else(|| std::env::temp_dir().join(format!("{cgroup_name}/audit.jsonl")));
    let dir = audit
        .parent()
        .unwrap_or(std::path::Path::new("/tmp"))
        .to_owned();
    std::fs::create_dir_all(&dir).map_err(|source| DemoError::Io {
        what: format!("creating {}", dir.display()),
        source,
    })?;
    // The demo's own directory is reachable by the unprivileged user `ca
    // check` runs as (the CA itself stays in its 0700 directory, the trail
    // in 0600 files); a directory given with --audit is left as it is.
    if own_dir {
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|source| DemoError::Io {
                what: format!("opening {} to other users", dir.display()),
                source,
            })?;
    }
    let cgroup = OwnedCgroup::create(&cgroup_name)?;
    // A job's containers: their cgroups appear under this one once airlock
    // runs, each in a network namespace of its own behind a bridge (made
    // first: the simulated Azure listens on its gateway too).
    let jobs = OwnedCgroup::create(&format!("{cgroup_name}-jobs"))?;
    let network = crate::capture::network::ContainerNetwork::create()
        .inspect_err(|e| println!("(the container step is skipped: {e})"))
        .ok();
    let gateway = network.as_ref().map(|n| std::net::IpAddr::V4(n.gateway()));
    let mut servers = JoinSet::new();
    let azure = azure::start(&mut servers, &dir, gateway)
        .await
        .map_err(|why| DemoError::Step {
            step: "starting the simulated Azure endpoints",
            why,
        })?;

    let imds = imds::start(&mut servers, azure.signer.clone())
        .await
        .map_err(|why| DemoError::Step {
            step: "starting the simulated instance metadata service",
            why,
        })?;

    // The SIEM: every exchange and event streamed to it as syslog.
    let siem = siem::start(&mut servers)
        .await
        .map_err(|why| DemoError::Step {
            step: "starting the syslog receiver",
            why,
        })?;
    // The fleet's database: the trail shipped there, the approval below
    // decided through it, the chain checked there at the end.
    let fleet = fleet::DemoFleet::start(&dir)
        .await
        .inspect_err(|e| println!("(the fleet step is skipped: {e})"))
        .ok();

    let mut config = Config::default();
    if let Some(f) = &fleet {
        config.fleet = f.host.clone();
    }
    config.export.syslog = Some(crate::config::SyslogConfig::to(format!(
        "tcp://{}",
        siem.addr
    )));
    config.capture.cgroup = vec![cgroup.path().to_owned(), jobs.path().join("job-*")];
    config.proxy.listen_containers = gateway.map(|ip| std::net::SocketAddr::new(ip, 0));
    config.capture.ports = vec![443, azure.addr.port()];
    config.capture.imds = vec![imds];
    config.proxy.listen = "127.0.0.1:0".parse().expect("literal");
    config.proxy.listen6 = Some("[::1]:0".parse().expect("literal"));
    config.audit.path = audit.clone();
    config.tls.ca_dir = dir.join("ca");
    config.tls.public_dir = dir.join("public");
    config.masking.key_file = dir.join("masking.key");
    config.admin.socket = dir.join("admin.sock");
    // The demo approves its own agent's requests; on a real host the
    // approver is a person, and `allow_self` stays off.
    config.approval.approvers = vec!["root".into()];
    config.approval.allow_self = true;
    config.tls.upstream_roots = vec![azure.ca.clone()];
    config.identity.issuers = vec![IssuerConfig {
        issuer: "https://login.microsoftonline.com/{tid}/v2.0".into(),
        audiences: AUDIENCES.iter().map(|a| (*a).to_owned()).collect(),
        jwks_uri: Some(azure.jwks_uri()),
    }];
    // What `airlock ca env` points the agent at: the published certificate.
    let public = crate::tls::PublicFiles::new(&config.tls.public_dir);
    let airlock_ca = public.cert();
    let (ca_dir, intercept) = (config.tls.ca_dir.clone(), config.intercept());
    // The approvers' web page, on a port of its own.
    let mut console_config = config.clone();
    console_config.console.listen = "127.0.0.1:0".parse().expect("literal");
    let app = crate::app::build(config).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let console = crate::console::Console::bind(&console_config)
        .await
        .map_err(|e| DemoError::Step {
            step: "starting the approval console",
            why: e.to_string(),
        })?;
    let console_login = console.login_url().to_owned();
    // Both consoles stop when this is sent (or dropped).
    let (stop_console, consoles_stop) = tokio::sync::watch::channel(());
    let stopping = move || {
        let mut stop = consoles_stop.clone();
        async move {
            let _ = stop.changed().await;
        }
    };
    let mut consoles = JoinSet::new();
    consoles.spawn(console.run(stopping()));
    // The fleet's console: approvers sign in at the demo's Entra ID and
    // decide every host's holds through the fleet's database.
    let fleet_login = match &fleet {
        Some(f) => {
            let c = fleet_console(&console_config, f, &azure, &dir).await?;
            let login = c.login_url().to_owned();
            consoles.spawn(c.run(stopping()));
            Some(login)
        }
        None => None,
    };

    println!(
        "airlock demo: capturing every process in cgroup {}",
        cgroup.path().display()
    );
    println!(
        "simulated Entra ID, Resource Manager, Blob Storage, Key Vault, Functions and AKS on {} (TLS, their own CA); the instance metadata service on {imds} (plain HTTP)",
        azure.addr
    );
    println!(
        "policies: the shipped ones; tokens validated against the simulated Entra ID; the agent trusts airlock's CA ({})\n",
        airlock_ca.display()
    );
    // The demo itself keeps root's privileges: it creates and removes its
    // cgroup and starts the agent's programs.
    let demo_privileges = crate::confine::Privileges::read().map_err(|e| DemoError::Step {
        step: "reading airlock's privileges",
        why: e.to_string(),
    })?;
    println!(
        "least privilege: `airlock run`, once attached, keeps only {} in every thread and denies {} system calls (execve, ptrace, mount, …); `airlock status` reads it back from /proc. This demo keeps {} capabilities: it manages its cgroup and starts the agent itself.\n",
        crate::confine::kept_when_running().join(", "),
        crate::confine::DENIED.len(),
        demo_privileges.capabilities.len()
    );
    ca_check(&ca_dir, &intercept, &public).await;
    println!("{HEADER}");
    let agent = Agent {
        cgroup: &cgroup,
        admin: crate::admin::AdminClient::new(dir.join("admin.sock")),
        audit: &audit,
        ca: &airlock_ca,
        port: azure.addr.port(),
        imds,
        containers: network.as_ref().map(|n| (n, &jobs)),
        fleet_console: fleet_login
            .as_deref()
            .map(|login| (login, azure.ca.as_path())),
        console: &console_login,
        console_note: std::sync::Mutex::new(None),
        fleet_note: std::sync::Mutex::new(None),
    };
    let script = tokio::select! {
        r = agent.session(&azure) => r,
        _ = tokio::signal::ctrl_c() => Err(DemoError::Step { step: "interrupted", why: "Ctrl-C".into() }),
    };
    let console_note = crate::core::lock(&agent.console_note).take();
    let fleet_note = crate::core::lock(&agent.fleet_note).take();
    let _ = stop.send(());
    let _ = stop_console.send(());
    consoles.join_all().await;
    let stopped = serving.await.map_err(|e| DemoError::Step {
        step: "shutdown",
        why: e.to_string(),
    })?;
    drop(cgroup);
    drop(jobs);
    drop(network);
    script?;
    stopped?;
    let count = read_records(&audit).len();
    println!(
        "\naudit: {} ({count} records; programs detached, cgroup removed)",
        audit.display()
    );
    let verified =
        crate::audit::verify::verify(&crate::audit::files::trail(&audit)).map_err(|e| {
            DemoError::Step {
                step: "airlock audit verify",
                why: e.to_string(),
            }
        })?;
    println!(
        "airlock audit verify: OK, {} records, hash chain intact",
        verified.records
    );
    // Each connection's context is said once; `audit export` joins it back.
    let records = read_records(&audit);
    let count = |kind: &str| records.iter().filter(|r| r["kind"] == kind).count();
    println!(
        "airlock audit export: {} exchanges whole (process, identity, request, response, decision) from {} session and {} http records",
        exchanges(&audit).len(),
        count("session"),
        count("http")
    );
    // Copied off the host (a fleet store, a SIEM), a record still says
    // where it was written: one trail id for the whole chain.
    let trails: std::collections::BTreeSet<String> = records
        .iter()
        .filter_map(|r| r["origin"]["trail"].as_str().map(str::to_owned))
        .collect();
    if let (Some(first), [trail]) = (records.first(), Vec::from_iter(&trails).as_slice()) {
        println!(
            "origin: every record names host {} and trail {trail} (schema {})",
            first["origin"]["host"].as_str().unwrap_or("?"),
            first["schema"]
        );
    } else {
        return Err(DemoError::Step {
            step: "records name their origin",
            why: format!("{} trail ids in one trail: {trails:?}", trails.len()),
        });
    }
    // What a CI job's summary page would say (`airlock audit summary`).
    let mut summary = crate::audit::summary::Summary::default();
    for r in crate::audit::query::joined(std::slice::from_ref(&audit)).unwrap_or_default() {
        summary.add(&r);
    }
    let markdown = summary.markdown();
    let totals = markdown.lines().nth(2).unwrap_or_default();
    println!("airlock audit summary: {}", totals.replace("**", ""));
    for b in &summary.blocked {
        println!(
            "  blocked: {:<56} pid {:<7} {}",
            crate::core::truncate(&b.what, 56),
            b.pid.unwrap_or(0),
            crate::core::truncate(&b.why, 70)
        );
    }
    for note in [console_note, fleet_note].into_iter().flatten() {
        println!("{note}");
    }
    siem_report(&siem, &audit)?;
    if let Some(f) = &fleet {
        fleet_report(f, &records).await?;
    }
    Ok(())
}

/// What the SIEM received: one message per exchange or event, each as
/// `audit export` joins it.
fn siem_report(siem: &siem::Siem, audit: &std::path::Path) -> Result<(), DemoError> {
    let step = |why: String| DemoError::Step {
        step: "the syslog receiver",
        why,
    };
    let received = siem.messages();
    let exported = crate::audit::query::joined(&crate::audit::files::trail(audit))
        .map_err(|e| step(e.to_string()))?
        .len();
    if received.len() != exported {
        return Err(step(format!(
            "{} messages received, {exported} exchanges and events in the trail",
            received.len()
        )));
    }
    let sample = received
        .iter()
        .find(|m| m.contains(" http [airlock@"))
        .map(|m| crate::core::truncate(m, 150).to_owned())
        .unwrap_or_default();
    println!(
        "syslog (export.syslog, tcp://{}): {} RFC 5424 messages, one per exchange or event, e.g.\n  {sample}…",
        siem.addr,
        received.len()
    );
    Ok(())
}

/// What the fleet's database holds of this host's trail, as an auditor on
/// another machine checks it.
async fn fleet_report(f: &fleet::DemoFleet, records: &[Value]) -> Result<(), DemoError> {
    let step = |why: String| DemoError::Step {
        step: "the fleet's database",
        why,
    };
    let host = records
        .first()
        .and_then(|r| r["origin"]["host"].as_str())
        .unwrap_or_default();
    let shipped = crate::fleet::verify(&f.auditor, host, None)
        .await
        .map_err(|e| step(e.to_string()))?;
    let [trail] = shipped.as_slice() else {
        return Err(step(format!("{} trails from {host}", shipped.len())));
    };
    let verified = trail.result.as_ref().map_err(|e| step(e.to_string()))?;
    if verified.records != records.len() as u64 {
        return Err(step(format!(
            "{} records there, {} here",
            verified.records,
            records.len()
        )));
    }
    println!(
        "fleet: all {} records shipped to PostgreSQL (role {}, TLS verified); airlock audit verify --fleet --origin {host}: chain intact",
        verified.records, trail.owner
    );
    let denied = crate::audit::query::Filter {
        decision: Some("deny".into()),
        kind: Some("http".into()),
        ..Default::default()
    };
    let found = crate::fleet::search(&f.auditor, &denied, Some(host), |_| true)
        .await
        .map_err(|e| step(e.to_string()))?;
    let by = records
        .iter()
        .find(|r| r["kind"] == "approval" && r["event"] == "approved")
        .map(|r| {
            let by = &r["by"];
            format!(
                "{} (database role {})",
                by["user"].as_str().unwrap_or("?"),
                by["role"].as_str().unwrap_or("?")
            )
        })
        .unwrap_or_default();
    println!(
        "airlock audit search --fleet --decision deny: {found} exchanges; the held group deletion was approved from the fleet by {by}"
    );
    Ok(())
}

/// The audiences the demo's tokens are for (ARM, Storage, Key Vault, AKS).
const AUDIENCES: &[&str] = &[
    "https://management.azure.com",
    "https://storage.azure.com",
    "https://vault.azure.net",
    "6dae42f8-4368-4678-94ff-3960e28e3630",
];

const HEADER: &str = "STEP                                     TIME           PID PROCESS  IDENTITY                       OPERATION                                                DECISION  STATUS MASKED";

/// The scripted coding agent: each step a real process in the cgroup.
struct Agent<'a> {
    cgroup: &'a OwnedCgroup,
    admin: crate::admin::AdminClient,
    audit: &'a std::path::Path,
    ca: &'a std::path::Path,
    port: u16,
    /// The simulated instance metadata service.
    imds: std::net::SocketAddr,
    /// A container's network, and the parent its cgroups appear under.
    containers: Option<(
        &'a crate::capture::network::ContainerNetwork,
        &'a OwnedCgroup,
    )>,
    /// The fleet console's sign-in page and the CA its issuer's
    /// certificate chains to, when the demo has a fleet database.
    fleet_console: Option<(&'a str, &'a std::path::Path)>,
    /// The approval console's one-time sign-in link.
    console: &'a str,
    /// What the approver did at the console, said after the steps.
    console_note: std::sync::Mutex<Option<String>>,
    /// What the approver did at the fleet's console, likewise.
    fleet_note: std::sync::Mutex<Option<String>>,
}

impl Agent<'_> {
    async fn session(&self, azure: &azure::Azure) -> Result<(), DemoError> {
        let sub = azure::SUBSCRIPTION;
        let arm = self
            .token(
                "az login (token for ARM)",
                "https://management.azure.com/.default",
            )
            .await?;
        let storage = self
            .token(
                "az login (token for Storage)",
                "https://storage.azure.com/.default",
            )
            .await?;
        let vault = self
            .token(
                "az login (token for Key Vault)",
                "https://vault.azure.net/.default",
            )
            .await?;
        let aks = self
            .token(
                "kubelogin (token for AKS)",
                "6dae42f8-4368-4678-94ff-3960e28e3630/.default",
            )
            .await?;
        let bearer = |t: &str| vec!["-H".to_owned(), format!("Authorization: Bearer {t}")];
        let rg = format!("/subscriptions/{sub}/resourcegroups");
        // The host's managed identity: no secret in the request, a token in
        // the answer — judged and recorded as imds.token, the token masked
        // in the trail.
        let argv = ["curl", "-sS", "--max-time", "10", "-H", "Metadata: true"].map(str::to_owned);
        let url = format!(
            "http://{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F",
            self.imds
        );
        self.run(
            "az login --identity (managed identity)",
            &[argv.to_vec(), vec![url]].concat(),
            ALLOW,
        )
        .await?;

        self.curl(
            "az group list",
            azure::ARM,
            "GET",
            &format!("{rg}?api-version=2021-04-01"),
            &bearer(&arm),
            ALLOW,
        )
        .await?;
        self.container(&format!("{rg}?api-version=2021-04-01"), &bearer(&arm))
            .await?;
        self.ci_job(&format!("{rg}?api-version=2021-04-01"), &bearer(&arm))
            .await?;
        self.curl(
            "az storage blob list",
            azure::BLOB,
            "GET",
            "/deploy?restype=container&comp=list",
            &[
                bearer(&storage),
                vec!["-H".into(), "x-ms-version: 2023-11-03".into()],
            ]
            .concat(),
            ALLOW,
        )
        .await?;
        let keys = self.curl("az storage account keys list", azure::ARM, "POST",
            &format!("/subscriptions/{sub}/resourceGroups/rg-copilot-demo/providers/Microsoft.Storage/storageAccounts/stcopilotdemo/listKeys?api-version=2023-01-01"),
            &bearer(&arm), ALLOW).await?;
        unseen(
            "az storage account keys list",
            &keys,
            &azure::SECRETS.storage_keys,
        )?;
        let secret = self
            .curl(
                "az keyvault secret show",
                azure::VAULT,
                "GET",
                "/secrets/sql-admin-password?api-version=7.4",
                &bearer(&vault),
                ALLOW,
            )
            .await?;
        unseen("az keyvault secret show", &secret, &[azure::VAULT_SECRET])?;
        let k8s = self
            .curl(
                "kubectl get secret db-credentials",
                azure::AKS,
                "GET",
                "/api/v1/namespaces/payments/secrets/db-credentials",
                &bearer(&aks),
                ALLOW,
            )
            .await?;
        unseen(
            "kubectl get secret db-credentials",
            &k8s,
            &[azure::K8S_SECRET],
        )?;
        // Held for a human: the demo plays the approver over the real admin
        // socket — it approves the resource group DELETE and denies the
        // shell into a production pod.
        let approved = Expect {
            decision: "approve",
            status: 202,
        };
        let (path, auth) = (
            format!("{rg}/rg-legacy?api-version=2021-04-01"),
            bearer(&arm),
        );
        let (step, decided) = tokio::join!(
            self.curl(
                "az group delete -n rg-legacy (approved)",
                azure::ARM,
                "DELETE",
                &path,
                &auth,
                approved,
            ),
            async {
                self.approve_itself().await?;
                match self.fleet_console {
                    Some((login, issuer_ca)) => {
                        self.decide_in_fleet(
                            login,
                            issuer_ca,
                            "planned cleanup of a legacy resource group",
                        )
                        .await
                    }
                    None => {
                        self.decide(true, "planned cleanup of a legacy resource group")
                            .await
                    }
                }
            },
        );
        decided?;
        step?;
        let refused = Expect {
            decision: "approve",
            status: 403,
        };
        let upgrade = [
            bearer(&aks),
            vec![
                "-H".into(),
                "Connection: Upgrade".into(),
                "-H".into(),
                "Upgrade: SPDY/3.1".into(),
            ],
        ]
        .concat();
        let (step, decided) = tokio::join!(
            self.curl("kubectl exec payments-api -- sh (denied)", azure::AKS, "POST",
                "/api/v1/namespaces/payments/pods/payments-api-7d9f/exec?command=sh&stdin=true&stdout=true&tty=true",
                &upgrade, refused),
            self.decide_in_console("no interactive shells in production"),
        );
        decided?;
        step?;
        let denied = Expect {
            decision: "deny",
            status: 403,
        };
        // A token cached from yesterday: signed by the right key, expired.
        let stale = azure.signer.token(
            "https://management.azure.com",
            -2 * 86_400,
            Duration::from_secs(3600),
        );
        self.curl(
            "az group list (expired token)",
            azure::ARM,
            "GET",
            &format!("{rg}?api-version=2021-04-01"),
            &bearer(&stale),
            denied,
        )
        .await?;
        self.curl(
            "az storage blob upload --auth-mode key",
            azure::BLOB,
            "PUT",
            "/deploy/app.zip",
            &[
                "-H",
                "Authorization: SharedKey stcopilotdemo:bWFkZS11cC1zaWduYXR1cmU=",
                "-H",
                "x-ms-blob-type: BlockBlob",
                "-H",
                "x-ms-version: 2023-11-03",
                "--data-binary",
                "zip",
            ]
            .map(str::to_owned),
            denied,
        )
        .await?;
        // A prompt-injected agent shapes its requests around the judgement:
        // a year-long SAS behind an allowed token, a delete sent to Resource
        // Manager under Storage's name, a delete hidden in a batch.
        self.curl(
            "az storage blob list + year-long SAS",
            azure::BLOB,
            "GET",
            "/deploy?restype=container&comp=list&sv=2022-11-02&sp=rl&se=2031-01-01T00:00:00Z&sig=c2lnbmF0dXJl",
            &bearer(&storage),
            denied,
        )
        .await?;
        let misdirected = Expect {
            decision: "",
            status: 421,
        };
        self.curl(
            "az group delete, sent as Storage",
            azure::ARM,
            "DELETE",
            &format!("{rg}/rg-prod?api-version=2021-04-01"),
            &[
                bearer(&arm),
                vec!["-H".into(), format!("Host: {}", azure::BLOB)],
            ]
            .concat(),
            misdirected,
        )
        .await?;
        let batch = serde_json::json!({"requests": [
            {"httpMethod": "GET", "url": format!("{rg}?api-version=2021-04-01")},
            {"httpMethod": "DELETE", "url": format!("{rg}/rg-prod?api-version=2021-04-01")},
        ]});
        let batched = [
            bearer(&arm),
            vec![
                "-H".into(),
                "content-type: application/json".into(),
                "--data-binary".into(),
                batch.to_string(),
            ],
        ]
        .concat();
        let (step, decided) = tokio::join!(
            self.curl(
                "POST /batch, a delete inside (denied)",
                azure::ARM,
                "POST",
                "/batch?api-version=2020-06-01",
                &batched,
                refused,
            ),
            self.decide(false, "rg-prod stays"),
        );
        decided?;
        step?;
        // The agent "backs up" an SSH key to storage: exfiltration.
        let upload = [
            bearer(&storage),
            [
                "-H",
                "x-ms-blob-type: BlockBlob",
                "-H",
                "content-type: text/plain",
                "--data-binary",
                DEMO_PRIVATE_KEY,
            ]
            .map(str::to_owned)
            .to_vec(),
        ]
        .concat();
        self.curl(
            "az storage blob upload ~/.ssh/id_ed25519",
            azure::BLOB,
            "PUT",
            "/deploy/id_ed25519",
            &upload,
            denied,
        )
        .await?;
        self.quic().await?;
        self.distrusting_client().await
    }

    /// The prompt-injected agent approves its own held request over the
    /// admin socket (it runs as root here, an approver): refused, because
    /// the caller is a process airlock captures.
    async fn approve_itself(&self) -> Result<(), DemoError> {
        let title = "the agent approves its own request";
        let id = self.held_id(title).await?;
        let argv: Vec<String> = [
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-X",
            "POST",
            "--unix-socket",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([
            self.admin.socket().display().to_string(),
            format!("http://airlock/v1/approvals/{id}/approve"),
        ])
        .collect();
        let out = self.spawn(title, &argv).await?;
        let answer: Value = serde_json::from_str(&out).unwrap_or_default();
        let code = answer["error"]["code"].as_str().unwrap_or("");
        println!(
            "{title:<40} {:<12} {:>6} {:<8} {:<30} {:<56} {:<9} {:<6} -  [captured_approver]",
            "",
            "-",
            "curl",
            "(admin socket)",
            format!("approve {id}"),
            "refused",
            403
        );
        if code != "captured_approver" {
            return Err(DemoError::Step {
                step: title,
                why: format!("expected captured_approver, got {out}"),
            });
        }
        Ok(())
    }

    /// The id of the request held now (waiting for one to be).
    async fn held_id(&self, step: &'static str) -> Result<String, DemoError> {
        let err = |e: crate::admin::AdminError| DemoError::Step {
            step,
            why: e.to_string(),
        };
        for _ in 0..400 {
            let held = self.admin.list().await.map_err(err)?;
            if let Some(id) = held.iter().find_map(|h| h["id"].as_str()) {
                return Ok(id.to_owned());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(DemoError::Step {
            step,
            why: "nothing was held".into(),
        })
    }

    /// The approver: waits for the next held request and approves or
    /// denies it through the admin API, as `airlock approvals` would.
    async fn decide(&self, approve: bool, reason: &str) -> Result<(), DemoError> {
        let step = "approving through the admin socket";
        let err = |e: crate::admin::AdminError| DemoError::Step {
            step,
            why: e.to_string(),
        };
        let id = self.held_id(step).await?;
        if approve {
            self.admin
                .approve(&id, None, None, Some(reason))
                .await
                .map_err(err)?;
        } else {
            self.admin.deny(&id, reason).await.map_err(err)?;
        }
        Ok(())
    }

    /// An approver on another machine, at the fleet's console: signs in
    /// with the demo's Entra ID (authorization code + PKCE), finds the
    /// request held now among every host's, and approves it from the page
    /// — through the fleet's database, as the person signed in.
    async fn decide_in_fleet(
        &self,
        login: &str,
        issuer_ca: &std::path::Path,
        reason: &str,
    ) -> Result<(), DemoError> {
        let step = "approving at the fleet's console";
        let err = |why: String| DemoError::Step { step, why };
        let id = self.held_id(step).await?;
        let browser = console::Browser::sign_in_with_issuer(login, issuer_ca)
            .await
            .map_err(err)?;
        let page = browser.page_with(&id).await.map_err(err)?;
        let said = browser
            .decide(&page, &id, true, reason)
            .await
            .map_err(err)?;
        *crate::core::lock(&self.fleet_note) = Some(format!(
            "fleet console (airlock console, console.issuer): {} signed in at the simulated Entra ID (authorization code + PKCE, ID token checked against its keys), found the held deletion among the fleet's holds and approved it from the page: \"{said}\"",
            signin::APPROVER
        ));
        Ok(())
    }

    /// An approver at the approval console: signs in with its one-time
    /// link, finds the request held now on the live page, and denies it
    /// from the page's form.
    async fn decide_in_console(&self, reason: &str) -> Result<(), DemoError> {
        let step = "denying at the approval console";
        let err = |why: String| DemoError::Step { step, why };
        let id = self.held_id(step).await?;
        let browser = console::Browser::sign_in(self.console).await.map_err(err)?;
        let page = browser.page_with(&id).await.map_err(err)?;
        let said = browser
            .decide(&page, &id, false, reason)
            .await
            .map_err(err)?;
        // The same session's timeline, filtered to the exec: the call with
        // its badges — held, denied by whom, the agent's 403.
        let badges = "<span class=\"badge outcome denied\">denied by ";
        let timeline = browser
            .timeline("operation=k8s.pods.exec", badges)
            .await
            .map_err(err)?;
        let sessions = timeline.matches("<section class=\"session\">").count();
        let status = timeline.contains("<span class=\"badge status bad\">403</span>");
        if !status {
            return Err(err("the timeline does not show the exec's 403".into()));
        }
        *crate::core::lock(&self.console_note) = Some(format!(
            "approval console (airlock console): signed in with its one-time link; the held kubectl exec was on the live page and denied from its form (session cookie, CSRF token, same origin): \"{said}\"; its timeline (operation k8s.pods.exec: {sessions} session) shows it held, denied and answered 403"
        ));
        Ok(())
    }

    /// A token from the simulated Entra token endpoint (client credentials).
    async fn token(&self, title: &'static str, scope: &str) -> Result<String, DemoError> {
        let form = [
            "-d",
            "grant_type=client_credentials",
            "-d",
            "client_id=04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            "--data-urlencode",
            "client_secret=demo~Q8d.Sq9vL2mN7pR4tW1xY6zA3bC5eF8gH0jK",
        ]
        .map(str::to_owned);
        let path = format!("/{}/oauth2/v2.0/token", entra::TENANT);
        let extra = [
            form.to_vec(),
            vec!["--data-urlencode".into(), format!("scope={scope}")],
        ]
        .concat();
        let stdout = self
            .curl(title, azure::ENTRA, "POST", &path, &extra, ALLOW)
            .await?;
        let body: Value = serde_json::from_str(&stdout).unwrap_or_default();
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| DemoError::Step {
                step: title,
                why: format!("no access_token in {stdout}"),
            })
    }

    /// curl `method https://host{path}` with `extra` arguments, run as
    /// [`Agent::run`] runs a command.
    async fn curl(
        &self,
        title: &'static str,
        host: &str,
        method: &str,
        path: &str,
        extra: &[String],
        expect: Expect,
    ) -> Result<String, DemoError> {
        let argv = self.curl_argv(host, method, path, extra);
        self.run(title, &argv, expect).await
    }

    fn curl_argv(&self, host: &str, method: &str, path: &str, extra: &[String]) -> Vec<String> {
        let mut argv: Vec<String> = ["curl", "-sS", "--max-time", "10", "-X", method, "--cacert"]
            .map(str::to_owned)
            .to_vec();
        argv.push(self.ca.display().to_string());
        argv.push("--resolve".into());
        argv.push(format!("{host}:{}:127.0.0.1", self.port));
        argv.extend_from_slice(extra);
        argv.push(format!("https://{host}:{}{path}", self.port));
        argv
    }

    /// The agent's `az group list` as a GitHub Actions step: the runner's
    /// `Runner.Worker` starts the step with the job's variables, and the
    /// agent claims another repository in its own environment. The record
    /// names the job the runner started (`ci`).
    async fn ci_job(&self, path: &str, auth: &[String]) -> Result<(), DemoError> {
        const TITLE: &str = "CI step: az group list (forged env)";
        // The worker starts the step; the step (the agent) runs curl with
        // a forged GITHUB_REPOSITORY.
        const JOB: &str = "GITHUB_REPOSITORY=contoso/webapp GITHUB_WORKFLOW=deploy \
            GITHUB_RUN_ID=4242 GITHUB_JOB=agent GITHUB_ACTOR=dev \
            /bin/sh -c 'GITHUB_REPOSITORY=evil/forged \"$@\"; exit $?' step \"$@\"; exit $?";
        let dir = self.audit.parent().unwrap_or(std::path::Path::new("/tmp"));
        // A process takes its name from the path it was started by.
        let worker = dir.join("Runner.Worker");
        let _ = std::fs::remove_file(&worker);
        std::os::unix::fs::symlink("/bin/sh", &worker).map_err(|source| DemoError::Io {
            what: format!("making {}", worker.display()),
            source,
        })?;
        let mut argv = vec![
            worker.display().to_string(),
            "-c".into(),
            JOB.into(),
            "Runner.Worker".into(),
        ];
        argv.extend(self.curl_argv(azure::ARM, "GET", path, auth));
        let judged = self.run(TITLE, &argv, ALLOW).await;
        let _ = std::fs::remove_file(&worker);
        judged?;
        let rec = exchanges(self.audit).pop().unwrap_or_default();
        let ci = &rec["ci"];
        if ci["repository"] != "contoso/webapp" {
            return Err(DemoError::Step {
                step: TITLE,
                why: format!("the record names the job {ci}"),
            });
        }
        println!(
            "{:<40} ci: {} {} run {} job {} by {} (the agent's own GITHUB_REPOSITORY=evil/forged is not what counts)",
            "",
            ci["provider"].as_str().unwrap_or("?"),
            ci["repository"].as_str().unwrap_or("?"),
            ci["run_id"].as_str().unwrap_or("?"),
            ci["job"].as_str().unwrap_or("?"),
            ci["actor"].as_str().unwrap_or("?"),
        );
        Ok(())
    }

    /// Runs `argv` as the agent; prints the audited row and checks it
    /// against `expect`. Returns the command's stdout.
    async fn run(
        &self,
        title: &'static str,
        argv: &[String],
        expect: Expect,
    ) -> Result<String, DemoError> {
        let mut cmd = self.cgroup.command(&argv[0]);
        cmd.args(&argv[1..]);
        self.judged(title, cmd, expect).await
    }

    /// Runs `cmd`; prints the audited row of its request and checks it
    /// against `expect`. Returns the command's stdout.
    async fn judged(
        &self,
        title: &'static str,
        cmd: tokio::process::Command,
        expect: Expect,
    ) -> Result<String, DemoError> {
        let before = exchanges(self.audit).len();
        let out = output(title, cmd).await?;
        let rec = wait_for_exchange(self.audit, before)
            .await
            .ok_or(DemoError::Step {
                step: title,
                why: "no audit record for the request".into(),
            })?;
        println!("{}", row(title, &rec));
        let decision = rec["decision"]["action"].as_str().unwrap_or("");
        let status = rec["response"]["status"].as_u64().unwrap_or(0);
        if decision != expect.decision || status != u64::from(expect.status) {
            return Err(DemoError::Step {
                step: title,
                why: format!(
                    "expected {} {}, got {decision} {status}: {}",
                    expect.decision, expect.status, out
                ),
            });
        }
        Ok(out)
    }

    async fn spawn(&self, title: &'static str, argv: &[String]) -> Result<String, DemoError> {
        let mut cmd = self.cgroup.command(&argv[0]);
        cmd.args(&argv[1..]);
        output(title, cmd).await
    }

    /// The agent's `az group list` from a container: its cgroup is made now
    /// (airlock attaches to it as it appears: `capture.cgroup` has a glob),
    /// its network namespace is its own (redirected to
    /// `proxy.listen_containers`, the bridge's gateway).
    async fn container(&self, path: &str, auth: &[String]) -> Result<(), DemoError> {
        let Some((net, jobs)) = self.containers else {
            return Ok(());
        };
        let title = "container: az group list (own netns)";
        let job = OwnedCgroup::create_under(jobs.path(), "job-1")?;
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            let status = self.admin.status().await.map_err(|e| DemoError::Step {
                step: title,
                why: e.to_string(),
            })?;
            let attached = status["capture"]["cgroups"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c.as_str() == job.path().to_str()));
            if attached {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(DemoError::Step {
                    step: title,
                    why: format!("{} was never attached", job.path().display()),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut cmd = net.command(&job, 0, "curl");
        cmd.args(["-sS", "--max-time", "10", "--cacert"])
            .arg(self.ca)
            .arg("--resolve")
            .arg(format!("{}:{}:{}", azure::ARM, self.port, net.gateway()))
            .args(auth)
            .arg(format!("https://{}:{}{path}", azure::ARM, self.port));
        self.judged(title, cmd, ALLOW).await?;
        let rec = exchanges(self.audit).pop().unwrap_or_default();
        println!(
            "{:<40} cgroup {} attached as it appeared; namespace {} redirected to proxy.listen_containers",
            "",
            rec["process"]["cgroup"].as_str().unwrap_or("?"),
            rec["process"]["netns"],
        );
        Ok(())
    }

    /// A client that does not trust airlock and says so only by closing
    /// after the handshake, as .NET does: recorded, never silent.
    async fn distrusting_client(&self) -> Result<(), DemoError> {
        let title = "a .NET-like client without the CA";
        let code = format!(
            "import socket, ssl\nctx = ssl.create_default_context()\nctx.check_hostname = False\nctx.verify_mode = ssl.CERT_NONE\ns = socket.create_connection(('127.0.0.1', {port}))\nctx.wrap_socket(s, server_hostname='{host}').close()",
            port = self.port,
            host = azure::ARM,
        );
        let before = read_records(self.audit)
            .iter()
            .filter(|r| r["kind"] == "tls_client_refused")
            .count();
        self.spawn(title, &["python3".into(), "-c".into(), code])
            .await?;
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            let refused: Vec<Value> = read_records(self.audit)
                .into_iter()
                .filter(|r| r["kind"] == "tls_client_refused")
                .collect();
            if refused.len() > before {
                println!(
                    "{title:<40} {:<12} {:>6} {:<8} {:<30} tls_client_refused: closed after the handshake, no request (the CA hint is logged)",
                    "",
                    refused[before]["process"]["pid"].as_u64().unwrap_or(0),
                    "python3",
                    "-"
                );
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(DemoError::Step {
                    step: title,
                    why: "no tls_client_refused record".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// QUIC (UDP/443) is refused, so clients fall back to TCP, which is captured.
    async fn quic(&self) -> Result<(), DemoError> {
        let title = "QUIC attempt: UDP to 127.0.0.1:443";
        let code = "import socket\ntry:\n socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'q', ('127.0.0.1', 443)); print('sent')\nexcept PermissionError:\n print('refused')";
        let out = self
            .spawn(title, &["python3".into(), "-c".into(), code.into()])
            .await?;
        let refused = out.trim() == "refused";
        println!(
            "{title:<40} {:<12} {:>6} {:<8} {:<30} {}",
            "",
            "-",
            "python3",
            "-",
            if refused {
                "UDP 127.0.0.1:443 refused: QUIC must use TCP, which is captured"
            } else {
                "NOT refused"
            }
        );
        if refused {
            Ok(())
        } else {
            Err(DemoError::Step {
                step: title,
                why: format!("UDP/443 was not refused: {out}"),
            })
        }
    }
}

/// Runs `cmd` (killed if it outlives the step); its stdout.
async fn output(
    title: &'static str,
    mut cmd: tokio::process::Command,
) -> Result<String, DemoError> {
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(STEP_TIMEOUT, cmd.output())
        .await
        .map_err(|_| DemoError::Step {
            step: title,
            why: "timed out".into(),
        })?
        .map_err(|e| DemoError::Step {
            step: title,
            why: e.to_string(),
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The fleet's console, bound: `console.issuer` is the demo's Entra ID by
/// address, the console its registered client (a secret in a 0600 file),
/// the approver's database role, `approval.approvers` the person who signs
/// in.
async fn fleet_console(
    base: &Config,
    fleet: &fleet::DemoFleet,
    azure: &azure::Azure,
    dir: &std::path::Path,
) -> Result<crate::console::Console, DemoError> {
    let step = "starting the fleet's console";
    let secret = dir.join("console-client-secret");
    std::fs::write(&secret, format!("{}\n", signin::CLIENT_SECRET))
        .and_then(|()| {
            std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        })
        .map_err(|source| DemoError::Io {
            what: format!("writing {}", secret.display()),
            source,
        })?;
    let mut config = base.clone();
    config.console.issuer = Some(signin::issuer(&format!(
        "https://127.0.0.1:{}",
        azure.addr.port()
    )));
    config.console.client_id = Some(signin::CLIENT_ID.to_owned());
    config.console.client_secret_file = Some(secret);
    config.fleet = fleet.approver.clone();
    config.approval.approvers = vec![signin::APPROVER.to_owned()];
    crate::console::Console::bind(&config)
        .await
        .map_err(|e| DemoError::Step {
            step,
            why: e.to_string(),
        })
}

/// `airlock ca check --user nobody` in one line: which runtimes on this
/// host trust airlock as an unprivileged user with `ca env`'s lines.
async fn ca_check(
    ca_dir: &std::path::Path,
    intercept: &crate::host::InterceptList,
    public: &crate::tls::PublicFiles,
) {
    use crate::tls::ProbeOutcome;
    let checked = async {
        let ca = crate::tls::CertificateAuthority::load(ca_dir)?;
        let user = crate::tls::ProbeUser::resolve("nobody")?;
        crate::tls::check_runtimes(ca, intercept, public, &user).await
    };
    let said = match checked.await {
        Ok((_, probes)) => probes
            .iter()
            .filter_map(|p| match &p.outcome {
                ProbeOutcome::Trusts => Some(format!("{} trusts it", p.runtime)),
                ProbeOutcome::Refuses { .. } => Some(format!(
                    "{} does not (`airlock ca check` says what to set)",
                    p.runtime
                )),
                ProbeOutcome::NotInstalled | ProbeOutcome::NotProbed(_) => None,
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("not run: {e}"),
    };
    println!("airlock ca check --user nobody (only `airlock ca env`'s lines): {said}\n");
}

/// A throwaway key shaped like an OpenSSH private key (never a real one).
const DEMO_PRIVATE_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDdemoDEMOdemoDEMOdemoDEMOdemoDEMOdemoDEMOdemoAAAA=\n-----END OPENSSH PRIVATE KEY-----\n";

/// The agent's copy of a response must not hold any of `secrets`.
fn unseen(step: &'static str, body: &str, secrets: &[impl AsRef<str>]) -> Result<(), DemoError> {
    match secrets.iter().find(|s| body.contains(s.as_ref())) {
        Some(_) => Err(DemoError::Step {
            step,
            why: "a secret reached the agent unmasked".into(),
        }),
        None => Ok(()),
    }
}

/// One audited exchange as a table row.
fn row(title: &str, r: &Value) -> String {
    let ts = r["ts"].as_str().unwrap_or("");
    let time = ts.get(11..23).unwrap_or(ts);
    let id = &r["identity"];
    let who = [&id["upn"], &id["app_id"], &id["account"], &id["kind"]]
        .into_iter()
        .find_map(Value::as_str)
        .unwrap_or("-");
    // Long ids (an app's GUID) are cut to keep the table a table.
    let who = match who.char_indices().nth(18) {
        Some((i, _)) if id["upn"].is_null() => format!("{}…", &who[..i]),
        _ => who.to_owned(),
    };
    let who = match (id["verified"].as_bool(), id["error"].as_str()) {
        (_, Some(_)) => format!("{who} (invalid)"),
        (Some(true), _) => who.to_owned(),
        _ => format!("{who} (?)"),
    };
    let op = r["request"]["operation"]["name"].as_str().unwrap_or("-");
    let why = match (
        r["decision"]["action"].as_str(),
        r["decision"]["rule"].as_str(),
    ) {
        (Some("allow"), _) | (_, None) => String::new(),
        (_, Some(rule)) => match r["approval"]["outcome"].as_str() {
            Some(outcome) => {
                let by = &r["approval"]["by"];
                let user = by["user"].as_str().unwrap_or("?");
                let who = match by["role"].as_str() {
                    Some(role) => format!("{user} via role {role}, from the fleet"),
                    None => user.to_owned(),
                };
                format!("  [{rule}: {outcome} by {who}]")
            }
            None => format!("  [{rule}]"),
        },
    };
    // Secrets masked in the response, or found in the request.
    let masked = [&r["response"]["masked"], &r["request"]["masked"]]
        .into_iter()
        .find(|m| m["count"].as_u64().unwrap_or(0) > 0)
        .map(|m| {
            let kinds: Vec<&str> = m["detectors"]
                .as_object()
                .map(|d| d.keys().map(String::as_str).collect())
                .unwrap_or_default();
            format!("{} {}", m["count"], kinds.join(","))
        })
        .unwrap_or_else(|| "-".to_owned());
    format!(
        "{title:<40} {time:<12} {:>6} {:<8} {who:<30} {op:<56} {:<9} {:<6} {masked}{why}",
        r["process"]["pid"],
        r["process"]["comm"].as_str().unwrap_or("?"),
        r["decision"]["action"].as_str().unwrap_or("-"),
        r["response"]["status"]
            .as_u64()
            .map_or_else(|| "-".to_owned(), |s| s.to_string()),
    )
}

async fn wait_for_exchange(audit: &std::path::Path, before: usize) -> Option<Value> {
    for _ in 0..200 {
        if let Some(r) = exchanges(audit).into_iter().nth(before) {
            return Some(r);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

/// Completed HTTP exchanges, joined with their sessions (as `airlock
/// audit export` prints them).
fn exchanges(audit: &std::path::Path) -> Vec<Value> {
    crate::audit::query::joined(&[audit.to_owned()])
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["kind"] == "http" && r["phase"] == "response")
        .collect()
}

fn read_records(audit: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(audit)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
