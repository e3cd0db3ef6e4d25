//! `cargo xtask soak [--minutes N]`: the soak test (`tests/tests/soak.rs`)
//! for N minutes of traffic (default 10) instead of the 20 seconds it runs
//! in every test run: mixed traffic from many captured processes, then an
//! exact reconciliation of what the upstream received against the trail,
//! memory and descriptors flat, kernel maps drained. Root (eBPF).

use std::process::Command;

use anyhow::Context;

pub(crate) fn soak(args: &[String]) -> anyhow::Result<()> {
    let minutes: u64 = match args {
        [] => 10,
        [flag, n] if flag == "--minutes" => n.parse().context("--minutes takes a number")?,
        _ => anyhow::bail!("usage: cargo xtask soak [--minutes N]"),
    };
    crate::ensure_packages(crate::PACKAGES)?;
    crate::run(
        Command::new("cargo")
            .args([
                "test",
                "-p",
                "airlock-tests",
                "--test",
                "soak",
                "--",
                "--nocapture",
            ])
            .env("AIRLOCK_SOAK_SECONDS", (minutes * 60).to_string())
            .env("AIRLOCK_REQUIRE_PRIVILEGED", "1"),
    )
}
