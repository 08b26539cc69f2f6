//! The language, feature by feature, through `tvix eval`: each case is a small expression and
//! the exact text `nix-instantiate --eval --strict` prints for it.

mod common;

use common::{assert_error, assert_eval};

#[test]
fn literals() {
    assert_eval("42", "42");
    assert_eval("-7", "-7");
    assert_eval("1.5", "1.5");
    assert_eval("1.0", "1");
    assert_eval("1.0e20", "1e+20");
    assert_eval("null", "null");
    assert_eval("true", "true");
    assert_eval("http://example.org/x?y=1", r#""http://example.org/x?y=1""#);
    assert_eval("/a/../b/./c", "/b/c");
    assert_error("/a/b/", "");
}

#[test]
fn strings_escapes_and_interpolation() {
    assert_eval(r#""a\nb\t\"c\" \${x}""#, r#""a\nb\t\"c\" \${x}""#);
    assert_eval(r#"let x = "w"; in "h${x}y${toString 1}""#, r#""hwy1""#);
    assert_eval("''\n  a\n    b\n  c\n''", r#""a\n  b\nc\n""#);
    assert_eval("''a''$b '''x ''\\n''", r#""a$b ''x \n""#);
    assert_eval(r#"let n = "x"; in ''${n}-${n}''"#, r#""x-x""#);
}

#[test]
fn attribute_sets() {
    assert_eval("{ b = 2; a = 1; }", "{ a = 1; b = 2; }");
    assert_eval("rec { a = 1; b = a + 1; }", "{ a = 1; b = 2; }");
    assert_eval(
        "{ a.b.c = 1; a.b.d = 2; a.e = 3; }",
        "{ a = { b = { c = 1; d = 2; }; e = 3; }; }",
    );
    assert_eval("{ a = { x = 1; }; a.y = 2; }", "{ a = { x = 1; y = 2; }; }");
    assert_eval(
        r#"let k = "dyn"; in { ${k} = 1; "${k}2" = 2; }"#,
        "{ dyn = 1; dyn2 = 2; }",
    );
    assert_eval("{ ${null} = 1; a = 2; }", "{ a = 2; }");
    assert_eval("let x = 1; y = 2; in { inherit x y; }", "{ x = 1; y = 2; }");
    assert_eval(
        "let s = { p = 1; q = 2; }; in { inherit (s) p q; }",
        "{ p = 1; q = 2; }",
    );
    assert_eval(
        r#"{ "foo bar" = 1; "if" = 2; }"#,
        r#"{ "foo bar" = 1; "if" = 2; }"#,
    );
    assert_eval("{ a = 1; } // { b = 2; a = 3; }", "{ a = 3; b = 2; }");
    assert_eval("{ a.b = 1; } ? a.b", "true");
    assert_eval("{ a = 1; } ? b", "false");
    assert_eval("({ a = { b = 1; }; }).a.c or 5", "5");
    assert_eval(r#"let n = "a"; in { a = 4; }.${n}"#, "4");
}

#[test]
fn attribute_set_errors() {
    assert_error("{ a = 1; a = 2; }", "attribute 'a' already defined at");
    assert_error(
        "{ a.b = 1; a.b = 2; }",
        "attribute 'a.b' already defined at",
    );
    assert_error(
        r#"let k = "b"; in { ${k} = 1; b = 2; }"#,
        "dynamic attribute 'b' already defined at",
    );
    assert_error("{ a = 1; }.b", "attribute 'b' missing");
    assert_error(
        "let ${\"a\" + \"b\"} = 1; in 1",
        "dynamic attributes not allowed in let",
    );
    assert_error("1 // {}", "expected a set but found an integer: 1");
}

#[test]
fn let_with_and_scoping() {
    assert_eval("let a = 1; b = a + 1; in b", "2");
    assert_eval("let a = b; b = 3; in a", "3");
    assert_eval("with { x = 1; }; x", "1");
    assert_eval("let x = 2; in with { x = 1; }; x", "2");
    assert_eval("with { x = 1; }; with { x = 2; }; x", "2");
    assert_eval("let { a = 1; body = a + 1; }", "2");
    assert_eval("let true = false; in true", "false");
    assert_error("undefinedName", "undefined variable 'undefinedName'");
    assert_error(
        "with {}; undefinedName",
        "undefined variable 'undefinedName'",
    );
}

#[test]
fn functions() {
    assert_eval("(x: x + 1) 2", "3");
    assert_eval("({ a, b ? a * 2 }: a + b) { a = 1; }", "3");
    assert_eval("({ a, ... }@args: args.z) { a = 1; z = 9; }", "9");
    assert_eval("(args@{ a }: args.a) { a = 4; }", "4");
    assert_eval("let f = { a ? 1, b ? a + 1 }: [ a b ]; in f { }", "[ 1 2 ]");
    assert_eval("({ a ? 1 }: a) { a = 3; }", "3");
    assert_eval(
        "let f = { __functor = self: x: self.k + x; k = 10; }; in f 5",
        "15",
    );
    assert_error("({ a }: a) { }", "called without required argument 'a'");
    assert_error(
        "({ a }: a) { a = 1; b = 2; }",
        "called with unexpected argument 'b'",
    );
    assert_error(
        "1 2",
        "attempt to call something which is not a function but an integer: 1",
    );
    assert_error("({ a, a }: a)", "duplicate formal function argument 'a'");
}

#[test]
fn operators() {
    assert_eval("1 + 2 * 3 - 4 / 2", "5");
    assert_eval("7 / 2", "3");
    assert_eval("7 / 2.0", "3.5");
    assert_eval("1 + 0.5", "1.5");
    assert_eval(r#""a" + "b""#, r#""ab""#);
    assert_eval(r#"/a + "/b""#, "/a/b");
    assert_eval(r#"/a + /b"#, "/a/b");
    assert_eval("[ 1 ] ++ [ 2 3 ]", "[ 1 2 3 ]");
    assert_eval("1 < 2 && 2 <= 2 && 3 > 2 && 3 >= 3", "true");
    assert_eval(r#""abc" < "abd""#, "true");
    assert_eval("[ 1 2 ] < [ 1 3 ]", "true");
    assert_eval("[ 1 ] < [ 1 0 ]", "true");
    assert_eval("true -> false", "false");
    assert_eval("false -> abort \"lazy\"", "true");
    assert_eval("false || true", "true");
    assert_eval("!true", "false");
    assert_eval(
        "{ a = [ 1 { b = 2; } ]; } == { a = [ 1 { b = 2; } ]; }",
        "true",
    );
    assert_eval("1 == 1.0", "true");
    assert_eval("(x: x) == (x: x)", "false");
    assert_eval("let f = x: x; in [ f ] == [ f ]", "true");
    assert_eval("-(2)", "-2");
}

#[test]
fn operator_errors() {
    assert_error(
        "9223372036854775807 + 1",
        "integer overflow in adding 9223372036854775807 + 1",
    );
    assert_error(
        "(-9223372036854775807 - 1) / -1",
        "integer overflow in dividing",
    );
    assert_error(
        "4294967297 * 4294967297",
        "integer overflow in multiplying 4294967297 * 4294967297",
    );
    assert_error("1 / 0", "division by zero");
    assert_error(r#"1 + "a""#, "cannot add a string to an integer");
    assert_error(r#""a" < 1"#, "cannot compare a string with an integer");
    assert_error("{} < {}", "cannot compare a set with a set");
    assert_error(
        "if 1 then 2 else 3",
        "expected a Boolean but found an integer: 1",
    );
    assert_error("[ 1 ] ++ 2", "expected a list but found an integer: 2");
}

#[test]
fn control_flow() {
    assert_eval("if 1 < 2 then \"y\" else \"n\"", r#""y""#);
    assert_eval("assert 1 == 1; 5", "5");
    assert_error("assert 1 > 2; 5", "assertion '(1 > 2)' failed");
    assert_error(
        "assert 1 == 2; 5",
        "error: an integer with value '1' is not equal to an integer with value '2'",
    );
    assert_error("throw \"boom\"", "error: boom");
    assert_error(
        "abort \"halt\"",
        "evaluation aborted with the following error message: 'halt'",
    );
}

#[test]
fn laziness_and_recursion() {
    assert_eval("let x = throw \"never\"; in 1", "1");
    assert_eval("(x: 1) (throw \"never\")", "1");
    assert_eval("builtins.length [ (throw \"a\") (throw \"b\") ]", "2");
    assert_eval("(rec { a = 1; b = throw \"no\"; }).a", "1");
    assert_error("let x = x; in x", "infinite recursion encountered");
    assert_error(
        "let a = { b = a.b; }; in a.b",
        "infinite recursion encountered",
    );
    assert_eval(
        "builtins.tryEval (throw \"x\")",
        "{ success = false; value = false; }",
    );
    assert_eval(
        "let x = throw \"t\"; in [ (builtins.tryEval x).success (builtins.tryEval x).success ]",
        "[ false false ]",
    );
}

#[test]
fn cur_pos_and_printing() {
    assert_eval(
        "__curPos",
        r#"{ column = 1; file = "«string»"; line = 1; }"#,
    );
    assert_eval(
        "[ (x: x) builtins.map (builtins.map (x: x)) ]",
        "[ <LAMBDA> <PRIMOP> <PRIMOP-APP> ]",
    );
    assert_eval("let x = [ x ]; in x", "[ [ «repeated» ] ]");
}

#[test]
fn million_level_recursion_is_a_clean_error() {
    // A million nested calls: the reference stops at its max-call-depth; so must we, with a
    // clean error and exit status 1, never a crash.
    assert_error(
        "let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 1000000",
        "stack overflow; max-call-depth exceeded",
    );
    // The same through lazy data instead of calls: a million nested thunks.
    let out = common::run(
        &["eval", "--strict", "-E", "let l = builtins.genList (i: i) 1000000; go = builtins.foldl' (acc: x: { inherit acc; }) null l; in builtins.deepSeq go 1"],
        "",
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stack overflow; max-call-depth exceeded")
    );
}

#[test]
fn deep_but_allowed_recursion_succeeds() {
    assert_eval(
        "let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 9000",
        "9000",
    );
    let out = common::run(
        &[
            "eval",
            "--max-call-depth",
            "200000",
            "-E",
            "let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 100000",
        ],
        "",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "100000\n");
}

#[test]
fn has_attr_does_not_force_the_value() {
    assert_eval("{ a = throw \"v\"; } ? a", "true");
    assert_eval("{ a.b = throw \"v\"; } ? a.b", "true");
}

#[test]
fn recursive_bindings_see_each_other_inside_data() {
    assert_eval("let x = { a = y; }; y = 1; in x.a", "1");
    assert_eval("let x = [ y ]; y = 2; in x", "[ 2 ]");
    assert_eval("let x = { a = x; }; in x.a.a ? a", "true");
    assert_eval("rec { a = { b = c; }; c = 3; }.a.b", "3");
    assert_eval("let f = { v ? { w = u; }, u ? 4 }: v.w; in f { }", "4");
}
