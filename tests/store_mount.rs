//! `tvix store mount` through the kernel's FUSE: a local store holding busybox and a
//! generated tree (big file, symlinks, executables, empty file) is mounted and read back.
//! Needs /dev/fuse and fusermount3 (root here); fails with a clear message without them.
//! Every mount is unmounted by a guard, even when a check panics.

use std::ffi::OsStr;
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
    mount_url(&format!("local://{}", store.display()), dir, extra)
}

/// Mounts the store `url` names (any store URL) on `dir`.
fn mount_url(url: &str, dir: &Path, extra: &[&str]) -> Mounted {
    std::fs::create_dir_all(dir).unwrap();
    let child = Command::new(TVIX)
        .args(["store", "mount"])
        .arg(dir)
        .arg("--store")
        .arg(url)
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
fn stop(m: Mounted) -> String {
    stop_with(m, "TERM")
}

/// Sends `sig` (`INT`, `TERM`) and returns the process's standard error once it ended.
fn stop_with(mut m: Mounted, sig: &str) -> String {
    let mut child = m.child.take().unwrap();
    unsafe_kill(child.id(), sig);
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

/// A `tvix store daemon` serving a local store on a Unix socket, killed when dropped.
struct Daemon {
    child: Child,
    url: String,
}

impl Daemon {
    /// Starts the daemon and waits (at most 20 s) for its "serving ... on URL" line.
    fn start(store: &Path, socket: &Path) -> Daemon {
        use std::io::BufRead;
        let mut child = Command::new(TVIX)
            .args(["store", "--store"])
            .arg(format!("local://{}", store.display()))
            .args(["daemon", "--listen"])
            .arg(format!("unix://{}", socket.display()))
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run tvix store daemon");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(stderr);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the daemon never blocks on a full pipe.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tvix store daemon did not start within 20 s");
            }
        };
        let Some((_, url)) = line.trim().rsplit_once(" on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tvix store daemon did not start: {line:?}");
        };
        Daemon {
            url: url.to_string(),
            child,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Size of the big file of the awkward tree.
const BIG: usize = 100 << 20;
/// Number of small files in `many/` of the awkward tree.
const MANY: usize = 10_000;

/// Deterministic bytes that FastCDC cannot deduplicate (xorshift).
fn noise(len: usize, mut x: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Names the awkward tree holds that are hard for file systems and tools.
fn odd_names() -> Vec<std::ffi::OsString> {
    use std::os::unix::ffi::OsStringExt;
    vec![
        std::ffi::OsString::from_vec(b"latin1-caf\xe9".to_vec()),
        std::ffi::OsString::from_vec(b"\xff\xfe-not-utf8\x01".to_vec()),
        std::ffi::OsString::from("n".repeat(255)),
        std::ffi::OsString::from("with space and 'quote'"),
    ]
}

/// The awkward tree: nested directories, an empty directory and file, executables,
/// symlinks (relative, absolute, dangling, to a directory), non-UTF-8 and 255-byte
/// names, a 100 MiB file and 10 000 small files in one directory.
fn awkward_tree(root: &Path) {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let exec = |p: &Path| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    std::fs::create_dir_all(root.join("a/b/c/d/e")).unwrap();
    std::fs::create_dir_all(root.join("emptydir")).unwrap();
    std::fs::write(root.join("a/b/c/d/e/deep"), b"deep\n").unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::write(root.join("big"), noise(BIG, 0x9e3779b97f4a7c15)).unwrap();
    std::fs::write(root.join("a/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    exec(&root.join("a/tool"));
    std::fs::write(root.join("a/b/empty-exec"), b"").unwrap();
    exec(&root.join("a/b/empty-exec"));
    symlink("a/b/c/d/e/deep", root.join("rel-link")).unwrap();
    symlink("a/b", root.join("dir-link")).unwrap();
    symlink("/nonexistent/dangling", root.join("dangling-abs")).unwrap();
    symlink("no/such/file", root.join("a/dangling-rel")).unwrap();
    symlink("n".repeat(255), root.join("link-to-long")).unwrap();
    for (i, name) in odd_names().into_iter().enumerate() {
        std::fs::write(root.join(&name), format!("odd {i}\n")).unwrap();
    }
    std::fs::create_dir_all(root.join("many")).unwrap();
    for i in 0..MANY {
        // Sizes from 0 to a few KiB, some executable.
        let p = root.join(format!("many/f{i:05}"));
        std::fs::write(&p, noise(i % 3000, i as u64 + 1)).unwrap();
        if i % 7 == 0 {
            exec(&p);
        }
    }
}

/// Checks a mounted copy `t` of the awkward tree `src`: contents, attributes, ranges,
/// concurrent readers and refused writes.
fn check_awkward(src: &Path, t: &Path, what: &str) {
    use std::os::unix::fs::MetadataExt;
    let started = Instant::now();
    // Byte-identical, symlinks compared as links.
    let (ok, out) = sh(&format!(
        "LC_ALL=C diff -r --no-dereference '{}' '{}'",
        src.display(),
        t.display()
    ));
    assert!(ok, "{what}: diff -r: {out}");

    // Every entry's mode and mtime, as in Nix's store.
    let uid = std::fs::metadata(src).unwrap().uid();
    let mut seen = 0;
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let (s, m) = (
            std::fs::symlink_metadata(src.join(&rel)).unwrap(),
            std::fs::symlink_metadata(t.join(&rel))
                .unwrap_or_else(|e| panic!("{what}: stat {rel:?}: {e}")),
        );
        let expected = if s.is_dir() {
            0o040555
        } else if s.file_type().is_symlink() {
            0o120777
        } else if s.mode() & 0o100 != 0 {
            0o100555
        } else {
            0o100444
        };
        assert_eq!(m.mode(), expected, "{what}: mode of {rel:?}");
        assert_eq!(m.mtime(), 1, "{what}: mtime of {rel:?}");
        assert_eq!(m.uid(), uid, "{what}: owner of {rel:?}");
        if s.is_file() {
            assert_eq!(m.size(), s.size(), "{what}: size of {rel:?}");
            assert_eq!(
                m.blocks(),
                s.size().div_ceil(512),
                "{what}: blocks of {rel:?}"
            );
        }
        seen += 1;
        if s.is_dir() {
            for e in std::fs::read_dir(src.join(&rel)).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
        }
    }
    assert!(seen > MANY, "{what}: walked only {seen} entries");
    // `stat` itself agrees (the command users run).
    let (ok, out) = sh(&format!(
        "stat -c '%a %Y' '{}' '{}' '{}'",
        t.join("big").display(),
        t.join("a/tool").display(),
        t.join("emptydir").display()
    ));
    assert!(ok && out == "444 1\n555 1\n555 1\n", "{what}: stat: {out}");

    // Random offsets, block sizes that cross chunk boundaries and the end of the file.
    let mut x: u64 = 0x1234_5678;
    for i in 0..24 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let bs = [1usize, 512, 4096, 65536, 1000, 3][i % 6];
        let skip = (x >> 20) as usize % (BIG / bs + 2);
        let count = 1 + (x as usize % 17);
        let cmd = |f: &Path| {
            format!(
                "dd if='{}' bs={bs} skip={skip} count={count} status=none | md5sum",
                f.display()
            )
        };
        let (a, b) = (sh(&cmd(&t.join("big"))), sh(&cmd(&src.join("big"))));
        assert!(a.0, "{what}: {}", a.1);
        assert_eq!(a, b, "{what}: dd bs={bs} skip={skip} count={count}");
    }

    // Eight concurrent readers, each a slice of the big file and of the small files.
    let readers: Vec<_> = (0..8usize)
        .map(|r| {
            let (src, t) = (src.to_path_buf(), t.to_path_buf());
            std::thread::spawn(move || {
                use std::io::{Read, Seek, SeekFrom};
                let part = BIG / 8;
                let mut got = vec![0u8; part];
                let mut f = std::fs::File::open(t.join("big")).unwrap();
                f.seek(SeekFrom::Start((r * part) as u64)).unwrap();
                f.read_exact(&mut got).unwrap();
                let mut want = vec![0u8; part];
                let mut g = std::fs::File::open(src.join("big")).unwrap();
                g.seek(SeekFrom::Start((r * part) as u64)).unwrap();
                g.read_exact(&mut want).unwrap();
                assert!(got == want, "reader {r}: big differs");
                for i in (r..MANY).step_by(8 * 5) {
                    let n = format!("many/f{i:05}");
                    assert_eq!(
                        std::fs::read(t.join(&n)).unwrap(),
                        std::fs::read(src.join(&n)).unwrap(),
                        "reader {r}: {n}"
                    );
                }
            })
        })
        .collect();
    for r in readers {
        r.join()
            .unwrap_or_else(|_| panic!("{what}: a reader failed"));
    }

    // Every kind of write is refused with EROFS.
    let erofs = |r: std::io::Result<()>, op: &str| {
        let e = r.expect_err(op);
        assert_eq!(e.raw_os_error(), Some(30), "{what}: {op}: {e}");
    };
    let write_open = |p: &Path, create: bool| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(create)
            .truncate(false)
            .open(p)
            .map(drop)
    };
    erofs(write_open(&t.join("big"), false), "open for writing");
    erofs(write_open(&t.join("a/new"), true), "create");
    erofs(std::fs::create_dir(t.join("emptydir/x")), "mkdir");
    erofs(std::fs::remove_file(t.join("empty")), "unlink");
    erofs(std::fs::rename(t.join("empty"), t.join("moved")), "rename");
    erofs(
        std::os::unix::fs::symlink("x", t.join("newlink")),
        "symlink",
    );
    use std::os::unix::fs::PermissionsExt;
    erofs(
        std::fs::set_permissions(t.join("big"), std::fs::Permissions::from_mode(0o644)),
        "chmod",
    );
    eprintln!("{what}: checks took {:?}", started.elapsed());
}

/// The awkward tree is generated and imported once, then mounted from the local store
/// (stopped by SIGINT) and through a `tvix store daemon` over a Unix socket (stopped by
/// SIGTERM); both mounts must equal the original.
#[test]
fn awkward_tree_local_and_over_grpc() {
    require_fuse();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let src = tmp.path().join("tree");
    let t0 = Instant::now();
    awkward_tree(&src);
    let p = import(&store, &src);
    eprintln!("generated and imported in {:?}", t0.elapsed());

    // Local store; SIGINT unmounts.
    let mnt = tmp.path().join("mnt-local");
    let m = mount(&store, &mnt, &["--threads", "4"]);
    check_awkward(&src, &mnt.join(&p), "local");
    let err = stop_with(m, "INT");
    assert!(err.contains("unmounted"), "{err}");
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0, "still mounted");

    // The same store served by a daemon; SIGTERM unmounts.
    let daemon = Daemon::start(&store, &tmp.path().join("daemon.sock"));
    assert!(daemon.url.starts_with("grpc+unix://"), "{}", daemon.url);
    let mnt = tmp.path().join("mnt-grpc");
    let m = mount_url(&daemon.url, &mnt, &["--threads", "4"]);
    let names: Vec<_> = std::fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.iter().any(|n| *n == *p), "root over gRPC: {names:?}");
    check_awkward(&src, &mnt.join(&p), "grpc");
    let err = stop_with(m, "TERM");
    assert!(err.contains("unmounted"), "{err}");
    let received: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("blob bytes received: "))
        .unwrap_or_else(|| panic!("no stats in {err}"))
        .parse()
        .unwrap();
    // At least the whole big file went over the wire (the checks read all of it).
    assert!(received >= BIG as u64, "{received} bytes received");
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0, "still mounted");
    drop(daemon);
}

