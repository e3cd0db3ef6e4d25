//! A container's network that airlock made (the demo's, the tests'): a
//! network namespace joined by a veth pair to a bridge in the host's, the
//! bridge holding the gateway address, as Docker's `docker0` does. Made
//! with `ip` (iproute2); removed on drop.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::CaptureError;
use super::cgroup::OwnedCgroup;

/// A network namespace at `addr`/24 behind a bridge at `gateway`.
#[derive(Debug)]
pub struct ContainerNetwork {
    ns: String,
    bridge: String,
    veth: String,
    gateway: Ipv4Addr,
    addr: Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<(), CaptureError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|io_error| CaptureError::Io {
            what: "run ip (iproute2)",
            io_error,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(CaptureError::Network(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl ContainerNetwork {
    /// Makes one, named and numbered after this process and call
    /// (interface names: at most 15 bytes), in 10.213.0.0/16.
    pub fn create() -> Result<Self, CaptureError> {
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
        // Dropped on any failure below: what was made is removed.
        let inner = format!("alk{id}c");
        let (gw, addr) = (format!("{}/24", net.gateway), format!("{}/24", net.addr));
        let gateway = net.gateway.to_string();
        ip(&["netns", "add", &net.ns])?;
        ip(&["link", "add", &net.bridge, "type", "bridge"])?;
        ip(&["addr", "add", &gw, "dev", &net.bridge])?;
        ip(&["link", "set", &net.bridge, "up"])?;
        ip(&[
            "link", "add", &net.veth, "type", "veth", "peer", "name", &inner,
        ])?;
        ip(&["link", "set", &net.veth, "master", &net.bridge, "up"])?;
        ip(&["link", "set", &inner, "netns", &net.ns])?;
        ip(&["-n", &net.ns, "addr", "add", &addr, "dev", &inner])?;
        ip(&["-n", &net.ns, "link", "set", &inner, "up"])?;
        ip(&["-n", &net.ns, "link", "set", "lo", "up"])?;
        ip(&["-n", &net.ns, "route", "add", "default", "via", &gateway])?;
        Ok(net)
    }

    /// The bridge's address in the host's namespace.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The namespace's own address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// `program` in cgroup `cg` and this namespace, as `uid` (no
    /// supplementary groups); add its arguments to the returned command.
    pub fn command(&self, cg: &OwnedCgroup, uid: u32, program: &str) -> tokio::process::Command {
        let mut cmd = cg.command("ip");
        cmd.args(["netns", "exec", &self.ns, "setpriv"])
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .args(["--clear-groups", program]);
        cmd
    }
}

impl Drop for ContainerNetwork {
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
