//! `tvix build` of a whole graph on the coordinator's executor: the 50 derivations of
//! `tests/build_graph/graph.nix` (static-busybox builders, a fresh nonce in every name so
//! no output exists beforehand) built with `-j2` into a fresh `local://` store; a failure
//! with and without `--keep-going`; Ctrl-C in the middle of a build.
//!
//! Needs `runc`, root, and the static busybox at `/var/lib/tvix-tests/busybox`
//! (`setup.sh`); a missing prerequisite fails the tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BUSYBOX: &str = "/var/lib/tvix-tests/busybox";

fn graph_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/build_graph/graph.nix")
}

fn check_prerequisites() {
    assert!(
        Path::new(BUSYBOX).join("bin/busybox").exists(),
        "{BUSYBOX} is missing: run setup.sh"
    );
}

/// A nonce no earlier run used.
fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    format!(
        "g{t:x}{:x}{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `tvix build graph.nix` in `dir` (Nix's lines, which the tests read) into the store at `store`.
fn tvix_build_command(dir: &Path, store: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
    c.arg("build")
        .args(["--log-format", "raw"])
        .arg(graph_file())
        .arg("--store")
        .arg(format!("local://{}", store.display()))
        .args(args)
        .current_dir(dir)
        .env_remove("TVIX_BUILD_SERVICE")
        .env("NO_COLOR", "1");
    c
}

fn tvix_build(dir: &Path, store: &Path, args: &[&str]) -> Output {
    tvix_build_command(dir, store, args)
        .output()
        .expect("running tvix build")
}

/// The derivations a run started, from its `building '...'...` lines.
fn started(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("building '"))
        .filter_map(|l| l.strip_suffix("'..."))
        .map(str::to_string)
        .collect()
}

fn verify(store: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["store", "verify", "--store"])
        .arg(format!("local://{}", store.display()))
        .output()
        .expect("tvix store verify");
    assert!(o.status.success(), "tvix store verify: {}", text(&o.stderr));
}

