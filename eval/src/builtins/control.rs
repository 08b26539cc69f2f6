//! Control and type builtins: errors, `tryEval`, `seq`, type predicates, arithmetic.

use std::rc::Rc;

use super::{fail, make_attrs};
use crate::error::{AddContext, ErrorKind, EvalError, EvalResult};
use crate::eval::{sym, CoerceMode, Evaluator};
use crate::ir::BinOp;
use crate::source::Span;
use crate::symbol::Symbol;
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
    primop!("isNull", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(a[0].clone())?,
        Value::Null
    )))),
    primop!("isBool", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(a[0].clone())?,
        Value::Bool(_)
    )))),
    primop!("isInt", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(a[0].clone())?,
        Value::Int(_)
    )))),
    primop!("isFloat", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(a[0].clone())?,
        Value::Float(_)
    )))),
    primop!("isString", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(a[0].clone())?,
        Value::String(_)
    )))),
    primop!("isPath", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(a[0].clone())?,
        Value::Path(_)
    )))),
    primop!("isList", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(a[0].clone())?,
        Value::List(_)
    )))),
    primop!("isAttrs", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(a[0].clone())?,
        Value::Attrs(_)
    )))),
    primop!("isFunction", 1, |ev, a, _| {
        Ok(Value::Bool(matches!(
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

fn throw(ev: &mut Evaluator, a: Vec<Value>, span: Option<Span>) -> EvalResult<Value> {
    let msg = ev.coerce_to_string(a[0].clone(), CoerceMode::ToString, span)?;
    Err(EvalError::new(
        ErrorKind::Throw(msg.to_str_lossy().into_owned()),
        span,
    ))
}

fn abort(ev: &mut Evaluator, a: Vec<Value>, span: Option<Span>) -> EvalResult<Value> {
    let msg = ev.coerce_to_string(a[0].clone(), CoerceMode::ToString, span)?;
    Err(EvalError::new(
        ErrorKind::Abort(msg.to_str_lossy().into_owned()),
        span,
    ))
}

fn seq(ev: &mut Evaluator, a: Vec<Value>, _: Option<Span>) -> EvalResult<Value> {
    ev.force(a[0].clone())?;
    ev.force(a[1].clone())
}

fn deep_seq(ev: &mut Evaluator, a: Vec<Value>, _: Option<Span>) -> EvalResult<Value> {
    ev.force_deep(a[0].clone())?;
    ev.force(a[1].clone())
}

fn try_eval(ev: &mut Evaluator, a: Vec<Value>, _: Option<Span>) -> EvalResult<Value> {
    let (success, value) = match ev.force(a[0].clone()) {
        Ok(v) => (true, v),
        Err(e) if e.kind.is_catchable() => (false, Value::Bool(false)),
        Err(e) => return Err(e),
    };
    Ok(make_attrs([
        (sym::success(), Value::Bool(success)),
        (sym::value(), value),
    ]))
}

fn type_of(ev: &mut Evaluator, a: Vec<Value>, _: Option<Span>) -> EvalResult<Value> {
    Ok(Value::string(ev.force(a[0].clone())?.type_of()))
}

fn arith(ev: &mut Evaluator, op: BinOp, a: Vec<Value>, span: Option<Span>) -> EvalResult<Value> {
    let l = ev.force(a[0].clone())?;
    let r = ev.force(a[1].clone())?;
    if op != BinOp::Lt {
        for v in [&l, &r] {
            if !matches!(v, Value::Int(_) | Value::Float(_)) {
                return Err(EvalError::new(
                    ErrorKind::TypeError {
                        expected: "an integer",
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
    a: Vec<Value>,
    span: Option<Span>,
    f: fn(f64) -> f64,
) -> EvalResult<Value> {
    match ev.force(a[0].clone())? {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(x) => Ok(Value::Int(f(x) as i64)),
        other => Err(EvalError::new(
            ErrorKind::TypeError {
                expected: "a float",
                found: ev.describe(&other),
            },
            span,
        )),
    }
}

fn to_string(ev: &mut Evaluator, a: Vec<Value>, span: Option<Span>) -> EvalResult<Value> {
    let s = ev.coerce_to_string(a[0].clone(), CoerceMode::ToString, span)?;
    Ok(Value::String(Rc::new(s)))
}

fn trace(ev: &mut Evaluator, a: Vec<Value>, _: Option<Span>) -> EvalResult<Value> {
    let v = ev.force(a[0].clone())?;
    let shown = match &v {
        Value::String(s) => s.to_str_lossy().into_owned(),
        other => crate::value::print::print_value(other),
    };
    (ev.diagnostics)(&format!("trace: {shown}"));
    ev.force(a[1].clone())
}

fn warn(ev: &mut Evaluator, a: Vec<Value>, span: Option<Span>) -> EvalResult<Value> {
    let msg = ev.force_string(a[0].clone(), span)?;
    (ev.diagnostics)(&format!("evaluation warning: {}", msg.to_str_lossy()));
    ev.force(a[1].clone())
}

fn add_error_context(ev: &mut Evaluator, a: Vec<Value>, span: Option<Span>) -> EvalResult<Value> {
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

fn function_args(ev: &mut Evaluator, a: Vec<Value>, span: Option<Span>) -> EvalResult<Value> {
    match ev.force(a[0].clone())? {
        Value::Lambda(c) => match &c.lambda.param {
            crate::ir::Param::Ident(_) => Ok(Value::attrs(Attrs::new())),
            crate::ir::Param::Pattern(p) => Ok(Value::attrs(Attrs::from_unsorted(
                p.formals
                    .iter()
                    .map(|f| AttrEntry {
                        name: f.name,
                        value: Value::Bool(f.default.is_some()),
                        pos: Some(f.span),
                    })
                    .collect(),
            ))),
        },
        Value::PrimOp(_) => Ok(Value::attrs(Attrs::new())),
        _ => fail("'functionArgs' requires a function", span),
    }
}

fn generic_closure(ev: &mut Evaluator, a: Vec<Value>, span: Option<Span>) -> EvalResult<Value> {
    let args = ev.force_attrs(a[0].clone(), span)?;
    let start = args.get(sym::start_set()).cloned().ok_or_else(|| {
        EvalError::new(
            ErrorKind::Other("attribute 'startSet' missing".into()),
            span,
        )
    })?;
    let op = args.get(sym::operator()).cloned().ok_or_else(|| {
        EvalError::new(
            ErrorKind::Other("attribute 'operator' missing".into()),
            span,
        )
    })?;
    let mut work: std::collections::VecDeque<Value> =
        ev.force_list(start, span)?.iter().cloned().collect();
    let mut seen: Vec<Value> = Vec::new();
    let mut result = Vec::new();
    while let Some(item) = work.pop_front() {
        let attrs = ev.force_attrs(item.clone(), span)?;
        let key = attrs.get(sym::key()).cloned().ok_or_else(|| {
            EvalError::new(ErrorKind::Other("attribute 'key' missing".into()), span)
        })?;
        let key = ev.force(key)?;
        let mut found = false;
        for k in &seen {
            if ev.values_equal(k.clone(), key.clone(), span)? {
                found = true;
                break;
            }
        }
        if found {
            continue;
        }
        seen.push(key);
        result.push(item.clone());
        let next = ev.call_forced(op.clone(), item, span)?;
        let next = ev.force_list(next, span)?;
        work.extend(next.iter().cloned());
    }
    let _ = Symbol::intern;
    Ok(Value::list(result))
}
