//! Rendering values as `nix-instantiate --eval` prints them, and short previews for errors.

use std::collections::HashSet;
use std::fmt::Write;
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use super::Value;
use crate::source::SourceMap;

/// Formats a float the way C++ streams do by default (`%g` with 6 significant digits).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{:.5e}", f);
    let (mantissa, exp) = sci.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    if !(-4..6).contains(&exp) {
        let m = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, f)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Quotes a string with Nix's escapes.
pub fn escape_string(bytes: &[u8], out: &mut String) {
    out.push('"');
    let text = String::from_utf8_lossy(bytes);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether `name` can be printed as a bare attribute name.
pub fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '\'' || c == '-') {
        return false;
    }
    !matches!(
        name,
        "if" | "then" | "else" | "assert" | "with" | "let" | "in" | "rec" | "inherit" | "or"
    )
}

/// Writes an attribute name, quoted if needed.
pub fn write_attr_name(name: &str, out: &mut String) {
    if is_plain_identifier(name) {
        out.push_str(name);
    } else {
        escape_string(name.as_bytes(), out);
    }
}

/// Prints a value fully, as `nix-instantiate --eval` does. Thunks that were never forced print
/// as `<CODE>`; a set or list seen before on the current path prints as `«repeated»`.
pub fn print_value(v: &Value) -> String {
    let mut out = String::new();
    let mut seen = HashSet::new();
    print_inner(v, &mut out, &mut seen, Markers::Classic);
    out
}

/// Prints a value fully, as current Nix prints one in `builtins.trace`: like
/// [`print_value`], but with current Nix's markers for what has no printed form
/// (`«thunk»`, `«lambda @ file:line:col»`, `«primop name»`).
pub fn print_value_traced(v: &Value, sources: &SourceMap) -> String {
    let mut out = String::new();
    let mut seen = HashSet::new();
    print_inner(v, &mut out, &mut seen, Markers::Current(sources));
    out
}

/// How values without a printed form (unevaluated thunks, functions) are shown.
#[derive(Clone, Copy)]
enum Markers<'a> {
    /// `<CODE>`, `<LAMBDA>`, `<PRIMOP>`, `<PRIMOP-APP>` (`nix-instantiate --eval`).
    Classic,
    /// `«thunk»`, `«lambda @ …»`, `«primop …»`, `«partially applied primop …»`.
    Current(&'a SourceMap),
}

fn print_inner(v: &Value, out: &mut String, seen: &mut HashSet<usize>, m: Markers) {
    print_cell(v, None, out, seen, m)
}

/// Prints a value; `cell` identifies the thunk the value was reached through, if any.
///
/// `«repeated»` follows the reference's notion of identity: a set is the same when its
/// attributes are shared; a list of more than two elements when its element array is shared;
/// a list of one or two elements (stored inside the value cell by the reference) only when it
/// is reached through the same cell. Empty sets and lists are never "repeated".
fn print_cell(
    v: &Value,
    cell: Option<usize>,
    out: &mut String,
    seen: &mut HashSet<usize>,
    m: Markers,
) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if b.get() { "true" } else { "false" }),
        Value::Int(i) => write!(out, "{i}").expect("write to string"),
        Value::Float(f) => out.push_str(&format_float(f.get())),
        Value::String(s) => escape_string(s.as_bytes(), out),
        Value::Path(p) => out.push_str(&String::from_utf8_lossy(p.as_os_str().as_bytes())),
        Value::Attrs(a) => {
            if a.is_empty() {
                out.push_str("{ }");
                return;
            }
            if !seen.insert(Rc::as_ptr(a) as usize) {
                out.push_str("«repeated»");
                return;
            }
            out.push('{');
            for e in a.iter() {
                out.push(' ');
                write_attr_name(e.name.as_str(), out);
                out.push_str(" = ");
                print_inner(&e.value, out, seen, m);
                out.push(';');
            }
            out.push_str(" }");
        }
        Value::List(l) => {
            if l.is_empty() {
                out.push_str("[ ]");
                return;
            }
            let key = if l.len() <= 2 {
                cell
            } else {
                Some(Rc::as_ptr(l) as usize)
            };
            if let Some(key) = key {
                if !seen.insert(key) {
                    out.push_str("«repeated»");
                    return;
                }
            }
            out.push('[');
            for item in l.iter() {
                out.push(' ');
                print_inner(item, out, seen, m);
            }
            out.push_str(" ]");
        }
        Value::Lambda(_) | Value::PrimOp(_) => match m {
            Markers::Current(sources) => preview_inner(v, out, 0, Some(sources), seen),
            Markers::Classic => out.push_str(match v {
                Value::PrimOp(app) if app.args.is_empty() => "<PRIMOP>",
                Value::PrimOp(_) => "<PRIMOP-APP>",
                _ => "<LAMBDA>",
            }),
        },
        Value::Thunk(t) => match t.value() {
            Some(v) => {
                let cell = Some(Rc::as_ptr(&t.0) as *const u8 as usize);
                print_cell(&v, cell, out, seen, m)
            }
            None => out.push_str(match m {
                Markers::Classic => "<CODE>",
                Markers::Current(_) => "«thunk»",
            }),
        },
    }
}

