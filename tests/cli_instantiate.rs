//! `tvix instantiate`, the `nix-instantiate` personality without `--eval`, and
//! `tvix show-derivation`, compared with the reference Nix 2.8 where it has the feature.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::run;
use serde_json::Value as Json;

fn cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/derivations/cases")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The reference `nix-instantiate ARGS` (real local store); fails clearly when missing.
fn nix_instantiate(args: &[&str]) -> Output {
    Command::new("nix-instantiate")
        .args(args)
        .env_remove("NIX_REMOTE")
        .output()
        .unwrap_or_else(|e| {
            panic!("the reference `nix-instantiate` (Nix 2.8) is required by these tests: {e}")
        })
}

#[track_caller]
fn same_as_nix(args: &[&str]) -> String {
    let want = nix_instantiate(args);
    assert!(
        want.status.success(),
        "nix-instantiate {args:?}: {}",
        stderr(&want)
    );
    let mut tvix_args = vec!["instantiate"];
    tvix_args.extend_from_slice(args);
    let got = run(&tvix_args, "");
    assert!(got.status.success(), "tvix {tvix_args:?}: {}", stderr(&got));
    assert_eq!(stdout(&got), stdout(&want), "tvix {tvix_args:?}");
    stdout(&got)
}

#[test]
fn instantiate_files_like_nix() {
    for case in [
        "basic.nix",
        "chain3.nix",
        "multi-out-order.nix",
        "multi-out-select-dev.nix",
        "fetchurl-sha256.nix",
        "structured-deps.nix",
        "path-filter.nix",
    ] {
        let f = cases().join(case);
        let out = same_as_nix(&[f.to_str().unwrap()]);
        assert!(
            out.starts_with("/nix/store/") && out.contains(".drv"),
            "{out}"
        );
    }
}

const SETS: &str = r#"
{ prefix ? "p" }:
let mk = n: derivation { name = "${prefix}-${n}"; builder = "/bin/sh"; system = "x86_64-linux"; outputs = [ "out" "dev" ]; };
in {
  b = mk "b";
  a = [ (mk "a") ];
  c = (mk "c").dev;
  n = 1;
  f = x: mk "f";
  s = { recurseForDerivations = true; x = mk "x"; inner = { y = mk "y"; }; };
  l = [ (mk "l1") { z = mk "z"; } [ (mk "l2") ] ];
}
"#;

#[test]
fn instantiate_sets_lists_and_selections() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sets.nix");
    std::fs::write(&file, SETS).unwrap();
    let f = file.to_str().unwrap();
    let all = same_as_nix(&[f]);
    assert_eq!(all.lines().count(), 3, "{all}");
    same_as_nix(&[f, "-A", "l"]);
    same_as_nix(&[f, "-A", "s"]);
    same_as_nix(&[f, "-A", "c"]);
    same_as_nix(&[f, "-A", "l.2.0", "--argstr", "prefix", "q"]);
    same_as_nix(&[f, "-A", "b", "--arg", "prefix", "\"r\" + \"s\""]);
    // The same derivation set reached twice is listed once; a copy of it is listed again.
    // (`d // { }` is left out: Nix returns `d` itself, tvix a copy, see ops.rs.)
    let d = "let d = derivation { name = \"x\"; builder = \"/bin/sh\"; system = \"x86_64-linux\"; }; in";
    for e in [
        "[ d d ]",
        "[ d.out d ]",
        "{ a = d; b = d; c = d // { x = 1; }; }",
        "[ (d // { x = 1; }) (d // { x = 1; }) ]",
    ] {
        same_as_nix(&["-E", &format!("{d} {e}")]);
    }
    same_as_nix(&["-E", "[ (import <nix/fetchurl.nix> { url = \"https://example.com/a\"; sha256 = \"0000000000000000000000000000000000000000000000000000\"; }) ]"]);
}

#[test]
fn instantiate_errors() {
    for expr in ["[ 3 ]", "\"a string\"", "1"] {
        let got = run(&["instantiate", "-E", expr], "");
        assert_eq!(got.status.code(), Some(1), "{expr}");
        assert!(
            stderr(&got).contains(
                "expression does not evaluate to a derivation (or a set or list of those)"
            ),
            "{expr}: {}",
            stderr(&got)
        );
    }
    let got = run(&["instantiate", "-E", "{ a = throw \"boom\"; }"], "");
    assert_eq!(got.status.code(), Some(1));
    assert!(stderr(&got).contains("boom"), "{}", stderr(&got));
    let got = run(
        &[
            "instantiate",
            "-E",
            "derivation { name = \"x\"; system = \"s\"; }",
        ],
        "",
    );
    assert_eq!(got.status.code(), Some(1));
    assert!(stderr(&got).contains("builder"), "{}", stderr(&got));
}

