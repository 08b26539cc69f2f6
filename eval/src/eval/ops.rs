//! Operators: arithmetic with Nix's overflow rules, comparison, equality, `//`, `++`.

use std::cmp::Ordering;
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use super::{sym, CoerceMode, Evaluator};
use crate::error::{AddContext, ErrorKind, EvalError, EvalResult};
use crate::ir::{BinOp, Expr};
use crate::lower::canonicalize_path;
use crate::source::Span;
use crate::value::{Env, NixString, StringBuilder, Value};

fn other(msg: String, span: Option<Span>) -> Box<EvalError> {
    EvalError::new(ErrorKind::Other(msg), span)
}

fn overflow(verb: &str, a: i64, sym: &str, b: i64, span: Option<Span>) -> Box<EvalError> {
    other(format!("integer overflow in {verb} {a} {sym} {b}"), span)
}

/// The value of an integer operand that is already known without evaluating anything.
#[inline]
fn known_int(e: &Expr, env: &Rc<Env>) -> Option<i64> {
    match e {
        Expr::Const(Value::Int(i)) => Some(*i),
        Expr::Local { depth, idx, .. } => match env.ancestor(*depth as usize).get(*idx as usize) {
            Value::Int(i) => Some(i),
            _ => None,
        },
        _ => None,
    }
}

/// Computes `lhs op rhs` right away when both operands are integers already known and the
/// operation cannot fail. Such an expression is pure, total and cheap, so computing it now is
/// indistinguishable from delaying it, and saves a thunk (`f (n - 1)` in recursive code).
#[inline]
pub(super) fn int_binop_now(op: BinOp, lhs: &Expr, rhs: &Expr, env: &Rc<Env>) -> Option<Value> {
    // Two literals are left to a thunk: that is rare in real code (so costs nothing), and
    // shows as `«thunk»` where an unevaluated value is printed (`builtins.trace [ (1 + 1) ]`).
    if matches!((lhs, rhs), (Expr::Const(_), Expr::Const(_))) {
        return None;
    }
    let a = known_int(lhs, env)?;
    let b = known_int(rhs, env)?;
    Some(match op {
        BinOp::Add => Value::Int(a.checked_add(b)?),
        BinOp::Sub => Value::Int(a.checked_sub(b)?),
        BinOp::Mul => Value::Int(a.checked_mul(b)?),
        BinOp::Lt => Value::bool(a < b),
        BinOp::LtEq => Value::bool(a <= b),
        BinOp::Gt => Value::bool(a > b),
        BinOp::GtEq => Value::bool(a >= b),
        BinOp::Eq => Value::bool(a == b),
        BinOp::NotEq => Value::bool(a != b),
        _ => return None,
    })
}

/// Numeric subtraction (also used for unary minus).
pub fn sub(a: Value, b: Value, span: Option<Span>) -> EvalResult<Value> {
    arith(BinOp::Sub, a, b, span)
}

fn arith(op: BinOp, a: Value, b: Value, span: Option<Span>) -> EvalResult<Value> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => match op {
            BinOp::Add => x
                .checked_add(y)
                .map(Value::Int)
                .ok_or_else(|| overflow("adding", x, "+", y, span)),
            BinOp::Sub => x
                .checked_sub(y)
                .map(Value::Int)
                .ok_or_else(|| overflow("subtracting", x, "-", y, span)),
            BinOp::Mul => x
                .checked_mul(y)
                .map(Value::Int)
                .ok_or_else(|| overflow("multiplying", x, "*", y, span)),
            BinOp::Div => {
                if y == 0 {
                    return Err(EvalError::new(ErrorKind::DivisionByZero, span));
                }
                x.checked_div(y)
                    .map(Value::Int)
                    .ok_or_else(|| overflow("dividing", x, "/", y, span))
            }
            _ => unreachable!("not an arithmetic operator"),
        },
        (a @ (Value::Int(_) | Value::Float(_)), b @ (Value::Int(_) | Value::Float(_))) => {
            let x = as_f64(&a);
            let y = as_f64(&b);
            Ok(Value::float(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => {
                    if y == 0.0 {
                        return Err(EvalError::new(ErrorKind::DivisionByZero, span));
                    }
                    x / y
                }
                _ => unreachable!("not an arithmetic operator"),
            }))
        }
        (a, b) => {
            let (expected, bad) = if matches!(a, Value::Int(_) | Value::Float(_)) {
                ("an integer", b)
            } else {
                ("an integer", a)
            };
            Err(EvalError::new(
                ErrorKind::TypeError {
                    expected,
                    found: format!(
                        "{}: {}",
                        bad.type_desc(),
                        crate::value::print::preview_plain(&bad)
                    ),
                },
                span,
            ))
        }
    }
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => f.get(),
        _ => 0.0,
    }
}

