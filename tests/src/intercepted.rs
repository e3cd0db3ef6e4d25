//! The setup most interception tests share: an HTTPS upstream for some
//! host names (its own CA, HTTP/2 and HTTP/1.1), and an in-process airlock
//! that trusts that CA and captures the upstream's port in a fresh cgroup.

use airlock::Config;

use crate::{Running, TempDir, TestCgroup, TestPki, TlsUpstream};

#[derive(Debug)]
pub struct Intercepted {
    pub cg: TestCgroup,
    pub up: TlsUpstream,
    pub airlock: Running,
    /// Holds the upstream CA's file; removed with the test.
    pub tmp: TempDir,
}

impl Intercepted {
    /// `adjust` changes airlock's config further (approvers, intercept
    /// list…) after the upstream CA is trusted.
    pub async fn start(tag: &str, names: &[&str], adjust: impl FnOnce(&mut Config)) -> Self {
        let tmp = TempDir::new(tag);
        let pki = TestPki::new(&format!("{tag} upstream CA"));
        let up = TlsUpstream::start(
            pki.server_config(names, &[b"h2", b"http/1.1"]),
            &["127.0.0.1:0".parse().unwrap()],
        )
        .await;
        let roots = pki.write_ca(tmp.path());
        let cg = TestCgroup::new(tag);
        let airlock = Running::start_with(Running::capture(&cg, &[up.port()]), |c| {
            c.tls.upstream_roots = vec![roots];
            adjust(c);
        })
        .await;
        Self {
            cg,
            up,
            airlock,
            tmp,
        }
    }
}