#[test]
fn the_drv_file_is_written_to_the_store_unless_readonly() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("local://{}", dir.path().display());
    let expr = "derivation { name = \"w\"; builder = \"/bin/sh\"; system = \"x86_64-linux\"; }";
    let want = nix_instantiate(&["-E", expr]);
    let drv = stdout(&want).trim().to_string();
    let reference = std::fs::read_to_string(&drv).unwrap();

    let got = run(
        &[
            "instantiate",
            "--readonly-mode",
            "--store",
            &store,
            "-E",
            expr,
        ],
        "",
    );
    assert_eq!(stdout(&got).trim(), drv, "{}", stderr(&got));
    let cat = run(&["store", "--store", &store, "cat", &drv], "");
    assert!(!cat.status.success(), "--readonly-mode wrote {drv}");

    let got = run(&["instantiate", "--store", &store, "-E", expr], "");
    assert_eq!(stdout(&got).trim(), drv, "{}", stderr(&got));
    let cat = run(&["store", "--store", &store, "cat", &drv], "");
    assert_eq!(stdout(&cat), reference, "{}", stderr(&cat));
}

#[test]
fn invoked_as_nix_instantiate() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("nix-instantiate");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tvix"), &link).unwrap();
    let expr = "derivation { name = \"x\"; builder = \"/bin/sh\"; system = \"x86_64-linux\"; }";
    let got = Command::new(&link)
        .args(["-E", expr])
        .env("TVIX_STORE", "memory://")
        .output()
        .unwrap();
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(
        stdout(&got),
        "/nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x.drv\n"
    );
    let want = nix_instantiate(&["-E", expr]);
    assert_eq!(stdout(&got), stdout(&want));
    // `--add-root` is accepted (tvix's store has no garbage collector to root against).
    let got = Command::new(&link)
        .env("TVIX_STORE", "memory://")
        .args(["--add-root", "/tmp/unused-root", "-E", expr])
        .output()
        .unwrap();
    assert!(got.status.success(), "{}", stderr(&got));
    // With --eval it still evaluates.
    let got = Command::new(&link)
        .env("TVIX_STORE", "memory://")
        .args(["--eval", "-E", "1 + 2"])
        .output()
        .unwrap();
    assert_eq!(stdout(&got), "3\n");
}

/// Nix 2.8's `nix show-derivation` JSON, converted to the newer `nix derivation show`
/// format (input derivations as `{outputs, dynamicOutputs}`, a `name` field).
fn nix_show_derivation(paths: &[&str], recursive: bool) -> Json {
    let mut cmd = Command::new("nix");
    cmd.args([
        "--extra-experimental-features",
        "nix-command",
        "show-derivation",
    ]);
    if recursive {
        cmd.arg("-r");
    }
    let out = cmd
        .args(paths)
        .env_remove("NIX_REMOTE")
        .output()
        .expect("nix");
    assert!(out.status.success(), "{}", stderr(&out));
    let mut j: Json = serde_json::from_slice(&out.stdout).unwrap();
    for (path, d) in j.as_object_mut().unwrap().iter_mut() {
        let d = d.as_object_mut().unwrap();
        let inputs = d["inputDrvs"].as_object_mut().unwrap();
        for v in inputs.values_mut() {
            let outs = v.take();
            *v = serde_json::json!({ "outputs": outs, "dynamicOutputs": {} });
        }
        let base = path.rsplit('/').next().unwrap();
        let name = base
            .strip_suffix(".drv")
            .unwrap()
            .split_once('-')
            .unwrap()
            .1;
        d.insert("name".into(), Json::String(name.into()));
    }
    j
}

