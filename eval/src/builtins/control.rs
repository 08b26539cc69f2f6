//! Control and type builtins: errors, `tryEval`, `seq`, type predicates, arithmetic.

use super::{fail, make_attrs};
use crate::error::{AddContext, ErrorKind, EvalError, EvalResult};
use crate::eval::{sym, CoerceMode, Evaluator};
use crate::ir::BinOp;
use crate::source::Span;
use crate::value::*;

macro_rules! primop {
    ($name:literal, $arity:literal, $f:expr) => {
        PrimOp {
            name: $name,
            arity: $arity,
            func: $f,
        }
    };
}
pub(super) use primop;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("throw", 1, throw),
    primop!("abort", 1, abort),
    primop!("seq", 2, seq),
    primop!("deepSeq", 2, deep_seq),
    primop!("tryEval", 1, try_eval),
    primop!("typeOf", 1, type_of),
    primop!("isNull", 1, |ev, a, _| Ok(Value::bool(matches!(
        ev.force(a[0].clone())?,
        Value::Null
    )))),
    primop!("isBool", 1, |ev, a, _| Ok(Value::bool(matches!(
        ev.force(a[0].clone())?,
        Value::Bool(_)
    )))),
    primop!("isInt", 1, |ev, a, _| Ok(Value::bool(matches!(
        ev.force(a[0].clone())?,
        Value::Int(_)
    )))),
    primop!("isFloat", 1, |ev, a, _| Ok(Value::bool(matches!(
        ev.force(a[0].clone())?,
        Value::Float(_)
    )))),
    primop!("isString", 1, |ev, a, _| Ok(Value::bool(matches!(
        ev.force(a[0].clone())?,
        Value::String(_)
    )))),
    primop!("isPath", 1, |ev, a, _| Ok(Value::bool(matches!(
        ev.force(a[0].clone())?,
        Value::Path(_)
    )))),
    primop!("isList", 1, |ev, a, _| Ok(Value::bool(matches!(
        ev.force(a[0].clone())?,
        Value::List(_)
    )))),
    primop!("isAttrs", 1, |ev, a, _| Ok(Value::bool(matches!(
        ev.force(a[0].clone())?,
        Value::Attrs(_)
    )))),
    primop!("isFunction", 1, |ev, a, _| {
        Ok(Value::bool(matches!(
            ev.force(a[0].clone())?,
            Value::Lambda(_) | Value::PrimOp(_)
        )))
    }),
    primop!("add", 2, |ev, a, s| arith(ev, BinOp::Add, a, s)),
    primop!("sub", 2, |ev, a, s| arith(ev, BinOp::Sub, a, s)),
    primop!("mul", 2, |ev, a, s| arith(ev, BinOp::Mul, a, s)),
    primop!("div", 2, |ev, a, s| arith(ev, BinOp::Div, a, s)),
    primop!("lessThan", 2, |ev, a, s| arith(ev, BinOp::Lt, a, s)),
    primop!("toString", 1, to_string),
    primop!("trace", 2, trace),
    primop!("traceVerbose", 2, |ev, a, _| ev.force(a[1].clone())),
    primop!("warn", 2, warn),
    primop!("addErrorContext", 2, add_error_context),
    primop!("functionArgs", 1, function_args),
    primop!("genericClosure", 1, generic_closure),
    primop!("break", 1, |ev, a, _| ev.force(a[0].clone())),
    primop!("getEnv", 1, |ev, a, s| {
        let name = ev.force_string(a[0].clone(), s)?;
        Ok(Value::string(
            std::env::var(&*name.to_str_lossy()).unwrap_or_default(),
        ))
    }),
    primop!("bitAnd", 2, |ev, a, s| Ok(Value::Int(
        ev.force_int(a[0].clone(), s)? & ev.force_int(a[1].clone(), s)?
    ))),
    primop!("bitOr", 2, |ev, a, s| Ok(Value::Int(
        ev.force_int(a[0].clone(), s)? | ev.force_int(a[1].clone(), s)?
    ))),
    primop!("bitXor", 2, |ev, a, s| Ok(Value::Int(
        ev.force_int(a[0].clone(), s)? ^ ev.force_int(a[1].clone(), s)?
    ))),
    primop!("ceil", 1, |ev, a, s| float_to_int(ev, a, s, f64::ceil)),
    primop!("floor", 1, |ev, a, s| float_to_int(ev, a, s, f64::floor)),
];

