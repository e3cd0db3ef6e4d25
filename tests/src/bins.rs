//! Helper binaries built from this crate, run by tests as real (capturable)
//! processes.

use std::path::PathBuf;

/// Path of the built `ws-client`: `$WS_CLIENT_BIN`, else next to this test
/// executable's `deps/` directory. Integration tests of this crate can use
/// `env!("CARGO_BIN_EXE_ws-client")` instead (cargo builds it first); this is
/// for callers compiled without that variable.
pub fn ws_client_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WS_CLIENT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("ws-client");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build -p airlock-tests --bin ws-client`, or set WS_CLIENT_BIN",
        bin.display()
    );
    bin
}
