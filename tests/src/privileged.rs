//! Gate for tests that need root, BPF and cgroup v2.

/// True when this test can attach eBPF programs here. Otherwise the test
/// is skipped with a message, or fails when `AIRLOCK_REQUIRE_PRIVILEGED=1`
/// (CI sets it) so a privileged suite can never pass by not running.
pub fn privileged(test: &str) -> bool {
    let reason = if !is_root() {
        Some("not running as root")
    } else if airlock::cgroup2_mount().is_err() {
        Some("no cgroup2 mount")
    } else if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        Some("kernel has no BTF (/sys/kernel/btf/vmlinux)")
    } else {
        None
    };
    let Some(reason) = reason else { return true };
    if std::env::var("AIRLOCK_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("{test}: cannot run ({reason}) and AIRLOCK_REQUIRE_PRIVILEGED=1");
    }
    eprintln!("SKIPPED {test}: {reason} (set AIRLOCK_REQUIRE_PRIVILEGED=1 to make this fail)");
    false
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
