//! The fetchers against the reference `nix-instantiate` (Nix 2.8), offline: `file://` URLs
//! and a local git repository made by the test. Store paths, NAR hashes and revision
//! attributes must be equal; a pinned fetch is served from the store the second time.

use std::path::Path;
use std::process::Command;

/// `tvix eval --strict -E EXPR` with the given store and cache; stdout or the error.
fn tvix(expr: &str, store: &str, cache: &Path) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["eval", "--strict", "-E", expr])
        .env("TVIX_STORE", store)
        .env("XDG_CACHE_HOME", cache)
        .env("NO_COLOR", "1")
        .env_remove("NIX_REMOTE")
        .output()
        .expect("run tvix");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The reference's result (it writes into the real local store).
fn nix(expr: &str) -> String {
    let out = Command::new("nix-instantiate")
        .args([
            "--eval",
            "--strict",
            "--extra-experimental-features",
            "flakes",
            "-E",
            expr,
        ])
        .env_remove("NIX_REMOTE")
        .output()
        .expect("the reference nix-instantiate is required");
    assert!(
        out.status.success(),
        "nix-instantiate failed on {expr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_COMMITTER_DATE", "2024-01-02T03:04:05Z")
        .env("GIT_AUTHOR_DATE", "2024-01-02T03:04:05Z")
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn fetchers_match_nix_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // A tarball with one top-level directory, an executable and a symlink.
    let tree = root.join("tree/pkg-1.0");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("README"), "read me\n").unwrap();
    std::fs::write(tree.join("bin/run"), "#!/bin/sh\n").unwrap();
    std::os::unix::fs::symlink("README", tree.join("link")).unwrap();
    let ok = Command::new("chmod")
        .args(["+x"])
        .arg(tree.join("bin/run"))
        .status()
        .unwrap();
    assert!(ok.success());
    let tarball = root.join("pkg.tar.gz");
    let ok = Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(root.join("tree"))
        .arg("pkg-1.0")
        .status()
        .unwrap();
    assert!(ok.success());
    let file = root.join("data.txt");
    std::fs::write(&file, "some data\n").unwrap();
    let repo = root.join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("default.nix"), "{ x = 1; }\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "one"]);

    let store = format!("local://{}", root.join("store").display());
    let cache = root.join("cache");
    let t = tarball.display();
    let f = file.display();
    let r = repo.display();
    let exprs = [
        format!("builtins.fetchurl \"file://{f}\""),
        format!("builtins.fetchurl {{ url = \"file://{f}\"; name = \"renamed\"; }}"),
        format!("builtins.fetchTarball \"file://{t}\""),
        format!("builtins.fetchTarball {{ url = \"file://{t}\"; name = \"pkg\"; }}"),
        format!("builtins.fetchGit {r}"),
        format!("builtins.fetchGit {{ url = \"file://{r}\"; ref = \"main\"; }}"),
        format!("builtins.fetchTree {{ type = \"tarball\"; url = \"file://{t}\"; }}"),
        format!("builtins.fetchTree {{ type = \"git\"; url = \"file://{r}\"; }}"),
        format!("(import (builtins.fetchGit {r})).x"),
        format!("builtins.readFile \"${{builtins.fetchTarball \"file://{t}\"}}/README\""),
    ];
    for e in &exprs {
        assert_eq!(tvix(e, &store, &cache), Ok(nix(e)), "{e}");
    }
    // The same in compute-only mode: same paths, nothing written.
    for e in &exprs[..4] {
        assert_eq!(tvix(e, "dummy://", &cache), Ok(nix(e)), "{e} (dummy://)");
    }

    // A wrong hash is reported with both hashes.
    let bad = format!(
        "builtins.fetchTarball {{ url = \"file://{t}\"; sha256 = \"{}\"; }}",
        "0".repeat(52)
    );
    let err = tvix(&bad, &store, &cache).unwrap_err();
    assert!(
        err.contains("hash mismatch in file downloaded from"),
        "{err}"
    );

    // Pinned by hash, the result comes from the store: the source may be gone.
    let hash = nix(&format!(
        "(builtins.fetchTree {{ type = \"tarball\"; url = \"file://{t}\"; }}).narHash"
    ));
    let pinned = format!("builtins.fetchTarball {{ url = \"file://{t}\"; sha256 = {hash}; }}");
    let first = tvix(&pinned, &store, &cache).unwrap();
    std::fs::remove_file(&tarball).unwrap();
    assert_eq!(tvix(&pinned, &store, &cache), Ok(first));
    let unpinned = format!("builtins.fetchTarball \"file://{t}.missing\"");
    let err = tvix(&unpinned, &store, &cache).unwrap_err();
    assert!(err.contains("unable to download"), "{err}");
}

#[test]
fn network_urls_fail_clearly_without_network() {
    let tmp = tempfile::tempdir().unwrap();
    let err = tvix(
        "builtins.fetchurl \"https://tvix-test.invalid/x.tar.gz\"",
        "memory://",
        tmp.path(),
    )
    .unwrap_err();
    assert!(
        err.contains("unable to download 'https://tvix-test.invalid/x.tar.gz'"),
        "{err}"
    );
}
