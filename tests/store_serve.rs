//! `tvix store serve`: tvix's store as a Nix HTTP binary cache, read by the reference
//! (`nix-store -r` with it as the only substituter, then `nix-store --verify-path`) and
//! by tvix's own binary-cache substituter; garbage requests get 404s and the server
//! keeps serving. The served path holds a nonce, so the Nix store never had it before.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{nonce, text};
use tvix_build::CancelToken;
use tvix_coordinator::substitute::binary_cache::{BinaryCache, CacheSettings};
use tvix_coordinator::substitute::transport::Timeouts;
use tvix_coordinator::substitute::Substituter;
use tvix_store::pathinfo::PathInfoService;
use tvix_store::{StoreDir, StorePath};

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn tvix(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
    c.env_remove("TVIX_BUILD_SERVICE")
        .env_remove("NIX_CONFIG")
        .env("NO_COLOR", "1")
        .args(["store", "--store", &format!("local://{}", store.display())]);
    c
}

/// A running `tvix store serve`, killed when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Starts the server on a free loopback port and waits (at most 20 s) for the URL it
    /// prints.
    fn start(store: &Path, extra: &[&str]) -> Served {
        let mut child = tvix(store)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split(" on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
                eprintln!("serve: {line}");
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("tvix store serve printed no address within 20 s");
            }
        };
        Served { child, url }
    }

    /// `METHOD path` over a fresh connection: the status code and the body.
    fn request(&self, method: &str, path: &str) -> (u16, Vec<u8>) {
        let addr = self.url.trim_start_matches("http://");
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(conn, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).unwrap();
        let head_end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("no end of headers");
        let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("no status");
        (status, raw[head_end + 4..].to_vec())
    }
}

/// `nix-store --generate-binary-cache-key`: the secret key file and the public key.
fn nix_keys(dir: &Path, name: &str) -> (PathBuf, String) {
    let (sk, pk) = (dir.join("key.sk"), dir.join("key.pk"));
    let out = Command::new("nix-store")
        .arg("--generate-binary-cache-key")
        .args([name.as_ref(), sk.as_os_str(), pk.as_os_str()])
        .output()
        .unwrap();
    ok(&out, "nix-store --generate-binary-cache-key");
    (sk, std::fs::read_to_string(&pk).unwrap().trim().to_string())
}

/// A tvix store at `dir/store` holding a directory with nonce contents; its store path.
fn store_with_a_path(dir: &Path, n: &str) -> (PathBuf, String) {
    let src = dir.join(format!("served-{n}"));
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/data"), format!("{n}\n").repeat(5000)).unwrap();
    std::fs::write(src.join("tool"), "#!/bin/sh\necho hi\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(src.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("sub/data", src.join("link")).unwrap();
    let store = dir.join("store");
    let out = tvix(&store).arg("import").arg(&src).output().unwrap();
    ok(&out, "tvix store import");
    let path = text(&out.stdout).trim().to_string();
    assert!(path.starts_with("/nix/store/"), "{path}");
    (store, path)
}

#[test]
fn nix_substitutes_from_tvix_store_serve() {
    common::check_prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let n = nonce();
    let (store, path) = store_with_a_path(dir.path(), &n);
    let (sk, pk) = nix_keys(dir.path(), &format!("serve-{n}"));
    let served = Served::start(&store, &["--secret-key-file", sk.to_str().unwrap()]);

    let (status, info) = served.request("GET", "/nix-cache-info");
    assert_eq!(status, 200);
    assert!(
        text(&info).contains("StoreDir: /nix/store"),
        "{}",
        text(&info)
    );

    // The reference fetches it with tvix's server as its only substituter.
    let out = common::run_limited(
        {
            let mut c = Command::new("nix-store");
            c.args(["-r", &path, "--option", "substituters", &served.url])
                .args(["--option", "trusted-public-keys", &pk])
                .args(["--option", "require-sigs", "true"])
                .env_remove("NIX_REMOTE");
            c
        },
        Duration::from_secs(120),
    );
    ok(&out, "nix-store -r from tvix store serve");
    let out = Command::new("nix-store")
        .args(["--verify-path", &path])
        .output()
        .unwrap();
    ok(&out, "nix-store --verify-path");
    assert_eq!(
        std::fs::read_to_string(Path::new(&path).join("sub/data")).unwrap(),
        format!("{n}\n").repeat(5000)
    );
    assert_eq!(
        std::fs::read_link(Path::new(&path).join("link")).unwrap(),
        Path::new("sub/data")
    );
}

#[test]
fn tvix_substitutes_from_tvix_store_serve_in_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    let n = nonce();
    let (store, path) = store_with_a_path(dir.path(), &n);
    let key = tvix_store::signing::SecretKey::from_seed(&format!("t-{n}"), &[5; 32]);
    let sk = dir.path().join("key.sk");
    std::fs::write(&sk, key.to_text()).unwrap();
    let sd = StoreDir::default();
    let sp: StorePath = sd.parse_path(&path).unwrap();
    for compression in ["zstd", "xz", "bzip2", "none"] {
        let served = Served::start(
            &store,
            &[
                "--secret-key-file",
                sk.to_str().unwrap(),
                "--compression",
                compression,
                "--priority",
                "30",
            ],
        );
        let settings = Arc::new(CacheSettings {
            trusted_keys: vec![key.public()],
            require_sigs: true,
            positive_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(60),
            timeouts: Timeouts {
                connect: Duration::from_secs(5),
                stalled: Duration::from_secs(20),
            },
            store_dir: sd.clone(),
        });
        let cache = BinaryCache::open(&served.url, settings).unwrap();
        assert_eq!(cache.priority(), 30);
        let target = tvix_store::castore::Store::memory();
        cache
            .substitute(
                std::slice::from_ref(&sp),
                &target,
                &mut |_| {},
                &CancelToken::new(),
            )
            .unwrap_or_else(|e| panic!("{compression}: {e}"));
        let info = target.get_path_info(&sp).unwrap().unwrap();
        tvix_store::castore::check_nar_hash(&target, &info).unwrap();
        assert!(cache.take_warnings().is_empty(), "{compression}");
    }
}

