//! Version strings: `splitVersion`, `compareVersions`, `parseDrvName`.
//!
//! A version is a sequence of components. Components are separated by `.` and `-`, and a
//! component is either a run of digits or a run of other (non-separator) characters, so
//! `1.2a` is `1`, `2`, `a`. Two components compare numerically when both are numbers;
//! otherwise the empty component is below a number, `pre` is below everything else, a
//! number is above a word, and words compare byte-wise.

use std::cmp::Ordering;
use std::rc::Rc;

use super::control::primop;
use super::make_attrs;
use super::strings::{arg_frame, force_string_no_ctx};
use crate::error::{AddContext, EvalResult};
use crate::eval::Evaluator;
use crate::source::Span;
use crate::symbol::Symbol;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("splitVersion", 1, split_version),
    primop!("compareVersions", 2, compare_versions),
    primop!("parseDrvName", 1, parse_drv_name),
];

fn is_separator(b: u8) -> bool {
    b == b'.' || b == b'-'
}

/// The component starting at `*pos` (after skipping separators); empty at the end.
fn next_component<'a>(s: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let mut p = *pos;
    while p < s.len() && is_separator(s[p]) {
        p += 1;
    }
    let start = p;
    if p < s.len() {
        if s[p].is_ascii_digit() {
            while p < s.len() && s[p].is_ascii_digit() {
                p += 1;
            }
        } else {
            while p < s.len() && !s[p].is_ascii_digit() && !is_separator(s[p]) {
                p += 1;
            }
        }
    }
    *pos = p;
    &s[start..p]
}

/// All components of a version string.
pub fn split_version_bytes(s: &[u8]) -> Vec<&[u8]> {
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        let c = next_component(s, &mut pos);
        if c.is_empty() {
            return out;
        }
        out.push(c);
    }
}

/// A component as a number, when it is one that fits (Nix parses into a C `int`; a longer
/// run of digits is compared as a word).
fn as_number(c: &[u8]) -> Option<i32> {
    if c.is_empty() || !c.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(c).ok()?.parse::<i32>().ok()
}

fn component_less(a: &[u8], b: &[u8]) -> bool {
    let (na, nb) = (as_number(a), as_number(b));
    match (na, nb) {
        (Some(x), Some(y)) => x < y,
        _ if a.is_empty() && nb.is_some() => true,
        _ if a == b"pre" && b != b"pre" => true,
        _ if b == b"pre" => false,
        (_, Some(_)) => true,
        (Some(_), _) => false,
        _ => a < b,
    }
}

/// Compares two version strings the way `nix-env -u` does.
pub fn compare_version_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let (mut pa, mut pb) = (0, 0);
    while pa < a.len() || pb < b.len() {
        let ca = next_component(a, &mut pa);
        let cb = next_component(b, &mut pb);
        if component_less(ca, cb) {
            return Ordering::Less;
        }
        if component_less(cb, ca) {
            return Ordering::Greater;
        }
    }
    Ordering::Equal
}

/// Splits a derivation name at the first `-` that is not followed by a letter.
pub fn parse_drv_name_bytes(s: &[u8]) -> (&[u8], &[u8]) {
    for i in 0..s.len() {
        if s[i] == b'-' && i + 1 < s.len() && !s[i + 1].is_ascii_alphabetic() {
            return (&s[..i], &s[i + 1..]);
        }
    }
    (s, b"")
}

fn split_version(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let v = force_string_no_ctx(ev, a[0].clone(), s)
        .context(s, || arg_frame("the first argument", "splitVersion"))?;
    Ok(Value::list(
        split_version_bytes(v.as_bytes())
            .into_iter()
            .map(|c| Value::string(c.to_vec()))
            .collect(),
    ))
}

fn compare_versions(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let v1 = force_string_no_ctx(ev, a[0].clone(), s)
        .context(s, || arg_frame("the first argument", "compareVersions"))?;
    let v2 = force_string_no_ctx(ev, a[1].clone(), s)
        .context(s, || arg_frame("the second argument", "compareVersions"))?;
    Ok(Value::Int(
        match compare_version_bytes(v1.as_bytes(), v2.as_bytes()) {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        },
    ))
}

fn parse_drv_name(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let v: Rc<NixString> = force_string_no_ctx(ev, a[0].clone(), s)
        .context(s, || arg_frame("the first argument", "parseDrvName"))?;
    let (name, version) = parse_drv_name_bytes(v.as_bytes());
    Ok(make_attrs([
        (Symbol::intern("name"), Value::string(name.to_vec())),
        (Symbol::intern("version"), Value::string(version.to_vec())),
    ]))
}

#[cfg(test)]
mod tests {
    use super::super::strings::tests::{err, ok};

    #[test]
    fn split_version() {
        ok("builtins.splitVersion \"1.2.3\"", "[ \"1\" \"2\" \"3\" ]");
        ok(
            "builtins.splitVersion \"1.2a-3_b..x\"",
            "[ \"1\" \"2\" \"a\" \"3\" \"_b\" \"x\" ]",
        );
        ok("builtins.splitVersion \"\"", "[ ]");
        ok("builtins.splitVersion \"..1..a-\"", "[ \"1\" \"a\" ]");
        ok(
            "builtins.splitVersion \"2.3pre12\"",
            "[ \"2\" \"3\" \"pre\" \"12\" ]",
        );
        err(
            "builtins.splitVersion 1",
            "expected a string but found an integer: 1",
        );
    }

    #[test]
    fn compare_versions() {
        let cases = [
            ("1.0", "2.3", -1),
            ("2.1", "2.3", -1),
            ("2.3", "2.3", 0),
            ("2.5", "2.3", 1),
            ("3.1", "2.3", 1),
            ("2.3.1", "2.3", 1),
            ("2.3.1", "2.3a", 1),
            ("2.3pre1", "2.3", -1),
            ("2.3pre3", "2.3pre12", -1),
            ("2.3a", "2.3c", -1),
            ("2.3pre1", "2.3c", -1),
            ("2.3pre1", "2.3q", -1),
            ("1.0", "1-0", 0),
            ("", "", 0),
            ("", "1", -1),
            ("a", "", 1),
            // Too big for a C int: compared as words, like Nix does.
            ("99999999999", "100000000000", 1),
            ("4294967297", "1", -1),
            ("99999999999999999999", "100000000000000000000", 1),
        ];
        for (a, b, want) in cases {
            ok(
                &format!("builtins.compareVersions \"{a}\" \"{b}\""),
                &want.to_string(),
            );
            ok(
                &format!("builtins.compareVersions \"{b}\" \"{a}\""),
                &(-want).to_string(),
            );
        }
        err(
            "builtins.compareVersions 1 { }",
            "expected a string but found an integer: 1",
        );
        err(
            "builtins.compareVersions \"abd\" { }",
            "expected a string but found a set: { }",
        );
    }

    #[test]
    fn parse_drv_name() {
        let cases = [
            ("hello-1.0.2", "hello", "1.0.2"),
            ("hello", "hello", ""),
            ("915resolution-0.5.2", "915resolution", "0.5.2"),
            ("xf86-video-i810-1.7.4", "xf86-video-i810", "1.7.4"),
            (
                "name-that-ends-with-dash--1.0",
                "name-that-ends-with-dash",
                "-1.0",
            ),
            ("foo-", "foo-", ""),
        ];
        for (input, name, version) in cases {
            ok(
                &format!("builtins.parseDrvName \"{input}\""),
                &format!("{{ name = \"{name}\"; version = \"{version}\"; }}"),
            );
        }
        err(
            "builtins.parseDrvName 1",
            "expected a string but found an integer: 1",
        );
    }
}