impl Evaluator {
    #[inline(never)]
    pub(super) fn eval_binop(
        &mut self,
        op: BinOp,
        lhs: &Expr,
        rhs: &Expr,
        env: &Rc<Env>,
        span: Span,
    ) -> EvalResult<Value> {
        let sp = Some(span);
        match op {
            BinOp::And => {
                if !self
                    .eval(lhs, env)
                    .and_then(|l| self.expect_bool(l, sp))
                    .context(sp, || "in the left operand of '&&'".into())?
                {
                    return Ok(Value::bool(false));
                }
                let r = self.eval(rhs, env)?;
                Ok(Value::bool(
                    self.expect_bool(r, sp)
                        .context(sp, || "in the right operand of '&&'".into())?,
                ))
            }
            BinOp::Or => {
                if self
                    .eval(lhs, env)
                    .and_then(|l| self.expect_bool(l, sp))
                    .context(sp, || "in the left operand of '||'".into())?
                {
                    return Ok(Value::bool(true));
                }
                let r = self.eval(rhs, env)?;
                Ok(Value::bool(
                    self.expect_bool(r, sp)
                        .context(sp, || "in the right operand of '||'".into())?,
                ))
            }
            BinOp::Impl => {
                if !self
                    .eval(lhs, env)
                    .and_then(|l| self.expect_bool(l, sp))
                    .context(sp, || "in the left operand of '->'".into())?
                {
                    return Ok(Value::bool(true));
                }
                let r = self.eval(rhs, env)?;
                Ok(Value::bool(
                    self.expect_bool(r, sp)
                        .context(sp, || "in the right operand of '->'".into())?,
                ))
            }
            BinOp::PipeRight | BinOp::PipeLeft => {
                let (f, x) = if op == BinOp::PipeRight {
                    (rhs, lhs)
                } else {
                    (lhs, rhs)
                };
                let f = self.eval(f, env)?;
                let x = match x {
                    Expr::Const(v) => v.clone(),
                    _ => self.eval(x, env)?,
                };
                self.call(f, x, sp)
            }
            _ => {
                let l = self
                    .eval_operand(lhs, env)
                    .context(sp, || operand_frame(op, true))?;
                let r = self
                    .eval_operand(rhs, env)
                    .context(sp, || operand_frame(op, false))?;
                // Integer arithmetic and comparison dominate hot loops: skip the general path.
                if let (Value::Int(a), Value::Int(b)) = (&l, &r) {
                    let (a, b) = (*a, *b);
                    match op {
                        BinOp::Add => {
                            if let Some(x) = a.checked_add(b) {
                                return Ok(Value::Int(x));
                            }
                        }
                        BinOp::Sub => {
                            if let Some(x) = a.checked_sub(b) {
                                return Ok(Value::Int(x));
                            }
                        }
                        BinOp::Mul => {
                            if let Some(x) = a.checked_mul(b) {
                                return Ok(Value::Int(x));
                            }
                        }
                        BinOp::Lt => return Ok(Value::bool(a < b)),
                        BinOp::LtEq => return Ok(Value::bool(a <= b)),
                        BinOp::Gt => return Ok(Value::bool(a > b)),
                        BinOp::GtEq => return Ok(Value::bool(a >= b)),
                        BinOp::Eq => return Ok(Value::bool(a == b)),
                        BinOp::NotEq => return Ok(Value::bool(a != b)),
                        _ => {}
                    }
                }
                self.binop_values(op, l, r, sp)
            }
        }
    }

