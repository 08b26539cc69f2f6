//! Nix's `autoCallFunction`: how `nix-instantiate`, `nix repl`'s `:l` and `-A` paths call a
//! function with the `--arg`/`--argstr` values.

use super::{sym, Evaluator};
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::ir::Param;
use crate::symbol::Symbol;
use crate::value::Value;

impl Evaluator {
    /// Calls `v` with the matching `args` if it is a function with formals (a functor is
    /// called with itself first); other values, plain lambdas included, are returned
    /// forced. A formal without a default and without a value is an error at the formal.
    pub fn auto_call(&mut self, v: Value, args: &[(Symbol, Value)]) -> EvalResult<Value> {
        let v = self.force(v)?;
        if let Value::Attrs(a) = &v {
            if let Some(f) = a.get(sym::functor()).cloned() {
                let f = self.force(f)?;
                let g = self.call(f, v.clone(), None)?;
                return self.auto_call(g, args);
            }
        }
        let Value::Lambda(c) = &v else {
            return Ok(v);
        };
        let Param::Pattern(p) = &c.lambda.param else {
            return Ok(v);
        };
        let mut entries = Vec::new();
        for formal in &p.formals {
            match args.iter().find(|(n, _)| *n == formal.name) {
                Some((_, val)) => entries.push((formal.name, val.clone())),
                None if formal.default.is_some() => {}
                None => {
                    return Err(EvalError::new(
                        ErrorKind::Other(format!(
                        "cannot evaluate a function that has an argument without a value ('{}')",
                        formal.name
                    )),
                        Some(formal.span),
                    ))
                }
            }
        }
        let arg = crate::builtins::make_attrs(entries);
        let r = self.call(v.clone(), arg, None)?;
        self.force(r)
    }
}
