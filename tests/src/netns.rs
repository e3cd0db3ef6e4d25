//! A container's network, made by the test: a network namespace joined by
//! a veth pair to a bridge in the host's, the bridge holding the gateway
//! address (as Docker's `docker0` does). Removed on drop.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::TestCgroup;

/// A network namespace `addr`/24 behind a bridge at `gateway`.
#[derive(Debug)]
pub struct ContainerNet {
    ns: String,
    bridge: String,
    veth: String,
    pub gateway: Ipv4Addr,
    pub addr: Ipv4Addr,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl ContainerNet {
    /// Names and a subnet unique to this test process and call (interface
    /// names: at most 15 bytes).
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % 10;
        let id = (std::process::id() % 100_000) * 10 + n;
        let subnet = (id % 250) as u8 + 1;
        let net = Self {
            ns: format!("alk{id}"),
            bridge: format!("alk{id}br"),
            veth: format!("alk{id}h"),
            gateway: Ipv4Addr::new(10, 213, subnet, 1),
            addr: Ipv4Addr::new(10, 213, subnet, 2),
        };
        let inner = format!("alk{id}c");
        let (gw, addr) = (format!("{}/24", net.gateway), format!("{}/24", net.addr));
        ip(&["netns", "add", &net.ns]);
        ip(&["link", "add", &net.bridge, "type", "bridge"]);
        ip(&["addr", "add", &gw, "dev", &net.bridge]);
        ip(&["link", "set", &net.bridge, "up"]);
        ip(&[
            "link", "add", &net.veth, "type", "veth", "peer", "name", &inner,
        ]);
        ip(&["link", "set", &net.veth, "master", &net.bridge, "up"]);
        ip(&["link", "set", &inner, "netns", &net.ns]);
        ip(&["-n", &net.ns, "addr", "add", &addr, "dev", &inner]);
        ip(&["-n", &net.ns, "link", "set", &inner, "up"]);
        ip(&["-n", &net.ns, "link", "set", "lo", "up"]);
        let gateway = net.gateway.to_string();
        ip(&["-n", &net.ns, "route", "add", "default", "via", &gateway]);
        net
    }

    /// `program` in cgroup `cg` and this namespace, as `uid` (no groups).
    pub fn command(&self, cg: &TestCgroup, uid: u32, program: &str) -> tokio::process::Command {
        let mut cmd = cg.command("ip");
        cmd.args(["netns", "exec", &self.ns, "setpriv"])
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .args(["--clear-groups", program]);
        cmd
    }
}

impl Default for ContainerNet {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ContainerNet {
    fn drop(&mut self) {
        // Deleting the namespace takes the veth pair with it; the host's
        // end is deleted too in case it never moved there.
        for args in [
            ["netns", "del", &self.ns],
            ["link", "del", &self.veth],
            ["link", "del", &self.bridge],
        ] {
            let _ = Command::new("ip")
                .args(args)
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}
