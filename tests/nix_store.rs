//! `nix-store` as argv[0] and Nix's export format, against the reference `nix-store`
//! (Nix 2.8; these tests need root for its store). The tvix side always runs first, and
//! every run's contents carry a nonce, so leftovers in `/nix/store` cannot make a test
//! pass.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{t}-{}", std::process::id())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Runs `program ARGS` with `stdin` as its standard input.
fn run_with_stdin(mut c: Command, stdin: &[u8]) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().unwrap();
    out
}

/// A tvix store in a temporary directory, and `nix-store` pointing at the tvix binary.
struct Tvix {
    dir: tempfile::TempDir,
    url: String,
    shim: PathBuf,
}

impl Tvix {
    fn new() -> Tvix {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("local://{}", dir.path().join("store").display());
        let shim = dir.path().join("nix-store");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tvix"), &shim).unwrap();
        Tvix { dir, url, shim }
    }

    fn tvix(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tvix"));
        c.env("TVIX_STORE", &self.url).env_remove("NIX_REMOTE");
        c
    }

    /// `tvix ARGS` (with the store in `TVIX_STORE`).
    fn run(&self, args: &[&str]) -> Output {
        self.tvix().args(args).output().unwrap()
    }

    /// Our `nix-store ARGS`.
    fn nix_store(&self, args: &[&str]) -> Output {
        Command::new(&self.shim)
            .args(args)
            .env("TVIX_STORE", &self.url)
            .output()
            .unwrap()
    }
}

