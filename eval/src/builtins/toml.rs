//! `builtins.fromTOML`, parsed with the `toml` crate.
//!
//! Tables become sets, arrays lists. Dates and times are refused unless the experimental
//! feature `parse-toml-timestamps` is on; then they become
//! `{ _type = "timestamp"; value = "1979-05-27T07:32:00Z"; }` with the fraction of a second
//! written in milli-, micro- or nanoseconds, as CppNix does.

use ::toml::value::{Datetime, Offset};

use super::control::primop;
use super::{fail, make_attrs};
use crate::error::AddContext;
use crate::symbol::Symbol;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[primop!("fromTOML", 1, |ev, a, s| {
    let text = ev.force_string(a[0].clone(), s).context(s, || {
        "while evaluating the argument passed to builtins.fromTOML".to_string()
    })?;
    match parse_toml(&text.to_str_lossy(), ev.config.parse_toml_timestamps) {
        Ok(v) => Ok(v),
        Err(m) => fail(format!("while parsing TOML: {m}"), s),
    }
})];

/// Parses a TOML document into a Nix value; the error text follows "while parsing TOML: ".
pub fn parse_toml(text: &str, timestamps: bool) -> Result<Value, String> {
    let table: ::toml::Table = text
        .parse()
        .map_err(|e: ::toml::de::Error| describe_error(text, &e))?;
    convert_table(table, timestamps)
}

fn nul_check(s: &str) -> Result<(), String> {
    if s.contains('\0') {
        Err(format!(
            "error: {}",
            super::json::nul_byte_error(s.as_bytes())
        ))
    } else {
        Ok(())
    }
}

fn convert_table(table: ::toml::Table, timestamps: bool) -> Result<Value, String> {
    let mut items = Vec::with_capacity(table.len());
    for (k, v) in table {
        nul_check(&k)?;
        items.push((Symbol::intern(&k), convert(v, timestamps)?));
    }
    Ok(make_attrs(items))
}

fn convert(v: ::toml::Value, timestamps: bool) -> Result<Value, String> {
    Ok(match v {
        ::toml::Value::String(s) => {
            nul_check(&s)?;
            Value::string(s)
        }
        ::toml::Value::Integer(i) => Value::Int(i),
        ::toml::Value::Float(f) => Value::float(f),
        ::toml::Value::Boolean(b) => Value::bool(b),
        ::toml::Value::Array(items) => Value::list(
            items
                .into_iter()
                .map(|i| convert(i, timestamps))
                .collect::<Result<_, _>>()?,
        ),
        ::toml::Value::Table(t) => convert_table(t, timestamps)?,
        ::toml::Value::Datetime(d) => {
            if !timestamps {
                return Err("Dates and times are not supported".into());
            }
            make_attrs([
                (Symbol::intern("_type"), Value::string("timestamp")),
                (Symbol::intern("value"), Value::string(format_datetime(&d))),
            ])
        }
    })
}

/// `1979-05-27T00:32:00.123400-07:00`: the fraction of a second in groups of three digits,
/// as many as needed for its non-zero part (milli-, micro- or nanoseconds).
pub fn format_datetime(d: &Datetime) -> String {
    let mut out = String::new();
    if let Some(date) = &d.date {
        out.push_str(&format!(
            "{:04}-{:02}-{:02}",
            date.year, date.month, date.day
        ));
    }
    if let Some(time) = &d.time {
        if d.date.is_some() {
            out.push('T');
        }
        out.push_str(&format!(
            "{:02}:{:02}:{:02}",
            time.hour,
            time.minute,
            time.second.unwrap_or(0)
        ));
        let ns = time.nanosecond.unwrap_or(0);
        if ns > 0 {
            let (ms, us, n) = (ns / 1_000_000, (ns / 1000) % 1000, ns % 1000);
            out.push_str(&format!(".{ms:03}"));
            if us > 0 || n > 0 {
                out.push_str(&format!("{us:03}"));
            }
            if n > 0 {
                out.push_str(&format!("{n:03}"));
            }
        }
    }
    match d.offset {
        Some(Offset::Z) => out.push('Z'),
        Some(Offset::Custom { minutes }) => {
            let sign = if minutes < 0 { '-' } else { '+' };
            let m = minutes.unsigned_abs();
            out.push_str(&format!("{sign}{:02}:{:02}", m / 60, m % 60));
        }
        None => {}
    }
    out
}

