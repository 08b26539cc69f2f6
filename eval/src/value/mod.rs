//! Run-time values.
//!
//! A [`Value`] is 16 bytes and cheap to clone: everything larger than a machine word lives
//! behind an `Rc`. Values in lazy positions (attribute values, list elements, arguments) may be
//! [`Thunk`]s; the evaluator forces them to weak head normal form on demand.

mod attrs;
mod counted;
mod env;
pub mod print;
mod registry;
mod string;
mod thunk;

use std::path::PathBuf;
use std::rc::Rc;

pub use attrs::{AttrEntry, Attrs, LookupHint};
pub use env::Env;
pub use registry::{Generation, Registry, RegistryError, RELEASED};
pub use string::{Context, ContextElem, NixString, StringBuilder};
pub use thunk::{made_on_this_thread as thunks_made_on_this_thread, Thunk, ThunkState};

use crate::error::EvalResult;
use crate::eval::Evaluator;
use crate::ir;
use crate::source::Span;

/// A Nix value: two machine words, a tag and a payload.
///
/// Both words are whole integers, and that is what keeps the evaluator fast:
/// - The tag is a word (`repr(u64)`). With a one-byte tag, moving a `Value` whose variant is
///   not known copied its first word as two overlapping 4-byte loads right after the tag was
///   written as one byte, and every such load waited for the store to drain (a failed store
///   forward) on every operand read.
/// - Every payload is one 8-byte integer or pointer ([`NixBool`] and [`NixFloat`] hold their
///   value as a word). Then a `Value` is passed to and returned from functions in two
///   registers; a one-byte `bool` or an `f64` (a float register) among the payloads made
///   every `Value` argument go through memory instead.
///
/// The size stays 16 bytes, and `Result<Value, _>` uses the unused tag values as its niche.
#[derive(Clone)]
#[repr(u64)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(NixBool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A double.
    Float(NixFloat),
    /// A string with context.
    String(Rc<NixString>),
    /// An absolute, canonical path.
    Path(Rc<PathBuf>),
    /// An attribute set.
    Attrs(Rc<Attrs>),
    /// A list.
    List(Rc<Vec<Value>>),
    /// A function written in Nix, closed over its environment.
    Lambda(Rc<Closure>),
    /// A builtin, possibly partially applied.
    PrimOp(Rc<PrimOpApp>),
    /// A suspended computation.
    Thunk(Thunk),
}

/// A Boolean held in a whole word (see [`Value`]'s layout).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NixBool(u64);

impl NixBool {
    /// `true` (usable in patterns: `Value::Bool(NixBool::TRUE)`).
    pub const TRUE: NixBool = NixBool(1);
    /// `false`.
    pub const FALSE: NixBool = NixBool(0);

    /// `b` as a word.
    #[inline(always)]
    pub const fn new(b: bool) -> NixBool {
        NixBool(b as u64)
    }

    /// The Boolean.
    #[inline(always)]
    pub const fn get(self) -> bool {
        self.0 != 0
    }
}

impl From<bool> for NixBool {
    fn from(b: bool) -> NixBool {
        NixBool::new(b)
    }
}

impl std::fmt::Debug for NixBool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// A double held as its bits in an integer word (see [`Value`]'s layout).
#[derive(Clone, Copy)]
pub struct NixFloat(u64);

impl NixFloat {
    /// `x` as a word.
    #[inline(always)]
    pub const fn new(x: f64) -> NixFloat {
        NixFloat(x.to_bits())
    }

    /// The double.
    #[inline(always)]
    pub const fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

impl From<f64> for NixFloat {
    fn from(x: f64) -> NixFloat {
        NixFloat::new(x)
    }
}

impl std::fmt::Debug for NixFloat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// A Nix function value: the lambda's code and the environment it was created in.
pub struct Closure {
    /// The lambda's IR.
    pub lambda: Rc<ir::Lambda>,
    /// The environment the lambda closes over.
    pub env: Rc<Env>,
}

/// The signature of a builtin's implementation. It receives its arguments (not forced: a
/// builtin forces what it needs, so that laziness matches Nix) and the call's span.
pub type PrimOpFn = fn(&mut Evaluator, Args<'_>, Option<Span>) -> EvalResult<Value>;

/// A builtin's arguments, borrowed from the caller, who keeps them in an [`ArgVec`].
///
/// Borrowed, not moved: the caller has just written each argument (two word stores per
/// value, returned in registers), and moving the whole vector into the call copied it in
/// 16-byte loads that waited for those stores to drain (a failed store forward), on every
/// builtin call. A builtin reads the arguments one word at a time and clones what it keeps.
pub type Args<'a> = &'a [Value];

/// A builtin's arguments, owned. Inline up to three values, the largest arity of any
/// builtin, so that neither a call nor a partial application allocates for them.
pub type ArgVec = smallvec::SmallVec<[Value; 3]>;

/// A builtin function.
pub struct PrimOp {
    /// Its name as in `builtins.NAME`.
    pub name: &'static str,
    /// How many arguments it takes before it runs.
    pub arity: usize,
    /// The implementation.
    pub func: PrimOpFn,
}

/// A builtin applied to fewer arguments than its arity.
pub struct PrimOpApp {
    /// The builtin.
    pub op: &'static PrimOp,
    /// The arguments given so far (fewer than `op.arity`).
    pub args: ArgVec,
}

/// `Rc::new(make())`, with the allocation made before the value: `Rc::new(v)` computes `v`
/// first, and since it must survive the call into the allocator it is built on the stack
/// and copied into the heap afterwards, in wide loads from the narrower stores that built
/// it (each waits for those stores to drain: a failed store forward). Allocating first lets
/// the value be written straight into its place. Frames, thunks and closures are made
/// millions of times in a module-system evaluation.
#[inline(always)]
pub(crate) fn rc_new<T>(make: impl FnOnce() -> T) -> Rc<T> {
    let mut rc = Rc::<T>::new_uninit();
    Rc::get_mut(&mut rc)
        .expect("a new Rc has no other handle")
        .write(make());
    // SAFETY: the value was written just above.
    unsafe { rc.assume_init() }
}

impl Value {
    /// A Boolean value.
    #[inline(always)]
    pub const fn bool(b: bool) -> Value {
        Value::Bool(NixBool::new(b))
    }

    /// A float value.
    #[inline(always)]
    pub const fn float(x: f64) -> Value {
        Value::Float(NixFloat::new(x))
    }

    /// A string value without context.
    pub fn string(s: impl Into<NixString>) -> Value {
        Value::String(Rc::new(s.into()))
    }

    /// A string value holding an attribute name (no copy of the text).
    pub fn name_string(name: crate::symbol::Symbol) -> Value {
        Value::String(Rc::new(NixString::from_static(name.as_bytes())))
    }

    /// A list value.
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(items))
    }

