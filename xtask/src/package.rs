//! `cargo xtask package`: airlock as a Debian package, for Debian/Ubuntu
//! hosts: the binary stripped (its debug info split out beside the
//! package, linked by `.gnu_debuglink`), the systemd unit, the default
//! config and the shipped policies under `/etc/airlock` (conffiles: an
//! upgrade keeps the operator's edits), and the docs. `check` installs it,
//! runs it as an operator would, and purges it (part of `cargo xtask test`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::{run, workspace_root};

/// What the package is made of: (source in the workspace, path on the host).
const FILES: &[(&str, &str)] = &[
    ("README.md", "usr/share/doc/airlock/README.md"),
    ("ARCHITECTURE.md", "usr/share/doc/airlock/ARCHITECTURE.md"),
    ("policies/README.md", "usr/share/doc/airlock/policies.md"),
    (
        "packaging/airlock.toml.example",
        "usr/share/doc/airlock/airlock.toml.example",
    ),
];

/// Where the installed binary lives (the unit in the repository says
/// `/usr/local/bin`, for a hand install).
const BIN: &str = "usr/bin/airlock";
const UNIT: &str = "lib/systemd/system/airlock.service";
const CONFIG: &str = "etc/airlock/airlock.toml";
const POLICIES: &str = "etc/airlock/policies";

/// Builds `target/package/airlock_<version>_<arch>.deb` from the release
/// binary `bin`; returns its path.
pub(crate) fn package(bin: &Path) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let version = version(&root)?;
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    let out = crate::target_dir().join("package");
    let name = format!("airlock_{version}_{arch}");
    let stage = out.join(&name);
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    let place = |rel: &str, text: &[u8], mode: u32| -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let path = stage.join(rel);
        std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
        std::fs::write(&path, text).with_context(|| path.display().to_string())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    };

    // The binary, stripped; its debug info in a file of its own.
    let debug = out.join(format!("{name}.debug"));
    let stripped = stage.join(BIN);
    std::fs::create_dir_all(stripped.parent().expect("usr/bin"))?;
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(bin)
        .arg(&debug))?;
    run(Command::new("objcopy")
        .args(["--strip-debug", "--strip-unneeded"])
        .arg(format!("--add-gnu-debuglink={}", debug.display()))
        .arg(bin)
        .arg(&stripped))?;

    let unit = std::fs::read_to_string(root.join("packaging/airlock.service"))?
        .replace("/usr/local/bin/airlock", "/usr/bin/airlock")
        .replace(
            "file:///usr/local/share/doc/airlock/README.md",
            "file:///usr/share/doc/airlock/README.md",
        );
    place(UNIT, unit.as_bytes(), 0o644)?;
    // The shipped policies, where the default config points.
    let config = std::fs::read_to_string(root.join("packaging/airlock.toml.example"))?.replace(
        "# dir = \"/etc/airlock/policies\"",
        "dir = \"/etc/airlock/policies\"",
    );
    if !config.contains("\ndir = \"/etc/airlock/policies\"") {
        bail!("packaging/airlock.toml.example no longer has the policy dir line to enable");
    }
    place(CONFIG, config.as_bytes(), 0o644)?;
    let mut conffiles = vec![format!("/{CONFIG}")];
    let mut policies: Vec<PathBuf> = std::fs::read_dir(root.join("policies"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    policies.sort();
    for p in policies
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
    {
        let file = p.file_name().expect("a file").to_string_lossy();
        let rel = format!("{POLICIES}/{file}");
        place(&rel, &std::fs::read(p)?, 0o644)?;
        conffiles.push(format!("/{rel}"));
    }
    for (from, to) in FILES {
        place(to, &std::fs::read(root.join(from))?, 0o644)?;
    }
    // The docs with their pictures (docs/console/*.png), as in the tree.
    let docs = root.join("docs");
    let mut pending = vec![docs.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let rel = path.strip_prefix(&docs)?.to_string_lossy().into_owned();
            place(
                &format!("usr/share/doc/airlock/docs/{rel}"),
                &std::fs::read(&path)?,
                0o644,
            )?;
        }
    }
    place(
        "usr/share/doc/airlock/copyright",
        b"airlock\nSee README.md for what it is and how to run it.\n",
        0o644,
    )?;

    let size_kib = dir_size(&stage)? / 1024;
    let control = format!(
        "Package: airlock\nVersion: {version}\nArchitecture: {arch}\nMaintainer: airlock developers <airlock@localhost>\n\
         Section: admin\nPriority: optional\nDepends: libc6\nRecommends: ca-certificates\nInstalled-Size: {size_kib}\n\
         Description: audited, policy-governed egress for AI coding agents\n \
         An eBPF program redirects the outbound connections of an agent's processes to a\n \
         local proxy that decrypts, checks identity and policy, holds risky operations for\n \
         a human, masks secrets and writes a tamper-evident trail of every call to Azure.\n"
    );
    place("DEBIAN/control", control.as_bytes(), 0o644)?;
    place(
        "DEBIAN/conffiles",
        format!("{}\n", conffiles.join("\n")).as_bytes(),
        0o644,
    )?;
    // Installed, not started: with the default config airlock captures the
    // whole host, which the operator decides (README, "Install on a host").
    let systemd_reload = "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n";
    place("DEBIAN/postinst", systemd_reload.as_bytes(), 0o755)?;
    place("DEBIAN/postrm", systemd_reload.as_bytes(), 0o755)?;

    let deb = out.join(format!("{name}.deb"));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&stage)
        .arg(&deb))?;
    println!(
        "package: {} (debug info: {})",
        deb.display(),
        debug.display()
    );
    Ok(deb)
}

