//! `:lf`: a local flake's outputs, without network or store. The flake's `inputs` must all be
//! local paths (`path:...` or a plain path), which are loaded the same way (as flakes, or as
//! plain source trees with `flake = false`); anything else is a clear error. `outPath` is the
//! directory itself: tvix evaluates without copying sources into a store.
//!
//! The fixpoint (`outputs` receives `self`, which contains `outputs`) is written as a Nix
//! expression and evaluated lazily, exactly as the flake's own code expects.

use std::path::{Path, PathBuf};

use tvix_eval::ir::Param;
use tvix_eval::symbol::Symbol;
use tvix_eval::value::print::escape_string;
use tvix_eval::{EvalResult, Evaluator, Value};

use crate::session::{expand_path, other};

/// Flakes nested deeper than this through their inputs are taken to be a cycle.
const MAX_INPUT_DEPTH: usize = 32;

/// Loads the flake in `arg` (`DIR`, `path:DIR`, `.`) and returns its `self`: the outputs
/// plus `inputs`, `outputs`, `outPath`, `sourceInfo` and `_type = "flake"`.
pub fn load_flake(ev: &mut Evaluator, arg: &str) -> EvalResult<Value> {
    let dir = local_dir(arg, &std::env::current_dir().unwrap_or_else(|_| "/".into())).ok_or_else(
        || {
            other(format!(
                "'{arg}' is not a local flake: tvix loads flakes from local directories \
                 (DIR or path:DIR) only, without network"
            ))
        },
    )?;
    let mut stack = Vec::new();
    let text = flake_expr(ev, &dir, &mut stack)?;
    ev.eval_source(format!("«flake {}»", dir.display()), text, dir)
}

/// The directory named by a flake reference if it is a local path reference.
fn local_dir(reference: &str, base: &Path) -> Option<PathBuf> {
    let r = reference.split(['?', '#']).next().unwrap_or(reference);
    let path_like = r.starts_with('/')
        || r.starts_with('.')
        || r.starts_with("~/")
        || (!r.contains(':') && !r.is_empty() && base.join(r).is_dir());
    let path = match r.strip_prefix("path:") {
        Some(p) => p,
        None if path_like => r,
        None => return None,
    };
    let p = if path.starts_with("~/") {
        expand_path(path)
    } else {
        base.join(path)
    };
    Some(tvix_eval::lower::canonicalize_path(
        p.as_os_str().as_encoded_bytes(),
    ))
}

/// A Nix string literal.
fn quote(s: &str) -> String {
    let mut out = String::new();
    escape_string(s.as_bytes(), &mut out);
    out
}

/// The Nix expression for the flake in `dir` (its `self`).
fn flake_expr(ev: &mut Evaluator, dir: &Path, stack: &mut Vec<PathBuf>) -> EvalResult<String> {
    if stack.contains(&dir.to_path_buf()) || stack.len() > MAX_INPUT_DEPTH {
        return Err(other(format!(
            "flake inputs form a cycle through '{}'",
            dir.display()
        )));
    }
    let file = dir.join("flake.nix");
    if !file.is_file() {
        return Err(other(format!(
            "'{}' is not a flake: it has no flake.nix",
            dir.display()
        )));
    }
    let decl = ev.eval_file(&file)?;
    let Value::Attrs(decl) = ev.force(decl)? else {
        return Err(other(format!("'{}' is not a set", file.display())));
    };
    let inputs = match decl.get(Symbol::intern("inputs")).cloned() {
        Some(i) => match ev.force(i)? {
            Value::Attrs(a) => a.iter().map(|e| (e.name, e.value.clone())).collect(),
            other_value => {
                return Err(other(format!(
                    "'inputs' of '{}' is {}, not a set",
                    file.display(),
                    other_value.type_desc()
                )))
            }
        },
        None => Vec::new(),
    };
    let Some(outputs) = decl.get(Symbol::intern("outputs")).cloned() else {
        return Err(other(format!("'{}' has no 'outputs'", file.display())));
    };
    check_outputs_args(ev, outputs, &inputs, &file)?;

    stack.push(dir.to_path_buf());
    let mut input_exprs = String::new();
    for (name, spec) in inputs {
        let (input_dir, is_flake) = input_location(ev, name, spec, dir)?;
        let e = if is_flake {
            flake_expr(ev, &input_dir, stack)?
        } else {
            let p = quote(&input_dir.display().to_string());
            format!("{{ outPath = {p}; sourceInfo = {{ outPath = {p}; }}; }}")
        };
        let mut key = String::new();
        tvix_eval::value::print::write_attr_name(name.as_str(), &mut key);
        input_exprs.push_str(&format!("{key} = {e}; "));
    }
    stack.pop();

    let p = quote(&dir.display().to_string());
    let f = quote(&file.display().to_string());
    Ok(format!(
        "(let flake = import (/. + {f}); inputs = {{ {input_exprs}}}; \
         outputs = flake.outputs (inputs // {{ inherit self; }}); \
         self = outputs // {{ outPath = {p}; inherit inputs outputs; \
         sourceInfo = {{ outPath = {p}; }}; _type = \"flake\"; }}; in self)"
    ))
}

