//! Coercion of values to strings, with Nix's rules for each context.

use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use super::{sym, Evaluator};
use crate::error::{AddContext, ErrorKind, EvalError, EvalResult};
use crate::source::Span;
use crate::value::{ContextElem, NixString, StringBuilder, Value};

/// Which coercion rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoerceMode {
    /// `"${x}"`: strings, paths (copied to the store), sets with `__toString`/`outPath`.
    Interpolation,
    /// `./a/${x}`: like interpolation, but paths are used as they are.
    PathSegment,
    /// `toString x`: also numbers, Booleans, null and lists; paths are not copied.
    ToString,
    /// Derivation attributes: like `toString`, but paths are copied to the store.
    DerivationAttr,
}

impl CoerceMode {
    /// Whether numbers, Booleans, null and lists are accepted.
    fn coerce_more(self) -> bool {
        matches!(self, CoerceMode::ToString | CoerceMode::DerivationAttr)
    }

    /// Whether paths are copied into the store (and become store paths with context).
    fn copy_to_store(self) -> bool {
        matches!(self, CoerceMode::Interpolation | CoerceMode::DerivationAttr)
    }
}

/// C++'s `std::to_string(double)`, which `toString` uses for floats.
pub fn float_to_string(f: f64) -> String {
    format!("{f:.6}")
}

impl Evaluator {
    /// Coerces `v` to a string under `mode`. A string value comes back as it is, shared:
    /// most coercions are of strings, and copying one (with its context) only to read it
    /// was a large part of building strings.
    pub fn coerce_to_string(
        &mut self,
        v: Value,
        mode: CoerceMode,
        span: Option<Span>,
    ) -> EvalResult<Rc<NixString>> {
        let v = self.force(v)?;
        match v {
            Value::String(s) => Ok(s),
            Value::Path(p) => {
                if mode.copy_to_store() {
                    let store_path = self.source_to_store(&p, span)?;
                    let mut ctx = crate::value::Context::new();
                    ctx.insert(ContextElem::Plain(store_path.clone()));
                    Ok(Rc::new(NixString::with_context(
                        store_path.into_bytes(),
                        ctx,
                    )))
                } else {
                    Ok(Rc::new(NixString::new(p.as_os_str().as_bytes())))
                }
            }
            Value::Attrs(ref a) => {
                if let Some(entry) = a.get_entry(sym::to_string()) {
                    let (f, pos) = (entry.value.clone(), entry.pos.get());
                    let r = self
                        .force(f)
                        .and_then(|f| self.call(f, v.clone(), span))
                        .and_then(|r| self.force(r))
                        .context(pos, || "while calling the `__toString` attribute".into())?;
                    // The result is coerced again, in the same mode; one level deeper, so
                    // that a `__toString` returning its own set fails cleanly.
                    return self
                        .nested(span, |ev| ev.coerce_to_string(r, mode, span))
                        .context(pos, || {
                            "while using the result of the `__toString` attribute".into()
                        });
                }
                if let Some(entry) = a.get_entry(sym::out_path()) {
                    let (out, pos) = (entry.value.clone(), entry.pos.get());
                    let out = self
                        .force(out)
                        .context(pos, || "while evaluating the `outPath` attribute".into())?;
                    return self.nested(span, |ev| ev.coerce_to_string(out, mode, span));
                }
                self.cannot_coerce(&v, span)
            }
            Value::Int(i) if mode.coerce_more() => Ok(Rc::new(NixString::from(i.to_string()))),
            Value::Float(f) if mode.coerce_more() => {
                Ok(Rc::new(NixString::from(float_to_string(f.get()))))
            }
            Value::Bool(b) if mode.coerce_more() => {
                Ok(Rc::new(NixString::from(if b.get() { "1" } else { "" })))
            }
            Value::Null if mode.coerce_more() => Ok(Rc::new(NixString::from(""))),
            Value::List(ref l) if mode.coerce_more() => {
                let mut b = StringBuilder::new();
                for (i, item) in l.iter().enumerate() {
                    let item = self.force(item.clone())?;
                    let empty_list = matches!(&item, Value::List(x) if x.is_empty());
                    // One level deeper: a list that contains itself fails cleanly.
                    let s = self.nested(span, |ev| ev.coerce_to_string(item, mode, span))?;
                    b.push(&s);
                    // Nix separates elements by a space, except after an empty list.
                    if i + 1 < l.len() && !empty_list {
                        b.push_bytes(b" ");
                    }
                }
                Ok(Rc::new(b.finish()))
            }
            other => self.cannot_coerce(&other, span),
        }
    }

    fn cannot_coerce<T>(&self, v: &Value, span: Option<Span>) -> EvalResult<T> {
        Err(EvalError::new(
            ErrorKind::Other(format!(
                "cannot coerce {} to a string: {}",
                v.type_desc(),
                self.preview(v)
            )),
            span,
        ))
    }
}
