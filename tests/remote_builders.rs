//! Remote builders (Nix's `builders` setting): a 50-derivation graph built by `tvix build
//! --max-jobs 0` over two `tvix builder daemon`s (the OCI backend, runc, as root) on
//! loopback that share one `tvix store daemon`, one of them killed with `kill -9` in the
//! middle of the run. The graph must still finish, both builders must have built some of
//! it, and every output must be what a local build of the same graph gives (same paths,
//! same NAR bytes). Each run's derivations carry a fresh nonce, so nothing exists
//! beforehand in any store (the host's `/nix/store` included).
//!
//! Every process is bounded in time and stopped at the end; the killed builder's leftovers
//! (its runc containers and its dead FUSE mount) are removed by a daemon started again on
//! its state directory, as after a crash; nothing may be left mounted or running.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::daemon::Daemon;
use common::{nonce, text, wait_bounded};

const BUSYBOX: &str = "/var/lib/tvix-tests/busybox";

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

/// The graph: 40 leaves (each sleeping a little, so builds overlap and one builder can
/// be killed in the middle), 9 groups of 4 or 5 leaves each (every ninth leaf), and a top
/// of those: 50 derivations. `all` lists them all.
const GRAPH: &str = r#"
{ nonce }:
let
  bb = builtins.path { path = /var/lib/tvix-tests/busybox; name = "busybox"; };
  mk = name: script: inputs: derivation {
    name = "${name}-${nonce}";
    system = "x86_64-linux";
    builder = "${bb}/bin/sh";
    PATH = "${bb}/bin";
    inherit inputs;
    args = [ "-c" "set -e\n${script}" ];
  };
  leaf = i: mk "leaf${toString i}"
    "sleep 0.4; mkdir $out; echo leaf ${toString i} ${nonce} > $out/value; ln -s ${bb} $out/bb" [];
  leaves = builtins.genList leaf 40;
  group = g: mk "group${toString g}"
    "mkdir $out; for i in $inputs; do cat $i/value >> $out/value; done"
    (builtins.filter (x: x != null)
      (builtins.genList (k: let n = k * 9 + g; in if n < 40 then builtins.elemAt leaves n else null) 5));
  groups = builtins.genList group 9;
  top = mk "top" "cat $(for i in $inputs; do echo $i/value; done) > $out" groups;
in { inherit top; all = leaves ++ groups ++ [ top ]; }
"#;

/// Runs `tvix ARGS` to its end (at most three minutes).
fn tvix(args: &[String], cwd: &Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(args)
        .current_dir(cwd)
        .env_remove("TVIX_STORE")
        .env_remove("TVIX_BUILD_SERVICE")
        .env_remove("NIX_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tvix");
    wait_bounded(child, Duration::from_secs(180), &args)
}

/// The machine of a build start record of `--log-format internal-json` (type 105,
/// fields `[drv, machine, 1, 1]`).
fn build_start(line: &str) -> Option<(String, String)> {
    let json = line.strip_prefix("@nix ")?;
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    if v["action"] != "start" || v["type"] != 105 {
        return None;
    }
    let f = v["fields"].as_array()?;
    Some((f.first()?.as_str()?.into(), f.get(1)?.as_str()?.into()))
}

/// Whether some process's command line contains `needle`.
fn process_with(needle: &str) -> Option<String> {
    let procs = std::fs::read_dir("/proc").ok()?;
    procs.flatten().find_map(|e| {
        let c = std::fs::read(e.path().join("cmdline")).ok()?;
        let c: Vec<u8> = c
            .into_iter()
            .map(|b| if b == 0 { b' ' } else { b })
            .collect();
        let c = String::from_utf8_lossy(&c).into_owned();
        c.contains(needle).then_some(c)
    })
}

