//! `tvix store` end to end: import/export against `nix-store --add` / `--dump`, `cat`,
//! `ls`, `info`, `verify` catching a flipped byte in a chunk file, and two processes
//! importing the same tree into one local store at once.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

fn tvix(store: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tvix"))
        .arg("store")
        .args(["--store", store])
        .args(args)
        .env_remove("TVIX_STORE")
        .output()
        .expect("run tvix")
}

fn ok(out: Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "tvix failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn make_tree(root: &Path) {
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

fn nix(args: &[&str], needs_store: bool) -> Vec<u8> {
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

fn check_url(url: &str, tree: &Path) {
    let t = tree.to_str().unwrap();
    let f = tree.join("sub/deeper/file");
    let f = f.to_str().unwrap();
    let ours = String::from_utf8(ok(tvix(url, &["import", t, f]))).unwrap();
    let theirs = String::from_utf8(nix(&["nix-store", "--add", t, f], true)).unwrap();
    assert_eq!(ours, theirs);
    let sp = ours.lines().next().unwrap().to_string();
    if url == "memory://" {
        // A memory store forgets everything when the process exits.
        assert!(!tvix(url, &["export", &sp]).status.success());
        return;
    }
    assert!(ok(tvix(url, &["export", &sp])) == nix(&["nix-store", "--dump", t], false));
    let sub = format!("{sp}/sub");
    assert!(
        ok(tvix(url, &["export", &sub]))
            == nix(&["nix-store", "--dump", &format!("{t}/sub")], false)
    );
    assert_eq!(
        ok(tvix(url, &["cat", &format!("{sp}/sub/deeper/file")])),
        b"contents\n"
    );
    let ls = String::from_utf8(ok(tvix(url, &["ls", &sp]))).unwrap();
    assert!(ls.contains(" link -> sub/run"), "{ls}");
    assert!(ls.contains("-r--r--r--               700001 big"), "{ls}");
    let info = String::from_utf8(ok(tvix(url, &["info", &sp]))).unwrap();
    let hash =
        String::from_utf8(nix(&["nix-hash", "--type", "sha256", "--base32", t], false)).unwrap();
    assert!(
        info.contains(&format!("NarHash: sha256:{}", hash.trim())),
        "{info}"
    );
    assert!(!tvix(url, &["cat", &format!("{sp}/nope")]).status.success());
    assert!(!tvix(url, &["cat", &format!("{sp}/sub")]).status.success());
    ok(tvix(url, &["verify"]));
}

#[test]
fn import_export_match_nix() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    check_url("memory://", &tree);
    check_url(
        &format!("local://{}", dir.path().join("store").display()),
        &tree,
    );
}

#[test]
fn verify_reports_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let store_dir = dir.path().join("store");
    let url = format!("local://{}", store_dir.display());
    let sp = String::from_utf8(ok(tvix(&url, &["import", tree.to_str().unwrap()]))).unwrap();
    let sp = sp.trim();
    ok(tvix(&url, &["verify"]));
    // Flip one byte in the largest chunk file (part of "big").
    let mut files = Vec::new();
    for sub in fs::read_dir(store_dir.join("chunks")).unwrap() {
        for f in fs::read_dir(sub.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            files.push((fs::metadata(&p).unwrap().len(), p));
        }
    }
    files.sort();
    let victim = &files.last().unwrap().1;
    let mut b = fs::read(victim).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    fs::write(victim, b).unwrap();
    let out = tvix(&url, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is corrupt"), "{err}");
    // Reading through the corrupt chunk fails instead of returning bad bytes.
    let out = tvix(&url, &["cat", &format!("{sp}/big")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is corrupt"));
    assert!(!tvix(&url, &["export", sp]).status.success());
}

#[test]
fn concurrent_imports_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    for i in 0..50 {
        fs::write(tree.join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }
    let url = format!("local://{}", dir.path().join("store").display());
    let t = tree.to_str().unwrap();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_tvix"))
            .args(["store", "--store", &url, "import", t])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children: Vec<_> = (0..3).map(|_| spawn()).collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let expected = String::from_utf8(nix(&["nix-store", "--add", t], true)).unwrap();
    for o in outs {
        assert_eq!(String::from_utf8(ok(o)).unwrap(), expected);
    }
    ok(tvix(&url, &["verify"]));
    assert!(
        ok(tvix(&url, &["export", expected.trim()])) == nix(&["nix-store", "--dump", t], false)
    );
}
