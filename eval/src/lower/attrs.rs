//! Lowering of attribute sets and `let`: collecting bindings, merging nested attribute paths
//! (`a.b = 1; a.c = 2;`), and laying out recursive frames.

use std::rc::Rc;

use rnix::ast;
use rowan::ast::AstNode;
use rustc_hash::FxHashMap;

use super::scope::Scope;
use super::{entries_of, Lowerer};
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::ir::*;
use crate::source::Span;
use crate::symbol::Symbol;

/// Bindings collected from source before they are lowered.
pub(super) struct Pending {
    pub(super) rec: bool,
    pub(super) statics: Vec<(Symbol, PendingValue, Span)>,
    index: FxHashMap<Symbol, usize>,
    pub(super) dynamics: Vec<(ast::Attr, PendingValue, Span)>,
    /// Expressions of `inherit (e)`; `InheritFrom(k, ..)` selects from source `k`.
    pub(super) sources: Vec<ast::Expr>,
}

/// A binding's value before lowering.
pub(super) enum PendingValue {
    Ast(ast::Expr),
    Nested(Box<Pending>),
    Inherit(Symbol, Span),
    InheritFrom(usize, Symbol, Span),
}

/// What the collected bindings become.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Plain,
    Rec,
}

impl Pending {
    fn new(rec: bool) -> Pending {
        Pending {
            rec,
            statics: Vec::new(),
            index: FxHashMap::default(),
            dynamics: Vec::new(),
            sources: Vec::new(),
        }
    }
}

pub(super) fn strip_parens(mut e: ast::Expr) -> ast::Expr {
    while let ast::Expr::Paren(p) = &e {
        match p.expr() {
            Some(inner) => e = inner,
            None => break,
        }
    }
    e
}