/// Reading one small file of a 100 MiB store path over gRPC pulls that file's bytes (and
/// the kernel's read-ahead), not the path.
#[test]
fn grpc_mount_pulls_only_what_is_read() {
    require_fuse();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let src = tmp.path().join("input");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big"), noise(BIG, 7)).unwrap();
    std::fs::write(src.join("wanted"), noise(10_000, 8)).unwrap();
    let p = import(&store, &src);
    let daemon = Daemon::start(&store, &tmp.path().join("daemon.sock"));
    let mnt = tmp.path().join("mnt");
    let m = mount_url(&daemon.url, &mnt, &[]);
    assert_eq!(
        std::fs::read(mnt.join(&p).join("wanted")).unwrap(),
        noise(10_000, 8)
    );
    let err = stop(m);
    let received: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("blob bytes received: "))
        .unwrap_or_else(|| panic!("no stats in {err}"))
        .parse()
        .unwrap();
    assert_eq!(received, 10_000, "{err}");
    drop(daemon);
}

/// `tvix build` makes a program whose interpreter is in the tvix store; `tvix store run`
/// runs `./result/bin/hello` with the store mounted on `/nix/store` in a private mount
/// namespace, while the host's `/nix/store` (a reference Nix's) stays as it was.
#[test]
fn store_run_runs_what_was_built() {
    require_fuse();
    let busybox = Path::new("/var/lib/tvix-tests/busybox");
    assert!(
        busybox.join("bin/busybox").exists(),
        "missing the static busybox at {} (scripts/setup.sh lays it out)",
        busybox.display()
    );
    assert!(
        Path::new("/nix/store").is_dir(),
        "/nix/store is missing (the reference Nix's store)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let store = format!("local://{}", tmp.path().join("store").display());
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    std::fs::write(
        tmp.path().join("hello.nix"),
        format!(
            r#"let bb = builtins.path {{ path = {}; name = "busybox"; }}; in
derivation {{
  name = "hello-{nonce}";
  system = "x86_64-linux";
  builder = "${{bb}}/bin/sh";
  args = [ "-c" ''
    ${{bb}}/bin/busybox mkdir -p $out/bin
    printf '#!${{bb}}/bin/sh\necho "hello from $0 with $#"\n' > $out/bin/hello
    ${{bb}}/bin/busybox chmod +x $out/bin/hello
  '' ];
}}"#,
            busybox.display()
        ),
    )
    .unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(TVIX)
        .args(["build", "hello.nix", "--store", &store])
        .current_dir(tmp.path())
        .env_remove("TVIX_BUILD_SERVICE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tvix build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(built.starts_with("/nix/store/"), "{built}");
    // Not in the host's /nix/store: only the mount has it.
    assert!(!Path::new(&built).exists(), "{built} exists on the host");

    let run = |args: &[&str]| {
        Command::new("timeout")
            .arg("60")
            .arg(TVIX)
            .args(["store", "--store", &store, "run", "--"])
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };
    let out = run(&["./result/bin/hello", "a", "b"]);
    assert!(
        out.status.success(),
        "tvix store run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from ./result/bin/hello with 2\n"
    );
    // The command's exit status is passed on.
    let out = run(&["sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    // Alone, the tvix store hides the host's paths; `--over-host` keeps them visible.
    let host_entry = std::fs::read_dir("/nix/store")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| !n.starts_with('.'));
    let test_both = |extra: &[&str], entry: &str| {
        let script = format!("test -e /nix/store/{entry} && ./result/bin/hello");
        Command::new("timeout")
            .arg("60")
            .arg(TVIX)
            .args(["store", "--store", &store, "run"])
            .args(extra)
            .args(["--", "sh", "-c", &script])
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };
    if let Some(entry) = host_entry {
        let alone = test_both(&[], &entry);
        assert_eq!(
            alone.status.code(),
            Some(1),
            "{entry} seen without --over-host"
        );
        let over = test_both(&["--over-host"], &entry);
        assert!(
            over.status.success(),
            "--over-host: {}",
            String::from_utf8_lossy(&over.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&over.stdout),
            "hello from ./result/bin/hello with 0\n"
        );
    }
    // Nothing leaked into the host's mount namespace.
    assert!(!Path::new(&built).exists(), "{built} visible on the host");
    let (_, mounts) = sh("grep tvix-store /proc/self/mounts || true");
    assert!(!mounts.contains("/nix/store"), "{mounts}");
}

/// With a binary cache among the substituters, a path the mounted store lacks appears
/// on first access: fetched with its closure from a signed `file://` cache (written by
/// `tvix store copy`, signed with a key `nix-store --generate-binary-cache-key` made),
/// registered in the mounted store, and readable through the mount. A path no cache
/// has stays missing.
#[test]
fn missing_paths_are_substituted_on_first_access() {
    require_fuse();
    let tmp = tempfile::tempdir().unwrap();
    let (source, target, cache) = (
        tmp.path().join("source"),
        tmp.path().join("target"),
        tmp.path().join("cache"),
    );
    let src = tmp.path().join("tree");
    tree(&src);
    let name = import(&source, &src);
    let (sk, pk) = (tmp.path().join("k.sk"), tmp.path().join("k.pk"));
    let keys = Command::new("nix-store")
        .arg("--generate-binary-cache-key")
        .args([OsStr::new("mount-test-1"), sk.as_os_str(), pk.as_os_str()])
        .output()
        .expect("nix-store --generate-binary-cache-key");
    assert!(
        keys.status.success(),
        "{}",
        String::from_utf8_lossy(&keys.stderr)
    );
    let copied = Command::new(TVIX)
        .args(["store", "copy", "--from"])
        .arg(format!("local://{}", source.display()))
        .arg("--to")
        .arg(format!("file://{}", cache.display()))
        .arg("--secret-key-file")
        .arg(&sk)
        .arg(format!("/nix/store/{name}"))
        .output()
        .unwrap();
    assert!(
        copied.status.success(),
        "tvix store copy: {}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let pk = std::fs::read_to_string(&pk).unwrap().trim().to_string();
    let cache_url = format!("file://{}", cache.display());
    let dir = tmp.path().join("mnt");
    // The path appears on first access, with the tree's contents. (An imported tree is
    // content-addressed, which Nix accepts without a trusted signature; the signature
    // checks of input-addressed paths are tests/binary_cache.rs'.)
    let m = mount(
        &target,
        &dir,
        &[
            "--option",
            "substituters",
            &cache_url,
            "--option",
            "trusted-public-keys",
            &pk,
        ],
    );
    let (same, diff) = sh(&format!(
        "diff -r --no-dereference {} {}",
        src.display(),
        dir.join(&name).display()
    ));
    assert!(same, "{diff}");
    let missing = "00000000000000000000000000000000-not-cached";
    assert!(!dir.join(missing).exists());
    let err = stop(m);
    assert!(
        err.contains(&format!("copying path '/nix/store/{name}'")),
        "{err}"
    );
    // Registered in the mounted store: there without the cache now.
    let m = mount(&target, &dir, &["--option", "substituters", ""]);
    assert!(dir.join(&name).is_dir());
    stop(m);
}