#[test]
fn bad_requests_get_404_and_the_server_survives() {
    let dir = tempfile::tempdir().unwrap();
    let n = nonce();
    let (store, path) = store_with_a_path(dir.path(), &n);
    let served = Served::start(&store, &[]);
    let hash = &path["/nix/store/".len().."/nix/store/".len() + 32];
    let (status, narinfo) = served.request("GET", &format!("/{hash}.narinfo"));
    assert_eq!(status, 200);
    let narinfo = text(&narinfo);
    assert!(
        narinfo.contains(&format!("StorePath: {path}\n")),
        "{narinfo}"
    );
    assert!(narinfo.contains("Compression: zstd\n"), "{narinfo}");
    assert!(
        !narinfo.contains("Sig:"),
        "unsigned without a key: {narinfo}"
    );
    let nar_url = narinfo
        .lines()
        .find_map(|l| l.strip_prefix("URL: "))
        .unwrap()
        .to_string();
    // HEAD: headers only.
    let (status, body) = served.request("HEAD", &format!("/{hash}.narinfo"));
    assert_eq!((status, body.len()), (200, 0));
    let unknown = "0".repeat(32);
    let mut wrong_nar = nar_url.clone();
    wrong_nar.replace_range(
        4 + 33..4 + 34,
        if &nar_url[37..38] == "0" { "1" } else { "0" },
    );
    for bad in [
        format!("/{unknown}.narinfo"),
        "/garbage".to_string(),
        "/xyz.narinfo".to_string(),
        "/nar/garbage.nar".to_string(),
        format!("/{wrong_nar}"),
        "/../../etc/passwd".to_string(),
    ] {
        let (status, _) = served.request("GET", &bad);
        assert_eq!(status, 404, "{bad}");
    }
    let (status, _) = served.request("PUT", &format!("/{hash}.narinfo"));
    assert_eq!(status, 405);
    // A client that hangs up mid-NAR does not take the server down.
    {
        let addr = served.url.trim_start_matches("http://");
        let mut conn = TcpStream::connect(addr).unwrap();
        write!(conn, "GET /{nar_url} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut first = [0u8; 16];
        conn.read_exact(&mut first).unwrap();
    }
    // Still serving, the real NAR too.
    let (status, nar) = served.request("GET", &format!("/{nar_url}"));
    assert_eq!(status, 200);
    let mut raw = Vec::new();
    tvix_store::compression::Compression::Zstd
        .decoder(&nar[..])
        .unwrap()
        .read_to_end(&mut raw)
        .unwrap();
    assert!(
        raw.starts_with(b"\r\0\0\0\0\0\0\0nix-archive-1"),
        "not a NAR"
    );
}