const PREVIEW_ATTRS: usize = 8;
const PREVIEW_ITEMS: usize = 8;
const PREVIEW_DEPTH: usize = 3;

/// A short rendering for error messages, like Nix's: evaluated parts only, long sets and
/// lists elided, functions shown with their position.
pub fn preview(v: &Value, sources: &SourceMap) -> String {
    let mut out = String::new();
    preview_inner(v, &mut out, 0, Some(sources), &mut HashSet::new());
    out
}

/// A preview without positions (when no source map is at hand).
pub fn preview_plain(v: &Value) -> String {
    let mut out = String::new();
    preview_inner(v, &mut out, 0, None, &mut HashSet::new());
    out
}

/// `seen` holds the sets and lists already shown: a value met again is `«repeated»`, as in
/// Nix's messages, so a derivation (whose `out` is itself) stays short.
fn preview_inner(
    v: &Value,
    out: &mut String,
    depth: usize,
    sources: Option<&SourceMap>,
    seen: &mut HashSet<usize>,
) {
    match v {
        Value::Attrs(a) => {
            if a.is_empty() {
                out.push_str("{ }");
                return;
            }
            if !seen.insert(Rc::as_ptr(a) as *const u8 as usize) {
                out.push_str("«repeated»");
                return;
            }
            if depth >= PREVIEW_DEPTH {
                out.push_str("{ ... }");
                return;
            }
            out.push('{');
            for e in a.iter().take(PREVIEW_ATTRS) {
                out.push(' ');
                write_attr_name(e.name.as_str(), out);
                out.push_str(" = ");
                preview_inner(&e.value, out, depth + 1, sources, seen);
                out.push(';');
            }
            if a.len() > PREVIEW_ATTRS {
                let n = a.len() - PREVIEW_ATTRS;
                write!(
                    out,
                    " «{n} attribute{} elided»",
                    if n == 1 { "" } else { "s" }
                )
                .expect("write");
            }
            out.push_str(" }");
        }
        Value::List(l) => {
            if l.is_empty() {
                out.push_str("[ ]");
                return;
            }
            // Lists of one or two elements are copied into each value that holds them in
            // Nix, so only longer ones can be seen again (as in `print_inner`).
            if l.len() > 2 && !seen.insert(Rc::as_ptr(l) as usize) {
                out.push_str("«repeated»");
                return;
            }
            if depth >= PREVIEW_DEPTH {
                out.push_str("[ ... ]");
                return;
            }
            out.push('[');
            for item in l.iter().take(PREVIEW_ITEMS) {
                out.push(' ');
                preview_inner(item, out, depth + 1, sources, seen);
            }
            if l.len() > PREVIEW_ITEMS {
                let n = l.len() - PREVIEW_ITEMS;
                write!(out, " «{n} item{} elided»", if n == 1 { "" } else { "s" }).expect("write");
            }
            out.push_str(" ]");
        }
        Value::Lambda(c) => match sources {
            Some(s) => {
                let loc = s.location(c.lambda.span);
                write!(out, "«lambda @ {}:{}:{}»", loc.file, loc.line, loc.column).expect("write");
            }
            None => out.push_str("«lambda»"),
        },
        Value::PrimOp(app) => {
            if app.args.is_empty() {
                write!(out, "«primop {}»", app.op.name).expect("write");
            } else {
                write!(out, "«partially applied primop {}»", app.op.name).expect("write");
            }
        }
        Value::Thunk(t) => match t.value() {
            Some(v) => preview_inner(&v, out, depth, sources, seen),
            None => out.push_str("«thunk»"),
        },
        other => print_inner(other, out, &mut HashSet::new(), Markers::Classic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_cpp_streams() {
        assert_eq!(format_float(3.4), "3.4");
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(1e20), "1e+20");
        assert_eq!(format_float(0.1 + 0.2), "0.3");
        assert_eq!(format_float(123456.7), "123457");
        assert_eq!(format_float(1234567.0), "1.23457e+06");
        assert_eq!(format_float(0.0001), "0.0001");
        assert_eq!(format_float(0.00001), "1e-05");
        assert_eq!(format_float(-2.5), "-2.5");
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        escape_string(b"a\"b\\c\n${x}$y", &mut s);
        assert_eq!(s, r#""a\"b\\c\n\${x}$y""#);
    }

    #[test]
    fn attr_names_are_quoted_when_needed() {
        let mut s = String::new();
        write_attr_name("foo-bar", &mut s);
        write_attr_name("1a", &mut s);
        write_attr_name("if", &mut s);
        assert_eq!(s, r#"foo-bar"1a""if""#);
    }
}
