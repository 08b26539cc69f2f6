//! Nix's `autoCallFunction` for loaded files: a function taking a set of formals is called
//! with the matching `--arg`/`--argstr` values (formals with defaults may be left out).

use tvix_eval::ir::Param;
use tvix_eval::symbol::Symbol;
use tvix_eval::{ErrorKind, EvalError, EvalResult, Evaluator, Value};

/// Calls `v` with `args` if it is a function with formals (or a functor); other values are
/// returned forced.
pub fn auto_call(ev: &mut Evaluator, v: Value, args: &[(Symbol, Value)]) -> EvalResult<Value> {
    let v = ev.force(v)?;
    if let Value::Attrs(a) = &v {
        if let Some(f) = a.get(Symbol::intern("__functor")).cloned() {
            let f = ev.force(f)?;
            let g = ev.call(f, v.clone(), None)?;
            return auto_call(ev, g, args);
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
    let arg = tvix_eval::builtins::make_attrs(entries);
    let r = ev.call(v.clone(), arg, None)?;
    ev.force(r)
}
