//! Helpers shared by the CLI tests: run the built `tvix` binary and capture its output.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The `tvix` binary built by cargo for these tests, writing to a store of its own (an
/// in-memory one; a test may name another with `TVIX_STORE`).
pub fn tvix() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
    c.env("TVIX_STORE", "memory://");
    c
}

/// Runs `tvix ARGS` with `stdin` and returns its output.
pub fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = tvix()
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tvix");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for tvix")
}

/// `tvix eval --strict -E EXPR`: stdout (without the final newline) or the error text.
pub fn eval(expr: &str) -> Result<String, String> {
    let out = run(&["eval", "--strict", "-E", expr], "");
    if out.status.success() {
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok(s.strip_suffix('\n').unwrap_or(&s).to_string())
    } else {
        assert_eq!(
            out.status.code(),
            Some(1),
            "errors exit with status 1: {expr}"
        );
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Asserts that `expr` evaluates and prints as `expected`.
#[track_caller]
pub fn assert_eval(expr: &str, expected: &str) {
    match eval(expr) {
        Ok(got) => assert_eq!(got, expected, "evaluating {expr}"),
        Err(e) => panic!("evaluating {expr} failed:\n{e}"),
    }
}

/// Asserts that `expr` fails with an error whose first line contains `message`.
#[track_caller]
pub fn assert_error(expr: &str, message: &str) {
    match eval(expr) {
        Ok(got) => panic!("evaluating {expr} succeeded with {got}, expected error {message}"),
        Err(e) => assert!(
            e.contains(message),
            "evaluating {expr}: expected error containing {message:?}, got:\n{e}"
        ),
    }
}

/// The read-only shared material next to the repository (`../shared`: the language
/// corpus, workloads), or `$SHARED_DIR`.
pub fn shared_dir() -> std::path::PathBuf {
    std::env::var_os("SHARED_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}