    /// Applies a strict binary operator to two evaluated values.
    pub fn binop_values(
        &mut self,
        op: BinOp,
        l: Value,
        r: Value,
        span: Option<Span>,
    ) -> EvalResult<Value> {
        match op {
            BinOp::Add => self.add(l, r, span),
            BinOp::Sub | BinOp::Mul | BinOp::Div => arith(op, l, r, span),
            BinOp::Eq => Ok(Value::bool(self.values_equal(l, r, span)?)),
            BinOp::NotEq => Ok(Value::bool(!self.values_equal(l, r, span)?)),
            BinOp::Lt => Ok(Value::bool(self.compare(l, r, span)? == Ordering::Less)),
            BinOp::LtEq => Ok(Value::bool(self.compare(r, l, span)? != Ordering::Less)),
            BinOp::Gt => Ok(Value::bool(self.compare(r, l, span)? == Ordering::Less)),
            BinOp::GtEq => Ok(Value::bool(self.compare(l, r, span)? != Ordering::Less)),
            BinOp::Update => match (l, r) {
                (Value::Attrs(a), Value::Attrs(b)) => Ok(Value::attrs(a.update(&b))),
                (Value::Attrs(_), other) | (other, _) => Err(EvalError::new(
                    ErrorKind::TypeError {
                        expected: "a set",
                        found: self.describe(&other),
                    },
                    span,
                )),
            },
            BinOp::Concat => match (l, r) {
                (Value::List(a), Value::List(b)) => {
                    if b.is_empty() {
                        return Ok(Value::List(a));
                    }
                    if a.is_empty() {
                        return Ok(Value::List(b));
                    }
                    let mut v = Vec::with_capacity(a.len() + b.len());
                    v.extend(a.iter().cloned());
                    v.extend(b.iter().cloned());
                    Ok(Value::list(v))
                }
                (Value::List(_), other) | (other, _) => Err(EvalError::new(
                    ErrorKind::TypeError {
                        expected: "a list",
                        found: self.describe(&other),
                    },
                    span,
                )),
            },
            BinOp::And | BinOp::Or | BinOp::Impl | BinOp::PipeLeft | BinOp::PipeRight => {
                unreachable!("lazy operators are handled in eval_binop")
            }
        }
    }