#[test]
fn show_derivation_matches_nix() {
    for (case, recursive) in [
        ("chain3.nix", false),
        ("chain3.nix", true),
        ("env-escapes.nix", false),
        ("fod-sha512-recursive-nix32.nix", false),
        ("structured-values.nix", false),
        ("mixed-context.nix", true),
        ("multi-out.nix", false),
    ] {
        let f = cases().join(case);
        let drv = stdout(&nix_instantiate(&[f.to_str().unwrap()]));
        let drv = drv.trim().split('!').next().unwrap().to_string();
        let want = nix_show_derivation(&[&drv], recursive);
        let mut args = vec!["show-derivation", drv.as_str()];
        if recursive {
            args.push("--recursive");
        }
        let got = run(&args, "");
        assert!(got.status.success(), "{}", stderr(&got));
        let got_json: Json = serde_json::from_slice(&got.stdout).unwrap();
        assert_eq!(got_json, want, "{case}");
        if recursive {
            assert!(got_json.as_object().unwrap().len() > 1);
        }
    }
}

#[test]
fn show_derivation_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abc-x.drv");
    std::fs::write(
        &path,
        r#"Derive([("out","/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-x","","")],[("/nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-y.drv",["dev","out"])],["/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-src"],"x86_64-linux","/bin/sh",["-c","echo \"hi\"\n"],[("name","x"),("out","/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-x")])"#,
    )
    .unwrap();
    let got = run(&["show-derivation", path.to_str().unwrap()], "");
    assert!(got.status.success(), "{}", stderr(&got));
    let key = path.to_str().unwrap();
    let want = format!(
        r#"{{
  "{key}": {{
    "args": [
      "-c",
      "echo \"hi\"\n"
    ],
    "builder": "/bin/sh",
    "env": {{
      "name": "x",
      "out": "/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-x"
    }},
    "inputDrvs": {{
      "/nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-y.drv": {{
        "dynamicOutputs": {{}},
        "outputs": [
          "dev",
          "out"
        ]
      }}
    }},
    "inputSrcs": [
      "/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-src"
    ],
    "name": "x",
    "outputs": {{
      "out": {{
        "path": "/nix/store/s668cfx1vrqfjryf96jj8wfhg7f67dhj-x"
      }}
    }},
    "system": "x86_64-linux"
  }}
}}
"#
    );
    assert_eq!(stdout(&got), want);
}

#[test]
fn show_derivation_errors() {
    let got = run(&["show-derivation", "/nonexistent/abc-x.drv"], "");
    assert_eq!(got.status.code(), Some(1));
    assert!(
        stderr(&got).contains("/nonexistent/abc-x.drv"),
        "{}",
        stderr(&got)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.drv");
    std::fs::write(&path, "Derive(garbage").unwrap();
    let got = run(&["show-derivation", path.to_str().unwrap()], "");
    assert_eq!(got.status.code(), Some(1));
    assert!(
        stderr(&got).contains("is not a valid derivation"),
        "{}",
        stderr(&got)
    );
    let got = run(&["show-derivation"], "");
    assert_ne!(got.status.code(), Some(0));
}

/// `tvix show-derivation` of store paths that only the tvix store has (written by
/// `tvix instantiate`, with a nonce so `/nix/store` cannot hold them): the same JSON as
/// `nix show-derivation` gives once `nix-instantiate` has written the same files.
#[test]
fn show_derivation_reads_store_paths_from_the_tvix_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("local://{}", dir.path().join("store").display());
    let nonce = format!(
        "{}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
        std::process::id()
    );
    let expr = format!(
        r#"let dep = derivation {{ name = "dep-{nonce}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }};
        in derivation {{ name = "top-{nonce}"; system = "x86_64-linux"; builder = "/bin/sh"; inherit dep; outputs = [ "out" "dev" ]; }}"#
    );
    let tvix = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tvix"))
            .args(args)
            .args(["--store", &url])
            .env_remove("TVIX_STORE")
            .env_remove("NIX_REMOTE")
            .output()
            .unwrap()
    };
    let inst = tvix(&["instantiate", "--expr", &expr]);
    assert!(inst.status.success(), "{}", stderr(&inst));
    let drv = stdout(&inst).trim().to_string();
    assert!(!Path::new(&drv).exists(), "{drv} is already in /nix/store");
    let plain = tvix(&["show-derivation", &drv]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    let recursive = tvix(&["show-derivation", "-r", &drv]);
    assert!(recursive.status.success(), "{}", stderr(&recursive));

    // Not valid in the tvix store either: a clear error.
    let other = format!("{}.drv", &drv[..drv.len() - 4].replace("top-", "nope-"));
    let missing = tvix(&["show-derivation", &other]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("not valid in the store"),
        "{}",
        stderr(&missing)
    );

    let nix_drv = stdout(&nix_instantiate(&["-E", &expr]));
    assert_eq!(nix_drv.trim(), drv);
    for (got, rec) in [(plain, false), (recursive, true)] {
        let got: Json = serde_json::from_slice(&got.stdout).unwrap();
        assert_eq!(got, nix_show_derivation(&[&drv], rec));
        assert_eq!(got.as_object().unwrap().len(), if rec { 2 } else { 1 });
    }
}

