//! Running the reference Nix tools from the store's integration tests.

#![allow(dead_code)]

use std::process::Command;

/// Runs a reference Nix tool and returns its stdout; fails the test clearly if the tool
/// is missing or fails.
pub fn run_nix(tool: &str, args: &[&str], needs_store: bool) -> Vec<u8> {
    let mut cmd = Command::new(tool);
    cmd.args(args);
    if !needs_store {
        cmd.env("NIX_REMOTE", "dummy://");
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "reference tool '{tool}' not found in PATH: install Nix (Debian package nix-bin) \
             to run the differential tests"
        ),
        Err(e) => panic!("cannot run reference tool '{tool}': {e}"),
    };
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn run_nix_str(tool: &str, args: &[&str], needs_store: bool) -> String {
    String::from_utf8(run_nix(tool, args, needs_store))
        .expect("reference output is UTF-8")
        .trim()
        .to_string()
}
