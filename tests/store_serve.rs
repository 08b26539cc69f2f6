//! `tvix store serve`: tvix's store as a Nix HTTP binary cache, read by the reference
//! (`nix-store -r` with it as the only substituter, then `nix-store --verify-path`) and
//! by tvix's own binary-cache substituter; garbage requests get 404s and the server
//! keeps serving; `nix copy --to` uploads into it (with `--allow-uploads`), and broken
//! uploads register nothing; ranges, HEAD, `.ls` listings and build logs. The served
//! paths hold a nonce, so the Nix store never had them before.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{nix_keys, nonce, ok, text, tvix_store as tvix};
use tvix_build::CancelToken;
use tvix_coordinator::substitute::binary_cache::{BinaryCache, CacheSettings};
use tvix_coordinator::substitute::transport::Timeouts;
use tvix_coordinator::substitute::Substituter;
use tvix_store::pathinfo::PathInfoService;
use tvix_store::{StoreDir, StorePath};

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
        let (status, _, body) = self.send(method, path, &[], &[]);
        (status, body)
    }

    /// `METHOD path` with `headers` and `body` over a fresh connection (HTTP/1.0, so the
    /// server closes it after answering): the status, the headers (lower-case, one
    /// `name: value` a line) and the body.
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let addr = self.url.trim_start_matches("http://");
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if method == "PUT" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(body).unwrap();
        read_response(conn)
    }
}

