//! Differential tests against the reference Nix (`nix-store`, `nix-hash`,
//! `nix-instantiate`): NAR bytes and hashes, source and text store paths, and derivations
//! (ATerm round trip, `.drv` paths, output paths).
//!
//! The reference tools must be installed (Debian package `nix-bin`); if they are missing
//! the tests fail with a message saying so. Commands that do not need a store run with
//! `NIX_REMOTE=dummy://`; `nix-store --add` and `nix-instantiate` write to the local store
//! (they need root or a writable `/nix/store`).

mod common;
use common::{run_nix, run_nix_str};

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use tvix_store::derivation::Derivation;
use tvix_store::hash::{HashAlgo, HashEncoding, Hasher, NixHash};
use tvix_store::nar::{self, NarEncoder};
use tvix_store::store_path::{StoreDir, StorePath};

/// A tree with the interesting cases: executables, symlinks (relative, absolute, dangling,
/// to directories), empty files and directories, deep nesting, unicode and sort-sensitive
/// names, and files of every padding length.
fn make_tree(root: &Path) {
    fs::create_dir_all(root).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::create_dir(root.join("emptydir")).unwrap();
    let exe = root.join("run.sh");
    fs::write(&exe, b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let exe_only_owner = root.join("owner-x");
    fs::write(&exe_only_owner, b"x").unwrap();
    fs::set_permissions(&exe_only_owner, fs::Permissions::from_mode(0o700)).unwrap();
    let group_x = root.join("group-x");
    fs::write(&group_x, b"x").unwrap();
    fs::set_permissions(&group_x, fs::Permissions::from_mode(0o654)).unwrap();
    symlink("run.sh", root.join("link-rel")).unwrap();
    symlink("/etc/passwd", root.join("link-abs")).unwrap();
    symlink("does/not/exist", root.join("link-dangling")).unwrap();
    symlink("emptydir", root.join("link-dir")).unwrap();
    for n in 0..=17 {
        fs::write(root.join(format!("pad{n:02}")), vec![b'a' + n as u8; n]).unwrap();
    }
    for name in [
        "ünïcödé",
        "日本語",
        "B",
        "a",
        "a.b",
        "a-b",
        "a_b",
        "Z",
        "with space",
        "ab",
    ] {
        fs::write(root.join(name), name.as_bytes()).unwrap();
    }
    let mut deep = root.join("deep");
    for i in 0..60 {
        deep.push(format!("d{i}"));
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("leaf"), b"leaf\n").unwrap();
    let big: Vec<u8> = (0..1_000_003u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(root.join("big.bin"), big).unwrap();
}

fn fixtures() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let file = dir.path().join("file.txt");
    fs::write(&file, b"hello\n").unwrap();
    let exe = dir.path().join("exe");
    fs::write(&exe, b"").unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let link = dir.path().join("link");
    symlink("tree", &link).unwrap();
    let empty_dir = dir.path().join("emptydir");
    fs::create_dir(&empty_dir).unwrap();
    (dir, vec![tree, file, exe, link, empty_dir])
}

#[test]
fn nar_dump_matches_nix_store_dump() {
    let (_dir, paths) = fixtures();
    for p in &paths {
        let ps = p.to_str().unwrap();
        let reference = run_nix("nix-store", &["--dump", ps], false);
        let ours = nar::dump_path(p, Vec::new()).unwrap();
        assert!(
            ours == reference,
            "NAR of {ps} differs from nix-store --dump"
        );

        // Parsing Nix's NAR and re-encoding it is the identity.
        let mut enc = NarEncoder::new(Vec::new());
        nar::parse(reference.as_slice(), &mut enc).unwrap();
        assert!(enc.into_inner() == reference, "NAR round trip of {ps}");

        // Restoring it and dumping again gives the same NAR.
        let restored = _dir.path().join(format!(
            "restored-{}",
            p.file_name().unwrap().to_str().unwrap()
        ));
        nar::restore(reference.as_slice(), &restored).unwrap();
        assert!(nar::dump_path(&restored, Vec::new()).unwrap() == reference);
    }
}

#[test]
fn nar_hash_matches_nix_hash() {
    let (_dir, paths) = fixtures();
    for p in &paths {
        let ps = p.to_str().unwrap();
        let (h, size) = nar::nar_hash_of_path(p).unwrap();
        let reference = run_nix_str("nix-hash", &["--type", "sha256", "--base32", ps], false);
        assert_eq!(h.to_nix32(), reference, "NAR hash of {ps}");
        let reference16 = run_nix_str("nix-hash", &["--type", "sha256", ps], false);
        assert_eq!(h.to_base16(), reference16);
        assert_eq!(size, nar::dump_path(p, Vec::new()).unwrap().len() as u64);
    }
}

#[test]
fn flat_hashes_match_nix_hash() {
    let (dir, _paths) = fixtures();
    let p = dir.path().join("tree/big.bin");
    let ps = p.to_str().unwrap();
    let data = fs::read(&p).unwrap();
    for algo in [
        HashAlgo::Md5,
        HashAlgo::Sha1,
        HashAlgo::Sha256,
        HashAlgo::Sha512,
    ] {
        let mut h = Hasher::new(algo);
        h.update(&data);
        let h = h.finish();
        let reference = run_nix_str(
            "nix-hash",
            &["--flat", "--type", algo.name(), "--base32", ps],
            false,
        );
        assert_eq!(h.to_nix32(), reference, "{algo}");
        let reference16 = run_nix_str("nix-hash", &["--flat", "--type", algo.name(), ps], false);
        assert_eq!(h.to_base16(), reference16, "{algo}");
        // Converting with nix-hash agrees with our parser and printer.
        let to32 = run_nix_str(
            "nix-hash",
            &["--to-base32", "--type", algo.name(), &h.to_base16()],
            false,
        );
        assert_eq!(to32, h.to_nix32());
        assert_eq!(NixHash::parse(&to32, Some(algo)).unwrap(), h);
        assert_eq!(
            NixHash::parse(&h.to_prefixed(HashEncoding::Base64), None).unwrap(),
            h
        );
    }
}

#[test]
fn source_paths_match_nix_store_add() {
    let (_dir, paths) = fixtures();
    let sd = StoreDir::default();
    for p in &paths {
        let ps = p.to_str().unwrap();
        let reference = run_nix_str("nix-store", &["--add", ps], true);
        let (h, _) = nar::nar_hash_of_path(p).unwrap();
        let name = p.file_name().unwrap().to_str().unwrap();
        let ours = sd.make_source_path(name, &h, [], false).unwrap();
        assert_eq!(sd.display(&ours), reference, "source path of {ps}");
        assert_eq!(sd.parse_path(&reference).unwrap(), ours);
    }
}

#[test]
fn text_paths_match_builtins_to_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("srcfile");
    fs::write(&src, b"source\n").unwrap();
    let sd = StoreDir::default();

    let plain = run_nix_str(
        "nix-instantiate",
        &["--eval", "-E", r#"builtins.toFile "foo" "bar\n\"baz\"""#],
        true,
    );
    let ours = sd.make_text_path("foo", b"bar\n\"baz\"", []).unwrap();
    assert_eq!(format!("\"{}\"", sd.display(&ours)), plain);

    // A text file referring to a source path and to another text file.
    let expr = format!(
        r#"let s = builtins.path {{ path = {}; name = "src"; }};
               t = builtins.toFile "other" "x";
           in builtins.toFile "withrefs" "a ${{s}} b ${{t}}""#,
        src.display()
    );
    let with_refs = run_nix_str("nix-instantiate", &["--eval", "-E", &expr], true);
    let (h, _) = nar::nar_hash_of_path(&src).unwrap();
    let s = sd.make_source_path("src", &h, [], false).unwrap();
    let t = sd.make_text_path("other", b"x", []).unwrap();
    let contents = format!("a {} b {}", sd.display(&s), sd.display(&t));
    let ours = sd
        .make_text_path("withrefs", contents.as_bytes(), [&t, &s])
        .unwrap();
    assert_eq!(format!("\"{}\"", sd.display(&ours)), with_refs);
}

/// Computes the modulo hash of a `.drv` in the store, recursively and memoised.
fn modulo_hash(path: &str, cache: &mut HashMap<String, NixHash>) -> NixHash {
    if let Some(h) = cache.get(path) {
        return h.clone();
    }
    let drv = Derivation::from_aterm_bytes(&fs::read(path).unwrap()).unwrap();
    let mut known = HashMap::new();
    for input in drv.input_derivations.keys() {
        known.insert(input.clone(), modulo_hash(input, cache));
    }
    let h = drv
        .hash_derivation_modulo(|p| known.get(p).cloned())
        .unwrap();
    cache.insert(path.to_string(), h.clone());
    h
}

/// Checks one `.drv` written by Nix: exact ATerm round trip, `.drv` path and output paths.
fn check_drv(drv_path: &str, cache: &mut HashMap<String, NixHash>) {
    let sd = StoreDir::default();
    let bytes = fs::read(drv_path).unwrap();
    let drv = Derivation::from_aterm_bytes(&bytes).unwrap();
    assert!(
        drv.to_aterm_bytes() == bytes,
        "ATerm round trip of {drv_path}:\n{}\n{}",
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&drv.to_aterm_bytes())
    );
    let name = drv.name().expect("derivation has a name").to_string();
    assert_eq!(
        sd.display(&drv.drv_path(&sd, &name).unwrap()),
        drv_path,
        "drv path"
    );
    // Inputs first, so their modulo hashes are known.
    for input in drv.input_derivations.keys() {
        check_drv(input, cache);
    }
    let mut known = HashMap::new();
    for input in drv.input_derivations.keys() {
        known.insert(input.clone(), modulo_hash(input, cache));
    }
    // Recompute the output paths from a derivation with blanked outputs.
    let mut fresh = drv.clone();
    for (out_name, o) in fresh.outputs.iter_mut() {
        o.path.clear();
        fresh.env.remove(out_name);
    }
    fresh
        .calculate_output_paths(&sd, &name, |p| known.get(p).cloned())
        .unwrap();
    assert_eq!(fresh, drv, "output paths of {drv_path}");
    assert_eq!(sd.display(&fresh.drv_path(&sd, &name).unwrap()), drv_path);
}

