//! Static scopes used while lowering: which names each frame binds and where.

use rustc_hash::FxHashMap;

use crate::ir::Expr;
use crate::source::Span;
use crate::symbol::Symbol;

/// A compile-time scope.
pub enum Scope {
    /// A frame of named slots (lambda, `let`, `rec`, or the global frame). Hidden frames
    /// (slots for `inherit (e)` sources of plain sets) bind no names.
    Frame(FxHashMap<Symbol, (u32, Option<Span>)>),
    /// A `with`: a frame whose slot 0 is the namespace, searched dynamically.
    With,
}

/// Where a name resolved to.
pub enum Resolved {
    /// A lexical binding, and its definition site.
    Local(Expr, Option<Span>),
    /// Only dynamically, through these `with` frames (innermost first).
    With(Box<[u32]>),
    /// Nowhere.
    Undefined,
}

/// The stack of scopes from the global frame (bottom) to the innermost.
#[derive(Default)]
pub struct Scopes {
    stack: Vec<Scope>,
}

impl Scopes {
    /// Pushes a scope.
    pub fn push(&mut self, s: Scope) {
        self.stack.push(s);
    }

    /// Pops the innermost scope.
    pub fn pop(&mut self) {
        self.stack.pop();
    }

    /// Every name visible from the innermost scope (for "did you mean" suggestions).
    pub fn visible_names(&self) -> impl Iterator<Item = Symbol> + '_ {
        self.stack
            .iter()
            .flat_map(|scope| match scope {
                Scope::Frame(names) => Some(names.keys().copied()),
                Scope::With => None,
            })
            .flatten()
    }

    /// Resolves `name`, ignoring the `skip` innermost scopes (used by `inherit` in `let` and
    /// `rec`, which refers to the enclosing scope, not to the binding it creates).
    pub fn resolve(&self, name: Symbol, skip: usize) -> Resolved {
        let mut withs = Vec::new();
        for (depth, scope) in (skip as u32..).zip(self.stack.iter().rev().skip(skip)) {
            match scope {
                Scope::Frame(names) => {
                    if let Some(&(idx, def)) = names.get(&name) {
                        return Resolved::Local(
                            Expr::Local {
                                depth,
                                idx,
                                span: None,
                            },
                            def,
                        );
                    }
                }
                Scope::With => withs.push(depth),
            }
        }
        if withs.is_empty() {
            Resolved::Undefined
        } else {
            Resolved::With(withs.into_boxed_slice())
        }
    }
}
