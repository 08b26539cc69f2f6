//! Attribute set builtins.

use super::control::primop;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::eval::{sym, Evaluator};
use crate::source::Span;
use crate::symbol::Symbol;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("attrNames", 1, |ev, a, s| {
        let set = ev.force_attrs(a[0].clone(), s)?;
        Ok(Value::list(
            set.iter().map(|e| Value::string(e.name.as_str())).collect(),
        ))
    }),
    primop!("attrValues", 1, |ev, a, s| {
        let set = ev.force_attrs(a[0].clone(), s)?;
        Ok(Value::list(set.iter().map(|e| e.value.clone()).collect()))
    }),
    primop!("getAttr", 2, |ev, a, s| {
        let name = attr_name(ev, &a[0], s)?;
        let set = ev.force_attrs(a[1].clone(), s)?;
        match set.get(name) {
            Some(v) => ev.force(v.clone()),
            None => Err(ev.missing_attr(name, &set, s)),
        }
    }),
    primop!("hasAttr", 2, |ev, a, s| {
        let name = attr_name(ev, &a[0], s)?;
        let set = ev.force_attrs(a[1].clone(), s)?;
        Ok(Value::Bool(set.contains(name)))
    }),
    primop!("removeAttrs", 2, remove_attrs),
    primop!("listToAttrs", 1, list_to_attrs),
    primop!("mapAttrs", 2, map_attrs),
    primop!("intersectAttrs", 2, |ev, a, s| {
        let x = ev.force_attrs(a[0].clone(), s)?;
        let y = ev.force_attrs(a[1].clone(), s)?;
        Ok(Value::attrs(Attrs::from_sorted(
            y.iter().filter(|e| x.contains(e.name)).cloned().collect(),
        )))
    }),
];

fn attr_name(ev: &mut Evaluator, v: &Value, s: Option<Span>) -> EvalResult<Symbol> {
    let name = ev.force_string(v.clone(), s)?;
    Ok(Symbol::intern_bytes(name.as_bytes()))
}

fn remove_attrs(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let set = ev.force_attrs(a[0].clone(), s)?;
    let names = ev.force_list(a[1].clone(), s)?;
    let mut remove = Vec::new();
    for n in names.iter() {
        remove.push(attr_name(ev, n, s)?);
    }
    Ok(Value::attrs(Attrs::from_sorted(
        set.iter()
            .filter(|e| !remove.contains(&e.name))
            .cloned()
            .collect(),
    )))
}

fn list_to_attrs(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let list = ev.force_list(a[0].clone(), s)?;
    let mut entries = Vec::with_capacity(list.len());
    for item in list.iter() {
        let item = ev.force_attrs(item.clone(), s)?;
        let name = item.get(sym::name()).cloned().ok_or_else(|| {
            EvalError::new(ErrorKind::Other("attribute 'name' missing".into()), s)
        })?;
        let name = attr_name(ev, &name, s)?;
        let entry = item.get_entry(sym::value());
        let Some(entry) = entry else {
            return Err(EvalError::new(
                ErrorKind::Other("attribute 'value' missing".into()),
                s,
            ));
        };
        entries.push(AttrEntry {
            name,
            value: entry.value.clone(),
            pos: entry.pos,
        });
    }
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

fn map_attrs(ev: &mut Evaluator, a: Vec<Value>, s: Option<Span>) -> EvalResult<Value> {
    let set = ev.force_attrs(a[1].clone(), s)?;
    let f = a[0].clone();
    let entries = set
        .iter()
        .map(|e| {
            let partial = Value::Thunk(Thunk::apply(f.clone(), Value::string(e.name.as_str())));
            AttrEntry {
                name: e.name,
                value: Value::Thunk(Thunk::apply(partial, e.value.clone())),
                pos: e.pos,
            }
        })
        .collect();
    Ok(Value::attrs(Attrs::from_sorted(entries)))
}