const DRVS_NIX: &str = r#"
let
  sys = "x86_64-linux";
  fodFlat = derivation {
    name = "fod-flat"; system = sys; builder = "/bin/sh"; args = [ "-c" "echo hi > $out" ];
    outputHashMode = "flat"; outputHashAlgo = "sha256";
    outputHash = "0000000000000000000000000000000000000000000000000000";
  };
  fodRec = derivation {
    name = "fod-rec"; system = sys; builder = "/bin/sh";
    outputHashMode = "recursive"; outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
  };
  fodSha1 = derivation {
    name = "fod-sha1"; system = sys; builder = "/bin/sh";
    outputHashMode = "recursive"; outputHashAlgo = "sha1";
    outputHash = "0000000000000000000000000000000000000000";
  };
  fodMd5Flat = derivation {
    name = "fod-md5"; system = sys; builder = "/bin/sh";
    outputHashAlgo = "md5"; outputHash = "00000000000000000000000000000000";
  };
  plain = derivation { name = "plain"; system = sys; builder = "/bin/sh"; };
  multi = derivation {
    name = "multi"; system = sys; builder = "/bin/sh";
    outputs = [ "out" "dev" "lib" ];
    args = [ "-c" "weird \" \\ \n \r \t $ chars" ];
    escapes = "tab\there\r\nquote\"backslash\\";
    unicode = "ünïcödé 日本";
    list = [ 1 "two" true null ];
  };
