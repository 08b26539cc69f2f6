//! `tvix monitor` fed Nix's own `internal-json` log: each test records the stream at run
//! time from `nix-build --log-format internal-json -v` on derivations with a fresh nonce
//! (never a committed copy), feeds it to `tvix monitor` with stderr not a terminal (its
//! plain lines), and checks that every build is named and failures set the exit status.
//!
//! Needs `nix-build` (sandboxed builds, as root) and the busybox of `setup.sh`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::{check_prerequisites, nix_build, nonce, text};

fn slow_graph() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tui/slow.nix")
}

/// Nix's stderr for building the slow graph (`extra` flags added).
fn record(n: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut flags = vec!["--log-format", "internal-json", "-v"];
    flags.extend_from_slice(extra);
    let o = nix_build(&slow_graph(), n, &flags);
    (o.status.code(), text(&o.stderr))
}

/// `tvix monitor` reading `stream`: its exit status and stderr.
fn monitor(stream: &str) -> (Option<i32>, String) {
    let mut child = Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_tvix"))
        .arg("monitor")
        .env("XDG_STATE_HOME", tempfile::tempdir().unwrap().path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tvix monitor");
    let mut stdin = child.stdin.take().unwrap();
    let input = stream.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("tvix monitor");
    writer.join().unwrap();
    (out.status.code(), text(&out.stderr))
}

#[test]
fn monitor_names_every_build_of_a_nix_stream() {
    check_prerequisites();
    let n = nonce();
    // An unknown setting makes Nix warn, in a coloured `msg` record.
    let (status, stream) = record(&n, &["--option", "tvix-test-no-such-setting", "1"]);
    assert_eq!(status, Some(0), "nix-build failed:\n{stream}");
    assert!(
        stream.lines().any(|l| l.starts_with("@nix ")),
        "no internal-json records from nix-build:\n{stream}"
    );
    let (status, err) = monitor(&stream);
    assert_eq!(status, Some(0), "{err}");
    for name in ["slow-dep", "slow-top"] {
        let drv = format!("{name}-{n}");
        assert!(
            err.lines()
                .any(|l| l.starts_with('[') && l.ends_with(&format!("building {drv} on localhost"))),
            "the build of {drv} is not named:\n{err}"
        );
        assert!(err.contains(&format!("] built {drv} in ")), "{err}");
    }
    // Nix's warning once, with its word once. Nix 2.8 does not always put the warning
    // in the stream (not with this test's other `--option`s): it is checked when it is.
    if stream.contains("unknown setting 'tvix-test-no-such-setting'") {
        assert!(
            err.contains("] warning: unknown setting 'tvix-test-no-such-setting'"),
            "no warning:\n{err}"
        );
    }
    assert!(!err.contains("warning: warning:"), "{err}");
    assert!(
        err.contains("] planned: 2 to build, 0 to fetch"),
        "the plan is not read:\n{err}"
    );
    assert!(
        err.contains("] built 2, substituted 0, failed 0 in "),
        "no summary:\n{err}"
    );
}

#[test]
fn monitor_fails_when_a_watched_build_failed() {
    check_prerequisites();
    let n = nonce();
    let (status, stream) = record(&n, &["--arg", "fail", "true"]);
    assert_eq!(
        status,
        Some(100),
        "nix-build did not fail as expected:\n{stream}"
    );
    let (status, err) = monitor(&format!("{stream}a line that is no record\n"));
    assert_eq!(status, Some(1), "{err}");
    let top = format!("slow-top-{n}");
    assert!(
        err.contains(&format!("] failed {top}: builder for '/nix/store/")),
        "the failure is not named:\n{err}"
    );
    assert!(
        err.contains(&format!("{top}> going-wrong")),
        "no log tail:\n{err}"
    );
    assert!(err.contains("] a line that is no record"), "{err}");
    assert!(err.contains(", failed 1 in "), "{err}");
}