#[test]
fn a_graph_over_two_builders_survives_one_killed_and_matches_a_local_build() {
    preconditions();
    let dir = tempfile::Builder::new()
        .prefix("tvix-remote-builders-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let nonce = nonce();
    std::fs::write(dir.path().join("graph.nix"), GRAPH).unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();

    let store = Daemon::start(&s(&[
        "store",
        "--store",
        &format!("local://{}", p("store")),
        "daemon",
        "--listen",
        "127.0.0.1:0",
    ]));
    let builder_args = |name: &str| {
        s(&[
            "builder",
            "daemon",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &store.url,
            "--build-service",
            &format!("oci://{}", p(name)),
        ])
    };
    let mut a = Daemon::start(&builder_args("oci-a"));
    let b = Daemon::start(&builder_args("oci-b"));
    assert!(a.url.starts_with("grpc+http://127.0.0.1:"), "{}", a.url);

    // The remote run: nothing builds here (`--max-jobs 0`); its build records name the
    // machine of each build.
    let builders = format!("{} - - 4 ; {} - - 4", a.url, b.url);
    let mut client = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(s(&[
            "build",
            "--store",
            &store.url,
            "--option",
            "builders",
            &builders,
            "--max-jobs",
            "0",
            "--log-format",
            "internal-json",
            "--no-out-link",
            "graph.nix",
            "-A",
            "all",
            "--argstr",
            "nonce",
            &nonce,
        ]))
        .current_dir(dir.path())
        .env_remove("TVIX_STORE")
        .env_remove("TVIX_BUILD_SERVICE")
        .env_remove("NIX_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = client.stderr.take().unwrap();
    let mut stdout = client.stdout.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    // Reads the records as they come: once builder A has started eight builds (so, with
    // its four slots, at least four finished), it is killed while others run (each leaf
    // sleeps).
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut starts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut log = String::new();
    let mut killed_after = None;
    let status = loop {
        match lines.recv_timeout(Duration::from_millis(20)) {
            Ok(line) => {
                if let Some((drv, machine)) = build_start(&line) {
                    starts.entry(machine).or_default().push(drv);
                }
                log.push_str(&line);
                log.push('\n');
                let on_a = starts.get(&a.url).map_or(0, Vec::len);
                if killed_after.is_none() && on_a >= 8 {
                    a.kill();
                    killed_after = Some(on_a);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                break client.wait().unwrap();
            }
        }
        if Instant::now() > deadline {
            let _ = client.kill();
            let _ = client.wait();
            panic!("the remote build took more than three minutes:\n{log}");
        }
    };
    let remote_paths = text(&out_reader.join().unwrap());
    assert!(status.success(), "the remote build failed:\n{log}");
    assert!(
        killed_after.is_some(),
        "builder A never got eight builds:\n{log}"
    );
    // Both built some of the graph; A's builds that were running when it died were
    // started again on B.
    let on_a = starts.get(&a.url).cloned().unwrap_or_default();
    let on_b = starts.get(&b.url).cloned().unwrap_or_default();
    assert!(!on_a.is_empty() && !on_b.is_empty(), "{starts:?}");
    assert!(
        starts.keys().all(|m| *m == a.url || *m == b.url),
        "a build ran elsewhere: {starts:?}"
    );
    let rescheduled = on_a.iter().filter(|d| on_b.contains(d)).count();
    assert!(
        rescheduled >= 1,
        "nothing of A was built again on B: {starts:?}"
    );
    assert!(
        log.contains("on another machine"),
        "no warning about the lost builder:\n{log}"
    );
    assert_eq!(on_a.len() + on_b.len() - rescheduled, 50, "{starts:?}");
    assert!(
        on_a.len() - rescheduled >= 4,
        "A finished nothing: {starts:?}"
    );
    eprintln!(
        "builds started: {} on A (killed after {}), {} on B; {} finished on A, \
         {rescheduled} of A's started again on B",
        on_a.len(),
        killed_after.unwrap_or(0),
        on_b.len(),
        on_a.len() - rescheduled
    );

    // The same graph built here, into a store of its own.
    let local = tvix(
        &s(&[
            "build",
            "--store",
            &format!("local://{}", p("local-store")),
            "--build-service",
            &format!("oci://{}", p("oci-local")),
            "--max-jobs",
            "4",
            "--log-format",
            "raw",
            "--no-out-link",
            "graph.nix",
            "-A",
            "all",
            "--argstr",
            "nonce",
            &nonce,
        ]),
        dir.path(),
    );
    assert!(
        local.status.success(),
        "the local build failed: {}",
        text(&local.stderr)
    );
    let local_paths = text(&local.stdout);
    let remote: Vec<&str> = remote_paths.lines().collect();
    assert_eq!(remote.len(), 50, "{remote_paths}");
    assert_eq!(remote, local_paths.lines().collect::<Vec<_>>());
    for path in &remote {
        let export = |store: &str| {
            let o = tvix(&s(&["store", "export", path, "--store", store]), dir.path());
            assert!(o.status.success(), "{}", text(&o.stderr));
            o.stdout
        };
        let r = export(&store.url);
        assert!(!r.is_empty());
        assert!(
            r == export(&format!("local://{}", p("local-store"))),
            "the NAR of {path} differs between the remote and the local build"
        );
    }

    // A daemon started again on the killed builder's state directory removes what the
    // dead one left (its runc containers, its store mount), as after a crash.
    let again = Daemon::start(&builder_args("oci-a"));
    drop(again);
    drop(b);
    drop(store);
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let root = dir.path().display().to_string();
    assert!(
        !mounts.lines().any(|l| l.contains(&root)),
        "a mount is left under {root}:\n{mounts}"
    );
    if let Some(cmd) = process_with(&nonce).or_else(|| process_with(&root)) {
        panic!("a process of the test is left: {cmd}");
    }
}

/// A derivation no builder (and not this machine) can build fails with Nix's message,
/// and Nix's `ssh://` builders are passed over with a warning that says why.
#[test]
fn unbuildable_derivations_fail_clearly_and_ssh_builders_are_passed_over() {
    preconditions();
    let dir = tempfile::Builder::new()
        .prefix("tvix-remote-builders-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let store = Daemon::start(&s(&[
        "store",
        "--store",
        &format!("local://{}", p("store")),
        "daemon",
        "--listen",
        "127.0.0.1:0",
    ]));
    let builder = Daemon::start(&s(&[
        "builder",
        "daemon",
        "--listen",
        "127.0.0.1:0",
        "--store",
        &store.url,
        "--build-service",
        &format!("oci://{}", p("oci")),
    ]));
    let expr = format!(
        r#"derivation {{ name = "needs-gpu-{}"; system = "x86_64-linux"; builder = "/bin/sh";
             requiredSystemFeatures = [ "gpu" ]; }}"#,
        nonce()
    );
    let out = tvix(
        &s(&[
            "build",
            "--store",
            &store.url,
            "--option",
            "builders",
            &format!("{} x86_64-linux - 2 1 kvm", builder.url),
            "--option",
            "system-features",
            "kvm",
            "--log-format",
            "raw",
            "--no-out-link",
            "-E",
            &expr,
        ]),
        dir.path(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("a 'x86_64-linux' with features {gpu} is required to build")
            && stderr.contains("but I am a 'x86_64-linux' with features {kvm}"),
        "{stderr}"
    );

    // An SSH builder (as a Nix user's /etc/nix/machines may list) is passed over with a
    // warning saying why, and a derivation only it could build fails naming it.
    let darwin = format!(
        r#"derivation {{ name = "darwin-only-{}"; system = "x86_64-darwin"; builder = "/bin/sh"; }}"#,
        nonce()
    );
    let out = tvix(
        &s(&[
            "build",
            "--store",
            &store.url,
            "--option",
            "builders",
            &format!("{} ; ssh://mac x86_64-darwin /root/.ssh/id 2", builder.url),
            "--log-format",
            "raw",
            "--no-out-link",
            "-E",
            &darwin,
        ]),
        dir.path(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not using the builder 'ssh://mac'")
            && stderr.contains("ssh:// and ssh-ng:// builders are not supported"),
        "{stderr}"
    );
    assert!(
        stderr.contains("every builder that can build it is down, unreachable or lost (ssh://mac)"),
        "{stderr}"
    );
    drop(builder);
    drop(store);
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let root = dir.path().display().to_string();
    assert!(
        !mounts.lines().any(|l| l.contains(&root)),
        "a mount is left under {root}:\n{mounts}"
    );
}