/// Installs `deb`, runs what an operator runs first, and purges it. A host
/// with airlock already installed by dpkg is left alone (skipped).
pub(crate) fn check(deb: &Path) -> anyhow::Result<()> {
    if Command::new("dpkg")
        .args(["-s", "airlock"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!("package check: skipped (an airlock package is installed on this host)");
        return Ok(());
    }
    let contents = output(Command::new("dpkg-deb").arg("--contents").arg(deb))?;
    for path in [
        BIN,
        UNIT,
        CONFIG,
        POLICIES,
        "usr/share/doc/airlock/README.md",
    ] {
        if !contents.contains(&format!("./{path}")) {
            bail!("the package has no /{path}");
        }
    }
    run(Command::new("dpkg").arg("-i").arg(deb))?;
    let checked = (|| -> anyhow::Result<()> {
        let bin = Path::new("/").join(BIN);
        let said = output(Command::new(&bin).arg("--version"))?;
        let version = version(&workspace_root())?;
        if !said.contains(&version) {
            bail!("airlock --version said {said:?}, not {version}");
        }
        let debug = output(
            Command::new("readelf")
                .args(["--string-dump=.gnu_debuglink"])
                .arg(&bin),
        )?;
        if !debug.contains(".debug")
            || output(Command::new("readelf").arg("-S").arg(&bin))?.contains(".debug_info")
        {
            bail!("the installed binary is not stripped with a debug link");
        }
        // The default config as installed, with the shipped policies.
        let checked = output(Command::new(&bin).args(["config", "check"]))?;
        if !checked.contains("/etc/airlock/policies") {
            bail!("config check did not use the installed policies:\n{checked}");
        }
        run(Command::new(&bin).args(["policy", "check", "/etc/airlock/policies"]))?;
        run(Command::new("systemd-analyze")
            .arg("verify")
            .arg(Path::new("/").join(UNIT)))?;
        Ok(())
    })();
    run(Command::new("dpkg").args(["--purge", "airlock"]))?;
    checked?;
    if Path::new("/").join(BIN).exists() || Path::new("/").join(CONFIG).exists() {
        bail!("purging the package left files behind");
    }
    println!(
        "package check: installed, ran --version, config check, policy check and systemd-analyze verify, purged"
    );
    Ok(())
}

/// The workspace's version (`[workspace.package] version`).
fn version(root: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(root.join("Cargo.toml"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .map(str::to_owned)
        .context("no version in Cargo.toml")
}

/// A command's standard output, trimmed; an error if it fails.
fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn dir_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