/// The reference `nix-store ARGS`.
fn nix_store(args: &[&str]) -> Output {
    Command::new("nix-store")
        .args(args)
        .env_remove("NIX_REMOTE")
        .output()
        .expect("the reference nix-store is required")
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

/// An expression whose `.drv` refers to a source directory and to a text file that refers
/// to another text file: a closure of four paths with references.
fn expression(work: &Path, n: &str) -> PathBuf {
    let src = work.join(format!("src-{n}"));
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("f"), format!("file {n}\n")).unwrap();
    std::fs::write(src.join("sub/x"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        src.join("sub/x"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("f", src.join("link")).unwrap();
    let file = work.join(format!("e-{n}.nix"));
    std::fs::write(
        &file,
        format!(
            r#"let dep = builtins.toFile "dep-{n}" "dep {n}";
            in derivation {{ name = "top-{n}"; system = "x86_64-linux"; builder = "/bin/sh";
                 src = {src}; x = builtins.toFile "t-{n}" "${{dep}}"; }}"#,
            src = src.display()
        ),
    )
    .unwrap();
    file
}

/// For each path: NAR hash, size, references and deriver, as `nix-store -q` prints them.
fn queries(run: &dyn Fn(&[&str]) -> Output, paths: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        for q in [
            "--hash",
            "--size",
            "--references",
            "--deriver",
            "--requisites",
        ] {
            out.push(format!("{p} {q}: {}", ok(&run(&["-q", q, p]))));
        }
    }
    out
}

#[test]
fn export_to_nix_and_import_from_nix() {
    let t = Tvix::new();
    let n = nonce();
    let work = t.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    // tvix → Nix.
    let file = expression(&work, &format!("a{n}"));
    let drv = ok(&t.run(&["instantiate", file.to_str().unwrap()]))
        .trim()
        .to_string();
    let closure = lines(&ok(&t.nix_store(&["-qR", &drv])));
    assert_eq!(closure.len(), 4, "{closure:?}");
    for p in &closure {
        assert!(!Path::new(p).exists(), "{p} is already in /nix/store");
    }
    let mut args = vec!["store", "export", "--format", "nix"];
    args.extend(closure.iter().map(String::as_str));
    let stream = t.run(&args);
    ok(&stream);
    let imported = run_with_stdin(
        {
            let mut c = Command::new("nix-store");
            c.arg("--import").env_remove("NIX_REMOTE");
            c
        },
        &stream.stdout,
    );
    assert_eq!(lines(&ok(&imported)), closure);
    let ours = queries(&|a| t.nix_store(a), &closure);
    let theirs = queries(&|a| nix_store(a), &closure);
    assert_eq!(ours, theirs);
    // Byte for byte what Nix exports (references first, Nix's order).
    let mut args = vec!["--export"];
    args.extend(closure.iter().map(String::as_str));
    assert!(
        stream.stdout == nix_store(&args).stdout,
        "export streams differ"
    );
    assert!(t.nix_store(&args).stdout == stream.stdout);

    // Nix → tvix, into a store that has none of it.
    let t2 = Tvix::new();
    let file = expression(&work, &format!("b{n}"));
    let out = Command::new("nix-instantiate")
        .arg(&file)
        .env_remove("NIX_REMOTE")
        .output()
        .unwrap();
    let drv = ok(&out).trim().to_string();
    let closure = lines(&ok(&nix_store(&["-qR", &drv])));
    let mut args = vec!["--export"];
    args.extend(closure.iter().map(String::as_str));
    let stream = nix_store(&args);
    ok(&stream);
    let imported = run_with_stdin(
        {
            let mut c = t2.tvix();
            c.args(["store", "import", "--format", "nix"]);
            c
        },
        &stream.stdout,
    );
    assert_eq!(lines(&ok(&imported)), closure);
    assert_eq!(
        queries(&|a| t2.nix_store(a), &closure),
        queries(&|a| nix_store(a), &closure)
    );
    ok(&t2.run(&["store", "verify"]));
    for p in &closure {
        ok(&t2.nix_store(&["--verify-path", p]));
        assert!(t2.nix_store(&["--dump", p]).stdout == nix_store(&["--dump", p]).stdout);
    }
    // `nix-store --import` as argv[0] reads the same stream.
    let t3 = Tvix::new();
    let again = run_with_stdin(
        {
            let mut c = Command::new(&t3.shim);
            c.arg("--import").env("TVIX_STORE", &t3.url);
            c
        },
        &stream.stdout,
    );
    assert_eq!(lines(&ok(&again)), closure);
}

#[test]
fn add_dump_and_realise_of_valid_paths_match_nix() {
    let t = Tvix::new();
    let n = nonce();
    let f = t.dir.path().join(format!("added-{n}"));
    std::fs::write(&f, format!("added {n}\n")).unwrap();
    let ours = ok(&t.nix_store(&["--add", f.to_str().unwrap()]));
    let p = ours.trim().to_string();
    assert!(!Path::new(&p).exists(), "{p} is already in /nix/store");
    assert_eq!(ours, ok(&nix_store(&["--add", f.to_str().unwrap()])));
    assert!(t.nix_store(&["--dump", &p]).stdout == nix_store(&["--dump", &p]).stdout);
    assert_eq!(ok(&t.nix_store(&["--realise", &p])), format!("{p}\n"));
    // Through a symlink to the path, as Nix follows them.
    let link = t.dir.path().join("result");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    assert_eq!(
        ok(&t.nix_store(&["-q", "--hash", link.to_str().unwrap()])),
        ok(&nix_store(&["-q", "--hash", &p]))
    );
    // Errors: an invalid path, a flag Nix does not have, no operation.
    let bogus = format!("/nix/store/{}-nope-{n}", "0".repeat(32));
    let out = t.nix_store(&["-q", "--hash", &bogus]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not valid"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(t.nix_store(&["--frobnicate"]).status.code(), Some(1));
    assert_eq!(t.nix_store(&[]).status.code(), Some(1));
}

#[test]
fn verify_path_reports_a_modified_path_as_nix_does() {
    use tvix_store::castore::{BlobService, Node, Store};
    use tvix_store::pathinfo::{PathInfo, PathInfoService};
    let t = Tvix::new();
    let n = nonce();
    let f = t.dir.path().join(format!("v-{n}"));
    std::fs::write(&f, format!("verified {n}\n")).unwrap();
    let good = ok(&t.nix_store(&["--add", f.to_str().unwrap()]))
        .trim()
        .to_string();
    // A path whose registered NAR hash is not that of its contents.
    let bad = format!("/nix/store/{}-modified-{n}", "1".repeat(32));
    {
        let store = Store::local(&t.dir.path().join("store")).unwrap();
        let (digest, size) = store.put_blob_bytes(b"not what was registered").unwrap();
        store
            .put_path_info(&PathInfo {
                store_path: tvix_store::StorePath::from_absolute_path(&bad).unwrap(),
                node: Node::File {
                    digest,
                    size,
                    executable: false,
                },
                nar_sha256: [7; 32],
                nar_size: 1,
                references: Vec::new(),
                deriver: None,
                signatures: Vec::new(),
                ca: None,
            })
            .unwrap();
    }
    ok(&t.nix_store(&["--verify-path", &good]));
    let out = t.nix_store(&["--verify-path", &good, &bad]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "path '{bad}' was modified! expected hash 'sha256:"
        )),
        "{err}"
    );
    assert!(err.contains("', got 'sha256:"), "{err}");

    // The same message as the real nix-store gives for a path changed on disk.
    let f = t.dir.path().join(format!("m-{n}"));
    std::fs::write(&f, format!("modified {n}\n")).unwrap();
    let p = ok(&nix_store(&["--add", f.to_str().unwrap()]))
        .trim()
        .to_string();
    let mut perms = std::fs::metadata(&p).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&p, perms).unwrap();
    std::fs::write(&p, "changed\n").unwrap();
    let theirs = nix_store(&["--verify-path", &p]);
    let _ = nix_store(&["--delete", &p]);
    assert_eq!(theirs.status.code(), Some(1));
    let theirs = text(&theirs.stderr);
    let shape = |s: &str| s.split(" was modified!").next().unwrap_or("").to_string();
    assert_eq!(shape(&theirs), format!("path '{p}'"), "{theirs}");
    assert!(
        theirs.contains("' was modified! expected hash 'sha256:"),
        "{theirs}"
    );
}

