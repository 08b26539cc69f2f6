//! Nix binary caches, both ways, against the reference Nix (2.8):
//!
//! - tvix substitutes from a `file://` cache that `nix copy --to 'file://DIR?secret-key=…'`
//!   wrote (keys from `nix-store --generate-binary-cache-key`), including an output of a
//!   derivation tvix cannot build (it requires a system feature tvix lacks); the reference
//!   builds it in a store of its own (`--store local?root=…`), so nothing it leaves can be
//!   what tvix reads: tvix reads its own store, fed from the cache, and says so.
//! - Caches that lie or fail (NAR hash, size, FileHash/FileSize, truncated NAR, untrusted
//!   key, a narinfo of another path, a huge or malformed narinfo, a stalling server) are
//!   refused with a clear message, nothing is registered, and the next cache or a build
//!   is tried.
//! - `tvix store copy --to file://` is read back by `nix copy --from file://` and
//!   `nix-store --verify-path`; `--from nix:///nix/store` reads a path Nix built and
//!   `--to nix:///nix/store` hands one to `nix-store --import`.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{nix_keys, nonce, ok, run_limited, text, tvix_plain as tvix, BUSYBOX};
use tvix_store::narinfo::NarInfo;
use tvix_store::signing::SecretKey;
use tvix_store::StoreDir;

/// A derivation file: `mk` of the build tests' library, with `extra` attributes.
fn drv_file(dir: &Path, name: &str, script: &str, extra: &str) -> PathBuf {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/builds/lib.nix");
    let file = dir.join(format!("{name}.nix"));
    std::fs::write(
        &file,
        format!(
            "{{ nonce }}: with import {} {{ inherit nonce; }};\n\
             mk {{ name = \"{name}\"; script = ''{script}''; {extra} }}\n",
            lib.display()
        ),
    )
    .unwrap();
    file
}

/// `tvix build FILE` into the tvix store `store`, with `options` (`--option` pairs) and
/// other flags.
fn tvix_build(file: &Path, nonce: &str, store: &Path, args: &[&str]) -> Output {
    let mut c = tvix();
    c.arg("build")
        .arg(file)
        .args(["--argstr", "nonce", nonce, "--no-out-link", "--store"])
        .arg(format!("local://{}", store.display()))
        // Nix's lines, which the tests read.
        .args(["--log-format", "raw"])
        .args(args);
    run_limited(c, Duration::from_secs(120))
}

