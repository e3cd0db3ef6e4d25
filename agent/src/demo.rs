//! `airlock demo`: the whole capture path on embedded defaults, on
//! loopback, with real processes in a throwaway cgroup.

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
    let cgroup = OwnedCgroup::create(&cgroup_name)?;
    let mut servers = JoinSet::new();
    let arm = azure::start(&mut servers)
        .await
        .map_err(|source| DemoError::Io {
            what: "starting the fake ARM endpoint".into(),
            source,
        })?;
    let audit =
        audit.unwrap_or_else(|| std::env::temp_dir().join(format!("{cgroup_name}/audit.jsonl")));

    let mut config = Config::default();
    config.capture.cgroup = Some(cgroup.path().to_owned());
    config.capture.ports = vec![443, arm.port()];
    config.proxy.listen = "127.0.0.1:0".parse().expect("literal");
    config.proxy.listen6 = Some("[::1]:0".parse().expect("literal"));
    config.audit.path = audit.clone();
    config.tls.ca_dir = audit
        .parent()
        .unwrap_or(std::path::Path::new("/tmp"))
        .join("ca");
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
        "fake Azure Resource Manager at http://{arm} (plain HTTP until TLS interception lands)\n"
    );
    println!(
        "{:<44} {:>7} {:<8} {:<22} {:>6} {:>6}  RESULT",
        "STEP", "PID", "PROCESS", "DESTINATION", "OUT", "IN"
    );
    let steps = steps(arm);
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

fn steps(arm: std::net::SocketAddr) -> Vec<Step> {
    let sub = azure::SUBSCRIPTION;
    let curl = |url: String| {
        vec![
            "curl".into(),
            "-sS".into(),
            "--max-time".into(),
            "10".into(),
            url,
        ]
    };
    vec![
        Step {
            title: "az group list (curl)",
            argv: curl(format!("http://{arm}/subscriptions/{sub}/resourcegroups?api-version=2021-04-01")),
            expect_refused: false,
        },
        Step {
            title: "storage account list (sh → curl)",
            argv: vec![
                "sh".into(),
                "-c".into(),
                format!("curl -sS --max-time 10 'http://{arm}/subscriptions/{sub}/providers/Microsoft.Storage/storageAccounts?api-version=2023-01-01'; true"),
            ],
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
        let before = connection_records(audit).len();
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
                "{:<44} {:>7} {:<8} {:<22} {:>6} {:>6}  {}",
                step.title,
                "-",
                "python3",
                "127.0.0.1:443/udp",
                "-",
                "-",
                if refused {
                    "refused (QUIC must use TCP, which is captured)"
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
        let rec = wait_for_record(audit, before)
            .await
            .ok_or(DemoError::Step {
                step: step.title,
                why: "no audit record for the connection".into(),
            })?;
        let p = &rec["process"];
        println!(
            "{:<44} {:>7} {:<8} {:<22} {:>6} {:>6}  relayed, audited",
            step.title,
            p["pid"].to_string(),
            p["comm"].as_str().unwrap_or("?"),
            format!(
                "{}:{}",
                rec["dst"]["ip"].as_str().unwrap_or("?"),
                rec["dst"]["port"]
            ),
            rec["bytes_out"].to_string(),
            rec["bytes_in"].to_string(),
        );
    }
    Ok(())
}

async fn wait_for_record(audit: &std::path::Path, before: usize) -> Option<Value> {
    for _ in 0..200 {
        if let Some(r) = connection_records(audit).into_iter().nth(before) {
            return Some(r);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

fn connection_records(audit: &std::path::Path) -> Vec<Value> {
    read_records(audit)
        .into_iter()
        .filter(|r| r["kind"] == "connection")
        .collect()
}

fn read_records(audit: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(audit)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
