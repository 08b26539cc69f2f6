//! tvix-eval: the Nix language.
//!
//! Source is parsed by `rnix` into a lossless syntax tree, lowered ([`lower`]) into a compact
//! IR ([`ir`]) with statically resolved variables and spans into a shared [`source::SourceMap`],
//! and evaluated lazily by a direct, synchronous interpreter ([`Evaluator`]). The outside
//! world is reached only through [`io::EvalIO`].

pub mod builtins;
pub mod diagnostic;
pub mod doc_comment;
pub mod error;
pub mod eval;
pub mod fetch;
pub mod io;
pub mod ir;
pub mod lower;
pub mod source;
pub mod suggest;
pub mod symbol;
#[cfg(test)]
mod testing;
pub mod value;

pub use error::{ErrorKind, EvalError, EvalResult};
pub use eval::{EvalConfig, Evaluator, SearchPathEntry};
pub use value::Value;