    /// An attribute set value.
    pub fn attrs(a: Attrs) -> Value {
        Value::Attrs(Rc::new(a))
    }

    /// The type as Nix names it in messages ("an integer", "a set", ...).
    pub fn type_desc(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a Boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::String(_) => "a string",
            Value::Path(_) => "a path",
            Value::Attrs(_) => "a set",
            Value::List(_) => "a list",
            Value::Lambda(_) | Value::PrimOp(_) => "a function",
            Value::Thunk(_) => "a thunk",
        }
    }

    /// The type as `builtins.typeOf` names it.
    pub fn type_of(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Path(_) => "path",
            Value::Attrs(_) => "set",
            Value::List(_) => "list",
            Value::Lambda(_) | Value::PrimOp(_) => "lambda",
            Value::Thunk(_) => "thunk",
        }
    }

    /// Whether this is a (not yet known to be evaluated) thunk.
    pub fn is_thunk(&self) -> bool {
        matches!(self, Value::Thunk(_))
    }

    /// Whether the value is callable without `__functor` (a lambda or builtin).
    pub fn is_function(&self) -> bool {
        matches!(self, Value::Lambda(_) | Value::PrimOp(_))
    }

    /// Whether this attribute set is a derivation (`type = "derivation"`), without forcing
    /// anything but the `type` attribute if it is already evaluated.
    pub fn is_derivation(&self) -> bool {
        let Value::Attrs(a) = self else { return false };
        match a.get(crate::eval::sym::type_()) {
            Some(Value::String(s)) => s.as_bytes() == b"derivation",
            Some(Value::Thunk(t)) => {
                matches!(t.value(), Some(Value::String(s)) if s.as_bytes() == b"derivation")
            }
            _ => false,
        }
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => write!(f, "null"),
            Value::Bool(b) => write!(f, "{}", b.get()),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{}", x.get()),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Path(p) => write!(f, "{}", p.display()),
            Value::Attrs(a) => write!(f, "{{ {} attrs }}", a.len()),
            Value::List(l) => write!(f, "[ {} items ]", l.len()),
            Value::Lambda(_) => write!(f, "<LAMBDA>"),
            Value::PrimOp(_) => write!(f, "<PRIMOP>"),
            Value::Thunk(_) => write!(f, "<thunk>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_is_two_words() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
        assert_eq!(std::mem::size_of::<crate::error::EvalResult<Value>>(), 16);
        assert_eq!(std::mem::size_of::<NixBool>(), 8);
        assert_eq!(std::mem::size_of::<NixFloat>(), 8);
    }

    #[test]
    fn word_payloads_give_back_what_they_hold() {
        assert!(NixBool::new(true).get() && NixBool::TRUE.get());
        assert!(!NixBool::new(false).get() && !NixBool::FALSE.get());
        assert_eq!(NixBool::from(true), NixBool::TRUE);
        for x in [0.0, -0.0, 1.5, -2.25e300, f64::MIN_POSITIVE, f64::INFINITY] {
            assert_eq!(NixFloat::new(x).get().to_bits(), x.to_bits());
        }
        assert!(NixFloat::from(f64::NAN).get().is_nan());
        assert!(matches!(Value::bool(true), Value::Bool(NixBool::TRUE)));
        assert!(matches!(Value::float(0.5), Value::Float(f) if f.get() == 0.5));
    }

    #[test]
    fn rc_new_builds_the_value_in_its_allocation() {
        let v = rc_new(|| vec![Value::Int(1), Value::string("x")]);
        assert_eq!(Rc::strong_count(&v), 1);
        assert!(matches!(v[0], Value::Int(1)));
        let w = v.clone();
        drop(v);
        assert_eq!(Rc::strong_count(&w), 1);
    }
}