fn last_line(out: &Output) -> String {
    text(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// Whether the tvix store at `store` has `path`.
fn tvix_has(store: &Path, path: &str) -> bool {
    tvix()
        .args(["store", "--store", &format!("local://{}", store.display())])
        .args(["info", path])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn substitutes_from_a_cache_nix_wrote_what_tvix_cannot_build() {
    common::check_prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let n = nonce();
    let file = drv_file(
        dir.path(),
        "featured",
        "mkdir -p $out/sub; echo ${nonce} > $out/sub/data; ln -s sub/data $out/link",
        "requiredSystemFeatures = [ \"tvix-lacks-this\" ];",
    );
    // tvix cannot build it: it lacks the feature.
    let tvix_store = dir.path().join("tvix");
    let out = tvix_build(&file, &n, &tvix_store, &["--offline"]);
    assert!(
        !out.status.success(),
        "tvix built it: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("tvix-lacks-this"),
        "{}",
        text(&out.stderr)
    );

    // The reference builds it in a store of its own and copies it to a signed cache.
    let root = dir.path().join("nix-root");
    let nix_store = format!("local?root={}", root.display());
    let built = run_limited(
        {
            let mut c = Command::new("nix-build");
            c.arg(&file)
                .args([
                    "--argstr",
                    "nonce",
                    &n,
                    "--no-out-link",
                    "--store",
                    &nix_store,
                ])
                .args(["--option", "system-features", "tvix-lacks-this"])
                .args([
                    "--option",
                    "sandbox",
                    "true",
                    "--option",
                    "build-users-group",
                    "",
                ])
                .args(["--option", "substituters", ""])
                .env_remove("NIX_REMOTE");
            c
        },
        Duration::from_secs(120),
    );
    ok(&built, "nix-build");
    let path = last_line(&built);
    let (sk, pk) = nix_keys(dir.path(), &format!("test-{n}"));
    let cache = dir.path().join("cache");
    let copied = Command::new("nix")
        .args(["--extra-experimental-features", "nix-command", "copy"])
        .args(["--from", &nix_store, "--to"])
        .arg(format!(
            "file://{}?secret-key={}",
            cache.display(),
            sk.display()
        ))
        .arg(&path)
        .env_remove("NIX_REMOTE")
        .output()
        .unwrap();
    ok(&copied, "nix copy --to file://");

    // tvix substitutes it, checking the signature made by the reference's key; the
    // settings come as Nix reads them (here: NIX_CONFIG under --option).
    let url = format!("file://{}", cache.display());
    let out = run_limited(
        {
            let mut c = tvix();
            c.arg("build")
                .arg(&file)
                .args(["--argstr", "nonce", &n, "--no-out-link", "--store"])
                .arg(format!("local://{}", tvix_store.display()))
                .args(["--log-format", "raw"])
                .args(["--option", "substituters", &url])
                .env(
                    "NIX_CONFIG",
                    format!("trusted-public-keys = {pk}\nrequire-sigs = true"),
                );
            c
        },
        Duration::from_secs(120),
    );
    ok(&out, "tvix build with the cache");
    assert_eq!(last_line(&out), path);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("copying path '{path}' from '{url}'")),
        "tvix did not fetch it from the cache: {stderr}"
    );
    assert!(!stderr.contains("building '"), "{stderr}");
    // The same contents as the reference's.
    let ours = tvix()
        .args([
            "store",
            "--store",
            &format!("local://{}", tvix_store.display()),
        ])
        .args(["export", &path])
        .output()
        .unwrap();
    ok(&ours, "tvix store export");
    let theirs = Command::new("nix-store")
        .args(["--dump", &format!("{}{path}", root.display())])
        .env("NIX_REMOTE", "dummy://")
        .output()
        .unwrap();
    ok(&theirs, "nix-store --dump");
    assert!(ours.stdout == theirs.stdout, "the NARs differ");

    // The reference's narinfo and key, checked by the store library directly too.
    let hash_part = &Path::new(&path).file_name().unwrap().to_str().unwrap()[..32];
    let narinfo = NarInfo::parse(
        &std::fs::read_to_string(cache.join(format!("{hash_part}.narinfo"))).unwrap(),
        &StoreDir::default(),
    )
    .unwrap();
    let key = tvix_store::signing::PublicKey::parse(&pk).unwrap();
    assert!(tvix_store::signing::verified_by_any(
        &narinfo.fingerprint(&StoreDir::default()),
        &narinfo.signatures,
        &[key]
    ));
    let secret = SecretKey::parse(&std::fs::read_to_string(&sk).unwrap()).unwrap();
    assert_eq!(secret.public().to_text(), pk);
}

/// A path tvix built into a store of its own and copied to a signed `file://` cache with
/// `tvix store copy`: what the failure tests start from.
struct Fixture {
    dir: tempfile::TempDir,
    file: PathBuf,
    nonce: String,
    path: String,
    cache: PathBuf,
    key: SecretKey,
    pk: String,
}

impl Fixture {
    fn new(compression: &str) -> Fixture {
        common::check_prerequisites();
        let dir = tempfile::tempdir().unwrap();
        let n = nonce();
        let file = drv_file(
            dir.path(),
            "cached",
            "echo ${nonce} > $out; head -c 300000 /dev/zero >> $out",
            "",
        );
        let source = dir.path().join("source");
        let out = tvix_build(&file, &n, &source, &[]);
        ok(&out, "tvix build");
        let path = last_line(&out);
        let (sk, pk) = nix_keys(dir.path(), &format!("tvix-test-{n}"));
        let cache = dir.path().join("cache");
        let copied = tvix()
            .args(["store", "copy", "--from"])
            .arg(format!("local://{}", source.display()))
            .arg("--to")
            .arg(format!("file://{}", cache.display()))
            .arg("--secret-key-file")
            .arg(&sk)
            .args(["--compression", compression, &path])
            .output()
            .unwrap();
        ok(&copied, "tvix store copy --to file://");
        let key = SecretKey::parse(&std::fs::read_to_string(&sk).unwrap()).unwrap();
        Fixture {
            dir,
            file,
            nonce: n,
            path,
            cache,
            key,
            pk,
        }
    }

    fn hash_part(&self) -> &str {
        &Path::new(&self.path).file_name().unwrap().to_str().unwrap()[..32]
    }

    /// A copy of the cache, named `name`, whose narinfo of the output `edit` changes
    /// (re-signed with the cache's key afterwards when `resign`).
    fn bad_cache(&self, name: &str, resign: bool, edit: impl FnOnce(&mut NarInfo)) -> PathBuf {
        let bad = self.dir.path().join(name);
        copy_dir(&self.cache, &bad);
        let file = bad.join(format!("{}.narinfo", self.hash_part()));
        let sd = StoreDir::default();
        let mut info = NarInfo::parse(&std::fs::read_to_string(&file).unwrap(), &sd).unwrap();
        edit(&mut info);
        if resign {
            info.signatures = vec![self.key.sign(&info.fingerprint(&sd))];
        }
        std::fs::write(&file, info.to_text(&sd)).unwrap();
        bad
    }

    /// `tvix build` into a fresh store with `caches` as substituters (in this order,
    /// all at priority 50 unless their URL says otherwise) and `extra` flags.
    fn substitute(&self, store_name: &str, caches: &[String], extra: &[&str]) -> (Output, PathBuf) {
        // Each call gets a fresh store, whatever the name.
        let store = self.dir.path().join(format!("{store_name}-{}", nonce()));
        let mut args = vec![
            "--option".to_string(),
            "substituters".to_string(),
            caches.join(" "),
            "--option".to_string(),
            "trusted-public-keys".to_string(),
            self.pk.clone(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tvix_build(&self.file, &self.nonce, &store, &args);
        if std::env::var_os("TVIX_TEST_DEBUG").is_some() {
            eprintln!("{args:?}\n{}\n{}", text(&out.stdout), text(&out.stderr));
        }
        (out, store)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("nar")).unwrap();
    for sub in ["", "nar"] {
        for e in std::fs::read_dir(from.join(sub)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), to.join(sub).join(e.file_name())).unwrap();
            }
        }
    }
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// A cache whose NAR does not match: substitution fails with a clear message and
/// registers nothing; with a good cache after it, the good one is used; with
/// `--fallback`, tvix builds.
fn nar_refused(f: &Fixture, bad: &Path, message: &str) {
    let (out, store) = f.substitute("s1", &[file_url(bad)], &[]);
    assert!(!out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(message), "{stderr}");
    assert!(!tvix_has(&store, &f.path), "a refused path was registered");

    let (out, _) = f.substitute(
        "s2",
        &[
            format!("{}?priority=10", file_url(bad)),
            format!("{}?priority=20", file_url(&f.cache)),
        ],
        &[],
    );
    ok(&out, "substituting with a good cache after the bad one");
    let stderr = text(&out.stderr);
    assert!(stderr.contains(message), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "copying path '{}' from '{}",
            f.path,
            file_url(&f.cache)
        )),
        "{stderr}"
    );

    let (out, _) = f.substitute("s3", &[file_url(bad)], &["--option", "fallback", "true"]);
    ok(&out, "--fallback");
    assert!(
        text(&out.stderr).contains("building '"),
        "{}",
        text(&out.stderr)
    );
}

