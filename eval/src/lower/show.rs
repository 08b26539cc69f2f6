//! `nix-instantiate --parse`: the parsed expression printed as current Nix prints its
//! syntax tree (fully parenthesised, with the parser's desugarings visible).
//!
//! The reference prints its own abstract syntax tree, which is not rnix's, so the forms it
//! rewrites while parsing are rewritten here too: `a - b` is `(__sub a b)`, `a < b` is
//! `(__lessThan a b)` (`>`, `<=` and `>=` swap operands and negate), `-a` is `(__sub 0 a)`,
//! `<p>` is `(__findFile __nixPath "p")`, `let { }` selects `body` from a `rec` set,
//! consecutive applications are one call, and nested attribute paths are merged (through
//! the lowerer's own collection, so both agree on what merges). Bindings are printed sorted
//! by name, plain `inherit`s first, then `inherit (e)` grouped by source in source order.
//! Nix 2.8 wrote `inherit (e) x` as `x = (e).x`; current Nix keeps the `inherit`, and the
//! corpus's `.exp` files are current Nix's, so this follows current Nix.

use rnix::ast::{self, AstToken, InterpolPart};
use rowan::ast::AstNode;

use super::attrs::{strip_parens, Pending, PendingValue};
use super::{canonicalize_path, entries_of, Lowerer};
use crate::error::EvalResult;
use crate::value::print::{escape_string, format_float, write_attr_name};

