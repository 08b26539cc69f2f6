//! Import-from-derivation, differentially: each case in `tests/ifd/` reads a derivation's
//! output during evaluation (a generated `.nix` file imported, `readFile`, a set whose shape
//! depends on a built value, `readDir`/`pathExists`/`builtins.path`/`filterSource` on a built
//! directory). tvix evaluates it first, building into a fresh `local://` store of its own,
//! then the reference `nix-instantiate --eval --strict --read-write-mode` with a sandbox;
//! the printed values must be equal. Every run puts a fresh nonce into each derivation's
//! name, so no output exists in `/nix/store` or the tvix store before tvix builds it, and
//! tvix can only have read it from its own store.
//!
//! Needs what `tests/builds.rs` needs: `nix-build`, `runc`, root and the static busybox.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;
use common::{
    check_prerequisites, nix_build, nix_dump, nonce, run_limited, text, tvix_build, tvix_export,
};

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ifd")
        .join(name)
}

/// `tvix eval --strict --read-write-mode FILE --argstr nonce NONCE` into the `local://`
/// store at `store` (as the reference runs: without `--read-write-mode` an evaluation
/// writes no `.drv` file, so it has nothing to build).
fn tvix_eval(file: &Path, nonce: &str, store: &Path, extra: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
    c.args(["eval", "--strict", "--read-write-mode"])
        .arg(file)
        .args(["--argstr", "nonce", nonce, "--store"])
        .arg(format!("local://{}", store.display()))
        .args(extra)
        .env_remove("TVIX_BUILD_SERVICE");
    run_limited(c, Duration::from_secs(180))
}

/// The reference: `nix-instantiate --eval --strict --read-write-mode`, building sandboxed.
fn nix_eval(file: &Path, nonce: &str, extra: &[&str]) -> Output {
    let mut c = Command::new("nix-instantiate");
    c.args(["--eval", "--strict", "--read-write-mode"])
        .arg(file)
        .args(["--argstr", "nonce", nonce])
        .args(["--option", "sandbox", "true"])
        .args(["--option", "build-users-group", ""])
        .args(["--option", "substituters", ""])
        .args(extra);
    run_limited(c, Duration::from_secs(180))
}