#[test]
fn fifty_derivations_with_two_jobs_each_built_once() {
    check_prerequisites();
    let n = nonce();
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let o = tvix_build(dir.path(), store.path(), &["--argstr", "nonce", &n, "-j2"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    let built = started(&err);
    let unique: BTreeSet<&String> = built.iter().collect();
    assert_eq!(built.len(), 50, "{err}");
    assert_eq!(unique.len(), 50, "each derivation once: {err}");
    assert!(
        err.starts_with("these 50 derivations will be built:\n"),
        "{err}"
    );
    let out = text(&o.stdout);
    let link = std::fs::read_link(dir.path().join("result")).expect("./result");
    assert_eq!(link.to_str().unwrap(), out.trim());
    assert!(out.trim().ends_with(&format!("-g49-{n}")), "{out}");
    verify(store.path());

    // Everything is valid now: a rerun builds nothing and prints the same path.
    let o = tvix_build(
        dir.path(),
        store.path(),
        &["--argstr", "nonce", &n, "--max-jobs", "2"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(started(&text(&o.stderr)).is_empty(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), out);
}

#[test]
fn dry_run_lists_what_would_be_built() {
    check_prerequisites();
    let n = nonce();
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let o = tvix_build(
        dir.path(),
        store.path(),
        &["--argstr", "nonce", &n, "--dry-run"],
    );
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.starts_with("these 50 derivations will be built:\n"),
        "{err}"
    );
    assert_eq!(err.lines().filter(|l| l.ends_with(".drv")).count(), 50);
    assert!(started(&err).is_empty());
    assert!(o.stdout.is_empty());
    assert!(!dir.path().join("result").exists());
}

#[test]
fn failure_without_and_with_keep_going() {
    check_prerequisites();
    // Node 10 fails: its dependents (21, 22, 13, ... and the last node) cannot be built.
    let n = nonce();
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fail = ["--argstr", "nonce", &n, "--arg", "fail", "10", "-j2"];
    let o = tvix_build(dir.path(), store.path(), &fail);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(100), "{err}");
    assert!(err.contains("node 10 fails"), "{err}");
    assert!(
        err.contains("-g10-") && err.contains("failed with exit code 1"),
        "{err}"
    );
    let first = started(&err);
    assert!(first.len() < 50, "stopped after the failure: {err}");
    assert!(!dir.path().join("result").exists());
    verify(store.path());

    // With --keep-going, everything that does not need node 10 is built.
    let mut kg = fail.to_vec();
    kg.push("--keep-going");
    let o = tvix_build(dir.path(), store.path(), &kg);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(100), "{err}");
    let second = started(&err);
    let first_set: BTreeSet<&String> = first.iter().filter(|d| !d.contains("-g10-")).collect();
    assert!(
        second.iter().all(|d| !first_set.contains(d)),
        "what finished before was registered and is not built again: {err}"
    );
    verify(store.path());

    // Without the failure, only node 10 and what depends on it are left to build.
    let o = tvix_build(
        dir.path(),
        store.path(),
        &["--argstr", "nonce", &n, "-j2", "-k"],
    );
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    let mut left: Vec<String> = started(&err)
        .iter()
        .map(|d| {
            // /nix/store/HASH-gNN-NONCE.drv: the node number NN (the nonce starts
            // with a g too, so look right after the hash).
            let base = d.rsplit('/').next().unwrap();
            let name = base.split_once('-').unwrap().1;
            name[1..].split('-').next().unwrap().to_string()
        })
        .collect();
    left.sort_by_key(|s| s.parse::<u32>().unwrap());
    // Dependents of 10 (i depends on (i-1)/2 and i-3), closed transitively, and 49.
    let mut expect: BTreeSet<u32> = [10].into();
    for i in 11..49u32 {
        if expect.contains(&((i - 1) / 2)) || expect.contains(&(i - 3)) {
            expect.insert(i);
        }
    }
    expect.insert(49);
    let expect: Vec<String> = expect.iter().map(|i| i.to_string()).collect();
    assert_eq!(left, expect, "{err}");
}

#[test]
fn interrupted_then_rerun_builds_only_what_is_missing() {
    check_prerequisites();
    let n = nonce();
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = ["--argstr", "nonce", &n, "--argstr", "sleep", "0.3", "-j2"];
    let log = dir.path().join("stderr");
    let mut child = tvix_build_command(dir.path(), store.path(), &args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("tvix build");
    // Wait until about ten builds started, then press Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let err = std::fs::read_to_string(&log).unwrap_or_default();
        if started(&err).len() >= 10 {
            break;
        }
        assert!(Instant::now() < deadline, "builds did not start: {err}");
        assert!(child.try_wait().unwrap().is_none(), "finished early: {err}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc_kill(child.id() as i32, 2) };
    assert_eq!(rc, 0);
    let t = Instant::now();
    let status = child.wait().unwrap();
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(t.elapsed() < Duration::from_secs(30), "slow to stop: {err}");
    assert!(!status.success(), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let first = started(&err);
    assert!(first.len() < 50, "{err}");
    verify(store.path());

    let o = tvix_build(dir.path(), store.path(), &args);
    let err2 = text(&o.stderr);
    assert!(o.status.success(), "{err2}");
    let second = started(&err2);
    let first_set: BTreeSet<&String> = first.iter().collect();
    let again = second.iter().filter(|d| first_set.contains(d)).count();
    // Only builds that were running at the interruption (at most two) are built again.
    assert!(again <= 2, "built twice: {again}\n{err}\n{err2}");
    assert_eq!(first.len() + second.len() - again, 50, "{err}\n{err2}");
    verify(store.path());
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn outputs_another_tvix_store_has_are_substituted_not_built() {
    check_prerequisites();
    // Build a small graph into one store (as another machine would have), then ask for it
    // in a fresh store with the first as a substituter.
    let n = nonce();
    let (farm, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let graph = ["--argstr", "nonce", &n, "--arg", "n", "6", "--no-out-link"];
    let o = tvix_build(dir.path(), farm.path(), &graph);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let farm_url = format!("local://{}", farm.path().display());
    let substituting: Vec<&str> = graph
        .iter()
        .copied()
        .chain(["--option", "substituters", &farm_url])
        .collect();

    let mut dry = substituting.clone();
    dry.push("--dry-run");
    let o = tvix_build(dir.path(), store.path(), &dry);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    // As with Nix, only the target's outputs are fetched: its inputs are not needed.
    assert!(err.starts_with("this path will be fetched:\n"), "{err}");
    assert!(!err.contains("will be built"), "{err}");

    let o = tvix_build(dir.path(), store.path(), &substituting);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(started(&err).is_empty(), "nothing is built: {err}");
    let copied = err
        .lines()
        .filter(|l| {
            l.starts_with("copying path '") && l.ends_with(&format!("from '{farm_url}'..."))
        })
        .count();
    assert!(copied >= 1, "{err}");
    assert!(text(&o.stdout).trim().ends_with(&format!("-g5-{n}")));
    verify(store.path());

    // `substitute false` builds instead.
    let fresh = tempfile::tempdir().unwrap();
    let mut off = substituting.clone();
    off.extend(["--option", "substitute", "false"]);
    let o = tvix_build(dir.path(), fresh.path(), &off);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(started(&err).len(), 6, "{err}");
}