/// Streams that are cut short, name a reference nobody has, or are not export streams
/// at all register nothing.
#[test]
fn bad_import_streams_register_nothing() {
    let t = Tvix::new();
    let n = nonce();
    let work = t.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let file = expression(&work, &format!("c{n}"));
    let drv = ok(&t.run(&["instantiate", file.to_str().unwrap()]))
        .trim()
        .to_string();
    let closure = lines(&ok(&t.nix_store(&["-qR", &drv])));
    let mut args = vec!["--export"];
    args.extend(closure.iter().map(String::as_str));
    let whole = t.nix_store(&args).stdout;
    // Only the derivation, without the paths it refers to.
    let lone = t.nix_store(&["--export", &drv]).stdout;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", whole[..whole.len() / 2].to_vec()),
        ("no end marker", whole[..whole.len() - 8].to_vec()),
        ("dangling reference", lone),
        (
            "not an export",
            b"hello world, certainly not a stream".to_vec(),
        ),
        ("empty", Vec::new()),
    ];
    for (what, stream) in cases {
        let fresh = Tvix::new();
        let out = run_with_stdin(
            {
                let mut c = fresh.tvix();
                c.args(["store", "import", "--format", "nix"]);
                c
            },
            &stream,
        );
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert!(text(&out.stderr).starts_with("error: "), "{what}");
        let info = ok(&fresh.run(&["store", "info"]));
        assert!(info.is_empty(), "{what}: registered {info}");
    }
    // The whole stream is fine.
    let fresh = Tvix::new();
    let out = run_with_stdin(
        {
            let mut c = fresh.tvix();
            c.args(["store", "import", "--format", "nix"]);
            c
        },
        &whole,
    );
    let got: BTreeSet<String> = lines(&ok(&out)).into_iter().collect();
    assert_eq!(got, closure.into_iter().collect());
}
