//! Run-time values.
//!
//! A [`Value`] is 16 bytes and cheap to clone: everything larger than a machine word lives
//! behind an `Rc`. Values in lazy positions (attribute values, list elements, arguments) may be
//! [`Thunk`]s; the evaluator forces them to weak head normal form on demand.

mod attrs;
mod counted;
mod env;
pub mod print;
mod string;
mod thunk;

use std::path::PathBuf;
use std::rc::Rc;

pub use attrs::{AttrEntry, Attrs};
pub use env::Env;
pub use string::{Context, ContextElem, NixString, StringBuilder};
pub use thunk::{Thunk, ThunkState};

use crate::error::EvalResult;
use crate::eval::Evaluator;
use crate::ir;
use crate::source::Span;

/// A Nix value.
///
/// The tag is a whole word (`repr(u64)`): with a one-byte tag, moving a `Value` whose variant
/// is not known copied its first word as two overlapping 4-byte loads right after the tag was
/// written as one byte, and every such load waited for the store to drain (a failed store
/// forward) on every operand read. With a word-sized tag a value moves as two words; the size
/// stays 16 bytes, and `Result<Value, _>` still uses the unused tag values as its niche.
#[derive(Clone)]
#[repr(u64)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A double.
    Float(f64),
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

/// A Nix function value: the lambda's code and the environment it was created in.
pub struct Closure {
    /// The lambda's IR.
    pub lambda: Rc<ir::Lambda>,
    /// The environment the lambda closes over.
    pub env: Rc<Env>,
}

/// The signature of a builtin's implementation. It receives its arguments (not forced: a
/// builtin forces what it needs, so that laziness matches Nix) and the call's span.
pub type PrimOpFn = fn(&mut Evaluator, Args, Option<Span>) -> EvalResult<Value>;

/// A builtin's arguments. Inline up to three values, the largest arity of any builtin, so
/// that neither a call nor a partial application allocates for them.
pub type Args = smallvec::SmallVec<[Value; 3]>;

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
    pub args: Args,
}

impl Value {
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
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
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
    }
}
