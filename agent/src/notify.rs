//! systemd readiness (`Type=notify`): `READY=1` once programs are attached
//! and the proxy is listening, `STOPPING=1` when draining starts; while
//! running, `STATUS=` (what `systemctl status` shows) and, under
//! `WatchdogSec=`, `WATCHDOG=1` from the runtime that serves the proxy, so
//! a wedged airlock is restarted. A no-op outside systemd (no
//! `NOTIFY_SOCKET`).

use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// How often `STATUS=` is refreshed without a watchdog.
const STATUS_EVERY: Duration = Duration::from_secs(10);

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

/// Sends `STATUS=` lines (from `status`) until dropped, with `WATCHDOG=1`
/// at half the watchdog interval when systemd asks for one
/// (`WATCHDOG_USEC`, for this process by `WATCHDOG_PID`).
pub(crate) async fn heartbeat(status: impl Fn() -> String) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let watchdog = watchdog_interval(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
    );
    let mut tick = tokio::time::interval(watchdog.map_or(STATUS_EVERY, |w| w.min(STATUS_EVERY)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let status = status().replace('\n', " ");
        let ping = if watchdog.is_some() {
            "WATCHDOG=1\n"
        } else {
            ""
        };
        notify(&format!("{ping}STATUS={status}"));
    }
}

/// Half the interval systemd expects pings within, if it expects them
/// from this process.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>) -> Option<Duration> {
    if pid.is_some_and(|p| p.parse() != Ok(std::process::id())) {
        return None;
    }
    let usec: u64 = usec?.parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(usec / 2))
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
    use std::time::Duration;

    #[test]
    fn the_watchdog_is_pinged_at_half_its_interval_and_only_for_us() {
        let me = std::process::id().to_string();
        let half = |u, p| super::watchdog_interval(u, p);
        assert_eq!(half(Some("30000000"), None), Some(Duration::from_secs(15)));
        assert_eq!(
            half(Some("30000000"), Some(&me)),
            Some(Duration::from_secs(15))
        );
        assert_eq!(half(Some("30000000"), Some("1")), None);
        assert_eq!(half(Some("0"), None), None);
        assert_eq!(half(None, None), None);
    }

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