fn throw(ev: &mut Evaluator, a: Args, span: Option<Span>) -> EvalResult<Value> {
    let msg = ev.coerce_to_string(a[0].clone(), CoerceMode::ToString, span)?;
    Err(EvalError::new(
        ErrorKind::Throw(msg.to_str_lossy().into_owned()),
        span,
    ))
}

fn abort(ev: &mut Evaluator, a: Args, span: Option<Span>) -> EvalResult<Value> {
    let msg = ev.coerce_to_string(a[0].clone(), CoerceMode::ToString, span)?;
    Err(EvalError::new(
        ErrorKind::Abort(msg.to_str_lossy().into_owned()),
        span,
    ))
}

fn seq(ev: &mut Evaluator, a: Args, _: Option<Span>) -> EvalResult<Value> {
    ev.force(a[0].clone())?;
    ev.force(a[1].clone())
}

fn deep_seq(ev: &mut Evaluator, a: Args, _: Option<Span>) -> EvalResult<Value> {
    ev.force_deep(a[0].clone())?;
    ev.force(a[1].clone())
}

fn try_eval(ev: &mut Evaluator, a: Args, _: Option<Span>) -> EvalResult<Value> {
    let (success, value) = match ev.force(a[0].clone()) {
        Ok(v) => (true, v),
        Err(e) if e.kind.is_catchable() => (false, Value::bool(false)),
        Err(e) => return Err(e),
    };
    Ok(make_attrs([
        (sym::success(), Value::bool(success)),
        (sym::value(), value),
    ]))
}

fn type_of(ev: &mut Evaluator, a: Args, _: Option<Span>) -> EvalResult<Value> {
    Ok(Value::string(ev.force(a[0].clone())?.type_of()))
}

fn arith(ev: &mut Evaluator, op: BinOp, a: Args, span: Option<Span>) -> EvalResult<Value> {
    let l = ev.force(a[0].clone())?;
    let r = ev.force(a[1].clone())?;
    if op != BinOp::Lt {
        let type_error = |ev: &Evaluator, v: &Value, expected| {
            Err(EvalError::new(
                ErrorKind::TypeError {
                    expected,
                    found: ev.describe(v),
                },
                span,
            ))
        };
        // Like the reference, `div` looks at its divisor first (as a float).
        if op == BinOp::Div {
            match r {
                Value::Int(0) => return Err(EvalError::new(ErrorKind::DivisionByZero, span)),
                Value::Float(f) if f.get() == 0.0 => {
                    return Err(EvalError::new(ErrorKind::DivisionByZero, span))
                }
                Value::Int(_) | Value::Float(_) => {}
                _ => return type_error(ev, &r, "a float"),
            }
        }
        let any_float = matches!(l, Value::Float(_)) || matches!(r, Value::Float(_));
        for v in [&l, &r] {
            if !matches!(v, Value::Int(_) | Value::Float(_)) {
                return Err(EvalError::new(
                    ErrorKind::TypeError {
                        expected: if any_float { "a float" } else { "an integer" },
                        found: ev.describe(v),
                    },
                    span,
                ));
            }
        }
    }
    ev.binop_values(op, l, r, span)
}

fn float_to_int(
    ev: &mut Evaluator,
    a: Args,
    span: Option<Span>,
    f: fn(f64) -> f64,
) -> EvalResult<Value> {
    match ev.force(a[0].clone())? {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(x) => Ok(Value::Int(f(x.get()) as i64)),
        other => Err(EvalError::new(
            ErrorKind::TypeError {
                expected: "a float",
                found: ev.describe(&other),
            },
            span,
        )),
    }
}

fn to_string(ev: &mut Evaluator, a: Args, span: Option<Span>) -> EvalResult<Value> {
    let s = ev.coerce_to_string(a[0].clone(), CoerceMode::ToString, span)?;
    Ok(Value::String(s))
}

fn trace(ev: &mut Evaluator, a: Args, _: Option<Span>) -> EvalResult<Value> {
    let v = ev.force(a[0].clone())?;
    let shown = match &v {
        Value::String(s) => s.to_str_lossy().into_owned(),
        other => crate::value::print::print_value_traced(other, &ev.sources),
    };
    (ev.diagnostics)(&format!("trace: {shown}"));
    ev.force(a[1].clone())
}

