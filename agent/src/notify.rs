//! systemd readiness (`Type=notify`): `READY=1` once programs are attached
//! and the proxy is listening, `STOPPING=1` when draining starts. A no-op
//! outside systemd (no `NOTIFY_SOCKET`).

use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;

/// Sends `state` to the service manager, if there is one. Failures are
/// logged, never fatal: airlock works the same without systemd.
pub(crate) fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_to(&path, state) {
        tracing::warn!(error = %e, socket = ?path, state, "could not notify systemd");
    }
}

/// One datagram to `path`; `@name` is a Linux abstract socket (systemd's
/// usual choice).
fn send_to(path: &OsStr, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    match path.as_encoded_bytes().strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        }
        None => {
            sock.send_to(state.as_bytes(), path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn states_reach_the_notify_socket() {
        let dir = crate::scratch_dir("notify");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let server = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        super::send_to(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 16];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("airlock-notify-test-{}", std::process::id());
        use std::os::linux::net::SocketAddrExt;
        let abstract_addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let server = std::os::unix::net::UnixDatagram::bind_addr(&abstract_addr).unwrap();
        super::send_to(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