    fn add(&mut self, l: Value, r: Value, span: Option<Span>) -> EvalResult<Value> {
        match (&l, &r) {
            (Value::Path(p), _) => {
                let rhs = match &r {
                    Value::Path(q) => Rc::new(NixString::new(q.as_os_str().as_bytes())),
                    Value::String(s) => {
                        if s.has_context() {
                            return Err(other(
                                "a string that refers to a store path cannot be appended to a path"
                                    .to_string(),
                                span,
                            ));
                        }
                        s.clone()
                    }
                    _ => self
                        .coerce_to_string(r.clone(), CoerceMode::PathSegment, span)
                        .map_err(|_| {
                            other(format!("cannot append {} to a path", r.type_desc()), span)
                        })?,
                };
                let mut bytes = p.as_os_str().as_bytes().to_vec();
                bytes.extend_from_slice(rhs.as_bytes());
                Ok(Value::Path(Rc::new(canonicalize_path(&bytes))))
            }
            (Value::String(a), _) => {
                let b = match &r {
                    Value::String(b) => b.clone(),
                    _ => self.coerce_to_string(r.clone(), CoerceMode::Interpolation, span)?,
                };
                let mut sb = StringBuilder::new();
                sb.push(a);
                sb.push(&b);
                Ok(Value::String(Rc::new(sb.finish())))
            }
            (Value::Attrs(a), Value::String(_))
                if a.contains(sym::out_path()) || a.contains(sym::to_string()) =>
            {
                let a = self.coerce_to_string(l.clone(), CoerceMode::Interpolation, span)?;
                let Value::String(b) = &r else { unreachable!() };
                let mut sb = StringBuilder::new();
                sb.push(&a);
                sb.push(b);
                Ok(Value::String(Rc::new(sb.finish())))
            }
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                arith(BinOp::Add, l, r, span)
            }
            (Value::Int(_) | Value::Float(_), _) => Err(other(
                format!("cannot add {} to {}", r.type_desc(), l.type_desc()),
                span,
            )),
            _ => Err(other(
                format!("cannot add {} to {}", r.type_desc(), l.type_desc()),
                span,
            )),
        }
    }

    /// Nix's `<` ordering: numbers, strings, paths, and lists lexicographically.
    pub fn compare(&mut self, l: Value, r: Value, span: Option<Span>) -> EvalResult<Ordering> {
        let l = self.force(l)?;
        let r = self.force(r)?;
        match (&l, &r) {
            (Value::Int(a), Value::Int(b)) => Ok(a.cmp(b)),
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => Ok(as_f64(&l)
                .partial_cmp(&as_f64(&r))
                .unwrap_or(Ordering::Equal)),
            (Value::String(a), Value::String(b)) => Ok(a.as_bytes().cmp(b.as_bytes())),
            (Value::Path(a), Value::Path(b)) => {
                Ok(a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()))
            }
            (Value::List(a), Value::List(b)) => {
                let (a, b) = (a.clone(), b.clone());
                for (x, y) in a.iter().zip(b.iter()) {
                    let (x, y) = (self.force(x.clone())?, self.force(y.clone())?);
                    // Nested levels count against the call depth, so that lists
                    // containing themselves fail cleanly instead of overflowing the stack.
                    if self.nested(span, |ev| ev.values_equal(x.clone(), y.clone(), span))? {
                        continue;
                    }
                    return self.nested(span, |ev| ev.compare(x, y, span));
                }
                Ok(a.len().cmp(&b.len()))
            }
            _ => {
                let incomparable = matches!(
                    l,
                    Value::Attrs(_)
                        | Value::Lambda(_)
                        | Value::PrimOp(_)
                        | Value::Null
                        | Value::Bool(_)
                ) && std::mem::discriminant(&l) == std::mem::discriminant(&r);
                let msg = if incomparable {
                    format!(
                        "cannot compare {} with {}; values of that type are incomparable (values are {} and {})",
                        l.type_desc(),
                        r.type_desc(),
                        self.preview(&l),
                        self.preview(&r)
                    )
                } else {
                    format!(
                        "cannot compare {} with {}; values are {} and {}",
                        l.type_desc(),
                        r.type_desc(),
                        self.preview(&l),
                        self.preview(&r)
                    )
                };
                Err(other(msg, span))
            }
        }
    }

    /// Equality of two values as held (list elements, attribute values, a builtin's
    /// arguments): the very same value on both sides is equal once forced, even a
    /// function, as Nix's `eqValues` compares its arguments' addresses after forcing them
    /// (`let f = x: x; in builtins.elem f [ f ]` is true); otherwise [`Self::values_equal`].
    pub fn cells_equal(&mut self, l: &Value, r: &Value, span: Option<Span>) -> EvalResult<bool> {
        if same_value(l, r) {
            self.force(l.clone())?;
            return Ok(true);
        }
        self.values_equal(l.clone(), r.clone(), span)
    }

    /// Deep equality as Nix defines it.
    // The span is threaded through for the mismatch explanations of `assert a == b`.
    #[allow(clippy::only_used_in_recursion)]
    pub fn values_equal(&mut self, l: Value, r: Value, span: Option<Span>) -> EvalResult<bool> {
        let l = self.force(l)?;
        let r = self.force(r)?;
        Ok(match (&l, &r) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                as_f64(&l) == as_f64(&r)
            }
            (Value::String(a), Value::String(b)) => a.as_bytes() == b.as_bytes(),
            (Value::Path(a), Value::Path(b)) => a == b,
            // No shortcut for the same list or set compared with itself: Nix compares
            // element by element, forcing each (`let l = [ (throw "x") ]; in l == l`
            // throws); only an element that is the same cell on both sides is equal
            // without a deeper look, once forced.
            (Value::List(a), Value::List(b)) => {
                if a.len() != b.len() {
                    return Ok(false);
                }
                let (a, b) = (a.clone(), b.clone());
                for (x, y) in a.iter().zip(b.iter()) {
                    // One level deeper (see `compare`).
                    if !self.nested(span, |ev| ev.cells_equal(x, y, span))? {
                        return Ok(false);
                    }
                }
                true
            }
            (Value::Attrs(a), Value::Attrs(b)) => {
                // Derivations are equal when their output paths are.
                if l.is_derivation_forced(self)? && r.is_derivation_forced(self)? {
                    if let (Some(x), Some(y)) = (a.get(sym::out_path()), b.get(sym::out_path())) {
                        let (x, y) = (x.clone(), y.clone());
                        return self.values_equal(x, y, span);
                    }
                }
                if a.len() != b.len() {
                    return Ok(false);
                }
                // Names and values in one pass, as Nix does: a value that throws before
                // the first differing name is an error, not `false`.
                let (a, b) = (a.clone(), b.clone());
                for (x, y) in a.iter().zip(b.iter()) {
                    if x.name != y.name {
                        return Ok(false);
                    }
                    if !self.nested(span, |ev| ev.cells_equal(&x.value, &y.value, span))? {
                        return Ok(false);
                    }
                }
                true
            }
            _ => false,
        })
    }
}

