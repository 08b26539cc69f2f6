//! `builtins.fetchClosure` from a `file://` binary cache made by the reference Nix (2.8):
//! `nix copy --to file://…` of a text file that refers to a source, so the closure has two
//! content-addressed paths. tvix must register both with the same NAR bytes, references
//! and content addresses, and reject caches that lie.

use std::path::Path;
use std::process::Command;

/// `tvix eval --strict -E EXPR` with fetch-closure enabled; stdout or the error.
fn tvix(expr: &str, store: &str, feature: bool) -> Result<String, String> {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
    c.args(["eval", "--strict", "--store", store, "-E", expr]);
    if feature {
        c.args(["--extra-experimental-features", "fetch-closure"]);
    }
    let out = c
        .env("NO_COLOR", "1")
        .env_remove("NIX_REMOTE")
        .env_remove("TVIX_STORE")
        .output()
        .expect("run tvix");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("run the reference nix");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A binary cache holding a text file with a reference to a source; returns the cache
/// directory's URL, the text file's store path and the reference Nix store's root.
fn make_cache(dir: &Path) -> (String, String, String) {
    let root = dir.join("nix-root");
    let nix_store = format!("local?root={}", root.display());
    std::fs::write(dir.join("b.sh"), "echo hi\n").unwrap();
    let expr = format!(r#"builtins.toFile "t" "run ${{{}/b.sh}}""#, dir.display());
    let out = run(Command::new("nix-instantiate")
        .args([
            "--store",
            &nix_store,
            "--read-write-mode",
            "--eval",
            "-E",
            &expr,
        ])
        .env_remove("NIX_REMOTE"));
    let path = String::from_utf8(out)
        .unwrap()
        .trim()
        .trim_matches('"')
        .to_string();
    let cache = format!("file://{}", dir.join("cache").display());
    run(Command::new("nix")
        .args(["--extra-experimental-features", "nix-command", "copy"])
        .args([
            "--from",
            &nix_store,
            "--to",
            &format!("{cache}?compression=xz"),
            &path,
        ])
        .env_remove("NIX_REMOTE"));
    (cache, path, root.display().to_string())
}

fn fetch_expr(cache: &str, path: &str, extra: &str) -> String {
    format!(r#"builtins.fetchClosure {{ fromStore = "{cache}"; fromPath = {path}; {extra} }}"#)
}

#[test]
fn closure_from_a_file_cache_matches_nix() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, path, nix_root) = make_cache(dir.path());
    let store = format!("local://{}", dir.path().join("tvix").display());
    let got = tvix(&fetch_expr(&cache, &path, ""), &store, true).unwrap();
    assert_eq!(got, format!("\"{path}\""));

    let tvix_store = |args: &[&str]| {
        run(Command::new(env!("CARGO_BIN_EXE_tvix"))
            .args(["store", "--store", &store])
            .args(args))
    };
    let info = String::from_utf8(tvix_store(&["info"])).unwrap();
    // Both paths of the closure, with the reference and the content addresses.
    assert_eq!(info.matches("StorePath: ").count(), 2, "{info}");
    assert!(info.contains("CA: text:sha256:"), "{info}");
    assert!(info.contains("CA: fixed:r:sha256:"), "{info}");
    assert!(info.contains("-b.sh\n"), "{info}");
    let ours = tvix_store(&["export", &path]);
    let theirs = run(Command::new("nix-store")
        .args(["--dump", &format!("{nix_root}{path}")])
        .env("NIX_REMOTE", "dummy://"));
    assert_eq!(ours, theirs);

    // Already there: nothing is fetched, even with the cache gone.
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    assert_eq!(
        tvix(&fetch_expr(&cache, &path, ""), &store, true).unwrap(),
        format!("\"{path}\"")
    );
}

#[test]
fn bad_calls_and_lying_caches_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, path, _) = make_cache(dir.path());
    let store = format!("local://{}", dir.path().join("tvix").display());
    let err = |expr: &str, feature: bool| tvix(expr, &store, feature).unwrap_err();

    let e = err(&fetch_expr(&cache, &path, ""), false);
    assert!(
        e.contains("experimental Nix feature 'fetch-closure' is disabled"),
        "{e}"
    );
    let e = err(&fetch_expr("ssh://host", &path, ""), true);
    assert!(
        e.contains("only supports http://, https:// and file:// stores"),
        "{e}"
    );
    let e = err(
        &format!(r#"builtins.fetchClosure {{ fromPath = {path}; }}"#),
        true,
    );
    assert!(e.contains("attribute 'fromStore' is missing"), "{e}");
    let e = err(&fetch_expr(&cache, &path, "x = 1;"), true);
    assert!(e.contains("attribute 'x' isn't supported"), "{e}");
    let e = err(&fetch_expr(&cache, &path, "inputAddressed = true;"), true);
    assert!(e.contains("is not input-addressed"), "{e}");
    let e = tvix(&fetch_expr(&cache, &path, ""), "dummy://", true).unwrap_err();
    assert!(e.contains("cannot add"), "{e}");

    // A narinfo whose NAR hash was changed: its content address no longer matches.
    let hash_part = &Path::new(&path).file_name().unwrap().to_str().unwrap()[..32];
    let narinfo = dir
        .path()
        .join("cache")
        .join(format!("{hash_part}.narinfo"));
    let text = std::fs::read_to_string(&narinfo).unwrap();
    let nar_hash = text
        .lines()
        .find_map(|l| l.strip_prefix("NarHash: "))
        .unwrap()
        .to_string();
    let mut forged = nar_hash.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    std::fs::write(&narinfo, text.replace(&nar_hash, &forged)).unwrap();
    let e = err(&fetch_expr(&cache, &path, ""), true);
    assert!(e.contains("NAR hash mismatch"), "{e}");
    // Nothing was registered for it.
    let info = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["store", "--store", &store, "info", &path])
        .output()
        .unwrap();
    assert!(!info.status.success());
}
