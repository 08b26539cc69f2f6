//! String context builtins: inspecting and changing the store paths a string refers to.
//!
//! Context elements are plain paths (`/nix/store/...-src`), all outputs of a derivation
//! (`drvPath` of a derivation: the `.drv` and everything it builds) and single outputs
//! (`"${drv.out}"`). `getContext` shows them as Nix does:
//! `{ "/nix/store/..." = { path = true; allOutputs = true; outputs = [ "out" ]; }; }`.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::control::primop;
use super::{fail, make_attrs};
use crate::error::EvalResult;
use crate::eval::Evaluator;
use crate::source::Span;
use crate::symbol::Symbol;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("hasContext", 1, |ev, a, s| {
        let st = ev.force_string(a[0].clone(), s)?;
        Ok(Value::bool(st.has_context()))
    }),
    primop!("unsafeDiscardStringContext", 1, |ev, a, s| {
        let st = ev.coerce_string_arg(a[0].clone(), s)?;
        Ok(Value::string(st.as_bytes().to_vec()))
    }),
    primop!(
        "unsafeDiscardOutputDependency",
        1,
        discard_output_dependency
    ),
    primop!("addDrvOutputDependencies", 1, add_drv_output_dependencies),
    primop!("getContext", 1, get_context),
    primop!("appendContext", 2, append_context),
];

/// `drvPath`'s "all outputs" elements become plain references to the `.drv` file.
fn discard_output_dependency(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let st = ev.coerce_string_arg(a[0].clone(), s)?;
    let ctx: Context = st
        .context()
        .into_iter()
        .flatten()
        .map(|e| match e {
            ContextElem::AllOutputs(drv) => ContextElem::Plain(drv.clone()),
            other => other.clone(),
        })
        .collect();
    Ok(Value::String(Rc::new(NixString::with_context(
        st.as_bytes().to_vec(),
        ctx,
    ))))
}

/// The inverse: a plain reference to a `.drv` becomes a dependency on all its outputs.
fn add_drv_output_dependencies(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let st = ev.coerce_string_arg(a[0].clone(), s)?;
    let elems: Vec<&ContextElem> = st.context().into_iter().flatten().collect();
    if elems.len() != 1 {
        return fail(
            format!(
                "context of string '{}' must have exactly one element, but has {}",
                st.to_str_lossy(),
                elems.len()
            ),
            s,
        );
    }
    let new = match elems[0] {
        ContextElem::Plain(p) => {
            if !p.ends_with(".drv") {
                return fail(format!("path '{p}' is not a derivation"), s);
            }
            ContextElem::AllOutputs(p.clone())
        }
        ContextElem::AllOutputs(p) => ContextElem::AllOutputs(p.clone()),
        ContextElem::Output(_, out) => {
            return fail(
                format!(
                    "`addDrvOutputDependencies` can only act on derivations, not on a derivation output such as '{out}'"
                ),
                s,
            )
        }
    };
    Ok(Value::String(Rc::new(NixString::with_context(
        st.as_bytes().to_vec(),
        Context::from([new]),
    ))))
}

#[derive(Default)]
struct PathInfo {
    path: bool,
    all_outputs: bool,
    outputs: Vec<String>,
}

fn get_context(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let st = ev.coerce_string_arg(a[0].clone(), s)?;
    let mut by_path: BTreeMap<String, PathInfo> = BTreeMap::new();
    for e in st.context().into_iter().flatten() {
        match e {
            ContextElem::Plain(p) => by_path.entry(p.clone()).or_default().path = true,
            ContextElem::AllOutputs(p) => by_path.entry(p.clone()).or_default().all_outputs = true,
            ContextElem::Output(p, out) => by_path
                .entry(p.clone())
                .or_default()
                .outputs
                .push(out.clone()),
        }
    }
    let entries = by_path.into_iter().map(|(path, info)| {
        let mut fields = Vec::new();
        if info.path {
            fields.push((Symbol::intern("path"), Value::bool(true)));
        }
        if info.all_outputs {
            fields.push((Symbol::intern("allOutputs"), Value::bool(true)));
        }
        if !info.outputs.is_empty() {
            let mut outs = info.outputs;
            outs.sort();
            fields.push((
                Symbol::intern("outputs"),
                Value::list(outs.into_iter().map(Value::string).collect()),
            ));
        }
        (Symbol::intern(&path), make_attrs(fields))
    });
    Ok(make_attrs(entries))
}

