//! `tvix store` end to end: import/export against `nix-store --add` / `--dump`, `cat`,
//! `ls`, `info`, `verify` catching a flipped byte in a chunk file, and several processes
//! importing the same tree into one store at once — on `memory://`, a local store, and a
//! `tvix store daemon` on a unix socket and on loopback TCP. Also `tvix store copy`, and
//! `kill -9` in the middle of an import.

mod common;
use common::daemon::Daemon;
use common::store_tools::{make_tree, nix, ok, tvix};

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn check_url(url: &str, tree: &Path) {
    let t = tree.to_str().unwrap();
    let f = tree.join("sub/deeper/file");
    let f = f.to_str().unwrap();
    let ours = String::from_utf8(ok(tvix(url, &["import", t, f]))).unwrap();
    let theirs = String::from_utf8(nix(&["nix-store", "--add", t, f], true)).unwrap();
    assert_eq!(ours, theirs);
    let sp = ours.lines().next().unwrap().to_string();
    if url == "memory://" {
        // A memory store forgets everything when the process exits.
        assert!(!tvix(url, &["export", &sp]).status.success());
        return;
    }
    assert!(ok(tvix(url, &["export", &sp])) == nix(&["nix-store", "--dump", t], false));
    let sub = format!("{sp}/sub");
    assert!(
        ok(tvix(url, &["export", &sub]))
            == nix(&["nix-store", "--dump", &format!("{t}/sub")], false)
    );
    assert_eq!(
        ok(tvix(url, &["cat", &format!("{sp}/sub/deeper/file")])),
        b"contents\n"
    );
    let ls = String::from_utf8(ok(tvix(url, &["ls", &sp]))).unwrap();
    assert!(ls.contains(" link -> sub/run"), "{ls}");
    assert!(ls.contains("-r--r--r--               700001 big"), "{ls}");
    let info = String::from_utf8(ok(tvix(url, &["info", &sp]))).unwrap();
    let hash =
        String::from_utf8(nix(&["nix-hash", "--type", "sha256", "--base32", t], false)).unwrap();
    assert!(
        info.contains(&format!("NarHash: sha256:{}", hash.trim())),
        "{info}"
    );
    assert!(!tvix(url, &["cat", &format!("{sp}/nope")]).status.success());
    assert!(!tvix(url, &["cat", &format!("{sp}/sub")]).status.success());
    ok(tvix(url, &["verify"]));
}

/// A `tvix store daemon` serving `store` on `listen`.
fn store_daemon(store: &str, listen: &str) -> Daemon {
    Daemon::start(&["store", "--store", store, "daemon", "--listen", listen])
}

/// The daemons the CLI tests run against, each over its own local store in `dir`.
fn daemons(dir: &Path) -> Vec<Daemon> {
    let unix = format!("unix://{}", dir.join("sock").display());
    vec![
        store_daemon(
            &format!("local://{}", dir.join("store-unix").display()),
            &unix,
        ),
        store_daemon(
            &format!("local://{}", dir.join("store-tcp").display()),
            "127.0.0.1:0",
        ),
    ]
}

#[test]
fn import_export_match_nix_through_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let ds = daemons(dir.path());
    assert!(ds[0].url.starts_with("grpc+unix:///"), "{}", ds[0].url);
    assert!(
        ds[1].url.starts_with("grpc+http://127.0.0.1:"),
        "{}",
        ds[1].url
    );
    for d in &ds {
        check_url(&d.url, &tree);
    }
}

