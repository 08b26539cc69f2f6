//! The `tvix store` CLI suites' shared pieces: running `tvix store` and the reference
//! `nix-store`, and the tree both import.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

/// `tvix store --store STORE ARGS`.
pub fn tvix(store: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tvix"))
        .arg("store")
        .args(["--store", store])
        .args(args)
        .env_remove("TVIX_STORE")
        .output()
        .expect("run tvix")
}

/// The standard output of a `tvix` run that must succeed.
pub fn ok(out: Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "tvix failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs a reference Nix tool that must succeed (without a Nix store unless `needs_store`).
pub fn nix(args: &[&str], needs_store: bool) -> Vec<u8> {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]);
    if !needs_store {
        c.env("NIX_REMOTE", "dummy://");
    }
    let out = c
        .output()
        .expect("reference nix tools (nix-bin) are installed");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A small tree with every kind of entry the NAR format has: nested and empty directories,
/// an empty file, a non-ASCII name, an executable, a symlink and a 700 kB file.
pub fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::create_dir(root.join("empty")).unwrap();
    fs::write(root.join("sub/deeper/file"), b"contents\n").unwrap();
    fs::write(root.join("zero"), b"").unwrap();
    fs::write(root.join("ünï"), "ünï".as_bytes()).unwrap();
    let exe = root.join("sub/run");
    fs::write(&exe, b"#!/bin/sh\n").unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    symlink("sub/run", root.join("link")).unwrap();
    let big: Vec<u8> = (0..700_001u32).map(|i| (i * 31 % 253) as u8).collect();
    fs::write(root.join("big"), big).unwrap();
}