in {
  inherit plain multi fodFlat fodRec fodSha1 fodMd5Flat;
  dependent = derivation {
    name = "dependent"; system = sys; builder = "/bin/sh";
    src = SRCFILE;
    deps = [ plain multi.dev multi.lib fodFlat fodRec fodSha1 ];
    script = builtins.toFile "script.sh" "cat ${SRCFILE}";
  };
  onTwoFods = derivation {
    name = "on-two-fods"; system = sys; builder = "${fodFlat}/bin/sh";
    # Two FODs with the same output path have the same modulo hash.
    a = fodFlat;
    b = derivation {
      name = "fod-flat"; system = sys; builder = "/bin/other";
      outputHashMode = "flat"; outputHashAlgo = "sha256";
      outputHash = "0000000000000000000000000000000000000000000000000000";
    };
  };
  chain = derivation {
    name = "chain"; system = sys; builder = "/bin/sh";
    dep = derivation {
      name = "middle"; system = sys; builder = "/bin/sh";
      dep = plain; outputs = [ "bin" "out" ];
    };
  };
}
"#;

#[test]
fn derivations_match_nix_instantiate() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("srcfile");
    fs::write(&src, b"some source\n").unwrap();
    let nix_file = dir.path().join("drvs.nix");
    fs::write(
        &nix_file,
        DRVS_NIX.replace("SRCFILE", src.to_str().unwrap()),
    )
    .unwrap();
    let nf = nix_file.to_str().unwrap();
    let mut cache = HashMap::new();
    let attrs = [
        "plain",
        "multi",
        "fodFlat",
        "fodRec",
        "fodSha1",
        "fodMd5Flat",
        "dependent",
        "onTwoFods",
        "chain",
    ];
    for attr in attrs {
        let out = run_nix_str("nix-instantiate", &[nf, "-A", attr], true);
        let drv_path = out.lines().last().expect("nix-instantiate printed a path");
        check_drv(drv_path, &mut cache);
    }
}

