//! Thunks: suspended computations, evaluated at most once (call-by-need).

use std::cell::RefCell;
use std::rc::Rc;

use super::{Env, Value};
use crate::ir::ExprRef;

/// What a thunk holds.
pub enum ThunkState {
    /// An expression to evaluate in an environment.
    Suspended(ExprRef, Rc<Env>),
    /// A function application made lazily by a builtin (`map`, `genList`, ...). Boxed: the
    /// state is as large as its largest variant, and every thunk pays for it, while most
    /// thunks are `Suspended` (two pointers) and become `Done` (one value).
    Apply(Box<(Value, Value)>),
    /// The application `f a b` made lazily by a builtin (`mapAttrs`, `zipAttrsWith`): one
    /// thunk instead of a second one for `f a`, and a curried lambda gets both arguments in
    /// one call (`Evaluator::call2`), without the function between them.
    Apply2(Box<(Value, Value, Value)>),
    /// Being evaluated right now: forcing it again is infinite recursion.
    Blackhole,
    /// Evaluated, in weak head normal form.
    Done(Value),
    /// Evaluation failed with this error; forcing again gives the same error.
    Failed(Box<crate::error::EvalError>),
}

/// A shared, mutable cell holding a suspended or evaluated value.
#[derive(Clone)]
pub struct Thunk(pub Rc<RefCell<ThunkState>>);

impl Thunk {
    /// A thunk for `expr` in `env`.
    pub fn suspended(expr: ExprRef, env: Rc<Env>) -> Thunk {
        Thunk(super::rc_new(|| {
            RefCell::new(ThunkState::Suspended(expr, env))
        }))
    }

    /// A thunk for the application `f arg`.
    pub fn apply(f: Value, arg: Value) -> Thunk {
        Thunk(super::rc_new(|| {
            RefCell::new(ThunkState::Apply(Box::new((f, arg))))
        }))
    }

    /// A thunk for the application `f a b`.
    pub fn apply2(f: Value, a: Value, b: Value) -> Thunk {
        Thunk(super::rc_new(|| {
            RefCell::new(ThunkState::Apply2(Box::new((f, a, b))))
        }))
    }

    /// The value if the thunk has been evaluated.
    pub fn value(&self) -> Option<Value> {
        match &*self.0.borrow() {
            ThunkState::Done(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// Whether two handles are the same thunk.
    pub fn ptr_eq(&self, other: &Thunk) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thunk's allocation is the reference counts, the borrow flag and the state: 48 bytes
    /// (a 64-byte state before `Apply` was boxed). Millions of thunks are alive at once in a
    /// module-system evaluation, so this is most of the evaluator's memory.
    #[test]
    fn thunk_state_is_three_words() {
        assert_eq!(std::mem::size_of::<ThunkState>(), 24);
        assert_eq!(std::mem::size_of::<RefCell<ThunkState>>(), 32);
    }
}
