//! `tvix store gc`: what roots reach is kept (with its closure over references), the rest
//! is deleted and its space freed (packs with dead chunks rewritten), a dry run deletes
//! nothing, temporary roots of a living process are kept, `verify` is clean afterwards,
//! a collected path can be added again, and stores that cannot be collected say so.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use tvix_store::castore::gc::GcRoots;

fn tvix(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(args)
        .args(["--store", url])
        .env_remove("TVIX_STORE")
        .env_remove("NIX_REMOTE")
        .output()
        .expect("run tvix")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "tvix failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{t}-{}", std::process::id())
}

/// Every registered path.
fn valid_paths(url: &str) -> BTreeSet<String> {
    ok(tvix(url, &["store", "info"]))
        .lines()
        .filter_map(|l| l.strip_prefix("StorePath: "))
        .map(str::to_string)
        .collect()
}

fn import(url: &str, files: &[&Path]) -> Vec<String> {
    let mut args = vec!["store", "import"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    ok(tvix(url, &args)).lines().map(str::to_string).collect()
}

fn pack_bytes(store: &Path) -> u64 {
    fs::read_dir(store.join("packs"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn verify_clean(url: &str) {
    let out = tvix(url, &["store", "verify"]);
    assert!(
        out.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Random bytes (so no chunk is shared with another file).
fn random_file(path: &Path, len: usize) {
    let mut data = Vec::with_capacity(len);
    let mut x: u64 = 0x9e3779b97f4a7c15 ^ len as u64 ^ nonce().len() as u64;
    for b in nonce().bytes() {
        x = x.wrapping_mul(31).wrapping_add(b as u64);
    }
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    fs::write(path, data).unwrap();
}

#[test]
fn gc_keeps_what_roots_reach_and_deletes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let url = format!("local://{}", store.display());
    let n = nonce();
    let work = dir.path().join("work");
    fs::create_dir_all(work.join("src")).unwrap();
    fs::write(work.join("src/file"), format!("source {n}")).unwrap();
    fs::write(work.join("inner"), format!("inner {n}")).unwrap();

    // A derivation referring to a source and to a text file that refers to another
    // source: its closure has four paths.
    let expr = format!(
        r#"derivation {{ name = "root-{n}"; system = "x"; builder = "/b";
            src = {src}; dep = builtins.toFile "t-{n}" "${{{inner}}}"; }}"#,
        src = work.join("src").display(),
        inner = work.join("inner").display(),
    );
    let drv = ok(tvix(&url, &["instantiate", "--expr", &expr]))
        .trim()
        .to_string();
    let closure = valid_paths(&url);
    assert_eq!(closure.len(), 4, "{closure:?}");
    assert!(closure.contains(&drv));
    // A direct root for the derivation.
    GcRoots::for_store_url(&url)
        .unwrap()
        .add_direct("drv", &drv)
        .unwrap();

    // In one process, so in one pack: a path kept by an indirect root and two garbage
    // paths, one of them large.
    random_file(&work.join("kept"), 300_000);
    random_file(&work.join("garbage-big"), 2_000_000);
    fs::write(work.join("garbage-small"), format!("small {n}")).unwrap();
    let imported = import(
        &url,
        &[
            &work.join("kept"),
            &work.join("garbage-big"),
            &work.join("garbage-small"),
        ],
    );
    let (kept, garbage) = (imported[0].clone(), imported[1..].to_vec());
    let link = work.join("result");
    std::os::unix::fs::symlink(&kept, &link).unwrap();
    GcRoots::for_store_url(&url)
        .unwrap()
        .add_indirect(&link)
        .unwrap();
    // A root whose link is gone, and one whose link points elsewhere: both dead.
    let gone = work.join("gone");
    std::os::unix::fs::symlink(&kept, &gone).unwrap();
    let roots = GcRoots::for_store_url(&url).unwrap();
    let gone_root = roots.add_indirect(&gone).unwrap();
    fs::remove_file(&gone).unwrap();
    let elsewhere = work.join("elsewhere");
    std::os::unix::fs::symlink("/tmp", &elsewhere).unwrap();
    let elsewhere_root = roots.add_indirect(&elsewhere).unwrap();

    let before = valid_paths(&url);
    let bytes_before = pack_bytes(&store);

    // A dry run lists the garbage and deletes nothing.
    let dry = ok(tvix(&url, &["store", "gc", "--dry-run"]));
    let listed: BTreeSet<String> = dry.lines().map(str::to_string).collect();
    assert_eq!(listed, garbage.iter().cloned().collect::<BTreeSet<_>>());
    assert_eq!(valid_paths(&url), before);
    assert_eq!(pack_bytes(&store), bytes_before);
    assert!(gone_root.symlink_metadata().is_ok());

    let out = tvix(&url, &["store", "gc"]);
    let stdout = ok(out.clone());
    assert!(
        stdout.starts_with("2 store paths deleted, ") && stdout.ends_with(" MiB freed\n"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for g in &garbage {
        assert!(stderr.contains(&format!("deleting '{g}'")), "{stderr}");
    }
    let mut expected = closure.clone();
    expected.insert(kept.clone());
    assert_eq!(valid_paths(&url), expected);
    // The dead roots were pruned.
    assert!(gone_root.symlink_metadata().is_err());
    assert!(elsewhere_root.symlink_metadata().is_err());
    // The large garbage file's chunks are gone from the disk: its pack was rewritten
    // with only the kept file's chunks.
    let bytes_after = pack_bytes(&store);
    assert!(
        bytes_after + 2_000_000 <= bytes_before,
        "{bytes_before} -> {bytes_after}"
    );
    let freed: f64 = stdout
        .trim_start_matches("2 store paths deleted, ")
        .trim_end_matches(" MiB freed\n")
        .parse()
        .unwrap();
    assert!(freed >= 1.9, "{stdout}");
    verify_clean(&url);
    let cat = tvix(&url, &["store", "cat", &kept]);
    assert_eq!(cat.stdout, fs::read(work.join("kept")).unwrap());

    // A second collection finds nothing.
    assert_eq!(
        ok(tvix(&url, &["store", "gc"])),
        "0 store paths deleted, 0.00 MiB freed\n"
    );

    // Without its link, the kept path goes; with the direct root gone, the closure.
    fs::remove_file(&link).unwrap();
    fs::remove_file(roots.dir().join("drv")).unwrap();
    let stdout = ok(tvix(&url, &["store", "gc"]));
    assert!(stdout.starts_with("5 store paths deleted"), "{stdout}");
    assert!(valid_paths(&url).is_empty());
    verify_clean(&url);

    // A collected path can be added again.
    let again = import(&url, &[&work.join("garbage-big")]);
    assert_eq!(again[0], garbage[0]);
    verify_clean(&url);
    let cat = tvix(&url, &["store", "cat", &again[0]]);
    assert_eq!(cat.stdout, fs::read(work.join("garbage-big")).unwrap());
}

#[test]
fn a_held_temporary_root_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("local://{}", dir.path().join("store").display());
    let f = dir.path().join("held");
    fs::write(&f, format!("held {}", nonce())).unwrap();
    let p = import(&url, &[&f]).remove(0);
    let mut temp = GcRoots::for_store_url(&url).unwrap().temp_roots().unwrap();
    temp.add(&p).unwrap();
    let stdout = ok(tvix(&url, &["store", "gc"]));
    assert!(stdout.starts_with("0 store paths deleted"), "{stdout}");
    assert!(valid_paths(&url).contains(&p));
    drop(temp);
    let stdout = ok(tvix(&url, &["store", "gc"]));
    assert!(stdout.starts_with("1 store paths deleted"), "{stdout}");
    assert!(valid_paths(&url).is_empty());
    verify_clean(&url);
}

#[test]
fn stores_that_cannot_be_collected_say_so() {
    let out = tvix("memory://", &["store", "gc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not support garbage collection"));

    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("sock");
    let backing = format!("local://{}", dir.path().join("store").display());
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["store", "--store", &backing, "daemon", "--listen"])
        .arg(format!("unix://{}", sock.display()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let url = format!("grpc+unix://{}", sock.display());
    let out = tvix(&url, &["store", "gc", "--dry-run"]);
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not support garbage collection"),
        "{stderr}"
    );
}

/// What a crash in the middle of a compaction leaves (a pack no location names, whether
/// the new one before the commit or the old one after it) is removed by the next
/// collection, and nothing live is lost.
#[test]
fn unnamed_packs_are_removed_and_live_data_stays() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let url = format!("local://{}", store.display());
    let f = dir.path().join("live");
    random_file(&f, 500_000);
    let p = import(&url, &[&f]).remove(0);
    GcRoots::for_store_url(&url)
        .unwrap()
        .add_direct("live", &p)
        .unwrap();
    let orphan = store.join("packs/1-2-3-gc.pack");
    fs::write(&orphan, vec![0x5a; 100_000]).unwrap();
    let stdout = ok(tvix(&url, &["store", "gc"]));
    assert_eq!(stdout, "0 store paths deleted, 0.10 MiB freed\n");
    assert!(!orphan.exists());
    verify_clean(&url);
    assert_eq!(
        tvix(&url, &["store", "cat", &p]).stdout,
        fs::read(&f).unwrap()
    );
}

/// A process that wrote to the store (here a daemon serving it) holds collection off
/// until it exits; the collector says it is waiting.
#[test]
fn gc_waits_for_writers() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("sock");
    let url = format!("local://{}", dir.path().join("store").display());
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["store", "--store", &url, "daemon", "--listen"])
        .arg(format!("unix://{}", sock.display()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let f = dir.path().join("through-the-daemon");
    fs::write(&f, format!("daemon {}", nonce())).unwrap();
    let remote = format!("grpc+unix://{}", sock.display());
    let p = import(&remote, &[&f]).remove(0);

    let mut gc = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["store", "--store", &url, "gc"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(gc.try_wait().unwrap().is_none(), "gc ran beside a writer");
    assert!(valid_paths(&url).contains(&p));
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let status = gc.wait().unwrap();
    let mut stdout = String::new();
    gc.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    gc.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("waiting for the processes using the store"),
        "{stderr}"
    );
    assert!(stdout.starts_with("1 store paths deleted"), "{stdout}");
    verify_clean(&url);
}
