//! Compiles the C eBPF programs with clang (`-target bpf`) and, for the
//! layout tests, builds and runs a host program that prints the C structs'
//! sizes and offsets.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCES: &[&str] = &["bpf/capture.bpf.c", "bpf/airlock.h", "bpf/layout.c"];

fn main() {
    for s in SOURCES {
        println!("cargo:rerun-if-changed={s}");
    }
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("target arch");
    // Debian keeps <asm/types.h> under the multiarch directory.
    let multiarch = format!("/usr/include/{arch}-linux-gnu");

    let obj = out.join("capture.bpf.o");
    run(
        Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .arg(format!("-I{multiarch}"))
            .args(["-c", "bpf/capture.bpf.c", "-o"])
            .arg(&obj),
        &clang,
    );

    let layout_bin = out.join("layout");
    run(
        Command::new(&clang)
            .args(["-O0", "-Wall", "-Werror", "bpf/layout.c", "-o"])
            .arg(&layout_bin),
        &clang,
    );
    let printed = Command::new(&layout_bin)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", layout_bin.display()));
    assert!(printed.status.success(), "layout program failed");
    std::fs::write(out.join("layout.rs"), printed.stdout).expect("write layout.rs");
}

fn run(cmd: &mut Command, clang: &str) {
    let status = cmd.status().unwrap_or_else(|e| {
        panic!(
            "cannot run `{clang}`: {e}\n\
             airlock's eBPF programs are C built with clang; install it with \
             `apt-get install -y clang libbpf-dev` (or set CLANG=/path/to/clang)"
        )
    });
    if !status.success() {
        let hint = if Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
            ""
        } else {
            " (libbpf headers missing: apt-get install -y libbpf-dev)"
        };
        panic!("{clang} failed with {status}{hint}");
    }
}