/// A narinfo that is refused: a warning says why and tvix builds (the cache has nothing
/// it may use, as in Nix).
fn narinfo_refused(f: &Fixture, bad: &Path, message: &str) {
    let (out, store) = f.substitute("s1", &[file_url(bad)], &[]);
    ok(&out, "building after a refused narinfo");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("warning: "), "{stderr}");
    assert!(stderr.contains(message), "{stderr}");
    assert!(stderr.contains("building '"), "{stderr}");
    assert!(!stderr.contains("copying path"), "{stderr}");
    assert!(tvix_has(&store, &f.path));
}

#[test]
fn a_wrong_nar_hash_is_refused() {
    let f = Fixture::new("xz");
    let bad = f.bad_cache("bad", true, |i| {
        i.nar_hash = tvix_store::NixHash::sha256(b"not this NAR")
    });
    nar_refused(&f, &bad, "does not match its narinfo");
}

#[test]
fn a_wrong_nar_size_is_refused() {
    let f = Fixture::new("zstd");
    let bad = f.bad_cache("bad", true, |i| i.nar_size -= 8);
    nar_refused(&f, &bad, "larger than the narinfo's NarSize");
    let bigger = f.bad_cache("bigger", true, |i| i.nar_size += 8);
    nar_refused(&f, &bigger, "does not match its narinfo");
}

