//! A real PostgreSQL (Debian's package), initialised in a test's own
//! directory and run as `nobody` (it refuses root) on a loopback port, with
//! TLS from a test CA and password (SCRAM) authentication; `psql` for the
//! test's own SQL as any role. Stopped on drop.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use crate::pki::TestPki;

/// The role that owns the database (`airlock fleet migrate` runs as it).
pub const OWNER: &str = "airlock_owner";
/// Every role the test makes has this password, from [`Postgres::password_file`].
const PASSWORD: &str = "fleet-test-password";
/// The database airlock ships to.
pub const DB: &str = "airlock";

#[derive(Debug)]
pub struct Postgres {
    /// The server's own files (owned by `nobody`).
    dir: PathBuf,
    /// The clients' files: root's, as an operator keeps them.
    client_dir: PathBuf,
    port: u16,
    ca: PathBuf,
    child: Option<Child>,
}

/// One of PostgreSQL's programs, of the newest version installed.
fn bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (apt-get install postgresql)")
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .unwrap_or_else(|| panic!("no {name} under /usr/lib/postgresql"))
}

fn as_nobody(program: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(program);
    cmd
}

fn chown_nobody(path: &Path) {
    std::os::unix::fs::chown(path, Some(65534), Some(65534)).expect("chown to nobody");
}

impl Postgres {
    /// Initialises a cluster in `dir/pg` and starts it.
    pub fn start(test_dir: &Path, pki: &TestPki) -> Self {
        let client_dir = test_dir.join("pg-client");
        std::fs::create_dir_all(&client_dir).unwrap();
        std::fs::write(client_dir.join("password"), PASSWORD).unwrap();
        std::fs::set_permissions(
            client_dir.join("password"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let dir = test_dir.join("pg");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        chown_nobody(&dir);
        let data = dir.join("data");
        let pw = dir.join("password");
        std::fs::write(&pw, PASSWORD).unwrap();
        chown_nobody(&pw);
        let out = as_nobody(&bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                OWNER,
                "-E",
                "UTF8",
                "--no-locale",
                "--auth=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pw.display()))
            .output()
            .expect("initdb");
        assert!(out.status.success(), "initdb: {out:?}");
        let (crt, key) = pki.write_leaf(&dir, &["localhost"]);
        for f in [&crt, &key] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
            chown_nobody(f);
        }
        // TLS only, from loopback; the unix socket for the owner's setup.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        let mut pg = Self {
            port: crate::daemon::free_port("127.0.0.1"),
            ca: pki.write_ca(&client_dir),
            dir,
            client_dir,
            child: None,
        };
        pg.resume();
        let out = pg.psql(OWNER, "postgres", &format!("CREATE DATABASE {DB}"));
        assert!(out.status.success(), "create database: {out:?}");
        pg
    }

    /// Starts the server again (after [`Postgres::crash`]); waits until it
    /// takes connections.
    pub fn resume(&mut self) {
        let data = self.dir.join("data");
        let child = as_nobody(&bin("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "ssl=on"])
            .arg("-c")
            .arg(format!(
                "ssl_cert_file={}",
                self.dir.join("server.crt").display()
            ))
            .arg("-c")
            .arg(format!(
                "ssl_key_file={}",
                self.dir.join("server.key").display()
            ))
            .args(["-c", "fsync=off", "-c", "log_min_messages=fatal"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + crate::WAIT;
        loop {
            let ready = Command::new(bin("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "postgres never became ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server as a crash would (immediate shutdown: no
    /// checkpoint, clients cut off); [`Postgres::resume`] recovers it.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::daemon::signal(child.id(), "QUIT");
            let _ = child.wait();
        }
    }

    /// The URL airlock's `fleet.postgres` takes for `role`.
    pub fn url(&self, role: &str) -> String {
        format!(
            "postgresql://{role}@localhost:{}/{DB}?hostaddr=127.0.0.1&sslrootcert={}",
            self.port,
            self.ca.display()
        )
    }

    /// The CA that signed the server's certificate.
    pub fn ca(&self) -> &Path {
        &self.ca
    }

    /// Where every role's password is (for `fleet.password_file`).
    pub fn password_file(&self) -> PathBuf {
        self.client_dir.join("password")
    }

    /// `[fleet]` for `role`.
    pub fn fleet_section(&self, role: &str) -> String {
        format!(
            "[fleet]\npostgres = {:?}\npassword_file = {:?}\n",
            self.url(role),
            self.password_file()
        )
    }

    /// Makes a login role in `group` (airlock_host or airlock_reader).
    pub fn role(&self, name: &str, group: &str) {
        let out = self.sql(
            OWNER,
            &format!("CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}' IN ROLE {group}"),
        );
        assert!(out.status.success(), "create role {name}: {out:?}");
    }

    /// Runs `sql` in the airlock database as `role` over verified TLS;
    /// rows come out unaligned, one per line.
    pub fn sql(&self, role: &str, sql: &str) -> Output {
        self.psql(role, DB, sql)
    }

    fn psql(&self, role: &str, db: &str, sql: &str) -> Output {
        let conn = format!(
            "host=localhost hostaddr=127.0.0.1 port={} user={role} dbname={db} sslmode=verify-full sslrootcert={}",
            self.port,
            self.ca.display()
        );
        Command::new(bin("psql"))
            .args([
                &conn,
                "-v",
                "ON_ERROR_STOP=1",
                "-X",
                "-q",
                "-A",
                "-t",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("psql")
    }

    /// `sql`'s single value as `role`, which must succeed.
    pub fn value(&self, role: &str, sql: &str) -> String {
        let out = self.sql(role, sql);
        assert!(out.status.success(), "{sql}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.crash();
    }
}
