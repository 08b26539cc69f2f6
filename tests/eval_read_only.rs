//! `tvix eval` runs in Nix's read-only mode, as `nix-instantiate --eval` does without
//! `--read-write-mode`: store paths of sources, `toFile` results and derivations are
//! computed (the same paths as the reference's) and nothing of them is written; fetched
//! content is written, so `import (fetchTarball ...)` works. `--read-write-mode` writes
//! everything, and `tvix instantiate` always writes its `.drv` files.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{text, tvix_plain};

/// `tvix eval ARGS` (or the `nix-instantiate` shim's `--eval`) against the local store
/// at `store`, from `dir`.
fn tvix_eval(store: &Path, dir: &Path, args: &[&str]) -> Output {
    tvix_plain()
        .current_dir(dir)
        .env("TVIX_STORE", format!("local://{}", store.display()))
        .env_remove("NIX_REMOTE")
        .arg("eval")
        .args(args)
        .output()
        .expect("run tvix")
}

/// Whether the tvix store at `store` has `path` (`tvix store cat` of a file).
fn in_store(store: &Path, path: &str) -> bool {
    common::tvix_store(store)
        .args(["cat", path])
        .output()
        .expect("run tvix store cat")
        .status
        .success()
}

/// The reference, `nix-instantiate --eval ARGS` from `dir` (its real local store).
fn nix_eval(dir: &Path, args: &[&str]) -> Output {
    Command::new("nix-instantiate")
        .current_dir(dir)
        .env_remove("NIX_REMOTE")
        .arg("--eval")
        .args(args)
        .output()
        .expect("the reference nix-instantiate (Nix 2.8) is required by this test")
}

fn printed_path(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().trim_matches('"').to_string()
}

#[test]
fn eval_computes_paths_without_writing_them_unless_read_write_mode() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::write(dir.path().join("f.txt"), "hello\n").unwrap();
    let nonce = common::nonce();
    let cases = [
        format!("builtins.toFile \"ro-{nonce}\" \"abc\""),
        "\"${./f.txt}\"".to_string(),
        format!(
            "(derivation {{ name = \"ro-{nonce}\"; builder = \"/bin/sh\"; \
             system = \"x86_64-linux\"; }}).drvPath"
        ),
    ];
    for expr in &cases {
        let got = tvix_eval(&store, dir.path(), &["-E", expr]);
        let path = printed_path(&got);
        // The same path as the reference computes.
        assert_eq!(
            path,
            printed_path(&nix_eval(dir.path(), &["-E", expr])),
            "{expr}"
        );
        assert!(!in_store(&store, &path), "tvix eval wrote {path} ({expr})");
        // The reference did not write it either.
        assert!(
            !Path::new(&path).exists(),
            "nix-instantiate --eval wrote {path}"
        );

        let got = tvix_eval(&store, dir.path(), &["--read-write-mode", "-E", expr]);
        assert_eq!(printed_path(&got), path, "{expr}");
        assert!(
            in_store(&store, &path),
            "--read-write-mode did not write {path}"
        );
    }
}

#[test]
fn reading_a_path_only_computed_fails_as_in_nix() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let expr = format!(
        "builtins.readFile (builtins.toFile \"ro-read-{}\" \"abc\")",
        common::nonce()
    );
    let want = nix_eval(dir.path(), &["-E", &expr]);
    assert_eq!(want.status.code(), Some(1), "{}", text(&want.stderr));
    let got = tvix_eval(&store, dir.path(), &["-E", &expr]);
    assert_eq!(got.status.code(), Some(1), "{}", text(&got.stdout));
    // With --read-write-mode it was written, so it reads back.
    let got = tvix_eval(&store, dir.path(), &["--read-write-mode", "-E", &expr]);
    assert_eq!(text(&got.stdout), "\"abc\"\n", "{}", text(&got.stderr));
}

/// Reading what was only computed (a `toFile` result, a source path, a `.drv`) through a
/// string that refers to it fails as in Nix, which checks that the store paths a string
/// refers to are valid before reading: the same message ("path '…' is not valid", the same
/// in current Nix) and exit status, for every builtin that reads. tvix runs first.
#[test]
fn reading_what_was_only_computed_says_the_path_is_not_valid() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let nonce = common::nonce();
    std::fs::write(dir.path().join("f.nix"), format!("x: x # {nonce}\n")).unwrap();
    let file = format!("builtins.toFile \"ro-valid-{nonce}\" \"abc\"");
    let cases = [
        format!("builtins.readFile ({file})"),
        format!("import ({file})"),
        format!("builtins.pathExists ({file})"),
        format!("builtins.readDir ({file})"),
        format!("builtins.hashFile \"sha256\" ({file})"),
        "import \"${./f.nix}\"".to_string(),
        format!(
            "builtins.readFile (derivation {{ name = \"ro-valid-{nonce}\"; \
             builder = \"/bin/sh\"; system = \"x86_64-linux\"; }}).drvPath"
        ),
    ];
    let first_line = |o: &Output| text(&o.stderr).lines().next().unwrap_or("").to_string();
    for expr in &cases {
        let got = tvix_eval(&store, dir.path(), &["-E", expr]);
        let want = nix_eval(dir.path(), &["-E", expr]);
        assert_eq!(
            want.status.code(),
            Some(1),
            "{expr}: {}",
            text(&want.stderr)
        );
        assert!(
            first_line(&want).ends_with("' is not valid"),
            "{expr}: {}",
            text(&want.stderr)
        );
        assert_eq!(got.status.code(), want.status.code(), "{expr}");
        assert_eq!(first_line(&got), first_line(&want), "{expr}");
    }
}

#[test]
fn fetched_content_is_written_and_readable_in_read_only_mode() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let tree = dir.path().join("tree/sub");
    std::fs::create_dir_all(&tree).unwrap();
    // A nonce in the content: the reference's store must not have the result already.
    std::fs::write(
        tree.join("default.nix"),
        format!("x: x + 1 # {}\n", common::nonce()),
    )
    .unwrap();
    let tarball = dir.path().join("t.tar.gz");
    let status = Command::new("tar")
        .args(["czf"])
        .arg(&tarball)
        .arg("-C")
        .arg(dir.path().join("tree"))
        .arg("sub")
        .status()
        .expect("tar");
    assert!(status.success());
    let expr = format!(
        "import (builtins.fetchTarball file://{}) 41",
        tarball.display()
    );
    let want = nix_eval(dir.path(), &["-E", &expr]);
    assert_eq!(text(&want.stdout), "42\n", "{}", text(&want.stderr));
    let got = tvix_eval(&store, dir.path(), &["-E", &expr]);
    assert_eq!(text(&got.stdout), "42\n", "{}", text(&got.stderr));
    let path_expr = format!("builtins.fetchTarball file://{}", tarball.display());
    let path = printed_path(&tvix_eval(&store, dir.path(), &["-E", &path_expr]));
    assert!(
        in_store(&store, &format!("{path}/default.nix")),
        "{path} not written"
    );
}

#[test]
fn instantiate_writes_its_derivations() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let expr = format!(
        "derivation {{ name = \"ro-inst-{}\"; builder = \"/bin/sh\"; system = \"x86_64-linux\"; }}",
        common::nonce()
    );
    let out = tvix_plain()
        .env("TVIX_STORE", format!("local://{}", store.display()))
        .args(["instantiate", "-E", &expr])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let drv = text(&out.stdout).trim().to_string();
    assert!(
        in_store(&store, &drv),
        "tvix instantiate did not write {drv}"
    );
}
