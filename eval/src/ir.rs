//! The evaluator's intermediate representation.
//!
//! Lowering (`crate::lower`) turns rnix's lossless syntax tree into this compact tree: variables
//! are resolved to frame slots, attribute names are interned, nested attribute paths are merged,
//! and every node that can fail carries a [`Span`] into the shared source map.

use std::rc::Rc;

use crate::source::Span;
use crate::symbol::Symbol;
pub use crate::value::LookupHint;
use crate::value::Value;

/// A shared expression; lazy positions hold these so a thunk can point at its code.
pub type ExprRef = Rc<Expr>;

/// An expression.
pub enum Expr {
    /// A constant: number, plain string, path literal, URI.
    Const(Value),
    /// A statically resolved variable: slot `idx` of the frame `depth` levels up.
    ///
    /// `span` is the reference's (`None` for references the lowerer makes itself); it locates
    /// an infinite recursion that goes through the variable.
    Local {
        depth: u32,
        idx: u32,
        span: Option<Span>,
    },
    /// A variable bound by no lexical scope: looked up in the enclosing `with`s at run time.
    WithVar {
        /// The name.
        name: Symbol,
        /// Depths of the enclosing `with` frames, innermost first.
        withs: Box<[u32]>,
        /// The reference's span.
        span: Span,
    },
    /// A string with interpolations.
    Str { parts: Box<[StrPart]>, span: Span },
    /// A path with interpolations; the first part is the literal prefix.
    PathInterp { parts: Box<[StrPart]>, span: Span },
    /// A non-recursive attribute set.
    Attrs(Box<AttrsExpr>),
    /// A recursive attribute set: its bindings live in a new frame.
    RecAttrs {
        frame: Box<Frame>,
        attrs: Box<AttrsExpr>,
    },
    /// A list.
    List(Box<[ExprRef]>),
    /// `e.a.b or default`
    Select {
        expr: ExprRef,
        path: Box<[AttrKey]>,
        default: Option<ExprRef>,
        span: Span,
    },
    /// `e ? a.b`
    HasAttr {
        expr: ExprRef,
        path: Box<[AttrKey]>,
        span: Span,
    },
    /// `f x`
    Apply {
        func: ExprRef,
        arg: ExprRef,
        span: Span,
    },
    /// A function.
    Lambda(Rc<Lambda>),
    /// `let ...; in body`
    Let { frame: Box<Frame>, body: ExprRef },
    /// `with ns; body`; the namespace is slot 0 of a new frame.
    With {
        namespace: ExprRef,
        body: ExprRef,
        span: Span,
    },
    /// `if c then t else e`
    If {
        cond: ExprRef,
        then: ExprRef,
        else_: ExprRef,
        span: Span,
    },
    /// `assert c; body`
    Assert {
        cond: ExprRef,
        body: ExprRef,
        /// The whole `assert` expression.
        span: Span,
        /// The condition (its text is quoted when the assertion fails).
        cond_span: Span,
    },
    /// A binary operator.
    BinOp {
        op: BinOp,
        lhs: ExprRef,
        rhs: ExprRef,
        span: Span,
    },
    /// `!e`
    Not { expr: ExprRef, span: Span },
    /// `-e`
    Neg { expr: ExprRef, span: Span },
    /// `__curPos`
    CurPos(Span),
    /// A binding of a frame (a `let`/`rec` binding, an `inherit (e)` source, a formal's
    /// default) that reads no slot of its frame, rewritten to run in the frame's parent:
    /// its value is made over the parent, so it does not hold its own frame in a cycle
    /// (`lower/lift.rs`).
    Parent(ExprRef),
}

