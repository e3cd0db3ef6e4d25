//! A real rsyslogd (Debian's `rsyslog`, with `rsyslog-relp` and
//! `rsyslog-gnutls`), run in the foreground by a test in its own
//! directory with one input on a free loopback port — RELP, or TCP with
//! TLS from a test CA — writing every airlock message to a file as its
//! structured data and MSG. Its main queue is direct: a message is
//! written before rsyslog answers it, so killing it loses nothing it
//! answered. Killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;

use crate::pki::TestPki;

/// What rsyslog listens with.
#[derive(Clone, Copy, Debug)]
pub enum Input {
    /// `imrelp`.
    Relp,
    /// `imtcp` with TLS (GnuTLS), a certificate for 127.0.0.1.
    Tls,
}

#[derive(Debug)]
pub struct Rsyslog {
    dir: PathBuf,
    input: Input,
    port: u16,
    child: Option<Child>,
}

/// One message as received.
#[derive(Debug)]
pub struct Received {
    pub trail: String,
    pub seq: u64,
    /// MSG, the record as JSON.
    pub record: Value,
}

impl Rsyslog {
    /// Configures rsyslog in `dir/rsyslog` and starts it.
    pub fn start(test_dir: &Path, input: Input, pki: &TestPki) -> Self {
        let dir = test_dir.join("rsyslog");
        std::fs::create_dir_all(dir.join("work")).unwrap();
        let port = crate::daemon::free_port("127.0.0.1");
        let (global, listen) = match input {
            Input::Relp => (
                String::new(),
                format!(
                    "module(load=\"imrelp\")\ninput(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\" maxDataSize=\"64k\")\n"
                ),
            ),
            Input::Tls => {
                let (crt, key) = pki.write_leaf(&dir, &["127.0.0.1"]);
                let ca = pki.write_ca(&dir);
                (
                    format!(
                        " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"{}\" defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\"",
                        ca.display(),
                        crt.display(),
                        key.display()
                    ),
                    format!(
                        "module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n"
                    ),
                )
            }
        };
        let conf = format!(
            "global(workDirectory=\"{work}\" maxMessageSize=\"64k\"{global})\n\
             main_queue(queue.type=\"Direct\")\n\
             {listen}\
             template(name=\"sd_msg\" type=\"string\" string=\"%structured-data% %msg%\\n\")\n\
             if $app-name == \"airlock\" then action(type=\"omfile\" file=\"{out}\" template=\"sd_msg\" asyncWriting=\"off\" flushOnTXEnd=\"on\")\n",
            work = dir.join("work").display(),
            out = dir.join("received.log").display(),
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
        let mut r = Self {
            dir,
            input,
            port,
            child: None,
        };
        r.resume();
        r
    }

    /// The `export.syslog.target` that reaches it.
    pub fn target(&self) -> String {
        match self.input {
            Input::Relp => format!("relp://127.0.0.1:{}", self.port),
            Input::Tls => format!("tcp+tls://127.0.0.1:{}", self.port),
        }
    }

    /// The CA its certificate chains to.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Starts it (again); waits until it listens.
    pub fn resume(&mut self) {
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("rsyslogd is installed (apt-get install rsyslog rsyslog-relp rsyslog-gnutls)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + crate::WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "rsyslogd never listened on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it (SIGKILL: no flush, connections reset).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every airlock message written so far.
    pub fn received(&self) -> Vec<Received> {
        let text = std::fs::read_to_string(self.dir.join("received.log")).unwrap_or_default();
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|line| {
                let (sd, msg) = line
                    .split_once("\"] ")
                    .unwrap_or_else(|| panic!("not SD and MSG: {line}"));
                let param = |name: &str| {
                    let start = sd
                        .find(&format!(" {name}=\""))
                        .unwrap_or_else(|| panic!("{name} in {sd}"))
                        + name.len()
                        + 3;
                    sd[start..].split('"').next().unwrap().to_owned()
                };
                assert!(sd.starts_with("[airlock@32473 "), "{sd}");
                Received {
                    trail: param("trail"),
                    seq: param("seq").parse().unwrap(),
                    record: serde_json::from_str(msg)
                        .unwrap_or_else(|e| panic!("MSG is not JSON ({e}): {msg}")),
                }
            })
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}
