//! String builtins.

use std::rc::Rc;

use super::control::primop;
use super::fail;
use crate::error::EvalResult;
use crate::eval::{CoerceMode, Evaluator};
use crate::source::Span;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("stringLength", 1, |ev, a, s| {
        let st = ev.coerce_to_string(a[0].clone(), CoerceMode::Interpolation, s)?;
        Ok(Value::Int(st.len() as i64))
    }),
    primop!("substring", 3, substring),
    primop!("concatStringsSep", 2, concat_strings_sep),
];

fn substring(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let start = ev.force_int(a[0].clone(), s)?;
    let len = ev.force_int(a[1].clone(), s)?;
    let st = ev.coerce_to_string(a[2].clone(), CoerceMode::Interpolation, s)?;
    if start < 0 {
        return fail("negative start position in 'substring'", s);
    }
    let bytes = st.as_bytes();
    let start = (start as usize).min(bytes.len());
    let end = if len < 0 {
        bytes.len()
    } else {
        start.saturating_add(len as usize).min(bytes.len())
    };
    let ctx = st.context().cloned().unwrap_or_default();
    Ok(Value::String(Rc::new(NixString::with_context(
        bytes[start..end].to_vec(),
        ctx,
    ))))
}

fn concat_strings_sep(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let sep = ev.force_string(a[0].clone(), s)?;
    let list = ev.force_list(a[1].clone(), s)?;
    let mut b = StringBuilder::new();
    for (i, item) in list.iter().enumerate() {
        if i > 0 {
            b.push(&sep);
        }
        let st = ev.coerce_to_string(item.clone(), CoerceMode::Interpolation, s)?;
        b.push(&st);
    }
    Ok(Value::String(Rc::new(b.finish())))
}
