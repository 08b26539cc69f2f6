//! Differential tests: the same expressions through `tvix eval` and the reference
//! `nix-instantiate --eval` (Debian's nix-bin, installed by `scripts/setup.sh`), which must
//! print the same thing. The reference is an oracle, not a fixture: nothing is hard-coded.

mod common;

use std::process::Command;

const CASES: &[&str] = &[
    "1 + 2 * 3",
    "[ 1 2.5 \"s\" null true false ]",
    "{ b = { c = [ ]; }; a = { }; \"x y\" = 1; }",
    "let f = n: if n < 2 then n else f (n - 1) + f (n - 2); in f 15",
    "rec { a = 1; b = a + 1; c = { inherit a b; }; }",
    "{ a.b.c = 1; a.b.d = 2; a.e = { f = 3; }; }",
    "let x = { y = 1; }; in with x; y + 1",
    "({ a, b ? a + 1, ... }@args: [ a b (builtins.attrNames args) ]) { a = 1; z = 2; }",
    "builtins.map (x: x * 2) [ 1 2 3 ]",
    "builtins.filter (x: x > 1) [ 1 2 3 ]",
    "builtins.foldl' (a: b: a + b) 0 (builtins.genList (x: x) 100)",
    "builtins.attrNames { z = 1; a = 2; m = 3; }",
    "builtins.listToAttrs [ { name = \"a\"; value = 1; } { name = \"a\"; value = 2; } ]",
    "builtins.removeAttrs { a = 1; b = 2; } [ \"a\" ]",
    "builtins.intersectAttrs { a = 1; } { a = 2; b = 3; }",
    "builtins.tryEval (throw \"x\")",
    "builtins.typeOf 1.5",
    "toString [ 1 \"a\" [ ] null true false 2.5 ]",
    "builtins.concatStringsSep \"-\" [ \"a\" \"b\" ]",
    "builtins.substring 1 3 \"abcdef\"",
    "\"${toString 1}x${\"y\"}\"",
    "''\n  indented\n    more\n''",
    "[ (1 == 1.0) ([ 1 ] < [ 1 0 ]) (\"a\" < \"b\") ({ a = 1; } == { a = 1; }) ]",
    "0.1 + 0.2",
    "[ 1.0e10 1.5e-7 123456.789 (1.0 / 3) ]",
    "let x = [ x ]; in x",
    "[ (x: x) builtins.map (builtins.map (x: x)) ]",
    "builtins.functionArgs ({ a, b ? 1 }: a)",
    "(rec { a = 1; __overrides = { a = 2; }; b = a; }).b",
    "let { x = 1; body = x; }",
    "builtins.seq 1 2",
    "(-(5 - 7))",
    "builtins.head [ 3 4 ]",
    "builtins.elemAt [ 3 4 ] 1",
    "builtins.length (builtins.concatLists [ [ 1 ] [ 2 3 ] ])",
    "builtins.elem 2 [ 1 2 ]",
    "{ __functor = self: x: x + self.k; k = 1; } 2",
];

fn reference(expr: &str) -> Option<(i32, String)> {
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "-E", expr])
        .env("NIX_REMOTE", "dummy://")
        .output()
        .ok()?;
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

#[test]
fn tvix_prints_what_nix_instantiate_prints() {
    if reference("1").is_none() {
        panic!("nix-instantiate is needed for differential tests: run scripts/setup.sh");
    }
    let mut failures = Vec::new();
    for expr in CASES {
        let (code, want) = reference(expr).expect("nix-instantiate runs");
        assert_eq!(code, 0, "the reference must accept case {expr}");
        let got = common::run(&["eval", "--strict", "-E", expr], "");
        let got_out = String::from_utf8_lossy(&got.stdout).into_owned();
        if got_out != want || !got.status.success() {
            failures.push(format!(
                "{expr}\n  nix:  {want}  tvix: {got_out}  stderr: {}",
                String::from_utf8_lossy(&got.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "differences from nix-instantiate:\n{}",
        failures.join("\n")
    );
}

#[test]
fn invoked_as_nix_instantiate_accepts_its_command_line() {
    let dir = std::env::temp_dir().join(format!("tvix-nix-instantiate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let link = dir.join("nix-instantiate");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tvix"), &link).expect("symlink");
    let out = Command::new(&link)
        .args(["--eval", "--strict", "--expr", "{ x = 1 + 1; }", "-A", "x"])
        .output()
        .expect("run through the symlink");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2\n");
    let out = Command::new(&link)
        .args(["--eval", "-E", "{ a, b ? 2 }: a + b", "--arg", "a", "40"])
        .output()
        .expect("run through the symlink");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Equality as Nix defines it (the same in Nix 2.8 and current Nix): values are forced
/// before anything else, a list or set compared with itself is still compared element by
/// element (so an element that throws is an error, not `true`), names and values of sets
/// are compared in one pass, and only an element that is the very same value on both sides
/// (a function in a list or set included) is equal without a deeper look. Also the same
/// imported file compared with itself. Exit status and output must be the reference's.
#[test]
fn equality_forces_and_compares_identity_as_nix_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("set.nix"), "{ f = x: x; n = 1; }").unwrap();
    std::fs::write(dir.path().join("fun.nix"), "x: x").unwrap();
    let cases = [
        r#"let x = { a = builtins.throw "x"; }; in x == x"#,
        r#"let l = [ (throw "x") ]; in l == l"#,
        r#"{ a = throw "x"; b = 1; } == { a = throw "y"; c = 1; }"#,
        r#"{ a = 1; b = throw "x"; } == { a = 2; b = throw "y"; }"#,
        "let f = x: x; in [ f ] == [ f ]",
        "let f = x: x; in f == f",
        "let f = x: x; in { inherit f; } == { inherit f; }",
        "let s = { f = x: x; }; in s == s",
        "let a = { x = 1; }; in [ a a ] == [ a a ]",
        "[ (x: x) ] == [ (x: x) ]",
        "(import ./set.nix) == (import ./set.nix)",
        "[ (import ./fun.nix) ] == [ (import ./fun.nix) ]",
        "let f = import ./fun.nix; in [ f ] == [ f ]",
        "builtins.elem (x: x) [ (x: x) ]",
        "let f = x: x; in builtins.elem f [ f ]",
    ];
    let mut failures = Vec::new();
    for expr in cases {
        let nix = Command::new("nix-instantiate")
            .args(["--eval", "--strict", "-E", expr])
            .env("NIX_REMOTE", "dummy://")
            .current_dir(dir.path())
            .output()
            .expect("nix-instantiate runs");
        let tvix = common::tvix()
            .args(["eval", "--strict", "-E", expr])
            .current_dir(dir.path())
            .output()
            .expect("tvix runs");
        if nix.status.code() != tvix.status.code() || nix.stdout != tvix.stdout {
            failures.push(format!(
                "{expr}\n  nix:  {:?} {}  tvix: {:?} {} {}",
                nix.status.code(),
                String::from_utf8_lossy(&nix.stdout),
                tvix.status.code(),
                String::from_utf8_lossy(&tvix.stdout),
                String::from_utf8_lossy(&tvix.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
