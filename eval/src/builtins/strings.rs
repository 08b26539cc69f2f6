//! String builtins: `stringLength`, `substring`, `concatStringsSep`, `replaceStrings`.

use std::rc::Rc;

use super::control::primop;
use super::fail;
use crate::error::{AddContext, EvalResult};
use crate::eval::{CoerceMode, Evaluator};
use crate::source::Span;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("stringLength", 1, string_length),
    primop!("substring", 3, substring),
    primop!("concatStringsSep", 2, concat_strings_sep),
    primop!("replaceStrings", 3, replace_strings),
];

/// `what` as a trace frame: `while evaluating WHAT passed to builtins.NAME`.
pub(super) fn arg_frame(what: &str, name: &str) -> String {
    format!("while evaluating {what} passed to builtins.{name}")
}

/// How Nix shows one context element in messages (its legacy string encoding).
pub(super) fn context_elem_to_string(e: &ContextElem) -> String {
    match e {
        ContextElem::Plain(p) => p.clone(),
        ContextElem::Output(drv, out) => format!("!{out}!{drv}"),
        ContextElem::AllOutputs(drv) => format!("={drv}"),
    }
}

/// Forces a string that must not carry a context (Nix's `forceStringNoCtx`).
pub(super) fn force_string_no_ctx(
    ev: &mut Evaluator,
    v: Value,
    span: Option<Span>,
) -> EvalResult<Rc<NixString>> {
    let s = ev.force_string(v, span)?;
    if let Some(first) = s.context().and_then(|c| c.iter().next()) {
        return fail(
            format!(
                "the string '{}' is not allowed to refer to a store path (such as '{}')",
                s.to_str_lossy(),
                context_elem_to_string(first)
            ),
            span,
        );
    }
    Ok(s)
}

fn string_length(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let st = ev
        .coerce_to_string(a[0].clone(), CoerceMode::Interpolation, s)
        .context(s, || arg_frame("the argument", "stringLength"))?;
    Ok(Value::Int(st.len() as i64))
}

fn substring(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let start = ev.force_int(a[0].clone(), s).context(s, || {
        arg_frame("the first argument (the start offset)", "substring")
    })?;
    if start < 0 {
        return fail("negative start position in 'substring'", s);
    }
    let len = ev.force_int(a[1].clone(), s).context(s, || {
        arg_frame("the second argument (the substring length)", "substring")
    })?;
    // An empty substring of a string keeps the context without looking at the text: this is
    // how Nix code copies a string's context cheaply.
    if len == 0 {
        if let Value::String(st) = ev.force(a[2].clone())? {
            let ctx = st.context().cloned().unwrap_or_default();
            return Ok(Value::String(Rc::new(NixString::with_context(
                Vec::new(),
                ctx,
            ))));
        }
    }
    let st = ev
        .coerce_to_string(a[2].clone(), CoerceMode::Interpolation, s)
        .context(s, || {
            arg_frame("the third argument (the string)", "substring")
        })?;
    let bytes = st.as_bytes();
    let start = usize::try_from(start)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let end = if len < 0 {
        bytes.len()
    } else {
        start
            .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
            .min(bytes.len())
    };
    let ctx = st.context().cloned().unwrap_or_default();
    Ok(Value::String(Rc::new(NixString::with_context(
        bytes[start..end].to_vec(),
        ctx,
    ))))
}

fn concat_strings_sep(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let sep = ev.force_string(a[0].clone(), s).context(s, || {
        arg_frame(
            "the first argument (the separator string)",
            "concatStringsSep",
        )
    })?;
    let list = ev.force_list(a[1].clone(), s).context(s, || {
        arg_frame(
            "the second argument (the list of strings to concat)",
            "concatStringsSep",
        )
    })?;
    let mut b = StringBuilder::new();
    // The separator's context is kept even when it is never inserted.
    if let Some(c) = sep.context() {
        b.add_context(c);
    }
    for (i, item) in list.iter().enumerate() {
        ev.check_interrupt(s)?;
        if i > 0 {
            b.push_bytes(sep.as_bytes());
        }
        let st = ev
            .coerce_to_string(item.clone(), CoerceMode::Interpolation, s)
            .context(s, || {
                arg_frame(
                    "one element of the list of strings to concat",
                    "concatStringsSep",
                )
            })?;
        b.push(&st);
    }
    Ok(Value::String(Rc::new(b.finish())))
}

