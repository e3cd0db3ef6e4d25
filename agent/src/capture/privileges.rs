//! Whether this process may load and attach the programs, checked up front
//! so a missing capability is one clear sentence, not a verifier dump.

use super::CaptureError;
use crate::confine::{CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, CAP_SYS_ADMIN, capability_set};

/// Ok if the effective capabilities allow loading cgroup programs (root, or
/// CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON, with CAP_SYS_ADMIN standing in for
/// both BPF and PERFMON on kernels before 5.8).
pub(super) fn check() -> Result<(), CaptureError> {
    let status =
        std::fs::read_to_string("/proc/self/status").map_err(|io_error| CaptureError::Io {
            what: "read /proc/self/status",
            io_error,
        })?;
    let cap_eff = capability_set(&status, "CapEff");
    let has = |cap: u32| cap_eff & (1u64 << cap) != 0;
    let bpf = has(CAP_BPF) || has(CAP_SYS_ADMIN);
    let perfmon = has(CAP_PERFMON) || has(CAP_SYS_ADMIN);
    if bpf && perfmon && has(CAP_NET_ADMIN) {
        return Ok(());
    }
    let missing: Vec<&str> = [
        (!bpf).then_some("CAP_BPF"),
        (!perfmon).then_some("CAP_PERFMON"),
        (!has(CAP_NET_ADMIN)).then_some("CAP_NET_ADMIN"),
    ]
    .into_iter()
    .flatten()
    .collect();
    Err(CaptureError::NotPermitted(missing.join(", ")))
}
