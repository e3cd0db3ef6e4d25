//! Masking throughput on one core: runs the `mask_throughput` example
//! (release build, next to the airlock binary), which pushes 1 MiB bodies
//! through airlock's response masker in 16 KiB chunks.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use super::Plan;

/// One body kind: MB/s (none: airlock does not scan that content type)
/// and the secrets found per body.
pub(crate) struct MaskRate {
    pub(crate) case: String,
    pub(crate) mb_s: Option<f64>,
    pub(crate) findings: u64,
}

pub(crate) fn masking(airlock_bin: &Path, plan: Plan) -> anyhow::Result<Vec<MaskRate>> {
    let exe = airlock_bin
        .parent()
        .context("release dir")?
        .join("examples/mask_throughput");
    let (seconds, runs) = if plan.smoke { ("0.2", "1") } else { ("5", "5") };
    let out = Command::new(&exe)
        .args([seconds, runs])
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut rates = Vec::new();
    for line in String::from_utf8(out.stdout)?.lines() {
        let [case, rate, findings] = line.split('\t').collect::<Vec<_>>()[..] else {
            bail!("unexpected mask_throughput line {line:?}");
        };
        rates.push(MaskRate {
            case: case.to_owned(),
            mb_s: (rate != "not-scanned")
                .then(|| rate.parse())
                .transpose()
                .with_context(|| format!("rate in {line:?}"))?,
            findings: findings.parse()?,
        });
    }
    // The harness works only if the masker found what was planted, and
    // nothing where nothing was.
    for r in &rates {
        let planted = r.case.contains("with-secrets");
        if planted != (r.findings > 0) {
            bail!("masking bench: {} found {} secrets", r.case, r.findings);
        }
    }
    Ok(rates)
}
