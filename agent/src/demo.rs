//! `airlock demo`: the whole path on embedded defaults, on loopback —
//! capture, TLS interception, audit — with real processes in a throwaway
//! cgroup.

mod azure;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinSet;

use crate::capture::cgroup::OwnedCgroup;
use crate::config::Config;

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

/// One scripted "coding agent" action: a real process in the cgroup.
struct Step {
    title: &'static str,
    argv: Vec<String>,
    /// What a correct airlock makes of it.
    expect_refused: bool,
}

/// Runs the demo; the audit file is kept at `audit` (default: a fresh
/// directory under /tmp) and its path printed.
pub async fn run(audit: Option<PathBuf>) -> Result<(), DemoError> {
    let cgroup_name = format!("airlock-demo-{}", std::process::id());
    crate::capture::preflight(&Default::default())?;
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
    let cgroup = OwnedCgroup::create(&cgroup_name)?;
    let mut servers = JoinSet::new();
    let (arm, demo_ca) = azure::start(&mut servers, &dir)
        .await
        .map_err(|why| DemoError::Step {
            step: "starting the simulated ARM endpoint",
            why,
        })?;

    let mut config = Config::default();
    config.capture.cgroup = Some(cgroup.path().to_owned());
    config.capture.ports = vec![443, arm.port()];
    config.proxy.listen = "127.0.0.1:0".parse().expect("literal");
    config.proxy.listen6 = Some("[::1]:0".parse().expect("literal"));
    config.audit.path = audit.clone();
    config.tls.ca_dir = dir.join("ca");
    config.tls.upstream_roots = vec![demo_ca];
    let airlock_ca = config.tls.ca_dir.join("ca.crt");
    let app = crate::app::build(config).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));

    println!(
        "airlock demo: capturing every process in cgroup {}",
        cgroup.path().display()
    );
    println!(
        "simulated Azure Resource Manager: https://{}:{} on {arm} (TLS, its own CA)",
        azure::HOST,
        arm.port()
    );
    println!(
        "the agent's processes trust airlock's CA ({}), as `airlock ca env` sets up\n",
        airlock_ca.display()
    );
    println!(
        "{:<36} {:>7} {:<8} {:>6}  REQUEST (as decrypted and audited)",
        "STEP", "PID", "PROCESS", "STATUS"
    );
    let steps = steps(arm, &airlock_ca);
    let script = tokio::select! {
        r = run_script(&cgroup, &audit, &steps) => r,
        _ = tokio::signal::ctrl_c() => Err(DemoError::Step { step: "interrupted", why: "Ctrl-C".into() }),
    };
    let _ = stop.send(());
    let stopped = serving.await.map_err(|e| DemoError::Step {
        step: "shutdown",
        why: e.to_string(),
    })?;
    drop(cgroup);
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
    Ok(())
}

fn steps(arm: std::net::SocketAddr, airlock_ca: &std::path::Path) -> Vec<Step> {
    let sub = azure::SUBSCRIPTION;
    let base = format!("https://{}:{}", azure::HOST, arm.port());
    let curl = |path: String| -> Vec<String> {
        vec![
            "curl".into(),
            "-sS".into(),
            "--max-time".into(),
            "10".into(),
            "--cacert".into(),
            airlock_ca.display().to_string(),
            "--resolve".into(),
            format!("{}:{}:127.0.0.1", azure::HOST, arm.port()),
            "-H".into(),
            "Authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.demo.signature".into(),
            format!("{base}{path}"),
        ]
    };
    let shell = |path: String| -> Vec<String> {
        let inner = curl(path)
            .into_iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ");
        vec!["sh".into(), "-c".into(), format!("{inner}; true")]
    };
    vec![
        Step {
            title: "az group list (curl)",
            argv: curl(format!("/subscriptions/{sub}/resourcegroups?api-version=2021-04-01")),
            expect_refused: false,
        },
        Step {
            title: "storage account list (sh → curl)",
            argv: shell(format!("/subscriptions/{sub}/providers/Microsoft.Storage/storageAccounts?api-version=2023-01-01")),
            expect_refused: false,
        },
        Step {
            title: "a mistyped resource type",
            argv: curl(format!("/subscriptions/{sub}/providers/Microsoft.Storage/storageAcounts?api-version=2023-01-01")),
            expect_refused: false,
        },
        Step {
            title: "QUIC attempt: UDP to 127.0.0.1:443",
            argv: vec![
                "python3".into(),
                "-c".into(),
                "import socket\ntry:\n socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'q', ('127.0.0.1', 443)); print('sent')\nexcept PermissionError:\n print('refused')".into(),
            ],
            expect_refused: true,
        },
    ]
}

async fn run_script(
    cgroup: &OwnedCgroup,
    audit: &std::path::Path,
    steps: &[Step],
) -> Result<(), DemoError> {
    for step in steps {
        let mut cmd = cgroup.command(&step.argv[0]);
        cmd.args(&step.argv[1..]).kill_on_drop(true);
        let before = exchanges(audit).len();
        let out = tokio::time::timeout(STEP_TIMEOUT, cmd.output())
            .await
            .map_err(|_| DemoError::Step {
                step: step.title,
                why: "timed out".into(),
            })?
            .map_err(|e| DemoError::Step {
                step: step.title,
                why: e.to_string(),
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if step.expect_refused {
            let refused = stdout.trim() == "refused";
            println!(
                "{:<36} {:>7} {:<8} {:>6}  {}",
                step.title,
                "-",
                "python3",
                "-",
                if refused {
                    "UDP 127.0.0.1:443 refused: QUIC must use TCP, which is captured"
                } else {
                    "NOT refused"
                }
            );
            if !refused {
                return Err(DemoError::Step {
                    step: step.title,
                    why: format!("UDP/443 was not refused: {stdout}"),
                });
            }
            continue;
        }
        if !out.status.success() {
            return Err(DemoError::Step {
                step: step.title,
                why: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        let rec = wait_for_exchange(audit, before)
            .await
            .ok_or(DemoError::Step {
                step: step.title,
                why: "no audit record for the request".into(),
            })?;
        println!(
            "{:<36} {:>7} {:<8} {:>6}  {}",
            step.title,
            rec["process"]["pid"].to_string(),
            rec["process"]["comm"].as_str().unwrap_or("?"),
            rec["response"]["status"].to_string(),
            crate::audit::query::row_request(&rec),
        );
    }
    Ok(())
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

/// Completed HTTP exchanges (`phase: response`).
fn exchanges(audit: &std::path::Path) -> Vec<Value> {
    read_records(audit)
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