/// The compressed file's `FileHash` and `FileSize` (not signed, so a cache can change
/// them without the key) are checked too: a wrong one is refused and the next cache used.
#[test]
fn a_wrong_file_hash_or_size_is_refused() {
    let f = Fixture::new("xz");
    let bad = f.bad_cache("bad-hash", false, |i| {
        i.file_hash = Some(tvix_store::NixHash::sha256(b"not this file"))
    });
    nar_refused(&f, &bad, "does not match its narinfo's FileHash/FileSize");
    let bad = f.bad_cache("bad-size", false, |i| {
        i.file_size = i.file_size.map(|s| s + 1)
    });
    nar_refused(&f, &bad, "does not match its narinfo's FileHash/FileSize");
}

#[test]
fn a_truncated_or_corrupt_nar_is_refused() {
    let f = Fixture::new("xz");
    let bad = f.bad_cache("bad", false, |_| {});
    let info = NarInfo::parse(
        &std::fs::read_to_string(bad.join(format!("{}.narinfo", f.hash_part()))).unwrap(),
        &StoreDir::default(),
    )
    .unwrap();
    let nar = bad.join(&info.url);
    let bytes = std::fs::read(&nar).unwrap();
    std::fs::write(&nar, &bytes[..bytes.len() / 2]).unwrap();
    nar_refused(&f, &bad, "is corrupt");
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    std::fs::write(&nar, &flipped).unwrap();
    nar_refused(&f, &bad, "is corrupt");
}

