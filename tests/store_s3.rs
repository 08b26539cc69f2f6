//! The store past one machine: `tvix store daemon --chunks s3://... --metadata
//! postgresql://...` against real servers on loopback, an S3-compatible server
//! (`moto_server`, installed by `scripts/setup.sh`) and PostgreSQL (Debian's, run as
//! `nobody` when the tests run as root, since it refuses to run as root), each started
//! by the test in a temporary directory and stopped at its end. A server that cannot be
//! started fails the test with the reason.
//!
//! Two daemons over one bucket and one database serve one store: what one imports, the
//! other exports, byte for byte what `nix-store --dump` writes; `kill -9` of a daemon
//! in the middle of an import leaves a store that verifies clean with the interrupted
//! path not registered; two daemons importing the same tree at once store each chunk
//! once.

mod common;
use common::daemon::Daemon;
use common::store_tools::{make_tree, nix, ok, tvix};

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// How long a server may take to start.
const START_LIMIT: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("pick a free loopback port")
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// Stops a server: SIGINT (a fast shutdown for PostgreSQL, a clean stop for moto), then
/// SIGKILL if it has not ended within a few seconds.
fn stop(child: &mut Child) {
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A throwaway PostgreSQL server on a loopback port, its data in a temporary directory.
struct Postgres {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Postgres {
    fn start() -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let initdb = Path::new(PG_BIN).join("initdb");
        assert!(
            initdb.exists(),
            "PostgreSQL is not installed ({} is missing): run scripts/setup.sh",
            initdb.display()
        );
        // PostgreSQL refuses to run as root: run it as nobody, in a directory it owns.
        let as_server = |program: &Path| {
            let mut c;
            if is_root() {
                let chown = Command::new("chown")
                    .args(["-R", "nobody:nogroup"])
                    .arg(dir.path())
                    .status()
                    .expect("run chown");
                assert!(
                    chown.success(),
                    "cannot give the PostgreSQL directory to nobody"
                );
                c = Command::new("setpriv");
                c.args([
                    "--reuid=nobody",
                    "--regid=nogroup",
                    "--clear-groups",
                    "--reset-env",
                ]);
                c.arg(program);
            } else {
                c = Command::new(program);
            }
            c
        };
        let out = as_server(&initdb)
            .args(["-A", "trust", "-U", "tvix", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = fs::File::create(dir.path().join("postgres.log")).unwrap();
        if is_root() {
            let _ = Command::new("chown")
                .args(["nobody:nogroup"])
                .arg(dir.path().join("postgres.log"))
                .status();
        }
        let child = as_server(&Path::new(PG_BIN).join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "fsync=on", "-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        let mut pg = Postgres {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let ready = Command::new(Path::new(PG_BIN).join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return pg;
            }
            if let Ok(Some(status)) = pg.child.try_wait() {
                let log =
                    fs::read_to_string(pg._dir.path().join("postgres.log")).unwrap_or_default();
                panic!("PostgreSQL exited at start ({status}): {log}");
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not accept connections within {START_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        format!("postgresql://tvix@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// `moto_server` on PATH or where `scripts/setup.sh` installs it.
fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("moto_server");
            if p.is_file() {
                return p;
            }
        }
    }
    let venv = PathBuf::from("/var/lib/tvix-tests/moto/bin/moto_server");
    assert!(
        venv.is_file(),
        "moto_server (PyPI's moto[server]) is not installed: run scripts/setup.sh"
    );
    venv
}

/// An S3-compatible server on a loopback port with one bucket, `tvix`.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start() -> Moto {
        let port = free_port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let mut moto = Moto { child, port };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited at start ({status})");
            }
            let made = Command::new("curl")
                .args(["-sf", "-X", "PUT"])
                .arg(format!("http://127.0.0.1:{port}/tvix"))
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if made {
                return moto;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer within {START_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn chunks_url(&self) -> String {
        format!(
            "s3://tvix/store?endpoint=http://127.0.0.1:{}&region=us-east-1",
            self.port
        )
    }

    /// The objects in the bucket: (count, bytes).
    fn objects(&self) -> (u64, u64) {
        let (mut n, mut bytes) = (0, 0);
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("http://127.0.0.1:{}/tvix?list-type=2", self.port);
            if let Some(t) = &token {
                url.push_str(&format!("&continuation-token={t}"));
            }
            let out = Command::new("curl").args(["-sf", &url]).output().unwrap();
            assert!(out.status.success(), "listing the bucket failed");
            let xml = String::from_utf8_lossy(&out.stdout).into_owned();
            for size in xml.split("<Size>").skip(1) {
                n += 1;
                bytes += size
                    .split('<')
                    .next()
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            token = xml
                .split("<NextContinuationToken>")
                .nth(1)
                .and_then(|s| s.split('<').next())
                .map(str::to_string);
            if token.is_none() {
                return (n, bytes);
            }
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A `tvix store daemon` over the bucket and the database.
fn store_daemon(moto: &Moto, pg: &Postgres) -> Daemon {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
    c.args(["store", "daemon", "--listen", "127.0.0.1:0", "--chunks"])
        .arg(moto.chunks_url())
        .arg("--metadata")
        .arg(pg.url())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
    Daemon::spawn(c)
}

/// `n` files of `size` pseudo-random bytes (no two chunks alike) under `dir`.
fn random_tree(dir: &Path, n: usize, size: usize, seed: u64) {
    fs::create_dir_all(dir).unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ seed;
    for i in 0..n {
        let data: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        fs::write(dir.join(format!("f{i:02}")), data).unwrap();
    }
}

/// The summary line of `tvix store verify` through `url`, which must succeed.
fn verify(url: &str) -> String {
    let out = tvix(url, &["verify"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "verify failed: {err}");
    err.lines().last().unwrap_or_default().to_string()
}

#[test]
fn what_one_daemon_imports_the_other_exports_as_nix_does() {
    let (pg, moto) = (Postgres::start(), Moto::start());
    let (d1, d2) = (store_daemon(&moto, &pg), store_daemon(&moto, &pg));
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let t = tree.to_str().unwrap();
    let f = tree.join("sub/deeper/file");
    let f = f.to_str().unwrap();

    let ours = String::from_utf8(ok(tvix(&d1.url, &["import", t, f]))).unwrap();
    let theirs = String::from_utf8(nix(&["nix-store", "--add", t, f], true)).unwrap();
    assert_eq!(ours, theirs);
    let sp = ours.lines().next().unwrap().to_string();
    assert!(ok(tvix(&d2.url, &["export", &sp])) == nix(&["nix-store", "--dump", t], false));
    let sub = format!("{sp}/sub");
    assert!(
        ok(tvix(&d2.url, &["export", &sub]))
            == nix(&["nix-store", "--dump", &format!("{t}/sub")], false)
    );
    assert_eq!(
        ok(tvix(&d2.url, &["cat", &format!("{sp}/sub/deeper/file")])),
        b"contents\n"
    );
    let ls = String::from_utf8(ok(tvix(&d2.url, &["ls", &sp]))).unwrap();
    assert!(ls.contains(" link -> sub/run"), "{ls}");
    let info = String::from_utf8(ok(tvix(&d2.url, &["info", &sp]))).unwrap();
    let hash =
        String::from_utf8(nix(&["nix-hash", "--type", "sha256", "--base32", t], false)).unwrap();
    assert!(
        info.contains(&format!("NarHash: sha256:{}", hash.trim())),
        "{info}"
    );
    // Nix's export format, written through one daemon, read back through the other.
    let export = ok(tvix(&d1.url, &["export", "--format", "nix", &sp]));
    let mut import = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["store", "--store", "memory://", "import", "--format", "nix"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut import.stdin.take().unwrap(), &export).unwrap();
    ok(import.wait_with_output().unwrap());

    // The daemon verifies its own storage: real counts, chunks included.
    let summary = verify(&d2.url);
    assert!(summary.ends_with("2 paths: 0 problem(s)"), "{summary}");
    let chunks: u64 = summary
        .strip_prefix("checked ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(chunks >= 5, "{summary}");
    // Small chunks are packed: far fewer objects than chunks.
    let (objects, _) = moto.objects();
    assert!(
        objects >= 1 && objects < chunks,
        "{objects} objects, {summary}"
    );
}

#[test]
fn kill_9_of_a_daemon_during_an_import_leaves_a_consistent_store() {
    let (pg, moto) = (Postgres::start(), Moto::start());
    let mut d1 = store_daemon(&moto, &pg);
    let d2 = store_daemon(&moto, &pg);
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    make_tree(&small);
    let big = dir.path().join("big");
    random_tree(&big, 48, 1 << 21, 1);

    let mut client = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["store", "--store", &d1.url, "import"])
        .arg(&small)
        .arg(&big)
        .env_remove("TVIX_STORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(client.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let first = first.trim().to_string();
    assert!(first.ends_with("-small"), "{first:?}");
    // Kill the daemon once a good part of the big tree is in the bucket.
    let (_, after_small) = moto.objects();
    let deadline = Instant::now() + Duration::from_secs(120);
    while moto.objects().1 < after_small + (24 << 20) {
        assert!(Instant::now() < deadline, "the import made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    d1.kill();
    let status = client.wait().unwrap();
    assert!(
        !status.success(),
        "the import finished before its daemon was killed"
    );

    let summary = verify(&d2.url);
    assert!(summary.ends_with("1 paths: 0 problem(s)"), "{summary}");
    let info = String::from_utf8(ok(tvix(&d2.url, &["info"]))).unwrap();
    assert!(info.contains(&format!("StorePath: {first}\n")), "{info}");
    assert!(!info.contains("-big"), "{info}");

    // Importing again through the other daemon completes it (taking over what the
    // dead daemon had claimed once its lease ran out).
    let again = String::from_utf8(ok(tvix(&d2.url, &["import", big.to_str().unwrap()]))).unwrap();
    assert!(
        ok(tvix(&d2.url, &["export", again.trim()]))
            == nix(&["nix-store", "--dump", big.to_str().unwrap()], false)
    );
    let summary = verify(&d2.url);
    assert!(summary.ends_with("2 paths: 0 problem(s)"), "{summary}");
}

#[test]
fn two_daemons_importing_one_tree_at_once_store_each_chunk_once() {
    let (pg, moto) = (Postgres::start(), Moto::start());
    let (d1, d2) = (store_daemon(&moto, &pg), store_daemon(&moto, &pg));
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let (n, size) = (32, 1 << 20);
    random_tree(&tree, n, size, 2);
    let t = tree.to_str().unwrap();
    let spawn = |url: &str| {
        Command::new(env!("CARGO_BIN_EXE_tvix"))
            .args(["store", "--store", url, "import", t])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(&d1.url), spawn(&d2.url));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let expected = String::from_utf8(nix(&["nix-store", "--add", t], true)).unwrap();
    assert_eq!(String::from_utf8(ok(a)).unwrap(), expected);
    assert_eq!(String::from_utf8(ok(b)).unwrap(), expected);
    assert!(
        ok(tvix(&d2.url, &["export", expected.trim()])) == nix(&["nix-store", "--dump", t], false)
    );
    assert!(
        ok(tvix(&d1.url, &["export", expected.trim()])) == nix(&["nix-store", "--dump", t], false)
    );
    // Random contents share no chunk: each stored once is the tree's size.
    let (_, stored) = moto.objects();
    let tree_bytes = (n * size) as u64;
    assert!(
        stored >= tree_bytes && stored < tree_bytes + tree_bytes / 20,
        "{stored} bytes in the bucket for a tree of {tree_bytes}"
    );
    let summary = verify(&d1.url);
    assert!(summary.ends_with("1 paths: 0 problem(s)"), "{summary}");
}

#[test]
fn a_daemon_whose_servers_are_missing_says_so() {
    let port = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(["store", "daemon", "--listen", "127.0.0.1:0", "--chunks"])
        .arg(format!(
            "s3://tvix/x?endpoint=http://127.0.0.1:{port}&region=us-east-1"
        ))
        .arg("--metadata")
        .arg(format!("postgresql://tvix@127.0.0.1:{port}/postgres"))
        .env_remove("TVIX_STORE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PostgreSQL error"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args([
            "store",
            "daemon",
            "--listen",
            "127.0.0.1:0",
            "--chunks",
            "ftp://x/y",
        ])
        .arg("--metadata")
        .arg(format!("redb://{}/db", dir.path().display()))
        .env_remove("TVIX_STORE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ftp://x/y"), "{err}");
}
