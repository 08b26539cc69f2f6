//! `tvix eval --json` and `tvix eval --xml`, run through the built binary.

use std::process::{Command, Output};

fn tvix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tvix"))
        .args(args)
        .env_remove("NIX_PATH")
        .env("TVIX_STORE", "memory://")
        .output()
        .expect("run tvix")
}

fn stdout_of(args: &[&str]) -> String {
    let out = tvix(args);
    assert!(
        out.status.success(),
        "tvix {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `--json` output ends with a newline, as current Nix prints it (Nix 2.8 printed none;
/// the corpus's Nix wins).
#[test]
fn json_output() {
    assert_eq!(
        stdout_of(&[
            "eval",
            "--json",
            "-E",
            r#"{ b = [ 1 2.5 1.0 null true ]; a = "x\n\"y\""; c = { outPath = "/p"; }; d = { }; }"#
        ]),
        "{\"a\":\"x\\n\\\"y\\\"\",\"b\":[1,2.5,1.0,null,true],\"c\":\"/p\",\"d\":{}}\n"
    );
}

#[test]
fn json_output_forces_deeply() {
    assert_eq!(
        stdout_of(&[
            "eval",
            "--json",
            "-E",
            "let x = 1 + 2; in [ [ x ] { y = x * 2; } ]"
        ]),
        "[[3],{\"y\":6}]\n"
    );
}

#[test]
fn json_output_of_a_function_fails() {
    let out = tvix(&["eval", "--json", "-E", "{ f = x: x; }"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot convert a function to JSON"),
        "unexpected error: {err}"
    );
}

/// With `--strict`: everything is evaluated and shown.
#[test]
fn xml_output_without_locations() {
    assert_eq!(
        stdout_of(&[
            "eval",
            "--xml",
            "--strict",
            "--no-location",
            "-E",
            r#"{ a = 1 + 1; s = "<&>"; f = { y, x ? 1, ... }: x; l = [ null 1.5 ]; }"#
        ]),
        "<?xml version='1.0' encoding='utf-8'?>
<expr>
  <attrs>
    <attr name=\"a\">
      <int value=\"2\" />
    </attr>
    <attr name=\"f\">
      <function>
        <attrspat ellipsis=\"1\">
          <attr name=\"x\" />
          <attr name=\"y\" />
        </attrspat>
      </function>
    </attr>
    <attr name=\"l\">
      <list>
        <null />
        <float value=\"1.5\" />
      </list>
    </attr>
    <attr name=\"s\">
      <string value=\"&lt;&amp;&gt;\" />
    </attr>
  </attrs>
</expr>
"
    );
}

#[test]
fn xml_output_with_locations() {
    let dir = std::env::temp_dir().join(format!("tvix-cli-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("t.nix");
    std::fs::write(&file, "{\n  a = true;\n  g = x: x;\n}\n").expect("write test file");
    let path = file.to_str().expect("UTF-8 temp path");
    // `--strict`: without, the function is `<unevaluated />`, as in Nix
    // (`differential::xml_output_is_nix_instantiate_s`).
    let got = stdout_of(&["eval", "--xml", "--strict", path]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        got,
        format!(
            "<?xml version='1.0' encoding='utf-8'?>
<expr>
  <attrs>
    <attr column=\"3\" line=\"2\" name=\"a\" path=\"{path}\">
      <bool value=\"true\" />
    </attr>
    <attr column=\"3\" line=\"3\" name=\"g\" path=\"{path}\">
      <function column=\"7\" line=\"3\" path=\"{path}\">
        <varpat name=\"x\" />
      </function>
    </attr>
  </attrs>
</expr>
"
        )
    );
}

#[test]
fn builtins_round_trip_through_the_cli() {
    assert_eq!(
        stdout_of(&[
            "eval",
            "--strict",
            "-E",
            r#"[ (builtins.fromJSON (builtins.toJSON { a = [ 1 "b" ]; })) (builtins.hashString "sha256" "") (builtins.fromTOML "x = 1") ]"#
        ]),
        "[ { a = [ 1 \"b\" ]; } \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\" { x = 1; } ]\n"
    );
}

#[test]
fn toml_timestamps_follow_the_experimental_feature() {
    let expr = "builtins.fromTOML \"d = 1979-05-27T07:32:00Z\"";
    let out = tvix(&["eval", "--strict", "-E", expr]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("while parsing TOML: Dates and times are not supported"));
    assert_eq!(
        stdout_of(&[
            "eval",
            "--strict",
            "--extra-experimental-features",
            "parse-toml-timestamps",
            "-E",
            expr
        ]),
        "{ d = { _type = \"timestamp\"; value = \"1979-05-27T07:32:00Z\"; }; }\n"
    );
}

/// `--raw` (current Nix; Nix 2.8 lacks it): the string as is, no quotes, no newline;
/// what is not a string is refused as interpolation refuses it.
#[test]
fn raw_output() {
    assert_eq!(
        stdout_of(&["eval", "--raw", "-E", r#""a\"b\n${toString 1}""#]),
        "a\"b\n1"
    );
    assert_eq!(
        stdout_of(&["eval", "--raw", "-E", r#"{ outPath = "/p"; }"#]),
        "/p"
    );
    let out = tvix(&["eval", "--raw", "-E", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot coerce an integer to a string"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let both = tvix(&["eval", "--raw", "--json", "-E", "1"]);
    assert_eq!(both.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
}
