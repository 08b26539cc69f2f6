//! Bindings that read nothing of their own frame move to the frame's parent.
//!
//! Frames are reference counted. A `let`/`rec` binding, an `inherit (e)` source or a
//! formal's default is made in the frame it belongs to, so a lambda or a not yet forced
//! thunk in a slot holds its own frame: a cycle, which reference counting never frees, and
//! which keeps every frame up the chain alive with it (a function's `let` that is entered on
//! every call leaks a frame per call). When the binding's code reads no slot of its own
//! frame, it means the same one frame further out, with every variable that reaches past
//! the frame one level shallower; [`Expr::Parent`] marks such a binding, and the evaluator
//! makes its value over the parent frame, which does not point back.

use std::rc::Rc;

use crate::ir::*;

/// The binding reads a slot of the frame it was written in.
struct ReadsFrame;

/// `binding`, written directly in a frame, as an [`Expr::Parent`] that runs in the frame's
/// parent, or unchanged when it reads its own frame.
pub(crate) fn lift(binding: ExprRef) -> ExprRef {
    if matches!(&*binding, Expr::Parent(_)) {
        return binding;
    }
    match shift(&binding, 0) {
        Ok(Some(shifted)) => Rc::new(Expr::Parent(Rc::new(shifted))),
        Ok(None) => Rc::new(Expr::Parent(binding)),
        Err(ReadsFrame) => binding,
    }
}

/// Every binding of a frame through [`lift`].
pub(crate) fn lift_all(bindings: Vec<ExprRef>) -> Vec<ExprRef> {
    bindings.into_iter().map(lift).collect()
}

/// Collects shifted children and whether any changed.
#[derive(Default)]
struct Children {
    changed: bool,
}

impl Children {
    fn expr(&mut self, e: &ExprRef, level: u32) -> Result<ExprRef, ReadsFrame> {
        Ok(match shift(e, level)? {
            Some(new) => {
                self.changed = true;
                Rc::new(new)
            }
            None => e.clone(),
        })
    }

    fn opt(&mut self, e: &Option<ExprRef>, level: u32) -> Result<Option<ExprRef>, ReadsFrame> {
        e.as_ref().map(|e| self.expr(e, level)).transpose()
    }

    fn keys(&mut self, path: &[AttrKey], level: u32) -> Result<Box<[AttrKey]>, ReadsFrame> {
        path.iter()
            .map(|k| {
                Ok(match k {
                    AttrKey::Static(s, _) => AttrKey::Static(*s, LookupHint::default()),
                    AttrKey::Dynamic(e, span) => AttrKey::Dynamic(self.expr(e, level)?, *span),
                })
            })
            .collect()
    }

    fn parts(&mut self, parts: &[StrPart], level: u32) -> Result<Box<[StrPart]>, ReadsFrame> {
        parts
            .iter()
            .map(|p| {
                Ok(match p {
                    StrPart::Lit(b) => StrPart::Lit(b.clone()),
                    StrPart::Interp(e, span) => StrPart::Interp(self.expr(e, level)?, *span),
                })
            })
            .collect()
    }

    fn attrs(&mut self, a: &AttrsExpr, level: u32) -> Result<AttrsExpr, ReadsFrame> {
        Ok(AttrsExpr {
            statics: a
                .statics
                .iter()
                .map(|s| {
                    Ok(StaticAttr {
                        name: s.name,
                        value: self.expr(&s.value, level)?,
                        span: s.span,
                    })
                })
                .collect::<Result<_, _>>()?,
            dynamics: a
                .dynamics
                .iter()
                .map(|d| {
                    Ok(DynamicAttr {
                        name: self.expr(&d.name, level)?,
                        value: self.expr(&d.value, level)?,
                        span: d.span,
                    })
                })
                .collect::<Result<_, _>>()?,
            span: a.span,
        })
    }

    fn frame(&mut self, f: &Frame, level: u32) -> Result<Frame, ReadsFrame> {
        Ok(Frame {
            bindings: f
                .bindings
                .iter()
                .map(|b| self.expr(b, level))
                .collect::<Result<_, _>>()?,
        })
    }

    fn lambda(&mut self, l: &Lambda, level: u32) -> Result<Lambda, ReadsFrame> {
        let param = match &l.param {
            Param::Ident(s) => Param::Ident(*s),
            Param::Pattern(p) => Param::Pattern(Box::new(Pattern {
                formals: p
                    .formals
                    .iter()
                    .map(|f| {
                        Ok(Formal {
                            name: f.name,
                            default: self.opt(&f.default, level)?,
                            span: f.span,
                        })
                    })
                    .collect::<Result<_, _>>()?,
                ellipsis: p.ellipsis,
                bind: p.bind,
            })),
        };
        Ok(Lambda {
            param,
            body: self.expr(&l.body, level)?,
            span: l.span,
            name: l.name,
        })
    }
}