/// `nix-instantiate --parse` through the shim prints the syntax tree as the reference
/// does, compared with Nix 2.8 on forms both Nix versions print alike; the free
/// variables are bound by an outer lambda since parsing checks them.
#[test]
fn parse_prints_the_syntax_tree_as_nix_does() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("nix-instantiate");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tvix"), &link).unwrap();
    let parse = |expr: &str| {
        let out = Command::new(&link)
            .current_dir(dir.path())
            .env("HOME", "/home/someone")
            .args(["--parse", "-E", expr])
            .output()
            .unwrap();
        assert!(out.status.success(), "{expr}: {}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(parse("1+2"), "(1 + 2)\n");
    let cases = [
        "1 - 2 * 3 / 4",
        "a < b", "a <= b", "a > b", "a >= b", "!a", "-a", "- 1.5",
        "a // b ++ c", "a -> b && c || !d", "a == b", "a != b",
        "x.y or 3", "x ? y.z", "x.${y}.z", "(x.y).z", "a ? ${y}", "x.${\"a\"}",
        "f x y", "(f a) b", "f (a b)", "(a: a) (b: b) c",
        "{ \"a b\" = 1; \"if\" = 2; ${x} = 3; a.${y}.c = 4; \"\" = 5; \"${y}z\" = 6; \"1a\" = 7; a-b = 8; }",
        "{ a = { b = 1; }; a.c = 2; \"a\".d = 3; }",
        "{ a.b = 1; a = { c = 2; }; }", "{ a = rec { x = 1; }; a.y = 2; }",
        "{ x = 1; \"${x}\" = 2; }",
        "\"a${x}b\\${c}\\\"\\\\\\n\\t\\r\"", "\"${x}\"", "\"${a}${b}\"", "\"${x}a${y}\"",
        "''  a${x}  ''", "''\n  a\n    b\n''", "\"\"",
        "<nixpkgs>", "./a/${x}/b", "./a/b/../c", "~/b", "/abs/./p",
        "1.5", "0.1", "123.0", "1.0e-5", "100000000.0", ".5", "2147483648000",
        "[ 1 (f a) b [ ] ]", "{ }", "rec { a = 1; }", "let { body = 1; }",
        "let a = x: x; in a", "let a.b = 1; in a",
        "with x; y", "if a then b else c", "assert a; b",
        "{ a, b ? 1, ... }@x: a", "x@{ ... }: 1", "{ }: 1", "x: x",
        "__curPos", "https://example.org/a?b=c", "null", "true",
    ];
    for case in cases {
        let expr = format!("a: b: c: d: f: x: y: z: ({case})");
        // The reference in the same directory and with the same home.
        let want = Command::new("nix-instantiate")
            .current_dir(dir.path())
            .env("HOME", "/home/someone")
            .args(["--parse", "-E", &expr])
            .output()
            .expect("the reference nix-instantiate (Nix 2.8)");
        assert!(want.status.success(), "nix: {expr}: {}", stderr(&want));
        let want = stdout(&want);
        assert_eq!(parse(&expr), want, "{case}");
    }
    // Current Nix (the corpus's `.exp` files) keeps `inherit` where Nix 2.8 printed
    // `x = (e).x` and `inherit x ;`: current Nix wins. Each `inherit (e)` is its own
    // source (names sorted within it), in source order.
    assert_eq!(
        parse("a: b: { inherit (a) x; inherit (b) y; inherit (a) z; inherit b; w = 1; }"),
        "(a: (b: { inherit b; inherit (a) x; inherit (b) y; inherit (a) z; w = 1; }))\n"
    );
    assert_eq!(
        parse("a: { inherit (a) z x; }"),
        "(a: { inherit (a) x z; })\n"
    );
    // Current Nix sorts formals by name (`parse-okay-subversion.exp`); Nix 2.8 kept the
    // order of its symbol table.
    assert_eq!(parse("{ z, a }: a"), "({ a, z }: a)\n");
    // An undefined variable is an error, as in Nix.
    let out = Command::new(&link)
        .args(["--parse", "-E", "x + 1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("undefined variable 'x'"),
        "{}",
        stderr(&out)
    );
}