fn warn(ev: &mut Evaluator, a: Args, span: Option<Span>) -> EvalResult<Value> {
    let msg = ev.force_string(a[0].clone(), span)?;
    (ev.diagnostics)(&crate::diagnostic::prefixed_message(
        "evaluation warning:",
        &msg.to_str_lossy(),
    ));
    if ev.config.abort_on_warn {
        return fail(
            "aborting to reveal stack trace of warning, as abort-on-warn is set",
            span,
        );
    }
    ev.force(a[1].clone())
}

fn add_error_context(ev: &mut Evaluator, a: Args, span: Option<Span>) -> EvalResult<Value> {
    let result = ev.force(a[1].clone());
    match result {
        Ok(v) => Ok(v),
        Err(e) => {
            let msg = match ev.coerce_to_string(a[0].clone(), CoerceMode::ToString, span) {
                Ok(m) => m.to_str_lossy().into_owned(),
                Err(_) => return Err(e),
            };
            Err(e).context(span, || msg)
        }
    }
}

fn function_args(ev: &mut Evaluator, a: Args, span: Option<Span>) -> EvalResult<Value> {
    match ev.force(a[0].clone())? {
        Value::Lambda(c) => match &c.lambda.param {
            crate::ir::Param::Ident(_) => Ok(Value::attrs(Attrs::new())),
            crate::ir::Param::Pattern(p) => Ok(Value::attrs(Attrs::from_unsorted(
                p.formals
                    .iter()
                    .map(|f| AttrEntry {
                        name: f.name,
                        value: Value::bool(f.default.is_some()),
                        pos: (Some(f.span)).into(),
                    })
                    .collect(),
            ))),
        },
        Value::PrimOp(_) => Ok(Value::attrs(Attrs::new())),
        _ => fail("'functionArgs' requires a function", span),
    }
}

/// `genericClosure { startSet; operator; }`: a worklist closure keyed by each element's `key`.
/// Like Nix, seen keys live in an ordered set compared with `<`, so keys that cannot be
/// compared with each other (a string and an integer, two sets) are an error.
fn generic_closure(ev: &mut Evaluator, a: Args, span: Option<Span>) -> EvalResult<Value> {
    let args = ev.force_attrs(a[0].clone(), span).context(None, || {
        "while evaluating the first argument passed to builtins.genericClosure".to_string()
    })?;
    let Some(start) = args.get(sym::start_set()).cloned() else {
        return Err(ev.missing_attr(sym::start_set(), &args, span));
    };
    let start = ev.force_list(start, span).context(None, || {
        "while evaluating the 'startSet' attribute passed as argument to builtins.genericClosure"
            .to_string()
    })?;
    if start.is_empty() {
        return Ok(Value::List(start));
    }
    let Some(op) = args.get(sym::operator()).cloned() else {
        return Err(ev.missing_attr(sym::operator(), &args, span));
    };
    let op = ev.force_function(op, span).context(None, || {
        "while evaluating the 'operator' attribute passed as argument to builtins.genericClosure"
            .to_string()
    })?;
    let mut work: std::collections::VecDeque<Value> = start.iter().cloned().collect();
    let mut seen = KeySet::default();
    let mut result = Vec::new();
    while let Some(item) = work.pop_front() {
        ev.check_interrupt(span)?;
        let item = ev.force(item)?;
        let attrs = ev.force_attrs(item.clone(), span).context(None, || {
            "while evaluating one of the elements generated by (or initially passed to) builtins.genericClosure".to_string()
        })?;
        let Some(key) = attrs.get(sym::key()).cloned() else {
            let shown = ev.preview(&item);
            return Err(ev.missing_attr(sym::key(), &attrs, span))
                .context(None, || format!("in genericClosure element {shown}"));
        };
        let key = ev.force(key)?;
        if !seen.insert(ev, &item, key, span)? {
            continue;
        }
        result.push(item.clone());
        let next = ev.call_forced(op.clone(), item, span)?;
        let next = ev.force_list(next, span).context(None, || {
            "while evaluating the return value of the `operator` passed to builtins.genericClosure"
                .to_string()
        })?;
        work.extend(next.iter().cloned());
    }
    Ok(Value::list(result))
}

/// A number as a set key, ordered like Nix's `<` (integers exactly, mixed as floats).
#[derive(Clone, Copy)]
enum NumKey {
    Int(i64),
    Float(f64),
}

impl NumKey {
    fn cmp_key(&self, other: &NumKey) -> std::cmp::Ordering {
        match (self, other) {
            (NumKey::Int(a), NumKey::Int(b)) => a.cmp(b),
            _ => self
                .as_f64()
                .partial_cmp(&other.as_f64())
                .unwrap_or(std::cmp::Ordering::Equal),
        }
    }