/// The parser's error, worded like CppNix's (toml11) for integers out of range.
fn describe_error(text: &str, e: &::toml::de::Error) -> String {
    if let Some(span) = e.span() {
        let token = text.get(span.clone()).unwrap_or("");
        let msg = e.message();
        let digits = token.trim_start_matches(['+', '-']);
        let overflow = msg.contains("too large")
            || msg.contains("too small")
            || msg.contains("as i128")
            || msg.contains("out of range");
        if overflow && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        {
            let line_no = text[..span.start].matches('\n').count() + 1;
            let line_start = text[..span.start].rfind('\n').map(|i| i + 1).unwrap_or(0);
            let line_end = text[span.start..]
                .find('\n')
                .map(|i| span.start + i)
                .unwrap_or(text.len());
            let line = &text[line_start..line_end];
            let caret_col = span.end - line_start;
            let width = line_no.to_string().len();
            return format!(
                "[error] toml::parse_dec_integer: too large integer: current max digits = 2^63\n {pad}--> fromTOML\n {pad} |\n {line_no} | {line}\n {pad} | {caret}^-- must be < 2^63\n",
                pad = " ".repeat(width),
                caret = " ".repeat(caret_col),
            );
        }
    }
    e.to_string().trim_end().to_string()
}

#[cfg(test)]
mod tests {

    use crate::eval::EvalConfig;

    fn eval_with(src: &str, timestamps: bool) -> Result<String, String> {
        let config = EvalConfig {
            parse_toml_timestamps: timestamps,
            ..EvalConfig::default()
        };
        crate::testing::eval_named_with("«test»", src, config)
    }

    fn eval(src: &str) -> Result<String, String> {
        eval_with(src, false)
    }

    #[test]
    fn tables_arrays_scalars() {
        assert_eq!(
            eval(
                r#"builtins.fromTOML ''
                  title = "x"
                  n = 0xff
                  f = 1e6
                  b = true
                  arr = [ 1, "a", [ 2 ] ]
                  [t."a.b"]
                  c = 1
                  [[p]]
                  name = "h"
                  [[p]]
                ''"#
            ),
            Ok(r#"{ arr = [ 1 "a" [ 2 ] ]; b = true; f = 1e+06; n = 255; p = [ { name = "h"; } { } ]; t = { "a.b" = { c = 1; }; }; title = "x"; }"#.into())
        );
    }

    #[test]
    fn timestamps_need_the_feature() {
        assert_eq!(
            eval("builtins.fromTOML \"d = 1979-05-27\""),
            Err("while parsing TOML: Dates and times are not supported".into())
        );
        assert_eq!(
            eval_with(
                "builtins.fromTOML ''\n  a = 1979-05-27 07:32:00.1Z\n  b = 1979-05-27t00:32:00.1234-07:00\n  c = 00:32:00.1234567891\n  d = 1979-05-27\n  e = 1979-05-27T07:32:00\n''",
                true
            ),
            Ok(r#"{ a = { _type = "timestamp"; value = "1979-05-27T07:32:00.100Z"; }; b = { _type = "timestamp"; value = "1979-05-27T00:32:00.123400-07:00"; }; c = { _type = "timestamp"; value = "00:32:00.123456789"; }; d = { _type = "timestamp"; value = "1979-05-27"; }; e = { _type = "timestamp"; value = "1979-05-27T07:32:00"; }; }"#.into())
        );
    }

    #[test]
    fn errors() {
        let overflow = eval("builtins.fromTOML ''attr = 9223372036854775808''").unwrap_err();
        assert!(overflow.starts_with(
            "while parsing TOML: [error] toml::parse_dec_integer: too large integer: current max digits = 2^63\n"
        ), "{overflow}");
        let underflow = eval("builtins.fromTOML ''attr = -9223372036854775809''").unwrap_err();
        assert!(underflow.starts_with(
            "while parsing TOML: [error] toml::parse_dec_integer: too large integer: current max digits = 2^63\n"
        ), "{underflow}");
        assert_eq!(
            eval(r#"builtins.fromTOML ''k = "a\u0000b"''"#),
            Err("while parsing TOML: error: input string 'a␀b' cannot be represented as Nix string because it contains null bytes".into())
        );
        assert_eq!(
            eval(r#"builtins.fromTOML ''"a\u0000b" = 1''"#),
            Err("while parsing TOML: error: input string 'a␀b' cannot be represented as Nix string because it contains null bytes".into())
        );
        assert!(eval("builtins.fromTOML \"a = 1\\na = 2\"")
            .unwrap_err()
            .starts_with("while parsing TOML: "));
        assert_eq!(
            eval("builtins.fromTOML 1"),
            Err("expected a string but found an integer: 1".into())
        );
    }
}