#[test]
fn store_path_name_errors_are_clear() {
    let err = StorePath::from_base_name("miacmq2d49l5qm1xgkpr982m3rd9ax08-~jiggle~").unwrap_err();
    assert_eq!(
        err.to_string(),
        "name '~jiggle~' contains illegal character '~'"
    );
    // Nix rejects the same name.
    let out = Command::new("nix-instantiate")
        .args(["--eval", "-E", r#"builtins.toFile "~jiggle~" "x""#])
        .output()
        .expect("reference tool 'nix-instantiate' not found: install Nix (nix-bin)");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("illegal character '~'"));
}

#[test]
fn filtered_source_paths_match_filter_source() {
    let (dir, _paths) = fixtures();
    let tree = dir.path().join("tree");
    let expr = format!(
        r#"builtins.filterSource (p: t: !(builtins.elem (baseNameOf p) [ "deep" "big.bin" ]) && t != "symlink") {}"#,
        tree.display()
    );
    let reference = run_nix_str("nix-instantiate", &["--eval", "-E", &expr], true);
    let (h, _) = nar::nar_hash_of_path_filtered(&tree, |p, meta| {
        let name = p.file_name().unwrap().to_str().unwrap();
        Ok(!["deep", "big.bin"].contains(&name) && !meta.file_type().is_symlink())
    })
    .unwrap();
    let sd = StoreDir::default();
    let ours = sd.make_source_path("tree", &h, [], false).unwrap();
    assert_eq!(format!("\"{}\"", sd.display(&ours)), reference);
}

#[test]
fn placeholders_match_builtins_placeholder() {
    for out in ["out", "dev", "lib"] {
        let reference = run_nix_str(
            "nix-instantiate",
            &["--eval", "-E", &format!(r#"builtins.placeholder "{out}""#)],
            false,
        );
        assert_eq!(
            format!("\"{}\"", tvix_store::derivation::placeholder(out)),
            reference
        );
    }
}

/// Evaluates `expr` with another store directory, in read-only mode (nothing is written).
fn eval_in_store_dir(store_dir: &str, expr: &str) -> String {
    let mut cmd = Command::new("nix-instantiate");
    cmd.args(["--eval", "--readonly-mode", "-E", expr])
        .env("NIX_STORE_DIR", store_dir)
        .env("NIX_REMOTE", "dummy://");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run reference tool 'nix-instantiate' (install Nix, nix-bin): {e}")
    });
    assert!(
        out.status.success(),
        "nix-instantiate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    s.trim().trim_matches('"').to_string()
}

#[test]
fn custom_store_dir_matches_nix() {
    let sd = StoreDir::new("/gnu/store").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("srcfile");
    fs::write(&src, b"src\n").unwrap();

    let text = eval_in_store_dir(sd.as_str(), r#"builtins.toFile "foo" "bar""#);
    assert_eq!(
        text,
        sd.display(&sd.make_text_path("foo", b"bar", []).unwrap())
    );

    let source = eval_in_store_dir(
        sd.as_str(),
        &format!(
            r#"builtins.path {{ path = {}; name = "s"; }}"#,
            src.display()
        ),
    );
    let (h, _) = nar::nar_hash_of_path(&src).unwrap();
    assert_eq!(
        source,
        sd.display(&sd.make_source_path("s", &h, [], false).unwrap())
    );

    // A multi-output derivation built by hand, as an evaluator would.
    let drv_expr = r#"derivation { name = "x"; system = "x86_64-linux"; builder = "/bin/sh";
                                   outputs = [ "out" "doc" ]; args = [ "a\tb" ]; }"#;
    let mut drv = Derivation {
        system: "x86_64-linux".into(),
        builder: "/bin/sh".into(),
        args: vec!["a\tb".into()],
        ..Default::default()
    };
    for o in ["out", "doc"] {
        drv.outputs.insert(o.into(), Default::default());
    }
    for (k, v) in [
        ("builder", "/bin/sh"),
        ("name", "x"),
        ("system", "x86_64-linux"),
        ("outputs", "out doc"),
    ] {
        drv.env.insert(k.into(), v.into());
    }
    drv.calculate_output_paths(&sd, "x", |_| None).unwrap();
    let drv_path = sd.display(&drv.drv_path(&sd, "x").unwrap());
    assert_eq!(
        eval_in_store_dir(sd.as_str(), &format!("({drv_expr}).drvPath")),
        drv_path
    );
    assert_eq!(
        eval_in_store_dir(sd.as_str(), &format!("({drv_expr}).doc.outPath")),
        drv.outputs["doc"].path
    );

    // A fixed-output derivation.
    let fod_expr = r#"derivation { name = "f"; system = "x86_64-linux"; builder = "/bin/sh";
                                   outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; }"#;
    let mut fod = Derivation {
        system: "x86_64-linux".into(),
        builder: "/bin/sh".into(),
        ..Default::default()
    };
    let hash = NixHash::parse("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", None).unwrap();
    fod.outputs.insert(
        "out".into(),
        tvix_store::Output::fixed(tvix_store::FileIngestionMethod::Flat, &hash),
    );
    for (k, v) in [
        ("builder", "/bin/sh"),
        ("name", "f"),
        ("system", "x86_64-linux"),
        (
            "outputHash",
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        ),
    ] {
        fod.env.insert(k.into(), v.into());
    }
    fod.calculate_output_paths(&sd, "f", |_| None).unwrap();
    assert_eq!(
        eval_in_store_dir(sd.as_str(), &format!("({fod_expr}).outPath")),
        fod.outputs["out"].path
    );
    assert_eq!(
        eval_in_store_dir(sd.as_str(), &format!("({fod_expr}).drvPath")),
        sd.display(&fod.drv_path(&sd, "f").unwrap())
    );
}
