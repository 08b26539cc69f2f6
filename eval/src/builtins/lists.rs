//! List builtins.

use std::rc::Rc;

use super::control::primop;
use super::fail;
use crate::error::EvalResult;
use crate::eval::Evaluator;
use crate::source::Span;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("length", 1, |ev, a, s| Ok(Value::Int(
        ev.force_list(a[0].clone(), s)?.len() as i64
    ))),
    primop!("head", 1, |ev, a, s| {
        let l = ev.force_list(a[0].clone(), s)?;
        match l.first() {
            Some(v) => ev.force(v.clone()),
            None => fail("'builtins.head' called on an empty list", s),
        }
    }),
    primop!("tail", 1, |ev, a, s| {
        let l = ev.force_list(a[0].clone(), s)?;
        if l.is_empty() {
            return fail("'builtins.tail' called on an empty list", s);
        }
        Ok(Value::list(l[1..].to_vec()))
    }),
    primop!("elemAt", 2, elem_at),
    primop!("map", 2, map),
    primop!("filter", 2, filter),
    primop!("genList", 2, gen_list),
    primop!("foldl'", 3, foldl),
    primop!("concatLists", 1, concat_lists),
    primop!("elem", 2, elem),
];

fn elem_at(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let l = ev.force_list(a[0].clone(), s)?;
    let i = ev.force_int(a[1].clone(), s)?;
    if i < 0 || i as usize >= l.len() {
        return fail(
            format!(
                "'builtins.elemAt' called with index {i} on a list of size {}",
                l.len()
            ),
            s,
        );
    }
    ev.force(l[i as usize].clone())
}

fn map(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let l = ev.force_list(a[1].clone(), s)?;
    let f = a[0].clone();
    Ok(Value::list(
        l.iter()
            .map(|x| Value::Thunk(Thunk::apply(f.clone(), x.clone())))
            .collect(),
    ))
}

fn filter(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let l = ev.force_list(a[1].clone(), s)?;
    let f = ev.force_function(a[0].clone(), s)?;
    let mut out = Vec::new();
    for x in l.iter() {
        let keep = ev.call_forced(f.clone(), x.clone(), s)?;
        if ev.force_bool(keep, s)? {
            out.push(x.clone());
        }
    }
    if out.len() == l.len() {
        return Ok(Value::List(l));
    }
    Ok(Value::list(out))
}

fn gen_list(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let n = ev.force_int(a[1].clone(), s)?;
    if n < 0 {
        return fail(format!("cannot create list of size {n}"), s);
    }
    let f = a[0].clone();
    Ok(Value::list(
        (0..n)
            .map(|i| Value::Thunk(Thunk::apply(f.clone(), Value::Int(i))))
            .collect(),
    ))
}

fn foldl(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let l = ev.force_list(a[2].clone(), s)?;
    let f = a[0].clone();
    let mut acc = a[1].clone();
    for x in l.iter() {
        let f = ev.force(f.clone())?;
        acc = ev.call2(f, acc, x.clone(), s)?;
        acc = ev.force(acc)?;
    }
    ev.force(acc)
}

fn concat_lists(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let l = ev.force_list(a[0].clone(), s)?;
    let mut out = Vec::new();
    for x in l.iter() {
        let inner = ev.force_list(x.clone(), s)?;
        out.extend(inner.iter().cloned());
    }
    Ok(Value::List(Rc::new(out)))
}

fn elem(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let l = ev.force_list(a[1].clone(), s)?;
    for x in l.iter() {
        if ev.values_equal(a[0].clone(), x.clone(), s)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}