impl Lowerer<'_> {
    /// Writes `e` as the reference's `show` does. Only called on source that lowered
    /// without error, so the syntax is complete.
    pub(super) fn show(&mut self, e: &ast::Expr, out: &mut String) -> EvalResult<()> {
        use ast::Expr as E;
        match e {
            E::Paren(p) => self.show_child(p.syntax(), p.expr(), out)?,
            E::Root(r) => self.show_child(r.syntax(), r.expr(), out)?,
            E::Error(n) => return Err(self.error(n.syntax(), "syntax error")),
            E::Literal(lit) => match lit.kind() {
                ast::LiteralKind::Integer(i) => match i.value() {
                    Ok(v) => out.push_str(&v.to_string()),
                    Err(_) => return Err(self.error(lit.syntax(), "invalid integer")),
                },
                ast::LiteralKind::Float(f) => match f.value() {
                    Ok(v) => out.push_str(&format_float(v)),
                    Err(_) => return Err(self.error(lit.syntax(), "invalid float")),
                },
                ast::LiteralKind::Uri(u) => {
                    escape_string(u.syntax().text().as_bytes(), out);
                }
            },
            E::Ident(id) => {
                let name = self.ident_name(id)?;
                write_attr_name(name.as_str(), out);
            }
            E::Str(s) => self.show_str(s, out)?,
            E::PathAbs(_) | E::PathRel(_) | E::PathHome(_) => {
                let p = ast::Path::cast(e.syntax().clone())
                    .ok_or_else(|| self.error(e.syntax(), "syntax error in path"))?;
                self.show_path(&p, out)?;
            }
            E::PathSearch(p) => {
                let text = p
                    .content()
                    .map(|c| c.text().to_string())
                    .unwrap_or_default();
                let name = text.trim_start_matches('<').trim_end_matches('>');
                out.push_str("(__findFile __nixPath ");
                escape_string(name.as_bytes(), out);
                out.push(')');
            }
            E::List(l) => {
                out.push_str("[ ");
                for item in l.items() {
                    out.push('(');
                    self.show(&item, out)?;
                    out.push_str(") ");
                }
                out.push(']');
            }
            E::AttrSet(set) => {
                let pending = self.collect(&entries_of(set), set.rec_token().is_some(), false)?;
                self.show_set(pending, out)?;
            }
            E::LetIn(l) => {
                let pending = self.collect(&entries_of(l), true, true)?;
                out.push_str("(let ");
                self.show_bindings(pending, out)?;
                out.push_str("in ");
                self.show_child(l.syntax(), l.body(), out)?;
                out.push(')');
            }
            E::LegacyLet(l) => {
                let mut pending = self.collect(&entries_of(l), true, false)?;
                pending.rec = true;
                out.push('(');
                self.show_set(pending, out)?;
                out.push_str(").body");
            }
            E::Select(s) => {
                out.push('(');
                self.show_child(s.syntax(), s.expr(), out)?;
                out.push_str(").");
                self.show_attrpath(s.attrpath(), s.syntax(), out)?;
                if let Some(d) = s.default_expr() {
                    out.push_str(" or (");
                    self.show(&d, out)?;
                    out.push(')');
                }
            }
            E::HasAttr(h) => {
                out.push_str("((");
                self.show_child(h.syntax(), h.expr(), out)?;
                out.push_str(") ? ");
                self.show_attrpath(h.attrpath(), h.syntax(), out)?;
                out.push(')');
            }
            E::Apply(_) => {
                let (func, args) = self.call_spine(e)?;
                self.show_call(&func, &args, out)?;
            }
            E::Lambda(l) => self.show_lambda(l, out)?,
            E::With(w) => {
                out.push_str("(with ");
                self.show_child(w.syntax(), w.namespace(), out)?;
                out.push_str("; ");
                self.show_child(w.syntax(), w.body(), out)?;
                out.push(')');
            }
            E::IfElse(i) => {
                out.push_str("(if ");
                self.show_child(i.syntax(), i.condition(), out)?;
                out.push_str(" then ");
                self.show_child(i.syntax(), i.body(), out)?;
                out.push_str(" else ");
                self.show_child(i.syntax(), i.else_body(), out)?;
                out.push(')');
            }
            // The reference prints no parentheses around an assertion.
            E::Assert(a) => {
                out.push_str("assert ");
                self.show_child(a.syntax(), a.condition(), out)?;
                out.push_str("; ");
                self.show_child(a.syntax(), a.body(), out)?;
            }
            E::UnaryOp(u) => match u.operator() {
                Some(ast::UnaryOpKind::Invert) => {
                    out.push_str("(! ");
                    self.show_child(u.syntax(), u.expr(), out)?;
                    out.push(')');
                }
                Some(ast::UnaryOpKind::Negate) => {
                    out.push_str("(__sub 0 ");
                    self.show_child(u.syntax(), u.expr(), out)?;
                    out.push(')');
                }
                None => return Err(self.error(u.syntax(), "syntax error, unknown operator")),
            },
            E::BinOp(b) => self.show_binop(b, out)?,
            E::CurPos(_) => out.push_str("__curPos"),
        }
        Ok(())
    }

    fn show_child(
        &mut self,
        parent: &rnix::SyntaxNode,
        child: Option<ast::Expr>,
        out: &mut String,
    ) -> EvalResult<()> {
        match child {
            Some(c) => self.show(&c, out),
            None => Err(self.error(parent, "syntax error, missing expression")),
        }
    }

    fn required(
        &self,
        parent: &rnix::SyntaxNode,
        child: Option<ast::Expr>,
    ) -> EvalResult<ast::Expr> {
        child.ok_or_else(|| self.error(parent, "syntax error, missing expression"))
    }

    /// The function and arguments of an application: the reference's parser makes `f a b`
    /// and `(f a) b` one call with two arguments.
    fn call_spine(&self, e: &ast::Expr) -> EvalResult<(ast::Expr, Vec<ast::Expr>)> {
        let mut args = Vec::new();
        let mut head = e.clone();
        while let ast::Expr::Apply(a) = strip_parens(head.clone()) {
            args.push(self.required(a.syntax(), a.argument())?);
            head = self.required(a.syntax(), a.lambda())?;
        }
        args.reverse();
        Ok((head, args))
    }

    fn show_call(
        &mut self,
        func: &ast::Expr,
        args: &[ast::Expr],
        out: &mut String,
    ) -> EvalResult<()> {
        out.push('(');
        self.show(func, out)?;
        for a in args {
            out.push(' ');
            self.show(a, out)?;
        }
        out.push(')');
        Ok(())
    }

    fn show_binop(&mut self, b: &ast::BinOp, out: &mut String) -> EvalResult<()> {
        use ast::BinOpKind as K;
        let lhs = self.required(b.syntax(), b.lhs())?;
        let rhs = self.required(b.syntax(), b.rhs())?;
        let Some(op) = b.operator() else {
            return Err(self.error(b.syntax(), "syntax error, unknown operator"));
        };
        let infix = match op {
            K::Concat => "++",
            K::Update => "//",
            K::Add => "+",
            K::And => "&&",
            K::Or => "||",
            K::Implication => "->",
            K::Equal => "==",
            K::NotEqual => "!=",
            K::Sub | K::Mul | K::Div => {
                let f = match op {
                    K::Sub => "__sub",
                    K::Mul => "__mul",
                    _ => "__div",
                };
                out.push('(');
                out.push_str(f);
                out.push(' ');
                self.show(&lhs, out)?;
                out.push(' ');
                self.show(&rhs, out)?;
                out.push(')');
                return Ok(());
            }
            K::Less | K::More | K::LessOrEq | K::MoreOrEq => {
                // `a > b` is `b < a`; `a <= b` is `!(b < a)`; `a >= b` is `!(a < b)`.
                let (first, second) = match op {
                    K::Less | K::MoreOrEq => (&lhs, &rhs),
                    _ => (&rhs, &lhs),
                };
                let negated = matches!(op, K::LessOrEq | K::MoreOrEq);
                if negated {
                    out.push_str("(! ");
                }
                out.push_str("(__lessThan ");
                self.show(first, out)?;
                out.push(' ');
                self.show(second, out)?;
                out.push(')');
                if negated {
                    out.push(')');
                }
                return Ok(());
            }
            // `x |> f` and `f <| x` are calls of `f`, joining an application `f` already is.
            K::PipeRight | K::PipeLeft => {
                let (func, arg) = match op {
                    K::PipeRight => (rhs, lhs),
                    _ => (lhs, rhs),
                };
                let (head, mut args) = match strip_parens(func.clone()) {
                    ast::Expr::Apply(_) => self.call_spine(&func)?,
                    _ => (func, Vec::new()),
                };
                args.push(arg);
                return self.show_call(&head, &args, out);
            }
        };
        out.push('(');
        self.show(&lhs, out)?;
        out.push(' ');
        out.push_str(infix);
        out.push(' ');
        self.show(&rhs, out)?;
        out.push(')');
        Ok(())
    }

    fn show_lambda(&mut self, l: &ast::Lambda, out: &mut String) -> EvalResult<()> {
        out.push('(');
        match l.param() {
            Some(ast::Param::IdentParam(ip)) => {
                let id = ip
                    .ident()
                    .ok_or_else(|| self.error(ip.syntax(), "syntax error"))?;
                let name = self.ident_name(&id)?;
                write_attr_name(name.as_str(), out);
            }
            Some(ast::Param::Pattern(p)) => {
                let mut formals = Vec::new();
                for entry in p.pat_entries() {
                    let id = entry
                        .ident()
                        .ok_or_else(|| self.error(entry.syntax(), "syntax error"))?;
                    formals.push((self.ident_name(&id)?, entry.default()));
                }
                // The reference prints formals in the order of their names.
                formals.sort_by_key(|f| f.0);
                out.push_str("{ ");
                for (i, (name, default)) in formals.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_attr_name(name.as_str(), out);
                    if let Some(d) = default {
                        out.push_str(" ? ");
                        self.show(d, out)?;
                    }
                }
                if p.ellipsis_token().is_some() {
                    if !formals.is_empty() {
                        out.push_str(", ");
                    }
                    out.push_str("...");
                }
                out.push_str(" }");
                if let Some(bind) = p.pat_bind() {
                    let id = bind
                        .ident()
                        .ok_or_else(|| self.error(bind.syntax(), "syntax error"))?;
                    out.push_str(" @ ");
                    let name = self.ident_name(&id)?;
                    write_attr_name(name.as_str(), out);
                }
            }
            None => return Err(self.error(l.syntax(), "syntax error, missing parameter")),
        }
        out.push_str(": ");
        self.show_child(l.syntax(), l.body(), out)?;
        out.push(')');
        Ok(())
    }

    /// A string: a literal when it has no interpolation, else the concatenation of its
    /// parts (empty literal parts dropped, as the reference's parser drops them).
    fn show_str(&mut self, s: &ast::Str, out: &mut String) -> EvalResult<()> {
        let parts = super::str_parts(s);
        let parts: Vec<_> = parts
            .into_iter()
            .filter(|p| !matches!(p, InterpolPart::Literal(t) if t.is_empty()))
            .collect();
        match parts.as_slice() {
            [] => out.push_str("\"\""),
            [InterpolPart::Literal(t)] => {
                escape_string(&crate::source::literal_bytes(t.clone()), out)
            }
            _ => {
                out.push('(');
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" + ");
                    }
                    match part {
                        InterpolPart::Literal(t) => {
                            escape_string(&crate::source::literal_bytes(t.clone()), out)
                        }
                        InterpolPart::Interpolation(i) => {
                            self.show_child(i.syntax(), i.expr(), out)?
                        }
                    }
                }
                out.push(')');
            }
        }
        Ok(())
    }

    /// A path: absolute and canonical when it is one literal; with interpolations, the
    /// absolute first part (its trailing slash kept) followed by the rest as strings.
    fn show_path(&mut self, p: &ast::Path, out: &mut String) -> EvalResult<()> {
        use std::os::unix::ffi::OsStrExt;
        let children: Vec<_> = p.syntax().children_with_tokens().collect();
        let mut shown = Vec::new();
        for (i, child) in children.iter().enumerate() {
            match child {
                rowan::NodeOrToken::Token(t) => {
                    let mut s = String::new();
                    if i == 0 {
                        let text = self.path_prefix(p, t.text())?;
                        let canon = canonicalize_path(text.as_bytes());
                        s.push_str(&String::from_utf8_lossy(canon.as_os_str().as_bytes()));
                        if text.ends_with('/') && !s.ends_with('/') {
                            s.push('/');
                        }
                        if children.len() == 1 {
                            out.push_str(&s);
                            return Ok(());
                        }
                        shown.push(s);
                    } else {
                        escape_string(t.text().as_bytes(), &mut s);
                        shown.push(s);
                    }
                }
                rowan::NodeOrToken::Node(n) => {
                    let interp = ast::Interpol::cast(n.clone())
                        .ok_or_else(|| self.error(p.syntax(), "syntax error in path"))?;
                    let mut s = String::new();
                    self.show_child(interp.syntax(), interp.expr(), &mut s)?;
                    shown.push(s);
                }
            }
        }
        out.push('(');
        out.push_str(&shown.join(" + "));
        out.push(')');
        Ok(())
    }

    fn show_attrpath(
        &mut self,
        path: Option<ast::Attrpath>,
        parent: &rnix::SyntaxNode,
        out: &mut String,
    ) -> EvalResult<()> {
        let path =
            path.ok_or_else(|| self.error(parent, "syntax error, missing attribute path"))?;
        for (i, attr) in path.attrs().enumerate() {
            if i > 0 {
                out.push('.');
            }
            self.show_attr_name(&attr, out)?;
        }
        Ok(())
    }

    /// An attribute name: the name when it is static, else `"${e}"`.
    fn show_attr_name(&mut self, attr: &ast::Attr, out: &mut String) -> EvalResult<()> {
        if let Some(name) = self.static_attr_name(attr)? {
            write_attr_name(name.as_str(), out);
            return Ok(());
        }
        out.push_str("\"${");
        match attr {
            ast::Attr::Dynamic(d) => self.show_child(d.syntax(), d.expr(), out)?,
            ast::Attr::Str(s) => self.show_str(s, out)?,
            ast::Attr::Ident(id) => return Err(self.error(id.syntax(), "syntax error")),
        }
        out.push_str("}\"");
        Ok(())
    }

    fn show_set(&mut self, p: Pending, out: &mut String) -> EvalResult<()> {
        if p.rec {
            out.push_str("rec ");
        }
        out.push_str("{ ");
        self.show_bindings(p, out)?;
        out.push('}');
        Ok(())
    }

    /// The bindings of a set or `let`, each followed by `; `.
    fn show_bindings(&mut self, p: Pending, out: &mut String) -> EvalResult<()> {
        let Pending {
            mut statics,
            dynamics,
            sources,
            ..
        } = p;
        statics.sort_by_key(|s| s.0);
        let inherits: Vec<_> = statics
            .iter()
            .filter_map(|(name, v, _)| matches!(v, PendingValue::Inherit(..)).then_some(*name))
            .collect();
        if !inherits.is_empty() {
            out.push_str("inherit");
            for name in inherits {
                out.push(' ');
                write_attr_name(name.as_str(), out);
            }
            out.push_str("; ");
        }
        for (k, source) in sources.iter().enumerate() {
            let names: Vec<_> = statics
                .iter()
                .filter_map(|(name, v, _)| {
                    matches!(v, PendingValue::InheritFrom(i, ..) if *i == k).then_some(*name)
                })
                .collect();
            if names.is_empty() {
                continue;
            }
            out.push_str("inherit (");
            self.show(source, out)?;
            out.push(')');
            for name in names {
                out.push(' ');
                write_attr_name(name.as_str(), out);
            }
            out.push_str("; ");
        }
        for (name, v, _) in statics {
            if matches!(v, PendingValue::Inherit(..) | PendingValue::InheritFrom(..)) {
                continue;
            }
            write_attr_name(name.as_str(), out);
            out.push_str(" = ");
            self.show_value(v, out)?;
            out.push_str("; ");
        }
        for (attr, v, _) in dynamics {
            // A name that turned out static (`${"a"}`) is still printed as the reference's
            // parser keeps it: as a dynamic name.
            out.push_str("\"${");
            match &attr {
                ast::Attr::Dynamic(d) => self.show_child(d.syntax(), d.expr(), out)?,
                ast::Attr::Str(s) => self.show_str(s, out)?,
                ast::Attr::Ident(id) => write_attr_name(self.ident_name(id)?.as_str(), out),
            }
            out.push_str("}\" = ");
            self.show_value(v, out)?;
            out.push_str("; ");
        }
        Ok(())
    }

    fn show_value(&mut self, v: PendingValue, out: &mut String) -> EvalResult<()> {
        match v {
            PendingValue::Ast(e) => self.show(&e, out),
            PendingValue::Nested(p) => self.show_set(*p, out),
            PendingValue::Inherit(name, _) => {
                write_attr_name(name.as_str(), out);
                Ok(())
            }
            PendingValue::InheritFrom(..) => Ok(()),
        }
    }
}