#[test]
fn bad_daemon_urls_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sock = format!("grpc+unix://{}", dir.path().join("nobody").display());
    let out = tvix(&sock, &["info"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect"), "{err}");
    let out = tvix("grpc+ftp://x", &["info"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported store URL"));
    let out = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args([
            "store",
            "--store",
            "memory://",
            "daemon",
            "--listen",
            "nowhere",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOST:PORT"));
}

#[test]
fn import_export_match_nix() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    check_url("memory://", &tree);
    check_url(
        &format!("local://{}", dir.path().join("store").display()),
        &tree,
    );
}

#[test]
fn verify_reports_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let store_dir = dir.path().join("store");
    let url = format!("local://{}", store_dir.display());
    let sp = String::from_utf8(ok(tvix(&url, &["import", tree.to_str().unwrap()]))).unwrap();
    let sp = sp.trim();
    ok(tvix(&url, &["verify"]));
    // Flip one byte in the middle of the pack (inside a chunk of "big", which is almost
    // all of it).
    let packs: Vec<_> = fs::read_dir(store_dir.join("packs"))
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    assert_eq!(packs.len(), 1, "{packs:?}");
    let mut b = fs::read(&packs[0]).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    fs::write(&packs[0], b).unwrap();
    let out = tvix(&url, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is corrupt"), "{err}");
    // Reading through the corrupt chunk fails instead of returning bad bytes.
    let out = tvix(&url, &["cat", &format!("{sp}/big")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is corrupt"));
    assert!(!tvix(&url, &["export", sp]).status.success());
}

/// Three processes import the same tree into the store at `url` at once.
fn concurrent_imports(url: &str, tree: &Path) {
    let t = tree.to_str().unwrap();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_tvix"))
            .args(["store", "--store", url, "import", t])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children: Vec<_> = (0..3).map(|_| spawn()).collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let expected = String::from_utf8(nix(&["nix-store", "--add", t], true)).unwrap();
    for o in outs {
        assert_eq!(String::from_utf8(ok(o)).unwrap(), expected);
    }
    ok(tvix(url, &["verify"]));
    assert!(ok(tvix(url, &["export", expected.trim()])) == nix(&["nix-store", "--dump", t], false));
}

fn tree_for_concurrency(dir: &Path) -> std::path::PathBuf {
    let tree = dir.join("tree");
    make_tree(&tree);
    for i in 0..50 {
        fs::write(tree.join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }
    tree
}

#[test]
fn concurrent_imports_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let tree = tree_for_concurrency(dir.path());
    let url = format!("local://{}", dir.path().join("store").display());
    concurrent_imports(&url, &tree);
}

#[test]
fn concurrent_imports_through_a_daemon_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let tree = tree_for_concurrency(dir.path());
    for d in daemons(dir.path()) {
        concurrent_imports(&d.url, &tree);
    }
}

#[test]
fn copy_transfers_only_what_the_target_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let t = tree.to_str().unwrap();
    let f = tree.join("sub/run");
    let f = f.to_str().unwrap();
    let a = format!("local://{}", dir.path().join("a").display());
    let paths = String::from_utf8(ok(tvix(&a, &["import", t, f]))).unwrap();
    let paths: Vec<&str> = paths.lines().collect();
    let d = store_daemon(
        &format!("local://{}", dir.path().join("b").display()),
        &format!("unix://{}", dir.path().join("sock").display()),
    );
    let copy = |from: &str, to: &str, extra: &[&str]| {
        let mut args = vec!["copy", "--from", from, "--to", to];
        args.extend_from_slice(extra);
        let out = tvix("memory://", &args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        err
    };
    // One path by name, then all: the second copy only sends the other path.
    let err = copy(&a, &d.url, &[paths[1]]);
    assert!(
        err.contains("copied 1 path(s): 1 blob(s) (10 bytes), 0 directories"),
        "{err}"
    );
    let err = copy(&a, &d.url, &[]);
    assert!(err.contains("copied 1 path(s)"), "{err}");
    assert!(err.contains("directories"), "{err}");
    let err = copy(&a, &d.url, &[]);
    assert!(
        err.contains("copied 0 path(s): 0 blob(s) (0 bytes), 0 directories"),
        "{err}"
    );
    assert!(ok(tvix(&d.url, &["export", paths[0]])) == nix(&["nix-store", "--dump", t], false));
    ok(tvix(&d.url, &["verify"]));
    // And back into a third store, from the daemon.
    let c = format!("local://{}", dir.path().join("c").display());
    copy(&d.url, &c, &[]);
    let info_a = ok(tvix(&a, &["info"]));
    assert_eq!(ok(tvix(&c, &["info"])), info_a);
    assert_eq!(ok(tvix(&d.url, &["info"])), info_a);
    // A path the source does not have.
    let out = tvix(
        "memory://",
        &[
            "copy",
            "--from",
            &c,
            "--to",
            &a,
            "/nix/store/00000000000000000000000000000000-x",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not valid"));
}

/// Bytes in the pack files of a local store.
fn packed_bytes(store_dir: &Path) -> u64 {
    let Ok(packs) = fs::read_dir(store_dir.join("packs")) else {
        return 0;
    };
    packs
        .filter_map(|f| f.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// `kill -9` of `tvix store import` while it imports a large tree (after a first small
/// path was registered): the store verifies clean, the first path is valid, the
/// interrupted one is not, and importing again completes it.
fn kill_during_import(url: &str, store_dir: &Path, work: &Path) {
    let small = work.join("small");
    make_tree(&small);
    let big = work.join("big");
    fs::create_dir_all(&big).unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..48 {
        let data: Vec<u8> = (0..1 << 21)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        fs::write(big.join(format!("f{i:02}")), data).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["store", "--store", url, "import"])
        .arg(&small)
        .arg(&big)
        .env_remove("TVIX_STORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let first = first.trim().to_string();
    assert!(first.ends_with("-small"), "{first:?}");
    let after_small = packed_bytes(store_dir);
    // Wait until a good part of the big tree is stored, then kill.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while packed_bytes(store_dir) < after_small + (16 << 20) {
        assert!(
            std::time::Instant::now() < deadline,
            "import made no progress"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the import ended before it was killed"
    );

    let out = tvix(url, &["verify"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1 paths: 0 problem(s)"), "{err}");
    let info = String::from_utf8(ok(tvix(url, &["info"]))).unwrap();
    assert!(info.contains(&format!("StorePath: {first}\n")), "{info}");
    assert!(!info.contains("-big"), "{info}");
    ok(tvix(url, &["export", &first]));

    let again = String::from_utf8(ok(tvix(url, &["import", big.to_str().unwrap()]))).unwrap();
    assert!(
        ok(tvix(url, &["export", again.trim()]))
            == nix(&["nix-store", "--dump", big.to_str().unwrap()], false)
    );
    let out = tvix(url, &["verify"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 paths: 0 problem(s)"));
}

#[test]
fn kill_9_during_import_leaves_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let url = format!("local://{}", store_dir.display());
    kill_during_import(&url, &store_dir, dir.path());
}

#[test]
fn kill_9_of_a_daemon_client_during_import_leaves_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let d = store_daemon(
        &format!("local://{}", store_dir.display()),
        &format!("unix://{}", dir.path().join("sock").display()),
    );
    kill_during_import(&d.url, &store_dir, dir.path());
}

/// Evaluation registers the paths it writes in a batch; whatever `tvix eval` and
/// `tvix instantiate` print must already be valid for other processes.
#[test]
fn paths_printed_by_an_evaluation_are_registered() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("local://{}", dir.path().join("store").display());
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tvix"))
            .args(args)
            .args(["--store", &url])
            .env_remove("TVIX_STORE")
            .env_remove("NIX_REMOTE")
            .output()
            .expect("run tvix");
        String::from_utf8(ok(out)).unwrap()
    };
    // `--read-write-mode`: without it `tvix eval` only computes paths, as
    // `nix-instantiate --eval` does (`tests/eval_read_only.rs`).
    let printed = run(&[
        "eval",
        "--strict",
        "--read-write-mode",
        "--expr",
        r#"map (n: builtins.toFile "f${toString n}" "x${toString n}") [ 1 2 3 ]"#,
    ]);
    let paths: Vec<&str> = printed
        .trim()
        .trim_matches(['[', ']'])
        .split_whitespace()
        .map(|p| p.trim_matches('"'))
        .collect();
    assert_eq!(paths.len(), 3, "{printed}");
    for (n, p) in paths.iter().enumerate() {
        let cat = ok(tvix(&url, &["cat", p]));
        assert_eq!(cat, format!("x{}", n + 1).as_bytes());
    }
    let drvs = run(&[
        "instantiate",
        "--expr",
        r#"derivation { name = "d"; system = "x"; builder = "/b"; }"#,
    ]);
    let drv = drvs.trim();
    assert!(drv.ends_with("-d.drv"), "{drvs}");
    ok(tvix(&url, &["info", drv]));
}
