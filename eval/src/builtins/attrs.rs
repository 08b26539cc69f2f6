//! Attribute set builtins.

use super::control::primop;
use crate::error::{AddContext, ErrorKind, EvalError, EvalResult};
use crate::eval::{sym, Evaluator};
use crate::source::Span;
use crate::symbol::Symbol;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("attrNames", 1, |ev, a, s| {
        let set = ev.force_attrs(a[0].clone(), s)?;
        Ok(Value::list(
            set.iter().map(|e| Value::name_string(e.name)).collect(),
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
        Ok(Value::bool(set.contains(name)))
    }),
    primop!("removeAttrs", 2, remove_attrs),
    primop!("listToAttrs", 1, list_to_attrs),
    primop!("mapAttrs", 2, map_attrs),
    primop!("catAttrs", 2, cat_attrs),
    primop!("zipAttrsWith", 2, zip_attrs_with),
    primop!("unsafeGetAttrPos", 2, unsafe_get_attr_pos),
    primop!("intersectAttrs", 2, |ev, a, s| {
        let x = ev.force_attrs(a[0].clone(), s)?;
        let y = ev.force_attrs(a[1].clone(), s)?;
        // Walk the smaller set, keeping the entries of the second one.
        let entries: Vec<AttrEntry> = if x.len() < y.len() {
            x.iter()
                .filter_map(|e| y.get_entry(e.name).cloned())
                .collect()
        } else {
            y.iter().filter(|e| x.contains(e.name)).cloned().collect()
        };
        Ok(Value::attrs(Attrs::from_sorted(entries)))
    }),
];

fn attr_name(ev: &mut Evaluator, v: &Value, s: Option<Span>) -> EvalResult<Symbol> {
    let name = ev.force_string(v.clone(), s)?;
    Ok(Symbol::intern_bytes(name.as_bytes()))
}

fn remove_attrs(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let set = ev.force_attrs(a[0].clone(), s)?;
    let names = ev.force_list(a[1].clone(), s)?;
    let mut remove = Vec::with_capacity(names.len());
    for n in names.iter() {
        ev.check_interrupt(s)?;
        remove.push(attr_name(ev, n, s)?);
    }
    match set.without(&remove) {
        Some(rest) => Ok(Value::attrs(rest)),
        None => Ok(Value::Attrs(set)),
    }
}

fn list_to_attrs(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let list = ev.force_list(a[0].clone(), s)?;
    let mut entries = Vec::with_capacity(list.len());
    for item in list.iter() {
        ev.check_interrupt(s)?;
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

fn map_attrs(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let set = ev.force_attrs(a[1].clone(), s)?;
    let f = a[0].clone();
    let mut entries = Vec::with_capacity(set.len());
    for (i, e) in set.iter().enumerate() {
        if i % 4096 == 0 {
            ev.check_interrupt(s)?;
        }
        entries.push(AttrEntry {
            name: e.name,
            value: Value::Thunk(Thunk::apply2(
                f.clone(),
                Value::name_string(e.name),
                e.value.clone(),
            )),
            // The values are new, so the old definition sites would be wrong (as in Nix).
            pos: (None).into(),
        });
    }
    Ok(Value::attrs(Attrs::from_sorted(entries)))
}

/// `catAttrs name sets`: the values of attribute `name` in those sets that have it.
fn cat_attrs(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let name = attr_name(ev, &a[0], s).context(None, || {
        "while evaluating the first argument passed to builtins.catAttrs".to_string()
    })?;
    let list = ev.force_list(a[1].clone(), s).context(None, || {
        "while evaluating the second argument passed to builtins.catAttrs".to_string()
    })?;
    let mut out = Vec::new();
    for item in list.iter() {
        ev.check_interrupt(s)?;
        let set = ev.force_attrs(item.clone(), s).context(None, || {
            "while evaluating an element in the list passed as second argument to builtins.catAttrs"
                .to_string()
        })?;
        if let Some(v) = set.get(name) {
            out.push(v.clone());
        }
    }
    Ok(Value::list(out))
}

/// `zipAttrsWith f sets`: for every name in any of the sets, `f name [values...]` (lazily),
/// the values in list order.
fn zip_attrs_with(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let f = ev.force_function(a[0].clone(), s).context(None, || {
        "while evaluating the first argument passed to builtins.zipAttrsWith".to_string()
    })?;
    let list = ev.force_list(a[1].clone(), s).context(None, || {
        "while evaluating the second argument passed to builtins.zipAttrsWith".to_string()
    })?;
    // Every attribute of every set, in list order. A stable sort by name then puts each
    // name's values together in list order: the sets are sorted already, so the sort
    // merges runs, and no map of vectors is built and sorted at the end.
    let mut all: Vec<(Symbol, Value)> = Vec::new();
    for item in list.iter() {
        ev.check_interrupt(s)?;
        let set = ev.force_attrs(item.clone(), s).context(None, || {
            "while evaluating a value of the list passed as second argument to builtins.zipAttrsWith"
                .to_string()
        })?;
        all.extend(set.iter().map(|e| (e.name, e.value.clone())));
    }
    all.sort_by_key(|x| x.0);
    let mut entries = Vec::new();
    let mut all = all.into_iter().peekable();
    while let Some((name, first)) = all.next() {
        let mut values = vec![first];
        while let Some((_, v)) = all.next_if(|(n, _)| *n == name) {
            values.push(v);
        }
        entries.push(AttrEntry {
            name,
            value: Value::Thunk(Thunk::apply2(
                f.clone(),
                Value::name_string(name),
                Value::list(values),
            )),
            pos: (None).into(),
        });
    }
    Ok(Value::attrs(Attrs::from_sorted(entries)))
}

/// `unsafeGetAttrPos name set`: `{ file, line, column }` of the definition, or null.
fn unsafe_get_attr_pos(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let name = attr_name(ev, &a[0], s).context(None, || {
        "while evaluating the first argument passed to builtins.unsafeGetAttrPos".to_string()
    })?;
    let set = ev.force_attrs(a[1].clone(), s).context(None, || {
        "while evaluating the second argument passed to builtins.unsafeGetAttrPos".to_string()
    })?;
    match set.get_entry(name).and_then(|e| e.pos.get()) {
        Some(span) => Ok(super::pos_value(&ev.sources.location(span))),
        None => Ok(Value::Null),
    }
}

#[cfg(test)]
mod tests {

    fn eval(src: &str) -> Result<String, String> {
        crate::testing::eval_named_with("/test.nix", src, crate::eval::EvalConfig::default())
    }

    fn ok(src: &str, expected: &str) {
        assert_eq!(eval(src), Ok(expected.to_string()), "evaluating {src}");
    }

    fn err(src: &str, expected: &str) {
        assert_eq!(eval(src), Err(expected.to_string()), "evaluating {src}");
    }

    #[test]
    fn names_values_get_has() {
        ok("builtins.attrNames { b = 1; a = 2; }", "[ \"a\" \"b\" ]");
        ok("builtins.attrValues { b = 1; a = 2; }", "[ 2 1 ]");
        ok("builtins.getAttr \"a\" { a = 1; }", "1");
        ok("builtins.hasAttr \"a\" { a = throw \"no\"; }", "true");
        ok("builtins.hasAttr \"b\" { a = 1; }", "false");
        err(
            "builtins.attrNames 1",
            "expected a set but found an integer: 1",
        );
        err(
            "builtins.getAttr 1 { }",
            "expected a string but found an integer: 1",
        );
        err(
            "builtins.getAttr \"a\" 1",
            "expected a set but found an integer: 1",
        );
        err("builtins.getAttr \"b\" { a = 1; }", "attribute 'b' missing");
    }

    #[test]
    fn remove_and_intersect() {
        ok(
            "builtins.removeAttrs { a = 1; b = 2; c = 3; } [ \"a\" \"c\" \"z\" ]",
            "{ b = 2; }",
        );
        ok("builtins.removeAttrs { a = 1; } [ ]", "{ a = 1; }");
        ok(
            "builtins.removeAttrs { a = 1; b = 2; c = 3; } [ \"c\" \"a\" \"c\" ]",
            "{ b = 2; }",
        );
        ok("builtins.removeAttrs { a = 1; } [ \"b\" ]", "{ a = 1; }");
        err(
            "builtins.removeAttrs { a = 1; } [ 1 ]",
            "expected a string but found an integer: 1",
        );
        err(
            "builtins.removeAttrs 1 [ ]",
            "expected a set but found an integer: 1",
        );
        ok(
            "builtins.intersectAttrs { a = 1; b = 2; } { b = 3; c = 4; }",
            "{ b = 3; }",
        );
        ok(
            "builtins.intersectAttrs { b = 1; } { a = 0; b = 3; c = 4; }",
            "{ b = 3; }",
        );
        ok(
            "builtins.intersectAttrs { a = 0; b = 1; c = 2; d = 3; } { d = 4; }",
            "{ d = 4; }",
        );
        err(
            "builtins.intersectAttrs 1 { }",
            "expected a set but found an integer: 1",
        );
    }

    #[test]
    fn list_to_attrs() {
        ok(
            "builtins.listToAttrs [ { name = \"a\"; value = 1; } { name = \"a\"; value = 2; } { name = \"b\"; value = 3; } ]",
            "{ a = 1; b = 3; }",
        );
        ok(
            "builtins.attrNames (builtins.listToAttrs [ { name = \"a\"; value = throw \"v\"; } ])",
            "[ \"a\" ]",
        );
        err(
            "builtins.listToAttrs 1",
            "expected a list but found an integer: 1",
        );
        err(
            "builtins.listToAttrs [ 1 ]",
            "expected a set but found an integer: 1",
        );
        err("builtins.listToAttrs [ { } ]", "attribute 'name' missing");
        err(
            "builtins.listToAttrs [ { name = 1; } ]",
            "expected a string but found an integer: 1",
        );
        err(
            "builtins.listToAttrs [ { name = \"foo\"; } ]",
            "attribute 'value' missing",
        );
    }

    #[test]
    fn map_attrs_is_lazy() {
        ok(
            "builtins.mapAttrs (n: v: n + toString v) { a = 1; b = 2; }",
            "{ a = \"a1\"; b = \"b2\"; }",
        );
        ok("builtins.mapAttrs 1 { }", "{ }");
        ok(
            "builtins.attrNames (builtins.mapAttrs (n: v: throw \"no\") { a = 1; })",
            "[ \"a\" ]",
        );
        err(
            "builtins.mapAttrs [ ] [ ]",
            "expected a set but found a list: [ ]",
        );
        err(
            "builtins.mapAttrs \"\" { foo.bar = 1; }",
            "attempt to call something which is not a function but a string: \"\"",
        );
    }

    #[test]
    fn cat_attrs() {
        ok(
            "builtins.catAttrs \"a\" [ { a = 1; } { b = 0; } { a = 2; } ]",
            "[ 1 2 ]",
        );
        ok(
            "builtins.length (builtins.catAttrs \"a\" [ { a = throw \"no\"; } ])",
            "1",
        );
        err(
            "builtins.catAttrs [ ] { }",
            "expected a string but found a list: [ ]",
        );
        err(
            "builtins.catAttrs \"foo\" { }",
            "expected a list but found a set: { }",
        );
        err(
            "builtins.catAttrs \"foo\" [ { foo = 1; } 1 ]",
            "expected a set but found an integer: 1",
        );
    }

    #[test]
    fn zip_attrs_with() {
        ok(
            "builtins.zipAttrsWith (n: v: v) [ { a = 1; } { a = 2; b = 3; } ]",
            "{ a = [ 1 2 ]; b = [ 3 ]; }",
        );
        // Each name's values in list order, names from any of the sets, sets without the
        // name skipped.
        ok(
            "builtins.zipAttrsWith (n: v: v) [ { b = 1; c = 2; } { } { a = 3; c = 4; } { c = 5; z = 6; } ]",
            "{ a = [ 3 ]; b = [ 1 ]; c = [ 2 4 5 ]; z = [ 6 ]; }",
        );
        ok(
            "builtins.zipAttrsWith (n: v: n) [ { x = 1; } ]",
            "{ x = \"x\"; }",
        );
        ok(
            "builtins.attrNames (builtins.zipAttrsWith (n: v: throw \"no\") [ { a = 1; } ])",
            "[ \"a\" ]",
        );
        err(
            "builtins.zipAttrsWith [ ] [ 1 ]",
            "expected a function but found a list: [ ]",
        );
        err(
            "builtins.zipAttrsWith (_: 1) [ 1 ]",
            "expected a set but found an integer: 1",
        );
        err(
            "builtins.zipAttrsWith (_: 1) [ { foo = 1; } ]",
            "attempt to call something which is not a function but an integer: 1",
        );
        err(
            "builtins.zipAttrsWith (a: b: a + b) [ { foo = 1; } { foo = 2; } ]",
            "cannot coerce a list to a string: [ 1 2 ]",
        );
    }

    #[test]
    fn unsafe_get_attr_pos() {
        ok(
            "builtins.unsafeGetAttrPos \"b\" {\n  a = 1;\n   b = 2; }",
            "{ column = 4; file = \"/test.nix\"; line = 3; }",
        );
        ok("builtins.unsafeGetAttrPos \"abort\" builtins", "null");
        ok("builtins.unsafeGetAttrPos \"x\" { }", "null");
        err(
            "builtins.unsafeGetAttrPos 1 { }",
            "expected a string but found an integer: 1",
        );
        err(
            "builtins.unsafeGetAttrPos \"a\" 1",
            "expected a set but found an integer: 1",
        );
    }
}
