//! `assert a == b` that fails explains why: the comparison is redone in a mode that, instead
//! of answering `false`, reports the first difference it finds (with `… while comparing`
//! frames for the attributes and list elements it went through), in the reference's wording.

use std::rc::Rc;

use super::{sym, Evaluator};
use crate::error::{AddContext, ErrorKind, EvalError, EvalResult};
use crate::source::Span;
use crate::value::print::print_value;
use crate::value::Value;

impl Evaluator {
    /// Fails with an explanation unless `l == r`; `Ok` when they are equal.
    pub(super) fn assert_equal(&mut self, l: Value, r: Value, span: Span) -> EvalResult<()> {
        let l = self.force(l)?;
        let r = self.force(r)?;
        let fail = |msg: String| -> EvalResult<()> {
            // Like the reference, the difference itself has no location: the frames locate it.
            let _ = span;
            Err(EvalError::new(ErrorKind::AssertEqual(msg), None))
        };
        match (&l, &r) {
            (Value::Null, Value::Null) => Ok(()),
            (Value::Bool(a), Value::Bool(b)) => {
                if a == b {
                    Ok(())
                } else {
                    fail(format!(
                        "boolean '{}' is not equal to boolean '{}'",
                        a.get(),
                        b.get()
                    ))
                }
            }
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                if self.values_equal(l.clone(), r.clone(), Some(span))? {
                    Ok(())
                } else {
                    fail(format!(
                        "{} with value '{}' is not equal to {} with value '{}'",
                        l.type_desc(),
                        print_value(&l),
                        r.type_desc(),
                        print_value(&r)
                    ))
                }
            }
            (Value::String(a), Value::String(b)) => {
                if a.as_bytes() == b.as_bytes() {
                    Ok(())
                } else {
                    fail(format!(
                        "string '{}' is not equal to string '{}'",
                        print_value(&l),
                        print_value(&r)
                    ))
                }
            }
            (Value::Path(a), Value::Path(b)) => {
                if a == b {
                    Ok(())
                } else {
                    fail(format!(
                        "path '{}' is not equal to path '{}'",
                        a.display(),
                        b.display()
                    ))
                }
            }
            (Value::List(a), Value::List(b)) => {
                if Rc::ptr_eq(a, b) {
                    return Ok(());
                }
                if a.len() != b.len() {
                    return fail(format!(
                        "list of size '{}' is not equal to list of size '{}', left hand side is '{}', right hand side is '{}'",
                        a.len(),
                        b.len(),
                        self.preview(&l),
                        self.preview(&r)
                    ));
                }
                let (a, b) = (a.clone(), b.clone());
                for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                    if same_cell(x, y) {
                        continue;
                    }
                    self.assert_equal(x.clone(), y.clone(), span)
                        .context(None, || format!("while comparing list element {i}"))?;
                }
                Ok(())
            }
            (Value::Attrs(a), Value::Attrs(b)) => {
                if Rc::ptr_eq(a, b) {
                    return Ok(());
                }
                if l.is_derivation_forced(self)? && r.is_derivation_forced(self)? {
                    if let (Some(x), Some(y)) = (a.get(sym::out_path()), b.get(sym::out_path())) {
                        let (x, y) = (x.clone(), y.clone());
                        return self.assert_equal(x, y, span).context(None, || {
                            "while comparing a derivation by its 'outPath' attribute".to_string()
                        });
                    }
                }
                let same_names = a.len() == b.len()
                    && a.iter().zip(b.iter()).all(|(x, y)| x.name == y.name);
                if !same_names {
                    return fail(format!(
                        "attribute names of attribute set '{}' differs from attribute set '{}'",
                        self.preview(&l),
                        self.preview(&r)
                    ));
                }
                let (a, b) = (a.clone(), b.clone());
                for (x, y) in a.iter().zip(b.iter()) {
                    if same_cell(&x.value, &y.value) {
                        continue;
                    }
                    self.assert_equal(x.value.clone(), y.value.clone(), span)
                        .context(y.pos.get(), || "where right hand side is".to_string())
                        .context(x.pos.get(), || "where left hand side is".to_string())
                        .context(None, || {
                            format!("while comparing attribute '{}'", x.name.as_str())
                        })?;
                }
                Ok(())
            }
            (Value::Lambda(_) | Value::PrimOp(_), Value::Lambda(_) | Value::PrimOp(_)) => fail(
                "distinct functions and immediate comparisons of identical functions compare as unequal"
                    .to_string(),
            ),
            _ => fail(format!(
                "{} of value '{}' is not equal to {} of value '{}'",
                l.type_desc(),
                self.preview(&l),
                r.type_desc(),
                self.preview(&r)
            )),
        }
    }
}

/// Whether two values are the very same cell, which compare equal even when functions.
fn same_cell(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Thunk(x), Value::Thunk(y)) => x.ptr_eq(y),
        (Value::Lambda(x), Value::Lambda(y)) => Rc::ptr_eq(x, y),
        (Value::PrimOp(x), Value::PrimOp(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}
