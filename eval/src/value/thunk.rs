//! Thunks: suspended computations, evaluated at most once (call-by-need).

use std::cell::Cell;
use std::rc::Rc;

use super::counted::Shared;
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

thread_local! {
    /// Thunks made on this thread. Counted where every thunk is made ([`Thunk::tracked`]),
    /// not at each site that makes one: the builtins and the evaluator's paths that made
    /// thunks without counting them left `TVIX_SHOW_STATS` at less than half the real
    /// figure. A constant-initialised thread-local without a destructor: one increment.
    static MADE: Cell<u64> = const { Cell::new(0) };
}

/// How many thunks this thread has made so far.
pub fn made_on_this_thread() -> u64 {
    MADE.with(Cell::get)
}

/// A shared, mutable cell holding a suspended or evaluated value.
///
/// The cell is a count and the state (32 bytes, see `counted.rs`). Its state is never
/// borrowed across evaluation: forcing takes it out with [`Thunk::replace`] (leaving a
/// [`ThunkState::Blackhole`]) and puts the result back the same way, and readers clone a
/// value out ([`Thunk::value`], [`Thunk::evaluated`]).
#[derive(Clone)]
pub struct Thunk(Shared<ThunkState>);

impl Thunk {
    /// A thunk for `expr` in `env`. Inlined: it is most of the thunks made, and its
    /// callers (`delay`, `enter_frame`) are the evaluator's hottest paths.
    #[inline(always)]
    pub fn suspended(expr: ExprRef, env: Rc<Env>) -> Thunk {
        Thunk::tracked(Shared::new_with(|| ThunkState::Suspended(expr, env)))
    }

    /// A thunk for the application `f arg`.
    pub fn apply(f: Value, arg: Value) -> Thunk {
        Thunk::tracked(Shared::new_with(|| ThunkState::Apply(Box::new((f, arg)))))
    }

    /// A thunk for the application `f a b`.
    pub fn apply2(f: Value, a: Value, b: Value) -> Thunk {
        Thunk::tracked(Shared::new_with(|| ThunkState::Apply2(Box::new((f, a, b)))))
    }

    /// Every thunk is made here: counted (`TVIX_SHOW_STATS`), and recorded if this thread
    /// tracks (`registry.rs`).
    #[inline(always)]
    fn tracked(cell: Shared<ThunkState>) -> Thunk {
        MADE.with(|m| m.set(m.get() + 1));
        let t = Thunk(cell);
        super::registry::note_thunk(&t);
        t
    }

    /// A thunk that failed with `e`, not recorded: the one a registry puts in the slots of
    /// frames that outlive their release, which must not be emptied by a later one.
    pub(crate) fn untracked_failed(e: Box<crate::error::EvalError>) -> Thunk {
        Thunk(Shared::new_with(|| ThunkState::Failed(e)))
    }

    /// How many handles to this thunk exist (the registry's own included).
    #[inline]
    pub(crate) fn handles(&self) -> usize {
        self.0.count()
    }

    /// The value if the thunk has been evaluated.
    #[inline]
    pub fn value(&self) -> Option<Value> {
        // SAFETY: the closure only clones a value out.
        unsafe {
            self.0.with(|s| match s {
                ThunkState::Done(v) => Some(v.clone()),
                _ => None,
            })
        }
    }

    /// The outcome if the thunk has been evaluated: its value, or the error it failed with.
    #[inline]
    pub(crate) fn evaluated(&self) -> Option<crate::error::EvalResult<Value>> {
        // SAFETY: the closure only clones a value or an error out.
        unsafe {
            self.0.with(|s| match s {
                ThunkState::Done(v) => Some(Ok(v.clone())),
                ThunkState::Failed(e) => Some(Err(e.clone())),
                _ => None,
            })
        }
    }

    /// Puts `state` in the thunk and gives back the one it had (for the caller to drop).
    #[inline]
    pub(crate) fn replace(&self, state: ThunkState) -> ThunkState {
        self.0.replace(state)
    }

    /// The address of the thunk's cell: its identity (the same for every handle).
    #[inline]
    pub fn addr(&self) -> usize {
        self.0.addr()
    }

    /// Whether two handles are the same thunk.
    pub fn ptr_eq(&self, other: &Thunk) -> bool {
        self.addr() == other.addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thunk's allocation is the count and the state: 32 bytes (48 with `Rc<RefCell<_>>`,
    /// and a 64-byte state before `Apply` was boxed). Millions of thunks are alive at once in
    /// a module-system evaluation, so this is most of the evaluator's memory.
    #[test]
    fn thunk_state_is_three_words() {
        assert_eq!(std::mem::size_of::<ThunkState>(), 24);
        assert_eq!(std::mem::size_of::<Thunk>(), 8);
    }

    #[test]
    fn forcing_protocol_replaces_the_state_for_every_handle() {
        let t = Thunk::apply(Value::Null, Value::Int(1));
        let u = t.clone();
        assert!(t.value().is_none() && t.evaluated().is_none());
        let old = t.replace(ThunkState::Blackhole);
        assert!(matches!(old, ThunkState::Apply(_)));
        drop(t.replace(ThunkState::Done(Value::Int(7))));
        assert!(matches!(u.value(), Some(Value::Int(7))));
        assert!(matches!(u.evaluated(), Some(Ok(Value::Int(7)))));
        assert!(t.ptr_eq(&u) && !t.ptr_eq(&Thunk::apply(Value::Null, Value::Null)));
    }
}
