//! Helpers shared by the CLI tests: run the built `tvix` binary and capture its output.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod daemon;
pub mod store_tools;
pub mod tmux;

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

/// The static busybox the build tests use as builder (`setup.sh` installs it).
pub const BUSYBOX: &str = "/var/lib/tvix-tests/busybox";

/// Fails the test unless busybox, `nix-build`, `nix-store` and `runc` are there.
pub fn check_prerequisites() {
    assert!(
        Path::new(BUSYBOX).join("bin/busybox").exists(),
        "{BUSYBOX} is missing: run setup.sh"
    );
    for tool in ["nix-build", "nix-store", "runc"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(found, "{tool} is not installed: run setup.sh");
    }
}

/// A nonce no earlier run used (goes into derivation names, so no output exists before).
pub fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    format!(
        "n{t:x}{:x}{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Bytes as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Waits for a child spawned with piped standard output and error, collecting both; killed
/// (and the test failed) if it runs longer than `limit`.
pub fn wait_bounded(mut child: Child, limit: Duration, what: &dyn std::fmt::Debug) -> Output {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what:?} took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}

/// Runs a command with a time limit (the whole command is killed after `limit`).
pub fn run_limited(mut c: Command, limit: Duration) -> Output {
    c.env("TVIX_TEST_IMPURE", "impure-value")
        .env_remove("TVIX_TEST_UNSET")
        .env("NO_COLOR", "1");
    let mut c2 = Command::new("timeout");
    c2.arg(limit.as_secs().to_string())
        .arg(c.get_program())
        .args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => c2.env(k, v),
            None => c2.env_remove(k),
        };
    }
    if let Some(d) = c.get_current_dir() {
        c2.current_dir(d);
    }
    c2.output().expect("running a build")
}

/// `tvix build FILE --log-format raw --argstr nonce NONCE --no-out-link` into the `local://` store at `store`.
pub fn tvix_build(file: &Path, nonce: &str, store: &Path, extra: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
    // Nix's lines, which the differential tests compare with nix-build's.
    c.arg("build")
        .arg(file)
        .args(["--log-format", "raw"])
        .args(["--argstr", "nonce", nonce, "--no-out-link", "--store"])
        .arg(format!("local://{}", store.display()))
        .args(extra)
        .env_remove("TVIX_BUILD_SERVICE");
    run_limited(c, Duration::from_secs(120))
}

/// The reference `nix-build FILE --argstr nonce NONCE --no-out-link`, sandboxed, with no
/// substituters.
pub fn nix_build(file: &Path, nonce: &str, extra: &[&str]) -> Output {
    let mut c = Command::new("nix-build");
    c.arg(file)
        .args(["--argstr", "nonce", nonce, "--no-out-link"])
        .args(["--option", "sandbox", "true"])
        .args(["--option", "build-users-group", ""])
        .args(["--option", "substituters", ""])
        .args(extra);
    run_limited(c, Duration::from_secs(120))
}

/// `tvix store export PATH` (the NAR) from the `local://` store at `store`.
pub fn tvix_export(store: &Path, path: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["store", "export", path, "--store"])
        .arg(format!("local://{}", store.display()))
        .output()
        .expect("tvix store export")
}

/// `nix-store --dump PATH`.
pub fn nix_dump(path: &str) -> Output {
    Command::new("nix-store")
        .args(["--dump", path])
        .output()
        .expect("nix-store --dump")
}

/// Asserts that a command succeeded, showing its output if not.
#[track_caller]
pub fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The `tvix` binary with nothing of the caller's environment that changes how it
/// builds or substitutes (`TVIX_BUILD_SERVICE`, `NIX_CONFIG`), and no colours.
pub fn tvix_plain() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
    c.env_remove("TVIX_BUILD_SERVICE")
        .env_remove("NIX_CONFIG")
        .env("NO_COLOR", "1");
    c
}

/// `tvix store --store local://STORE` (a subcommand follows).
pub fn tvix_store(store: &Path) -> Command {
    let mut c = tvix_plain();
    c.args(["store", "--store", &format!("local://{}", store.display())]);
    c
}

/// `nix-store --generate-binary-cache-key NAME DIR/NAME.sk DIR/NAME.pk`; returns the
/// secret key file and the public key's text.
pub fn nix_keys(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let (sk, pk) = (
        dir.join(format!("{name}.sk")),
        dir.join(format!("{name}.pk")),
    );
    let out = Command::new("nix-store")
        .arg("--generate-binary-cache-key")
        .args([name.as_ref(), sk.as_os_str(), pk.as_os_str()])
        .output()
        .expect("nix-store --generate-binary-cache-key");
    ok(&out, "nix-store --generate-binary-cache-key");
    (sk, std::fs::read_to_string(&pk).unwrap().trim().to_string())
}