#[test]
fn a_signature_by_an_untrusted_key_is_refused() {
    let f = Fixture::new("bzip2");
    let other = SecretKey::from_seed(&format!("tvix-test-{}", f.nonce), &[5; 32]);
    let bad = f.bad_cache("bad", false, |i| {
        i.signatures = vec![other.sign(&i.fingerprint(&StoreDir::default()))]
    });
    narinfo_refused(
        &f,
        &bad,
        "is not signed by any of the keys in 'trusted-public-keys'",
    );
    // Unsigned altogether: the same.
    let unsigned = f.bad_cache("unsigned", false, |i| i.signatures.clear());
    narinfo_refused(&f, &unsigned, "is not signed by any of the keys");
    // With require-sigs off it is used.
    let (out, _) = f.substitute(
        "s4",
        &[file_url(&unsigned)],
        &["--option", "require-sigs", "false"],
    );
    ok(&out, "require-sigs false");
    assert!(
        text(&out.stderr).contains("copying path"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_narinfo_of_another_path_is_refused() {
    let f = Fixture::new("none");
    let other =
        tvix_store::StorePath::from_base_name(&format!("{}-other", "0".repeat(32))).unwrap();
    let bad = f.bad_cache("bad", true, |i| i.store_path = other);
    narinfo_refused(
        &f,
        &bad,
        "/nix/store/00000000000000000000000000000000-other', not",
    );
}

#[test]
fn huge_and_malformed_narinfos_are_refused() {
    let f = Fixture::new("xz");
    let huge = f.bad_cache("huge", false, |_| {});
    let file = huge.join(format!("{}.narinfo", f.hash_part()));
    let mut text_ = std::fs::read_to_string(&file).unwrap();
    text_.push_str(&"X-Padding: yes\n".repeat(100_000));
    std::fs::write(&file, text_).unwrap();
    narinfo_refused(&f, &huge, "larger than 1048576 bytes");
    let malformed = f.bad_cache("malformed", false, |_| {});
    std::fs::write(
        malformed.join(format!("{}.narinfo", f.hash_part())),
        "StorePath: /nix/store/garbage\nthis is not a narinfo\n",
    )
    .unwrap();
    narinfo_refused(&f, &malformed, "invalid narinfo");
}

/// A loopback HTTP server serving the files of `dir`, except that it stops answering
/// (keeps the connection open, sends nothing more) for requests whose path contains
/// `stall`, after sending the head and `stall_after` bytes of the body (0: nothing at
/// all). Serves `max` connections, then ends.
fn serve(dir: PathBuf, stall: &'static str, stall_after: usize, max: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(max) {
            let Ok(mut conn) = conn else { break };
            let dir = dir.clone();
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&req).into_owned();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                let Ok(body) = std::fs::read(dir.join(path.trim_start_matches('/'))) else {
                    let _ = conn.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if path.contains(stall) {
                    // 0: not even the response's head is sent.
                    if stall_after > 0 {
                        let _ = conn.write_all(head.as_bytes());
                        let _ = conn.write_all(&body[..stall_after.min(body.len())]);
                    }
                    // Stalled: the connection stays open, nothing more comes.
                    std::thread::sleep(Duration::from_secs(20));
                    return;
                }
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&body);
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn http_caches_work_and_stalling_ones_time_out() {
    let f = Fixture::new("xz");
    let timeouts = [
        "--option",
        "stalled-download-timeout",
        "2",
        "--option",
        "connect-timeout",
        "2",
    ];
    // A cache that never answers at all: passed over with a warning, tvix builds.
    let silent = serve(f.cache.clone(), "nix-cache-info", 0, 4);
    let started = std::time::Instant::now();
    let (out, _) = f.substitute("s1", std::slice::from_ref(&silent), &timeouts);
    ok(&out, "building past a silent cache");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: disabling the binary cache"),
        "{stderr}"
    );
    assert!(stderr.contains("timeout"), "{stderr}");
    assert!(stderr.contains("building '"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));

    // The same cache over HTTP, answering: substituted from it.
    let answering = serve(f.cache.clone(), "no such path", 0, 16);
    let (out, store) = f.substitute("s0", std::slice::from_ref(&answering), &timeouts);
    ok(&out, "substituting over HTTP");
    assert!(
        text(&out.stderr).contains(&format!("copying path '{}' from '{answering}'", f.path)),
        "{}",
        text(&out.stderr)
    );
    assert!(tvix_has(&store, &f.path));

    // A cache whose NAR stalls half-way: refused, nothing registered, the next cache used.
    let stalling = serve(f.cache.clone(), "/nar/", 10, 16);
    let (out, store) = f.substitute("s2", std::slice::from_ref(&stalling), &timeouts);
    assert!(!out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("the download stalled"), "{stderr}");
    assert!(!tvix_has(&store, &f.path));
    let (out, _) = f.substitute(
        "s3",
        &[format!("{stalling}?priority=1"), file_url(&f.cache)],
        &timeouts,
    );
    ok(&out, "the next cache after a stalled one");
    assert!(
        text(&out.stderr).contains(&format!("from '{}'", file_url(&f.cache))),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn tvix_caches_are_read_by_nix_and_paths_move_between_the_stores() {
    let f = Fixture::new("xz");
    // nix copy --from the cache tvix wrote, then nix-store --verify-path.
    let root = f.dir.path().join("nix-root");
    let nix_store = format!("local?root={}", root.display());
    let out = Command::new("nix")
        .args(["--extra-experimental-features", "nix-command", "copy"])
        .args(["--from", &file_url(&f.cache), "--to", &nix_store])
        .args(["--option", "trusted-public-keys", &f.pk])
        .arg(&f.path)
        .env_remove("NIX_REMOTE")
        .output()
        .unwrap();
    ok(&out, "nix copy --from a tvix-written cache");
    let out = Command::new("nix-store")
        .args(["--store", &nix_store, "--verify-path", &f.path])
        .env_remove("NIX_REMOTE")
        .output()
        .unwrap();
    ok(&out, "nix-store --verify-path");
    // tvix store copy --from file:// (verified) into another tvix store.
    let other = f.dir.path().join("other");
    let out = tvix()
        .args(["store", "copy", "--from", &file_url(&f.cache), "--to"])
        .arg(format!("local://{}", other.display()))
        .args(["--option", "trusted-public-keys", &f.pk, &f.path])
        .output()
        .unwrap();
    ok(&out, "tvix store copy --from file://");
    assert!(tvix_has(&other, &f.path));

    // tvix -> the Nix store (nix-store --import), and nix verifies it.
    let out = tvix()
        .args(["store", "copy", "--from"])
        .arg(format!("local://{}", other.display()))
        .args(["--to", "nix:///nix/store", &f.path])
        .output()
        .unwrap();
    ok(&out, "tvix store copy --to nix:///nix/store");
    let out = Command::new("nix-store")
        .args(["--verify-path", &f.path])
        .output()
        .unwrap();
    ok(&out, "nix-store --verify-path in /nix/store");
}

#[test]
fn paths_nix_built_are_read_from_the_nix_store() {
    common::check_prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let n = nonce();
    let file = drv_file(
        dir.path(),
        "from-nix",
        "mkdir $out; echo ${nonce} > $out/a; ln -s ${bb} $out/bb",
        "",
    );
    let built = common::nix_build(&file, &n, &[]);
    ok(&built, "nix-build");
    let path = last_line(&built);
    let store = dir.path().join("tvix");
    let out = tvix()
        .args(["store", "copy", "--from", "nix:///nix/store", "--to"])
        .arg(format!("local://{}", store.display()))
        .arg(&path)
        .output()
        .unwrap();
    ok(&out, "tvix store copy --from nix:///nix/store");
    // The closure came along (busybox), and the contents are Nix's.
    let info = tvix()
        .args(["store", "--store", &format!("local://{}", store.display())])
        .args(["info"])
        .output()
        .unwrap();
    ok(&info, "tvix store info");
    assert!(
        text(&info.stdout).contains("-busybox"),
        "{}",
        text(&info.stdout)
    );
    let ours = common::tvix_export(&store, &path);
    ok(&ours, "tvix store export");
    let theirs = common::nix_dump(&path);
    assert!(ours.stdout == theirs.stdout, "the NARs differ");
    assert!(Path::new(BUSYBOX).exists());
}

/// A substitution's bytes are reported as Nix reports a copy's progress: results of
/// type 105 `[done, expected, running, failed]` on its copy-path activity (100), ending
/// with every byte of the cache's (compressed) file.
#[test]
fn substitutions_report_their_bytes_in_internal_json() {
    let f = Fixture::new("none");
    let (out, _) = f.substitute(
        "bytes",
        &[file_url(&f.cache)],
        &["--log-format", "internal-json"],
    );
    let err = text(&out.stderr);
    ok(&out, "tvix build --log-format internal-json");
    let records: Vec<serde_json::Value> = err
        .lines()
        .filter_map(|l| l.strip_prefix("@nix "))
        .map(|j| serde_json::from_str(j).expect("a JSON record"))
        .collect();
    let copy = records
        .iter()
        .find(|r| r["action"] == "start" && r["type"] == 100)
        .unwrap_or_else(|| panic!("no copy-path activity:\n{err}"));
    let id = copy["id"].as_u64().unwrap();
    let progress: Vec<Vec<u64>> = records
        .iter()
        .filter(|r| r["action"] == "result" && r["type"] == 105 && r["id"] == id)
        .map(|r| {
            r["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect()
        })
        .collect();
    // The NAR file as the cache holds it (no compression: the NAR itself).
    let hash = f.hash_part();
    let narinfo = std::fs::read_to_string(f.cache.join(format!("{hash}.narinfo"))).unwrap();
    let size: u64 = narinfo
        .lines()
        .find_map(|l| l.strip_prefix("FileSize: "))
        .expect("a FileSize")
        .parse()
        .unwrap();
    assert!(size > 300_000, "{narinfo}");
    // More than one step of a file this size, growing, ending at the whole file.
    assert!(progress.len() >= 2, "{progress:?}\n{err}");
    assert!(
        progress.windows(2).all(|w| w[0][0] < w[1][0]),
        "{progress:?}"
    );
    assert_eq!(progress.last().unwrap(), &vec![size, size, 0, 0], "{err}");
    // The realise activity (102) expects those bytes to be downloaded (106, `[101, n]`).
    let realise = records
        .iter()
        .find(|r| r["action"] == "start" && r["type"] == 102)
        .unwrap_or_else(|| panic!("no realise activity:\n{err}"));
    assert!(
        records.iter().any(|r| r["action"] == "result"
            && r["type"] == 106
            && r["id"] == realise["id"]
            && r["fields"] == serde_json::json!([101, size])),
        "no setExpected of the download:\n{err}"
    );
    // Stopped like every activity.
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "stop" && r["id"] == id),
        "{err}"
    );
}