/// Whether two values are the very same cell (Nix compares such values equal, once forced,
/// even when they are functions).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Thunk(x), Value::Thunk(y)) => x.ptr_eq(y),
        (Value::Lambda(x), Value::Lambda(y)) => Rc::ptr_eq(x, y),
        (Value::PrimOp(x), Value::PrimOp(y)) => Rc::ptr_eq(x, y),
        (Value::Attrs(x), Value::Attrs(y)) => Rc::ptr_eq(x, y),
        (Value::List(x), Value::List(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

impl Value {
    /// Whether this (forced) set is a derivation, forcing its `type` attribute.
    pub fn is_derivation_forced(&self, ev: &mut Evaluator) -> EvalResult<bool> {
        let Value::Attrs(a) = self else {
            return Ok(false);
        };
        let Some(t) = a.get(sym::type_()).cloned() else {
            return Ok(false);
        };
        Ok(matches!(ev.force(t)?, Value::String(s) if s.as_bytes() == b"derivation"))
    }
}

/// The trace frame for an error in an operand of `op`, in the reference's wording (operators
/// the reference turns into builtin calls are named after the builtin).
fn operand_frame(op: BinOp, left: bool) -> String {
    let side = if left { "left" } else { "right" };
    match op {
        BinOp::Add => "in an operand of '+'".to_string(),
        BinOp::Sub => "while calling the 'sub' builtin".to_string(),
        BinOp::Mul => "while calling the 'mul' builtin".to_string(),
        BinOp::Div => "while calling the 'div' builtin".to_string(),
        BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq => {
            "while calling the 'lessThan' builtin".to_string()
        }
        BinOp::Concat => format!("in the {side} operand of '++'"),
        BinOp::Update => format!("in the {side} operand of '//'"),
        BinOp::Eq => format!("in the {side} operand of '=='"),
        BinOp::NotEq => format!("in the {side} operand of '!='"),
        BinOp::And => format!("in the {side} operand of '&&'"),
        BinOp::Or => format!("in the {side} operand of '||'"),
        BinOp::Impl => format!("in the {side} operand of '->'"),
        BinOp::PipeRight => format!("in the {side} operand of '|>'"),
        BinOp::PipeLeft => format!("in the {side} operand of '<|'"),
    }
}