/// The `building '...'...` lines of a run's stderr, sorted.
fn building_lines(stderr: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = text(stderr)
        .lines()
        .filter(|l| l.starts_with("building '"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Evaluates `name` with tvix, then with Nix; values and the builds announced must match.
fn compare_eval(name: &str) {
    check_prerequisites();
    let file = case(name);
    let n = nonce();
    let store = tempfile::tempdir().expect("temporary store");
    let t = tvix_eval(&file, &n, store.path(), &[]);
    let r = nix_eval(&file, &n, &[]);
    assert!(
        r.status.success(),
        "nix-instantiate failed:\n{}",
        text(&r.stderr)
    );
    assert!(
        t.status.success(),
        "tvix eval failed ({:?}):\n{}",
        t.status.code(),
        text(&t.stderr)
    );
    assert_eq!(text(&t.stdout), text(&r.stdout), "values of {name} differ");
    let built = building_lines(&t.stderr);
    assert!(
        !built.is_empty(),
        "tvix built nothing:\n{}",
        text(&t.stderr)
    );
    assert!(
        built.iter().all(|l| l.contains(&n)),
        "only this run's derivations are built: {built:?}"
    );
    assert_eq!(
        built,
        building_lines(&r.stderr),
        "builds announced for {name}"
    );
}

#[test]
fn imported_generated_nix_file() {
    compare_eval("import.nix");
}

#[test]
fn read_file_of_outputs() {
    compare_eval("read-file.nix");
}

#[test]
fn attribute_set_shaped_by_built_values() {
    compare_eval("shape.nix");
}

#[test]
fn read_dir_and_path_exists_on_a_built_directory() {
    compare_eval("dir.nix");
}

/// A second evaluation in the same store finds the outputs valid and builds nothing.
#[test]
fn valid_outputs_are_not_built_again() {
    check_prerequisites();
    let file = case("import.nix");
    let n = nonce();
    let store = tempfile::tempdir().expect("temporary store");
    let first = tvix_eval(&file, &n, store.path(), &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let second = tvix_eval(&file, &n, store.path(), &[]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(building_lines(&second.stderr), Vec::<String>::new());
}

/// `tvix build` of a derivation whose build script needs a built value: the same output
/// path and NAR as `nix-build`.
#[test]
fn build_depending_on_import_from_derivation() {
    check_prerequisites();
    let file = case("build.nix");
    let n = nonce();
    let store = tempfile::tempdir().expect("temporary store");
    let t = tvix_build(&file, &n, store.path(), &[]);
    let r = nix_build(&file, &n, &[]);
    assert!(r.status.success(), "nix-build failed:\n{}", text(&r.stderr));
    assert!(
        t.status.success(),
        "tvix build failed ({:?}):\n{}",
        t.status.code(),
        text(&t.stderr)
    );
    let out = text(&t.stdout);
    assert_eq!(out, text(&r.stdout), "output paths differ");
    let path = out.trim();
    let (a, b) = (tvix_export(store.path(), path), nix_dump(path));
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert_eq!(a.stdout, b.stdout, "NAR of {path} differs");
    // The generator was built during evaluation, the final derivation afterwards.
    let built = building_lines(&t.stderr);
    assert_eq!(built.len(), 2, "{built:?}");
}

/// `--option allow-import-from-derivation false`: Nix's message, pointing at the
/// expression that reads the output, exit status 1, nothing built. Current Nix names the
/// output (`...drv^out`); Nix 2.8 names only the `.drv` file. We follow current Nix.
#[test]
fn disabled_import_from_derivation_is_refused() {
    check_prerequisites();
    let file = case("import.nix");
    let n = nonce();
    let store = tempfile::tempdir().expect("temporary store");
    let off = ["--option", "allow-import-from-derivation", "false"];
    let t = tvix_eval(&file, &n, store.path(), &off);
    let r = nix_eval(&file, &n, &off);
    assert_eq!(t.status.code(), Some(1), "{}", text(&t.stderr));
    assert_eq!(r.status.code(), t.status.code());
    let (te, re) = (text(&t.stderr), text(&r.stderr));
    let first = |s: &str| s.lines().next().unwrap_or("").to_string();
    let nix_line = first(&re);
    let drv = nix_line
        .split('\'')
        .nth(1)
        .unwrap_or_else(|| panic!("no path in {nix_line}"));
    assert!(drv.ends_with(&format!("-gen-{n}.drv")), "{nix_line}");
    assert_eq!(
        first(&te),
        nix_line.replace(&format!("{drv}'"), &format!("{drv}^out'")),
        "tvix:\n{te}"
    );
    assert!(
        te.contains("import.nix:9:"),
        "the error points at `import gen`:\n{te}"
    );
    assert!(building_lines(&t.stderr).is_empty());
}

/// A build evaluation needs fails: the evaluation fails as Nix's does, with the log.
#[test]
fn failed_build_stops_evaluation() {
    check_prerequisites();
    let file = case("fail.nix");
    let n = nonce();
    let store = tempfile::tempdir().expect("temporary store");
    let t = tvix_eval(&file, &n, store.path(), &[]);
    let r = nix_eval(&file, &n, &[]);
    assert!(!r.status.success());
    assert_eq!(t.status.code(), r.status.code(), "{}", text(&t.stderr));
    let (te, re) = (text(&t.stderr), text(&r.stderr));
    let message = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or("")
            .to_string()
    };
    assert!(!message(&re).is_empty(), "{re}");
    assert!(
        message(&te).starts_with(&message(&re)),
        "tvix:\n{te}\nnix:\n{re}"
    );
    assert!(
        te.contains("about to fail"),
        "the build's log is shown:\n{te}"
    );
    assert!(
        te.contains("fail.nix:7:"),
        "the error points at readFile:\n{te}"
    );
}

/// IFD through `tvix repl` in batch mode (stdin not a terminal).
#[test]
fn repl_batch_mode_imports_from_derivation() {
    check_prerequisites();
    let dir = case("");
    let n = nonce();
    let store = tempfile::tempdir().expect("temporary store");
    let input = format!("x = import ./import.nix {{ nonce = \"{n}\"; }}\nx.c\nx.b\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .arg("repl")
        .arg("--store")
        .arg(format!("local://{}", store.path().display()))
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .env_remove("TVIX_BUILD_SERVICE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tvix repl");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    let t = child.wait_with_output().expect("tvix repl");
    let r = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--read-write-mode", "-E"])
        .arg(format!(
            "let x = import {} {{ nonce = \"{n}\"; }}; in [ x.c x.b ]",
            dir.join("import.nix").display()
        ))
        .args(["--option", "sandbox", "true"])
        .args(["--option", "build-users-group", ""])
        .args(["--option", "substituters", ""])
        .output()
        .expect("nix-instantiate");
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(t.status.success(), "{}", text(&t.stderr));
    let expected = text(&r.stdout)
        .trim()
        .trim_start_matches("[ ")
        .trim_end_matches(" ]")
        .split(' ')
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    assert_eq!(text(&t.stdout), expected, "stderr:\n{}", text(&t.stderr));
    assert_eq!(building_lines(&t.stderr).len(), 1, "{}", text(&t.stderr));
}