impl Expr {
    /// Where the expression is, for the forms that know it (an infinite recursion is
    /// reported at the expression of the value found being evaluated).
    pub fn span(&self) -> Option<Span> {
        match self {
            Expr::Local { span, .. } => *span,
            Expr::WithVar { span, .. }
            | Expr::Str { span, .. }
            | Expr::PathInterp { span, .. }
            | Expr::Select { span, .. }
            | Expr::HasAttr { span, .. }
            | Expr::Apply { span, .. }
            | Expr::With { span, .. }
            | Expr::If { span, .. }
            | Expr::Assert { span, .. }
            | Expr::BinOp { span, .. }
            | Expr::Not { span, .. }
            | Expr::Neg { span, .. }
            | Expr::CurPos(span) => Some(*span),
            Expr::Attrs(a) => a.span,
            Expr::RecAttrs { attrs, .. } => attrs.span,
            Expr::Lambda(l) => Some(l.span),
            Expr::Parent(inner) => inner.span(),
            Expr::Const(_) | Expr::List(_) | Expr::Let { .. } => None,
        }
    }
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `++`
    Concat,
    /// `//`
    Update,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `->`
    Impl,
    /// `==`
    Eq,
    /// `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `|>`
    PipeRight,
    /// `<|`
    PipeLeft,
}

/// A part of an interpolated string or path.
pub enum StrPart {
    /// Literal bytes.
    Lit(Box<[u8]>),
    /// `${e}`
    Interp(ExprRef, Span),
}

/// One attribute name in a path: static or `${dynamic}`.
pub enum AttrKey {
    /// A name known at lowering time, with where it was last found (see [`LookupHint`]).
    Static(Symbol, LookupHint),
    /// A name computed at run time.
    Dynamic(ExprRef, Span),
}

/// The entries of an attribute set literal after nested paths were merged.
#[derive(Default)]
pub struct AttrsExpr {
    /// Attributes with static names, sorted and unique by name.
    pub statics: Vec<StaticAttr>,
    /// Attributes with `${}` names, in source order.
    pub dynamics: Vec<DynamicAttr>,
    /// Span of the whole set.
    pub span: Option<Span>,
}

/// A static attribute.
pub struct StaticAttr {
    /// The name.
    pub name: Symbol,
    /// The value's code (evaluated lazily in the set's scope).
    pub value: ExprRef,
    /// The definition site (the attribute name's span).
    pub span: Span,
}

/// A dynamic attribute `${k} = v`.
pub struct DynamicAttr {
    /// The name's code.
    pub name: ExprRef,
    /// The value's code.
    pub value: ExprRef,
    /// The name's span.
    pub span: Span,
}

/// A frame of recursive bindings (`let`, `rec`): slot `i` holds a thunk of `bindings[i]`
/// evaluated in the new frame.
pub struct Frame {
    /// The code of each slot.
    pub bindings: Vec<ExprRef>,
}

/// A function.
pub struct Lambda {
    /// The parameter form.
    pub param: Param,
    /// The body, evaluated in a frame holding the argument and formals.
    pub body: ExprRef,
    /// The whole lambda's span (`«lambda @ ...»` points at its start).
    pub span: Span,
    /// The name it was bound to, if any (for messages).
    pub name: Option<Symbol>,
}

/// How a lambda takes its argument.
pub enum Param {
    /// `x: ...`: slot 0 is the argument.
    Ident(Symbol),
    /// `{ a, b ? d, ... } @ x: ...`: slot i is formal i; the whole argument, when it is named
    /// (`@ x`), is in the slot after them.
    Pattern(Box<Pattern>),
}

/// A destructuring parameter.
pub struct Pattern {
    /// Formals in source order, each with an optional default (evaluated in the lambda frame).
    pub formals: Vec<Formal>,
    /// `...` present.
    pub ellipsis: bool,
    /// The `@` name, if any.
    pub bind: Option<Symbol>,
}

/// One formal parameter.
pub struct Formal {
    /// The name.
    pub name: Symbol,
    /// The default.
    pub default: Option<ExprRef>,
    /// The name's span.
    pub span: Span,
}

impl Pattern {
    /// The slot holding the whole argument (only there when `bind` is).
    pub fn arg_slot(&self) -> usize {
        self.formals.len()
    }

    /// Number of frame slots a call needs: the formals, and the whole argument if named.
    pub fn frame_size(&self) -> usize {
        self.formals.len() + usize::from(self.bind.is_some())
    }
}

impl Lambda {
    /// Number of frame slots a call needs.
    pub fn frame_size(&self) -> usize {
        match &self.param {
            Param::Ident(_) => 1,
            Param::Pattern(p) => p.frame_size(),
        }
    }
}
