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

/// What a builtin that takes a function forces, and where a failure is caught: for every
/// such builtin, a function or an element that throws (`throw`, `abort`, `assert false`)
/// where Nix does not force it, and `tryEval` around the ones it forces (`tryEval` catches
/// `throw` and `assert`, never `abort`). tvix runs first, then the reference; exit status
/// and output must be the same. Where Nix 2.8 (the reference here) and current Nix differ,
/// current Nix wins: such a case carries current Nix's exit status and output, and why.
#[test]
fn builtins_taking_functions_force_what_nix_forces() {
    // (expression, None: same as Nix 2.8; Some((exit, stdout, why)): current Nix's result)
    type Current = Option<(i32, &'static str, &'static str)>;
    const MAP_FORCES: &str = "current Nix forces map's function when the list is not empty";
    const GENLIST_FORCES: &str = "current Nix forces genList's function, even for length 0";
    const EMPTY_FIRST: &str =
        "current Nix returns an empty list before forcing the function (Nix 2.8 forced it)";
    let cases: &[(&str, Current)] = &[
        // map
        (r#"map (throw "f") [ ]"#, None),
        (
            r#"builtins.length (map (throw "f") [ 1 2 ])"#,
            Some((1, "", MAP_FORCES)),
        ),
        (r#"builtins.length (map (x: throw "e") [ 1 2 ])"#, None),
        (r#"builtins.length (map (x: abort "e") [ 1 2 ])"#, None),
        (
            r#"builtins.length (map (x: assert false; x) [ 1 2 ])"#,
            None,
        ),
        (
            r#"builtins.elemAt (map (x: if x == 1 then throw "e" else x) [ 1 2 ]) 1"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.elemAt (map (x: throw "e") [ 1 ]) 0)).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.elemAt (map (x: assert false; x) [ 1 ]) 0)).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.elemAt (map (x: abort "e") [ 1 ]) 0)).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.elemAt (map (x: x + "a") [ 1 ]) 0)).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (map (x: throw "e") [ 1 ])).success"#,
            None,
        ),
        // genList
        (
            r#"builtins.genList (throw "f") 0"#,
            Some((1, "", GENLIST_FORCES)),
        ),
        (
            r#"builtins.length (builtins.genList (throw "f") 3)"#,
            Some((1, "", GENLIST_FORCES)),
        ),
        (
            r#"builtins.length (builtins.genList (x: throw "e") 3)"#,
            None,
        ),
        (
            r#"builtins.elemAt (builtins.genList (x: if x == 0 then throw "e" else x) 2) 1"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.genList (x: x) (throw "n"))).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.elemAt (builtins.genList (x: assert false; x) 1) 0)).success"#,
            None,
        ),
        // filter
        (
            r#"builtins.filter (throw "f") [ ]"#,
            Some((0, "[ ]\n", EMPTY_FIRST)),
        ),
        (
            r#"builtins.length (builtins.filter (x: true) [ (throw "e") ])"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.filter (x: throw "p") [ 1 ])).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.filter (x: abort "p") [ 1 ])).success"#,
            None,
        ),
        // foldl'
        (r#"builtins.foldl' (throw "f") 1 [ ]"#, None),
        (r#"builtins.foldl' (a: b: a) 1 [ (throw "e") ]"#, None),
        (
            r#"(builtins.tryEval (builtins.foldl' (a: b: b) 1 [ (throw "e") 2 ])).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.foldl' (a: b: throw "acc") 0 [ 1 ])).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.foldl' (x: y: x) (throw "init") [ ])).success"#,
            None,
        ),
        (r#"builtins.foldl' (x: y: y) (throw "init") [ 1 ]"#, None),
        // sort
        (
            r#"builtins.sort (throw "f") [ ]"#,
            Some((0, "[ ]\n", EMPTY_FIRST)),
        ),
        (
            r#"(builtins.tryEval (builtins.sort (throw "f") [ 1 ])).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.sort (a: b: a < b) [ 2 (throw "e") ])).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.sort (a: b: throw "c") [ 1 2 ])).success"#,
            None,
        ),
        (r#"builtins.sort (a: b: a < b) [ 3 1 2 ]"#, None),
        // partition
        (
            r#"(builtins.tryEval (builtins.partition (throw "f") [ ])).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.partition (x: true) [ (throw "e") ])).success"#,
            None,
        ),
        (
            r#"builtins.length (builtins.partition (x: true) [ 1 ]).right"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.partition (x: throw "p") [ 1 ])).success"#,
            None,
        ),
        // groupBy
        (
            r#"(builtins.tryEval (builtins.groupBy (throw "f") [ ])).success"#,
            None,
        ),
        (
            r#"builtins.attrNames (builtins.groupBy (x: "a") [ (throw "e") ])"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.groupBy (x: throw "k") [ 1 ])).success"#,
            None,
        ),
        // concatMap
        (
            r#"(builtins.tryEval (builtins.concatMap (throw "f") [ ])).success"#,
            None,
        ),
        (
            r#"builtins.length (builtins.concatMap (x: [ (throw "e") ]) [ 1 ])"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.concatMap (x: throw "l") [ 1 ])).success"#,
            None,
        ),
        // mapAttrs
        (
            r#"builtins.attrNames (builtins.mapAttrs (throw "f") { a = 1; })"#,
            None,
        ),
        (r#"builtins.mapAttrs (throw "f") { }"#, None),
        (
            r#"builtins.attrNames (builtins.mapAttrs (n: v: throw "v") { a = 1; })"#,
            None,
        ),
        (
            r#"(builtins.mapAttrs (n: v: 1) { a = throw "e"; }).a"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.mapAttrs (n: v: throw "v") { a = 1; }).a).success"#,
            None,
        ),
        // listToAttrs
        (
            r#"builtins.attrNames (builtins.listToAttrs [ { name = "a"; value = throw "v"; } ])"#,
            None,
        ),
        (
            r#"(builtins.listToAttrs [ { name = "a"; value = 1; } { name = "a"; value = throw "v"; } ]).a"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.listToAttrs [ { name = throw "n"; value = 1; } ])).success"#,
            None,
        ),
        // zipAttrsWith
        (
            r#"(builtins.tryEval (builtins.zipAttrsWith (throw "f") [ ])).success"#,
            None,
        ),
        (
            r#"builtins.attrNames (builtins.zipAttrsWith (n: vs: throw "z") [ { a = 1; } ])"#,
            None,
        ),
        (
            r#"(builtins.zipAttrsWith (n: vs: builtins.length vs) [ { a = throw "x"; } { a = 2; } ]).a"#,
            None,
        ),
        // catAttrs
        (
            r#"builtins.length (builtins.catAttrs "a" [ { a = throw "x"; } { b = 1; } ])"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.catAttrs "a" [ (throw "s") ])).success"#,
            None,
        ),
        // any / all
        (
            r#"(builtins.tryEval (builtins.any (throw "f") [ ])).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.all (throw "f") [ ])).success"#,
            None,
        ),
        (r#"builtins.any (x: x) [ true (throw "e") ]"#, None),
        (r#"builtins.all (x: x) [ false (throw "e") ]"#, None),
        (
            r#"(builtins.tryEval (builtins.any (x: throw "p") [ 1 ])).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.all (x: assert false; true) [ 1 ])).success"#,
            None,
        ),
        (r#"builtins.any (x: abort "p") [ 1 ]"#, None),
        // genericClosure
        (
            r#"builtins.genericClosure { startSet = [ ]; operator = throw "op"; }"#,
            Some((0, "[ ]\n", EMPTY_FIRST)),
        ),
        (
            r#"builtins.length (builtins.genericClosure { startSet = [ { key = 1; v = throw "x"; } ]; operator = x: [ ]; })"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.genericClosure { startSet = [ { key = 1; } ]; operator = x: throw "op"; })).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.genericClosure { startSet = [ { key = throw "k"; } ]; operator = x: [ ]; })).success"#,
            None,
        ),
        // functionArgs, seq, deepSeq
        (
            r#"(builtins.tryEval (builtins.deepSeq [ (throw "x") ] 1)).success"#,
            None,
        ),
        (
            r#"(builtins.tryEval (builtins.seq [ (throw "x") ] 1)).success"#,
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (expr, current) in cases {
        let tvix = common::tvix()
            .args(["eval", "-E", expr])
            .output()
            .expect("tvix runs");
        let nix = Command::new("nix-instantiate")
            .args(["--eval", "-E", expr])
            .env("NIX_REMOTE", "dummy://")
            .output()
            .expect("nix-instantiate runs");
        let (want_code, want_out) = match current {
            None => (
                nix.status.code(),
                String::from_utf8_lossy(&nix.stdout).into_owned(),
            ),
            Some((code, out, _why)) => (Some(*code), out.to_string()),
        };
        let got_out = String::from_utf8_lossy(&tvix.stdout).into_owned();
        if tvix.status.code() != want_code || got_out != want_out {
            failures.push(format!(
                "{expr}\n  want: {want_code:?} {want_out}  tvix: {:?} {got_out} {}",
                tvix.status.code(),
                String::from_utf8_lossy(&tvix.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Attribute names are bytes: two names that are not UTF-8 and differ only in those bytes
/// are two attributes (they once became one, both read with replacement characters), and
/// a name comes back from `attrNames` with its bytes.
#[test]
fn attribute_names_that_are_not_utf8_stay_distinct() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("set.nix"),
        b"{ \"a\xff\" = 1; \"a\xfe\" = 2; }".as_slice(),
    )
    .unwrap();
    std::fs::write(dir.path().join("name.nix"), b"\"a\xfe\"".as_slice()).unwrap();
    let cases = [
        "builtins.length (builtins.attrNames (import ./set.nix))",
        "(import ./set.nix).${import ./name.nix}",
        "builtins.elemAt (builtins.attrNames (import ./set.nix)) 0 == import ./name.nix",
        "builtins.length (builtins.attrNames (builtins.listToAttrs [ { name = import ./name.nix; value = 1; } { name = \"a\"; value = 2; } ]))",
    ];
    let mut failures = Vec::new();
    for expr in cases {
        let tvix = common::tvix()
            .args(["eval", "--strict", "-E", expr])
            .current_dir(dir.path())
            .output()
            .expect("tvix runs");
        let nix = Command::new("nix-instantiate")
            .args(["--eval", "--strict", "-E", expr])
            .env("NIX_REMOTE", "dummy://")
            .current_dir(dir.path())
            .output()
            .expect("nix-instantiate runs");
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

/// `--xml` as `nix-instantiate --eval --xml` prints it, with and without `--strict`, for
/// `-E` text and the same text in a file: a set, a function with formals, a derivation.
/// Byte for byte the reference's, but for two places where Nix 2.8 and current Nix differ,
/// where current Nix wins and the reference's output is rewritten to it:
/// - positions in `-E` text: Nix 2.8 writes the whole expression as `path=`; current Nix
///   writes no `path` for text that is not a file (`posToXML` only names source paths);
/// - positions inside a derivation: Nix 2.8's `//builtin/derivation.nix` lines are
///   rewritten to current Nix's `/derivation-internal.nix` ones (`outPath` at 49:7 as in
///   the corpus's `eval-fail-derivation-*.err.exp`, the others where that file has them).
#[test]
fn xml_output_is_nix_instantiate_s() {
    /// (attribute, Nix 2.8's line and column, current Nix's line and column)
    type Moved = (&'static str, (u32, u32), (u32, u32));
    const DERIVATION_2_8_TO_CURRENT: &[Moved] = &[
        ("all", (12, 7), (42, 7)),
        ("drvAttrs", (13, 14), (43, 15)),
        ("out", (18, 7), (48, 5)),
        ("outPath", (19, 9), (49, 7)),
        ("drvPath", (20, 9), (50, 7)),
        ("type", (21, 9), (51, 7)),
        ("outputName", (22, 16), (52, 15)),
    ];
    fn xml_escape(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\n', "&#xA;")
    }
    fn as_current_nix(out: &str, expr_text: Option<&str>) -> String {
        let mut out = out.to_string();
        if let Some(text) = expr_text {
            out = out.replace(&format!(" path=\"{}\"", xml_escape(text)), "");
        }
        for (name, (l1, c1), (l2, c2)) in DERIVATION_2_8_TO_CURRENT {
            out = out.replace(
                &format!(
                    "column=\"{c1}\" line=\"{l1}\" name=\"{name}\" path=\"//builtin/derivation.nix\""
                ),
                &format!(
                    "column=\"{c2}\" line=\"{l2}\" name=\"{name}\" path=\"/derivation-internal.nix\""
                ),
            );
        }
        assert!(
            !out.contains("//builtin/derivation.nix"),
            "unmapped position: {out}"
        );
        out
    }
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().canonicalize().unwrap();
    let exprs = [
        "{ a = 1; b = \"s\"; c = { d = [ 1 (x: x) ]; }; f = { x, y ? 2, ... }@args: x; }",
        "{ x, y ? 2 }: x",
        "derivation { name = \"x\"; builder = \"/bin/sh\"; system = \"x86_64-linux\"; }",
        "[ (derivation { name = \"y\"; builder = \"/bin/sh\"; system = \"x86_64-linux\"; }) ]",
    ];
    let mut failures = Vec::new();
    for (i, expr) in exprs.iter().enumerate() {
        let file = dir_path.join(format!("e{i}.nix"));
        std::fs::write(&file, format!("{expr}\n")).unwrap();
        let file = file.display().to_string();
        for strict in [false, true] {
            let mut inputs: Vec<(Vec<&str>, Option<&str>)> =
                vec![(vec!["-E", expr], Some(expr)), (vec![file.as_str()], None)];
            for (input, text) in inputs.drain(..) {
                let mut args = vec!["--eval", "--xml"];
                if strict {
                    args.push("--strict");
                }
                args.extend(input.iter().copied());
                let tvix = common::tvix()
                    .arg("eval")
                    .args(&args[1..])
                    .current_dir(&dir_path)
                    .output()
                    .expect("tvix runs");
                let nix = Command::new("nix-instantiate")
                    .args(&args)
                    .env("NIX_REMOTE", "dummy://")
                    .current_dir(&dir_path)
                    .output()
                    .expect("nix-instantiate runs (scripts/setup.sh installs it)");
                let want = as_current_nix(&String::from_utf8_lossy(&nix.stdout), text);
                let got = String::from_utf8_lossy(&tvix.stdout).into_owned();
                if nix.status.code() != tvix.status.code() || got != want {
                    failures.push(format!(
                        "{args:?}\n--- nix (as current Nix):\n{want}--- tvix:\n{got}{}",
                        String::from_utf8_lossy(&tvix.stderr)
                    ));
                }
            }
        }
    }
    // The `nix-instantiate` shim prints the same as `tvix eval`.
    let shim_dir = tempfile::tempdir().unwrap();
    let link = shim_dir.path().join("nix-instantiate");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tvix"), &link).unwrap();
    let shim = Command::new(&link)
        .env("TVIX_STORE", "memory://")
        .args(["--eval", "--xml", "-E", exprs[0]])
        .output()
        .unwrap();
    let nix = Command::new("nix-instantiate")
        .args(["--eval", "--xml", "-E", exprs[0]])
        .env("NIX_REMOTE", "dummy://")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&shim.stdout),
        as_current_nix(&String::from_utf8_lossy(&nix.stdout), Some(exprs[0]))
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