/// Where input `name` lives and whether it is a flake, from its declaration (a URL string or
/// a set with `url`/`type`+`path` and `flake`).
fn input_location(
    ev: &mut Evaluator,
    name: Symbol,
    spec: Value,
    dir: &Path,
) -> EvalResult<(PathBuf, bool)> {
    let spec = ev.force(spec)?;
    let mut is_flake = true;
    let reference = match &spec {
        Value::String(s) => s.to_str_lossy().into_owned(),
        Value::Attrs(a) => {
            if a.contains(Symbol::intern("follows")) {
                return Err(other(format!(
                    "flake input '{name}' uses 'follows', which tvix does not support yet"
                )));
            }
            if let Some(f) = a.get(Symbol::intern("flake")).cloned() {
                is_flake = ev.expect_bool(f, None)?;
            }
            if let Some(u) = a.get(Symbol::intern("url")).cloned() {
                ev.force_string(u, None)?.to_str_lossy().into_owned()
            } else if let Some(p) = a.get(Symbol::intern("path")).cloned() {
                let p = ev.force(p)?;
                match &p {
                    Value::Path(p) => format!("path:{}", p.display()),
                    _ => format!("path:{}", ev.force_string(p, None)?.to_str_lossy()),
                }
            } else {
                return Err(other(format!(
                    "flake input '{name}' has no 'url': tvix cannot look it up in the flake \
                     registry without network"
                )));
            }
        }
        other_value => {
            return Err(other(format!(
                "flake input '{name}' is {}, not a URL or a set",
                other_value.type_desc()
            )))
        }
    };
    match local_dir(&reference, dir) {
        Some(p) if p.is_dir() => Ok((p, is_flake)),
        Some(p) => Err(other(format!(
            "flake input '{name}': '{}' is not a directory",
            p.display()
        ))),
        None => Err(other(format!(
            "flake input '{name}' is '{reference}': tvix loads only flakes whose inputs are \
             local paths (path:...), without network"
        ))),
    }
}

/// Every argument `outputs` takes without a default must be `self` or a declared input;
/// the rest would come from the flake registry, which needs network.
fn check_outputs_args(
    ev: &mut Evaluator,
    outputs: Value,
    inputs: &[(Symbol, Value)],
    file: &Path,
) -> EvalResult<()> {
    let outputs = ev.force(outputs)?;
    let Value::Lambda(c) = &outputs else {
        return Ok(());
    };
    let Param::Pattern(p) = &c.lambda.param else {
        return Ok(());
    };
    for f in &p.formals {
        let name = f.name.as_str();
        if name != "self" && f.default.is_none() && !inputs.iter().any(|(n, _)| *n == f.name) {
            return Err(other(format!(
                "the outputs of '{}' take input '{name}', which is not declared in 'inputs': \
                 tvix cannot look it up in the flake registry without network",
                file.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_references() {
        let base = Path::new("/work/x");
        assert_eq!(local_dir("path:./sub", base), Some("/work/x/sub".into()));
        assert_eq!(local_dir("path:/abs?narHash=x", base), Some("/abs".into()));
        assert_eq!(local_dir("../y", base), Some("/work/y".into()));
        assert_eq!(local_dir("github:NixOS/nixpkgs", base), None);
        assert_eq!(local_dir("nixpkgs", base), None);
    }
}