fn append_context(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let st = ev.force_string(a[0].clone(), s)?;
    let spec = ev.force_attrs(a[1].clone(), s)?;
    let store_dir = ev.io.store_dir();
    let mut ctx: Context = st.context().cloned().unwrap_or_default();
    for entry in spec.iter() {
        let path = entry.name.as_str();
        if !path.starts_with(&format!("{store_dir}/")) {
            return fail(format!("context key '{path}' is not a store path"), s);
        }
        let info = ev.force_attrs(entry.value.clone(), s)?;
        if let Some(v) = info.get(Symbol::intern("path")) {
            if ev.force_bool(v.clone(), s)? {
                ctx.insert(ContextElem::Plain(path.to_string()));
            }
        }
        if let Some(v) = info.get(Symbol::intern("allOutputs")) {
            if ev.force_bool(v.clone(), s)? {
                if !path.ends_with(".drv") {
                    return fail(
                        format!("tried to add all-outputs context of {path}, which is not a derivation, to a string"),
                        s,
                    );
                }
                ctx.insert(ContextElem::AllOutputs(path.to_string()));
            }
        }
        if let Some(v) = info.get(Symbol::intern("outputs")) {
            let outs = ev.force_list(v.clone(), s)?;
            if !outs.is_empty() && !path.ends_with(".drv") {
                return fail(
                    format!("tried to add derivation output context of {path}, which is not a derivation, to a string"),
                    s,
                );
            }
            for o in outs.iter() {
                let name = ev.force_string(o.clone(), s)?;
                ctx.insert(ContextElem::Output(
                    path.to_string(),
                    name.to_str_lossy().into_owned(),
                ));
            }
        }
    }
    Ok(Value::String(Rc::new(NixString::with_context(
        st.as_bytes().to_vec(),
        ctx,
    ))))
}

#[cfg(test)]
mod tests {
    use crate::testing::eval;

    const WITH_CTX: &str = r#"builtins.appendContext "x" {
        "/nix/store/00000000000000000000000000000000-a.drv" = { outputs = [ "out" "dev" ]; allOutputs = true; };
        "/nix/store/11111111111111111111111111111111-src" = { path = true; };
    }"#;

    #[test]
    fn get_context_groups_elements_by_path() {
        assert_eq!(
            eval(&format!("builtins.getContext ({WITH_CTX})")).unwrap(),
            r#"{ "/nix/store/00000000000000000000000000000000-a.drv" = { allOutputs = true; outputs = [ "dev" "out" ]; }; "/nix/store/11111111111111111111111111111111-src" = { path = true; }; }"#
        );
    }

    #[test]
    fn has_and_discard_context() {
        assert_eq!(
            eval(&format!("builtins.hasContext ({WITH_CTX})")).unwrap(),
            "true"
        );
        assert_eq!(eval("builtins.hasContext \"plain\"").unwrap(), "false");
        assert_eq!(
            eval(&format!(
                "builtins.hasContext (builtins.unsafeDiscardStringContext ({WITH_CTX}))"
            ))
            .unwrap(),
            "false"
        );
    }

    #[test]
    fn output_dependency_conversions() {
        let drv = r#"builtins.appendContext "d" { "/nix/store/00000000000000000000000000000000-a.drv" = { allOutputs = true; }; }"#;
        assert_eq!(
            eval(&format!(
                "builtins.getContext (builtins.unsafeDiscardOutputDependency ({drv}))"
            ))
            .unwrap(),
            r#"{ "/nix/store/00000000000000000000000000000000-a.drv" = { path = true; }; }"#
        );
        assert_eq!(
            eval(&format!(
                "builtins.getContext (builtins.addDrvOutputDependencies (builtins.unsafeDiscardOutputDependency ({drv})))"
            ))
            .unwrap(),
            r#"{ "/nix/store/00000000000000000000000000000000-a.drv" = { allOutputs = true; }; }"#
        );
        assert_eq!(
            eval("builtins.addDrvOutputDependencies \"\"").unwrap_err(),
            "context of string '' must have exactly one element, but has 0"
        );
    }

    #[test]
    fn append_context_rejects_bad_keys() {
        assert!(
            eval(r#"builtins.appendContext "x" { "/tmp/x" = { path = true; }; }"#)
                .unwrap_err()
                .contains("is not a store path")
        );
        assert!(eval(r#"builtins.appendContext "x" { "/nix/store/00000000000000000000000000000000-a" = { allOutputs = true; }; }"#)
            .unwrap_err()
            .contains("which is not a derivation"));
    }
}
