//! A real build on "another machine": `tvix store daemon` and `tvix builder daemon` (the
//! OCI backend, runc, as root) run as processes on unix sockets, and `tvix build` reaches
//! them through `--store grpc+unix://...` and `--build-service grpc+unix://...`, building
//! with the static busybox at `/var/lib/tvix-tests/busybox`. Every process is bounded in
//! time and killed at the end.

mod common;
use common::daemon::Daemon;
use common::wait_bounded;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/var/lib/tvix-tests/busybox";

/// Runs `tvix ARGS`, killed if it takes longer than two minutes.
fn tvix(args: &[&str], cwd: &Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(args)
        .current_dir(cwd)
        .env_remove("TVIX_STORE")
        .env_remove("TVIX_BUILD_SERVICE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tvix");
    wait_bounded(child, Duration::from_secs(120), &args)
}

fn preconditions() {
    assert!(
        Path::new("/usr/sbin/runc").exists(),
        "this test needs Debian's runc at /usr/sbin/runc"
    );
    assert!(
        Path::new(BUSYBOX).join("bin/busybox").exists(),
        "missing the static busybox at {BUSYBOX} (scripts/setup.sh lays it out)"
    );
}

#[test]
fn tvix_build_through_a_builder_daemon_and_a_store_daemon() {
    preconditions();
    let dir = tempfile::Builder::new()
        .prefix("tvix-builder-e2e-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let store = Daemon::start(&[
        "store",
        "--store",
        &format!("local://{}", p("store")),
        "daemon",
        "--listen",
        &format!("unix://{}", p("store.sock")),
    ]);
    let builder = Daemon::start(&[
        "builder",
        "daemon",
        "--listen",
        &format!("unix://{}", p("builder.sock")),
        "--store",
        &store.url,
        "--build-service",
        &format!("oci://{}", p("oci-state")),
    ]);
    assert_eq!(builder.url, format!("grpc+unix://{}", p("builder.sock")));

    let expr = format!(
        r#"derivation {{
             name = "remote-hello";
             system = "{arch}-linux";
             builder = "${{{BUSYBOX}}}/bin/sh";
             args = [ "-c" "echo building remotely; echo hello from $name > $out" ];
           }}"#,
        arch = std::env::consts::ARCH
    );
    let out = tvix(
        &[
            "build",
            "--log-format",
            "raw",
            "--store",
            &store.url,
            "--build-service",
            &builder.url,
            "--no-out-link",
            "-E",
            &expr,
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tvix build failed: {stderr}");
    assert!(stderr.contains("building remotely"), "{stderr}");
    let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        path.starts_with("/nix/store/") && path.ends_with("-remote-hello"),
        "{path}"
    );
    // The output is in the shared store, registered.
    let cat = tvix(&["store", "--store", &store.url, "cat", &path], dir.path());
    assert!(
        cat.status.success(),
        "{}",
        String::from_utf8_lossy(&cat.stderr)
    );
    assert_eq!(cat.stdout, b"hello from remote-hello\n");

    // A failing build fails with its exit code, across the protocol.
    let failing = expr
        .replace("remote-hello", "remote-fail")
        .replace("echo hello from $name > $out", "exit 3");
    let out = tvix(
        &[
            "build",
            "--log-format",
            "raw",
            "--store",
            &store.url,
            "--build-service",
            &builder.url,
            "--no-out-link",
            "-E",
            &failing,
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the failing build succeeded: {stderr}"
    );
    assert!(stderr.contains("exit code 3"), "{stderr}");
    assert!(stderr.contains("building remotely"), "{stderr}");

    // `kill -9` of the client drops its call: the daemon cancels the build, and runc's
    // processes go away (the marker is a sleep only this build runs).
    let marker = "sleep 3141";
    let hanging = expr
        .replace("remote-hello", "remote-hang")
        .replace("echo hello from $name > $out", marker);
    let mut client = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args([
            "build",
            "--store",
            &store.url,
            "--build-service",
            &builder.url,
            "--no-out-link",
            "-E",
            &hanging,
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !running(marker) {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = client.kill();
            let _ = client.wait();
            panic!("the hanging build never started");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    client.kill().unwrap();
    client.wait().unwrap();
    let t0 = Instant::now();
    while running(marker) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the build kept running after its client was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // SIGTERM stops both daemons cleanly: the builder's store mount is unmounted and its
    // mount point and socket removed, so nothing is left mounted under the test's directory.
    drop(builder);
    drop(store);
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let root = dir.path().display().to_string();
    assert!(
        !mounts.lines().any(|l| l.contains(&root)),
        "a mount is left under {root}:\n{mounts}"
    );
    assert!(!dir.path().join("builder.sock").exists());
    assert!(!dir.path().join("store.sock").exists());
}

/// Whether a process whose command line is `marker` is running.
fn running(marker: &str) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                let c: Vec<u8> = c
                    .into_iter()
                    .map(|b| if b == 0 { b' ' } else { b })
                    .collect();
                String::from_utf8_lossy(&c).trim() == marker
            })
            .unwrap_or(false)
    })
}