    fn as_f64(&self) -> f64 {
        match *self {
            NumKey::Int(i) => i as f64,
            NumKey::Float(f) => f,
        }
    }
}

impl PartialEq for NumKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_key(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for NumKey {}
impl PartialOrd for NumKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for NumKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.cmp_key(other)
    }
}

/// The keys `genericClosure` has seen. Keys of one comparable kind (numbers, strings, paths)
/// get a fast set; lists (and the first key of an incomparable kind) a sorted vector searched
/// with the evaluator's comparison. A key of another kind than those already seen is compared
/// with one of them, which fails the way Nix does.
#[derive(Default)]
struct KeySet {
    kind: KeyKind,
    /// An element already in the set and its key, for the error on a mismatched kind.
    first: Option<(Value, Value)>,
}

#[derive(Default)]
enum KeyKind {
    #[default]
    Empty,
    Num(std::collections::BTreeSet<NumKey>),
    Str(rustc_hash::FxHashSet<Box<[u8]>>),
    Path(rustc_hash::FxHashSet<Box<[u8]>>),
    Sorted(Vec<Value>),
}

fn kind_tag(v: &Value) -> u8 {
    match v {
        Value::Int(_) | Value::Float(_) => 1,
        Value::String(_) => 2,
        Value::Path(_) => 3,
        _ => 4,
    }
}

impl KeySet {
    /// Adds `key` (of element `item`); whether it was new.
    fn insert(
        &mut self,
        ev: &mut Evaluator,
        item: &Value,
        key: Value,
        span: Option<Span>,
    ) -> EvalResult<bool> {
        use std::os::unix::ffi::OsStrExt;
        let current = match &self.kind {
            KeyKind::Empty => 0,
            KeyKind::Num(_) => 1,
            KeyKind::Str(_) => 2,
            KeyKind::Path(_) => 3,
            KeyKind::Sorted(_) => 4,
        };
        let tag = kind_tag(&key);
        if current != 0 && (current != tag || tag == 4) {
            if let (KeyKind::Sorted(keys), 4) = (&self.kind, tag) {
                // Binary search with the evaluator's ordering.
                let (mut lo, mut hi) = (0, keys.len());
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    match compare_keys(ev, item, &key, None, &keys[mid], span)? {
                        std::cmp::Ordering::Less => hi = mid,
                        std::cmp::Ordering::Greater => lo = mid + 1,
                        std::cmp::Ordering::Equal => return Ok(false),
                    }
                }
                if let KeyKind::Sorted(keys) = &mut self.kind {
                    keys.insert(lo, key);
                }
                return Ok(true);
            }
            // Different kinds: comparing them fails; report it like Nix.
            if let Some((other_item, other_key)) = self.first.clone() {
                compare_keys(ev, item, &key, Some(&other_item), &other_key, span)?;
            }
            // Not reached for distinct kinds; treat as new to stay total.
            return Ok(true);
        }
        if self.first.is_none() {
            self.first = Some((item.clone(), key.clone()));
            self.kind = match tag {
                1 => KeyKind::Num(Default::default()),
                2 => KeyKind::Str(Default::default()),
                3 => KeyKind::Path(Default::default()),
                _ => KeyKind::Sorted(Vec::new()),
            };
        }
        Ok(match (&mut self.kind, &key) {
            (KeyKind::Num(set), Value::Int(i)) => set.insert(NumKey::Int(*i)),
            (KeyKind::Num(set), Value::Float(f)) => set.insert(NumKey::Float(f.get())),
            (KeyKind::Str(set), Value::String(s)) => set.insert(s.as_bytes().into()),
            (KeyKind::Path(set), Value::Path(p)) => set.insert(p.as_os_str().as_bytes().into()),
            (KeyKind::Sorted(keys), _) => {
                keys.push(key);
                true
            }
            _ => unreachable!("key kind checked above"),
        })
    }
}

/// `key < other` as Nix's ordered set asks it, with the trace Nix gives when it fails.
fn compare_keys(
    ev: &mut Evaluator,
    item: &Value,
    key: &Value,
    other_item: Option<&Value>,
    other_key: &Value,
    span: Option<Span>,
) -> EvalResult<std::cmp::Ordering> {
    let r = ev.compare(key.clone(), other_key.clone(), span);
    if r.is_err() {
        let shown = ev.preview(item);
        let other_shown = other_item.map(|o| ev.preview(o)).unwrap_or_default();
        let other_key_shown = ev.preview(other_key);
        return r
            .context(None, || {
                if other_shown.is_empty() {
                    format!("with element {{ key = {other_key_shown}; }}")
                } else {
                    format!("with element {other_shown}")
                }
            })
            .context(None, || format!("while comparing element {shown}"));
    }
    r
}