/// `e`, which runs `level` frames inside the frame being left, rewritten to run one frame
/// further out: `None` when nothing in it reaches past that frame (it is unchanged), an
/// error when something reads the frame itself.
fn shift(e: &Expr, level: u32) -> Result<Option<Expr>, ReadsFrame> {
    let mut c = Children::default();
    let inner = level + 1;
    let new = match e {
        Expr::Const(_) | Expr::CurPos(_) => return Ok(None),
        Expr::Local { depth, idx, span } => {
            return match depth.cmp(&level) {
                std::cmp::Ordering::Less => Ok(None),
                std::cmp::Ordering::Equal => Err(ReadsFrame),
                std::cmp::Ordering::Greater => Ok(Some(Expr::Local {
                    depth: depth - 1,
                    idx: *idx,
                    span: *span,
                })),
            }
        }
        Expr::WithVar { name, withs, span } => {
            // The frame being left is never a `with`; refusing is only a safeguard.
            if withs.contains(&level) {
                return Err(ReadsFrame);
            }
            if withs.iter().all(|&w| w < level) {
                return Ok(None);
            }
            return Ok(Some(Expr::WithVar {
                name: *name,
                withs: withs
                    .iter()
                    .map(|&w| if w > level { w - 1 } else { w })
                    .collect(),
                span: *span,
            }));
        }
        Expr::Parent(body) => {
            // Runs one frame further out than where it is written (always inside a frame
            // here: a binding is lifted once, before anything encloses it).
            let Some(outer) = level.checked_sub(1) else {
                return Err(ReadsFrame);
            };
            Expr::Parent(c.expr(body, outer)?)
        }
        Expr::Str { parts, span } => Expr::Str {
            parts: c.parts(parts, level)?,
            span: *span,
        },
        Expr::PathInterp { parts, span } => Expr::PathInterp {
            parts: c.parts(parts, level)?,
            span: *span,
        },
        Expr::Attrs(a) => Expr::Attrs(Box::new(c.attrs(a, level)?)),
        Expr::RecAttrs { frame, attrs } => Expr::RecAttrs {
            frame: Box::new(c.frame(frame, inner)?),
            attrs: Box::new(c.attrs(attrs, inner)?),
        },
        Expr::List(items) => Expr::List(
            items
                .iter()
                .map(|i| c.expr(i, level))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Select {
            expr,
            path,
            default,
            span,
        } => Expr::Select {
            expr: c.expr(expr, level)?,
            path: c.keys(path, level)?,
            default: c.opt(default, level)?,
            span: *span,
        },
        Expr::HasAttr { expr, path, span } => Expr::HasAttr {
            expr: c.expr(expr, level)?,
            path: c.keys(path, level)?,
            span: *span,
        },
        Expr::Apply { func, arg, span } => Expr::Apply {
            func: c.expr(func, level)?,
            arg: c.expr(arg, level)?,
            span: *span,
        },
        Expr::Lambda(l) => Expr::Lambda(Rc::new(c.lambda(l, inner)?)),
        Expr::Let { frame, body } => Expr::Let {
            frame: Box::new(c.frame(frame, inner)?),
            body: c.expr(body, inner)?,
        },
        Expr::With {
            namespace,
            body,
            span,
        } => Expr::With {
            namespace: c.expr(namespace, level)?,
            body: c.expr(body, inner)?,
            span: *span,
        },
        Expr::If {
            cond,
            then,
            else_,
            span,
        } => Expr::If {
            cond: c.expr(cond, level)?,
            then: c.expr(then, level)?,
            else_: c.expr(else_, level)?,
            span: *span,
        },
        Expr::Assert {
            cond,
            body,
            span,
            cond_span,
        } => Expr::Assert {
            cond: c.expr(cond, level)?,
            body: c.expr(body, level)?,
            span: *span,
            cond_span: *cond_span,
        },
        Expr::BinOp { op, lhs, rhs, span } => Expr::BinOp {
            op: *op,
            lhs: c.expr(lhs, level)?,
            rhs: c.expr(rhs, level)?,
            span: *span,
        },
        Expr::Not { expr, span } => Expr::Not {
            expr: c.expr(expr, level)?,
            span: *span,
        },
        Expr::Neg { expr, span } => Expr::Neg {
            expr: c.expr(expr, level)?,
            span: *span,
        },
    };
    Ok(c.changed.then_some(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EvalConfig, Evaluator};

    fn evaluator() -> Evaluator {
        Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default())
    }

    fn lower(ev: &mut Evaluator, src: &str) -> ExprRef {
        ev.lower("«test»".into(), src.into(), "/".into())
            .map(|l| l.expr)
            .unwrap_or_else(|_| panic!("{src} lowers"))
    }

    /// How each binding of the outermost `let` came out: `Some(the lifted code)` or `None`
    /// when it stayed in its frame.
    fn let_bindings(e: &Expr) -> Vec<Option<&Expr>> {
        let Expr::Let { frame, .. } = e else {
            panic!("not a let")
        };
        frame
            .bindings
            .iter()
            .map(|b| match &**b {
                Expr::Parent(inner) => Some(&**inner),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn only_bindings_that_read_their_own_frame_stay_in_it() {
        let mut ev = evaluator();
        // Slots are in name order: a, b, f, g, h.
        let e = lower(
            &mut ev,
            "let a = 1; b = a; f = x: x; g = y: a; h = z: h; in 0",
        );
        let lifted: Vec<bool> = let_bindings(&e).iter().map(Option::is_some).collect();
        assert_eq!(lifted, [true, false, true, false, false]);
    }

    #[test]
    fn lifted_code_reaches_one_frame_less_far() {
        let mut ev = evaluator();
        let e = lower(&mut ev, "x: let y = x; z = w: x; in y");
        let Expr::Lambda(l) = &*e else { panic!() };
        let b = let_bindings(&l.body);
        // `x` was one frame up (past the let), and is now in the frame the code runs in.
        assert!(matches!(
            b[0],
            Some(Expr::Local {
                depth: 0,
                idx: 0,
                ..
            })
        ));
        // Inside `w: x`, `x` was two frames up, and is now one.
        let Some(Expr::Lambda(inner)) = b[1] else {
            panic!()
        };
        assert!(matches!(
            &*inner.body,
            Expr::Local {
                depth: 1,
                idx: 0,
                ..
            }
        ));
    }

    #[test]
    fn defaults_that_read_no_formal_are_lifted() {
        let mut ev = evaluator();
        let e = lower(&mut ev, "x: { a ? 1, b ? a, c ? x }: [ a b c ]");
        let Expr::Lambda(outer) = &*e else { panic!() };
        let Expr::Lambda(l) = &*outer.body else {
            panic!()
        };
        let Param::Pattern(p) = &l.param else {
            panic!()
        };
        let kinds: Vec<_> = p
            .formals
            .iter()
            .map(|f| f.default.as_deref().map(|d| matches!(d, Expr::Parent(_))))
            .collect();
        assert_eq!(kinds, [Some(true), Some(false), Some(true)]);
        let Some(Expr::Parent(c)) = p.formals[2].default.as_deref() else {
            panic!()
        };
        assert!(matches!(
            &**c,
            Expr::Local {
                depth: 0,
                idx: 0,
                ..
            }
        ));
    }

    /// A function's `let` that binds a lambda reading nothing of the `let` no longer keeps
    /// the frame alive in a cycle: once the call returns the lambda, the lambda is held
    /// only by the result (it was also held by the frame's slot, which held the frame).
    #[test]
    fn a_lifted_lambda_is_not_held_by_its_frame() {
        let mut ev = evaluator();
        let v = ev
            .eval_source(
                "«test»".into(),
                "(n: let g = y: n + y; in g) 1".into(),
                "/".into(),
            )
            .unwrap_or_else(|_| panic!("evaluates"));
        let crate::Value::Lambda(g) = v else {
            panic!("a lambda")
        };
        assert_eq!(Rc::strong_count(&g), 1);
        let r = ev.call(crate::Value::Lambda(g), crate::Value::Int(2), None);
        assert!(matches!(r, Ok(crate::Value::Int(3))));
    }

    /// Nested frames: a binding lifted out of an inner `let` is then moved again, as a
    /// whole, when the outer binding is lifted; the results evaluate as before.
    #[test]
    fn nested_lifts_evaluate_the_same() {
        let mut ev = evaluator();
        let src = "let o = 10; f = a: let p = o + a; q = b: let r = p * b; s = o; in r + s; \
                   in q 2; in [ (f 1) (let t = f; u = t 3; in u) (({ x ? o, y ? x }: x + y) { }) ]";
        let v = ev
            .eval_source("«test»".into(), src.into(), "/".into())
            .and_then(|v| ev.force_deep(v))
            .map(|v| crate::value::print::print_value(&v));
        assert_eq!(v.ok().as_deref(), Some("[ 32 36 20 ]"));
    }
}