impl Lowerer<'_> {
    pub(super) fn lower_attrset(&mut self, set: &ast::AttrSet) -> EvalResult<Expr> {
        let pending = self.collect(&entries_of(set), set.rec_token().is_some(), false)?;
        let kind = if pending.rec { Kind::Rec } else { Kind::Plain };
        let span = self.span(set.syntax());
        self.lower_pending(pending, kind, Some(span))
    }

    pub(super) fn lower_let_in(&mut self, l: &ast::LetIn) -> EvalResult<Expr> {
        let pending = self.collect(&entries_of(l), true, true)?;
        let (frame, body) = self.with_rec_frame(pending, None, |this| {
            this.lower_child_rc(l.syntax(), l.body())
        })?;
        Ok(Expr::Let {
            frame: Box::new(frame),
            body: body.1,
        })
    }

    /// `let { a = 1; body = a; }` is `(rec { a = 1; body = a; }).body`.
    pub(super) fn lower_legacy_let(&mut self, l: &ast::LegacyLet) -> EvalResult<Expr> {
        let pending = self.collect(&entries_of(l), true, false)?;
        let span = self.span(l.syntax());
        let set = self.lower_pending(pending, Kind::Rec, Some(span))?;
        Ok(Expr::Select {
            expr: Rc::new(set),
            path: Box::new([AttrKey::Static(
                Symbol::intern("body"),
                LookupHint::default(),
            )]),
            default: None,
            span,
        })
    }

    /// Collects the entries of a set or `let` into pending bindings, merging paths.
    pub(super) fn collect(
        &mut self,
        entries: &[ast::Entry],
        rec: bool,
        is_let: bool,
    ) -> EvalResult<Pending> {
        let mut p = Pending::new(rec);
        for entry in entries {
            match entry {
                ast::Entry::Inherit(inh) => self.collect_inherit(&mut p, inh, is_let)?,
                ast::Entry::AttrpathValue(apv) => {
                    let path = apv
                        .attrpath()
                        .ok_or_else(|| self.error(apv.syntax(), "syntax error"))?;
                    let attrs: Vec<ast::Attr> = path.attrs().collect();
                    let value = apv
                        .value()
                        .ok_or_else(|| self.error(apv.syntax(), "syntax error"))?;
                    self.add_path(&mut p, &attrs, value, is_let, String::new())?;
                }
            }
        }
        Ok(p)
    }

    fn collect_inherit(
        &mut self,
        p: &mut Pending,
        inh: &ast::Inherit,
        is_let: bool,
    ) -> EvalResult<()> {
        let source = inh.from().and_then(|f| f.expr());
        let src_idx = source.map(|s| {
            p.sources.push(s);
            p.sources.len() - 1
        });
        for attr in inh.attrs() {
            let span = self.span(attr.syntax());
            let Some(name) = self.static_attr_name(&attr)? else {
                return Err(self.error(attr.syntax(), "dynamic attributes not allowed in inherit"));
            };
            let value = match src_idx {
                Some(k) => PendingValue::InheritFrom(k, name, span),
                None => PendingValue::Inherit(name, span),
            };
            if let Some(&i) = p.index.get(&name) {
                let _ = is_let;
                return Err(self.dup_error(name.as_str(), span, p.statics[i].2));
            }
            p.index.insert(name, p.statics.len());
            p.statics.push((name, value, span));
        }
        Ok(())
    }

    fn dup_error(&self, path: &str, span: Span, previous: Span) -> Box<EvalError> {
        let _ = previous;
        EvalError::new(
            ErrorKind::Parse(format!(
                "attribute '{path}' already defined at {}",
                self.location_string(previous)
            )),
            Some(span),
        )
    }

    fn location_string(&self, span: Span) -> String {
        let lc = self.file.find_line_col(span.low());
        format!("{}:{}:{}", self.file.name(), lc.line + 1, lc.column + 1)
    }

    /// Adds `attrs = value` under `p`. `prefix` is the dotted path so far (for messages).
    fn add_path(
        &mut self,
        p: &mut Pending,
        attrs: &[ast::Attr],
        value: ast::Expr,
        is_let: bool,
        prefix: String,
    ) -> EvalResult<()> {
        let (first, rest) = attrs
            .split_first()
            .ok_or_else(|| self.error(value.syntax(), "syntax error"))?;
        let span = self.span(first.syntax());
        let name = self.static_attr_name(first)?;
        let full = |n: &str| {
            if prefix.is_empty() {
                n.to_string()
            } else {
                format!("{prefix}.{n}")
            }
        };
        let Some(name) = name else {
            if is_let {
                return Err(self.error(first.syntax(), "dynamic attributes not allowed in let"));
            }
            let v = if rest.is_empty() {
                self.pending_value(value)?
            } else {
                let mut nested = Pending::new(false);
                self.add_path(&mut nested, rest, value, false, String::new())?;
                PendingValue::Nested(Box::new(nested))
            };
            p.dynamics.push((first.clone(), v, span));
            return Ok(());
        };
        let path_str = full(name.as_str());
        if rest.is_empty() {
            let v = self.pending_value(value)?;
            match p.index.get(&name) {
                Some(&i) => {
                    let previous = p.statics[i].2;
                    match (&mut p.statics[i].1, v) {
                        (PendingValue::Nested(existing), PendingValue::Nested(new)) => {
                            self.merge(existing, *new, &path_str)?;
                        }
                        _ => return Err(self.dup_error(&path_str, span, previous)),
                    }
                }
                None => {
                    p.index.insert(name, p.statics.len());
                    p.statics.push((name, v, span));
                }
            }
            return Ok(());
        }
        let i = match p.index.get(&name) {
            Some(&i) => i,
            None => {
                p.index.insert(name, p.statics.len());
                p.statics.push((
                    name,
                    PendingValue::Nested(Box::new(Pending::new(false))),
                    span,
                ));
                p.statics.len() - 1
            }
        };
        let previous = p.statics[i].2;
        match &mut p.statics[i].1 {
            PendingValue::Nested(nested) => self.add_path(nested, rest, value, false, path_str),
            _ => Err(self.dup_error(&path_str, span, previous)),
        }
    }

    /// Merges the bindings of `new` into `existing` (both attribute set literals).
    fn merge(&mut self, existing: &mut Pending, new: Pending, prefix: &str) -> EvalResult<()> {
        let offset = existing.sources.len();
        existing.sources.extend(new.sources);
        let shift = |v: PendingValue| match v {
            PendingValue::InheritFrom(k, n, s) => PendingValue::InheritFrom(k + offset, n, s),
            other => other,
        };
        for (name, v, span) in new.statics {
            let v = shift(v);
            let path = format!("{prefix}.{name}");
            match existing.index.get(&name) {
                Some(&i) => {
                    let previous = existing.statics[i].2;
                    match (&mut existing.statics[i].1, v) {
                        (PendingValue::Nested(e), PendingValue::Nested(n)) => {
                            self.merge(e, *n, &path)?
                        }
                        _ => return Err(self.dup_error(&path, span, previous)),
                    }
                }
                None => {
                    existing.index.insert(name, existing.statics.len());
                    existing.statics.push((name, v, span));
                }
            }
        }
        for (attr, v, span) in new.dynamics {
            existing.dynamics.push((attr, shift(v), span));
        }
        Ok(())
    }

    /// A binding's value: attribute set literals stay open for merging with later paths.
    fn pending_value(&mut self, value: ast::Expr) -> EvalResult<PendingValue> {
        match strip_parens(value.clone()) {
            ast::Expr::AttrSet(set) => {
                let nested = self.collect(&entries_of(&set), set.rec_token().is_some(), false)?;
                Ok(PendingValue::Nested(Box::new(nested)))
            }
            _ => Ok(PendingValue::Ast(value)),
        }
    }

    fn lower_value(
        &mut self,
        v: PendingValue,
        name: Symbol,
        inherit_skip: usize,
        source_base: u32,
    ) -> EvalResult<Expr> {
        match v {
            PendingValue::Ast(e) => self.lower(&e, Some(name)),
            PendingValue::Nested(p) => {
                let kind = if p.rec { Kind::Rec } else { Kind::Plain };
                self.lower_pending(*p, kind, None)
            }
            PendingValue::Inherit(n, span) => self.resolve(n, inherit_skip, span),
            PendingValue::InheritFrom(k, n, span) => Ok(Expr::Select {
                expr: Rc::new(Expr::Local {
                    depth: 0,
                    idx: source_base + k as u32,
                    span: None,
                }),
                path: Box::new([AttrKey::Static(n, LookupHint::default())]),
                default: None,
                span,
            }),
        }
    }

    fn lower_pending(&mut self, p: Pending, kind: Kind, span: Option<Span>) -> EvalResult<Expr> {
        match kind {
            Kind::Plain => self.lower_plain(p, span),
            Kind::Rec => {
                let (frame, (attrs, _)) = self.with_rec_frame(p, span, |_| Ok(()))?;
                Ok(Expr::RecAttrs {
                    frame: Box::new(frame),
                    attrs: Box::new(attrs),
                })
            }
        }
    }

    fn lower_plain(&mut self, mut p: Pending, span: Option<Span>) -> EvalResult<Expr> {
        let sources = std::mem::take(&mut p.sources);
        let hidden = !sources.is_empty();
        if hidden {
            // A nameless frame holds the `inherit (e)` sources so each is evaluated once.
            self.scopes.push(Scope::Frame(FxHashMap::default()));
        }
        let result = (|| -> EvalResult<(Vec<ExprRef>, AttrsExpr)> {
            let mut source_exprs = Vec::new();
            for s in &sources {
                source_exprs.push(Rc::new(self.lower(s, None)?));
            }
            let mut attrs = AttrsExpr {
                span,
                ..Default::default()
            };
            let mut statics = std::mem::take(&mut p.statics);
            statics.sort_by_key(|a| a.0);
            for (name, v, sp) in statics {
                let value = Rc::new(self.lower_value(v, name, 0, 0)?);
                attrs.statics.push(StaticAttr {
                    name,
                    value,
                    span: sp,
                });
            }
            self.lower_dynamics(&mut attrs, std::mem::take(&mut p.dynamics))?;
            Ok((source_exprs, attrs))
        })();
        if hidden {
            self.scopes.pop();
        }
        let (source_exprs, attrs) = result?;
        let set = Expr::Attrs(Box::new(attrs));
        if hidden {
            Ok(Expr::Let {
                frame: Box::new(Frame {
                    bindings: super::lift::lift_all(source_exprs),
                }),
                body: Rc::new(set),
            })
        } else {
            Ok(set)
        }
    }

    fn lower_dynamics(
        &mut self,
        attrs: &mut AttrsExpr,
        dynamics: Vec<(ast::Attr, PendingValue, Span)>,
    ) -> EvalResult<()> {
        let dyn_name = Symbol::intern("<dynamic>");
        for (attr, v, sp) in dynamics {
            let name = match self.lower_attr_key(&attr)? {
                AttrKey::Dynamic(e, _) => e,
                AttrKey::Static(s, _) => Rc::new(Expr::Const(crate::value::Value::name_string(s))),
            };
            let value = Rc::new(self.lower_value(v, dyn_name, 0, 0)?);
            attrs.dynamics.push(DynamicAttr {
                name,
                value,
                span: sp,
            });
        }
        Ok(())
    }

    /// Lays out a recursive frame for `p` (statics first, then `inherit (e)` sources), lowers
    /// the bindings inside it, and runs `inner` (the `let` body) in the same scope. Returns the
    /// frame and the set's attributes (slot references) with `inner`'s result.
    fn with_rec_frame<T>(
        &mut self,
        mut p: Pending,
        span: Option<Span>,
        inner: impl FnOnce(&mut Self) -> EvalResult<T>,
    ) -> EvalResult<(Frame, (AttrsExpr, T))> {
        let mut statics = std::mem::take(&mut p.statics);
        statics.sort_by_key(|a| a.0);
        let mut names = FxHashMap::default();
        for (i, (name, _, sp)) in statics.iter().enumerate() {
            names.insert(*name, (i as u32, Some(*sp)));
        }
        let n = statics.len() as u32;
        self.scopes.push(Scope::Frame(names));
        let result = (|| -> EvalResult<(Frame, (AttrsExpr, T))> {
            let mut bindings = Vec::new();
            let mut attrs = AttrsExpr {
                span,
                ..Default::default()
            };
            for (i, (name, v, sp)) in statics.into_iter().enumerate() {
                bindings.push(Rc::new(self.lower_value(v, name, 1, n)?));
                attrs.statics.push(StaticAttr {
                    name,
                    value: Rc::new(Expr::Local {
                        depth: 0,
                        idx: i as u32,
                        span: None,
                    }),
                    span: sp,
                });
            }
            for s in std::mem::take(&mut p.sources) {
                bindings.push(Rc::new(self.lower(&s, None)?));
            }
            self.lower_dynamics(&mut attrs, std::mem::take(&mut p.dynamics))?;
            let t = inner(self)?;
            let bindings = super::lift::lift_all(bindings);
            Ok((Frame { bindings }, (attrs, t)))
        })();
        self.scopes.pop();
        result
    }
}