fn replace_strings(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let from = ev
        .force_list(a[0].clone(), s)
        .context(s, || arg_frame("the first argument", "replaceStrings"))?;
    let to = ev
        .force_list(a[1].clone(), s)
        .context(s, || arg_frame("the second argument", "replaceStrings"))?;
    if from.len() != to.len() {
        return fail(
            "'from' and 'to' arguments passed to builtins.replaceStrings have different lengths",
            s,
        );
    }
    let mut froms: Vec<Rc<NixString>> = Vec::with_capacity(from.len());
    for f in from.iter() {
        froms.push(ev.force_string(f.clone(), s).context(s, || {
            arg_frame("one of the strings to replace", "replaceStrings")
        })?);
    }
    let input = ev
        .force_string(a[2].clone(), s)
        .context(s, || arg_frame("the third argument", "replaceStrings"))?;
    // Replacements are forced only when used, and at most once.
    let mut tos: Vec<Option<Rc<NixString>>> = vec![None; to.len()];
    let bytes = input.as_bytes();
    let mut out = StringBuilder::with_capacity(bytes.len());
    if let Some(c) = input.context() {
        out.add_context(c);
    }
    // Without an empty pattern, only positions holding the first byte of some pattern can
    // match: the text up to the next one is copied whole instead of tried byte by byte.
    let mut first_bytes = [false; 256];
    for f in &froms {
        if let Some(&b) = f.as_bytes().first() {
            first_bytes[b as usize] = true;
        }
    }
    let skip = froms.iter().all(|f| !f.is_empty());
    let mut p = 0;
    while p <= bytes.len() {
        if skip {
            let next = bytes[p..]
                .iter()
                .position(|&b| first_bytes[b as usize])
                .map_or(bytes.len(), |i| p + i);
            out.push_bytes(&bytes[p..next]);
            p = next;
            if p == bytes.len() {
                // Only an empty pattern matches at the end.
                break;
            }
        }
        let hit = froms
            .iter()
            .position(|f| bytes[p..].starts_with(f.as_bytes()));
        match hit {
            Some(i) => {
                if tos[i].is_none() {
                    let t = ev.force_string(to[i].clone(), s).context(s, || {
                        arg_frame("one of the replacement strings", "replaceStrings")
                    })?;
                    tos[i] = Some(t);
                }
                if let Some(t) = &tos[i] {
                    out.push(t);
                }
                let n = froms[i].len();
                if n == 0 {
                    // An empty pattern matches between every character: copy one and go on.
                    if p < bytes.len() {
                        out.push_bytes(&bytes[p..p + 1]);
                    }
                    p += 1;
                } else {
                    p += n;
                }
            }
            None => {
                if p < bytes.len() {
                    out.push_bytes(&bytes[p..p + 1]);
                }
                p += 1;
            }
        }
    }
    Ok(Value::String(Rc::new(out.finish())))
}

#[cfg(test)]
pub(super) mod tests {

    /// Evaluates `src` deeply and prints it as `nix-instantiate --eval --strict` would, or
    /// gives the error message.
    pub(crate) use crate::testing::eval;

    pub(crate) fn ok(src: &str, want: &str) {
        assert_eq!(eval(src), Ok(want.to_string()), "{src}");
    }

    pub(crate) fn err(src: &str, want: &str) {
        assert_eq!(eval(src), Err(want.to_string()), "{src}");
    }

    #[test]
    fn string_length() {
        ok("builtins.stringLength \"\"", "0");
        ok("builtins.stringLength \"héllo\"", "6");
        ok("builtins.stringLength { outPath = \"abc\"; }", "3");
        err(
            "builtins.stringLength { }",
            "cannot coerce a set to a string: { }",
        );
        err(
            "builtins.stringLength 1",
            "cannot coerce an integer to a string: 1",
        );
    }

