//! `tvix store mount` through the kernel's FUSE: a local store holding busybox and a
//! generated tree (big file, symlinks, executables, empty file) is mounted and read back.
//! Needs /dev/fuse and fusermount3 (root here); fails with a clear message without them.
//! Every mount is unmounted by a guard, even when a check panics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TVIX: &str = env!("CARGO_BIN_EXE_tvix");

/// A running `tvix store mount`; dropping it kills the process and runs
/// `fusermount3 -u` so no mount outlives the test.
struct Mounted {
    child: Option<Child>,
    dir: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status();
    }
}

fn require_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "FUSE is unavailable: /dev/fuse is missing"
    );
    assert!(
        Command::new("fusermount3").arg("-V").output().is_ok(),
        "FUSE is unavailable: fusermount3 is not installed (Debian package fuse3)"
    );
}

fn mount(store: &Path, dir: &Path, extra: &[&str]) -> Mounted {
    std::fs::create_dir_all(dir).unwrap();
    let child = Command::new(TVIX)
        .args(["store", "mount"])
        .arg(dir)
        .arg("--store")
        .arg(format!("local://{}", store.display()))
        .args(extra)
        .env("TVIX_SHOW_STATS", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let m = Mounted {
        child: Some(child),
        dir: dir.to_path_buf(),
    };
    // Mounted when the mount point's device differs from its parent's.
    use std::os::unix::fs::MetadataExt;
    let parent = std::fs::metadata(dir.parent().unwrap()).unwrap().dev();
    let start = Instant::now();
    loop {
        if std::fs::metadata(dir)
            .map(|m| m.dev() != parent)
            .unwrap_or(false)
        {
            return m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "mount did not appear"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM and returns the process's standard error; the mount must be gone.
fn stop(mut m: Mounted) -> String {
    let mut child = m.child.take().unwrap();
    unsafe_kill(child.id(), "TERM");
    let start = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "mount did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

fn unsafe_kill(pid: u32, sig: &str) {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
}

fn import(store: &Path, path: &Path) -> String {
    let out = Command::new(TVIX)
        .args(["store", "import"])
        .arg(path)
        .arg("--store")
        .arg(format!("local://{}", store.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = String::from_utf8(out.stdout).unwrap();
    p.trim().rsplit('/').next().unwrap().to_string()
}

fn tree(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(root.join("emptydir")).unwrap();
    let big: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    std::fs::write(root.join("big"), &big).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::write(root.join("sub/deeper/small"), b"hello\n").unwrap();
    std::fs::write(root.join("run.sh"), b"#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("sub/deeper/small", root.join("link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/dangling", root.join("dangling")).unwrap();
}

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn mount_serves_the_store() {
    require_fuse();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let src = tmp.path().join("tree");
    tree(&src);
    let tree_path = import(&store, &src);
    let busybox = Path::new("/var/lib/tvix-tests/busybox");
    let bb_path = busybox.exists().then(|| import(&store, busybox));
    let mnt = tmp.path().join("mnt");
    let m = mount(&store, &mnt, &["--threads", "4"]);
    let t = mnt.join(&tree_path);

    // The root lists the store paths.
    let names: Vec<String> = std::fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.contains(&tree_path), "{names:?}");

    // Attributes as in Nix's store.
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(tmp.path()).unwrap().uid();
    for (p, mode, size) in [
        ("big", 0o100444, 20_000_000u64),
        ("empty", 0o100444, 0),
        ("run.sh", 0o100555, 19),
        ("sub", 0o040555, 0),
        ("emptydir", 0o040555, 0),
    ] {
        let md = std::fs::symlink_metadata(t.join(p)).unwrap();
        assert_eq!(md.mode(), mode, "{p}");
        assert_eq!(md.mtime(), 1, "{p}");
        assert_eq!(md.uid(), uid, "{p}");
        if mode & 0o100000 != 0 {
            assert_eq!(md.size(), size, "{p}");
            assert_eq!(md.blocks(), size.div_ceil(512), "{p}");
        }
    }
    assert_eq!(
        std::fs::read_link(t.join("dangling")).unwrap(),
        Path::new("/nonexistent/dangling")
    );
    // Byte-identical contents, symlinks followed.
    let (ok, out) = sh(&format!(
        "diff -r --no-dereference {} {}",
        src.display(),
        t.display()
    ));
    assert!(ok, "{out}");
    assert_eq!(std::fs::read(t.join("link")).unwrap(), b"hello\n");
    // Writes are refused.
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(t.join("empty"))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(30), "{err}"); // EROFS

    // A range in the middle of the big file, by offset.
    let cmd = |f: &Path| {
        format!(
            "dd if={} bs=4096 skip=2000 count=3 status=none | md5sum",
            f.display()
        )
    };
    assert_eq!(sh(&cmd(&t.join("big"))), sh(&cmd(&src.join("big"))));

    // Concurrent readers.
    let readers: Vec<_> = (0..8)
        .map(|i| {
            let (a, b) = (t.join("big"), src.join("big"));
            std::thread::spawn(move || {
                let (ok, out) = sh(&format!(
                    "dd if={} bs=65536 skip={} count=40 status=none | md5sum; dd if={} bs=65536 skip={} count=40 status=none | md5sum",
                    a.display(), i * 30, b.display(), i * 30
                ));
                assert!(ok, "{out}");
                let lines: Vec<&str> = out.lines().collect();
                assert_eq!(lines[0], lines[1], "reader {i}");
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }

    if let Some(bb) = &bb_path {
        let (ok, out) = sh(&format!("{}/{bb}/bin/busybox echo hi", mnt.display()));
        assert!(ok && out == "hi\n", "{out}");
    }

    // SIGTERM unmounts: the mount point is empty afterwards.
    let err = stop(m);
    assert!(err.contains("unmounted"), "{err}");
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0);
}

#[test]
fn range_reads_fetch_only_covering_chunks() {
    require_fuse();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let src = tmp.path().join("tree");
    tree(&src);
    let p = import(&store, &src);
    let mnt = tmp.path().join("mnt");
    let m = mount(&store, &mnt, &[]);
    let (ok, out) = sh(&format!(
        "dd if={}/{p}/big bs=4096 skip=2500 count=1 status=none | wc -c",
        mnt.display()
    ));
    assert!(ok && out.trim() == "4096", "{out}");
    let err = stop(m);
    let n: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("chunks read: "))
        .unwrap_or_else(|| panic!("no stats in {err}"))
        .parse()
        .unwrap();
    // 20 MB is about 300 chunks; one page plus the kernel's read-ahead needs a few.
    assert!((1..=24).contains(&n), "{n} chunks read\n{err}");
    eprintln!("one 4 KiB read in the middle of a 20 MB file fetched {n} chunks");
}

#[test]
fn corrupt_pack_is_eio_and_no_list_root_and_stale_mount() {
    require_fuse();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let src = tmp.path().join("tree");
    tree(&src);
    let p = import(&store, &src);
    // Corrupt every pack in the middle.
    for e in std::fs::read_dir(store.join("packs")).unwrap() {
        let path = e.unwrap().path();
        let mut b = std::fs::read(&path).unwrap();
        let mid = b.len() / 2;
        for x in &mut b[mid..mid + 64] {
            *x ^= 0x5a;
        }
        std::fs::write(&path, b).unwrap();
    }
    let mnt = tmp.path().join("mnt");
    let m = mount(&store, &mnt, &["--no-list-root"]);
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0, "root listed");
    let big = mnt.join(&p).join("big");
    assert!(big.exists(), "lookup by name fails with --no-list-root");
    let err = std::fs::read(&big).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "{err}"); // EIO

    // A killed process leaves a stale mount; a new mount explains how to clear it.
    let pid = m.child.as_ref().map(|c| c.id()).unwrap();
    unsafe_kill(pid, "KILL");
    let start = Instant::now();
    while std::fs::metadata(&mnt).is_ok() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new(TVIX)
        .args(["store", "mount"])
        .arg(&mnt)
        .arg("--store")
        .arg(format!("local://{}", store.display()))
        .output()
        .unwrap();
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        msg.contains("stale") && msg.contains("fusermount3 -u"),
        "{msg}"
    );
    // The guard runs `fusermount3 -u`, which clears it.
    drop(m);
    assert!(
        std::fs::metadata(&mnt).is_ok(),
        "stale mount was not cleared"
    );
}
