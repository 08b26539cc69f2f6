//! List builtins.
//!
//! Laziness follows Nix: `map` and `genList` hold the function's applications as thunks;
//! `filter`, `all`, `any`, `concatMap`, `partition`, `groupBy` and `sort` call the function
//! eagerly but (except `sort` and `partition`, which force every element first, as Nix does)
//! pass the elements unforced. `foldl'` forces the accumulator at each step, not the elements.

use std::cmp::Ordering;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use super::control::primop;
use super::fail;
use super::sort::stable_sort;
use crate::error::{AddContext, EvalResult};
use crate::eval::{sym, Evaluator};

use crate::source::Span;
use crate::symbol::Symbol;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("length", 1, |ev, a, s| Ok(Value::Int(
        ev.force_list(a[0].clone(), s)
            .context(None, || first_arg("length"))?
            .len() as i64
    ))),
    primop!("head", 1, |ev, a, s| {
        let l = ev
            .force_list(a[0].clone(), s)
            .context(None, || first_arg("head"))?;
        match l.first() {
            Some(v) => ev.force(v.clone()),
            None => fail("'builtins.head' called on an empty list", s),
        }
    }),
    primop!("tail", 1, |ev, a, s| {
        let l = ev
            .force_list(a[0].clone(), s)
            .context(None, || first_arg("tail"))?;
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
    primop!("concatMap", 2, concat_map),
    primop!("elem", 2, elem),
    primop!("all", 2, |ev, a, s| any_or_all(ev, a, s, false)),
    primop!("any", 2, |ev, a, s| any_or_all(ev, a, s, true)),
    primop!("partition", 2, partition),
    primop!("groupBy", 2, group_by),
    primop!("sort", 2, sort),
];

/// A predicate's result as a Boolean; the common case (already a Boolean) skips the checks.
#[inline]
fn truth(
    ev: &mut Evaluator,
    v: Value,
    s: Option<Span>,
    ctx: impl FnOnce() -> String,
) -> EvalResult<bool> {
    match v {
        Value::Bool(b) => Ok(b.get()),
        other => ev.force_bool(other, s).context(None, ctx),
    }
}

fn first_arg(name: &str) -> String {
    format!("while evaluating the first argument passed to builtins.{name}")
}

fn second_arg(name: &str) -> String {
    format!("while evaluating the second argument passed to builtins.{name}")
}

fn return_value(name: &str) -> String {
    format!("while evaluating the return value of the function passed to builtins.{name}")
}

fn elem_at(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let l = ev
        .force_list(a[0].clone(), s)
        .context(None, || first_arg("elemAt"))?;
    let i = ev
        .force_int(a[1].clone(), s)
        .context(None, || second_arg("elemAt"))?;
    if i < 0 || i as u64 >= l.len() as u64 {
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

fn map(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let l = ev
        .force_list(a[1].clone(), s)
        .context(None, || second_arg("map"))?;
    if l.is_empty() {
        return Ok(Value::List(l));
    }
    let f = ev
        .force_function(a[0].clone(), s)
        .context(None, || first_arg("map"))?;
    let mut out = Vec::with_capacity(l.len());
    for chunk in l.chunks(INTERRUPT_CHUNK) {
        ev.check_interrupt(s)?;
        out.extend(
            chunk
                .iter()
                .map(|x| Value::Thunk(Thunk::apply(f.clone(), x.clone()))),
        );
    }
    Ok(Value::list(out))
}

/// Loops that only allocate check the interrupt flag once per this many elements.
const INTERRUPT_CHUNK: usize = 4096;

fn filter(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let l = ev
        .force_list(a[1].clone(), s)
        .context(None, || second_arg("filter"))?;
    if l.is_empty() {
        return Ok(Value::List(l));
    }
    let f = ev
        .force_function(a[0].clone(), s)
        .context(None, || first_arg("filter"))?;
    let mut out = Vec::new();
    for x in l.iter() {
        ev.check_interrupt(s)?;
        let keep = ev.call_forced(f.clone(), x.clone(), s)?;
        if truth(ev, keep, s, || {
            "while evaluating the return value of the filtering function passed to builtins.filter"
                .to_string()
        })? {
            out.push(x.clone());
        }
    }
    if out.len() == l.len() {
        return Ok(Value::List(l));
    }
    Ok(Value::list(out))
}

fn gen_list(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let n = ev
        .force_int(a[1].clone(), s)
        .context(None, || second_arg("genList"))?;
    if n < 0 {
        return fail(format!("cannot create list of size {n}"), s);
    }
    let f = ev
        .force_function(a[0].clone(), s)
        .context(None, || first_arg("genList"))?;
    let mut out: Vec<Value> = Vec::new();
    if usize::try_from(n)
        .ok()
        .and_then(|n| out.try_reserve_exact(n).ok())
        .is_none()
    {
        return fail(format!("cannot create list of size {n}: out of memory"), s);
    }
    let mut i = 0;
    while i < n {
        ev.check_interrupt(s)?;
        let end = n.min(i.saturating_add(INTERRUPT_CHUNK as i64));
        out.extend((i..end).map(|i| Value::Thunk(Thunk::apply(f.clone(), Value::Int(i)))));
        i = end;
    }
    Ok(Value::list(out))
}

/// `foldl' op nul list`: forces the accumulator at every step (not the elements).
fn foldl(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let f = ev
        .force_function(a[0].clone(), s)
        .context(None, || first_arg("foldlStrict"))?;
    let l = ev.force_list(a[2].clone(), s).context(None, || {
        "while evaluating the third argument passed to builtins.foldlStrict".into()
    })?;
    let mut acc = a[1].clone();
    for x in l.iter() {
        ev.check_interrupt(s)?;
        // `call2` applies a curried lambda without building the intermediate closure.
        let r = ev.call2(&f, acc, x.clone(), s)?;
        acc = ev.force(r)?;
    }
    ev.force(acc)
}

fn concat_lists(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let l = ev
        .force_list(a[0].clone(), s)
        .context(None, || first_arg("concatLists"))?;
    let mut lists = Vec::with_capacity(l.len());
    let mut total = 0;
    for x in l.iter() {
        ev.check_interrupt(s)?;
        let inner = ev.force_list(x.clone(), s).context(None, || {
            "while evaluating a value of the list passed to builtins.concatLists".to_string()
        })?;
        total += inner.len();
        lists.push(inner);
    }
    concat(lists, total)
}

/// Concatenates forced lists, reusing the only non-empty one when there is just one.
fn concat(lists: Vec<Rc<Vec<Value>>>, total: usize) -> EvalResult<Value> {
    if let Some(only) = lists.iter().find(|l| l.len() == total) {
        return Ok(Value::List(only.clone()));
    }
    let mut out = Vec::with_capacity(total);
    for l in &lists {
        out.extend(l.iter().cloned());
    }
    Ok(Value::list(out))
}

fn concat_map(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let f = ev
        .force_function(a[0].clone(), s)
        .context(None, || first_arg("concatMap"))?;
    let l = ev
        .force_list(a[1].clone(), s)
        .context(None, || second_arg("concatMap"))?;
    let mut lists = Vec::with_capacity(l.len());
    let mut total = 0;
    for x in l.iter() {
        ev.check_interrupt(s)?;
        let r = ev.call_forced(f.clone(), x.clone(), s)?;
        let inner = ev
            .force_list(r, s)
            .context(None, || return_value("concatMap"))?;
        total += inner.len();
        lists.push(inner);
    }
    concat(lists, total)
}

fn elem(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let l = ev
        .force_list(a[1].clone(), s)
        .context(None, || second_arg("elem"))?;
    for x in l.iter() {
        ev.check_interrupt(s)?;
        if ev.cells_equal(&a[0], x, s)? {
            return Ok(Value::bool(true));
        }
    }
    Ok(Value::bool(false))
}

/// `any` (stops at the first `true`) and `all` (stops at the first `false`).
fn any_or_all(ev: &mut Evaluator, a: Args, s: Option<Span>, any: bool) -> EvalResult<Value> {
    let name = if any { "any" } else { "all" };
    let f = ev
        .force_function(a[0].clone(), s)
        .context(None, || first_arg(name))?;
    let l = ev
        .force_list(a[1].clone(), s)
        .context(None, || second_arg(name))?;
    for x in l.iter() {
        ev.check_interrupt(s)?;
        let r = ev.call_forced(f.clone(), x.clone(), s)?;
        if truth(ev, r, s, || return_value(name))? == any {
            return Ok(Value::bool(any));
        }
    }
    Ok(Value::bool(!any))
}

fn partition(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let f = ev
        .force_function(a[0].clone(), s)
        .context(None, || first_arg("partition"))?;
    let l = ev
        .force_list(a[1].clone(), s)
        .context(None, || second_arg("partition"))?;
    let mut right = Vec::new();
    let mut wrong = Vec::new();
    for x in l.iter() {
        ev.check_interrupt(s)?;
        let x = ev.force(x.clone())?;
        let r = ev.call_forced(f.clone(), x.clone(), s)?;
        if truth(ev, r, s, || {
            "while evaluating the return value of the partition function passed to builtins.partition".to_string()
        })? {
            right.push(x);
        } else {
            wrong.push(x);
        }
    }
    Ok(super::make_attrs([
        (sym::right(), Value::list(right)),
        (sym::wrong(), Value::list(wrong)),
    ]))
}

fn group_by(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let f = ev
        .force_function(a[0].clone(), s)
        .context(None, || first_arg("groupBy"))?;
    let l = ev
        .force_list(a[1].clone(), s)
        .context(None, || second_arg("groupBy"))?;
    let mut groups: FxHashMap<Symbol, Vec<Value>> = FxHashMap::default();
    for x in l.iter() {
        ev.check_interrupt(s)?;
        let k = ev.call_forced(f.clone(), x.clone(), s)?;
        let k = ev
            .force_string(k, s)
            .context(None, || return_value("groupBy"))?;
        groups
            .entry(Symbol::intern_bytes(k.as_bytes()))
            .or_default()
            .push(x.clone());
    }
    Ok(super::make_attrs(
        groups.into_iter().map(|(k, v)| (k, Value::list(v))),
    ))
}

/// `sort comparator list`: stable (see `sort.rs`); the comparator says whether its first
/// argument comes strictly before its second. Every element is forced first, as Nix does.
fn sort(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let l = ev
        .force_list(a[1].clone(), s)
        .context(None, || second_arg("sort"))?;
    if l.is_empty() {
        return Ok(Value::List(l));
    }
    let f = ev
        .force_function(a[0].clone(), s)
        .context(None, || first_arg("sort"))?;
    let mut items = Vec::with_capacity(l.len());
    for x in l.iter() {
        ev.check_interrupt(s)?;
        items.push(ev.force(x.clone())?);
    }
    // `sort lessThan` (and `sort builtins.lessThan`) compares directly.
    if matches!(&f, Value::PrimOp(p) if p.op.name == "lessThan" && p.args.is_empty()) {
        stable_sort(
            ev,
            &mut items,
            Value::Null,
            &mut |ev: &mut Evaluator, x: &Value, y: &Value| -> EvalResult<bool> {
                ev.check_interrupt(s)?;
                Ok(ev.compare(x.clone(), y.clone(), s)? == Ordering::Less)
            },
        )?;
    } else {
        // (Every call checks for an interrupt itself.)
        stable_sort(
            ev,
            &mut items,
            Value::Null,
            &mut |ev: &mut Evaluator, x: &Value, y: &Value| {
                let r = ev.call2(&f, x.clone(), y.clone(), s)?;
                truth(ev, r, s, || {
                    "while evaluating the return value of the sorting function passed to builtins.sort"
                        .to_string()
                })
            },
        )?;
    }
    Ok(Value::list(items))
}

#[cfg(test)]
mod tests {

    use crate::testing::{err, ok};

    #[test]
    fn length_head_tail_elem_at() {
        ok("builtins.length [ 1 2 3 ]", "3");
        ok("builtins.head [ 1 (throw \"no\") ]", "1");
        ok("builtins.length (builtins.tail [ (throw \"no\") 2 ])", "1");
        ok("builtins.elemAt [ 1 2 3 ] 1", "2");
        err(
            "builtins.length 1",
            "expected a list but found an integer: 1",
        );
        err(
            "builtins.head [ ]",
            "'builtins.head' called on an empty list",
        );
        err(
            "builtins.tail [ ]",
            "'builtins.tail' called on an empty list",
        );
        err(
            "builtins.elemAt [ ] (-1)",
            "'builtins.elemAt' called with index -1 on a list of size 0",
        );
        err(
            "builtins.elemAt [ \"foo\" ] 3",
            "'builtins.elemAt' called with index 3 on a list of size 1",
        );
        err(
            "builtins.elemAt \"foo\" (-1)",
            "expected a list but found a string: \"foo\"",
        );
    }

    #[test]
    fn map_is_lazy() {
        ok("map (x: x * 2) [ 1 2 3 ]", "[ 2 4 6 ]");
        ok("builtins.length (map (x: throw \"no\") [ 1 2 ])", "2");
        ok("map 1 [ ]", "[ ]");
        err(
            "map 1 \"foo\"",
            "expected a list but found a string: \"foo\"",
        );
        err("map 1 [ 1 ]", "expected a function but found an integer: 1");
    }

    #[test]
    fn filter_works() {
        ok("builtins.filter (x: x > 1) [ 1 2 3 ]", "[ 2 3 ]");
        ok(
            "builtins.length (builtins.filter (x: true) [ (throw \"no\") ])",
            "1",
        );
        ok("builtins.filter 1 [ ]", "[ ]");
        err(
            "builtins.filter 1 \"foo\"",
            "expected a list but found a string: \"foo\"",
        );
        err(
            "builtins.filter 1 [ \"foo\" ]",
            "expected a function but found an integer: 1",
        );
        err(
            "builtins.filter (_: 5) [ \"foo\" ]",
            "expected a Boolean but found an integer: 5",
        );
    }

    #[test]
    fn gen_list_works() {
        ok("builtins.genList (x: x * x) 4", "[ 0 1 4 9 ]");
        ok(
            "builtins.length (builtins.genList (x: throw \"no\") 3)",
            "3",
        );
        err(
            "builtins.genList false (-3)",
            "cannot create list of size -3",
        );
        err(
            "builtins.genList 1 \"foo\"",
            "expected an integer but found a string: \"foo\"",
        );
        err(
            "builtins.genList 1 2",
            "expected a function but found an integer: 1",
        );
        err(
            "builtins.genList (x: x + \"foo\") 2",
            "cannot add a string to an integer",
        );
    }

    #[test]
    fn foldl_strict() {
        ok("builtins.foldl' (a: b: a + b) 0 [ 1 2 3 ]", "6");
        ok("builtins.foldl' (a: b: a) 0 [ (throw \"no\") ]", "0");
        ok("builtins.foldl' (a: b: b) 0 [ ]", "0");
        err("builtins.foldl' (a: b: a) (throw \"acc\") [ ]", "acc");
        err(
            "builtins.foldl' 1 \"foo\" true",
            "expected a function but found an integer: 1",
        );
        err(
            "builtins.foldl' (_: 1) \"foo\" true",
            "expected a list but found a Boolean: true",
        );
        err(
            "builtins.foldl' (_: 1) \"foo\" [ true ]",
            "attempt to call something which is not a function but an integer: 1",
        );
        err(
            "builtins.foldl' (a: b: a && b) \"foo\" [ true ]",
            "expected a Boolean but found a string: \"foo\"",
        );
    }

    #[test]
    fn foldl_forces_accumulator_shallowly() {
        ok(
            "(builtins.foldl' (a: b: { x = throw \"lazy\"; y = b; }) 0 [ 1 ]).y",
            "1",
        );
        err("builtins.foldl' (a: b: throw \"step\") 0 [ 1 ]", "step");
    }

    #[test]
    fn concat_lists_and_map() {
        ok("builtins.concatLists [ [ 1 ] [ ] [ 2 3 ] ]", "[ 1 2 3 ]");
        ok("builtins.concatLists [ ]", "[ ]");
        err(
            "builtins.concatLists [ 1 ]",
            "expected a list but found an integer: 1",
        );
        ok("builtins.concatMap (x: [ x x ]) [ 1 2 ]", "[ 1 1 2 2 ]");
        ok(
            "builtins.length (builtins.concatMap (x: [ x ]) [ (throw \"no\") ])",
            "1",
        );
        err(
            "builtins.concatMap 1 \"foo\"",
            "expected a function but found an integer: 1",
        );
        err(
            "builtins.concatMap (x: 1) \"foo\"",
            "expected a list but found a string: \"foo\"",
        );
        err(
            "builtins.concatMap (x: 1) [ \"foo\" ]",
            "expected a list but found an integer: 1",
        );
    }

    #[test]
    fn elem_works() {
        ok("builtins.elem 2 [ 1 2 3 ]", "true");
        ok("builtins.elem 4 [ 1 2 3 ]", "false");
        ok("builtins.elem 1 [ 1 (throw \"no\") ]", "true");
        err(
            "builtins.elem 1 \"foo\"",
            "expected a list but found a string: \"foo\"",
        );
    }

    #[test]
    fn any_all() {
        ok("builtins.any (x: x == 1) [ ]", "false");
        ok("builtins.all (x: x == 1) [ ]", "true");
        ok("builtins.any (x: x == 1) [ 2 1 (throw \"no\") ]", "true");
        ok("builtins.all (x: x == 1) [ 1 2 (throw \"no\") ]", "false");
        err(
            "builtins.all 1 \"foo\"",
            "expected a function but found an integer: 1",
        );
        err(
            "builtins.any (_: 1) \"foo\"",
            "expected a list but found a string: \"foo\"",
        );
        err(
            "builtins.all (_: 1) [ \"foo\" ]",
            "expected a Boolean but found an integer: 1",
        );
    }

    #[test]
    fn partition_works() {
        ok(
            "builtins.partition (x: x > 1) [ 1 2 3 ]",
            "{ right = [ 2 3 ]; wrong = [ 1 ]; }",
        );
        err(
            "builtins.partition 1 \"foo\"",
            "expected a function but found an integer: 1",
        );
        err(
            "builtins.partition (_: 1) \"foo\"",
            "expected a list but found a string: \"foo\"",
        );
        err(
            "builtins.partition (_: 1) [ \"foo\" ]",
            "expected a Boolean but found an integer: 1",
        );
        err("builtins.partition (_: true) [ (throw \"x\") ]", "x");
    }

    #[test]
    fn group_by_works() {
        ok(
            "builtins.groupBy (x: if x > 2 then \"big\" else \"small\") [ 1 3 2 4 ]",
            "{ big = [ 3 4 ]; small = [ 1 2 ]; }",
        );
        ok("builtins.groupBy (x: \"a\") [ ]", "{ }");
        ok(
            "builtins.length (builtins.groupBy (x: \"a\") [ (throw \"no\") ]).a",
            "1",
        );
        err(
            "builtins.groupBy 1 \"foo\"",
            "expected a function but found an integer: 1",
        );
        err(
            "builtins.groupBy (_: 1) \"foo\"",
            "expected a list but found a string: \"foo\"",
        );
        err(
            "builtins.groupBy (x: x) [ \"foo\" \"bar\" 1 ]",
            "expected a string but found an integer: 1",
        );
    }

    #[test]
    fn sort_works() {
        ok("builtins.sort builtins.lessThan [ 3 1 2 ]", "[ 1 2 3 ]");
        ok("builtins.sort (a: b: a > b) [ 3 1 2 ]", "[ 3 2 1 ]");
        ok("builtins.sort 1 [ ]", "[ ]");
        ok("builtins.sort (a: b: throw \"no\") [ 1 ]", "[ 1 ]");
        // Stability: equal keys keep their order.
        ok(
            "map (x: x.v) (builtins.sort (a: b: a.k < b.k) (builtins.genList (i: { k = builtins.div i 10; v = 39 - i; }) 40))",
            &format!(
                "[ {} ]",
                (0..40)
                    .map(|i: i32| (39 - i).to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        );
        // Stability across many merge levels, and already sorted input.
        ok(
            "let l = builtins.sort (a: b: a.k < b.k) (builtins.genList (i: { k = builtins.bitAnd (i * 7919) 3; v = i; }) 1000); in builtins.all (x: x) (builtins.genList (i: let a = builtins.elemAt l i; b = builtins.elemAt l (i + 1); in a.k < b.k || (a.k == b.k && a.v < b.v)) 999)",
            "true",
        );
        ok(
            "builtins.sort (a: b: a < b) (builtins.genList (i: i) 20) == builtins.genList (i: i) 20",
            "true",
        );
        ok(
            "builtins.sort builtins.lessThan [ \"b\" \"a\" \"c\" ]",
            "[ \"a\" \"b\" \"c\" ]",
        );
        ok("builtins.sort (x: y: y < x) [ 1 3 2 ]", "[ 3 2 1 ]");
        ok(
            "builtins.sort ({ a, ... }: y: a < y.a) [ { a = 1; b = 1; } { a = 0; b = 0; } ]",
            "[ { a = 0; b = 0; } { a = 1; b = 1; } ]",
        );
        // A bigger reverse-sorted input exercises the merging.
        ok(
            "let l = builtins.sort (a: b: a < b) (builtins.genList (i: 1000 - i) 1000); in [ (builtins.head l) (builtins.elemAt l 999) (builtins.length l) ]",
            "[ 1 1000 1000 ]",
        );
        err(
            "builtins.sort 1 \"foo\"",
            "expected a list but found a string: \"foo\"",
        );
        err(
            "builtins.sort 1 [ \"foo\" ]",
            "expected a function but found an integer: 1",
        );
        err(
            "builtins.sort (_: 1) [ \"foo\" \"bar\" ]",
            "attempt to call something which is not a function but an integer: 1",
        );
        err(
            "builtins.sort (_: _: 1) [ \"foo\" \"bar\" ]",
            "expected a Boolean but found an integer: 1",
        );
        err(
            "builtins.sort (a: b: a <= b) [ \"foo\" { } ]",
            "cannot compare a string with a set; values are \"foo\" and { }",
        );
        err(
            "builtins.sort (a: b: a <= b) [ { } { } ]",
            "cannot compare a set with a set; values of that type are incomparable (values are { } and { })",
        );
        err("builtins.sort (a: b: true) [ (throw \"x\") ]", "x");
    }
}