#[cfg(test)]
mod tests {

    use crate::testing::{err, ok};

    #[test]
    fn errors_and_try_eval() {
        err("throw \"boom\"", "boom");
        err(
            "abort \"stop\"",
            "evaluation aborted with the following error message: 'stop'",
        );
        ok(
            "builtins.tryEval (throw \"x\")",
            "{ success = false; value = false; }",
        );
        ok(
            "builtins.tryEval (assert false; 1)",
            "{ success = false; value = false; }",
        );
        ok("builtins.tryEval 7", "{ success = true; value = 7; }");
        // `abort` is not catchable.
        err(
            "builtins.tryEval (abort \"no\")",
            "evaluation aborted with the following error message: 'no'",
        );
        ok(
            "builtins.tryEval (builtins.addErrorContext \"ctx\" (throw \"inner\"))",
            "{ success = false; value = false; }",
        );
        ok("builtins.addErrorContext \"ctx\" 5", "5");
    }

    #[test]
    fn seq_and_deep_seq() {
        ok("builtins.seq 1 2", "2");
        err("builtins.seq (throw \"first\") 2", "first");
        ok("builtins.seq [ (throw \"lazy\") ] 2", "2");
        ok("builtins.deepSeq [ 1 ] 2", "2");
        err("builtins.deepSeq [ (throw \"deep\") ] 2", "deep");
    }

    #[test]
    fn type_predicates_and_type_of() {
        ok(
            "[ (builtins.isNull null) (builtins.isBool true) (builtins.isInt 1) (builtins.isFloat 1.5) (builtins.isString \"\") (builtins.isPath ./.) (builtins.isList [ ]) (builtins.isAttrs { }) (builtins.isFunction (x: x)) (builtins.isFunction builtins.map) ]",
            "[ true true true true true true true true true true ]",
        );
        ok(
            "[ (builtins.isInt 1.0) (builtins.isString 1) (builtins.isNull false) ]",
            "[ false false false ]",
        );
        ok(
            "map builtins.typeOf [ null true 1 1.5 \"s\" ./. [ ] { } (x: x) ]",
            r#"[ "null" "bool" "int" "float" "string" "path" "list" "set" "lambda" ]"#,
        );
    }

    #[test]
    fn arithmetic_builtins() {
        ok(
            "[ (builtins.add 1 2) (builtins.sub 1 2) (builtins.mul 3 4) (builtins.div 7 2) ]",
            "[ 3 -1 12 3 ]",
        );
        ok("builtins.mul 2 1.5", "3");
        ok(
            "[ (builtins.lessThan 1 2) (builtins.lessThan \"b\" \"a\") ]",
            "[ true false ]",
        );
        err(
            "builtins.mul \"a\" 1",
            "expected an integer but found a string: \"a\"",
        );
        err("builtins.div 1 0", "division by zero");
        ok(
            "[ (builtins.bitAnd 12 10) (builtins.bitOr 12 10) (builtins.bitXor 12 10) ]",
            "[ 8 14 6 ]",
        );
        err(
            "builtins.bitAnd 1.0 1",
            "expected an integer but found a float: 1",
        );
        ok("[ (builtins.ceil 1.2) (builtins.floor 1.8) (builtins.ceil (-1.2)) (builtins.floor (-1.2)) (builtins.floor 3) ]", "[ 2 1 -1 -2 3 ]");
        err(
            "builtins.ceil \"x\"",
            "expected a float but found a string: \"x\"",
        );
    }