    #[test]
    fn substring() {
        ok("builtins.substring 1 2 \"foobar\"", "\"oo\"");
        ok("builtins.substring 3 100 \"foobar\"", "\"bar\"");
        ok("builtins.substring 5 10 \"perl\"", "\"\"");
        ok("builtins.substring 3 (-1) \"tebbad\"", "\"bad\"");
        ok("builtins.substring 0 0 \"x\"", "\"\"");
        err(
            "builtins.substring 0 0 1",
            "cannot coerce an integer to a string: 1",
        );
        err(
            "builtins.substring (-3) 3 \"sometext\"",
            "negative start position in 'substring'",
        );
        err(
            "builtins.substring (-3) \"x\" \"sometext\"",
            "negative start position in 'substring'",
        );
        err(
            "builtins.substring { } \"foo\" true",
            "expected an integer but found a set: { }",
        );
        err(
            "builtins.substring 3 \"foo\" true",
            "expected an integer but found a string: \"foo\"",
        );
        err(
            "builtins.substring 0 3 { }",
            "cannot coerce a set to a string: { }",
        );
    }

    #[test]
    fn concat_strings_sep() {
        ok("builtins.concatStringsSep \", \" [ ]", "\"\"");
        ok("builtins.concatStringsSep \", \" [ \"a\" ]", "\"a\"");
        ok(
            "builtins.concatStringsSep \", \" [ \"a\" \"b\" \"c\" ]",
            "\"a, b, c\"",
        );
        ok("builtins.concatStringsSep \"\" [ \"a\" \"b\" ]", "\"ab\"");
        err(
            "builtins.concatStringsSep 1 { }",
            "expected a string but found an integer: 1",
        );
        err(
            "builtins.concatStringsSep \"foo\" { }",
            "expected a list but found a set: { }",
        );
        err(
            "builtins.concatStringsSep \"foo\" [ 1 2 { } ]",
            "cannot coerce an integer to a string: 1",
        );
    }

    #[test]
    fn replace_strings() {
        ok(
            "with builtins; [ (replaceStrings [ \"o\" ] [ \"a\" ] \"foobar\") \
             (replaceStrings [ \"o\" ] [ \"\" ] \"foobar\") \
             (replaceStrings [ \"oo\" ] [ \"u\" ] \"foobar\") \
             (replaceStrings [ \"oo\" \"a\" ] [ \"a\" \"oo\" ] \"foobar\") \
             (replaceStrings [ \"oo\" \"oo\" ] [ \"u\" \"i\" ] \"foobar\") \
             (replaceStrings [ \"\" ] [ \"X\" ] \"abc\") \
             (replaceStrings [ \"\" ] [ \"X\" ] \"\") \
             (replaceStrings [ \"-\" ] [ \"_\" ] \"a-b\") \
             (replaceStrings [ \"oo\" \"XX\" ] [ \"u\" (throw \"unreachable\") ] \"foobar\") ]",
            "[ \"faabar\" \"fbar\" \"fubar\" \"faboor\" \"fubar\" \"XaXbXcX\" \"X\" \"a_b\" \"fubar\" ]",
        );
        ok("builtins.replaceStrings [ ] [ ] \"abc\"", "\"abc\"");
        ok(
            "builtins.replaceStrings [ \"b\" \"\" ] [ \"B\" \"-\" ] \"abc\"",
            "\"-aB-c-\"",
        );
        err(
            "builtins.replaceStrings 0 0 { }",
            "expected a list but found an integer: 0",
        );
        err(
            "builtins.replaceStrings [ ] 0 { }",
            "expected a list but found an integer: 0",
        );
        err(
            "builtins.replaceStrings [ 0 ] [ ] { }",
            "'from' and 'to' arguments passed to builtins.replaceStrings have different lengths",
        );
        err(
            "builtins.replaceStrings [ 1 ] [ \"new\" ] { }",
            "expected a string but found an integer: 1",
        );
        err(
            "builtins.replaceStrings [ \"oo\" ] [ true ] \"foo\"",
            "expected a string but found a Boolean: true",
        );
        err(
            "builtins.replaceStrings [ \"old\" ] [ \"new\" ] { }",
            "expected a string but found a set: { }",
        );
    }
}
