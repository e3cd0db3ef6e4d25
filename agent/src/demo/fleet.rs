//! The demo's fleet: a real PostgreSQL (the host's, when installed) in
//! the demo's directory, run as `nobody` on loopback with TLS from a
//! throwaway CA; the schema made by `airlock fleet migrate`'s code as its
//! owner, and three roles — the demo host's, an approver's and an
//! auditor's — as a platform team would make them. Absent PostgreSQL, the
//! demo says so and goes on without it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::process::{Child, Command};

use crate::config::FleetConfig;

/// Every demo role's password (a throwaway database).
const PASSWORD: &str = "airlock-demo-fleet";

/// The running database and the `[fleet]` each role would have.
#[derive(Debug)]
pub(super) struct DemoFleet {
    server: Child,
    /// The demo host's daemon ships and publishes holds as this role.
    pub(super) host: FleetConfig,
    /// `approvals … --fleet` on another machine.
    pub(super) approver: FleetConfig,
    /// `audit search | verify --fleet`.
    pub(super) auditor: FleetConfig,
}

impl Drop for DemoFleet {
    fn drop(&mut self) {
        let _ = self.server.start_kill();
    }
}

/// One of PostgreSQL's programs, of the newest version installed.
fn bin(name: &str) -> Result<PathBuf, String> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no PostgreSQL here (apt-get install postgresql)".to_owned())?
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .ok_or_else(|| format!("no PostgreSQL {name} under /usr/lib/postgresql"))
}

fn as_nobody(program: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(program)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn give_to_nobody(path: &Path, mode: u32) -> Result<(), String> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .and_then(|()| std::os::unix::fs::chown(path, Some(65534), Some(65534)))
        .map_err(|e| format!("{}: {e}", path.display()))
}

async fn ok(cmd: &mut Command, what: &str) -> Result<(), String> {
    match cmd.status().await {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{what}: {s}")),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

impl DemoFleet {
    /// Initialises and starts the database in `dir/fleet`, migrates it and
    /// makes the roles.
    pub(super) async fn start(dir: &Path) -> Result<Self, String> {
        let initdb = bin("initdb")?;
        let fleet = dir.join("fleet");
        let server_dir = fleet.join("server");
        std::fs::create_dir_all(&server_dir).map_err(|e| e.to_string())?;
        give_to_nobody(&server_dir, 0o700)?;
        let pwfile = server_dir.join("password");
        let password = fleet.join("password");
        for f in [&pwfile, &password] {
            std::fs::write(f, PASSWORD).map_err(|e| e.to_string())?;
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| e.to_string())?;
        }
        give_to_nobody(&pwfile, 0o600)?;
        let data = server_dir.join("data");
        ok(
            as_nobody(&initdb)
                .arg("-D")
                .arg(&data)
                .args(["-U", "airlock_owner", "-E", "UTF8", "--no-locale"])
                .arg("--auth=scram-sha-256")
                .arg(format!("--pwfile={}", pwfile.display())),
            "initdb",
        )
        .await?;
        let ca = certificates(&fleet, &server_dir)?;
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let server = as_nobody(&bin("postgres")?)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&server_dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "ssl=on"])
            .arg("-c")
            .arg(format!(
                "ssl_cert_file={}",
                server_dir.join("server.crt").display()
            ))
            .arg("-c")
            .arg(format!(
                "ssl_key_file={}",
                server_dir.join("server.key").display()
            ))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("postgres: {e}"))?;
        let config = |role: &str, db: &str| FleetConfig {
            postgres: Some(format!(
                "postgresql://{role}@localhost:{port}/{db}?hostaddr=127.0.0.1&sslrootcert={}",
                ca.display()
            )),
            password_file: Some(password.clone()),
            ..FleetConfig::default()
        };
        let pg = Self {
            server,
            host: config("demo_runner", "airlock"),
            approver: config("demo_approver", "airlock"),
            auditor: config("demo_auditor", "airlock"),
        };
        let psql = bin("psql")?;
        let sql = |db: &'static str, sql: String| {
            let mut cmd = Command::new(&psql);
            cmd.arg(format!(
                "host=localhost hostaddr=127.0.0.1 port={port} user=airlock_owner dbname={db} sslmode=verify-full sslrootcert={}",
                ca.display()
            ))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", &sql])
            .env("PGPASSWORD", PASSWORD)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
            cmd
        };
        // Up once it takes a query.
        let mut tries = 0;
        while ok(&mut sql("postgres", "SELECT 1".into()), "postgres")
            .await
            .is_err()
        {
            tries += 1;
            if tries == 100 {
                return Err("PostgreSQL did not start".into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        ok(
            &mut sql("postgres", "CREATE DATABASE airlock".into()),
            "create database",
        )
        .await?;
        crate::fleet::migrate(&config("airlock_owner", "airlock"))
            .await
            .map_err(|e| e.to_string())?;
        let roles = [
            ("demo_runner", "airlock_host"),
            ("demo_approver", "airlock_approver"),
            ("demo_auditor", "airlock_reader"),
        ]
        .map(|(role, group)| {
            format!("CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}' IN ROLE {group};")
        })
        .join(" ");
        ok(&mut sql("airlock", roles), "create roles").await?;
        Ok(pg)
    }
}

/// A throwaway CA and the server's certificate for `localhost`, written
/// where PostgreSQL (as `nobody`) and airlock read them; the CA's path.
fn certificates(fleet: &Path, server_dir: &Path) -> Result<PathBuf, String> {
    let e = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "airlock demo: fleet database CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(e)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().map_err(e)?;
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .map_err(e)?
        .signed_by(&key, &issuer)
        .map_err(e)?;
    let write = |path: PathBuf, text: String| {
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok::<_, String>(path)
    };
    let crt = write(server_dir.join("server.crt"), leaf.pem() + &ca_cert.pem())?;
    let pem = write(server_dir.join("server.key"), key.serialize_pem())?;
    give_to_nobody(&crt, 0o600)?;
    give_to_nobody(&pem, 0o600)?;
    write(fleet.join("ca.pem"), ca_cert.pem())
}