    #[test]
    fn to_string_coerces_more_than_interpolation() {
        ok(
            "toString [ 1 true false null 1.5 \"a\" [ ] ]",
            r#""1 1   1.500000 a ""#,
        );
        ok("toString { __toString = self: \"s\"; }", r#""s""#);
        ok("toString { outPath = \"/p\"; }", r#""/p""#);
        err("toString { }", "cannot coerce a set to a string: { }");
        err(
            "toString (x: x)",
            "cannot coerce a function to a string: «lambda @ «test»:1:11»",
        );
    }

    #[test]
    fn tracing_and_debugging_builtins_return_their_value() {
        ok("builtins.trace \"msg\" 3", "3");
        ok("builtins.traceVerbose \"msg\" 3", "3");
        ok("builtins.warn \"careful\" 4", "4");
        err(
            "builtins.warn 1 4",
            "expected a string but found an integer: 1",
        );
        ok("builtins.break 5", "5");
    }

    #[test]
    fn function_args_and_get_env() {
        ok(
            "builtins.functionArgs ({ a, b ? 1 }: a)",
            "{ a = false; b = true; }",
        );
        ok("builtins.functionArgs (x: x)", "{ }");
        err(
            "builtins.functionArgs 1",
            "'functionArgs' requires a function",
        );
        ok(
            "builtins.getEnv \"TVIX_TEST_SURELY_UNSET_VARIABLE\"",
            r#""""#,
        );
        err(
            "builtins.getEnv 1",
            "expected a string but found an integer: 1",
        );
    }

    #[test]
    fn generic_closure() {
        ok(
            "map (x: x.key) (builtins.genericClosure { startSet = [ { key = 5; } ]; operator = x: if x.key == 0 then [ ] else [ { key = x.key - 1; } { key = x.key / 2; } ]; })",
            "[ 5 4 2 3 1 0 ]",
        );
        // Numbers compare across int and float.
        ok(
            "builtins.length (builtins.genericClosure { startSet = [ { key = 1; } { key = 1.0; } { key = 2.5; } ]; operator = x: [ ]; })",
            "2",
        );
        ok(
            "map (x: x.key) (builtins.genericClosure { startSet = [ { key = \"b\"; } { key = \"a\"; } { key = \"b\"; } ]; operator = x: [ ]; })",
            "[ \"b\" \"a\" ]",
        );
        ok(
            "map (x: x.key) (builtins.genericClosure { startSet = [ { key = [ 1 2 ]; } { key = [ 1 ]; } { key = [ 1 2 ]; } { key = [ 0 ]; } ]; operator = x: [ ]; })",
            "[ [ 1 2 ] [ 1 ] [ 0 ] ]",
        );
        ok(
            "map (x: x.key) (builtins.genericClosure { startSet = [ { key = /a; } { key = /a; } ]; operator = x: [ ]; })",
            "[ /a ]",
        );
        ok(
            "builtins.genericClosure { startSet = [ ]; operator = 1; }",
            "[ ]",
        );
        ok(
            "builtins.genericClosure { startSet = [ { key = { }; } ]; operator = x: [ ]; }",
            "[ { key = { }; } ]",
        );
        err(
            "builtins.genericClosure { startSet = [ { key = 1; } { key = \"string\"; } ]; operator = x: [ ]; }",
            "cannot compare a string with an integer; values are \"string\" and 1",
        );
        err(
            "builtins.genericClosure { startSet = [ { key = { }; } { key = { }; } ]; operator = x: [ ]; }",
            "cannot compare a set with a set; values of that type are incomparable (values are { } and { })",
        );
        err(
            "builtins.genericClosure { startSet = [ { key = [ 1 ]; } { key = [ \"a\" ]; } ]; operator = x: [ ]; }",
            "cannot compare a string with an integer; values are \"a\" and 1",
        );
        err(
            "builtins.genericClosure { startSet = [ { nokey = 1; } ]; operator = x: [ ]; }",
            "attribute 'key' missing",
        );
        err(
            "builtins.genericClosure { startSet = [ \"not an attrset\" ]; operator = x: [ ]; }",
            "expected a set but found a string: \"not an attrset\"",
        );
        err(
            "builtins.genericClosure { startSet = [ { key = 1; } ]; }",
            "attribute 'operator' missing",
        );
        err(
            "builtins.genericClosure { operator = x: [ ]; }",
            "attribute 'startSet' missing",
        );
        err(
            "builtins.genericClosure \"not an attrset\"",
            "expected a set but found a string: \"not an attrset\"",
        );
        err(
            "builtins.genericClosure { startSet = [ { key = 1; } ]; operator = \"not a function\"; }",
            "expected a function but found a string: \"not a function\"",
        );
        err(
            "builtins.genericClosure { startSet = [ { key = 1; } ]; operator = x: \"not a list\"; }",
            "expected a list but found a string: \"not a list\"",
        );
        err(
            "builtins.genericClosure { startSet = \"not a list\"; operator = x: [ ]; }",
            "expected a list but found a string: \"not a list\"",
        );
    }
}
