//! `cargo xtask fuzz [--seconds N] [TARGET…]`: every fuzz target (or the
//! ones named) under cargo-fuzz on nightly, with AddressSanitizer, for N
//! seconds each (default 60). The committed corpus (`fuzz/corpus/{t}`)
//! seeds a scratch corpus in `target/fuzz-corpus/{t}`, where new inputs
//! go, so the committed one stays small. A crash stops the run and names
//! the input (`fuzz/artifacts/{t}/…`): once fixed, copy it into
//! `fuzz/corpus/{t}/` so the stable replay test keeps it fixed. Not part
//! of CI (sanitizer builds take minutes); the replay test is.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// The targets, as `fuzz/Cargo.toml` lists them.
fn targets(root: &Path) -> anyhow::Result<Vec<String>> {
    let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml"))?;
    Ok(manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "airlock-fuzz")
        .map(str::to_owned)
        .collect())
}

pub(crate) fn fuzz(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut seconds = 60u64;
    let mut chosen = Vec::new();
    let mut args = args.iter();
    while let Some(a) = args.next() {
        if a == "--seconds" {
            seconds = args
                .next()
                .and_then(|s| s.parse().ok())
                .context("--seconds takes a number")?;
        } else {
            chosen.push(a.clone());
        }
    }
    let all = targets(root)?;
    for c in &chosen {
        if !all.contains(c) {
            bail!("no fuzz target {c:?}: {}", all.join(", "));
        }
    }
    let run: Vec<String> = if chosen.is_empty() { all } else { chosen };
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        crate::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    for t in &run {
        let scratch = root.join("target/fuzz-corpus").join(t);
        std::fs::create_dir_all(&scratch)?;
        let committed = root.join("fuzz/corpus").join(t);
        crate::run(
            Command::new("cargo")
                .args(["+nightly", "fuzz", "run", "--fuzz-dir", "fuzz", t])
                .arg(&scratch)
                .arg(&committed)
                .arg("--")
                .arg(format!("-max_total_time={seconds}"))
                .args(["-timeout=10", "-rss_limit_mb=4096"]),
        )
        .with_context(|| {
            format!("fuzz target {t} found a crash: fix it, then copy the input from fuzz/artifacts/{t}/ into fuzz/corpus/{t}/")
        })?;
    }
    eprintln!(
        "xtask: {} fuzz target(s), {seconds} s each: no crash",
        run.len()
    );
    Ok(())
}