/// Reads an HTTP response to its end: the status, the headers (lower-case) and the body.
fn read_response(mut conn: TcpStream) -> (u16, String, Vec<u8>) {
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = String::from_utf8_lossy(&raw[..head_end]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("no status");
    (status, head, raw[head_end + 4..].to_vec())
}

/// The value of header `name` (lower-case) in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
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

/// `nix` with the `nix` command enabled, Nix's own substituters off, and a time limit.
fn nix(args: &[&str]) -> Output {
    let mut c = Command::new("nix");
    c.args(["--extra-experimental-features", "nix-command"])
        .args(["--option", "substituters", ""])
        .args(args)
        .env_remove("NIX_REMOTE");
    common::run_limited(c, Duration::from_secs(120))
}

/// The hash part of a store path.
fn hash_part(path: &str) -> &str {
    &path["/nix/store/".len().."/nix/store/".len() + 32]
}

/// `nix copy --to http://...` into `tvix store serve --allow-uploads`: a closure the
/// reference wrote (`b` refers to `a`, both named with a nonce so they are new) goes into
/// tvix's store, references first, and `nix copy --from` the server into a store of
/// Nix's own gives back the same NARs. Without `--allow-uploads`, `nix copy --to` fails
/// and nothing is stored.
#[test]
fn nix_copy_uploads_into_tvix_store_serve() {
    common::check_prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let n = nonce();
    let expr =
        format!("builtins.toFile \"b-{n}\" \"refers to ${{builtins.toFile \"a-{n}\" \"{n}\"}}\"");
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--read-write-mode", "-E", &expr])
        .env_remove("NIX_REMOTE")
        .output()
        .unwrap();
    ok(&out, "nix-instantiate --eval builtins.toFile");
    let b = text(&out.stdout).trim().trim_matches('"').to_string();
    let out = Command::new("nix-store")
        .args(["-q", "--references", &b])
        .output()
        .unwrap();
    ok(&out, "nix-store -q --references");
    let a = text(&out.stdout).trim().to_string();
    assert!(a.ends_with(&format!("-a-{n}")), "{a}");

    let store = dir.path().join("store");
    {
        let served = Served::start(&store, &[]);
        let out = nix(&["copy", "--to", &served.url, &b]);
        assert!(!out.status.success(), "uploaded into a read-only cache");
        let (status, _) = served.request("GET", &format!("/{}.narinfo", hash_part(&a)));
        assert_eq!(status, 404, "a read-only cache stored an upload");
    }
    {
        let served = Served::start(&store, &["--allow-uploads"]);
        ok(
            &nix(&["copy", "--to", &served.url, &b]),
            "nix copy --to http://",
        );
        // Nix's chroot store, filled from the server (the paths are unsigned).
        let root = dir.path().join("nix-root");
        let chroot = format!("local?root={}", root.display());
        // Nix remembers the narinfos it uploaded, which name the NAR files it sent;
        // tvix keeps NARs in the castore and names them its own way, so the fetch asks
        // the server afresh.
        let out = nix(&[
            "copy",
            "--option",
            "narinfo-cache-positive-ttl",
            "0",
            "--no-check-sigs",
            "--from",
            &served.url,
            "--to",
            &chroot,
            &b,
        ]);
        ok(&out, "nix copy --from the server");
        for p in [&a, &b] {
            let back = Command::new("nix-store")
                .args(["--store", &chroot, "--dump", p])
                .output()
                .unwrap();
            ok(&back, "nix-store --dump from the chroot store");
            assert_eq!(back.stdout, common::nix_dump(p).stdout, "{p}");
        }
        // And tvix reads it back over HTTP into another store.
        let other = dir.path().join("other");
        let out = common::tvix_plain()
            .args([
                "store",
                "copy",
                "--no-check-sigs",
                "--from",
                &served.url,
                "--to",
            ])
            .arg(format!("local://{}", other.display()))
            .arg(&b)
            .output()
            .unwrap();
        ok(&out, "tvix store copy --from http://");
        assert_eq!(
            common::tvix_export(&other, &a).stdout,
            common::nix_dump(&a).stdout
        );
    }
    // The server is gone: tvix's store has both, with b's reference.
    let out = tvix(&store).args(["info", &b]).output().unwrap();
    ok(&out, "tvix store info");
    let a_base = a.trim_start_matches("/nix/store/");
    assert!(
        text(&out.stdout).contains(&format!("References: {a_base}")),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        common::tvix_export(&store, &a).stdout,
        common::nix_dump(&a).stdout
    );
}

/// Uploads that are wrong or break off register nothing: a NAR file whose bytes are not
/// its name, a NAR upload cut off half-way, a narinfo whose NarHash is not its NAR's or
/// whose NAR was never uploaded. The right ones go in afterwards.
#[test]
fn broken_uploads_register_nothing() {
    use tvix_store::narinfo::NarInfo;
    use tvix_store::NixHash;
    let dir = tempfile::tempdir().unwrap();
    let n = nonce();
    let (source, path) = store_with_a_path(dir.path(), &n);
    let nar = common::tvix_export(&source, &path).stdout;
    assert!(nar.len() > 1000);
    let sd = StoreDir::default();
    let file_hash = NixHash::sha256(&nar);
    let url = format!("nar/{}.nar", file_hash.to_nix32());
    let good = NarInfo {
        store_path: sd.parse_path(&path).unwrap(),
        url: url.clone(),
        compression: "none".into(),
        file_hash: Some(file_hash.clone()),
        file_size: Some(nar.len() as u64),
        nar_hash: file_hash.clone(),
        nar_size: nar.len() as u64,
        references: vec![],
        deriver: None,
        signatures: vec![],
        ca: None,
        system: None,
    };
    let narinfo_url = format!("/{}.narinfo", hash_part(&path));
    let store = dir.path().join("target");
    let served = Served::start(&store, &["--allow-uploads"]);
    let put = |p: &str, body: &[u8]| {
        let (status, _, body) = served.send("PUT", p, &[], body);
        (status, text(&body))
    };
    let registered = || served.request("GET", &narinfo_url).0 == 200;

    let mut altered = nar.clone();
    altered[nar.len() / 2] ^= 1;
    let (status, body) = put(&format!("/{url}"), &altered);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not the one its name gives"), "{body}");
    let (status, body) = put(&narinfo_url, good.to_text(&sd).as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("was not uploaded"), "{body}");
    assert!(!registered());

    // Cut off half-way: the connection ends before Content-Length bytes came.
    {
        let addr = served.url.trim_start_matches("http://");
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            conn,
            "PUT /{url} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            nar.len()
        )
        .unwrap();
        conn.write_all(&nar[..nar.len() / 2]).unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
    }
    let (status, body) = put(&narinfo_url, good.to_text(&sd).as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("was not uploaded"), "{body}");
    assert!(!registered());

    // The whole NAR, then a narinfo with another NarHash.
    let (status, body) = put(&format!("/{url}"), &nar);
    assert_eq!(status, 200, "{body}");
    let mut wrong = good.clone();
    wrong.nar_hash = NixHash::sha256(b"another NAR");
    let (status, body) = put(&narinfo_url, wrong.to_text(&sd).as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("does not match its narinfo"), "{body}");
    assert!(!registered());
    // Uploaded under another path's URL.
    let (status, body) = put(
        &format!("/{}.narinfo", "0".repeat(32)),
        good.to_text(&sd).as_bytes(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(!registered());

    let (status, body) = put(&narinfo_url, good.to_text(&sd).as_bytes());
    assert_eq!(status, 200, "{body}");
    assert!(registered());
    let (status, served_nar) = served.request(
        "GET",
        &format!("/nar/{}-{}.nar", hash_part(&path), file_hash.to_nix32()),
    );
    assert_eq!((status, served_nar == nar), (200, true));
}

/// Byte ranges of uncompressed NARs (206, `Content-Range`, 416 past the end), HEAD on
/// every resource, `.ls` listings byte for byte as the reference writes them
/// (`nix copy --to 'file://...?write-nar-listing=1'` of the same path), and build logs
/// from where `tvix log` reads them (404 when none is kept).
#[test]
fn ranges_heads_listings_and_logs() {
    common::check_prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let n = nonce();
    let (store, path) = store_with_a_path(dir.path(), &n);
    let nar = common::tvix_export(&store, &path).stdout;
    let len = nar.len();
    let hash = hash_part(&path).to_string();
    let drv = StorePath::from_base_name(&format!("{hash}-served-{n}.drv")).unwrap();
    tvix_coordinator::log::LogStore::for_store_url(&format!("local://{}", store.display()))
        .unwrap()
        .write(&drv, format!("the log of {n}\n").as_bytes())
        .unwrap();
    let served = Served::start(&store, &[]);

    let (_, narinfo) = served.request("GET", &format!("/{hash}.narinfo"));
    let nar_url = text(&narinfo)
        .lines()
        .find_map(|l| l.strip_prefix("URL: "))
        .unwrap()
        .to_string();
    let plain = format!("/{}", nar_url.strip_suffix(".zst").unwrap());

    let (status, head, body) = served.send("GET", &plain, &[], &[]);
    assert_eq!((status, body == nar), (200, true));
    assert_eq!(header(&head, "accept-ranges"), Some("bytes"));
    let ranged = |range: &str| served.send("GET", &plain, &[("Range", range)], &[]);
    let (status, head, body) = ranged("bytes=100-199");
    assert_eq!(status, 206);
    assert_eq!(
        header(&head, "content-range"),
        Some(format!("bytes 100-199/{len}").as_str())
    );
    assert_eq!(body, &nar[100..200]);
    let (status, _, body) = ranged("bytes=-50");
    assert_eq!((status, &body[..]), (206, &nar[len - 50..]));
    let (status, _, body) = ranged(&format!("bytes={}-", len - 10));
    assert_eq!((status, &body[..]), (206, &nar[len - 10..]));
    let (status, head, _) = ranged(&format!("bytes={len}-"));
    assert_eq!(status, 416);
    assert_eq!(
        header(&head, "content-range"),
        Some(format!("bytes */{len}").as_str())
    );
    // A compressed NAR has no known length before it is sent: the whole of it.
    let (status, head, _) = served.send(
        "GET",
        &format!("/{nar_url}"),
        &[("Range", "bytes=0-9")],
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(header(&head, "accept-ranges"), Some("none"));

    // HEAD: the GET's status and headers, no body.
    let log_url = format!("/log/{}", drv.to_base_name());
    for p in [
        "/nix-cache-info".to_string(),
        format!("/{hash}.narinfo"),
        format!("/{hash}.ls"),
        plain.clone(),
        format!("/{nar_url}"),
        log_url.clone(),
    ] {
        let (status, _, body) = served.send("HEAD", &p, &[], &[]);
        assert_eq!((status, body.len()), (200, 0), "HEAD {p}");
        assert_eq!(served.request("GET", &p).0, 200, "GET {p}");
    }
    let (status, _, body) = served.send("HEAD", &format!("/{}.ls", "0".repeat(32)), &[], &[]);
    assert_eq!((status, body.len()), (404, 0));

    // The log, and none for another derivation.
    let (status, body) = served.request("GET", &log_url);
    assert_eq!((status, text(&body)), (200, format!("the log of {n}\n")));
    let other = format!("/log/{}-other-{n}.drv", "1".repeat(32));
    assert_eq!(served.request("GET", &other).0, 404);

    // The reference's listing of the same path (nix-store --add gives the same path).
    let src = dir.path().join(format!("served-{n}"));
    let out = Command::new("nix-store")
        .arg("--add")
        .arg(&src)
        .env_remove("NIX_REMOTE")
        .output()
        .unwrap();
    ok(&out, "nix-store --add");
    assert_eq!(text(&out.stdout).trim(), path);
    let cache = dir.path().join("nix-cache");
    let to = format!(
        "file://{}?write-nar-listing=1&compression=none",
        cache.display()
    );
    ok(&nix(&["copy", "--to", &to, &path]), "nix copy --to file://");
    let theirs = std::fs::read(cache.join(format!("{hash}.ls"))).unwrap();
    let (status, ours) = served.request("GET", &format!("/{hash}.ls"));
    assert_eq!(status, 200);
    assert_eq!(text(&ours), text(&theirs));
}
